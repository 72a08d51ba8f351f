//! Send and pull end to end against a real `ringmq-broker` with two shards: what is stored is
//! what a pull returns, byte for byte in the RocketMQ record format; each bad input gets its
//! RocketMQ code while other connections keep working.

mod common;

use common::msg::*;
use common::*;
use ringmq_proto::code::{RequestCode, ResponseCode};
use ringmq_proto::command::RemotingCommand;
use ringmq_proto::message::batch::BatchItem;
use ringmq_proto::message::find_property;
use ringmq_proto::message::ids::decode_offset_msg_id;

#[test]
fn sent_messages_come_back_from_pulls_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir.path().join("store"), &[]);
    let mut producer = broker.connect();
    let sent = send_eight_to_auto_created_topic(&broker, &mut producer);
    let mut consumer = broker.connect();
    check_pulls_return_the_sent_records(&broker, &mut consumer, &sent);
    check_broker_generates_a_missing_uniq_key(&mut producer, &mut consumer);
    check_queue_offsets_over_the_wire(&mut consumer);
}

/// A sent message as its send response placed it: (queue, queue offset, physical offset, body).
type Sent = (i32, i64, i64, Vec<u8>);

/// Sends 8 messages to `AutoT` (auto-created from TBW102 on first send: min(d=4, 8) queues),
/// alternating V1 and V2 sends over queues 0..4, checking each send response.
fn send_eight_to_auto_created_topic(broker: &Broker, producer: &mut Client) -> Vec<Sent> {
    let mut sent = Vec::new();
    for i in 0..8 {
        let body = format!("message {i}").into_bytes();
        let properties = props(&[
            ("TAGS", "TagA"),
            ("KEYS", &format!("key{i}")),
            ("UNIQ_KEY", &format!("UNIQ{i:028}")),
        ]);
        let request = if i % 2 == 0 {
            send_v2("AutoT", i % 4, &properties, &body)
        } else {
            send_v1("AutoT", i % 4, &properties, &body)
        };
        let response = producer.call(request);
        assert_eq!(
            response.code,
            ResponseCode::Success.code(),
            "{:?}",
            response.remark
        );
        assert_eq!(header_i64(&response, "queueId"), i64::from(i % 4));
        assert_eq!(response.ext_fields.get("MSG_REGION"), Some("DefaultRegion"));
        assert_eq!(response.ext_fields.get("TRACE_ON"), Some("true"));
        assert_eq!(
            response.ext_fields.get("transactionId"),
            Some(format!("UNIQ{i:028}").as_str())
        );
        let id = decode_offset_msg_id(response.ext_fields.get("msgId").unwrap()).unwrap();
        assert_eq!(id.store_host.to_string(), broker.addr());
        sent.push((
            i % 4,
            header_i64(&response, "queueOffset"),
            id.commit_log_offset,
            body,
        ));
    }
    sent
}

/// Each queue's pull returns exactly the records sent to it, byte for byte, with the broker's
/// own fields (store host, cluster, region) filled in.
fn check_pulls_return_the_sent_records(broker: &Broker, consumer: &mut Client, sent: &[Sent]) {
    for queue in 0..4 {
        let response = pull_now(consumer, "AutoT", queue, 0);
        assert_eq!(
            response.code,
            ResponseCode::Success.code(),
            "{:?}",
            response.remark
        );
        assert_pull_headers(&response);
        assert_eq!(header_i64(&response, "nextBeginOffset"), 2);
        let records = decode_records(&response.body);
        let expected: Vec<_> = sent.iter().filter(|s| s.0 == queue).collect();
        assert_eq!(records.len(), expected.len());
        for (record, (q, queue_offset, physical, body)) in records.iter().zip(expected) {
            let r = &record.record;
            assert_eq!(r.queue_id, *q);
            assert_eq!(r.queue_offset, *queue_offset);
            assert_eq!(r.physical_offset, *physical);
            assert_eq!(r.body, body.as_slice());
            assert_eq!(r.topic, b"AutoT");
            assert_eq!(r.born_timestamp, 1700000000000);
            assert_eq!(r.store_host.to_string(), broker.addr());
            assert_eq!(
                find_property(r.properties, "CLUSTER"),
                Some(&b"DefaultCluster"[..])
            );
            assert_eq!(
                find_property(r.properties, "MSG_REGION"),
                Some(&b"DefaultRegion"[..])
            );
            assert!(find_property(r.properties, "UNIQ_KEY").is_some());
            record.verify_body_crc().unwrap();
        }
    }
}

