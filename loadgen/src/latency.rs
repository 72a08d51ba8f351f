//! Latency histograms in microseconds and the percentile summary every report prints.
//!
//! Each executor records into its own [`LatencyHistogram`]; the histograms are merged once at
//! the end of a run, so recording is never shared between threads.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The largest latency a histogram tracks: one hour. Larger values are clamped to it (and
/// still counted), so a stall never disappears from the report.
pub const LATENCY_MAX_US: u64 = 3_600_000_000;

/// Three significant digits: a p99 of 1,234 µs is reported as 1,234 µs ± 1.
const SIGNIFICANT_DIGITS: u8 = 3;

/// An HDR histogram of latencies in microseconds (1 µs to [`LATENCY_MAX_US`]).
#[derive(Clone, Debug)]
pub struct LatencyHistogram {
    histogram: Histogram<u64>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        let histogram = Histogram::new_with_bounds(1, LATENCY_MAX_US, SIGNIFICANT_DIGITS)
            .expect("constant histogram bounds are valid");
        Self { histogram }
    }

    /// Records one latency; values above [`LATENCY_MAX_US`] are clamped, 0 µs counts as 1 µs
    /// (the histogram's resolution).
    pub fn record_us(&mut self, latency_us: u64) {
        self.histogram.saturating_record(latency_us.max(1));
    }

    /// Records the same latency `count` times (a batch acknowledged by one response).
    pub fn record_n_us(&mut self, latency_us: u64, count: u64) {
        self.histogram.saturating_record_n(latency_us.max(1), count);
    }

    /// Adds every sample of `other` into this histogram.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        // Both histograms have identical bounds, so addition cannot fail.
        self.histogram
            .add(&other.histogram)
            .expect("histograms with identical bounds add");
    }

    /// Number of recorded samples.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The percentile set of the reports (OpenMessaging Benchmark's set plus p90).
    pub fn summary(&self) -> PercentileSummary {
        let h = &self.histogram;
        if h.is_empty() {
            return PercentileSummary::default();
        }
        PercentileSummary {
            count: h.len(),
            min_us: h.min(),
            mean_us: h.mean(),
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p99_9_us: h.value_at_quantile(0.999),
            p99_99_us: h.value_at_quantile(0.9999),
            max_us: h.max(),
        }
    }
}

/// Percentiles of one latency histogram, in microseconds. All zero when nothing was recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PercentileSummary {
    pub count: u64,
    pub min_us: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p99_9_us: u64,
    pub p99_99_us: u64,
    pub max_us: u64,
}

impl PercentileSummary {
    /// One line: `p50 123 | p90 … | max … µs (n=…)`.
    pub fn one_line(&self) -> String {
        format!(
            "p50 {} | p90 {} | p99 {} | p99.9 {} | p99.99 {} | max {} us (n={})",
            self.p50_us,
            self.p90_us,
            self.p99_us,
            self.p99_9_us,
            self.p99_99_us,
            self.max_us,
            self.count
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_samples_give_expected_percentiles() {
        let mut h = LatencyHistogram::new();
        for us in 1..=10_000 {
            h.record_us(us);
        }
        let s = h.summary();
        assert_eq!(s.count, 10_000);
        assert_eq!(s.min_us, 1);
        // Three significant digits: values are exact to within 0.1 %.
        assert!((4_995..=5_005).contains(&s.p50_us), "{s:?}");
        assert!((8_990..=9_010).contains(&s.p90_us), "{s:?}");
        assert!((9_890..=9_910).contains(&s.p99_us), "{s:?}");
        assert!((9_980..=10_010).contains(&s.p99_9_us), "{s:?}");
        assert!((9_990..=10_010).contains(&s.max_us), "{s:?}");
    }

    #[test]
    fn a_single_stall_shows_in_max_and_p99_99() {
        let mut h = LatencyHistogram::new();
        h.record_n_us(100, 9_990);
        h.record_n_us(2_000_000, 10);
        let s = h.summary();
        assert_eq!(s.p99_us, 100);
        assert!(s.max_us >= 1_999_000, "{s:?}");
        assert!(s.p99_99_us >= 1_999_000, "{s:?}");
    }

    #[test]
    fn values_beyond_the_bound_are_clamped_not_dropped() {
        let mut h = LatencyHistogram::new();
        h.record_us(u64::MAX);
        h.record_us(0);
        let s = h.summary();
        assert_eq!(s.count, 2);
        assert_eq!(s.min_us, 1);
        assert!(s.max_us >= LATENCY_MAX_US - LATENCY_MAX_US / 1000);
    }

    #[test]
    fn merge_adds_counts_and_keeps_extremes() {
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        a.record_n_us(10, 5);
        b.record_n_us(1_000, 5);
        a.merge(&b);
        let s = a.summary();
        assert_eq!(s.count, 10);
        assert_eq!(s.min_us, 10);
        assert!((999..=1_001).contains(&s.max_us));
        assert_eq!(b.count(), 5);
    }

    #[test]
    fn empty_histogram_summarises_to_zeroes() {
        assert_eq!(
            LatencyHistogram::new().summary(),
            PercentileSummary::default()
        );
    }
}
