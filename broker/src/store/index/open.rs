//! Opening the index: header pages of full files, the newest file cut at the checkpoint and
//! its slot table and filter read or rebuilt; never the entries or filters of the other files.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::super::append_file::{reopen_truncated, AppendFile};
use super::super::backend::{DirectFile, File};
use super::super::{align_down, StoreConfig, StoreError};
use super::filter::KeyFilter;
use super::{
    decode_entry, decode_header, file_name, Entry, IdxFile, KeyIndex, Range, CUT_SCAN_CHUNK_BYTES,
    INDEX_ENTRY_BYTES, INDEX_HEADER_BYTES, INDEX_SLOT_BYTES, RECOVERY_CHUNK_BYTES,
};

/// Index files and filter files in `dir` by first sequence number, oldest first. A `keys.idx`
/// of the earlier in-memory index is removed (the caller then finds fewer entries than the
/// checkpoint says and rebuilds the index from the log).
fn list_files(dir: &Path) -> Result<(Vec<u64>, Vec<u64>), StoreError> {
    let legacy = dir.join("keys.idx");
    if legacy.exists() {
        std::fs::remove_file(&legacy).map_err(|e| StoreError::io("remove", &legacy, e))?;
    }
    let (mut seqs, mut filters) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(dir).map_err(|e| StoreError::io("list", dir, e))? {
        let path = entry.map_err(|e| StoreError::io("list", dir, e))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let seq_of = |suffix: &str| {
            name.strip_suffix(suffix)
                .filter(|n| n.len() == 20)
                .and_then(|n| n.parse::<u64>().ok())
        };
        if let Some(s) = seq_of(".idx") {
            seqs.push(s);
        } else if let Some(s) = seq_of(".filter") {
            filters.push(s);
        }
    }
    seqs.sort_unstable();
    Ok((seqs, filters))
}

impl KeyIndex {
    /// Opens the index in `dir`, keeping the entries of records below `cut_phy` (the
    /// checkpoint). Reads only each file's header page and, of the newest file, the entries
    /// past the cut plus either its slot table (written by a clean close) or its entries (to
    /// rebuild the table after a crash) and its filter (written by a clean close, else rebuilt
    /// with the table) — never the entries or filters of the other files. If the files do not
    /// fit together (a torn header, a gap), they are all removed: the index then holds fewer
    /// entries than the checkpoint and the caller rebuilds it from the log. Filter files of no
    /// full file (their file removed here, or by retention just before a crash) are removed.
    pub(crate) async fn load(
        dir: PathBuf,
        config: &StoreConfig,
        cut_phy: u64,
    ) -> Result<KeyIndex, StoreError> {
        let index = KeyIndex::empty(dir.clone(), config);
        let (mut seqs, filters) = list_files(&dir)?;
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
            index.remove_stray_filters(&filters).await?;
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
        index.remove_stray_filters(&filters).await?;
        if let Some(f) = index.files.borrow().back() {
            let r = f.range.get();
            index.last_update_timestamp.set(r.end_ts);
            index.last_update_offset.set(r.end_phy);
        }
        Ok(index)
    }

    /// Removes the filter files (by sequence number) of files the index does not hold.
    async fn remove_stray_filters(&self, filters: &[u64]) -> Result<(), StoreError> {
        for &seq in filters {
            let held = self.files.borrow().iter().any(|f| f.first_seq == seq);
            if !held {
                self.remove_filter(seq).await?;
            }
        }
        Ok(())
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
            let bytes = self
                .read_counted(file, path, self.layout.entry_pos(from), want)
                .await?;
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
        let bytes = self
            .read_counted(file, path, self.layout.entry_pos(0), INDEX_ENTRY_BYTES)
            .await?;
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
            // Its filter stays on disk until a lookup reads it.
            let f = IdxFile::new(seq, range, entries, None);
            self.files.borrow_mut().push_back(Rc::new(f));
        }
        Ok(true)
    }
}

impl KeyIndex {
    /// The newest file, cut to `kept` entries: its slot table and filter from disk when the
    /// header vouches for exactly those entries, else rebuilt from its entries (after a crash).
    /// A full newest file keeps its filter on disk, as the other full files do; a filter file
    /// not used here describes other entries and is removed.
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
        let f = match from_disk {
            Some((r, None)) => IdxFile::new(seq, r, entries, None),
            Some((r, Some(s))) => {
                let filter = match self.read_filter_file(&self.binding_of(seq, r)).await {
                    Ok(filter) => filter,
                    Err(_) => self.rebuild_slots(&file, &path, kept).await?.2,
                };
                IdxFile::new(seq, r, entries, Some(s)).with_filter(Some(filter))
            }
            None => {
                let (r, s, filter) = self.rebuild_slots(&file, &path, kept).await?;
                IdxFile::new(seq, r, entries, Some(s)).with_filter(Some(filter))
            }
        };
        if f.filter.borrow().is_some() {
            // In memory from here on; the file on disk, if any, is stale or about to be.
            self.remove_filter(seq).await?;
        }
        self.files.borrow_mut().push_back(Rc::new(f));
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

    /// Rebuilds the slot table, filter and range of a file from its first `count` entries.
    async fn rebuild_slots(
        &self,
        file: &File,
        path: &Path,
        count: u32,
    ) -> Result<(Range, Vec<u32>, KeyFilter), StoreError> {
        let mut slots = vec![0u32; self.layout.slots as usize];
        let mut filter = KeyFilter::for_capacity(self.layout.capacity);
        let mut n = 0;
        let range = self
            .scan_entries(file, path, count, |e| {
                n += 1;
                slots[(e.hash % u64::from(self.layout.slots)) as usize] = n;
                filter.insert(e.hash);
            })
            .await?;
        Ok((range, slots, filter))
    }

    /// Reads the first `count` entries of a file in order, `RECOVERY_CHUNK_BYTES` at a time,
    /// handing each to `visit`; returns their range.
    pub(super) async fn scan_entries(
        &self,
        file: &File,
        path: &Path,
        count: u32,
        mut visit: impl FnMut(&Entry),
    ) -> Result<Range, StoreError> {
        let mut range = Range::default();
        let chunk_entries = (RECOVERY_CHUNK_BYTES / INDEX_ENTRY_BYTES) as u32;
        while range.count < count {
            let from = range.count;
            let n = chunk_entries.min(count - from);
            let want = n as usize * INDEX_ENTRY_BYTES;
            let bytes = self
                .read_counted(file, path, self.layout.entry_pos(from), want)
                .await?;
            if bytes.len() < want {
                let eof = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
                return Err(StoreError::io("read", path, eof));
            }
            for e in bytes[..want].chunks_exact(INDEX_ENTRY_BYTES) {
                let e = decode_entry(e);
                range.extend(e.ts, e.phy);
                visit(&e);
            }
        }
        Ok(range)
    }
}

impl KeyIndex {
    /// Reads `len` bytes at `pos` of an index file, counting them in `bytes_read` (what open
    /// reads is asserted on by the tests).
    async fn read_counted(
        &self,
        file: &File,
        path: &Path,
        pos: u64,
        len: usize,
    ) -> Result<glommio::io::ReadResult, StoreError> {
        let bytes = file
            .read_at(pos, len)
            .await
            .map_err(|e| StoreError::io("read", path, e))?;
        self.bytes_read
            .set(self.bytes_read.get() + bytes.len() as u64);
        Ok(bytes)
    }
}