/// A message without UNIQ_KEY gets one from the broker, returned as transactionId.
fn check_broker_generates_a_missing_uniq_key(producer: &mut Client, consumer: &mut Client) {
    let response = producer.call(send_v2("AutoT", 0, "", b"no key"));
    let generated = response.ext_fields.get("transactionId").unwrap();
    assert_eq!(generated.len(), 32);
    let response = pull_now(consumer, "AutoT", 0, 2);
    let records = decode_records(&response.body);
    assert_eq!(
        find_property(records[0].record.properties, "UNIQ_KEY"),
        Some(generated.as_bytes())
    );
}

/// Queue 0 of `AutoT` (3 messages) through the offset and timestamp requests.
fn check_queue_offsets_over_the_wire(consumer: &mut Client) {
    let max = consumer.call_code(
        RequestCode::GetMaxOffset.code(),
        &[("topic", "AutoT"), ("queueId", "0")],
        b"",
    );
    assert_eq!(header_i64(&max, "offset"), 3);
    let min = consumer.call_code(
        RequestCode::GetMinOffset.code(),
        &[("topic", "AutoT"), ("queueId", "0")],
        b"",
    );
    assert_eq!(header_i64(&min, "offset"), 0);
    let earliest = consumer.call_code(
        RequestCode::GetEarliestMsgStoretime.code(),
        &[("topic", "AutoT"), ("queueId", "0")],
        b"",
    );
    let earliest = header_i64(&earliest, "timestamp");
    assert!(earliest > 1_700_000_000_000);
    let search = consumer.call_code(
        RequestCode::SearchOffsetByTimestamp.code(),
        &[("topic", "AutoT"), ("queueId", "0"), ("timestamp", "0")],
        b"",
    );
    assert_eq!(header_i64(&search, "offset"), 0);
    let search = consumer.call_code(
        RequestCode::SearchOffsetByTimestamp.code(),
        &[
            ("topic", "AutoT"),
            ("queueId", "0"),
            ("timestamp", "9999999999999"),
        ],
        b"",
    );
    assert_eq!(header_i64(&search, "offset"), 3);
}

#[test]
fn batches_store_consecutive_records() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir.path().join("store"), &[]);
    let mut client = broker.connect();
    create_topic(&mut client, "BatchT", 2);
    let mut body = Vec::new();
    for i in 0..5 {
        let properties = props(&[("UNIQ_KEY", &format!("B{i:031}")), ("TAGS", "T")]);
        BatchItem {
            flag: i,
            body: format!("item {i}").as_bytes(),
            properties: properties.as_bytes(),
        }
        .encode(&mut body)
        .unwrap();
    }
    // SEND_BATCH_MESSAGE (Java, Go) and SEND_MESSAGE_V2 with m=true (C++).
    for (code, queue) in [
        (RequestCode::SendBatchMessage.code(), 0),
        (RequestCode::SendMessageV2.code(), 1),
    ] {
        let mut request = send_v2("BatchT", queue, "", &body);
        request.code = code;
        request.ext_fields.insert("m", "true");
        let response = client.call(request);
        assert_eq!(
            response.code,
            ResponseCode::Success.code(),
            "{:?}",
            response.remark
        );
        assert_eq!(
            response.ext_fields.get("msgId").unwrap().split(',').count(),
            5
        );
        assert_eq!(header_i64(&response, "queueOffset"), 0);
        let pulled = pull_now(&mut client, "BatchT", queue, 0);
        let records = decode_records(&pulled.body);
        assert_eq!(records.len(), 5);
        for (i, record) in records.iter().enumerate() {
            assert_eq!(record.record.queue_offset, i as i64);
            assert_eq!(record.record.flag, i as i32);
            assert_eq!(record.record.body, format!("item {i}").as_bytes());
        }
    }
    // A batch body that does not parse, and a batch to a retry topic, are MESSAGE_ILLEGAL.
    let mut bad = send_v2("BatchT", 0, "", b"\x00\x00\x00\x05garbage");
    bad.ext_fields.insert("m", "true");
    assert_eq!(client.call(bad).code, ResponseCode::MessageIllegal.code());
    let mut retry = send_v2("%RETRY%g", 0, "", &body);
    retry.ext_fields.insert("m", "true");
    assert_eq!(client.call(retry).code, ResponseCode::MessageIllegal.code());
}

