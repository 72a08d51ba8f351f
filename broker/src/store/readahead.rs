//! Read-ahead for pulls that fall behind the tail cache: the log is read in large aligned
//! extents (`read_ahead_bytes`, default 1 MiB) kept in a bounded cache (`read_ahead_extents`),
//! and a pull served from extent `k` starts DMA reads of the next [`READ_AHEAD_DEPTH`] extents
//! in the background. Consumers that lag read the log front to back, so the next pull finds its
//! records in memory; consumers of different queues reading the same stretch of the log share
//! the extents (records of many queues interleave in one log). Concurrent needs of one extent
//! wait for the read in flight instead of issuing another.
//!
//! Extents only pay when the queues reading them are close together. A group's queues drift
//! apart in the log over a long drain, and once they are spread wider than the cache, extents
//! are evicted before most of their bytes were served, and read again for the next queue to
//! arrive (measured: 4.5x the log read to drain 5.5 GB over 8 queues). So the cache watches how
//! much of each extent it evicts was served ([`ReadAhead::useful_permille`]); while that is below
//! [`USEFUL_PERMILLE_MIN`], a pull reading a dense run of its own records (a batch send stores
//! them back to back) reads just that run instead (the caller's fallback) and starts no
//! read-ahead, and one such miss in [`PROBE_EVERY_MISSES`] still loads an extent so that the
//! measure follows the readers when they come together again. Sparse records keep using extents.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use super::backend::{DirectFile, File};
use super::commitlog::Segment;
use super::notify::Notify;
use super::StoreError;

/// Extents read ahead of the one a sequential pull was served from.
pub const READ_AHEAD_DEPTH: u64 = 2;
/// Below this share (per mille) of evicted extents' bytes served, extents are not worth loading.
pub const USEFUL_PERMILLE_MIN: u64 = 500;
/// While extents are not worth loading, one miss in this many loads one anyway (to measure).
pub const PROBE_EVERY_MISSES: u64 = 8;
/// Weight of the newest eviction in the running share: 1/8.
const USEFUL_EWMA_SHIFT: u32 = 3;

struct Extent {
    buf: Rc<<File as DirectFile>::ReadBuf>,
    tick: u64,
    /// Bytes pulls copied out of this extent.
    served_bytes: u64,
}

pub(crate) struct ReadAhead {
    extent_bytes: u64,
    cap: usize,
    tick: Cell<u64>,
    /// By local offset of the extent's first byte.
    extents: RefCell<HashMap<u64, Extent>>,
    loading: RefCell<HashSet<u64>>,
    loaded: Notify,
    /// Bytes read from disk into extents.
    pub(crate) bytes_read: Cell<u64>,
    /// Bytes pulls read from disk into their own windows (not through extents).
    pub(crate) window_bytes_read: Cell<u64>,
    /// Running share (per mille) of an evicted extent's bytes that pulls were served from.
    useful_permille: Cell<u64>,
    /// Misses while extents were not worth loading (for [`PROBE_EVERY_MISSES`]).
    skipped_misses: Cell<u64>,
}

impl ReadAhead {
    pub(crate) fn new(extent_bytes: u64, cap: usize) -> Self {
        ReadAhead {
            extent_bytes,
            cap,
            tick: Cell::new(0),
            extents: RefCell::new(HashMap::new()),
            loading: RefCell::new(HashSet::new()),
            loaded: Notify::default(),
            bytes_read: Cell::new(0),
            window_bytes_read: Cell::new(0),
            useful_permille: Cell::new(1000),
            skipped_misses: Cell::new(0),
        }
    }

    /// Whether a pull's miss loads its extent (the next records then come from extents too,
    /// so a read of its own only needs a record that crosses an extent's end). Not while
    /// extents thrash and the pull is reading a dense run of its own records, which one read
    /// serves without reading other queues' records; a sparse queue still does better with
    /// shared extents than with a window per miss.
    pub(crate) fn loads_for(&self, dense_run: bool) -> bool {
        self.cap > 0 && !(dense_run && self.thrashing())
    }

    /// Whether extents are being evicted mostly unserved (the readers are spread too wide).
    fn thrashing(&self) -> bool {
        self.useful_permille.get() < USEFUL_PERMILLE_MIN
    }

    /// A miss while thrashing: true when this one should load its extent anyway (a probe).
    fn probe(&self) -> bool {
        let n = self.skipped_misses.get() + 1;
        self.skipped_misses.set(n);
        n % PROBE_EVERY_MISSES == 0
    }

    /// Folds an evicted extent's served share into the running measure.
    fn on_evicted(&self, served_bytes: u64, len: usize) {
        let share = (served_bytes * 1000 / len.max(1) as u64).min(1000);
        let old = self.useful_permille.get();
        self.useful_permille
            .set(old - (old >> USEFUL_EWMA_SHIFT) + (share >> USEFUL_EWMA_SHIFT));
    }

