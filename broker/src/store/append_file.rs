//! An append-only O_DIRECT file for derived data (consume queues, index). Appends go to memory;
//! [`AppendFile::flush`] writes them in one of two extents: a write round writes only the full
//! pages not yet written and keeps the partial last page in memory, a checkpoint (or a clean
//! stop) writes everything, the partial page included (rewritten in place as it fills), and
//! fdatasyncs. Derived files are rebuilt from the log past the checkpoint after a crash, so
//! writing a partial page that no checkpoint vouches for buys no durability; it only cost one
//! small write per dirty file per round (1,000 per round over 1,000 queues). The file is opened
//! on its first write, so empty queues cost no file.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use super::backend::{DirectFile, File};
use super::{align_down, align_up, StoreError, PAGE_BYTES};

/// Bytes of memory the tail keeps allocated after a write: its partial page (less than a page
/// is left once the full pages are written). A tail that grew during a busy round gives the
/// rest back, so what a file holds between rounds stays within one page.
const TAIL_KEEP_BYTES: usize = PAGE_BYTES as usize;

/// Smallest step of allocation ahead of the writes (see [`AppendFile::allocating_ahead`]).
const ALLOCATE_AHEAD_MIN_BYTES: u64 = 64 << 10;
/// Largest step: a queue written at any rate allocates at most this far past its data, which
/// bounds what recovery after a crash scans as trailing zeros (`recovery::keep_entries`).
const ALLOCATE_AHEAD_MAX_BYTES: u64 = 1 << 20;

/// What an [`AppendFile::flush`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extent {
    /// The full pages not yet written, no fdatasync: a write round, which only bounds memory.
    /// The partial last page stays in memory until a checkpoint.
    FullPages,
    /// Every byte appended, the partial last page included, then fdatasync: a checkpoint or a
    /// clean stop, which vouches for these bytes.
    Synced,
}

pub(crate) struct AppendFile {
    path: PathBuf,
    file: Option<Rc<File>>,
    /// Logical length: every byte appended.
    len: u64,
    /// Bytes whose O_DIRECT write completed.
    written: u64,
    /// Bytes `[tail_base, len)`, `tail_base = align_down(written)`: the partial page plus
    /// everything not yet written. Bytes below `tail_base` are in full pages on disk that are
    /// never rewritten.
    tail: Vec<u8>,
    tail_base: u64,
    /// Bytes covered by the last fdatasync.
    synced: u64,
    flushing: bool,
    /// The file's size as this process last set it; `None` unless the file allocates ahead.
    allocated: Option<u64>,
}

impl AppendFile {
    /// A file whose first `len` bytes exist on disk (`tail_page` holds the bytes of its last
    /// partial page, `[align_down(len), len)`).
    pub(crate) fn existing(
        path: PathBuf,
        file: Option<Rc<File>>,
        len: u64,
        tail_page: Vec<u8>,
    ) -> Self {
        assert_eq!(tail_page.len() as u64, len - align_down(len));
        AppendFile {
            path,
            file,
            len,
            written: len,
            tail: tail_page,
            tail_base: align_down(len),
            synced: len,
            flushing: false,
            allocated: None,
        }
    }

    /// Allocates the file (`fallocate`, size included) in steps ahead of its writes, for files
    /// whose size need not be their content's: recovery drops a consume queue's trailing zero
    /// entries. Why: with many queues every write round made one O_DIRECT write per queue that
    /// extended its file, which on ext4 takes the inode's exclusive lock, allocates blocks and
    /// journals the new size. A write into allocated space within the size does none of that.
    /// It is still handed to a kernel worker, because ext4 converts the unwritten extent;
    /// a traced run showed that, and zeros written ahead instead measured no better. The
    /// allocation is one `fallocate` per step, growing from 64 KiB to 1 MiB as the file does.
    pub(crate) fn allocating_ahead(mut self) -> Self {
        self.allocated = Some(self.written);
        self
    }

