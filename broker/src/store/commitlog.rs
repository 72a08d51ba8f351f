//! The commit log of one shard: fixed-size preallocated segment files named by their 20-digit
//! base offset, the in-memory tail cache, and the offset watermarks
//! `min_offset <= flushed <= written <= end`.
//!
//! Records never span segments: when a record does not fit (keeping 8 bytes for the filler),
//! the segment is closed with RocketMQ's BLANK filler header (TOTALSIZE = bytes to the end,
//! MAGICCODE = 0xCBD43194) and the record starts the next segment.

use std::collections::{BTreeMap, VecDeque};
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
    /// Oldest first; each chunk continues where the previous one ends.
    chunks: VecDeque<TailChunk>,
    /// Eviction starts once the chunks hold more than this many bytes of log.
    capacity: usize,
}

/// A run of the log tail: bytes `[base, base + buf.len())`. Its buffer is allocated once, at
/// [`TAIL_CHUNK_BYTES`] or the size of the one record that did not fit, and never grows, so
/// appending never copies what is already cached.
struct TailChunk {
    base: u64,
    buf: Vec<u8>,
}

impl TailChunk {
    fn end(&self) -> u64 {
        self.base + self.buf.len() as u64
    }
}

/// Bytes of one tail-cache chunk. The cache was one `Vec` that doubled as it filled (8, 16, 32,
/// 64 MiB) and then shifted half its bytes down on every eviction: each of those copied up to
/// 32 MiB on the shard thread, and an open-loop run at 5k msg/s showed a 10–30 ms stall at each
/// (`results/tail-cache-chunks-2026-12-07.md`). Chunks are allocated and dropped whole.
pub(crate) const TAIL_CHUNK_BYTES: usize = 1 << 20;

impl TailCache {
    pub(crate) fn new(base: u64, initial: Vec<u8>, capacity: usize) -> Self {
        assert_eq!(
            base % super::PAGE_BYTES,
            0,
            "tail cache base must be page-aligned"
        );
        let mut buf = Vec::with_capacity(TAIL_CHUNK_BYTES.max(initial.len()));
        buf.extend_from_slice(&initial);
        TailCache {
            chunks: VecDeque::from([TailChunk { base, buf }]),
            capacity,
        }
    }

    fn base(&self) -> u64 {
        self.chunks.front().map_or(0, |c| c.base)
    }

    pub(crate) fn end(&self) -> u64 {
        self.chunks.back().map_or(0, TailChunk::end)
    }

    /// Bytes of memory the cache holds (its chunks' capacities).
    pub(crate) fn held_bytes(&self) -> u64 {
        self.chunks.iter().map(|c| c.buf.capacity() as u64).sum()
    }

    /// Extends the cache by `len` zero bytes and returns them for the caller to fill. The bytes
    /// of one call are contiguous (one record, or a segment's filler): a new chunk starts when
    /// the last one has no room for all of them.
    pub(crate) fn extend(&mut self, len: usize) -> &mut [u8] {
        let end = self.end();
        let fits = self
            .chunks
            .back()
            .is_some_and(|c| c.buf.capacity() - c.buf.len() >= len);
        if !fits {
            let buf = Vec::with_capacity(TAIL_CHUNK_BYTES.max(len));
            self.chunks.push_back(TailChunk { base: end, buf });
        }
        let chunk = self.chunks.back_mut().expect("a chunk was just ensured");
        let at = chunk.buf.len();
        chunk.buf.resize(at + len, 0);
        &mut chunk.buf[at..]
    }

    /// The chunk holding byte `pos`, if cached (the tail is where reads land, so search from
    /// the back).
    fn chunk_at(&self, pos: u64) -> Option<&TailChunk> {
        if pos < self.base() || pos >= self.end() {
            return None;
        }
        self.chunks.iter().rev().find(|c| c.base <= pos)
    }

    /// Bytes `[pos, pos + len)` if cached within one chunk: always so for the bytes of one
    /// record (see [`TailCache::extend`]).
    pub(crate) fn get(&self, pos: u64, len: usize) -> Option<&[u8]> {
        let chunk = self.chunk_at(pos)?;
        if pos + len as u64 > chunk.end() {
            return None;
        }
        let at = (pos - chunk.base) as usize;
        Some(&chunk.buf[at..at + len])
    }

    /// Copies bytes `[pos, pos + dst.len())` into `dst`, across chunks; `false` (and `dst`
    /// unspecified) when any of them is not cached.
    pub(crate) fn copy_to(&self, pos: u64, dst: &mut [u8]) -> bool {
        if pos + dst.len() as u64 > self.end() {
            return false;
        }
        let mut done = 0;
        while done < dst.len() {
            let at = pos + done as u64;
            let Some(chunk) = self.chunk_at(at) else {
                return false;
            };
            let from = (at - chunk.base) as usize;
            let n = (chunk.buf.len() - from).min(dst.len() - done);
            dst[done..done + n].copy_from_slice(&chunk.buf[from..from + n]);
            done += n;
        }
        true
    }

