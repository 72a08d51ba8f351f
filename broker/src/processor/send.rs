//! SEND_MESSAGE (10), SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE (320), reference §2.3.
//!
//! Two stages:
//! 1. [`resolve_and_route`] on the receiving shard, only for sends whose owner is not known yet
//!    (`queueId < 0`): make sure the topic exists (auto-creating it through the metadata shard),
//!    pick a random writable queue, write it into the header and route to the queue's owner.
//! 2. [`send_message`] on the owner: the checks of §2.3 in order, then one store append for the
//!    whole message or batch, and the response with every field clients unbox.

use std::net::SocketAddr;
use std::rc::Rc;

use bytes::Bytes;
use ringmq_proto::body::{perm, TopicConfig, TopicFilterType};
use ringmq_proto::code::ResponseCode;
use ringmq_proto::command::RemotingCommand;
use ringmq_proto::header::{SendMessageRequestHeader, SendMessageResponseHeader};
use ringmq_proto::message::batch::BatchIter;
use ringmq_proto::message::ids::encode_offset_msg_id;
use ringmq_proto::message::properties::{encode_properties, PropertiesIter};
use ringmq_proto::message::{property, sysflag, Record, MAX_PROPERTIES_LEN};

use super::{bad_header, respond_error, Outcome};
use crate::metadata::topics::{
    dlq_topic, now_ms, validate_topic_name, DLQ_GROUP_TOPIC_PREFIX, NOT_ALLOWED_SEND_TOPICS,
    RETRY_GROUP_TOPIC_PREFIX,
};
use crate::metadata::ControlCall;
use crate::server::conn::ConnHandle;
use crate::server::route::{parse_queue_id, send_topic_and_queue, uses_short_send_names};
use crate::server::shard::{serve, Forwarded, Shard, ShardMsg};
use crate::shard_map::shard_of;
use crate::store::{AppendStatus, StoreError};

/// `maxReconsumeTimes` when the client does not say (or is older than V3_4_9).
const DEFAULT_MAX_RECONSUME_TIMES: i32 = 16;
/// Request version from which the header's `maxReconsumeTimes` is honoured (V3_4_9).
const VERSION_WITH_MAX_RECONSUME_TIMES: i32 = 121;

/// Stage 1: see the module documentation.
pub async fn resolve_and_route(shard: Rc<Shard>, conn: ConnHandle, mut request: RemotingCommand) {
    let (topic, _) = send_topic_and_queue(&request);
    let Some(topic) = topic.map(str::to_owned) else {
        return serve(&shard, conn, request);
    };
    // Anything the send handler must refuse is refused where it arrived, with its code.
    if validate_topic_name(&topic).is_err() || NOT_ALLOWED_SEND_TOPICS.contains(&topic.as_str()) {
        return serve(&shard, conn, request);
    }
    let Ok(Some(topic_config)) = ensure_topic(&shard, &request, &topic).await else {
        return serve(&shard, conn, request);
    };
    let queue_field = if uses_short_send_names(&request) {
        "e"
    } else {
        "queueId"
    };
    if topic_config.write_queue_nums <= 0 {
        return serve(&shard, conn, request);
    }
    let queue_id = (rand::random::<u32>() % topic_config.write_queue_nums as u32) as i32;
    request.ext_fields.insert(queue_field, queue_id.to_string());
    route_to_owner(&shard, conn, request, &topic, queue_id);
}

/// Serves `request` on the owner of (topic, queue_id): here, or forwarded.
pub fn route_to_owner(
    shard: &Rc<Shard>,
    conn: ConnHandle,
    request: RemotingCommand,
    topic: &str,
    queue_id: i32,
) {
    let owner = shard_of(topic, queue_id, shard.shards);
    if owner == shard.id {
        serve(shard, conn, request);
    } else {
        shard.send_to(owner, ShardMsg::Requests(vec![Forwarded { conn, request }]));
    }
}

