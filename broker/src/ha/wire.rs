//! The HA stream's frames (ringmq's own protocol, one TCP connection per (slave, shard)).
//! Pure: bytes in, frames out. The layout is documented byte by byte in
//! docs/storage-format.md §6.
//!
//! Every frame: `LENGTH u32` (bytes after this field) `KIND u8` then the kind's fields, all
//! integers big-endian.

use thiserror::Error;

/// First field of HELLO: "RHA1".
pub const HELLO_MAGIC: u32 = 0x5248_4131;
/// The only version spoken so far.
pub const HA_VERSION: u16 = 1;
/// LENGTH + KIND.
pub const FRAME_HEADER_BYTES: usize = 5;
/// Largest DATA payload a master sends in one frame (bytes of log).
pub const DATA_CHUNK_MAX_BYTES: usize = 1024 * 1024;
/// Largest frame either side accepts: a full DATA chunk plus its fields.
pub const FRAME_MAX_BYTES: usize = DATA_CHUNK_MAX_BYTES + 64;
/// Bytes of log before the slave's end whose CRC the HELLO carries (divergence check).
pub const TAIL_CHECK_BYTES: u64 = 4096;

const KIND_HELLO: u8 = 1;
const KIND_WELCOME: u8 = 2;
const KIND_REFUSE: u8 = 3;
const KIND_DATA: u8 = 4;
const KIND_ACK: u8 = 5;

/// Why a master refuses a slave (REFUSE's CODE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseCode {
    /// HELLO's magic or version is not this one.
    Version = 1,
    /// The slave runs another shard count.
    ShardCount = 2,
    /// The slave dialled shard k's port with another shard id.
    WrongShard = 3,
    /// The slave holds bytes the master does not (a shorter or different master log).
    Diverged = 4,
    /// The slave's end is below what the master still retains.
    BehindRetention = 5,
    /// The broker dialled is not a master.
    NotMaster = 6,
}

impl RefuseCode {
    fn from_u16(v: u16) -> Option<RefuseCode> {
        use RefuseCode::*;
        [
            Version,
            ShardCount,
            WrongShard,
            Diverged,
            BehindRetention,
            NotMaster,
        ]
        .into_iter()
        .find(|c| *c as u16 == v)
    }
}

/// What a slave says first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    pub shard_count: u16,
    pub shard_id: u16,
    /// The slave's log end (global offset): the master streams from here.
    pub end: u64,
    /// `[tail_from, tail_from + tail_len)` are the slave's last bytes, `tail_crc` their CRC32.
    pub tail_from: u64,
    pub tail_len: u32,
    pub tail_crc: u32,
}

/// One HA frame, borrowing DATA's bytes from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    Hello(Hello),
    /// The master accepts: its shard count and id and how far its log is written.
    Welcome {
        shard_count: u16,
        shard_id: u16,
        master_written: u64,
    },
    /// The master refuses; the text names the offsets or counts involved.
    Refuse {
        code: RefuseCode,
        text: &'a str,
    },
    /// Log bytes starting at global `offset` (empty = heartbeat); `master_written` is the
    /// master's written end when they were sent (the slave's lag reference).
    Data {
        offset: u64,
        master_written: u64,
        bytes: &'a [u8],
    },
    /// The slave holds everything below `end` by its own flush mode.
    Ack {
        end: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    #[error("HA frame of {0} bytes exceeds the {FRAME_MAX_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("unknown HA frame kind {0}")]
    UnknownKind(u8),
    #[error("HA frame kind {kind} has {len} bytes; its fields need {need}")]
    Short { kind: u8, len: usize, need: usize },
    #[error("REFUSE with unknown code {0}")]
    UnknownRefuse(u16),
    #[error("REFUSE text is not UTF-8")]
    RefuseText,
    #[error("HELLO magic {0:#x} is not RHA1")]
    BadMagic(u32),
}

fn be_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// From a frame's first 5 bytes: (payload length after KIND, KIND). Checked against
/// [`FRAME_MAX_BYTES`] before anything is read, so a peer cannot make us allocate more.
pub fn decode_header(head: &[u8; FRAME_HEADER_BYTES]) -> Result<(usize, u8), WireError> {
    let len = be_u32(head, 0) as usize;
    if !(1..=FRAME_MAX_BYTES).contains(&len) {
        return Err(WireError::TooLarge(len));
    }
    Ok((len - 1, head[4]))
}

