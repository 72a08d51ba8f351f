//! SEND_MESSAGE (10), SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE (320), reference §2.3.
//!
//! [`send_message`] runs the checks of §2.3 in order, then one store append for the whole
//! message or batch, and answers with every field clients unbox. Two of its outcomes place the
//! request again instead of storing it here:
//! * a send whose queue the broker picks (`queueId < 0`, served where it arrived): the topic is
//!   made to exist (auto-created through the metadata shard), a random writable queue is written
//!   into the header, and the request is rerouted to that queue's owner;
//! * a send to `%RETRY%<group>` past its reconsume maximum is rewritten to `%DLQ%<group>` queue 0
//!   and rerouted.
//!
//! Either reroute keeps the request's [`RequestOrigin`]: a send-back stays one, so it counts
//! `SNDBCK_PUT_NUMS` wherever it is finally stored.

use crate::ha::service::{disk_ratio_text, replication_code, slave_send_refusal_remark};
use crate::ha::ShardHa;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::ops::Range;

use bytes::Bytes;
use ringmq_proto::body::{perm, TopicConfig, TopicFilterType};
use ringmq_proto::code::ResponseCode;
use ringmq_proto::command::RemotingCommand;
use ringmq_proto::header::{SendMessageRequestHeader, SendMessageResponseHeader};
use ringmq_proto::message::batch::BatchIter;
use ringmq_proto::message::ids::encode_offset_msg_id;
use ringmq_proto::message::properties::{
    encode_properties, find_property, push_property, PropertiesIter,
};
use ringmq_proto::message::{property, sysflag, Record, MAX_PROPERTIES_LEN};

use super::runtime_info::RequestCounters;
use super::{bad_header, respond_error, CreateTopicRequest, Outcome, RequestOrigin, ShardMesh};
use crate::config::BrokerConfig;
use crate::metadata::topics::{
    dlq_topic, validate_topic_name, DLQ_GROUP_TOPIC_PREFIX, NOT_ALLOWED_SEND_TOPICS,
    RETRY_GROUP_TOPIC_PREFIX,
};
use crate::metadata::BrokerView;
use crate::schedule;
use crate::store::{AppendOutcome, AppendStatus, Store, StoreError};
use crate::transaction::TransactionService;
use ringmq_proto::header::routing;
use ringmq_proto::message::ids::UniqKeyGenerator;

/// `maxReconsumeTimes` when the client does not say (or is older than V3_4_9).
const DEFAULT_MAX_RECONSUME_TIMES: i32 = 16;
/// Request version from which the header's `maxReconsumeTimes` is honoured (V3_4_9).
const VERSION_WITH_MAX_RECONSUME_TIMES: i32 = 121;

/// What the send handler uses.
pub struct SendContext<'a> {
    pub config: &'a BrokerConfig,
    pub view: &'a BrokerView,
    pub store: &'a Store,
    /// UNIQ_KEY for messages that arrive without one.
    pub uniq_keys: &'a RefCell<UniqKeyGenerator>,
    /// The address stored as STOREHOST and encoded in offsetMsgIds.
    pub store_host: SocketAddr,
    pub counters: &'a RequestCounters,
    /// To auto-create a topic on the metadata shard.
    pub mesh: &'a dyn ShardMesh,
    /// Where a half message (transactional send) is stored instead.
    pub transaction: &'a TransactionService,
    /// Replication: a slave refuses sends; a SYNC_MASTER waits for its slave.
    pub ha: &'a ShardHa,
    pub now_ms: i64,
}

