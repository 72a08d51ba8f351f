//! The decision for one request (RocketMQ 4.9 `PlainAccessValidator.parse` +
//! `PlainPermissionManager.validate`/`checkPerm`), in Java's order: global whitelist, access key,
//! account whitelist, signature, the trace-topic exemption, admin codes, then each resource.

use std::net::IpAddr;

use ringmq_proto::acl;
use ringmq_proto::body::{HeartbeatData, JsonBody};
use ringmq_proto::code::RequestCode;
use ringmq_proto::command::ExtFields;

use super::config::{Account, AclConfig};
use super::perm::{check_permission, PUB, SUB};
use super::RETRY_GROUP_TOPIC_PREFIX;

/// Java's `TopicValidator.RMQ_SYS_TRACE_TOPIC`: sends to it skip the resource check, so message
/// traces work for any signed account.
pub const TRACE_TOPIC: &str = "RMQ_SYS_TRACE_TOPIC";

/// Codes that need an admin account (`Permission.ADMIN_CODE`).
pub const ADMIN_CODES: [RequestCode; 5] = [
    RequestCode::UpdateAndCreateTopic,
    RequestCode::UpdateBrokerConfig,
    RequestCode::DeleteTopicInBroker,
    RequestCode::UpdateAndCreateSubscriptionGroup,
    RequestCode::DeleteSubscriptionGroup,
];

/// What a request touches: a topic, or a group (a retry topic stands for its group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource<'a> {
    Topic(&'a str),
    Group(&'a str),
}

impl<'a> Resource<'a> {
    /// The resource a topic name stands for: `%RETRY%g` is group `g`.
    pub fn of_topic(topic: &'a str) -> Resource<'a> {
        match topic.strip_prefix(RETRY_GROUP_TOPIC_PREFIX) {
            Some(group) => Resource::Group(group),
            None => Resource::Topic(topic),
        }
    }
}

/// The request being decided, borrowed from the decoded frame.
#[derive(Debug, Clone, Copy)]
pub struct AclRequest<'a> {
    pub code: i32,
    pub ext_fields: &'a ExtFields,
    pub body: &'a [u8],
    pub remote_ip: IpAddr,
}

/// Why a request is refused. The message is Java's `AclException` text, which names the access
/// key and the resource but never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
}

fn refuse(message: String) -> Result<(), Refusal> {
    Err(Refusal { message })
}

/// Calls `need` with each resource and permission the request needs, as Java's `parse` lists
/// them. A resource whose field is absent is skipped (Java's `addResourceAndPerm(null, _)`).
/// A heartbeat body that does not decode is an error, as in Java.
pub fn needed_resources<'a>(
    request: &AclRequest<'a>,
    mut need: impl FnMut(Resource<'_>, u8) -> Result<(), Refusal>,
) -> Result<(), Refusal> {
    let ext = request.ext_fields;
    let group = |key: &str| ext.get(key).map(Resource::Group);
    let mut needs: [Option<(Resource<'a>, u8)>; 2] = [None, None];
    match RequestCode::from_code(request.code) {
        RequestCode::SendMessage => needs[0] = send_need(ext.get("topic"), ext.get("group")),
        // Java 4.9 lists SEND_MESSAGE_V2 only; a batch carries the same V2 header and gets the
        // same check here rather than passing unchecked.
        RequestCode::SendMessageV2 | RequestCode::SendBatchMessage => {
            needs[0] = send_need(ext.get("b"), ext.get("a"))
        }
        RequestCode::ConsumerSendMsgBack => needs[0] = group("group").map(|g| (g, SUB)),
        RequestCode::PullMessage => {
            needs[0] = ext.get("topic").map(|t| (Resource::of_topic(t), SUB));
            needs[1] = group("consumerGroup").map(|g| (g, SUB));
        }
        RequestCode::QueryMessage => {
            needs[0] = ext.get("topic").map(|t| (Resource::of_topic(t), SUB))
        }
        RequestCode::UnregisterClient | RequestCode::GetConsumerListByGroup => {
            needs[0] = group("consumerGroup").map(|g| (g, SUB))
        }
        RequestCode::UpdateConsumerOffset => {
            needs[0] = group("consumerGroup").map(|g| (g, SUB));
            needs[1] = ext.get("topic").map(|t| (Resource::of_topic(t), SUB));
        }
        RequestCode::HeartBeat => return heartbeat_needs(request.body, need),
        _ => {}
    }
    for (resource, perm) in needs.into_iter().flatten() {
        need(resource, perm)?;
    }
    Ok(())
}

/// A send needs PUB on its topic; a send to a retry topic (a consumer's send-back done as a
/// plain send) needs SUB on the sending group instead.
fn send_need<'a>(topic: Option<&'a str>, group: Option<&'a str>) -> Option<(Resource<'a>, u8)> {
    let topic = topic?;
    if topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) {
        group.map(|g| (Resource::Group(g), SUB))
    } else {
        Some((Resource::Topic(topic), PUB))
    }
}

