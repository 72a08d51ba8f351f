//! The admin and statistics calls mqadmin makes (and the console shows): topic and consume
//! statistics, connections, offsets reset, broker statistics and configuration, subscription
//! groups, name-server topic and permission operations, message lookups. Each is one request
//! and one decoded answer; errors name the address and the response code.

use std::collections::BTreeMap;

use bytes::Bytes;
use ringmq_proto::body::BodyError;
use ringmq_proto::body::{
    AdminBody, BrokerStatsData, ConsumeMessageDirectlyResult, ConsumeStats, ConsumerConnection,
    ConsumerOffsetSerializeWrapper, ConsumerRunningInfo, GetConsumerStatusBody, GroupList,
    JsonBody, KvTable, ProducerConnection, ResetOffsetBody, TopicConfigSerializeWrapper, TopicList,
    TopicStatsTable,
};
use ringmq_proto::code::RequestCode;
use ringmq_proto::command::{ExtFields, RemotingCommand};
use ringmq_proto::header::{
    CommandHeader, ConsumeMessageDirectlyResultRequestHeader, DeleteSubscriptionGroupRequestHeader,
    DeleteTopicRequestHeader, EmptyHeader, GetConsumeStatsRequestHeader,
    GetConsumerConnectionListRequestHeader, GetConsumerRunningInfoRequestHeader,
    GetConsumerStatusRequestHeader, GetProducerConnectionListRequestHeader,
    GetTopicStatsInfoRequestHeader, QueryTopicConsumeByWhoRequestHeader,
    QueryTopicsByConsumerRequestHeader, ResetOffsetRequestHeader, ViewBrokerStatsDataRequestHeader,
};

use crate::admin::Admin;
use crate::error::ClientError;
use crate::requests;

fn request<H: CommandHeader>(code: RequestCode, header: &H, body: Bytes) -> RemotingCommand {
    let mut command = RemotingCommand::new_request(code.code(), ExtFields::new(), body);
    command.set_header(header);
    command
}

fn bad_body(addr: &str, request_code: i32, error: BodyError) -> ClientError {
    ClientError::BadResponse {
        addr: addr.to_string(),
        request_code,
        detail: format!("body: {error}"),
    }
}

impl Admin {
    /// Sends `request` to `addr` and returns its SUCCESS answer.
    async fn call(
        &self,
        addr: &str,
        request: RemotingCommand,
    ) -> Result<RemotingCommand, ClientError> {
        let request_code = request.code;
        let response = self.invoke(addr, request).await?;
        requests::expect_success(addr, request_code, &response)?;
        Ok(response)
    }

    /// Sends `request` to `addr` and decodes the body of its SUCCESS answer with `decode`.
    async fn call_body<B>(
        &self,
        addr: &str,
        request: RemotingCommand,
        decode: fn(&[u8]) -> Result<B, BodyError>,
    ) -> Result<B, ClientError> {
        let request_code = request.code;
        let response = self.call(addr, request).await?;
        decode(&response.body).map_err(|e| bad_body(addr, request_code, e))
    }

    /// GET_TOPIC_STATS_INFO (202): min/max offset of each of the topic's queues on the broker.
    pub async fn topic_stats(
        &self,
        addr: &str,
        topic: &str,
    ) -> Result<TopicStatsTable, ClientError> {
        let header = GetTopicStatsInfoRequestHeader {
            topic: topic.to_string(),
        };
        let req = request(RequestCode::GetTopicStatsInfo, &header, Bytes::new());
        self.call_body(addr, req, TopicStatsTable::from_fastjson)
            .await
    }

    /// GET_CONSUME_STATS (208): broker and committed offset of each queue the group consumes
    /// (of `topic` only, when given).
    pub async fn consume_stats(
        &self,
        addr: &str,
        group: &str,
        topic: Option<&str>,
    ) -> Result<ConsumeStats, ClientError> {
        let header = GetConsumeStatsRequestHeader {
            consumer_group: group.to_string(),
            topic: topic.map(str::to_string),
        };
        let req = request(RequestCode::GetConsumeStats, &header, Bytes::new());
        self.call_body(addr, req, ConsumeStats::from_fastjson).await
    }

    /// GET_CONSUMER_CONNECTION_LIST (203). A group with no live consumer is
    /// CONSUMER_NOT_ONLINE (206), reported as [`ClientError::Server`].
    pub async fn consumer_connection(
        &self,
        addr: &str,
        group: &str,
    ) -> Result<ConsumerConnection, ClientError> {
        let header = GetConsumerConnectionListRequestHeader {
            consumer_group: group.to_string(),
        };
        let req = request(
            RequestCode::GetConsumerConnectionList,
            &header,
            Bytes::new(),
        );
        self.call_body(addr, req, ConsumerConnection::from_json)
            .await
    }

