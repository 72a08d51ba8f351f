//! The key index on disk: message keys (space-separated KEYS) and UNIQ_KEY → global physical
//! offsets, for QUERY_MESSAGE. Laid out like RocketMQ's IndexFile: fixed-size files under
//! `index/`, each a header page, a table of hash slots and linked entries (every entry points at
//! the previous entry of its slot), so a lookup is a slot read plus one read per chain link.
//!
//! Memory is bounded by the layout, not by the number of messages: the slot table of the file
//! being filled (`index_slots_per_file` × 4 bytes), the entries not yet written, and a page
//! cache of `index_cache_pages` pages for reads of full files. Reads go through glommio DMA reads
//! (never a blocking call on the shard thread). At open only the header pages and the file being
//! filled are read (see [`KeyIndex::load`]); full files are never loaded.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::append_file::{reopen_truncated, AppendFile, Extent};
use super::backend::{DirectFile, File};
use super::{align_down, align_up, StoreError, PAGE_BYTES};

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
/// Bytes read at once when recovery rebuilds the slot table of the file being filled.
const RECOVERY_CHUNK_BYTES: usize = 1 << 20;
/// Bytes read at once when recovery looks backwards for the checkpoint cut: usually only the
/// entries of the last flush interval lie past it.
const CUT_SCAN_CHUNK_BYTES: usize = 64 << 10;
const INDEX_MAGIC: &[u8; 8] = b"RINGIDX1";
const HEADER_CRC_AT: usize = 60;

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
}

/// A cached page by (file's first sequence number, page position): its bytes and last use.
type CachedPages = HashMap<(u64, u64), (Rc<[u8]>, u64)>;

/// A bounded cache of index pages of full files (immutable on disk), least recently used out.
struct PageCache {
    cap: usize,
    tick: Cell<u64>,
    pages: RefCell<CachedPages>,
}

impl PageCache {
    fn get(&self, key: (u64, u64)) -> Option<Rc<[u8]>> {
        let t = self.tick.get() + 1;
        self.tick.set(t);
        let mut pages = self.pages.borrow_mut();
        let slot = pages.get_mut(&key)?;
        slot.1 = t;
        Some(slot.0.clone())
    }

    fn insert(&self, key: (u64, u64), page: Rc<[u8]>) {
        if self.cap == 0 {
            return;
        }
        let mut pages = self.pages.borrow_mut();
        if pages.len() >= self.cap {
            // A linear scan per miss: the cache is small and a miss costs a disk read anyway.
            if let Some(old) = pages.iter().min_by_key(|(_, v)| v.1).map(|(k, _)| *k) {
                pages.remove(&old);
            }
        }
        pages.insert(key, (page, self.tick.get()));
    }

    fn bytes(&self) -> usize {
        self.pages.borrow().len() * PAGE_BYTES as usize
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
}

pub(crate) struct KeyIndex {
    dir: PathBuf,
    layout: Layout,
    /// Oldest first; the last one is being filled.
    files: RefCell<VecDeque<Rc<IdxFile>>>,
    cache: PageCache,
    /// Bytes read from index files since open (at open included).
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
    pub(crate) fn empty(dir: PathBuf, layout: Layout, cache_pages: usize) -> Self {
        KeyIndex {
            dir,
            layout,
            files: RefCell::new(VecDeque::new()),
            cache: PageCache {
                cap: cache_pages,
                tick: Cell::new(0),
                pages: RefCell::new(HashMap::new()),
            },
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
            ..IndexMemory::default()
        };
        for f in files.iter() {
            if let Some(s) = f.slots.borrow().as_ref() {
                m.slot_bytes += (s.len() * 4) as u64;
            }
            m.unwritten_bytes += f.entries.borrow().held_bytes();
        }
        m
    }

    fn new_file(&self, first_seq: u64) -> IdxFile {
        let path = self.dir.join(file_name(first_seq));
        IdxFile {
            first_seq,
            range: Cell::new(Range::default()),
            entries: RefCell::new(AppendFile::existing(
                path,
                None,
                self.layout.data_base(),
                Vec::new(),
            )),
            slots: RefCell::new(Some(vec![0; self.layout.slots as usize])),
        }
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
        range.extend(store_ts, global_offset);
        slots[slot] = range.count;
        f.range.set(range);
        self.last_update_offset.set(global_offset);
    }