fn heartbeat_needs(
    body: &[u8],
    mut need: impl FnMut(Resource<'_>, u8) -> Result<(), Refusal>,
) -> Result<(), Refusal> {
    let data = HeartbeatData::from_json(body).map_err(|e| Refusal {
        message: format!("heartbeat body: {e}"),
    })?;
    for consumer in &data.consumer_data_set {
        need(Resource::Group(&consumer.group_name), SUB)?;
        for subscription in &consumer.subscription_data_set {
            need(Resource::of_topic(&subscription.topic), SUB)?;
        }
    }
    Ok(())
}

/// Whether the request is a send to the trace topic (Java: the needed map holds
/// `RMQ_SYS_TRACE_TOPIC` with exactly PUB).
fn is_trace_send(request: &AclRequest<'_>) -> bool {
    let topic = match RequestCode::from_code(request.code) {
        RequestCode::SendMessage => request.ext_fields.get("topic"),
        RequestCode::SendMessageV2 | RequestCode::SendBatchMessage => request.ext_fields.get("b"),
        _ => None,
    };
    topic == Some(TRACE_TOPIC)
}

/// Decides one request against a configuration snapshot.
pub fn validate(config: &AclConfig, request: &AclRequest<'_>) -> Result<(), Refusal> {
    let ip = request.remote_ip;
    if config
        .global_white_remote_addresses
        .iter()
        .any(|p| p.matches(ip))
    {
        return Ok(());
    }
    let Some(access_key) = request.ext_fields.get(acl::ACCESS_KEY) else {
        return refuse("No accessKey is configured".to_string());
    };
    let Some(account) = config.accounts.get(access_key) else {
        return refuse(format!("No acl config for {access_key}"));
    };
    if account.white_remote_address.matches(ip) {
        return Ok(());
    }
    let signature = request.ext_fields.get(acl::SIGNATURE).unwrap_or("");
    if !acl::verify(
        &account.secret_key,
        request.ext_fields,
        request.body,
        signature,
    ) {
        return refuse(format!("Check signature failed for accessKey={access_key}"));
    }
    if is_trace_send(request) {
        return Ok(());
    }
    check_perm(account, request)
}

fn check_perm(account: &Account, request: &AclRequest<'_>) -> Result<(), Refusal> {
    let admin_code = ADMIN_CODES.iter().any(|c| c.code() == request.code);
    if admin_code && !account.admin {
        return refuse(format!(
            "Need admin permission for request code={}, but accessKey={} is not",
            request.code, account.access_key
        ));
    }
    // Java: an admin account with no topicPerms or groupPerms at all owns every resource.
    if account.admin && account.topic_perms.is_empty() && account.group_perms.is_empty() {
        return Ok(());
    }
    needed_resources(request, |resource, needed| {
        let (owned, shown) = match resource {
            Resource::Topic(t) => (
                account
                    .topic_perms
                    .get(t)
                    .copied()
                    .unwrap_or(account.default_topic_perm),
                ("topic", t),
            ),
            Resource::Group(g) => (
                account
                    .group_perms
                    .get(g)
                    .copied()
                    .unwrap_or(account.default_group_perm),
                ("group", g),
            ),
        };
        if check_permission(needed, owned) {
            Ok(())
        } else {
            refuse(format!("No default permission for {}:{}", shown.0, shown.1))
        }
    })
}
