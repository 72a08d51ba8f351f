//! Discovery against the real `ringmq-namesrv` binary: routes, the TBW102 fallback, cluster
//! info, name-server failover, and reconnecting after the name server restarts.

mod common;

use common::{client_config, closed_port_addr, register_broker, run, topic_config, Namesrv};
use ringmq_client::{
    Admin, ClientError, Producer, ProducerConfig, PullConsumer, AUTO_CREATE_TOPIC_KEY,
};
use ringmq_proto::body::perm;

/// The broker address registered in these tests. Nothing listens there: discovery never dials
/// a broker, and the tests never send to it.
const BROKER_ADDR: &str = "127.0.0.1:1";

#[test]
fn route_of_a_registered_topic_and_cluster_info() {
    let namesrv = Namesrv::start();
    let addr = namesrv.addr_string();
    run(move || async move {
        let admin = Admin::new(client_config(std::slice::from_ref(&addr))).unwrap();
        register_broker(
            &admin,
            &addr,
            "broker-a",
            BROKER_ADDR,
            &[topic_config("TopicA", 4, perm::READ | perm::WRITE)],
        )
        .await;
        let route = admin.topic_route("TopicA").await.unwrap();
        assert_eq!(route.write_queues.len(), 4);
        assert_eq!(route.read_queues.len(), 4);
        assert!(route
            .write_queues
            .iter()
            .all(|q| q.broker_name == "broker-a"));
        assert_eq!(route.master_addr("broker-a"), Some(BROKER_ADDR));

        let cluster = admin.cluster_info().await.unwrap();
        let broker = &cluster.broker_addr_table["broker-a"];
        assert_eq!(broker.master_addr(), Some(BROKER_ADDR));
        assert!(cluster.cluster_addr_table["DefaultCluster"].contains("broker-a"));
        admin.shutdown();
    });
}

#[test]
fn unknown_topic_uses_tbw102_for_producers_and_is_an_error_for_consumers() {
    let namesrv = Namesrv::start();
    let addr = namesrv.addr_string();
    run(move || async move {
        let admin = Admin::new(client_config(std::slice::from_ref(&addr))).unwrap();
        register_broker(
            &admin,
            &addr,
            "broker-a",
            BROKER_ADDR,
            &[topic_config(AUTO_CREATE_TOPIC_KEY, 8, 7)],
        )
        .await;

        // Name server says TOPIC_NOT_EXIST with its remark.
        let error = admin.topic_route("Fresh").await.unwrap_err();
        assert_eq!(error.response_code(), Some(17), "{error}");

        // A producer sends through the template: min(4, 8) queues on the TBW102 broker.
        let producer = Producer::start(ProducerConfig::new(
            client_config(std::slice::from_ref(&addr)),
            "pg",
        ))
        .unwrap();
        let queues = producer.write_queues("Fresh").await.unwrap();
        assert_eq!(queues.len(), 4);
        assert!(queues
            .iter()
            .all(|q| q.topic == "Fresh" && q.broker_name == "broker-a"));

        // A consumer gets a typed "no route".
        let consumer =
            PullConsumer::start(client_config(std::slice::from_ref(&addr)), "cg").unwrap();
        let error = consumer.fetch_queues("Fresh").await.unwrap_err();
        assert!(
            matches!(error, ClientError::NoRoute { ref topic } if topic == "Fresh"),
            "{error}"
        );
        producer.shutdown().await;
        consumer.shutdown();
        admin.shutdown();
    });
}

