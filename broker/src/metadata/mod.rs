//! Broker-wide state and its single owner, the metadata shard (shard 0).
//!
//! * [`Metadata`] lives only on the metadata shard: the topic table, client registrations, the
//!   run-time broker permission and the handle to the name-server registrar.
//! * [`BrokerView`] is the immutable read copy every shard holds for its hot paths (a send checks
//!   its topic and the permission; a pull checks its subscription). The metadata shard publishes
//!   a new one after every change; shards swap their `Arc`.
//! * Another shard asks the owner to change something (auto-create a topic on send) with a
//!   message on the shard mesh and a reply channel; see `processor::ShardMesh`.

pub mod clients;
pub mod groups;
pub mod locks;
pub mod offsets;
pub mod registrar;
pub mod topics;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use ringmq_proto::body::{
    perm, SubscriptionData, SubscriptionGroupConfig, TopicConfig, TopicConfigSerializeWrapper,
};

use crate::channel::ConnHandle;
use clients::ClientManager;
use registrar::{RegisterSnapshot, RegistrarMsg};
use topics::TopicTable;

/// The read copy of broker-wide state.
#[derive(Debug, Clone, Default)]
pub struct BrokerView {
    pub topics: BTreeMap<String, TopicConfig>,
    /// Run-time broker permission (`brokerPermission`, changed by UPDATE_BROKER_CONFIG).
    pub broker_permission: i32,
    /// group → topic → subscription, from consumer heartbeats.
    pub subscriptions: HashMap<String, BTreeMap<String, SubscriptionData>>,
    /// Subscription groups (`retryMaxTimes`, `consumeEnable`, ...), by name.
    pub groups: BTreeMap<String, SubscriptionGroupConfig>,
    /// Consumer groups whose clients heartbeat with `messageModel` BROADCASTING (a pull of such
    /// a group is refused when its subscription group has `consumeBroadcastEnable=false`).
    pub broadcasting: BTreeSet<String>,
}

impl BrokerView {
    pub fn broker_writable(&self) -> bool {
        self.broker_permission & perm::WRITE != 0
    }

    pub fn broker_readable(&self) -> bool {
        self.broker_permission & perm::READ != 0
    }
}

/// Reply of a topic auto-creation: the topic's config, `None` if it may not be created, or the
/// error text (the topic file could not be written).
pub type CreateTopicReply = Result<Option<TopicConfig>, String>;

/// A topic auto-creation asked of the metadata shard (reference §2.3 step 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTopicRequest {
    pub topic: String,
    pub default_topic: String,
    pub queue_nums: i32,
    /// `%RETRY%`/`%DLQ%` topics are created with one queue whatever the default topic says.
    pub group_topic: bool,
}

pub struct Metadata {
    pub topics: TopicTable,
    pub groups: groups::GroupTable,
    pub clients: ClientManager<ConnHandle>,
    pub locks: locks::QueueLocks,
    pub broker_permission: i32,
    registrar: Option<flume::Sender<RegistrarMsg>>,
}

impl Metadata {
    pub fn new(
        topics: TopicTable,
        groups: groups::GroupTable,
        broker_permission: i32,
        registrar: Option<flume::Sender<RegistrarMsg>>,
    ) -> Metadata {
        Metadata {
            topics,
            groups,
            clients: ClientManager::default(),
            locks: locks::QueueLocks::default(),
            broker_permission,
            registrar,
        }
    }

    /// The read copy of the current state.
    pub fn view(&self) -> Arc<BrokerView> {
        Arc::new(BrokerView {
            topics: self.topics.snapshot(),
            broker_permission: self.broker_permission,
            subscriptions: self.clients.subscription_table(),
            groups: self.groups.snapshot(),
            broadcasting: self.clients.broadcasting_groups(),
        })
    }

    /// Asks the registrar to (re-)register now with the current topic table.
    pub fn register_with_name_servers(&self) {
        if let Some(registrar) = &self.registrar {
            let snapshot = RegisterSnapshot {
                topics: registered_topics(self.topics.wrapper(), self.broker_permission),
            };
            let _ = registrar.send(RegistrarMsg::Register(Arc::new(snapshot)));
        }
    }
}

/// What the name servers are told: when the broker is not both readable and writable, every
/// topic is announced with the broker's permission, as Java's `registerBrokerAll` does, so
/// clients stop routing writes here.
pub fn registered_topics(
    mut wrapper: TopicConfigSerializeWrapper,
    broker_permission: i32,
) -> TopicConfigSerializeWrapper {
    let full = perm::READ | perm::WRITE;
    if broker_permission & full != full {
        for topic in wrapper.topic_config_table.values_mut() {
            topic.perm = broker_permission;
        }
    }
    wrapper
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wiped_write_permission_is_announced_per_topic() {
        let mut wrapper = TopicConfigSerializeWrapper::default();
        wrapper
            .topic_config_table
            .insert("T".to_string(), TopicConfig::new("T", 4));
        let same = registered_topics(wrapper.clone(), 6);
        assert_eq!(same.topic_config_table["T"].perm, 6);
        let read_only = registered_topics(wrapper, 4);
        assert_eq!(read_only.topic_config_table["T"].perm, 4);
    }
}