    /// The range `[from, to)` to allocate before writing `[pos, write_end)`, if the file
    /// allocates ahead and is not that large yet: the step doubles with the data written,
    /// within the steps' bounds. It starts at the write (allocating blocks already allocated is
    /// a no-op), so a sparse head or a punched hole stays unallocated.
    fn allocation_for(&self, pos: u64, write_end: u64) -> Option<(u64, u64)> {
        let allocated = self.allocated?;
        if write_end <= allocated {
            return None;
        }
        let step = self
            .written
            .clamp(ALLOCATE_AHEAD_MIN_BYTES, ALLOCATE_AHEAD_MAX_BYTES);
        Some((pos, align_up(write_end + step)))
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    pub(crate) fn path(&self) -> &PathBuf {
        &self.path
    }

    /// Nothing to write or sync.
    pub(crate) fn is_clean(&self) -> bool {
        self.synced == self.len
    }

    /// Bytes covered by the last fdatasync: a checkpoint may vouch for no more.
    pub(crate) fn synced(&self) -> u64 {
        self.synced
    }

    /// Whether a full page holds bytes not written yet (what [`Extent::FullPages`] writes).
    pub(crate) fn has_unwritten_full_pages(&self) -> bool {
        align_down(self.len) > self.written
    }

    /// Where the bytes kept in memory start (page-aligned): everything below is on disk.
    pub(crate) fn memory_start(&self) -> u64 {
        self.tail_base
    }

    /// Bytes of memory the tail holds (its allocation: the partial page, plus what was
    /// appended since the last write).
    pub(crate) fn held_bytes(&self) -> u64 {
        self.tail.capacity() as u64
    }

    pub(crate) fn append(&mut self, bytes: &[u8]) {
        self.tail.extend_from_slice(bytes);
        self.len += bytes.len() as u64;
    }

    /// Bytes `[pos, pos+len)` if they are still in memory.
    pub(crate) fn memory_slice(&self, pos: u64, len: usize) -> Option<&[u8]> {
        if pos < self.tail_base || pos + len as u64 > self.len {
            return None;
        }
        let at = (pos - self.tail_base) as usize;
        Some(&self.tail[at..at + len])
    }

    pub(crate) fn file(&self) -> Option<Rc<File>> {
        self.file.clone()
    }

    async fn ensure_open(this: &RefCell<AppendFile>) -> Result<(), StoreError> {
        let path = {
            let me = this.borrow_mut();
            if me.file.is_some() || me.len == 0 {
                return Ok(());
            }
            me.path.clone()
        };
        // First file of a new queue: creating its directory is a rare, tiny blocking call.
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::io("create dir", dir, e))?;
        }
        this.borrow_mut().flushing = true;
        let opened = File::open(&path, true).await;
        let dir = path.parent().map(std::path::Path::to_path_buf);
        let synced = match (&opened, &dir) {
            (Ok(_), Some(d)) => super::backend::sync_dir(d).await,
            _ => Ok(()),
        };
        let mut me = this.borrow_mut();
        me.flushing = false;
        me.file = Some(Rc::new(
            opened.map_err(|e| StoreError::io("open", path, e))?,
        ));
        if let (Err(e), Some(d)) = (synced, dir) {
            return Err(StoreError::io("fsync directory", d, e));
        }
        Ok(())
    }

    /// Writes `extent` (see [`Extent`]). Returns the bytes this call's O_DIRECT write covered
    /// (0: nothing to write). Concurrent callers take turns (a flush in progress is waited for,
    /// never skipped), so when it returns, `extent` as of the call is really covered.
    pub(crate) async fn flush(
        this: &RefCell<AppendFile>,
        extent: Extent,
    ) -> Result<u64, StoreError> {
        while this.borrow().flushing {
            glommio::timer::sleep(std::time::Duration::from_micros(200)).await;
        }
        let target = {
            let me = this.borrow();
            match extent {
                Extent::FullPages if !me.has_unwritten_full_pages() => return Ok(0),
                Extent::FullPages => align_down(me.len),
                Extent::Synced => me.len,
            }
        };
        Self::ensure_open(this).await?;
        let (file, buf, pos) = {
            let me = this.borrow_mut();
            let Some(file) = me.file.clone() else {
                return Ok(0);
            };
            if target <= me.written {
                (file, None, 0)
            } else {
                let start = me.tail_base;
                let n = (target - start) as usize;
                let mut buf = file.alloc((align_up(target) - start) as usize);
                buf[..n].copy_from_slice(&me.tail[..n]);
                (file, Some(buf), start)
            }
        };
        this.borrow_mut().flushing = true;
        let sync = extent == Extent::Synced;
        let wrote = buf.as_ref().map_or(0, |b| b.len() as u64);
        let res = Self::write_and_sync(this, &file, buf, pos, target, sync).await;
        this.borrow_mut().flushing = false;
        res.map(|()| wrote)
    }

    async fn write_and_sync(
        this: &RefCell<AppendFile>,
        file: &File,
        buf: Option<<File as DirectFile>::WriteBuf>,
        pos: u64,
        target: u64,
        sync: bool,
    ) -> Result<(), StoreError> {
        let path = this.borrow().path.clone();
        if let Some(buf) = buf {
            let allocation = this.borrow().allocation_for(pos, pos + buf.len() as u64);
            if let Some((from, to)) = allocation {
                file.allocate(from, to - from)
                    .await
                    .map_err(|e| StoreError::io("allocate", path.clone(), e))?;
                this.borrow_mut().allocated = Some(to);
            }
            file.write_at(buf, pos)
                .await
                .map_err(|e| StoreError::io("write", path.clone(), e))?;
            let mut me = this.borrow_mut();
            assert!(target > me.written, "writes only move forward");
            me.written = target;
            let new_base = align_down(target);
            let drop_n = (new_base - me.tail_base) as usize;
            me.tail.drain(..drop_n);
            me.tail_base = new_base;
            // `drain` keeps the capacity of the largest burst; every index file ever filled stays
            // open for lookups, so without this each held its burst (measured: 270 MB of RSS
            // after 17.6 M keyed messages).
            if me.tail.capacity() > TAIL_KEEP_BYTES && me.tail.len() <= TAIL_KEEP_BYTES {
                me.tail.shrink_to(TAIL_KEEP_BYTES);
            }
        }
        if sync {
            file.sync_data()
                .await
                .map_err(|e| StoreError::io("fdatasync", path, e))?;
            this.borrow_mut().synced = target;
        }
        Ok(())
    }
}

