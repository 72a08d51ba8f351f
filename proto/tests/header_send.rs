//! Send request/response headers (reference §2.3, §8.8, §8.9): both spellings, the fallback,
//! batch detection by flag, and the response fields clients unbox.

use bytes::{Bytes, BytesMut};
use ringmq_proto::command::{ExtFields, RemotingCommand};
use ringmq_proto::error::HeaderError;
use ringmq_proto::frame::decode_frame;
use ringmq_proto::header::{
    CommandHeader, SendMessageRequestHeader, SendMessageRequestHeaderV2, SendMessageResponseHeader,
};

fn sample() -> SendMessageRequestHeader {
    SendMessageRequestHeader {
        producer_group: "pg".into(),
        topic: "TopicTest".into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id: 3,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000,
        flag: 0,
        properties: Some("TAGS\u{1}TagA\u{2}".into()),
        reconsume_times: Some(0),
        unit_mode: Some(false),
        max_reconsume_times: None,
        batch: Some(false),
        broker_name: Some("broker-a".into()),
    }
}

fn fields(pairs: &[(&str, &str)]) -> ExtFields {
    pairs.iter().copied().collect()
}

#[test]
fn v2_writes_the_short_names() {
    let mut ext = ExtFields::new();
    SendMessageRequestHeaderV2(sample()).write_to(&mut ext);
    let expected = fields(&[
        ("a", "pg"),
        ("b", "TopicTest"),
        ("c", "TBW102"),
        ("d", "4"),
        ("e", "3"),
        ("f", "0"),
        ("g", "1700000000000"),
        ("h", "0"),
        ("i", "TAGS\u{1}TagA\u{2}"),
        ("j", "0"),
        ("k", "false"),
        ("m", "false"),
        ("n", "broker-a"),
    ]);
    assert_eq!(ext, expected);
}

#[test]
fn v1_writes_the_long_names() {
    let mut ext = ExtFields::new();
    sample().write_to(&mut ext);
    let expected = fields(&[
        ("producerGroup", "pg"),
        ("topic", "TopicTest"),
        ("defaultTopic", "TBW102"),
        ("defaultTopicQueueNums", "4"),
        ("queueId", "3"),
        ("sysFlag", "0"),
        ("bornTimestamp", "1700000000000"),
        ("flag", "0"),
        ("properties", "TAGS\u{1}TagA\u{2}"),
        ("reconsumeTimes", "0"),
        ("unitMode", "false"),
        ("batch", "false"),
        ("brokerName", "broker-a"),
    ]);
    assert_eq!(ext, expected);
}

#[test]
fn both_spellings_round_trip_and_either_reads_either() {
    let header = sample();
    let mut short = ExtFields::new();
    SendMessageRequestHeaderV2(header.clone()).write_to(&mut short);
    let mut long = ExtFields::new();
    header.write_to(&mut long);
    for ext in [&short, &long] {
        assert_eq!(SendMessageRequestHeader::read_from(ext).unwrap(), header);
        assert_eq!(
            SendMessageRequestHeaderV2::read_from(ext).unwrap().0,
            header
        );
    }
}

#[test]
fn go_single_send_uses_long_names_with_bname() {
    let ext = fields(&[
        ("producerGroup", "pg"),
        ("topic", "T"),
        ("defaultTopic", "TBW102"),
        ("defaultTopicQueueNums", "4"),
        ("queueId", "1"),
        ("sysFlag", "0"),
        ("bornTimestamp", "1"),
        ("flag", "0"),
        ("bname", "broker-a"),
    ]);
    let header = SendMessageRequestHeaderV2::read_from(&ext).unwrap().0;
    assert_eq!(header.broker_name.as_deref(), Some("broker-a"));
    assert!(!header.is_batch());
}

