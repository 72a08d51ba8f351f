//! The write cadence of derived files, checked against a trace of the real I/O (glommio files
//! behind `trace::TracedFile`): a write round writes only the full pages of consume-queue and
//! index files and keeps each partial last page in memory; only a checkpoint (or a clean stop)
//! writes the partial pages, fdatasyncs them, and then vouches for them. The periodic task is
//! kept out of the way (hour-long intervals) and the rounds are run by hand.

use std::path::{Path, PathBuf};

use ringmq_proto::message::Record;
use ringmq_testkit::sample_record;

use super::consume_queue::CQ_ENTRY_BYTES;
use super::index::INDEX_ENTRY_BYTES;
use super::test_support::{executor, quiet_config};
use super::trace::{self, Event};
use super::{flush, Store, StoreConfig, PAGE_BYTES};

/// Queues that each hold a partial page.
const QUEUES: i32 = 16;
/// Entries each queue gets first: well inside one page (10 × 20 bytes).
const ENTRIES_EACH: u64 = 10;
/// Entries queue 0 holds in the end: one full page (204.8 entries) plus a partial one, with an
/// entry straddling the page boundary.
const ENTRIES_PAST_A_PAGE: u64 = 300;
/// The shard's consume-queue cache: 32 entries per queue at most, so most of queue 0's entries
/// are read from its file (disk and memory tail).
const CQ_CACHE_TOTAL: usize = 32;
/// Keyed records of the index check: fewer than a page of index entries (100 × 32 bytes).
const KEYED_RECORDS: u64 = 100;
fn config(root: &Path) -> StoreConfig {
    let mut c = quiet_config(root);
    c.cq_cache_entries_total = CQ_CACHE_TOTAL;
    c
}

fn record<'a>(queue_id: i32, body: &'a [u8], properties: &'a [u8]) -> Record<'a> {
    sample_record(b"Cadence", queue_id, body, properties)
}

/// Appends `n` records to `queue`; returns their physical offsets.
async fn append(store: &Store, queue: i32, n: u64) -> Vec<u64> {
    let mut offsets = Vec::new();
    for i in 0..n {
        let body = format!("q{queue}-m{i}");
        let out = store
            .append(&[record(queue, body.as_bytes(), b"")])
            .await
            .unwrap();
        offsets.push(out.records[0].physical_offset);
    }
    offsets
}

/// Writes that started on files under `dir`, as (path, position, length).
fn writes_under(events: &[Event], dir: &Path) -> Vec<(PathBuf, u64, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::WriteStart { path, pos, len, .. } if path.starts_with(dir) => {
                Some((path.clone(), *pos, *len))
            }
            _ => None,
        })
        .collect()
}

fn syncs_under(events: &[Event], dir: &Path) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::SyncDone { path, .. } if path.starts_with(dir)))
        .count()
}

/// Runs one write-only round (what the periodic task does between checkpoints), traced.
async fn traced_write_round(store: &Store) -> Vec<Event> {
    trace::start();
    flush::write_derived(&store.inner).await.unwrap();
    trace::take()
}

/// Runs one checkpoint, traced.
async fn traced_checkpoint(store: &Store) -> Vec<Event> {
    trace::start();
    flush::flush_derived(&store.inner).await.unwrap();
    trace::take()
}

/// The physical offsets queue `queue` reads back for offsets `[0, n)`.
async fn read_back(store: &Store, queue: i32, n: u64) -> Vec<u64> {
    let q = store
        .inner
        .find_queue("Cadence", queue)
        .expect("queue exists");
    let entries = q.read(0, n as usize).await.unwrap();
    entries.iter().map(|e| e.physical_offset).collect()
}

#[test]
fn a_write_round_writes_only_full_pages_and_the_checkpoint_writes_the_partial_ones() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let cq_dir = cfg.shard_dir().join("consumequeue");
    executor().run(async move {
        let store = Store::open(cfg.clone()).await.unwrap();
        let mut offsets = Vec::new();
        for q in 0..QUEUES {
            offsets.push(append(&store, q, ENTRIES_EACH).await);
        }
        // Every queue holds a partial page only: the old cadence rewrote all 16 here.
        let before = store.stats().cq_writes;
        let events = traced_write_round(&store).await;
        assert_eq!(
            writes_under(&events, &cq_dir),
            vec![],
            "no partial page written"
        );
        assert_eq!(store.stats().cq_writes, before, "the counter agrees");
        // Queue 0 fills its first page: the round writes that page alone, nothing past it.
        let more = ENTRIES_PAST_A_PAGE - ENTRIES_EACH;
        offsets[0].extend(append(&store, 0, more).await);
        let events = traced_write_round(&store).await;
        let full = align_down_entries(ENTRIES_PAST_A_PAGE);
        assert_eq!(
            writes_under(&events, &cq_dir),
            vec![(cq_dir.join("Cadence/0.cq"), 0, full)],
            "one write of queue 0's full page"
        );
        assert_eq!(syncs_under(&events, &cq_dir), 0, "write rounds never sync");
        assert_eq!(store.stats().cq_writes, before + 1);
        assert_eq!(store.stats().cq_bytes_written, full);
        // Entries of the unwritten partial page (and the one straddling the page boundary)
        // are served from memory; the cache holds only the newest 32.
        assert_eq!(read_back(&store, 0, ENTRIES_PAST_A_PAGE).await, offsets[0]);
        assert_bounded_memory(&store);
        check_checkpoint_writes_partial_pages(&store, &cq_dir).await;
        store.close().await.unwrap();
        // A clean stop wrote every partial page: the reopened store reads them from disk.
        let store = Store::open(cfg).await.unwrap();
        for q in 0..QUEUES {
            let n = offsets[q as usize].len() as u64;
            assert_eq!(store.max_offset("Cadence", q), n);
            assert_eq!(read_back(&store, q, n).await, offsets[q as usize]);
        }
        store.close().await.unwrap();
    });
}

