//! Writing the index: entries behind the log, slot tables, headers and filters of full files,
//! and retention's removal of whole files with their filters.

use std::rc::Rc;

use super::super::append_file::{AppendFile, Extent};
use super::super::backend::DirectFile;
use super::super::StoreError;
use super::filter_cache::StoredFilter;
use super::{encode_header, IdxFile, KeyIndex, INDEX_ENTRY_BYTES, INDEX_HEADER_BYTES};

impl KeyIndex {
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
    /// (a clean close, so the next open reads the table instead of rebuilding it). Each of those
    /// files' filter is written after its header.
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
                self.persist_filter(&f, full).await;
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

    /// Writes `f`'s filter beside it. A full file's filter then leaves memory: lookups read it
    /// into the filter cache when they need it, so a broker that serves no QUERY_MESSAGE spends
    /// no memory on filters of full files. A failed write is logged, not returned (the filter
    /// only saves reads): that filter goes to the cache if the budget has room, and once it is
    /// not cached, lookups walk the file and rebuild its filter.
    async fn persist_filter(&self, f: &IdxFile, full: bool) {
        if f.entries.borrow().file().is_none() || f.filter.borrow().is_none() {
            return;
        }
        let written = self.write_filter_file(&self.binding(f), &f.filter).await;
        if let Err(e) = &written {
            tracing::warn!("index filter not written; lookups walk the file instead: {e}");
        }
        if full {
            let filter = f.filter.take();
            if written.is_ok() {
                f.stored_filter.set(StoredFilter::Expected);
            } else if let Some(filter) = filter {
                f.stored_filter.set(StoredFilter::Unusable);
                self.cache_filter(f, filter);
            }
        }
    }

    /// Deletes the files whose every entry points below `global_min` (retention removed their
    /// records), never the file being filled, with their filters. Returns how many went.
    pub(crate) async fn remove_below(&self, global_min: u64) -> Result<usize, StoreError> {
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
            glommio::io::remove(&path)
                .await
                .map_err(|e| StoreError::io("remove", &path, e.into()))?;
            self.remove_filter(f.first_seq).await?;
            removed += 1;
        }
        Ok(removed)
    }
}