#[test]
fn pull_outcomes_carry_every_offset_field() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir.path().join("store"), &[]);
    let mut client = broker.connect();
    create_topic(&mut client, "OutT", 2);
    let check = |client: &mut Client, offset: i64, code: ResponseCode, next: i64, remark: &str| {
        let response = pull_now(client, "OutT", 0, offset);
        assert_eq!(
            response.code,
            code.code(),
            "offset {offset}: {:?}",
            response.remark
        );
        assert_pull_headers(&response);
        assert_eq!(
            header_i64(&response, "nextBeginOffset"),
            next,
            "offset {offset}"
        );
        assert_eq!(response.remark.as_deref(), Some(remark));
    };
    check(
        &mut client,
        0,
        ResponseCode::PullNotFound,
        0,
        "NO_MESSAGE_IN_QUEUE",
    );
    check(
        &mut client,
        5,
        ResponseCode::PullOffsetMoved,
        0,
        "NO_MESSAGE_IN_QUEUE",
    );
    for i in 0..3 {
        client.call(send_v2(
            "OutT",
            0,
            &props(&[("TAGS", if i == 1 { "TagB" } else { "TagA" })]),
            b"x",
        ));
    }
    check(&mut client, 0, ResponseCode::Success, 3, "FOUND");
    check(
        &mut client,
        3,
        ResponseCode::PullNotFound,
        3,
        "OFFSET_OVERFLOW_ONE",
    );
    check(
        &mut client,
        9,
        ResponseCode::PullOffsetMoved,
        3,
        "OFFSET_OVERFLOW_BADLY",
    );
    check_tag_filtered_pulls(&mut client);
    check_pull_side_bad_input(&mut client);
}

/// Tag filtering on `OutT` queue 0 (TagA, TagB, TagA): TagB only matches offset 1; scanning
/// only TagA entries retries at once.
fn check_tag_filtered_pulls(client: &mut Client) {
    let mut tag_pull = pull_request("pull-g", "OutT", 0, 0, 0x4, 0);
    tag_pull.ext_fields.insert("subscription", "TagB");
    let response = client.call(tag_pull.clone());
    assert_eq!(response.code, ResponseCode::Success.code());
    let records = decode_records(&response.body);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].record.queue_offset, 1);
    tag_pull.ext_fields.insert("queueOffset", "2");
    let response = client.call(tag_pull);
    assert_eq!(response.code, ResponseCode::PullRetryImmediately.code());
    assert_eq!(header_i64(&response, "nextBeginOffset"), 3);
}

/// Pull-side bad input: unknown topic, queue out of range, no subscription, SQL92.
fn check_pull_side_bad_input(client: &mut Client) {
    let response = pull_now(client, "NoSuchT", 0, 0);
    assert_eq!(response.code, ResponseCode::TopicNotExist.code());
    let response = pull_now(client, "OutT", 2, 0);
    assert_eq!(response.code, ResponseCode::InvalidParameter.code());
    let response = client.call(pull_request("never-heartbeat", "OutT", 0, 0, 0, 0));
    assert_eq!(response.code, ResponseCode::SubscriptionNotExist.code());
    let mut sql = pull_request("g", "OutT", 0, 0, 0x4, 0);
    sql.ext_fields.insert("expressionType", "SQL92");
    assert_eq!(client.call(sql).code, ResponseCode::SystemError.code());
}

