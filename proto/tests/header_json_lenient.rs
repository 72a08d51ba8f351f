//! Every lenient-input quirk of the JSON header table (reference §1.3), one test each, plus
//! the strict output rules.

use bytes::{BufMut, Bytes, BytesMut};
use ringmq_proto::command::{ExtFields, LanguageCode, RemotingCommand, SerializeType};
use ringmq_proto::frame::decode_frame;

/// Wraps a JSON header (and body) in a frame with type byte 0.
fn frame(header: &str, body: &[u8]) -> BytesMut {
    let mut src = BytesMut::new();
    src.put_u32((4 + header.len() + body.len()) as u32);
    src.put_u32(header.len() as u32);
    src.put_slice(header.as_bytes());
    src.put_slice(body);
    src
}

fn decode(header: &str) -> RemotingCommand {
    let mut src = frame(header, b"");
    let command = decode_frame(&mut src).unwrap().expect("a whole frame");
    assert!(src.is_empty());
    command
}

#[test]
fn numeric_and_boolean_ext_values_become_text() {
    // ali-ons (JSON.stringify) and C++ (d,e,f,h,l as ints).
    let c = decode(
        r#"{"code":310,"extFields":{"e":0,"k":false,"m":true,"g":1700000000000,"q":-3,"big":18446744073709551615,"f":1.5},"flag":0,"language":"CPP","opaque":1,"version":333}"#,
    );
    let ext = &c.ext_fields;
    assert_eq!(ext.get("e"), Some("0"));
    assert_eq!(ext.get("k"), Some("false"));
    assert_eq!(ext.get("m"), Some("true"));
    assert_eq!(ext.get("g"), Some("1700000000000"));
    assert_eq!(ext.get("q"), Some("-3"));
    assert_eq!(ext.get("big"), Some("18446744073709551615"));
    assert_eq!(ext.get("f"), Some("1.5"));
}

