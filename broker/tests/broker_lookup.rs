//! Messages found again by id and key, consumer send-back into retry and dead-letter topics, and
//! client dialects (ali-ons numeric ext values, the ROCKETMQ binary header), against a real
//! `ringmq-broker` with two shards.

mod common;

use common::msg::*;
use common::*;
use ringmq_proto::code::{RequestCode, ResponseCode};
use ringmq_proto::command::SerializeType;
use ringmq_proto::message::find_property;
use ringmq_proto::message::ids::decode_offset_msg_id;

#[test]
fn view_by_offset_msg_id_and_query_by_key_across_shards() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir.path().join("store"), &[]);
    let mut client = broker.connect();
    create_topic(&mut client, "FindT", 8);
    let ids = send_one_keyed_message_per_queue(&mut client);
    check_view_message_by_offset_msg_id(&mut client, &ids);
    check_query_message_by_key(&mut client);
}

/// Sends `body {q}` to each of `FindT`'s 8 queues, all with keys `order-1 shared` and their own
/// UNIQ_KEY; returns the offsetMsgIds in queue order.
fn send_one_keyed_message_per_queue(client: &mut Client) -> Vec<String> {
    let mut ids = Vec::new();
    for q in 0..8 {
        let properties = props(&[
            ("KEYS", "order-1 shared"),
            ("UNIQ_KEY", &format!("U{q:031}")),
        ]);
        let response = client.call(send_v2(
            "FindT",
            q,
            &properties,
            format!("body {q}").as_bytes(),
        ));
        assert_eq!(response.code, ResponseCode::Success.code());
        ids.push(response.ext_fields.get("msgId").unwrap().to_string());
    }
    ids
}

/// VIEW_MESSAGE_BY_ID with the offset decoded from each offsetMsgId, as clients do; an offset
/// where no record starts, or a negative one, is a SYSTEM_ERROR.
fn check_view_message_by_offset_msg_id(client: &mut Client, ids: &[String]) {
    for (q, id) in ids.iter().enumerate() {
        let decoded = decode_offset_msg_id(id).unwrap();
        let offset = decoded.commit_log_offset.to_string();
        let response = client.call_code(
            RequestCode::ViewMessageById.code(),
            &[("offset", &offset)],
            b"",
        );
        assert_eq!(
            response.code,
            ResponseCode::Success.code(),
            "{:?}",
            response.remark
        );
        let records = decode_records(&response.body);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].record.body, format!("body {q}").as_bytes());
    }
    let response = client.call_code(
        RequestCode::ViewMessageById.code(),
        &[("offset", "12345")],
        b"",
    );
    assert_eq!(response.code, ResponseCode::SystemError.code());
    let response = client.call_code(
        RequestCode::ViewMessageById.code(),
        &[("offset", "-9")],
        b"",
    );
    assert_eq!(response.code, ResponseCode::SystemError.code());
}

/// QUERY_MESSAGE gathers from every shard's index.
fn check_query_message_by_key(client: &mut Client) {
    let query = |client: &mut Client, key: &str, unique: &str, max: &str| {
        client.call_code(
            RequestCode::QueryMessage.code(),
            &[
                ("topic", "FindT"),
                ("key", key),
                ("maxNum", max),
                ("beginTimestamp", "0"),
                ("endTimestamp", "9999999999999"),
                ("_UNIQUE_KEY_QUERY", unique),
            ],
            b"",
        )
    };
    let response = query(client, "shared", "false", "32");
    assert_eq!(
        response.code,
        ResponseCode::Success.code(),
        "{:?}",
        response.remark
    );
    assert_eq!(decode_records(&response.body).len(), 8);
    header_i64(&response, "indexLastUpdateTimestamp");
    header_i64(&response, "indexLastUpdatePhyoffset");
    assert_eq!(
        decode_records(&query(client, "shared", "false", "3").body).len(),
        3
    );
    let response = query(client, &format!("U{:031}", 5), "true", "32");
    let records = decode_records(&response.body);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].record.body, b"body 5");
    assert_eq!(
        query(client, "nobody", "false", "32").code,
        ResponseCode::QueryNotFound.code()
    );
}

