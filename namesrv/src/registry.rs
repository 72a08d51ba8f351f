//! The name server's whole state: which brokers exist, which are alive, which topics they serve,
//! and the KV config. Pure: no I/O, no clock (callers pass `now_ms` from a monotonic clock), no
//! async. Every operation is a plain method, so the server can run it between two awaits and the
//! rules can be unit-tested without a socket.
//!
//! Invariants (checked by [`RouteRegistry::check_invariants`] in tests):
//! - every `ip:port` in a broker group's address map has exactly one live entry, and every live
//!   entry's address is in its group's map under the id it registered with;
//! - a broker name is in its cluster's set iff it has a `BrokerData` with at least one address;
//! - a topic has at least one queue entry, and only for broker names that have a `BrokerData`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ringmq_proto::body::{
    perm, BrokerData, ClusterInfo, DataVersion, KvTable, QueueData, TopicConfigSerializeWrapper,
    TopicList, TopicRouteData, MASTER_ID,
};

/// Identifies the TCP connection a broker registered on, so closing it drops the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

/// Everything one REGISTER_BROKER request says.
#[derive(Clone, Debug)]
pub struct BrokerRegistration {
    pub cluster_name: String,
    pub broker_name: String,
    pub broker_addr: String,
    pub broker_id: i64,
    pub ha_server_addr: String,
    /// The broker's own expiry (`heartbeatTimeoutMillis`); `None` uses the server default.
    pub heartbeat_timeout_ms: Option<u64>,
    pub enable_acting_master: bool,
    pub zone_name: Option<String>,
    /// `None` when the request carried no body (then no topic is touched).
    pub topics: Option<TopicConfigSerializeWrapper>,
    pub filter_server_list: Vec<String>,
    pub connection: ConnectionId,
}

/// What the REGISTER_BROKER response header says: for a slave, its master and the master's HA
/// address; for a master, nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegisterOutcome {
    pub ha_server_addr: Option<String>,
    pub master_addr: Option<String>,
    /// This address was not registered under this id before (worth an info log line).
    pub first_registration: bool,
}

/// A broker removed by expiry or by its connection closing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemovedBroker {
    pub cluster_name: String,
    pub broker_name: String,
    pub broker_addr: String,
    pub broker_id: i64,
    /// How long the broker had been silent when it was removed.
    pub silent_ms: u64,
}

/// Key of a live broker: Java's `BrokerAddrInfo(clusterName, brokerAddr)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct LiveKey {
    cluster_name: String,
    broker_addr: String,
}

#[derive(Clone, Debug)]
struct LiveBroker {
    broker_name: String,
    broker_id: i64,
    last_update_ms: u64,
    timeout_ms: u64,
    data_version: DataVersion,
    connection: ConnectionId,
    ha_server_addr: String,
}

/// The KV namespace whose entries are order-topic configs (`brokerName:queueNum;...`).
pub const ORDER_TOPIC_CONFIG_NAMESPACE: &str = "ORDER_TOPIC_CONFIG";

/// Route and liveness tables, plus KV config.
#[derive(Debug)]
pub struct RouteRegistry {
    default_broker_timeout_ms: u64,
    /// Cluster name → broker names.
    clusters: BTreeMap<String, BTreeSet<String>>,
    /// Broker name → group (cluster, addresses by id).
    brokers: BTreeMap<String, BrokerData>,
    /// Topic → broker name → queues there.
    topic_queues: BTreeMap<String, BTreeMap<String, QueueData>>,
    live: HashMap<LiveKey, LiveBroker>,
    /// Broker address → its filter servers.
    filter_servers: BTreeMap<String, Vec<String>>,
    /// Namespace → key → value.
    kv: BTreeMap<String, BTreeMap<String, String>>,
}

impl RouteRegistry {
    /// `default_broker_timeout_ms`: how long a broker that did not say otherwise may stay silent.
    pub fn new(default_broker_timeout_ms: u64) -> Self {
        assert!(
            default_broker_timeout_ms > 0,
            "a zero expiry would drop every broker at once"
        );
        Self {
            default_broker_timeout_ms,
            clusters: BTreeMap::new(),
            brokers: BTreeMap::new(),
            topic_queues: BTreeMap::new(),
            live: HashMap::new(),
            filter_servers: BTreeMap::new(),
            kv: BTreeMap::new(),
        }
    }