/// Opens an existing derived file, keeps its first `keep_len` bytes and truncates the rest.
pub(crate) async fn reopen_truncated(
    path: PathBuf,
    file: Rc<File>,
    keep_len: u64,
) -> Result<AppendFile, StoreError> {
    file.truncate(keep_len)
        .await
        .map_err(|e| StoreError::io("truncate", path.clone(), e))?;
    let page = align_down(keep_len);
    let tail_page = if keep_len > page {
        let r = file
            .read_at(page, (keep_len - page) as usize)
            .await
            .map_err(|e| StoreError::io("read", path.clone(), e))?;
        if (r.len() as u64) < keep_len - page {
            return Err(StoreError::io(
                "read",
                path,
                std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
            ));
        }
        r[..(keep_len - page) as usize].to_vec()
    } else {
        Vec::new()
    };
    debug_assert!(page % PAGE_BYTES == 0);
    Ok(AppendFile::existing(path, Some(file), keep_len, tail_page))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size runs ahead of the data by a step; a later step allocates from its write on, so
    /// a hole punched below (retention) stays a hole.
    #[test]
    fn allocating_ahead_extends_the_size_and_leaves_holes_alone() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queue.cq");
        let meta_path = path.clone();
        let page = PAGE_BYTES as usize;
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let f = RefCell::new(AppendFile::existing(path, None, 0, Vec::new()));
                let f = RefCell::new(f.into_inner().allocating_ahead());
                f.borrow_mut().append(&vec![7u8; 2 * page]);
                AppendFile::flush(&f, Extent::FullPages).await.unwrap();
                let size = || std::fs::metadata(&meta_path).unwrap().len();
                assert_eq!(size(), 2 * PAGE_BYTES + ALLOCATE_AHEAD_MIN_BYTES);
                let file = f.borrow().file().unwrap();
                file.punch_hole(0, 2 * PAGE_BYTES).await.unwrap();
                // Past the first step: the next one starts at this write.
                f.borrow_mut().append(&vec![8u8; 32 * page]);
                AppendFile::flush(&f, Extent::FullPages).await.unwrap();
                let meta = std::fs::metadata(&meta_path).unwrap();
                assert_eq!(meta.len(), 34 * PAGE_BYTES + ALLOCATE_AHEAD_MIN_BYTES);
                assert!(
                    meta.blocks() * 512 <= meta.len() - 2 * PAGE_BYTES,
                    "{} bytes allocated: the punched head was allocated again",
                    meta.blocks() * 512
                );
                let bytes = std::fs::read(&meta_path).unwrap();
                assert!(bytes[..2 * page].iter().all(|b| *b == 0));
                assert!(bytes[2 * page..34 * page].iter().all(|b| *b == 8));
                assert!(bytes[34 * page..].iter().all(|b| *b == 0));
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn a_write_gives_back_the_memory_of_a_burst() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("derived");
        let burst_bytes: usize = 8 << 20;
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let f = RefCell::new(AppendFile::existing(path, None, 0, Vec::new()));
                f.borrow_mut().append(&vec![7u8; burst_bytes]);
                f.borrow_mut().append(&[1u8; 100]);
                AppendFile::flush(&f, Extent::FullPages).await.unwrap();
                let me = f.borrow();
                assert_eq!(me.written(), burst_bytes as u64, "the full pages");
                assert_eq!(me.tail.len(), 100, "only the partial last page stays");
                assert!(
                    me.tail.capacity() <= TAIL_KEEP_BYTES,
                    "keeps {} bytes of capacity for a {}-byte tail",
                    me.tail.capacity(),
                    me.tail.len()
                );
                assert_eq!(
                    me.memory_slice(burst_bytes as u64, 100),
                    Some(&[1u8; 100][..])
                );
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
