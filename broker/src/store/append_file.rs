//! An append-only O_DIRECT file for derived data (consume queues, index). Appends go to memory;
//! [`AppendFile::flush`] writes the dirty pages, rewriting the partial last page in place, and
//! can fdatasync. The file is opened on first flush so empty queues cost no file.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use super::backend::{DirectFile, File};
use super::{align_down, align_up, StoreError, PAGE_BYTES};

/// Spare capacity an append file's in-memory tail may keep after a write.
const TAIL_SLACK_BYTES: usize = 64 * 1024;

pub(crate) struct AppendFile {
    path: PathBuf,
    file: Option<Rc<File>>,
    /// Logical length: every byte appended.
    len: u64,
    /// Bytes whose O_DIRECT write completed.
    written: u64,
    /// Bytes `[tail_base, len)`, `tail_base = align_down(written)`: the partial page plus
    /// everything not yet written.
    tail: Vec<u8>,
    tail_base: u64,
    /// Bytes covered by the last fdatasync.
    synced: u64,
    flushing: bool,
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
        }
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

    /// Appended bytes whose write has not been issued yet.
    pub(crate) fn has_unwritten(&self) -> bool {
        self.written < self.len
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

    /// Writes every dirty page; with `sync`, fdatasyncs afterwards. Returns the length covered.
    /// Concurrent callers take turns (a flush in progress is waited for, never skipped), so
    /// the returned length is really covered.
    pub(crate) async fn flush(this: &RefCell<AppendFile>, sync: bool) -> Result<u64, StoreError> {
        while this.borrow().flushing {
            glommio::timer::sleep(std::time::Duration::from_micros(200)).await;
        }
        Self::ensure_open(this).await?;
        let (file, buf, pos, target) = {
            let me = this.borrow_mut();
            let Some(file) = me.file.clone() else {
                return Ok(0);
            };
            if me.len == me.written {
                (file, None, 0, me.len)
            } else {
                let start = me.tail_base;
                let end = align_up(me.len);
                let mut buf = file.alloc((end - start) as usize);
                buf[..me.tail.len()].copy_from_slice(&me.tail);
                (file, Some(buf), start, me.len)
            }
        };
        this.borrow_mut().flushing = true;
        let res = Self::write_and_sync(this, &file, buf, pos, target, sync).await;
        this.borrow_mut().flushing = false;
        res.map(|()| target)
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
            file.write_at(buf, pos)
                .await
                .map_err(|e| StoreError::io("write", path.clone(), e))?;
            let mut me = this.borrow_mut();
            me.written = target;
            let new_base = align_down(target);
            let drop_n = (new_base - me.tail_base) as usize;
            me.tail.drain(..drop_n);
            me.tail_base = new_base;
            // `drain` keeps the capacity of the largest burst between flushes. Give it back,
            // or every file ever filled (index files stay open for lookups) holds that much:
            // measured, 270 MB of a broker's RSS after 17.6 M keyed messages.
            if me.tail.capacity() > me.tail.len() + TAIL_SLACK_BYTES {
                let keep = me.tail.len() + PAGE_BYTES as usize;
                me.tail.shrink_to(keep);
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
                AppendFile::flush(&f, false).await.unwrap();
                let me = f.borrow();
                assert_eq!(me.written(), burst_bytes as u64 + 100);
                assert_eq!(me.tail.len(), 100, "only the partial last page stays");
                assert!(
                    me.tail.capacity() <= me.tail.len() + TAIL_SLACK_BYTES,
                    "keeps {} bytes of capacity for a {}-byte tail",
                    me.tail.capacity(),
                    me.tail.len()
                );
                assert_eq!(me.memory_slice(burst_bytes as u64, 100), Some(&[1u8; 100][..]));
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