    /// Bytes of memory held by extents (read or being read).
    pub(crate) fn held_bytes(&self) -> u64 {
        (self.extents.borrow().len() + self.loading.borrow().len()) as u64 * self.extent_bytes
    }

    /// First byte of the extent holding `pos` (extents never cross a segment end).
    fn extent_start(&self, seg: &Segment, pos: u64) -> u64 {
        seg.base + (pos - seg.base) / self.extent_bytes * self.extent_bytes
    }

    /// Appends log bytes `[pos, pos+len)` to `out` from an extent, reading it if needed, and
    /// reads ahead. `limit` is the end of readable log bytes in `seg` (written, segment end).
    /// `Ok(false)`: not served (read-ahead off, or the bytes cross an extent boundary); the
    /// caller reads them directly.
    pub(crate) async fn read(
        self: &Rc<Self>,
        seg: &Rc<Segment>,
        limit: u64,
        pos: u64,
        len: usize,
        dense_run: bool,
        out: &mut Vec<u8>,
    ) -> Result<bool, StoreError> {
        let start = self.extent_start(seg, pos);
        if self.cap == 0 || pos + len as u64 > start + self.extent_bytes {
            return Ok(false);
        }
        let mut loaded_once = false;
        loop {
            if self.copy_from(start, pos, len, out) {
                if self.loads_for(dense_run) {
                    self.prefetch(seg, limit, start);
                }
                return Ok(true);
            }
            if self.loading.borrow().contains(&start) {
                self.loaded
                    .wait_for(|| (!self.loading.borrow().contains(&start)).then_some(()))
                    .await;
                continue;
            }
            if loaded_once {
                return Ok(false); // the extent ends before the bytes (written moved since)
            }
            if !self.loads_for(dense_run) && !self.probe() {
                return Ok(false);
            }
            self.load(seg, limit, start).await?;
            loaded_once = true;
        }
    }

    fn copy_from(&self, start: u64, pos: u64, len: usize, out: &mut Vec<u8>) -> bool {
        let t = self.tick.get() + 1;
        self.tick.set(t);
        let mut extents = self.extents.borrow_mut();
        let Some(e) = extents.get_mut(&start) else {
            return false;
        };
        let at = (pos - start) as usize;
        if at + len > e.buf.len() {
            return false;
        }
        e.tick = t;
        e.served_bytes += len as u64;
        out.extend_from_slice(&e.buf[at..at + len]);
        true
    }

    /// Starts background reads of the extents after `start`, within the readable log, while
    /// the cache has room for them.
    fn prefetch(self: &Rc<Self>, seg: &Rc<Segment>, limit: u64, start: u64) {
        for d in 1..=READ_AHEAD_DEPTH {
            let next = start + d * self.extent_bytes;
            if next >= limit || self.loading.borrow().len() >= self.cap {
                break;
            }
            if self.extents.borrow().contains_key(&next) || self.loading.borrow().contains(&next) {
                continue;
            }
            self.loading.borrow_mut().insert(next);
            let (me, seg) = (self.clone(), seg.clone());
            glommio::spawn_local(async move {
                if let Err(e) = me.read_extent(&seg, limit, next).await {
                    // The pull that needs these bytes reads them itself and reports the error.
                    tracing::debug!(error = %e, "read-ahead failed");
                }
            })
            .detach();
        }
    }

    async fn load(&self, seg: &Segment, limit: u64, start: u64) -> Result<(), StoreError> {
        self.loading.borrow_mut().insert(start);
        self.read_extent(seg, limit, start).await
    }

    /// Reads the extent at `start` (already marked loading) and caches it.
    async fn read_extent(&self, seg: &Segment, limit: u64, start: u64) -> Result<(), StoreError> {
        let end = (start + self.extent_bytes).min(limit);
        let res = seg
            .file
            .read_at(start - seg.base, (end - start) as usize)
            .await;
        self.loading.borrow_mut().remove(&start);
        self.loaded.notify_all();
        let buf = res.map_err(|e| StoreError::io("read", &seg.path, e))?;
        self.bytes_read
            .set(self.bytes_read.get() + buf.len() as u64);
        let mut extents = self.extents.borrow_mut();
        if extents.len() >= self.cap && !extents.contains_key(&start) {
            if let Some(old) = extents.iter().min_by_key(|(_, e)| e.tick).map(|(k, _)| *k) {
                let evicted = extents.remove(&old).expect("the key was just found");
                self.on_evicted(evicted.served_bytes, evicted.buf.len());
            }
        }
        let tick = self.tick.get();
        extents.insert(
            start,
            Extent {
                buf: Rc::new(buf),
                tick,
                served_bytes: 0,
            },
        );
        Ok(())
    }
}
