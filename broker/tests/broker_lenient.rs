//! What the rocketmq-client-cpp engine (behind several language bindings) sends, against a real
//! `ringmq-broker` (two shards) on 127.0.0.1 (issue 12 §1): its heartbeat with `subVersion`
//! written as a JSON string registers the push consumer, and its batch, sent as SEND_MESSAGE
//! (code 10) with `batch=1`, is stored as its messages, not as one.

mod common;

use common::msg::*;
use common::*;
use ringmq_proto::body::{ConsumerListBody, JsonBody};
use ringmq_proto::code::{RequestCode, ResponseCode};
use ringmq_proto::command::LanguageCode;
use ringmq_proto::message::batch::BatchItem;

/// The heartbeat exactly as the C++ engine writes it (jsoncpp FastWriter), shared with the
/// proto crate's golden tests.
fn cpp_heartbeat() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../proto/tests/fixtures/lenient/cpp_heartbeat.json"
    );
    std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

#[test]
fn cpp_engine_heartbeat_registers_its_push_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir.path().join("store"), &[]);
    let mut client = broker.connect();
    let mut heartbeat = Client::request(RequestCode::HeartBeat.code(), &[], &cpp_heartbeat());
    heartbeat.language = LanguageCode::Cpp;
    let response = client.call(heartbeat);
    assert_eq!(
        response.code,
        ResponseCode::Success.code(),
        "{:?}",
        response.remark
    );
    let response = client.call_code(
        RequestCode::GetConsumerListByGroup.code(),
        &[("consumerGroup", "GID_cpp")],
        b"",
    );
    assert_eq!(
        response.code,
        ResponseCode::Success.code(),
        "{:?}",
        response.remark
    );
    assert_eq!(
        ConsumerListBody::from_json(&response.body)
            .unwrap()
            .consumer_id_list,
        vec!["172.17.0.2@4242#1796604663223".to_string()]
    );
}

#[test]
fn cpp_engine_batch_as_send_message_with_batch_1_is_split() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir.path().join("store"), &[]);
    let mut client = broker.connect();
    create_topic(&mut client, "CppBatchT", 1);
    let mut body = Vec::new();
    for i in 0..4 {
        let properties = props(&[("UNIQ_KEY", &format!("C{i:031}"))]);
        BatchItem {
            flag: 0,
            body: format!("cpp item {i}").as_bytes(),
            properties: properties.as_bytes(),
        }
        .encode(&mut body)
        .unwrap();
    }
    let mut request = send_v1("CppBatchT", 0, "", &body);
    request.language = LanguageCode::Cpp;
    request.ext_fields.insert("batch", "1");
    let response = client.call(request);
    assert_eq!(
        response.code,
        ResponseCode::Success.code(),
        "{:?}",
        response.remark
    );
    assert_eq!(
        response.ext_fields.get("msgId").unwrap().split(',').count(),
        4
    );
    let pulled = pull_now(&mut client, "CppBatchT", 0, 0);
    let records = decode_records(&pulled.body);
    let bodies: Vec<&[u8]> = records.iter().map(|r| r.record.body).collect();
    assert_eq!(
        bodies,
        (0..4)
            .map(|i| format!("cpp item {i}").into_bytes())
            .collect::<Vec<_>>()
    );
    // `batch=0` is a single message, whose body is stored as sent.
    let mut single = send_v1("CppBatchT", 0, "", b"plain");
    single.ext_fields.insert("batch", "0");
    assert_eq!(client.call(single).code, ResponseCode::Success.code());
    let pulled = pull_now(&mut client, "CppBatchT", 0, 4);
    let records = decode_records(&pulled.body);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].record.body, b"plain");
}

fn query_offset(
    client: &mut Client,
    group: &str,
    topic: &str,
    zero_if_not_found: bool,
) -> (i32, Option<i64>) {
    let mut fields = vec![("consumerGroup", group), ("topic", topic), ("queueId", "0")];
    if !zero_if_not_found {
        fields.push(("setZeroIfNotFound", "false"));
    }
    let response = client.call_code(RequestCode::QueryConsumerOffset.code(), &fields, b"");
    let offset = response
        .ext_fields
        .get("offset")
        .map(|o| o.parse().unwrap());
    (response.code, offset)
}

const SUCCESS: i32 = 0;
const QUERY_NOT_FOUND: i32 = 22;

#[test]
fn a_new_group_starts_at_0_on_a_small_backlog_also_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // An 8 KiB tail cache: the backlog below is far past it, so only Java's rule (a share of
    // physical memory) can answer 0 here.
    let tiny_tail = ["--cpus", "1", "--set", "ringmqTailCacheBytes=8192"];
    let mut broker = start_broker(&store, &tiny_tail);
    let port = broker.port;
    let mut client = broker.connect();
    create_topic(&mut client, "BacklogT", 1);
    // An empty queue: 0 (Java: no consume-queue entry at 0, so not "on disk").
    assert_eq!(
        query_offset(&mut client, "g0", "BacklogT", true),
        (SUCCESS, Some(0))
    );
    for _ in 0..24 {
        let response = client.call(send_v2("BacklogT", 0, "", &[b'x'; 2048]));
        assert_eq!(response.code, SUCCESS, "{:?}", response.remark);
    }
    client.close();
    broker.process.terminate();

    let mut broker = start_broker_on(&store, port, &tiny_tail);
    let mut client = broker.connect();
    // 48 KiB of backlog is far under 40 % of any machine's memory: the new group starts at 0.
    assert_eq!(
        query_offset(&mut client, "new-g", "BacklogT", true),
        (SUCCESS, Some(0))
    );
    // A client that asks not to be given 0 gets QUERY_NOT_FOUND.
    assert_eq!(
        query_offset(&mut client, "new-g", "BacklogT", false),
        (QUERY_NOT_FOUND, None)
    );
    client.close();
    broker.process.terminate();

    // With accessMessageInMemoryMaxRatio=0 every stored message counts as on disk: the group
    // gets QUERY_NOT_FOUND and applies its consumeFromWhere, as on a Java broker.
    let ratio_zero = [
        "--cpus",
        "1",
        "--set",
        "ringmqTailCacheBytes=8192",
        "--set",
        "accessMessageInMemoryMaxRatio=0",
    ];
    let mut broker = start_broker_on(&store, port, &ratio_zero);
    let mut client = broker.connect();
    assert_eq!(
        query_offset(&mut client, "new-g", "BacklogT", true),
        (QUERY_NOT_FOUND, None)
    );
    client.close();
    broker.process.terminate();
}
