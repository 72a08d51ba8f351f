//! The store's API end to end on real O_DIRECT files: appends, pulls, statuses, restarts, ids,
//! keys, time lookups, waiters, replication.

mod store_support;

use std::rc::Rc;
use std::time::Duration;

use ringmq_broker::store::{
    offset, AppendStatus, AppendedRecord, FlushMode, GetRequest, GetStatus, Store,
};
use ringmq_proto::message::tag_hash;
use store_support::{record, run, small_config, split_records};

fn pull(topic: &str, queue_id: i32, offset: u64) -> GetRequest<'_> {
    GetRequest {
        topic,
        queue_id,
        offset,
        max_count: 32,
        max_bytes: 256 * 1024,
        tag_hashes: None,
    }
}

#[test]
fn append_then_pull_in_both_flush_modes() {
    for mode in [FlushMode::Async, FlushMode::Sync] {
        let dir = tempfile::tempdir().unwrap();
        run(|| async {
            let store = Store::open(small_config(dir.path(), mode)).await.unwrap();
            let bodies: Vec<Vec<u8>> = (0..60)
                .map(|i| format!("body-{i}").repeat(i % 7 + 1).into_bytes())
                .collect();
            let mut last_phys = 0;
            for (i, chunk) in bodies.chunks(6).enumerate() {
                let recs: Vec<_> = chunk
                    .iter()
                    .enumerate()
                    .map(|(j, b)| record("T1", ((i * 6 + j) % 3) as i32, b, b""))
                    .collect();
                let out = store.append(&recs).await.unwrap();
                assert_eq!(out.status, AppendStatus::PutOk);
                for r in &out.records {
                    assert!(r.physical_offset > last_phys || last_phys == 0);
                    assert_eq!(offset::split_global(r.physical_offset).0, 3);
                    last_phys = r.physical_offset;
                }
            }
            for q in 0..3 {
                assert_eq!(store.max_offset("T1", q), 20);
                let res = store.get_messages(&pull("T1", q, 0)).await.unwrap();
                assert_eq!(res.status, GetStatus::Found);
                assert_eq!(res.message_count, 20);
                assert_eq!(res.next_begin_offset, 20);
                for (k, d) in split_records(&res.body).iter().enumerate() {
                    assert_eq!(d.record.queue_offset, k as i64);
                    assert_eq!(d.record.queue_id, q);
                    assert_eq!(d.record.body, &bodies[k * 3 + q as usize][..]);
                    assert_eq!(offset::split_global(d.record.physical_offset as u64).0, 3);
                }
            }
            let stats = store.stats();
            assert!(stats.writes > 0 && stats.bytes_written > 0);
            if mode == FlushMode::Sync {
                assert!(stats.fdatasyncs > 0);
                assert_eq!(stats.records_synced, 60);
            }
            let lo = store.log_offsets();
            assert!(lo.min <= lo.flushed && lo.flushed <= lo.written && lo.written <= lo.end);
            store.close().await.unwrap();
        });
    }
}

#[test]
fn pull_statuses_filters_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    run(|| async {
        let store = Store::open(small_config(dir.path(), FlushMode::Async))
            .await
            .unwrap();
        let res = store.get_messages(&pull("NONE", 0, 0)).await.unwrap();
        assert_eq!(res.status, GetStatus::NoMessageInQueue);
        append_ten_with_alternating_tags(&store).await;
        assert_eq!(
            store.get_messages(&pull("T", 0, 10)).await.unwrap().status,
            GetStatus::OffsetOverflowOne
        );
        let bad = store.get_messages(&pull("T", 0, 15)).await.unwrap();
        assert_eq!(
            (bad.status, bad.next_begin_offset),
            (GetStatus::OffsetOverflowBadly, 10)
        );
        check_tag_filters(&store).await;
        check_count_and_byte_limits(&store).await;
        store.close().await.unwrap();
    });
}

/// Ten 100-byte records to (T, 0): TagA at even queue offsets, TagB at odd ones.
async fn append_ten_with_alternating_tags(store: &Store) {
    for i in 0..10 {
        let tags = if i % 2 == 0 {
            "TAGS\x01TagA\x02"
        } else {
            "TAGS\x01TagB\x02"
        };
        let body = vec![b'x'; 100];
        store
            .append(&[record("T", 0, &body, tags.as_bytes())])
            .await
            .unwrap();
    }
}

