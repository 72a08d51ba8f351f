//! Topic and broker administration (reference §2.10): UPDATE_AND_CREATE_TOPIC,
//! DELETE_TOPIC_IN_BROKER, GET_ALL_TOPIC_CONFIG, UPDATE_BROKER_CONFIG, GET_BROKER_CONFIG, and
//! topic auto-creation on send. Served on the metadata shard: handlers take `&mut Metadata` and
//! return, besides their answer, the [`Announce`] the server carries out.

use bytes::Bytes;
use ringmq_proto::body::{perm, JsonBody, TopicConfig, TopicFilterType};
use ringmq_proto::code::ResponseCode;
use ringmq_proto::command::RemotingCommand;
use ringmq_proto::header::field;

use super::{bad_header, respond_error, success, Announce, CreateTopicRequest, Outcome};
use crate::config::{parse_properties, BrokerConfig};
use crate::metadata::topics::{validate_topic_name, NOT_ALLOWED_SEND_TOPICS};
use crate::metadata::{CreateTopicReply, Metadata};

/// Most queues a topic may have on this broker.
pub const TOPIC_QUEUE_NUMS_MAX: i32 = 1024;

/// A slave installs its master's topic table (metadata sync, Java's SlaveSynchronize): taken
/// whole when the master's data version differs.
pub fn replace_topics_from_master(
    meta: &mut Metadata,
    master: ringmq_proto::body::TopicConfigSerializeWrapper,
) -> Announce {
    match meta.topics.replace_from_master(master) {
        Ok(changed) => Announce::topics_changed(changed),
        Err(e) => {
            tracing::warn!("slave metadata sync: {e}");
            Announce::default()
        }
    }
}

pub fn update_and_create_topic(
    meta: &mut Metadata,
    request: &RemotingCommand,
) -> (Outcome, Announce) {
    let config = match topic_config_from_header(request) {
        Ok(config) => config,
        Err(outcome) => return (outcome, Announce::default()),
    };
    match meta.topics.update_or_create(config) {
        Ok(changed) => (
            Outcome::Respond(success(request)),
            Announce::topics_changed(changed),
        ),
        Err(e) => (
            respond_error(request, ResponseCode::SystemError, e.to_string()),
            Announce::default(),
        ),
    }
}

fn topic_config_from_header(request: &RemotingCommand) -> Result<TopicConfig, Outcome> {
    let ext = &request.ext_fields;
    let topic = field::string(ext, "topic").map_err(|e| bad_header(request, e))?;
    if let Err(remark) = validate_topic_name(&topic) {
        return Err(respond_error(
            request,
            ResponseCode::InvalidParameter,
            remark,
        ));
    }
    if NOT_ALLOWED_SEND_TOPICS.contains(&topic.as_str()) {
        return Err(respond_error(
            request,
            ResponseCode::InvalidParameter,
            format!("The topic[{topic}] is conflict with system topic."),
        ));
    }
    let read = field::i32(ext, "readQueueNums").map_err(|e| bad_header(request, e))?;
    let write = field::i32(ext, "writeQueueNums").map_err(|e| bad_header(request, e))?;
    let permission = field::i32(ext, "perm").map_err(|e| bad_header(request, e))?;
    let valid_queues = |n: i32| (1..=TOPIC_QUEUE_NUMS_MAX).contains(&n);
    if !valid_queues(read) || !valid_queues(write) {
        return Err(respond_error(
            request,
            ResponseCode::InvalidParameter,
            format!("readQueueNums and writeQueueNums must be 1..={TOPIC_QUEUE_NUMS_MAX}"),
        ));
    }
    if permission & !(perm::PRIORITY | perm::READ | perm::WRITE | perm::INHERIT) != 0 {
        return Err(respond_error(
            request,
            ResponseCode::InvalidParameter,
            format!("perm {permission} has bits other than 8|4|2|1"),
        ));
    }
    let mut config = TopicConfig::new(topic, read);
    config.write_queue_nums = write;
    config.perm = permission;
    config.topic_filter_type = field::opt_string(ext, "topicFilterType")
        .map(|t| TopicFilterType::from_name(&t))
        .unwrap_or(TopicFilterType::SingleTag);
    config.topic_sys_flag = field::opt_i32(ext, "topicSysFlag")
        .map_err(|e| bad_header(request, e))?
        .unwrap_or(0);
    config.order = field::opt_bool(ext, "order").unwrap_or(false);
    Ok(config)
}

pub fn delete_topic(meta: &mut Metadata, request: &RemotingCommand) -> (Outcome, Announce) {
    let topic = match field::string(&request.ext_fields, "topic") {
        Ok(topic) => topic,
        Err(e) => return (bad_header(request, e), Announce::default()),
    };
    if NOT_ALLOWED_SEND_TOPICS.contains(&topic.as_str()) {
        let remark = format!("The topic[{topic}] is conflict with system topic.");
        let refusal = respond_error(request, ResponseCode::InvalidParameter, remark);
        return (refusal, Announce::default());
    }
    match meta.topics.delete(&topic) {
        // Offsets of the topic are dropped by each shard when the new view no longer has it.
        Ok(existed) => (
            Outcome::Respond(success(request)),
            Announce::topics_changed(existed),
        ),
        Err(e) => (
            respond_error(request, ResponseCode::SystemError, e.to_string()),
            Announce::default(),
        ),
    }
}

