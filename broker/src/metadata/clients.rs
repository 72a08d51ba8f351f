//! Producer and consumer registrations from HEART_BEAT, per connection (reference §2.6, §5.1,
//! pitfall 16).
//!
//! Owned by the metadata shard. A registration lives as long as its connection (dropped when it
//! closes) and at most `CHANNEL_EXPIRED_TIMEOUT_MS` without a heartbeat. Generic over the channel
//! type so the rules are tested without sockets.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ringmq_proto::body::{ConsumerData, MessageModel, SubscriptionData};

use crate::channel::ConnId;

/// A client without a heartbeat for this long is dropped (Java `channelExpiredTimeout`).
pub const CHANNEL_EXPIRED_TIMEOUT_MS: i64 = 120_000;

#[derive(Debug, Clone)]
pub struct ClientChannel<C> {
    pub client_id: String,
    pub channel: C,
    pub last_heartbeat_ms: i64,
    /// The client's `LanguageCode` name and `MQVersion` ordinal, from its heartbeat command
    /// (GET_CONSUMER/PRODUCER_CONNECTION_LIST report them).
    pub language: &'static str,
    pub version: i32,
}

/// One consumer group: its live clients and the subscriptions they reported.
#[derive(Debug, Clone)]
pub struct ConsumerGroup<C> {
    pub clients: BTreeMap<ConnId, ClientChannel<C>>,
    pub subscriptions: BTreeMap<String, SubscriptionData>,
    pub consumer_data: ConsumerData,
}

/// What a consumer registration changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RegisterOutcome {
    /// A client joined the group: its members must be told (NOTIFY_CONSUMER_IDS_CHANGED).
    pub ids_changed: bool,
    /// The group's subscription table changed: the read copies must be republished.
    pub subscriptions_changed: bool,
}

#[derive(Debug)]
pub struct ClientManager<C> {
    consumer_groups: HashMap<String, ConsumerGroup<C>>,
    producer_groups: HashMap<String, BTreeMap<ConnId, ClientChannel<C>>>,
}

impl<C> Default for ClientManager<C> {
    fn default() -> Self {
        ClientManager {
            consumer_groups: HashMap::new(),
            producer_groups: HashMap::new(),
        }
    }
}

impl<C: Clone> ClientManager<C> {
    pub fn register_producer(&mut self, group: &str, conn: ConnId, client: ClientChannel<C>) {
        self.producer_groups
            .entry(group.to_string())
            .or_default()
            .insert(conn, client);
    }

    /// Registers (or refreshes) a consumer. Subscriptions are replaced by the heartbeat's set,
    /// except that a topic's entry is only replaced by one with a newer `subVersion` (two
    /// clients of the group may send slightly different versions).
    pub fn register_consumer(
        &mut self,
        data: &ConsumerData,
        conn: ConnId,
        client: ClientChannel<C>,
    ) -> RegisterOutcome {
        let group = self
            .consumer_groups
            .entry(data.group_name.clone())
            .or_insert_with(|| ConsumerGroup {
                clients: BTreeMap::new(),
                subscriptions: BTreeMap::new(),
                consumer_data: data.clone(),
            });
        let ids_changed = group.clients.insert(conn, client).is_none();
        group.consumer_data = ConsumerData {
            subscription_data_set: Vec::new(),
            ..data.clone()
        };
        let mut subscriptions_changed = false;
        for sub in &data.subscription_data_set {
            let replace = match group.subscriptions.get(&sub.topic) {
                Some(old) => old.sub_version < sub.sub_version && old != sub,
                None => true,
            };
            if replace {
                group.subscriptions.insert(sub.topic.clone(), sub.clone());
                subscriptions_changed = true;
            }
        }
        let before = group.subscriptions.len();
        group
            .subscriptions
            .retain(|topic, _| data.subscription_data_set.iter().any(|s| &s.topic == topic));
        subscriptions_changed |= group.subscriptions.len() != before;
        RegisterOutcome {
            ids_changed,
            subscriptions_changed,
        }
    }

    /// UNREGISTER_CLIENT for a producer group.
    pub fn unregister_producer(&mut self, group: &str, conn: ConnId) {
        if let Some(clients) = self.producer_groups.get_mut(group) {
            clients.remove(&conn);
            if clients.is_empty() {
                self.producer_groups.remove(group);
            }
        }
    }

