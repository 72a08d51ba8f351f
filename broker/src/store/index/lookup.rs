//! Lookups: the walk of a slot's chain in every file whose range overlaps the query and whose
//! key filter may hold the key, through a bounded cache of pages of full files.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use super::super::backend::DirectFile;
use super::super::{align_down, StoreError, PAGE_BYTES};
use super::{
    bump, decode_entry, key_hash, Entry, IdxFile, KeyIndex, INDEX_ENTRY_BYTES, INDEX_HEADER_BYTES,
    INDEX_SLOT_BYTES, LOOKUP_FILES_IN_FLIGHT, MAX_CHAIN_STEPS,
};

/// A cached page by (file's first sequence number, page position): its bytes and last use.
type CachedPages = HashMap<(u64, u64), (Rc<[u8]>, u64)>;

/// A bounded cache of index pages of full files (immutable on disk), least recently used out.
pub(super) struct PageCache {
    cap: usize,
    tick: Cell<u64>,
    pages: RefCell<CachedPages>,
}

impl PageCache {
    pub(super) fn new(cap: usize) -> Self {
        PageCache {
            cap,
            tick: Cell::new(0),
            pages: RefCell::new(HashMap::new()),
        }
    }

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

    pub(super) fn bytes(&self) -> usize {
        self.pages.borrow().len() * PAGE_BYTES as usize
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
    /// A key may be in any file whose time range overlaps the query's. A lookup asks each such
    /// file's key filter first and reads one slot and a chain only in the files whose filter
    /// may hold the key (or that have none at hand): without filters, walking every file made
    /// QUERY_MESSAGE grow with the store (1.78 ms p50 over 17 files against 0.45 ms over 1,
    /// results/fill-20261207T153959Z.md). The files run [`LOOKUP_FILES_IN_FLIGHT`] at a time:
    /// one after another they cost 6.3 ms p50 over 17 files (results/fill-20261207T143102Z.md).
    pub(crate) async fn lookup(self: &Rc<Self>, q: &Lookup<'_>) -> Result<Vec<u64>, StoreError> {
        let hash = key_hash(q.topic, q.key);
        let now = self.lookups.get() + 1;
        self.lookups.set(now);
        // Filter files this lookup may still read (see FILTER_LOADS_PER_LOOKUP).
        let loads = Cell::new(0);
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
            let walks = join_all(
                group
                    .iter()
                    .map(|f| self.filtered_walk(f, hash, q, now, &loads)),
            );
            let walks = walks.await;
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

    /// Walks `f` unless its key filter rules the key out.
    async fn filtered_walk(
        self: &Rc<Self>,
        f: &Rc<IdxFile>,
        hash: u64,
        q: &Lookup<'_>,
        now: u64,
        loads: &Cell<usize>,
    ) -> Result<Vec<u64>, StoreError> {
        if !self.may_hold(f, hash, now, loads).await {
            bump(&self.counters.files_skipped, 1);
            return Ok(Vec::new());
        }
        bump(&self.counters.files_walked, 1);
        self.walk(f, hash, q).await
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