/// The topic's config from this shard's read copy, or auto-created by the metadata shard
/// (reference §2.3 step 2; `%RETRY%` topics fall back to one queue). `Ok(None)`: it may not be
/// created. `Err`: creation failed (the topic file could not be written).
async fn ensure_topic(
    view: &BrokerView,
    mesh: &dyn ShardMesh,
    request: &RemotingCommand,
    topic: &str,
) -> Result<Option<TopicConfig>, String> {
    if let Some(config) = view.topics.get(topic) {
        return Ok(Some(config.clone()));
    }
    let (default_topic, queue_nums) = routing::send_default_topic(&request.ext_fields);
    let answer = mesh.create_topic_on_send(CreateTopicRequest {
        topic: topic.to_string(),
        default_topic: default_topic.unwrap_or_default().to_string(),
        queue_nums: queue_nums.unwrap_or(0),
        group_topic: topic.starts_with(RETRY_GROUP_TOPIC_PREFIX)
            || topic.starts_with(DLQ_GROUP_TOPIC_PREFIX),
    });
    // A closed reply channel means the metadata shard is stopping.
    answer.recv_async().await.unwrap_or(Ok(None))
}

/// The broker picks the queue (`queueId < 0`): a random writable one, written into the header,
/// and the request goes to that queue's owner.
fn pick_queue(
    request: &RemotingCommand,
    origin: RequestOrigin,
    topic_config: &TopicConfig,
) -> Outcome {
    let queue_id = (rand::random::<u32>() % topic_config.write_queue_nums as u32) as i32;
    let mut placed = request.clone();
    let field = routing::send_queue_field(&request.ext_fields);
    placed.ext_fields.insert(field, queue_id.to_string());
    Outcome::Reroute {
        request: placed,
        origin,
    }
}

/// SEND_MESSAGE, SEND_MESSAGE_V2 and SEND_BATCH_MESSAGE: see the module documentation.
/// `origin` is who made the request (a client, or a send-back), as the server received it.
pub async fn send_message(
    ctx: &SendContext<'_>,
    peer: SocketAddr,
    origin: RequestOrigin,
    request: &RemotingCommand,
) -> Outcome {
    let header = match SendMessageRequestHeader::read_any(&request.ext_fields) {
        Ok(header) => header,
        Err(e) => return bad_header(request, e),
    };
    if ctx.ha.is_slave() {
        // Java refuses in the store (PutMessageStatus.SERVICE_NOT_AVAILABLE); refusing first
        // also keeps a slave from auto-creating topics its master does not have.
        let disk = disk_ratio_text(&ctx.config.store_path_root_dir);
        let remark = slave_send_refusal_remark(&disk);
        return respond_error(request, ResponseCode::ServiceNotAvailable, remark);
    }
    if let Err(refusal) = check_sender(ctx.config, ctx.view, request, &header) {
        return refusal;
    }
    let topic_config = match ensure_topic(ctx.view, ctx.mesh, request, &header.topic).await {
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
    if header.queue_id < 0 && topic_config.write_queue_nums > 0 {
        return pick_queue(request, origin, &topic_config);
    }
    if let Err(refusal) = check_message(ctx.config, peer, request, &header, &topic_config) {
        return refusal;
    }
    if let Some(outcome) = redirect_to_dlq(ctx, request, origin, &header) {
        return outcome;
    }
    store_and_respond(ctx, peer, origin, request, &header, &topic_config).await
}

/// §2.3 step 1: the broker's permission, the topic's name and the properties' size.
fn check_sender(
    config: &BrokerConfig,
    view: &BrokerView,
    request: &RemotingCommand,
    header: &SendMessageRequestHeader,
) -> Result<(), Outcome> {
    if !view.broker_writable() {
        let remark = format!(
            "the broker[{}] sending message is forbidden",
            config.advertised_addr()
        );
        return Err(respond_error(request, ResponseCode::NoPermission, remark));
    }
    if let Err(remark) = validate_topic_name(&header.topic) {
        return Err(respond_error(
            request,
            ResponseCode::InvalidParameter,
            remark,
        ));
    }
    if NOT_ALLOWED_SEND_TOPICS.contains(&header.topic.as_str()) {
        let remark = format!("Sending message to topic[{}] is forbidden.", header.topic);
        return Err(respond_error(request, ResponseCode::NoPermission, remark));
    }
    let header_properties = header.properties.as_deref().unwrap_or_default();
    if header_properties.len() > MAX_PROPERTIES_LEN {
        let remark = format!(
            "the message properties size {} over max value, MAX: {MAX_PROPERTIES_LEN}",
            header_properties.len()
        );
        return Err(respond_error(request, ResponseCode::MessageIllegal, remark));
    }
    Ok(())
}

/// §2.3 step 3: the queue id against the topic, the body's size, batches to retry topics.
fn check_message(
    config: &BrokerConfig,
    peer: SocketAddr,
    request: &RemotingCommand,
    header: &SendMessageRequestHeader,
    topic_config: &TopicConfig,
) -> Result<(), Outcome> {
    let queue_nums = topic_config
        .read_queue_nums
        .max(topic_config.write_queue_nums);
    if header.queue_id < 0 || header.queue_id >= queue_nums {
        let remark = format!(
            "request queueId[{}] is illegal, topic {} has {queue_nums} queues, producer {peer}",
            header.queue_id, header.topic
        );
        return Err(respond_error(
            request,
            ResponseCode::InvalidParameter,
            remark,
        ));
    }
    if request.body.len() > config.max_message_size_bytes as usize {
        let remark = format!(
            "the message body size over max value, MAX: {}",
            config.max_message_size_bytes
        );
        return Err(respond_error(request, ResponseCode::MessageIllegal, remark));
    }
    if header.is_batch() && header.topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) {
        return Err(respond_error(
            request,
            ResponseCode::MessageIllegal,
            "Retry Group is not supported for batching".to_string(),
        ));
    }
    Ok(())
}

