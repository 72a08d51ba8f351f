//! CONSUMER_SEND_MSG_BACK (36), reference §2.7: a message a consumer failed to process goes to
//! `%RETRY%<group>` (or `%DLQ%<group>` once its retries are used up).
//!
//! Served on the shard that holds the original record (the offset's shard bits). The record is
//! read there and turned into an ordinary SEND_MESSAGE request for the retry topic, which is
//! rerouted to that queue's owner like any send; its response (SUCCESS plus the send header
//! fields, which clients ignore here) answers the send-back. So the retry path reuses every
//! check and the DLQ redirect of the send path. The reroute carries
//! [`RequestOrigin::SendBack`], which the server hands to the send handler with the request, so
//! the send path counts `SNDBCK_PUT_NUMS` when it is stored; a client's send is always
//! [`RequestOrigin::Client`].
//!
//! The retry carries the DELAY level Java applies (`3 + reconsumeTimes` when the header says
//! 0, else the level asked for, clamped to the highest), so the send path holds it in
//! `SCHEDULE_TOPIC_XXXX` and the schedule service delivers it after that level's delay. The
//! maximum is the request's `maxReconsumeTimes`, else the group's `retryMaxTimes`.

use ringmq_proto::code::{RequestCode, ResponseCode};
use ringmq_proto::command::{RemotingCommand, SERVER_VERSION};
use ringmq_proto::header::{ConsumerSendMsgBackRequestHeader, SendMessageRequestHeader};
use ringmq_proto::message::ids::encode_offset_msg_id;
use ringmq_proto::message::properties::{encode_properties, PropertiesIter};
use ringmq_proto::message::property;
use ringmq_proto::message::record::DecodedRecord;

use super::{bad_header, respond_error, Outcome, RequestOrigin};
use crate::config::BrokerConfig;
use crate::metadata::topics::{dlq_topic, retry_topic};
use crate::metadata::BrokerView;
use crate::store::Store;

/// `maxReconsumeTimes` when the client does not say (Java's group `retryMaxTimes`).
const DEFAULT_MAX_RECONSUME_TIMES: i32 = 16;
/// Java's `SubscriptionGroupConfig` default `retryQueueNums`.
const DEFAULT_RETRY_QUEUE_NUMS: i32 = 1;
/// First retry level when the consumer leaves it to the broker: `3 + reconsumeTimes` (10 s).
const FIRST_RETRY_DELAY_LEVEL: i32 = 3;

/// `shard_id` is the serving shard: an offset that names another one is not found here.
/// Java's order: the group, the broker's permission, `retryQueueNums`, then the message.
pub async fn consumer_send_msg_back(
    config: &BrokerConfig,
    view: &BrokerView,
    store: &Store,
    shard_id: u8,
    request: &RemotingCommand,
) -> Outcome {
    let header = match request.decode_header::<ConsumerSendMsgBackRequestHeader>() {
        Ok(h) => h,
        Err(e) => return bad_header(request, e),
    };
    let group = match group_limits(config, view, &header, request) {
        Ok(group) => group,
        Err(refusal) => return refusal,
    };
    if !view.broker_writable() {
        let remark = format!(
            "the broker[{}] sending message is forbidden",
            config.advertised_addr()
        );
        return respond_error(request, ResponseCode::NoPermission, remark);
    }
    if group.retry_queue_nums <= 0 {
        // Java: a group without retry queues drops what its consumers send back.
        return Outcome::Respond(RemotingCommand::response_to(
            request,
            ResponseCode::Success.code(),
            None,
        ));
    }
    let not_found = || {
        respond_error(
            request,
            ResponseCode::SystemError,
            format!("look message by offset failed, {}", header.offset),
        )
    };
    let bytes = match super::lookup::own_record(store, shard_id, header.offset).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return not_found(),
        Err(e) => return respond_error(request, ResponseCode::SystemError, e),
    };
    let Ok(original) = DecodedRecord::decode(&bytes) else {
        return not_found();
    };
    if config.is_slave() {
        // Java gets this far on a slave too; its store then refuses the put, and the
        // send-back answers SYSTEM_ERROR with the put status as the remark.
        let remark = "SERVICE_NOT_AVAILABLE".to_string();
        return respond_error(request, ResponseCode::SystemError, remark);
    }
    // The retry topic normally exists (heartbeats create it with `retryQueueNums` queues); a
    // smaller existing one bounds the pick, since the send path checks the queue id.
    let group = GroupLimits {
        retry_queue_nums: view
            .topics
            .get(&retry_topic(&header.group))
            .map_or(group.retry_queue_nums, |t| {
                t.write_queue_nums.min(group.retry_queue_nums).max(1)
            }),
        ..group
    };
    let send = retry_send(config, &header, &original.record, group);
    let mut forwarded = request.clone();
    forwarded.code = RequestCode::SendMessage.code();
    forwarded.version = SERVER_VERSION;
    forwarded.ext_fields = Default::default();
    send.write_v1(&mut forwarded.ext_fields);
    forwarded.body = bytes::Bytes::copy_from_slice(original.record.body);
    // The origin, not a field of the request, says it is a send-back (SNDBCK_PUT_NUMS).
    Outcome::Reroute {
        request: forwarded,
        origin: RequestOrigin::SendBack,
    }
}

