//! Message-level helpers shared by the messaging tests: send and pull requests as real clients
//! build them, record decoding, header access.

use super::Client;
use ringmq_proto::code::{RequestCode, ResponseCode};
use ringmq_proto::command::RemotingCommand;
use ringmq_proto::message::record::DecodedRecord;

pub const SEP1: char = '\u{1}';
pub const SEP2: char = '\u{2}';

pub fn props(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}{SEP1}{v}{SEP2}"))
        .collect()
}

/// A SEND_MESSAGE_V2 (short names) request as Java sends it.
pub fn send_v2(topic: &str, queue_id: i32, properties: &str, body: &[u8]) -> RemotingCommand {
    let q = queue_id.to_string();
    Client::request(
        RequestCode::SendMessageV2.code(),
        &[
            ("a", "pg"),
            ("b", topic),
            ("c", "TBW102"),
            ("d", "4"),
            ("e", &q),
            ("f", "0"),
            ("g", "1700000000000"),
            ("h", "7"),
            ("i", properties),
            ("j", "0"),
            ("k", "false"),
        ],
        body,
    )
}

/// A SEND_MESSAGE (code 10, long names) request as Go sends it.
pub fn send_v1(topic: &str, queue_id: i32, properties: &str, body: &[u8]) -> RemotingCommand {
    let q = queue_id.to_string();
    Client::request(
        RequestCode::SendMessage.code(),
        &[
            ("producerGroup", "pg"),
            ("topic", topic),
            ("defaultTopic", "TBW102"),
            ("defaultTopicQueueNums", "4"),
            ("queueId", &q),
            ("sysFlag", "0"),
            ("bornTimestamp", "1700000000000"),
            ("flag", "0"),
            ("properties", properties),
            ("reconsumeTimes", "0"),
            ("unitMode", "false"),
            ("bname", "broker-a"),
        ],
        body,
    )
}

pub fn pull_request(
    group: &str,
    topic: &str,
    queue_id: i32,
    offset: i64,
    sys_flag: i32,
    suspend_ms: i64,
) -> RemotingCommand {
    let (q, o, f, s) = (
        queue_id.to_string(),
        offset.to_string(),
        sys_flag.to_string(),
        suspend_ms.to_string(),
    );
    Client::request(
        RequestCode::PullMessage.code(),
        &[
            ("consumerGroup", group),
            ("topic", topic),
            ("queueId", &q),
            ("queueOffset", &o),
            ("maxMsgNums", "32"),
            ("sysFlag", &f),
            ("commitOffset", "0"),
            ("suspendTimeoutMillis", &s),
            ("subscription", "*"),
            ("subVersion", "0"),
            ("expressionType", "TAG"),
        ],
        b"",
    )
}

/// Pull with the SUBSCRIPTION bit (no heartbeat needed), no suspension.
pub fn pull_now(client: &mut Client, topic: &str, queue_id: i32, offset: i64) -> RemotingCommand {
    client.call(pull_request("pull-g", topic, queue_id, offset, 0x4, 0))
}

pub fn decode_records(body: &[u8]) -> Vec<DecodedRecord<'_>> {
    let mut records = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let record = DecodedRecord::decode(rest).expect("pull body holds whole records");
        rest = &rest[record.total_size..];
        records.push(record);
    }
    records
}

pub fn header_i64(response: &RemotingCommand, name: &str) -> i64 {
    response
        .ext_fields
        .get(name)
        .unwrap_or_else(|| panic!("response lacks {name}: {response:?}"))
        .parse()
        .unwrap()
}

pub fn assert_pull_headers(response: &RemotingCommand) {
    for field in [
        "suggestWhichBrokerId",
        "nextBeginOffset",
        "minOffset",
        "maxOffset",
    ] {
        header_i64(response, field);
    }
}

pub fn create_topic(client: &mut Client, topic: &str, queues: i32) {
    let q = queues.to_string();
    let response = client.call_code(
        RequestCode::UpdateAndCreateTopic.code(),
        &[
            ("topic", topic),
            ("readQueueNums", &q),
            ("writeQueueNums", &q),
            ("perm", "6"),
        ],
        b"",
    );
    assert_eq!(response.code, ResponseCode::Success.code());
}
