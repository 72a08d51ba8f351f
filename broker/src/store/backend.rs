//! The store's only door to the disk: a small trait over O_DIRECT files, implemented on glommio
//! `DmaFile`. glommio 0.9.0 is pinned and quiet upstream; swapping the backend (glommio-ng,
//! compio, raw io-uring) means implementing [`DirectFile`] and changing the crate-private `File`
//! alias.
//!
//! Every position and length given to `write_at` is a multiple of [`super::PAGE_BYTES`];
//! `read_at` takes any range.

use std::io;
use std::ops::{Deref, DerefMut};
use std::path::Path;

use glommio::io::{DmaBuffer, DmaFile, OpenOptions};

/// The file type the store uses.
#[cfg(not(test))]
pub(crate) type File = GlommioFile;
/// Unit tests run the same glommio files behind a wrapper that records the order of writes,
/// fdatasyncs and acknowledgements (`store::trace`).
#[cfg(test)]
pub(crate) type File = super::trace::TracedFile;

/// An O_DIRECT file with async, aligned positional I/O.
// The store is shard-local: its futures are never sent to another thread, so `Send` bounds on
// the trait's futures would only get in the way.
#[allow(async_fn_in_trait)]
pub trait DirectFile: Sized + 'static {
    /// An aligned buffer a write takes ownership of.
    type WriteBuf: DerefMut<Target = [u8]>;
    /// What a read returns.
    type ReadBuf: Deref<Target = [u8]>;

    /// Opens (creating if asked) for reading and writing with O_DIRECT.
    async fn open(path: &Path, create: bool) -> io::Result<Self>;
    /// An aligned, zero-filled buffer of `len` bytes.
    fn alloc(&self, len: usize) -> Self::WriteBuf;
    /// Writes the whole buffer at `pos`.
    async fn write_at(&self, buf: Self::WriteBuf, pos: u64) -> io::Result<usize>;
    /// Reads up to `len` bytes at `pos` (short at end of file).
    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Self::ReadBuf>;
    /// fdatasync.
    async fn sync_data(&self) -> io::Result<()>;
    /// Reserves `len` bytes of blocks so appends never allocate.
    async fn pre_allocate(&self, len: u64) -> io::Result<()>;
    /// Allocates the blocks of `[pos, pos+len)` and extends the size to cover them; they read
    /// as zeros until written. Blocks outside the range (punched holes) stay as they are.
    async fn allocate(&self, pos: u64, len: u64) -> io::Result<()>;
    /// Sets the file size.
    async fn truncate(&self, len: u64) -> io::Result<()>;
    /// Frees the blocks of `[pos, pos+len)`; they read back as zeros.
    async fn punch_hole(&self, pos: u64, len: u64) -> io::Result<()>;
    /// Current file size.
    async fn size(&self) -> io::Result<u64>;
    /// Closes the file.
    async fn close(self) -> io::Result<()>;
}

/// glommio's `DmaFile` behind [`DirectFile`].
pub struct GlommioFile {
    inner: DmaFile,
}

/// A glommio DMA buffer, zero-filled on allocation.
pub struct GlommioBuf(DmaBuffer);

impl Deref for GlommioBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl DerefMut for GlommioBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.0.as_bytes_mut()
    }
}

impl DirectFile for GlommioFile {
    type WriteBuf = GlommioBuf;
    type ReadBuf = glommio::io::ReadResult;

    async fn open(path: &Path, create: bool) -> io::Result<Self> {
        let inner = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .dma_open(path)
            .await?;
        Ok(GlommioFile { inner })
    }

    fn alloc(&self, len: usize) -> GlommioBuf {
        let mut buf = self.inner.alloc_dma_buffer(len);
        buf.as_bytes_mut().fill(0);
        GlommioBuf(buf)
    }

    async fn write_at(&self, buf: GlommioBuf, pos: u64) -> io::Result<usize> {
        let len = buf.0.len();
        let n = self.inner.write_at(buf.0, pos).await?;
        if n != len {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short O_DIRECT write: {n} of {len} bytes at {pos}"),
            ));
        }
        Ok(n)
    }

    async fn read_at(&self, pos: u64, len: usize) -> io::Result<glommio::io::ReadResult> {
        Ok(self.inner.read_at(pos, len).await?)
    }

    async fn sync_data(&self) -> io::Result<()> {
        Ok(self.inner.fdatasync().await?)
    }

    async fn pre_allocate(&self, len: u64) -> io::Result<()> {
        Ok(self.inner.pre_allocate(len, false).await?)
    }

    async fn allocate(&self, pos: u64, len: u64) -> io::Result<()> {
        // glommio 0.9 only allocates from offset 0, which would fill the holes retention punched
        // in a consume queue's head. fallocate blocks, so it runs on the executor's blocking
        // pool; the descriptor stays open because `self` is borrowed until it returns.
        use std::os::fd::AsRawFd;
        let fd = self.inner.as_raw_fd();
        let (pos, len) = (i64::try_from(pos), i64::try_from(len));
        let (Ok(pos), Ok(len)) = (pos, len) else {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        };
        glommio::executor()
            .spawn_blocking(move || {
                // SAFETY: plain syscall on a descriptor the caller keeps open.
                match unsafe { libc::fallocate(fd, 0, pos, len) } {
                    0 => Ok(()),
                    _ => Err(io::Error::last_os_error()),
                }
            })
            .await
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        Ok(self.inner.truncate(len).await?)
    }

    async fn punch_hole(&self, pos: u64, len: u64) -> io::Result<()> {
        Ok(self.inner.deallocate(pos, len).await?)
    }

    async fn size(&self) -> io::Result<u64> {
        Ok(self.inner.file_size().await?)
    }

    async fn close(self) -> io::Result<()> {
        Ok(self.inner.close().await?)
    }
}

/// fsyncs a directory, so a file just created in it survives power loss (an fdatasync of the
/// file alone does not make its directory entry durable).
pub async fn sync_dir(dir: &Path) -> io::Result<()> {
    let d = glommio::io::Directory::open(dir).await?;
    d.sync().await?;
    d.close().await?;
    Ok(())
}

/// Works around a glommio 0.9.0 probe: the first O_DIRECT file a thread opens on a device
/// decides, for that thread, whether reads use the polled ring, by reading its first block. An
/// empty or preallocated file answers that read without touching the device, so the probe
/// wrongly enables polling and every later read fails with EOPNOTSUPP on devices without poll
/// queues (virtio, most cloud disks). Opening a file with real data blocks first makes the
/// probe honest. Call before any other O_DIRECT open on `dir`'s device in this thread.
pub async fn prime_iopoll_probe(dir: &Path) -> io::Result<()> {
    use std::io::Write;
    let path = dir.join(".iopoll-probe");
    {
        let mut f = std::fs::File::create(&path)?;
        f.write_all(&[0x5Au8; 4096])?;
        f.sync_all()?;
    }
    let file = GlommioFile::open(&path, false).await?;
    file.close().await?;
    std::fs::remove_file(&path)
}
