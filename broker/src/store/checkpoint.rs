//! The checkpoint and the clean-shutdown marker: one 4 KiB page each, written with O_DIRECT
//! and fdatasync, protected by a CRC so a torn page reads as "no checkpoint" (full scan).
//!
//! Page: magic 8 | log offset 8 | log min offset 8 | consume-queue entries 8 | index entries 8 |
//! crc32 of the first 40 bytes 4 | zeros.

use std::path::Path;

use super::backend::{DirectFile, File};
use super::{StoreError, PAGE_BYTES};

const CHECKPOINT_MAGIC: &[u8; 8] = b"RINGCKP1";

/// What a checkpoint page says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    /// Local log offset below which the commit log is fdatasynced and every consume-queue and
    /// index entry is written and fdatasynced. Recovery scans from here.
    pub(crate) log_offset: u64,
    /// The log's first retained byte when the checkpoint was written.
    pub(crate) min_offset: u64,
    /// Consume-queue entries (all queues, counted from queue offset 0) for the records below
    /// `log_offset`: fewer on disk at recovery means derived files were lost.
    pub(crate) cq_entries: u64,
    /// Index entries for the records below `log_offset`.
    pub(crate) index_entries: u64,
}

pub(crate) async fn write(path: &Path, cp: Checkpoint) -> Result<(), StoreError> {
    let created = !path.exists();
    let file = File::open(path, true)
        .await
        .map_err(|e| StoreError::io("open", path, e))?;
    let mut buf = file.alloc(PAGE_BYTES as usize);
    buf[0..8].copy_from_slice(CHECKPOINT_MAGIC);
    buf[8..16].copy_from_slice(&cp.log_offset.to_be_bytes());
    buf[16..24].copy_from_slice(&cp.min_offset.to_be_bytes());
    buf[24..32].copy_from_slice(&cp.cq_entries.to_be_bytes());
    buf[32..40].copy_from_slice(&cp.index_entries.to_be_bytes());
    let crc = crc32fast::hash(&buf[0..40]);
    buf[40..44].copy_from_slice(&crc.to_be_bytes());
    file.write_at(buf, 0)
        .await
        .map_err(|e| StoreError::io("write", path, e))?;
    file.sync_data()
        .await
        .map_err(|e| StoreError::io("fdatasync", path, e))?;
    file.close()
        .await
        .map_err(|e| StoreError::io("close", path, e))?;
    if created {
        let dir = path
            .parent()
            .expect("checkpoint lives in the shard directory");
        super::backend::sync_dir(dir)
            .await
            .map_err(|e| StoreError::io("fsync directory", dir, e))?;
    }
    Ok(())
}

/// The checkpoint at `path`, or `None` when absent or unreadable (torn, corrupt).
pub(crate) async fn read(path: &Path) -> Result<Option<Checkpoint>, StoreError> {
    if !path.exists() {
        return Ok(None);
    }
    let file = File::open(path, false)
        .await
        .map_err(|e| StoreError::io("open", path, e))?;
    let page = file
        .read_at(0, PAGE_BYTES as usize)
        .await
        .map_err(|e| StoreError::io("read", path, e))?;
    let parsed = parse(&page);
    if parsed.is_none() {
        tracing::warn!(path = %path.display(), "checkpoint unreadable; scanning the whole log");
    }
    file.close()
        .await
        .map_err(|e| StoreError::io("close", path, e))?;
    Ok(parsed)
}

fn parse(page: &[u8]) -> Option<Checkpoint> {
    if page.len() < 44 || &page[0..8] != CHECKPOINT_MAGIC {
        return None;
    }
    let crc = u32::from_be_bytes(page[40..44].try_into().ok()?);
    if crc != crc32fast::hash(&page[0..40]) {
        return None;
    }
    let u = |at: usize| page[at..at + 8].try_into().ok().map(u64::from_be_bytes);
    Some(Checkpoint {
        log_offset: u(8)?,
        min_offset: u(16)?,
        cq_entries: u(24)?,
        index_entries: u(32)?,
    })
}
