//! Decisions of the whole check on requests built by hand, against RocketMQ's sample file.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use ringmq_proto::acl::sign_request;
use ringmq_proto::code::RequestCode;
use ringmq_proto::command::ExtFields;

use super::*;

/// RocketMQ 4.9's sample accounts plus a test account with explicit perms, whitelists moved
/// off loopback so loopback requests must sign.
const FILE: &str = "
globalWhiteRemoteAddresses:
  - 10.10.103.*
accounts:
  - accessKey: RocketMQ
    secretKey: 12345678
    whiteRemoteAddress:
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - topicA=DENY
      - topicB=PUB|SUB
      - topicC=SUB
      - TopicTest=PUB
    groupPerms:
      - groupA=DENY
      - groupB=PUB|SUB
      - groupC=SUB
  - accessKey: rocketmq2
    secretKey: 12345678
    whiteRemoteAddress: 192.168.1.*
    admin: true
";

fn config() -> AclConfig {
    AclConfig::parse(FILE).unwrap()
}

fn loopback() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

fn decide(code: RequestCode, fields: &ExtFields, body: &[u8], ip: IpAddr) -> Result<(), String> {
    let request = AclRequest {
        code: code.code(),
        ext_fields: fields,
        body,
        remote_ip: ip,
    };
    validate(&config(), &request).map_err(|r| r.message)
}

fn signed(ak: &str, sk: &str, pairs: &[(&str, &str)], body: &[u8]) -> ExtFields {
    let mut fields: ExtFields = pairs.iter().copied().collect();
    sign_request(ak, sk, &mut fields, body);
    fields
}

#[test]
fn golden_signed_send_passes_and_a_wrong_one_is_refused() {
    // Signature from: printf '%s' 'RocketMQPGTopicTestTBW1024hello' |
    //   openssl dgst -sha1 -hmac 12345678 -binary | base64
    let mut fields: ExtFields = [
        ("a", "PG"),
        ("b", "TopicTest"),
        ("c", "TBW102"),
        ("d", "4"),
        ("AccessKey", "RocketMQ"),
        ("Signature", "1Nw7wPVK2eAkDjGJpjI89HxXeb0="),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        decide(RequestCode::SendMessageV2, &fields, b"hello", loopback()),
        Ok(())
    );
    assert_eq!(
        decide(RequestCode::SendMessageV2, &fields, b"hellO", loopback()),
        Err("Check signature failed for accessKey=RocketMQ".to_string())
    );
    fields.insert("Signature", "2Nw7wPVK2eAkDjGJpjI89HxXeb0=");
    assert!(decide(RequestCode::SendMessageV2, &fields, b"hello", loopback()).is_err());
}

#[test]
fn missing_and_unknown_keys_are_refused_with_java_messages() {
    let unsigned: ExtFields = [("b", "TopicTest")].into_iter().collect();
    assert_eq!(
        decide(RequestCode::SendMessageV2, &unsigned, b"", loopback()),
        Err("No accessKey is configured".to_string())
    );
    let unknown = signed("Nobody123", "12345678", &[("b", "TopicTest")], b"");
    assert_eq!(
        decide(RequestCode::SendMessageV2, &unknown, b"", loopback()),
        Err("No acl config for Nobody123".to_string())
    );
    let wrong_secret = signed("RocketMQ", "87654321", &[("b", "TopicTest")], b"");
    assert_eq!(
        decide(RequestCode::SendMessageV2, &wrong_secret, b"", loopback()),
        Err("Check signature failed for accessKey=RocketMQ".to_string())
    );
}

#[test]
fn topic_and_group_permissions_follow_java() {
    let send = |topic: &str| {
        let f = signed("RocketMQ", "12345678", &[("a", "pg"), ("b", topic)], b"m");
        decide(RequestCode::SendMessageV2, &f, b"m", loopback())
    };
    assert_eq!(send("topicB"), Ok(()));
    assert_eq!(
        send("topicA"),
        Err("No default permission for topic:topicA".to_string())
    );
    assert_eq!(
        send("topicC"),
        Err("No default permission for topic:topicC".to_string())
    );
    assert_eq!(
        send("other"),
        Err("No default permission for topic:other".to_string())
    );
    let pull = |topic: &str, group: &str| {
        let f = signed(
            "RocketMQ",
            "12345678",
            &[("topic", topic), ("consumerGroup", group), ("queueId", "0")],
            b"",
        );
        decide(RequestCode::PullMessage, &f, b"", loopback())
    };
    assert_eq!(pull("topicC", "groupC"), Ok(()));
    assert_eq!(
        pull("topicC", "anyGroup"),
        Ok(()),
        "defaultGroupPerm is SUB"
    );
    assert_eq!(
        pull("topicC", "groupA"),
        Err("No default permission for group:groupA".to_string())
    );
    assert_eq!(
        pull("topicA", "groupC"),
        Err("No default permission for topic:topicA".to_string())
    );
    // A retry topic follows its group, not the topic defaults.
    assert_eq!(pull("%RETRY%groupC", "groupC"), Ok(()));
    assert_eq!(
        pull("%RETRY%groupA", "groupC"),
        Err("No default permission for group:groupA".to_string())
    );
}

