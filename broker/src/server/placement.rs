//! The placement table: for every request code, where it runs and which handler serves it.
//! Routing (which shard) and dispatch (which handler) both read this one table, so they cannot
//! disagree; a test walks every known code.
//!
//! * [`Placement::QueueOwner`]: about one queue (pull, offsets of a queue): the queue's owner,
//!   [`crate::shard_map::shard_of`].
//! * [`Placement::SendQueueOwner`]: a send: its queue's owner, or where it arrived when the
//!   broker picks the queue (`queueId < 0`); the send handler then reroutes it.
//! * [`Placement::OffsetOwner`]: names a commit-log offset, whose bits 48–55 are its shard.
//! * [`Placement::Metadata`]: broker-wide state (client registrations, topic and broker
//!   config): the metadata shard, 0.
//! * [`Placement::Receiving`]: anywhere; served where it arrived.
//!
//! A request whose placement fields are missing or unparsable is served where it arrived, and
//! its handler answers the typed header's error.

use ringmq_proto::code::RequestCode;
use ringmq_proto::command::RemotingCommand;
use ringmq_proto::header::routing::{self, OffsetField};

use crate::shard_map::{shard_of, ShardId};

/// The shard that owns broker-wide metadata.
pub const METADATA_SHARD: ShardId = ShardId(0);

/// Where a request runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    QueueOwner,
    SendQueueOwner,
    OffsetOwner(OffsetField),
    Metadata,
    Receiving,
}

/// Which handler serves a request (the dispatch arm in `server::dispatch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    Send,
    Pull,
    GetMaxOffset,
    GetMinOffset,
    SearchOffsetByTimestamp,
    GetEarliestMsgStoretime,
    QueryConsumerOffset,
    UpdateConsumerOffset,
    ViewMessageById,
    QueryMessage,
    ConsumerSendMsgBack,
    ConsumeMessageDirectly,
    CheckClientConfig,
    GetBrokerRuntimeInfo,
    EndTransaction,
    /// Admin codes that gather every shard's part (processor::stats).
    Admin(AdminHandler),
    GetAllDelayOffset,
    /// Served with `&mut Metadata` on the metadata shard.
    Meta(MetaHandler),
    NotSupported,
}

/// Admin and statistics handlers served where the request arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminHandler {
    GetTopicStatsInfo,
    GetConsumeStats,
    GetAllConsumerOffset,
    InvokeBrokerToResetOffset,
    QueryTopicConsumeByWho,
    QueryTopicsByConsumer,
    ViewBrokerStatsData,
}

/// Handlers of broker-wide state; they run only on the metadata shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaHandler {
    HeartBeat,
    UnregisterClient,
    GetConsumerListByGroup,
    LockBatchMq,
    UnlockBatchMq,
    UpdateAndCreateTopic,
    DeleteTopicInBroker,
    GetAllTopicConfig,
    UpdateBrokerConfig,
    GetBrokerConfig,
    GetConsumerConnectionList,
    GetProducerConnectionList,
    UpdateAndCreateSubscriptionGroup,
    GetAllSubscriptionGroupConfig,
    DeleteSubscriptionGroup,
    GetConsumerRunningInfo,
    InvokeBrokerToGetConsumerStatus,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub placement: Placement,
    pub handler: Handler,
}

