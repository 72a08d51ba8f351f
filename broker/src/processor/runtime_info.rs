//! GET_BROKER_RUNTIME_INFO (28): the broker's counters as a `KVTable` body
//! (`{"table":{...}}`, what Java's `mqadmin brokerStatus` prints).
//!
//! The counters live on every shard (each has its own store and counts its own sends and
//! pulls), so the shard that receives the request asks all the others over the mesh and sums
//! the answers. Values are cumulative since the broker started, as Java's are
//! (`msgPutTotalTodayNow` is Java's put counter since start; `brokerStatus` subtracts its
//! midnight snapshot, which ringmq does not keep).

use std::cell::Cell;
use std::collections::BTreeMap;

use bytes::Bytes;
use ringmq_proto::body::{JsonBody, KvTable};
use ringmq_proto::command::{RemotingCommand, SERVER_VERSION};

use super::{success, Outcome, ShardMesh};
use crate::ha::{HaStatus, ShardHa};
use crate::stats::ShardStatsHandle;
use crate::store::{MemoryUsage, StatsSnapshot, Store};
use crate::transaction::CounterSnapshot;

/// Counters of the request path a shard keeps next to its store's, and the per-topic and
/// per-group statistics it publishes (`stats`: VIEW_BROKER_STATS_DATA and /metrics).
#[derive(Debug)]
pub struct RequestCounters {
    /// Messages stored by sends (each message of a batch counts).
    pub messages_put: Cell<u64>,
    /// Messages returned by pulls.
    pub messages_got: Cell<u64>,
    pub stats: ShardStatsHandle,
}

impl Default for RequestCounters {
    /// Counters whose statistics nobody reads (handler tests).
    fn default() -> Self {
        RequestCounters::new(ShardStatsHandle::new(Default::default()))
    }
}

impl RequestCounters {
    pub fn new(stats: ShardStatsHandle) -> RequestCounters {
        RequestCounters {
            messages_put: Cell::new(0),
            messages_got: Cell::new(0),
            stats,
        }
    }

    /// A send stored `messages` messages, `bytes` record bytes in all, into `topic`.
    pub fn add_put(&self, topic: &str, messages: u64, bytes: u64) {
        self.messages_put.set(self.messages_put.get() + messages);
        self.stats.on_put(topic, messages, bytes);
    }

    /// A pull by `group` returned `messages` messages, `bytes` record bytes, of `topic`.
    pub fn add_got(&self, topic: &str, group: &str, messages: u64, bytes: u64) {
        self.messages_got.set(self.messages_got.get() + messages);
        self.stats.on_get(topic, group, messages, bytes);
    }
}

/// One shard's counters, as sent back to the shard that asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardCounters {
    pub store: StatsSnapshot,
    /// What the shard's store holds in memory, by bounded structure.
    pub memory: MemoryUsage,
    pub messages_put: u64,
    pub messages_got: u64,
    pub transaction: CounterSnapshot,
    /// Replication figures of the shard (summed by [`HaStatus::add`]).
    pub ha: HaStatus,
}

impl ShardCounters {
    fn add(&mut self, other: &ShardCounters) {
        self.store.bytes_written += other.store.bytes_written;
        self.store.writes += other.store.writes;
        self.store.fdatasyncs += other.store.fdatasyncs;
        self.store.records_synced += other.store.records_synced;
        self.store.index_files += other.store.index_files;
        self.store.index_files_walked += other.store.index_files_walked;
        self.store.index_files_skipped += other.store.index_files_skipped;
        self.store.read_ahead_bytes_read += other.store.read_ahead_bytes_read;
        self.store.pull_window_bytes_read += other.store.pull_window_bytes_read;
        self.memory.add(&other.memory);
        self.messages_put += other.messages_put;
        self.messages_got += other.messages_got;
        self.transaction.add(&other.transaction);
        self.ha.add(&other.ha);
    }
}