fn is_transactional(header: &SendMessageRequestHeader) -> bool {
    let props = header.properties.as_deref().unwrap_or_default().as_bytes();
    let tran_msg = PropertiesIter::new(props)
        .filter(|(k, _)| *k == property::TRAN_MSG.as_bytes())
        .last()
        .is_some_and(|(_, v)| v.eq_ignore_ascii_case(b"true"));
    tran_msg || sysflag::transaction_type(header.sys_flag) == sysflag::TRANSACTION_PREPARED_TYPE
}

/// §2.3 step 5: a send to `%RETRY%<group>` past its maximum reconsume count (the request's,
/// else the group's `retryMaxTimes`) goes to `%DLQ%<group>` queue 0 instead, with `DELAY=-1`.
/// The request is rewritten and routed again (the DLQ queue may live on another shard); `None`
/// when no redirect applies. An unknown group is SUBSCRIPTION_GROUP_NOT_EXIST unless groups
/// are auto-created (Java's `handleRetryAndDLQ`).
fn redirect_to_dlq(
    ctx: &SendContext<'_>,
    request: &RemotingCommand,
    origin: RequestOrigin,
    header: &SendMessageRequestHeader,
) -> Option<Outcome> {
    let group = header.topic.strip_prefix(RETRY_GROUP_TOPIC_PREFIX)?;
    let group_max = match ctx.view.groups.get(group) {
        Some(config) => config.retry_max_times,
        None if ctx.config.auto_create_subscription_group => DEFAULT_MAX_RECONSUME_TIMES,
        None => {
            let remark = format!(
                "subscription group not exist, {group}{}",
                super::faq_suggest(super::FAQ_SUBSCRIPTION_GROUP_NOT_EXIST)
            );
            let code = ResponseCode::SubscriptionGroupNotExist;
            return Some(respond_error(request, code, remark));
        }
    };
    let max = match header.max_reconsume_times {
        Some(max) if request.version >= VERSION_WITH_MAX_RECONSUME_TIMES && max >= 0 => max,
        _ => group_max,
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
    Some(Outcome::Reroute {
        request: redirected,
        origin,
    })
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
/// missing (step 4); POP_CK is dropped. The client's well-formed entries are copied in order
/// straight into the output. Returns it with where the UNIQ_KEY's value lies in it (the
/// client's last one, or the generated one), so a response reads it without another scan.
fn stored_properties(ctx: &SendContext<'_>, client_properties: &[u8]) -> (Vec<u8>, Range<usize>) {
    let config = ctx.config;
    let trace_on = if config.trace_on { "true" } else { "false" };
    // What the broker adds when the client did not send it.
    let added = [
        (property::MSG_REGION, config.region_id.as_str()),
        (property::TRACE_ON, trace_on),
        (property::CLUSTER, config.broker_cluster_name.as_str()),
    ];
    let mut present = [false; 3];
    let mut uniq_key = None;
    let mut out = Vec::with_capacity(client_properties.len() + STORED_PROPERTIES_EXTRA_BYTES);
    for (k, v) in PropertiesIter::new(client_properties) {
        if k == property::POP_CK.as_bytes() {
            continue;
        }
        for ((name, _), seen) in added.iter().zip(present.iter_mut()) {
            *seen |= k == name.as_bytes();
        }
        let value_at = push_property(&mut out, k, v);
        if k == property::UNIQ_KEY.as_bytes() {
            uniq_key = Some(value_at..value_at + v.len());
        }
    }
    let uniq_key = uniq_key.unwrap_or_else(|| {
        let generated = ctx.uniq_keys.borrow_mut().next_id(ctx.now_ms);
        let value_at = push_property(
            &mut out,
            property::UNIQ_KEY.as_bytes(),
            generated.as_bytes(),
        );
        value_at..value_at + generated.len()
    });
    for ((name, value), seen) in added.into_iter().zip(present) {
        if !seen {
            push_property(&mut out, name.as_bytes(), value.as_bytes());
        }
    }
    (out, uniq_key)
}

/// Room reserved beyond the client's properties for what the broker adds (a generated
/// UNIQ_KEY, MSG_REGION, TRACE_ON, CLUSTER with typical values), so the output rarely grows.
const STORED_PROPERTIES_EXTRA_BYTES: usize = 96;

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

/// One message, or one item of a batch, ready to be stored: its properties as stored (owned,
/// borrowed by its record) and where its UNIQ_KEY lies in them.
struct StoredItem<'a> {
    flag: i32,
    body: &'a [u8],
    properties: Vec<u8>,
    uniq_key: Range<usize>,
}

impl StoredItem<'_> {
    /// The UNIQ_KEY as stored (the client's last one, or the one the broker generated).
    fn uniq_key(&self) -> String {
        String::from_utf8_lossy(&self.properties[self.uniq_key.clone()]).into_owned()
    }
}