/// Tag filters over [`append_ten_with_alternating_tags`]: TagB finds the odd offsets; a tag no
/// record has scans to the end and finds nothing.
async fn check_tag_filters(store: &Store) {
    let only_b = [tag_hash("TagB")];
    let res = store
        .get_messages(&GetRequest {
            tag_hashes: Some(&only_b),
            ..pull("T", 0, 0)
        })
        .await
        .unwrap();
    assert_eq!(res.status, GetStatus::Found);
    assert_eq!(res.message_count, 5);
    assert!(split_records(&res.body)
        .iter()
        .all(|d| d.record.queue_offset % 2 == 1));

    let none = [tag_hash("TagC")];
    let res = store
        .get_messages(&GetRequest {
            tag_hashes: Some(&none),
            ..pull("T", 0, 3)
        })
        .await
        .unwrap();
    assert_eq!(
        (res.status, res.next_begin_offset),
        (GetStatus::NoMatchedMessage, 10)
    );
}

/// `max_count` and `max_bytes` over [`append_ten_with_alternating_tags`].
async fn check_count_and_byte_limits(store: &Store) {
    let res = store
        .get_messages(&GetRequest {
            max_count: 3,
            ..pull("T", 0, 2)
        })
        .await
        .unwrap();
    assert_eq!((res.message_count, res.next_begin_offset), (3, 5));
    // max_bytes: each record is 91 + 100 + 1 + 10 = 202 bytes; 500 bytes allow two.
    let res = store
        .get_messages(&GetRequest {
            max_bytes: 500,
            ..pull("T", 0, 0)
        })
        .await
        .unwrap();
    assert_eq!(
        (res.message_count, res.next_begin_offset, res.body.len()),
        (2, 2, 404)
    );
    // The first record is returned even when larger than max_bytes.
    let res = store
        .get_messages(&GetRequest {
            max_bytes: 10,
            ..pull("T", 0, 0)
        })
        .await
        .unwrap();
    assert_eq!(res.message_count, 1);
}

#[test]
fn restart_keeps_everything_and_continues_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), FlushMode::Sync);
    let body = vec![7u8; 900];
    let first_end = run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        for i in 0..150 {
            store
                .append(&[record("R", i % 2, &body, b"KEYS\x01k1 k2\x02")])
                .await
                .unwrap();
        }
        let end = store.log_offsets().end;
        store.close().await.unwrap();
        end
    });
    run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        assert_eq!(store.log_offsets().end, first_end);
        assert_eq!(store.max_offset("R", 0), 75);
        assert_eq!(store.max_offset("R", 1), 75);
        let out = store.append(&[record("R", 1, &body, b"")]).await.unwrap();
        assert_eq!(out.records[0].queue_offset, 75);
        let mut next = 0;
        let mut seen = 0;
        loop {
            let res = store.get_messages(&pull("R", 1, next)).await.unwrap();
            if res.status != GetStatus::Found {
                break;
            }
            for d in split_records(&res.body) {
                assert_eq!(d.record.queue_offset as u64, seen);
                seen += 1;
            }
            next = res.next_begin_offset;
        }
        assert_eq!(seen, 76);
        // Dropped without close: the next open must recover through the scan path.
        drop(store);
    });
    run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        assert_eq!(store.max_offset("R", 1), 76);
        assert_eq!(store.max_offset("R", 0), 75);
        store.close().await.unwrap();
    });
}

#[test]
fn view_query_and_time_lookups() {
    let dir = tempfile::tempdir().unwrap();
    run(|| async {
        let store = Store::open(small_config(dir.path(), FlushMode::Async))
            .await
            .unwrap();
        let appended = append_thirty_keyed(&store).await;
        check_view_message(&store, &appended).await;
        check_query_messages(&store).await;
        check_time_lookups(&store, &appended).await;
        store.close().await.unwrap();
    });
}

