//! Which shard serves a request.
//!
//! * Requests about one queue (send with a queue id, pull, offsets of a queue) go to the queue's
//!   owner, [`crate::shard_map::shard_of`].
//! * Requests about broker-wide state (client registrations, topic and broker config) go to the
//!   metadata owner, shard 0.
//! * A send without a queue id (`queueId < 0`, "broker picks") or to a topic this shard's read
//!   copy does not know is resolved first on the receiving shard ([`Route::ResolveSend`]).
//! * Everything else (unknown codes, malformed headers) is answered where it arrived.
//!
//! Routing reads only the raw ext fields, never a typed header: a request whose header is bad is
//! routed to where it arrived and the handler there answers the error.

use ringmq_proto::code::RequestCode;
use ringmq_proto::command::RemotingCommand;

use crate::shard_map::{shard_of, ShardId};

/// The shard that owns broker-wide metadata.
pub const METADATA_SHARD: ShardId = ShardId(0);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Serve on this shard (it may be the one the request arrived on).
    Shard(ShardId),
    /// A send whose queue or topic must be resolved before its owner is known.
    ResolveSend,
}

/// Whether a send header uses the V2 short names `a`..`n`: decided by the presence of `a`, for
/// any send code, exactly as `SendMessageRequestHeader::read_any` decides (C++ sends 310 with
/// either; Go sends 10 with long names).
pub fn uses_short_send_names(request: &RemotingCommand) -> bool {
    request.ext_fields.contains_key("a")
}

/// A send's topic and queue id, by the spelling its header uses.
pub fn send_topic_and_queue(request: &RemotingCommand) -> (Option<&str>, Option<&str>) {
    let ext = &request.ext_fields;
    if uses_short_send_names(request) {
        (ext.get("b"), ext.get("e"))
    } else {
        (ext.get("topic"), ext.get("queueId"))
    }
}

/// Decides where `request` is served. `here` is the receiving shard.
pub fn route(request: &RemotingCommand, here: ShardId, shards: usize) -> Route {
    let code = RequestCode::from_code(request.code);
    match code {
        RequestCode::SendMessage | RequestCode::SendMessageV2 | RequestCode::SendBatchMessage => {
            let (topic, queue) = send_topic_and_queue(request);
            match (topic, queue.and_then(parse_queue_id)) {
                (Some(topic), Some(queue_id)) if queue_id >= 0 => {
                    Route::Shard(shard_of(topic, queue_id, shards))
                }
                (Some(_), _) => Route::ResolveSend,
                (None, _) => Route::Shard(here),
            }
        }
        RequestCode::PullMessage
        | RequestCode::LitePullMessage
        | RequestCode::QueryConsumerOffset
        | RequestCode::UpdateConsumerOffset
        | RequestCode::GetMaxOffset
        | RequestCode::GetMinOffset
        | RequestCode::SearchOffsetByTimestamp
        | RequestCode::GetEarliestMsgStoretime => queue_owner(request, here, shards),
        RequestCode::HeartBeat
        | RequestCode::UnregisterClient
        | RequestCode::GetConsumerListByGroup
        | RequestCode::LockBatchMq
        | RequestCode::UnlockBatchMq
        | RequestCode::UpdateAndCreateTopic
        | RequestCode::DeleteTopicInBroker
        | RequestCode::GetAllTopicConfig
        | RequestCode::UpdateBrokerConfig
        | RequestCode::GetBrokerConfig => Route::Shard(METADATA_SHARD),
        // A commit-log offset names its shard in bits 48–55.
        RequestCode::ViewMessageById | RequestCode::ConsumerSendMsgBack => {
            offset_owner(request, here, shards)
        }
        _ => Route::Shard(here),
    }
}

fn queue_owner(request: &RemotingCommand, here: ShardId, shards: usize) -> Route {
    let ext = &request.ext_fields;
    match (
        ext.get("topic"),
        ext.get("queueId").and_then(parse_queue_id),
    ) {
        (Some(topic), Some(queue_id)) if queue_id >= 0 => {
            Route::Shard(shard_of(topic, queue_id, shards))
        }
        _ => Route::Shard(here),
    }
}

fn offset_owner(request: &RemotingCommand, here: ShardId, shards: usize) -> Route {
    let owner = request
        .ext_fields
        .get("offset")
        .and_then(|o| o.trim().parse::<i64>().ok())
        .and_then(crate::store::offset::shard_of)
        .map(usize::from)
        .filter(|shard| *shard < shards);
    Route::Shard(owner.map_or(here, ShardId))
}