/// The topic's config from this shard's read copy, or auto-created by the metadata shard
/// (reference §2.3 step 2; `%RETRY%` topics fall back to one queue). `Ok(None)`: it may not be
/// created. `Err`: creation failed (the topic file could not be written).
async fn ensure_topic(
    shard: &Rc<Shard>,
    request: &RemotingCommand,
    topic: &str,
) -> Result<Option<TopicConfig>, String> {
    if let Some(config) = shard.view().topics.get(topic) {
        return Ok(Some(config.clone()));
    }
    let short = uses_short_send_names(request);
    let (default_field, nums_field) = if short {
        ("c", "d")
    } else {
        ("defaultTopic", "defaultTopicQueueNums")
    };
    let (reply, answer) = flume::bounded(1);
    shard.control(ControlCall::CreateTopicOnSend {
        topic: topic.to_string(),
        default_topic: request
            .ext_fields
            .get(default_field)
            .unwrap_or_default()
            .to_string(),
        queue_nums: request
            .ext_fields
            .get(nums_field)
            .and_then(parse_queue_id)
            .unwrap_or(0),
        group_topic: topic.starts_with(RETRY_GROUP_TOPIC_PREFIX)
            || topic.starts_with(DLQ_GROUP_TOPIC_PREFIX),
        reply,
    });
    // A closed reply channel means the metadata shard is stopping.
    answer.recv_async().await.unwrap_or(Ok(None))
}

/// Stage 2: see the module documentation.
pub async fn send_message(
    shard: &Rc<Shard>,
    conn: &ConnHandle,
    request: &RemotingCommand,
) -> Outcome {
    let header = match SendMessageRequestHeader::read_any(&request.ext_fields) {
        Ok(header) => header,
        Err(e) => return bad_header(request, e),
    };
    let config = &shard.config;
    let view = shard.view();
    if !view.broker_writable() {
        let remark = format!(
            "the broker[{}] sending message is forbidden",
            config.advertised_addr()
        );
        return respond_error(request, ResponseCode::NoPermission, remark);
    }
    if let Err(remark) = validate_topic_name(&header.topic) {
        return respond_error(request, ResponseCode::InvalidParameter, remark);
    }
    if NOT_ALLOWED_SEND_TOPICS.contains(&header.topic.as_str()) {
        let remark = format!("Sending message to topic[{}] is forbidden.", header.topic);
        return respond_error(request, ResponseCode::NoPermission, remark);
    }
    let header_properties = header.properties.as_deref().unwrap_or_default();
    if header_properties.len() > MAX_PROPERTIES_LEN {
        let remark = format!(
            "the message properties size {} over max value, MAX: {MAX_PROPERTIES_LEN}",
            header_properties.len()
        );
        return respond_error(request, ResponseCode::MessageIllegal, remark);
    }
    let topic_config = match ensure_topic(shard, request, &header.topic).await {
        Ok(Some(config)) => config,
        Ok(None) => {
            let remark = format!("topic[{}] not exist, apply first please!", header.topic);
            return respond_error(request, ResponseCode::TopicNotExist, remark);
        }
        Err(e) => {
            return respond_error(
                request,
                ResponseCode::SystemError,
                format!("cannot create topic: {e}"),
            )
        }
    };
    if topic_config.perm & perm::WRITE == 0 {
        let remark = format!("the topic[{}] sending message is forbidden", header.topic);
        return respond_error(request, ResponseCode::NoPermission, remark);
    }
    let queue_nums = topic_config
        .read_queue_nums
        .max(topic_config.write_queue_nums);
    if header.queue_id < 0 || header.queue_id >= queue_nums {
        let remark = format!(
            "request queueId[{}] is illegal, topic {} has {queue_nums} queues, producer {}",
            header.queue_id, header.topic, conn.peer
        );
        return respond_error(request, ResponseCode::InvalidParameter, remark);
    }
    if request.body.len() > config.max_message_size_bytes as usize {
        let remark = format!(
            "the message body size over max value, MAX: {}",
            config.max_message_size_bytes
        );
        return respond_error(request, ResponseCode::MessageIllegal, remark);
    }
    if header.is_batch() && header.topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) {
        return respond_error(
            request,
            ResponseCode::MessageIllegal,
            "Retry Group is not supported for batching".to_string(),
        );
    }
    if let Some(outcome) = redirect_to_dlq(shard, conn, request, &header) {
        return outcome;
    }
    if !header.is_batch() && is_transactional(&header) {
        // Half messages (reference §6) are not built yet: refusing them is better than storing
        // them as visible messages. Java answers the same when rejectTransactionMessage=true.
        let remark = format!(
            "the broker[{}] sending transaction message is forbidden",
            config.advertised_addr()
        );
        return respond_error(request, ResponseCode::NoPermission, remark);
    }
    store_and_respond(shard, conn, request, &header, &topic_config).await
}

fn is_transactional(header: &SendMessageRequestHeader) -> bool {
    let props = header.properties.as_deref().unwrap_or_default().as_bytes();
    let tran_msg = PropertiesIter::new(props)
        .filter(|(k, _)| *k == property::TRAN_MSG.as_bytes())
        .last()
        .is_some_and(|(_, v)| v.eq_ignore_ascii_case(b"true"));
    tran_msg || sysflag::transaction_type(header.sys_flag) == sysflag::TRANSACTION_PREPARED_TYPE
}

