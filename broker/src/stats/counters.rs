//! Counters a shard writes and other threads read: one writer (the owning shard) per value, so
//! every update is an uncontended relaxed atomic add on the shard's own cache lines, and a
//! reader (the metrics thread, an admin request summing over shards) sees exact running totals.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// One statistic as Java's `StatsItem` keeps it: the summed value and how many times it was
/// incremented (so a window can report value per event, `avgpt`).
#[derive(Debug, Default)]
pub struct StatCounter {
    value: AtomicU64,
    times: AtomicU64,
}

impl StatCounter {
    pub fn add(&self, value: u64) {
        self.value.fetch_add(value, Ordering::Relaxed);
        self.times.fetch_add(1, Ordering::Relaxed);
    }

    /// (value, times) now.
    pub fn read(&self) -> (u64, u64) {
        (
            self.value.load(Ordering::Relaxed),
            self.times.load(Ordering::Relaxed),
        )
    }
}

/// Puts into one topic on one shard.
#[derive(Debug, Default)]
pub struct TopicCounters {
    /// Messages stored (`TOPIC_PUT_NUMS`; one increment per send request).
    pub put_nums: StatCounter,
    /// Body bytes stored (`TOPIC_PUT_SIZE`).
    pub put_size: StatCounter,
}

/// Gets by one group from one topic on one shard, and its failed-consumption traffic.
#[derive(Debug, Default)]
pub struct GroupCounters {
    /// Messages returned by pulls (`GROUP_GET_NUMS`).
    pub get_nums: StatCounter,
    /// Body bytes returned by pulls (`GROUP_GET_SIZE`).
    pub get_size: StatCounter,
    /// Messages sent back for retry (`SNDBCK_PUT_NUMS`).
    pub send_back_nums: StatCounter,
    /// Messages moved to the group's DLQ (`DLQ_PUT_NUMS`).
    pub dlq_nums: StatCounter,
}

/// Upper bounds of the latency histogram buckets, microseconds: 50 µs to ~1.6 s by doubling,
/// which covers an NVMe fdatasync (tens of µs) to a stalled disk.
pub const LATENCY_BUCKETS_US: [u64; 16] = [
    50, 100, 200, 400, 800, 1_600, 3_200, 6_400, 12_800, 25_600, 51_200, 102_400, 204_800, 409_600,
    819_200, 1_638_400,
];

/// RocketMQ 5's `rocketmq_rpc_latency` buckets (1, 3, 5, 7, 10, 100 ms, 1, 3 s), in µs.
pub const RPC_BUCKETS_US: [u64; 8] = [
    1_000, 3_000, 5_000, 7_000, 10_000, 100_000, 1_000_000, 3_000_000,
];

/// Upper bounds of the size histogram buckets, bytes: 1 KiB to 32 MiB (a group commit of a few
/// small messages up to a full write batch).
pub const SIZE_BUCKETS_BYTES: [u64; 12] = [
    1_024, 4_096, 16_384, 65_536, 131_072, 262_144, 524_288, 1_048_576, 2_097_152, 4_194_304,
    8_388_608, 33_554_432,
];

