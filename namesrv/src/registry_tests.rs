//! Unit tests of the route registry's rules, without any socket.

use super::*;
use ringmq_proto::body::TopicConfig;

const TIMEOUT_MS: u64 = 120_000;

fn topics(version: i64, names: &[(&str, i32)]) -> TopicConfigSerializeWrapper {
    let mut wrapper = TopicConfigSerializeWrapper {
        data_version: DataVersion {
            counter: version,
            state_version: 0,
            timestamp: version * 1000,
        },
        ..TopicConfigSerializeWrapper::default()
    };
    for (name, queues) in names {
        wrapper
            .topic_config_table
            .insert((*name).to_owned(), TopicConfig::new(*name, *queues));
    }
    wrapper
}

fn registration(name: &str, id: i64, addr: &str, conn: u64) -> BrokerRegistration {
    BrokerRegistration {
        cluster_name: "DefaultCluster".to_owned(),
        broker_name: name.to_owned(),
        broker_addr: addr.to_owned(),
        broker_id: id,
        ha_server_addr: format!("{addr}-ha"),
        heartbeat_timeout_ms: None,
        enable_acting_master: false,
        zone_name: None,
        topics: Some(topics(1, &[("T1", 4)])),
        filter_server_list: vec![],
        connection: ConnectionId(conn),
    }
}

fn registry_with_master() -> RouteRegistry {
    let mut registry = RouteRegistry::new(TIMEOUT_MS);
    registry.register_broker(registration("broker-a", 0, "127.0.0.1:10911", 1), 0);
    registry.check_invariants();
    registry
}

#[test]
fn registered_master_serves_its_topics() {
    let registry = registry_with_master();
    let route = registry.route("T1").expect("route");
    assert_eq!(route.broker_datas.len(), 1);
    assert_eq!(route.broker_datas[0].master_addr(), Some("127.0.0.1:10911"));
    assert_eq!(route.broker_datas[0].cluster, "DefaultCluster");
    let queue = &route.queue_datas[0];
    assert_eq!(
        (queue.read_queue_nums, queue.write_queue_nums, queue.perm),
        (4, 4, 6)
    );
    assert!(registry.route("T2").is_none());
    assert_eq!(registry.topic_list().topic_list.len(), 1);
    let info = registry.cluster_info();
    assert!(info.cluster_addr_table["DefaultCluster"].contains("broker-a"));
}

#[test]
fn slave_learns_its_master_and_does_not_change_topics() {
    let mut registry = registry_with_master();
    let mut slave = registration("broker-a", 1, "127.0.0.1:10921", 2);
    slave.topics = Some(topics(9, &[("OnlyOnSlave", 2)]));
    let outcome = registry.register_broker(slave, 10);
    assert_eq!(outcome.master_addr.as_deref(), Some("127.0.0.1:10911"));
    assert_eq!(
        outcome.ha_server_addr.as_deref(),
        Some("127.0.0.1:10911-ha")
    );
    assert!(registry.route("OnlyOnSlave").is_none());
    assert_eq!(
        registry.route("T1").unwrap().broker_datas[0]
            .broker_addrs
            .len(),
        2
    );
    registry.check_invariants();
}

#[test]
fn master_gets_an_empty_outcome_and_slave_without_master_too() {
    let mut registry = RouteRegistry::new(TIMEOUT_MS);
    let outcome = registry.register_broker(registration("b", 1, "127.0.0.1:1", 1), 0);
    assert_eq!((outcome.master_addr, outcome.ha_server_addr), (None, None));
    assert!(outcome.first_registration);
    let outcome = registry.register_broker(registration("b", 0, "127.0.0.1:2", 1), 0);
    assert_eq!((outcome.master_addr, outcome.ha_server_addr), (None, None));
    let outcome = registry.register_broker(registration("b", 0, "127.0.0.1:2", 1), 1);
    assert!(
        !outcome.first_registration,
        "a refresh is not a first registration"
    );
    registry.check_invariants();
}