pub fn all_topic_config(meta: &Metadata, request: &RemotingCommand) -> Outcome {
    let wrapper = meta.topics.wrapper();
    let mut response = success(request);
    response.ext_fields.insert(
        "totalTopicNum",
        wrapper.topic_config_table.len().to_string(),
    );
    Outcome::Respond(response.with_body(Bytes::from(wrapper.to_json().into_bytes())))
}

/// Keys UPDATE_BROKER_CONFIG may change at run time. Only the permission so far: it is what
/// operators flip for maintenance (RocketMQ's `updateBrokerConfig -k brokerPermission -v 4`).
const RUNTIME_KEYS: &[&str] = &["brokerPermission"];

pub fn update_broker_config(meta: &mut Metadata, request: &RemotingCommand) -> (Outcome, Announce) {
    let permission = match requested_permission(request) {
        Ok(permission) => permission,
        Err(refusal) => return (refusal, Announce::default()),
    };
    let mut announce = Announce::default();
    if let Some(permission) = permission {
        if meta.broker_permission != permission {
            meta.broker_permission = permission;
            if let Err(e) = meta.topics.touch() {
                tracing::error!("cannot persist the topic table: {e}");
            }
            tracing::info!(permission, "broker permission changed");
            announce = Announce::topics_changed(true);
        }
    }
    (Outcome::Respond(success(request)), announce)
}

/// The new `brokerPermission` an UPDATE_BROKER_CONFIG body asks for, if any; every other key is
/// refused.
fn requested_permission(request: &RemotingCommand) -> Result<Option<i32>, Outcome> {
    let Ok(text) = std::str::from_utf8(&request.body) else {
        let remark = "body is not UTF-8".to_string();
        return Err(respond_error(request, ResponseCode::SystemError, remark));
    };
    let properties = parse_properties(text).map_err(|e| {
        let remark = format!("string2Properties error: {e}");
        respond_error(request, ResponseCode::SystemError, remark)
    })?;
    let mut new_permission = None;
    for property in &properties {
        if !RUNTIME_KEYS.contains(&property.key.as_str()) {
            let remark = format!(
                "`{}` cannot be changed at run time; ringmq changes only {RUNTIME_KEYS:?}",
                property.key
            );
            return Err(respond_error(
                request,
                ResponseCode::InvalidParameter,
                remark,
            ));
        }
        match property.value.trim().parse::<i32>() {
            Ok(p) if p & !(perm::READ | perm::WRITE | perm::INHERIT) == 0 => {
                new_permission = Some(p)
            }
            _ => {
                let remark = format!(
                    "brokerPermission `{}` is not a permission (0..=7)",
                    property.value
                );
                return Err(respond_error(
                    request,
                    ResponseCode::InvalidParameter,
                    remark,
                ));
            }
        }
    }
    Ok(new_permission)
}

pub fn broker_config(meta: &Metadata, config: &BrokerConfig, request: &RemotingCommand) -> Outcome {
    let permission = meta.broker_permission;
    // The static configuration, with the permission as it is now.
    let mut text: String = config
        .to_properties()
        .lines()
        .filter(|line| !line.starts_with("brokerPermission="))
        .map(|line| format!("{line}\n"))
        .collect();
    text.push_str(&format!("brokerPermission={permission}\n"));
    Outcome::Respond(success(request).with_body(Bytes::from(text.into_bytes())))
}