/// The messages a send carries: the batch's items, or the one message.
fn stored_items<'a>(
    ctx: &SendContext<'_>,
    request: &'a RemotingCommand,
    header: &SendMessageRequestHeader,
) -> Result<Vec<StoredItem<'a>>, Outcome> {
    let illegal = |remark: String| respond_error(request, ResponseCode::MessageIllegal, remark);
    if !header.is_batch() {
        let client_properties = header.properties.as_deref().unwrap_or_default();
        let (properties, uniq_key) = stored_properties(ctx, client_properties.as_bytes());
        return Ok(vec![StoredItem {
            flag: header.flag,
            body: &request.body,
            properties,
            uniq_key,
        }]);
    }
    let mut items = Vec::new();
    for item in BatchIter::new(&request.body) {
        let item = item.map_err(|e| illegal(format!("bad batch body: {e}")))?;
        if item.properties.len() > MAX_PROPERTIES_LEN {
            return Err(illegal(format!(
                "batch item properties over {MAX_PROPERTIES_LEN} bytes"
            )));
        }
        let (properties, uniq_key) = stored_properties(ctx, item.properties);
        items.push(StoredItem {
            flag: item.flag,
            body: item.body,
            properties,
            uniq_key,
        });
    }
    if items.is_empty() {
        return Err(illegal("empty batch".to_string()));
    }
    Ok(items)
}

/// What every record of a send shares: the header's fields, the hosts, the sysflag.
fn record_template<'a>(
    ctx: &SendContext<'_>,
    peer: SocketAddr,
    header: &'a SendMessageRequestHeader,
    topic_config: &TopicConfig,
) -> Record<'a> {
    let mut sys_flag = header.sys_flag & !sysflag::TRANSACTION_MASK;
    if topic_config.topic_filter_type == TopicFilterType::MultiTag {
        sys_flag |= sysflag::MULTI_TAGS;
    }
    Record {
        queue_id: header.queue_id,
        flag: header.flag,
        queue_offset: 0,
        physical_offset: 0,
        sys_flag,
        born_timestamp: header.born_timestamp,
        born_host: ipv4_host(peer),
        store_timestamp: 0,
        store_host: ctx.store_host,
        reconsume_times: header.reconsume_times.unwrap_or(0),
        prepared_transaction_offset: 0,
        body: &[],
        topic: header.topic.as_bytes(),
        properties: &[],
    }
}