#[test]
fn admin_codes_need_an_admin_and_an_admin_without_perms_owns_everything() {
    let f = signed("RocketMQ", "12345678", &[("topic", "topicB")], b"");
    assert_eq!(
        decide(RequestCode::UpdateAndCreateTopic, &f, b"", loopback()),
        Err("Need admin permission for request code=17, but accessKey=RocketMQ is not".to_string())
    );
    let admin = signed("rocketmq2", "12345678", &[("topic", "anything")], b"");
    assert_eq!(
        decide(RequestCode::UpdateAndCreateTopic, &admin, b"", loopback()),
        Ok(())
    );
    let send = signed("rocketmq2", "12345678", &[("b", "anything")], b"");
    assert_eq!(
        decide(RequestCode::SendMessageV2, &send, b"", loopback()),
        Ok(())
    );
}

#[test]
fn whitelists_pass_without_a_signature() {
    let unsigned: ExtFields = [("b", "topicA")].into_iter().collect();
    let global: IpAddr = "10.10.103.7".parse().unwrap();
    assert_eq!(
        decide(RequestCode::SendMessageV2, &unsigned, b"", global),
        Ok(())
    );
    let mut by_account: ExtFields = [("b", "topicA"), ("AccessKey", "rocketmq2")]
        .into_iter()
        .collect();
    let account_white: IpAddr = "192.168.1.20".parse().unwrap();
    assert_eq!(
        decide(RequestCode::SendMessageV2, &by_account, b"", account_white),
        Ok(())
    );
    by_account.insert("AccessKey", "RocketMQ");
    assert!(decide(RequestCode::SendMessageV2, &by_account, b"", account_white).is_err());
}

#[test]
fn heartbeat_checks_every_group_and_subscription() {
    let body = br#"{"clientID":"c","consumerDataSet":[{"groupName":"groupC","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","subscriptionDataSet":[{"topic":"topicC","subString":"*","tagsSet":[],"codeSet":[],"subVersion":0}],"unitMode":false}],"producerDataSet":[]}"#;
    let f = signed("RocketMQ", "12345678", &[], body);
    assert_eq!(decide(RequestCode::HeartBeat, &f, body, loopback()), Ok(()));
    let denied = String::from_utf8_lossy(body).replace("topicC", "topicA");
    let f = signed("RocketMQ", "12345678", &[], denied.as_bytes());
    assert_eq!(
        decide(RequestCode::HeartBeat, &f, denied.as_bytes(), loopback()),
        Err("No default permission for topic:topicA".to_string())
    );
}

#[test]
fn trace_topic_sends_pass_for_any_signed_account() {
    let f = signed(
        "RocketMQ",
        "12345678",
        &[("b", "RMQ_SYS_TRACE_TOPIC")],
        b"t",
    );
    assert_eq!(
        decide(RequestCode::SendMessageV2, &f, b"t", loopback()),
        Ok(())
    );
}

#[test]
fn views_see_a_published_configuration() {
    let shared = AclShared::new(AclConfig::default());
    let view = AclView::new(shared.clone());
    assert_eq!(view.with_config(|c| c.accounts.len()), 0);
    shared.publish(config());
    assert_eq!(view.with_config(|c| c.accounts.len()), 2);
}

#[test]
fn the_watcher_reloads_a_changed_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain_acl.yml");
    std::fs::write(&path, "accounts: []\n").unwrap();
    let (shared, _watcher) = AclWatcher::load_and_watch(path.clone(), 20).unwrap();
    let view = AclView::new(shared.clone());
    std::fs::write(&path, FILE).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while view.with_config(|c| c.accounts.len()) != 2 {
        assert!(Instant::now() < deadline, "reload not seen within 10 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    // A broken file leaves the last good configuration in force.
    std::fs::write(&path, "accounts: {").unwrap();
    while shared.failed_reloads() == 0 {
        assert!(
            Instant::now() < deadline,
            "broken file not seen within 10 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(view.with_config(|c| c.accounts.len()), 2);
}

#[test]
fn the_file_path_follows_rocketmq() {
    assert_eq!(
        acl_file_path(None, Some("/opt/rmq")),
        std::path::PathBuf::from("/opt/rmq/conf/plain_acl.yml")
    );
    let own = std::path::Path::new("/etc/acl.yml");
    assert_eq!(acl_file_path(Some(own), Some("/opt/rmq")), own);
}
