//! Lagging pulls read their consume-queue entries from disk a window at a time, not one read
//! per pull; probes (binary searches) keep reading just what they ask for; and a share too small
//! for a window keeps the per-pull reads. Real files, real io_uring; reads are counted, not timed.

use std::path::Path;

use ringmq_proto::message::record::DecodedRecord;

use super::consume_queue::CQ_WINDOW_ENTRIES_MIN;
use super::read::GetRequest;
use super::test_support::{executor, quiet_config};
use super::{flush, Record, Store, StoreConfig};
use ringmq_testkit::sample_record;

const TOPIC: &[u8] = b"Lagging";
/// Entries the cache keeps for the shard: with one queue its whole share, and a window's worth.
const CQ_CACHE_TOTAL: usize = CQ_WINDOW_ENTRIES_MIN;
/// Records appended per queue: several windows below the cache.
const RECORDS: u64 = 8 * CQ_WINDOW_ENTRIES_MIN as u64;
/// A push consumer's pull batch (RocketMQ's `pullBatchSize`).
const PULL_BATCH: u32 = 32;

fn config(root: &Path) -> StoreConfig {
    let mut c = quiet_config(root);
    c.tail_cache_bytes = 64 * 1024;
    c.cq_cache_entries_total = CQ_CACHE_TOTAL;
    c
}

/// Appends [`RECORDS`] records with bodies `q<queue>-m<i>` to each queue, and writes every
/// consume-queue page, so entries evicted from the cache are read from disk.
async fn filled_store(root: &Path, queues: i32) -> Store {
    let store = Store::open(config(root)).await.unwrap();
    let bodies: Vec<Vec<Vec<u8>>> = (0..queues)
        .map(|q| {
            (0..RECORDS)
                .map(|i| format!("q{q}-m{i}").into_bytes())
                .collect()
        })
        .collect();
    for chunk in 0..(RECORDS as usize).div_ceil(64) {
        for (queue, queue_bodies) in bodies.iter().enumerate() {
            let records: Vec<Record<'_>> = (queue_bodies.iter().skip(chunk * 64).take(64))
                .map(|b| sample_record(TOPIC, queue as i32, b, b""))
                .collect();
            store.append(&records).await.unwrap();
        }
    }
    flush::flush_derived(&store.inner).await.unwrap();
    store
}

/// Pulls queue `queue` from offset 0 in batches of [`PULL_BATCH`] up to `until`; returns the
/// bodies in the order pulled.
async fn pull_bodies(store: &Store, queue: i32, until: u64) -> Vec<String> {
    let topic = std::str::from_utf8(TOPIC).unwrap();
    let mut bodies = Vec::new();
    let mut offset = 0;
    while offset < until {
        let got = store
            .get_messages(&GetRequest {
                topic,
                queue_id: queue,
                offset,
                max_count: PULL_BATCH,
                max_bytes: 1 << 20,
                tag_hashes: None,
            })
            .await
            .unwrap();
        assert!(got.message_count > 0, "pull at {offset} found nothing");
        let mut at = 0;
        while at < got.body.len() {
            let record = DecodedRecord::decode(&got.body[at..]).unwrap();
            bodies.push(String::from_utf8(record.record.body.to_vec()).unwrap());
            at += record.total_size;
        }
        offset = got.next_begin_offset;
    }
    bodies
}

/// Queue offsets below the cache: where a lagging consumer reads from disk.
fn below_cache(store: &Store, queue: i32) -> u64 {
    let q = store.inner.find_queue("Lagging", queue).unwrap();
    RECORDS - q.cached_entries() as u64
}

#[test]
fn a_lagging_pull_reads_a_window_of_entries_per_disk_read() {
    let dir = tempfile::tempdir().unwrap();
    executor().run(async move {
        let store = filled_store(dir.path(), 1).await;
        let until = below_cache(&store, 0);
        assert!(
            until >= 4 * CQ_WINDOW_ENTRIES_MIN as u64,
            "entries left on disk: {until}"
        );
        let q = store.inner.find_queue("Lagging", 0).unwrap();
        let reads_before = q.file_reads.get();
        let bodies = pull_bodies(&store, 0, until).await;
        let expected: Vec<String> = (0..bodies.len()).map(|i| format!("q0-m{i}")).collect();
        assert_eq!(
            bodies, expected,
            "a pull through the window returns every record in order"
        );
        let reads = q.file_reads.get() - reads_before;
        let pulls = until.div_ceil(u64::from(PULL_BATCH));
        // One read per window of the queue's share, not one per pull.
        let windows = until.div_ceil(CQ_CACHE_TOTAL as u64);
        assert!(
            reads <= windows,
            "{reads} consume-queue reads for {pulls} pulls (at most {windows} windows)"
        );
        // The window is bounded by the queue's share and counted in the store's memory.
        let window_bytes = (CQ_CACHE_TOTAL * std::mem::size_of::<super::CqEntry>()) as u64;
        assert!(q.held_bytes() >= window_bytes, "window not counted");
        store.close().await.unwrap();
    });
}

#[test]
fn probes_read_only_what_they_ask_for() {
    let dir = tempfile::tempdir().unwrap();
    executor().run(async move {
        let store = filled_store(dir.path(), 1).await;
        let q = store.inner.find_queue("Lagging", 0).unwrap();
        let held = q.held_bytes();
        let reads_before = q.file_reads.get();
        for probe in [10u64, 500, 20, 900] {
            let entry = q.read(probe, 1).await.unwrap();
            assert_eq!(entry.len(), 1);
            let next = q.read(probe + 1, 1).await.unwrap();
            assert!(next[0].physical_offset > entry[0].physical_offset);
        }
        assert_eq!(q.file_reads.get() - reads_before, 8, "one read per probe");
        assert_eq!(q.held_bytes(), held, "a probe leaves no window behind");
        store.close().await.unwrap();
    });
}

#[test]
fn a_share_too_small_for_a_window_keeps_reading_per_pull() {
    let dir = tempfile::tempdir().unwrap();
    executor().run(async move {
        // Two queues split the cache: each share is half a window.
        let store = filled_store(dir.path(), 2).await;
        let until = below_cache(&store, 1);
        let q = store.inner.find_queue("Lagging", 1).unwrap();
        let held = q.held_bytes();
        let reads_before = q.file_reads.get();
        let bodies = pull_bodies(&store, 1, until).await;
        let expected: Vec<String> = (0..bodies.len()).map(|i| format!("q1-m{i}")).collect();
        assert_eq!(bodies, expected);
        let pulls = until.div_ceil(u64::from(PULL_BATCH));
        assert!(
            q.file_reads.get() - reads_before >= pulls,
            "no window below the minimum"
        );
        assert_eq!(q.held_bytes(), held, "no window memory below the minimum");
        store.close().await.unwrap();
    });
}
