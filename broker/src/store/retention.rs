//! Retention: whole segments go when older than `file_reserved_time_ms` (by last
//! modification) or, oldest first, while the disk is fuller than `disk_max_used_ratio_percent`.
//! The active segment and anything past the last checkpoint are never deleted. Consume queues
//! and index are trimmed to match and min offsets move forward.

use std::rc::Rc;

use super::backend::DirectFile;
use super::consume_queue::{QueueState, CQ_ENTRY_BYTES};
use super::offset::to_global;
use super::{align_down, Inner, Store, StoreError};

/// What a retention pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionReport {
    pub segments_deleted: usize,
    /// The log's first byte afterwards (global offset).
    pub min_offset: u64,
}

/// Percentage of the file system holding `path` that is in use.
fn disk_used_percent(path: &std::path::Path) -> Option<u8> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 || s.f_blocks == 0 {
        return None;
    }
    let used = s.f_blocks - s.f_bfree;
    Some(((used as u128 * 100) / s.f_blocks as u128) as u8)
}

pub(crate) async fn run(
    inner: &Inner,
    now_ms: i64,
    disk_used: Option<u8>,
) -> Result<RetentionReport, StoreError> {
    let disk_used = disk_used
        .or_else(|| disk_used_percent(&inner.dir))
        .unwrap_or(0);
    let disk_full = disk_used > inner.config.disk_max_used_ratio_percent;
    let reserved_ms = inner.config.file_reserved_time_ms as i64;
    let mut deleted = 0;
    loop {
        let candidate = {
            let st = inner.state.borrow();
            let log = &st.log;
            let safe_end = inner
                .last_checkpoint
                .get()
                .map_or(0, |c| c.log_offset)
                .min(log.flushed)
                .min(st.dispatched);
            log.segments
                .values()
                .next()
                .filter(|s| s.base + log.segment_size <= safe_end)
                .cloned()
        };
        let Some(seg) = candidate else { break };
        let age_ms = std::fs::metadata(&seg.path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| now_ms - d.as_millis() as i64);
        let expired = age_ms >= reserved_ms;
        if !(expired || (disk_full && deleted == 0)) {
            break;
        }
        tracing::info!(path = %seg.path.display(), expired, disk_used, "retention deletes segment");
        {
            let mut st = inner.state.borrow_mut();
            st.log.segments.remove(&seg.base);
            st.log.min_offset = seg.base + st.log.segment_size;
            st.log.dirty.retain(|s| s.base != seg.base);
        }
        std::fs::remove_file(&seg.path).map_err(|e| StoreError::io("remove", &seg.path, e))?;
        deleted += 1;
    }
    let min_local = inner.state.borrow().log.min_offset;
    let min_global = to_global(inner.config.shard_id, min_local);
    if deleted > 0 {
        let index = inner.state.borrow().index.clone();
        index.remove_below(min_global).await?;
        let queues: Vec<Rc<QueueState>> = inner
            .state
            .borrow()
            .queues
            .values()
            .flat_map(|t| t.values())
            .cloned()
            .collect();
        for q in queues {
            trim_queue(&q, min_global).await?;
        }
    }
    Ok(RetentionReport {
        segments_deleted: deleted,
        min_offset: min_global,
    })
}

/// Moves a queue's min offset past entries pointing below `min_global` and frees the file
/// pages that only held those entries (never the page of the last entry, so the queue's
/// length survives a restart).
async fn trim_queue(q: &QueueState, min_global: u64) -> Result<(), StoreError> {
    let old_min = q.min_offset.get();
    let (mut lo, mut hi) = (old_min, q.max_offset.get());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let e = q.read(mid, 1).await?;
        if e.first().is_some_and(|e| e.physical_offset >= min_global) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    q.min_offset.set(lo);
    let max = q.max_offset.get();
    if lo == old_min || max == 0 {
        return Ok(());
    }
    let hole_from = align_down(old_min * CQ_ENTRY_BYTES as u64);
    let hole_to = align_down(lo.min(max - 1) * CQ_ENTRY_BYTES as u64)
        .min(align_down(q.file.borrow().written()));
    let (file, path) = {
        let f = q.file.borrow();
        (f.file(), f.path().clone())
    };
    if let (Some(file), true) = (file, hole_to > hole_from) {
        file.punch_hole(hole_from, hole_to - hole_from)
            .await
            .map_err(|e| StoreError::io("punch hole", path, e))?;
    }
    Ok(())
}

impl Store {
    /// One retention pass at wall time `now_ms`. `disk_used_percent` overrides the measured
    /// disk use (tests; the periodic task passes `None`).
    pub async fn run_retention(
        &self,
        now_ms: i64,
        disk_used_percent: Option<u8>,
    ) -> Result<RetentionReport, StoreError> {
        run(&self.inner, now_ms, disk_used_percent).await
    }
}
