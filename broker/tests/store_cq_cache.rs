//! The consume-queue cache has a shard-wide bound: as queues are added each keeps a smaller
//! share, so the cache's memory follows the configured total, not the number of queues, and
//! every entry stays readable (evicted ones come from the files).

mod store_support;

use std::time::{Duration, Instant};

use ringmq_broker::store::{CqEntry, FlushMode, GetRequest, GetStatus, Store};
use store_support::{record, run, small_config, split_records};

/// The shard's budget in entries.
const TOTAL_ENTRIES: usize = 4096;
/// Queues that first fill a large share each.
const EARLY_QUEUES: i32 = 2;
/// Queues in the end: 128 share the budget, 32 entries each (the per-queue minimum).
const ALL_QUEUES: i32 = 128;
const EARLY_RECORDS: u64 = 2500;
const LATE_RECORDS: u64 = 40;
/// Bound on waiting for a checkpoint (the flush interval is 20 ms).
const CHECKPOINT_WAIT_MAX: Duration = Duration::from_secs(30);

async fn append_to(store: &Store, queue: i32, records: u64) {
    for i in 0..records {
        let body = format!("q{queue}-m{i}");
        store
            .append(&[record("CQ", queue, body.as_bytes(), b"")])
            .await
            .unwrap();
    }
}

/// Waits until everything appended is checkpointed: consume-queue entries are then written,
/// so the cache may evict them.
async fn wait_checkpointed(store: &Store) {
    let end = store.log_offsets().end;
    let deadline = Instant::now() + CHECKPOINT_WAIT_MAX;
    while store.checkpointed_offset() < end {
        assert!(
            Instant::now() < deadline,
            "no checkpoint reached the log end"
        );
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
}

async fn check_readable(store: &Store, queue: i32, records: u64) {
    let mut offset = 0;
    while offset < records {
        let request = GetRequest {
            topic: "CQ",
            queue_id: queue,
            offset,
            max_count: 32,
            max_bytes: 1 << 20,
            tag_hashes: None,
        };
        let result = store.get_messages(&request).await.unwrap();
        assert_eq!(result.status, GetStatus::Found, "queue {queue} at {offset}");
        for (k, r) in split_records(&result.body).iter().enumerate() {
            let expected = format!("q{queue}-m{}", offset + k as u64);
            assert_eq!(r.record.body, expected.as_bytes());
        }
        offset = result.next_begin_offset;
    }
}

#[test]
fn the_cache_shrinks_per_queue_as_queues_are_added() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path(), FlushMode::Async);
    config.segment_size_bytes = 1 << 20;
    config.cq_cache_entries_total = TOTAL_ENTRIES;
    run(|| async {
        let store = Store::open(config).await.unwrap();
        for queue in 0..EARLY_QUEUES {
            append_to(&store, queue, EARLY_RECORDS).await;
        }
        let early = store.cq_cached_entries();
        for queue in EARLY_QUEUES..ALL_QUEUES {
            append_to(&store, queue, LATE_RECORDS).await;
        }
        wait_checkpointed(&store).await;
        // One more entry per queue: each evicts down to its share now.
        for queue in 0..ALL_QUEUES {
            let records = if queue < EARLY_QUEUES {
                EARLY_RECORDS
            } else {
                LATE_RECORDS
            };
            let body = format!("q{queue}-m{records}");
            store
                .append(&[record("CQ", queue, body.as_bytes(), b"")])
                .await
                .unwrap();
        }
        // Each queue keeps its share: entries not yet written to the file are read from its
        // memory tail, so the cache need not hold them. A cap per queue alone kept
        // 2 × 2501 + 126 × 41 = 10,168 here.
        let cached = store.cq_cached_entries();
        let bound = TOTAL_ENTRIES;
        assert!(cached <= bound, "{cached} entries cached, bound {bound}");
        assert!(cached < early, "the early queues' share did not shrink");
        // The bytes follow: the entries plus each queue's partial page of file bytes (written
        // only by a checkpoint, so it waits in memory).
        let held = store.memory_usage().cq_cache_bytes;
        let bytes_bound =
            (bound * std::mem::size_of::<CqEntry>()) as u64 + ALL_QUEUES as u64 * 4096;
        assert!(
            held <= bytes_bound,
            "{held} bytes cached, bound {bytes_bound}"
        );
        for queue in 0..ALL_QUEUES {
            let records = if queue < EARLY_QUEUES {
                EARLY_RECORDS
            } else {
                LATE_RECORDS
            };
            check_readable(&store, queue, records + 1).await;
        }
        store.close().await.unwrap();
    });
}
