//! The Prometheus view of [`BrokerStats`]: RocketMQ 5's metric names and labels
//! (`BrokerMetricsConstant`) for messages, throughput, lag, DLQ and RPC latency, and ringmq's
//! own engine metrics. Encoded by the `prometheus-client` crate on each scrape from the atomics
//! the shards publish: the counts are exact at the instant of the scrape.

use std::collections::BTreeMap;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::counters::{AtomicHistogram, GroupKey, StatCounter};
use super::BrokerStats;

type Labels = Vec<(&'static str, String)>;

/// The broker's metric collector (registered once; encodes on every scrape).
#[derive(Debug)]
pub struct BrokerCollector {
    stats: Arc<BrokerStats>,
}

impl BrokerCollector {
    pub fn new(stats: Arc<BrokerStats>) -> BrokerCollector {
        BrokerCollector { stats }
    }

    fn base(&self) -> Labels {
        vec![
            ("cluster", self.stats.node.cluster.clone()),
            ("node_type", "broker".to_string()),
            ("node_id", self.stats.node.node_id.clone()),
        ]
    }
}

/// A registry holding only the broker collector.
pub fn broker_registry(stats: Arc<BrokerStats>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(BrokerCollector::new(stats)));
    registry
}

fn counter_family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, u64)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in rows {
        ConstCounter::new(*value).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauge_family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, i64)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in rows {
        ConstGauge::new(*value).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

/// `scale` divides bounds and sum (µs → s: 1e6, µs → ms: 1e3, bytes: 1).
fn histogram_family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, &AtomicHistogram)],
    scale: f64,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, histogram) in rows {
        let (counts, sum) = histogram.read();
        // The encoder writes an upper bound of f64::MAX as `+Inf` and accumulates the counts.
        let buckets: Vec<(f64, u64)> = histogram
            .bounds()
            .iter()
            .map(|b| *b as f64 / scale)
            .chain(std::iter::once(f64::MAX))
            .zip(counts.iter().copied())
            .collect();
        let count = counts.iter().sum();
        family.encode_family(labels)?.encode_histogram::<Labels>(
            sum as f64 / scale,
            count,
            &buckets,
            None,
        )?;
    }
    Ok(())
}

impl BrokerCollector {
    /// Sums a per-topic counter over shards.
    fn by_topic(
        &self,
        pick: fn(&super::counters::TopicCounters) -> &StatCounter,
    ) -> Vec<(Labels, u64)> {
        let mut sums: BTreeMap<String, u64> = BTreeMap::new();
        for shard in self.stats.shards() {
            for (topic, counters) in shard.topics() {
                *sums.entry(topic).or_default() += pick(&counters).read().0;
            }
        }
        sums.into_iter()
            .map(|(topic, value)| {
                let mut labels = self.base();
                labels.push(("topic", topic));
                labels.push(("message_type", "normal".to_string()));
                (labels, value)
            })
            .collect()
    }

    /// Sums a per-(topic, group) counter over shards.
    fn by_group(
        &self,
        pick: fn(&super::counters::GroupCounters) -> &StatCounter,
    ) -> Vec<(Labels, u64)> {
        let mut sums: BTreeMap<GroupKey, u64> = BTreeMap::new();
        for shard in self.stats.shards() {
            for (key, counters) in shard.groups() {
                *sums.entry(key).or_default() += pick(&counters).read().0;
            }
        }
        sums.into_iter()
            .map(|((topic, group), value)| (self.group_labels(topic, group), value))
            .collect()
    }

    fn group_labels(&self, topic: String, group: String) -> Labels {
        let mut labels = self.base();
        labels.push(("topic", topic));
        labels.push(("consumer_group", group));
        labels
    }

