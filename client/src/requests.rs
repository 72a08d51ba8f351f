//! Request builders and response readers: the only module that knows which typed header goes
//! with which request code. Everything is sent as a Java 5.x client sends it (JSON header,
//! language JAVA, short V2 send names).

use bytes::Bytes;
use ringmq_proto::body::{
    CheckClientConfigBody, HeartbeatData, JsonBody, LockBatchRequestBody, ProducerData,
    SubscriptionData, TopicConfig,
};
use ringmq_proto::code::RequestCode;
use ringmq_proto::command::{ExtFields, RemotingCommand};
use ringmq_proto::header::{
    CommandHeader, ConsumerSendMsgBackRequestHeader, CreateTopicRequestHeader,
    GetConsumerListByGroupRequestHeader, GetMaxOffsetRequestHeader, GetMinOffsetRequestHeader,
    GetRouteInfoRequestHeader, PullMessageRequestHeader, PullMessageResponseHeader,
    QueryConsumerOffsetRequestHeader, QueryConsumerOffsetResponseHeader, SearchOffsetRequestHeader,
    SendMessageRequestHeader, SendMessageRequestHeaderV2, SendMessageResponseHeader,
    UnregisterClientRequestHeader, UpdateConsumerOffsetRequestHeader,
};

use crate::error::ClientError;
use crate::message::MessageExt;
use crate::producer::CLIENT_INNER_PRODUCER_GROUP;
use crate::queue::MessageQueue;

fn request<H: CommandHeader>(code: RequestCode, header: &H, body: Bytes) -> RemotingCommand {
    let mut command = RemotingCommand::new_request(code.code(), ExtFields::new(), body);
    command.set_header(header);
    command
}

/// `Err(Server)` unless the response code is SUCCESS.
pub(crate) fn expect_success(
    addr: &str,
    request_code: i32,
    response: &RemotingCommand,
) -> Result<(), ClientError> {
    if response.code == ringmq_proto::code::ResponseCode::Success.code() {
        return Ok(());
    }
    Err(server_error(addr, request_code, response))
}

pub(crate) fn server_error(
    addr: &str,
    request_code: i32,
    response: &RemotingCommand,
) -> ClientError {
    ClientError::Server {
        addr: addr.to_string(),
        request_code,
        code: response.code,
        remark: response.remark.clone().unwrap_or_default(),
    }
}

fn read_header<H: CommandHeader>(
    addr: &str,
    request_code: i32,
    response: &RemotingCommand,
) -> Result<H, ClientError> {
    response
        .decode_header::<H>()
        .map_err(|e| ClientError::BadResponse {
            addr: addr.to_string(),
            request_code,
            detail: e.to_string(),
        })
}

/// GET_ROUTEINFO_BY_TOPIC (105).
pub(crate) fn route_request(topic: &str) -> RemotingCommand {
    let header = GetRouteInfoRequestHeader {
        topic: topic.to_string(),
        accept_standard_json_only: None,
    };
    request(RequestCode::GetRouteinfoByTopic, &header, Bytes::new())
}

/// GET_BROKER_CLUSTER_INFO (106): no header.
pub(crate) fn get_broker_cluster_info() -> RemotingCommand {
    RemotingCommand::new_request(
        RequestCode::GetBrokerClusterInfo.code(),
        ExtFields::new(),
        Bytes::new(),
    )
}

/// The fields of one send, borrowed from the producer's prepared message.
pub(crate) struct SendArgs<'a> {
    pub producer_group: &'a str,
    pub topic: &'a str,
    pub default_topic: &'a str,
    pub default_topic_queue_nums: i32,
    pub queue_id: i32,
    pub sys_flag: i32,
    pub born_timestamp_ms: i64,
    pub flag: i32,
    pub properties: &'a str,
    pub reconsume_times: i32,
    pub max_reconsume_times: Option<i32>,
    pub batch: bool,
    pub broker_name: &'a str,
}

