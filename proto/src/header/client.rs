//! Client bookkeeping headers: HEART_BEAT (34) response, UNREGISTER_CLIENT (35),
//! CONSUMER_SEND_MSG_BACK (36), GET_CONSUMER_LIST_BY_GROUP (38),
//! NOTIFY_CONSUMER_IDS_CHANGED (40), LOCK/UNLOCK_BATCH_MQ (41/42) (reference §2.6–2.8).

use super::{command_header, EmptyHeader};

/// HEART_BEAT request: everything is in the body.
pub type HeartbeatRequestHeader = EmptyHeader;
/// LOCK_BATCH_MQ request: everything is in the body.
pub type LockBatchMqRequestHeader = EmptyHeader;
/// UNLOCK_BATCH_MQ request: everything is in the body.
pub type UnlockBatchMqRequestHeader = EmptyHeader;
/// CHECK_CLIENT_CONFIG request: everything is in the body.
pub type CheckClientConfigRequestHeader = EmptyHeader;

command_header! {
    /// HEART_BEAT response ext fields. Answer `is_support_heart_beat_v2 = Some(false)` (or
    /// `None`) unless heartbeat v2 is implemented. The response's `version` field, not a
    /// header, carries the broker version Java clients check.
    pub struct HeartbeatResponseHeader {
        is_support_heart_beat_v2: Option<bool> = "IS_SUPPORT_HEART_BEAT_V2",
        is_sub_change: Option<bool> = "IS_SUB_CHANGE",
    }
}

command_header! {
    /// UNREGISTER_CLIENT request.
    pub struct UnregisterClientRequestHeader {
        client_id: String = "clientID",
        producer_group: Option<String> = "producerGroup",
        consumer_group: Option<String> = "consumerGroup",
    }
}

command_header! {
    /// GET_CONSUMER_LIST_BY_GROUP request.
    pub struct GetConsumerListByGroupRequestHeader {
        consumer_group: String = "consumerGroup",
    }
}

command_header! {
    /// NOTIFY_CONSUMER_IDS_CHANGED request (broker → client, oneway).
    pub struct NotifyConsumerIdsChangedRequestHeader {
        consumer_group: String = "consumerGroup",
    }
}

command_header! {
    /// CONSUMER_SEND_MSG_BACK request: a failed message, by commit-log offset, goes to the
    /// group's retry (or dead-letter) topic.
    pub struct ConsumerSendMsgBackRequestHeader {
        /// Commit-log offset of the failed message.
        offset: i64 = "offset",
        group: String = "group",
        /// 0 = broker picks `3 + reconsumeTimes`; negative = straight to the DLQ.
        delay_level: i32 = "delayLevel",
        origin_msg_id: Option<String> = "originMsgId",
        origin_topic: Option<String> = "originTopic",
        unit_mode: bool = "unitMode" or false,
        max_reconsume_times: Option<i32> = "maxReconsumeTimes",
        broker_name: Option<String> = "bname",
    }
}
