//! Admin and statistics bodies (`org.apache.rocketmq.remoting.protocol.admin` and `.body`):
//! what mqadmin, rocketmq-dashboard and rocketmq-exporter read from a broker.
//!
//! Bodies holding a `Map<MessageQueue, _>` are [`AdminBody`]: written and read in fastjson's
//! object-key form (see [`super::object_keys`]), the only form Java decodes.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::heartbeat::{ConsumeFromWhere, ConsumeType, MessageModel, SubscriptionData};
use super::lenient::lenient_enum;
use super::object_keys::{mq_map, quote_object_keys, unquote_object_keys};
use super::{BodyError, JsonBody, MessageQueue};

/// A body whose queue-keyed maps use fastjson's object keys on the wire.
pub trait AdminBody: JsonBody {
    /// fastjson's dialect: compact, sorted keys, queue keys as bare objects.
    fn to_fastjson(&self) -> Vec<u8> {
        let standard = self.to_json();
        unquote_object_keys(standard.as_bytes()).into_owned()
    }

    /// Reads fastjson's dialect (object keys, unquoted numeric keys) or standard JSON.
    fn from_fastjson(bytes: &[u8]) -> Result<Self, BodyError> {
        let quoted = quote_object_keys(bytes);
        Self::from_json(&quoted)
    }
}

/// One queue's offsets in GET_TOPIC_STATS_INFO (`TopicOffset`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TopicOffset {
    pub last_update_timestamp: i64,
    pub max_offset: i64,
    pub min_offset: i64,
}

/// GET_TOPIC_STATS_INFO (202) body (`TopicStatsTable`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TopicStatsTable {
    #[serde(with = "mq_map")]
    pub offset_table: BTreeMap<MessageQueue, TopicOffset>,
}

/// One queue of a group in GET_CONSUME_STATS (`OffsetWrapper`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OffsetWrapper {
    /// The queue's max offset.
    pub broker_offset: i64,
    /// The group's committed offset.
    pub consumer_offset: i64,
    /// Store time of the last consumed message, ms (0 if none).
    pub last_timestamp: i64,
    /// 5.x: the offset pulled so far (ringmq reports the committed offset).
    pub pull_offset: i64,
}

/// GET_CONSUME_STATS (208) body (`ConsumeStats`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ConsumeStats {
    pub consume_tps: f64,
    #[serde(with = "mq_map")]
    pub offset_table: BTreeMap<MessageQueue, OffsetWrapper>,
}

impl ConsumeStats {
    /// Messages stored but not yet committed, over every queue (Java `computeTotalDiff`).
    pub fn total_diff(&self) -> i64 {
        self.offset_table
            .values()
            .map(|w| w.broker_offset - w.consumer_offset)
            .sum()
    }
}

/// One client connection (`Connection`).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Connection {
    pub client_addr: String,
    pub client_id: String,
    /// `LanguageCode` name (JAVA, CPP, GO, RUST, ...).
    pub language: String,
    pub version: i32,
}

/// GET_CONSUMER_CONNECTION_LIST (203) body (`ConsumerConnection`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ConsumerConnection {
    pub connection_set: Vec<Connection>,
    pub consume_from_where: Option<ConsumeFromWhere>,
    pub consume_type: Option<ConsumeType>,
    pub message_model: Option<MessageModel>,
    /// Topic → subscription.
    pub subscription_table: BTreeMap<String, SubscriptionData>,
}

/// GET_PRODUCER_CONNECTION_LIST (204) body (`ProducerConnection`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ProducerConnection {
    pub connection_set: Vec<Connection>,
}

/// QUERY_TOPIC_CONSUME_BY_WHO (300) body (`GroupList`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GroupList {
    pub group_set: BTreeSet<String>,
}

/// RESET_CONSUMER_CLIENT_OFFSET (220) request body and INVOKE_BROKER_TO_RESET_OFFSET (222)
/// response body (`ResetOffsetBody`): the offset each queue was reset to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ResetOffsetBody {
    #[serde(with = "mq_map")]
    pub offset_table: BTreeMap<MessageQueue, i64>,
}

/// GET_ALL_CONSUMER_OFFSET (43) body (`ConsumerOffsetSerializeWrapper`): `topic@group` →
/// queue id → committed offset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ConsumerOffsetSerializeWrapper {
    pub offset_table: BTreeMap<String, BTreeMap<i32, i64>>,
}

