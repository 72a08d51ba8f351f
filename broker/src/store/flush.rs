//! The write path behind appends: the writer task (O_DIRECT writes), the syncer task
//! (SYNC_FLUSH group-commit fdatasyncs, pipelined with the writer), the dispatcher (consume
//! queues, index, pull wake-ups) and the periodic task (interval fdatasync, derived-file flush,
//! checkpoint, retention).
//!
//! Batching is explicit: while a write is in flight, appends keep encoding into the tail cache;
//! the next write takes everything that gathered, up to a segment end. While an fdatasync is in
//! flight the next write proceeds; the fdatasync covers only what was written before it was
//! issued (see [`sync_round`]).

use std::rc::Rc;
use std::time::{Duration, Instant};

use ringmq_proto::message::{
    find_properties, peek_header, property, sysflag, DecodedRecord, MAGIC_BLANK,
};

use super::append_file::{AppendFile, Extent};
use super::backend::{DirectFile, File};
use super::checkpoint::{self, Checkpoint};
use super::commitlog::{CommitLog, Segment};
use super::consume_queue::{CqEntry, QueueState, CQ_ENTRY_BYTES};
use super::index::KeyIndex;
use super::offset::to_global;
use super::{align_down, align_up, FlushMode, Inner, Queues, State, StoreError};

enum Work {
    Run,
    Exit,
}

/// The writer task: one per store. It only writes; in SYNC_FLUSH the syncer task runs the
/// group-commit fdatasyncs alongside, so the next batch's write proceeds while the previous
/// fdatasync is in flight (see [`sync_round`] for why that keeps the promise exact).
pub(crate) async fn writer_loop(inner: Rc<Inner>) {
    // Appends taken by the rounds so far, and by the last round alone.
    let (mut appends_taken, mut last_round_appends) = (0, 0);
    loop {
        let work = inner
            .writer_wake
            .wait_for(|| {
                let log = &inner.state.borrow().log;
                if inner.failure.borrow().is_some() {
                    Some(Work::Exit)
                } else if log.end > log.written {
                    Some(Work::Run)
                } else if inner.closing.get() {
                    Some(Work::Exit)
                } else {
                    None
                }
            })
            .await;
        if matches!(work, Work::Exit) {
            break;
        }
        if should_linger(&inner, last_round_appends) {
            glommio::timer::sleep(Duration::from_micros(inner.config.write_linger_us)).await;
        }
        last_round_appends = inner.appends.get() - appends_taken;
        appends_taken += last_round_appends;
        if let Err(e) = write_round(&inner).await {
            inner.fail(e);
            break;
        }
    }
    inner.writer_done.set(true);
    inner.progress.notify_all();
}

/// Bytes waiting past which a write round never lingers: it is large already, and waiting
/// would only add latency.
pub(crate) const LINGER_MAX_PENDING_BYTES: u64 = 64 * 1024;
/// Fewest appends the last round must have carried for the next to linger: a sign that many
/// senders are waiting at once (sporadic pairs at a low rate are not).
pub(crate) const LINGER_MIN_LAST_ROUND_APPENDS: u64 = 4;

/// Whether the write round about to start first waits `write_linger_us` for more appends.
/// Each O_DIRECT write costs a device doorbell (a VM exit on virtio) and a completion wake-up
/// whatever it carries, so gathering concurrent appends into fewer writes saves CPU for both
/// the broker and its clients. It waits only when the last round carried several appends
/// ([`LINGER_MIN_LAST_ROUND_APPENDS`]: many are arriving concurrently, so more are likely
/// within the linger) and what waits is small: a lone sender, or a rate too low for neighbours
/// to meet, is written at once. An append is still acknowledged only after the write that
/// carries it completed.
fn should_linger(inner: &Inner, last_round_appends: u64) -> bool {
    if inner.config.write_linger_us == 0
        || last_round_appends < LINGER_MIN_LAST_ROUND_APPENDS
        || inner.closing.get()
    {
        return false;
    }
    let log = &inner.state.borrow().log;
    log.end - log.written < LINGER_MAX_PENDING_BYTES
}

