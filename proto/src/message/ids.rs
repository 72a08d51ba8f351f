//! Message ids (reference §4) and the consume-queue tag hash (§3.8).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Java `String.hashCode()` of `s` over its UTF-16 code units (`h = 31*h + c`, 32-bit wrap),
/// sign-extended: the consume queue's tagsCode. `TagA` → 2598919.
pub fn tag_hash(s: &str) -> i64 {
    let mut h: i32 = 0;
    for unit in s.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    i64::from(h)
}

fn push_hex(bytes: &[u8], out: &mut String) {
    for b in bytes {
        out.push(HEX_UPPER[usize::from(b >> 4)] as char);
        out.push(HEX_UPPER[usize::from(b & 0xF)] as char);
    }
}

/// Why an id string could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Length is neither 32 (IPv4) nor 56 (IPv6) hex characters.
    #[error("message id has {0} characters, expected 32 or 56")]
    BadLength(usize),
    /// A character is not a hex digit.
    #[error("message id has a non-hex character at {0}")]
    BadHex(usize),
}

/// The parts of an offsetMsgId: the store host and the commit-log offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetMsgId {
    pub store_host: SocketAddr,
    pub commit_log_offset: i64,
}

/// offsetMsgId (`MessageDecoder.createMessageId`): upper-case hex of store IP (4 or 16 bytes),
/// port (int) and commit-log offset (long) — 32 characters for IPv4, 56 for IPv6.
pub fn encode_offset_msg_id(store_host: SocketAddr, commit_log_offset: i64) -> String {
    let mut out = String::with_capacity(56);
    match store_host.ip() {
        IpAddr::V4(ip) => push_hex(&ip.octets(), &mut out),
        IpAddr::V6(ip) => push_hex(&ip.octets(), &mut out),
    }
    push_hex(&u32::from(store_host.port()).to_be_bytes(), &mut out);
    push_hex(&commit_log_offset.to_be_bytes(), &mut out);
    out
}

fn decode_hex(s: &str, out: &mut [u8]) -> Result<(), IdError> {
    let b = s.as_bytes();
    for (i, o) in out.iter_mut().enumerate() {
        let nib = |at: usize| -> Result<u8, IdError> {
            (b[at] as char)
                .to_digit(16)
                .map(|d| d as u8)
                .ok_or(IdError::BadHex(at))
        };
        *o = nib(2 * i)? << 4 | nib(2 * i + 1)?;
    }
    Ok(())
}

/// Decodes an offsetMsgId (either case of hex digits).
pub fn decode_offset_msg_id(id: &str) -> Result<OffsetMsgId, IdError> {
    let ip_len = match id.len() {
        32 => 4,
        56 => 16,
        n => return Err(IdError::BadLength(n)),
    };
    let mut raw = [0u8; 28];
    decode_hex(id, &mut raw[..ip_len + 12])?;
    let ip = if ip_len == 4 {
        IpAddr::V4(Ipv4Addr::from(
            <[u8; 4]>::try_from(&raw[..4]).expect("4 bytes"),
        ))
    } else {
        IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(&raw[..16]).expect("16 bytes"),
        ))
    };
    let port = u32::from_be_bytes(raw[ip_len..ip_len + 4].try_into().expect("4 bytes"));
    let offset = i64::from_be_bytes(raw[ip_len + 4..ip_len + 12].try_into().expect("8 bytes"));
    Ok(OffsetMsgId {
        store_host: SocketAddr::new(ip, port as u16),
        commit_log_offset: offset,
    })
}

/// Milliseconds since the start of the (UTC) month containing `now_ms`.
fn start_of_month_ms(now_ms: i64) -> i64 {
    let days = now_ms.div_euclid(86_400_000);
    let (year, month, _) = civil_from_days(days);
    days_from_civil(year, month, 1) * 86_400_000
}

// Howard Hinnant's civil-calendar algorithms (public-domain formulas).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Generates UNIQ_KEY values in the Java layout (reference §4.1): IP, pid (16 bits), a
/// per-process constant, milliseconds since the start of the month, a wrapping 16-bit counter.
#[derive(Debug, Clone)]
pub struct UniqKeyGenerator {
    prefix: Vec<u8>,
    counter: u16,
}

impl UniqKeyGenerator {
    /// `process_constant` stands in for Java's class-loader hash: any per-process random value.
    pub fn new(ip: IpAddr, pid: u32, process_constant: i32) -> Self {
        let mut prefix = match ip {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        prefix.extend_from_slice(&(pid as u16).to_be_bytes());
        prefix.extend_from_slice(&process_constant.to_be_bytes());
        UniqKeyGenerator { prefix, counter: 0 }
    }

    /// The next id (32 upper-case hex characters for IPv4, 56 for IPv6) at wall time `now_ms`.
    pub fn next_id(&mut self, now_ms: i64) -> String {
        let since_month = (now_ms - start_of_month_ms(now_ms)) as i32;
        let counter = self.counter;
        self.counter = self.counter.wrapping_add(1);
        let mut out = String::with_capacity(2 * (self.prefix.len() + 6));
        push_hex(&self.prefix, &mut out);
        push_hex(&since_month.to_be_bytes(), &mut out);
        push_hex(&counter.to_be_bytes(), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_of_month_is_calendar_correct() {
        // 2024-02-29T12:00:00Z → 2024-02-01T00:00:00Z = 1706745600000.
        assert_eq!(start_of_month_ms(1_709_208_000_000), 1_706_745_600_000);
        // 1970-01-01 itself.
        assert_eq!(start_of_month_ms(0), 0);
        // 2026-12-31T23:59:59.999Z → 2026-12-01 = 1796083200000.
        assert_eq!(start_of_month_ms(1_798_761_599_999), 1_796_083_200_000);
    }
}