/// One window of VIEW_BROKER_STATS_DATA (`BrokerStatsItem`): the sum over the window, per
/// second, and the average value per event (bytes per message for size stats).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BrokerStatsItem {
    pub avgpt: f64,
    pub sum: i64,
    pub tps: f64,
}

/// VIEW_BROKER_STATS_DATA (315) body (`BrokerStatsData`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct BrokerStatsData {
    pub stats_day: BrokerStatsItem,
    pub stats_hour: BrokerStatsItem,
    pub stats_minute: BrokerStatsItem,
}

/// One queue of a consumer in GET_CONSUMER_RUNNING_INFO (`ProcessQueueInfo`): its committed
/// offset, what it holds in memory, its orderly lock, and when it last pulled and consumed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ProcessQueueInfo {
    pub commit_offset: i64,
    pub cached_msg_min_offset: i64,
    pub cached_msg_max_offset: i64,
    pub cached_msg_count: i32,
    #[serde(rename = "cachedMsgSizeInMiB")]
    pub cached_msg_size_in_mib: i32,
    pub transaction_msg_min_offset: i64,
    pub transaction_msg_max_offset: i64,
    pub transaction_msg_count: i32,
    pub locked: bool,
    pub try_unlock_times: i64,
    pub last_lock_timestamp: i64,
    /// Java's spelling.
    pub droped: bool,
    pub last_pull_timestamp: i64,
    pub last_consume_timestamp: i64,
}

/// One topic of a consumer in GET_CONSUMER_RUNNING_INFO (`ConsumeStatus`): pull and consume
/// round-trip times (ms) and rates (per second).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ConsumeStatus {
    #[serde(rename = "pullRT")]
    pub pull_rt: f64,
    #[serde(rename = "pullTPS")]
    pub pull_tps: f64,
    #[serde(rename = "consumeRT")]
    pub consume_rt: f64,
    #[serde(rename = "consumeOKTPS")]
    pub consume_ok_tps: f64,
    #[serde(rename = "consumeFailedTPS")]
    pub consume_failed_tps: f64,
    pub consume_failed_msgs: i64,
}

/// GET_CONSUMER_RUNNING_INFO (307) body (`ConsumerRunningInfo`), as a client reports it:
/// its settings (`properties`, Java's `PROP_*` keys among them), subscriptions, queues and
/// per-topic status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ConsumerRunningInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jstack: Option<String>,
    #[serde(with = "mq_map")]
    pub mq_table: BTreeMap<MessageQueue, ProcessQueueInfo>,
    pub properties: BTreeMap<String, String>,
    pub status_table: BTreeMap<String, ConsumeStatus>,
    pub subscription_set: Vec<SubscriptionData>,
}

impl ConsumerRunningInfo {
    pub const PROP_NAMESERVER_ADDR: &'static str = "PROP_NAMESERVER_ADDR";
    pub const PROP_THREADPOOL_CORE_SIZE: &'static str = "PROP_THREADPOOL_CORE_SIZE";
    pub const PROP_CONSUME_ORDERLY: &'static str = "PROP_CONSUMEORDERLY";
    pub const PROP_CONSUME_TYPE: &'static str = "PROP_CONSUME_TYPE";
    pub const PROP_CLIENT_VERSION: &'static str = "PROP_CLIENT_VERSION";
    pub const PROP_CONSUMER_START_TIMESTAMP: &'static str = "PROP_CONSUMER_START_TIMESTAMP";
}

lenient_enum! {
    /// `CMResult`: what a listener said about a message consumed directly (Java ordinal order).
    pub enum CmResult default Success {
        Success = "CR_SUCCESS",
        Later = "CR_LATER",
        Rollback = "CR_ROLLBACK",
        Commit = "CR_COMMIT",
        ThrowException = "CR_THROW_EXCEPTION",
        ReturnNull = "CR_RETURN_NULL",
    }
}

/// CONSUME_MESSAGE_DIRECTLY (309) answer body (`ConsumeMessageDirectlyResult`): how a
/// consumer's listener handled the message the broker handed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ConsumeMessageDirectlyResult {
    pub auto_commit: bool,
    /// `None` as Java's `null` (omitted by fastjson).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consume_result: Option<CmResult>,
    /// Whether an orderly listener consumed it.
    pub order: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
    pub spent_time_mills: i64,
}

