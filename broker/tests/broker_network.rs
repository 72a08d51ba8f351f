//! The broker's network behaviour against bad input, each case checked together with "other
//! connections keep working": a real `ringmq-broker` with two shards on 127.0.0.1.

mod common;

use common::*;
use ringmq_proto::code::{RequestCode, ResponseCode};
use ringmq_proto::command::{SerializeType, SERVER_VERSION};

/// A request any healthy broker answers: the consumer list of a group nobody joined.
fn assert_healthy(client: &mut Client) {
    let response = client.call_code(
        RequestCode::GetConsumerListByGroup.code(),
        &[("consumerGroup", "health-check")],
        b"",
    );
    assert_eq!(response.code, ResponseCode::SystemError.code());
    assert_eq!(
        response.remark.as_deref(),
        Some("no consumer for this group, health-check")
    );
}

#[test]
fn unknown_code_gets_request_code_not_supported() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir.path().join("store"), &[]);
    let mut client = broker.connect();
    let mut other = broker.connect();
    for code in [9999, 200050, 0, -5] {
        let response = client.call_code(code, &[("topic", "T")], b"body");
        assert_eq!(response.code, ResponseCode::RequestCodeNotSupported.code());
        assert_eq!(
            response.remark.as_deref(),
            Some(format!(" request type {code} not supported").as_str())
        );
        assert!(response.is_response());
        assert_eq!(response.version, SERVER_VERSION);
    }
    // The same connection and another one keep working.
    assert_healthy(&mut client);
    assert_healthy(&mut other);
}

#[test]
fn each_request_is_answered_in_its_own_serialize_type() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir.path().join("store"), &[]);
    let mut client = broker.connect();
    let binary = client.call(rocketmq_request(9999, &[], b""));
    assert_eq!(binary.serialize_type, SerializeType::RocketMq);
    assert_eq!(binary.code, ResponseCode::RequestCodeNotSupported.code());
    let json = client.call(json_request(9999, &[], b""));
    assert_eq!(json.serialize_type, SerializeType::Json);
    let binary = client.call(rocketmq_request(
        RequestCode::GetConsumerListByGroup.code(),
        &[("consumerGroup", "g")],
        b"",
    ));
    assert_eq!(binary.serialize_type, SerializeType::RocketMq);
    assert_eq!(
        binary.remark.as_deref(),
        Some("no consumer for this group, g")
    );
}

#[test]
fn oneway_requests_are_never_answered() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir.path().join("store"), &[]);
    let mut client = broker.connect();
    let mut oneway = json_request(9999, &[], b"");
    oneway.set_oneway();
    client.send(oneway);
    let mut oneway_bad = json_request(
        RequestCode::UpdateConsumerOffset.code(),
        &[("topic", "T")],
        b"",
    );
    oneway_bad.set_oneway();
    client.send(oneway_bad);
    // The next response on the connection belongs to the next normal request.
    let opaque = client.send(json_request(
        RequestCode::GetConsumerListByGroup.code(),
        &[("consumerGroup", "g")],
        b"",
    ));
    let response = client.read_response();
    assert_eq!(response.opaque, opaque);
}

#[test]
fn malformed_frames_close_only_their_connection() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir.path().join("store"), &[]);
    let mut bystander = broker.connect();
    assert_healthy(&mut bystander);

    let bad_frames: Vec<(&str, Vec<u8>)> = vec![
        ("length below 4", vec![0, 0, 0, 2, 0, 0, 0, 0]),
        ("negative length", vec![0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 0]),
        // 32 MiB announced: over the 16 MiB cap, rejected before any of it is buffered.
        ("oversized frame", vec![0x02, 0, 0, 0, 0, 0, 0, 0]),
        (
            "header longer than frame",
            vec![0, 0, 0, 8, 0, 0, 0, 100, 1, 2, 3, 4],
        ),
        ("unknown serialize type", {
            let mut f = vec![0, 0, 0, 6, 7, 0, 0, 2];
            f.extend_from_slice(b"{}");
            f
        }),
        ("header not JSON", {
            let mut f = vec![0, 0, 0, 9, 0, 0, 0, 5];
            f.extend_from_slice(b"{nope");
            f
        }),
    ];
    for (what, bytes) in bad_frames {
        let mut victim = broker.connect();
        assert_healthy(&mut victim);
        victim.write_raw(&bytes);
        assert!(
            victim.is_closed_by_server(),
            "{what}: connection not closed"
        );
        assert_healthy(&mut bystander);
        let mut fresh = broker.connect();
        assert_healthy(&mut fresh);
    }
}

#[test]
fn vip_port_serves_the_same_requests() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir.path().join("store"), &[]);
    let mut vip = Client::connect(&format!("127.0.0.1:{}", broker.port - 2));
    assert_healthy(&mut vip);
}

#[test]
fn sigterm_stops_the_broker_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start_broker(&dir.path().join("store"), &[]);
    let mut client = broker.connect();
    assert_healthy(&mut client);
    let status = broker.process.terminate();
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        broker.process.log()
    );
    let log = broker.process.log();
    assert!(log.contains("broker stopped"), "{log}");
}