/// The syncer task (SYNC_FLUSH only): whenever the log is written past `flushed` and no
/// fdatasync is in flight, runs one group commit. Exits once the writer has drained (closing)
/// and everything written is flushed, or on failure.
pub(crate) async fn syncer_loop(inner: Rc<Inner>) {
    if inner.config.flush_mode == FlushMode::Sync {
        loop {
            let work = inner
                .progress
                .wait_for(|| {
                    let log = &inner.state.borrow().log;
                    if inner.failure.borrow().is_some() {
                        Some(Work::Exit)
                    } else if log.written > log.flushed && !inner.syncing.get() {
                        Some(Work::Run)
                    } else if inner.closing.get() && inner.writer_done.get() {
                        Some(Work::Exit)
                    } else {
                        None
                    }
                })
                .await;
            if matches!(work, Work::Exit) {
                break;
            }
            if let Err(e) = sync_round(&inner).await {
                inner.fail(e);
                break;
            }
        }
    }
    inner.syncer_done.set(true);
    inner.progress.notify_all();
}

/// The segment starting at `base`, created and preallocated if it does not exist yet. One
/// creation at a time (the writer and the zeroer both call this), so a segment gets exactly
/// one file handle.
pub(crate) async fn segment_for_write(inner: &Inner, base: u64) -> Result<Rc<Segment>, StoreError> {
    loop {
        if let Some(seg) = inner.state.borrow().log.segments.get(&base) {
            return Ok(seg.clone());
        }
        if !inner.creating_segment.get() {
            break;
        }
        inner
            .progress
            .wait_for(|| (!inner.creating_segment.get()).then_some(()))
            .await;
    }
    inner.creating_segment.set(true);
    let created = create_segment(inner, base).await;
    inner.creating_segment.set(false);
    inner.progress.notify_all();
    created
}

async fn create_segment(inner: &Inner, base: u64) -> Result<Rc<Segment>, StoreError> {
    let path = CommitLog::segment_path(&inner.state.borrow().log.dir, base);
    let file = File::open(&path, true)
        .await
        .map_err(|e| StoreError::io("create segment", &path, e))?;
    file.pre_allocate(inner.config.segment_size_bytes)
        .await
        .map_err(|e| StoreError::io("preallocate segment", &path, e))?;
    let dir = path.parent().expect("segments live in a directory");
    super::backend::sync_dir(dir)
        .await
        .map_err(|e| StoreError::io("fsync directory", dir, e))?;
    let seg = Rc::new(Segment {
        base,
        file: Rc::new(file),
        path,
    });
    inner
        .state
        .borrow_mut()
        .log
        .segments
        .insert(base, seg.clone());
    Ok(seg)
}

/// Waits until no zero write overlaps `[from, to)` (page-aligned local offsets).
pub(crate) async fn wait_for_no_zeroing(inner: &Inner, from: u64, to: u64) {
    inner
        .progress
        .wait_for(|| match inner.zeroing.get() {
            Some((a, b)) if a < to && from < b => None,
            _ => Some(()),
        })
        .await
}

/// Writes `[written, end)` (clipped to the segment end), rewriting the partial first page in
/// place; then dispatches the records it covered and wakes appenders.
async fn write_round(inner: &Inner) -> Result<(), StoreError> {
    let (base, start, target) = {
        let st = inner.state.borrow();
        let log = &st.log;
        if log.end == log.written {
            return Ok(());
        }
        let base = log.segment_base(log.written);
        (base, log.written, log.end.min(base + log.segment_size))
    };
    let seg = segment_for_write(inner, base).await?;
    let page_start = align_down(start);
    let buf = {
        let st = inner.state.borrow();
        let mut buf = seg.file.alloc((align_up(target) - page_start) as usize);
        let len = (target - page_start) as usize;
        let cached = st.log.cache.copy_to(page_start, &mut buf[..len]);
        assert!(cached, "unwritten bytes are cached");
        buf
    };
    let len = buf.len() as u64;
    // Zeros must never land on log bytes: a zero write in flight over these pages finishes
    // first. (The zeroer only claims pages at or past the log end, so none can start later.)
    wait_for_no_zeroing(inner, page_start, page_start + len).await;
    let started = Instant::now();
    seg.file
        .write_at(buf, page_start - base)
        .await
        .map_err(|e| StoreError::io("write", &seg.path, e))?;
    let stats = &inner.stats;
    let write_us = started.elapsed().as_micros() as u64;
    add(&stats.write_micros, write_us);
    stats.observe(|e| e.write_us.observe(write_us));
    add(&stats.bytes_written, len);
    add(&stats.writes, 1);
    if inner.syncing.get() {
        add(&stats.writes_during_fdatasync, 1);
    }
    let mut st = inner.state.borrow_mut();
    assert!(st.log.written == start, "one writer at a time");
    st.log.written = target;
    st.log.mark_dirty(&seg);
    dispatch_range(inner, &mut st, start, target);
    let limit = st.log.written.min(st.dispatched);
    st.log.cache.evict(limit);
    drop(st);
    inner.written_waiters.wake_up_to(target);
    inner.progress.notify_all();
    Ok(())
}