    fn encode_lag(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut messages: BTreeMap<GroupKey, u64> = BTreeMap::new();
        let mut latency: BTreeMap<GroupKey, u64> = BTreeMap::new();
        for shard in self.stats.shards() {
            for (key, lag) in shard.lag() {
                *messages.entry(key.clone()).or_default() += lag.messages;
                let oldest = latency.entry(key).or_default();
                *oldest = (*oldest).max(lag.latency_ms);
            }
        }
        let rows = |map: BTreeMap<GroupKey, u64>| -> Vec<(Labels, i64)> {
            map.into_iter()
                .map(|((t, g), v)| (self.group_labels(t, g), v as i64))
                .collect()
        };
        gauge_family(
            encoder,
            "rocketmq_consumer_lag_messages",
            "Messages stored but not yet committed by the consumer group.",
            &rows(messages),
        )?;
        gauge_family(
            encoder,
            "rocketmq_consumer_lag_latency",
            "Age in ms of the group's oldest unconsumed message.",
            &rows(latency),
        )
    }

    fn encode_rpc(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let all: Vec<_> = self.stats.shards().iter().flat_map(|s| s.rpc()).collect();
        let rows: Vec<(Labels, &AtomicHistogram)> = all
            .iter()
            .map(|((request, response), histogram)| {
                let mut labels = self.base();
                labels.push(("request_code", request.to_string()));
                labels.push(("response_code", response.to_string()));
                (labels, histogram.as_ref())
            })
            .collect();
        histogram_family(
            encoder,
            "rocketmq_rpc_latency",
            "Request handling time in ms by request and response code (per shard series).",
            &rows,
            1_000.0,
        )
    }
}

impl Collector for BrokerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        counter_family(
            &mut encoder,
            "rocketmq_messages_in",
            "Messages stored, by topic.",
            &self.by_topic(|c| &c.put_nums),
        )?;
        counter_family(
            &mut encoder,
            "rocketmq_throughput_in",
            "Message body bytes stored, by topic.",
            &self.by_topic(|c| &c.put_size),
        )?;
        counter_family(
            &mut encoder,
            "rocketmq_messages_out",
            "Messages delivered by pulls, by topic and consumer group.",
            &self.by_group(|c| &c.get_nums),
        )?;
        counter_family(
            &mut encoder,
            "rocketmq_throughput_out",
            "Message body bytes delivered by pulls, by topic and consumer group.",
            &self.by_group(|c| &c.get_size),
        )?;
        counter_family(
            &mut encoder,
            "rocketmq_send_to_dlq_messages",
            "Messages moved to a consumer group's dead-letter queue.",
            &self.by_group(|c| &c.dlq_nums),
        )?;
        self.encode_lag(&mut encoder)?;
        self.encode_rpc(&mut encoder)?;
        self.encode_engine(&mut encoder)
    }
}

impl BrokerCollector {
    fn shard_labels(&self, index: usize) -> Labels {
        let mut labels = self.base();
        labels.push(("shard", index.to_string()));
        labels
    }

    fn encode_engine(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let shards = self.stats.shards();
        let engine_rows = |pick: fn(&super::counters::EngineStats) -> &AtomicHistogram| {
            shards
                .iter()
                .enumerate()
                .map(|(i, s)| (self.shard_labels(i), pick(&s.engine)))
                .collect::<Vec<_>>()
        };
        histogram_family(
            encoder,
            "ringmq_fdatasync_latency_seconds",
            "Commit-log fdatasync duration per shard.",
            &engine_rows(|e| &e.fdatasync_us),
            1e6,
        )?;
        histogram_family(
            encoder,
            "ringmq_write_latency_seconds",
            "Commit-log write submission to completion per shard.",
            &engine_rows(|e| &e.write_us),
            1e6,
        )?;
        histogram_family(
            encoder,
            "ringmq_group_commit_bytes",
            "Bytes made durable by one group commit per shard.",
            &engine_rows(|e| &e.group_commit_bytes),
            1.0,
        )?;
        self.encode_engine_scalars(encoder)
    }

