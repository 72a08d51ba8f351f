//! Store settings: what users tune, with RocketMQ's defaults.

use std::path::PathBuf;

/// Default bound on consume-queue entries cached per shard (24 B each: 24 MiB): up to 256
/// queues keep the per-queue maximum of 4096, more queues share it.
pub const CQ_CACHE_ENTRIES_TOTAL_DEFAULT: usize = 1 << 20;

/// Default `checkpoint_interval_ms`: Java syncs consume queues thoroughly every 60 s; 5 s keeps
/// the re-dispatch after a crash within a start-up budget of about 2 s on this class of disk.
pub const CHECKPOINT_INTERVAL_MS_DEFAULT: u64 = 5_000;
/// Default `read_ahead_extents` (of 1 MiB each): consumers of many queues catching up read the
/// same stretch of the log at somewhat different positions, and every extent must stay cached
/// until all of them have passed it, or it is read again (results/catch-up-queues-2026-12-07.md).
pub const READ_AHEAD_EXTENTS_DEFAULT: usize = 64;
/// Default `checkpoint_max_log_bytes`.
pub const CHECKPOINT_MAX_LOG_BYTES_DEFAULT: u64 = 256 << 20;
/// Default `index_slots_per_file` (RocketMQ's `maxHashSlotNum` is 5,000,000): the file being
/// filled keeps its slot table in memory, 4 bytes a slot, so 2 MiB here against 20 MB.
pub const INDEX_SLOTS_PER_FILE_DEFAULT: u32 = 1 << 19;
/// Default `index_entries_per_file` (RocketMQ's `maxIndexNum` is 20,000,000): four entries per
/// slot, as Java's defaults have. A file is 64 MiB, and after kill -9 recovery re-reads the
/// entries of the file being filled: 64 MiB here against Java's 640 MB, which alone would take
/// most of the 2 s start-up goal (Java maps the file instead and lets the kernel page it).
pub const INDEX_ENTRIES_PER_FILE_DEFAULT: u32 = 1 << 21;
/// Default `index_filter_cache_bytes`: the filters of 16 full index files of the default
/// layout (2 MiB each, a byte per entry): about 16 M keyed messages, 20 GB of 1 KiB messages.
/// Lookups walk the files beyond it, as they walked every file before filters.
pub const INDEX_FILTER_CACHE_BYTES_DEFAULT: usize = 32 << 20;
/// Largest `index_slots_per_file`: a 64 MiB slot table in memory (Java's default fits).
pub const INDEX_SLOTS_PER_FILE_MAX: u32 = 1 << 24;
/// Largest `index_entries_per_file`: 2 GiB files (Java's default fits). Entries are numbered
/// by `u32` within a file, and recovery may re-read one file's entries whole.
pub const INDEX_ENTRIES_PER_FILE_MAX: u32 = 1 << 26;
/// `index_entries_per_file` must be a multiple of this: entries per page, so a full file ends on
/// a page boundary.
pub const INDEX_ENTRIES_PER_PAGE: u32 =
    (super::PAGE_BYTES / super::index::INDEX_ENTRY_BYTES as u64) as u32;

/// When an append completes (design.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushMode {
    /// Complete once the O_DIRECT write finished (survives kill -9); fdatasync every
    /// `flush_interval_ms`.
    Async,
    /// Complete once a group-committed fdatasync covers the record (survives power loss).
    Sync,
}

/// Settings of one shard's store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The store root; this shard's files live in `<root>/shard-<shard_id>/`.
    pub root: PathBuf,
    /// Shard id, written into the high bits of every physical offset (0..=127).
    pub shard_id: u8,
    /// Size of each preallocated commit-log segment; a multiple of 4096.
    pub segment_size_bytes: u64,
    pub flush_mode: FlushMode,
    /// ASYNC_FLUSH: fdatasync period of the commit log. Both modes: how often the full pages
    /// of consume queues and index are written (O_DIRECT, so their memory stays bounded; the
    /// partial last page of each waits in memory for the checkpoint).
    pub flush_interval_ms: u64,
    /// How often consume queues and index get their partial last pages written, are
    /// fdatasynced and the checkpoint written (RocketMQ's `flushConsumeQueueThoroughInterval`),
    /// or sooner once `checkpoint_max_log_bytes` of log were dispatched since the last
    /// checkpoint. Derived files are rebuilt from the log past the checkpoint after a crash, so
    /// this bounds that scan; syncing every queue's file every `flush_interval_ms` instead made
    /// appends over 1,000 queues run at half the rate of 8 (`results/storage-scale-2026-12-07.md`).
    pub checkpoint_interval_ms: u64,
    /// See `checkpoint_interval_ms`: the most log a crash recovery re-dispatches, roughly.
    pub checkpoint_max_log_bytes: u64,
    /// SYNC_FLUSH: past this an append completes with `FlushDiskTimeout`.
    pub sync_flush_timeout_ms: u64,
    /// Bytes of the log tail kept in memory for reads.
    pub tail_cache_bytes: usize,
    /// Consume-queue entries kept in memory by all queues of the shard together (each queue
    /// keeps its share, within `CQ_CACHE_ENTRIES_PER_QUEUE_MIN..=MAX`).
    pub cq_cache_entries_total: usize,
    /// Largest record accepted (RocketMQ `maxMessageSize` 4 MiB plus header room).
    pub max_record_bytes: usize,
    /// Segments whose last write is older than this are deleted (`fileReservedTime`).
    pub file_reserved_time_ms: u64,
    /// Segments are deleted oldest first while the disk is fuller than this (`diskMaxUsedSpaceRatio`).
    pub disk_max_used_ratio_percent: u8,
    /// How often the background task checks retention.
    pub retention_check_interval_ms: u64,
    /// Commit-log space kept written with zeros ahead of the log end, so appends overwrite
    /// already-written blocks and their fdatasyncs skip ext4's unwritten-extent conversion
    /// (the host probe measured 1.58 ms vs 46 µs p50). Never reaches past the segment after the
    /// one holding the log end. Default 0 (off): in the criterion A/B on the shared dev VM it
    /// did not pay for the extra writes (`results/storage-2026-11-21-perf.md`).
    pub zero_ahead_bytes: u64,
    /// How long a write round waits for more appends before its O_DIRECT write, when the
    /// previous round carried several appends (see `flush::should_linger`). 0 = never wait.
    pub write_linger_us: u64,
    /// Hash slots per key-index file; the file being filled keeps its table in memory
    /// (4 bytes a slot). RocketMQ's `maxHashSlotNum` (see [`INDEX_SLOTS_PER_FILE_DEFAULT`]).
    pub index_slots_per_file: u32,
    /// Entries per key-index file (32 bytes each; RocketMQ's `maxIndexNum`, see
    /// [`INDEX_ENTRIES_PER_FILE_DEFAULT`]). A multiple of [`INDEX_ENTRIES_PER_PAGE`].
    pub index_entries_per_file: u32,
    /// Pages (4 KiB) of full key-index files cached for lookups.
    pub index_cache_pages: usize,
    /// Bytes of full key-index files' filters kept in memory for lookups (0: full files are
    /// always walked). See [`INDEX_FILTER_CACHE_BYTES_DEFAULT`].
    pub index_filter_cache_bytes: usize,
    /// Size of a read-ahead extent: pulls of log bytes no longer in the tail cache read whole
    /// aligned extents (a multiple of 4096).
    pub read_ahead_bytes: u64,
    /// Read-ahead extents kept in memory (0 turns read-ahead off: each pull reads its own
    /// 128 KiB windows).
    pub read_ahead_extents: usize,
}