/// Auto-creation on send, asked by the shard that serves the send (reference §2.3 step 2).
pub fn create_topic_on_send(
    meta: &mut Metadata,
    request: &CreateTopicRequest,
) -> (CreateTopicReply, Announce) {
    if let Some(existing) = meta.topics.get(&request.topic) {
        return (Ok(Some(existing.clone())), Announce::default());
    }
    let result = if request.group_topic {
        // One queue, as Java's `msgCheck` creates a missing `%RETRY%` topic (a heartbeat
        // creates it first, with the group's `retryQueueNums`); a DLQ has one queue too.
        meta.topics
            .ensure_group_topic(&request.topic, 1)
            .map(|(config, _)| Some(config))
    } else {
        meta.topics
            .create_on_send(&request.topic, &request.default_topic, request.queue_nums)
    };
    match result {
        Ok(Some(config)) => {
            tracing::info!(
                topic = request.topic,
                queues = config.write_queue_nums,
                "topic auto-created"
            );
            (Ok(Some(config)), Announce::topics_changed(true))
        }
        Ok(None) => (Ok(None), Announce::default()),
        Err(e) => (Err(e.to_string()), Announce::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processor::testing::{self, request, responded};
    use ringmq_proto::code::RequestCode;

    fn update_topic(topic: &str, queues: &str, perm: &str) -> RemotingCommand {
        let fields = [
            ("topic", topic),
            ("readQueueNums", queues),
            ("writeQueueNums", queues),
            ("perm", perm),
        ];
        request(RequestCode::UpdateAndCreateTopic, &fields, b"")
    }

    #[test]
    fn topics_are_created_changed_listed_and_deleted() {
        testing::run(|fx| async move {
            let mut meta = fx.metadata.borrow_mut();
            let (outcome, announce) =
                update_and_create_topic(&mut meta, &update_topic("T", "8", "6"));
            assert_eq!(responded(outcome).code, 0);
            assert_eq!(announce, Announce::topics_changed(true));
            let (_, same) = update_and_create_topic(&mut meta, &update_topic("T", "8", "6"));
            assert!(same.is_empty(), "an unchanged topic announces nothing");
            let all = request(RequestCode::GetAllTopicConfig, &[], b"");
            let response = responded(all_topic_config(&meta, &all));
            assert!(std::str::from_utf8(&response.body)
                .unwrap()
                .contains("\"T\""));
            let delete = request(RequestCode::DeleteTopicInBroker, &[("topic", "T")], b"");
            let (outcome, announce) = delete_topic(&mut meta, &delete);
            assert_eq!(responded(outcome).code, 0);
            assert!(announce.reregister);
            assert!(meta.topics.get("T").is_none());
        });
    }

    #[test]
    fn bad_topic_requests_are_refused() {
        testing::run(|fx| async move {
            let mut meta = fx.metadata.borrow_mut();
            let code = |(outcome, _): (Outcome, Announce)| responded(outcome).code;
            let invalid = ResponseCode::InvalidParameter.code();
            assert_eq!(
                code(update_and_create_topic(
                    &mut meta,
                    &update_topic("T", "0", "6")
                )),
                invalid
            );
            assert_eq!(
                code(update_and_create_topic(
                    &mut meta,
                    &update_topic("T", "4", "64")
                )),
                invalid
            );
            assert_eq!(
                code(update_and_create_topic(
                    &mut meta,
                    &update_topic("a b", "4", "6")
                )),
                invalid
            );
            let system = update_topic("SCHEDULE_TOPIC_XXXX", "4", "6");
            assert_eq!(code(update_and_create_topic(&mut meta, &system)), invalid);
            let missing = request(RequestCode::UpdateAndCreateTopic, &[("topic", "T")], b"");
            let c = code(update_and_create_topic(&mut meta, &missing));
            assert_eq!(c, ResponseCode::SystemError.code());
        });
    }

    #[test]
    fn the_broker_permission_changes_at_run_time_and_nothing_else_does() {
        testing::run(|fx| async move {
            let mut meta = fx.metadata.borrow_mut();
            let update =
                |body: &str| request(RequestCode::UpdateBrokerConfig, &[], body.as_bytes());
            let (outcome, announce) =
                update_broker_config(&mut meta, &update("brokerPermission=4"));
            assert_eq!(responded(outcome).code, 0);
            assert!(announce.reregister && announce.republish);
            assert_eq!(meta.broker_permission, 4);
            let get = request(RequestCode::GetBrokerConfig, &[], b"");
            let body = responded(broker_config(&meta, &fx.config, &get)).body;
            assert!(std::str::from_utf8(&body)
                .unwrap()
                .contains("brokerPermission=4\n"));
            let (outcome, _) = update_broker_config(&mut meta, &update("listenPort=1"));
            assert_eq!(
                responded(outcome).code,
                ResponseCode::InvalidParameter.code()
            );
            let (outcome, _) = update_broker_config(&mut meta, &update("brokerPermission=99"));
            assert_eq!(
                responded(outcome).code,
                ResponseCode::InvalidParameter.code()
            );
            assert_eq!(meta.broker_permission, 4);
        });
    }

    #[test]
    fn auto_creation_follows_the_default_topic_and_group_topics_get_one_queue() {
        testing::run(|fx| async move {
            let mut meta = fx.metadata.borrow_mut();
            let ask = |topic: &str, group_topic| CreateTopicRequest {
                topic: topic.to_string(),
                default_topic: crate::metadata::topics::AUTO_CREATE_TOPIC_KEY.to_string(),
                queue_nums: 4,
                group_topic,
            };
            let (created, announce) = create_topic_on_send(&mut meta, &ask("New", false));
            assert_eq!(created.unwrap().unwrap().write_queue_nums, 4);
            assert!(announce.reregister);
            let (again, announce) = create_topic_on_send(&mut meta, &ask("New", false));
            assert!(again.unwrap().is_some() && announce.is_empty());
            let (retry, _) = create_topic_on_send(&mut meta, &ask("%RETRY%g", true));
            assert_eq!(retry.unwrap().unwrap().write_queue_nums, 1);
            let (none, _) = create_topic_on_send(
                &mut meta,
                &CreateTopicRequest {
                    default_topic: "NoSuchDefault".to_string(),
                    ..ask("Other", false)
                },
            );
            assert_eq!(none, Ok(None));
        });
    }
}
