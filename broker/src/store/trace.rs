//! Unit tests only: the glommio backend behind a wrapper that records, per thread, the order in
//! which writes and fdatasyncs start and complete, so tests can check the ordering rules of the
//! write path against what really happened (real files, real io_uring).

use std::cell::RefCell;
use std::io;
use std::path::{Path, PathBuf};

use super::backend::{DirectFile, GlommioBuf, GlommioFile};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// A write of `[pos, pos + len)` in `path`; `zeros` if every byte written is zero.
    WriteStart {
        path: PathBuf,
        pos: u64,
        len: u64,
        zeros: bool,
    },
    WriteDone {
        path: PathBuf,
        pos: u64,
        len: u64,
        zeros: bool,
    },
    /// An fdatasync of `path`; `id` pairs a start with its completion.
    SyncStart {
        path: PathBuf,
        id: u64,
    },
    SyncDone {
        path: PathBuf,
        id: u64,
    },
    /// Recorded by a test when an append returned: its records end at this local offset.
    Ack {
        end: u64,
    },
}

thread_local! {
    static EVENTS: RefCell<Option<Vec<Event>>> = const { RefCell::new(None) };
    static NEXT_SYNC_ID: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Starts recording on this thread (discarding anything recorded before).
pub(crate) fn start() {
    EVENTS.with(|e| *e.borrow_mut() = Some(Vec::new()));
}

/// Stops recording and returns the events in the order they happened.
pub(crate) fn take() -> Vec<Event> {
    EVENTS.with(|e| e.borrow_mut().take().unwrap_or_default())
}

pub(crate) fn record(ev: Event) {
    EVENTS.with(|e| {
        if let Some(v) = e.borrow_mut().as_mut() {
            v.push(ev);
        }
    });
}

pub(crate) struct TracedFile {
    inner: GlommioFile,
    path: PathBuf,
}

impl DirectFile for TracedFile {
    type WriteBuf = GlommioBuf;
    type ReadBuf = glommio::io::ReadResult;

    async fn open(path: &Path, create: bool) -> io::Result<Self> {
        Ok(TracedFile {
            inner: GlommioFile::open(path, create).await?,
            path: path.to_owned(),
        })
    }

    fn alloc(&self, len: usize) -> GlommioBuf {
        self.inner.alloc(len)
    }

    async fn write_at(&self, buf: GlommioBuf, pos: u64) -> io::Result<usize> {
        let (path, len, zeros) = (
            self.path.clone(),
            buf.len() as u64,
            buf.iter().all(|&b| b == 0),
        );
        record(Event::WriteStart {
            path: path.clone(),
            pos,
            len,
            zeros,
        });
        let n = self.inner.write_at(buf, pos).await?;
        record(Event::WriteDone {
            path,
            pos,
            len,
            zeros,
        });
        Ok(n)
    }

    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Self::ReadBuf> {
        self.inner.read_at(pos, len).await
    }

    async fn sync_data(&self) -> io::Result<()> {
        let id = NEXT_SYNC_ID.with(|n| {
            n.set(n.get() + 1);
            n.get()
        });
        record(Event::SyncStart {
            path: self.path.clone(),
            id,
        });
        self.inner.sync_data().await?;
        record(Event::SyncDone {
            path: self.path.clone(),
            id,
        });
        Ok(())
    }

    async fn pre_allocate(&self, len: u64) -> io::Result<()> {
        self.inner.pre_allocate(len).await
    }

    async fn allocate(&self, pos: u64, len: u64) -> io::Result<()> {
        self.inner.allocate(pos, len).await
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        self.inner.truncate(len).await
    }

    async fn punch_hole(&self, pos: u64, len: u64) -> io::Result<()> {
        self.inner.punch_hole(pos, len).await
    }

    async fn size(&self) -> io::Result<u64> {
        self.inner.size().await
    }

    async fn close(self) -> io::Result<()> {
        self.inner.close().await
    }
}
