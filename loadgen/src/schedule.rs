//! When each send is meant to happen, and which sends count.
//!
//! Open loop: the total rate is split evenly over the producers, and producer `i` of `n` sends
//! message `k` at `start + (i + k·n) / rate`, so the producers interleave instead of sending in
//! bursts. Send latency is measured from that *intended* time, so when the broker stalls the
//! messages that should have gone out during the stall carry the stall in their latency
//! (coordinated omission is not hidden); how late the sender itself was is recorded separately
//! as the publish delay. Closed loop has no schedule: each producer sends when its previous send
//! is answered (sync) or when an in-flight slot is free (async).

use std::time::Duration;

/// The send times of one producer in an open-loop run, in ns on the process clock.
#[derive(Clone, Debug)]
pub struct OpenLoopSchedule {
    first_ns: u64,
    interval_ns: f64,
    next_index: u64,
}

impl OpenLoopSchedule {
    /// The schedule of producer `producer_index` of `producer_count` sharing `total_rate`
    /// sends per second from `start_ns`. A batch send is one send: pass the batch rate.
    pub fn new(
        start_ns: u64,
        total_rate_per_sec: f64,
        producer_index: u32,
        producer_count: u32,
    ) -> Self {
        assert!(total_rate_per_sec > 0.0, "open-loop rate must be positive");
        assert!(
            producer_index < producer_count,
            "producer index out of range"
        );
        let spacing_ns = 1e9 / total_rate_per_sec;
        Self {
            first_ns: start_ns + (spacing_ns * f64::from(producer_index)) as u64,
            interval_ns: spacing_ns * f64::from(producer_count),
            next_index: 0,
        }
    }

    /// The intended time of the next send; advances the schedule.
    pub fn next_intended_ns(&mut self) -> u64 {
        let at = self.first_ns + (self.interval_ns * self.next_index as f64) as u64;
        self.next_index += 1;
        at
    }

    /// Sends taken from the schedule so far.
    pub fn issued(&self) -> u64 {
        self.next_index
    }

    /// Scheduled sends not yet taken whose intended time is before `end_ns`: what a producer
    /// that fell behind never sent. Their latency would have been at least `end - intended`,
    /// so the report counts them rather than letting them vanish.
    pub fn remaining_before(&self, end_ns: u64) -> u64 {
        if end_ns <= self.first_ns {
            return 0;
        }
        let due = ((end_ns - self.first_ns) as f64 / self.interval_ns).ceil() as u64;
        due.saturating_sub(self.next_index)
    }
}

/// The phases of a run on the process clock: warm-up (not recorded), measurement, and the
/// drain after producers stop (consumers catch up; their end-to-end latencies still count for
/// messages born in the measured window).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunWindow {
    pub start_ns: u64,
    pub measure_start_ns: u64,
    /// `None` for a run bounded by message count: it ends when the producers are done.
    pub measure_end_ns: Option<u64>,
}

impl RunWindow {
    pub fn new(start_ns: u64, warmup: Duration, duration: Option<Duration>) -> Self {
        let measure_start_ns = start_ns + warmup.as_nanos() as u64;
        Self {
            start_ns,
            measure_start_ns,
            measure_end_ns: duration.map(|d| measure_start_ns + d.as_nanos() as u64),
        }
    }

    /// Whether a send that started (or was due) at `at_ns` belongs to the measurement.
    pub fn is_measured(&self, at_ns: u64) -> bool {
        at_ns >= self.measure_start_ns && self.measure_end_ns.is_none_or(|end| at_ns < end)
    }

    /// Whether a duration-bounded run has passed its end at `now_ns`.
    pub fn is_over(&self, now_ns: u64) -> bool {
        self.measure_end_ns.is_some_and(|end| now_ns >= end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producers_interleave_evenly() {
        // 1,000 msg/s over 4 producers: one send every 1 ms overall, 4 ms per producer.
        let mut all: Vec<u64> = (0..4)
            .flat_map(|i| {
                let mut s = OpenLoopSchedule::new(1_000, 1_000.0, i, 4);
                (0..5)
                    .map(move |_| s.next_intended_ns())
                    .collect::<Vec<_>>()
            })
            .collect();
        all.sort_unstable();
        let expected: Vec<u64> = (0..20).map(|k| 1_000 + k * 1_000_000).collect();
        assert_eq!(all, expected);
    }

    #[test]
    fn unsent_scheduled_sends_are_counted() {
        // 1,000/s from t=0: sends due at 0, 1 ms, 2 ms, …
        let mut s = OpenLoopSchedule::new(0, 1_000.0, 0, 1);
        assert_eq!(s.remaining_before(10_000_000), 10);
        for _ in 0..4 {
            s.next_intended_ns();
        }
        assert_eq!(s.remaining_before(10_000_000), 6);
        assert_eq!(s.remaining_before(10_000_001), 7);
        assert_eq!(s.remaining_before(0), 0);
        for _ in 0..20 {
            s.next_intended_ns();
        }
        assert_eq!(s.remaining_before(10_000_000), 0);
    }

    #[test]
    fn long_schedules_do_not_drift() {
        let mut s = OpenLoopSchedule::new(0, 3.0, 0, 1);
        let mut last = 0;
        for _ in 0..3_000_001 {
            last = s.next_intended_ns();
        }
        // 3,000,000 intervals of 1/3 s = 1,000,000 s, to within a microsecond.
        assert!(last.abs_diff(1_000_000_000_000_000) < 1_000, "{last}");
        assert_eq!(s.issued(), 3_000_001);
    }

    #[test]
    fn warmup_and_end_bound_the_measurement() {
        let w = RunWindow::new(
            100,
            Duration::from_nanos(50),
            Some(Duration::from_nanos(10)),
        );
        assert!(!w.is_measured(149));
        assert!(w.is_measured(150));
        assert!(w.is_measured(159));
        assert!(!w.is_measured(160));
        assert!(!w.is_over(159));
        assert!(w.is_over(160));
        let open_ended = RunWindow::new(0, Duration::ZERO, None);
        assert!(open_ended.is_measured(u64::MAX));
        assert!(!open_ended.is_over(u64::MAX));
    }
}
