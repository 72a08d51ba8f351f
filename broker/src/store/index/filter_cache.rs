//! The filters of full files: written at seal, read by lookups into a cache with a byte budget
//! (`index_filter_cache_bytes`), rebuilt in the background when missing or damaged.
//!
//! A lookup asks each file's filter before walking the file: the file being filled answers
//! from memory, a full file from the cache or, when the budget has room, after one DMA read of
//! its filter file. Whenever no filter can be had (budget full, file missing or damaged, a read
//! failed) the file is walked, as it was before filters: never a wrong answer, only more reads.
//!
//! Eviction is least recently used, with one guard: a filter is evicted only once
//! [`FILTER_EVICT_IDLE_LOOKUPS`] lookups went by without it. When the store has more files
//! than the budget holds and every lookup covers all of them, plain LRU would evict the filters
//! that the same lookups need next, and read every filter again on every lookup (a filter read,
//! 2 MiB by default, costs far more than the walk it saves). With the guard, the filters in use
//! stay and the files beyond the budget are walked; filters of files no longer queried (older
//! than the queries' time ranges) make room for the others.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::super::backend::{DirectFile, File};
use super::super::StoreError;
use super::filter::{Binding, FilterReject, KeyFilter};
use super::{bump, filter_file_name, IdxFile, KeyIndex, Range};

/// Filter files one lookup may read. Right after a start no filter is cached, and a lookup
/// over 17 files would read all 17 (34 MiB by default) before answering; this way the first
/// few lookups share that cost and walk the files whose filter they did not read.
pub(super) const FILTER_LOADS_PER_LOOKUP: usize = 4;
/// Lookups a cached filter must go unused before it may be evicted (see the module docs).
pub(super) const FILTER_EVICT_IDLE_LOOKUPS: u64 = 64;
/// How long the start-up sweep waits before looking again while a lookup's rebuild runs.
const SWEEP_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// What is known of a full file's filter file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StoredFilter {
    /// On disk, as far as is known, and not cached: a lookup may read it.
    Expected,
    /// A lookup is reading it (others walk the file meanwhile).
    Loading,
    /// Missing or damaged: lookups walk the file and one of them starts a rebuild.
    Unusable,
    /// Being rebuilt from the file's entries.
    Rebuilding,
    /// The rebuild failed: lookups walk the file until the next open.
    Failed,
}

/// Why a filter could not be read or rebuilt.
#[derive(Debug, thiserror::Error)]
pub(super) enum FilterError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {reject}")]
    Rejected { path: PathBuf, reject: FilterReject },
    #[error("{path}: entries {found:?} disagree with the header's {want:?}")]
    EntriesDisagree {
        path: PathBuf,
        found: Range,
        want: Range,
    },
}

