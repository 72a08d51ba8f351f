//! Golden-byte tests: every expected byte sequence here is written out by hand from the
//! protocol reference (§1.1, §1.3, §1.4), not produced by the code under test.

use bytes::{Bytes, BytesMut};
use ringmq_proto::command::{
    ExtFields, LanguageCode, RemotingCommand, SerializeType, RESPONSE_FLAG,
};
use ringmq_proto::frame::decode_frame;

/// Reference §1.3: the GET_ROUTEINFO_BY_TOPIC request a Java 5.x client sends.
const JAVA_ROUTE_HEADER: &[u8] = br#"{"code":105,"extFields":{"topic":"TopicTest"},"flag":0,"language":"JAVA","opaque":1,"serializeTypeCurrentRPC":"JSON","version":479}"#;

fn java_route_frame() -> Vec<u8> {
    // length 0x87 = 4 + 131; type 0 (JSON), header length 0x83 = 131.
    let mut frame = vec![0x00, 0x00, 0x00, 0x87, 0x00, 0x00, 0x00, 0x83];
    frame.extend_from_slice(JAVA_ROUTE_HEADER);
    frame
}

#[test]
fn reference_json_example_header_is_131_bytes() {
    assert_eq!(JAVA_ROUTE_HEADER.len(), 131);
}

#[test]
fn encodes_the_reference_json_example_byte_for_byte() {
    let mut command = RemotingCommand::new_request(105, ExtFields::new(), Bytes::new());
    command.ext_fields.insert("topic", "TopicTest");
    command.opaque = 1;
    command.version = 479;
    let mut dst = BytesMut::new();
    command.encode(&mut dst).unwrap();
    assert_eq!(&dst[..], &java_route_frame()[..]);
}

#[test]
fn decodes_the_reference_json_example() {
    let mut src = BytesMut::from(&java_route_frame()[..]);
    let command = decode_frame(&mut src).unwrap().unwrap();
    assert!(src.is_empty());
    assert_eq!(command.code, 105);
    assert_eq!(command.language, LanguageCode::Java);
    assert_eq!(command.version, 479);
    assert_eq!(command.opaque, 1);
    assert_eq!(command.flag, 0);
    assert_eq!(command.remark, None);
    assert_eq!(command.serialize_type, SerializeType::Json);
    assert_eq!(command.ext_fields.get("topic"), Some("TopicTest"));
    assert_eq!(command.ext_fields.len(), 1);
    assert!(command.body.is_empty());
}

/// Reference §1.4: response code 0, version 479, opaque 1, flag 1, no remark, offset=42.
const ROCKETMQ_EXAMPLE_FRAME: &[u8] = &[
    0x00, 0x00, 0x00, 0x27, // length 39 = 4 + 35
    0x01, 0x00, 0x00, 0x23, // type 1 (ROCKETMQ), header length 35
    0x00, 0x00, // code 0
    0x00, // language JAVA
    0x01, 0xdf, // version 479
    0x00, 0x00, 0x00, 0x01, // opaque 1
    0x00, 0x00, 0x00, 0x01, // flag 1 (response)
    0x00, 0x00, 0x00, 0x00, // remark length 0 (null)
    0x00, 0x00, 0x00, 0x0e, // ext length 14
    0x00, 0x06, b'o', b'f', b'f', b's', b'e', b't', // key "offset"
    0x00, 0x00, 0x00, 0x02, b'4', b'2', // value "42"
];

#[test]
fn encodes_the_reference_rocketmq_example_byte_for_byte() {
    let mut request = RemotingCommand::new_request(14, ExtFields::new(), Bytes::new());
    request.serialize_type = SerializeType::RocketMq;
    request.opaque = 1;
    let mut response = RemotingCommand::response_to(&request, 0, None);
    response.version = 479;
    response.ext_fields.insert("offset", "42");
    let mut dst = BytesMut::new();
    response.encode(&mut dst).unwrap();
    assert_eq!(&dst[..], ROCKETMQ_EXAMPLE_FRAME);
}

#[test]
fn decodes_the_reference_rocketmq_example() {
    let mut src = BytesMut::from(ROCKETMQ_EXAMPLE_FRAME);
    let command = decode_frame(&mut src).unwrap().unwrap();
    assert!(src.is_empty());
    assert_eq!(command.code, 0);
    assert_eq!(command.language, LanguageCode::Java);
    assert_eq!(command.version, 479);
    assert_eq!(command.opaque, 1);
    assert_eq!(command.flag, RESPONSE_FLAG);
    assert!(command.is_response());
    assert_eq!(command.remark, None);
    assert_eq!(command.serialize_type, SerializeType::RocketMq);
    assert_eq!(command.ext_fields.get("offset"), Some("42"));
    assert_eq!(command.ext_fields.len(), 1);
}

