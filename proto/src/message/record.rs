//! The stored record of reference §3.1: what the commit log holds and what a pull body carries.
//!
//! Layout (big-endian, IPv4 hosts, V1 magic): TOTALSIZE 4, MAGICCODE 4, BODYCRC 4, QUEUEID 4,
//! FLAG 4, QUEUEOFFSET 8, PHYSICALOFFSET 8, SYSFLAG 4, BORNTIMESTAMP 8, BORNHOST 8, STORETIMESTAMP 8,
//! STOREHOST 8, RECONSUMETIMES 4, PREPARED TRANSACTION OFFSET 8, BODYLEN 4 + BODY,
//! TOPICLEN 1 + TOPIC, PROPLEN 2 + PROPERTIES. Each IPv6 host adds 12 bytes, V2 adds 1 (2-byte topic
//! length).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

use super::{sysflag, MAGIC_V1, MAGIC_V2, MAX_PROPERTIES_LEN, MAX_TOPIC_LEN_V1};

/// Byte position of BODYCRC.
pub const BODY_CRC_POS: usize = 8;
/// Byte position of QUEUEOFFSET.
pub const QUEUE_OFFSET_POS: usize = 20;
/// Byte position of PHYSICALOFFSET.
pub const PHYSICAL_OFFSET_POS: usize = 28;
/// Byte position of SYSFLAG.
pub const SYS_FLAG_POS: usize = 36;
/// Byte position of BORNHOST.
pub const BORN_HOST_POS: usize = 48;
/// Smallest record that can exist: V1, IPv4 hosts, empty body, topic and properties.
pub const MIN_RECORD_LEN: usize = super::RECORD_OVERHEAD_V1_IPV4;

/// Which of the two record layouts a record uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Magic {
    /// One-byte topic length (what ringmq always writes).
    V1,
    /// Two-byte topic length (Java 5.x for topics longer than 127 bytes).
    V2,
}

impl Magic {
    /// The 4-byte magic code.
    pub fn code(self) -> u32 {
        match self {
            Magic::V1 => MAGIC_V1,
            Magic::V2 => MAGIC_V2,
        }
    }

    /// Parses a magic code; `None` for anything but V1 and V2 (the blank filler included).
    pub fn from_code(code: u32) -> Option<Magic> {
        match code {
            MAGIC_V1 => Some(Magic::V1),
            MAGIC_V2 => Some(Magic::V2),
            _ => None,
        }
    }

    fn topic_len_size(self) -> usize {
        match self {
            Magic::V1 => 1,
            Magic::V2 => 2,
        }
    }
}

/// Why a record could not be encoded or decoded. Offsets are relative to the record start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The buffer ends before the record does; read more or treat the tail as torn.
    #[error("record truncated: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    /// MAGICCODE is neither V1 nor V2.
    #[error("bad record magic {0:#010x}")]
    BadMagic(u32),
    /// TOTALSIZE is below the minimum record size or negative.
    #[error("bad record total size {0}")]
    BadTotalSize(i32),
    /// A length field points outside TOTALSIZE, or the fields do not add up to TOTALSIZE.
    #[error("record field {field} inconsistent at byte {offset}")]
    Inconsistent { field: &'static str, offset: usize },
    /// The stored BODYCRC does not match the body.
    #[error("record body crc mismatch: stored {stored:#x}, computed {computed:#x}")]
    BodyCrcMismatch { stored: u32, computed: u32 },
    /// Topic longer than 127 bytes cannot be written with magic V1.
    #[error("topic is {0} bytes, V1 allows at most 127")]
    TopicTooLong(usize),
    /// Properties longer than 32767 bytes (MESSAGE_ILLEGAL in RocketMQ).
    #[error("properties are {0} bytes, at most 32767 allowed")]
    PropertiesTooLong(usize),
    /// Body longer than an i32 can say.
    #[error("body is {0} bytes, too long for a record")]
    BodyTooLong(usize),
    /// ringmq writes IPv4 hosts only (ali-ons decodes 4-byte hosts only).
    #[error("host {0} is IPv6; records are written with IPv4 hosts")]
    Ipv6Host(SocketAddr),
    /// The caller's output buffer is smaller than [`Record::encoded_len`].
    #[error("output buffer is {have} bytes, record needs {need}")]
    BufferTooSmall { need: usize, have: usize },
}

