//! What the broker forwards between admin tools and live consumers, on real processes:
//! GET_CONSUMER_RUNNING_INFO (307) answered by ringmq-client push consumers (through the
//! client's admin call and `ringmq-admin consumerStatus`), and INVOKE_BROKER_TO_RESET_OFFSET
//! (222) pushed to a running consumer as RESET_CONSUMER_CLIENT_OFFSET (220), after which it
//! reads again from the reset point; CONSUME_MESSAGE_DIRECTLY (309) and
//! INVOKE_BROKER_TO_GET_CONSUMER_STATUS (223) answered by push consumers (client admin calls and
//! `ringmq-admin queryMsgById -g -d` / `getConsumerStatus`); and the metrics of what consumers cause (DLQ moves,
//! tail-cache reads, bytes queued for connections) scraped with exact counts.

#[path = "../../client/tests/common/mod.rs"]
mod common;

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

use common::cluster::{bodies, create_topic, push_config, recorder, wall_ms};
use common::{client_config, run, wait_until, Broker, Namesrv};
use ringmq_client::{
    Admin, ClientError, ConsumeStatus, Message, MessageExt, MessageQueue, Producer, ProducerConfig,
    PushConsumer,
};
use ringmq_proto::body::{CmResult, ConsumerRunningInfo};
use ringmq_proto::code::ResponseCode;
use serde_json::Value;