/// The records to append: the items as they are, or (a delay level or timer) each held in its
/// system topic (`crate::schedule`).
fn records_of<'a>(
    template: &Record<'a>,
    items: &'a [StoredItem<'a>],
    held: Option<&'a [schedule::Held]>,
) -> Vec<Record<'a>> {
    match held {
        Some(held) => items
            .iter()
            .zip(held)
            .map(|(item, h)| Record {
                flag: item.flag,
                body: item.body,
                properties: &h.properties,
                topic: h.topic.as_bytes(),
                queue_id: h.queue_id,
                ..*template
            })
            .collect(),
        None => items
            .iter()
            .map(|item| Record {
                flag: item.flag,
                body: item.body,
                properties: &item.properties,
                ..*template
            })
            .collect(),
    }
}

async fn store_and_respond(
    ctx: &SendContext<'_>,
    peer: SocketAddr,
    origin: RequestOrigin,
    request: &RemotingCommand,
    header: &SendMessageRequestHeader,
    topic_config: &TopicConfig,
) -> Outcome {
    let template = record_template(ctx, peer, header, topic_config);
    let items = match stored_items(ctx, request, header) {
        Ok(items) => items,
        Err(refusal) => return refusal,
    };
    let held = match hold_scheduled(ctx, request, header, &items) {
        Ok(held) => held,
        Err(refusal) => return refusal,
    };
    let records = records_of(&template, &items, held.as_deref());
    // A half message (reference §6) goes to the half topic instead (`crate::transaction`); the
    // response below is the same, carrying the half record's offsets, as Java's does.
    let appended = if !header.is_batch() && is_transactional(header) {
        let group = &header.producer_group;
        ctx.transaction
            .append_half(ctx.store, &records[0], group)
            .await
    } else {
        ctx.store.append(&records).await
    };
    let outcome = match appended {
        Ok(outcome) => outcome,
        Err(e) => return store_error(request, e),
    };
    let bytes: u64 = outcome.records.iter().map(|r| u64::from(r.size)).sum();
    ctx.counters
        .add_put(&header.topic, outcome.records.len() as u64, bytes);
    count_dead_letters(ctx.counters, &header.topic, &items);
    if outcome.status == AppendStatus::PutOk && origin == RequestOrigin::SendBack {
        count_send_back(ctx.counters, &header.topic, &items);
    }
    let code = match outcome.status {
        // SYNC_MASTER: one wait for the slave's cumulative ACK past this batch's end, shared
        // with every send behind the same ACK (Java's handleHA; 11 and 12 still carry the ids).
        AppendStatus::PutOk => {
            let last = outcome.records.last().expect("a non-empty batch");
            let end = last.physical_offset + u64::from(last.size);
            replication_code(ctx.ha.replicate(end).await)
        }
        AppendStatus::FlushDiskTimeout => ResponseCode::FlushDiskTimeout,
    };
    let transaction_id = (!header.is_batch()).then(|| items[0].uniq_key());
    Outcome::Respond(send_response(
        ctx,
        request,
        (header.queue_id, code),
        &outcome,
        transaction_id,
    ))
}

