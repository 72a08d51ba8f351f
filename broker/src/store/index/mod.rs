//! The key index on disk: message keys (space-separated KEYS) and UNIQ_KEY → global physical
//! offsets, for QUERY_MESSAGE. Laid out like RocketMQ's IndexFile: fixed-size files under
//! `index/`, each a header page, a table of hash slots and linked entries (every entry points at
//! the previous entry of its slot), so a lookup is a slot read plus one read per chain link.
//!
//! Every file has a key filter ([`filter`]): a lookup walks only the files whose filter may
//! hold its key. The file being filled keeps its filter in memory; a full file's filter is
//! written beside it at seal (`<seq>.filter`) and read by lookups into a cache with a byte
//! budget ([`filter_cache`]); a file without a usable filter is walked, as before filters.
//!
//! Memory is bounded by the layout, not by the number of messages: the slot table and filter of
//! the file being filled (`index_slots_per_file` × 4 bytes, `index_entries_per_file` bytes), the
//! entries not yet written, a page cache of `index_cache_pages` pages for reads of full files and
//! the filter cache (`index_filter_cache_bytes`). Reads go through glommio DMA reads (never a
//! blocking call on the shard thread). At open only the header pages and the file being filled
//! are read (see [`KeyIndex::load`]); full files and their filters are never loaded.

mod filter;
mod filter_cache;
mod lookup;
mod open;
mod write;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::rc::Rc;

use super::append_file::AppendFile;
use super::{align_up, StoreConfig, PAGE_BYTES};
use filter::KeyFilter;
use filter_cache::{FilterCache, StoredFilter};
pub(crate) use lookup::Lookup;
use lookup::PageCache;

/// Bytes of one index entry: key hash 8, global physical offset 8, store time 8, previous
/// entry of the same slot (index + 1, 0 = none) 4, zero 4. A power of two, so entries never
/// straddle a page.
pub const INDEX_ENTRY_BYTES: usize = 32;
/// Bytes of one hash slot: the newest entry of the slot (index + 1, 0 = empty).
pub const INDEX_SLOT_BYTES: u64 = 4;
/// The header page at the start of every index file.
pub const INDEX_HEADER_BYTES: u64 = PAGE_BYTES;
/// Most chain links one lookup follows in one file (bounds a query's reads on a pathological
/// slot; a hot key stops earlier, at `max_count` matches).
pub const MAX_CHAIN_STEPS: usize = 1 << 16;
/// Index files one lookup walks at once (each walk: a slot read, then its chain). 64 files
/// hold about 64 M keyed messages; with 16, 17 files took two rounds of reads (p50 2.6 ms).
pub const LOOKUP_FILES_IN_FLIGHT: usize = 64;
/// Bytes read at once when recovery rebuilds the slot table of the file being filled (and when
/// a full file's filter is rebuilt).
const RECOVERY_CHUNK_BYTES: usize = 1 << 20;
/// Bytes read at once when recovery looks backwards for the checkpoint cut: usually only the
/// entries of the last flush interval lie past it.
const CUT_SCAN_CHUNK_BYTES: usize = 64 << 10;
const INDEX_MAGIC: &[u8; 8] = b"RINGIDX1";
const HEADER_CRC_AT: usize = 60;

/// Bytes of one full index file's key filter in memory, for files of `entries_per_file`
/// entries (what `index_filter_cache_bytes` must hold at least one of to be of use).
pub fn index_filter_bytes(entries_per_file: u32) -> u64 {
    KeyFilter::bytes_for(entries_per_file) as u64
}

/// FNV-1a over `topic # key`, the index's key space (RocketMQ also keys by `topic#key`).
pub(crate) fn key_hash(topic: &[u8], key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in topic.iter().chain(b"#").chain(key) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Slots and entries per file (the same for every file of a store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) slots: u32,
    pub(crate) capacity: u32,
}

