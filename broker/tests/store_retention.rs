//! Retention: expired segments and disk pressure delete whole segments; consume queues, index
//! and min offsets follow; the result survives a restart.

mod store_support;

use std::time::Duration;

use ringmq_broker::store::{offset, FlushMode, GetRequest, GetStatus, Store};
use store_support::{record, run, small_config, split_records};

fn req(q: i32, offset: u64) -> GetRequest<'static> {
    GetRequest {
        topic: "RT",
        queue_id: q,
        offset,
        max_count: 8,
        max_bytes: 1 << 20,
        tag_hashes: None,
    }
}

#[test]
fn expired_segments_go_and_offsets_move() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = small_config(dir.path(), FlushMode::Async);
    cfg.retention_check_interval_ms = 3_600_000; // only the explicit passes below
    let body = vec![9u8; 1000];
    let (min_q0, log_min) = run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        for i in 0..300 {
            store
                .append(&[record("RT", i % 2, &body, b"KEYS\x01rk\x02")])
                .await
                .unwrap();
        }
        // Only checkpointed segments may go: wait (bounded) for the periodic checkpoint to
        // cover everything appended.
        wait_checkpointed(&store).await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let none = store.run_retention(now, Some(0)).await.unwrap();
        assert_eq!(none.segments_deleted, 0, "nothing is 72 h old yet");

        let report = store
            .run_retention(now + 100 * 3600 * 1000, Some(0))
            .await
            .unwrap();
        assert!(report.segments_deleted >= 3, "{report:?}");
        let min_local = offset::split_global(report.min_offset).1;
        assert_eq!(min_local % cfg.segment_size_bytes, 0);
        assert_eq!(store.log_offsets().min, report.min_offset);

        let min_q0 = store.min_offset("RT", 0);
        assert!(min_q0 > 0);
        let res = store.get_messages(&req(0, 0)).await.unwrap();
        assert_eq!(
            (res.status, res.next_begin_offset),
            (GetStatus::OffsetTooSmall, min_q0)
        );
        let res = store.get_messages(&req(0, min_q0)).await.unwrap();
        assert_eq!(res.status, GetStatus::Found);
        let first = &split_records(&res.body)[0];
        assert_eq!(first.record.queue_offset as u64, min_q0);
        assert!(first.record.physical_offset as u64 >= report.min_offset);
        // The index no longer returns removed records.
        let q = store
            .query_messages("RT", "rk", false, 1000, 0, i64::MAX)
            .await
            .unwrap();
        assert_eq!(
            u64::from(q.message_count),
            300 - store.min_offset("RT", 0) - store.min_offset("RT", 1)
        );
        // Appends go on.
        store.append(&[record("RT", 0, &body, b"")]).await.unwrap();
        store.close().await.unwrap();
        (min_q0, report.min_offset)
    });
    run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        assert_eq!(store.log_offsets().min, log_min);
        assert_eq!(store.min_offset("RT", 0), min_q0);
        assert_eq!(store.max_offset("RT", 0), 151);
        assert_eq!(
            store.get_messages(&req(0, min_q0)).await.unwrap().status,
            GetStatus::Found
        );
        drop(store);
    });
    // An unclean stop after retention recovers the same min offsets.
    run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        assert_eq!(store.min_offset("RT", 0), min_q0);
        assert_eq!(store.max_offset("RT", 0), 151);
        store.close().await.unwrap();
    });
}

#[test]
fn disk_pressure_deletes_oldest_segment_per_pass() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), FlushMode::Sync);
    let body = vec![1u8; 2000];
    run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        for _ in 0..200 {
            store.append(&[record("RT", 0, &body, b"")]).await.unwrap();
        }
        wait_checkpointed(&store).await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let before = store.log_offsets().min;
        let r = store
            .run_retention(now, Some(cfg.disk_max_used_ratio_percent))
            .await
            .unwrap();
        assert_eq!(r.segments_deleted, 0, "at the ratio, not above it");
        let r = store.run_retention(now, Some(95)).await.unwrap();
        assert_eq!(r.segments_deleted, 1);
        assert_eq!(r.min_offset, before + cfg.segment_size_bytes);
        // The active segment is never deleted.
        for _ in 0..20 {
            store.run_retention(now, Some(99)).await.unwrap();
        }
        let lo = store.log_offsets();
        assert!(lo.min < lo.end);
        assert_eq!(store.max_offset("RT", 0), 200);
        store.close().await.unwrap();
    });
}

/// Waits, bounded, until the store's last checkpoint covers its whole log.
async fn wait_checkpointed(store: &Store) {
    let started = std::time::Instant::now();
    while store.checkpointed_offset() < store.log_offsets().end {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no checkpoint covered the log"
        );
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
}