fn send_back(
    client: &mut Client,
    offset: i64,
    group: &str,
    delay_level: i32,
) -> ringmq_proto::command::RemotingCommand {
    let (o, d) = (offset.to_string(), delay_level.to_string());
    client.call_code(
        RequestCode::ConsumerSendMsgBack.code(),
        &[
            ("offset", &o),
            ("group", group),
            ("delayLevel", &d),
            ("maxReconsumeTimes", "2"),
            ("unitMode", "false"),
        ],
        b"",
    )
}

/// Pulls until the queue holds a record at `offset` (a retry is held for its delay level
/// first), within a bounded wait.
fn pull_when_due(
    client: &mut Client,
    topic: &str,
    offset: i64,
) -> ringmq_proto::command::RemotingCommand {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let pulled = pull_now(client, topic, 0, offset);
        if !pulled.body.is_empty() || std::time::Instant::now() > deadline {
            return pulled;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn send_back_goes_to_the_retry_topic_then_the_dead_letter_queue() {
    let dir = tempfile::tempdir().unwrap();
    // Short delay levels: the retries are held for level 3 and 4 before they appear.
    let levels = ["--set", "messageDelayLevel=1s 1s 1s 1s 1s"];
    let broker = start_broker(&dir.path().join("store"), &levels);
    let mut client = broker.connect();
    create_topic(&mut client, "WorkT", 2);
    let response = client.call(send_v2(
        "WorkT",
        1,
        &props(&[("UNIQ_KEY", "ORIGINAL"), ("TAGS", "t")]),
        b"work",
    ));
    let offset = decode_offset_msg_id(response.ext_fields.get("msgId").unwrap())
        .unwrap()
        .commit_log_offset;

    // maxReconsumeTimes 2: the message is retried twice, then dead-lettered.
    let mut current = offset;
    for round in 1..=2 {
        let response = send_back(&mut client, current, "sbg", 0);
        assert_eq!(
            response.code,
            ResponseCode::Success.code(),
            "{:?}",
            response.remark
        );
        let pulled = pull_when_due(&mut client, "%RETRY%sbg", round - 1);
        let records = decode_records(&pulled.body);
        assert_eq!(records.len(), 1, "round {round}");
        let r = &records[0].record;
        assert_eq!(r.body, b"work");
        assert_eq!(i64::from(r.reconsume_times), round);
        assert_eq!(
            find_property(r.properties, "RETRY_TOPIC"),
            Some(&b"WorkT"[..])
        );
        assert_eq!(
            find_property(r.properties, "UNIQ_KEY"),
            Some(&b"ORIGINAL"[..])
        );
        assert!(find_property(r.properties, "ORIGIN_MESSAGE_ID").is_some());
        current = r.physical_offset;
    }
    assert_eq!(
        send_back(&mut client, current, "sbg", 0).code,
        ResponseCode::Success.code()
    );
    let dead = pull_now(&mut client, "%DLQ%sbg", 0, 0);
    let records = decode_records(&dead.body);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].record.body, b"work");
    assert_eq!(records[0].record.reconsume_times, 3);
    // Negative delay level: straight to the DLQ.
    assert_eq!(
        send_back(&mut client, offset, "sbg", -1).code,
        ResponseCode::Success.code()
    );
    assert_eq!(
        decode_records(&pull_now(&mut client, "%DLQ%sbg", 0, 1).body).len(),
        1
    );
    // An offset that names no record.
    let response = send_back(&mut client, offset + 1, "sbg", 0);
    assert_eq!(response.code, ResponseCode::SystemError.code());
    assert!(response
        .remark
        .unwrap()
        .contains("look message by offset failed"));
}