    /// Appends bytes `[pos, pos + len)` to `out` if all of them are cached.
    pub(crate) fn append_to(&self, pos: u64, len: usize, out: &mut Vec<u8>) -> bool {
        // One record (every pull's and dispatch's read) lies in one chunk: no zero-fill first.
        if let Some(bytes) = self.get(pos, len) {
            out.extend_from_slice(bytes);
            return true;
        }
        let start = out.len();
        out.resize(start + len, 0);
        let copied = self.copy_to(pos, &mut out[start..]);
        if !copied {
            out.truncate(start);
        }
        copied
    }

    /// Bytes of log the chunks hold.
    fn cached_bytes(&self) -> usize {
        (self.end() - self.base()) as usize
    }

    /// Drops the oldest chunks while over capacity, never one that reaches the page holding
    /// `limit` (the lower of the written and dispatched offsets: the writer rewrites that
    /// partial page from the cache): whole chunks, so nothing is copied.
    pub(crate) fn evict(&mut self, limit: u64) {
        let keep_from = align_down(limit);
        while self.cached_bytes() > self.capacity && self.chunks.len() > 1 {
            let front = self.chunks.front().expect("more than one chunk");
            if front.end() > keep_from {
                return;
            }
            self.chunks.pop_front();
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

    /// Appends `n` records of `size` bytes, each filled with its index; returns their positions.
    fn append_records(c: &mut TailCache, n: usize, size: usize) -> Vec<u64> {
        (0..n)
            .map(|i| {
                let pos = c.end();
                c.extend(size).fill(i as u8);
                pos
            })
            .collect()
    }

    #[test]
    fn records_stay_whole_and_ranges_copy_across_chunks() {
        let mut c = TailCache::new(4096, vec![9; 100], 64 << 20);
        // 300 KiB records: a chunk holds three, so records 3, 6, 9 start new chunks.
        let size = 300 << 10;
        let positions = append_records(&mut c, 10, size);
        assert!(c.chunks.len() >= 4);
        for (i, pos) in positions.iter().enumerate() {
            let record = c.get(*pos, size).expect("a record is never split");
            assert!(record.iter().all(|b| *b == i as u8));
        }
        // A range over several records and chunks, starting mid-record (the writer's pages).
        let from = positions[2] + 5;
        let mut range = vec![0u8; 2 * size];
        assert!(c.copy_to(from, &mut range));
        assert!(range[..size - 5].iter().all(|b| *b == 2));
        assert!(range[size - 5..2 * size - 5].iter().all(|b| *b == 3));
        let mut out = vec![1u8];
        assert!(c.append_to(4096, 100, &mut out));
        assert_eq!(out.len(), 101);
        // Past the end, or below the base: not cached.
        assert!(!c.copy_to(c.end() - 1, &mut [0u8; 2]));
        assert!(c.get(4095, 1).is_none());
        assert!(!c.append_to(4095, 2, &mut out) && out.len() == 101);
    }

    #[test]
    fn appending_never_moves_cached_bytes() {
        let mut c = TailCache::new(0, Vec::new(), 64 << 20);
        c.extend(1000).fill(1);
        let first = c.get(0, 1000).unwrap().as_ptr();
        append_records(&mut c, 5_000, 1000);
        // The first chunk's buffer was never reallocated (the old cache doubled and moved).
        assert_eq!(c.get(0, 1000).unwrap().as_ptr(), first);
    }

    #[test]
    fn eviction_drops_whole_chunks_below_the_limit_page_only() {
        let capacity = 4 * TAIL_CHUNK_BYTES;
        let mut c = TailCache::new(0, Vec::new(), capacity);
        let positions = append_records(&mut c, 10 * 1024, 1024); // 10 chunks of 1 MiB
                                                                 // Nothing written yet: nothing may go.
        c.evict(0);
        assert!(c.get(0, 1024).is_some());
        // Written up to mid-chunk 7: chunks below the page holding it may go, down to capacity.
        let limit = positions[7 * 1024 + 3] + 10;
        c.evict(limit);
        assert!(c.cached_bytes() <= capacity + TAIL_CHUNK_BYTES);
        assert!(c.cached_bytes() > capacity - TAIL_CHUNK_BYTES);
        assert!(c.get(0, 1024).is_none());
        let page = align_down(limit);
        let mut page_bytes = vec![0u8; (limit - page) as usize];
        assert!(c.copy_to(page, &mut page_bytes), "the partial page stays");
        // Limit at the very start of a chunk whose page began in the previous one: that one stays.
        let mut d = TailCache::new(0, Vec::new(), TAIL_CHUNK_BYTES);
        append_records(&mut d, 3, TAIL_CHUNK_BYTES - 100);
        let second = d.chunks[1].base;
        d.evict(second + 1);
        assert_eq!(
            d.base(),
            0,
            "the page holding the limit starts in the first chunk"
        );
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