impl Layout {
    fn slot_table_bytes(self) -> u64 {
        align_up(u64::from(self.slots) * INDEX_SLOT_BYTES)
    }

    fn data_base(self) -> u64 {
        INDEX_HEADER_BYTES + self.slot_table_bytes()
    }

    fn entry_pos(self, i: u32) -> u64 {
        self.data_base() + u64::from(i) * INDEX_ENTRY_BYTES as u64
    }
}

/// What a file holds: entry count and the time and offset range of its entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Range {
    count: u32,
    begin_ts: i64,
    end_ts: i64,
    begin_phy: u64,
    end_phy: u64,
}

impl Range {
    fn extend(&mut self, ts: i64, phy: u64) {
        if self.count == 0 {
            self.begin_ts = ts;
            self.begin_phy = phy;
        }
        self.count += 1;
        self.end_ts = ts;
        self.end_phy = phy;
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: u64,
    phy: u64,
    ts: i64,
    prev: u32,
}

fn encode_entry(e: Entry) -> [u8; INDEX_ENTRY_BYTES] {
    let mut b = [0u8; INDEX_ENTRY_BYTES];
    b[0..8].copy_from_slice(&e.hash.to_be_bytes());
    b[8..16].copy_from_slice(&e.phy.to_be_bytes());
    b[16..24].copy_from_slice(&e.ts.to_be_bytes());
    b[24..28].copy_from_slice(&e.prev.to_be_bytes());
    b
}

fn decode_entry(b: &[u8]) -> Entry {
    Entry {
        hash: u64::from_be_bytes(b[0..8].try_into().expect("8 bytes")),
        phy: u64::from_be_bytes(b[8..16].try_into().expect("8 bytes")),
        ts: i64::from_be_bytes(b[16..24].try_into().expect("8 bytes")),
        prev: u32::from_be_bytes(b[24..28].try_into().expect("4 bytes")),
    }
}

/// Header: magic 8 | first sequence 8 | slots 4 | capacity 4 | entries covered by the slot
/// table on disk 4 | begin ts 8 | end ts 8 | begin phy 8 | end phy 8 | crc32 of bytes 0..60 4.
fn encode_header(b: &mut [u8], first_seq: u64, layout: Layout, r: Range) {
    b[0..8].copy_from_slice(INDEX_MAGIC);
    b[8..16].copy_from_slice(&first_seq.to_be_bytes());
    b[16..20].copy_from_slice(&layout.slots.to_be_bytes());
    b[20..24].copy_from_slice(&layout.capacity.to_be_bytes());
    b[24..28].copy_from_slice(&r.count.to_be_bytes());
    b[28..36].copy_from_slice(&r.begin_ts.to_be_bytes());
    b[36..44].copy_from_slice(&r.end_ts.to_be_bytes());
    b[44..52].copy_from_slice(&r.begin_phy.to_be_bytes());
    b[52..60].copy_from_slice(&r.end_phy.to_be_bytes());
    let crc = crc32fast::hash(&b[0..HEADER_CRC_AT]);
    b[HEADER_CRC_AT..HEADER_CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// The header's range if it is intact and written for this file and layout.
fn decode_header(b: &[u8], first_seq: u64, layout: Layout) -> Option<Range> {
    if b.len() < HEADER_CRC_AT + 4 || &b[0..8] != INDEX_MAGIC {
        return None;
    }
    let crc = u32::from_be_bytes(b[HEADER_CRC_AT..HEADER_CRC_AT + 4].try_into().ok()?);
    let u64_at = |at: usize| b[at..at + 8].try_into().ok().map(u64::from_be_bytes);
    let u32_at = |at: usize| b[at..at + 4].try_into().ok().map(u32::from_be_bytes);
    if crc != crc32fast::hash(&b[0..HEADER_CRC_AT])
        || u64_at(8)? != first_seq
        || u32_at(16)? != layout.slots
        || u32_at(20)? != layout.capacity
    {
        return None;
    }
    Some(Range {
        count: u32_at(24)?,
        begin_ts: u64_at(28)? as i64,
        end_ts: u64_at(36)? as i64,
        begin_phy: u64_at(44)?,
        end_phy: u64_at(52)?,
    })
}

fn file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.idx")
}

fn filter_file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.filter")
}

/// One index file.
struct IdxFile {
    /// Index sequence number of its first entry (entries of all files counted from the first
    /// entry ever indexed); also its name.
    first_seq: u64,
    range: Cell<Range>,
    /// Entries, appended in memory and written behind the log; positions are file positions.
    entries: RefCell<AppendFile>,
    /// The slot table while it is not on disk: the file being filled, and a full file until
    /// the next flush writes its table (then `None`: lookups read the table from disk).
    slots: RefCell<Option<Vec<u32>>>,
    /// The key filter while it is not on disk: the file being filled, and a full file until
    /// the next flush writes it (then `None`: lookups read it into the filter cache).
    filter: RefCell<Option<KeyFilter>>,
    /// What is known of a full file's filter on disk.
    stored_filter: Cell<StoredFilter>,
}

impl IdxFile {
    fn new(first_seq: u64, range: Range, entries: AppendFile, slots: Option<Vec<u32>>) -> Self {
        IdxFile {
            first_seq,
            range: Cell::new(range),
            entries: RefCell::new(entries),
            slots: RefCell::new(slots),
            filter: RefCell::new(None),
            stored_filter: Cell::new(StoredFilter::Expected),
        }
    }

