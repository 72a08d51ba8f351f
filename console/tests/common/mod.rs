//! Console test harness: a real name server, broker and `ringmq-console` on 127.0.0.1 (killed
//! by PID on drop), a seeded topic and a consumer group with lag, a broker registered at an
//! address where nothing listens, and a minimal HTTP client.

#![allow(dead_code)] // each test file uses a different part of the harness

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringmq_client::{
    Admin, ClientConfig, Message, MessageQueue, Producer, ProducerConfig, PullConsumer, TopicConfig,
};
use ringmq_proto::body::{
    ConsumerData, DataVersion, HeartbeatData, JsonBody, RegisterBrokerBody, SubscriptionData,
};
use ringmq_proto::command::{ExtFields, RemotingCommand};
use ringmq_proto::header::RegisterBrokerRequestHeader;
use ringmq_proto::RequestCode;

pub const WAIT_MAX: Duration = Duration::from_secs(60);
pub const TOPIC: &str = "ConsoleTopic";
pub const GROUP: &str = "ConsoleGroup";
pub const QUEUES: i32 = 4;
pub const MESSAGES: i64 = 40;
/// Each queue's committed offset: lag is MESSAGES - QUEUES * COMMITTED.
pub const COMMITTED: i64 = 2;
pub const GHOST: &str = "broker-ghost";

#[allow(unused_imports)] // each test file uses a different part
pub use ringmq_testkit::{free_port, free_port_pair, run};
use ringmq_testkit::{workspace_binary, ChildGuard as Proc};

/// Name server, broker and console, plus the data the pages must show.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub namesrv: String,
    pub broker: String,
    pub http: String,
    pub ghost_addr: String,
    _ghost: Option<flume::Sender<()>>,
    pub console: Proc,
    _broker: Proc,
    _namesrv: Proc,
}

