//! The checkpoint cadence: consume-queue pages are written every flush round once full (so they
//! do not pile up in memory), but a queue's partial last page is written, and everything synced
//! and vouched for by a checkpoint, only every `checkpoint_interval_ms`, once
//! `checkpoint_max_log_bytes` of log were dispatched, or at a clean stop.

mod store_support;

use std::time::{Duration, Instant};

use ringmq_broker::store::consume_queue::CQ_ENTRY_BYTES;
use ringmq_broker::store::{FlushMode, Store, PAGE_BYTES};
use store_support::{record, run, small_config};

/// Bound on waiting for a flush round (the flush interval is 20 ms).
const ROUND_WAIT_MAX: Duration = Duration::from_secs(30);
const RECORDS: u64 = 300;

async fn append(store: &Store, records: u64) {
    for i in 0..records {
        let body = format!("m{i}");
        store
            .append(&[record("CP", 0, body.as_bytes(), b"")])
            .await
            .unwrap();
    }
}

/// Waits, bounded, until `done` holds; sleeps between checks.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + ROUND_WAIT_MAX;
    while !done() {
        assert!(Instant::now() < deadline, "{what} never happened");
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
}

/// Bytes of the full pages of `entries` consume-queue entries.
fn full_pages(entries: u64) -> u64 {
    let bytes = entries * CQ_ENTRY_BYTES as u64;
    bytes - bytes % PAGE_BYTES
}

#[test]
fn full_queue_pages_are_written_between_checkpoints_and_the_partial_one_only_by_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = small_config(dir.path(), FlushMode::Async);
    cfg.checkpoint_interval_ms = 3_600_000;
    cfg.checkpoint_max_log_bytes = u64::MAX;
    let cq_file = cfg.shard_dir().join("consumequeue/CP/0.cq");
    run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        let at_open = store.checkpointed_offset();
        // The file is allocated ahead of its data, so its size says nothing: what was written
        // ends at the page of the last non-zero byte (an entry is never all zeros).
        let file_len = || {
            let bytes = std::fs::read(&cq_file).unwrap_or_default();
            let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |at| at + 1) as u64;
            end.div_ceil(PAGE_BYTES) * PAGE_BYTES
        };
        // 300 entries: one full page and a partial one.
        append(&store, RECORDS).await;
        wait_until("a round writing the queue's full page", || {
            file_len() >= full_pages(RECORDS)
        })
        .await;
        // Entries onto the next page: seeing it on disk means a later round ran, so the round
        // that wrote the first page had finished (rounds run one after another).
        append(&store, RECORDS / 2).await;
        let entries = RECORDS * 3 / 2;
        wait_until("a later round", || file_len() >= full_pages(entries)).await;
        // No round wrote the partial page: the old cadence rewrote it every round, so the file
        // reached the page past the last entry.
        assert_eq!(
            file_len(),
            full_pages(entries),
            "the partial page stays in memory"
        );
        assert_eq!(
            store.checkpointed_offset(),
            at_open,
            "write-only rounds wrote no checkpoint"
        );
        store.close().await.unwrap();
        // A clean stop writes the partial page: every entry is on disk.
        assert!(file_len() >= entries * CQ_ENTRY_BYTES as u64);
        let store = Store::open(cfg.clone()).await.unwrap();
        assert_eq!(store.max_offset("CP", 0), entries);
        store.close().await.unwrap();
    });
}

#[test]
fn a_checkpoint_follows_the_log_bytes_dispatched_since_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = small_config(dir.path(), FlushMode::Async);
    cfg.checkpoint_interval_ms = 3_600_000;
    cfg.checkpoint_max_log_bytes = 8 * 1024;
    run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        let at_open = store.checkpointed_offset();
        append(&store, RECORDS).await;
        let end = store.log_offsets().end;
        assert!(end - at_open > 8 * 1024, "the records pass the byte bound");
        wait_until("a checkpoint past the byte bound", || {
            store.checkpointed_offset() >= at_open + 8 * 1024
        })
        .await;
        store.close().await.unwrap();
    });
}
