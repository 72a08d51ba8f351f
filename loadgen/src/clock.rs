//! One monotonic clock for the whole process.
//!
//! Producers write the born time into each message body as nanoseconds since [`origin`], and
//! consumers (on any executor of the same process) subtract it from their own reading of the
//! same clock. CLOCK_MONOTONIC is shared by all threads, so born-to-consumed latency is exact to
//! the clock's resolution and immune to wall-clock steps. (RocketMQ's own `bornTimestamp` is
//! wall-clock milliseconds: too coarse for microsecond percentiles.)

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

static ORIGIN: OnceLock<Instant> = OnceLock::new();

/// The instant all `*_ns` clock readings count from (fixed on first use).
pub fn origin() -> Instant {
    *ORIGIN.get_or_init(Instant::now)
}

/// Nanoseconds since [`origin`] of `instant` (0 for instants before the origin).
pub fn ns_since_origin(instant: Instant) -> u64 {
    let nanos = instant.saturating_duration_since(origin()).as_nanos();
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

/// Nanoseconds since [`origin`] now.
pub fn now_ns() -> u64 {
    ns_since_origin(Instant::now())
}

/// The instant `ns` nanoseconds after [`origin`].
pub fn instant_at_ns(ns: u64) -> Instant {
    origin() + Duration::from_nanos(ns)
}

/// Wall-clock seconds since the Unix epoch (for file names and report headers only).
pub fn unix_now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A UTC timestamp `(year, month, day, hour, minute, second)` from Unix seconds
/// (proleptic Gregorian calendar; Howard Hinnant's days-to-civil algorithm).
pub fn utc_fields(unix_secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (unix_secs / 86_400) as i64;
    let secs_of_day = unix_secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let hour = (secs_of_day / 3_600) as u32;
    let minute = (secs_of_day % 3_600 / 60) as u32;
    let second = (secs_of_day % 60) as u32;
    (year, month, day, hour, minute, second)
}

/// `2026-11-21T12:07:45Z`.
pub fn iso8601_utc(unix_secs: u64) -> String {
    let (y, mo, d, h, mi, s) = utc_fields(unix_secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `20261121T120745Z`: sorts in time order and is safe in file names.
pub fn compact_utc(unix_secs: u64) -> String {
    let (y, mo, d, h, mi, s) = utc_fields(unix_secs);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// Wall-clock microseconds since the Unix epoch (to compare with a broker's epoch-ms due times).
pub fn unix_now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates_format_correctly() {
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00Z");
        // 2000-02-29 (leap day in a century leap year).
        assert_eq!(iso8601_utc(951_782_400), "2000-02-29T00:00:00Z");
        // 2026-11-21T12:07:45Z.
        assert_eq!(iso8601_utc(1_795_262_865), "2026-11-21T12:07:45Z");
        assert_eq!(compact_utc(1_795_262_865), "20261121T120745Z");
        // Last second of 2099-12-31.
        assert_eq!(iso8601_utc(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn origin_round_trips() {
        let _ = origin();
        let now = Instant::now();
        let ns = ns_since_origin(now);
        let back = instant_at_ns(ns);
        assert!(back <= now && now.duration_since(back) < Duration::from_micros(1));
        assert!(now_ns() >= ns);
    }
}