#[test]
fn a_different_shard_count_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut broker = start_broker(&store, &["--cpus", "2"]);
    assert!(broker.process.terminate().success());
    let (status, log) = run_broker_expecting_failure(&store, &["--cpus", "1"]);
    assert!(!status.success());
    assert!(
        log.contains("was created with 2 shards but this start has 1"),
        "{log}"
    );
    assert!(log.contains("--cpus 2"), "{log}");
}

#[test]
fn bad_configuration_is_refused_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (status, log) = run_broker_expecting_failure(&store, &["--set", "maxMessageSize=lots"]);
    assert_eq!(status.code(), Some(2));
    assert!(log.contains("maxMessageSize"), "{log}");
    let (status, log) = run_broker_expecting_failure(&store, &["--cpus", "64"]);
    assert!(!status.success());
    assert!(log.contains("asked for 64 cores"), "{log}");
}

#[test]
fn sigint_also_stops_the_broker_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start_broker(&dir.path().join("store"), &[]);
    assert_healthy(&mut broker.connect());
    // SAFETY: signalling our own child.
    unsafe { libc::kill(broker.process.pid(), libc::SIGINT) };
    let status = broker.process.wait_exit();
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        broker.process.log()
    );
    assert!(broker.process.log().contains("store closed"));
}

#[test]
fn config_file_keys_apply_and_flags_override_them() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("broker.conf");
    std::fs::write(
        &conf,
        "# a RocketMQ broker.conf\nbrokerClusterName = FileCluster\nbrokerName=broker-file\n\
         deleteWhen=04\nbrokerNmae=typo\ndefaultTopicQueueNums=3\nlistenPort=1\n",
    )
    .unwrap();
    let conf_arg = conf.display().to_string();
    // listenPort=1 in the file is overridden by the harness's --listen-port flag.
    let broker = start_broker(&dir.path().join("store"), &["-c", &conf_arg]);
    let mut client = broker.connect();
    let response = client.call_code(RequestCode::GetBrokerConfig.code(), &[], b"");
    let text = text(&response.body);
    assert!(text.contains("brokerClusterName=FileCluster\n"), "{text}");
    assert!(text.contains("brokerName=broker-file\n"), "{text}");
    assert!(
        text.contains(&format!("listenPort={}\n", broker.port)),
        "{text}"
    );
    let topics = client.call_code(RequestCode::GetAllTopicConfig.code(), &[], b"");
    assert!(text_contains_queue_count(&topics.body, "TBW102", 3));
    let log = broker.process.log();
    assert!(log.contains("unknown key `brokerNmae`"), "{log}");
    assert!(log.contains("`deleteWhen` has no effect"), "{log}");
}

fn text_contains_queue_count(body: &[u8], topic: &str, queues: i32) -> bool {
    use ringmq_proto::body::{JsonBody, TopicConfigSerializeWrapper};
    let wrapper = TopicConfigSerializeWrapper::from_json(body).unwrap();
    wrapper.topic_config_table[topic].write_queue_nums == queues
}

#[test]
fn idle_connections_are_closed_and_busy_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(
        &dir.path().join("store"),
        &["--set", "serverChannelMaxIdleTimeSeconds=1"],
    );
    let mut idle = broker.connect();
    assert_healthy(&mut idle);
    // A busy connection sends every 250 ms for three times the idle timeout: always served.
    let mut busy = broker.connect();
    for _ in 0..12 {
        assert_healthy(&mut busy);
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(idle.is_closed_by_server(), "idle connection kept open");
    assert_healthy(&mut busy);
    // A fresh connection is served as usual.
    assert_healthy(&mut broker.connect());
}

#[test]
fn a_port_held_by_another_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port_pair();
    // Another listener (any process) already holds the VIP port.
    let _holder = std::net::TcpListener::bind(("127.0.0.1", port - 2)).unwrap();
    let store = dir.path().join("store");
    let port_text = port.to_string();
    let (status, log) = run_broker_expecting_failure(&store, &["--listen-port", &port_text]);
    assert!(!status.success());
    assert!(
        log.contains(&format!("port {} on 127.0.0.1 is already in use", port - 2)),
        "{log}"
    );
    // A broker already running on a port is not joined by a second one either.
    let first = start_broker(&dir.path().join("first"), &[]);
    let first_port = first.port.to_string();
    let (status, log) =
        run_broker_expecting_failure(&dir.path().join("second"), &["--listen-port", &first_port]);
    assert!(!status.success());
    assert!(log.contains("already in use"), "{log}");
    assert_healthy(&mut first.connect());
}

#[test]
fn sigterm_stops_the_broker_while_clients_stay_connected() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start_broker(&dir.path().join("store"), &[]);
    let mut open = broker.connect();
    assert_healthy(&mut open);
    let status = broker.process.terminate();
    assert!(status.success(), "{status:?}");
}