    /// GET_PRODUCER_CONNECTION_LIST (204).
    pub async fn producer_connection(
        &self,
        addr: &str,
        group: &str,
    ) -> Result<ProducerConnection, ClientError> {
        let header = GetProducerConnectionListRequestHeader {
            producer_group: group.to_string(),
        };
        let req = request(
            RequestCode::GetProducerConnectionList,
            &header,
            Bytes::new(),
        );
        self.call_body(addr, req, ProducerConnection::from_json)
            .await
    }

    /// QUERY_TOPIC_CONSUME_BY_WHO (300): the groups consuming `topic` on the broker.
    pub async fn topic_consumed_by(
        &self,
        addr: &str,
        topic: &str,
    ) -> Result<GroupList, ClientError> {
        let header = QueryTopicConsumeByWhoRequestHeader {
            topic: topic.to_string(),
        };
        let req = request(RequestCode::QueryTopicConsumeByWho, &header, Bytes::new());
        self.call_body(addr, req, GroupList::from_json).await
    }

    /// QUERY_TOPICS_BY_CONSUMER (343): the topics `group` consumes on the broker.
    pub async fn topics_by_consumer(
        &self,
        addr: &str,
        group: &str,
    ) -> Result<TopicList, ClientError> {
        let header = QueryTopicsByConsumerRequestHeader {
            group: group.to_string(),
        };
        let req = request(RequestCode::QueryTopicsByConsumer, &header, Bytes::new());
        self.call_body(addr, req, TopicList::from_json).await
    }

    /// INVOKE_BROKER_TO_RESET_OFFSET (222): the broker moves `group`'s offsets of `topic` to the
    /// first message stored at or after `timestamp_ms` and tells the group's live consumers
    /// (RESET_CONSUMER_CLIENT_OFFSET). Returns the new offset of each queue.
    pub async fn reset_offset_by_time(
        &self,
        addr: &str,
        topic: &str,
        group: &str,
        timestamp_ms: i64,
        force: bool,
    ) -> Result<ResetOffsetBody, ClientError> {
        let header = ResetOffsetRequestHeader {
            topic: topic.to_string(),
            group: group.to_string(),
            timestamp: timestamp_ms,
            is_force: force,
            queue_id: None,
            offset: None,
        };
        let req = request(
            RequestCode::InvokeBrokerToResetOffset,
            &header,
            Bytes::new(),
        );
        self.call_body(addr, req, ResetOffsetBody::from_fastjson)
            .await
    }

    /// GET_ALL_CONSUMER_OFFSET (43): every committed offset on the broker.
    pub async fn all_consumer_offsets(
        &self,
        addr: &str,
    ) -> Result<ConsumerOffsetSerializeWrapper, ClientError> {
        let req = request(
            RequestCode::GetAllConsumerOffset,
            &EmptyHeader,
            Bytes::new(),
        );
        self.call_body(addr, req, ConsumerOffsetSerializeWrapper::from_json)
            .await
    }

    /// VIEW_BROKER_STATS_DATA (315): one statistic (`TOPIC_PUT_NUMS` with a topic,
    /// `GROUP_GET_NUMS` with `topic@group`, ...) over the last minute, hour and day.
    pub async fn broker_stats(
        &self,
        addr: &str,
        stats_name: &str,
        stats_key: &str,
    ) -> Result<BrokerStatsData, ClientError> {
        let header = ViewBrokerStatsDataRequestHeader {
            stats_name: stats_name.to_string(),
            stats_key: stats_key.to_string(),
        };
        let req = request(RequestCode::ViewBrokerStatsData, &header, Bytes::new());
        self.call_body(addr, req, BrokerStatsData::from_json).await
    }

    /// GET_CONSUMER_RUNNING_INFO (307), which the broker forwards to the client.
    pub async fn consumer_running_info(
        &self,
        addr: &str,
        group: &str,
        client_id: &str,
    ) -> Result<ConsumerRunningInfo, ClientError> {
        let header = GetConsumerRunningInfoRequestHeader {
            consumer_group: group.to_string(),
            client_id: client_id.to_string(),
            jstack_enable: Some(false),
        };
        let req = request(RequestCode::GetConsumerRunningInfo, &header, Bytes::new());
        self.call_body(addr, req, ConsumerRunningInfo::from_fastjson)
            .await
    }

