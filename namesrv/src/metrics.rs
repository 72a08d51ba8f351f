//! The name server's metrics: requests by code, live brokers, topics. The serving thread
//! publishes with relaxed atomic stores and adds; the `/metrics` thread (ringmq-metrics) reads
//! them and encodes with `prometheus-client`, so a scrape never waits on the serving thread.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use ringmq_proto::{RequestCode, ResponseCode};

/// Counts published by the serving thread.
#[derive(Debug)]
pub struct NamesrvMetrics {
    /// Requests per known code, by index in [`RequestCode::ALL`]; the last slot counts codes
    /// this version does not know.
    requests: Box<[AtomicU64]>,
    /// Requests answered with a code other than SUCCESS, same indexing.
    failures: Box<[AtomicU64]>,
    live_brokers: AtomicI64,
    topics: AtomicI64,
}

impl Default for NamesrvMetrics {
    fn default() -> Self {
        let slots = RequestCode::ALL.len() + 1;
        NamesrvMetrics {
            requests: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            failures: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            live_brokers: AtomicI64::new(0),
            topics: AtomicI64::new(0),
        }
    }
}

fn slot(code: RequestCode) -> usize {
    RequestCode::ALL
        .iter()
        .position(|known| *known == code)
        .unwrap_or(RequestCode::ALL.len())
}

fn slot_label(index: usize) -> String {
    RequestCode::ALL
        .get(index)
        .map_or_else(|| "unknown".to_string(), |code| code.code().to_string())
}

impl NamesrvMetrics {
    pub fn on_request(&self, code: RequestCode, response_code: i32) {
        let index = slot(code);
        self.requests[index].fetch_add(1, Ordering::Relaxed);
        if response_code != ResponseCode::Success.code() {
            self.failures[index].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn set_registry(&self, live_brokers: usize, topics: usize) {
        let to_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.live_brokers
            .store(to_i64(live_brokers), Ordering::Relaxed);
        self.topics.store(to_i64(topics), Ordering::Relaxed);
    }

    fn per_code(&self, counts: &[AtomicU64]) -> Vec<(Vec<(&'static str, String)>, u64)> {
        counts
            .iter()
            .enumerate()
            .map(|(i, c)| (i, c.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .map(|(i, n)| {
                (
                    vec![
                        ("node_type", "nameserver".to_string()),
                        ("request_code", slot_label(i)),
                    ],
                    n,
                )
            })
            .collect()
    }
}

#[derive(Debug)]
struct NamesrvCollector(Arc<NamesrvMetrics>);

impl Collector for NamesrvCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let families = [
            (
                "ringmq_namesrv_requests",
                "Requests served, by request code.",
                &self.0.requests,
            ),
            (
                "ringmq_namesrv_request_failures",
                "Requests answered with a code other than SUCCESS, by request code.",
                &self.0.failures,
            ),
        ];
        for (name, help, counts) in families {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (labels, value) in self.0.per_code(counts) {
                ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
            }
        }
        let gauges = [
            (
                "ringmq_namesrv_live_brokers",
                "Brokers registered and not expired.",
                &self.0.live_brokers,
            ),
            (
                "ringmq_namesrv_topics",
                "Topics with queues on a registered broker.",
                &self.0.topics,
            ),
        ];
        for (name, help, value) in gauges {
            let labels = vec![("node_type", "nameserver".to_string())];
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(value.load(Ordering::Relaxed))
                .encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// The text a scrape returns.
pub fn render(metrics: &Arc<NamesrvMetrics>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(NamesrvCollector(Arc::clone(metrics))));
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_requests_by_code_exactly() {
        let metrics = Arc::new(NamesrvMetrics::default());
        for _ in 0..7 {
            metrics.on_request(RequestCode::GetRouteinfoByTopic, 0);
        }
        metrics.on_request(RequestCode::GetRouteinfoByTopic, 17);
        metrics.on_request(RequestCode::from_code(99_999), 3);
        metrics.set_registry(2, 5);
        let text = render(&metrics);
        assert!(
            text.contains(
                r#"ringmq_namesrv_requests_total{node_type="nameserver",request_code="105"} 8"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"ringmq_namesrv_request_failures_total{node_type="nameserver",request_code="105"} 1"#
        ));
        assert!(text.contains(
            r#"ringmq_namesrv_requests_total{node_type="nameserver",request_code="unknown"} 1"#
        ));
        assert!(text.contains(r#"ringmq_namesrv_live_brokers{node_type="nameserver"} 2"#));
        assert!(text.contains(r#"ringmq_namesrv_topics{node_type="nameserver"} 5"#));
    }
}
