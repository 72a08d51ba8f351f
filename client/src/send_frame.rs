//! The SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE frame, written straight into a connection's outbox.
//!
//! Why not `requests::send_message(..)` + `RemotingCommand::encode`: that path copies every
//! header value into an owned `String` (the typed header, then ext-field keys and values, about
//! thirty allocations and a `Vec` of pairs per message) only to serialize them and drop them.
//! A send is the hot path of a producer, so this module writes the same bytes - byte for byte;
//! the tests compare it with the generic path - from borrowed fields, with no allocation.
//! Every other request still goes through the generic builders in `requests`.

use bytes::{BufMut, BytesMut};
use ringmq_proto::code::RequestCode;
use ringmq_proto::command::{LanguageCode, SerializeType, SERVER_VERSION};
use ringmq_proto::frame::{FRAME_MAX_BYTES, FRAME_PREFIX_BYTES, HEADER_MAX_BYTES};

use crate::error::ClientError;
use crate::requests::SendArgs;

/// The request code a send with these arguments goes out with.
pub(crate) fn send_request_code(args: &SendArgs<'_>) -> i32 {
    if args.batch {
        RequestCode::SendBatchMessage.code()
    } else {
        RequestCode::SendMessageV2.code()
    }
}

/// Appends the whole send frame (prefix, JSON header, `body`) with `opaque` to `dst`. On error
/// (a frame over the protocol's limits) nothing is appended.
pub(crate) fn encode_send_frame(
    args: &SendArgs<'_>,
    body: &[u8],
    opaque: i32,
    dst: &mut BytesMut,
) -> Result<(), ClientError> {
    let start = dst.len();
    // Room for a typical header up front, so the puts below do not grow the buffer piecemeal.
    dst.reserve(FRAME_PREFIX_BYTES + 512 + args.properties.len() + body.len());
    dst.put_u64(0); // length and header-length fields, patched below
    put_header(args, opaque, dst);
    let header_bytes = dst.len() - start - FRAME_PREFIX_BYTES;
    let frame_bytes = FRAME_PREFIX_BYTES + header_bytes + body.len();
    if header_bytes > HEADER_MAX_BYTES || frame_bytes > FRAME_MAX_BYTES {
        dst.truncate(start);
        return Err(ClientError::InvalidMessage(format!(
            "cannot encode request: send frame of {frame_bytes} bytes (header {header_bytes}) \
             exceeds the protocol limit of {FRAME_MAX_BYTES} bytes"
        )));
    }
    dst.put_slice(body);
    // Both fit in 32 bits: checked against the 16 MiB frame and 24-bit header limits above.
    let length = (frame_bytes - 4) as u32;
    let type_and_header = u32::from(SerializeType::Json.byte()) << 24 | header_bytes as u32;
    dst[start..start + 4].copy_from_slice(&length.to_be_bytes());
    dst[start + 4..start + 8].copy_from_slice(&type_and_header.to_be_bytes());
    Ok(())
}

/// The JSON header, in the field order the generic encoder uses: the V2 short names `a`..`n`
/// (absent optionals left out), then Java 5.x's duplicate `bname`, then the command fields in
/// fastjson's alphabetical order.
fn put_header(args: &SendArgs<'_>, opaque: i32, dst: &mut BytesMut) {
    dst.put_slice(b"{\"code\":");
    put_int(dst, i64::from(send_request_code(args)));
    dst.put_slice(b",\"extFields\":{");
    put_field(dst, "a", args.producer_group, true);
    put_field(dst, "b", args.topic, false);
    put_field(dst, "c", args.default_topic, false);
    put_int_field(dst, "d", i64::from(args.default_topic_queue_nums));
    put_int_field(dst, "e", i64::from(args.queue_id));
    put_int_field(dst, "f", i64::from(args.sys_flag));
    put_int_field(dst, "g", args.born_timestamp_ms);
    put_int_field(dst, "h", i64::from(args.flag));
    put_field(dst, "i", args.properties, false);
    put_int_field(dst, "j", i64::from(args.reconsume_times));
    put_field(dst, "k", "false", false);
    if let Some(max) = args.max_reconsume_times {
        put_int_field(dst, "l", i64::from(max));
    }
    put_field(dst, "m", if args.batch { "true" } else { "false" }, false);
    put_field(dst, "n", args.broker_name, false);
    put_field(dst, "bname", args.broker_name, false);
    dst.put_slice(b"},\"flag\":0,\"language\":");
    put_str(dst, LanguageCode::Java.name());
    dst.put_slice(b",\"opaque\":");
    put_int(dst, i64::from(opaque));
    dst.put_slice(b",\"serializeTypeCurrentRPC\":");
    put_str(dst, SerializeType::Json.name());
    dst.put_slice(b",\"version\":");
    put_int(dst, i64::from(SERVER_VERSION));
    dst.put_u8(b'}');
}