/// Bytes of the full pages of `entries` consume-queue entries.
fn align_down_entries(entries: u64) -> u64 {
    let bytes = entries * CQ_ENTRY_BYTES as u64;
    bytes - bytes % PAGE_BYTES
}

/// Each queue holds at most its cache share (twice it while the deque's spare capacity waits
/// to be trimmed) plus one page of file tail; the total is what GET_BROKER_RUNTIME_INFO reports.
fn assert_bounded_memory(store: &Store) {
    let per_queue =
        2 * CQ_CACHE_TOTAL * std::mem::size_of::<super::CqEntry>() + PAGE_BYTES as usize;
    let bound = QUEUES as u64 * per_queue as u64;
    let held = store.memory_usage().cq_cache_bytes;
    assert!(held <= bound, "{held} bytes held, bound {bound}");
    let tail = store
        .inner
        .find_queue("Cadence", 0)
        .unwrap()
        .file
        .borrow()
        .held_bytes();
    assert!(tail <= PAGE_BYTES, "queue 0's tail holds {tail} bytes");
}

/// The checkpoint writes each queue's partial page once, fdatasyncs every queue file, and only
/// then writes the checkpoint page, which covers everything dispatched.
async fn check_checkpoint_writes_partial_pages(store: &Store, cq_dir: &Path) {
    let events = traced_checkpoint(store).await;
    let writes = writes_under(&events, cq_dir);
    assert_eq!(writes.len(), QUEUES as usize, "one partial page per queue");
    let page0 = align_down_entries(ENTRIES_PAST_A_PAGE);
    assert!(writes.contains(&(cq_dir.join("Cadence/0.cq"), page0, PAGE_BYTES)));
    assert_eq!(syncs_under(&events, cq_dir), QUEUES as usize);
    let checkpoint = store.inner.checkpoint_path();
    let cp_write = events
        .iter()
        .position(|e| matches!(e, Event::WriteStart { path, .. } if *path == checkpoint))
        .expect("a checkpoint was written");
    let last_cq_sync = events
        .iter()
        .rposition(|e| matches!(e, Event::SyncDone { path, .. } if path.starts_with(cq_dir)))
        .unwrap();
    assert!(
        last_cq_sync < cp_write,
        "the checkpoint waits for the queue files"
    );
    let cp = store.inner.last_checkpoint.get().unwrap();
    assert_eq!(cp.log_offset, store.inner.state.borrow().dispatched);
}

#[test]
fn the_key_index_keeps_its_partial_page_for_the_checkpoint_too() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let idx_dir = cfg.shard_dir().join("index");
    executor().run(async move {
        let store = Store::open(cfg).await.unwrap();
        for i in 0..KEYED_RECORDS {
            let props = format!("KEYS\x01key-{i}\x02");
            store
                .append(&[record(0, b"keyed", props.as_bytes())])
                .await
                .unwrap();
        }
        assert!(KEYED_RECORDS * (INDEX_ENTRY_BYTES as u64) < PAGE_BYTES);
        let events = traced_write_round(&store).await;
        assert_eq!(
            writes_under(&events, &idx_dir),
            vec![],
            "no partial index page"
        );
        let events = traced_checkpoint(&store).await;
        assert_eq!(writes_under(&events, &idx_dir).len(), 1, "the partial page");
        assert_eq!(syncs_under(&events, &idx_dir), 1);
        store.close().await.unwrap();
    });
}

#[test]
fn a_crash_between_checkpoints_loses_no_entry_of_a_partial_page() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    executor().run(async move {
        let store = Store::open(cfg.clone()).await.unwrap();
        let mut offsets = Vec::new();
        for q in 0..QUEUES {
            offsets.push(append(&store, q, ENTRIES_EACH).await);
        }
        offsets[0].extend(append(&store, 0, ENTRIES_PAST_A_PAGE - ENTRIES_EACH).await);
        traced_write_round(&store).await;
        let end = store.log_offsets().end;
        // Dropped without close: the partial pages never reach the disk, as in a crash (the
        // log itself was written: ASYNC_FLUSH appends completed).
        drop(store);
        // Let the background tasks see the store is closing and exit.
        glommio::timer::sleep(std::time::Duration::from_millis(50)).await;
        let store = Store::open(cfg).await.unwrap();
        assert_eq!(store.log_offsets().end, end);
        for q in 0..QUEUES {
            let n = offsets[q as usize].len() as u64;
            assert_eq!(store.max_offset("Cadence", q), n, "queue {q}");
            assert_eq!(read_back(&store, q, n).await, offsets[q as usize]);
        }
        store.close().await.unwrap();
    });
}
