//! `probe-disk`: what the store's filesystem and device actually do under the broker's I/O
//! pattern, measured with O_DIRECT through io_uring (iotune's job, for ringmq):
//!
//! 1. sequential write bandwidth: 1 MiB O_DIRECT writes, 16 in flight, into fresh preallocated
//!    space (as the commit log appends to a preallocated segment);
//! 2. 4 KiB O_DIRECT write latency, one at a time (the cost of a small ASYNC_FLUSH batch);
//! 3. fdatasync latency after each 4 KiB write into fresh preallocated space (the cost of one
//!    SYNC_FLUSH group commit in a segment preallocated with fallocate: the filesystem must
//!    also commit the unwritten-to-written extent change);
//! 4. the same over blocks already written by phase 1 (the cost when segments are pre-zeroed
//!    or reused, where fdatasync has only data and a device flush to do).
//!
//! Bounded twice: a wall-clock budget (a quarter per phase) and a byte cap (the probe file's
//! size: 3/4 for phase 1, 1/8 each for phases 2 and 3; phase 4 rewrites phase 1's bytes).
//! Whichever comes first ends a phase. The probe file is removed on every exit path.

use std::alloc::{self, Layout};
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use io_uring::{opcode, squeue, types, IoUring};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TuneError};
use crate::facts::StoreFacts;
use crate::sysroot::SysRoot;

/// O_DIRECT alignment used for offsets, lengths and buffers: 4 KiB satisfies 512-byte and
/// 4 KiB logical-block devices alike.
pub const ALIGN_BYTES: usize = 4096;
/// Sequential phase write size.
pub const SEQ_BLOCK_BYTES: usize = 1 << 20;
/// Sequential phase writes in flight.
pub const SEQ_QUEUE_DEPTH: usize = 16;
/// The small-write size of phases 2 and 3.
pub const SMALL_WRITE_BYTES: usize = 4096;
/// Smallest byte cap the phases can share (each phase needs room for a few writes).
pub const MIN_BYTE_CAP: u64 = 1 << 20;

/// Bounds and place of a probe.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Directory on the store's filesystem; the probe file is created (and removed) here.
    pub dir: PathBuf,
    /// Total wall-clock budget for the three phases.
    pub duration: Duration,
    /// Size of the probe file and so the most bytes written.
    pub max_bytes: u64,
}

/// Why a phase ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoppedBy {
    Time,
    Bytes,
}

/// Phase 1 result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SequentialWrite {
    pub block_bytes: u64,
    pub queue_depth: u64,
    pub bytes_written: u64,
    pub seconds: f64,
    /// Decimal megabytes (10^6 bytes) per second, as fio prints MB/s.
    pub megabytes_per_s: f64,
    /// The fdatasync after the last write, not included in `seconds`.
    pub final_fdatasync_us: f64,
    pub stopped_by: StoppedBy,
}

/// A latency distribution (phases 2 and 3), in microseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LatencySummary {
    pub ops: u64,
    pub seconds: f64,
    pub ops_per_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
    pub stopped_by: StoppedBy,
}

/// Everything the probe measured, written as JSON by `probe-disk`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiskProbe {
    pub dir: PathBuf,
    pub fs_type: Option<String>,
    pub disk: Option<String>,
    pub duration_budget_ms: u64,
    pub byte_cap: u64,
    pub elapsed_ms: u64,
    pub alignment_bytes: u64,
    /// Whether the probe file could be preallocated (fallocate); false means the writes also
    /// paid for block allocation.
    pub preallocated: bool,
    pub sequential_write: SequentialWrite,
    pub write_4k: LatencySummary,
    /// fdatasync latency, each after one 4 KiB O_DIRECT write into fresh preallocated space.
    pub fdatasync_4k: LatencySummary,
    /// fdatasync latency, each after one 4 KiB O_DIRECT write over already-written blocks.
    pub fdatasync_4k_overwrite: LatencySummary,
}