/// SNDBCK_PUT_NUMS of `key` (`topic@group`) over the day; `None` while never counted.
fn send_backs_today(client: &mut Client, key: &str) -> Option<i64> {
    use ringmq_proto::body::{BrokerStatsData, JsonBody};
    let fields = [("statsName", "SNDBCK_PUT_NUMS"), ("statsKey", key)];
    let code = RequestCode::ViewBrokerStatsData.code();
    let response = client.call_code(code, &fields, b"");
    if response.code == ResponseCode::SystemError.code() {
        return None;
    }
    assert_eq!(response.code, ResponseCode::Success.code());
    Some(
        BrokerStatsData::from_json(&response.body)
            .unwrap()
            .stats_day
            .sum,
    )
}

/// Only a CONSUMER_SEND_MSG_BACK counts as a send-back: a client's own send to the retry
/// topic is a plain send, whatever ext fields it carries (the broker's origin of a request is
/// never read from the wire), in either header spelling and whichever shard reads it.
#[test]
fn a_clients_send_is_never_counted_as_a_send_back() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir.path().join("store"), &[]);
    let mut client = broker.connect();
    create_topic(&mut client, "WorkT", 2);
    create_topic(&mut client, "%RETRY%fg", 1);
    let response = client.call(send_v2("WorkT", 1, &props(&[("TAGS", "t")]), b"work"));
    let offset = decode_offset_msg_id(response.ext_fields.get("msgId").unwrap())
        .unwrap()
        .commit_log_offset;
    let retry_of_work = props(&[("RETRY_TOPIC", "WorkT")]);
    let forged = [
        send_v1("%RETRY%fg", 0, &retry_of_work, b"forged"),
        send_v2("%RETRY%fg", 0, &retry_of_work, b"forged"),
    ];
    // Two connections: SO_REUSEPORT spreads them over the shards, so usually one is read on
    // the retry queue's owner and the other forwarded to it.
    let mut other = broker.connect();
    for connection in [&mut client, &mut other] {
        for mut send in forged.clone() {
            send.ext_fields.insert("ringmqSendBack", "1");
            let response = connection.call(send);
            let code = response.code;
            assert_eq!(code, ResponseCode::Success.code(), "{:?}", response.remark);
        }
    }
    assert_eq!(
        decode_records(&pull_now(&mut client, "%RETRY%fg", 0, 0).body).len(),
        4,
        "stored as plain sends"
    );
    assert_eq!(send_backs_today(&mut client, "WorkT@fg"), None);
    let response = send_back(&mut client, offset, "fg", 0);
    assert_eq!(response.code, ResponseCode::Success.code());
    assert_eq!(send_backs_today(&mut client, "WorkT@fg"), Some(1));
}

#[test]
fn ali_ons_numeric_ext_values_and_the_binary_header() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir.path().join("store"), &[]);
    let mut client = broker.connect();
    create_topic(&mut client, "DialectT", 2);
    // ali-ons: JSON.stringify of the header object: numbers and booleans, no
    // serializeTypeCurrentRPC, version 121; properties with escaped control characters.
    let header = r#"{"code":310,"language":"JAVA","opaque":77,"version":121,"flag":0,"remark":"","extFields":{"a":"pg","b":"DialectT","c":"TBW102","d":4,"e":1,"f":0,"g":1700000000000,"h":0,"i":"TAGS\u0001ali\u0002","j":0,"k":false,"l":16}}"#;
    let body = b"from ali-ons";
    let mut frame = Vec::new();
    frame.extend_from_slice(&((4 + header.len() + body.len()) as u32).to_be_bytes());
    frame.extend_from_slice(&(header.len() as u32).to_be_bytes());
    frame.extend_from_slice(header.as_bytes());
    frame.extend_from_slice(body);
    client.write_raw(&frame);
    let response = client.read_response();
    assert_eq!(response.opaque, 77);
    assert_eq!(
        response.code,
        ResponseCode::Success.code(),
        "{:?}",
        response.remark
    );
    assert_eq!(response.serialize_type, SerializeType::Json);
    let pulled = pull_now(&mut client, "DialectT", 1, 0);
    let records = decode_records(&pulled.body);
    assert_eq!(records[0].record.body, body);
    assert_eq!(
        find_property(records[0].record.properties, "TAGS"),
        Some(&b"ali"[..])
    );

    // The ROCKETMQ binary header (Java benchmark tools): answered in kind.
    let mut binary = send_v2("DialectT", 0, &props(&[("TAGS", "bin")]), b"binary");
    binary.serialize_type = SerializeType::RocketMq;
    let response = client.call(binary);
    assert_eq!(response.serialize_type, SerializeType::RocketMq);
    assert_eq!(response.code, ResponseCode::Success.code());
    header_i64(&response, "queueOffset");
}

