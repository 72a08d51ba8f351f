//! Consume queues: per (topic, queue) files of 20-byte entries — global physical offset (8),
//! record size (4), tag hash (8), big-endian — where entry `i` is queue offset `i`. Appended
//! behind the commit log by the dispatcher; the periodic task writes their full pages every
//! round and the partial last page only with a checkpoint (see `append_file`). The newest
//! entries are also kept in memory.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use super::append_file::AppendFile;
use super::backend::DirectFile;
use super::notify::Notify;
use super::StoreError;

/// Bytes of one consume-queue entry (`ConsumeQueue.CQ_STORE_UNIT_SIZE`).
pub const CQ_ENTRY_BYTES: usize = 20;

/// System topics whose tag slot carries a due time (epoch ms) instead of a tag hash, as Java's
/// `SCHEDULE_TOPIC_XXXX` does: the schedule service (`crate::schedule`) reads due times from the
/// consume queue without reading records, and recovery rebuilds the same slot from the record.
pub const DUE_TIME_TOPICS: [&str; 2] = ["SCHEDULE_TOPIC_XXXX", "rmq_sys_wheel_timer"];
/// The property that holds the due time of a record in one of [`DUE_TIME_TOPICS`].
pub const DUE_TIME_PROPERTY: &str = "TIMER_OUT_MS";

/// The tag slot of a record of `topic` from its TAGS and TIMER_OUT_MS property values: its due
/// time in a due-time topic (0 if the property is missing or not a number), else the Java
/// `String.hashCode` of TAGS (0 without tags).
pub(crate) fn tag_slot(topic: &str, tags: Option<&[u8]>, due_time: Option<&[u8]>) -> i64 {
    if DUE_TIME_TOPICS.contains(&topic) {
        return due_time
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
    }
    tags.and_then(|t| std::str::from_utf8(t).ok())
        .map_or(0, ringmq_proto::message::tag_hash)
}

/// One consume-queue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CqEntry {
    /// Global physical offset of the record.
    pub physical_offset: u64,
    /// Record size in bytes.
    pub size: u32,
    /// Java `String.hashCode` of TAGS, 0 without tags; the due time in [`DUE_TIME_TOPICS`].
    pub tag_hash: i64,
}

impl CqEntry {
    pub(crate) fn encode(&self) -> [u8; CQ_ENTRY_BYTES] {
        let mut b = [0u8; CQ_ENTRY_BYTES];
        b[0..8].copy_from_slice(&self.physical_offset.to_be_bytes());
        b[8..12].copy_from_slice(&self.size.to_be_bytes());
        b[12..20].copy_from_slice(&self.tag_hash.to_be_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8]) -> CqEntry {
        CqEntry {
            physical_offset: u64::from_be_bytes(b[0..8].try_into().expect("8 bytes")),
            size: u32::from_be_bytes(b[8..12].try_into().expect("4 bytes")),
            tag_hash: i64::from_be_bytes(b[12..20].try_into().expect("8 bytes")),
        }
    }
}

/// Most entries one queue keeps in memory: a consumer at the tail reads them without I/O.
pub const CQ_CACHE_ENTRIES_PER_QUEUE_MAX: usize = 4096;
/// Fewest entries one queue keeps, however many queues share the budget: a consumer at the
/// tail still reads a pull's worth (32 by default) without I/O.
pub const CQ_CACHE_ENTRIES_PER_QUEUE_MIN: usize = 32;
/// Smallest read-ahead window worth keeping for a lagging pull (see [`QueueState::read_ahead`]):
/// at least eight pulls of 32 per disk read. Below it (a share squeezed by many queues) a pull
/// reads just its entries, as a window would cost memory without saving reads.
pub const CQ_WINDOW_ENTRIES_MIN: usize = 256;

/// The shard-wide bound of the consume-queue cache. Each queue keeps at most
/// `total_entries / queues` entries (within the per-queue minimum and maximum), so the cache
/// stays within `total_entries` as queues are added, where a per-queue cap alone grew with the
/// number of queues (4096 × 24 B per queue: 1 GiB at 10,000 queues). Past
/// `total_entries / CQ_CACHE_ENTRIES_PER_QUEUE_MIN` queues each keeps the minimum.
#[derive(Debug)]
pub(crate) struct CqCacheBudget {
    total_entries: usize,
    queues: Cell<usize>,
}

impl CqCacheBudget {
    pub(crate) fn new(total_entries: usize) -> Rc<CqCacheBudget> {
        Rc::new(CqCacheBudget {
            total_entries,
            queues: Cell::new(0),
        })
    }