/// SEND_MESSAGE_V2 (310) for a single message, SEND_BATCH_MESSAGE (320) for a batch; both with
/// the short field names a..n, as the Java client sends them.
pub(crate) fn send_message(args: &SendArgs<'_>, body: Bytes) -> RemotingCommand {
    let header = SendMessageRequestHeaderV2(SendMessageRequestHeader {
        producer_group: args.producer_group.to_string(),
        topic: args.topic.to_string(),
        default_topic: args.default_topic.to_string(),
        default_topic_queue_nums: args.default_topic_queue_nums,
        queue_id: args.queue_id,
        sys_flag: args.sys_flag,
        born_timestamp: args.born_timestamp_ms,
        flag: args.flag,
        properties: Some(args.properties.to_string()),
        reconsume_times: Some(args.reconsume_times),
        unit_mode: Some(false),
        max_reconsume_times: args.max_reconsume_times,
        batch: Some(args.batch),
        broker_name: Some(args.broker_name.to_string()),
    });
    let code = if args.batch {
        RequestCode::SendBatchMessage
    } else {
        RequestCode::SendMessageV2
    };
    let mut command = request(code, &header, body);
    // 5.x Java sends the broker name twice: `n` of the V2 header and the inherited `bname`.
    command.ext_fields.insert("bname", args.broker_name);
    command
}

/// The fields of a stored-send response the producer uses.
pub(crate) struct SendResponse {
    pub msg_id: String,
    pub queue_id: i32,
    pub queue_offset: i64,
    pub transaction_id: Option<String>,
}

pub(crate) fn parse_send_response(
    addr: &str,
    request_code: i32,
    response: &RemotingCommand,
) -> Result<SendResponse, ClientError> {
    let header: SendMessageResponseHeader = read_header(addr, request_code, response)?;
    Ok(SendResponse {
        msg_id: header.msg_id,
        queue_id: header.queue_id,
        queue_offset: header.queue_offset,
        transaction_id: header.transaction_id,
    })
}

/// The fields of one pull.
pub(crate) struct PullArgs<'a> {
    pub consumer_group: &'a str,
    pub topic: &'a str,
    pub queue_id: i32,
    pub queue_offset: i64,
    pub max_msg_nums: i32,
    pub sys_flag: i32,
    pub commit_offset: i64,
    pub suspend_timeout_ms: i64,
    pub subscription: &'a str,
    pub sub_version: i64,
    /// `TAG` or `SQL92`.
    pub expression_type: &'a str,
    pub broker_name: &'a str,
}

/// PULL_MESSAGE (11).
pub(crate) fn pull_message(args: &PullArgs<'_>) -> RemotingCommand {
    let header = PullMessageRequestHeader {
        consumer_group: args.consumer_group.to_string(),
        topic: args.topic.to_string(),
        queue_id: args.queue_id,
        queue_offset: args.queue_offset,
        max_msg_nums: args.max_msg_nums,
        sys_flag: args.sys_flag,
        commit_offset: args.commit_offset,
        suspend_timeout_millis: args.suspend_timeout_ms,
        subscription: Some(args.subscription.to_string()),
        sub_version: args.sub_version,
        expression_type: Some(args.expression_type.to_string()),
        max_msg_bytes: None,
    };
    let mut command = request(RequestCode::PullMessage, &header, Bytes::new());
    // 5.x clients name the target broker in every topic request.
    command.ext_fields.insert("bname", args.broker_name);
    command
}

pub(crate) fn parse_pull_response(
    addr: &str,
    request_code: i32,
    response: &RemotingCommand,
) -> Result<PullMessageResponseHeader, ClientError> {
    read_header(addr, request_code, response)
}

/// QUERY_CONSUMER_OFFSET (14). `setZeroIfNotFound=false`: the client decides where a new group
/// starts (QUERY_NOT_FOUND tells it to).
pub(crate) fn query_consumer_offset(group: &str, queue: &MessageQueue) -> RemotingCommand {
    let header = QueryConsumerOffsetRequestHeader {
        consumer_group: group.to_string(),
        topic: queue.topic.clone(),
        queue_id: queue.queue_id,
        set_zero_if_not_found: Some(false),
    };
    request(RequestCode::QueryConsumerOffset, &header, Bytes::new())
}

