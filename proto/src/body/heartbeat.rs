//! Client → broker bodies: heartbeat, consumer list, queue locks, client config check
//! (reference §2.6, §2.8).

use serde::{Deserialize, Serialize};

use super::lenient::lenient_enum;

lenient_enum! {
    /// `ConsumeType`: push consumers consume passively, pull consumers actively.
    pub enum ConsumeType default ConsumePassively {
        ConsumeActively = "CONSUME_ACTIVELY",
        ConsumePassively = "CONSUME_PASSIVELY",
        ConsumePop = "CONSUME_POP",
    }
}

lenient_enum! {
    /// `MessageModel`: one consumer of the group gets each message, or every consumer does.
    pub enum MessageModel default Clustering {
        Broadcasting = "BROADCASTING",
        Clustering = "CLUSTERING",
    }
}

lenient_enum! {
    /// `ConsumeFromWhere`: where a group with no committed offset starts.
    pub enum ConsumeFromWhere default ConsumeFromLastOffset {
        ConsumeFromLastOffset = "CONSUME_FROM_LAST_OFFSET",
        ConsumeFromLastOffsetAndFromMinWhenBootFirst =
            "CONSUME_FROM_LAST_OFFSET_AND_FROM_MIN_WHEN_BOOT_FIRST",
        ConsumeFromMinOffset = "CONSUME_FROM_MIN_OFFSET",
        ConsumeFromMaxOffset = "CONSUME_FROM_MAX_OFFSET",
        ConsumeFromFirstOffset = "CONSUME_FROM_FIRST_OFFSET",
        ConsumeFromTimestamp = "CONSUME_FROM_TIMESTAMP",
    }
}

lenient_enum! {
    /// `ExpressionType` of a subscription; absent means TAG.
    pub enum ExpressionType default Tag {
        Sql92 = "SQL92",
        Tag = "TAG",
    }
}

/// HEART_BEAT body (`HeartbeatData`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HeartbeatData {
    /// `clientIP@instanceName[@unitName]`, echoed verbatim by GET_CONSUMER_LIST_BY_GROUP.
    #[serde(rename = "clientID")]
    pub client_id: String,
    pub consumer_data_set: Vec<ConsumerData>,
    /// Heartbeat v2 fingerprint; 0 means a classic heartbeat.
    pub heartbeat_fingerprint: i32,
    pub producer_data_set: Vec<ProducerData>,
    pub without_sub: bool,
}

/// One consumer group of a client (`ConsumerData`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ConsumerData {
    pub consume_from_where: ConsumeFromWhere,
    pub consume_type: ConsumeType,
    pub group_name: String,
    pub message_model: MessageModel,
    pub subscription_data_set: Vec<SubscriptionData>,
    pub unit_mode: bool,
}

/// One producer group of a client (`ProducerData`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ProducerData {
    pub group_name: String,
}

/// One topic subscription (`SubscriptionData`). `codeSet` holds Java `String.hashCode` of each
/// tag; sets are kept as lists in the order the client sent them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SubscriptionData {
    pub class_filter_mode: bool,
    pub code_set: Vec<i32>,
    pub expression_type: ExpressionType,
    pub sub_string: String,
    pub sub_version: i64,
    pub tags_set: Vec<String>,
    pub topic: String,
}

/// GET_CONSUMER_LIST_BY_GROUP response body (`GetConsumerListByGroupResponseBody`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ConsumerListBody {
    pub consumer_id_list: Vec<String>,
}

/// A queue: topic, broker name, queue id (`MessageQueue`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MessageQueue {
    pub broker_name: String,
    pub queue_id: i32,
    pub topic: String,
}

/// LOCK_BATCH_MQ / UNLOCK_BATCH_MQ request body (`LockBatchRequestBody`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LockBatchRequestBody {
    pub client_id: String,
    pub consumer_group: String,
    pub mq_set: Vec<MessageQueue>,
    pub only_this_broker: bool,
}

/// LOCK_BATCH_MQ response body: the queues now locked by the caller (`LockBatchResponseBody`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LockBatchResponseBody {
    #[serde(rename = "lockOKMQSet")]
    pub lock_ok_mq_set: Vec<MessageQueue>,
}

/// CHECK_CLIENT_CONFIG request body (`CheckClientConfigBody`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CheckClientConfigBody {
    pub client_id: String,
    pub group: String,
    pub subscription_data: SubscriptionData,
}