    /// Entries each queue may keep now.
    pub(crate) fn per_queue_entries(&self) -> usize {
        (self.total_entries / self.queues.get().max(1)).clamp(
            CQ_CACHE_ENTRIES_PER_QUEUE_MIN,
            CQ_CACHE_ENTRIES_PER_QUEUE_MAX,
        )
    }
}

impl Drop for QueueState {
    fn drop(&mut self) {
        let queues = self.cache_budget.queues.get();
        assert!(queues > 0, "a queue left a budget it was not counted in");
        self.cache_budget.queues.set(queues - 1);
    }
}

/// Consecutive entries from queue offset `first`, read from disk ahead of a lagging pull.
#[derive(Default)]
struct CqWindow {
    first: u64,
    entries: Vec<CqEntry>,
}

/// Everything the store keeps about one (topic, queue).
pub(crate) struct QueueState {
    /// Next queue offset an append assigns (ahead of `max_offset` while writes are in flight).
    pub(crate) next_offset: Cell<u64>,
    /// First queue offset still readable (moves forward with retention).
    pub(crate) min_offset: Cell<u64>,
    /// Entries dispatched: queue offsets `< max_offset` are readable.
    pub(crate) max_offset: Cell<u64>,
    pub(crate) file: RefCell<AppendFile>,
    cache: RefCell<VecDeque<CqEntry>>,
    cache_first: Cell<u64>,
    /// Entries below the cache that a lagging pull read from disk ahead of what it asked for.
    window: RefCell<CqWindow>,
    /// Reads of the queue's file (tests count them).
    pub(crate) file_reads: Cell<u64>,
    /// Shared by the shard's queues; this queue counts in it while it exists.
    cache_budget: Rc<CqCacheBudget>,
    /// Parked pulls of this queue wait here; woken on every dispatch.
    pub(crate) growth: Notify,
}

impl QueueState {
    pub(crate) fn new(file: AppendFile, min_offset: u64, cache_budget: &Rc<CqCacheBudget>) -> Self {
        let max = file.len() / CQ_ENTRY_BYTES as u64;
        cache_budget.queues.set(cache_budget.queues.get() + 1);
        QueueState {
            next_offset: Cell::new(max),
            min_offset: Cell::new(min_offset.min(max)),
            max_offset: Cell::new(max),
            file: RefCell::new(file.allocating_ahead()),
            cache: RefCell::new(VecDeque::new()),
            cache_first: Cell::new(max),
            window: RefCell::new(CqWindow::default()),
            file_reads: Cell::new(0),
            cache_budget: cache_budget.clone(),
            growth: Notify::default(),
        }
    }

    /// Bytes of memory this queue's cached entries, its read-ahead window and its file's
    /// memory tail hold (the partial last page, under 4 KiB, plus entries dispatched since the
    /// last write round).
    pub(crate) fn held_bytes(&self) -> u64 {
        let entries = self.cache.borrow().capacity() + self.window.borrow().entries.capacity();
        (entries * std::mem::size_of::<CqEntry>()) as u64 + self.file.borrow().held_bytes()
    }

    /// Adds the entry of queue offset `max_offset` (dispatch order is queue-offset order).
    pub(crate) fn push(&self, queue_offset: u64, entry: CqEntry) {
        assert_eq!(
            queue_offset,
            self.max_offset.get(),
            "consume queue offsets must be dense"
        );
        self.file.borrow_mut().append(&entry.encode());
        let mut cache = self.cache.borrow_mut();
        cache.push_back(entry);
        self.max_offset.set(queue_offset + 1);
        // Every entry stays readable once evicted: from the file's full pages on disk, or from
        // its memory tail (the partial page waits there for the checkpoint), see `read_file`.
        // So the cache keeps its share even while pages are not written yet.
        let cap = self.cache_budget.per_queue_entries();
        while cache.len() > cap {
            cache.pop_front();
            self.cache_first.set(self.cache_first.get() + 1);
        }
        // After the cap fell (queues were added) give the memory back, not only the entries.
        // The deque doubles as it grows, so this frees only what a smaller cap left over.
        if cache.capacity() > 2 * cap && cache.len() <= cap {
            cache.shrink_to(cap);
        }
        drop(cache);
        self.growth.notify_all();
    }

    /// Entries held in memory now.
    pub(crate) fn cached_entries(&self) -> usize {
        self.cache.borrow().len()
    }

    /// Up to `max_n` entries from queue offset `from` (clamped to what exists). Entries below
    /// the cache cost one file read per call: for probes (binary searches), which jump.
    pub(crate) async fn read(&self, from: u64, max_n: usize) -> Result<Vec<CqEntry>, StoreError> {
        self.read_entries(from, max_n, false).await
    }