/// UPDATE_CONSUMER_OFFSET (15).
pub(crate) fn update_consumer_offset(
    group: &str,
    queue: &MessageQueue,
    offset: i64,
) -> RemotingCommand {
    let header = UpdateConsumerOffsetRequestHeader {
        consumer_group: group.to_string(),
        topic: queue.topic.clone(),
        queue_id: queue.queue_id,
        commit_offset: offset,
    };
    request(RequestCode::UpdateConsumerOffset, &header, Bytes::new())
}

/// GET_MAX_OFFSET (30).
pub(crate) fn get_max_offset(queue: &MessageQueue) -> RemotingCommand {
    let header = GetMaxOffsetRequestHeader {
        topic: queue.topic.clone(),
        queue_id: queue.queue_id,
        committed: true,
    };
    request(RequestCode::GetMaxOffset, &header, Bytes::new())
}

/// GET_MIN_OFFSET (31).
pub(crate) fn get_min_offset(queue: &MessageQueue) -> RemotingCommand {
    let header = GetMinOffsetRequestHeader {
        topic: queue.topic.clone(),
        queue_id: queue.queue_id,
    };
    request(RequestCode::GetMinOffset, &header, Bytes::new())
}

/// SEARCH_OFFSET_BY_TIMESTAMP (29), LOWER boundary: the first entry stored at or after
/// `timestamp_ms` (the queue's max offset if none).
pub(crate) fn search_offset_by_timestamp(
    queue: &MessageQueue,
    timestamp_ms: i64,
) -> RemotingCommand {
    let header = SearchOffsetRequestHeader {
        topic: queue.topic.clone(),
        queue_id: queue.queue_id,
        timestamp: timestamp_ms,
        boundary_type: ringmq_proto::header::BoundaryType::Lower,
    };
    request(RequestCode::SearchOffsetByTimestamp, &header, Bytes::new())
}

/// The `offset` field of QUERY_CONSUMER_OFFSET, GET_MAX_OFFSET, GET_MIN_OFFSET and
/// SEARCH_OFFSET_BY_TIMESTAMP responses (each header is the single field `offset`).
pub(crate) fn parse_offset(
    addr: &str,
    request_code: i32,
    response: &RemotingCommand,
) -> Result<i64, ClientError> {
    let header: QueryConsumerOffsetResponseHeader = read_header(addr, request_code, response)?;
    Ok(header.offset)
}

/// HEART_BEAT (34): empty header, `HeartbeatData` body.
pub(crate) fn heartbeat(body: Bytes) -> RemotingCommand {
    RemotingCommand::new_request(RequestCode::HeartBeat.code(), ExtFields::new(), body)
}

/// The heartbeat body of a producer-only client: its group plus `CLIENT_INNER_PRODUCER`.
pub(crate) fn producer_heartbeat_body(client_id: &str, group: &str) -> Bytes {
    let data = HeartbeatData {
        client_id: client_id.to_string(),
        producer_data_set: vec![
            ProducerData {
                group_name: group.to_string(),
            },
            ProducerData {
                group_name: CLIENT_INNER_PRODUCER_GROUP.to_string(),
            },
        ],
        ..HeartbeatData::default()
    };
    Bytes::from(data.to_json())
}

/// UNREGISTER_CLIENT (35).
pub(crate) fn unregister_client(
    client_id: &str,
    producer_group: Option<&str>,
    consumer_group: Option<&str>,
) -> RemotingCommand {
    let header = UnregisterClientRequestHeader {
        client_id: client_id.to_string(),
        producer_group: producer_group.map(str::to_string),
        consumer_group: consumer_group.map(str::to_string),
    };
    request(RequestCode::UnregisterClient, &header, Bytes::new())
}