    /// Writes (no fdatasync) the full pages of entries not yet written, so they do not pile up
    /// in memory between checkpoints; the partial last page, slot tables and headers wait for
    /// [`KeyIndex::flush`].
    pub(crate) async fn write_entries(&self) -> Result<(), StoreError> {
        let files: Vec<Rc<IdxFile>> = self
            .files
            .borrow()
            .iter()
            .filter(|f| f.entries.borrow().has_unwritten_full_pages())
            .cloned()
            .collect();
        for f in files {
            let wrote = AppendFile::flush(&f.entries, Extent::FullPages).await?;
            self.count_write(wrote);
        }
        Ok(())
    }

    fn count_write(&self, bytes: u64) {
        if bytes > 0 {
            self.entry_writes.set(self.entry_writes.get() + 1);
            self.entry_bytes_written
                .set(self.entry_bytes_written.get() + bytes);
        }
    }

    /// Entries (sequence numbers, counted like [`KeyIndex::total_entries`]) whose bytes an
    /// fdatasync covered, in order: a checkpoint may vouch for no more.
    pub(crate) fn synced_entries(&self) -> u64 {
        let files = self.files.borrow();
        let mut synced = files.front().map_or(0, |f| f.first_seq);
        for f in files.iter() {
            let bytes = f.entries.borrow().synced();
            let n = bytes.saturating_sub(self.layout.data_base()) / INDEX_ENTRY_BYTES as u64;
            synced = f.first_seq + n;
            if n < u64::from(self.layout.capacity) {
                break;
            }
        }
        synced
    }

    /// Writes and fdatasyncs unwritten entries; writes the slot table and header of every full
    /// file (then frees its table), and with `with_filling_slots` also of the file being filled
    /// (a clean close, so the next open reads the table instead of rebuilding it).
    pub(crate) async fn flush(&self, with_filling_slots: bool) -> Result<(), StoreError> {
        let files: Vec<Rc<IdxFile>> = self
            .files
            .borrow()
            .iter()
            .filter(|f| !f.entries.borrow().is_clean() || f.slots.borrow().is_some())
            .cloned()
            .collect();
        let last = self.files.borrow().back().map(|f| f.first_seq);
        for f in files {
            let wrote = AppendFile::flush(&f.entries, Extent::Synced).await?;
            self.count_write(wrote);
            let full = f.range.get().count == self.layout.capacity;
            if full || (with_filling_slots && Some(f.first_seq) == last) {
                self.write_slots(&f).await?;
            }
            if full {
                *f.slots.borrow_mut() = None;
            }
        }
        Ok(())
    }

    /// Writes the slot table, fdatasyncs, then writes the header saying how many entries the
    /// table covers and fdatasyncs again (a header never vouches for a table not yet durable).
    async fn write_slots(&self, f: &IdxFile) -> Result<(), StoreError> {
        let (file, path) = {
            let e = f.entries.borrow();
            (e.file(), e.path().clone())
        };
        let Some(file) = file else { return Ok(()) };
        let range = f.range.get();
        let mut table = file.alloc(self.layout.slot_table_bytes() as usize);
        {
            let slots = f.slots.borrow();
            let Some(slots) = slots.as_ref() else {
                return Ok(()); // already written
            };
            for (chunk, s) in table.chunks_exact_mut(4).zip(slots.iter()) {
                chunk.copy_from_slice(&s.to_be_bytes());
            }
        }
        let io = |op: &'static str| {
            let path = path.clone();
            move |e| StoreError::io(op, path, e)
        };
        file.write_at(table, INDEX_HEADER_BYTES)
            .await
            .map_err(io("write"))?;
        file.sync_data().await.map_err(io("fdatasync"))?;
        let mut header = file.alloc(INDEX_HEADER_BYTES as usize);
        encode_header(&mut header, f.first_seq, self.layout, range);
        file.write_at(header, 0).await.map_err(io("write"))?;
        file.sync_data().await.map_err(io("fdatasync"))?;
        Ok(())
    }