    /// UNREGISTER_CLIENT for a consumer group. Returns whether the group's client set changed.
    pub fn unregister_consumer(&mut self, group: &str, conn: ConnId) -> bool {
        let Some(consumers) = self.consumer_groups.get_mut(group) else {
            return false;
        };
        let changed = consumers.clients.remove(&conn).is_some();
        if consumers.clients.is_empty() {
            self.consumer_groups.remove(group);
        }
        changed
    }

    /// Drops every registration of a closed connection. Returns the consumer groups whose client
    /// set changed (their remaining members must be notified).
    pub fn connection_closed(&mut self, conn: ConnId) -> Vec<String> {
        self.remove_where(|id, _| *id == conn)
    }

    /// Drops registrations silent for longer than the expiry. Returns the consumer groups whose
    /// client set changed.
    pub fn expire(&mut self, now_ms: i64) -> Vec<String> {
        self.remove_where(|_, client| {
            now_ms - client.last_heartbeat_ms > CHANNEL_EXPIRED_TIMEOUT_MS
        })
    }

    fn remove_where(&mut self, dead: impl Fn(&ConnId, &ClientChannel<C>) -> bool) -> Vec<String> {
        for clients in self.producer_groups.values_mut() {
            clients.retain(|id, client| !dead(id, client));
        }
        self.producer_groups
            .retain(|_, clients| !clients.is_empty());
        let mut changed = Vec::new();
        for (name, group) in self.consumer_groups.iter_mut() {
            let before = group.clients.len();
            group.clients.retain(|id, client| !dead(id, client));
            if group.clients.len() != before {
                changed.push(name.clone());
            }
        }
        self.consumer_groups
            .retain(|_, group| !group.clients.is_empty());
        changed.sort();
        changed
    }

    /// Client ids of a consumer group, sorted and de-duplicated (one client may hold several
    /// connections to this broker); empty if the group has no live client.
    pub fn consumer_ids(&self, group: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .consumer_groups
            .get(group)
            .map(|g| g.clients.values().map(|c| c.client_id.clone()).collect())
            .unwrap_or_default();
        ids.sort();
        ids.dedup();
        ids
    }