/// The table.
pub fn entry(code: RequestCode) -> Entry {
    use AdminHandler as A;
    use Handler as H;
    use MetaHandler as M;
    use Placement as P;
    use RequestCode as C;
    let (placement, handler) = match code {
        C::SendMessage | C::SendMessageV2 | C::SendBatchMessage => (P::SendQueueOwner, H::Send),
        C::PullMessage | C::LitePullMessage => (P::QueueOwner, H::Pull),
        C::GetMaxOffset => (P::QueueOwner, H::GetMaxOffset),
        C::GetMinOffset => (P::QueueOwner, H::GetMinOffset),
        C::SearchOffsetByTimestamp => (P::QueueOwner, H::SearchOffsetByTimestamp),
        C::GetEarliestMsgStoretime => (P::QueueOwner, H::GetEarliestMsgStoretime),
        C::QueryConsumerOffset => (P::QueueOwner, H::QueryConsumerOffset),
        C::UpdateConsumerOffset => (P::QueueOwner, H::UpdateConsumerOffset),
        C::ViewMessageById => (P::OffsetOwner(OffsetField::Offset), H::ViewMessageById),
        C::ConsumerSendMsgBack => (P::OffsetOwner(OffsetField::Offset), H::ConsumerSendMsgBack),
        C::ConsumeMessageDirectly => (
            P::OffsetOwner(OffsetField::MsgId),
            H::ConsumeMessageDirectly,
        ),
        C::EndTransaction => (
            P::OffsetOwner(OffsetField::CommitLogOffset),
            H::EndTransaction,
        ),
        C::QueryMessage => (P::Receiving, H::QueryMessage),
        C::CheckClientConfig => (P::Receiving, H::CheckClientConfig),
        C::GetBrokerRuntimeInfo => (P::Receiving, H::GetBrokerRuntimeInfo),
        C::HeartBeat => (P::Metadata, H::Meta(M::HeartBeat)),
        C::UnregisterClient => (P::Metadata, H::Meta(M::UnregisterClient)),
        C::GetConsumerListByGroup => (P::Metadata, H::Meta(M::GetConsumerListByGroup)),
        C::LockBatchMq => (P::Metadata, H::Meta(M::LockBatchMq)),
        C::UnlockBatchMq => (P::Metadata, H::Meta(M::UnlockBatchMq)),
        C::UpdateAndCreateTopic => (P::Metadata, H::Meta(M::UpdateAndCreateTopic)),
        C::DeleteTopicInBroker => (P::Metadata, H::Meta(M::DeleteTopicInBroker)),
        C::GetAllTopicConfig => (P::Metadata, H::Meta(M::GetAllTopicConfig)),
        C::UpdateBrokerConfig => (P::Metadata, H::Meta(M::UpdateBrokerConfig)),
        C::GetBrokerConfig => (P::Metadata, H::Meta(M::GetBrokerConfig)),
        C::GetConsumerConnectionList => (P::Metadata, H::Meta(M::GetConsumerConnectionList)),
        C::GetProducerConnectionList => (P::Metadata, H::Meta(M::GetProducerConnectionList)),
        C::GetTopicStatsInfo => (P::Receiving, H::Admin(A::GetTopicStatsInfo)),
        C::GetConsumeStats => (P::Receiving, H::Admin(A::GetConsumeStats)),
        C::GetAllConsumerOffset => (P::Receiving, H::Admin(A::GetAllConsumerOffset)),
        C::InvokeBrokerToResetOffset => (P::Receiving, H::Admin(A::InvokeBrokerToResetOffset)),
        C::QueryTopicConsumeByWho => (P::Receiving, H::Admin(A::QueryTopicConsumeByWho)),
        C::QueryTopicsByConsumer => (P::Receiving, H::Admin(A::QueryTopicsByConsumer)),
        C::ViewBrokerStatsData => (P::Receiving, H::Admin(A::ViewBrokerStatsData)),
        C::GetAllDelayOffset => (P::Receiving, H::GetAllDelayOffset),
        C::UpdateAndCreateSubscriptionGroup => {
            (P::Metadata, H::Meta(M::UpdateAndCreateSubscriptionGroup))
        }
        C::GetAllSubscriptionGroupConfig => {
            (P::Metadata, H::Meta(M::GetAllSubscriptionGroupConfig))
        }
        C::DeleteSubscriptionGroup => (P::Metadata, H::Meta(M::DeleteSubscriptionGroup)),
        C::GetConsumerRunningInfo => (P::Metadata, H::Meta(M::GetConsumerRunningInfo)),
        C::InvokeBrokerToGetConsumerStatus => {
            (P::Metadata, H::Meta(M::InvokeBrokerToGetConsumerStatus))
        }
        _ => (P::Receiving, H::NotSupported),
    };
    Entry { placement, handler }
}