/// The send that stores a sent-back `record`: to `%RETRY%<group>` (a random one of its
/// `retryQueueNums` queues) with the retry's DELAY level, or to `%DLQ%<group>` queue 0.
fn retry_send(
    config: &BrokerConfig,
    header: &ConsumerSendMsgBackRequestHeader,
    record: &ringmq_proto::message::Record<'_>,
    group: GroupLimits,
) -> SendMessageRequestHeader {
    let max = group.max_reconsume_times;
    let to_dlq = record.reconsume_times >= max || header.delay_level < 0;
    let (topic, queue_id, queue_nums) = if to_dlq {
        (dlq_topic(&header.group), 0, 1)
    } else {
        let queue = rand::random::<u32>() % group.retry_queue_nums as u32;
        (
            retry_topic(&header.group),
            queue as i32,
            group.retry_queue_nums,
        )
    };
    let max_level = config.schedule.max_level() as i32;
    let delay_level = match header.delay_level {
        0 => (FIRST_RETRY_DELAY_LEVEL + record.reconsume_times).min(max_level),
        level => level.min(max_level),
    };
    let original_topic = String::from_utf8_lossy(record.topic).into_owned();
    let original_msg_id = header
        .origin_msg_id
        .clone()
        .unwrap_or_else(|| encode_offset_msg_id(record.store_host, record.physical_offset));
    let properties = retry_properties(
        record.properties,
        &original_topic,
        &original_msg_id,
        (!to_dlq).then_some(delay_level),
    );
    SendMessageRequestHeader {
        producer_group: header.group.clone(),
        topic,
        default_topic: crate::metadata::topics::AUTO_CREATE_TOPIC_KEY.to_string(),
        // Only a missing retry topic is created here (with one queue, as Java's `msgCheck`).
        default_topic_queue_nums: queue_nums,
        queue_id,
        sys_flag: record.sys_flag,
        born_timestamp: record.born_timestamp,
        flag: record.flag,
        properties: Some(properties),
        reconsume_times: Some(record.reconsume_times + 1),
        unit_mode: Some(header.unit_mode),
        // The send path diverts to the DLQ when reconsumeTimes > max, i.e. exactly when the
        // original's count reached max: the same rule as above.
        max_reconsume_times: Some(max),
        batch: Some(false),
        broker_name: None,
    }
}

/// What a send-back takes from the subscription group.
#[derive(Debug, Clone, Copy)]
struct GroupLimits {
    max_reconsume_times: i32,
    retry_queue_nums: i32,
}

