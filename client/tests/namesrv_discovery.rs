//! Discovery against the real `ringmq-namesrv` binary: routes, the TBW102 fallback, cluster
//! info, name-server failover, typed errors when it dies, reconnecting when it closes a
//! connection.

mod common;

use std::rc::Rc;

use bytes::Bytes;
use common::{
    client_config, closed_port_addr, register_broker, run, topic_config, wait_until, Namesrv,
};
use ringmq_client::remoting::ConnectionPool;
use ringmq_client::{
    Admin, ClientError, Producer, ProducerConfig, PullConsumer, AUTO_CREATE_TOPIC_KEY,
};
use ringmq_proto::body::perm;
use ringmq_proto::command::{ExtFields, RemotingCommand};
use ringmq_proto::RequestCode;

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
fn a_killed_name_server_fails_requests_with_a_typed_error() {
    let namesrv = Namesrv::start();
    let addr = namesrv.addr_string();
    run(move || async move {
        let mut namesrv = namesrv;
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
        namesrv.kill();
        // The open connection breaks (or the reconnect is refused): a typed error either way.
        for _ in 0..2 {
            let error = admin.topic_route("TopicA").await.unwrap_err();
            let ClientError::NameServerUnavailable { last } = error else {
                panic!("expected NameServerUnavailable, got {error}");
            };
            assert!(
                matches!(
                    *last,
                    ClientError::ConnectionClosed { .. } | ClientError::Connect { .. }
                ),
                "{last}"
            );
        }
        admin.shutdown();
    });
}

#[test]
fn a_connection_the_server_closed_is_reestablished_on_next_use() {
    // The name server closes connections idle for 300 ms, as Java's idle handler does.
    let namesrv = Namesrv::start_with(&["--idle-timeout-ms", "300"]);
    let addr = namesrv.addr_string();
    run(move || async move {
        let pool = ConnectionPool::new(1_000, None);
        let request = || {
            let mut ext = ExtFields::new();
            ext.insert("topic", "Nowhere");
            RemotingCommand::new_request(RequestCode::GetRouteinfoByTopic.code(), ext, Bytes::new())
        };
        let first = pool.get(&addr).await.unwrap();
        assert_eq!(first.request(request(), 3_000).await.unwrap().code, 17);
        wait_until("the server to close the idle connection", || async {
            first.is_closed()
        })
        .await;
        // The pool notices and connects again; the request goes through.
        let response = pool.invoke(&addr, request(), 3_000).await.unwrap();
        assert_eq!(response.code, 17);
        let second = pool.get(&addr).await.unwrap();
        assert!(!second.is_closed());
        assert!(!Rc::ptr_eq(&first, &second), "a new connection");
        pool.close_all();
        assert!(second.is_closed());
    });
    drop(namesrv);
}
