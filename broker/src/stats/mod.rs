//! Broker statistics: per-shard counters and histograms ([`counters`]), summed on request for
//! the admin codes (VIEW_BROKER_STATS_DATA's minute/hour/day windows, [`window`]) and encoded
//! for Prometheus ([`prom`]) and served by the `ringmq-metrics` exporter thread, which never
//! touches a shard.
//!
//! Shards publish with relaxed atomic adds on counters only they write; readers load them. No
//! shard waits for a reader: the only locks are the per-shard key lists (taken by the shard
//! once per new topic or group) and the sample history (taken by the sampler thread and by the
//! rare VIEW_BROKER_STATS_DATA request, each for a map clone at most).

pub mod bodies;
pub mod counters;
pub mod lag;
pub mod prom;
pub mod window;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ringmq_proto::body::BrokerStatsData;

pub use counters::{ShardStats, ShardStatsHandle};
use window::{History, StatKey, Totals, SAMPLE_INTERVAL_MS};

/// Java `BrokerStatsManager` names VIEW_BROKER_STATS_DATA accepts.
pub mod names {
    pub const TOPIC_PUT_NUMS: &str = "TOPIC_PUT_NUMS";
    pub const TOPIC_PUT_SIZE: &str = "TOPIC_PUT_SIZE";
    pub const GROUP_GET_NUMS: &str = "GROUP_GET_NUMS";
    pub const GROUP_GET_SIZE: &str = "GROUP_GET_SIZE";
    pub const SNDBCK_PUT_NUMS: &str = "SNDBCK_PUT_NUMS";
    pub const DLQ_PUT_NUMS: &str = "DLQ_PUT_NUMS";
    pub const BROKER_PUT_NUMS: &str = "BROKER_PUT_NUMS";
    pub const BROKER_GET_NUMS: &str = "BROKER_GET_NUMS";
}

/// Who this broker is, for metric labels (RocketMQ 5's `cluster`, `node_id`, `node_type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLabels {
    pub cluster: String,
    /// The broker name (RocketMQ 5 labels brokers by name).
    pub node_id: String,
}

/// The broker's statistics: every shard's published counters and the sample history.
#[derive(Debug)]
pub struct BrokerStats {
    pub node: NodeLabels,
    shards: Vec<Arc<ShardStats>>,
    history: Mutex<History>,
}

impl BrokerStats {
    pub fn new(node: NodeLabels, shard_count: usize, start_ms: i64) -> Arc<BrokerStats> {
        Arc::new(BrokerStats {
            node,
            shards: (0..shard_count).map(|_| Arc::default()).collect(),
            history: Mutex::new(History::new(start_ms)),
        })
    }

    /// Shard `index`'s handle (call on that shard).
    pub fn handle(&self, index: usize) -> ShardStatsHandle {
        ShardStatsHandle::new(Arc::clone(&self.shards[index]))
    }

    pub fn shards(&self) -> &[Arc<ShardStats>] {
        &self.shards
    }

    /// Every statistic's running total, summed over shards.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::new();
        let mut add = |key: StatKey, (value, times): (u64, u64)| {
            let entry = totals.entry(key).or_insert((0, 0));
            entry.0 += value;
            entry.1 += times;
        };
        for shard in &self.shards {
            for (topic, c) in shard.topics() {
                add((names::TOPIC_PUT_NUMS, topic.clone()), c.put_nums.read());
                add((names::TOPIC_PUT_SIZE, topic.clone()), c.put_size.read());
                add(
                    (names::BROKER_PUT_NUMS, self.node.cluster.clone()),
                    c.put_nums.read(),
                );
            }
            for ((topic, group), c) in shard.groups() {
                let key = format!("{topic}@{group}");
                add((names::GROUP_GET_NUMS, key.clone()), c.get_nums.read());
                add((names::GROUP_GET_SIZE, key.clone()), c.get_size.read());
                add(
                    (names::SNDBCK_PUT_NUMS, key.clone()),
                    c.send_back_nums.read(),
                );
                add((names::DLQ_PUT_NUMS, key), c.dlq_nums.read());
                add(
                    (names::BROKER_GET_NUMS, self.node.cluster.clone()),
                    c.get_nums.read(),
                );
            }
        }
        totals
    }

    /// Takes a sample for the windows (the sampler thread calls this every
    /// [`SAMPLE_INTERVAL_MS`]).
    pub fn sample(&self, now_ms: i64) {
        let totals = self.totals();
        self.history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(now_ms, &totals);
    }

    /// VIEW_BROKER_STATS_DATA: `None` when the name is not one Java knows, as Java answers
    /// SYSTEM_ERROR for an unknown name.
    pub fn view(&self, stats_name: &str, stats_key: &str, now_ms: i64) -> Option<BrokerStatsData> {
        let name = known_name(stats_name)?;
        let key = (name, stats_key.to_string());
        let now = self.totals().get(&key).copied().unwrap_or((0, 0));
        let history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        Some(history.view(&key, now, now_ms))
    }
}