/// A shard's counters now (a closed store counts as zero: it only happens at shutdown).
pub fn shard_counters(
    store: Option<&Store>,
    counters: &RequestCounters,
    transaction: CounterSnapshot,
    ha: &ShardHa,
    now_ms: i64,
) -> ShardCounters {
    let written = store.map_or(0, |s| s.log_offsets().written);
    ShardCounters {
        store: store.map(|s| s.stats()).unwrap_or_default(),
        memory: store.map(|s| s.memory_usage()).unwrap_or_default(),
        messages_put: counters.messages_put.get(),
        messages_got: counters.messages_got.get(),
        transaction,
        ha: ha.status(written, now_ms),
    }
}

/// The broker facts the table reports besides the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerFacts {
    pub boot_timestamp_ms: i64,
    pub shards: usize,
    /// `brokerRole` as RocketMQ spells it.
    pub role: &'static str,
}

pub async fn runtime_info(
    mesh: &dyn ShardMesh,
    facts: BrokerFacts,
    request: &RemotingCommand,
) -> Outcome {
    let answers = mesh.counters_everywhere();
    let mut total = ShardCounters::default();
    let mut shards_answered = 0;
    // Every shard answers, or drops its reply sender when it stops: bounded.
    while let Ok(part) = answers.recv_async().await {
        total.add(&part);
        shards_answered += 1;
    }
    let table = runtime_table(facts, &total, shards_answered);
    let body = KvTable { table }.to_json();
    Outcome::Respond(success(request).with_body(Bytes::from(body.into_bytes())))
}

/// The table: Java's cheap keys, then ringmq's write-path counters.
fn runtime_table(
    facts: BrokerFacts,
    total: &ShardCounters,
    shards_answered: usize,
) -> BTreeMap<String, String> {
    let mut table = BTreeMap::new();
    let mut put = |key: &str, value: String| {
        table.insert(key.to_string(), value);
    };
    put("brokerVersion", SERVER_VERSION.to_string());
    put(
        "brokerVersionDesc",
        format!("ringmq {}", env!("CARGO_PKG_VERSION")),
    );
    put("bootTimestamp", facts.boot_timestamp_ms.to_string());
    put("msgPutTotalTodayNow", total.messages_put.to_string());
    put("msgGetTotalTodayNow", total.messages_got.to_string());
    put("ringmqShards", facts.shards.to_string());
    put("ringmqShardsAnswered", shards_answered.to_string());
    for (key, value) in total.transaction.entries() {
        put(key, value.to_string());
    }
    let st = &total.store;
    // Store counters since start; the index pair is what QUERY_MESSAGE walked, and the files
    // their key filter let it skip.
    let store_counters = [
        ("ringmqFdatasyncTotal", st.fdatasyncs),
        ("ringmqFlushedRecordsTotal", st.records_synced),
        ("ringmqBytesWrittenTotal", st.bytes_written),
        ("ringmqWritesTotal", st.writes),
        ("ringmqIndexFiles", st.index_files),
        ("ringmqIndexFilesWalkedTotal", st.index_files_walked),
        ("ringmqIndexFilesSkippedTotal", st.index_files_skipped),
        ("ringmqReadAheadBytesReadTotal", st.read_ahead_bytes_read),
        ("ringmqPullWindowBytesReadTotal", st.pull_window_bytes_read),
    ];
    for (key, value) in store_counters {
        put(key, value.to_string());
    }
    // The memory budget, structure by structure (each has a named bound, see the storage format).
    for (key, bytes) in total.memory.named() {
        put(key, bytes.to_string());
    }
    put("brokerRole", facts.role.to_string());
    put_ha(&mut table, &total.ha);
    table
}

