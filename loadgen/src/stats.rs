//! What each executor measures, and the few counters the progress line reads live.
//!
//! Histograms and failure maps are executor-local ([`ExecutorStats`], no sharing, merged at the
//! end). The live counters ([`LiveCounters`]) are relaxed atomics, one set per executor on its
//! own cache lines, written by that executor only and read once a second by the progress thread.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::latency::LatencyHistogram;

/// Everything one executor measured in the measurement window.
#[derive(Clone, Debug, Default)]
pub struct ExecutorStats {
    /// From the intended (open loop) or actual (closed loop) send time to the response.
    pub send_latency: LatencyHistogram,
    /// Open loop only: how late each send left compared with its intended time.
    pub publish_delay: LatencyHistogram,
    /// From the born time in the body to the consumer's receipt.
    pub end_to_end_latency: LatencyHistogram,
    pub sent_ok_messages: u64,
    pub sent_ok_bytes: u64,
    /// Messages in failed sends, by status (`SYSTEM_BUSY`, `FLUSH_DISK_TIMEOUT`, `TIMEOUT`, …).
    pub failed_messages_by_status: BTreeMap<String, u64>,
    pub consumed_messages: u64,
    pub consumed_bytes: u64,
    /// Open loop: measured-window messages the schedule called for that were never sent
    /// because the producers fell behind.
    pub unsent_scheduled_messages: u64,
    /// Scheduled messages (`--delay-level`, `--timer-delay-ms`): due time to the store time of
    /// the delivered record (millisecond resolution: both are broker epoch milliseconds).
    pub due_to_stored: LatencyHistogram,
    /// Scheduled messages: due time to the consumer's receipt (wall clocks of broker and load
    /// generator; both on this host in a quickstart).
    pub due_to_consumed: LatencyHistogram,
    /// Scheduled messages stored before their due time (must stay 0).
    pub early_deliveries: u64,
}

impl ExecutorStats {
    /// Records a successful send of `messages` messages of `bytes` total.
    pub fn record_send_ok(&mut self, latency_us: u64, messages: u64, bytes: u64) {
        self.send_latency.record_n_us(latency_us, messages);
        self.sent_ok_messages += messages;
        self.sent_ok_bytes += bytes;
    }

    /// Records a failed send of `messages` messages.
    pub fn record_send_failure(&mut self, status: &str, messages: u64) {
        match self.failed_messages_by_status.get_mut(status) {
            Some(n) => *n += messages,
            None => {
                self.failed_messages_by_status
                    .insert(status.to_string(), messages);
            }
        }
    }

    pub fn record_consumed(&mut self, end_to_end_us: u64, bytes: u64) {
        self.end_to_end_latency.record_us(end_to_end_us);
        self.consumed_messages += 1;
        self.consumed_bytes += bytes;
    }

    /// Records a delivered scheduled message: due and store times in epoch ms, receipt in
    /// epoch µs. A store time before the due time counts as early (and as 0 lateness).
    pub fn record_delivery(&mut self, due_ms: i64, stored_ms: i64, consumed_us: i64) {
        if stored_ms < due_ms {
            self.early_deliveries += 1;
        }
        let stored_late_us = (stored_ms - due_ms).max(0) as u64 * 1000;
        self.due_to_stored.record_us(stored_late_us);
        self.due_to_consumed
            .record_us((consumed_us - due_ms * 1000).max(0) as u64);
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &ExecutorStats) {
        self.send_latency.merge(&other.send_latency);
        self.publish_delay.merge(&other.publish_delay);
        self.end_to_end_latency.merge(&other.end_to_end_latency);
        self.sent_ok_messages += other.sent_ok_messages;
        self.sent_ok_bytes += other.sent_ok_bytes;
        for (status, n) in &other.failed_messages_by_status {
            *self
                .failed_messages_by_status
                .entry(status.clone())
                .or_default() += n;
        }
        self.consumed_messages += other.consumed_messages;
        self.consumed_bytes += other.consumed_bytes;
        self.unsent_scheduled_messages += other.unsent_scheduled_messages;
        self.due_to_stored.merge(&other.due_to_stored);
        self.due_to_consumed.merge(&other.due_to_consumed);
        self.early_deliveries += other.early_deliveries;
    }

    pub fn failed_messages(&self) -> u64 {
        self.failed_messages_by_status.values().sum()
    }
}

/// Live counters of one executor (warm-up included): sampled by the progress line.
#[derive(Debug, Default)]
#[repr(align(128))] // Own cache lines: executors never write the same line.
pub struct LiveCounters {
    sent_ok_messages: AtomicU64,
    sent_ok_bytes: AtomicU64,
    failed_messages: AtomicU64,
    consumed_messages: AtomicU64,
    /// Sends the broker answered (any status) plus oneway sends written: what consumers
    /// should eventually see.
    acknowledged_messages: AtomicU64,
    /// Sum and maximum of send latencies since the progress thread last took them.
    latency_sum_us: AtomicU64,
    latency_samples: AtomicU64,
    latency_max_us: AtomicU64,
}

impl LiveCounters {
    pub fn add_sent(&self, messages: u64, bytes: u64, latency_us: u64) {
        self.sent_ok_messages.fetch_add(messages, Ordering::Relaxed);
        self.sent_ok_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(latency_us, Ordering::Relaxed);
        self.latency_samples.fetch_add(1, Ordering::Relaxed);
        self.latency_max_us.fetch_max(latency_us, Ordering::Relaxed);
    }

