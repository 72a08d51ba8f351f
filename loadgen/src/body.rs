//! The load generator's message body: who sent it, which message it is, when it was born,
//! and filler bytes that prove the body arrived intact.
//!
//! Layout (little endian), [`BODY_HEADER_BYTES`] = 32 bytes, then filler up to the message size:
//!
//! | bytes | field |
//! | --- | --- |
//! | 0..4 | magic `RLG1` |
//! | 4..8 | run id (messages of other runs on the same topic are told apart and skipped) |
//! | 8..12 | producer id (global, 0..producers) |
//! | 12..16 | header check: a hash of run id, producer id, sequence and born time |
//! | 16..24 | sequence number of the message within its producer |
//! | 24..32 | born time, ns since the process clock origin ([`crate::clock`]) |
//! | 32.. | filler: a window of a fixed pseudo-random pattern, starting at `sequence % 251` |
//!
//! Because the ids are in the body, `--verify` needs no per-message state beyond one bit per
//! message, and the body check needs no copy of what was sent.

use thiserror::Error;

/// Bytes of the fixed header; the smallest message the load generator sends.
pub const BODY_HEADER_BYTES: usize = 32;
const MAGIC: [u8; 4] = *b"RLG1";
/// A prime, so consecutive sequences start the filler at different offsets.
const FILLER_ROTATIONS: usize = 251;

/// The identity of one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyHeader {
    pub run_id: u32,
    pub producer_id: u32,
    pub sequence: u64,
    pub born_ns: u64,
}

/// Why a consumed body is not a good load-generator body.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BodyError {
    #[error("body is {len} bytes, shorter than the {BODY_HEADER_BYTES}-byte header")]
    TooShort { len: usize },
    #[error("body does not start with the load generator's magic")]
    NotOurs,
    #[error("header check mismatch (producer {producer_id}, sequence {sequence})")]
    HeaderCorrupt { producer_id: u32, sequence: u64 },
    #[error("filler corrupt at byte {offset} (producer {producer_id}, sequence {sequence})")]
    FillerCorrupt {
        producer_id: u32,
        sequence: u64,
        offset: usize,
    },
}

fn header_check(h: &BodyHeader) -> u32 {
    // A multiplicative mix; not cryptographic, only to catch torn or shifted headers.
    let mut x = u64::from(h.run_id) ^ (u64::from(h.producer_id) << 32);
    x ^= h.sequence.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= h.born_ns.rotate_left(17);
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (x >> 32) as u32
}

/// Builds bodies of one size without allocating per message.
#[derive(Clone, Debug)]
pub struct BodyCodec {
    message_size_bytes: usize,
    /// `filler_len + FILLER_ROTATIONS` pseudo-random bytes; each body copies one window.
    pattern: Vec<u8>,
}

impl BodyCodec {
    /// A codec for bodies of exactly `message_size_bytes` (at least [`BODY_HEADER_BYTES`]).
    pub fn new(message_size_bytes: usize) -> Self {
        assert!(
            message_size_bytes >= BODY_HEADER_BYTES,
            "message size {message_size_bytes} below the {BODY_HEADER_BYTES}-byte header"
        );
        let filler_len = message_size_bytes - BODY_HEADER_BYTES;
        // xorshift: deterministic, so every process builds the same pattern.
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let pattern = (0..filler_len + FILLER_ROTATIONS)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        Self {
            message_size_bytes,
            pattern,
        }
    }

    /// Size of every body this codec writes.
    pub fn message_size_bytes(&self) -> usize {
        self.message_size_bytes
    }

    fn filler_window(&self, sequence: u64) -> &[u8] {
        let start = (sequence % FILLER_ROTATIONS as u64) as usize;
        &self.pattern[start..start + self.message_size_bytes - BODY_HEADER_BYTES]
    }

    /// Writes the body for `header` into `out` (cleared first).
    pub fn encode_into(&self, header: &BodyHeader, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(self.message_size_bytes);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&header.run_id.to_le_bytes());
        out.extend_from_slice(&header.producer_id.to_le_bytes());
        out.extend_from_slice(&header_check(header).to_le_bytes());
        out.extend_from_slice(&header.sequence.to_le_bytes());
        out.extend_from_slice(&header.born_ns.to_le_bytes());
        out.extend_from_slice(self.filler_window(header.sequence));
        debug_assert_eq!(out.len(), self.message_size_bytes);
    }

    /// A new body for `header`.
    pub fn encode(&self, header: &BodyHeader) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.message_size_bytes);
        self.encode_into(header, &mut out);
        out
    }
}