#[test]
fn large_messages_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir.path().join("store"), &[]);
    let mut client = broker.connect();
    create_topic(&mut client, "BigT", 1);
    let bodies: Vec<Vec<u8>> = [20_000usize, 1 << 20, 100]
        .iter()
        .enumerate()
        .map(|(i, len)| {
            (0..*len)
                .map(|b| (b as u8).wrapping_mul(31).wrapping_add(i as u8))
                .collect()
        })
        .collect();
    for body in &bodies {
        let response = client.call(send_v2("BigT", 0, "", body));
        assert_eq!(
            response.code,
            ResponseCode::Success.code(),
            "{:?}",
            response.remark
        );
    }
    // Each pull returns whole records; the 1 MiB one alone (the first record is returned even
    // past the 256 KiB pull cap). Interleave small requests so large and small frames mix.
    let mut offset = 0;
    let mut pulled = Vec::new();
    while offset < 3 {
        let opaque = client.send(pull_request("pull-g", "BigT", 0, offset, 0x4, 0));
        client.send(Client::request(
            RequestCode::GetMinOffset.code(),
            &[("topic", "BigT"), ("queueId", "0")],
            b"",
        ));
        let (a, b) = (client.read_response(), client.read_response());
        let (pull, other) = if a.opaque == opaque { (a, b) } else { (b, a) };
        assert_eq!(header_i64(&other, "offset"), 0);
        assert_eq!(pull.code, ResponseCode::Success.code());
        for record in decode_records(&pull.body) {
            pulled.push(record.record.body.to_vec());
        }
        offset = header_i64(&pull, "nextBeginOffset");
    }
    assert_eq!(pulled, bodies);
}

#[test]
fn a_parked_tag_filtered_pull_waits_through_foreign_tags() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir.path().join("store"), &[]);
    let mut consumer = broker.connect();
    let mut producer = broker.connect();
    create_topic(&mut producer, "TagWaitT", 1);
    let mut pull = pull_request("tw", "TagWaitT", 0, 0, 0x2 | 0x4, 15_000);
    pull.ext_fields.insert("subscription", "TagA");
    let pull_opaque = consumer.send(pull);
    // The pull is parked before the send: a request on its connection is answered first.
    let probe = |consumer: &mut Client| {
        let opaque = consumer.send(Client::request(
            RequestCode::GetMaxOffset.code(),
            &[("topic", "TagWaitT"), ("queueId", "0")],
            b"",
        ));
        let response = consumer.read_response();
        assert_eq!(
            response.opaque, opaque,
            "the parked pull was answered early"
        );
        header_i64(&response, "offset")
    };
    assert_eq!(probe(&mut consumer), 0);
    assert_eq!(
        producer
            .call(send_v2("TagWaitT", 0, &props(&[("TAGS", "TagB")]), b"b"))
            .code,
        0
    );
    // A TagB message does not answer the TagA pull.
    assert_eq!(probe(&mut consumer), 1);
    assert_eq!(
        producer
            .call(send_v2("TagWaitT", 0, &props(&[("TAGS", "TagA")]), b"a"))
            .code,
        0
    );
    let response = consumer.read_response();
    assert_eq!(response.opaque, pull_opaque);
    assert_eq!(response.code, ResponseCode::Success.code());
    let records = decode_records(&response.body);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].record.body, b"a");
    assert_eq!(header_i64(&response, "nextBeginOffset"), 2);
}