fn add(counter: &std::cell::Cell<u64>, v: u64) {
    counter.set(counter.get() + v);
}

/// One group commit: fdatasync every segment written since the last one; everything written
/// before it started is then durable.
///
/// The ordering rule that keeps SYNC_FLUSH exact while writes are pipelined: an fdatasync only
/// covers writes that *completed* before it was issued (io_uring does not order operations, so a
/// write still in flight may or may not be covered). The target is therefore `written` read
/// here, synchronously, before the fdatasync is submitted: `written` only ever moves when the
/// writer has seen its write complete, so every byte below the target was written by a
/// completed write, and a write that completes while this fdatasync runs moves `written` past
/// the target, leaving its records to the next round. `flushed` moves to the target only after
/// the fdatasync of every segment dirtied below it completed.
pub(crate) async fn sync_round(inner: &Inner) -> Result<(), StoreError> {
    // Another task's fdatasync is in flight: wait for it rather than return at once, so a
    // caller looping on `written > flushed` yields instead of spinning.
    inner
        .progress
        .wait_for(|| (!inner.syncing.get()).then_some(()))
        .await;
    let (target, records_target, segs) = {
        let mut st = inner.state.borrow_mut();
        if st.log.written == st.log.flushed {
            return Ok(());
        }
        (
            st.log.written,
            st.records_written,
            std::mem::take(&mut st.log.dirty),
        )
    };
    inner.syncing.set(true);
    let started = Instant::now();
    let mut result = Ok(());
    for seg in &segs {
        if let Err(e) = seg.file.sync_data().await {
            result = Err(StoreError::io("fdatasync", &seg.path, e));
            break;
        }
    }
    let fdatasync_us = started.elapsed().as_micros() as u64;
    add(&inner.stats.fdatasync_micros, fdatasync_us);
    inner
        .stats
        .observe(|e| e.fdatasync_us.observe(fdatasync_us));
    inner.syncing.set(false);
    inner.progress.notify_all();
    result?;
    let mut st = inner.state.borrow_mut();
    let committed_bytes = target.saturating_sub(st.log.flushed);
    inner
        .stats
        .observe(|e| e.group_commit_bytes.observe(committed_bytes));
    st.log.flushed = st.log.flushed.max(target);
    let flushed = st.log.flushed;
    let covered = records_target - st.records_synced;
    st.records_synced = records_target;
    drop(st);
    inner.stats.fdatasyncs.set(inner.stats.fdatasyncs.get() + 1);
    inner
        .stats
        .records_synced
        .set(inner.stats.records_synced.get() + covered);
    inner.flushed_waiters.wake_up_to(flushed);
    inner.progress.notify_all();
    Ok(())
}

/// Dispatches every record in `[from, to)` of the tail cache: consume-queue entry, index keys,
/// pull wake-up.
pub(crate) fn dispatch_range(inner: &Inner, st: &mut State, from: u64, to: u64) {
    let State {
        log,
        queues,
        index,
        records_written,
        ..
    } = st;
    let mut pos = from;
    while pos < to {
        let (size, magic) = {
            let head = log.cache.get(pos, 8).expect("dispatched bytes are cached");
            peek_header(head).expect("8 bytes")
        };
        if magic == MAGIC_BLANK {
            pos = log.segment_base(pos) + log.segment_size;
            continue;
        }
        let bytes = log
            .cache
            .get(pos, size as usize)
            .expect("dispatched bytes are cached");
        let rec = DecodedRecord::decode(bytes).expect("the store only writes valid records");
        dispatch_record(inner, queues, index, pos, &rec);
        *records_written += 1;
        pos += size as u64;
    }
    st.dispatched = to;
}