#[test]
fn topic_table_is_reapplied_only_when_the_data_version_changes() {
    let mut registry = registry_with_master();
    registry.wipe_write_perm("broker-a");
    // Same version: the wiped permission stays (the broker has not changed its topics).
    registry.register_broker(registration("broker-a", 0, "127.0.0.1:10911", 1), 5);
    assert_eq!(
        registry.route("T1").unwrap().queue_datas[0].perm,
        perm::READ
    );
    // New version: the broker's table wins again, and new topics appear.
    let mut reg = registration("broker-a", 0, "127.0.0.1:10911", 1);
    reg.topics = Some(topics(2, &[("T1", 4), ("T2", 8)]));
    registry.register_broker(reg, 6);
    assert_eq!(registry.route("T1").unwrap().queue_datas[0].perm, 6);
    assert_eq!(
        registry.route("T2").unwrap().queue_datas[0].read_queue_nums,
        8
    );
    registry.check_invariants();
}

#[test]
fn registration_without_body_keeps_topics_and_version() {
    let mut registry = registry_with_master();
    let mut reg = registration("broker-a", 0, "127.0.0.1:10911", 1);
    reg.topics = None;
    registry.register_broker(reg, 5);
    assert!(registry.route("T1").is_some());
    let (changed, current) = registry.query_data_version(
        "DefaultCluster",
        "127.0.0.1:10911",
        &topics(1, &[]).data_version,
        6,
    );
    assert!(!changed);
    assert_eq!(current.unwrap().counter, 1);
}

#[test]
fn unregistering_the_last_member_removes_group_cluster_and_routes() {
    let mut registry = registry_with_master();
    registry.register_broker(registration("broker-a", 1, "127.0.0.1:10921", 2), 0);
    assert!(registry.unregister_broker("DefaultCluster", "127.0.0.1:10921", "broker-a", 1));
    assert!(registry.route("T1").is_some(), "the master still serves T1");
    assert!(!registry.unregister_broker("DefaultCluster", "127.0.0.1:9", "broker-a", 0));
    assert!(
        registry.route("T1").is_some(),
        "a wrong address removes nothing"
    );
    assert!(registry.unregister_broker("DefaultCluster", "127.0.0.1:10911", "broker-a", 0));
    assert!(registry.route("T1").is_none());
    assert!(registry.cluster_info().cluster_addr_table.is_empty());
    assert!(registry.topic_list().topic_list.is_empty());
    registry.check_invariants();
}

#[test]
fn silent_brokers_expire_after_their_timeout() {
    let mut registry = registry_with_master();
    let mut short = registration("broker-b", 0, "127.0.0.1:10912", 2);
    short.heartbeat_timeout_ms = Some(1_000);
    registry.register_broker(short, 0);
    assert!(
        registry.expire(1_000).is_empty(),
        "exactly at the timeout is still alive"
    );
    let removed = registry.expire(1_001);
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].broker_name, "broker-b");
    assert_eq!(removed[0].silent_ms, 1_001);
    // broker-a refreshes and survives past its first deadline.
    registry.register_broker(registration("broker-a", 0, "127.0.0.1:10911", 1), 100_000);
    assert!(registry.expire(TIMEOUT_MS + 1).is_empty());
    assert!(registry.touch_broker("DefaultCluster", "127.0.0.1:10911", 200_000));
    assert!(registry.expire(200_000 + TIMEOUT_MS).is_empty());
    assert_eq!(registry.expire(200_001 + TIMEOUT_MS).len(), 1);
    assert!(registry.route("T1").is_none());
    registry.check_invariants();
}

#[test]
fn closing_a_connection_drops_only_the_brokers_registered_on_it() {
    let mut registry = registry_with_master();
    let mut other = registration("broker-b", 0, "127.0.0.1:10912", 2);
    other.topics = Some(topics(1, &[("T1", 2)]));
    registry.register_broker(other, 0);
    assert_eq!(registry.route("T1").unwrap().broker_datas.len(), 2);
    assert!(registry.connection_closed(ConnectionId(99), 1).is_empty());
    let removed = registry.connection_closed(ConnectionId(1), 1);
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].broker_addr, "127.0.0.1:10911");
    let route = registry.route("T1").unwrap();
    assert_eq!(route.broker_datas.len(), 1);
    assert_eq!(route.broker_datas[0].broker_name, "broker-b");
    registry.check_invariants();
}

