//! A master and its slave behind a real name server: cluster info shows both, SYNC_MASTER sends
//! are SEND_OK once the slave follows (it learns the master from the name server), after kill -9
//! of the master a push consumer reads every message from the slave, and a consumer group that
//! fails over to the slave continues from the offsets it committed through the master.

mod common;

use std::cell::RefCell;
use std::collections::BTreeSet;

use common::cluster::{bodies, config, create_topic, push_config, recorder};
use common::{run, wait_until, Broker, Namesrv};
use ringmq_client::{Admin, Message, Producer, ProducerConfig, PushConsumer, SendStatus};

const TOPIC: &str = "Replicated";

/// A name server, a SYNC_MASTER and its slave (`broker-a`, ids 0 and 1), syncing metadata every
/// 300 ms.
struct Group {
    namesrv: Namesrv,
    /// `None` once killed.
    master: RefCell<Option<Broker>>,
    slave: Broker,
}

impl Group {
    fn start() -> Group {
        let namesrv = Namesrv::start();
        let ns = namesrv.addr_string();
        let fast = ["--set", "ringmqSlaveSyncIntervalMs=300"];
        let master = Broker::start(
            &ns,
            "broker-a",
            &[fast[0], fast[1], "--set", "brokerRole=SYNC_MASTER"],
        );
        let slave_args = [
            fast[0],
            fast[1],
            "--set",
            "brokerRole=SLAVE",
            "--set",
            "brokerId=1",
        ];
        let slave = Broker::start(&ns, "broker-a", &slave_args);
        Group {
            namesrv,
            master: RefCell::new(Some(master)),
            slave,
        }
    }

    fn master_addr(&self) -> String {
        self.master
            .borrow()
            .as_ref()
            .expect("master running")
            .addr()
    }

    /// Creates the topic on the master and waits until both brokers serve it: cluster info
    /// lists both, a SYNC_MASTER send is SEND_OK (the slave learned its master from the name
    /// server and follows), and the slave's metadata sync copied the topic. A slave serves a
    /// topic only once that copy ran (Java's SlaveSynchronize has the same window), and these
    /// tests kill the master within a second of creating it.
    async fn ready(&self, admin: &Admin, producer: &Producer) {
        create_topic(admin, &self.master_addr(), TOPIC, 2).await;
        wait_until("cluster info to list master and slave", || async {
            admin.cluster_info().await.is_ok_and(|info| {
                info.broker_addr_table
                    .get("broker-a")
                    .is_some_and(|b| b.broker_addrs.len() == 2)
            })
        })
        .await;
        // SLAVE_NOT_AVAILABLE until the slave learned its master from the name server.
        wait_until("SEND_OK from the SYNC_MASTER", || async {
            let sent = producer.send(Message::new(TOPIC, "probe")).await;
            sent.is_ok_and(|r| r.status == SendStatus::SendOk)
        })
        .await;
        wait_until("the slave to know the topic", || async {
            admin
                .all_topic_config(&self.slave.addr())
                .await
                .is_ok_and(|t| t.topic_config_table.contains_key(TOPIC))
        })
        .await;
    }

    /// kill -9 of the master (dropping the guard kills and reaps it), then waits until the
    /// name server routes the topic to the slave only.
    async fn kill_master(&self, admin: &Admin) {
        drop(self.master.borrow_mut().take());
        let slave_addr = self.slave.addr();
        wait_until("the name server to route to the slave only", || async {
            admin.topic_route(TOPIC).await.is_ok_and(|r| {
                r.master_addr("broker-a").is_none()
                    && r.read_addr("broker-a") == Some(slave_addr.as_str())
            })
        })
        .await;
    }
}