/// §2.3 step 5: a send to `%RETRY%<group>` past its maximum reconsume count goes to
/// `%DLQ%<group>` queue 0 instead, with `DELAY=-1`. The request is rewritten and routed again
/// (the DLQ queue may live on another shard); `None` when no redirect applies.
fn redirect_to_dlq(
    shard: &Rc<Shard>,
    conn: &ConnHandle,
    request: &RemotingCommand,
    header: &SendMessageRequestHeader,
) -> Option<Outcome> {
    let group = header.topic.strip_prefix(RETRY_GROUP_TOPIC_PREFIX)?;
    let max = match header.max_reconsume_times {
        Some(max) if request.version >= VERSION_WITH_MAX_RECONSUME_TIMES => max,
        _ => DEFAULT_MAX_RECONSUME_TIMES,
    };
    let max = if max < 0 {
        DEFAULT_MAX_RECONSUME_TIMES
    } else {
        max
    };
    if header.reconsume_times.unwrap_or(0) <= max {
        return None;
    }
    let dlq = dlq_topic(group);
    let mut redirected = request.clone();
    let mut new_header = header.clone();
    new_header.topic = dlq.clone();
    new_header.queue_id = 0;
    let mut props: Vec<(String, String)> =
        property_pairs(header.properties.as_deref().unwrap_or_default());
    props.retain(|(k, _)| k != property::DELAY);
    props.push((property::DELAY.to_string(), "-1".to_string()));
    let mut encoded = Vec::new();
    encode_properties(
        props.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        &mut encoded,
    );
    new_header.properties = Some(String::from_utf8_lossy(&encoded).into_owned());
    redirected.ext_fields = Default::default();
    new_header.write_v1(&mut redirected.ext_fields);
    tracing::debug!(
        topic = header.topic,
        dlq,
        "reconsume times exhausted: to the dead-letter queue"
    );
    route_to_owner(shard, conn.clone(), redirected, &dlq, 0);
    Some(Outcome::Forwarded)
}

