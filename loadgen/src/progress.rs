//! The live progress line, printed once a second, and the per-second timeline kept for the
//! JSON result.
//!
//! ```text
//! [  12s measure] send 143,210 msg/s  17.5 MB/s  avg 0.44 ms  max 3.10 ms | failed 0 | consume 142,998 msg/s | backlog 1,204
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::stats::{LiveCounters, LiveSample};

/// One second of the run, as the progress line showed it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct TimelinePoint {
    pub elapsed_secs: f64,
    pub send_msg_per_sec: f64,
    pub send_mb_per_sec: f64,
    pub failed_per_sec: f64,
    pub consume_msg_per_sec: f64,
    pub mean_send_latency_us: f64,
    pub max_send_latency_us: u64,
    /// Acknowledged but not yet consumed (0 without consumers).
    pub backlog_messages: i64,
}

/// Turns two cumulative readings `interval_secs` apart into a timeline point.
pub fn timeline_point(
    previous: &LiveSample,
    current: &LiveSample,
    interval_secs: f64,
    elapsed_secs: f64,
    with_consumers: bool,
) -> TimelinePoint {
    let per_sec = |now: u64, before: u64| now.saturating_sub(before) as f64 / interval_secs;
    TimelinePoint {
        elapsed_secs,
        send_msg_per_sec: per_sec(current.sent_ok_messages, previous.sent_ok_messages),
        send_mb_per_sec: per_sec(current.sent_ok_bytes, previous.sent_ok_bytes) / 1e6,
        failed_per_sec: per_sec(current.failed_messages, previous.failed_messages),
        consume_msg_per_sec: per_sec(current.consumed_messages, previous.consumed_messages),
        mean_send_latency_us: if current.latency_samples == 0 {
            0.0
        } else {
            current.latency_sum_us as f64 / current.latency_samples as f64
        },
        max_send_latency_us: current.latency_max_us,
        // A consumer can see a message before its producer has processed the SEND_OK, so the
        // difference can dip below zero for a moment; a negative backlog means none.
        backlog_messages: if with_consumers {
            (current.acknowledged_messages as i64 - current.consumed_messages as i64).max(0)
        } else {
            0
        },
    }
}

/// `1234567.8` → `1,234,568`.
pub fn thousands(value: f64) -> String {
    let rounded = value.round() as i64;
    let digits = rounded.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if rounded < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The progress line for one timeline point.
pub fn format_line(point: &TimelinePoint, phase: &str, with_consumers: bool) -> String {
    let mut line = format!(
        "[{:>4.0}s {phase:<7}] send {:>9} msg/s {:>7.1} MB/s  avg {:>7.2} ms  max {:>7.2} ms | failed {}",
        point.elapsed_secs,
        thousands(point.send_msg_per_sec),
        point.send_mb_per_sec,
        point.mean_send_latency_us / 1e3,
        point.max_send_latency_us as f64 / 1e3,
        thousands(point.failed_per_sec),
    );
    if with_consumers {
        line.push_str(&format!(
            " | consume {:>9} msg/s | backlog {}",
            thousands(point.consume_msg_per_sec),
            thousands(point.backlog_messages as f64)
        ));
    }
    line
}

/// Which phase a moment of the run is in, for the progress line.
pub trait PhaseAt: Send + 'static {
    fn phase_at(&self, now: Instant) -> &'static str;
}

/// Prints the progress line every second on stderr until stopped; returns the timeline.
pub struct ProgressReporter {
    stop: Arc<AtomicBool>,
    /// Timeline points recorded so far.
    points: Arc<std::sync::atomic::AtomicUsize>,
    thread: Option<JoinHandle<Vec<TimelinePoint>>>,
}