#[test]
fn long_polling_parks_without_blocking_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir.path().join("store"), &[]);
    let mut client = broker.connect();
    create_topic(&mut client, "PollT", 2);
    let heartbeat = br#"{"clientID":"c@1","consumerDataSet":[{"groupName":"pollg","subscriptionDataSet":[{"topic":"PollT","subString":"*","subVersion":1}]}]}"#;
    assert_eq!(
        client
            .call_code(RequestCode::HeartBeat.code(), &[], heartbeat)
            .code,
        0
    );
    // Parked: SUSPEND | COMMIT_OFFSET, registered subscription, 15 s budget.
    let pull_opaque = client.send(pull_request("pollg", "PollT", 1, 0, 0x1 | 0x2, 15_000));
    // Requests on the same connection overtake it.
    for _ in 0..3 {
        let response = client.call_code(
            RequestCode::GetMaxOffset.code(),
            &[("topic", "PollT"), ("queueId", "1")],
            b"",
        );
        assert_eq!(header_i64(&response, "offset"), 0);
    }
    // A send from another connection wakes it; the send is answered first on its connection,
    // the pull on this one.
    let mut producer = broker.connect();
    let sent = producer.call(send_v2("PollT", 1, "", b"wake up"));
    assert_eq!(sent.code, ResponseCode::Success.code());
    let response = client.read_response();
    assert_eq!(response.opaque, pull_opaque);
    assert_eq!(
        response.code,
        ResponseCode::Success.code(),
        "{:?}",
        response.remark
    );
    assert_eq!(decode_records(&response.body)[0].record.body, b"wake up");
    // A parked pull with nothing arriving is answered PULL_NOT_FOUND at its deadline.
    let response = client.call(pull_request("pollg", "PollT", 1, 1, 0x2, 200));
    assert_eq!(response.code, ResponseCode::PullNotFound.code());
    assert_eq!(header_i64(&response, "nextBeginOffset"), 1);
}

#[test]
fn shutdown_answers_parked_pulls_and_messages_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut broker = start_broker(&store, &[]);
    let mut client = broker.connect();
    create_topic(&mut client, "KeepT", 4);
    for q in 0..4 {
        assert_eq!(
            client
                .call(send_v2("KeepT", q, "", format!("kept {q}").as_bytes()))
                .code,
            0
        );
    }
    let mut parked = broker.connect();
    let opaque = parked.send(pull_request("pull-g", "KeepT", 0, 1, 0x2 | 0x4, 60_000));
    // Give the pull time to arrive before the signal (if it arrives after, it is refused with a
    // closed connection instead; both are fine, a hang is not).
    let response = client.call_code(
        RequestCode::GetMaxOffset.code(),
        &[("topic", "KeepT"), ("queueId", "0")],
        b"",
    );
    assert_eq!(header_i64(&response, "offset"), 1);
    assert!(
        broker.process.terminate().success(),
        "{}",
        broker.process.log()
    );
    if let Some(frame) = parked.read_frame() {
        assert_eq!(frame.opaque, opaque);
        assert_eq!(frame.code, ResponseCode::PullNotFound.code());
    }
    let log = broker.process.log();
    assert!(log.contains("store closed"), "{log}");
    let broker = start_broker(&store, &[]);
    let mut client = broker.connect();
    for q in 0..4 {
        let response = pull_now(&mut client, "KeepT", q, 0);
        assert_eq!(
            decode_records(&response.body)[0].record.body,
            format!("kept {q}").as_bytes()
        );
    }
}

#[test]
fn bad_sends_get_rocketmq_codes_and_other_connections_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(
        &dir.path().join("store"),
        &[
            "--set",
            "maxMessageSize=1024",
            "--set",
            "autoCreateTopicEnable=false",
        ],
    );
    let mut bystander = broker.connect();
    create_topic(&mut bystander, "GoodT", 2);
    create_read_only_topic(&mut bystander, "ReadOnlyT");
    let mut client = broker.connect();
    for (what, request, code, remark) in bad_sends() {
        let response = client.call(request);
        assert_eq!(response.code, code.code(), "{what}: {:?}", response.remark);
        let got = response.remark.unwrap_or_default();
        assert!(got.contains(remark), "{what}: remark {got:?}");
        let ok = bystander.call(send_v2("GoodT", 1, "", b"fine"));
        assert_eq!(ok.code, ResponseCode::Success.code(), "after {what}");
    }
    // A half message is stored (SEND_OK) but in the half topic, not in queue 0.
    let half = client.call(send_v2("GoodT", 0, &props(&[("TRAN_MSG", "true")]), b"x"));
    assert_eq!(half.code, ResponseCode::Success.code(), "{:?}", half.remark);
    // Nothing of the refused sends was stored: queue 0 is still empty.
    let max = bystander.call_code(
        RequestCode::GetMaxOffset.code(),
        &[("topic", "GoodT"), ("queueId", "0")],
        b"",
    );
    assert_eq!(header_i64(&max, "offset"), 0);
}