/// Runs the probe. Never leaves the probe file behind.
pub fn probe_disk(options: &ProbeOptions) -> Result<DiskProbe> {
    if options.max_bytes < MIN_BYTE_CAP {
        return Err(TuneError::ProbeBounds(format!(
            "byte cap {} is below the minimum {MIN_BYTE_CAP}",
            options.max_bytes
        )));
    }
    if options.duration.is_zero() {
        return Err(TuneError::ProbeBounds("duration must be above zero".into()));
    }
    let started = Instant::now();
    let file_bytes = options.max_bytes / ALIGN_BYTES as u64 * ALIGN_BYTES as u64;
    let probe_file = ProbeFile::create(&options.dir, file_bytes)?;
    // The buffer is declared before the ring so the ring is dropped (and its requests ended)
    // first on every path.
    let mut buffer = AlignedBuffer::new(SEQ_BLOCK_BYTES);
    buffer.fill_pattern();
    let mut ring =
        IoUring::new(32).map_err(|source| probe_err("io_uring_setup", &probe_file.path, source))?;

    // Regions: [0, seq_end) sequential, [seq_end, small_end) 4 KiB writes, rest fdatasync phase.
    let eighth = (file_bytes / 8) / ALIGN_BYTES as u64 * ALIGN_BYTES as u64;
    let seq_end = file_bytes - 2 * eighth;
    let small_end = seq_end + eighth;
    let budget = options.duration;
    let seq_block = (SEQ_BLOCK_BYTES as u64).min(seq_end) as usize;

    let mut io = RingIo {
        ring: &mut ring,
        fd: probe_file.file.as_raw_fd(),
        path: &probe_file.path,
    };
    let quarter = budget.mul_f64(0.25);
    let sequential_write = io.sequential(&buffer, seq_block, 0..seq_end, quarter)?;
    let write_4k = io.small_writes(&buffer, seq_end..small_end, quarter, false)?;
    let fdatasync_4k = io.small_writes(&buffer, small_end..file_bytes, quarter, true)?;
    let fdatasync_4k_overwrite =
        io.small_writes(&buffer, 0..sequential_write.bytes_written, quarter, true)?;

    let store = StoreFacts::collect(&SysRoot::host(), &options.dir);
    let result = DiskProbe {
        dir: options.dir.clone(),
        fs_type: store.fs_type,
        disk: store.disk,
        duration_budget_ms: budget.as_millis() as u64,
        byte_cap: options.max_bytes,
        elapsed_ms: started.elapsed().as_millis() as u64,
        alignment_bytes: ALIGN_BYTES as u64,
        preallocated: probe_file.preallocated,
        sequential_write,
        write_4k,
        fdatasync_4k,
        fdatasync_4k_overwrite,
    };
    drop(probe_file);
    Ok(result)
}

fn probe_err(stage: &'static str, path: &Path, source: std::io::Error) -> TuneError {
    TuneError::Probe {
        stage,
        path: path.to_path_buf(),
        source,
    }
}

/// The probe's file: created exclusively with O_DIRECT, preallocated, removed on drop.
struct ProbeFile {
    file: File,
    path: PathBuf,
    preallocated: bool,
}

impl ProbeFile {
    fn create(dir: &Path, bytes: u64) -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = dir.join(format!(".ringmq-probe-{}-{nanos}", std::process::id()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_DIRECT | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|source| probe_err("open O_DIRECT", &path, source))?;
        let mut probe_file = Self {
            file,
            path,
            preallocated: false,
        };
        // SAFETY: the fd is open for writing; fallocate does not touch our memory.
        let rc =
            unsafe { libc::fallocate(probe_file.file.as_raw_fd(), 0, 0, bytes as libc::off_t) };
        if rc == 0 {
            probe_file.preallocated = true;
        } else {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EOPNOTSUPP) {
                return Err(probe_err("fallocate", &probe_file.path, err));
            }
        }
        // Make the allocation itself durable before timing anything.
        probe_file
            .file
            .sync_all()
            .map_err(|source| probe_err("fsync after fallocate", &probe_file.path, source))?;
        Ok(probe_file)
    }
}