    /// CONSUME_MESSAGE_DIRECTLY (309) to the broker `addr` that stores the message
    /// `offset_msg_id`, which forwards it to the consumer `client_id` of `group` (Java's
    /// `MQClientAPIImpl.consumeMessageDirectly`); the consumer's listener consumes it once.
    pub async fn consume_message_directly(
        &self,
        addr: &str,
        group: &str,
        client_id: &str,
        topic: Option<&str>,
        offset_msg_id: &str,
    ) -> Result<ConsumeMessageDirectlyResult, ClientError> {
        let header = ConsumeMessageDirectlyResultRequestHeader {
            consumer_group: group.to_string(),
            client_id: Some(client_id.to_string()),
            msg_id: Some(offset_msg_id.to_string()),
            broker_name: None,
            topic: topic.map(str::to_string),
        };
        let req = request(RequestCode::ConsumeMessageDirectly, &header, Bytes::new());
        self.call_body(addr, req, ConsumeMessageDirectlyResult::from_json)
            .await
    }

    /// INVOKE_BROKER_TO_GET_CONSUMER_STATUS (223): each live consumer's offsets of `topic`
    /// for `group` (only the client `client_id` when given), gathered by the broker `addr`
    /// from the consumers themselves (`consumerTable`, by client id).
    pub async fn consumer_status(
        &self,
        addr: &str,
        topic: &str,
        group: &str,
        client_id: Option<&str>,
    ) -> Result<GetConsumerStatusBody, ClientError> {
        let header = GetConsumerStatusRequestHeader {
            topic: topic.to_string(),
            group: group.to_string(),
            client_addr: client_id.map(str::to_string),
        };
        let code = RequestCode::InvokeBrokerToGetConsumerStatus;
        let req = request(code, &header, Bytes::new());
        self.call_body(addr, req, GetConsumerStatusBody::from_fastjson)
            .await
    }

    /// GET_BROKER_RUNTIME_INFO (28): the broker's status table (mqadmin brokerStatus).
    pub async fn broker_runtime_info(&self, addr: &str) -> Result<KvTable, ClientError> {
        let req = request(
            RequestCode::GetBrokerRuntimeInfo,
            &EmptyHeader,
            Bytes::new(),
        );
        self.call_body(addr, req, KvTable::from_json).await
    }

    /// GET_BROKER_CONFIG (26): the broker's configuration as `key → value`.
    pub async fn broker_config(&self, addr: &str) -> Result<BTreeMap<String, String>, ClientError> {
        let req = request(RequestCode::GetBrokerConfig, &EmptyHeader, Bytes::new());
        let response = self.call(addr, req).await?;
        Ok(parse_properties_text(&String::from_utf8_lossy(
            &response.body,
        )))
    }

    /// GET_ALL_TOPIC_CONFIG (21): every topic the broker hosts.
    pub async fn all_topic_config(
        &self,
        addr: &str,
    ) -> Result<TopicConfigSerializeWrapper, ClientError> {
        let req = request(RequestCode::GetAllTopicConfig, &EmptyHeader, Bytes::new());
        self.call_body(addr, req, TopicConfigSerializeWrapper::from_json)
            .await
    }

    /// DELETE_TOPIC_IN_BROKER (215).
    pub async fn delete_topic_in_broker(&self, addr: &str, topic: &str) -> Result<(), ClientError> {
        let header = DeleteTopicRequestHeader {
            topic: topic.to_string(),
        };
        let req = request(RequestCode::DeleteTopicInBroker, &header, Bytes::new());
        self.call(addr, req).await.map(drop)
    }

    /// DELETE_SUBSCRIPTIONGROUP (207); `clean_offset` also drops the group's offsets.
    pub async fn delete_subscription_group(
        &self,
        addr: &str,
        group: &str,
        clean_offset: bool,
    ) -> Result<(), ClientError> {
        let header = DeleteSubscriptionGroupRequestHeader {
            group_name: group.to_string(),
            clean_offset,
        };
        let req = request(RequestCode::DeleteSubscriptionGroup, &header, Bytes::new());
        self.call(addr, req).await.map(drop)
    }
}

/// Parses the `key=value` lines of GET_BROKER_CONFIG's body (Java `Properties` text as
/// `MixAll.properties2String` writes it: one pair a line, no escapes).
pub fn parse_properties_text(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#') && !line.starts_with('!'))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}