    /// Deletes the files whose every entry points below `global_min` (retention removed their
    /// records), never the file being filled. Returns how many went.
    pub(crate) fn remove_below(&self, global_min: u64) -> Result<usize, StoreError> {
        let mut removed = 0;
        loop {
            let gone = {
                let mut files = self.files.borrow_mut();
                match files.front() {
                    Some(f) if files.len() > 1 && f.range.get().end_phy < global_min => {
                        files.pop_front()
                    }
                    _ => None,
                }
            };
            let Some(f) = gone else { break };
            let path = f.entries.borrow().path().clone();
            tracing::info!(path = %path.display(), "retention deletes index file");
            std::fs::remove_file(&path).map_err(|e| StoreError::io("remove", &path, e))?;
            removed += 1;
        }
        Ok(removed)
    }
}

/// A lookup: `topic#key` stored within `[begin_ts, end_ts]`, at or above `min_phy`.
pub(crate) struct Lookup<'a> {
    pub(crate) topic: &'a [u8],
    pub(crate) key: &'a [u8],
    pub(crate) begin_ts: i64,
    pub(crate) end_ts: i64,
    pub(crate) min_phy: u64,
    pub(crate) max: usize,
}

impl KeyIndex {
    /// Candidate offsets for a lookup, newest first, at most `max`. Only entries whose full
    /// 64-bit hash matches are returned; the caller re-checks each record's topic and key.
    ///
    /// A key may be in any file whose time range overlaps the query's, so a lookup reads one
    /// slot and a chain in each. Those walks run [`LOOKUP_FILES_IN_FLIGHT`] at a time: one after
    /// another they made QUERY_MESSAGE grow with the store (6.3 ms p50 over 17 files against
    /// 1.9 ms over 5, results/fill-20261207T143102Z.md).
    pub(crate) async fn lookup(&self, q: &Lookup<'_>) -> Result<Vec<u64>, StoreError> {
        let hash = key_hash(q.topic, q.key);
        let files: Vec<Rc<IdxFile>> = self
            .files
            .borrow()
            .iter()
            .rev()
            // Older files point lower still (an empty file says nothing).
            .take_while(|f| f.range.get().count == 0 || f.range.get().end_phy >= q.min_phy)
            .filter(|f| {
                let r = f.range.get();
                r.count != 0 && r.end_ts >= q.begin_ts && r.begin_ts <= q.end_ts
            })
            .cloned()
            .collect();
        let mut out: Vec<u64> = Vec::new();
        for group in files.chunks(LOOKUP_FILES_IN_FLIGHT) {
            let walks = join_all(group.iter().map(|f| self.walk(f, hash, q))).await;
            for found in walks {
                for phy in found? {
                    // A record listing a key twice can have its entries in two files.
                    if out.last() != Some(&phy) {
                        out.push(phy);
                    }
                }
                if out.len() >= q.max {
                    out.truncate(q.max);
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    /// Follows one slot's chain (newest to oldest: store times never decrease in a shard).
    async fn walk(&self, f: &IdxFile, hash: u64, q: &Lookup<'_>) -> Result<Vec<u64>, StoreError> {
        let mut out = Vec::new();
        let slot = (hash % u64::from(self.layout.slots)) as u32;
        let mut next = self.read_slot(f, slot).await?;
        let mut steps = 0;
        while next != 0 && out.len() < q.max && steps < MAX_CHAIN_STEPS {
            steps += 1;
            let e = self.read_entry(f, next - 1).await?;
            if e.ts < q.begin_ts || e.phy < q.min_phy {
                break;
            }
            // A record listing a key twice has two entries; report it once.
            if e.hash == hash && e.ts <= q.end_ts && out.last() != Some(&e.phy) {
                out.push(e.phy);
            }
            if e.prev >= next {
                break; // links only point backwards; anything else is damage, stop there
            }
            next = e.prev;
        }
        Ok(out)
    }

    async fn read_slot(&self, f: &IdxFile, slot: u32) -> Result<u32, StoreError> {
        if let Some(s) = f.slots.borrow().as_ref() {
            return Ok(s[slot as usize]);
        }
        let pos = INDEX_HEADER_BYTES + u64::from(slot) * INDEX_SLOT_BYTES;
        let page = self.page(f, align_down(pos)).await?;
        let at = (pos % PAGE_BYTES) as usize;
        Ok(u32::from_be_bytes(
            page[at..at + 4].try_into().expect("4 bytes"),
        ))
    }

    async fn read_entry(&self, f: &IdxFile, i: u32) -> Result<Entry, StoreError> {
        let pos = self.layout.entry_pos(i);
        if let Some(b) = f.entries.borrow().memory_slice(pos, INDEX_ENTRY_BYTES) {
            return Ok(decode_entry(b));
        }
        let page = self.page(f, align_down(pos)).await?;
        let at = (pos % PAGE_BYTES) as usize;
        Ok(decode_entry(&page[at..at + INDEX_ENTRY_BYTES]))
    }

    /// A page of `f` that is written and never rewritten (entries below the partial last page,
    /// slot tables of full files): from the cache or one DMA read.
    async fn page(&self, f: &IdxFile, pos: u64) -> Result<Rc<[u8]>, StoreError> {
        let key = (f.first_seq, pos);
        if let Some(p) = self.cache.get(key) {
            return Ok(p);
        }
        let (file, path) = {
            let e = f.entries.borrow();
            (e.file(), e.path().clone())
        };
        let file = file.expect("a page not in memory was written, so the file exists");
        let buf = file
            .read_at(pos, PAGE_BYTES as usize)
            .await
            .map_err(|e| StoreError::io("read", path.clone(), e))?;
        self.bytes_read
            .set(self.bytes_read.get() + buf.len() as u64);
        if buf.len() < PAGE_BYTES as usize {
            let eof = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
            return Err(StoreError::io("read", path, eof));
        }
        let page: Rc<[u8]> = Rc::from(&buf[..]);
        self.cache.insert(key, page.clone());
        Ok(page)
    }
}

/// Runs `futures` concurrently on this task; their outputs in the order given.
async fn join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut futures: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *output = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future completed"))
        .collect()
}

/// Index files in `dir` by first sequence number, oldest first. A `keys.idx` of the earlier
/// in-memory index is removed (the caller then finds fewer entries than the checkpoint says and
/// rebuilds the index from the log).
fn list_files(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let legacy = dir.join("keys.idx");
    if legacy.exists() {
        std::fs::remove_file(&legacy).map_err(|e| StoreError::io("remove", &legacy, e))?;
    }
    let mut seqs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| StoreError::io("list", dir, e))? {
        let path = entry.map_err(|e| StoreError::io("list", dir, e))?.path();
        let seq = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".idx"))
            .filter(|n| n.len() == 20)
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(s) = seq {
            seqs.push(s);
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

impl KeyIndex {
    /// Opens the index in `dir`, keeping the entries of records below `cut_phy` (the
    /// checkpoint). Reads only each file's header page and, of the newest file, the entries
    /// past the cut plus either its slot table (written by a clean close) or its entries (to
    /// rebuild the table after a crash) — never the entries of the other files. If the files
    /// do not fit together (a torn header, a gap), they are all removed: the index then holds
    /// fewer entries than the checkpoint and the caller rebuilds it from the log.
    pub(crate) async fn load(
        dir: PathBuf,
        layout: Layout,
        cache_pages: usize,
        cut_phy: u64,
    ) -> Result<KeyIndex, StoreError> {
        let index = KeyIndex::empty(dir.clone(), layout, cache_pages);
        let mut seqs = list_files(&dir)?;
        // Files wholly at or past the cut go; the newest left is cut and keeps being filled.
        let mut newest = None;
        while let Some(&seq) = seqs.last() {
            let path = dir.join(file_name(seq));
            let file = File::open(&path, false)
                .await
                .map_err(|e| StoreError::io("open", &path, e))?;
            let kept = index.count_below(&file, &path, cut_phy).await?;
            if kept > 0 {
                newest = Some((seq, file, kept));
                break;
            }
            let _ = file.close().await;
            std::fs::remove_file(&path).map_err(|e| StoreError::io("remove", &path, e))?;
            seqs.pop();
        }
        let Some((last_seq, last_file, kept)) = newest else {
            return Ok(index);
        };
        seqs.pop();
        let consistent = index.load_full_files(&seqs, last_seq).await?
            && index.load_newest(last_seq, last_file, kept).await?;
        if !consistent {
            tracing::warn!(dir = %dir.display(), "index files do not fit together; removing them");
            index.files.borrow_mut().clear();
            for seq in seqs.iter().chain([&last_seq]) {
                let path = dir.join(file_name(*seq));
                std::fs::remove_file(&path).map_err(|e| StoreError::io("remove", &path, e))?;
            }
        }
        if let Some(f) = index.files.borrow().back() {
            let r = f.range.get();
            index.last_update_timestamp.set(r.end_ts);
            index.last_update_offset.set(r.end_phy);
        }
        Ok(index)
    }

    /// Entries of records below `cut_phy` in `file` (trailing zeros and later entries dropped),
    /// scanning backwards from its end: usually one chunk.
    async fn count_below(&self, file: &File, path: &Path, cut_phy: u64) -> Result<u32, StoreError> {
        let base = self.layout.data_base();
        let size = file
            .size()
            .await
            .map_err(|e| StoreError::io("stat", path, e))?;
        let mut n = (size.saturating_sub(base) / INDEX_ENTRY_BYTES as u64)
            .min(u64::from(self.layout.capacity)) as u32;
        // Entries are in log order: a file whose first entry is at or past the cut (one made
        // after the checkpoint, before a kill -9) is dropped whole, without scanning it.
        if n > 0 && !self.first_entry_below(file, path, cut_phy).await? {
            return Ok(0);
        }
        let chunk_entries = (CUT_SCAN_CHUNK_BYTES / INDEX_ENTRY_BYTES) as u32;
        while n > 0 {
            let from = n.saturating_sub(chunk_entries);
            let want = (n - from) as usize * INDEX_ENTRY_BYTES;
            let bytes = file
                .read_at(self.layout.entry_pos(from), want)
                .await
                .map_err(|e| StoreError::io("read", path, e))?;
            self.bytes_read
                .set(self.bytes_read.get() + bytes.len() as u64);
            let whole = bytes.len().min(want) / INDEX_ENTRY_BYTES;
            n = from + whole as u32; // a file that shrank under us keeps what was read whole
            for e in bytes[..whole * INDEX_ENTRY_BYTES]
                .chunks_exact(INDEX_ENTRY_BYTES)
                .rev()
            {
                let e = decode_entry(e);
                if e.ts != 0 && e.phy < cut_phy {
                    return Ok(n);
                }
                n -= 1;
            }
        }
        Ok(0)
    }

    /// Whether the file's first entry is a record below `cut_phy`.
    async fn first_entry_below(
        &self,
        file: &File,
        path: &Path,
        cut_phy: u64,
    ) -> Result<bool, StoreError> {
        let bytes = file
            .read_at(self.layout.entry_pos(0), INDEX_ENTRY_BYTES)
            .await
            .map_err(|e| StoreError::io("read", path, e))?;
        self.bytes_read
            .set(self.bytes_read.get() + bytes.len() as u64);
        let Some(first) = bytes.get(..INDEX_ENTRY_BYTES) else {
            return Ok(false);
        };
        let first = decode_entry(first);
        Ok(first.ts != 0 && first.phy < cut_phy)
    }

    async fn read_header(
        &self,
        file: &File,
        path: &Path,
        seq: u64,
    ) -> Result<Option<Range>, StoreError> {
        let page = file
            .read_at(0, INDEX_HEADER_BYTES as usize)
            .await
            .map_err(|e| StoreError::io("read", path, e))?;
        self.bytes_read
            .set(self.bytes_read.get() + page.len() as u64);
        Ok(decode_header(&page, seq, self.layout))
    }

    /// Full files: header only, each must be complete and follow the previous one.
    async fn load_full_files(&self, seqs: &[u64], last_seq: u64) -> Result<bool, StoreError> {
        let cap = u64::from(self.layout.capacity);
        for (i, &seq) in seqs.iter().enumerate() {
            let next = seqs.get(i + 1).copied().unwrap_or(last_seq);
            let path = self.dir.join(file_name(seq));
            let file = File::open(&path, false)
                .await
                .map_err(|e| StoreError::io("open", &path, e))?;
            let range = self.read_header(&file, &path, seq).await?;
            let Some(range) =
                range.filter(|r| r.count == self.layout.capacity && seq + cap == next)
            else {
                return Ok(false);
            };
            let len = self.layout.entry_pos(self.layout.capacity);
            let entries = AppendFile::existing(path, Some(Rc::new(file)), len, Vec::new());
            self.files.borrow_mut().push_back(Rc::new(IdxFile {
                first_seq: seq,
                range: Cell::new(range),
                entries: RefCell::new(entries),
                slots: RefCell::new(None),
            }));
        }
        Ok(true)
    }
}

impl KeyIndex {
    /// The newest file, cut to `kept` entries: its slot table from disk when the header
    /// vouches for exactly those entries, else rebuilt from its entries (after a crash).
    async fn load_newest(&self, seq: u64, file: File, kept: u32) -> Result<bool, StoreError> {
        let path = self.dir.join(file_name(seq));
        let header = self.read_header(&file, &path, seq).await?;
        let file = Rc::new(file);
        let len = self.layout.entry_pos(kept);
        let entries = reopen_truncated(path.clone(), file.clone(), len).await?;
        self.bytes_read
            .set(self.bytes_read.get() + (len - align_down(len)));
        let from_disk = match header.filter(|r| r.count == kept) {
            Some(r) if kept == self.layout.capacity => Some((r, None)),
            Some(r) => self
                .read_slot_table(&file, &path, kept)
                .await?
                .map(|s| (r, Some(s))),
            None => None,
        };
        let (range, slots) = match from_disk {
            Some(v) => v,
            None => {
                let (r, s) = self.rebuild_slots(&file, &path, kept).await?;
                (r, Some(s))
            }
        };
        self.files.borrow_mut().push_back(Rc::new(IdxFile {
            first_seq: seq,
            range: Cell::new(range),
            entries: RefCell::new(entries),
            slots: RefCell::new(slots),
        }));
        Ok(true)
    }

    /// The slot table on disk, if it covers exactly `count` entries: the newest entry's slot
    /// holds `count`, and no slot points past it (a table written after its header, by a close
    /// interrupted between the two writes, fails this).
    async fn read_slot_table(
        &self,
        file: &File,
        path: &Path,
        count: u32,
    ) -> Result<Option<Vec<u32>>, StoreError> {
        let bytes = file
            .read_at(INDEX_HEADER_BYTES, self.layout.slot_table_bytes() as usize)
            .await
            .map_err(|e| StoreError::io("read", path, e))?;
        self.bytes_read
            .set(self.bytes_read.get() + bytes.len() as u64);
        let want = self.layout.slots as usize * INDEX_SLOT_BYTES as usize;
        if bytes.len() < want {
            return Ok(None);
        }
        let slots: Vec<u32> = bytes[..want]
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes(c.try_into().expect("4 bytes")))
            .collect();
        Ok((slots.iter().max() == Some(&count)).then_some(slots))
    }

    /// Rebuilds the slot table and range of a file from its first `count` entries.
    async fn rebuild_slots(
        &self,
        file: &File,
        path: &Path,
        count: u32,
    ) -> Result<(Range, Vec<u32>), StoreError> {
        let mut slots = vec![0u32; self.layout.slots as usize];
        let mut range = Range::default();
        let chunk_entries = (RECOVERY_CHUNK_BYTES / INDEX_ENTRY_BYTES) as u32;
        while range.count < count {
            let from = range.count;
            let n = chunk_entries.min(count - from);
            let want = n as usize * INDEX_ENTRY_BYTES;
            let bytes = file
                .read_at(self.layout.entry_pos(from), want)
                .await
                .map_err(|e| StoreError::io("read", path, e))?;
            self.bytes_read
                .set(self.bytes_read.get() + bytes.len() as u64);
            if bytes.len() < want {
                let eof = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
                return Err(StoreError::io("read", path, eof));
            }
            for e in bytes[..want].chunks_exact(INDEX_ENTRY_BYTES) {
                let e = decode_entry(e);
                range.extend(e.ts, e.phy);
                slots[(e.hash % u64::from(self.layout.slots)) as usize] = range.count;
            }
        }
        Ok((range, slots))
    }
}

#[cfg(test)]
mod tests {
    use super::join_all;
    use futures_lite::future::{block_on, yield_now};

    #[test]
    fn join_all_returns_outputs_in_the_given_order_whatever_finishes_first() {
        let futures = [3u32, 0, 2].into_iter().map(|yields| async move {
            for _ in 0..yields {
                yield_now().await;
            }
            yields
        });
        assert_eq!(block_on(join_all(futures)), vec![3, 0, 2]);
    }
}
