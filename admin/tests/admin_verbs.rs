//! Every ringmq-admin verb run as a process against a live name server and broker started by
//! the test (the client crate's harness: real binaries on 127.0.0.1, killed by PID on drop).
//! Checks what an operator's script sees: `--json` output, exit codes, error text.

#[path = "../../client/tests/common/mod.rs"]
mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{closed_port_addr, Broker, Namesrv, WAIT_LIMIT};
use serde_json::Value;

struct Admin {
    namesrv: String,
}

impl Admin {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ringmq-admin"))
            .args(args)
            .args(["-n", &self.namesrv, "--timeoutMillis", "3000"])
            .output()
            .expect("run ringmq-admin")
    }

    /// Runs a verb that must succeed and returns its JSON output.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let output = self.run(&all);
        assert!(
            output.status.success(),
            "ringmq-admin {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("JSON output")
    }

    /// Retries a verb until `done` holds on its JSON (background work: registration, index).
    fn json_until(&self, args: &[&str], what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            let mut all = args.to_vec();
            all.push("--json");
            let output = self.run(&all);
            if output.status.success() {
                let value: Value = serde_json::from_slice(&output.stdout).expect("JSON output");
                if done(&value) {
                    return value;
                }
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn start() -> (Namesrv, Broker, Admin) {
    let namesrv = Namesrv::start();
    let broker = Broker::start(&namesrv.addr_string(), "broker-a", &[]);
    let admin = Admin {
        namesrv: namesrv.addr_string(),
    };
    admin.json_until(&["clusterList"], "the broker's registration", |v| {
        v.as_array().is_some_and(|rows| !rows.is_empty())
    });
    (namesrv, broker, admin)
}

fn create_topic(admin: &Admin, broker: &str, topic: &str) {
    admin.json(&[
        "updateTopic",
        "-b",
        broker,
        "-t",
        topic,
        "-r",
        "2",
        "-w",
        "2",
    ]);
    admin.json_until(&["topicRoute", "-t", topic], "the topic's route", |v| {
        v["queueDatas"][0]["writeQueueNums"] == 2
    });
}

#[test]
fn cluster_topic_and_broker_verbs() {
    let (_namesrv, broker, admin) = start();
    let addr = broker.addr();
    let clusters = admin.json(&["clusterList"]);
    assert_eq!(clusters[0]["clusterName"], "DefaultCluster");
    assert_eq!(clusters[0]["brokerName"], "broker-a");
    assert_eq!(clusters[0]["addr"], addr.as_str());
    assert_eq!(clusters[0]["bid"], "0");

    create_topic(&admin, &addr, "AdminT");
    let topics = admin.json(&["topicList"]);
    assert!(topics
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["topic"] == "AdminT"));

    let config = admin.json(&["getBrokerConfig", "-b", &addr]);
    assert_eq!(config["brokerName"], "broker-a");
    admin.json(&[
        "updateBrokerConfig",
        "-b",
        &addr,
        "-k",
        "brokerPermission",
        "-v",
        "4",
    ]);
    let config = admin.json(&["getBrokerConfig", "-c", "DefaultCluster"]);
    assert_eq!(config["brokerPermission"], "4");
    admin.json(&[
        "updateBrokerConfig",
        "-b",
        &addr,
        "-k",
        "brokerPermission",
        "-v",
        "6",
    ]);

    let status = admin.json(&["brokerStatus", "-b", &addr]);
    assert!(status.get("brokerVersionDesc").is_some(), "{status}");

    let wiped = admin.json(&["wipeWritePerm", "-b", "broker-a"]);
    assert!(wiped["detail"][0]
        .as_str()
        .unwrap()
        .contains("wipe write perm of broker[broker-a]"));

    admin.json(&["deleteTopic", "-t", "AdminT", "-c", "DefaultCluster"]);
    let gone = admin.run(&["topicRoute", "-t", "AdminT"]);
    assert_eq!(
        gone.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&gone.stderr)
    );
}

#[test]
fn message_verbs_send_query_and_consume() {
    let (_namesrv, broker, admin) = start();
    create_topic(&admin, &broker.addr(), "MsgT");
    let sent = admin.json(&[
        "sendMessage",
        "-t",
        "MsgT",
        "-p",
        "hello admin",
        "-k",
        "k1",
        "-c",
        "TagA",
    ]);
    let msg_id = sent[0]["msgid"].as_str().unwrap().to_string();
    let queue_id = sent[0]["qid"].as_str().unwrap().to_string();
    assert_eq!(sent[0]["sendResult"], "SendOk");

    let by_key = admin.json_until(
        &["queryMsgByKey", "-t", "MsgT", "-k", "k1"],
        "the key index",
        |v| v.as_array().is_some_and(|rows| rows.len() == 1),
    );
    assert_eq!(by_key[0]["messageId"], msg_id.as_str());

    let by_id = admin.json(&["queryMsgById", "-i", &msg_id, "-t", "MsgT"]);
    assert_eq!(by_id["Message Body"], "hello admin");
    assert_eq!(by_id["Tags"], "[TagA]");
    // The offsetMsgId works without a topic (VIEW_MESSAGE_BY_ID at the store host).
    let offset_id = by_id["OffsetID"].as_str().unwrap().to_string();
    let by_offset_id = admin.json(&["queryMsgById", "-i", &offset_id]);
    assert_eq!(by_offset_id["Message Body"], "hello admin");

    let at = admin.json(&[
        "queryMsgByOffset",
        "-t",
        "MsgT",
        "-b",
        "broker-a",
        "-i",
        &queue_id,
        "-o",
        "0",
    ]);
    assert_eq!(at["Keys"], "[k1]");

    let consumed = admin.json(&["consumeMessage", "-t", "MsgT"]);
    let rows = consumed.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["body"], "hello admin");
}

#[test]
fn failures_have_distinct_exit_codes_and_name_the_server() {
    let (namesrv, _broker, admin) = start();
    let missing = admin.run(&["topicRoute", "-t", "NoSuchTopic"]);
    assert_eq!(missing.status.code(), Some(4));

    let nobody = Admin {
        namesrv: closed_port_addr(),
    };
    let unreachable = nobody.run(&["topicList"]);
    assert_eq!(unreachable.status.code(), Some(3));

    // A broker refusal names the broker, the request and the response code.
    let refused = admin.run(&["updateTopic", "-b", &_broker.addr(), "-t", "bad topic!"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_ne!(refused.status.code(), Some(0), "{stderr}");

    let usage = admin.run(&["updateTopic", "-t", "T"]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("-b ip:port"));
    drop(namesrv);
}