/// CONSUMER_SEND_MSG_BACK (36) for `message` (by its commit-log offset).
pub(crate) fn consumer_send_msg_back(
    group: &str,
    message: &MessageExt,
    delay_level: i32,
    max_reconsume_times: Option<i32>,
) -> RemotingCommand {
    let header = ConsumerSendMsgBackRequestHeader {
        offset: message.commit_log_offset,
        group: group.to_string(),
        delay_level,
        origin_msg_id: Some(message.msg_id()),
        origin_topic: Some(message.topic.clone()),
        unit_mode: false,
        max_reconsume_times,
        broker_name: Some(message.broker_name.clone()),
    };
    request(RequestCode::ConsumerSendMsgBack, &header, Bytes::new())
}

/// LOCK_BATCH_MQ (41) or UNLOCK_BATCH_MQ (42) of `queues` for `client_id` in `group`; no
/// header, a `LockBatchRequestBody`.
pub(crate) fn lock_batch(
    lock: bool,
    group: &str,
    client_id: &str,
    queues: &[MessageQueue],
) -> RemotingCommand {
    let body = LockBatchRequestBody {
        client_id: client_id.to_string(),
        consumer_group: group.to_string(),
        mq_set: queues.iter().map(Into::into).collect(),
        only_this_broker: false,
    };
    let code = if lock {
        RequestCode::LockBatchMq
    } else {
        RequestCode::UnlockBatchMq
    };
    RemotingCommand::new_request(code.code(), ExtFields::new(), Bytes::from(body.to_json()))
}

/// CHECK_CLIENT_CONFIG (46): asks a broker whether it accepts `subscription` (SQL92 needs
/// `enablePropertyFilter` and a valid expression).
pub(crate) fn check_client_config(
    group: &str,
    client_id: &str,
    subscription: SubscriptionData,
) -> RemotingCommand {
    let body = CheckClientConfigBody {
        client_id: client_id.to_string(),
        group: group.to_string(),
        subscription_data: subscription,
    };
    RemotingCommand::new_request(
        RequestCode::CheckClientConfig.code(),
        ExtFields::new(),
        Bytes::from(body.to_json()),
    )
}

/// GET_CONSUMER_LIST_BY_GROUP (38).
pub(crate) fn get_consumer_list_by_group(group: &str) -> RemotingCommand {
    let header = GetConsumerListByGroupRequestHeader {
        consumer_group: group.to_string(),
    };
    request(RequestCode::GetConsumerListByGroup, &header, Bytes::new())
}

/// UPDATE_BROKER_CONFIG (25): no header; body `key=value` lines (Java properties text).
pub(crate) fn update_broker_config(properties: &[(&str, &str)]) -> RemotingCommand {
    let mut text = String::new();
    for (key, value) in properties {
        text.push_str(key);
        text.push('=');
        text.push_str(value);
        text.push('\n');
    }
    RemotingCommand::new_request(
        RequestCode::UpdateBrokerConfig.code(),
        ExtFields::new(),
        Bytes::from(text),
    )
}

/// UPDATE_AND_CREATE_TOPIC (17).
pub(crate) fn update_and_create_topic(config: &TopicConfig) -> RemotingCommand {
    let header = CreateTopicRequestHeader {
        topic: config.topic_name.clone(),
        default_topic: crate::core::AUTO_CREATE_TOPIC_KEY.to_string(),
        read_queue_nums: config.read_queue_nums,
        write_queue_nums: config.write_queue_nums,
        perm: config.perm,
        topic_filter_type: config.topic_filter_type.as_str().to_string(),
        topic_sys_flag: Some(config.topic_sys_flag),
        order: config.order,
        attributes: None,
        force: None,
    };
    request(RequestCode::UpdateAndCreateTopic, &header, Bytes::new())
}

/// END_TRANSACTION (37), oneway, as Java's `endTransactionOneway` sends it.
pub(crate) fn end_transaction(
    header: &ringmq_proto::header::EndTransactionRequestHeader,
) -> RemotingCommand {
    let mut command = request(RequestCode::EndTransaction, header, Bytes::new());
    command.set_oneway();
    command
}

/// UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200): the group's configuration as the JSON body.
pub(crate) fn update_and_create_subscription_group(
    config: &ringmq_proto::body::SubscriptionGroupConfig,
) -> RemotingCommand {
    use ringmq_proto::body::JsonBody;
    RemotingCommand::new_request(
        RequestCode::UpdateAndCreateSubscriptionGroup.code(),
        Default::default(),
        Bytes::from(config.to_json().into_bytes()),
    )
}

/// GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201).
pub(crate) fn get_all_subscription_group_config() -> RemotingCommand {
    RemotingCommand::new_request(
        RequestCode::GetAllSubscriptionGroupConfig.code(),
        Default::default(),
        Bytes::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_v2_uses_short_names_and_batch_uses_code_320() {
        let args = SendArgs {
            producer_group: "pg",
            topic: "T",
            default_topic: "TBW102",
            default_topic_queue_nums: 4,
            queue_id: 3,
            sys_flag: 0x301,
            born_timestamp_ms: 1_700_000_000_000,
            flag: 0,
            properties: "WAIT\u{1}true\u{2}",
            reconsume_times: 0,
            max_reconsume_times: None,
            batch: false,
            broker_name: "broker-a",
        };
        let single = send_message(&args, Bytes::from_static(b"x"));
        assert_eq!(single.code, 310);
        let ext = &single.ext_fields;
        assert_eq!(ext.get("a"), Some("pg"));
        assert_eq!(ext.get("b"), Some("T"));
        assert_eq!(ext.get("c"), Some("TBW102"));
        assert_eq!(ext.get("d"), Some("4"));
        assert_eq!(ext.get("e"), Some("3"));
        assert_eq!(ext.get("f"), Some("769"));
        assert_eq!(ext.get("g"), Some("1700000000000"));
        assert_eq!(ext.get("i"), Some("WAIT\u{1}true\u{2}"));
        assert_eq!(ext.get("n"), Some("broker-a"));
        assert_eq!(ext.get("bname"), Some("broker-a"));
        assert!(ext.get("producerGroup").is_none());
        assert_eq!(single.language.name(), "JAVA");
        let batch = send_message(
            &SendArgs {
                batch: true,
                ..args
            },
            Bytes::new(),
        );
        assert_eq!(batch.code, 320);
        assert_eq!(batch.ext_fields.get("m"), Some("true"));
    }

    #[test]
    fn pull_carries_suspend_budget_and_subscription() {
        let pull = pull_message(&PullArgs {
            consumer_group: "g",
            topic: "T",
            queue_id: 1,
            queue_offset: 42,
            max_msg_nums: 32,
            sys_flag: 0x3,
            commit_offset: 40,
            suspend_timeout_ms: 15_000,
            subscription: "TagA || TagB",
            sub_version: 7,
            expression_type: "TAG",
            broker_name: "b",
        });
        assert_eq!(pull.code, 11);
        let ext = &pull.ext_fields;
        assert_eq!(ext.get("consumerGroup"), Some("g"));
        assert_eq!(ext.get("queueOffset"), Some("42"));
        assert_eq!(ext.get("sysFlag"), Some("3"));
        assert_eq!(ext.get("suspendTimeoutMillis"), Some("15000"));
        assert_eq!(ext.get("subscription"), Some("TagA || TagB"));
        assert_eq!(ext.get("expressionType"), Some("TAG"));
        assert_eq!(ext.get("bname"), Some("b"));
    }

    #[test]
    fn error_responses_become_server_errors_with_remark() {
        let request = route_request("T");
        let response = RemotingCommand::response_to(&request, 17, Some("no route".into()));
        let error = expect_success("127.0.0.1:9876", request.code, &response).unwrap_err();
        assert_eq!(error.response_code(), Some(17));
        assert!(error.to_string().contains("no route"));
    }

    #[test]
    fn producer_heartbeat_lists_both_groups() {
        let body = producer_heartbeat_body("127.0.0.1@x", "pg");
        let data = HeartbeatData::from_json(&body).unwrap();
        let groups: Vec<&str> = data
            .producer_data_set
            .iter()
            .map(|p| p.group_name.as_str())
            .collect();
        assert_eq!(groups, ["pg", "CLIENT_INNER_PRODUCER"]);
        assert!(data.consumer_data_set.is_empty());
    }
}
