//! The schedule progress of one shard: `<store>/shard-<k>/schedule/progress`, two 4 KiB pages
//! written alternately (page `seq % 2`) with O_DIRECT and fdatasync, so a torn write leaves the
//! other page intact. The valid page with the higher sequence wins; none valid means "start
//! from the beginning" (duplicates, never loss).
//!
//! Page layout (big-endian): magic `RINGSCH1` 8 | seq 8 | timer ingest cursor 8 | timer scan
//! start 8 | next timer due ms 8 | next timer queue offset 8 | level count n 4 | n × level
//! offset 8 | crc32 of everything before it 4 | zeros. Full description and the recovery rule
//! in docs/storage-format.md.

use std::path::{Path, PathBuf};

use crate::store::backend::{DirectFile, GlommioFile};
use crate::store::PAGE_BYTES;

use super::MAX_DELAY_LEVELS;

const MAGIC: &[u8; 8] = b"RINGSCH1";
const HEADER_BYTES: usize = 52;

const _: () = assert!(
    HEADER_BYTES + 8 * MAX_DELAY_LEVELS + 4 <= PAGE_BYTES as usize,
    "the progress of every level fits one page"
);

/// What a progress page says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Per delay level (index = level - 1): the next `SCHEDULE_TOPIC_XXXX` queue offset to
    /// deliver; everything below was delivered.
    pub level_offsets: Vec<u64>,
    /// Timer-queue offsets below this were read into the pending set.
    pub timer_ingested: u64,
    /// Timer-queue offsets below this were all delivered.
    pub timer_scan_start: u64,
    /// Key (due ms, queue offset) of the first pending timer: in `[scan_start, ingested)`, an
    /// entry with a key below it was delivered, one at or above it is pending.
    pub timer_next_key: (i64, u64),
}

/// Why the progress file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProgressError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} delay levels do not fit the progress page (max {MAX_DELAY_LEVELS})")]
    TooManyLevels(usize),
}

/// The open progress file.
pub struct ProgressFile {
    path: PathBuf,
    file: GlommioFile,
    seq: u64,
}

impl ProgressFile {
    /// Opens (creating) the file and reads the newest valid page.
    pub async fn open(path: &Path) -> Result<(ProgressFile, Option<Progress>), ProgressError> {
        let io = |op, source| ProgressError::Io {
            op,
            path: path.to_owned(),
            source,
        };
        let dir = path
            .parent()
            .expect("the progress file lives in a directory");
        let created = !path.exists();
        std::fs::create_dir_all(dir).map_err(|e| io("create directory", e))?;
        let file = GlommioFile::open(path, true)
            .await
            .map_err(|e| io("open", e))?;
        if created {
            crate::store::backend::sync_dir(dir)
                .await
                .map_err(|e| io("fsync directory", e))?;
        }
        let size = file.size().await.map_err(|e| io("size", e))?;
        let best = if size == 0 {
            None
        } else {
            let bytes = file
                .read_at(0, 2 * PAGE_BYTES as usize)
                .await
                .map_err(|e| io("read", e))?;
            bytes
                .chunks(PAGE_BYTES as usize)
                .filter_map(parse)
                .max_by_key(|(seq, _)| *seq)
        };
        let seq = best.as_ref().map_or(0, |(seq, _)| *seq);
        let progress = best.map(|(_, p)| p);
        Ok((
            ProgressFile {
                path: path.to_owned(),
                file,
                seq,
            },
            progress,
        ))
    }

    /// Writes `p` durably (the page not holding the newest copy, then fdatasync).
    pub async fn write(&mut self, p: &Progress) -> Result<(), ProgressError> {
        if p.level_offsets.len() > MAX_DELAY_LEVELS {
            return Err(ProgressError::TooManyLevels(p.level_offsets.len()));
        }
        let io = |op, source| ProgressError::Io {
            op,
            path: self.path.clone(),
            source,
        };
        let seq = self.seq + 1;
        let mut buf = self.file.alloc(PAGE_BYTES as usize);
        let n = encode(p, seq, &mut buf);
        debug_assert!(n <= buf.len());
        self.file
            .write_at(buf, (seq % 2) * PAGE_BYTES)
            .await
            .map_err(|e| io("write", e))?;
        self.file
            .sync_data()
            .await
            .map_err(|e| io("fdatasync", e))?;
        self.seq = seq;
        Ok(())
    }