impl ProgressReporter {
    pub fn start(
        counters: Vec<Arc<LiveCounters>>,
        with_consumers: bool,
        phase: impl PhaseAt,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stop_seen = stop.clone();
        let points = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let points_seen = points.clone();
        let thread = std::thread::Builder::new()
            .name("loadgen-progress".into())
            .spawn(move || {
                let started = Instant::now();
                let mut previous = LiveSample::default();
                let mut previous_at = started;
                let mut timeline = Vec::new();
                while !stop_seen.load(Ordering::Relaxed) {
                    // Sleep in small steps so a stop is noticed quickly.
                    let due = previous_at + Duration::from_secs(1);
                    while Instant::now() < due && !stop_seen.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    let now = Instant::now();
                    let mut current = LiveSample::default();
                    for c in &counters {
                        current.add(&c.take_sample());
                    }
                    let interval = now.duration_since(previous_at).as_secs_f64();
                    if interval < 0.2 {
                        break; // Stopped right after the previous line: nothing new to say.
                    }
                    let elapsed = now.duration_since(started).as_secs_f64();
                    let point =
                        timeline_point(&previous, &current, interval, elapsed, with_consumers);
                    eprintln!(
                        "{}",
                        format_line(&point, phase.phase_at(now), with_consumers)
                    );
                    timeline.push(point);
                    points_seen.store(timeline.len(), Ordering::Relaxed);
                    previous = current;
                    previous_at = now;
                }
                timeline
            })
            .expect("spawn the progress thread");
        Self {
            stop,
            points,
            thread: Some(thread),
        }
    }

    /// Timeline points recorded so far.
    pub fn points_recorded(&self) -> usize {
        self.points.load(Ordering::Relaxed)
    }

    /// Stops the reporter and returns the per-second timeline.
    pub fn finish(mut self) -> Vec<TimelinePoint> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map(|t| t.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for ProgressReporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1_000.0), "1,000");
        assert_eq!(thousands(1_234_567.8), "1,234,568");
        assert_eq!(thousands(-12_345.0), "-12,345");
    }

    #[test]
    fn point_from_two_samples() {
        let before = LiveSample {
            sent_ok_messages: 1_000,
            sent_ok_bytes: 128_000,
            consumed_messages: 900,
            ..LiveSample::default()
        };
        let now = LiveSample {
            sent_ok_messages: 201_000,
            sent_ok_bytes: 25_728_000,
            failed_messages: 4,
            consumed_messages: 200_000,
            acknowledged_messages: 201_000,
            latency_sum_us: 40_000,
            latency_samples: 100,
            latency_max_us: 3_100,
        };
        let p = timeline_point(&before, &now, 2.0, 12.0, true);
        assert_eq!(p.send_msg_per_sec, 100_000.0);
        assert_eq!(p.send_mb_per_sec, 12.8);
        assert_eq!(p.failed_per_sec, 2.0);
        assert_eq!(p.consume_msg_per_sec, 99_550.0);
        assert_eq!(p.mean_send_latency_us, 400.0);
        assert_eq!(p.backlog_messages, 1_000);
        let line = format_line(&p, "measure", true);
        assert!(line.contains("send   100,000 msg/s"), "{line}");
        assert!(line.contains("avg    0.40 ms"), "{line}");
        assert!(line.contains("max    3.10 ms"), "{line}");
        assert!(line.contains("backlog 1,000"), "{line}");
        assert!(!format_line(&p, "measure", false).contains("consume"));
        let ahead = LiveSample {
            consumed_messages: 10,
            acknowledged_messages: 7,
            ..now
        };
        assert_eq!(
            timeline_point(&before, &ahead, 1.0, 1.0, true).backlog_messages,
            0
        );
    }

    struct Always;
    impl PhaseAt for Always {
        fn phase_at(&self, _: Instant) -> &'static str {
            "measure"
        }
    }

    #[test]
    fn reporter_records_what_was_sent_and_stops() {
        let counters = vec![Arc::new(LiveCounters::default())];
        counters[0].add_sent(5, 500, 10);
        let reporter = ProgressReporter::start(counters, false, Always);
        // The first point comes about a second after the start: wait for it (bounded).
        let started = Instant::now();
        while reporter.points_recorded() == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no progress point"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let timeline = reporter.finish();
        let first = timeline[0];
        // The rate times its interval (the first point's elapsed time) is the 5 messages sent.
        let sent = first.send_msg_per_sec * first.elapsed_secs;
        assert!((sent - 5.0).abs() < 1e-6, "{first:?}");
        assert_eq!(first.mean_send_latency_us, 10.0);
        assert_eq!(first.max_send_latency_us, 10);
    }
}
