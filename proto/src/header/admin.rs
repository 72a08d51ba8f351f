//! Admin and statistics request headers (mqadmin, rocketmq-dashboard, rocketmq-exporter).
//! RESET_CONSUMER_CLIENT_OFFSET's header ([`super::ResetOffsetRequestHeader`]) also serves
//! INVOKE_BROKER_TO_RESET_OFFSET (222), as in Java.

use super::command_header;

command_header! {
    /// GET_TOPIC_STATS_INFO (202).
    pub struct GetTopicStatsInfoRequestHeader {
        topic: String = "topic",
    }
}

command_header! {
    /// GET_CONSUME_STATS (208); without `topic` every topic the group subscribes to.
    pub struct GetConsumeStatsRequestHeader {
        consumer_group: String = "consumerGroup",
        topic: Option<String> = "topic",
    }
}

command_header! {
    /// GET_CONSUMER_CONNECTION_LIST (203).
    pub struct GetConsumerConnectionListRequestHeader {
        consumer_group: String = "consumerGroup",
    }
}

command_header! {
    /// GET_PRODUCER_CONNECTION_LIST (204).
    pub struct GetProducerConnectionListRequestHeader {
        producer_group: String = "producerGroup",
    }
}

command_header! {
    /// QUERY_TOPIC_CONSUME_BY_WHO (300): the groups with offsets or subscriptions on a topic.
    pub struct QueryTopicConsumeByWhoRequestHeader {
        topic: String = "topic",
    }
}

command_header! {
    /// QUERY_TOPICS_BY_CONSUMER (343): the topics a group has offsets on.
    pub struct QueryTopicsByConsumerRequestHeader {
        group: String = "group",
    }
}

command_header! {
    /// VIEW_BROKER_STATS_DATA (315): `statsName` is a BrokerStatsManager name
    /// (`TOPIC_PUT_NUMS`, `GROUP_GET_NUMS`, ...), `statsKey` the topic or `topic@group`.
    pub struct ViewBrokerStatsDataRequestHeader {
        stats_name: String = "statsName",
        stats_key: String = "statsKey",
    }
}

command_header! {
    /// DELETE_SUBSCRIPTIONGROUP (207).
    pub struct DeleteSubscriptionGroupRequestHeader {
        group_name: String = "groupName",
        clean_offset: bool = "cleanOffset" or false,
    }
}