/// Replication keys: attached slaves (master) and following shards (slave), the worst shard's
/// lag in bytes and ms (absent on a master without a slave), a divergence, the master followed.
fn put_ha(table: &mut BTreeMap<String, String>, ha: &HaStatus) {
    let mut put = |key: &str, value: String| {
        table.insert(key.to_string(), value);
    };
    put("ringmqHaSlaves", ha.slaves.to_string());
    put("ringmqHaFollowingShards", ha.following_shards.to_string());
    if let (Some(bytes), Some(ms)) = (ha.lag_bytes, ha.lag_ms) {
        put("ringmqHaLagBytes", bytes.to_string());
        put("ringmqHaLagMs", ms.to_string());
    }
    if let Some(d) = &ha.diverged {
        put("ringmqHaDiverged", d.clone());
    }
    if let Some(master) = &ha.master {
        put("masterAddr", master.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_counters_add_up_field_by_field() {
        let mut total = ShardCounters::default();
        let one = ShardCounters {
            store: StatsSnapshot {
                bytes_written: 4096,
                writes: 2,
                fdatasyncs: 3,
                records_synced: 40,
                index_files_walked: 5,
                index_files_skipped: 11,
                ..StatsSnapshot::default()
            },
            memory: MemoryUsage {
                tail_cache_bytes: 4096,
                index_filter_cache_bytes: 2048,
                queues: 2,
                ..MemoryUsage::default()
            },
            messages_put: 40,
            messages_got: 7,
            transaction: CounterSnapshot {
                half: 3,
                committed: 2,
                ..CounterSnapshot::default()
            },
            ha: HaStatus {
                slaves: 1,
                lag_bytes: Some(10),
                lag_ms: Some(3),
                ..HaStatus::default()
            },
        };
        total.add(&one);
        total.add(&one);
        // Slaves add up; the lag is the worst shard's.
        assert_eq!(total.ha.slaves, 2);
        assert_eq!((total.ha.lag_bytes, total.ha.lag_ms), (Some(10), Some(3)));
        assert_eq!(total.store.bytes_written, 8192);
        assert_eq!(total.store.writes, 4);
        assert_eq!(total.store.fdatasyncs, 6);
        assert_eq!(total.store.records_synced, 80);
        assert_eq!((total.messages_put, total.messages_got), (80, 14));
        assert_eq!(
            (total.transaction.half, total.transaction.committed),
            (6, 4)
        );
        assert_eq!(total.memory.tail_cache_bytes, 8192);
        assert_eq!(total.memory.index_filter_cache_bytes, 4096);
        assert_eq!(total.memory.queues, 4);
        assert_eq!(
            (
                total.store.index_files_walked,
                total.store.index_files_skipped
            ),
            (10, 22)
        );
    }

    #[test]
    fn the_table_sums_what_every_shard_answers() {
        crate::processor::testing::run(|fx| async move {
            fx.create_topic("T", 1);
            fx.put("T", 0, b"x", "").await;
            let facts = BrokerFacts {
                boot_timestamp_ms: 5,
                shards: 1,
                role: "ASYNC_MASTER",
            };
            let r = crate::processor::testing::request(
                ringmq_proto::code::RequestCode::GetBrokerRuntimeInfo,
                &[],
                b"",
            );
            let response =
                crate::processor::testing::responded(runtime_info(fx.as_ref(), facts, &r).await);
            let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
            assert_eq!(body["table"]["msgPutTotalTodayNow"], "1");
            assert_eq!(body["table"]["ringmqShardsAnswered"], "1");
            assert_eq!(body["table"]["bootTimestamp"], "5");
            // The memory breakdown: the tail holds the record just put; one queue is known.
            let tail: u64 = body["table"]["ringmqMemTailCacheBytes"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(tail > 0);
            assert_eq!(body["table"]["ringmqStoreQueues"], "1");
            assert!(body["table"]["ringmqMemIndexSlotBytes"].is_string());
            assert_eq!(body["table"]["brokerRole"], "ASYNC_MASTER");
            // A master without a slave: no lag to report, no slave attached.
            assert_eq!(body["table"]["ringmqHaSlaves"], "0");
            assert!(body["table"].get("ringmqHaLagBytes").is_none());
        });
    }

    #[test]
    fn request_counters_accumulate() {
        let counters = RequestCounters::default();
        counters.add_put("T", 32, 3200);
        counters.add_put("T", 1, 100);
        counters.add_got("T", "g", 5, 500);
        assert_eq!(counters.messages_put.get(), 33);
        assert_eq!(counters.messages_got.get(), 5);
        let published = counters.stats.shared().topics();
        assert_eq!(published[0].1.put_nums.read(), (33, 2));
        assert_eq!(published[0].1.put_size.read(), (3300, 2));
    }
}
