//! Recovery from torn and corrupt tails, lost derived files and a corrupt checkpoint. Each test
//! writes through the real store, stops it without a clean close (as a crash would), damages
//! the files on disk, reopens, and checks that the store ends exactly before the damage with
//! everything before it intact — and that appends continue from there.

mod store_support;

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ringmq_broker::store::{
    offset, AppendedRecord, FlushMode, GetRequest, GetStatus, Store, StoreConfig,
};
use store_support::{record, run, small_config, split_records};

/// A config whose periodic task never runs during the test, so the checkpoint stays at the
/// start and recovery has to scan the records.
fn crash_config(root: &Path) -> StoreConfig {
    let mut c = small_config(root, FlushMode::Sync);
    c.flush_interval_ms = 3_600_000;
    c
}

fn body_of(i: usize) -> Vec<u8> {
    format!("record-{i:05}-").repeat(20 + i % 30).into_bytes()
}

/// Appends `n` records round-robin over 2 queues and drops the store without closing it.
fn write_and_crash(cfg: &StoreConfig, n: usize) -> Vec<AppendedRecord> {
    run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        let mut out = Vec::new();
        for i in 0..n {
            let b = body_of(i);
            let r = store
                .append(&[record("C", (i % 2) as i32, &b, b"KEYS\x01key\x02")])
                .await
                .unwrap();
            out.push(r.records[0]);
        }
        drop(store);
        out
    })
}

fn segment_path(cfg: &StoreConfig, global: u64) -> (PathBuf, u64) {
    let local = offset::split_global(global).1;
    let base = local - local % cfg.segment_size_bytes;
    (
        cfg.shard_dir()
            .join("commitlog")
            .join(format!("{base:020}")),
        local - base,
    )
}

fn flip_byte(path: &Path, at: u64) {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut b).unwrap();
    b[0] ^= 0x5A;
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&b).unwrap();
    f.sync_all().unwrap();
}

/// Reopens and checks: exactly records `0..keep` are there, intact and in order, and the next
/// append lands where the first dropped record was.
fn check_recovered(cfg: &StoreConfig, appended: &[AppendedRecord], keep: usize) {
    run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        let expected_end = appended
            .get(keep)
            .map_or(store.log_offsets().end, |r| r.physical_offset);
        assert_eq!(store.log_offsets().end, expected_end);
        for q in 0..2i32 {
            let want: Vec<usize> = (0..keep).filter(|i| i % 2 == q as usize).collect();
            assert_eq!(store.max_offset("C", q), want.len() as u64, "queue {q}");
            let mut got = Vec::new();
            let mut next = 0;
            loop {
                let req = GetRequest {
                    topic: "C",
                    queue_id: q,
                    offset: next,
                    max_count: 32,
                    max_bytes: 1 << 20,
                    tag_hashes: None,
                };
                let res = store.get_messages(&req).await.unwrap();
                if res.status != GetStatus::Found {
                    break;
                }
                for d in split_records(&res.body) {
                    got.push((
                        d.record.queue_offset as u64,
                        d.record.body.to_vec(),
                        d.record.physical_offset as u64,
                    ));
                }
                next = res.next_begin_offset;
            }
            assert_eq!(got.len(), want.len());
            for (k, (qo, body, phys)) in got.iter().enumerate() {
                assert_eq!(*qo, k as u64);
                assert_eq!(body, &body_of(want[k]));
                assert_eq!(*phys, appended[want[k]].physical_offset);
            }
        }
        // Writing continues exactly where the damage was.
        if keep < appended.len() {
            let q = (keep % 2) as i32;
            let out = store
                .append(&[record("C", q, b"after", b"")])
                .await
                .unwrap();
            assert_eq!(
                out.records[0].physical_offset,
                appended[keep].physical_offset
            );
            let kept_in_q = (0..keep).filter(|i| i % 2 == q as usize).count();
            assert_eq!(out.records[0].queue_offset, kept_in_q as u64);
        }
        let by_key = store
            .query_messages("C", "key", false, 10_000, 0, i64::MAX)
            .await
            .unwrap();
        assert_eq!(by_key.message_count as usize, keep);
        store.close().await.unwrap();
    });
}

