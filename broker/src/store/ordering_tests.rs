//! Ordering rules of the write path, checked against a trace of the real I/O (glommio files
//! behind `trace::TracedFile`): many appenders, small segments, the zeroer running ahead.
//!
//! * SYNC_FLUSH: an append is acknowledged only after an fdatasync of every segment holding its
//!   bytes *completed*, where that fdatasync *started after* a write covering those bytes
//!   completed. A flushed watermark read when the fdatasync completes (instead of when it is
//!   issued), or an fdatasync issued alongside a write still in flight, fails this.
//! * Zero writes never overlap a log write in flight and never land on a page a log write
//!   already wrote.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rand::{Rng, SeedableRng};
use ringmq_proto::message::Record;
use ringmq_testkit::sample_record;

use super::trace::{self, Event};
use super::{offset, AppendStatus, FlushMode, GetRequest, GetStatus, Store, StoreConfig};

const APPENDERS: usize = 24;
const APPENDS_EACH: usize = 40;

fn config(root: &Path, mode: FlushMode) -> StoreConfig {
    let mut c = StoreConfig::new(root, 1);
    c.segment_size_bytes = 64 * 1024;
    c.max_record_bytes = 16 * 1024;
    c.tail_cache_bytes = 256 * 1024;
    c.flush_mode = mode;
    c.flush_interval_ms = 10;
    c.checkpoint_interval_ms = 30;
    c.zero_ahead_bytes = 96 * 1024;
    c
}

fn record(queue_id: i32, body: &[u8]) -> Record<'_> {
    sample_record(b"Ordering", queue_id, body, b"")
}

