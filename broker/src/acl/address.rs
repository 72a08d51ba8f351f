//! Remote-address patterns of `whiteRemoteAddress` and `globalWhiteRemoteAddresses`
//! (RocketMQ 4.x `RemoteAddressStrategyFactory`).
//!
//! Forms, as Java accepts them: blank (matches nothing), `*` / `*.*.*.*` / `*:*:*:*:*:*:*:*`
//! (matches everything), one address (IPv4 or IPv6), a comma list of addresses, a set in the
//! last IPv4 part (`192.168.1.{1,2,3}`) and a range in one IPv4 part (`192.168.1.*`,
//! `192.168.1.1-100`, `192.168.*`). As in Java, the parts after the range part are not
//! compared. IPv6 ranges are not supported (refused when the file is loaded).

use std::net::{IpAddr, Ipv4Addr};

use super::AclError;

/// A parsed address pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrPattern {
    /// A blank pattern: Java's `BlankRemoteAddressStrategy` never matches.
    Nothing,
    /// `*`: everything matches.
    Everything,
    /// Exact addresses.
    OneOf(Vec<IpAddr>),
    /// The first `prefix.len()` IPv4 parts equal `prefix` and the next one is in `low..=high`.
    Ipv4Range { prefix: Vec<u8>, low: u8, high: u8 },
}

fn bad(text: &str) -> AclError {
    AclError::Address(text.to_string())
}

fn parse_ip(text: &str) -> Result<IpAddr, AclError> {
    text.trim().parse::<IpAddr>().map_err(|_| bad(text))
}

fn parse_octet(text: &str, whole: &str) -> Result<u8, AclError> {
    text.trim().parse::<u8>().map_err(|_| bad(whole))
}

impl AddrPattern {
    /// Parses one pattern as written in plain_acl.yml.
    pub fn parse(text: &str) -> Result<AddrPattern, AclError> {
        let t = text.trim();
        if t.is_empty() {
            return Ok(AddrPattern::Nothing);
        }
        if t == "*" || t == "*.*.*.*" || t == "*:*:*:*:*:*:*:*" {
            return Ok(AddrPattern::Everything);
        }
        if t.ends_with('}') {
            return Self::parse_last_part_set(t);
        }
        if t.contains(',') {
            let addrs = t.split(',').map(parse_ip).collect::<Result<_, _>>()?;
            return Ok(AddrPattern::OneOf(addrs));
        }
        if t.contains('*') || t.contains('-') {
            return Self::parse_range(t);
        }
        Ok(AddrPattern::OneOf(vec![parse_ip(t)?]))
    }

    /// `a.b.c.{x,y,z}`.
    fn parse_last_part_set(t: &str) -> Result<AddrPattern, AclError> {
        let open = t.rfind('{').ok_or_else(|| bad(t))?;
        let head = &t[..open];
        if !head.ends_with('.') || head.matches('.').count() != 3 {
            return Err(bad(t));
        }
        let addrs = t[open + 1..t.len() - 1]
            .split(',')
            .map(|last| parse_ip(&format!("{head}{}", last.trim())))
            .collect::<Result<_, _>>()?;
        Ok(AddrPattern::OneOf(addrs))
    }

    /// An IPv4 pattern with `*` or `low-high` in one part after the first.
    fn parse_range(t: &str) -> Result<AddrPattern, AclError> {
        if t.contains(':') {
            return Err(bad(t));
        }
        let parts: Vec<&str> = t.split('.').map(str::trim).collect();
        if parts.len() > 4 || parts.len() < 2 {
            return Err(bad(t));
        }
        for index in 1..parts.len() {
            let (low, high) = match parts[index] {
                "*" => (0, 255),
                p if p.contains('-') && !p.starts_with('-') => {
                    let (a, b) = p.split_once('-').ok_or_else(|| bad(t))?;
                    (parse_octet(a, t)?, parse_octet(b, t)?)
                }
                _ => continue,
            };
            if low > high {
                return Err(bad(t));
            }
            let prefix = parts[..index]
                .iter()
                .map(|p| parse_octet(p, t))
                .collect::<Result<_, _>>()?;
            return Ok(AddrPattern::Ipv4Range { prefix, low, high });
        }
        Err(bad(t))
    }

    /// Whether a connection from `ip` matches.
    pub fn matches(&self, ip: IpAddr) -> bool {
        match self {
            AddrPattern::Nothing => false,
            AddrPattern::Everything => true,
            AddrPattern::OneOf(addrs) => addrs.iter().any(|a| same_ip(*a, ip)),
            AddrPattern::Ipv4Range { prefix, low, high } => match as_v4(ip) {
                Some(v4) => {
                    let octets = v4.octets();
                    octets[..prefix.len()] == prefix[..]
                        && (*low..=*high).contains(&octets[prefix.len()])
                }
                None => false,
            },
        }
    }
}

/// IPv4, or the IPv4 inside an IPv4-mapped IPv6 address (a dual-stack socket reports those).
fn as_v4(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    }
}

fn same_ip(pattern: IpAddr, ip: IpAddr) -> bool {
    match (as_v4(pattern), as_v4(ip)) {
        (Some(a), Some(b)) => a == b,
        _ => pattern == ip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn java_forms_match_as_in_java() {
        let star = AddrPattern::parse("192.168.0.*").unwrap();
        assert!(star.matches(ip("192.168.0.7")));
        assert!(!star.matches(ip("192.168.1.7")));
        let short = AddrPattern::parse("10.10.*").unwrap();
        assert!(short.matches(ip("10.10.3.4")));
        assert!(!short.matches(ip("10.11.3.4")));
        let range = AddrPattern::parse("192.168.1.1-100").unwrap();
        assert!(range.matches(ip("192.168.1.100")));
        assert!(!range.matches(ip("192.168.1.101")));
        let set = AddrPattern::parse("127.0.0.{1,2}").unwrap();
        assert!(set.matches(ip("127.0.0.2")));
        assert!(!set.matches(ip("127.0.0.3")));
        let list = AddrPattern::parse("127.0.0.1,10.0.0.1").unwrap();
        assert!(list.matches(ip("10.0.0.1")));
        assert!(AddrPattern::parse("*").unwrap().matches(ip("::1")));
        assert!(!AddrPattern::parse("  ").unwrap().matches(ip("127.0.0.1")));
        let one = AddrPattern::parse("127.0.0.1").unwrap();
        assert!(one.matches(ip("::ffff:127.0.0.1")));
        assert!(AddrPattern::parse("::1").unwrap().matches(ip("::1")));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in [
            "300.1.1.1",
            "1.2.3",
            "192.168.1.100-1",
            "192.168.{1,2}",
            "fe80::*",
            "abc",
        ] {
            assert!(AddrPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