    /// The file with `filter` in memory (being filled, or full with its filter not written).
    fn with_filter(self, filter: Option<KeyFilter>) -> Self {
        *self.filter.borrow_mut() = filter;
        self
    }
}

/// How much memory the index holds right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexMemory {
    /// Slot tables held in memory (the file being filled; briefly a full one until written).
    pub slot_bytes: u64,
    /// Entries appended but not yet written, and each file's partial last page (written only
    /// with a checkpoint): the memory tails of the files' entries.
    pub unwritten_bytes: u64,
    /// Pages in the read cache.
    pub cache_bytes: u64,
    /// Key filters held in memory outside the cache (the file being filled; briefly a full one
    /// until written).
    pub filter_bytes: u64,
    /// Filters of full files in the filter cache, and those being read into it.
    pub filter_cache_bytes: u64,
}

/// What lookups did since open.
#[derive(Debug, Default)]
pub(crate) struct LookupCounters {
    /// Files whose slot and chain a lookup read (the filter said "maybe", or there was none).
    pub(crate) files_walked: Cell<u64>,
    /// Files a lookup skipped because their filter does not hold the key.
    pub(crate) files_skipped: Cell<u64>,
    /// Bytes of filter files read (also counted in `bytes_read`).
    pub(crate) filter_bytes_read: Cell<u64>,
    /// Filters of full files rebuilt from their entries (missing or damaged on disk).
    pub(crate) filters_rebuilt: Cell<u64>,
}

fn bump(c: &Cell<u64>, by: u64) {
    c.set(c.get() + by);
}

pub(crate) struct KeyIndex {
    dir: PathBuf,
    layout: Layout,
    /// Oldest first; the last one is being filled.
    files: RefCell<VecDeque<Rc<IdxFile>>>,
    cache: PageCache,
    filters: FilterCache,
    /// Lookups since open: the filter cache's clock.
    lookups: Cell<u64>,
    /// A filter is being rebuilt (one at a time).
    rebuilding: Cell<bool>,
    pub(crate) counters: LookupCounters,
    /// Bytes read from index files since open (at open included), filter files included.
    pub(crate) bytes_read: Cell<u64>,
    /// O_DIRECT writes of entries since open, and their bytes (slot tables and headers aside).
    pub(crate) entry_writes: Cell<u64>,
    pub(crate) entry_bytes_written: Cell<u64>,
    /// Store time and physical offset of the last record indexed (QUERY_MESSAGE response header).
    pub(crate) last_update_timestamp: Cell<i64>,
    pub(crate) last_update_offset: Cell<u64>,
}