/// Appends from many tasks that yield a random number of times between appends (so batches
/// arrive while writes and fdatasyncs are in flight), records an `Ack` per completed append,
/// then reopens the store and checks every acknowledged record reads back. Returns the trace.
fn run_traced(mode: FlushMode) -> Vec<Event> {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), mode);
    let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .make()
        .expect("glommio executor (run as root or with `ulimit -l unlimited`)");
    ex.run(async move {
        trace::start();
        let store = Rc::new(Store::open(cfg.clone()).await.unwrap());
        let tasks: Vec<_> = (0..APPENDERS)
            .map(|t| {
                let store = store.clone();
                glommio::spawn_local(async move {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(t as u64);
                    for _ in 0..APPENDS_EACH {
                        let body = vec![b'a' + (t % 26) as u8; rng.gen_range(1..3000)];
                        let out = store.append(&[record(t as i32 % 4, &body)]).await.unwrap();
                        assert_eq!(out.status, AppendStatus::PutOk);
                        let last = out.records.last().unwrap();
                        let end = offset::split_global(last.physical_offset).1 + last.size as u64;
                        trace::record(Event::Ack { end });
                        for _ in 0..rng.gen_range(0..4) {
                            futures_lite::future::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await;
        }
        Rc::try_unwrap(store).ok().unwrap().close().await.unwrap();
        let events = trace::take();
        let store = Store::open(cfg).await.unwrap();
        let mut total = 0;
        for q in 0..4 {
            let req = GetRequest {
                topic: "Ordering",
                queue_id: q,
                offset: 0,
                max_count: 10_000,
                max_bytes: 64 << 20,
                tag_hashes: None,
            };
            let res = store.get_messages(&req).await.unwrap();
            assert_eq!(res.status, GetStatus::Found);
            total += res.message_count as usize;
        }
        assert_eq!(total, APPENDERS * APPENDS_EACH, "every record reads back");
        store.close().await.unwrap();
        events
    })
}

/// The local base offset of a commit-log segment file, `None` for other files.
fn segment_base(path: &Path) -> Option<u64> {
    let parent = path.parent()?.file_name()?;
    (parent == "commitlog").then(|| path.file_name()?.to_str()?.parse().ok())?
}

#[derive(Default)]
struct SegmentTrace {
    /// End (within the file) of the log writes completed so far; log writes are contiguous.
    written_to: u64,
    /// `written_to` when each in-flight fdatasync started, by fdatasync id.
    syncs_in_flight: HashMap<u64, u64>,
    /// What fdatasyncs that completed have made durable.
    durable_to: u64,
    /// Highest page end any log write started on.
    log_started_to: u64,
    log_in_flight: Vec<(u64, u64)>,
    zero_in_flight: Vec<(u64, u64)>,
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// What [`check`] knows so far while replaying a trace.
#[derive(Default)]
struct Replay {
    segs: HashMap<PathBuf, SegmentTrace>,
    /// Segment file by local base offset.
    bases: HashMap<u64, PathBuf>,
    /// Log writes completed while an fdatasync of the log was in flight.
    pipelined: usize,
    acks: usize,
}

impl Replay {
    /// A write of `range` in `path` starts: zero and log writes never overlap in flight, and
    /// zeros never land below bytes the log started writing.
    fn write_start(&mut self, path: &Path, range: (u64, u64), zeros: bool) {
        let Some(base) = segment_base(path) else {
            return;
        };
        self.bases.insert(base, path.to_path_buf());
        let s = self.segs.entry(path.to_path_buf()).or_default();
        if zeros {
            assert!(
                s.log_in_flight.iter().all(|&r| !overlaps(r, range)),
                "zero write {range:?} overlaps a log write in flight"
            );
            assert!(
                range.0 >= s.log_started_to,
                "zero write {range:?} below log bytes (to {})",
                s.log_started_to
            );
            s.zero_in_flight.push(range);
        } else {
            assert!(
                s.zero_in_flight.iter().all(|&r| !overlaps(r, range)),
                "log write {range:?} overlaps a zero write in flight"
            );
            s.log_started_to = s.log_started_to.max(range.1);
            s.log_in_flight.push(range);
        }
    }

    /// A write of `range` in `path` completes: log writes complete contiguously.
    fn write_done(&mut self, path: &Path, range: (u64, u64), zeros: bool) {
        let Some(s) = self.segs.get_mut(path) else {
            return;
        };
        if zeros {
            s.zero_in_flight.retain(|&r| r != range);
        } else {
            s.log_in_flight.retain(|&r| r != range);
            assert!(range.0 <= s.written_to, "log writes are contiguous");
            s.written_to = s.written_to.max(range.1);
        }
        if !zeros && self.segs.values().any(|s| !s.syncs_in_flight.is_empty()) {
            self.pipelined += 1;
        }
    }

    /// An fdatasync of `path` starts: it covers what log writes completed before it.
    fn sync_start(&mut self, path: &Path, id: u64) {
        if let Some(s) = self.segs.get_mut(path) {
            let covered = s.written_to;
            s.syncs_in_flight.insert(id, covered);
        }
    }

    fn sync_done(&mut self, path: &Path, id: u64) {
        if let Some(s) = self.segs.get_mut(path) {
            let covered = s.syncs_in_flight.remove(&id).expect("started");
            s.durable_to = s.durable_to.max(covered);
        }
    }

    /// An append ending at local `end` was acknowledged: every segment holding its bytes is
    /// durable to them.
    fn ack(&mut self, end: u64, segment_size: u64) {
        self.acks += 1;
        let mut base = 0;
        while base < end {
            let need = (end - base).min(segment_size);
            let path = self.bases.get(&base).expect("acked bytes were written");
            let durable = self.segs[path].durable_to;
            assert!(
                durable >= need,
                "ack of local end {end}: segment {base} durable only to {durable}, needs {need}"
            );
            base += segment_size;
        }
    }
}

/// Replays the trace, asserting the rules; returns how many log writes completed while an
/// fdatasync of the log was in flight (pipelining at work).
fn check(events: &[Event], segment_size: u64, check_acks: bool) -> usize {
    let mut replay = Replay::default();
    for ev in events {
        match ev {
            Event::WriteStart {
                path,
                pos,
                len,
                zeros,
            } => replay.write_start(path, (*pos, pos + len), *zeros),
            Event::WriteDone {
                path,
                pos,
                len,
                zeros,
            } => replay.write_done(path, (*pos, pos + len), *zeros),
            Event::SyncStart { path, id } => replay.sync_start(path, *id),
            Event::SyncDone { path, id } => replay.sync_done(path, *id),
            Event::Ack { end } if check_acks => replay.ack(*end, segment_size),
            Event::Ack { .. } => {}
        }
    }
    if check_acks {
        assert_eq!(replay.acks, APPENDERS * APPENDS_EACH);
    }
    replay.pipelined
}

#[test]
fn sync_flush_acks_only_after_an_fdatasync_issued_after_the_write_completed() {
    // The runs must exercise the case the rule is about: writes completing while an fdatasync
    // of the log was in flight. Whether one does is up to the disk and the scheduler, so runs
    // repeat (a bounded number of times) until one does; every run is checked against the rule.
    const RUNS_MAX: usize = 10;
    let overlapped = (0..RUNS_MAX).any(|_| {
        let events = run_traced(FlushMode::Sync);
        check(&events, 64 * 1024, true) > 0
    });
    assert!(
        overlapped,
        "no write overlapped an fdatasync in {RUNS_MAX} runs"
    );
}

#[test]
fn zero_writes_never_touch_log_pages_async_flush() {
    let events = run_traced(FlushMode::Async);
    check(&events, 64 * 1024, false);
    let zero_writes = events
        .iter()
        .filter(|e| matches!(e, Event::WriteDone { zeros: true, .. }))
        .count();
    assert!(zero_writes > 0, "the zeroer ran");
}