    /// Registers (or refreshes) a broker. A master's topic table is applied when it is new or its
    /// data version changed; slaves never change topic routes (as in Java without acting master).
    pub fn register_broker(&mut self, reg: BrokerRegistration, now_ms: u64) -> RegisterOutcome {
        self.evict_conflicts(&reg);
        self.clusters
            .entry(reg.cluster_name.clone())
            .or_default()
            .insert(reg.broker_name.clone());
        let group = self
            .brokers
            .entry(reg.broker_name.clone())
            .or_insert_with(|| BrokerData::new(&reg.cluster_name, &reg.broker_name));
        group.cluster.clone_from(&reg.cluster_name);
        group.enable_acting_master = reg.enable_acting_master;
        if reg.zone_name.is_some() {
            group.zone_name.clone_from(&reg.zone_name);
        }
        // One address has one id: a slave promoted to master re-registers under id 0.
        group
            .broker_addrs
            .retain(|id, addr| *id == reg.broker_id || *addr != reg.broker_addr);
        let old_addr = group
            .broker_addrs
            .insert(reg.broker_id, reg.broker_addr.clone());
        let live_key = LiveKey {
            cluster_name: reg.cluster_name.clone(),
            broker_addr: reg.broker_addr.clone(),
        };
        if let Some(old) = old_addr.as_ref().filter(|old| **old != reg.broker_addr) {
            // Same id, new address (broker restarted elsewhere): the old address is gone.
            self.live.remove(&LiveKey {
                cluster_name: reg.cluster_name.clone(),
                broker_addr: old.clone(),
            });
            self.filter_servers.remove(old);
        }
        let registered_first = old_addr.is_none();
        let previous_version = self.live.get(&live_key).map(|l| l.data_version.clone());

        let data_version = match &reg.topics {
            Some(wrapper) => {
                let changed = previous_version.as_ref() != Some(&wrapper.data_version);
                if reg.broker_id == MASTER_ID && (registered_first || changed) {
                    self.apply_topic_table(&reg.broker_name, wrapper);
                }
                wrapper.data_version.clone()
            }
            None => previous_version.unwrap_or_default(),
        };
        self.live.insert(
            live_key,
            LiveBroker {
                broker_name: reg.broker_name.clone(),
                broker_id: reg.broker_id,
                last_update_ms: now_ms,
                timeout_ms: reg
                    .heartbeat_timeout_ms
                    .unwrap_or(self.default_broker_timeout_ms),
                data_version,
                connection: reg.connection,
                ha_server_addr: reg.ha_server_addr.clone(),
            },
        );
        if reg.filter_server_list.is_empty() {
            self.filter_servers.remove(&reg.broker_addr);
        } else {
            self.filter_servers
                .insert(reg.broker_addr.clone(), reg.filter_server_list.clone());
        }
        RegisterOutcome {
            first_registration: registered_first,
            ..self.slave_outcome(&reg)
        }
    }

    /// A group that moved to another cluster, or an address that moved to another group, starts
    /// over: the old registration is removed so that no table keeps a stale copy.
    fn evict_conflicts(&mut self, reg: &BrokerRegistration) {
        let moved_cluster = self
            .brokers
            .get(&reg.broker_name)
            .is_some_and(|group| group.cluster != reg.cluster_name);
        if moved_cluster {
            let old_keys: Vec<LiveKey> = self
                .live
                .iter()
                .filter(|(_, live)| live.broker_name == reg.broker_name)
                .map(|(key, _)| key.clone())
                .collect();
            for key in old_keys {
                self.live.remove(&key);
                self.filter_servers.remove(&key.broker_addr);
            }
            self.remove_group(&reg.broker_name);
        }
        let key = LiveKey {
            cluster_name: reg.cluster_name.clone(),
            broker_addr: reg.broker_addr.clone(),
        };
        if let Some(live) = self.live.get(&key).cloned() {
            if live.broker_name != reg.broker_name {
                self.unregister_broker(
                    &reg.cluster_name,
                    &reg.broker_addr,
                    &live.broker_name,
                    live.broker_id,
                );
            }
        }
    }

