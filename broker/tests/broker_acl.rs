//! ACL 1.0 against a real `ringmq-broker` (`aclEnable=true`, two shards) on 127.0.0.1: right
//! credentials pass; missing, wrong, expired credentials, a DENY topic and a non-admin admin
//! call are refused with NO_PERMISSION and Java's message, on a connection that stays usable;
//! whitelisting; a rewrite of the file takes effect without a restart.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::msg::*;
use common::*;
use ringmq_proto::acl::sign_request;
use ringmq_proto::code::{RequestCode, ResponseCode};
use ringmq_proto::command::RemotingCommand;

const USER: (&str, &str) = ("RocketMQ", "12345678");
const ADMIN: (&str, &str) = ("rocketmq2", "87654321");

const FILE: &str = "
accounts:
  - accessKey: RocketMQ
    secretKey: 12345678
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - TopicAcl=PUB|SUB
      - topicA=DENY
  - accessKey: rocketmq2
    secretKey: 87654321
    admin: true
";

fn signed(mut request: RemotingCommand, (ak, sk): (&str, &str)) -> RemotingCommand {
    let body = request.body.clone();
    sign_request(ak, sk, &mut request.ext_fields, &body);
    request
}

fn start_acl_broker(dir: &Path, acl_file: &Path) -> Broker {
    let path_setting = format!("aclFilePath={}", acl_file.display());
    start_broker(
        &dir.join("store"),
        &[
            "--set",
            "aclEnable=true",
            "--set",
            &path_setting,
            "--set",
            "ringmqAclReloadIntervalMs=50",
        ],
    )
}

fn assert_refused(response: &RemotingCommand, remark: &str) {
    assert_eq!(
        response.code,
        ResponseCode::NoPermission.code(),
        "{response:?}"
    );
    assert_eq!(response.remark.as_deref(), Some(remark));
}

fn create_topic_request(topic: &str) -> RemotingCommand {
    Client::request(
        RequestCode::UpdateAndCreateTopic.code(),
        &[
            ("topic", topic),
            ("readQueueNums", "2"),
            ("writeQueueNums", "2"),
            ("perm", "6"),
        ],
        b"",
    )
}

#[test]
fn credentials_permissions_and_refusals_on_one_connection() {
    let dir = tempfile::tempdir().unwrap();
    let acl_file = dir.path().join("plain_acl.yml");
    std::fs::write(&acl_file, FILE).unwrap();
    let broker = start_acl_broker(dir.path(), &acl_file);
    let mut client = broker.connect();

    let denied = client.call(signed(create_topic_request("TopicAcl"), USER));
    assert_refused(
        &denied,
        "Need admin permission for request code=17, but accessKey=RocketMQ is not",
    );
    let created = client.call(signed(create_topic_request("TopicAcl"), ADMIN));
    assert_eq!(created.code, ResponseCode::Success.code(), "{created:?}");

    let sent = client.call(signed(send_v2("TopicAcl", 0, "", b"hello"), USER));
    assert_eq!(sent.code, ResponseCode::Success.code(), "{sent:?}");

    let unsigned = client.call(send_v2("TopicAcl", 0, "", b"hello"));
    assert_refused(&unsigned, "No accessKey is configured");
    let wrong_secret = client.call(signed(
        send_v2("TopicAcl", 0, "", b"x"),
        ("RocketMQ", "wrong-secret"),
    ));
    assert_refused(
        &wrong_secret,
        "Check signature failed for accessKey=RocketMQ",
    );
    let mut tampered = signed(send_v2("TopicAcl", 0, "", b"x"), USER);
    tampered.body = bytes::Bytes::from_static(b"y");
    assert_refused(
        &client.call(tampered),
        "Check signature failed for accessKey=RocketMQ",
    );
    let unknown = client.call(signed(
        send_v2("TopicAcl", 0, "", b"x"),
        ("nobody12", "12345678"),
    ));
    assert_refused(&unknown, "No acl config for nobody12");
    let deny_topic = client.call(signed(send_v2("topicA", 0, "", b"x"), USER));
    assert_refused(&deny_topic, "No default permission for topic:topicA");

    // The same connection still serves: only the signed send was stored.
    let max = Client::request(
        RequestCode::GetMaxOffset.code(),
        &[("topic", "TopicAcl"), ("queueId", "0")],
        b"",
    );
    let max = client.call(signed(max, USER));
    assert_eq!(max.code, ResponseCode::Success.code(), "{max:?}");
    assert_eq!(header_i64(&max, "offset"), 1);
    let log = broker.process.log();
    assert!(
        log.contains("ACL refused") && log.contains("RocketMQ"),
        "{log}"
    );
    assert!(
        !log.contains("12345678") && !log.contains("87654321"),
        "secret in log"
    );
}

/// Polls `probe` until it holds; the file watcher runs every 50 ms here.
fn wait_until(what: &str, mut probe: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT_MAX;
    while !probe() {
        assert!(
            Instant::now() < deadline,
            "{what} not seen within {WAIT_MAX:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn whitelist_and_reload_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let acl_file = dir.path().join("plain_acl.yml");
    std::fs::write(&acl_file, FILE).unwrap();
    let broker = start_acl_broker(dir.path(), &acl_file);
    let mut client = broker.connect();
    assert_eq!(
        client
            .call(signed(create_topic_request("TopicAcl"), ADMIN))
            .code,
        0
    );
    assert_refused(
        &client.call(send_v2("TopicAcl", 0, "", b"x")),
        "No accessKey is configured",
    );

    // Whitelist loopback: unsigned requests pass.
    std::fs::write(
        &acl_file,
        format!("globalWhiteRemoteAddresses: [127.0.0.1]\n{FILE}"),
    )
    .unwrap();
    wait_until("the whitelist", || {
        client.call(send_v2("TopicAcl", 0, "", b"x")).code == 0
    });

    // Remove the whitelist and the user: its credentials have expired.
    std::fs::write(
        &acl_file,
        "accounts: [ {accessKey: rocketmq2, secretKey: 87654321, admin: true} ]\n",
    )
    .unwrap();
    wait_until("the account removal", || {
        let response = client.call(signed(send_v2("TopicAcl", 0, "", b"x"), USER));
        response.remark.as_deref() == Some("No acl config for RocketMQ")
    });
    assert_refused(
        &client.call(send_v2("TopicAcl", 0, "", b"x")),
        "No accessKey is configured",
    );
    let admin_send = client.call(signed(send_v2("TopicAcl", 0, "", b"x"), ADMIN));
    assert_eq!(admin_send.code, 0, "{admin_send:?}");
}

#[test]
fn a_missing_acl_file_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.yml");
    let path_setting = format!("aclFilePath={}", missing.display());
    let (status, log) = run_broker_expecting_failure(
        &dir.path().join("store"),
        &["--set", "aclEnable=true", "--set", &path_setting],
    );
    assert!(!status.success());
    assert!(log.contains("nowhere.yml"), "{log}");
}