#[test]
fn truncated_mid_record_is_cut_there() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = crash_config(dir.path());
    let appended = write_and_crash(&cfg, 40);
    let last = appended[39];
    let (path, at) = segment_path(&cfg, last.physical_offset);
    // Zero the second half of the last record, as a torn write leaves it.
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(at + u64::from(last.size) / 2))
        .unwrap();
    f.write_all(&vec![0u8; last.size as usize]).unwrap();
    f.sync_all().unwrap();
    check_recovered(&cfg, &appended, 39);
}

#[test]
fn file_cut_short_mid_record_is_cut_there() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = crash_config(dir.path());
    let appended = write_and_crash(&cfg, 25);
    let last = appended[24];
    let (path, at) = segment_path(&cfg, last.physical_offset);
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(at + 10).unwrap();
    f.sync_all().unwrap();
    check_recovered(&cfg, &appended, 24);
}

#[test]
fn flipped_byte_in_last_record_is_cut_there() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = crash_config(dir.path());
    let appended = write_and_crash(&cfg, 30);
    let last = appended[29];
    let (path, at) = segment_path(&cfg, last.physical_offset);
    flip_byte(&path, at + u64::from(last.size) - 40); // inside the body
    check_recovered(&cfg, &appended, 29);
}

#[test]
fn corrupt_middle_record_drops_it_and_everything_after() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = crash_config(dir.path());
    // Enough records for several 64 KiB segments; damage one in the second segment.
    let appended = write_and_crash(&cfg, 400);
    let seg =
        |r: &AppendedRecord| offset::split_global(r.physical_offset).1 / cfg.segment_size_bytes;
    let victim = appended.iter().position(|r| seg(r) == 1).unwrap() + 3;
    assert!(
        appended.iter().any(|r| seg(r) >= 2),
        "test needs a third segment"
    );
    let (path, at) = segment_path(&cfg, appended[victim].physical_offset);
    flip_byte(&path, at + 4); // the magic
    check_recovered(&cfg, &appended, victim);
    let later = cfg
        .shard_dir()
        .join("commitlog")
        .join(format!("{:020}", 2 * cfg.segment_size_bytes));
    // Recovery deletes the segments after the damage; the reopened store may already have
    // created the next one again ahead of the log end (zero-ahead), but then without a byte of
    // the old records in it.
    if later.exists() {
        let bytes = std::fs::read(&later).unwrap();
        assert!(
            bytes.iter().all(|&b| b == 0),
            "a segment after the damage holds stale bytes"
        );
    }
}

#[test]
fn lost_consume_queues_and_bad_checkpoint_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crash_config(dir.path());
    cfg.flush_interval_ms = 10;
    let appended = run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        let mut out = Vec::new();
        for i in 0..120 {
            let b = body_of(i);
            out.push(
                store
                    .append(&[record("C", (i % 2) as i32, &b, b"KEYS\x01key\x02")])
                    .await
                    .unwrap()
                    .records[0],
            );
        }
        store.close().await.unwrap();
        out
    });
    cfg.flush_interval_ms = 3_600_000;
    // Clean shutdown, but the derived files are gone and the checkpoint is garbage.
    std::fs::remove_dir_all(cfg.shard_dir().join("consumequeue")).unwrap();
    std::fs::remove_file(cfg.shard_dir().join("clean_shutdown")).unwrap();
    flip_byte(&cfg.shard_dir().join("checkpoint"), 9);
    check_recovered(&cfg, &appended, 120);
    // And again with the checkpoint intact but the index lost.
    for f in std::fs::read_dir(cfg.shard_dir().join("index")).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    std::fs::remove_file(cfg.shard_dir().join("clean_shutdown")).unwrap();
    run(|| async {
        let store = Store::open(cfg.clone()).await.unwrap();
        assert_eq!(store.max_offset("C", 0), 60);
        let by_key = store
            .query_messages("C", "key", false, 10_000, 0, i64::MAX)
            .await
            .unwrap();
        assert_eq!(by_key.message_count, 120);
        store.close().await.unwrap();
    });
}
