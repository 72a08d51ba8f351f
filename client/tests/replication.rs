//! A master and its slave behind a real name server: cluster info shows both, SYNC_MASTER sends
//! are SEND_OK once the slave follows (it learns the master from the name server), and after
//! kill -9 of the master a push consumer reads every message from the slave.

mod common;

use std::collections::BTreeSet;

use common::cluster::{bodies, config, create_topic, push_config, recorder};
use common::{run, wait_until, Broker, Namesrv};
use ringmq_client::{Admin, Message, Producer, ProducerConfig, PushConsumer, SendStatus};

const TOPIC: &str = "Replicated";

// Known bug (issue 9 left open): in about one run in three the push consumer started after the
// master's kill -9 receives nothing from the slave within the wait, while in the other runs it
// reads everything in under 2 s. Not in the README's test command until fixed; run it with
// `cargo test -p ringmq-client --test replication -- --ignored`.
#[test]
#[ignore = "flaky: a consumer started after the master died sometimes reads nothing from the slave"]
fn consumers_read_from_the_slave_while_the_master_is_gone() {
    let namesrv = Namesrv::start();
    let ns = namesrv.addr_string();
    let fast = ["--set", "ringmqSlaveSyncIntervalMs=300"];
    let master = Broker::start(
        &ns,
        "broker-a",
        &[fast[0], fast[1], "--set", "brokerRole=SYNC_MASTER"],
    );
    let slave = Broker::start(
        &ns,
        "broker-a",
        &[
            fast[0],
            fast[1],
            "--set",
            "brokerRole=SLAVE",
            "--set",
            "brokerId=1",
        ],
    );
    let (master_addr, slave_addr) = (master.addr(), slave.addr());
    let master = std::cell::RefCell::new(Some(master));
    run(move || async move {
        let admin = Admin::new(config(&ns)).unwrap();
        create_topic(&admin, &master_addr, TOPIC, 2).await;
        wait_until("cluster info to list master and slave", || async {
            admin.cluster_info().await.is_ok_and(|info| {
                info.broker_addr_table
                    .get("broker-a")
                    .is_some_and(|b| b.broker_addrs.len() == 2)
            })
        })
        .await;
        let producer = Producer::start(ProducerConfig::new(config(&ns), "pg")).unwrap();
        // SLAVE_NOT_AVAILABLE until the slave learned its master from the name server.
        wait_until("SEND_OK from the SYNC_MASTER", || async {
            let sent = producer.send(Message::new(TOPIC, "probe")).await;
            sent.is_ok_and(|r| r.status == SendStatus::SendOk)
        })
        .await;
        let mut sent = BTreeSet::from(["probe".to_string()]);
        for i in 0..20 {
            let body = format!("m{i}");
            let result = producer
                .send(Message::new(TOPIC, body.clone()))
                .await
                .unwrap();
            if result.status == SendStatus::SendOk {
                sent.insert(body);
            }
        }
        // kill -9 of the master (dropping the guard kills and reaps it).
        drop(master.borrow_mut().take());
        wait_until("the name server to route to the slave only", || async {
            admin.topic_route(TOPIC).await.is_ok_and(|r| {
                r.master_addr("broker-a").is_none()
                    && r.read_addr("broker-a") == Some(slave_addr.as_str())
            })
        })
        .await;
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
    drop(slave);
}