/// The derived data of one record (shared by live dispatch and recovery).
pub(crate) fn dispatch_record(
    inner: &Inner,
    queues: &mut Queues,
    index: &KeyIndex,
    pos: u64,
    rec: &DecodedRecord<'_>,
) {
    let r = &rec.record;
    let global = to_global(inner.config.shard_id, pos);
    let tx = sysflag::transaction_type(r.sys_flag);
    let topic = std::str::from_utf8(r.topic).expect("topics are validated as UTF-8 on append");
    // One pass over the properties for everything dispatch reads.
    let [tags, due_time, keys, uniq] = find_properties(
        r.properties,
        [
            property::TAGS,
            super::consume_queue::DUE_TIME_PROPERTY,
            property::KEYS,
            property::UNIQ_KEY,
        ],
    );
    if tx != sysflag::TRANSACTION_PREPARED_TYPE && tx != sysflag::TRANSACTION_ROLLBACK_TYPE {
        let tag = super::consume_queue::tag_slot(topic, tags, due_time);
        let q = inner.queue_in(queues, topic, r.queue_id);
        q.push(
            r.queue_offset as u64,
            CqEntry {
                physical_offset: global,
                size: rec.total_size as u32,
                tag_hash: tag,
            },
        );
    }
    if let Some(keys) = keys {
        for key in keys.split(|&b| b == b' ').filter(|k| !k.is_empty()) {
            index.add(r.topic, key, global, r.store_timestamp);
        }
    }
    if let Some(uniq) = uniq {
        index.add(r.topic, uniq, global, r.store_timestamp);
    }
    index.last_update_timestamp.set(r.store_timestamp);
}

/// Writes and fdatasyncs dirty consume queues and the index (partial last pages included),
/// makes sure the log is synced at least as far as they reach, then writes the checkpoint.
pub(crate) async fn flush_derived(inner: &Inner) -> Result<(), StoreError> {
    let (dispatched, claims, index_entries, index) = {
        let st = inner.state.borrow();
        let claims: Vec<_> = st
            .queues
            .values()
            .flat_map(|t| t.values())
            .map(|q| (q.clone(), q.max_offset.get()))
            .collect();
        (
            st.dispatched,
            claims,
            st.index.total_entries(),
            st.index.clone(),
        )
    };
    let dirty = claims
        .iter()
        .filter(|(q, _)| !q.file.borrow().is_clean())
        .map(|(q, _)| q.clone())
        .collect();
    run_queue_file_flushes(&inner.stats, dirty, Extent::Synced).await?;
    index.flush(false).await?;
    assert_on_disk(&claims, index_entries, index.synced_entries());
    // The checkpoint must not claim derived entries for log bytes that are not yet durable.
    if inner.state.borrow().log.flushed < dispatched {
        sync_round(inner).await?;
        inner
            .progress
            .wait_for(|| {
                (inner.state.borrow().log.flushed >= dispatched || inner.failure.borrow().is_some())
                    .then_some(())
            })
            .await;
        if let Some(cause) = inner.failure.borrow().clone() {
            return Err(StoreError::ReadOnly { cause });
        }
    }
    let min_offset = inner.state.borrow().log.min_offset;
    let cp = Checkpoint {
        log_offset: dispatched,
        min_offset,
        cq_entries: claims.iter().map(|(_, entries)| entries).sum(),
        index_entries,
    };
    if inner.last_checkpoint.get() != Some(cp) {
        checkpoint::write(&inner.checkpoint_path(), cp).await?;
        inner.last_checkpoint.set(Some(cp));
    }
    Ok(())
}

/// The checkpoint never claims more than is on disk: every consume-queue byte and index entry
/// it is about to vouch for (what existed when it took its snapshot) was written and
/// fdatasynced. Write rounds leave partial pages in memory, so only the checkpoint's own flush
/// puts them on disk; a flush that skipped one would make a crash lose entries silently.
fn assert_on_disk(queues: &[(Rc<QueueState>, u64)], index_entries: u64, index_synced: u64) {
    for (q, entries) in queues {
        let f = q.file.borrow();
        let claimed = entries * CQ_ENTRY_BYTES as u64;
        assert!(
            f.synced() >= claimed,
            "checkpoint would claim {claimed} bytes of {} but only {} are synced",
            f.path().display(),
            f.synced()
        );
    }
    assert!(
        index_synced >= index_entries,
        "checkpoint would claim {index_entries} index entries but only {index_synced} are synced"
    );
}