#[test]
fn re_registering_on_a_new_connection_moves_ownership() {
    let mut registry = registry_with_master();
    registry.register_broker(registration("broker-a", 0, "127.0.0.1:10911", 7), 1);
    assert!(registry.connection_closed(ConnectionId(1), 2).is_empty());
    assert_eq!(registry.connection_closed(ConnectionId(7), 2).len(), 1);
}

#[test]
fn promoted_slave_replaces_its_old_id_and_moved_addresses_are_cleaned() {
    let mut registry = registry_with_master();
    registry.register_broker(registration("broker-a", 1, "127.0.0.1:10921", 2), 0);
    registry.unregister_broker("DefaultCluster", "127.0.0.1:10911", "broker-a", 0);
    registry.register_broker(registration("broker-a", 0, "127.0.0.1:10921", 2), 1);
    let group = &registry.cluster_info().broker_addr_table["broker-a"];
    assert_eq!(group.broker_addrs.len(), 1);
    assert_eq!(group.master_addr(), Some("127.0.0.1:10921"));
    registry.check_invariants();
    // Same id, new address: the old address is no longer live.
    registry.register_broker(registration("broker-a", 0, "127.0.0.1:10931", 3), 2);
    registry.check_invariants();
    // The address moves to another group name.
    registry.register_broker(registration("broker-z", 0, "127.0.0.1:10931", 3), 3);
    assert!(!registry
        .cluster_info()
        .broker_addr_table
        .contains_key("broker-a"));
    registry.check_invariants();
    // The group moves to another cluster.
    let mut moved = registration("broker-z", 0, "127.0.0.1:10931", 3);
    moved.cluster_name = "OtherCluster".to_owned();
    registry.register_broker(moved, 4);
    let info = registry.cluster_info();
    assert!(!info.cluster_addr_table.contains_key("DefaultCluster"));
    assert!(info.cluster_addr_table["OtherCluster"].contains("broker-z"));
    registry.check_invariants();
}

#[test]
fn wipe_and_add_write_perm_count_topics() {
    let mut registry = RouteRegistry::new(TIMEOUT_MS);
    let mut reg = registration("broker-a", 0, "127.0.0.1:10911", 1);
    reg.topics = Some(topics(1, &[("T1", 4), ("T2", 4), ("T3", 4)]));
    registry.register_broker(reg, 0);
    assert_eq!(registry.wipe_write_perm("broker-a"), 3);
    assert_eq!(registry.wipe_write_perm("nobody"), 0);
    assert_eq!(
        registry.route("T2").unwrap().queue_datas[0].perm,
        perm::READ
    );
    assert_eq!(registry.add_write_perm("broker-a"), 3);
    assert_eq!(
        registry.route("T2").unwrap().queue_datas[0].perm,
        perm::READ | perm::WRITE
    );
}

#[test]
fn delete_topic_everywhere_or_in_one_cluster() {
    let mut registry = registry_with_master();
    let mut other = registration("broker-b", 0, "127.0.0.1:10912", 2);
    other.cluster_name = "C2".to_owned();
    registry.register_broker(other, 0);
    assert!(registry.delete_topic("T1", Some("C2")));
    let route = registry.route("T1").unwrap();
    assert_eq!(route.broker_datas.len(), 1);
    assert_eq!(route.broker_datas[0].broker_name, "broker-a");
    assert!(registry.delete_topic("T1", Some("")));
    assert!(registry.route("T1").is_none());
    assert!(!registry.delete_topic("T1", None));
    registry.check_invariants();
}

