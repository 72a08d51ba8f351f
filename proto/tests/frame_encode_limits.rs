//! Encoding refuses what the wire cannot carry, and appends nothing when it refuses.

use bytes::{Bytes, BytesMut};
use ringmq_proto::command::{ExtFields, RemotingCommand, SerializeType};
use ringmq_proto::error::EncodeError;
use ringmq_proto::frame::{decode_frame, FRAME_MAX_BYTES};

#[test]
fn a_frame_over_the_cap_is_refused_and_nothing_is_appended() {
    let body = Bytes::from(vec![0u8; FRAME_MAX_BYTES]);
    let command = RemotingCommand::new_request(310, ExtFields::new(), body);
    let mut dst = BytesMut::from(&b"earlier frame"[..]);
    match command.encode(&mut dst) {
        Err(EncodeError::FrameTooLarge {
            frame_bytes,
            max_bytes,
        }) => {
            assert!(frame_bytes > FRAME_MAX_BYTES);
            assert_eq!(max_bytes, FRAME_MAX_BYTES);
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    assert_eq!(&dst[..], b"earlier frame");
}

#[test]
fn the_largest_body_that_fits_round_trips() {
    let mut command = RemotingCommand::new_request(310, ExtFields::new(), Bytes::new());
    command.serialize_type = SerializeType::RocketMq;
    let mut head = BytesMut::new();
    command.encode_head(&mut head).unwrap();
    let header_bytes = head.len() - 8;
    command.body = Bytes::from(vec![7u8; FRAME_MAX_BYTES - 8 - header_bytes]);
    let mut dst = BytesMut::new();
    command.encode(&mut dst).unwrap();
    assert_eq!(dst.len(), FRAME_MAX_BYTES);
    assert_eq!(decode_frame(&mut dst).unwrap().unwrap(), command);
}

#[test]
fn a_header_over_24_bits_is_refused() {
    let mut command = RemotingCommand::new_request(1, ExtFields::new(), Bytes::new());
    command.remark = Some("r".repeat(0x100_0000));
    let mut dst = BytesMut::new();
    assert!(matches!(
        command.encode(&mut dst),
        Err(EncodeError::HeaderTooLarge { .. })
    ));
    assert!(dst.is_empty());
    command.serialize_type = SerializeType::RocketMq;
    assert!(matches!(
        command.encode(&mut dst),
        Err(EncodeError::HeaderTooLarge { .. })
    ));
    assert!(dst.is_empty());
}

#[test]
fn an_ext_key_longer_than_a_short_is_refused_in_rocketmq_only() {
    let mut command = RemotingCommand::new_request(1, ExtFields::new(), Bytes::new());
    command.ext_fields.insert("k".repeat(40_000), "v");
    command.serialize_type = SerializeType::RocketMq;
    let mut dst = BytesMut::new();
    assert_eq!(
        command.encode(&mut dst),
        Err(EncodeError::StringTooLong {
            field: "ext field key",
            len_bytes: 40_000
        })
    );
    assert!(dst.is_empty());
    command.serialize_type = SerializeType::Json;
    command.encode(&mut dst).unwrap();
    assert_eq!(decode_frame(&mut dst).unwrap().unwrap(), command);
}

#[test]
fn encoding_appends_after_existing_bytes() {
    let command = RemotingCommand::new_request(105, ExtFields::new(), Bytes::from_static(b"b"));
    let mut dst = BytesMut::new();
    command.encode(&mut dst).unwrap();
    command.encode(&mut dst).unwrap();
    let first = decode_frame(&mut dst).unwrap().unwrap();
    let second = decode_frame(&mut dst).unwrap().unwrap();
    assert_eq!(first, command);
    assert_eq!(second, command);
    assert!(dst.is_empty());
}