impl FilterError {
    /// The filter file does not exist.
    fn is_missing(&self) -> bool {
        matches!(self, FilterError::Store(StoreError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Cached filters by file (first sequence number): the filter and the lookup that last used it.
type CachedFilters = HashMap<u64, (Rc<KeyFilter>, u64)>;

/// Filters of full files held in memory, within a byte budget.
pub(super) struct FilterCache {
    budget_bytes: usize,
    /// Bytes of cached filters plus those being read.
    used_bytes: Cell<usize>,
    filters: RefCell<CachedFilters>,
}

impl FilterCache {
    pub(super) fn new(budget_bytes: usize) -> Self {
        FilterCache {
            budget_bytes,
            used_bytes: Cell::new(0),
            filters: RefCell::new(HashMap::new()),
        }
    }

    /// The filter of file `seq`, marked used by lookup `now`.
    pub(super) fn get(&self, seq: u64, now: u64) -> Option<Rc<KeyFilter>> {
        let mut filters = self.filters.borrow_mut();
        let cached = filters.get_mut(&seq)?;
        cached.1 = cached.1.max(now);
        Some(cached.0.clone())
    }

    /// Claims `bytes` of the budget for a filter about to be read or inserted, evicting least
    /// recently used filters idle for [`FILTER_EVICT_IDLE_LOOKUPS`] if needed. False (nothing
    /// claimed, nothing evicted) when that does not make room.
    pub(super) fn reserve(&self, bytes: usize, now: u64) -> bool {
        if bytes > self.budget_bytes {
            return false;
        }
        let mut filters = self.filters.borrow_mut();
        let idle = |last: u64| last + FILTER_EVICT_IDLE_LOOKUPS <= now;
        let mut by_age: Vec<(u64, u64, usize)> = filters
            .iter()
            .filter(|(_, (_, last))| idle(*last))
            .map(|(seq, (f, last))| (*last, *seq, f.bytes()))
            .collect();
        let evictable: usize = by_age.iter().map(|v| v.2).sum();
        let used = self.used_bytes.get();
        if used + bytes > self.budget_bytes + evictable {
            return false;
        }
        by_age.sort_unstable();
        let mut used = used;
        for (_, seq, size) in by_age {
            if used + bytes <= self.budget_bytes {
                break;
            }
            filters.remove(&seq);
            used -= size;
        }
        self.used_bytes.set(used + bytes);
        true
    }

    /// Gives back a claim whose filter could not be read.
    pub(super) fn release(&self, bytes: usize) {
        self.used_bytes.set(self.used_bytes.get() - bytes);
    }

    /// Caches a filter whose bytes were claimed with [`FilterCache::reserve`].
    pub(super) fn insert_reserved(&self, seq: u64, filter: Rc<KeyFilter>, now: u64) {
        if let Some((old, _)) = self.filters.borrow_mut().insert(seq, (filter, now)) {
            self.release(old.bytes());
        }
    }

    /// Forgets file `seq`'s filter (retention removed the file).
    pub(super) fn remove(&self, seq: u64) {
        if let Some((old, _)) = self.filters.borrow_mut().remove(&seq) {
            self.release(old.bytes());
        }
    }

    pub(super) fn bytes(&self) -> usize {
        self.used_bytes.get()
    }
}

/// A filter read in progress. If the lookup is dropped before the read completes (its
/// connection went away), the claimed budget is given back and a later lookup may read the
/// filter; otherwise both would stay taken for good.
struct Claim<'a> {
    cache: &'a FilterCache,
    f: &'a IdxFile,
    /// The claimed bytes while the read is in progress.
    bytes: Option<usize>,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if let Some(bytes) = self.bytes {
            self.cache.release(bytes);
            self.f.stored_filter.set(StoredFilter::Expected);
        }
    }
}

/// Removes `path` if it exists (an async unlink: no blocking call on the shard thread).
pub(super) async fn remove_if_exists(path: &Path) -> Result<(), StoreError> {
    match glommio::io::remove(path)
        .await
        .map_err(std::io::Error::from)
    {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(StoreError::io("remove", path, e))
        }
        _ => Ok(()),
    }
}

impl KeyIndex {
    /// What a filter file of `f` must say to be used for it.
    pub(super) fn binding(&self, f: &IdxFile) -> Binding {
        self.binding_of(f.first_seq, f.range.get())
    }

    /// What the filter file of the file `first_seq` holding `range` must say.
    pub(super) fn binding_of(&self, first_seq: u64, range: Range) -> Binding {
        Binding {
            first_seq,
            capacity: self.layout.capacity,
            range,
        }
    }

    fn filter_path(&self, seq: u64) -> PathBuf {
        self.dir.join(filter_file_name(seq))
    }

    /// Whether `f` is still one of the index's files (retention may have removed it while a
    /// read or rebuild was waiting for the disk).
    fn holds(&self, f: &IdxFile) -> bool {
        self.files.borrow().iter().any(|g| std::ptr::eq(&**g, f))
    }