/// BODYCRC of a body: CRC32 masked to 31 bits, as RocketMQ stores it.
pub fn body_crc(body: &[u8]) -> u32 {
    crc32fast::hash(body) & 0x7FFF_FFFF
}

/// A stored record's fields. Borrowed slices make decoding copy-free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub queue_id: i32,
    pub flag: i32,
    pub queue_offset: i64,
    pub physical_offset: i64,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host: SocketAddr,
    pub store_timestamp: i64,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body: &'a [u8],
    /// Topic bytes (UTF-8 by convention; not validated so decoding never fails on it).
    pub topic: &'a [u8],
    /// The properties string (reference §3.4).
    pub properties: &'a [u8],
}

/// A record decoded from bytes, with the framing fields encoding computes itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodedRecord<'a> {
    pub total_size: usize,
    pub magic: Magic,
    pub body_crc: u32,
    pub record: Record<'a>,
}

impl Record<'_> {
    /// Bytes [`Record::encode`] writes: 91 + body + topic + properties (V1, IPv4 hosts).
    pub fn encoded_len(&self) -> Result<usize, RecordError> {
        self.validate()?;
        Ok(super::RECORD_OVERHEAD_V1_IPV4
            + self.body.len()
            + self.topic.len()
            + self.properties.len())
    }

    fn validate(&self) -> Result<(), RecordError> {
        if self.topic.len() > MAX_TOPIC_LEN_V1 {
            return Err(RecordError::TopicTooLong(self.topic.len()));
        }
        if self.properties.len() > MAX_PROPERTIES_LEN {
            return Err(RecordError::PropertiesTooLong(self.properties.len()));
        }
        // The whole record must fit TOTALSIZE (an i32).
        if self.body.len() > i32::MAX as usize - 64 * 1024 {
            return Err(RecordError::BodyTooLong(self.body.len()));
        }
        for host in [self.born_host, self.store_host] {
            if !matches!(host, SocketAddr::V4(_)) {
                return Err(RecordError::Ipv6Host(host));
            }
        }
        Ok(())
    }

    /// Writes the record (magic V1, IPv4 hosts, BODYCRC computed here) at the start of `out`
    /// and returns the bytes written. The IPv6 bits of `sys_flag` are cleared, since the hosts
    /// written are 4-byte ones.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, RecordError> {
        let len = self.encoded_len()?;
        if out.len() < len {
            return Err(RecordError::BufferTooSmall {
                need: len,
                have: out.len(),
            });
        }
        let sys_flag = self.sys_flag & !(sysflag::BORNHOST_V6 | sysflag::STOREHOST_V6);
        let mut w = Writer {
            buf: &mut out[..len],
            pos: 0,
        };
        w.put_u32(len as u32);
        w.put_u32(MAGIC_V1);
        w.put_u32(body_crc(self.body));
        w.put_u32(self.queue_id as u32);
        w.put_u32(self.flag as u32);
        w.put_u64(self.queue_offset as u64);
        w.put_u64(self.physical_offset as u64);
        w.put_u32(sys_flag as u32);
        w.put_u64(self.born_timestamp as u64);
        w.put_host_v4(self.born_host);
        w.put_u64(self.store_timestamp as u64);
        w.put_host_v4(self.store_host);
        w.put_u32(self.reconsume_times as u32);
        w.put_u64(self.prepared_transaction_offset as u64);
        w.put_u32(self.body.len() as u32);
        w.put_bytes(self.body);
        w.put_bytes(&[self.topic.len() as u8]);
        w.put_bytes(self.topic);
        w.put_bytes(&(self.properties.len() as u16).to_be_bytes());
        w.put_bytes(self.properties);
        assert_eq!(w.pos, len, "encoded bytes must equal encoded_len");
        Ok(len)
    }

    /// The topic as text (lossy only if a peer wrote invalid UTF-8).
    pub fn topic_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.topic)
    }
}

struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn put_bytes(&mut self, b: &[u8]) {
        self.buf[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
    }
    fn put_u32(&mut self, v: u32) {
        self.put_bytes(&v.to_be_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.put_bytes(&v.to_be_bytes());
    }
    fn put_host_v4(&mut self, host: SocketAddr) {
        let SocketAddr::V4(v4) = host else {
            unreachable!("validate() rejects IPv6 hosts before encoding")
        };
        self.put_bytes(&v4.ip().octets());
        self.put_u32(u32::from(v4.port()));
    }
}

/// Reads TOTALSIZE and MAGICCODE at the start of `buf` without decoding the rest: what a log
/// scanner needs to find the next record or the end-of-segment filler.
pub fn peek_header(buf: &[u8]) -> Result<(i32, u32), RecordError> {
    if buf.len() < 8 {
        return Err(RecordError::Truncated {
            need: 8,
            have: buf.len(),
        });
    }
    let size = i32::from_be_bytes(buf[0..4].try_into().expect("4 bytes"));
    let magic = u32::from_be_bytes(buf[4..8].try_into().expect("4 bytes"));
    Ok((size, magic))
}

/// Checks the record's frame before any field is read: a known MAGICCODE, a TOTALSIZE no
/// smaller than the smallest possible record, and all TOTALSIZE bytes present in `buf`.
/// Returns the magic and TOTALSIZE as a length.
fn frame(buf: &[u8]) -> Result<(Magic, usize), RecordError> {
    let (size, code) = peek_header(buf)?;
    let magic = Magic::from_code(code).ok_or(RecordError::BadMagic(code))?;
    if size < super::RECORD_OVERHEAD_V1_IPV4 as i32 {
        return Err(RecordError::BadTotalSize(size));
    }
    let total_size = size as usize;
    if buf.len() < total_size {
        return Err(RecordError::Truncated {
            need: total_size,
            have: buf.len(),
        });
    }
    Ok((magic, total_size))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], RecordError> {
        if self.buf.len() - self.pos < n {
            return Err(RecordError::Inconsistent {
                field,
                offset: self.pos,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u16(&mut self, field: &'static str) -> Result<u16, RecordError> {
        Ok(u16::from_be_bytes(
            self.take(2, field)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self, field: &'static str) -> Result<u32, RecordError> {
        Ok(u32::from_be_bytes(
            self.take(4, field)?.try_into().expect("4 bytes"),
        ))
    }
    fn i32(&mut self, field: &'static str) -> Result<i32, RecordError> {
        Ok(self.u32(field)? as i32)
    }
    fn i64(&mut self, field: &'static str) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(
            self.take(8, field)?.try_into().expect("8 bytes"),
        ))
    }
    /// BODYLEN then BODY; a negative BODYLEN is reported at the length field itself.
    fn body(&mut self) -> Result<&'a [u8], RecordError> {
        let body_len = self.i32("BODYLEN")?;
        if body_len < 0 {
            return Err(RecordError::Inconsistent {
                field: "BODYLEN",
                offset: self.pos - 4,
            });
        }
        self.take(body_len as usize, "BODY")
    }
    /// TOPICLEN then TOPIC; the length field is one byte or two depending on the magic version.
    fn topic(&mut self, magic: Magic) -> Result<&'a [u8], RecordError> {
        let topic_len = match magic.topic_len_size() {
            1 => usize::from(self.take(1, "TOPICLEN")?[0]),
            _ => usize::from(self.u16("TOPICLEN")?),
        };
        self.take(topic_len, "TOPIC")
    }
    /// PROPLEN then PROPERTIES; PROPLEN is a signed short on the wire, so a high bit is an error.
    fn properties(&mut self) -> Result<&'a [u8], RecordError> {
        let prop_len = self.u16("PROPLEN")? as i16;
        if prop_len < 0 {
            return Err(RecordError::Inconsistent {
                field: "PROPLEN",
                offset: self.pos - 2,
            });
        }
        self.take(prop_len as usize, "PROPERTIES")
    }
    fn host(&mut self, v6: bool, field: &'static str) -> Result<SocketAddr, RecordError> {
        if v6 {
            let ip: [u8; 16] = self.take(16, field)?.try_into().expect("16 bytes");
            let port = self.i32(field)?;
            Ok(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port as u16))
        } else {
            let ip: [u8; 4] = self.take(4, field)?.try_into().expect("4 bytes");
            let port = self.i32(field)?;
            Ok(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(ip),
                port as u16,
            )))
        }
    }
}