#[test]
fn without_tbw102_an_unknown_topic_has_no_route_for_producers_either() {
    let namesrv = Namesrv::start();
    let addr = namesrv.addr_string();
    run(move || async move {
        let admin = Admin::new(client_config(std::slice::from_ref(&addr))).unwrap();
        register_broker(
            &admin,
            &addr,
            "broker-a",
            BROKER_ADDR,
            &[
                topic_config("TopicA", 2, perm::READ | perm::WRITE),
                topic_config("ReadOnly", 2, perm::READ),
            ],
        )
        .await;
        let producer = Producer::start(ProducerConfig::new(
            client_config(std::slice::from_ref(&addr)),
            "pg",
        ))
        .unwrap();
        let error = producer.write_queues("Fresh").await.unwrap_err();
        assert!(matches!(error, ClientError::NoRoute { .. }), "{error}");
        // A read-only topic has no queue to send to.
        assert!(producer.write_queues("ReadOnly").await.unwrap().is_empty());
        producer.shutdown().await;
        admin.shutdown();
    });
}

#[test]
fn a_dead_name_server_is_skipped() {
    let namesrv = Namesrv::start();
    let live = namesrv.addr_string();
    let dead = closed_port_addr();
    run(move || async move {
        let admin = Admin::new(client_config(std::slice::from_ref(&live))).unwrap();
        register_broker(
            &admin,
            &live,
            "broker-a",
            BROKER_ADDR,
            &[topic_config("TopicA", 3, perm::READ | perm::WRITE)],
        )
        .await;
        // The start index is random: whichever it is, every lookup succeeds.
        for _ in 0..8 {
            let both = Admin::new(client_config(&[dead.clone(), live.clone()])).unwrap();
            let route = both.topic_route("TopicA").await.unwrap();
            assert_eq!(route.write_queues.len(), 3);
            both.shutdown();
        }
        // With only dead name servers the error says so, with the cause.
        let none = Admin::new(client_config(std::slice::from_ref(&dead))).unwrap();
        let error = none.topic_route("TopicA").await.unwrap_err();
        match error {
            ClientError::NameServerUnavailable { last } => {
                assert!(matches!(*last, ClientError::Connect { .. }), "{last}")
            }
            other => panic!("expected NameServerUnavailable, got {other}"),
        }
        admin.shutdown();
    });
}

#[test]
fn the_connection_is_reestablished_after_the_name_server_restarts() {
    let mut first = Namesrv::start();
    let addr = first.addr_string();
    let (kill_tx, kill_rx) = std::sync::mpsc::channel::<()>();
    let (killed_tx, killed_rx) = std::sync::mpsc::channel::<()>();
    // The name server process is owned by this thread; the executor asks for the kill.
    let killer = std::thread::spawn(move || {
        kill_rx.recv().unwrap();
        first.kill();
        killed_tx.send(()).unwrap();
        kill_rx.recv().unwrap();
        let second = Namesrv::start_on(&first.addr_string());
        killed_tx.send(()).unwrap();
        // Keep it alive until the test body is done.
        let _ = kill_rx.recv();
        drop(second);
    });
    let body_addr = addr.clone();
    run(move || async move {
        let addr = body_addr;
        let admin = Admin::new(client_config(std::slice::from_ref(&addr))).unwrap();
        register_broker(
            &admin,
            &addr,
            "broker-a",
            BROKER_ADDR,
            &[topic_config("TopicA", 1, perm::READ | perm::WRITE)],
        )
        .await;
        assert!(admin.topic_route("TopicA").await.is_ok());

        kill_tx.send(()).unwrap();
        killed_rx.recv().unwrap();
        let error = admin.topic_route("TopicA").await.unwrap_err();
        assert!(
            matches!(error, ClientError::NameServerUnavailable { .. }),
            "{error}"
        );

        kill_tx.send(()).unwrap();
        killed_rx.recv().unwrap();
        // A fresh name server knows no broker until one registers again.
        register_broker(
            &admin,
            &addr,
            "broker-a",
            BROKER_ADDR,
            &[topic_config("TopicA", 1, perm::READ | perm::WRITE)],
        )
        .await;
        assert_eq!(
            admin
                .topic_route("TopicA")
                .await
                .unwrap()
                .write_queues
                .len(),
            1
        );
        admin.shutdown();
        kill_tx.send(()).unwrap();
    });
    killer.join().unwrap();
}
