//! The name server started the way the README says (a RocketMQ-style properties file via -c),
//! answering a route query for a topic that a registered broker serves.

mod common;

use common::{free_port, BrokerSpec, Client, Namesrv, NamesrvCalls};
use ringmq_proto::ResponseCode;

#[test]
fn started_as_the_readme_says_it_answers_routes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("namesrv.properties");
    // The shipped example, with the port moved off 9876 so tests never collide with a real
    // name server; plus a RocketMQ key that has no effect here (accepted, not fatal).
    let example = include_str!("../conf/namesrv.properties");
    assert!(example.contains("listenPort=9876"));
    let text = example.replace("listenPort=9876", &format!("listenPort={port}"))
        + "rocketmqHome=/opt/rocketmq\n";
    std::fs::write(&config, text).unwrap();
    let namesrv = Namesrv::start_with_args(&["-c", config.to_str().unwrap()]);
    assert_eq!(namesrv.addr.to_string(), format!("127.0.0.1:{port}"));

    let mut broker = Client::connect(&namesrv.addr);
    let mut spec = BrokerSpec::master("broker-a", "127.0.0.1:10911", &["TopicTest"]);
    spec.compressed = true;
    broker.register_broker(&spec);

    let mut client = Client::connect(&namesrv.addr);
    let (code, route, _) = client.route("TopicTest");
    assert_eq!(code, ResponseCode::Success);
    let route = route.unwrap();
    assert_eq!(route.broker_datas[0].master_addr(), Some("127.0.0.1:10911"));
    assert_eq!(route.queue_datas[0].write_queue_nums, 4);
}

#[test]
fn print_config_shows_the_effective_settings() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ringmq-namesrv"))
        .args(["-p", "--scan-interval-ms", "2500"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("listenPort=9876"), "{text}");
    assert!(text.contains("scanNotActiveBrokerInterval=2500"), "{text}");
}

#[test]
fn bad_config_exits_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.properties");
    std::fs::write(&config, "listenPort=ninety\n").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ringmq-namesrv"))
        .args(["-c", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let text = String::from_utf8(output.stderr).unwrap();
    assert!(
        text.contains("line 1") && text.contains("listenPort"),
        "{text}"
    );
}