/// Java: the group's `retryMaxTimes`, unless the request (version >= 3.4.9) names one, and its
/// `retryQueueNums`. An unknown group is SUBSCRIPTION_GROUP_NOT_EXIST unless groups are
/// auto-created (then Java's defaults apply).
fn group_limits(
    config: &BrokerConfig,
    view: &BrokerView,
    header: &ConsumerSendMsgBackRequestHeader,
    request: &RemotingCommand,
) -> Result<GroupLimits, Outcome> {
    let (group_max, retry_queue_nums) = match view.groups.get(&header.group) {
        Some(group) => (group.retry_max_times, group.retry_queue_nums),
        None if config.auto_create_subscription_group => {
            (DEFAULT_MAX_RECONSUME_TIMES, DEFAULT_RETRY_QUEUE_NUMS)
        }
        None => {
            let remark = format!(
                "subscription group not exist, {} {}",
                header.group,
                super::faq_suggest(super::FAQ_SUBSCRIPTION_GROUP_NOT_EXIST)
            );
            let code = ResponseCode::SubscriptionGroupNotExist;
            return Err(respond_error(request, code, remark));
        }
    };
    let max_reconsume_times = match header.max_reconsume_times {
        Some(max) if request.version >= 121 && max >= 0 => max,
        _ => group_max,
    };
    Ok(GroupLimits {
        max_reconsume_times,
        retry_queue_nums,
    })
}