    /// Whether `f` may hold `hash`, by its filter: in memory, cached, or read now into the
    /// cache when the budget and this lookup's share of reads (`loads`) allow. True (walk the
    /// file) whenever no filter can be had.
    pub(super) async fn may_hold(
        self: &Rc<Self>,
        f: &Rc<IdxFile>,
        hash: u64,
        now: u64,
        loads: &Cell<usize>,
    ) -> bool {
        if let Some(filter) = f.filter.borrow().as_ref() {
            return filter.may_contain(hash);
        }
        if let Some(filter) = self.filters.get(f.first_seq, now) {
            return filter.may_contain(hash);
        }
        match f.stored_filter.get() {
            StoredFilter::Expected => {}
            StoredFilter::Unusable => {
                self.start_rebuild(f);
                return true;
            }
            StoredFilter::Loading | StoredFilter::Rebuilding | StoredFilter::Failed => return true,
        }
        let bytes = KeyFilter::bytes_for(self.layout.capacity);
        if loads.get() >= FILTER_LOADS_PER_LOOKUP || !self.filters.reserve(bytes, now) {
            return true;
        }
        loads.set(loads.get() + 1);
        f.stored_filter.set(StoredFilter::Loading);
        let mut claim = Claim {
            cache: &self.filters,
            f,
            bytes: Some(bytes),
        };
        let read = self.read_filter_file(&self.binding(f)).await;
        claim.bytes = None;
        match read {
            Ok(filter) if self.holds(f) => {
                let filter = Rc::new(filter);
                self.filters
                    .insert_reserved(f.first_seq, filter.clone(), now);
                f.stored_filter.set(StoredFilter::Expected);
                filter.may_contain(hash)
            }
            Ok(_) => {
                self.filters.release(bytes);
                true
            }
            Err(e) => {
                self.filters.release(bytes);
                if e.is_missing() {
                    // Expected once per file of a store written before filters.
                    tracing::info!(
                        "index filter missing, walking the file until it is rebuilt: {e}"
                    );
                } else {
                    tracing::warn!(
                        "index filter unusable, walking the file until it is rebuilt: {e}"
                    );
                }
                f.stored_filter.set(StoredFilter::Unusable);
                self.start_rebuild(f);
                true
            }
        }
    }

    /// Reads and checks a filter file: one DMA read of the whole file.
    pub(super) async fn read_filter_file(&self, at: &Binding) -> Result<KeyFilter, FilterError> {
        let path = self.filter_path(at.first_seq);
        let file = File::open(&path, false)
            .await
            .map_err(|e| StoreError::io("open", &path, e))?;
        let read = file
            .read_at(0, KeyFilter::file_bytes_for(at.capacity))
            .await
            .map_err(|e| StoreError::io("read", &path, e));
        let _ = file.close().await;
        let bytes = read?;
        bump(&self.bytes_read, bytes.len() as u64);
        bump(&self.counters.filter_bytes_read, bytes.len() as u64);
        KeyFilter::decode(&bytes, at).map_err(|reject| FilterError::Rejected { path, reject })
    }

    /// Writes `filter` as the filter file of the entries `at` names, and fdatasyncs it (so a
    /// power loss does not cost a rebuild; a torn file fails its checksum and is rebuilt).
    pub(super) async fn write_filter_file(
        &self,
        at: &Binding,
        filter: &RefCell<Option<KeyFilter>>,
    ) -> Result<(), StoreError> {
        let path = self.filter_path(at.first_seq);
        let io = |op: &'static str| {
            let path = path.clone();
            move |e| StoreError::io(op, path, e)
        };
        let file = File::open(&path, true).await.map_err(io("open"))?;
        let mut buf = file.alloc(KeyFilter::file_bytes_for(at.capacity));
        match filter.borrow().as_ref() {
            Some(filter) => filter.encode(at, &mut buf),
            None => return Ok(()),
        }
        let written = match file.write_at(buf, 0).await.map_err(io("write")) {
            Ok(_) => file.sync_data().await.map_err(io("fdatasync")),
            Err(e) => Err(e),
        };
        let _ = file.close().await;
        written
    }