    fn apply_topic_table(&mut self, broker_name: &str, wrapper: &TopicConfigSerializeWrapper) {
        for (topic, config) in &wrapper.topic_config_table {
            let queue = QueueData {
                broker_name: broker_name.to_owned(),
                perm: config.perm,
                read_queue_nums: config.read_queue_nums,
                topic_sys_flag: config.topic_sys_flag,
                write_queue_nums: config.write_queue_nums,
            };
            self.topic_queues
                .entry(topic.clone())
                .or_default()
                .insert(broker_name.to_owned(), queue);
        }
    }

    fn slave_outcome(&self, reg: &BrokerRegistration) -> RegisterOutcome {
        if reg.broker_id == MASTER_ID {
            return RegisterOutcome::default();
        }
        let master_addr = self
            .brokers
            .get(&reg.broker_name)
            .and_then(|group| group.master_addr());
        let master_live = master_addr.and_then(|addr| {
            self.live.get(&LiveKey {
                cluster_name: reg.cluster_name.clone(),
                broker_addr: addr.to_owned(),
            })
        });
        match (master_addr, master_live) {
            (Some(addr), Some(live)) => RegisterOutcome {
                ha_server_addr: Some(live.ha_server_addr.clone()),
                master_addr: Some(addr.to_owned()),
                first_registration: false,
            },
            _ => RegisterOutcome::default(),
        }
    }

    /// Removes one broker (UNREGISTER_BROKER). Returns false if it was not registered at that
    /// address under that id. When the last member of a group goes, the group, its place in the
    /// cluster and its queues in every topic go too.
    pub fn unregister_broker(
        &mut self,
        cluster_name: &str,
        broker_addr: &str,
        broker_name: &str,
        broker_id: i64,
    ) -> bool {
        // Only a request naming the registration exactly removes it: a stale UNREGISTER from an
        // old incarnation must not take down the broker now registered at that address.
        let Some(group) = self.brokers.get_mut(broker_name) else {
            return false;
        };
        if group.cluster != cluster_name
            || group.broker_addrs.get(&broker_id).map(String::as_str) != Some(broker_addr)
        {
            return false;
        }
        group.broker_addrs.remove(&broker_id);
        self.live.remove(&LiveKey {
            cluster_name: cluster_name.to_owned(),
            broker_addr: broker_addr.to_owned(),
        });
        self.filter_servers.remove(broker_addr);
        if group.broker_addrs.is_empty() {
            self.remove_group(broker_name);
        }
        true
    }

    fn remove_group(&mut self, broker_name: &str) {
        if let Some(group) = self.brokers.remove(broker_name) {
            if let Some(names) = self.clusters.get_mut(&group.cluster) {
                names.remove(broker_name);
                if names.is_empty() {
                    self.clusters.remove(&group.cluster);
                }
            }
        }
        self.topic_queues.retain(|_, queues| {
            queues.remove(broker_name);
            !queues.is_empty()
        });
    }

    /// Drops every broker silent for longer than its timeout.
    pub fn expire(&mut self, now_ms: u64) -> Vec<RemovedBroker> {
        let expired: Vec<LiveKey> = self
            .live
            .iter()
            .filter(|(_, live)| now_ms.saturating_sub(live.last_update_ms) > live.timeout_ms)
            .map(|(key, _)| key.clone())
            .collect();
        self.remove_live(expired, now_ms)
    }

    /// Drops every broker that registered on `connection` (the connection closed).
    pub fn connection_closed(
        &mut self,
        connection: ConnectionId,
        now_ms: u64,
    ) -> Vec<RemovedBroker> {
        let gone: Vec<LiveKey> = self
            .live
            .iter()
            .filter(|(_, live)| live.connection == connection)
            .map(|(key, _)| key.clone())
            .collect();
        self.remove_live(gone, now_ms)
    }

