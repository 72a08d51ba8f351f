//! Sends that need resolving before their owner shard is known (reference §2.3 steps 2–3):
//! the topic is unknown to this shard's read copy (auto-create it through the metadata shard),
//! or the client left the queue to the broker (`queueId < 0`: pick a random writable queue).
//! Once resolved, the request goes to the queue's owner like any other.

use std::rc::Rc;

use ringmq_proto::code::RequestCode;
use ringmq_proto::command::RemotingCommand;

use crate::metadata::topics::{
    validate_topic_name, NOT_ALLOWED_SEND_TOPICS, RETRY_GROUP_TOPIC_PREFIX,
};
use crate::metadata::ControlCall;
use crate::server::conn::ConnHandle;
use crate::server::route::{parse_queue_id, send_topic_and_queue};
use crate::server::shard::{serve, Forwarded, Shard, ShardMsg};
use crate::shard_map::shard_of;

/// Names of (topic, defaultTopic, defaultTopicQueueNums, queueId) for this send's code: V2
/// short names when the request carries `b`, else long names (reference §2.3).
fn field_names(request: &RemotingCommand) -> [&'static str; 4] {
    let v2 =
        request.code != RequestCode::SendMessage.code() && request.ext_fields.contains_key("b");
    if v2 {
        ["b", "c", "d", "e"]
    } else {
        ["topic", "defaultTopic", "defaultTopicQueueNums", "queueId"]
    }
}

pub async fn resolve_and_route(shard: Rc<Shard>, conn: ConnHandle, mut request: RemotingCommand) {
    let (topic, _) = send_topic_and_queue(&request);
    let Some(topic) = topic.map(str::to_owned) else {
        return serve(&shard, conn, request);
    };
    // Anything the send handler must refuse is refused where it arrived, with its code.
    if validate_topic_name(&topic).is_err() || NOT_ALLOWED_SEND_TOPICS.contains(&topic.as_str()) {
        return serve(&shard, conn, request);
    }
    let [_, default_topic_field, queue_nums_field, queue_id_field] = field_names(&request);
    let mut topic_config = shard.view().topics.get(&topic).cloned();
    if topic_config.is_none() {
        let (reply, answer) = flume::bounded(1);
        shard.control(ControlCall::CreateTopicOnSend {
            topic: topic.clone(),
            default_topic: request
                .ext_fields
                .get(default_topic_field)
                .unwrap_or_default()
                .to_string(),
            queue_nums: request
                .ext_fields
                .get(queue_nums_field)
                .and_then(parse_queue_id)
                .unwrap_or(0),
            group_topic: topic.starts_with(RETRY_GROUP_TOPIC_PREFIX),
            reply,
        });
        topic_config = match answer.recv_async().await {
            Ok(Ok(config)) => config,
            Ok(Err(e)) => {
                tracing::error!(topic, "auto-create failed: {e}");
                None
            }
            Err(_) => None, // the metadata shard is shutting down
        };
    }
    let Some(topic_config) = topic_config else {
        // The send handler answers TOPIC_NOT_EXIST (or why creation failed) on this shard.
        return serve(&shard, conn, request);
    };
    let requested = request
        .ext_fields
        .get(queue_id_field)
        .and_then(parse_queue_id)
        .unwrap_or(-1);
    let queue_id = if requested >= 0 || topic_config.write_queue_nums <= 0 {
        requested
    } else {
        let chosen = rand::random::<u32>() % topic_config.write_queue_nums as u32;
        request
            .ext_fields
            .insert(queue_id_field, chosen.to_string());
        chosen as i32
    };
    if queue_id < 0 {
        return serve(&shard, conn, request);
    }
    let owner = shard_of(&topic, queue_id, shard.shards);
    if owner == shard.id {
        serve(&shard, conn, request);
    } else {
        shard.send_to(owner, ShardMsg::Requests(vec![Forwarded { conn, request }]));
    }
}
