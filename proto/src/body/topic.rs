//! Topic configuration as brokers report it (reference §2.10, §2.11).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::lenient::lenient_enum;
use super::route::perm;

/// Version stamp of a broker's topic configuration: the name server re-reads a broker's topics
/// only when this changes (or on the broker's first registration).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DataVersion {
    pub counter: i64,
    pub state_version: i64,
    pub timestamp: i64,
}

lenient_enum! {
    /// `TopicFilterType`: whether a message carries one tag or several.
    pub enum TopicFilterType default SingleTag {
        SingleTag = "SINGLE_TAG",
        MultiTag = "MULTI_TAG",
    }
}

/// One topic's configuration on one broker (`TopicConfig`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TopicConfig {
    pub attributes: BTreeMap<String, String>,
    pub order: bool,
    pub perm: i32,
    pub read_queue_nums: i32,
    pub topic_filter_type: TopicFilterType,
    pub topic_name: String,
    pub topic_sys_flag: i32,
    pub write_queue_nums: i32,
}

impl Default for TopicConfig {
    /// Java's defaults: 16 read and write queues, read-write permission, single tag.
    fn default() -> Self {
        Self {
            attributes: BTreeMap::new(),
            order: false,
            perm: perm::READ | perm::WRITE,
            read_queue_nums: 16,
            topic_filter_type: TopicFilterType::SingleTag,
            topic_name: String::new(),
            topic_sys_flag: 0,
            write_queue_nums: 16,
        }
    }
}

impl TopicConfig {
    /// A topic with `queues` read and write queues and read-write permission.
    pub fn new(topic_name: impl Into<String>, queues: i32) -> Self {
        Self {
            topic_name: topic_name.into(),
            read_queue_nums: queues,
            write_queue_nums: queues,
            ..Self::default()
        }
    }
}

/// A broker's whole topic table with its version (`TopicConfigSerializeWrapper`; the body of
/// GET_ALL_TOPIC_CONFIG and part of REGISTER_BROKER).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TopicConfigSerializeWrapper {
    pub data_version: DataVersion,
    pub topic_config_table: BTreeMap<String, TopicConfig>,
}