    /// Starts rebuilding `f`'s filter in the background, unless a rebuild is running (then a
    /// later lookup starts it: one file's entries are read at a time).
    fn start_rebuild(self: &Rc<Self>, f: &Rc<IdxFile>) {
        if self.rebuilding.get() {
            return;
        }
        let (index, f) = (self.clone(), f.clone());
        glommio::spawn_local(async move { index.rebuild_now(&f).await }).detach();
    }

    /// Rebuilds `f`'s filter now; the caller made sure no other rebuild runs.
    async fn rebuild_now(&self, f: &IdxFile) {
        assert!(!self.rebuilding.get(), "one filter rebuild at a time");
        self.rebuilding.set(true);
        f.stored_filter.set(StoredFilter::Rebuilding);
        let outcome = self.rebuild_filter(f).await;
        self.rebuilding.set(false);
        match outcome {
            Ok(()) => f.stored_filter.set(StoredFilter::Expected),
            Err(e) => {
                tracing::warn!("index filter rebuild failed, walking the file: {e}");
                f.stored_filter.set(StoredFilter::Failed);
            }
        }
    }

    /// After open: checks that every full file has a filter file of the right size (one
    /// `statx` each, no read) and rebuilds those that do not, newest first, one at a time, so
    /// files no lookup has reached yet get theirs too (a store written before filters, or
    /// filter files lost). A damaged filter of the right size is found by the first lookup
    /// that reads it, as before. Stops when `stopping` says so (the store is closing).
    pub(crate) async fn sweep_filters(self: Rc<Self>, stopping: impl Fn() -> bool) {
        let full: Vec<Rc<IdxFile>> = (self.files.borrow().iter())
            .filter(|f| f.filter.borrow().is_none())
            .cloned()
            .collect();
        for f in full.iter().rev() {
            loop {
                // A lookup's rebuild may be running (of this file, perhaps): wait for it.
                while self.rebuilding.get() {
                    if stopping() {
                        return;
                    }
                    glommio::timer::sleep(SWEEP_WAIT).await;
                }
                if stopping() {
                    return;
                }
                if f.stored_filter.get() != StoredFilter::Expected
                    || !self.holds(f)
                    || self.filter_file_present(f).await
                {
                    break;
                }
                if !self.rebuilding.get() {
                    tracing::info!(
                        file = %self.filter_path(f.first_seq).display(),
                        "index filter missing, rebuilding it"
                    );
                    self.rebuild_now(f).await;
                    break;
                }
            }
        }
    }

    /// Whether `f`'s filter file exists with the size a filter of this layout has.
    async fn filter_file_present(&self, f: &IdxFile) -> bool {
        let Ok(file) = File::open(&self.filter_path(f.first_seq), false).await else {
            return false;
        };
        let size = file.size().await;
        let _ = file.close().await;
        size.is_ok_and(|n| n == KeyFilter::file_bytes_for(self.layout.capacity) as u64)
    }

    /// Reads a full file's entries (in `RECOVERY_CHUNK_BYTES` reads), builds its filter, writes
    /// it and caches it if the budget has room.
    async fn rebuild_filter(&self, f: &IdxFile) -> Result<(), FilterError> {
        let (file, path) = {
            let e = f.entries.borrow();
            (e.file(), e.path().clone())
        };
        let file = file.expect("a full file is on disk");
        let mut filter = KeyFilter::for_capacity(self.layout.capacity);
        let count = f.range.get().count;
        let found = self
            .scan_entries(&file, &path, count, |e| filter.insert(e.hash))
            .await?;
        let want = f.range.get();
        if found != want {
            return Err(FilterError::EntriesDisagree { path, found, want });
        }
        if !self.holds(f) {
            return Ok(()); // retention removed the file meanwhile
        }
        let filter = RefCell::new(Some(filter));
        self.write_filter_file(&self.binding(f), &filter).await?;
        bump(&self.counters.filters_rebuilt, 1);
        self.cache_filter(f, filter.take().expect("still there"));
        Ok(())
    }