/// Creates `topic` with one queue and read-only permission (perm 4).
fn create_read_only_topic(client: &mut Client, topic: &str) {
    let read_only = client.call_code(
        RequestCode::UpdateAndCreateTopic.code(),
        &[
            ("topic", topic),
            ("readQueueNums", "1"),
            ("writeQueueNums", "1"),
            ("perm", "4"),
        ],
        b"",
    );
    assert_eq!(read_only.code, ResponseCode::Success.code());
}

/// Sends the broker of [`bad_sends_get_rocketmq_codes_and_other_connections_keep_working`]
/// refuses: (what, request, expected code, part of the expected remark).
fn bad_sends() -> Vec<(&'static str, RemotingCommand, ResponseCode, &'static str)> {
    vec![
        (
            "read-only topic",
            send_v2("ReadOnlyT", 0, "", b"x"),
            ResponseCode::NoPermission,
            "the topic[ReadOnlyT] sending message is forbidden",
        ),
        (
            "body over maxMessageSize",
            send_v2("GoodT", 0, "", &[7u8; 1025]),
            ResponseCode::MessageIllegal,
            "body size over max",
        ),
        (
            "properties over 32767",
            send_v2("GoodT", 0, &props(&[("big", &"p".repeat(33_000))]), b"x"),
            ResponseCode::MessageIllegal,
            "properties size",
        ),
        (
            "illegal topic name",
            send_v2("bad/topic", 0, "", b"x"),
            ResponseCode::InvalidParameter,
            "illegal character",
        ),
        (
            "topic too long",
            send_v2(&"t".repeat(128), 0, "", b"x"),
            ResponseCode::InvalidParameter,
            "longer than",
        ),
        (
            "system topic",
            send_v2("SCHEDULE_TOPIC_XXXX", 0, "", b"x"),
            ResponseCode::NoPermission,
            "forbidden",
        ),
        (
            "unknown topic without auto-create",
            send_v2("NewT", 0, "", b"x"),
            ResponseCode::TopicNotExist,
            "not exist",
        ),
        (
            "broker-picked queue of unknown topic",
            send_v2("NewT", -1, "", b"x"),
            ResponseCode::TopicNotExist,
            "not exist",
        ),
        (
            "queue out of range",
            send_v2("GoodT", 2, "", b"x"),
            ResponseCode::InvalidParameter,
            "queueId[2] is illegal",
        ),
        (
            "missing header fields",
            Client::request(RequestCode::SendMessageV2.code(), &[("a", "pg")], b"x"),
            ResponseCode::SystemError,
            "bad request header",
        ),
    ]
}

#[test]
fn wiped_write_permission_refuses_sends_but_serves_pulls() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir.path().join("store"), &[]);
    let mut client = broker.connect();
    create_topic(&mut client, "PermT", 2);
    assert_eq!(client.call(send_v2("PermT", 0, "", b"before")).code, 0);
    let response = client.call_code(
        RequestCode::UpdateBrokerConfig.code(),
        &[],
        b"brokerPermission=4",
    );
    assert_eq!(response.code, ResponseCode::Success.code());
    // Every shard sees it: queues 0 and 1 live on different shards.
    for queue in [0, 1, -1] {
        let response = client.call(send_v2("PermT", queue, "", b"during"));
        assert_eq!(
            response.code,
            ResponseCode::NoPermission.code(),
            "queue {queue}"
        );
        assert!(response
            .remark
            .unwrap()
            .contains("sending message is forbidden"));
    }
    let mut other = broker.connect();
    let response = pull_now(&mut other, "PermT", 0, 0);
    assert_eq!(decode_records(&response.body).len(), 1);
    client.call_code(
        RequestCode::UpdateBrokerConfig.code(),
        &[],
        b"brokerPermission=6",
    );
    assert_eq!(client.call(send_v2("PermT", 0, "", b"after")).code, 0);
}