/// Runs ringmq-admin with `--json` without blocking the executor (the consumers it asks about
/// answer on this executor); `None` if it failed.
async fn admin_json(namesrv: &str, args: &[&str]) -> Option<Value> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringmq-admin"))
        .args(args)
        .args(["-n", namesrv, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ringmq-admin");
    // Its output is a few KiB at most: it fits the pipe, so polling for the exit is enough.
    while child.try_wait().expect("wait for ringmq-admin").is_none() {
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
    let output = child.wait_with_output().expect("ringmq-admin output");
    if !output.status.success() {
        eprintln!(
            "ringmq-admin {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    Some(serde_json::from_slice(&output.stdout).expect("JSON output"))
}

async fn send(producer: &Producer, topic: &str, from: usize, count: usize) {
    for i in from..from + count {
        producer
            .send(Message::new(topic, format!("m{i}")))
            .await
            .unwrap();
    }
}

#[test]
fn running_info_comes_from_each_live_consumer() {
    let namesrv = Namesrv::start();
    let broker = Broker::start(&namesrv.addr_string(), "broker-a", &[]);
    let (ns, addr) = (namesrv.addr_string(), broker.addr());
    run(move || async move {
        let admin = Admin::new(client_config(std::slice::from_ref(&ns))).unwrap();
        create_topic(&admin, &addr, "InfoT", 4).await;
        let producer = Producer::start(ProducerConfig::new(
            client_config(std::slice::from_ref(&ns)),
            "pgInfo",
        ))
        .unwrap();
        send(&producer, "InfoT", 0, 20).await;
        let (_, listener) = recorder();
        let c1 = PushConsumer::start(
            push_config(&ns, "cgInfo", "c1"),
            &[("InfoT", "*")],
            listener,
        )
        .await
        .unwrap();
        let (_, listener) = recorder();
        let c2 = PushConsumer::start(
            push_config(&ns, "cgInfo", "c2"),
            &[("InfoT", "*")],
            listener,
        )
        .await
        .unwrap();
        // Both members own their share (4 queues and the retry queue, split two ways).
        wait_until("the group rebalanced", || async {
            c1.assigned_queues().len() + c2.assigned_queues().len() == 5
                && !c1.assigned_queues().is_empty()
                && !c2.assigned_queues().is_empty()
        })
        .await;

        for consumer in [&c1, &c2] {
            let info = admin
                .consumer_running_info(&addr, "cgInfo", consumer.client_id())
                .await
                .unwrap();
            check_running_info(&info, consumer);
        }

        check_consumer_status(&ns, &c1, &c2).await;

        // A client that is not a live member is refused with Java's remark.
        let refused = admin.consumer_running_info(&addr, "cgInfo", "nobody").await;
        match refused {
            Err(ClientError::Server { code, remark, .. }) => {
                assert_eq!(code, ResponseCode::SystemError.code());
                assert_eq!(remark, "The Consumer <cgInfo> <nobody> not online");
            }
            other => panic!("expected SYSTEM_ERROR, got {other:?}"),
        }
        c1.shutdown().await;
        c2.shutdown().await;
        producer.shutdown().await;
        admin.shutdown();
    });
    drop(broker);
    drop(namesrv);
}

/// What a directed listener does with its next message.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accept,
    Later,
    Panic,
}

/// A listener that records (instance, body) of each message into `log` and answers `verdict`.
fn directed_listener(
    instance: &'static str,
    log: DirectLog,
    verdict: Rc<Cell<Verdict>>,
) -> impl Fn(&MessageQueue, &[MessageExt]) -> ConsumeStatus {
    move |_: &MessageQueue, messages: &[MessageExt]| {
        for m in messages {
            let body = String::from_utf8_lossy(&m.body).into_owned();
            log.borrow_mut().push((instance.to_string(), body));
        }
        match verdict.get() {
            Verdict::Accept => ConsumeStatus::Success,
            Verdict::Later => ConsumeStatus::ReconsumeLater,
            Verdict::Panic => panic!("listener refused {}", messages.len()),
        }
    }
}

#[test]
fn a_consumer_consumes_a_message_directly_and_reports_its_own_offsets() {
    let namesrv = Namesrv::start();
    let broker = Broker::start(&namesrv.addr_string(), "broker-a", &[]);
    let (ns, addr) = (namesrv.addr_string(), broker.addr());
    run(move || async move {
        let admin = Admin::new(client_config(std::slice::from_ref(&ns))).unwrap();
        create_topic(&admin, &addr, "DirectT", 2).await;
        let config = ProducerConfig::new(client_config(std::slice::from_ref(&ns)), "pgDirect");
        let producer = Producer::start(config).unwrap();
        let log: DirectLog = Rc::default();
        let verdict = Rc::new(Cell::new(Verdict::Accept));
        let mut consumers = Vec::new();
        for instance in ["d1", "d2"] {
            let listener = directed_listener(instance, log.clone(), verdict.clone());
            let config = push_config(&ns, "cgDirect", instance);
            let consumer = PushConsumer::start(config, &[("DirectT", "*")], listener);
            consumers.push(consumer.await.unwrap());
        }
        // Each holds one of the two queues before the message is sent, so it is consumed once,
        // by its queue's holder; both report their offsets of the topic (1 in all).
        let holds_one = |c: &PushConsumer| {
            let queues = c.assigned_queues();
            queues.iter().filter(|q| q.topic == "DirectT").count() == 1
        };
        wait_until("each consumer holds one queue", || async {
            consumers.iter().all(holds_one)
        })
        .await;
        let sent = producer.send(Message::new("DirectT", "only")).await;
        let sent = sent.unwrap();
        let ids = [consumers[0].client_id(), consumers[1].client_id()].map(str::to_string);
        wait_until("each consumer reports its queue", || async {
            let status = admin.consumer_status(&addr, "DirectT", "cgDirect", None);
            status.await.is_ok_and(|s| {
                let offsets = s.consumer_table.values();
                s.consumer_table.len() == 2
                    && offsets.clone().all(|t| t.0.len() == 1)
                    && offsets.flat_map(|t| t.0.values()).sum::<i64>() == 1
            })
        })
        .await;
        assert_eq!(log.borrow().len(), 1, "consumed once by its queue's holder");
        check_get_consumer_status(&ns, &ids).await;
        let offset_id = sent.offset_msg_id.clone();
        check_direct_verdicts(&admin, &addr, &ids[1], &offset_id, &verdict, &log).await;
        verdict.set(Verdict::Accept);
        check_query_msg_by_id_pushes(&ns, &sent.msg_id, &ids[0], &log).await;
        check_not_online(&admin, &addr, &offset_id).await;
        for consumer in consumers {
            consumer.shutdown().await;
        }
        producer.shutdown().await;
        admin.shutdown();
    });
    drop(broker);
    drop(namesrv);
}

type DirectLog = Rc<RefCell<Vec<(String, String)>>>;

/// Consumed directly by d2 (`client_id`), whoever holds its queue: each listener verdict
/// comes back as Java's CMResult.
async fn check_direct_verdicts(
    admin: &Admin,
    addr: &str,
    client_id: &str,
    offset_id: &str,
    verdict: &Cell<Verdict>,
    log: &DirectLog,
) {
    let before = log.borrow().len();
    for (mode, expected) in [
        (Verdict::Accept, CmResult::Success),
        (Verdict::Later, CmResult::Later),
        (Verdict::Panic, CmResult::ThrowException),
    ] {
        verdict.set(mode);
        let result = admin
            .consume_message_directly(addr, "cgDirect", client_id, Some("DirectT"), offset_id)
            .await
            .unwrap();
        assert_eq!(result.consume_result, Some(expected));
        assert!(!result.order);
        let last = log.borrow().last().cloned().unwrap();
        assert_eq!(last, ("d2".to_string(), "only".to_string()));
    }
    assert_eq!(log.borrow().len(), before + 3);
}

/// Someone not in the group is refused with Java's remark.
async fn check_not_online(admin: &Admin, addr: &str, offset_id: &str) {
    let refused = admin
        .consume_message_directly(addr, "cgDirect", "nobody", None, offset_id)
        .await;
    match refused {
        Err(ClientError::Server { code, remark, .. }) => {
            assert_eq!(code, ResponseCode::SystemError.code());
            assert_eq!(remark, "The Consumer <cgDirect> <nobody> not online");
        }
        other => panic!("expected SYSTEM_ERROR, got {other:?}"),
    }
}

/// `ringmq-admin getConsumerStatus`: one row per (client, queue), both clients, offsets as the
/// clients hold them; with `-i`, that client only.
async fn check_get_consumer_status(ns: &str, ids: &[String; 2]) {
    let all = admin_json(
        ns,
        &["getConsumerStatus", "-g", "cgDirect", "-t", "DirectT"],
    )
    .await
    .unwrap();
    let rows = all.as_array().unwrap();
    let clients: BTreeSet<&str> = rows
        .iter()
        .map(|r| r["clientid"].as_str().unwrap())
        .collect();
    assert_eq!(clients, BTreeSet::from([ids[0].as_str(), ids[1].as_str()]));
    let queues: BTreeSet<&str> = rows
        .iter()
        .map(|r| r["queueid"].as_str().unwrap())
        .collect();
    assert_eq!(queues, BTreeSet::from(["0", "1"]));
    let total: i64 = rows
        .iter()
        .map(|r| r["offset"].as_str().unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(total, 1);
    let one = [
        "getConsumerStatus",
        "-g",
        "cgDirect",
        "-t",
        "DirectT",
        "-i",
        &ids[0],
    ];
    let one = admin_json(ns, &one).await.unwrap();
    let rows = one.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["clientid"], ids[0].as_str());
}

/// `ringmq-admin queryMsgById -t -i <UNIQ_KEY> -g -d`: the details and the listener's result.
async fn check_query_msg_by_id_pushes(ns: &str, uniq_key: &str, client_id: &str, log: &DirectLog) {
    let args = [
        "queryMsgById",
        "-t",
        "DirectT",
        "-i",
        uniq_key,
        "-g",
        "cgDirect",
        "-d",
        client_id,
    ];
    let report = admin_json(ns, &args).await.unwrap();
    assert_eq!(report["Message Body"], "only");
    assert_eq!(report["consumeResult"], "CR_SUCCESS");
    assert_eq!(report["autoCommit"], "true");
    let last = log.borrow().last().cloned().unwrap();
    assert_eq!(last, ("d1".to_string(), "only".to_string()));
    assert_eq!(log.borrow().len(), 5);
}

/// `ringmq-admin consumerStatus`, for the group and for one member.
async fn check_consumer_status(ns: &str, c1: &PushConsumer, c2: &PushConsumer) {
    let status = admin_json(ns, &["consumerStatus", "-g", "cgInfo"])
        .await
        .unwrap();
    let rows = status["rows"].as_array().unwrap();
    let ids: BTreeSet<&str> = rows
        .iter()
        .map(|r| r["clientid"].as_str().unwrap())
        .collect();
    assert_eq!(ids, BTreeSet::from([c1.client_id(), c2.client_id()]));
    let queues: usize = rows
        .iter()
        .map(|r| r["queues"].as_str().unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(queues, 5);
    assert_eq!(
        status["subscription"],
        "Same subscription in the same group of consumer"
    );
    assert_eq!(status["rebalance"], "OK");
    let one = ["consumerStatus", "-g", "cgInfo", "-i", c1.client_id()];
    let detail = admin_json(ns, &one).await.unwrap();
    assert_eq!(
        detail["rows"].as_array().unwrap().len(),
        c1.assigned_queues().len()
    );
    assert_eq!(detail["consumeType"], "CONSUME_PASSIVELY");
}

/// The consumer's own view, as the broker relayed it.
fn check_running_info(info: &ConsumerRunningInfo, consumer: &PushConsumer) {
    assert_eq!(info.properties["consumerGroup"], "cgInfo");
    let consume_type = &info.properties[ConsumerRunningInfo::PROP_CONSUME_TYPE];
    assert_eq!(consume_type, "CONSUME_PASSIVELY");
    let topics: BTreeSet<&str> = info
        .subscription_set
        .iter()
        .map(|s| s.topic.as_str())
        .collect();
    assert_eq!(topics, BTreeSet::from(["InfoT", "%RETRY%cgInfo"]));
    let held: BTreeSet<(String, i32)> = info
        .mq_table
        .keys()
        .map(|q| (q.topic.clone(), q.queue_id))
        .collect();
    let assigned: BTreeSet<(String, i32)> = consumer
        .assigned_queues()
        .into_iter()
        .map(|q| (q.topic, q.queue_id))
        .collect();
    assert_eq!(held, assigned);
    assert!(info.status_table.contains_key("InfoT"));
}

#[test]
fn a_reset_moves_a_running_consumer_back_to_the_reset_time() {
    let namesrv = Namesrv::start();
    let broker = Broker::start(&namesrv.addr_string(), "broker-a", &[]);
    let (ns, addr) = (namesrv.addr_string(), broker.addr());
    run(move || async move {
        let admin = Admin::new(client_config(std::slice::from_ref(&ns))).unwrap();
        create_topic(&admin, &addr, "ResetT", 2).await;
        let producer = Producer::start(ProducerConfig::new(
            client_config(std::slice::from_ref(&ns)),
            "pgReset",
        ))
        .unwrap();
        send(&producer, "ResetT", 0, 6).await;
        // Store times are in ms: the pauses put the reset point strictly between the batches.
        glommio::timer::sleep(Duration::from_millis(5)).await;
        let reset_ms = wall_ms();
        glommio::timer::sleep(Duration::from_millis(5)).await;
        send(&producer, "ResetT", 6, 4).await;
        let (received, listener) = recorder();
        let consumer = PushConsumer::start(
            push_config(&ns, "cgReset", "c1"),
            &[("ResetT", "*")],
            listener,
        )
        .await
        .unwrap();
        wait_until("all 10 consumed", || async {
            received.borrow().len() == 10
        })
        .await;

        let stamp = reset_ms.to_string();
        let args = [
            "resetOffsetByTime",
            "-g",
            "cgReset",
            "-t",
            "ResetT",
            "-s",
            &stamp,
        ];
        let table = admin_json(&ns, &args).await.unwrap();
        let moved_to: i64 = table
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["offset"].as_str().unwrap().parse::<i64>().unwrap())
            .sum();
        assert_eq!(moved_to, 6, "{table}");
        // The running consumer is told and reads the last four again, and nothing else.
        wait_until("the reset batch consumed again", || async {
            received.borrow().len() == 14
        })
        .await;
        let mut again = bodies(&received)[10..].to_vec();
        again.sort();
        assert_eq!(again, ["m6", "m7", "m8", "m9"]);
        wait_until("offsets committed at the end", || async {
            admin_json(&ns, &["consumerProgress", "-g", "cgReset", "-t", "ResetT"])
                .await
                .is_some_and(|v| v["diffTotal"] == "0")
        })
        .await;
        assert_eq!(received.borrow().len(), 14);
        consumer.shutdown().await;
        producer.shutdown().await;
        admin.shutdown();
    });
    drop(broker);
    drop(namesrv);
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

/// The sum over every sample of `family` (its lines start with `family{`).
fn family_sum(text: &str, family: &str) -> f64 {
    let prefix = format!("{family}{{");
    text.lines()
        .filter(|line| line.starts_with(&prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn dlq_moves_tail_cache_reads_and_queued_bytes_are_published() {
    const REJECTED: usize = 7;
    let namesrv = Namesrv::start();
    let metrics_port = free_port();
    let port_setting = format!("metricsPromExporterPort={metrics_port}");
    let extra = ["--set", "metricsExporterType=PROM", "--set", &port_setting];
    let broker = Broker::start(&namesrv.addr_string(), "broker-a", &extra);
    let (ns, addr) = (namesrv.addr_string(), broker.addr());
    run(move || async move {
        let admin = Admin::new(client_config(std::slice::from_ref(&ns))).unwrap();
        create_topic(&admin, &addr, "DlqT", 2).await;
        let producer = Producer::start(ProducerConfig::new(
            client_config(std::slice::from_ref(&ns)),
            "pgDlq",
        ))
        .unwrap();
        send(&producer, "DlqT", 0, REJECTED).await;
        // Every message is rejected once and, with no retries allowed, goes to the DLQ.
        let seen = Rc::new(Cell::new(0));
        let counter = seen.clone();
        let listener = move |_: &MessageQueue, messages: &[MessageExt]| {
            counter.set(counter.get() + messages.len());
            ConsumeStatus::ReconsumeLater
        };
        let mut config = push_config(&ns, "gDlq", "c1");
        config.max_reconsume_times = 0;
        let consumer = PushConsumer::start(config, &[("DlqT", "*")], listener)
            .await
            .unwrap();
        let dlq_line = r#"topic="DlqT",consumer_group="gDlq"} 7"#;
        wait_until("every rejected message in the DLQ", || async {
            scrape(metrics_port).lines().any(|l| {
                l.starts_with("rocketmq_send_to_dlq_messages_total{") && l.ends_with(dlq_line)
            })
        })
        .await;
        assert_eq!(seen.get(), REJECTED, "each message was consumed once");
        let dlq = admin
            .broker_stats(&addr, "DLQ_PUT_NUMS", "DlqT@gDlq")
            .await
            .unwrap();
        assert_eq!(dlq.stats_minute.sum, REJECTED as i64);
        // Each message was pulled once, fresh from the log's tail.
        let text = scrape(metrics_port);
        assert_eq!(
            family_sum(&text, "ringmq_tail_cache_hits_total"),
            REJECTED as f64,
            "{text}"
        );
        assert_eq!(
            family_sum(&text, "ringmq_tail_cache_misses_total"),
            0.0,
            "{text}"
        );
        consumer.shutdown().await;
        producer.shutdown().await;
        admin.shutdown();
    });
    // At rest every response was written: nothing stays queued (refreshed every 5 s).
    let deadline = std::time::Instant::now() + common::WAIT_LIMIT;
    loop {
        let text = scrape(metrics_port);
        let shards = text
            .lines()
            .filter(|l| l.starts_with("ringmq_connection_queued_bytes{"))
            .count();
        if shards > 0 && family_sum(&text, "ringmq_connection_queued_bytes") == 0.0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(broker);
    drop(namesrv);
}

/// A consumer written by hand on a blocking socket: it registers `raw@1` in group `gRaw`, then
/// answers the first GET_CONSUMER_RUNNING_INFO with its own code, remark and body and closes
/// its connection on the second.
fn raw_consumer(broker: &str, registered: std::sync::mpsc::Sender<()>) {
    use bytes::{Bytes, BytesMut};
    use ringmq_proto::code::RequestCode;
    use ringmq_proto::command::{ExtFields, RemotingCommand};
    let mut stream = std::net::TcpStream::connect(broker).expect("connect to the broker");
    stream.set_read_timeout(Some(common::WAIT_LIMIT)).unwrap();
    let mut buffer = BytesMut::new();
    let mut next = |stream: &mut std::net::TcpStream| loop {
        if let Some(command) = ringmq_proto::decode_frame(&mut buffer).expect("valid frames") {
            return command;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).expect("read");
        assert!(n > 0, "the broker closed the connection");
        buffer.extend_from_slice(&chunk[..n]);
    };
    let write = |stream: &mut std::net::TcpStream, command: &RemotingCommand| {
        let mut out = BytesMut::new();
        command.encode(&mut out).unwrap();
        stream.write_all(&out).unwrap();
    };
    let heartbeat = r#"{"clientID":"raw@1","consumerDataSet":[{"consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","consumeType":"CONSUME_PASSIVELY","groupName":"gRaw","messageModel":"CLUSTERING","subscriptionDataSet":[{"subString":"*","subVersion":1,"topic":"RawT"}]}],"producerDataSet":[]}"#;
    let code = RequestCode::HeartBeat.code();
    let request = RemotingCommand::new_request(code, ExtFields::new(), Bytes::from(heartbeat));
    write(&mut stream, &request);
    // NOTIFY_CONSUMER_IDS_CHANGED may come before the heartbeat's answer.
    let answer = loop {
        let command = next(&mut stream);
        if command.is_response() {
            break command;
        }
    };
    assert_eq!(answer.code, 0, "{answer:?}");
    registered.send(()).unwrap();
    let running_info = RequestCode::GetConsumerRunningInfo.code();
    let mut calls = 0;
    while calls < 2 {
        let command = next(&mut stream);
        if command.is_response() || command.code != running_info {
            continue; // NOTIFY_CONSUMER_IDS_CHANGED and the like
        }
        calls += 1;
        if calls == 1 {
            assert_eq!(command.ext_fields.get("clientId"), Some("raw@1"));
            let mut reply = RemotingCommand::response_to(&command, 0, Some("relayed".into()));
            reply.body = Bytes::from_static(br#"{"properties":{"k":"v"}}"#);
            write(&mut stream, &reply);
        }
    }
    // The second call is left unanswered: the connection closes instead.
}

#[test]
fn a_client_answer_is_relayed_as_is_and_a_closed_client_fails_the_call() {
    let namesrv = Namesrv::start();
    let broker = Broker::start(&namesrv.addr_string(), "broker-a", &[]);
    let (ns, addr) = (namesrv.addr_string(), broker.addr());
    let (registered_tx, registered) = std::sync::mpsc::channel();
    let raw_addr = addr.clone();
    let consumer = std::thread::spawn(move || raw_consumer(&raw_addr, registered_tx));
    registered
        .recv_timeout(common::WAIT_LIMIT)
        .expect("raw consumer registered");
    run(move || async move {
        let admin = Admin::new(client_config(std::slice::from_ref(&ns))).unwrap();
        let info = admin
            .consumer_running_info(&addr, "gRaw", "raw@1")
            .await
            .unwrap();
        assert_eq!(info.properties["k"], "v");
        match admin.consumer_running_info(&addr, "gRaw", "raw@1").await {
            Err(ClientError::Server { code, remark, .. }) => {
                assert_eq!(code, ResponseCode::SystemError.code());
                let expected =
                    "invoke consumer <gRaw> <raw@1> Exception: the client connection closed";
                assert_eq!(remark, expected);
            }
            other => panic!("expected SYSTEM_ERROR, got {other:?}"),
        }
        admin.shutdown();
    });
    consumer.join().expect("raw consumer");
    drop(broker);
    drop(namesrv);
}