    fn remove_live(&mut self, keys: Vec<LiveKey>, now_ms: u64) -> Vec<RemovedBroker> {
        let mut removed = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(live) = self.live.get(&key).cloned() else {
                continue;
            };
            let unregistered = self.unregister_broker(
                &key.cluster_name,
                &key.broker_addr,
                &live.broker_name,
                live.broker_id,
            );
            // By the invariants a live entry always names its group; if that ever broke, still
            // drop the entry rather than "expire" it again on every scan.
            debug_assert!(unregistered, "live entry {key:?} had no group address");
            if !unregistered {
                self.live.remove(&key);
            }
            removed.push(RemovedBroker {
                cluster_name: key.cluster_name,
                broker_name: live.broker_name,
                broker_addr: key.broker_addr,
                broker_id: live.broker_id,
                silent_ms: now_ms.saturating_sub(live.last_update_ms),
            });
        }
        removed
    }

    /// Refreshes a broker's liveness without re-registering (BROKER_HEARTBEAT). False if unknown.
    pub fn touch_broker(&mut self, cluster_name: &str, broker_addr: &str, now_ms: u64) -> bool {
        let key = LiveKey {
            cluster_name: cluster_name.to_owned(),
            broker_addr: broker_addr.to_owned(),
        };
        match self.live.get_mut(&key) {
            Some(live) => {
                live.last_update_ms = now_ms;
                true
            }
            None => false,
        }
    }

    /// QUERY_DATA_VERSION: whether `version` differs from what the broker last registered, and the
    /// registered version. Refreshes the broker's liveness, as Java does.
    pub fn query_data_version(
        &mut self,
        cluster_name: &str,
        broker_addr: &str,
        version: &DataVersion,
        now_ms: u64,
    ) -> (bool, Option<DataVersion>) {
        self.touch_broker(cluster_name, broker_addr, now_ms);
        let key = LiveKey {
            cluster_name: cluster_name.to_owned(),
            broker_addr: broker_addr.to_owned(),
        };
        match self.live.get(&key) {
            Some(live) => (
                live.data_version != *version,
                Some(live.data_version.clone()),
            ),
            None => (true, None),
        }
    }

    /// The route of a topic, or `None` if no live broker serves it.
    pub fn route(&self, topic: &str) -> Option<TopicRouteData> {
        let queues = self.topic_queues.get(topic)?;
        let mut route = TopicRouteData::default();
        for (broker_name, queue) in queues {
            let Some(group) = self.brokers.get(broker_name) else {
                continue;
            };
            for addr in group.broker_addrs.values() {
                if let Some(servers) = self.filter_servers.get(addr) {
                    route
                        .filter_server_table
                        .insert(addr.clone(), servers.clone());
                }
            }
            route.broker_datas.push(group.clone());
            route.queue_datas.push(queue.clone());
        }
        if route.broker_datas.is_empty() {
            return None;
        }
        Some(route)
    }

    pub fn cluster_info(&self) -> ClusterInfo {
        ClusterInfo {
            broker_addr_table: self.brokers.clone(),
            cluster_addr_table: self.clusters.clone(),
        }
    }

    /// Topics with at least one queue on a live broker.
    pub fn topic_count(&self) -> usize {
        self.topic_queues.len()
    }

    pub fn topic_list(&self) -> TopicList {
        TopicList {
            broker_addr: None,
            topic_list: self.topic_queues.keys().cloned().collect(),
        }
    }

    /// Topics with queues on any broker of `cluster_name` (GET_TOPICS_BY_CLUSTER).
    pub fn topics_of_cluster(&self, cluster_name: &str) -> TopicList {
        let Some(names) = self.clusters.get(cluster_name) else {
            return TopicList::default();
        };
        TopicList {
            broker_addr: None,
            topic_list: self
                .topic_queues
                .iter()
                .filter(|(_, queues)| queues.keys().any(|name| names.contains(name)))
                .map(|(topic, _)| topic.clone())
                .collect(),
        }
    }

    /// Clears the WRITE bit of every queue entry of `broker_name`; returns how many topics changed.
    pub fn wipe_write_perm(&mut self, broker_name: &str) -> usize {
        self.update_perm(broker_name, |perm_bits| perm_bits & !perm::WRITE)
    }

    /// Sets the WRITE bit again (ADD_WRITE_PERM_OF_BROKER); returns how many topics changed.
    pub fn add_write_perm(&mut self, broker_name: &str) -> usize {
        self.update_perm(broker_name, |perm_bits| perm_bits | perm::WRITE)
    }

    fn update_perm(&mut self, broker_name: &str, change: impl Fn(i32) -> i32) -> usize {
        let mut changed = 0;
        for queues in self.topic_queues.values_mut() {
            if let Some(queue) = queues.get_mut(broker_name) {
                queue.perm = change(queue.perm);
                changed += 1;
            }
        }
        changed
    }

    /// Removes a topic's routes: all of them, or only those on brokers of `cluster_name`.
    /// Returns false if the topic was unknown.
    pub fn delete_topic(&mut self, topic: &str, cluster_name: Option<&str>) -> bool {
        let Some(queues) = self.topic_queues.get_mut(topic) else {
            return false;
        };
        match cluster_name.filter(|name| !name.is_empty()) {
            Some(cluster) => {
                if let Some(names) = self.clusters.get(cluster) {
                    queues.retain(|broker_name, _| !names.contains(broker_name));
                }
                if queues.is_empty() {
                    self.topic_queues.remove(topic);
                }
            }
            None => {
                self.topic_queues.remove(topic);
            }
        }
        true
    }

    pub fn put_kv(&mut self, namespace: &str, key: &str, value: &str) {
        self.kv
            .entry(namespace.to_owned())
            .or_default()
            .insert(key.to_owned(), value.to_owned());
    }

    pub fn get_kv(&self, namespace: &str, key: &str) -> Option<&str> {
        self.kv.get(namespace)?.get(key).map(String::as_str)
    }

    /// Returns false if there was no such entry.
    pub fn delete_kv(&mut self, namespace: &str, key: &str) -> bool {
        let Some(table) = self.kv.get_mut(namespace) else {
            return false;
        };
        let removed = table.remove(key).is_some();
        if table.is_empty() {
            self.kv.remove(namespace);
        }
        removed
    }

    /// A namespace's whole table, or `None` if it has no entry.
    pub fn kv_list(&self, namespace: &str) -> Option<KvTable> {
        self.kv.get(namespace).map(|table| KvTable {
            table: table.clone(),
        })
    }

    /// Number of live brokers (for logs).
    pub fn live_broker_count(&self) -> usize {
        self.live.len()
    }

    /// Panics if a documented invariant does not hold. Cheap enough for tests after every step.
    pub fn check_invariants(&self) {
        let mut addrs_in_groups = 0;
        for (name, group) in &self.brokers {
            assert_eq!(&group.broker_name, name);
            assert!(
                !group.broker_addrs.is_empty(),
                "group {name} without address"
            );
            assert!(
                self.clusters
                    .get(&group.cluster)
                    .is_some_and(|s| s.contains(name)),
                "group {name} missing from cluster {}",
                group.cluster
            );
            for (id, addr) in &group.broker_addrs {
                let key = LiveKey {
                    cluster_name: group.cluster.clone(),
                    broker_addr: addr.clone(),
                };
                let live = self.live.get(&key);
                assert!(live.is_some(), "address {addr} of {name} has no live entry");
                let live = live.expect("checked above");
                assert_eq!((&live.broker_name, live.broker_id), (name, *id));
                addrs_in_groups += 1;
            }
        }
        assert_eq!(
            addrs_in_groups,
            self.live.len(),
            "live entries without a group address"
        );
        for (cluster, names) in &self.clusters {
            assert!(!names.is_empty(), "empty cluster {cluster}");
            for name in names {
                assert!(
                    self.brokers.contains_key(name),
                    "cluster {cluster} lists unknown {name}"
                );
            }
        }
        for (topic, queues) in &self.topic_queues {
            assert!(!queues.is_empty(), "topic {topic} without queues");
            for name in queues.keys() {
                assert!(
                    self.brokers.contains_key(name),
                    "topic {topic} on unknown {name}"
                );
            }
        }
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