    fn encode_engine_scalars(
        &self,
        encoder: &mut DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use std::sync::atomic::Ordering::Relaxed;
        let shards = self.stats.shards();
        let counters = |pick: fn(&super::counters::EngineStats) -> u64| -> Vec<(Labels, u64)> {
            shards
                .iter()
                .enumerate()
                .map(|(i, s)| (self.shard_labels(i), pick(&s.engine)))
                .collect()
        };
        let gauges = |pick: fn(&super::counters::EngineStats) -> i64| -> Vec<(Labels, i64)> {
            shards
                .iter()
                .enumerate()
                .map(|(i, s)| (self.shard_labels(i), pick(&s.engine)))
                .collect()
        };
        counter_family(
            encoder,
            "ringmq_shard_busy_seconds",
            "Time the shard spent running tasks, in seconds (busy ratio = rate of this).",
            &counters(|e| e.busy_ns.load(Relaxed) / 1_000_000_000),
        )?;
        gauge_family(
            encoder,
            "ringmq_connections",
            "Open client connections per shard.",
            &gauges(|e| e.connections.load(Relaxed)),
        )?;
        gauge_family(
            encoder,
            "ringmq_connection_queued_bytes",
            "Response bytes queued for the shard's connections and not yet written (every 5 s).",
            &gauges(|e| i64::try_from(e.connection_queued_bytes.load(Relaxed)).unwrap_or(i64::MAX)),
        )?;
        counter_family(
            encoder,
            "ringmq_tail_cache_hits",
            "Records pulls read from the tail cache (hit ratio = hits / (hits + misses)).",
            &counters(|e| e.tail_cache_hits.load(Relaxed)),
        )?;
        counter_family(
            encoder,
            "ringmq_tail_cache_misses",
            "Records pulls read from read-ahead extents or disk instead of the tail cache.",
            &counters(|e| e.tail_cache_misses.load(Relaxed)),
        )
    }
}

/// Renders the registry in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, registry);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::NodeLabels;

    #[test]
    fn scrape_has_rocketmq_names_labels_and_exact_counts() {
        let node = NodeLabels {
            cluster: "DefaultCluster".into(),
            node_id: "broker-a".into(),
        };
        let stats = BrokerStats::new(node, 2, 0);
        for _ in 0..999 {
            stats.handle(0).on_put("TopicA", 1, 100);
        }
        stats.handle(1).on_put("TopicA", 1, 100);
        stats.handle(1).on_get("TopicA", "g1", 3, 300);
        stats.handle(0).on_rpc(10, 0, 1_500);
        stats.shards()[0].engine.fdatasync_us.observe(120);
        stats.handle(1).on_dlq("TopicA", "g1", 2);
        let engine = &stats.shards()[1].engine;
        for hit in [true, true, false] {
            engine.on_tail_cache(hit);
        }
        engine
            .connection_queued_bytes
            .store(4_096, std::sync::atomic::Ordering::Relaxed);
        let text = render(&broker_registry(Arc::clone(&stats)));
        let labels = r#"cluster="DefaultCluster",node_type="broker",node_id="broker-a""#;
        assert!(text.contains(&format!(
            r#"rocketmq_messages_in_total{{{labels},topic="TopicA",message_type="normal"}} 1000"#
        )), "{text}");
        assert!(text.contains(&format!(
            r#"rocketmq_throughput_in_total{{{labels},topic="TopicA",message_type="normal"}} 100000"#
        )));
        assert!(text.contains(&format!(
            r#"rocketmq_messages_out_total{{{labels},topic="TopicA",consumer_group="g1"}} 3"#
        )));
        assert!(text.contains(&format!(
            r#"rocketmq_rpc_latency_bucket{{le="3.0",{labels},request_code="10",response_code="0"}} 1"#
        )), "{text}");
        assert!(text.contains(&format!(
            r#"ringmq_fdatasync_latency_seconds_count{{{labels},shard="0"}} 1"#
        )));
        assert!(text.contains(&format!(
            r#"rocketmq_rpc_latency_bucket{{le="+Inf",{labels},request_code="10",response_code="0"}} 1"#
        )));
        assert!(text.contains(&format!(
            r#"rocketmq_send_to_dlq_messages_total{{{labels},topic="TopicA",consumer_group="g1"}} 2"#
        )), "{text}");
        assert!(text.contains(&format!(
            r#"ringmq_tail_cache_hits_total{{{labels},shard="1"}} 2"#
        )));
        assert!(text.contains(&format!(
            r#"ringmq_tail_cache_misses_total{{{labels},shard="1"}} 1"#
        )));
        assert!(text.contains(&format!(
            r#"ringmq_tail_cache_hits_total{{{labels},shard="0"}} 0"#
        )));
        assert!(
            text.contains(&format!(
                r#"ringmq_connection_queued_bytes{{{labels},shard="1"}} 4096"#
            )),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
