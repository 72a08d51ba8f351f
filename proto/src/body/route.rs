//! Topic route data, the answer to GET_ROUTEINFO_BY_TOPIC (reference §2.11).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Broker id of a master; slaves have ids > 0. Producers ignore brokers without a master.
pub const MASTER_ID: i64 = 0;

/// `PermName` bits of a topic's or broker's permission.
pub mod perm {
    pub const PRIORITY: i32 = 8;
    pub const READ: i32 = 4;
    pub const WRITE: i32 = 2;
    pub const INHERIT: i32 = 1;
}

/// Where a topic lives: its queues per broker name and the addresses of those brokers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TopicRouteData {
    pub broker_datas: Vec<BrokerData>,
    /// Filter servers per broker address; always `{}` unless a broker registered some.
    pub filter_server_table: BTreeMap<String, Vec<String>>,
    /// `brokerName:queueNum;...` for globally ordered topics (KV namespace ORDER_TOPIC_CONFIG).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_topic_conf: Option<String>,
    pub queue_datas: Vec<QueueData>,
}

/// A topic's queues on one broker name (`QueueData`).
///
/// Only `topicSysFlag` is written (what Java ≥ 4.9 writes); the pre-2021 spelling `topicSynFlag`
/// (still used by the Go client) is accepted on input. Clients that look for the other spelling
/// default it to 0, which is the only value in use, so writing one name is enough.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct QueueData {
    pub broker_name: String,
    pub perm: i32,
    pub read_queue_nums: i32,
    #[serde(alias = "topicSynFlag")]
    pub topic_sys_flag: i32,
    pub write_queue_nums: i32,
}

/// One broker group: a name, its cluster and the address of each member (`BrokerData`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct BrokerData {
    /// Broker id → `ip:port`; id 0 is the master. Written with quoted keys (`{"0":"..."}`).
    pub broker_addrs: BTreeMap<i64, String>,
    pub broker_name: String,
    pub cluster: String,
    pub enable_acting_master: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone_name: Option<String>,
}

impl BrokerData {
    pub fn new(cluster: impl Into<String>, broker_name: impl Into<String>) -> Self {
        Self {
            cluster: cluster.into(),
            broker_name: broker_name.into(),
            ..Self::default()
        }
    }

    /// The master's address, if the group has a live master.
    pub fn master_addr(&self) -> Option<&str> {
        self.broker_addrs.get(&MASTER_ID).map(String::as_str)
    }
}