fn put_field(dst: &mut BytesMut, key: &str, value: &str, first: bool) {
    if !first {
        dst.put_u8(b',');
    }
    put_str(dst, key);
    dst.put_u8(b':');
    put_str(dst, value);
}

/// Ext values are JSON strings even when they hold numbers, as Java sends them.
fn put_int_field(dst: &mut BytesMut, key: &str, value: i64) {
    dst.put_u8(b',');
    put_str(dst, key);
    dst.put_slice(b":\"");
    put_int(dst, value);
    dst.put_u8(b'"');
}

/// Decimal digits without going through `fmt` (no formatter state, no allocation).
fn put_int(dst: &mut BytesMut, value: i64) {
    let mut digits = [0u8; 20];
    let mut magnitude = value.unsigned_abs();
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    if value < 0 {
        dst.put_u8(b'-');
    }
    dst.put_slice(&digits[at..]);
}

/// A JSON string exactly as the generic header encoder writes it (proto owns the escaping).
fn put_str(dst: &mut BytesMut, s: &str) {
    ringmq_proto::json_text::put_string(dst, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requests::send_message;
    use bytes::Bytes;
    use ringmq_proto::frame::decode_frame;

    fn args<'a>(properties: &'a str, batch: bool, max_reconsume: Option<i32>) -> SendArgs<'a> {
        SendArgs {
            producer_group: "pg \"quoted\" \\ group",
            topic: "TopicA",
            default_topic: "TBW102",
            default_topic_queue_nums: 4,
            queue_id: 3,
            sys_flag: 0x301,
            born_timestamp_ms: 1_700_000_000_123,
            flag: -7,
            properties,
            reconsume_times: 2,
            max_reconsume_times: max_reconsume,
            batch,
            broker_name: "broker-a",
        }
    }

    /// The generic path's bytes for the same send.
    fn generic(args: &SendArgs<'_>, body: &[u8], opaque: i32) -> BytesMut {
        let mut command = send_message(args, Bytes::copy_from_slice(body));
        command.opaque = opaque;
        let mut out = BytesMut::new();
        command.encode(&mut out).unwrap();
        out
    }

    #[test]
    fn frames_are_byte_identical_to_the_generic_encoder() {
        let properties =
            "UNIQ_KEY\u{1}7F0000010001ABCDEF\u{2}WAIT\u{1}true\u{2}TAGS\u{1}a\tb\n\u{2}\
                          x\u{1}\u{7f}é\u{0}\u{1f}\u{8}\u{c}\r\u{2}";
        for (batch, max_reconsume, opaque, body) in [
            (false, None, 1, &b"hello"[..]),
            (true, Some(16), i32::MAX, &b""[..]),
            (false, Some(-1), 42, &[0u8, 1, 2, 255][..]),
        ] {
            let args = args(properties, batch, max_reconsume);
            let mut direct = BytesMut::from(&b"earlier frame"[..]);
            encode_send_frame(&args, body, opaque, &mut direct).unwrap();
            assert_eq!(
                &direct[..13],
                b"earlier frame",
                "appends after what is queued"
            );
            assert_eq!(
                &direct[13..],
                &generic(&args, body, opaque)[..],
                "batch {batch} max {max_reconsume:?}: {:?}",
                String::from_utf8_lossy(&direct[13..])
            );
        }
    }

    #[test]
    fn encoded_frames_decode_to_the_send_request() {
        let args = args("WAIT\u{1}true\u{2}", false, None);
        let mut out = BytesMut::new();
        encode_send_frame(&args, b"payload", 77, &mut out).unwrap();
        let command = decode_frame(&mut out).unwrap().unwrap();
        assert!(out.is_empty());
        assert_eq!(command.code, RequestCode::SendMessageV2.code());
        assert_eq!(command.opaque, 77);
        assert_eq!(&command.body[..], b"payload");
        assert_eq!(command.ext_fields.get("b"), Some("TopicA"));
        assert_eq!(command.ext_fields.get("g"), Some("1700000000123"));
        assert_eq!(command.ext_fields.get("h"), Some("-7"));
        assert_eq!(command.ext_fields.get("bname"), Some("broker-a"));
    }

    #[test]
    fn integers_print_like_display_at_the_extremes() {
        for value in [0, 7, -1, 10, 401, i64::MAX, i64::MIN, i64::from(i32::MIN)] {
            let mut out = BytesMut::new();
            put_int(&mut out, value);
            assert_eq!(&out[..], value.to_string().as_bytes());
        }
    }

    #[test]
    fn an_oversize_body_is_refused_and_nothing_is_appended() {
        let args = args("", false, None);
        let body = vec![0u8; FRAME_MAX_BYTES];
        let mut out = BytesMut::from(&b"queued"[..]);
        let error = encode_send_frame(&args, &body, 1, &mut out).unwrap_err();
        assert!(matches!(error, ClientError::InvalidMessage(_)), "{error}");
        assert_eq!(&out[..], b"queued");
    }
}