impl<'a> DecodedRecord<'a> {
    /// Decodes the record at the start of `buf` (which may hold more after it), checking that
    /// every length stays inside TOTALSIZE and that the fields add up to it exactly. BODYCRC is
    /// read but not checked: call [`DecodedRecord::verify_body_crc`] (recovery does).
    pub fn decode(buf: &'a [u8]) -> Result<DecodedRecord<'a>, RecordError> {
        let (magic, total_size) = frame(buf)?;
        let mut r = Reader {
            buf: &buf[..total_size],
            pos: 8,
        };
        let body_crc = r.u32("BODYCRC")?;
        let queue_id = r.i32("QUEUEID")?;
        let flag = r.i32("FLAG")?;
        let queue_offset = r.i64("QUEUEOFFSET")?;
        let physical_offset = r.i64("PHYSICALOFFSET")?;
        let sys_flag = r.i32("SYSFLAG")?;
        let born_timestamp = r.i64("BORNTIMESTAMP")?;
        let born_host = r.host(sys_flag & sysflag::BORNHOST_V6 != 0, "BORNHOST")?;
        let store_timestamp = r.i64("STORETIMESTAMP")?;
        let store_host = r.host(sys_flag & sysflag::STOREHOST_V6 != 0, "STOREHOST")?;
        let reconsume_times = r.i32("RECONSUMETIMES")?;
        let prepared_transaction_offset = r.i64("PREPAREDTRANSACTIONOFFSET")?;
        let body = r.body()?;
        let topic = r.topic(magic)?;
        let properties = r.properties()?;
        if r.pos != total_size {
            return Err(RecordError::Inconsistent {
                field: "TOTALSIZE",
                offset: r.pos,
            });
        }
        Ok(DecodedRecord {
            total_size,
            magic,
            body_crc,
            record: Record {
                queue_id,
                flag,
                queue_offset,
                physical_offset,
                sys_flag,
                born_timestamp,
                born_host,
                store_timestamp,
                store_host,
                reconsume_times,
                prepared_transaction_offset,
                body,
                topic,
                properties,
            },
        })
    }

    /// Checks BODYCRC against the body.
    pub fn verify_body_crc(&self) -> Result<(), RecordError> {
        let computed = body_crc(self.record.body);
        if computed != self.body_crc {
            return Err(RecordError::BodyCrcMismatch {
                stored: self.body_crc,
                computed,
            });
        }
        Ok(())
    }
}

/// Byte position of STORETIMESTAMP for a record with these sysflag bits.
pub fn store_timestamp_pos(sys_flag: i32) -> usize {
    let born_host_len = if sys_flag & sysflag::BORNHOST_V6 != 0 {
        20
    } else {
        8
    };
    BORN_HOST_POS + born_host_len
}
