//! Small metadata files (topic config, consumer offsets, shard count): written whole, to a
//! temporary file that is fsynced and then renamed over the old one, so a crash leaves either
//! the old or the new content, never a torn file.
//!
//! The writes are blocking `std::fs` calls with two fsyncs, which take milliseconds and, on a
//! busy ext4 journal, tens of milliseconds (measured: 12–30 ms per write on a shard thread,
//! `results/stalls-2026-12-07.md`). Periodic writes from shard threads (consumer offsets every
//! `flushConsumerOffsetInterval`) therefore go through [`FileWriter`], a thread of its own, so a
//! shard never waits in fsync (design §9). Start-up and rare admin changes write directly.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically (tmp + fsync + rename + fsync of the directory).
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Reads a file that may not exist yet.
pub fn read_optional(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// One write for the [`FileWriter`] thread.
struct WriteJob {
    path: PathBuf,
    bytes: Vec<u8>,
    done: flume::Sender<std::io::Result<()>>,
}

/// A thread that writes files atomically for tasks that must not block; writes happen in the
/// order they were asked for, so a later write of a path always wins. `Send + Clone`.
#[derive(Debug, Clone)]
pub struct FileWriter {
    jobs: flume::Sender<WriteJob>,
}

impl FileWriter {
    /// Starts the writer thread; it ends once every `FileWriter` clone is dropped.
    pub fn start() -> std::io::Result<(FileWriter, std::thread::JoinHandle<()>)> {
        let (jobs, queue) = flume::unbounded::<WriteJob>();
        let thread = std::thread::Builder::new()
            .name("ringmq-persist".into())
            .spawn(move || {
                while let Ok(job) = queue.recv() {
                    let _ = job.done.send(write_file_atomically(&job.path, &job.bytes));
                }
            })?;
        Ok((FileWriter { jobs }, thread))
    }

    /// Writes `bytes` to `path` atomically on the writer thread; the caller's task waits, its
    /// thread does not.
    pub async fn write(&self, path: PathBuf, bytes: Vec<u8>) -> std::io::Result<()> {
        let (done, result) = flume::bounded(1);
        let job = WriteJob { path, bytes, done };
        if self.jobs.send(job).is_err() {
            return Err(std::io::Error::other("the persist thread has stopped"));
        }
        result
            .recv_async()
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("the persist thread has stopped")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replaces_and_read_optional() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("f.json");
        assert_eq!(read_optional(&path).unwrap(), None);
        write_file_atomically(&path, b"one").unwrap();
        write_file_atomically(&path, b"two").unwrap();
        assert_eq!(read_optional(&path).unwrap(), Some(b"two".to_vec()));
        assert!(!dir.path().join("sub").join("f.json.tmp").exists());
    }

    #[test]
    fn the_writer_thread_writes_in_order_and_reports_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, thread) = FileWriter::start().unwrap();
        let path = dir.path().join("offsets.json");
        futures_lite::future::block_on(async {
            writer.write(path.clone(), b"first".to_vec()).await.unwrap();
            writer
                .write(path.clone(), b"second".to_vec())
                .await
                .unwrap();
            let blocked = dir.path().join("offsets.json").join("under-a-file");
            assert!(writer.write(blocked, b"x".to_vec()).await.is_err());
        });
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        drop(writer);
        thread.join().unwrap();
    }
}