impl BrokerStats {
    /// Whether a statistic has been counted at least once.
    pub fn has(&self, stats_name: &str, stats_key: &str) -> bool {
        known_name(stats_name)
            .is_some_and(|name| self.totals().contains_key(&(name, stats_key.to_string())))
    }
}

fn known_name(name: &str) -> Option<&'static str> {
    use names::*;
    [
        TOPIC_PUT_NUMS,
        TOPIC_PUT_SIZE,
        GROUP_GET_NUMS,
        GROUP_GET_SIZE,
        SNDBCK_PUT_NUMS,
        DLQ_PUT_NUMS,
        BROKER_PUT_NUMS,
        BROKER_GET_NUMS,
    ]
    .into_iter()
    .find(|known| *known == name)
}

/// The statistics threads of a running broker: the sampler, and the `/metrics` exporter when
/// `metricsExporterType=PROM`. Dropping it stops both.
pub struct StatsService {
    pub stats: Arc<BrokerStats>,
    exporter: Option<ringmq_metrics::Exporter>,
    stop: Arc<AtomicBool>,
    sampler: Option<std::thread::JoinHandle<()>>,
}

impl StatsService {
    /// Starts the sampler and, if `prom_addr` is given, the exporter bound there.
    pub fn start(
        node: NodeLabels,
        shards: usize,
        prom_addr: Option<std::net::SocketAddr>,
    ) -> std::io::Result<StatsService> {
        let stats = BrokerStats::new(node, shards, now_ms());
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = spawn_sampler(Arc::clone(&stats), Arc::clone(&stop))?;
        let exporter = match prom_addr {
            Some(addr) => {
                let registry = prom::broker_registry(Arc::clone(&stats));
                let render = Box::new(move || prom::render(&registry));
                let exporter = ringmq_metrics::Exporter::spawn(addr, render)?;
                tracing::info!(metrics = %exporter.local_addr(), "serving GET /metrics");
                Some(exporter)
            }
            None => None,
        };
        Ok(StatsService {
            stats,
            exporter,
            stop,
            sampler: Some(sampler),
        })
    }

    /// Where `/metrics` is served, if it is.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.exporter
            .as_ref()
            .map(ringmq_metrics::Exporter::local_addr)
    }
}

impl Drop for StatsService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.exporter.take();
        if let Some(sampler) = self.sampler.take() {
            let _ = sampler.join();
        }
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs the sampler on its own thread until `stop` is set.
pub fn spawn_sampler(
    stats: Arc<BrokerStats>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("stats-sampler".to_string())
        .spawn(move || {
            // Sleep in short steps so that a stop request is seen promptly.
            const STEP_MS: u64 = 200;
            let mut waited_ms = 0;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(STEP_MS));
                waited_ms += STEP_MS;
                if waited_ms >= SAMPLE_INTERVAL_MS {
                    waited_ms = 0;
                    stats.sample(now_ms());
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_and_views_sum_over_shards() {
        let node = NodeLabels {
            cluster: "C".into(),
            node_id: "broker-a".into(),
        };
        let stats = BrokerStats::new(node, 2, 0);
        stats.handle(0).on_put("T", 3, 30);
        stats.handle(1).on_put("T", 4, 40);
        stats.handle(1).on_get("T", "g", 7, 70);
        let totals = stats.totals();
        assert_eq!(totals[&(names::TOPIC_PUT_NUMS, "T".to_string())], (7, 2));
        assert_eq!(totals[&(names::BROKER_PUT_NUMS, "C".to_string())], (7, 2));
        let view = stats.view(names::GROUP_GET_NUMS, "T@g", 1_000).unwrap();
        assert_eq!(view.stats_minute.sum, 7);
        assert!(stats.view("NO_SUCH_STAT", "T", 1_000).is_none());
        assert!(!stats.has(names::SNDBCK_PUT_NUMS, "T@g2"));
        stats.handle(0).on_send_back("T", "g2", 1);
        stats.handle(1).on_send_back("T", "g2", 1);
        let view = stats.view(names::SNDBCK_PUT_NUMS, "T@g2", 1_000).unwrap();
        assert_eq!(view.stats_minute.sum, 2);
    }
}
