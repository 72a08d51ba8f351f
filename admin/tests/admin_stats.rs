//! The admin and statistics codes against a live broker with real clients: ringmq-admin's
//! group and stats verbs, the stats bodies decoded by the client's admin calls, and `/metrics`
//! scraped after a known load with exact counts (broker and name server).

#[path = "../../client/tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::process::Command;

use common::cluster::{create_topic, push_config, recorder};
use common::{client_config, run, wait_until, Broker, Namesrv};
use ringmq_client::{Admin, Message, MessageQueue, Producer, ProducerConfig, PullConsumer};
use serde_json::Value;

/// Runs ringmq-admin with `--json`; `None` if it failed.
fn admin_json(namesrv: &str, args: &[&str]) -> Option<Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_ringmq-admin"))
        .args(args)
        .args(["-n", namesrv, "--json"])
        .output()
        .expect("run ringmq-admin");
    if !output.status.success() {
        eprintln!(
            "ringmq-admin {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    Some(serde_json::from_slice(&output.stdout).expect("JSON output"))
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn scrape(port: u16) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("metrics endpoint");
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    response
}

/// The value of the first sample whose line starts with `prefix`.
fn metric_value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

async fn send(producer: &Producer, topic: &str, count: usize) {
    for i in 0..count {
        producer
            .send(Message::new(topic, format!("m{i}")))
            .await
            .unwrap();
    }
}

/// topicStatus sums to everything sent; consumerConnection and producerConnection name the
/// live clients (the producer shows up only after its first heartbeat).
async fn check_topic_and_connection_verbs(ns: &str, consumer_id: &str, producer_id: &str) {
    let status = admin_json(ns, &["topicStatus", "-t", "StatT"]).unwrap();
    let max_sum: i64 = status
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["maxOffset"].as_str().unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(max_sum, 10);

    let connections = admin_json(ns, &["consumerConnection", "-g", "cgStat"]).unwrap();
    assert_eq!(connections["rows"].as_array().unwrap().len(), 1);
    assert_eq!(connections["rows"][0]["clientid"], consumer_id);
    assert_eq!(connections["messagemodel"], "CLUSTERING");
    let producer_args = ["producerConnection", "-g", "pgStat", "-t", "StatT"];
    wait_until("the producer's heartbeat", || async {
        admin_json(ns, &producer_args).is_some()
    })
    .await;
    let producers = admin_json(ns, &producer_args).unwrap();
    assert_eq!(producers[0]["clientid"], producer_id);
}

/// A group without live consumers: reset to the beginning, then its lag is everything.
fn check_reset_of_an_idle_group(ns: &str) {
    let reset = admin_json(
        ns,
        &[
            "resetOffsetByTime",
            "-g",
            "cgIdle",
            "-t",
            "StatT",
            "-s",
            "0",
        ],
    )
    .unwrap();
    assert_eq!(reset.as_array().unwrap().len(), 2);
    assert!(reset.as_array().unwrap().iter().all(|r| r["offset"] == "0"));
    let idle = admin_json(ns, &["consumerProgress", "-g", "cgIdle"]).unwrap();
    assert_eq!(idle["diffTotal"], "10");
}

/// The stats bodies, decoded by the client's admin calls.
async fn check_stats_bodies(admin: &Admin, addr: &str) {
    let put = admin
        .broker_stats(addr, "TOPIC_PUT_NUMS", "StatT")
        .await
        .unwrap();
    assert_eq!(put.stats_minute.sum, 10);
    let got = admin
        .broker_stats(addr, "GROUP_GET_NUMS", "StatT@cgStat")
        .await
        .unwrap();
    assert_eq!(got.stats_minute.sum, 10);
    let offsets = admin.all_consumer_offsets(addr).await.unwrap();
    assert_eq!(
        offsets.offset_table["StatT@cgStat"].values().sum::<i64>(),
        10
    );
    let stats = admin.consume_stats(addr, "cgStat", None).await.unwrap();
    assert_eq!(stats.total_diff(), 0);
    // The group's own topic and its retry topic (the push consumer subscribes to both).
    let topics: std::collections::BTreeSet<&str> = stats
        .offset_table
        .keys()
        .map(|q| q.topic.as_str())
        .collect();
    assert_eq!(topics, ["%RETRY%cgStat", "StatT"].into_iter().collect());
    let groups = admin.topic_consumed_by(addr, "StatT").await.unwrap();
    assert!(groups.group_set.contains("cgStat") && groups.group_set.contains("cgIdle"));
    let topics = admin.topics_by_consumer(addr, "cgIdle").await.unwrap();
    assert!(topics.topic_list.contains("StatT"));
    let table = admin.topic_stats(addr, "StatT").await.unwrap();
    assert_eq!(
        table
            .offset_table
            .values()
            .map(|o| o.max_offset)
            .sum::<i64>(),
        10
    );
}

#[test]
fn group_verbs_and_stats_bodies_against_live_clients() {
    let namesrv = Namesrv::start();
    let broker = Broker::start(&namesrv.addr_string(), "broker-a", &[]);
    let (ns, addr) = (namesrv.addr_string(), broker.addr());
    run(move || async move {
        let admin = Admin::new(client_config(std::slice::from_ref(&ns))).unwrap();
        create_topic(&admin, &addr, "StatT", 2).await;
        // Producers register by heartbeat; a short period makes the first one come soon.
        let mut producer_client = client_config(std::slice::from_ref(&ns));
        producer_client.heartbeat_interval_ms = 200;
        let producer = Producer::start(ProducerConfig::new(producer_client, "pgStat")).unwrap();
        send(&producer, "StatT", 10).await;
        let (received, listener) = recorder();
        let consumer = ringmq_client::PushConsumer::start(
            push_config(&ns, "cgStat", "c1"),
            &[("StatT", "*")],
            listener,
        )
        .await
        .unwrap();
        wait_until("all 10 consumed", || async {
            received.borrow().len() == 10
        })
        .await;
        wait_until("offsets committed", || async {
            admin_json(&ns, &["consumerProgress", "-g", "cgStat", "-t", "StatT"])
                .is_some_and(|v| v["diffTotal"] == "0" && v["rows"].as_array().unwrap().len() == 2)
        })
        .await;

        check_topic_and_connection_verbs(&ns, consumer.client_id(), producer.client_id()).await;
        check_reset_of_an_idle_group(&ns);
        check_stats_bodies(&admin, &addr).await;

        consumer.shutdown().await;
        producer.shutdown().await;
        admin.shutdown();
    });
    drop(broker);
    drop(namesrv);
}

/// Messages the metrics test sends (and pulls back) on its topic.
const SENT: usize = 37;

/// Sends [`SENT`] messages to a new 4-queue topic, pulls them all back as group `mg` and then
/// commits offset 0 everywhere, so the whole topic is the group's lag.
async fn send_pull_and_commit_zero(ns: &str, addr: &str) {
    let ns = ns.to_string();
    let admin = Admin::new(client_config(std::slice::from_ref(&ns))).unwrap();
    create_topic(&admin, addr, "MetT", 4).await;
    let producer = Producer::start(ProducerConfig::new(
        client_config(std::slice::from_ref(&ns)),
        "pgMet",
    ))
    .unwrap();
    send(&producer, "MetT", SENT).await;
    let consumer = PullConsumer::start(client_config(std::slice::from_ref(&ns)), "mg").unwrap();
    let mut got = 0;
    for queue_id in 0..4 {
        let queue = MessageQueue::new("MetT", "broker-a", queue_id);
        got += consumer
            .pull(&queue, "*", 0, 64)
            .await
            .unwrap()
            .messages
            .len();
    }
    assert_eq!(got, SENT);
    // Committed at 0 everywhere: the whole topic is the group's lag.
    for queue_id in 0..4 {
        let queue = MessageQueue::new("MetT", "broker-a", queue_id);
        consumer.commit_offset(&queue, 0).await.unwrap();
    }
    consumer.shutdown();
    producer.shutdown().await;
    admin.shutdown();
}

/// The broker's exact in/out counts and lag for the load, plus the latency and connection
/// families being present.
fn check_broker_metrics(broker_port: u16) {
    let text = scrape(broker_port);
    let labels = r#"cluster="DefaultCluster",node_type="broker",node_id="broker-a""#;
    let line_in = format!(
        r#"rocketmq_messages_in_total{{{labels},topic="MetT",message_type="normal"}} {SENT}"#
    );
    assert!(text.contains(&line_in), "{text}");
    let line_out = format!(
        r#"rocketmq_messages_out_total{{{labels},topic="MetT",consumer_group="mg"}} {SENT}"#
    );
    assert!(text.contains(&line_out), "{text}");
    // The lag table is recomputed every few seconds: wait for it (bounded).
    let lag = format!(
        r#"rocketmq_consumer_lag_messages{{{labels},topic="MetT",consumer_group="mg"}} {SENT}"#
    );
    let deadline = std::time::Instant::now() + common::WAIT_LIMIT;
    while !scrape(broker_port).contains(&lag) {
        assert!(std::time::Instant::now() < deadline, "no lag line {lag}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let text = scrape(broker_port);
    let writes = metric_value(&text, "ringmq_write_latency_seconds_count{");
    assert!(writes.is_some_and(|n| n > 0.0), "{text}");
    let connections = metric_value(&text, "ringmq_connections{");
    assert!(connections.is_some(), "{text}");
}

fn check_namesrv_metrics(namesrv_port: u16) {
    let names = scrape(namesrv_port);
    assert!(
        names.contains(r#"ringmq_namesrv_live_brokers{node_type="nameserver"} 1"#),
        "{names}"
    );
    assert!(names
        .contains(r#"ringmq_namesrv_requests_total{node_type="nameserver",request_code="103"}"#));
}

#[test]
fn metrics_endpoints_count_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv_port = free_port();
    let namesrv_conf = dir.path().join("namesrv.properties");
    let text = format!("metricsExporterType=PROM\nmetricsPromExporterPort={namesrv_port}\n");
    std::fs::write(&namesrv_conf, text).unwrap();
    let namesrv = Namesrv::start_with(&["-c", namesrv_conf.to_str().unwrap()]);
    let broker_port = free_port();
    let port_setting = format!("metricsPromExporterPort={broker_port}");
    let extra = ["--set", "metricsExporterType=PROM", "--set", &port_setting];
    let broker = Broker::start(&namesrv.addr_string(), "broker-a", &extra);
    let (ns, addr) = (namesrv.addr_string(), broker.addr());
    run(move || async move { send_pull_and_commit_zero(&ns, &addr).await });
    check_broker_metrics(broker_port);
    check_namesrv_metrics(namesrv_port);
    drop(broker);
    drop(namesrv);
}