impl KeyIndex {
    /// An empty index in `dir` (which must hold no index files).
    pub(crate) fn empty(dir: PathBuf, config: &StoreConfig) -> Self {
        KeyIndex {
            dir,
            layout: config.index_layout(),
            files: RefCell::new(VecDeque::new()),
            cache: PageCache::new(config.index_cache_pages),
            filters: FilterCache::new(config.index_filter_cache_bytes),
            lookups: Cell::new(0),
            rebuilding: Cell::new(false),
            counters: LookupCounters::default(),
            bytes_read: Cell::new(0),
            entry_writes: Cell::new(0),
            entry_bytes_written: Cell::new(0),
            last_update_timestamp: Cell::new(0),
            last_update_offset: Cell::new(0),
        }
    }

    /// Entries indexed since the first (retention does not lower it): the checkpoint's count.
    pub(crate) fn total_entries(&self) -> u64 {
        self.files
            .borrow()
            .back()
            .map_or(0, |f| f.first_seq + u64::from(f.range.get().count))
    }

    /// Index files on disk or being filled.
    pub(crate) fn file_count(&self) -> usize {
        self.files.borrow().len()
    }

    pub(crate) fn memory(&self) -> IndexMemory {
        let files = self.files.borrow();
        let mut m = IndexMemory {
            cache_bytes: self.cache.bytes() as u64,
            filter_cache_bytes: self.filters.bytes() as u64,
            ..IndexMemory::default()
        };
        for f in files.iter() {
            if let Some(s) = f.slots.borrow().as_ref() {
                m.slot_bytes += (s.len() * 4) as u64;
            }
            if let Some(filter) = f.filter.borrow().as_ref() {
                m.filter_bytes += filter.bytes() as u64;
            }
            m.unwritten_bytes += f.entries.borrow().held_bytes();
        }
        m
    }

    fn new_file(&self, first_seq: u64) -> IdxFile {
        let path = self.dir.join(file_name(first_seq));
        let entries = AppendFile::existing(path, None, self.layout.data_base(), Vec::new());
        let slots = vec![0; self.layout.slots as usize];
        IdxFile::new(first_seq, Range::default(), entries, Some(slots))
            .with_filter(Some(KeyFilter::for_capacity(self.layout.capacity)))
    }

    /// The file being filled, starting a new one when the last is full.
    fn writable_file(&self) -> Rc<IdxFile> {
        let mut files = self.files.borrow_mut();
        if let Some(f) = files.back() {
            if f.range.get().count < self.layout.capacity {
                return f.clone();
            }
        }
        let first_seq = files
            .back()
            .map_or(0, |f| f.first_seq + u64::from(self.layout.capacity));
        let f = Rc::new(self.new_file(first_seq));
        files.push_back(f.clone());
        f
    }

    /// Indexes `key` of a record of `topic` at `global_offset`, stored at `store_ts`.
    pub(crate) fn add(&self, topic: &[u8], key: &[u8], global_offset: u64, store_ts: i64) {
        if key.is_empty() {
            return;
        }
        let f = self.writable_file();
        let hash = key_hash(topic, key);
        let mut range = f.range.get();
        let mut slots = f.slots.borrow_mut();
        let slots = slots
            .as_mut()
            .expect("the file being filled keeps its slots");
        let slot = (hash % u64::from(self.layout.slots)) as usize;
        let e = Entry {
            hash,
            phy: global_offset,
            ts: store_ts,
            prev: slots[slot],
        };
        f.entries.borrow_mut().append(&encode_entry(e));
        f.filter
            .borrow_mut()
            .as_mut()
            .expect("the file being filled keeps its filter")
            .insert(hash);
        range.extend(store_ts, global_offset);
        slots[slot] = range.count;
        f.range.set(range);
        self.last_update_offset.set(global_offset);
    }
}