/// A fixed-bucket histogram of atomics (one writer). Bucket `i` counts observations
/// `<= bounds[i]` and above the previous bound; the last slot counts the rest (+Inf).
#[derive(Debug)]
pub struct AtomicHistogram {
    bounds: &'static [u64],
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl AtomicHistogram {
    pub fn new(bounds: &'static [u64]) -> AtomicHistogram {
        AtomicHistogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: u64) {
        let slot = self.bounds.partition_point(|&bound| bound < value);
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    pub fn bounds(&self) -> &'static [u64] {
        self.bounds
    }

    /// (per-slot counts, sum) now; `counts.len() == bounds.len() + 1`.
    pub fn read(&self) -> (Vec<u64>, u64) {
        let counts = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        (counts, self.sum.load(Ordering::Relaxed))
    }
}

/// Gauges and histograms about the shard itself (not about a topic).
#[derive(Debug)]
pub struct EngineStats {
    /// fdatasync of the commit log, µs.
    pub fdatasync_us: AtomicHistogram,
    /// One commit-log write submission until its completion, µs.
    pub write_us: AtomicHistogram,
    /// Bytes made durable by one group commit.
    pub group_commit_bytes: AtomicHistogram,
    /// Open client connections on this shard.
    pub connections: AtomicI64,
    /// Time the shard spent running tasks rather than waiting for I/O, ns.
    pub busy_ns: AtomicU64,
    /// Records pulls read from the in-memory tail cache.
    pub tail_cache_hits: AtomicU64,
    /// Records pulls read elsewhere (read-ahead extents or disk): the tail cache no longer
    /// held them.
    pub tail_cache_misses: AtomicU64,
    /// Bytes of responses queued for this shard's connections' writers, not yet written (the
    /// sum over its connections, refreshed with the lag table).
    pub connection_queued_bytes: AtomicU64,
}

impl EngineStats {
    /// One record read by a pull, from the tail cache (`hit`) or not.
    pub fn on_tail_cache(&self, hit: bool) {
        let counter = if hit {
            &self.tail_cache_hits
        } else {
            &self.tail_cache_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl Default for EngineStats {
    fn default() -> Self {
        EngineStats {
            fdatasync_us: AtomicHistogram::new(&LATENCY_BUCKETS_US),
            write_us: AtomicHistogram::new(&LATENCY_BUCKETS_US),
            group_commit_bytes: AtomicHistogram::new(&SIZE_BUCKETS_BYTES),
            connections: AtomicI64::new(0),
            busy_ns: AtomicU64::new(0),
            tail_cache_hits: AtomicU64::new(0),
            tail_cache_misses: AtomicU64::new(0),
            connection_queued_bytes: AtomicU64::new(0),
        }
    }
}

/// `(topic, group)`.
pub type GroupKey = (String, String);

/// Everything one shard publishes. The shard writes; any thread reads. The two lists grow only
/// when the shard first sees a topic or (topic, group), so their locks are taken once per key,
/// never per message.
#[derive(Debug, Default)]
pub struct ShardStats {
    topics: Mutex<Vec<(String, Arc<TopicCounters>)>>,
    groups: Mutex<Vec<(GroupKey, Arc<GroupCounters>)>>,
    rpc: Mutex<Vec<(RpcKey, Arc<AtomicHistogram>)>>,
    /// The shard's last computed consumer lag per (topic, group), replaced wholesale by the
    /// shard's periodic lag pass.
    lag: Mutex<HashMap<GroupKey, Lag>>,
    pub engine: EngineStats,
}

/// `(request code, response code)`.
pub type RpcKey = (i32, i32);

/// How far a group is behind on one shard's queues of a topic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lag {
    /// Messages stored but not committed.
    pub messages: u64,
    /// Age of the oldest unconsumed message, ms (0 when caught up).
    pub latency_ms: u64,
}

impl ShardStats {
    /// Every topic this shard has counters for.
    pub fn topics(&self) -> Vec<(String, Arc<TopicCounters>)> {
        self.topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every (topic, group) this shard has counters for.
    pub fn groups(&self) -> Vec<(GroupKey, Arc<GroupCounters>)> {
        self.groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Request latency histograms (µs) by (request code, response code).
    pub fn rpc(&self) -> Vec<(RpcKey, Arc<AtomicHistogram>)> {
        self.rpc
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The shard's last published consumer lag.
    pub fn lag(&self) -> HashMap<GroupKey, Lag> {
        self.lag
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the shard's consumer lag table (called by the shard every few seconds).
    pub fn publish_lag(&self, lag: HashMap<GroupKey, Lag>) {
        *self.lag.lock().unwrap_or_else(PoisonError::into_inner) = lag;
    }
}

/// topic → group → counters.
type GroupsByTopic = HashMap<String, HashMap<String, Arc<GroupCounters>>>;

/// The shard's own handle: a lock-free map from key to counters in front of [`ShardStats`].
/// `!Send` (lives on its shard).
#[derive(Debug, Clone)]
pub struct ShardStatsHandle {
    shared: Arc<ShardStats>,
    topics: Rc<RefCell<HashMap<String, Arc<TopicCounters>>>>,
    /// topic → group → counters, so a lookup by `&str` pair allocates nothing.
    groups: Rc<RefCell<GroupsByTopic>>,
    rpc: Rc<RefCell<HashMap<RpcKey, Arc<AtomicHistogram>>>>,
}

impl ShardStatsHandle {
    pub fn new(shared: Arc<ShardStats>) -> ShardStatsHandle {
        ShardStatsHandle {
            shared,
            topics: Rc::default(),
            groups: Rc::default(),
            rpc: Rc::default(),
        }
    }

    pub fn shared(&self) -> &Arc<ShardStats> {
        &self.shared
    }

    pub fn engine(&self) -> &EngineStats {
        &self.shared.engine
    }

    /// The counters of `topic`, created (and published) on first use.
    pub fn topic(&self, topic: &str) -> Arc<TopicCounters> {
        if let Some(counters) = self.topics.borrow().get(topic) {
            return Arc::clone(counters);
        }
        let counters = Arc::new(TopicCounters::default());
        self.topics
            .borrow_mut()
            .insert(topic.to_string(), Arc::clone(&counters));
        self.shared
            .topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((topic.to_string(), Arc::clone(&counters)));
        counters
    }

    /// The counters of (`topic`, `group`), created (and published) on first use.
    pub fn group(&self, topic: &str, group: &str) -> Arc<GroupCounters> {
        if let Some(counters) = self.groups.borrow().get(topic).and_then(|g| g.get(group)) {
            return Arc::clone(counters);
        }
        let key = (topic.to_string(), group.to_string());
        let counters = Arc::new(GroupCounters::default());
        self.groups
            .borrow_mut()
            .entry(key.0.clone())
            .or_default()
            .insert(key.1.clone(), Arc::clone(&counters));
        self.shared
            .groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((key, Arc::clone(&counters)));
        counters
    }

    /// A request with `request_code` was answered with `response_code` after `latency_us`.
    pub fn on_rpc(&self, request_code: i32, response_code: i32, latency_us: u64) {
        let key = (request_code, response_code);
        let cached = self.rpc.borrow().get(&key).cloned();
        let histogram = cached.unwrap_or_else(|| {
            let histogram = Arc::new(AtomicHistogram::new(&RPC_BUCKETS_US));
            self.rpc.borrow_mut().insert(key, Arc::clone(&histogram));
            self.shared
                .rpc
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((key, Arc::clone(&histogram)));
            histogram
        });
        histogram.observe(latency_us);
    }

    /// A send stored `messages` messages of `bytes` record bytes in all into `topic` (Java
    /// counts the bytes written, `wroteBytes`). No allocation once the topic is known.
    pub fn on_put(&self, topic: &str, messages: u64, bytes: u64) {
        let known = self.topics.borrow().get(topic).map(|c| {
            c.put_nums.add(messages);
            c.put_size.add(bytes);
        });
        if known.is_none() {
            let counters = self.topic(topic);
            counters.put_nums.add(messages);
            counters.put_size.add(bytes);
        }
    }

    /// A pull by `group` returned `messages` messages of `bytes` record bytes from `topic`.
    /// No allocation once the pair is known.
    pub fn on_get(&self, topic: &str, group: &str, messages: u64, bytes: u64) {
        let add = |c: &GroupCounters| {
            c.get_nums.add(messages);
            c.get_size.add(bytes);
        };
        let known = self
            .groups
            .borrow()
            .get(topic)
            .and_then(|g| g.get(group))
            .map(|c| add(c));
        if known.is_none() {
            add(&self.group(topic, group));
        }
    }

    /// `messages` messages of `topic` consumed by `group` were sent back (stored for retry or
    /// into the DLQ).
    pub fn on_send_back(&self, topic: &str, group: &str, messages: u64) {
        self.group(topic, group).send_back_nums.add(messages);
    }

    /// `messages` messages of `topic` were moved to `group`'s DLQ.
    pub fn on_dlq(&self, topic: &str, group: &str, messages: u64) {
        self.group(topic, group).dlq_nums.add(messages);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_published_once_per_key_and_sum_exactly() {
        let shared = Arc::new(ShardStats::default());
        let handle = ShardStatsHandle::new(Arc::clone(&shared));
        for _ in 0..1000 {
            handle.on_put("T", 1, 10);
        }
        handle.on_put("T", 32, 320);
        handle.on_get("T", "g", 5, 50);
        handle.on_dlq("T", "g", 1);
        handle.on_dlq("T", "g", 1);
        handle.on_send_back("T", "g", 1);
        let topics = shared.topics();
        assert_eq!(topics.len(), 1);
        assert_eq!(topics[0].1.put_nums.read(), (1032, 1001));
        assert_eq!(topics[0].1.put_size.read(), (10320, 1001));
        assert_eq!(shared.groups()[0].1.get_nums.read(), (5, 1));
        assert_eq!(shared.groups().len(), 1);
        assert_eq!(shared.groups()[0].1.dlq_nums.read(), (2, 2));
        assert_eq!(shared.groups()[0].1.send_back_nums.read(), (1, 1));
    }

    #[test]
    fn histogram_buckets_include_their_upper_bound() {
        let histogram = AtomicHistogram::new(&LATENCY_BUCKETS_US);
        histogram.observe(50);
        histogram.observe(51);
        histogram.observe(10_000_000);
        let (counts, sum) = histogram.read();
        assert_eq!(counts[0], 1);
        assert_eq!(counts[1], 1);
        assert_eq!(counts[LATENCY_BUCKETS_US.len()], 1);
        assert_eq!(sum, 10_000_101);
    }
}