/// Messages stored into `%DLQ%<group>` (a send-back past its retries, or a `%RETRY%` send
/// diverted there) count for `rocketmq_send_to_dlq_messages_total` and DLQ_PUT_NUMS, under
/// the group and the message's original topic (RETRY_TOPIC, which every send-back carries).
fn count_dead_letters(counters: &RequestCounters, topic: &str, items: &[StoredItem<'_>]) {
    let Some(group) = topic.strip_prefix(DLQ_GROUP_TOPIC_PREFIX) else {
        return;
    };
    for item in items {
        let original = find_property(&item.properties, property::RETRY_TOPIC)
            .and_then(|t| std::str::from_utf8(t).ok())
            .unwrap_or(topic);
        counters.stats.on_dlq(original, group, 1);
    }
}

/// A send-back ([`RequestOrigin::SendBack`]) stored into `%RETRY%<group>` or `%DLQ%<group>` counts for SNDBCK_PUT_NUMS under
/// the group and the message's original topic (`RETRY_TOPIC`), as Java's `incSendBackNums`
/// after PUT_OK.
fn count_send_back(counters: &RequestCounters, topic: &str, items: &[StoredItem<'_>]) {
    let group = topic
        .strip_prefix(RETRY_GROUP_TOPIC_PREFIX)
        .or_else(|| topic.strip_prefix(DLQ_GROUP_TOPIC_PREFIX));
    let Some(group) = group else {
        return;
    };
    for item in items {
        let original = find_property(&item.properties, property::RETRY_TOPIC)
            .and_then(|t| std::str::from_utf8(t).ok())
            .unwrap_or(topic);
        counters.stats.on_send_back(original, group, 1);
    }
}

/// A message with a delay level or timer properties is held in a system topic of this shard
/// until due (`crate::schedule`); a batch follows its header's properties as Java's schedule
/// hook does (`schedule::hold_batch`). `None`: store the items as they are.
fn hold_scheduled(
    ctx: &SendContext<'_>,
    request: &RemotingCommand,
    header: &SendMessageRequestHeader,
    items: &[StoredItem<'_>],
) -> Result<Option<Vec<schedule::Held>>, Outcome> {
    let client = header.properties.as_deref().unwrap_or_default().as_bytes();
    let (config, topic, queue_id) = (&ctx.config.schedule, &header.topic, header.queue_id);
    let held = if header.is_batch() {
        let stored = items.iter().map(|item| item.properties.as_slice());
        schedule::hold_batch(config, client, stored, topic, queue_id, ctx.now_ms)
    } else if is_transactional(header) {
        // Java schedules only ordinary and committed messages; a half message is not held here.
        Ok(None)
    } else {
        let stored = &items[0].properties;
        schedule::hold(config, client, stored, topic, queue_id, ctx.now_ms)
            .map(|h| h.map(|h| vec![h]))
    };
    held.map_err(|e| {
        let remark = match e {
            schedule::PlanError::DelayedBatch => message_illegal_remark(ctx.config),
            ref e => e.to_string(),
        };
        respond_error(request, e.response_code(), remark)
    })
}

/// Java's remark for a message its store calls illegal (`handlePutMessageResult`).
fn message_illegal_remark(config: &BrokerConfig) -> String {
    format!(
        "the message is illegal, maybe msg body or properties length not matched. msg body \
         length limit {}B, msg properties length limit 32KB.",
        config.max_message_size_bytes
    )
}

/// `code` (SUCCESS, FLUSH_DISK_TIMEOUT, SLAVE_NOT_AVAILABLE or FLUSH_SLAVE_TIMEOUT) with the
/// offsetMsgIds of what was stored, the queue and its first offset, and the fields Java adds.
fn send_response(
    ctx: &SendContext<'_>,
    request: &RemotingCommand,
    (queue_id, code): (i32, ResponseCode),
    outcome: &AppendOutcome,
    transaction_id: Option<String>,
) -> RemotingCommand {
    let msg_ids: Vec<String> = outcome
        .records
        .iter()
        .map(|r| encode_offset_msg_id(ctx.store_host, r.physical_offset as i64))
        .collect();
    let first = outcome
        .records
        .first()
        .expect("a non-empty batch stores records");
    let mut response_header =
        SendMessageResponseHeader::new(msg_ids.join(","), queue_id, first.queue_offset as i64);
    response_header.msg_region = Some(ctx.config.region_id.clone());
    response_header.trace_on = Some(ctx.config.trace_on);
    response_header.transaction_id = transaction_id;
    let mut response = RemotingCommand::response_to(request, code.code(), None);
    response.set_header(&response_header);
    response.body = Bytes::new();
    response
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

#[cfg(test)]
mod tests;