/// A SEND_MESSAGE_V2 request as ali-ons writes it (reference §1.3, §2.3, §7): JSON only,
/// language JAVA, version 121, its own key order, numbers and booleans as JSON scalars, and the
/// properties string with its 0x01/0x02 separators escaped as \u0001/\u0002. Body "hello".
const ALI_ONS_SEND_HEADER: &[u8] = br#"{"code":310,"language":"JAVA","opaque":7,"flag":0,"version":121,"extFields":{"a":"pg","b":"TopicTest","c":"TBW102","d":4,"e":2,"f":0,"g":1700000000000,"h":0,"i":"UNIQ_KEY\u0001C0A80001000100000000000000000001\u0002TAGS\u0001TagA\u0002","j":0,"k":false,"l":16}}"#;

fn ali_ons_send_frame() -> Vec<u8> {
    // length 0x10d = 4 + 260 + 5; type 0, header length 0x104 = 260.
    let mut frame = vec![0x00, 0x00, 0x01, 0x0d, 0x00, 0x00, 0x01, 0x04];
    frame.extend_from_slice(ALI_ONS_SEND_HEADER);
    frame.extend_from_slice(b"hello");
    frame
}

#[test]
fn decodes_an_ali_ons_send_v2_request() {
    assert_eq!(ALI_ONS_SEND_HEADER.len(), 260);
    let mut src = BytesMut::from(&ali_ons_send_frame()[..]);
    let command = decode_frame(&mut src).unwrap().unwrap();
    assert!(src.is_empty());
    assert_eq!(command.code, 310);
    assert_eq!(command.version, 121);
    assert_eq!(command.opaque, 7);
    assert_eq!(&command.body[..], b"hello");
    let ext = &command.ext_fields;
    assert_eq!(ext.get("a"), Some("pg"));
    assert_eq!(ext.get("d"), Some("4"));
    assert_eq!(ext.get("e"), Some("2"));
    assert_eq!(ext.get("g"), Some("1700000000000"));
    assert_eq!(ext.get("k"), Some("false"));
    assert_eq!(ext.get("l"), Some("16"));
    assert_eq!(
        ext.get("i"),
        Some("UNIQ_KEY\u{1}C0A80001000100000000000000000001\u{2}TAGS\u{1}TagA\u{2}")
    );
    assert_eq!(ext.len(), 12);
}

#[test]
fn encodes_control_characters_as_fastjson_does() {
    // A response carrying properties text: \u0001 and \u0002 escaped, quote and backslash too.
    let mut command = RemotingCommand::new_request(0, ExtFields::new(), Bytes::new());
    command.flag = RESPONSE_FLAG;
    command.version = 401;
    command.ext_fields.insert("i", "K\u{1}v\"\\\u{2}\n");
    command.remark = Some("bad".to_string());
    let mut dst = BytesMut::new();
    command.encode(&mut dst).unwrap();
    let header: &[u8] = br#"{"code":0,"extFields":{"i":"K\u0001v\"\\\u0002\n"},"flag":1,"language":"JAVA","opaque":0,"remark":"bad","serializeTypeCurrentRPC":"JSON","version":401}"#;
    assert_eq!(header.len(), 151);
    // length 0x9b = 4 + 151; header length 0x97 = 151.
    let mut expected = vec![0x00, 0x00, 0x00, 0x9b, 0x00, 0x00, 0x00, 0x97];
    expected.extend_from_slice(header);
    assert_eq!(&dst[..], &expected[..]);
}

#[test]
fn encodes_a_body_after_the_header() {
    // §1.1: length counts header-length field, header and body.
    let mut command = RemotingCommand::new_request(34, ExtFields::new(), Bytes::from_static(b"{}"));
    command.serialize_type = SerializeType::RocketMq;
    command.version = 401;
    command.opaque = 0x0102_0304;
    let mut dst = BytesMut::new();
    command.encode(&mut dst).unwrap();
    let expected: &[u8] = &[
        0x00, 0x00, 0x00, 0x1b, // length 27 = 4 + 21 + 2
        0x01, 0x00, 0x00, 0x15, // ROCKETMQ, header 21
        0x00, 0x22, // code 34
        0x00, // JAVA
        0x01, 0x91, // version 401
        0x01, 0x02, 0x03, 0x04, // opaque
        0x00, 0x00, 0x00, 0x00, // flag
        0x00, 0x00, 0x00, 0x00, // remark null
        0x00, 0x00, 0x00, 0x00, // no ext fields
        b'{', b'}',
    ];
    assert_eq!(&dst[..], expected);
}