    pub async fn close(self) {
        let _ = self.file.close().await;
    }
}

fn encode(p: &Progress, seq: u64, buf: &mut [u8]) -> usize {
    buf[0..8].copy_from_slice(MAGIC);
    buf[8..16].copy_from_slice(&seq.to_be_bytes());
    buf[16..24].copy_from_slice(&p.timer_ingested.to_be_bytes());
    buf[24..32].copy_from_slice(&p.timer_scan_start.to_be_bytes());
    buf[32..40].copy_from_slice(&p.timer_next_key.0.to_be_bytes());
    buf[40..48].copy_from_slice(&p.timer_next_key.1.to_be_bytes());
    buf[48..52].copy_from_slice(&(p.level_offsets.len() as u32).to_be_bytes());
    let mut at = HEADER_BYTES;
    for o in &p.level_offsets {
        buf[at..at + 8].copy_from_slice(&o.to_be_bytes());
        at += 8;
    }
    let crc = crc32fast::hash(&buf[..at]);
    buf[at..at + 4].copy_from_slice(&crc.to_be_bytes());
    at + 4
}

fn parse(page: &[u8]) -> Option<(u64, Progress)> {
    if page.len() < HEADER_BYTES + 4 || &page[0..8] != MAGIC {
        return None;
    }
    let u = |at: usize| {
        page.get(at..at + 8)
            .map(|b| u64::from_be_bytes(b.try_into().expect("8")))
    };
    let n = u32::from_be_bytes(page[48..52].try_into().ok()?) as usize;
    if n > MAX_DELAY_LEVELS {
        return None;
    }
    let end = HEADER_BYTES + 8 * n;
    let crc = u32::from_be_bytes(page.get(end..end + 4)?.try_into().ok()?);
    if crc != crc32fast::hash(&page[..end]) {
        return None;
    }
    let progress = Progress {
        level_offsets: (0..n)
            .map(|i| u(HEADER_BYTES + 8 * i))
            .collect::<Option<_>>()?,
        timer_ingested: u(16)?,
        timer_scan_start: u(24)?,
        timer_next_key: (u(32)? as i64, u(40)?),
    };
    Some((u(8)?, progress))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Progress {
        Progress {
            level_offsets: vec![3, 0, 7],
            timer_ingested: 100,
            timer_scan_start: 40,
            timer_next_key: (1_700_000_000_123, 41),
        }
    }

    #[test]
    fn page_round_trips_and_rejects_corruption() {
        let mut page = vec![0u8; PAGE_BYTES as usize];
        encode(&sample(), 9, &mut page);
        assert_eq!(parse(&page), Some((9, sample())));
        page[20] ^= 1;
        assert_eq!(parse(&page), None);
        assert_eq!(parse(&[0u8; 4096]), None);
    }

    #[test]
    fn newest_valid_page_wins_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("schedule").join("progress");
        let dir_path = dir.path().to_owned();
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                // glommio 0.9.0's polling probe needs a file with data blocks first.
                crate::store::backend::prime_iopoll_probe(dir_path.as_path())
                    .await
                    .unwrap();
                let (mut f, p) = ProgressFile::open(&path).await.unwrap();
                assert_eq!(p, None);
                let mut p = sample();
                f.write(&p).await.unwrap();
                p.timer_ingested = 101;
                f.write(&p).await.unwrap();
                f.close().await;
                let (mut f, got) = ProgressFile::open(&path).await.unwrap();
                assert_eq!(got.as_ref(), Some(&p));
                p.timer_ingested = 102;
                f.write(&p).await.unwrap();
                f.close().await;
                let (_, got) = ProgressFile::open(&path).await.unwrap();
                assert_eq!(got, Some(p));
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
