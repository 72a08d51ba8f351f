//! Java's per-minute, per-hour and per-day statistics (`BrokerStatsManager`, answered by
//! VIEW_BROKER_STATS_DATA): running totals sampled periodically; a window's figures are the
//! totals now minus the newest sample at least a window old.

use std::collections::{HashMap, VecDeque};

use ringmq_proto::body::{BrokerStatsData, BrokerStatsItem};

/// How often the sampler runs.
pub const SAMPLE_INTERVAL_MS: u64 = 10_000;
pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;

/// A statistic's identity: Java's stats name (`TOPIC_PUT_NUMS`) and key (`topic`,
/// `topic@group`).
pub type StatKey = (&'static str, String);

/// Running totals of every statistic at one instant: key → (value, times).
pub type Totals = HashMap<StatKey, (u64, u64)>;

/// One ring of samples with its spacing and length.
#[derive(Debug)]
struct Ring {
    spacing_ms: i64,
    keep: usize,
    samples: VecDeque<(i64, Totals)>,
}

impl Ring {
    fn new(spacing_ms: i64, window_ms: i64) -> Ring {
        // One more sample than the window holds, so a sample a full window old exists.
        let keep = usize::try_from(window_ms / spacing_ms).unwrap_or(1) + 1;
        Ring {
            spacing_ms,
            keep,
            samples: VecDeque::with_capacity(keep),
        }
    }

    fn offer(&mut self, now_ms: i64, totals: &Totals) {
        let due = self
            .samples
            .back()
            .is_none_or(|(at, _)| now_ms - at >= self.spacing_ms);
        if due {
            if self.samples.len() == self.keep {
                self.samples.pop_front();
            }
            self.samples.push_back((now_ms, totals.clone()));
        }
    }

    /// The newest sample taken at or before `at_ms`.
    fn at_or_before(&self, at_ms: i64) -> Option<&(i64, Totals)> {
        self.samples.iter().rev().find(|(t, _)| *t <= at_ms)
    }
}

/// The sample rings behind the minute, hour and day windows.
#[derive(Debug)]
pub struct History {
    start_ms: i64,
    minute: Ring,
    hour: Ring,
    day: Ring,
}

impl History {
    /// History of counters that were all zero at `start_ms`.
    pub fn new(start_ms: i64) -> History {
        History {
            start_ms,
            minute: Ring::new(SAMPLE_INTERVAL_MS as i64, MINUTE_MS),
            hour: Ring::new(MINUTE_MS, HOUR_MS),
            day: Ring::new(HOUR_MS, DAY_MS),
        }
    }

    pub fn record(&mut self, now_ms: i64, totals: &Totals) {
        self.minute.offer(now_ms, totals);
        self.hour.offer(now_ms, totals);
        self.day.offer(now_ms, totals);
    }

    /// The three windows of `key`, given its totals `now`.
    pub fn view(&self, key: &StatKey, now: (u64, u64), now_ms: i64) -> BrokerStatsData {
        BrokerStatsData {
            stats_minute: self.item(&self.minute, MINUTE_MS, key, now, now_ms),
            stats_hour: self.item(&self.hour, HOUR_MS, key, now, now_ms),
            stats_day: self.item(&self.day, DAY_MS, key, now, now_ms),
        }
    }

    fn item(
        &self,
        ring: &Ring,
        window_ms: i64,
        key: &StatKey,
        now: (u64, u64),
        now_ms: i64,
    ) -> BrokerStatsItem {
        // Before the first full window the baseline is the start, when every counter was 0.
        let (base_ms, base) = match ring.at_or_before(now_ms - window_ms) {
            Some((at, totals)) => (*at, totals.get(key).copied().unwrap_or((0, 0))),
            None => (self.start_ms, (0, 0)),
        };
        let value = now.0.saturating_sub(base.0);
        let times = now.1.saturating_sub(base.1);
        let elapsed_s = ((now_ms - base_ms).max(1) as f64) / 1000.0;
        BrokerStatsItem {
            sum: value as i64,
            tps: value as f64 / elapsed_s,
            avgpt: if times == 0 {
                0.0
            } else {
                value as f64 / times as f64
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(value: u64, times: u64) -> Totals {
        let mut t = Totals::new();
        t.insert(("TOPIC_PUT_NUMS", "T".to_string()), (value, times));
        t
    }

    #[test]
    fn windows_subtract_the_sample_a_window_old() {
        let key = ("TOPIC_PUT_NUMS", "T".to_string());
        let mut history = History::new(0);
        // 10 messages per 10 s sample, in requests of 2.
        for i in 0..=12 {
            history.record(i * 10_000, &totals(i as u64 * 10, i as u64 * 5));
        }
        let now_ms = 120_000;
        let view = history.view(&key, (120, 60), now_ms);
        assert_eq!(view.stats_minute.sum, 60);
        assert!((view.stats_minute.tps - 1.0).abs() < 1e-9);
        assert!((view.stats_minute.avgpt - 2.0).abs() < 1e-9);
        // Less than an hour of history: the hour and the day count from the start.
        assert_eq!(view.stats_hour.sum, 120);
        assert_eq!(view.stats_day.sum, 120);
    }
}
