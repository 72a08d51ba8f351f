//! Scheduled batches against a real `ringmq-broker` on 127.0.0.1 (issue 10, as Java 5.x): a
//! timer in the batch request's own properties holds every item until that one due time, and a
//! delay level there is refused with Java's MESSAGE_ILLEGAL.

mod common;

use common::msg::*;
use common::*;
use ringmq_proto::code::{RequestCode, ResponseCode};
use ringmq_proto::command::RemotingCommand;
use ringmq_proto::message::batch::BatchItem;
use ringmq_proto::message::find_property;

const TOPIC: &str = "SchedBatchT";
const ITEMS: usize = 4;
const TIMER_DELAY_MS: i64 = 1500;

fn batch_body() -> Vec<u8> {
    let mut body = Vec::new();
    for i in 0..ITEMS {
        let properties = props(&[("UNIQ_KEY", &format!("B{i:031}"))]);
        BatchItem {
            flag: 0,
            body: format!("batch item {i}").as_bytes(),
            properties: properties.as_bytes(),
        }
        .encode(&mut body)
        .unwrap();
    }
    body
}

/// SEND_BATCH_MESSAGE with `header_properties` as the batch's own properties, flagged
/// `batch=true` as Java's client does (Java, like ringmq, goes by that flag, not the code).
fn send_batch(client: &mut Client, header_properties: &str) -> RemotingCommand {
    let mut request = send_v1(TOPIC, 0, header_properties, &batch_body());
    request.code = RequestCode::SendBatchMessage.code();
    request.ext_fields.insert("batch", "true");
    client.call(request)
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn property_i64(properties: &[u8], name: &str) -> i64 {
    let value = find_property(properties, name).unwrap_or_else(|| panic!("no {name}"));
    std::str::from_utf8(value).unwrap().parse().unwrap()
}

#[test]
fn a_timer_in_the_batch_header_holds_every_item_until_it_is_due() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir.path().join("store"), &[]);
    let mut client = broker.connect();
    create_topic(&mut client, TOPIC, 1);
    let sent_ms = wall_ms();
    let delay = TIMER_DELAY_MS.to_string();
    let response = send_batch(&mut client, &props(&[("TIMER_DELAY_MS", &delay)]));
    assert_eq!(response.code, ResponseCode::Success.code(), "{response:?}");
    ringmq_testkit::wait_until("every held item delivered to its topic", || {
        decode_records(&pull_now(&mut client, TOPIC, 0, 0).body).len() >= ITEMS
    });
    let pulled = pull_now(&mut client, TOPIC, 0, 0);
    let records = decode_records(&pulled.body);
    let bodies: Vec<&[u8]> = records.iter().map(|r| r.record.body).collect();
    let want: Vec<Vec<u8>> = (0..ITEMS)
        .map(|i| format!("batch item {i}").into_bytes())
        .collect();
    assert_eq!(bodies, want, "each item once, in order");
    for r in &records {
        let due_ms = property_i64(r.record.properties, "TIMER_DELIVER_MS");
        assert!(due_ms >= sent_ms + TIMER_DELAY_MS, "due {due_ms}");
        assert!(
            r.record.store_timestamp >= due_ms,
            "stored at {} before its due time {due_ms}",
            r.record.store_timestamp
        );
    }
}

#[test]
fn a_delay_level_in_the_batch_header_is_refused_as_java_does() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(&dir.path().join("store"), &[]);
    let mut client = broker.connect();
    create_topic(&mut client, TOPIC, 1);
    let response = send_batch(&mut client, &props(&[("DELAY", "2")]));
    assert_eq!(response.code, ResponseCode::MessageIllegal.code());
    assert!(
        response
            .remark
            .as_deref()
            .is_some_and(|r| r.contains("the message is illegal")),
        "{:?}",
        response.remark
    );
    // Nothing was stored, and the connection still serves.
    let pulled = pull_now(&mut client, TOPIC, 0, 0);
    assert!(decode_records(&pulled.body).is_empty());
}
