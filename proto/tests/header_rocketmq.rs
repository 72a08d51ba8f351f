//! The ROCKETMQ binary header (reference §1.4): decoding with Java's length checks.

use bytes::{BufMut, Bytes, BytesMut};
use ringmq_proto::command::{ExtFields, LanguageCode, RemotingCommand, SerializeType};
use ringmq_proto::error::{EncodeError, FrameError, WireHeaderError};
use ringmq_proto::frame::decode_frame;

/// Wraps a binary header in a frame with type byte 1.
fn frame(header: &[u8]) -> BytesMut {
    let mut src = BytesMut::new();
    src.put_u32(4 + header.len() as u32);
    src.put_u32(0x0100_0000 | header.len() as u32);
    src.put_slice(header);
    src
}

/// The fixed part with the given remark length, ready for the ext length to follow.
fn fixed(remark_len: i32) -> BytesMut {
    let mut h = BytesMut::new();
    h.put_i16(11); // PULL_MESSAGE
    h.put_u8(9); // GO
    h.put_i16(317);
    h.put_i32(5);
    h.put_i32(0);
    h.put_i32(remark_len);
    h
}

fn header_error(header: &[u8]) -> WireHeaderError {
    match decode_frame(&mut frame(header)) {
        Err(FrameError::Header(e)) => e,
        other => panic!("expected a header error, got {other:?}"),
    }
}

#[test]
fn decodes_remark_and_ext_fields() {
    let mut h = fixed(3);
    h.put_slice(b"bad");
    h.put_i32(2 + 1 + 4 + 1 + 2 + 2 + 4 + 3);
    h.put_i16(1);
    h.put_slice(b"k");
    h.put_i32(1);
    h.put_slice(b"v");
    h.put_i16(2);
    h.put_slice(b"k2");
    h.put_i32(3);
    h.put_slice("é!".as_bytes());
    let command = decode_frame(&mut frame(&h)).unwrap().unwrap();
    assert_eq!(command.code, 11);
    assert_eq!(command.language, LanguageCode::Go);
    assert_eq!(command.version, 317);
    assert_eq!(command.opaque, 5);
    assert_eq!(command.remark.as_deref(), Some("bad"));
    assert_eq!(command.ext_fields.get("k"), Some("v"));
    assert_eq!(command.ext_fields.get("k2"), Some("é!"));
    assert_eq!(command.serialize_type, SerializeType::RocketMq);
}

#[test]
fn an_unknown_language_byte_is_other() {
    let mut h = fixed(0);
    h.put_i32(0);
    h[2] = 200;
    let command = decode_frame(&mut frame(&h)).unwrap().unwrap();
    assert_eq!(command.language, LanguageCode::Other);
    h[2] = 13;
    let command = decode_frame(&mut frame(&h)).unwrap().unwrap();
    assert_eq!(command.language, LanguageCode::NodeJs);
}

#[test]
fn zero_and_negative_remark_lengths_mean_no_remark() {
    for remark_len in [0, -5] {
        let mut h = fixed(remark_len);
        h.put_i32(0);
        let command = decode_frame(&mut frame(&h)).unwrap().unwrap();
        assert_eq!(command.remark, None);
    }
}

#[test]
fn a_header_shorter_than_the_fixed_part_is_truncated() {
    let h = fixed(0); // 17 bytes, ext length missing
    assert!(matches!(
        header_error(&h),
        WireHeaderError::Truncated { .. }
    ));
}

#[test]
fn a_remark_longer_than_the_header_is_refused() {
    let mut h = fixed(1000);
    h.put_slice(b"abc");
    h.put_i32(0);
    assert!(matches!(
        header_error(&h),
        WireHeaderError::BadLength {
            field: "remark",
            ..
        }
    ));
}

#[test]
fn an_ext_length_beyond_the_header_is_refused() {
    let mut h = fixed(0);
    h.put_i32(50);
    h.put_slice(&[0; 10]);
    assert!(matches!(
        header_error(&h),
        WireHeaderError::BadLength {
            field: "ext fields",
            ..
        }
    ));
}

#[test]
fn a_negative_ext_key_length_is_refused() {
    let mut h = fixed(0);
    h.put_i32(6);
    h.put_i16(-1);
    h.put_i32(0);
    assert!(matches!(
        header_error(&h),
        WireHeaderError::BadLength {
            field: "ext field key",
            ..
        }
    ));
}

#[test]
fn an_ext_value_running_past_the_ext_map_is_refused() {
    let mut h = fixed(0);
    h.put_i32(2 + 1 + 4 + 1);
    h.put_i16(1);
    h.put_slice(b"k");
    h.put_i32(2); // claims 2 bytes, the map has 1 left
    h.put_slice(b"v");
    h.put_slice(b"xxxxxxxx"); // bytes after the map must not be borrowed
    assert!(matches!(
        header_error(&h),
        WireHeaderError::BadLength {
            field: "ext field value",
            ..
        }
    ));
}

#[test]
fn an_ext_entry_cut_in_its_length_prefix_is_truncated() {
    let mut h = fixed(0);
    h.put_i32(3);
    h.put_i16(1);
    h.put_slice(b"k");
    assert!(matches!(
        header_error(&h),
        WireHeaderError::Truncated { .. }
    ));
}

#[test]
fn invalid_utf8_is_refused() {
    let mut h = fixed(2);
    h.put_slice(&[0xff, 0xfe]);
    h.put_i32(0);
    assert!(matches!(
        header_error(&h),
        WireHeaderError::InvalidUtf8 { field: "remark" }
    ));
}

#[test]
fn zero_length_keys_and_values_are_null_and_dropped() {
    let mut h = fixed(0);
    h.put_i32(2 + 1 + 4 + 2 + 4 + 1);
    h.put_i16(1);
    h.put_slice(b"k");
    h.put_i32(0); // value null
    h.put_i16(0); // key null
    h.put_i32(1);
    h.put_slice(b"v");
    let command = decode_frame(&mut frame(&h)).unwrap().unwrap();
    assert!(command.ext_fields.is_empty());
}

#[test]
fn codes_and_versions_beyond_a_short_cannot_be_encoded() {
    let mut command = RemotingCommand::new_request(200050, ExtFields::new(), Bytes::new());
    command.serialize_type = SerializeType::RocketMq;
    let mut dst = BytesMut::from(&b"keep"[..]);
    assert_eq!(
        command.encode(&mut dst),
        Err(EncodeError::FieldOutOfRange {
            field: "code",
            value: 200050
        })
    );
    assert_eq!(&dst[..], b"keep", "a failed encode appends nothing");
    command.code = 10;
    command.version = 40_000;
    assert!(matches!(
        command.encode(&mut dst),
        Err(EncodeError::FieldOutOfRange {
            field: "version",
            ..
        })
    ));
    // JSON has no such limit.
    command.serialize_type = SerializeType::Json;
    command.code = 200050;
    command.encode(&mut dst).unwrap();
}
