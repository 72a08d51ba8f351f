//! Topic and broker administration (reference §2.10): UPDATE_AND_CREATE_TOPIC,
//! DELETE_TOPIC_IN_BROKER, GET_ALL_TOPIC_CONFIG, UPDATE_BROKER_CONFIG, GET_BROKER_CONFIG, and
//! topic auto-creation on send. Served on the metadata shard.

use std::cell::RefMut;
use std::rc::Rc;

use bytes::Bytes;
use ringmq_proto::body::{perm, JsonBody, TopicConfig, TopicFilterType};
use ringmq_proto::code::ResponseCode;
use ringmq_proto::command::RemotingCommand;
use ringmq_proto::header::field;

use super::client::announce;
use super::{bad_header, respond_error, success, Outcome};
use crate::config::parse_properties;
use crate::metadata::topics::{validate_topic_name, NOT_ALLOWED_SEND_TOPICS};
use crate::metadata::{CreateTopicReply, Metadata};
use crate::server::shard::Shard;

/// Most queues a topic may have on this broker.
pub const TOPIC_QUEUE_NUMS_MAX: i32 = 1024;

fn metadata(shard: &Shard) -> RefMut<'_, Metadata> {
    shard
        .metadata
        .as_ref()
        .expect("admin requests are routed to the metadata shard")
        .borrow_mut()
}

pub fn update_and_create_topic(shard: &Rc<Shard>, request: &RemotingCommand) -> Outcome {
    let config = match topic_config_from_header(request) {
        Ok(config) => config,
        Err(outcome) => return outcome,
    };
    let result = metadata(shard).topics.update_or_create(config);
    match result {
        Ok(changed) => {
            announce(shard, changed, changed);
            Outcome::Respond(success(request))
        }
        Err(e) => respond_error(request, ResponseCode::SystemError, e.to_string()),
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

pub fn delete_topic(shard: &Rc<Shard>, request: &RemotingCommand) -> Outcome {
    let topic = match field::string(&request.ext_fields, "topic") {
        Ok(topic) => topic,
        Err(e) => return bad_header(request, e),
    };
    if NOT_ALLOWED_SEND_TOPICS.contains(&topic.as_str()) {
        return respond_error(
            request,
            ResponseCode::InvalidParameter,
            format!("The topic[{topic}] is conflict with system topic."),
        );
    }
    let result = metadata(shard).topics.delete(&topic);
    match result {
        Ok(existed) => {
            // Offsets of the topic are dropped by each shard when the new view no longer has it.
            announce(shard, existed, existed);
            Outcome::Respond(success(request))
        }
        Err(e) => respond_error(request, ResponseCode::SystemError, e.to_string()),
    }
}

pub fn all_topic_config(shard: &Rc<Shard>, request: &RemotingCommand) -> Outcome {
    let wrapper = metadata(shard).topics.wrapper();
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

pub fn update_broker_config(shard: &Rc<Shard>, request: &RemotingCommand) -> Outcome {
    let text = match std::str::from_utf8(&request.body) {
        Ok(text) => text,
        Err(_) => {
            return respond_error(
                request,
                ResponseCode::SystemError,
                "body is not UTF-8".to_string(),
            )
        }
    };
    let properties = match parse_properties(text) {
        Ok(p) => p,
        Err(e) => {
            return respond_error(
                request,
                ResponseCode::SystemError,
                format!("string2Properties error: {e}"),
            )
        }
    };
    let mut new_permission = None;
    for property in &properties {
        if !RUNTIME_KEYS.contains(&property.key.as_str()) {
            return respond_error(
                request,
                ResponseCode::InvalidParameter,
                format!(
                    "`{}` cannot be changed at run time; ringmq changes only {RUNTIME_KEYS:?}",
                    property.key
                ),
            );
        }
        match property.value.trim().parse::<i32>() {
            Ok(p) if p & !(perm::READ | perm::WRITE | perm::INHERIT) == 0 => {
                new_permission = Some(p)
            }
            _ => {
                return respond_error(
                    request,
                    ResponseCode::InvalidParameter,
                    format!(
                        "brokerPermission `{}` is not a permission (0..=7)",
                        property.value
                    ),
                )
            }
        }
    }
    if let Some(permission) = new_permission {
        let changed = {
            let mut meta = metadata(shard);
            let changed = meta.broker_permission != permission;
            meta.broker_permission = permission;
            if changed {
                if let Err(e) = meta.topics.touch() {
                    tracing::error!("cannot persist the topic table: {e}");
                }
            }
            changed
        };
        if changed {
            tracing::info!(permission, "broker permission changed");
            announce(shard, true, true);
        }
    }
    Outcome::Respond(success(request))
}

pub fn broker_config(shard: &Rc<Shard>, request: &RemotingCommand) -> Outcome {
    let permission = metadata(shard).broker_permission;
    // The static configuration, with the permission as it is now.
    let mut text: String = shard
        .config
        .to_properties()
        .lines()
        .filter(|line| !line.starts_with("brokerPermission="))
        .map(|line| format!("{line}\n"))
        .collect();
    text.push_str(&format!("brokerPermission={permission}\n"));
    Outcome::Respond(success(request).with_body(Bytes::from(text.into_bytes())))
}

/// Auto-creation on send, called through a control call from the shard that resolves the send.
pub fn create_topic_on_send(
    shard: &Rc<Shard>,
    topic: &str,
    default_topic: &str,
    queue_nums: i32,
    group_topic: bool,
) -> CreateTopicReply {
    let result = {
        let mut meta = metadata(shard);
        if let Some(existing) = meta.topics.get(topic) {
            return Ok(Some(existing.clone()));
        }
        if group_topic {
            meta.topics
                .ensure_group_topic(topic)
                .map(|(config, _)| Some(config))
        } else {
            meta.topics.create_on_send(topic, default_topic, queue_nums)
        }
    };
    match result {
        Ok(Some(config)) => {
            tracing::info!(
                topic,
                queues = config.write_queue_nums,
                "topic auto-created"
            );
            announce(shard, true, true);
            Ok(Some(config))
        }
        Ok(None) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}
