//! The commit log of one shard: fixed-size preallocated segment files named by their 20-digit
//! base offset, the in-memory tail cache, and the offset watermarks
//! `min_offset <= flushed <= written <= end`.
//!
//! Records never span segments: when a record does not fit (keeping 8 bytes for the filler),
//! the segment is closed with RocketMQ's BLANK filler header (TOTALSIZE = bytes to the end,
//! MAGICCODE = 0xCBD43194) and the record starts the next segment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use ringmq_proto::message::MAGIC_BLANK;

use super::align_down;
use super::backend::File;

/// Bytes a segment keeps free for the BLANK filler header.
pub(crate) const BLANK_HEADER_BYTES: u64 = 8;

pub(crate) struct Segment {
    pub(crate) base: u64,
    pub(crate) file: Rc<File>,
    pub(crate) path: PathBuf,
}

/// Segment file name: the base offset, zero-padded to 20 digits.
pub(crate) fn segment_file_name(base: u64) -> String {
    format!("{base:020}")
}

/// Parses a segment file name back to its base offset.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    (name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit())).then(|| name.parse().ok())?
}

/// The bytes of the log tail, `[base, end)`, contiguous in memory. `base` is page-aligned and
/// only moves past bytes that are written and dispatched, so every byte not yet on disk is here.
pub(crate) struct TailCache {
    base: u64,
    buf: Vec<u8>,
    capacity: usize,
}

impl TailCache {
    pub(crate) fn new(base: u64, initial: Vec<u8>, capacity: usize) -> Self {
        assert_eq!(
            base % super::PAGE_BYTES,
            0,
            "tail cache base must be page-aligned"
        );
        TailCache {
            base,
            buf: initial,
            capacity,
        }
    }

    pub(crate) fn end(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// Bytes of memory the cache holds (its buffer's capacity).
    pub(crate) fn held_bytes(&self) -> u64 {
        self.buf.capacity() as u64
    }

    /// Extends the cache by `len` zero bytes and returns them for the caller to fill.
    pub(crate) fn extend(&mut self, len: usize) -> &mut [u8] {
        let at = self.buf.len();
        self.buf.resize(at + len, 0);
        &mut self.buf[at..]
    }

    pub(crate) fn get(&self, pos: u64, len: usize) -> Option<&[u8]> {
        if pos < self.base || pos + len as u64 > self.end() {
            return None;
        }
        let at = (pos - self.base) as usize;
        Some(&self.buf[at..at + len])
    }

    /// Drops the oldest bytes once over capacity, never at or past `limit` (the lower of the
    /// written and dispatched offsets). Drops half the capacity at once so the copy is amortised.
    pub(crate) fn evict(&mut self, limit: u64) {
        if self.buf.len() <= self.capacity {
            return;
        }
        let keep_from = align_down(limit.min(self.end() - (self.capacity / 2) as u64));
        if keep_from > self.base {
            self.buf.drain(..(keep_from - self.base) as usize);
            self.base = keep_from;
        }
    }
}

pub(crate) struct CommitLog {
    pub(crate) dir: PathBuf,
    pub(crate) segment_size: u64,
    pub(crate) segments: BTreeMap<u64, Rc<Segment>>,
    /// First retained byte.
    pub(crate) min_offset: u64,
    /// End of everything appended (records encoded into the tail cache).
    pub(crate) end: u64,
    /// End of what O_DIRECT writes have completed.
    pub(crate) written: u64,
    /// End of what an fdatasync has covered.
    pub(crate) flushed: u64,
    pub(crate) cache: TailCache,
    /// Last store timestamp handed out: store times never go backwards within a shard, so
    /// time lookups can binary-search.
    pub(crate) last_store_timestamp: i64,
    /// Segments written since the last fdatasync.
    pub(crate) dirty: Vec<Rc<Segment>>,
}

impl CommitLog {
    pub(crate) fn segment_base(&self, pos: u64) -> u64 {
        pos - pos % self.segment_size
    }

    pub(crate) fn segment_path(dir: &Path, base: u64) -> PathBuf {
        dir.join(segment_file_name(base))
    }

    /// Reserves `len` bytes for one record at the log end, closing the current segment with a
    /// BLANK filler first if the record does not fit. Returns the record's position.
    pub(crate) fn reserve(&mut self, len: usize) -> u64 {
        let len = len as u64;
        let seg_end = self.segment_base(self.end) + self.segment_size;
        if self.end + len + BLANK_HEADER_BYTES > seg_end {
            self.close_segment();
        }
        let pos = self.end;
        self.end += len;
        pos
    }

    /// Ends the current segment with the BLANK filler; the log continues at the next one.
    pub(crate) fn close_segment(&mut self) {
        let seg_end = self.segment_base(self.end) + self.segment_size;
        let rest = seg_end - self.end;
        assert!(
            rest >= BLANK_HEADER_BYTES,
            "every segment keeps room for its filler"
        );
        let filler = self.cache.extend(rest as usize);
        filler[0..4].copy_from_slice(&(rest as u32).to_be_bytes());
        filler[4..8].copy_from_slice(&MAGIC_BLANK.to_be_bytes());
        self.end = seg_end;
    }

    /// The segment holding byte `pos`, if retained.
    pub(crate) fn segment_for(&self, pos: u64) -> Option<Rc<Segment>> {
        self.segments.get(&self.segment_base(pos)).cloned()
    }

    pub(crate) fn mark_dirty(&mut self, seg: &Rc<Segment>) {
        if !self.dirty.iter().any(|s| s.base == seg.base) {
            self.dirty.push(seg.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_cache_evicts_only_below_the_limit_and_page_aligned() {
        let mut c = TailCache::new(0, Vec::new(), 16 * 1024);
        c.extend(40 * 1024).fill(7);
        assert_eq!(c.end(), 40 * 1024);
        // Nothing written yet: nothing may go.
        c.evict(0);
        assert!(c.get(0, 10).is_some());
        // Written up to 30 000: keep from the page below min(limit, end - capacity/2).
        c.evict(30_000);
        assert!(c.get(8 * 1024 - 1, 1).is_none());
        assert_eq!(c.get(28 * 1024, 4), Some(&[7u8; 4][..]));
        let base_after = 28 * 1024; // align_down(min(30_000, 40 KiB - 8 KiB))
        assert!(c.get(base_after, 1).is_some() && c.get(base_after - 1, 1).is_none());
        // Under capacity: no eviction at all.
        let mut small = TailCache::new(4096, vec![1; 100], 16 * 1024);
        small.evict(u64::MAX);
        assert!(small.get(4096, 100).is_some());
    }

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(segment_file_name(1 << 30), "00000000001073741824");
        assert_eq!(parse_segment_name("00000000001073741824"), Some(1 << 30));
        assert_eq!(parse_segment_name("1073741824"), None);
        assert_eq!(parse_segment_name("0000000000107374182x"), None);
    }
}
