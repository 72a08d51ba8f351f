//! The zeroer: keeps commit-log space ahead of the log end written with zeros, in the
//! background and with bounded I/O, so appends overwrite already-written blocks.
//!
//! Why: segments are preallocated with `fallocate`, which leaves *unwritten* extents. The first
//! O_DIRECT write into such a block converts the extent, and the next fdatasync must commit that
//! conversion through the ext4 journal: on the dev VM an fdatasync after writing fresh
//! preallocated space costs p50 1.58 ms, over already-written blocks p50 46 µs
//! (`results/host-2026-11-21.md`). Writing zeros once, ahead of the log, and fdatasyncing them
//! moves that journal commit off the append path.
//!
//! Bounds: at most one zero write (≤ [`ZERO_CHUNK_BYTES`]) in flight; the window is
//! `zero_ahead_bytes` past the log end, never beyond the segment after the one holding the log
//! end; a fill starts only when the window is at least half empty (or a segment's worth), and
//! ends with one fdatasync per segment it touched.
//!
//! Safety: zeros beyond the log end read as the clean end to recovery (TOTALSIZE 0, MAGICCODE 0).
//! A zero write only claims pages at or past the page-aligned log end, *synchronously* with
//! publishing the claim in `Inner::zeroing`; every log write before the claim ends below that
//! page, and every log write after it waits while its pages overlap the claim
//! (`flush::wait_for_no_zeroing`). So zeros never land on, or race with, log bytes.

use std::rc::Rc;

use super::commitlog::Segment;
use super::flush::segment_for_write;
use super::{align_up, Inner, StoreError};
use crate::store::backend::DirectFile;

/// Largest single zero write.
pub(crate) const ZERO_CHUNK_BYTES: u64 = 1 << 20;

pub(crate) async fn zeroer_loop(inner: Rc<Inner>) {
    if inner.config.zero_ahead_bytes > 0 {
        if let Err(e) = run(&inner).await {
            inner.fail(e);
        }
    }
    inner.zeroer_done.set(true);
    inner.progress.notify_all();
}

fn stopping(inner: &Inner) -> bool {
    inner.closing.get() || inner.failure.borrow().is_some()
}

/// `[from, limit)`: what is left to zero now, given the log end.
fn pending(inner: &Inner) -> (u64, u64) {
    let st = inner.state.borrow();
    let log = &st.log;
    let end_page = align_up(log.end);
    let from = inner.zeroed.get().max(end_page);
    let cap = log.segment_base(log.end) + 2 * log.segment_size;
    let limit = (end_page + inner.config.zero_ahead_bytes).min(cap);
    (from, limit)
}

async fn run(inner: &Inner) -> Result<(), StoreError> {
    let refill_at = (inner.config.zero_ahead_bytes / 2).min(inner.config.segment_size_bytes);
    loop {
        let go = inner
            .progress
            .wait_for(|| {
                if stopping(inner) {
                    return Some(false);
                }
                let (from, limit) = pending(inner);
                (limit > from && limit - from >= refill_at).then_some(true)
            })
            .await;
        if !go {
            return Ok(());
        }
        fill(inner).await?;
    }
}

/// Zeroes up to the window's limit, one chunk at a time, then fdatasyncs what it zeroed.
async fn fill(inner: &Inner) -> Result<(), StoreError> {
    let seg_size = inner.config.segment_size_bytes;
    let mut touched: Vec<Rc<Segment>> = Vec::new();
    while !stopping(inner) {
        let (from, limit) = pending(inner);
        if from >= limit {
            break;
        }
        let base = from - from % seg_size;
        let seg = segment_for_write(inner, base).await?;
        // Claim synchronously, from a fresh look at the log end (it may have moved while the
        // segment was being created): no await between this check and the write's submission.
        let (from, limit) = pending(inner);
        if from >= limit || from - from % seg_size != base || stopping(inner) {
            continue;
        }
        let to = (from + ZERO_CHUNK_BYTES).min(limit).min(base + seg_size);
        let buf = seg.file.alloc((to - from) as usize);
        inner.zeroing.set(Some((from, to)));
        let written = seg.file.write_at(buf, from - base).await;
        inner.zeroing.set(None);
        inner.progress.notify_all();
        written.map_err(|e| StoreError::io("write zeros", &seg.path, e))?;
        inner.zeroed.set(inner.zeroed.get().max(to));
        let stats = &inner.stats;
        stats.zero_bytes.set(stats.zero_bytes.get() + (to - from));
        if !touched.iter().any(|s| s.base == seg.base) {
            touched.push(seg);
        }
    }
    // Commit the extent conversions now, in one journal commit, rather than inside the next
    // group commit of the log.
    for seg in touched {
        seg.file
            .sync_data()
            .await
            .map_err(|e| StoreError::io("fdatasync zeros", &seg.path, e))?;
        let stats = &inner.stats;
        stats.zero_fdatasyncs.set(stats.zero_fdatasyncs.get() + 1);
    }
    Ok(())
}