/// The original properties plus RETRY_TOPIC (if absent), ORIGIN_MESSAGE_ID (if absent) and the
/// DELAY level (retry only); UNIQ_KEY is kept so the client sees the same message id.
fn retry_properties(
    original: &[u8],
    original_topic: &str,
    original_msg_id: &str,
    delay_level: Option<i32>,
) -> String {
    let mut pairs: Vec<(String, String)> = PropertiesIter::new(original)
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        // A retry is an ordinary message: no delay carried over, never a transaction half.
        .filter(|(k, _)| k != property::DELAY && k != property::TRAN_MSG)
        .collect();
    let has = |pairs: &Vec<(String, String)>, name: &str| pairs.iter().any(|(k, _)| k == name);
    if !has(&pairs, property::RETRY_TOPIC) {
        pairs.push((
            property::RETRY_TOPIC.to_string(),
            original_topic.to_string(),
        ));
    }
    if !has(&pairs, property::ORIGIN_MESSAGE_ID) {
        pairs.push((
            property::ORIGIN_MESSAGE_ID.to_string(),
            original_msg_id.to_string(),
        ));
    }
    if let Some(level) = delay_level {
        pairs.push((property::DELAY.to_string(), level.to_string()));
    }
    let mut encoded = Vec::new();
    encode_properties(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        &mut encoded,
    );
    String::from_utf8_lossy(&encoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processor::send::send_message;
    use crate::processor::testing::{self, request, rerouted, rerouted_from, responded};
    use ringmq_proto::message::ids::decode_offset_msg_id;

    fn send_back(offset: &str, delay_level: &str, max: &str) -> RemotingCommand {
        let fields = [
            ("offset", offset),
            ("group", "g"),
            ("delayLevel", delay_level),
            ("maxReconsumeTimes", max),
        ];
        let mut r = request(RequestCode::ConsumerSendMsgBack, &fields, b"");
        r.version = 121;
        r
    }

    #[test]
    fn a_failed_message_becomes_a_send_to_the_retry_topic_then_to_the_dlq() {
        testing::run(|fx| async move {
            fx.create_topic("T", 1);
            let (_, msg_id) = fx.put("T", 0, b"payload", "").await;
            let offset = decode_offset_msg_id(&msg_id)
                .unwrap()
                .commit_log_offset
                .to_string();
            let view = fx.view();
            let back = send_back(&offset, "0", "16");
            let outcome = consumer_send_msg_back(&fx.config, &view, &fx.store, 0, &back).await;
            let (send, origin) = rerouted_from(outcome);
            assert_eq!(origin, RequestOrigin::SendBack);
            assert_eq!(send.code, RequestCode::SendMessage.code());
            let header = SendMessageRequestHeader::read_any(&send.ext_fields).unwrap();
            assert_eq!(header.topic, "%RETRY%g");
            assert_eq!(header.reconsume_times, Some(1));
            let properties = header.properties.unwrap();
            assert!(properties.contains("DELAY\u{1}3\u{2}"), "{properties}");
            assert!(
                properties.contains("RETRY_TOPIC\u{1}T\u{2}"),
                "{properties}"
            );
            assert_eq!(&send.body[..], b"payload");
            // Nothing in the request itself says it is a send-back, only its origin: its
            // fields are exactly the send header's.
            let mut header_only = ringmq_proto::command::ExtFields::new();
            let header = SendMessageRequestHeader::read_any(&send.ext_fields).unwrap();
            header.write_v1(&mut header_only);
            assert_eq!(send.ext_fields, header_only);
            let to_dlq = send_back(&offset, "-1", "16");
            let outcome = consumer_send_msg_back(&fx.config, &view, &fx.store, 0, &to_dlq).await;
            let header = SendMessageRequestHeader::read_any(&rerouted(outcome).ext_fields).unwrap();
            assert_eq!(header.topic, "%DLQ%g");
        });
    }

    /// SNDBCK_PUT_NUMS of (`topic`, `group`) on the fixture's shard: (value, times).
    fn send_backs(fx: &testing::Fixture, topic: &str, group: &str) -> (u64, u64) {
        let groups = fx.counters.stats.shared().groups();
        groups
            .iter()
            .find(|((t, g), _)| t == topic && g == group)
            .map_or((0, 0), |(_, c)| c.send_back_nums.read())
    }

    #[test]
    fn a_stored_send_back_counts_for_its_group_and_original_topic_and_a_plain_retry_send_does_not()
    {
        testing::run(|fx| async move {
            fx.create_topic("T", 1);
            fx.create_topic("%RETRY%g", 1);
            let (_, msg_id) = fx.put("T", 0, b"payload", "").await;
            let offset = decode_offset_msg_id(&msg_id).unwrap().commit_log_offset;
            let view = fx.view();
            let back = send_back(&offset.to_string(), "0", "16");
            let outcome = consumer_send_msg_back(&fx.config, &view, &fx.store, 0, &back).await;
            let (send, origin) = rerouted_from(outcome);
            assert_eq!(
                send_backs(&fx, "T", "g"),
                (0, 0),
                "counted on the put, not before"
            );
            let ctx = fx.send_context(&view);
            let peer = "127.0.0.1:40000".parse().unwrap();
            let stored = responded(send_message(&ctx, peer, origin, &send).await);
            assert_eq!(stored.code, ResponseCode::Success.code());
            assert_eq!(send_backs(&fx, "T", "g"), (1, 1));
            // The same send from a client is no send-back, whatever its fields say: not even
            // with the ext field ringmq once marked send-backs with, in either header spelling.
            let mut forged = send.clone();
            forged.ext_fields.insert("ringmqSendBack", "1");
            let mut forged_v2 = forged.clone();
            forged_v2.code = RequestCode::SendMessageV2.code();
            forged_v2.ext_fields = Default::default();
            let header = SendMessageRequestHeader::read_any(&send.ext_fields).unwrap();
            header.write_v2(&mut forged_v2.ext_fields);
            forged_v2.ext_fields.insert("ringmqSendBack", "1");
            for from_client in [&send, &forged, &forged_v2] {
                let outcome = send_message(&ctx, peer, RequestOrigin::Client, from_client).await;
                assert_eq!(responded(outcome).code, ResponseCode::Success.code());
            }
            assert_eq!(
                fx.store.max_offset("%RETRY%g", 0),
                0,
                "all held for their delay"
            );
            assert_eq!(send_backs(&fx, "T", "g"), (1, 1));
            // Past the retries it goes to the DLQ, and counts as a send-back there too.
            let to_dlq = send_back(&offset.to_string(), "-1", "16");
            let outcome = consumer_send_msg_back(&fx.config, &view, &fx.store, 0, &to_dlq).await;
            let (send, origin) = rerouted_from(outcome);
            assert_eq!(origin, RequestOrigin::SendBack);
            let stored = responded(send_message(&ctx, peer, origin, &send).await);
            assert_eq!(stored.code, ResponseCode::Success.code());
            assert_eq!(send_backs(&fx, "T", "g"), (2, 2));
        });
    }

    #[test]
    fn a_slave_refuses_a_send_back_as_javas_store_does() {
        testing::run(|fx| async move {
            fx.create_topic("T", 1);
            let (_, msg_id) = fx.put("T", 0, b"payload", "").await;
            let offset = decode_offset_msg_id(&msg_id).unwrap().commit_log_offset;
            let mut config = fx.config.clone();
            config.broker_role = crate::config::BrokerRole::Slave;
            let back = send_back(&offset.to_string(), "0", "16");
            let outcome = consumer_send_msg_back(&config, &fx.view(), &fx.store, 0, &back).await;
            let response = responded(outcome);
            assert_eq!(response.code, ResponseCode::SystemError.code());
            assert_eq!(response.remark.as_deref(), Some("SERVICE_NOT_AVAILABLE"));
        });
    }

    #[test]
    fn the_groups_retry_queue_nums_picks_the_queue_and_zero_drops_the_message() {
        use ringmq_proto::body::SubscriptionGroupConfig;
        testing::run(|fx| async move {
            fx.create_topic("T", 1);
            let (_, msg_id) = fx.put("T", 0, b"p", "").await;
            let offset = decode_offset_msg_id(&msg_id).unwrap().commit_log_offset;
            let back = send_back(&offset.to_string(), "0", "16");
            let group = |retry_queue_nums| SubscriptionGroupConfig {
                retry_queue_nums,
                ..SubscriptionGroupConfig::new("g")
            };
            fx.metadata.borrow_mut().groups.upsert(group(3)).unwrap();
            fx.create_topic("%RETRY%g", 3);
            let view = fx.view();
            for _ in 0..16 {
                let outcome = consumer_send_msg_back(&fx.config, &view, &fx.store, 0, &back).await;
                let header =
                    SendMessageRequestHeader::read_any(&rerouted(outcome).ext_fields).unwrap();
                assert!((0..3).contains(&header.queue_id), "{}", header.queue_id);
            }
            // retryQueueNums = 0: Java answers SUCCESS and stores nothing.
            fx.metadata.borrow_mut().groups.upsert(group(0)).unwrap();
            let view = fx.view();
            let outcome = consumer_send_msg_back(&fx.config, &view, &fx.store, 0, &back).await;
            let response = responded(outcome);
            assert_eq!(response.code, ResponseCode::Success.code());
            assert_eq!(response.remark, None);
        });
    }

    #[test]
    fn an_unknown_offset_is_refused() {
        testing::run(|fx| async move {
            let view = fx.view();
            let back = send_back("123456", "0", "16");
            let outcome = consumer_send_msg_back(&fx.config, &view, &fx.store, 0, &back).await;
            assert_eq!(responded(outcome).code, ResponseCode::SystemError.code());
        });
    }

    #[test]
    fn the_groups_retry_max_times_applies_when_the_request_names_none() {
        testing::run(|fx| async move {
            fx.create_topic("T", 1);
            let (_, msg_id) = fx.put("T", 0, b"p", "").await;
            let offset = decode_offset_msg_id(&msg_id)
                .unwrap()
                .commit_log_offset
                .to_string();
            let group = ringmq_proto::body::SubscriptionGroupConfig {
                retry_max_times: 0,
                ..ringmq_proto::body::SubscriptionGroupConfig::new("g")
            };
            fx.metadata.borrow_mut().groups.upsert(group).unwrap();
            let view = fx.view();
            let fields = [
                ("offset", offset.as_str()),
                ("group", "g"),
                ("delayLevel", "0"),
            ];
            let back = request(RequestCode::ConsumerSendMsgBack, &fields, b"");
            let outcome = consumer_send_msg_back(&fx.config, &view, &fx.store, 0, &back).await;
            let header = SendMessageRequestHeader::read_any(&rerouted(outcome).ext_fields).unwrap();
            assert_eq!(
                header.topic, "%DLQ%g",
                "retryMaxTimes=0: straight to the DLQ"
            );
            // Without auto-creation an unknown group is refused as Java does.
            let mut config = fx.config.clone();
            config.auto_create_subscription_group = false;
            let fields = [
                ("offset", offset.as_str()),
                ("group", "nobody"),
                ("delayLevel", "0"),
            ];
            let back = request(RequestCode::ConsumerSendMsgBack, &fields, b"");
            let outcome = consumer_send_msg_back(&config, &view, &fx.store, 0, &back).await;
            let code = responded(outcome).code;
            assert_eq!(code, ResponseCode::SubscriptionGroupNotExist.code());
        });
    }
}