/// Lenient as the typed headers are: whitespace and an integral `.0` (a JSON double).
pub fn parse_queue_id(text: &str) -> Option<i32> {
    let trimmed = text.trim();
    trimmed.strip_suffix(".0").unwrap_or(trimmed).parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use ringmq_proto::command::ExtFields;

    fn request(code: RequestCode, fields: &[(&str, &str)]) -> RemotingCommand {
        let mut ext = ExtFields::new();
        for (k, v) in fields {
            ext.insert(*k, *v);
        }
        RemotingCommand::new_request(code.code(), ext, Bytes::new())
    }

    #[test]
    fn queue_requests_go_to_the_queue_owner() {
        let here = ShardId(1);
        for q in 0..8 {
            let owner = shard_of("T", q, 4);
            let qs = q.to_string();
            let pull = request(
                RequestCode::PullMessage,
                &[("topic", "T"), ("queueId", &qs)],
            );
            assert_eq!(route(&pull, here, 4), Route::Shard(owner));
            let v2 = request(
                RequestCode::SendMessageV2,
                &[("a", "g"), ("b", "T"), ("e", &qs)],
            );
            assert_eq!(route(&v2, here, 4), Route::Shard(owner));
            let long = request(
                RequestCode::SendMessage,
                &[("topic", "T"), ("queueId", &qs)],
            );
            assert_eq!(route(&long, here, 4), Route::Shard(owner));
            // A V2 code with long names (no `a`) is read by its long names, and code 10 with
            // short names by its short names.
            let long_names_310 = request(
                RequestCode::SendMessageV2,
                &[("topic", "T"), ("queueId", &qs)],
            );
            assert_eq!(route(&long_names_310, here, 4), Route::Shard(owner));
            let short_names_10 = request(
                RequestCode::SendMessage,
                &[("a", "g"), ("b", "T"), ("e", &qs)],
            );
            assert_eq!(route(&short_names_10, here, 4), Route::Shard(owner));
            let v2_long = request(
                RequestCode::SendMessageV2,
                &[("topic", "T"), ("queueId", &qs)],
            );
            assert_eq!(route(&v2_long, here, 4), Route::Shard(owner));
        }
    }

    #[test]
    fn broker_picked_queue_is_resolved_first() {
        let send = request(
            RequestCode::SendMessageV2,
            &[("a", "g"), ("b", "T"), ("e", "-1")],
        );
        assert_eq!(route(&send, ShardId(1), 2), Route::ResolveSend);
        let no_queue = request(RequestCode::SendBatchMessage, &[("a", "g"), ("b", "T")]);
        assert_eq!(route(&no_queue, ShardId(1), 2), Route::ResolveSend);
    }

    #[test]
    fn metadata_and_bad_or_unknown_requests() {
        let here = ShardId(1);
        let hb = request(RequestCode::HeartBeat, &[]);
        assert_eq!(route(&hb, here, 2), Route::Shard(METADATA_SHARD));
        let unknown = RemotingCommand::new_request(9999, ExtFields::new(), Bytes::new());
        assert_eq!(route(&unknown, here, 2), Route::Shard(here));
        let bad = request(
            RequestCode::PullMessage,
            &[("topic", "T"), ("queueId", "x")],
        );
        assert_eq!(route(&bad, here, 2), Route::Shard(here));
        let no_topic = request(RequestCode::SendMessageV2, &[("a", "g"), ("e", "1")]);
        assert_eq!(route(&no_topic, here, 2), Route::Shard(here));
        assert_eq!(parse_queue_id(" 3.0 "), Some(3));
        let view = |offset: &str| request(RequestCode::ViewMessageById, &[("offset", offset)]);
        let on_shard_1 = crate::store::offset::to_global(1, 77).to_string();
        assert_eq!(
            route(&view(&on_shard_1), ShardId(0), 2),
            Route::Shard(ShardId(1))
        );
        let on_shard_5 = crate::store::offset::to_global(5, 77).to_string();
        assert_eq!(
            route(&view(&on_shard_5), ShardId(0), 2),
            Route::Shard(ShardId(0))
        );
        assert_eq!(route(&view("-1"), ShardId(1), 2), Route::Shard(ShardId(1)));
    }
}
