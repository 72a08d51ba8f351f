//! The checkpoint cadence: consume-queue pages are written every flush round (so they do not
//! pile up in memory), but synced and vouched for by a checkpoint only every
//! `checkpoint_interval_ms`, or once `checkpoint_max_log_bytes` of log were dispatched.

mod store_support;

use std::time::{Duration, Instant};

use ringmq_broker::store::consume_queue::CQ_ENTRY_BYTES;
use ringmq_broker::store::{FlushMode, Store};
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

#[test]
fn queue_pages_are_written_between_checkpoints_and_only_a_checkpoint_vouches_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = small_config(dir.path(), FlushMode::Async);
    cfg.checkpoint_interval_ms = 3_600_000;
    cfg.checkpoint_max_log_bytes = u64::MAX;
    let cq_file = cfg.shard_dir().join("consumequeue/CP/0.cq");
    run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        let at_open = store.checkpointed_offset();
        append(&store, RECORDS).await;
        let cq_file = &cq_file;
        let written = |entries: u64| {
            let want = entries * CQ_ENTRY_BYTES as u64;
            move || std::fs::metadata(cq_file).is_ok_and(|m| m.len() >= want)
        };
        wait_until("a round writing the queue's entries", written(RECORDS)).await;
        // Entries onto the next page: seeing them on disk means a later round ran, so the
        // round that wrote the first ones had finished (rounds run one after another).
        append(&store, RECORDS / 2).await;
        wait_until("a later round", written(RECORDS * 3 / 2)).await;
        assert_eq!(
            store.checkpointed_offset(),
            at_open,
            "write-only rounds wrote no checkpoint"
        );
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