/// The shard that serves `request`, which arrived on shard `here` of `shards`.
pub fn shard_for(
    request: &RemotingCommand,
    placement: Placement,
    here: ShardId,
    shards: usize,
) -> ShardId {
    let ext = &request.ext_fields;
    let queue_owner = |(topic, queue): (Option<&str>, Option<i32>)| match (topic, queue) {
        (Some(topic), Some(queue_id)) if queue_id >= 0 => shard_of(topic, queue_id, shards),
        _ => here,
    };
    match placement {
        Placement::QueueOwner => queue_owner(routing::queue_target(ext)),
        Placement::SendQueueOwner => queue_owner(routing::send_target(ext)),
        Placement::OffsetOwner(field) => routing::commit_log_offset(ext, field)
            .and_then(crate::store::offset::shard_of)
            .map(usize::from)
            .filter(|shard| *shard < shards)
            .map_or(here, ShardId),
        Placement::Metadata => METADATA_SHARD,
        Placement::Receiving => here,
    }
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

    fn route(request: &RemotingCommand, here: ShardId, shards: usize) -> ShardId {
        let code = RequestCode::from_code(request.code);
        shard_for(request, entry(code).placement, here, shards)
    }

    /// Every code the broker serves; all others are answered REQUEST_CODE_NOT_SUPPORTED.
    const SERVED: &[RequestCode] = &[
        RequestCode::SendMessage,
        RequestCode::SendMessageV2,
        RequestCode::SendBatchMessage,
        RequestCode::PullMessage,
        RequestCode::LitePullMessage,
        RequestCode::GetMaxOffset,
        RequestCode::GetMinOffset,
        RequestCode::SearchOffsetByTimestamp,
        RequestCode::GetEarliestMsgStoretime,
        RequestCode::QueryConsumerOffset,
        RequestCode::UpdateConsumerOffset,
        RequestCode::ViewMessageById,
        RequestCode::ConsumerSendMsgBack,
        RequestCode::QueryMessage,
        RequestCode::CheckClientConfig,
        RequestCode::GetBrokerRuntimeInfo,
        RequestCode::EndTransaction,
        RequestCode::HeartBeat,
        RequestCode::UnregisterClient,
        RequestCode::GetConsumerListByGroup,
        RequestCode::LockBatchMq,
        RequestCode::UnlockBatchMq,
        RequestCode::UpdateAndCreateTopic,
        RequestCode::DeleteTopicInBroker,
        RequestCode::GetAllTopicConfig,
        RequestCode::UpdateBrokerConfig,
        RequestCode::GetBrokerConfig,
        RequestCode::GetConsumerConnectionList,
        RequestCode::GetProducerConnectionList,
        RequestCode::GetTopicStatsInfo,
        RequestCode::GetConsumeStats,
        RequestCode::GetAllConsumerOffset,
        RequestCode::InvokeBrokerToResetOffset,
        RequestCode::QueryTopicConsumeByWho,
        RequestCode::QueryTopicsByConsumer,
        RequestCode::ViewBrokerStatsData,
        RequestCode::GetAllDelayOffset,
        RequestCode::UpdateAndCreateSubscriptionGroup,
        RequestCode::GetAllSubscriptionGroupConfig,
        RequestCode::DeleteSubscriptionGroup,
        RequestCode::GetConsumerRunningInfo,
        RequestCode::ConsumeMessageDirectly,
        RequestCode::InvokeBrokerToGetConsumerStatus,
    ];

    #[test]
    fn every_code_has_one_row_and_metadata_handlers_run_on_the_metadata_shard() {
        for code in RequestCode::ALL {
            let Entry { placement, handler } = entry(*code);
            match handler {
                Handler::Meta(_) => assert_eq!(placement, Placement::Metadata, "{code:?}"),
                Handler::NotSupported => assert_eq!(placement, Placement::Receiving, "{code:?}"),
                _ => assert_ne!(placement, Placement::Metadata, "{code:?}"),
            }
            let served = handler != Handler::NotSupported;
            assert_eq!(served, SERVED.contains(code), "{code:?}");
        }
        let unknown = entry(RequestCode::from_code(9999));
        assert_eq!(unknown.handler, Handler::NotSupported);
    }

    #[test]
    fn queue_requests_go_to_the_queue_owner() {
        let here = ShardId(1);
        for q in 0..8 {
            let owner = shard_of("T", q, 4);
            let qs = q.to_string();
            for code in [RequestCode::PullMessage, RequestCode::QueryConsumerOffset] {
                let r = request(code, &[("topic", "T"), ("queueId", &qs)]);
                assert_eq!(route(&r, here, 4), owner);
            }
            let v2 = request(
                RequestCode::SendMessageV2,
                &[("a", "g"), ("b", "T"), ("e", &qs)],
            );
            assert_eq!(route(&v2, here, 4), owner);
            let long = request(
                RequestCode::SendMessage,
                &[("topic", "T"), ("queueId", &qs)],
            );
            assert_eq!(route(&long, here, 4), owner);
            // A V2 code with long names (no `a`) is read by its long names, and code 10 with
            // short names by its short names.
            let long_310 = request(
                RequestCode::SendMessageV2,
                &[("topic", "T"), ("queueId", &qs)],
            );
            assert_eq!(route(&long_310, here, 4), owner);
            let short_10 = request(
                RequestCode::SendMessage,
                &[("a", "g"), ("b", "T"), ("e", &qs)],
            );
            assert_eq!(route(&short_10, here, 4), owner);
        }
    }

    #[test]
    fn broker_picked_queues_bad_fields_and_unknown_codes_stay_where_they_arrived() {
        let here = ShardId(1);
        let picked = request(
            RequestCode::SendMessageV2,
            &[("a", "g"), ("b", "T"), ("e", "-1")],
        );
        assert_eq!(route(&picked, here, 2), here);
        let no_queue = request(RequestCode::SendBatchMessage, &[("a", "g"), ("b", "T")]);
        assert_eq!(route(&no_queue, here, 2), here);
        let unknown = RemotingCommand::new_request(9999, ExtFields::new(), Bytes::new());
        assert_eq!(route(&unknown, here, 2), here);
        let bad = request(
            RequestCode::PullMessage,
            &[("topic", "T"), ("queueId", "x")],
        );
        assert_eq!(route(&bad, here, 2), here);
        let no_topic = request(RequestCode::SendMessageV2, &[("a", "g"), ("e", "1")]);
        assert_eq!(route(&no_topic, here, 2), here);
        let hb = request(RequestCode::HeartBeat, &[]);
        assert_eq!(route(&hb, here, 2), METADATA_SHARD);
    }

    #[test]
    fn offsets_name_their_shard() {
        let view = |offset: &str| request(RequestCode::ViewMessageById, &[("offset", offset)]);
        let on_shard_1 = crate::store::offset::to_global(1, 77).to_string();
        assert_eq!(route(&view(&on_shard_1), ShardId(0), 2), ShardId(1));
        let back = request(RequestCode::ConsumerSendMsgBack, &[("offset", &on_shard_1)]);
        assert_eq!(route(&back, ShardId(0), 2), ShardId(1));
        // A shard this broker does not have, or no offset: where it arrived.
        let on_shard_5 = crate::store::offset::to_global(5, 77).to_string();
        assert_eq!(route(&view(&on_shard_5), ShardId(0), 2), ShardId(0));
        assert_eq!(route(&view("-1"), ShardId(1), 2), ShardId(1));
        // END_TRANSACTION by its commitLogOffset (an `offset` field does not count).
        let end = |offset: &str| {
            let fields = [("commitLogOffset", offset), ("offset", "0")];
            request(RequestCode::EndTransaction, &fields)
        };
        assert_eq!(route(&end(&on_shard_1), ShardId(0), 2), ShardId(1));
        assert_eq!(route(&end("x"), ShardId(1), 2), ShardId(1));
        // CONSUME_MESSAGE_DIRECTLY by the offset inside its msgId.
        let host = "10.0.0.1:10911".parse().unwrap();
        let id = ringmq_proto::message::ids::encode_offset_msg_id(
            host,
            crate::store::offset::to_global(1, 77) as i64,
        );
        let direct = request(RequestCode::ConsumeMessageDirectly, &[("msgId", &id)]);
        assert_eq!(route(&direct, ShardId(0), 2), ShardId(1));
        let bad = request(RequestCode::ConsumeMessageDirectly, &[("msgId", "x")]);
        assert_eq!(route(&bad, ShardId(1), 2), ShardId(1));
    }
}