#[test]
fn topics_of_a_cluster() {
    let mut registry = registry_with_master();
    let mut other = registration("broker-b", 0, "127.0.0.1:10912", 2);
    other.cluster_name = "C2".to_owned();
    other.topics = Some(topics(1, &[("T2", 1)]));
    registry.register_broker(other, 0);
    let list = registry.topics_of_cluster("C2").topic_list;
    assert_eq!(list.into_iter().collect::<Vec<_>>(), vec!["T2".to_owned()]);
    assert_eq!(
        registry
            .topics_of_cluster("DefaultCluster")
            .topic_list
            .len(),
        1
    );
    assert!(registry.topics_of_cluster("nope").topic_list.is_empty());
}

#[test]
fn kv_config_put_get_delete_list() {
    let mut registry = RouteRegistry::new(TIMEOUT_MS);
    assert_eq!(registry.get_kv(ORDER_TOPIC_CONFIG_NAMESPACE, "T1"), None);
    assert!(registry.kv_list(ORDER_TOPIC_CONFIG_NAMESPACE).is_none());
    registry.put_kv(ORDER_TOPIC_CONFIG_NAMESPACE, "T1", "broker-a:4");
    registry.put_kv(ORDER_TOPIC_CONFIG_NAMESPACE, "T1", "broker-a:8");
    assert_eq!(
        registry.get_kv(ORDER_TOPIC_CONFIG_NAMESPACE, "T1"),
        Some("broker-a:8")
    );
    assert_eq!(
        registry
            .kv_list(ORDER_TOPIC_CONFIG_NAMESPACE)
            .unwrap()
            .table
            .len(),
        1
    );
    assert!(registry.delete_kv(ORDER_TOPIC_CONFIG_NAMESPACE, "T1"));
    assert!(!registry.delete_kv(ORDER_TOPIC_CONFIG_NAMESPACE, "T1"));
    assert!(registry.kv_list(ORDER_TOPIC_CONFIG_NAMESPACE).is_none());
}

#[test]
fn filter_servers_appear_in_routes() {
    let mut registry = RouteRegistry::new(TIMEOUT_MS);
    let mut reg = registration("broker-a", 0, "127.0.0.1:10911", 1);
    reg.filter_server_list = vec!["127.0.0.1:30000".to_owned()];
    registry.register_broker(reg, 0);
    let route = registry.route("T1").unwrap();
    assert_eq!(
        route.filter_server_table["127.0.0.1:10911"],
        vec!["127.0.0.1:30000"]
    );
}

#[test]
fn query_data_version_of_unknown_broker_says_changed() {
    let mut registry = RouteRegistry::new(TIMEOUT_MS);
    let (changed, current) =
        registry.query_data_version("C", "127.0.0.1:1", &DataVersion::default(), 0);
    assert!(changed);
    assert!(current.is_none());
}

/// A small deterministic generator, so a failing sequence is reproducible from its seed.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

#[test]
fn random_operation_sequences_keep_every_invariant() {
    for seed in 1..=40u64 {
        let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut registry = RouteRegistry::new(50);
        let mut now_ms = 0;
        for _ in 0..300 {
            now_ms += rng.below(20);
            let name = format!("b{}", rng.below(3));
            let addr = format!("127.0.0.1:{}", 10_000 + rng.below(5));
            let id = rng.below(3) as i64;
            let cluster = format!("c{}", rng.below(2));
            match rng.below(8) {
                0..=2 => {
                    let mut reg = registration(&name, id, &addr, rng.below(4));
                    reg.cluster_name = cluster;
                    let topic = format!("T{}", rng.below(4));
                    reg.topics = Some(topics(rng.below(3) as i64, &[(topic.as_str(), 2)]));
                    registry.register_broker(reg, now_ms);
                }
                3 => {
                    registry.unregister_broker(&cluster, &addr, &name, id);
                }
                4 => {
                    registry.expire(now_ms);
                }
                5 => {
                    registry.connection_closed(ConnectionId(rng.below(4)), now_ms);
                }
                6 => {
                    registry.delete_topic(&format!("T{}", rng.below(4)), None);
                }
                _ => {
                    registry.wipe_write_perm(&name);
                }
            }
            registry.check_invariants();
        }
    }
}
