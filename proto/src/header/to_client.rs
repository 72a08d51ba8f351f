//! Requests the broker sends to clients over their own connections (reference §1.5), besides
//! CHECK_TRANSACTION_STATE and NOTIFY_CONSUMER_IDS_CHANGED.

use super::command_header;

command_header! {
    /// RESET_CONSUMER_CLIENT_OFFSET (220): reset a group's offsets to a point in time; the
    /// body holds the offset table.
    pub struct ResetOffsetRequestHeader {
        topic: String = "topic",
        group: String = "group",
        /// Milliseconds since the epoch.
        timestamp: i64 = "timestamp",
        is_force: bool = "isForce" or false,
        /// 5.x: reset one queue to `offset` instead.
        queue_id: Option<i32> = "queueId",
        offset: Option<i64> = "offset",
    }
}

command_header! {
    /// GET_CONSUMER_STATUS_FROM_CLIENT (221).
    pub struct GetConsumerStatusRequestHeader {
        topic: String = "topic",
        group: String = "group",
        client_addr: Option<String> = "clientAddr",
    }
}

command_header! {
    /// GET_CONSUMER_RUNNING_INFO (307).
    pub struct GetConsumerRunningInfoRequestHeader {
        consumer_group: String = "consumerGroup",
        client_id: String = "clientId",
        jstack_enable: Option<bool> = "jstackEnable",
    }
}

command_header! {
    /// CONSUME_MESSAGE_DIRECTLY (309); the body is the message to consume.
    pub struct ConsumeMessageDirectlyResultRequestHeader {
        consumer_group: String = "consumerGroup",
        client_id: Option<String> = "clientId",
        msg_id: Option<String> = "msgId",
        broker_name: Option<String> = "brokerName",
        topic: Option<String> = "topic",
    }
}