impl Default for ConsumeMessageDirectlyResult {
    /// Java's field defaults: not orderly, auto-commit, no result yet.
    fn default() -> Self {
        ConsumeMessageDirectlyResult {
            auto_commit: true,
            consume_result: None,
            order: false,
            remark: None,
            spent_time_mills: 0,
        }
    }
}

/// GET_CONSUMER_STATUS_FROM_CLIENT (221) answer and INVOKE_BROKER_TO_GET_CONSUMER_STATUS (223)
/// answer (`GetConsumerStatusBody`): a client's offsets of one topic (`messageQueueTable`), and
/// the broker's gathering of them by client id (`consumerTable`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GetConsumerStatusBody {
    pub consumer_table: BTreeMap<String, QueueOffsets>,
    #[serde(with = "mq_map")]
    pub message_queue_table: BTreeMap<MessageQueue, i64>,
}

/// One client's offsets in [`GetConsumerStatusBody::consumer_table`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QueueOffsets(#[serde(with = "mq_map")] pub BTreeMap<MessageQueue, i64>);

impl JsonBody for TopicStatsTable {}
impl JsonBody for ConsumeStats {}
impl JsonBody for ConsumerConnection {}
impl JsonBody for ProducerConnection {}
impl JsonBody for GroupList {}
impl JsonBody for ResetOffsetBody {}
impl JsonBody for ConsumerOffsetSerializeWrapper {}
impl JsonBody for BrokerStatsData {}
impl JsonBody for ConsumerRunningInfo {}
impl AdminBody for TopicStatsTable {}
impl AdminBody for ConsumeStats {}
impl AdminBody for ResetOffsetBody {}
impl AdminBody for ConsumerRunningInfo {}
impl JsonBody for ConsumeMessageDirectlyResult {}
impl JsonBody for GetConsumerStatusBody {}
impl AdminBody for GetConsumerStatusBody {}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(id: i32) -> MessageQueue {
        MessageQueue {
            broker_name: "b".into(),
            queue_id: id,
            topic: "t".into(),
        }
    }

    #[test]
    fn topic_stats_use_fastjson_object_keys() {
        let mut table = TopicStatsTable::default();
        table.offset_table.insert(
            queue(0),
            TopicOffset {
                last_update_timestamp: 7,
                max_offset: 5,
                min_offset: 1,
            },
        );
        let wire = table.to_fastjson();
        assert_eq!(
            std::str::from_utf8(&wire).unwrap(),
            r#"{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"t"}:{"lastUpdateTimestamp":7,"maxOffset":5,"minOffset":1}}}"#
        );
        assert_eq!(TopicStatsTable::from_fastjson(&wire).unwrap(), table);
    }

    #[test]
    fn java_consume_stats_decode() {
        // As a Java 5.x broker writes it (fastjson, keys sorted, object keys).
        let java = br#"{"consumeTps":1.5,"offsetTable":{{"brokerName":"broker-a","queueId":1,"topic":"T"}:{"brokerOffset":10,"consumerOffset":4,"lastTimestamp":1700000000000,"pullOffset":6}}}"#;
        let stats = ConsumeStats::from_fastjson(java).unwrap();
        assert_eq!(stats.total_diff(), 6);
        assert_eq!(stats.consume_tps, 1.5);
    }

    #[test]
    fn all_consumer_offsets_accept_unquoted_queue_ids() {
        let java = br#"{"offsetTable":{"T@g":{0:5,1:7}}}"#;
        let wrapper = ConsumerOffsetSerializeWrapper::from_json(java).unwrap();
        assert_eq!(wrapper.offset_table["T@g"][&1], 7);
    }

    #[test]
    fn java_consumer_running_info_decodes() {
        // As a Java 5.x push consumer answers (fastjson: object keys, Properties as strings).
        let java = br#"{"mqPopTable":{},"mqTable":{{"brokerName":"b","queueId":0,"topic":"T"}:{"cachedMsgCount":0,"cachedMsgMaxOffset":0,"cachedMsgMinOffset":0,"cachedMsgSizeInMiB":0,"commitOffset":12,"droped":false,"lastConsumeTimestamp":1700000000001,"lastLockTimestamp":1700000000000,"lastPullTimestamp":1700000000002,"locked":false,"transactionMsgCount":0,"transactionMsgMaxOffset":0,"transactionMsgMinOffset":0,"tryUnlockTimes":0}},"properties":{"PROP_CONSUMEORDERLY":"false","consumerGroup":"g"},"statusTable":{"T":{"consumeFailedMsgs":2,"consumeFailedTPS":0.0,"consumeOKTPS":1.5,"consumeRT":3.0,"pullRT":4.0,"pullTPS":1.0}},"subscriptionSet":[{"classFilterMode":false,"codeSet":[],"expressionType":"TAG","subString":"*","subVersion":1,"tagsSet":[],"topic":"T"}],"userConsumerInfo":{}}"#;
        let info = ConsumerRunningInfo::from_fastjson(java).unwrap();
        assert_eq!(info.mq_table[&queue_of("T", 0)].commit_offset, 12);
        assert_eq!(info.status_table["T"].consume_failed_msgs, 2);
        assert_eq!(info.status_table["T"].consume_ok_tps, 1.5);
        assert_eq!(
            info.properties[ConsumerRunningInfo::PROP_CONSUME_ORDERLY],
            "false"
        );
        let again = ConsumerRunningInfo::from_fastjson(&info.to_fastjson()).unwrap();
        assert_eq!(again, info);
    }

    #[test]
    fn consume_message_directly_results_are_javas() {
        let java =
            br#"{"autoCommit":true,"consumeResult":"CR_LATER","order":false,"spentTimeMills":3}"#;
        let result = ConsumeMessageDirectlyResult::from_json(java).unwrap();
        assert_eq!(result.consume_result, Some(CmResult::Later));
        assert_eq!(result.to_json().as_bytes(), java);
        // Java's defaults for what is absent; the result by ordinal as fastjson accepts.
        let sparse = ConsumeMessageDirectlyResult::from_json(br#"{"consumeResult":4}"#).unwrap();
        assert_eq!(sparse.consume_result, Some(CmResult::ThrowException));
        assert!(sparse.auto_commit);
        let thrown = ConsumeMessageDirectlyResult {
            consume_result: Some(CmResult::ThrowException),
            remark: Some("boom".into()),
            ..ConsumeMessageDirectlyResult::default()
        };
        assert_eq!(
            thrown.to_json(),
            r#"{"autoCommit":true,"consumeResult":"CR_THROW_EXCEPTION","order":false,"remark":"boom","spentTimeMills":0}"#
        );
    }

    #[test]
    fn consumer_status_bodies_use_object_keys_at_both_depths() {
        let mut one = BTreeMap::new();
        one.insert(queue_of("T", 1), 7);
        let client = GetConsumerStatusBody {
            message_queue_table: one.clone(),
            ..GetConsumerStatusBody::default()
        };
        assert_eq!(
            std::str::from_utf8(&client.to_fastjson()).unwrap(),
            r#"{"consumerTable":{},"messageQueueTable":{{"brokerName":"b","queueId":1,"topic":"T"}:7}}"#
        );
        // As a Java broker gathers them.
        let java = br#"{"consumerTable":{"10.0.0.1@1":{{"brokerName":"b","queueId":1,"topic":"T"}:7}},"messageQueueTable":{}}"#;
        let gathered = GetConsumerStatusBody::from_fastjson(java).unwrap();
        assert_eq!(gathered.consumer_table["10.0.0.1@1"].0, one);
        assert_eq!(gathered.to_fastjson(), java.to_vec());
    }

    fn queue_of(topic: &str, id: i32) -> MessageQueue {
        MessageQueue {
            broker_name: "b".into(),
            queue_id: id,
            topic: topic.into(),
        }
    }

    #[test]
    fn consumer_connection_reads_enum_names() {
        let java = br#"{"connectionSet":[{"clientAddr":"127.0.0.1:5000","clientId":"c1","language":"JAVA","version":453}],"consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","subscriptionTable":{"T":{"subString":"*","topic":"T"}}}"#;
        let body = ConsumerConnection::from_json(java).unwrap();
        assert_eq!(body.connection_set[0].version, 453);
        assert_eq!(body.message_model, Some(MessageModel::Clustering));
        assert_eq!(body.subscription_table["T"].sub_string, "*");
    }
}