/// Reads the header of a body without checking the filler (enough for latency).
pub fn decode_header(body: &[u8]) -> Result<BodyHeader, BodyError> {
    if body.len() < BODY_HEADER_BYTES {
        return Err(BodyError::TooShort { len: body.len() });
    }
    if body[0..4] != MAGIC {
        return Err(BodyError::NotOurs);
    }
    let u32_at = |at: usize| u32::from_le_bytes(body[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("8 bytes"));
    let header = BodyHeader {
        run_id: u32_at(4),
        producer_id: u32_at(8),
        sequence: u64_at(16),
        born_ns: u64_at(24),
    };
    if u32_at(12) != header_check(&header) {
        return Err(BodyError::HeaderCorrupt {
            producer_id: header.producer_id,
            sequence: header.sequence,
        });
    }
    Ok(header)
}

/// Checks a whole body (header, length and filler) against what `codec` would have written.
pub fn check_body(codec: &BodyCodec, body: &[u8]) -> Result<BodyHeader, BodyError> {
    let header = decode_header(body)?;
    let expected = codec.filler_window(header.sequence);
    let filler = &body[BODY_HEADER_BYTES..];
    if filler.len() != expected.len() {
        return Err(BodyError::FillerCorrupt {
            producer_id: header.producer_id,
            sequence: header.sequence,
            offset: BODY_HEADER_BYTES + filler.len().min(expected.len()),
        });
    }
    if let Some(at) = filler.iter().zip(expected).position(|(a, b)| a != b) {
        return Err(BodyError::FillerCorrupt {
            producer_id: header.producer_id,
            sequence: header.sequence,
            offset: BODY_HEADER_BYTES + at,
        });
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(sequence: u64) -> BodyHeader {
        BodyHeader {
            run_id: 7,
            producer_id: 3,
            sequence,
            born_ns: 123_456_789 + sequence,
        }
    }

    #[test]
    fn round_trip_at_several_sizes() {
        for size in [32, 33, 128, 1024, 4096] {
            let codec = BodyCodec::new(size);
            for seq in [0, 1, 250, 251, 1_000_003] {
                let body = codec.encode(&header(seq));
                assert_eq!(body.len(), size);
                assert_eq!(check_body(&codec, &body), Ok(header(seq)));
            }
        }
    }

    #[test]
    fn consecutive_bodies_differ_in_filler() {
        let codec = BodyCodec::new(128);
        let a = codec.encode(&header(1));
        let b = codec.encode(&header(2));
        assert_ne!(a[BODY_HEADER_BYTES..], b[BODY_HEADER_BYTES..]);
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let codec = BodyCodec::new(64);
        let body = codec.encode(&header(42));
        for byte in 0..body.len() {
            for bit in 0..8 {
                let mut bad = body.clone();
                bad[byte] ^= 1 << bit;
                assert!(
                    check_body(&codec, &bad).is_err(),
                    "flip {byte}:{bit} missed"
                );
            }
        }
    }

    #[test]
    fn truncated_extended_and_foreign_bodies_are_rejected() {
        let codec = BodyCodec::new(128);
        let body = codec.encode(&header(5));
        assert_eq!(
            check_body(&codec, &body[..10]),
            Err(BodyError::TooShort { len: 10 })
        );
        assert!(matches!(
            check_body(&codec, &body[..100]),
            Err(BodyError::FillerCorrupt { offset: 100, .. })
        ));
        let mut longer = body.clone();
        longer.push(0);
        assert!(check_body(&codec, &longer).is_err());
        assert_eq!(decode_header(&[0u8; 64]), Err(BodyError::NotOurs));
    }

    #[test]
    fn encode_into_reuses_the_buffer() {
        let codec = BodyCodec::new(256);
        let mut buf = Vec::new();
        codec.encode_into(&header(1), &mut buf);
        let capacity = buf.capacity();
        codec.encode_into(&header(2), &mut buf);
        assert_eq!(buf.capacity(), capacity);
        assert_eq!(decode_header(&buf).map(|h| h.sequence), Ok(2));
    }
}