/// 30 records to (Q, 0) with keys `order-{i % 5} shared` and UNIQ_KEY `UK{i:04}`, a pause
/// after every tenth so store timestamps differ.
async fn append_thirty_keyed(store: &Store) -> Vec<AppendedRecord> {
    let mut appended = Vec::new();
    for i in 0..30 {
        let props = format!("KEYS\x01order-{} shared\x02UNIQ_KEY\x01UK{i:04}\x02", i % 5);
        let out = store
            .append(&[record("Q", 0, b"payload", props.as_bytes())])
            .await
            .unwrap();
        appended.push(out.records[0]);
        if i % 10 == 9 {
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
    }
    appended
}

/// A record is viewed at its physical offset only; an offset on another shard is an error.
async fn check_view_message(store: &Store, appended: &[AppendedRecord]) {
    let r = appended[17];
    let bytes = store
        .view_message(r.physical_offset)
        .await
        .unwrap()
        .unwrap();
    let d = split_records(&bytes);
    assert_eq!(d[0].record.queue_offset, 17);
    assert_eq!(
        store.view_message(r.physical_offset + 1).await.unwrap(),
        None
    );
    let other_shard = offset::to_global(4, 0);
    assert!(store.view_message(other_shard).await.is_err());
}

/// Key queries over [`append_thirty_keyed`]: newest first, bounded by the max count, unique
/// keys only when asked for, per topic.
async fn check_query_messages(store: &Store) {
    let q = store
        .query_messages("Q", "order-2", false, 100, 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(q.message_count, 6);
    let offs: Vec<i64> = split_records(&q.body)
        .iter()
        .map(|d| d.record.queue_offset)
        .collect();
    assert_eq!(offs, vec![27, 22, 17, 12, 7, 2]);
    let q = store
        .query_messages("Q", "shared", false, 4, 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(q.message_count, 4);
    let q = store
        .query_messages("Q", "UK0013", true, 10, 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(q.message_count, 1);
    assert_eq!(split_records(&q.body)[0].record.queue_offset, 13);
    assert_eq!(
        store
            .query_messages("Q", "UK0013", false, 10, 0, i64::MAX)
            .await
            .unwrap()
            .message_count,
        0
    );
    assert_eq!(
        store
            .query_messages("OTHER", "shared", false, 10, 0, i64::MAX)
            .await
            .unwrap()
            .message_count,
        0
    );
}

/// Offset by store time, and the earliest store time, over [`append_thirty_keyed`].
async fn check_time_lookups(store: &Store, appended: &[AppendedRecord]) {
    let t20 = appended[20].store_timestamp;
    let found = store.search_offset_by_time("Q", 0, t20).await.unwrap();
    assert!(found <= 20 && appended[found as usize].store_timestamp == t20);
    assert_eq!(
        store.search_offset_by_time("Q", 0, i64::MAX).await.unwrap(),
        30
    );
    assert_eq!(store.search_offset_by_time("Q", 0, 0).await.unwrap(), 0);
    assert_eq!(
        store.earliest_store_time("Q", 0).await.unwrap(),
        Some(appended[0].store_timestamp)
    );
    assert_eq!(store.earliest_store_time("NOPE", 0).await.unwrap(), None);
}

#[test]
fn parked_pull_wakes_on_append() {
    let dir = tempfile::tempdir().unwrap();
    run(|| async {
        let store = Rc::new(
            Store::open(small_config(dir.path(), FlushMode::Async))
                .await
                .unwrap(),
        );
        let s2 = store.clone();
        let waiter = glommio::spawn_local(async move {
            s2.wait_for_messages("W", 0, 0, Duration::from_secs(30))
                .await
        });
        glommio::timer::sleep(Duration::from_millis(10)).await;
        store.append(&[record("W", 0, b"x", b"")]).await.unwrap();
        assert!(waiter.await);
        // A wait that nothing satisfies ends at its timeout with `false`.
        assert!(
            !store
                .wait_for_messages("W", 0, 1, Duration::from_millis(20))
                .await
        );
        Rc::try_unwrap(store).ok().unwrap().close().await.unwrap();
    });
}

#[test]
fn invalid_records_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    run(|| async {
        let store = Store::open(small_config(dir.path(), FlushMode::Async))
            .await
            .unwrap();
        let big = vec![0u8; 20 * 1024];
        let err = store
            .append(&[record("T", 0, b"ok", b""), record("T", 0, &big, b"")])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("exceeds"), "{err}");
        assert!(store
            .append(&[record("../x", 0, b"ok", b"")])
            .await
            .is_err());
        let long = "t".repeat(128);
        assert!(store.append(&[record(&long, 0, b"ok", b"")]).await.is_err());
        assert_eq!(store.max_offset("T", 0), 0);
        assert_eq!(store.log_offsets().end, store.log_offsets().min);
        store.close().await.unwrap();
    });
}

#[test]
fn slave_gets_byte_identical_log() {
    let master_dir = tempfile::tempdir().unwrap();
    let slave_dir = tempfile::tempdir().unwrap();
    run(|| async {
        let master = Store::open(small_config(master_dir.path(), FlushMode::Async))
            .await
            .unwrap();
        let slave = Store::open(small_config(slave_dir.path(), FlushMode::Sync))
            .await
            .unwrap();
        let body = vec![3u8; 1500];
        for i in 0..120 {
            master
                .append(&[record("M", i % 4, &body, b"KEYS\x01k\x02")])
                .await
                .unwrap();
        }
        let mut pos = master.log_offsets().min;
        let end = master.log_offsets().end;
        while pos < end {
            let chunk = master.read_raw(pos, 10_000).await.unwrap();
            assert!(!chunk.is_empty());
            let (status, new_end) = slave.append_raw(pos, &chunk).await.unwrap();
            assert_eq!(status, AppendStatus::PutOk);
            assert!(new_end > pos);
            pos = new_end;
        }
        assert_eq!(slave.log_offsets().end, end);
        for q in 0..4 {
            let a = master.get_messages(&pull("M", q, 0)).await.unwrap();
            let b = slave.get_messages(&pull("M", q, 0)).await.unwrap();
            assert_eq!(a.body, b.body);
            assert_eq!(slave.max_offset("M", q), 30);
        }
        // Wrong position and corrupt bytes are refused.
        assert!(slave.append_raw(pos + 1, b"whatever").await.is_err());
        let mut bad = master
            .read_raw(master.log_offsets().min, 4096)
            .await
            .unwrap();
        bad[100] ^= 1;
        let fresh = tempfile::tempdir().unwrap();
        let slave2 = Store::open(small_config(fresh.path(), FlushMode::Async))
            .await
            .unwrap();
        assert!(slave2
            .append_raw(master.log_offsets().min, &bad)
            .await
            .is_err());
        slave2.close().await.unwrap();
        master.close().await.unwrap();
        slave.close().await.unwrap();
    });
}

#[test]
fn reopening_with_another_segment_size_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), FlushMode::Async);
    run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        let body = vec![1u8; 1000];
        for _ in 0..100 {
            store.append(&[record("S", 0, &body, b"")]).await.unwrap();
        }
        store.close().await.unwrap();
        for size in [cfg.segment_size_bytes / 2, cfg.segment_size_bytes * 3] {
            let mut other = cfg.clone();
            other.segment_size_bytes = size;
            let err = Store::open(other).await.err().expect("refused");
            assert!(err.to_string().contains("segment size"), "{err}");
        }
        // The data is untouched and opens with the right size.
        let store = Store::open(cfg.clone()).await.unwrap();
        assert_eq!(store.max_offset("S", 0), 100);
        store.close().await.unwrap();
    });
}

#[test]
fn unwritten_tail_stays_bounded_under_many_appenders() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), FlushMode::Sync);
    let cap = cfg.tail_cache_bytes as u64;
    run(|| async {
        let store = Rc::new(Store::open(cfg.clone()).await.unwrap());
        let record_bytes = 91 + 2000 + 1;
        let tasks: Vec<_> = (0..64)
            .map(|t| {
                let store = store.clone();
                glommio::spawn_local(async move {
                    let body = vec![t as u8; 2000];
                    for _ in 0..20 {
                        let lo = store.log_offsets();
                        assert!(lo.end - lo.written < cap + record_bytes, "{lo:?}");
                        store
                            .append(&[record("B", t % 4, &body, b"")])
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await;
        }
        for q in 0..4 {
            assert_eq!(store.max_offset("B", q), 320);
        }
        Rc::try_unwrap(store).ok().unwrap().close().await.unwrap();
    });
}
