//! JSON bodies carried by remoting commands (route data, heartbeat, topic config, ...).
//!
//! Every type here uses the exact Java field names (reference §1.8, §2.6, §2.8, §2.10, §2.11).
//! Fields are declared in alphabetical order of their JSON names so that [`JsonBody::to_json`]
//! writes them in the same order as fastjson does (keys sorted), compact and with **quoted keys**:
//! standard JSON that every client accepts, including the Go client that splits `brokerAddrs` by
//! hand.
//!
//! Decoding is as lenient as the Java broker's fastjson, in one place ([`decode_lenient`]) for
//! every body: fastjson's unquoted numeric map keys (normalized by
//! [`fastjson::quote_numeric_keys`]); numbers, booleans and strings written as one another and
//! `null` for any field (the conversions of [`coerce`], no per-field annotations); absent fields
//! (Java defaults); unknown fields; unknown enum names (kept verbatim, see `lenient_enum`).

mod admin;
pub mod coerce;
pub mod fastjson;
mod group;
mod heartbeat;
mod lenient;
pub mod object_keys;
mod register;
mod route;
mod tables;
mod topic;

pub use admin::{
    AdminBody, BrokerStatsData, BrokerStatsItem, CmResult, Connection,
    ConsumeMessageDirectlyResult, ConsumeStats, ConsumeStatus, ConsumerConnection,
    ConsumerOffsetSerializeWrapper, ConsumerRunningInfo, GetConsumerStatusBody, GroupList,
    OffsetWrapper, ProcessQueueInfo, ProducerConnection, QueueOffsets, ResetOffsetBody,
    TopicOffset, TopicStatsTable,
};
pub use group::{
    DelayOffsetBody, ShardScheduleProgress, SubscriptionGroupConfig, SubscriptionGroupWrapper,
    SHARD_PROGRESS_FIELD,
};
pub use heartbeat::{
    CheckClientConfigBody, ConsumeFromWhere, ConsumeType, ConsumerData, ConsumerListBody,
    ExpressionType, HeartbeatData, LockBatchRequestBody, LockBatchResponseBody, MessageModel,
    MessageQueue, ProducerData, SubscriptionData,
};
pub use register::RegisterBrokerBody;
pub use route::{perm, BrokerData, QueueData, TopicRouteData, MASTER_ID};
pub use tables::{ClusterInfo, KvTable, TopicList};
pub use topic::{DataVersion, TopicConfig, TopicConfigSerializeWrapper, TopicFilterType};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Why a body could not be decoded. Each variant names the layer that rejected the bytes, so the
/// caller can put a precise remark into its error response.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The JSON text (after fastjson normalization) is not valid for the expected type.
    #[error("invalid JSON body: {0}")]
    Json(#[from] serde_json::Error),
    /// A compressed REGISTER_BROKER body is not a complete zlib stream.
    #[error("invalid zlib stream in compressed body: {0}")]
    Inflate(std::io::Error),
    /// The inflated (or otherwise binary) body ends before a length-prefixed field is complete.
    #[error("body truncated: {field} needs {need} bytes, {have} left")]
    Truncated {
        field: &'static str,
        need: usize,
        have: usize,
    },
    /// A length prefix is negative.
    #[error("negative length {length} for {field}")]
    NegativeLength { field: &'static str, length: i32 },
    /// A compressed-form topic config line has fewer than the five required fields.
    #[error("bad topic config line {line:?}: {reason}")]
    TopicConfigLine { line: String, reason: &'static str },
    /// Text that must be UTF-8 is not.
    #[error("{field} is not UTF-8")]
    NotUtf8 { field: &'static str },
}

/// A JSON body: standard compact JSON out, fastjson-tolerant JSON in.
pub trait JsonBody: Serialize + DeserializeOwned {
    /// Standard JSON, compact, quoted keys, fields in fastjson's (sorted) order.
    fn to_json(&self) -> String {
        // Serializing these plain data types cannot fail: every map key is a string or an
        // integer and no type has a fallible `Serialize` impl.
        serde_json::to_string(self).expect("body types always serialize")
    }

    /// Parses standard JSON or fastjson's dialect, with fastjson's coercions
    /// ([`decode_lenient`]).
    fn from_json(bytes: &[u8]) -> Result<Self, BodyError> {
        decode_lenient(bytes)
    }
}

/// Reads a JSON body the way the Java broker's fastjson does: unquoted numeric map keys, then
/// every value converted to the type its field asks for ([`coerce`]). Every body ringmq reads
/// goes through here, so no body type declares leniency field by field.
pub fn decode_lenient<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    let normalized = fastjson::quote_numeric_keys(bytes);
    let value: serde_json::Value = serde_json::from_slice(&normalized)?;
    Ok(coerce::from_value(value)?)
}

impl JsonBody for TopicRouteData {}
impl JsonBody for QueueData {}
impl JsonBody for BrokerData {}
impl JsonBody for DataVersion {}
impl JsonBody for TopicConfig {}
impl JsonBody for TopicConfigSerializeWrapper {}
impl JsonBody for ClusterInfo {}
impl JsonBody for TopicList {}
impl JsonBody for KvTable {}
impl JsonBody for HeartbeatData {}
impl JsonBody for ConsumerData {}
impl JsonBody for ProducerData {}
impl JsonBody for SubscriptionData {}
impl JsonBody for ConsumerListBody {}
impl JsonBody for LockBatchRequestBody {}
impl JsonBody for LockBatchResponseBody {}
impl JsonBody for MessageQueue {}
impl JsonBody for CheckClientConfigBody {}
impl JsonBody for SubscriptionGroupConfig {}
impl JsonBody for SubscriptionGroupWrapper {}
impl JsonBody for DelayOffsetBody {}