    /// A send with no response to time (oneway).
    pub fn add_sent_untimed(&self, messages: u64, bytes: u64) {
        self.sent_ok_messages.fetch_add(messages, Ordering::Relaxed);
        self.sent_ok_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn add_acknowledged(&self, messages: u64) {
        self.acknowledged_messages
            .fetch_add(messages, Ordering::Relaxed);
    }

    pub fn add_failed(&self, messages: u64) {
        self.failed_messages.fetch_add(messages, Ordering::Relaxed);
    }

    pub fn add_consumed(&self, messages: u64) {
        self.consumed_messages
            .fetch_add(messages, Ordering::Relaxed);
    }

    /// Cumulative counts only (latency fields zero); does not reset anything.
    pub fn peek(&self) -> LiveSample {
        LiveSample {
            sent_ok_messages: self.sent_ok_messages.load(Ordering::Relaxed),
            sent_ok_bytes: self.sent_ok_bytes.load(Ordering::Relaxed),
            failed_messages: self.failed_messages.load(Ordering::Relaxed),
            consumed_messages: self.consumed_messages.load(Ordering::Relaxed),
            acknowledged_messages: self.acknowledged_messages.load(Ordering::Relaxed),
            ..LiveSample::default()
        }
    }

    /// Cumulative counts, and the latency sum/samples/max since the previous call (reset).
    pub fn take_sample(&self) -> LiveSample {
        LiveSample {
            sent_ok_messages: self.sent_ok_messages.load(Ordering::Relaxed),
            sent_ok_bytes: self.sent_ok_bytes.load(Ordering::Relaxed),
            failed_messages: self.failed_messages.load(Ordering::Relaxed),
            consumed_messages: self.consumed_messages.load(Ordering::Relaxed),
            acknowledged_messages: self.acknowledged_messages.load(Ordering::Relaxed),
            latency_sum_us: self.latency_sum_us.swap(0, Ordering::Relaxed),
            latency_samples: self.latency_samples.swap(0, Ordering::Relaxed),
            latency_max_us: self.latency_max_us.swap(0, Ordering::Relaxed),
        }
    }
}

/// One reading of the live counters (summed over executors by [`LiveSample::add`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LiveSample {
    pub sent_ok_messages: u64,
    pub sent_ok_bytes: u64,
    pub failed_messages: u64,
    pub consumed_messages: u64,
    pub acknowledged_messages: u64,
    pub latency_sum_us: u64,
    pub latency_samples: u64,
    pub latency_max_us: u64,
}

impl LiveSample {
    pub fn add(&mut self, other: &LiveSample) {
        self.sent_ok_messages += other.sent_ok_messages;
        self.sent_ok_bytes += other.sent_ok_bytes;
        self.failed_messages += other.failed_messages;
        self.consumed_messages += other.consumed_messages;
        self.acknowledged_messages += other.acknowledged_messages;
        self.latency_sum_us += other.latency_sum_us;
        self.latency_samples += other.latency_samples;
        self.latency_max_us = self.latency_max_us.max(other.latency_max_us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_sums_counts_and_failures_by_status() {
        let mut a = ExecutorStats::default();
        a.record_send_ok(100, 16, 16 * 128);
        a.record_send_failure("SYSTEM_BUSY", 16);
        a.record_consumed(500, 128);
        let mut b = ExecutorStats::default();
        b.record_send_ok(200, 1, 128);
        b.record_send_failure("SYSTEM_BUSY", 1);
        b.record_send_failure("TIMEOUT", 2);
        a.merge(&b);
        assert_eq!(a.sent_ok_messages, 17);
        assert_eq!(a.sent_ok_bytes, 17 * 128);
        assert_eq!(a.send_latency.count(), 17);
        assert_eq!(a.failed_messages_by_status["SYSTEM_BUSY"], 17);
        assert_eq!(a.failed_messages_by_status["TIMEOUT"], 2);
        assert_eq!(a.failed_messages(), 19);
        assert_eq!(a.consumed_messages, 1);
        assert_eq!(a.end_to_end_latency.count(), 1);
    }

    #[test]
    fn live_sample_resets_latency_but_not_counts() {
        let c = LiveCounters::default();
        c.add_sent(1, 100, 10);
        c.add_sent(1, 100, 30);
        c.add_failed(2);
        c.add_consumed(1);
        c.add_acknowledged(3);
        let first = c.take_sample();
        assert_eq!(first.acknowledged_messages, 3);
        assert_eq!(first.sent_ok_messages, 2);
        assert_eq!(first.latency_sum_us, 40);
        assert_eq!(first.latency_samples, 2);
        assert_eq!(first.latency_max_us, 30);
        assert_eq!(first.failed_messages, 2);
        let second = c.take_sample();
        assert_eq!(second.sent_ok_messages, 2);
        assert_eq!(second.latency_samples, 0);
        assert_eq!(second.latency_max_us, 0);
        let mut sum = first;
        sum.add(&second);
        assert_eq!(sum.sent_ok_messages, 4);
        assert_eq!(sum.latency_max_us, 30);
    }
}