/// Decodes one frame's payload (what follows KIND).
pub fn decode_payload(kind: u8, p: &[u8]) -> Result<Frame<'_>, WireError> {
    let need = match kind {
        KIND_HELLO => 34,
        KIND_WELCOME => 12,
        KIND_REFUSE => 2,
        KIND_DATA => 16,
        KIND_ACK => 8,
        other => return Err(WireError::UnknownKind(other)),
    };
    if p.len() < need || (kind != KIND_REFUSE && kind != KIND_DATA && p.len() != need) {
        return Err(WireError::Short {
            kind,
            len: p.len(),
            need,
        });
    }
    Ok(match kind {
        KIND_HELLO => {
            let magic = be_u32(p, 0);
            if magic != HELLO_MAGIC || be_u16(p, 4) != HA_VERSION {
                return Err(WireError::BadMagic(magic));
            }
            Frame::Hello(Hello {
                shard_count: be_u16(p, 6),
                shard_id: be_u16(p, 8),
                end: be_u64(p, 10),
                tail_from: be_u64(p, 18),
                tail_len: be_u32(p, 26),
                tail_crc: be_u32(p, 30),
            })
        }
        KIND_WELCOME => Frame::Welcome {
            shard_count: be_u16(p, 0),
            shard_id: be_u16(p, 2),
            master_written: be_u64(p, 4),
        },
        KIND_REFUSE => Frame::Refuse {
            code: RefuseCode::from_u16(be_u16(p, 0))
                .ok_or(WireError::UnknownRefuse(be_u16(p, 0)))?,
            text: std::str::from_utf8(&p[2..]).map_err(|_| WireError::RefuseText)?,
        },
        KIND_DATA => Frame::Data {
            offset: be_u64(p, 0),
            master_written: be_u64(p, 8),
            bytes: &p[16..],
        },
        _ => Frame::Ack { end: be_u64(p, 0) },
    })
}

impl Frame<'_> {
    /// Appends the whole frame (LENGTH, KIND, fields) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
        let kind = match self {
            Frame::Hello(h) => {
                out.extend_from_slice(&HELLO_MAGIC.to_be_bytes());
                out.extend_from_slice(&HA_VERSION.to_be_bytes());
                out.extend_from_slice(&h.shard_count.to_be_bytes());
                out.extend_from_slice(&h.shard_id.to_be_bytes());
                out.extend_from_slice(&h.end.to_be_bytes());
                out.extend_from_slice(&h.tail_from.to_be_bytes());
                out.extend_from_slice(&h.tail_len.to_be_bytes());
                out.extend_from_slice(&h.tail_crc.to_be_bytes());
                KIND_HELLO
            }
            Frame::Welcome {
                shard_count,
                shard_id,
                master_written,
            } => {
                out.extend_from_slice(&shard_count.to_be_bytes());
                out.extend_from_slice(&shard_id.to_be_bytes());
                out.extend_from_slice(&master_written.to_be_bytes());
                KIND_WELCOME
            }
            Frame::Refuse { code, text } => {
                out.extend_from_slice(&(*code as u16).to_be_bytes());
                out.extend_from_slice(text.as_bytes());
                KIND_REFUSE
            }
            Frame::Data {
                offset,
                master_written,
                bytes,
            } => {
                out.extend_from_slice(&offset.to_be_bytes());
                out.extend_from_slice(&master_written.to_be_bytes());
                out.extend_from_slice(bytes);
                KIND_DATA
            }
            Frame::Ack { end } => {
                out.extend_from_slice(&end.to_be_bytes());
                KIND_ACK
            }
        };
        let len = (out.len() - start - 4) as u32;
        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
        out[start + 4] = kind;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(frame: Frame<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        frame.encode(&mut out);
        let head: [u8; 5] = out[..5].try_into().unwrap();
        let (len, kind) = decode_header(&head).unwrap();
        assert_eq!(len, out.len() - 5);
        assert_eq!(decode_payload(kind, &out[5..]).unwrap(), frame);
        out
    }

    #[test]
    fn every_frame_round_trips() {
        round_trip(Frame::Hello(Hello {
            shard_count: 4,
            shard_id: 3,
            end: 3 << 48 | 77,
            tail_from: 3 << 48,
            tail_len: 77,
            tail_crc: 0xdead_beef,
        }));
        round_trip(Frame::Welcome {
            shard_count: 2,
            shard_id: 1,
            master_written: 9,
        });
        round_trip(Frame::Refuse {
            code: RefuseCode::Diverged,
            text: "slave 10 > master 5",
        });
        round_trip(Frame::Data {
            offset: 1,
            master_written: 4,
            bytes: b"abc",
        });
        round_trip(Frame::Ack { end: u64::MAX });
    }

    #[test]
    fn golden_ack_and_data_bytes() {
        let ack = round_trip(Frame::Ack { end: 0x0102 });
        assert_eq!(ack, [0, 0, 0, 9, 5, 0, 0, 0, 0, 0, 0, 1, 2]);
        let data = round_trip(Frame::Data {
            offset: 7,
            master_written: 8,
            bytes: &[0xaa],
        });
        assert_eq!(
            data,
            [0, 0, 0, 18, 4, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 8, 0xaa]
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert_eq!(
            decode_header(&[0xff, 0, 0, 0, 4]),
            Err(WireError::TooLarge(0xff00_0000))
        );
        assert_eq!(decode_header(&[0, 0, 0, 0, 4]), Err(WireError::TooLarge(0)));
        assert_eq!(decode_payload(9, &[]), Err(WireError::UnknownKind(9)));
        assert!(matches!(
            decode_payload(KIND_ACK, &[1, 2]),
            Err(WireError::Short { .. })
        ));
        assert!(matches!(
            decode_payload(KIND_HELLO, &[0; 34]),
            Err(WireError::BadMagic(0))
        ));
        assert_eq!(
            decode_payload(KIND_REFUSE, &[0, 99]),
            Err(WireError::UnknownRefuse(99))
        );
        assert_eq!(
            decode_payload(KIND_REFUSE, &[0, 1, 0xff]),
            Err(WireError::RefuseText)
        );
    }
}