impl Drop for ProbeFile {
    fn drop(&mut self) {
        // Best effort by necessity: Drop cannot report; a leftover is named by its prefix.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A zeroed-then-filled heap buffer aligned for O_DIRECT.
struct AlignedBuffer {
    ptr: *mut u8,
    layout: Layout,
}

impl AlignedBuffer {
    fn new(len: usize) -> Self {
        assert!(
            len > 0 && len % ALIGN_BYTES == 0,
            "O_DIRECT buffer length must be aligned"
        );
        let layout = Layout::from_size_align(len, ALIGN_BYTES).expect("valid layout");
        // SAFETY: layout has non-zero size.
        let ptr = unsafe { alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            alloc::handle_alloc_error(layout);
        }
        Self { ptr, layout }
    }

    /// Non-zero, non-repeating-per-block bytes, so no layer can shortcut zero pages.
    fn fill_pattern(&mut self) {
        // SAFETY: ptr is valid for layout.size() bytes and uniquely owned here.
        let bytes = unsafe { std::slice::from_raw_parts_mut(self.ptr, self.layout.size()) };
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for chunk in bytes.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let word = state.to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

impl Drop for AlignedBuffer {
    fn drop(&mut self) {
        // SAFETY: ptr came from alloc with this layout and is freed once.
        unsafe { alloc::dealloc(self.ptr, self.layout) };
    }
}

/// The ring, the probe file's fd and its path for error messages.
struct RingIo<'a> {
    ring: &'a mut IoUring,
    fd: i32,
    path: &'a Path,
}

impl RingIo<'_> {
    fn push(&mut self, entry: squeue::Entry) {
        // SAFETY: the buffer an entry points at lives until the ring is dropped (probe_disk
        // declares it first), and callers drain completions before returning, except on a
        // failed io_uring_enter, where the ring's drop ends the requests.
        let pushed = unsafe { self.ring.submission().push(&entry) };
        assert!(
            pushed.is_ok(),
            "submission queue full: callers keep in-flight below ring size"
        );
    }

    fn write_entry(&self, buffer: &AlignedBuffer, len: usize, offset: u64) -> squeue::Entry {
        opcode::Write::new(types::Fd(self.fd), buffer.ptr, len as u32)
            .offset(offset)
            .build()
            .user_data(len as u64)
    }

    /// Submits what is queued and waits for one completion; returns its result.
    fn wait_one(&mut self, stage: &'static str) -> Result<i32> {
        loop {
            match self.ring.submit_and_wait(1) {
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(probe_err(stage, self.path, source)),
            }
        }
        let cqe = self
            .ring
            .completion()
            .next()
            .expect("submit_and_wait(1) returned without a completion");
        Ok(cqe.result())
    }

    /// Checks one write completion: an errno or a short write is an error.
    fn check_write(&self, result: i32, len: usize, stage: &'static str) -> Result<()> {
        if result < 0 {
            return Err(probe_err(
                stage,
                self.path,
                std::io::Error::from_raw_os_error(-result),
            ));
        }
        if result as usize != len {
            let msg = format!("short O_DIRECT write: {result} of {len} bytes");
            return Err(probe_err(stage, self.path, std::io::Error::other(msg)));
        }
        Ok(())
    }

    fn fdatasync(&mut self) -> Result<Duration> {
        let entry = opcode::Fsync::new(types::Fd(self.fd))
            .flags(types::FsyncFlags::DATASYNC)
            .build();
        let start = Instant::now();
        self.push(entry);
        let result = self.wait_one("fdatasync")?;
        let took = start.elapsed();
        if result < 0 {
            return Err(probe_err(
                "fdatasync",
                self.path,
                std::io::Error::from_raw_os_error(-result),
            ));
        }
        Ok(took)
    }

    /// Phase 1: `block`-sized writes, SEQ_QUEUE_DEPTH in flight, through `region`.
    fn sequential(
        &mut self,
        buffer: &AlignedBuffer,
        block: usize,
        region: std::ops::Range<u64>,
        budget: Duration,
    ) -> Result<SequentialWrite> {
        assert!(block % ALIGN_BYTES == 0 && block > 0);
        let start = Instant::now();
        let deadline = start + budget;
        let (mut next, mut in_flight, mut written) = (region.start, 0usize, 0u64);
        let mut first_error = None;
        let mut stopped_by = StoppedBy::Bytes;
        loop {
            // Stop queueing on error, time or bytes; always drain what is in flight.
            while first_error.is_none() && in_flight < SEQ_QUEUE_DEPTH {
                if next + block as u64 > region.end {
                    break;
                }
                if Instant::now() >= deadline {
                    stopped_by = StoppedBy::Time;
                    break;
                }
                let entry = self.write_entry(buffer, block, next);
                self.push(entry);
                next += block as u64;
                in_flight += 1;
            }
            if in_flight == 0 {
                break;
            }
            // A failed io_uring_enter leaves the ring unusable: stop. Dropping the ring ends
            // what is in flight, and the kernel keeps the buffer's pages pinned until then.
            let result = self.wait_one("sequential write")?;
            in_flight -= 1;
            // A failed write is recorded and the rest drained, so the error is the first one.
            match self.check_write(result, block, "sequential write") {
                Ok(()) => written += block as u64,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        let seconds = start.elapsed().as_secs_f64();
        let final_sync = self.fdatasync()?;
        Ok(SequentialWrite {
            block_bytes: block as u64,
            queue_depth: SEQ_QUEUE_DEPTH as u64,
            bytes_written: written,
            seconds,
            megabytes_per_s: if seconds > 0.0 {
                written as f64 / seconds / 1e6
            } else {
                0.0
            },
            final_fdatasync_us: final_sync.as_secs_f64() * 1e6,
            stopped_by,
        })
    }

    /// Phases 2 and 3: 4 KiB writes one at a time through `region`; with `sync`, an
    /// fdatasync after each write and the fdatasync is what is timed, else the write is.
    fn small_writes(
        &mut self,
        buffer: &AlignedBuffer,
        region: std::ops::Range<u64>,
        budget: Duration,
        sync: bool,
    ) -> Result<LatencySummary> {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
            .expect("static histogram bounds are valid");
        let start = Instant::now();
        let deadline = start + budget;
        let mut offset = region.start;
        let stopped_by = loop {
            if offset + SMALL_WRITE_BYTES as u64 > region.end {
                break StoppedBy::Bytes;
            }
            if Instant::now() >= deadline {
                break StoppedBy::Time;
            }
            let entry = self.write_entry(buffer, SMALL_WRITE_BYTES, offset);
            let write_start = Instant::now();
            self.push(entry);
            let result = self.wait_one("4 KiB write")?;
            let write_took = write_start.elapsed();
            self.check_write(result, SMALL_WRITE_BYTES, "4 KiB write")?;
            let took = if sync { self.fdatasync()? } else { write_took };
            histogram.saturating_record(took.as_nanos().max(1) as u64);
            offset += SMALL_WRITE_BYTES as u64;
        };
        let seconds = start.elapsed().as_secs_f64();
        let us = |nanos: u64| nanos as f64 / 1e3;
        Ok(LatencySummary {
            ops: histogram.len(),
            seconds,
            ops_per_s: if seconds > 0.0 {
                histogram.len() as f64 / seconds
            } else {
                0.0
            },
            p50_us: us(histogram.value_at_quantile(0.50)),
            p99_us: us(histogram.value_at_quantile(0.99)),
            p999_us: us(histogram.value_at_quantile(0.999)),
            max_us: us(histogram.max()),
            mean_us: histogram.mean() / 1e3,
            stopped_by,
        })
    }
}