    /// (client id, channel) of each of a consumer group's live clients.
    pub fn consumer_members(&self, group: &str) -> Vec<(String, C)> {
        self.consumer_groups
            .get(group)
            .map(|g| {
                g.clients
                    .values()
                    .map(|c| (c.client_id.clone(), c.channel.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Channels of a consumer group's live clients (for NOTIFY_CONSUMER_IDS_CHANGED).
    pub fn consumer_channels(&self, group: &str) -> Vec<C> {
        self.consumer_groups
            .get(group)
            .map(|g| g.clients.values().map(|c| c.channel.clone()).collect())
            .unwrap_or_default()
    }

    /// Channels of a producer group's registered connections (transaction check-backs).
    pub fn producer_channels(&self, group: &str) -> Vec<C> {
        self.producer_groups
            .get(group)
            .map(|g| g.values().map(|c| c.channel.clone()).collect())
            .unwrap_or_default()
    }

    pub fn consumer_group(&self, group: &str) -> Option<&ConsumerGroup<C>> {
        self.consumer_groups.get(group)
    }

    /// group → topic → subscription, the read copy pulls check.
    pub fn subscription_table(&self) -> HashMap<String, BTreeMap<String, SubscriptionData>> {
        self.consumer_groups
            .iter()
            .map(|(name, g)| (name.clone(), g.subscriptions.clone()))
            .collect()
    }

    /// Groups whose consumers reported `messageModel` BROADCASTING (Java's
    /// `ConsumerGroupInfo.getMessageModel`, the latest heartbeat's).
    pub fn broadcasting_groups(&self) -> BTreeSet<String> {
        self.consumer_groups
            .iter()
            .filter(|(_, g)| g.consumer_data.message_model == MessageModel::Broadcasting)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The live producers of `group`.
    pub fn producer_group(&self, group: &str) -> Option<&BTreeMap<ConnId, ClientChannel<C>>> {
        self.producer_groups.get(group)
    }

    pub fn producer_group_len(&self, group: &str) -> usize {
        self.producer_groups.get(group).map_or(0, BTreeMap::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(id: &str, at_ms: i64) -> ClientChannel<&'static str> {
        ClientChannel {
            client_id: id.to_string(),
            channel: "chan",
            last_heartbeat_ms: at_ms,
            language: "JAVA",
            version: 0,
        }
    }

    fn consumer(group: &str, subs: &[(&str, i64)]) -> ConsumerData {
        ConsumerData {
            group_name: group.to_string(),
            subscription_data_set: subs
                .iter()
                .map(|(topic, version)| SubscriptionData {
                    topic: topic.to_string(),
                    sub_string: "*".to_string(),
                    sub_version: *version,
                    ..SubscriptionData::default()
                })
                .collect(),
            ..ConsumerData::default()
        }
    }

    #[test]
    fn joining_changes_ids_refreshing_does_not() {
        let mut clients = ClientManager::default();
        let data = consumer("g", &[("T", 1)]);
        let first = clients.register_consumer(&data, ConnId(1), client("c1", 0));
        assert_eq!(
            first,
            RegisterOutcome {
                ids_changed: true,
                subscriptions_changed: true
            }
        );
        let again = clients.register_consumer(&data, ConnId(1), client("c1", 10));
        assert_eq!(again, RegisterOutcome::default());
        let second = clients.register_consumer(&data, ConnId(2), client("c2", 10));
        assert!(second.ids_changed);
        assert_eq!(
            clients.consumer_ids("g"),
            vec!["c1".to_string(), "c2".to_string()]
        );
        assert_eq!(clients.consumer_channels("g").len(), 2);
    }

    #[test]
    fn subscriptions_follow_newer_versions_and_drop_missing_topics() {
        let mut clients = ClientManager::default();
        clients.register_consumer(
            &consumer("g", &[("T", 5), ("U", 5)]),
            ConnId(1),
            client("c", 0),
        );
        let older = clients.register_consumer(
            &consumer("g", &[("T", 4), ("U", 5)]),
            ConnId(1),
            client("c", 0),
        );
        assert!(!older.subscriptions_changed);
        assert_eq!(
            clients.consumer_group("g").unwrap().subscriptions["T"].sub_version,
            5
        );
        let dropped =
            clients.register_consumer(&consumer("g", &[("T", 5)]), ConnId(1), client("c", 0));
        assert!(dropped.subscriptions_changed);
        assert!(!clients.subscription_table()["g"].contains_key("U"));
    }

    #[test]
    fn closing_a_connection_drops_its_registrations() {
        let mut clients = ClientManager::default();
        clients.register_consumer(&consumer("g", &[("T", 1)]), ConnId(1), client("c1", 0));
        clients.register_consumer(&consumer("g", &[("T", 1)]), ConnId(2), client("c2", 0));
        clients.register_consumer(&consumer("h", &[("T", 1)]), ConnId(2), client("c2", 0));
        clients.register_producer("p", ConnId(2), client("c2", 0));
        assert_eq!(
            clients.connection_closed(ConnId(2)),
            vec!["g".to_string(), "h".to_string()]
        );
        assert_eq!(clients.consumer_ids("g"), vec!["c1".to_string()]);
        assert!(clients.consumer_ids("h").is_empty());
        assert_eq!(clients.producer_group_len("p"), 0);
        assert!(clients.connection_closed(ConnId(2)).is_empty());
    }

    #[test]
    fn unregister_and_expiry() {
        let mut clients = ClientManager::default();
        clients.register_consumer(&consumer("g", &[("T", 1)]), ConnId(1), client("c1", 0));
        clients.register_consumer(
            &consumer("g", &[("T", 1)]),
            ConnId(2),
            client("c2", 100_000),
        );
        assert!(clients.unregister_consumer("g", ConnId(1)));
        assert!(!clients.unregister_consumer("g", ConnId(1)));
        clients.register_consumer(&consumer("g", &[("T", 1)]), ConnId(1), client("c1", 0));
        assert!(clients.expire(CHANNEL_EXPIRED_TIMEOUT_MS).is_empty());
        assert_eq!(
            clients.expire(CHANNEL_EXPIRED_TIMEOUT_MS + 1),
            vec!["g".to_string()]
        );
        assert_eq!(clients.consumer_ids("g"), vec!["c2".to_string()]);
        clients.register_producer("p", ConnId(3), client("p1", 0));
        clients.unregister_producer("p", ConnId(3));
        assert_eq!(clients.producer_group_len("p"), 0);
    }
}