#[test]
fn integral_doubles_print_as_integers() {
    let c = decode(r#"{"code":1,"extFields":{"d":4.0,"g":1.7e12}}"#);
    assert_eq!(c.ext_fields.get("d"), Some("4"));
    assert_eq!(c.ext_fields.get("g"), Some("1700000000000"));
}

#[test]
fn null_ext_values_are_dropped() {
    let c = decode(r#"{"code":1,"extFields":{"a":null,"b":"x"}}"#);
    assert_eq!(c.ext_fields.get("a"), None);
    assert_eq!(c.ext_fields.get("b"), Some("x"));
    assert_eq!(c.ext_fields.len(), 1);
}

#[test]
fn absent_null_and_empty_ext_fields_are_an_empty_map() {
    for header in [
        r#"{"code":46,"flag":0,"language":"JAVA","opaque":3,"version":479}"#,
        r#"{"code":34,"extFields":null,"flag":0,"language":"JAVA","opaque":3,"version":479}"#,
        r#"{"code":34,"extFields":{},"flag":0,"language":"JAVA","opaque":3,"version":479}"#,
    ] {
        let c = decode(header);
        assert!(c.ext_fields.is_empty(), "{header}");
        assert_eq!(c.opaque, 3);
    }
}

#[test]
fn empty_null_and_absent_remarks_are_none() {
    for header in [
        r#"{"code":0,"flag":1,"remark":""}"#,
        r#"{"code":0,"flag":1,"remark":null}"#,
        r#"{"code":0,"flag":1}"#,
    ] {
        assert_eq!(decode(header).remark, None, "{header}");
    }
    assert_eq!(
        decode(r#"{"code":1,"remark":"disk full"}"#)
            .remark
            .as_deref(),
        Some("disk full")
    );
}

#[test]
fn unknown_keys_of_any_shape_are_ignored() {
    let c = decode(
        r#"{"code":105,"serializeTypeCurrentRPC":"JSON","future":{"nested":[1,2,{"x":null}]},"list":[],"n":null,"extFields":{"topic":"T"},"opaque":9}"#,
    );
    assert_eq!(c.code, 105);
    assert_eq!(c.opaque, 9);
    assert_eq!(c.ext_fields.get("topic"), Some("T"));
}

#[test]
fn trailing_whitespace_is_allowed() {
    // C++ Json::FastWriter appends '\n'.
    let c = decode("{\"code\":105,\"opaque\":2}\n");
    assert_eq!(c.code, 105);
    let c = decode("{\"code\":105,\"opaque\":2} \r\n\t ");
    assert_eq!(c.opaque, 2);
}

#[test]
fn leading_whitespace_is_allowed() {
    assert_eq!(decode(" \n{\"code\":7}").code, 7);
}

#[test]
fn escapes_are_fully_unescaped() {
    let c = decode(
        r#"{"code":310,"extFields":{"i":"TAGS\u0001a\u0002KEYS\u0001k1\u0002","u":"caf\u00e9 \ud83d\ude00 \"q\" \\ \/ \b\f\n\r\t","k\u0065y":"v"}}"#,
    );
    assert_eq!(
        c.ext_fields.get("i"),
        Some("TAGS\u{1}a\u{2}KEYS\u{1}k1\u{2}")
    );
    assert_eq!(
        c.ext_fields.get("u"),
        Some("café 😀 \"q\" \\ / \u{8}\u{c}\n\r\t")
    );
    assert_eq!(
        c.ext_fields.get("key"),
        Some("v"),
        "escaped keys are unescaped too"
    );
}

#[test]
fn raw_utf8_passes_through() {
    let c = decode(r#"{"code":1,"extFields":{"topic":"主题"},"remark":"ошибка"}"#);
    assert_eq!(c.ext_fields.get("topic"), Some("主题"));
    assert_eq!(c.remark.as_deref(), Some("ошибка"));
}

#[test]
fn a_lone_surrogate_escape_is_an_error() {
    let mut src = frame(r#"{"code":1,"extFields":{"x":"\ud800"}}"#, b"");
    assert!(decode_frame(&mut src).is_err());
}

#[test]
fn any_language_string_is_accepted() {
    let cases = [
        ("JAVA", LanguageCode::Java),
        ("GO", LanguageCode::Go),
        ("CPP", LanguageCode::Cpp),
        ("NODE_JS", LanguageCode::NodeJs),
        ("RUST", LanguageCode::Rust),
        ("PYTHON", LanguageCode::Python),
        ("python", LanguageCode::Python),
        ("COBOL", LanguageCode::Other),
        ("", LanguageCode::Other),
    ];
    for (name, expected) in cases {
        let c = decode(&format!(r#"{{"code":1,"language":"{name}"}}"#));
        assert_eq!(c.language, expected, "{name}");
    }
    assert_eq!(
        decode(r#"{"code":1,"language":9}"#).language,
        LanguageCode::Go
    );
    assert_eq!(
        decode(r#"{"code":1,"language":null}"#).language,
        LanguageCode::Java
    );
    assert_eq!(decode(r#"{"code":1}"#).language, LanguageCode::Java);
}

#[test]
fn empty_acl_keys_are_kept_as_empty_strings() {
    // C++ sends these empty; they are harmless ext fields a broker without ACL ignores.
    let c = decode(
        r#"{"code":310,"extFields":{"Signature":"","AccessKey":"","ONSChannelKey":"","a":"g"}}"#,
    );
    assert_eq!(c.ext_fields.get("Signature"), Some(""));
    assert_eq!(c.ext_fields.get("a"), Some("g"));
}

#[test]
fn duplicate_keys_keep_the_last_value() {
    let c = decode(r#"{"code":1,"code":2,"extFields":{"a":"1","a":"2"}}"#);
    assert_eq!(c.code, 2);
    assert_eq!(c.ext_fields.get("a"), Some("2"));
    assert_eq!(c.ext_fields.len(), 1);
}

#[test]
fn int_fields_accept_numeric_strings_and_refuse_out_of_range() {
    let c = decode(r#"{"code":"105","opaque":" 8 ","flag":2,"version":-1}"#);
    assert_eq!((c.code, c.opaque, c.flag, c.version), (105, 8, 2, -1));
    for header in [
        r#"{"code":2147483648}"#,
        r#"{"code":"x"}"#,
        r#"{"code":1.5}"#,
        r#"{"opaque":true}"#,
    ] {
        let mut src = frame(header, b"");
        assert!(decode_frame(&mut src).is_err(), "{header}");
    }
}

#[test]
fn nested_ext_values_keep_their_json_text() {
    let c = decode(r#"{"code":1,"extFields":{"o":{"b":1,"a":[true,null]}}}"#);
    let text = c.ext_fields.get("o").unwrap();
    let reparsed: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(reparsed, serde_json::json!({"b":1,"a":[true,null]}));
}

#[test]
fn output_is_compact_with_string_values_and_no_null_remark() {
    let mut command = RemotingCommand::new_request(11, ExtFields::new(), Bytes::new());
    command.ext_fields.insert("queueId", "3");
    command.ext_fields.insert("unitMode", "false");
    let mut dst = BytesMut::new();
    command.encode(&mut dst).unwrap();
    let header = std::str::from_utf8(&dst[8..]).unwrap();
    assert_eq!(
        header,
        r#"{"code":11,"extFields":{"queueId":"3","unitMode":"false"},"flag":0,"language":"JAVA","opaque":0,"serializeTypeCurrentRPC":"JSON","version":401}"#
    );
    assert!(!header.contains("remark"));
    assert!(!header.contains(' '));
}

#[test]
fn every_control_character_is_escaped_on_output() {
    let all_controls: String = (0u8..0x20).map(char::from).collect();
    let mut command = RemotingCommand::new_request(0, ExtFields::new(), Bytes::new());
    command.ext_fields.insert("c", all_controls.clone());
    let mut dst = BytesMut::new();
    command.encode(&mut dst).unwrap();
    assert!(
        dst[8..].iter().all(|&b| b >= 0x20),
        "no raw control byte on the wire"
    );
    let text = std::str::from_utf8(&dst[8..]).unwrap();
    assert!(text.contains(r#"\u0001\u0002"#));
    // And a strict JSON parser reads back the same text.
    let parsed: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(parsed["extFields"]["c"], all_controls.as_str());
    let decoded = decode_frame(&mut dst).unwrap().unwrap();
    assert_eq!(decoded.ext_fields.get("c"), Some(all_controls.as_str()));
    assert_eq!(decoded.serialize_type, SerializeType::Json);
}
