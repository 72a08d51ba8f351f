//! The incremental frame decoder: "need more bytes" without consuming, exactly one frame per
//! call, zero-copy bodies, and a clear error for every corrupt prefix.

use bytes::{Bytes, BytesMut};
use ringmq_proto::command::{ExtFields, RemotingCommand, SerializeType};
use ringmq_proto::error::{FrameError, WireHeaderError};
use ringmq_proto::frame::{decode_frame, FRAME_MAX_BYTES};

fn encoded(command: &RemotingCommand) -> BytesMut {
    let mut dst = BytesMut::new();
    command.encode(&mut dst).unwrap();
    dst
}

fn sample(serialize_type: SerializeType) -> RemotingCommand {
    let mut command = RemotingCommand::new_request(
        310,
        [("a", "group"), ("b", "topic")].into_iter().collect(),
        Bytes::from_static(b"body bytes"),
    );
    command.serialize_type = serialize_type;
    command.opaque = 42;
    command
}

#[test]
fn every_strict_prefix_needs_more_bytes_and_consumes_nothing() {
    for serialize_type in [SerializeType::Json, SerializeType::RocketMq] {
        let frame = encoded(&sample(serialize_type));
        for cut in 0..frame.len() {
            let mut src = BytesMut::from(&frame[..cut]);
            assert!(decode_frame(&mut src).unwrap().is_none(), "cut at {cut}");
            assert_eq!(src.len(), cut, "nothing consumed at cut {cut}");
        }
        let mut src = frame.clone();
        assert_eq!(
            decode_frame(&mut src).unwrap().unwrap(),
            sample(serialize_type)
        );
        assert!(src.is_empty());
    }
}

#[test]
fn consumes_exactly_one_frame_and_leaves_the_next() {
    let first = sample(SerializeType::Json);
    let mut second = sample(SerializeType::RocketMq);
    second.opaque = 43;
    let mut src = encoded(&first);
    src.extend_from_slice(&encoded(&second));
    src.extend_from_slice(&[0x00, 0x00]); // start of a third frame
    assert_eq!(decode_frame(&mut src).unwrap().unwrap(), first);
    assert_eq!(decode_frame(&mut src).unwrap().unwrap(), second);
    assert!(decode_frame(&mut src).unwrap().is_none());
    assert_eq!(&src[..], &[0x00, 0x00]);
}

#[test]
fn the_body_is_a_zero_copy_slice_of_the_read_buffer() {
    let mut src = encoded(&sample(SerializeType::Json));
    let buffer_start = src.as_ptr() as usize;
    let buffer_end = buffer_start + src.len();
    let command = decode_frame(&mut src).unwrap().unwrap();
    let body_start = command.body.as_ptr() as usize;
    assert!(body_start >= buffer_start && body_start + command.body.len() <= buffer_end);
    assert_eq!(&command.body[..], b"body bytes");
}

#[test]
fn an_empty_body_is_legal() {
    let command = RemotingCommand::new_request(34, ExtFields::new(), Bytes::new());
    let mut src = encoded(&command);
    let decoded = decode_frame(&mut src).unwrap().unwrap();
    assert!(decoded.body.is_empty());
    assert_eq!(decoded, command);
}

#[test]
fn a_frame_of_exactly_the_cap_decodes_and_one_byte_more_is_refused() {
    let header = br#"{"code":0}"#;
    let body_bytes = FRAME_MAX_BYTES - 8 - header.len();
    let mut src = BytesMut::with_capacity(FRAME_MAX_BYTES);
    src.extend_from_slice(&((FRAME_MAX_BYTES - 4) as u32).to_be_bytes());
    src.extend_from_slice(&(header.len() as u32).to_be_bytes());
    src.extend_from_slice(header);
    src.resize(FRAME_MAX_BYTES, 0xab);
    let command = decode_frame(&mut src).unwrap().unwrap();
    assert_eq!(command.body.len(), body_bytes);

    let mut over = BytesMut::from(&((FRAME_MAX_BYTES - 3) as u32).to_be_bytes()[..]);
    match decode_frame(&mut over) {
        Err(FrameError::TooLarge {
            frame_bytes,
            max_bytes,
        }) => {
            assert_eq!(frame_bytes, FRAME_MAX_BYTES as u64 + 1);
            assert_eq!(max_bytes, FRAME_MAX_BYTES);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(over.len(), 4, "an error consumes nothing");
}

#[test]
fn oversize_is_reported_from_the_length_field_alone() {
    let mut src = BytesMut::from(&[0x7f, 0xff, 0xff, 0xff][..]);
    assert!(matches!(
        decode_frame(&mut src),
        Err(FrameError::TooLarge { .. })
    ));
}

#[test]
fn negative_and_too_small_lengths_are_refused() {
    for length in [i32::MIN, -1, 0, 3] {
        let mut src = BytesMut::from(&length.to_be_bytes()[..]);
        match decode_frame(&mut src) {
            Err(FrameError::LengthTooSmall { length: got }) => assert_eq!(got, length),
            other => panic!("length {length}: expected LengthTooSmall, got {other:?}"),
        }
    }
}

#[test]
fn a_header_longer_than_the_frame_is_refused_before_the_frame_arrives() {
    // length 10 leaves 6 bytes after the header-length field; header claims 7.
    let mut src = BytesMut::from(&[0, 0, 0, 10, 0, 0, 0, 7][..]);
    match decode_frame(&mut src) {
        Err(FrameError::HeaderLengthExceedsFrame {
            header_bytes,
            available_bytes,
        }) => {
            assert_eq!((header_bytes, available_bytes), (7, 6));
        }
        other => panic!("expected HeaderLengthExceedsFrame, got {other:?}"),
    }
}

#[test]
fn an_unknown_serialize_type_is_refused() {
    let mut src = BytesMut::from(&[0, 0, 0, 4, 2, 0, 0, 0][..]);
    assert!(matches!(
        decode_frame(&mut src),
        Err(FrameError::UnknownSerializeType(2))
    ));
}

#[test]
fn a_malformed_json_header_is_an_error_and_consumes_nothing() {
    let header = br#"{"code":1"#;
    let mut src = BytesMut::new();
    src.extend_from_slice(&(4 + header.len() as u32).to_be_bytes());
    src.extend_from_slice(&(header.len() as u32).to_be_bytes());
    src.extend_from_slice(header);
    let before = src.len();
    assert!(matches!(
        decode_frame(&mut src),
        Err(FrameError::Header(WireHeaderError::Json(_)))
    ));
    assert_eq!(src.len(), before);
}

#[test]
fn a_json_header_that_is_not_an_object_is_an_error() {
    for header in [&b"[]"[..], b"42", b"\"x\"", b"", b"{} x"] {
        let mut src = BytesMut::new();
        src.extend_from_slice(&(4 + header.len() as u32).to_be_bytes());
        src.extend_from_slice(&(header.len() as u32).to_be_bytes());
        src.extend_from_slice(header);
        assert!(
            decode_frame(&mut src).is_err(),
            "{:?}",
            String::from_utf8_lossy(header)
        );
    }
}