    /// [`QueueState::read`] for a reader that goes on where it stops: a pull. A pull below the
    /// cache reads the queue's cache share ahead (at least [`CQ_WINDOW_ENTRIES_MIN`]) into the
    /// queue's window, so a lagging consumer's next pulls find their entries in memory instead
    /// of each waiting for a disk read before its records can be read (measured: one O_DIRECT
    /// read per pull held an 8-queue catch-up to half the rate it reached from memory). The
    /// window is bounded like the cache: one per queue, at most the queue's share.
    pub(crate) async fn read_ahead(
        &self,
        from: u64,
        max_n: usize,
    ) -> Result<Vec<CqEntry>, StoreError> {
        self.read_entries(from, max_n, true).await
    }

    async fn read_entries(
        &self,
        from: u64,
        max_n: usize,
        ahead: bool,
    ) -> Result<Vec<CqEntry>, StoreError> {
        let to = self.max_offset.get().min(from + max_n as u64);
        let mut out = Vec::with_capacity(to.saturating_sub(from) as usize);
        if from >= to {
            return Ok(out);
        }
        // The cache may evict while a file read is in flight, so re-check where it starts.
        let mut next = from;
        while next < to {
            let first = self.cache_first.get();
            if next >= first {
                let cache = self.cache.borrow();
                out.extend((next..to).map(|q| cache[(q - first) as usize]));
                break;
            }
            let disk_to = to.min(first);
            if ahead {
                next += self.copy_from_window(next, disk_to, &mut out);
                if next == disk_to {
                    continue;
                }
            }
            let share = self.cache_budget.per_queue_entries() as u64;
            if ahead && share >= CQ_WINDOW_ENTRIES_MIN as u64 {
                // Entries never change once dispatched, so the window stays true until dropped.
                let window_to = first.min(next + share).max(disk_to);
                let mut entries = Vec::with_capacity((window_to - next) as usize);
                self.read_file(next, window_to, &mut entries).await?;
                out.extend_from_slice(&entries[..(disk_to - next) as usize]);
                *self.window.borrow_mut() = CqWindow {
                    first: next,
                    entries,
                };
            } else {
                self.read_file(next, disk_to, &mut out).await?;
            }
            next = disk_to;
        }
        Ok(out)
    }

    /// Appends the window's entries from `from` (below `to`) to `out`; how many it had.
    fn copy_from_window(&self, from: u64, to: u64, out: &mut Vec<CqEntry>) -> u64 {
        let window = self.window.borrow();
        let end = window.first + window.entries.len() as u64;
        if from < window.first || from >= end {
            return 0;
        }
        let until = to.min(end);
        let at = (from - window.first) as usize;
        out.extend_from_slice(&window.entries[at..at + (until - from) as usize]);
        until - from
    }

    /// Entries `[from, to)` from the file: the bytes below its memory tail from disk (full
    /// pages, written and never rewritten), the rest from the tail. An entry may straddle the
    /// two (4096 is not a multiple of 20), so the bytes are joined before decoding.
    async fn read_file(
        &self,
        from: u64,
        to: u64,
        out: &mut Vec<CqEntry>,
    ) -> Result<(), StoreError> {
        let pos = from * CQ_ENTRY_BYTES as u64;
        let len = ((to - from) as usize) * CQ_ENTRY_BYTES;
        let end = pos + len as u64;
        // The memory part is copied before any await: the tail drains once its pages are written.
        let (split, memory, file, path) = {
            let f = self.file.borrow();
            let split = f.memory_start().clamp(pos, end);
            let memory = if split < end {
                f.memory_slice(split, (end - split) as usize)
                    .expect("bytes from the memory tail's start are in memory")
                    .to_vec()
            } else {
                Vec::new()
            };
            (split, memory, f.file(), f.path().clone())
        };
        if split == pos {
            out.extend(memory.chunks_exact(CQ_ENTRY_BYTES).map(CqEntry::decode));
            return Ok(());
        }
        let disk_len = (split - pos) as usize;
        self.file_reads.set(self.file_reads.get() + 1);
        let file = file.expect("bytes below the memory tail were written, so the file exists");
        let bytes = file
            .read_at(pos, disk_len)
            .await
            .map_err(|e| StoreError::io("read", path.clone(), e))?;
        if bytes.len() < disk_len {
            return Err(StoreError::io(
                "read",
                path,
                std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
            ));
        }
        let mut joined = Vec::with_capacity(len);
        joined.extend_from_slice(&bytes[..disk_len]);
        joined.extend_from_slice(&memory);
        out.extend(joined.chunks_exact(CQ_ENTRY_BYTES).map(CqEntry::decode));
        Ok(())
    }
}