#[test]
fn retries_past_the_maximum_go_to_the_dead_letter_queue() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir.path().join("store"), &[]);
    let mut client = broker.connect();
    let mut retry = send_v2(
        "%RETRY%dg",
        0,
        &props(&[("RETRY_TOPIC", "Orig")]),
        b"retried",
    );
    retry.ext_fields.insert("j", "3");
    retry.ext_fields.insert("l", "16");
    assert_eq!(client.call(retry).code, ResponseCode::Success.code());
    let mut exhausted = send_v2("%RETRY%dg", 0, "", b"dead");
    exhausted.ext_fields.insert("j", "17");
    exhausted.ext_fields.insert("l", "16");
    let response = client.call(exhausted);
    assert_eq!(
        response.code,
        ResponseCode::Success.code(),
        "{:?}",
        response.remark
    );
    let retried = pull_now(&mut client, "%RETRY%dg", 0, 0);
    let records = decode_records(&retried.body);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].record.body, b"retried");
    let dead = pull_now(&mut client, "%DLQ%dg", 0, 0);
    let records = decode_records(&dead.body);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].record.body, b"dead");
    assert_eq!(records[0].record.reconsume_times, 17);
    assert_eq!(
        find_property(records[0].record.properties, "DELAY"),
        Some(&b"-1"[..])
    );
}

#[test]
fn sends_past_the_pending_bound_get_system_busy() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(
        &dir.path().join("store"),
        &[
            "--cpus",
            "1",
            "--set",
            "flushDiskType=SYNC_FLUSH",
            "--set",
            "ringmqShardPendingRequestsMax=1",
        ],
    );
    let mut client = broker.connect();
    create_topic(&mut client, "BusyT", 1);
    // Many sends in one write usually arrive in one read: all are dispatched while the first
    // waits for its group commit, so those beyond a bound of one are refused. How the bytes are
    // split into reads is the kernel's choice, so bursts are repeated (a bounded number of
    // times) until one is refused; every answer must be SUCCESS or SYSTEM_BUSY either way.
    const BURSTS_MAX: usize = 20;
    let (mut busy, mut stored) = (0, 0);
    for burst in 0..BURSTS_MAX {
        let (b, s) = send_burst(&mut client, 1000 + 100 * burst as i32, 50);
        busy += b;
        stored += s;
        if busy > 0 {
            break;
        }
    }
    assert!(busy > 0, "no send refused in {BURSTS_MAX} bursts of 50");
    // Exactly the acknowledged sends were stored.
    let max = client.call_code(
        RequestCode::GetMaxOffset.code(),
        &[("topic", "BusyT"), ("queueId", "0")],
        b"",
    );
    assert_eq!(header_i64(&max, "offset"), stored);
}

/// Writes `count` sends in one write; returns how many were refused busy and how many stored.
fn send_burst(client: &mut Client, first_opaque: i32, count: i32) -> (i64, i64) {
    let mut bytes = bytes::BytesMut::new();
    for opaque in first_opaque..first_opaque + count {
        let mut request = send_v2("BusyT", 0, "", b"busy?");
        request.opaque = opaque;
        request.encode(&mut bytes).unwrap();
    }
    client.write_raw(&bytes);
    let (mut busy, mut stored) = (0, 0);
    for _ in 0..count {
        let response = client.read_response();
        match ResponseCode::from_code(response.code) {
            ResponseCode::SystemBusy => {
                let remark = response.remark.unwrap_or_default();
                assert!(remark.starts_with("[PCBUSY_CLEAN_QUEUE]"), "{remark}");
                busy += 1
            }
            ResponseCode::Success => stored += 1,
            other => panic!("unexpected {other:?}: {:?}", response.remark),
        }
    }
    (busy, stored)
}

#[test]
fn a_pull_commits_the_offset_it_carries() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir.path().join("store"), &[]);
    let mut client = broker.connect();
    create_topic(&mut client, "CommitT", 4);
    for queue in 0..4 {
        let mut pull = pull_request("cg", "CommitT", queue, 0, 0x1 | 0x4, 0);
        let committed = (10 + queue).to_string();
        pull.ext_fields.insert("commitOffset", committed.as_str());
        client.call(pull);
        let response = client.call_code(
            RequestCode::QueryConsumerOffset.code(),
            &[
                ("consumerGroup", "cg"),
                ("topic", "CommitT"),
                ("queueId", &queue.to_string()),
            ],
            b"",
        );
        assert_eq!(response.code, ResponseCode::Success.code());
        assert_eq!(header_i64(&response, "offset"), i64::from(10 + queue));
    }
}