impl StoreConfig {
    /// Defaults for a shard: 1 GiB segments, ASYNC_FLUSH every 500 ms, 72 h, 75 %.
    pub fn new(root: impl Into<PathBuf>, shard_id: u8) -> Self {
        StoreConfig {
            root: root.into(),
            shard_id,
            segment_size_bytes: 1 << 30,
            flush_mode: FlushMode::Async,
            flush_interval_ms: 500,
            checkpoint_interval_ms: CHECKPOINT_INTERVAL_MS_DEFAULT,
            checkpoint_max_log_bytes: CHECKPOINT_MAX_LOG_BYTES_DEFAULT,
            sync_flush_timeout_ms: 5000,
            tail_cache_bytes: 64 << 20,
            cq_cache_entries_total: CQ_CACHE_ENTRIES_TOTAL_DEFAULT,
            max_record_bytes: (4 << 20) + 64 * 1024,
            file_reserved_time_ms: 72 * 3600 * 1000,
            disk_max_used_ratio_percent: 75,
            retention_check_interval_ms: 10_000,
            zero_ahead_bytes: 0,
            write_linger_us: 0,
            index_slots_per_file: INDEX_SLOTS_PER_FILE_DEFAULT,
            index_entries_per_file: INDEX_ENTRIES_PER_FILE_DEFAULT,
            index_cache_pages: 1024,
            index_filter_cache_bytes: INDEX_FILTER_CACHE_BYTES_DEFAULT,
            read_ahead_bytes: 1 << 20,
            read_ahead_extents: READ_AHEAD_EXTENTS_DEFAULT,
        }
    }

    /// This shard's directory.
    pub fn shard_dir(&self) -> PathBuf {
        self.root.join(format!("shard-{}", self.shard_id))
    }

    pub(crate) fn index_layout(&self) -> super::index::Layout {
        super::index::Layout {
            slots: self.index_slots_per_file,
            capacity: self.index_entries_per_file,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.shard_id > super::offset::MAX_SHARD_ID {
            return Err(format!(
                "shard id {} above {}",
                self.shard_id,
                super::offset::MAX_SHARD_ID
            ));
        }
        if self.segment_size_bytes == 0 || self.segment_size_bytes % super::PAGE_BYTES != 0 {
            return Err(format!(
                "segment size {} is not a multiple of 4096",
                self.segment_size_bytes
            ));
        }
        if (self.max_record_bytes as u64) + 8 > self.segment_size_bytes {
            return Err("max_record_bytes must leave room in a segment".into());
        }
        if self.zero_ahead_bytes % super::PAGE_BYTES != 0 {
            return Err(format!(
                "zero_ahead_bytes {} is not a multiple of 4096",
                self.zero_ahead_bytes
            ));
        }
        let per_page = INDEX_ENTRIES_PER_PAGE;
        if !(1..=INDEX_SLOTS_PER_FILE_MAX).contains(&self.index_slots_per_file)
            || !(1..=INDEX_ENTRIES_PER_FILE_MAX).contains(&self.index_entries_per_file)
            || self.index_entries_per_file % per_page != 0
        {
            return Err(format!(
                "index needs 1..={INDEX_SLOTS_PER_FILE_MAX} slots and entries a multiple of \
                 {per_page} up to {INDEX_ENTRIES_PER_FILE_MAX} (got {} slots, {} entries)",
                self.index_slots_per_file, self.index_entries_per_file
            ));
        }
        if self.read_ahead_bytes == 0 || self.read_ahead_bytes % super::PAGE_BYTES != 0 {
            return Err(format!(
                "read_ahead_bytes {} is not a positive multiple of 4096",
                self.read_ahead_bytes
            ));
        }
        if self.tail_cache_bytes < 2 * super::PAGE_BYTES as usize {
            return Err("tail cache must hold at least two pages".into());
        }
        Ok(())
    }
}
