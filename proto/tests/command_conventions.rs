//! Request/response conventions of `RemotingCommand` (reference §1.5, §1.6, §1.7).

use bytes::{Bytes, BytesMut};
use ringmq_proto::command::{
    ExtFields, LanguageCode, RemotingCommand, SerializeType, ONEWAY_FLAG, RESPONSE_FLAG,
    SERVER_VERSION,
};
use ringmq_proto::frame::decode_frame;

#[test]
fn a_new_request_is_java_json_with_the_server_version() {
    let request = RemotingCommand::new_request(105, ExtFields::new(), Bytes::new());
    assert_eq!(request.language, LanguageCode::Java);
    assert_eq!(request.version, SERVER_VERSION);
    assert_eq!(request.serialize_type, SerializeType::Json);
    assert_eq!((request.flag, request.opaque), (0, 0));
    assert!(!request.is_response());
    assert!(!request.is_oneway());
}

#[test]
fn the_server_version_is_a_usable_ordinal() {
    // Never 0 (§8.6), at least V4_1_0_SNAPSHOT = 232 (SQL92), standard route JSON at >= 401,
    // within the Go client's int16.
    assert_eq!(SERVER_VERSION, 401);
}

#[test]
fn a_response_mirrors_the_requests_opaque_and_serialization() {
    for serialize_type in [SerializeType::Json, SerializeType::RocketMq] {
        let mut request = RemotingCommand::new_request(14, ExtFields::new(), Bytes::new());
        request.serialize_type = serialize_type;
        request.opaque = 77;
        request.language = LanguageCode::Cpp;
        request.version = 333;
        let response = RemotingCommand::response_to(&request, 22, Some("no offset".into()));
        assert_eq!(response.opaque, 77);
        assert_eq!(response.serialize_type, serialize_type);
        assert_eq!(response.code, 22);
        assert_eq!(response.remark.as_deref(), Some("no offset"));
        assert!(response.is_response());
        assert_eq!(response.flag, RESPONSE_FLAG);
        assert_eq!(
            response.language,
            LanguageCode::Java,
            "the server always says JAVA"
        );
        assert_eq!(response.version, SERVER_VERSION);

        let mut wire = BytesMut::new();
        response.encode(&mut wire).unwrap();
        assert_eq!(wire[4], serialize_type.byte(), "the type byte on the wire");
    }
}

#[test]
fn a_received_request_answers_in_its_own_serialization() {
    // A C++ client can only read JSON: a JSON request must get a JSON reply, end to end.
    let mut request = RemotingCommand::new_request(30, ExtFields::new(), Bytes::new());
    request.language = LanguageCode::Cpp;
    let mut wire = BytesMut::new();
    request.encode(&mut wire).unwrap();
    let received = decode_frame(&mut wire).unwrap().unwrap();
    let reply = RemotingCommand::response_to(&received, 0, None);
    let mut out = BytesMut::new();
    reply.encode(&mut out).unwrap();
    assert_eq!(out[4], 0);
}

#[test]
fn oneway_is_flag_bit_one() {
    let mut request = RemotingCommand::new_request(37, ExtFields::new(), Bytes::new());
    request.set_oneway();
    assert!(request.is_oneway());
    assert_eq!(request.flag, ONEWAY_FLAG);
    assert!(!request.is_response());
    request.set_oneway();
    assert_eq!(request.flag, ONEWAY_FLAG, "idempotent");
}

#[test]
fn language_bytes_and_names_follow_the_reference_table() {
    let table = [
        (0, "JAVA"),
        (1, "CPP"),
        (2, "DOTNET"),
        (3, "PYTHON"),
        (4, "DELPHI"),
        (5, "ERLANG"),
        (6, "RUBY"),
        (7, "OTHER"),
        (8, "HTTP"),
        (9, "GO"),
        (10, "PHP"),
        (11, "OMS"),
        (12, "RUST"),
        (13, "NODE_JS"),
    ];
    for (byte, name) in table {
        let language = LanguageCode::from_byte(byte);
        assert_eq!(language.byte(), byte);
        assert_eq!(language.name(), name);
        assert_eq!(LanguageCode::from_name(name), language);
    }
    assert_eq!(LanguageCode::from_byte(14), LanguageCode::Other);
    assert_eq!(LanguageCode::from_byte(255), LanguageCode::Other);
}

#[test]
fn serialize_type_bytes() {
    assert_eq!(SerializeType::Json.byte(), 0);
    assert_eq!(SerializeType::RocketMq.byte(), 1);
    assert_eq!(SerializeType::from_byte(1), Some(SerializeType::RocketMq));
    assert_eq!(SerializeType::from_byte(2), None);
}

#[test]
fn an_unknown_code_gets_javas_not_supported_answer() {
    let mut request = RemotingCommand::new_request(9999, ExtFields::new(), Bytes::new());
    request.opaque = 5;
    let answer = RemotingCommand::request_code_not_supported(&request);
    assert_eq!(
        answer.code,
        ringmq_proto::ResponseCode::RequestCodeNotSupported.code()
    );
    assert_eq!(
        answer.remark.as_deref(),
        Some(" request type 9999 not supported")
    );
    assert_eq!(answer.opaque, 5);
    assert!(answer.is_response());
}