/// Consume-queue files flushed at once: one file's write + fdatasync at a time would make a
/// flush round cost `queues ×` the device latency, so many queues are flushed concurrently
/// (io_uring runs them in parallel and ext4 commits their metadata together), at most this many
/// in flight to bound the DMA buffers held.
pub const CQ_FLUSH_CONCURRENCY: usize = 64;

/// Writes `extent` of the given consume-queue files, `CQ_FLUSH_CONCURRENCY` at a time, and
/// counts the writes in `stats`.
async fn run_queue_file_flushes(
    stats: &super::StoreStats,
    queues: Vec<Rc<QueueState>>,
    extent: Extent,
) -> Result<(), StoreError> {
    let mut rest = queues.into_iter();
    loop {
        let tasks: Vec<_> = rest
            .by_ref()
            .take(CQ_FLUSH_CONCURRENCY)
            .map(|q| glommio::spawn_local(async move { AppendFile::flush(&q.file, extent).await }))
            .collect();
        if tasks.is_empty() {
            return Ok(());
        }
        let mut first_err = None;
        for t in tasks {
            match t.await {
                Ok(0) => {}
                Ok(bytes) => {
                    add(&stats.cq_writes, 1);
                    add(&stats.cq_bytes_written, bytes);
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
    }
}

/// Writes (no fdatasync) the full pages of consume queues and index not yet written, so what
/// they hold in memory stays bounded between checkpoints: at most a partial page per file plus
/// what one round dispatches. Partial pages stay in memory for the checkpoint: nothing vouches
/// for these bytes until the next [`flush_derived`] (a crash before it re-derives them from the
/// log), so rewriting a partial page every round would only cost a write per file per round.
pub(crate) async fn write_derived(inner: &Inner) -> Result<(), StoreError> {
    let (queues, index) = {
        let st = inner.state.borrow();
        let queues: Vec<_> = st
            .queues
            .values()
            .flat_map(|t| t.values())
            .filter(|q| q.file.borrow().has_unwritten_full_pages())
            .cloned()
            .collect();
        (queues, st.index.clone())
    };
    run_queue_file_flushes(&inner.stats, queues, Extent::FullPages).await?;
    index.write_entries().await
}

/// Whether this periodic round syncs derived files and writes a checkpoint.
fn checkpoint_due(inner: &Inner, since_checkpoint_ms: u64) -> bool {
    let checkpointed = inner.last_checkpoint.get().map_or(0, |c| c.log_offset);
    let dispatched = inner.state.borrow().dispatched;
    since_checkpoint_ms >= inner.config.checkpoint_interval_ms
        || dispatched.saturating_sub(checkpointed) >= inner.config.checkpoint_max_log_bytes
}

/// The periodic task: interval fdatasync (ASYNC_FLUSH), derived files (full pages written every
/// round; partial pages written and everything synced with a checkpoint every
/// `checkpoint_interval_ms`), retention.
pub(crate) async fn periodic_loop(inner: Rc<Inner>) {
    let interval_ms = inner.config.flush_interval_ms.max(1);
    let interval = Duration::from_millis(interval_ms);
    let retention_every = inner.config.retention_check_interval_ms.max(1);
    let (mut since_retention_ms, mut since_checkpoint_ms) = (0u64, 0u64);
    loop {
        let closing = futures_lite::future::or(
            async {
                glommio::timer::sleep(interval).await;
                false
            },
            inner
                .progress
                .wait_for(|| inner.closing.get().then_some(true)),
        )
        .await;
        if closing || inner.failure.borrow().is_some() {
            break;
        }
        let mut res = Ok(());
        if inner.config.flush_mode == FlushMode::Async {
            res = sync_round(&inner).await;
        }
        since_checkpoint_ms += interval_ms;
        if res.is_ok() {
            res = if checkpoint_due(&inner, since_checkpoint_ms) {
                since_checkpoint_ms = 0;
                flush_derived(&inner).await
            } else {
                write_derived(&inner).await
            };
        }
        if let Err(e) = res {
            inner.fail(e);
            break;
        }
        since_retention_ms += interval_ms;
        if since_retention_ms >= retention_every {
            since_retention_ms = 0;
            if let Err(e) = super::retention::run(&inner, super::now_ms(), None).await {
                tracing::warn!(error = %e, "retention pass failed");
            }
        }
    }
    inner.periodic_done.set(true);
    inner.progress.notify_all();
}