fn property_pairs(properties: &str) -> Vec<(String, String)> {
    PropertiesIter::new(properties.as_bytes())
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

/// Properties as stored: the client's, plus MSG_REGION, TRACE_ON, CLUSTER and a UNIQ_KEY when
/// missing (step 4); POP_CK is dropped. Returns the encoded bytes and the UNIQ_KEY.
fn stored_properties(shard: &Shard, client_properties: &[u8]) -> (Vec<u8>, String) {
    let config = &shard.config;
    let mut pairs: Vec<(&[u8], std::borrow::Cow<'_, [u8]>)> =
        PropertiesIter::new(client_properties)
            .filter(|(k, _)| *k != property::POP_CK.as_bytes())
            .map(|(k, v)| (k, std::borrow::Cow::Borrowed(v)))
            .collect();
    let has = |pairs: &Vec<(&[u8], std::borrow::Cow<'_, [u8]>)>, name: &str| {
        pairs.iter().any(|(k, _)| *k == name.as_bytes())
    };
    let uniq_key = match pairs
        .iter()
        .rev()
        .find(|(k, _)| *k == property::UNIQ_KEY.as_bytes())
    {
        Some((_, v)) => String::from_utf8_lossy(v).into_owned(),
        None => {
            let generated = shard.uniq_keys.borrow_mut().next_id(now_ms());
            pairs.push((
                property::UNIQ_KEY.as_bytes(),
                std::borrow::Cow::Owned(generated.clone().into_bytes()),
            ));
            generated
        }
    };
    // The broker's own values borrow from its configuration: nothing is copied per message
    // until the properties are encoded below.
    let trace_on = if config.trace_on { "true" } else { "false" };
    for (name, value) in [
        (property::MSG_REGION, config.region_id.as_str()),
        (property::TRACE_ON, trace_on),
        (property::CLUSTER, config.broker_cluster_name.as_str()),
    ] {
        if !has(&pairs, name) {
            pairs.push((
                name.as_bytes(),
                std::borrow::Cow::Borrowed(value.as_bytes()),
            ));
        }
    }
    let mut out = Vec::with_capacity(client_properties.len() + 96);
    for (k, v) in &pairs {
        out.extend_from_slice(k);
        out.push(ringmq_proto::message::properties::NAME_VALUE_SEPARATOR);
        out.extend_from_slice(v);
        out.push(ringmq_proto::message::properties::PROPERTY_SEPARATOR);
    }
    (out, uniq_key)
}

/// IPv4 as stored (ali-ons decodes 4-byte hosts only); the listener is IPv4, so a peer is too,
/// but an IPv4-mapped IPv6 address is normalised anyway.
fn ipv4_host(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        v4 => v4,
    }
}

async fn store_and_respond(
    shard: &Rc<Shard>,
    conn: &ConnHandle,
    request: &RemotingCommand,
    header: &SendMessageRequestHeader,
    topic_config: &TopicConfig,
) -> Outcome {
    let Some(store) = shard.store() else {
        return respond_error(
            request,
            ResponseCode::ServiceNotAvailable,
            "store is closed".to_string(),
        );
    };
    let mut sys_flag = header.sys_flag & !sysflag::TRANSACTION_MASK;
    if topic_config.topic_filter_type == TopicFilterType::MultiTag {
        sys_flag |= sysflag::MULTI_TAGS;
    }
    let born_host = ipv4_host(conn.peer);
    let template = Record {
        queue_id: header.queue_id,
        flag: header.flag,
        queue_offset: 0,
        physical_offset: 0,
        sys_flag,
        born_timestamp: header.born_timestamp,
        born_host,
        store_timestamp: 0,
        store_host: shard.store_host,
        reconsume_times: header.reconsume_times.unwrap_or(0),
        prepared_transaction_offset: 0,
        body: &[],
        topic: header.topic.as_bytes(),
        properties: &[],
    };
    // Owned property buffers first, then records borrowing them.
    let mut items: Vec<(i32, &[u8], Vec<u8>, String)> = Vec::new();
    if header.is_batch() {
        for item in BatchIter::new(&request.body) {
            let item = match item {
                Ok(item) => item,
                Err(e) => {
                    return respond_error(
                        request,
                        ResponseCode::MessageIllegal,
                        format!("bad batch body: {e}"),
                    )
                }
            };
            if item.properties.len() > MAX_PROPERTIES_LEN {
                return respond_error(
                    request,
                    ResponseCode::MessageIllegal,
                    format!("batch item properties over {MAX_PROPERTIES_LEN} bytes"),
                );
            }
            let (properties, uniq_key) = stored_properties(shard, item.properties);
            items.push((item.flag, item.body, properties, uniq_key));
        }
        if items.is_empty() {
            return respond_error(
                request,
                ResponseCode::MessageIllegal,
                "empty batch".to_string(),
            );
        }
    } else {
        let (properties, uniq_key) = stored_properties(
            shard,
            header.properties.as_deref().unwrap_or_default().as_bytes(),
        );
        items.push((header.flag, &request.body, properties, uniq_key));
    }
    let records: Vec<Record<'_>> = items
        .iter()
        .map(|(flag, body, properties, _)| Record {
            flag: *flag,
            body,
            properties,
            ..template
        })
        .collect();
    let outcome = match store.append(&records).await {
        Ok(outcome) => outcome,
        Err(e) => return store_error(request, e),
    };
    shard.counters.add_put(outcome.records.len() as u64);
    let code = match outcome.status {
        AppendStatus::PutOk => ResponseCode::Success,
        AppendStatus::FlushDiskTimeout => ResponseCode::FlushDiskTimeout,
    };
    let msg_ids: Vec<String> = outcome
        .records
        .iter()
        .map(|r| encode_offset_msg_id(shard.store_host, r.physical_offset as i64))
        .collect();
    let first = outcome
        .records
        .first()
        .expect("a non-empty batch stores records");
    let mut response_header = SendMessageResponseHeader::new(
        msg_ids.join(","),
        header.queue_id,
        first.queue_offset as i64,
    );
    response_header.msg_region = Some(shard.config.region_id.clone());
    response_header.trace_on = Some(shard.config.trace_on);
    if !header.is_batch() {
        response_header.transaction_id = Some(items[0].3.clone());
    }
    let mut response = RemotingCommand::response_to(request, code.code(), None);
    response.set_header(&response_header);
    response.body = Bytes::new();
    Outcome::Respond(response)
}

fn store_error(request: &RemotingCommand, e: StoreError) -> Outcome {
    let code = match &e {
        StoreError::ReadOnly { .. } | StoreError::Closed => ResponseCode::ServiceNotAvailable,
        StoreError::InvalidRecord(_)
        | StoreError::RecordTooLarge { .. }
        | StoreError::InvalidTopic(_) => ResponseCode::MessageIllegal,
        _ => ResponseCode::SystemError,
    };
    respond_error(request, code, e.to_string())
}