/// Sends `bodies` and returns those answered SEND_OK.
async fn send_all(producer: &Producer, bodies: impl Iterator<Item = String>) -> BTreeSet<String> {
    let mut acked = BTreeSet::new();
    for body in bodies {
        let result = producer
            .send(Message::new(TOPIC, body.clone()))
            .await
            .unwrap();
        if result.status == SendStatus::SendOk {
            acked.insert(body);
        }
    }
    acked
}

#[test]
fn consumers_read_from_the_slave_while_the_master_is_gone() {
    let group = Group::start();
    let ns = group.namesrv.addr_string();
    run(move || async move {
        let admin = Admin::new(config(&ns)).unwrap();
        let producer = Producer::start(ProducerConfig::new(config(&ns), "pg")).unwrap();
        group.ready(&admin, &producer).await;
        let mut sent = send_all(&producer, (0..20).map(|i| format!("m{i}"))).await;
        sent.insert("probe".to_string());
        group.kill_master(&admin).await;
        let (got, listener) = recorder();
        let consumer = PushConsumer::start(
            push_config(&ns, "cg-from-slave", "c"),
            &[(TOPIC, "*")],
            listener,
        )
        .await
        .unwrap();
        wait_until("every SEND_OK message read from the slave", || async {
            let received: BTreeSet<String> = bodies(&got).into_iter().collect();
            sent.is_subset(&received)
        })
        .await;
        consumer.shutdown().await;
    });
}

/// Offsets committed through the master reach the slave with its metadata sync (Java's
/// `syncConsumerOffset`): a consumer of the same group started after the master's kill -9
/// reads from the slave only what the group had not consumed, in queue order, so once it has
/// every new message no old one may have come before.
#[test]
fn a_group_failing_over_to_the_slave_continues_from_its_committed_offsets() {
    const GROUP: &str = "cg-failover";
    let group = Group::start();
    let ns = group.namesrv.addr_string();
    run(move || async move {
        let admin = Admin::new(config(&ns)).unwrap();
        let producer = Producer::start(ProducerConfig::new(config(&ns), "pg")).unwrap();
        group.ready(&admin, &producer).await;
        let mut old = send_all(&producer, (0..20).map(|i| format!("old{i}"))).await;
        old.insert("probe".to_string());
        let (got, listener) = recorder();
        let first = PushConsumer::start(push_config(&ns, GROUP, "c1"), &[(TOPIC, "*")], listener)
            .await
            .unwrap();
        wait_until("the first consumer to read every message", || async {
            let received: BTreeSet<String> = bodies(&got).into_iter().collect();
            old.is_subset(&received)
        })
        .await;
        // Its shutdown commits its final offsets to the master and waits for the answers.
        first.shutdown().await;
        let key = format!("{TOPIC}@{GROUP}");
        let committed = admin.all_consumer_offsets(&group.master_addr()).await;
        let committed = committed.unwrap().offset_table.remove(&key).unwrap();
        assert_eq!(committed.len(), 2, "both queues committed: {committed:?}");
        wait_until("the slave to copy the committed offsets", || async {
            let on_slave = admin.all_consumer_offsets(&group.slave.addr()).await;
            on_slave.is_ok_and(|o| o.offset_table.get(&key) == Some(&committed))
        })
        .await;
        let new = send_all(&producer, (0..10).map(|i| format!("new{i}"))).await;
        assert!(!new.is_empty(), "the SYNC_MASTER acknowledged new messages");
        group.kill_master(&admin).await;
        let (got, listener) = recorder();
        let second = PushConsumer::start(push_config(&ns, GROUP, "c2"), &[(TOPIC, "*")], listener)
            .await
            .unwrap();
        wait_until("the second consumer to read every new message", || async {
            let received: BTreeSet<String> = bodies(&got).into_iter().collect();
            new.is_subset(&received)
        })
        .await;
        second.shutdown().await;
        let redelivered: Vec<String> = bodies(&got)
            .into_iter()
            .filter(|b| old.contains(b))
            .collect();
        assert!(redelivered.is_empty(), "consumed again: {redelivered:?}");
    });
}
