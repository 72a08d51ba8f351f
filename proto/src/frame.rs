//! Frame layout (reference §1.1): `length` (4), serialize type (1) + header length (3), header,
//! body. `length` counts everything after itself.
//!
//! Decoding is incremental and check-then-parse (as mini-redis does): the decoder first looks
//! at the 8-byte prefix, returns `Ok(None)` without touching the buffer until the whole frame
//! is there, and only then parses the header. The body is split off the read buffer without
//! copying.

use bytes::{BufMut, BytesMut};

use crate::command::{RemotingCommand, SerializeType};
use crate::error::{EncodeError, FrameError};
use crate::serialize::{binary, json, DecodedHeader};

/// The largest frame accepted or produced, counting the 4-byte length field itself, as Netty's
/// `LengthFieldBasedFrameDecoder` in Java's `NettyDecoder` counts it
/// (`com.rocketmq.remoting.frameMaxLength`).
pub const FRAME_MAX_BYTES: usize = 16 * 1024 * 1024;

/// The length field plus the serialize-type/header-length field.
pub const FRAME_PREFIX_BYTES: usize = 8;

/// The header length is the low 24 bits of its field.
pub const HEADER_MAX_BYTES: usize = 0xFF_FFFF;

/// Takes one whole frame off the front of `src`.
///
/// * `Ok(None)`: `src` does not hold a whole frame yet; nothing was consumed. Read more.
/// * `Ok(Some(command))`: exactly one frame was consumed; `command.body` shares `src`'s
///   allocation (so a body kept for long pins that read buffer: copy it if it must outlive
///   the connection's buffers, e.g. in a cache).
/// * `Err(_)`: the stream is corrupt (oversize, bad lengths, bad header). Nothing was consumed;
///   the caller must close the connection, since there is no way to find the next frame.
pub fn decode_frame(src: &mut BytesMut) -> Result<Option<RemotingCommand>, FrameError> {
    let Some(prefix) = src.get(..FRAME_PREFIX_BYTES) else {
        // Fewer than 8 bytes: a complete length field can already be judged (too small or
        // oversize), so a hostile peer is refused without waiting for more.
        return check_length_only(src);
    };
    let length = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    let frame_bytes = checked_frame_bytes(length)?;
    let type_byte = prefix[4];
    let header_bytes =
        usize::from(prefix[5]) << 16 | usize::from(prefix[6]) << 8 | usize::from(prefix[7]);
    let available_bytes = frame_bytes - FRAME_PREFIX_BYTES;
    if header_bytes > available_bytes {
        return Err(FrameError::HeaderLengthExceedsFrame {
            header_bytes,
            available_bytes,
        });
    }
    let serialize_type =
        SerializeType::from_byte(type_byte).ok_or(FrameError::UnknownSerializeType(type_byte))?;
    if src.len() < frame_bytes {
        return Ok(None);
    }

    let header_end = FRAME_PREFIX_BYTES + header_bytes;
    let header_slice = &src[FRAME_PREFIX_BYTES..header_end];
    let header = match serialize_type {
        SerializeType::Json => json::decode(header_slice)?,
        SerializeType::RocketMq => binary::decode(header_slice)?,
    };

    // Parsed: now consume exactly this frame. The split keeps the body in src's allocation.
    let mut frame = src.split_to(frame_bytes);
    let body = frame.split_off(header_end).freeze();
    Ok(Some(into_command(header, serialize_type, body)))
}

/// With fewer than 8 bytes buffered, reject an already-visible bad length, else wait.
fn check_length_only(src: &BytesMut) -> Result<Option<RemotingCommand>, FrameError> {
    if let Some(len) = src.get(..4) {
        checked_frame_bytes(i32::from_be_bytes([len[0], len[1], len[2], len[3]]))?;
    }
    Ok(None)
}

/// The whole frame size (length field included) for a length field value, or why it is bad.
fn checked_frame_bytes(length: i32) -> Result<usize, FrameError> {
    if length < 4 {
        return Err(FrameError::LengthTooSmall { length });
    }
    let frame_bytes = length as u64 + 4; // non-negative, checked above
    if frame_bytes > FRAME_MAX_BYTES as u64 {
        return Err(FrameError::TooLarge {
            frame_bytes,
            max_bytes: FRAME_MAX_BYTES,
        });
    }
    Ok(frame_bytes as usize)
}

fn into_command(
    h: DecodedHeader,
    serialize_type: SerializeType,
    body: bytes::Bytes,
) -> RemotingCommand {
    RemotingCommand {
        code: h.code,
        language: h.language,
        version: h.version,
        opaque: h.opaque,
        flag: h.flag,
        remark: h.remark,
        ext_fields: h.ext_fields,
        serialize_type,
        body,
    }
}

impl RemotingCommand {
    /// Appends this command as one whole frame to `dst`, header in `self.serialize_type`.
    /// On error nothing is appended.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        // Refuse an oversize body before reserving room for it.
        if FRAME_PREFIX_BYTES + self.body.len() > FRAME_MAX_BYTES {
            return Err(EncodeError::FrameTooLarge {
                frame_bytes: FRAME_PREFIX_BYTES + self.body.len(),
                max_bytes: FRAME_MAX_BYTES,
            });
        }
        dst.reserve(FRAME_PREFIX_BYTES + 128 + self.body.len());
        self.encode_head(dst)?;
        dst.put_slice(&self.body);
        Ok(())
    }

    /// Appends everything of the frame except the body (whose length the frame's length field
    /// does count). The caller sends `self.body` right after; this lets a large body (a pull
    /// response read from the log) go out by vectored write instead of being copied.
    /// On error nothing is appended.
    pub fn encode_head(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let start = dst.len();
        dst.put_u64(0); // length and header-length fields, patched below
        if let Err(e) = self.encode_header_fields(dst) {
            dst.truncate(start);
            return Err(e);
        }
        let header_bytes = dst.len() - start - FRAME_PREFIX_BYTES;
        if header_bytes > HEADER_MAX_BYTES {
            dst.truncate(start);
            return Err(EncodeError::HeaderTooLarge { header_bytes });
        }
        let frame_bytes = FRAME_PREFIX_BYTES + header_bytes + self.body.len();
        if frame_bytes > FRAME_MAX_BYTES {
            dst.truncate(start);
            return Err(EncodeError::FrameTooLarge {
                frame_bytes,
                max_bytes: FRAME_MAX_BYTES,
            });
        }
        // Both fit in 32 bits: frame_bytes <= 16 MiB, header_bytes <= 24 bits.
        let length = (frame_bytes - 4) as u32;
        let type_and_header = u32::from(self.serialize_type.byte()) << 24 | header_bytes as u32;
        dst[start..start + 4].copy_from_slice(&length.to_be_bytes());
        dst[start + 4..start + 8].copy_from_slice(&type_and_header.to_be_bytes());
        Ok(())
    }

    fn encode_header_fields(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        match self.serialize_type {
            SerializeType::Json => {
                json::encode(self, dst);
                Ok(())
            }
            SerializeType::RocketMq => binary::encode(self, dst),
        }
    }
}