#[test]
fn acknowledged_sends_survive_kill_9() {
    // ASYNC_FLUSH promises that an acknowledged record was written to the file (O_DIRECT write
    // completed): it survives a crash of the broker process.
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let broker = start_broker(&store, &[]);
    let mut client = broker.connect();
    create_topic(&mut client, "CrashT", 4);
    let mut acknowledged = Vec::new();
    for i in 0..200 {
        let body = format!("crash {i}");
        let response = client.call(send_v2("CrashT", i % 4, "", body.as_bytes()));
        assert_eq!(response.code, ResponseCode::Success.code());
        acknowledged.push((i % 4, body));
    }
    // Sends still in flight when the process dies: not acknowledged, so no promise either way.
    for i in 0..50 {
        client.send(send_v2("CrashT", i % 4, "", b"in flight"));
    }
    drop(broker); // SIGKILL by the guard
    let broker = start_broker(&store, &[]);
    let mut client = broker.connect();
    for queue in 0..4 {
        let mut bodies = Vec::new();
        let mut offset = 0;
        loop {
            let response = pull_now(&mut client, "CrashT", queue, offset);
            if response.code != ResponseCode::Success.code() {
                break;
            }
            for record in decode_records(&response.body) {
                record.verify_body_crc().unwrap();
                bodies.push(String::from_utf8(record.record.body.to_vec()).unwrap());
            }
            offset = header_i64(&response, "nextBeginOffset");
        }
        let expected: Vec<&String> = acknowledged
            .iter()
            .filter(|(q, _)| *q == queue)
            .map(|(_, b)| b)
            .collect();
        assert!(
            bodies.len() >= expected.len(),
            "queue {queue}: {} of {} acknowledged",
            bodies.len(),
            expected.len()
        );
        for (got, want) in bodies.iter().zip(expected) {
            assert_eq!(got, want, "queue {queue}");
        }
    }
}

fn query_offset(
    client: &mut Client,
    group: &str,
    topic: &str,
    queue: i32,
    zero_if_not_found: Option<&str>,
) -> RemotingCommand {
    let q = queue.to_string();
    let mut fields = vec![
        ("consumerGroup", group),
        ("topic", topic),
        ("queueId", q.as_str()),
    ];
    if let Some(flag) = zero_if_not_found {
        fields.push(("setZeroIfNotFound", flag));
    }
    client.call_code(RequestCode::QueryConsumerOffset.code(), &fields, b"")
}

#[test]
fn a_new_group_reads_a_young_queue_from_its_start() {
    // Tail cache of 8 KiB per shard: the start offset must not depend on it.
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(
        &dir.path().join("store"),
        &["--cpus", "1", "--set", "ringmqTailCacheBytes=8192"],
    );
    let mut client = broker.connect();
    create_topic(&mut client, "YoungT", 2);
    // Empty queue: offset 0 (the same as its max offset).
    let response = query_offset(&mut client, "new-g", "YoungT", 0, None);
    assert_eq!(response.code, ResponseCode::Success.code());
    assert_eq!(header_i64(&response, "offset"), 0);
    // A young queue: its first message is still hot, so a new group starts at 0 ...
    assert_eq!(client.call(send_v2("YoungT", 0, "", b"first")).code, 0);
    let response = query_offset(&mut client, "new-g", "YoungT", 0, None);
    assert_eq!(response.code, ResponseCode::Success.code());
    assert_eq!(header_i64(&response, "offset"), 0);
    // ... unless the client asked for QUERY_NOT_FOUND,
    let response = query_offset(&mut client, "new-g", "YoungT", 0, Some("false"));
    assert_eq!(response.code, ResponseCode::QueryNotFound.code());
    // ... and still once more than the 8 KiB tail cache has been written after it: Java's rule
    // is a share of physical memory (accessMessageInMemoryMaxRatio), not what a cache holds.
    for _ in 0..10 {
        assert_eq!(client.call(send_v2("YoungT", 1, "", &[0u8; 2048])).code, 0);
    }
    let response = query_offset(&mut client, "new-g", "YoungT", 0, None);
    assert_eq!(response.code, ResponseCode::Success.code());
    assert_eq!(header_i64(&response, "offset"), 0);
    // A committed offset always wins.
    client.call_code(
        RequestCode::UpdateConsumerOffset.code(),
        &[
            ("consumerGroup", "new-g"),
            ("topic", "YoungT"),
            ("queueId", "0"),
            ("commitOffset", "1"),
        ],
        b"",
    );
    assert_eq!(
        header_i64(
            &query_offset(&mut client, "new-g", "YoungT", 0, Some("false")),
            "offset"
        ),
        1
    );
}