    /// Caches `f`'s filter, just built, if the budget has room (else lookups read it later,
    /// or walk the file).
    pub(super) fn cache_filter(&self, f: &IdxFile, filter: KeyFilter) {
        let now = self.lookups.get();
        if self.holds(f) && self.filters.reserve(filter.bytes(), now) {
            self.filters
                .insert_reserved(f.first_seq, Rc::new(filter), now);
        }
    }

    /// Forgets and removes the filter of file `seq` (the file went, or its filter is stale).
    pub(super) async fn remove_filter(&self, seq: u64) -> Result<(), StoreError> {
        self.filters.remove(seq);
        remove_if_exists(&self.filter_path(seq)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(capacity: u32) -> Rc<KeyFilter> {
        Rc::new(KeyFilter::for_capacity(capacity))
    }

    #[test]
    fn the_budget_bounds_what_is_cached_and_read() {
        let one = KeyFilter::bytes_for(1024);
        let cache = FilterCache::new(3 * one);
        for seq in 0..3 {
            assert!(cache.reserve(one, 1));
            cache.insert_reserved(seq, filter(1024), 1);
        }
        assert_eq!(cache.bytes(), 3 * one);
        assert!(!cache.reserve(one, 2), "full, and nothing idle");
        assert!(!cache.reserve(4 * one, 1_000), "larger than the budget");
        assert_eq!(cache.bytes(), 3 * one);
        // A claim given back (the read failed) frees its bytes.
        cache.remove(2);
        assert!(cache.reserve(one, 2));
        cache.release(one);
        assert_eq!(cache.bytes(), 2 * one);
        assert!(FilterCache::new(0).get(0, 0).is_none());
        assert!(
            !FilterCache::new(0).reserve(32, 0),
            "a zero budget caches nothing"
        );
    }

    #[test]
    fn a_read_dropped_midway_gives_its_claim_back() {
        let cache = FilterCache::new(1024);
        let entries = super::super::AppendFile::existing("x.idx".into(), None, 8192, Vec::new());
        let f = IdxFile::new(0, Range::default(), entries, None);
        assert!(cache.reserve(256, 1));
        f.stored_filter.set(StoredFilter::Loading);
        drop(Claim {
            cache: &cache,
            f: &f,
            bytes: Some(256),
        });
        assert_eq!(cache.bytes(), 0);
        assert_eq!(f.stored_filter.get(), StoredFilter::Expected);
        // A read that completed keeps its claim (the caller caches the filter or releases it).
        assert!(cache.reserve(256, 1));
        drop(Claim {
            cache: &cache,
            f: &f,
            bytes: None,
        });
        assert_eq!(cache.bytes(), 256);
    }

    #[test]
    fn only_filters_idle_long_enough_are_evicted_least_recent_first() {
        let one = KeyFilter::bytes_for(1024);
        let cache = FilterCache::new(2 * one);
        for (seq, used) in [(10, 1), (11, 2)] {
            assert!(cache.reserve(one, used));
            cache.insert_reserved(seq, filter(1024), used);
        }
        // Lookup 40 uses file 10 again; file 11 was last used by lookup 2.
        assert!(cache.get(10, 40).is_some());
        let soon = 2 + FILTER_EVICT_IDLE_LOOKUPS - 1;
        assert!(
            !cache.reserve(one, soon),
            "file 11 is not idle long enough yet"
        );
        let later = 2 + FILTER_EVICT_IDLE_LOOKUPS;
        assert!(cache.reserve(one, later), "file 11 is idle: evicted");
        cache.insert_reserved(12, filter(1024), later);
        assert!(cache.get(11, later).is_none());
        assert!(
            cache.get(10, later).is_some(),
            "the recently used one stays"
        );
        assert_eq!(cache.bytes(), 2 * one);
    }
}