impl Cluster {
    /// Everything started and seeded; returns once the console's first sample shows the lag.
    pub fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let (ns, namesrv) = start_namesrv(dir.path());
        let (b, broker) = start_broker(dir.path(), &namesrv);
        let ghost_addr = format!("127.0.0.1:{}", free_port());
        let ghost = register_ghost(&namesrv, &ghost_addr);
        seed(&namesrv, &broker);
        let http_port = free_port();
        let http = format!("127.0.0.1:{http_port}");
        let console_args = strings(&[
            "--namesrv",
            &namesrv,
            "--listen",
            &http,
            "--sample-interval-ms",
            "500",
            "--request-timeout-ms",
            "1000",
        ]);
        let mut console = Proc::spawn(
            "ringmq-console",
            Path::new(env!("CARGO_BIN_EXE_ringmq-console")),
            &console_args,
            dir.path().join("console.log"),
        );
        console.wait_listening(http_port);
        let cluster = Cluster {
            dir,
            namesrv,
            broker,
            http,
            ghost_addr,
            _ghost: Some(ghost),
            console,
            _broker: b,
            _namesrv: ns,
        };
        cluster.wait_for("the group's lag in the console", |c| {
            let (_, body) = http_get(&c.http, "/api/consumers");
            body.contains(&format!(
                "\"total_lag\":{}",
                MESSAGES - i64::from(QUEUES) * COMMITTED
            ))
        });
        cluster
    }

    pub fn wait_for(&self, what: &str, mut probe: impl FnMut(&Cluster) -> bool) {
        let deadline = Instant::now() + WAIT_MAX;
        while !probe(self) {
            assert!(
                Instant::now() < deadline,
                "{what} not seen within {WAIT_MAX:?}; console log:\n{}",
                self.console.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn start_namesrv(dir: &Path) -> (Proc, String) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let binary = workspace_binary("ringmq-namesrv", "ringmq-namesrv");
    let mut process = Proc::spawn(
        "ringmq-namesrv",
        &binary,
        &strings(&["--listen", &addr]),
        dir.join("namesrv.log"),
    );
    process.wait_listening(port);
    (process, addr)
}

/// One shard, small segments, registering every second (so new topics reach the name server
/// quickly).
fn start_broker(dir: &Path, namesrv: &str) -> (Proc, String) {
    let port = free_port_pair();
    let store = dir.join("store").display().to_string();
    let args = strings(&[
        "-n",
        namesrv,
        "--listen-port",
        &port.to_string(),
        "--broker-ip",
        "127.0.0.1",
        "--store-dir",
        &store,
        "--cpus",
        "1",
        "--set",
        "mappedFileSizeCommitLog=8388608",
        "--set",
        "ringmqTailCacheBytes=4194304",
        "--set",
        "registerNameServerPeriod=1000",
    ]);
    let binary = workspace_binary("ringmq-broker", "ringmq-broker");
    let mut process = Proc::spawn("ringmq-broker", &binary, &args, dir.join("broker.log"));
    process.wait_listening(port);
    (process, format!("127.0.0.1:{port}"))
}

fn client_config(namesrv: &str) -> ClientConfig {
    ClientConfig::new(namesrv).expect("client config")
}

/// Topic with MESSAGES messages (keys `key-N`), a group that heartbeated (so its retry topic
/// exists) and committed COMMITTED on each queue.
fn seed(namesrv: &str, broker: &str) {
    let (namesrv, broker) = (namesrv.to_string(), broker.to_string());
    run(move || async move {
        let admin = Admin::new(client_config(&namesrv)).unwrap();
        admin
            .create_topic(&broker, &TopicConfig::new(TOPIC, QUEUES))
            .await
            .unwrap();
        let deadline = Instant::now() + WAIT_MAX;
        while admin.topic_route(TOPIC).await.is_err() {
            assert!(Instant::now() < deadline, "route of {TOPIC} not registered");
            glommio::timer::sleep(Duration::from_millis(100)).await;
        }
        let producer = Producer::start(ProducerConfig::new(
            client_config(&namesrv),
            "ConsoleProducer",
        ))
        .unwrap();
        for i in 0..MESSAGES {
            let message =
                Message::new(TOPIC, format!("hello console {i}")).with_keys([format!("key-{i}")]);
            producer.send(message).await.unwrap();
        }
        producer.shutdown().await;
        heartbeat(&admin, &broker).await;
        let consumer = PullConsumer::start(client_config(&namesrv), GROUP).unwrap();
        for queue_id in 0..QUEUES {
            let queue = MessageQueue::new(TOPIC, "broker-a", queue_id);
            consumer.commit_offset(&queue, COMMITTED).await.unwrap();
        }
        consumer.shutdown();
        admin.shutdown();
    });
}

async fn heartbeat(admin: &Admin, broker: &str) {
    let data = HeartbeatData {
        client_id: "127.0.0.1@console-test".to_string(),
        consumer_data_set: vec![ConsumerData {
            group_name: GROUP.to_string(),
            subscription_data_set: vec![SubscriptionData {
                topic: TOPIC.to_string(),
                sub_string: "*".to_string(),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let request = RemotingCommand::new_request(
        RequestCode::HeartBeat.code(),
        ExtFields::new(),
        Bytes::from(data.to_json()),
    );
    let response = admin.invoke(broker, request).await.unwrap();
    assert_eq!(response.code, 0, "heartbeat: {:?}", response.remark);
}

/// Registers GHOST at `addr` (nothing listens there) on a connection kept open until the
/// returned sender is dropped, so the name server keeps listing it.
fn register_ghost(namesrv: &str, addr: &str) -> flume::Sender<()> {
    let (stop, stopped) = flume::bounded::<()>(1);
    let (registered_tx, registered) = flume::bounded::<()>(1);
    let (namesrv, addr) = (namesrv.to_string(), addr.to_string());
    std::thread::spawn(move || {
        run(move || async move {
            let admin = Admin::new(client_config(&namesrv)).unwrap();
            let header = RegisterBrokerRequestHeader {
                broker_name: GHOST.to_string(),
                broker_addr: addr.clone(),
                cluster_name: "DefaultCluster".to_string(),
                ha_server_addr: addr.clone(),
                broker_id: 0,
                heartbeat_timeout_millis: None,
                enable_acting_master: None,
                compressed: false,
                body_crc32: 0,
            };
            let mut body = RegisterBrokerBody::default();
            body.topic_config_serialize_wrapper.data_version = DataVersion {
                counter: 1,
                state_version: 0,
                timestamp: 1,
            };
            let mut request = RemotingCommand::new_request(
                RequestCode::RegisterBroker.code(),
                ExtFields::new(),
                Bytes::from(body.to_json()),
            );
            request.set_header(&header);
            let response = admin.invoke(&namesrv, request).await.unwrap();
            assert_eq!(response.code, 0, "register ghost: {:?}", response.remark);
            let _ = registered_tx.send(());
            let _ = stopped.recv_async().await;
            admin.shutdown();
        })
    });
    registered
        .recv_timeout(WAIT_MAX)
        .expect("ghost broker registered");
    stop
}

/// A GET (or other method) over a fresh HTTP/1.1 connection: (status, body).
pub fn http(addr: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect console");
    stream.set_read_timeout(Some(WAIT_MAX)).unwrap();
    let body = body.unwrap_or("");
    let request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let text = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, text)
}

pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    http(addr, "GET", path, None)
}