#[test]
fn cpp_batches_arrive_as_310_with_m_true() {
    let ext = fields(&[
        ("a", "pg"),
        ("b", "T"),
        ("c", "TBW102"),
        ("d", "4"),
        ("e", "0"),
        ("f", "0"),
        ("g", "1"),
        ("h", "0"),
        ("m", "true"),
    ]);
    assert!(SendMessageRequestHeader::read_any(&ext).unwrap().is_batch());
}

#[test]
fn the_ali_ons_frame_decodes_to_a_typed_header() {
    // The same hand-written frame as frame_golden.rs: numbers arrive as JSON numbers.
    let header = br#"{"code":310,"language":"JAVA","opaque":7,"flag":0,"version":121,"extFields":{"a":"pg","b":"TopicTest","c":"TBW102","d":4,"e":2,"f":0,"g":1700000000000,"h":0,"i":"UNIQ_KEY\u0001C0A80001000100000000000000000001\u0002TAGS\u0001TagA\u0002","j":0,"k":false,"l":16}}"#;
    let mut src = BytesMut::from(&[0x00, 0x00, 0x01, 0x0d, 0x00, 0x00, 0x01, 0x04][..]);
    src.extend_from_slice(header);
    src.extend_from_slice(b"hello");
    let command = decode_frame(&mut src).unwrap().unwrap();
    let send: SendMessageRequestHeaderV2 = command.decode_header().unwrap();
    let send = send.0;
    assert_eq!(send.producer_group, "pg");
    assert_eq!(send.topic, "TopicTest");
    assert_eq!(send.default_topic_queue_nums, 4);
    assert_eq!(send.queue_id, 2);
    assert_eq!(send.born_timestamp, 1_700_000_000_000);
    assert_eq!(send.unit_mode, Some(false));
    assert_eq!(send.max_reconsume_times, Some(16));
    assert_eq!(send.batch, None);
    assert!(!send.is_batch());
    assert_eq!(
        send.properties.as_deref(),
        Some("UNIQ_KEY\u{1}C0A80001000100000000000000000001\u{2}TAGS\u{1}TagA\u{2}")
    );
}

#[test]
fn missing_and_invalid_fields_name_the_wire_field() {
    let mut ext = ExtFields::new();
    SendMessageRequestHeaderV2(sample()).write_to(&mut ext);
    ext.remove("b");
    assert_eq!(
        SendMessageRequestHeader::read_any(&ext),
        Err(HeaderError::Missing { field: "b" })
    );
    let mut ext = ExtFields::new();
    SendMessageRequestHeaderV2(sample()).write_to(&mut ext);
    ext.insert("g", "yesterday");
    assert_eq!(
        SendMessageRequestHeader::read_any(&ext),
        Err(HeaderError::Invalid {
            field: "g",
            value: "yesterday".into()
        })
    );
    let mut ext = ExtFields::new();
    sample().write_to(&mut ext);
    ext.remove("queueId");
    assert_eq!(
        SendMessageRequestHeader::read_any(&ext),
        Err(HeaderError::Missing { field: "queueId" })
    );
}

#[test]
fn the_send_response_carries_every_field_java_unboxes() {
    let mut request = RemotingCommand::new_request(310, ExtFields::new(), Bytes::new());
    request.opaque = 9;
    let mut response = RemotingCommand::response_to(&request, 0, None);
    let mut header =
        SendMessageResponseHeader::new("7F00000100002A9F0000000000000000".into(), 2, 17);
    header.transaction_id = Some("C0A80001000100000000000000000001".into());
    response.set_header(&header);
    let expected = fields(&[
        ("msgId", "7F00000100002A9F0000000000000000"),
        ("queueId", "2"),
        ("queueOffset", "17"),
        ("transactionId", "C0A80001000100000000000000000001"),
        ("MSG_REGION", "DefaultRegion"),
        ("TRACE_ON", "true"),
    ]);
    assert_eq!(response.ext_fields, expected);
    assert_eq!(
        response
            .decode_header::<SendMessageResponseHeader>()
            .unwrap(),
        header
    );
}
