//! Per-shard storage engine: commit log, consume queues, index, recovery, retention.
//!
//! # Using the store (for request handlers)
//!
//! One [`Store`] per shard, opened and used only on that shard's glommio executor (it is
//! `!Send`: `Rc`/`RefCell`, no locks). Everything is `async` and cheap to call concurrently from
//! many tasks of the same executor.
//!
//! * [`Store::open`] — recovers (scan from the checkpoint, truncate at the first torn or corrupt
//!   record, rebuild consume queues and index) and starts the store's background tasks: the
//!   writer, the syncer (SYNC_FLUSH group commits, pipelined with the writer), the zeroer
//!   (`zero_ahead_bytes`, off in `StoreConfig::new`, 16 MiB in the broker: writes zeros ahead
//!   of the log end so appends overwrite written blocks) and the periodic task.
//! * [`Store::append`] — stores a batch of [`Record`]s for any (topic, queue) pairs. The store
//!   assigns each record's queue offset (dense per queue), physical offset (global: shard id in
//!   bits 48–55, see [`offset`]) and store timestamp, ignoring what the caller put there, and
//!   returns them per record in [`AppendOutcome`]. It completes when the [`FlushMode`] promise
//!   holds: ASYNC_FLUSH once the O_DIRECT write completed, SYNC_FLUSH once a group-committed
//!   fdatasync covers it; past `sync_flush_timeout_ms` with
//!   [`AppendStatus::FlushDiskTimeout`] (answer FLUSH_DISK_TIMEOUT). After a write or fdatasync
//!   error every append fails with [`StoreError::ReadOnly`].
//! * [`Store::get_messages`] — a pull: a [`GetRequest`] in, a [`GetResult`] out with the
//!   RocketMQ status ([`GetStatus`]), the records' bytes concatenated exactly as stored (the
//!   pull body), next begin offset, min and max offset.
//! * [`Store::wait_for_messages`] — park a pull until its queue grows past an offset or a
//!   timeout passes.
//! * [`Store::view_message`] (VIEW_MESSAGE_BY_ID, CONSUMER_SEND_MSG_BACK, END_TRANSACTION),
//!   [`Store::query_messages`] (QUERY_MESSAGE), [`Store::search_offset_by_time`]
//!   (SEARCH_OFFSET_BY_TIMESTAMP), [`Store::earliest_store_time`]
//!   (GET_EARLIEST_MSG_STORETIME), [`Store::min_offset`] / [`Store::max_offset`]
//!   (GET_MIN_OFFSET / GET_MAX_OFFSET), [`Store::log_offsets`].
//! * [`Store::read_raw`] / [`Store::append_raw`] — replication: raw log bytes out of a master,
//!   byte-identical into a slave.
//! * [`Store::run_retention`] — also run by the store itself every `retention_check_interval_ms`.
//! * [`Store::close`] — writes everything, fdatasyncs, checkpoints and leaves the clean-shutdown
//!   marker so the next open has nothing to scan.
//!
//! Caller duties: hosts in a [`Record`] must be IPv4 (map `::ffff:a.b.c.d` peers first; an IPv6
//! host is refused as [`StoreError::InvalidRecord`]); topics are at most 127 bytes and may not
//! contain `/`. Open the store before any other O_DIRECT file on the same executor thread, or
//! call [`backend::prime_iopoll_probe`] first (a glommio 0.9.0 quirk, see the storage format).
//!
//! The files and their invariants are described in `docs/storage-format.md`.

mod append_file;
pub mod backend;
#[cfg(test)]
mod cadence_tests;
mod checkpoint;
mod commitlog;
mod config;
pub mod consume_queue;
#[cfg(test)]
mod cq_window_tests;
mod error;
mod flush;
pub mod index;
#[cfg(test)]
mod linger_tests;
mod notify;
pub mod offset;
#[cfg(test)]
mod ordering_tests;
mod read;
mod readahead;
mod recovery;
mod replica;
mod retention;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod trace;
mod zero;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use ringmq_proto::message::{sysflag, Record};

pub use config::{
    FlushMode, StoreConfig, CHECKPOINT_INTERVAL_MS_DEFAULT, CHECKPOINT_MAX_LOG_BYTES_DEFAULT,
    CQ_CACHE_ENTRIES_TOTAL_DEFAULT, INDEX_ENTRIES_PER_FILE_DEFAULT, INDEX_ENTRIES_PER_FILE_MAX,
    INDEX_ENTRIES_PER_PAGE, INDEX_FILTER_CACHE_BYTES_DEFAULT, INDEX_SLOTS_PER_FILE_DEFAULT,
    INDEX_SLOTS_PER_FILE_MAX, READ_AHEAD_EXTENTS_DEFAULT,
};
pub use consume_queue::CqEntry;
pub use error::StoreError;
pub use index::index_filter_bytes;
pub use read::{GetRequest, GetResult, GetStatus, QueryResult, RecordFilter};
pub use retention::RetentionReport;

use append_file::AppendFile;
use checkpoint::Checkpoint;
use commitlog::CommitLog;
use consume_queue::QueueState;
use index::KeyIndex;
use notify::{Notify, OffsetWaiters};

/// Alignment of every O_DIRECT write and of the tail cache (a multiple of any sector size).
pub const PAGE_BYTES: u64 = 4096;

pub(crate) fn align_down(v: u64) -> u64 {
    v - v % PAGE_BYTES
}

pub(crate) fn align_up(v: u64) -> u64 {
    align_down(v + PAGE_BYTES - 1)
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Whether a batch's durability promise held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendStatus {
    /// Stored as the flush mode promises (SEND_OK).
    PutOk,
    /// SYNC_FLUSH: stored and written, but no fdatasync covered it within
    /// `sync_flush_timeout_ms` (FLUSH_DISK_TIMEOUT: durability not confirmed).
    FlushDiskTimeout,
}

/// Where one appended record went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendedRecord {
    /// Global physical offset (PHYSICALOFFSET in the record; offsetMsgId's offset).
    pub physical_offset: u64,
    /// Offset in its consume queue (0 for prepared and rollback transaction records).
    pub queue_offset: u64,
    /// STORETIMESTAMP in the record.
    pub store_timestamp: i64,
    /// Record size in bytes.
    pub size: u32,
}

/// The result of [`Store::append`]: one status for the batch, one entry per record in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    pub status: AppendStatus,
    pub records: Vec<AppendedRecord>,
}

/// The commit log's watermarks (global offsets): `min <= flushed <= written <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOffsets {
    pub min: u64,
    pub flushed: u64,
    pub written: u64,
    pub end: u64,
}

/// Counters of the write path.
#[derive(Debug, Default)]
pub struct StoreStats {
    pub bytes_written: Cell<u64>,
    pub writes: Cell<u64>,
    pub fdatasyncs: Cell<u64>,
    /// Records covered by all fdatasyncs; divided by `fdatasyncs`: records per fdatasync.
    pub records_synced: Cell<u64>,
    /// Time spent in commit-log O_DIRECT writes (submission to completion), microseconds.
    pub write_micros: Cell<u64>,
    /// Time spent in commit-log group-commit fdatasyncs, microseconds.
    pub fdatasync_micros: Cell<u64>,
    /// Log writes that completed while a group-commit fdatasync was in flight (pipelining).
    pub writes_during_fdatasync: Cell<u64>,
    /// Zero bytes written ahead of the log end, and the fdatasyncs that committed them.
    pub zero_bytes: Cell<u64>,
    pub zero_fdatasyncs: Cell<u64>,
    /// O_DIRECT writes of consume-queue files (write rounds and checkpoints), and their bytes.
    pub cq_writes: Cell<u64>,
    pub cq_bytes_written: Cell<u64>,
    /// Where each write and fdatasync is also observed for the metrics endpoint (histograms
    /// of atomics the shard publishes), once the server attaches it.
    pub engine: std::cell::RefCell<Option<std::sync::Arc<crate::stats::ShardStats>>>,
}

impl StoreStats {
    /// Runs `observe` on the attached engine statistics, if any.
    pub(crate) fn observe(&self, observe: impl FnOnce(&crate::stats::counters::EngineStats)) {
        if let Some(shared) = self.engine.borrow().as_ref() {
            observe(&shared.engine);
        }
    }
}

/// The store's memory, by bounded structure (bytes held right now; each has a named bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryUsage {
    /// Log tail kept in memory (bound: `tail_cache_bytes`, plus the partial page).
    pub tail_cache_bytes: u64,
    /// Consume-queue entries cached, and each queue file's memory tail, all queues (bound:
    /// about `cq_cache_entries_total` entries for the shard, see
    /// `consume_queue::CqCacheBudget`, plus per queue file its partial last page, under 4 KiB,
    /// which waits in memory for the checkpoint, and what one flush round dispatches).
    pub cq_cache_bytes: u64,
    /// Key-index slot tables in memory (bound: `index_slots_per_file` × 4, one file).
    pub index_slot_bytes: u64,
    /// Key-index entries not yet written, and the partial last page of each index file (under
    /// 4 KiB each, written only with a checkpoint).
    pub index_unwritten_bytes: u64,
    /// Key-index page cache (bound: `index_cache_pages` × 4 KiB).
    pub index_cache_bytes: u64,
    /// Key filter of the index file being filled (bound: `index_entries_per_file` bytes; a
    /// second one until a full file's filter is written).
    pub index_filter_bytes: u64,
    /// Key filters of full index files cached for lookups (bound: `index_filter_cache_bytes`).
    pub index_filter_cache_bytes: u64,
    /// Read-ahead extents of the log (bound: `read_ahead_extents` × `read_ahead_bytes`).
    pub read_ahead_bytes: u64,
    /// Queues the store knows (each costs its state and an open file once written).
    pub queues: u64,
}

impl MemoryUsage {
    /// Adds another shard's figures (the broker reports the sum).
    pub fn add(&mut self, o: &MemoryUsage) {
        self.tail_cache_bytes += o.tail_cache_bytes;
        self.cq_cache_bytes += o.cq_cache_bytes;
        self.index_slot_bytes += o.index_slot_bytes;
        self.index_unwritten_bytes += o.index_unwritten_bytes;
        self.index_cache_bytes += o.index_cache_bytes;
        self.index_filter_bytes += o.index_filter_bytes;
        self.index_filter_cache_bytes += o.index_filter_cache_bytes;
        self.read_ahead_bytes += o.read_ahead_bytes;
        self.queues += o.queues;
    }

    /// Each figure under the name GET_BROKER_RUNTIME_INFO reports it by.
    pub fn named(&self) -> [(&'static str, u64); 9] {
        [
            ("ringmqMemTailCacheBytes", self.tail_cache_bytes),
            ("ringmqMemReadAheadBytes", self.read_ahead_bytes),
            ("ringmqMemIndexSlotBytes", self.index_slot_bytes),
            ("ringmqMemIndexCacheBytes", self.index_cache_bytes),
            ("ringmqMemIndexUnwrittenBytes", self.index_unwritten_bytes),
            ("ringmqMemIndexFilterBytes", self.index_filter_bytes),
            (
                "ringmqMemIndexFilterCacheBytes",
                self.index_filter_cache_bytes,
            ),
            ("ringmqMemConsumeQueueBytes", self.cq_cache_bytes),
            ("ringmqStoreQueues", self.queues),
        ]
    }
}

/// A copy of [`StoreStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    pub bytes_written: u64,
    pub writes: u64,
    pub fdatasyncs: u64,
    pub records_synced: u64,
    pub write_micros: u64,
    pub fdatasync_micros: u64,
    pub writes_during_fdatasync: u64,
    pub zero_bytes: u64,
    pub zero_fdatasyncs: u64,
    /// Bytes read from key-index files since open (open included).
    pub index_bytes_read: u64,
    /// O_DIRECT writes of consume-queue files since open, and their bytes.
    pub cq_writes: u64,
    pub cq_bytes_written: u64,
    /// O_DIRECT writes of key-index entries since open, and their bytes.
    pub index_writes: u64,
    pub index_bytes_written: u64,
    /// Key-index files on disk or being filled.
    pub index_files: u64,
    /// Index files QUERY_MESSAGE lookups walked (slot and chain read) since open, and those
    /// they skipped because the file's key filter does not hold the key.
    pub index_files_walked: u64,
    pub index_files_skipped: u64,
    /// Bytes of key-filter files read since open (also in `index_bytes_read`).
    pub index_filter_bytes_read: u64,
    /// Filters of full index files rebuilt from their entries since open (missing or damaged).
    pub index_filters_rebuilt: u64,
    /// Bytes pulls read from disk into read-ahead extents.
    pub read_ahead_bytes_read: u64,
    /// Bytes pulls read from disk into their own windows (runs of records, or 128 KiB).
    pub pull_window_bytes_read: u64,
}

/// Queue states by topic, then queue id (a `&str` lookup needs no allocation).
pub(crate) type Queues = HashMap<String, HashMap<i32, Rc<QueueState>>>;

pub(crate) struct State {
    pub(crate) log: CommitLog,
    pub(crate) queues: Queues,
    pub(crate) index: Rc<KeyIndex>,
    /// Records below this local offset have their consume-queue and index entries.
    pub(crate) dispatched: u64,
    pub(crate) records_written: u64,
    pub(crate) records_synced: u64,
}

pub(crate) struct Inner {
    pub(crate) config: StoreConfig,
    /// The consume-queue cache's shard-wide bound, shared by every queue.
    pub(crate) cq_cache_budget: Rc<consume_queue::CqCacheBudget>,
    pub(crate) dir: PathBuf,
    pub(crate) state: RefCell<State>,
    pub(crate) stats: StoreStats,
    /// Wakes the writer task (new appends, closing).
    pub(crate) writer_wake: Notify,
    /// Wakes background work and `close` (written, flushed, failure, task exits).
    pub(crate) progress: Notify,
    /// ASYNC_FLUSH appenders, by the end offset they wait to see written.
    pub(crate) written_waiters: OffsetWaiters,
    /// SYNC_FLUSH appenders, by the end offset they wait to see flushed.
    pub(crate) flushed_waiters: OffsetWaiters,
    pub(crate) closing: Cell<bool>,
    /// Appends encoded into the tail since open (the writer counts how many each round took).
    pub(crate) appends: Cell<u64>,
    pub(crate) failure: RefCell<Option<String>>,
    /// A group-commit fdatasync of the log is in flight.
    pub(crate) syncing: Cell<bool>,
    /// A task is creating (opening, preallocating) a segment; others wait for it.
    pub(crate) creating_segment: Cell<bool>,
    /// The page-aligned local range a zero write is filling right now; a log write overlapping
    /// it waits, so the two never race on the same blocks.
    pub(crate) zeroing: Cell<Option<(u64, u64)>>,
    /// Local offset below which the zeroer has nothing left to do (space up to here, from the
    /// log end, holds written zeros or log bytes).
    pub(crate) zeroed: Cell<u64>,
    pub(crate) writer_done: Cell<bool>,
    pub(crate) syncer_done: Cell<bool>,
    pub(crate) zeroer_done: Cell<bool>,
    pub(crate) periodic_done: Cell<bool>,
    pub(crate) last_checkpoint: Cell<Option<Checkpoint>>,
    /// Log extents read ahead for pulls that lag behind the tail cache.
    pub(crate) read_ahead: Rc<readahead::ReadAhead>,
}

impl Inner {
    pub(crate) fn checkpoint_path(&self) -> PathBuf {
        self.dir.join("checkpoint")
    }

    pub(crate) fn clean_marker_path(&self) -> PathBuf {
        self.dir.join("clean_shutdown")
    }

    pub(crate) fn cq_path(&self, topic: &str, queue_id: i32) -> PathBuf {
        self.dir
            .join("consumequeue")
            .join(topic)
            .join(format!("{queue_id}.cq"))
    }

    /// Turns the log read-only: the error is logged once and every later append fails.
    pub(crate) fn fail(&self, e: StoreError) {
        tracing::error!(dir = %self.dir.display(), error = %e, "store I/O failed; log is now read-only");
        self.failure
            .borrow_mut()
            .get_or_insert_with(|| e.to_string());
        self.progress.notify_all();
        self.writer_wake.notify_all();
        self.written_waiters.wake_all();
        self.flushed_waiters.wake_all();
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        if let Some(cause) = self.failure.borrow().as_ref() {
            return Err(StoreError::ReadOnly {
                cause: cause.clone(),
            });
        }
        if self.closing.get() {
            return Err(StoreError::Closed);
        }
        Ok(())
    }

    /// The state of (topic, queue), created empty on first use.
    pub(crate) fn queue(&self, st: &mut State, topic: &str, queue_id: i32) -> Rc<QueueState> {
        self.queue_in(&mut st.queues, topic, queue_id)
    }

    pub(crate) fn queue_in(
        &self,
        queues: &mut Queues,
        topic: &str,
        queue_id: i32,
    ) -> Rc<QueueState> {
        if let Some(q) = queues.get(topic).and_then(|t| t.get(&queue_id)) {
            return q.clone();
        }
        let file = AppendFile::existing(self.cq_path(topic, queue_id), None, 0, Vec::new());
        let q = Rc::new(QueueState::new(file, 0, &self.cq_cache_budget));
        queues
            .entry(topic.to_owned())
            .or_default()
            .insert(queue_id, q.clone());
        q
    }

    pub(crate) fn find_queue(&self, topic: &str, queue_id: i32) -> Option<Rc<QueueState>> {
        self.state
            .borrow()
            .queues
            .get(topic)
            .and_then(|t| t.get(&queue_id))
            .cloned()
    }
}

/// Topic names become directory names: refuse what could escape or confuse the store layout.
fn validate_topic(topic: &[u8]) -> Result<&str, StoreError> {
    let t = std::str::from_utf8(topic).map_err(|_| StoreError::InvalidTopic("not UTF-8".into()))?;
    if t.is_empty() || t == "." || t == ".." || t.contains(['/', '\0']) {
        return Err(StoreError::InvalidTopic(t.into()));
    }
    Ok(t)
}

/// One shard's storage engine. See the module documentation.
pub struct Store {
    inner: Rc<Inner>,
}

impl Store {
    /// Opens (creating if needed) the store in `<root>/shard-<k>/`, recovering from whatever
    /// state the last process left, and starts its writer and periodic tasks on the current
    /// executor.
    pub async fn open(config: StoreConfig) -> Result<Store, StoreError> {
        config.validate().map_err(StoreError::Config)?;
        let inner = Rc::new(recovery::open(config).await?);
        glommio::spawn_local(flush::writer_loop(inner.clone())).detach();
        glommio::spawn_local(flush::syncer_loop(inner.clone())).detach();
        glommio::spawn_local(zero::zeroer_loop(inner.clone())).detach();
        glommio::spawn_local(flush::periodic_loop(inner.clone())).detach();
        // Full index files whose filter file is missing get it back in the background.
        let closing = Rc::downgrade(&inner);
        let stopping = move || closing.upgrade().is_none_or(|i| i.closing.get());
        let index = inner.state.borrow().index.clone();
        glommio::spawn_local(index.sweep_filters(stopping)).detach();
        Ok(Store { inner })
    }

    /// This store's settings.
    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// Appends a batch. Fields `queue_offset`, `physical_offset` and `store_timestamp` of the
    /// given records are assigned by the store. Validation happens before anything is stored:
    /// an invalid record fails the whole batch and stores nothing.
    pub async fn append(&self, records: &[Record<'_>]) -> Result<AppendOutcome, StoreError> {
        let inner = &self.inner;
        inner.check_writable()?;
        if records.is_empty() {
            return Ok(AppendOutcome {
                status: AppendStatus::PutOk,
                records: Vec::new(),
            });
        }
        let mut sizes = Vec::with_capacity(records.len());
        for r in records {
            validate_topic(r.topic)?;
            let size = r.encoded_len()?;
            if size > inner.config.max_record_bytes {
                return Err(StoreError::RecordTooLarge {
                    size,
                    limit: inner.config.max_record_bytes,
                });
            }
            sizes.push(size);
        }
        self.wait_for_room().await?;
        let (outcome_records, end) = self.encode_batch(records, &sizes);
        inner.appends.set(inner.appends.get() + 1);
        inner.writer_wake.notify_all();
        let status = self.wait_durable(end).await?;
        Ok(AppendOutcome {
            status,
            records: outcome_records,
        })
    }

    /// Backpressure: while the tail holds `tail_cache_bytes` of log not yet written (a stalled
    /// disk), new appends wait, so the in-memory tail stays bounded.
    async fn wait_for_room(&self) -> Result<(), StoreError> {
        let inner = &self.inner;
        let cap = inner.config.tail_cache_bytes as u64;
        loop {
            let target = {
                let st = inner.state.borrow();
                if st.log.end - st.log.written < cap {
                    return Ok(());
                }
                st.log.end - cap + 1
            };
            inner
                .written_waiters
                .wait_for(target, || {
                    (inner.state.borrow().log.written >= target || inner.failure.borrow().is_some())
                        .then_some(())
                })
                .await;
            inner.check_writable()?;
        }
    }

    /// Assigns offsets and encodes the batch into the tail cache; no await, so a batch is
    /// contiguous in the log and queue offsets follow log order.
    fn encode_batch(&self, records: &[Record<'_>], sizes: &[usize]) -> (Vec<AppendedRecord>, u64) {
        let inner = &self.inner;
        let shard = inner.config.shard_id;
        let mut st = inner.state.borrow_mut();
        let now = now_ms().max(st.log.last_store_timestamp);
        st.log.last_store_timestamp = now;
        let mut out = Vec::with_capacity(records.len());
        for (r, &size) in records.iter().zip(sizes) {
            let tx = sysflag::transaction_type(r.sys_flag);
            let queue_offset = if tx == sysflag::TRANSACTION_PREPARED_TYPE
                || tx == sysflag::TRANSACTION_ROLLBACK_TYPE
            {
                0
            } else {
                let topic = std::str::from_utf8(r.topic).expect("validated above");
                let q = inner.queue(&mut st, topic, r.queue_id);
                let o = q.next_offset.get();
                q.next_offset.set(o + 1);
                o
            };
            let pos = st.log.reserve(size);
            let global = offset::to_global(shard, pos);
            let rec = Record {
                queue_offset: queue_offset as i64,
                physical_offset: global as i64,
                store_timestamp: now,
                ..*r
            };
            let n = rec
                .encode(st.log.cache.extend(size))
                .expect("validated above");
            assert_eq!(n, size);
            out.push(AppendedRecord {
                physical_offset: global,
                queue_offset,
                store_timestamp: now,
                size: size as u32,
            });
        }
        assert_eq!(
            st.log.cache.end(),
            st.log.end,
            "tail cache must end where the log ends"
        );
        let end = st.log.end;
        (out, end)
    }

    /// Waits until the flush mode's promise holds for every byte below `end`.
    async fn wait_durable(&self, end: u64) -> Result<AppendStatus, StoreError> {
        let inner = &self.inner;
        let durable = |st: &State| match inner.config.flush_mode {
            FlushMode::Async => st.log.written >= end,
            FlushMode::Sync => st.log.flushed >= end,
        };
        let waiters = match inner.config.flush_mode {
            FlushMode::Async => &inner.written_waiters,
            FlushMode::Sync => &inner.flushed_waiters,
        };
        let wait = waiters.wait_for(end, || {
            if durable(&inner.state.borrow()) {
                Some(Ok(AppendStatus::PutOk))
            } else {
                inner
                    .failure
                    .borrow()
                    .as_ref()
                    .map(|c| Err(StoreError::ReadOnly { cause: c.clone() }))
            }
        });
        match inner.config.flush_mode {
            FlushMode::Async => wait.await,
            FlushMode::Sync => {
                let timeout = Duration::from_millis(inner.config.sync_flush_timeout_ms);
                futures_lite::future::or(wait, async {
                    glommio::timer::sleep(timeout).await;
                    Ok(AppendStatus::FlushDiskTimeout)
                })
                .await
            }
        }
    }

    /// Parks until queue (topic, queue_id) holds a message at `offset` or beyond, or `timeout`
    /// passes. Returns whether it grew. Used for long polling: re-run the pull afterwards.
    pub async fn wait_for_messages(
        &self,
        topic: &str,
        queue_id: i32,
        offset: u64,
        timeout: Duration,
    ) -> bool {
        if validate_topic(topic.as_bytes()).is_err() {
            return false; // no such queue can ever exist
        }
        let q = {
            let mut st = self.inner.state.borrow_mut();
            self.inner.queue(&mut st, topic, queue_id)
        };
        let grown = q
            .growth
            .wait_for(|| (q.max_offset.get() > offset).then_some(true));
        futures_lite::future::or(grown, async {
            glommio::timer::sleep(timeout).await;
            q.max_offset.get() > offset
        })
        .await
    }

    /// Min queue offset of (topic, queue); 0 if unknown.
    pub fn min_offset(&self, topic: &str, queue_id: i32) -> u64 {
        self.inner
            .find_queue(topic, queue_id)
            .map_or(0, |q| q.min_offset.get())
    }

    /// Max queue offset (next to be readable) of (topic, queue); 0 if unknown.
    pub fn max_offset(&self, topic: &str, queue_id: i32) -> u64 {
        self.inner
            .find_queue(topic, queue_id)
            .map_or(0, |q| q.max_offset.get())
    }

    /// (topic, queue) pairs this store holds.
    pub fn queues(&self) -> Vec<(String, i32)> {
        let st = self.inner.state.borrow();
        st.queues
            .iter()
            .flat_map(|(t, qs)| qs.keys().map(move |q| (t.clone(), *q)))
            .collect()
    }

    /// The commit log's watermarks, as global offsets.
    pub fn log_offsets(&self) -> LogOffsets {
        let st = self.inner.state.borrow();
        let g = |v| offset::to_global(self.inner.config.shard_id, v);
        LogOffsets {
            min: g(st.log.min_offset),
            flushed: g(st.log.flushed),
            written: g(st.log.written),
            end: g(st.log.end),
        }
    }

    /// The log offset (global) the last checkpoint covers: recovery after a crash scans from
    /// here, and retention deletes only segments below it. 0 before the first checkpoint.
    pub fn checkpointed_offset(&self) -> u64 {
        let local = self.inner.last_checkpoint.get().map_or(0, |c| c.log_offset);
        offset::to_global(self.inner.config.shard_id, local)
    }

    /// Write-path counters.
    pub fn stats(&self) -> StatsSnapshot {
        let s = &self.inner.stats;
        let index = self.inner.state.borrow().index.clone();
        StatsSnapshot {
            bytes_written: s.bytes_written.get(),
            writes: s.writes.get(),
            fdatasyncs: s.fdatasyncs.get(),
            records_synced: s.records_synced.get(),
            write_micros: s.write_micros.get(),
            fdatasync_micros: s.fdatasync_micros.get(),
            writes_during_fdatasync: s.writes_during_fdatasync.get(),
            zero_bytes: s.zero_bytes.get(),
            zero_fdatasyncs: s.zero_fdatasyncs.get(),
            index_bytes_read: index.bytes_read.get(),
            cq_writes: s.cq_writes.get(),
            cq_bytes_written: s.cq_bytes_written.get(),
            index_writes: index.entry_writes.get(),
            index_bytes_written: index.entry_bytes_written.get(),
            index_files: index.file_count() as u64,
            index_files_walked: index.counters.files_walked.get(),
            index_files_skipped: index.counters.files_skipped.get(),
            index_filter_bytes_read: index.counters.filter_bytes_read.get(),
            index_filters_rebuilt: index.counters.filters_rebuilt.get(),
            read_ahead_bytes_read: self.inner.read_ahead.bytes_read.get(),
            pull_window_bytes_read: self.inner.read_ahead.window_bytes_read.get(),
        }
    }

    /// What the store holds in memory, by bounded structure.
    /// Consume-queue entries cached in memory, all queues together (bounded by about
    /// `cq_cache_entries_total`: entries evicted before their page is written are read from
    /// the file's memory tail).
    pub fn cq_cached_entries(&self) -> usize {
        let st = self.inner.state.borrow();
        st.queues
            .values()
            .flat_map(|t| t.values())
            .map(|q| q.cached_entries())
            .sum()
    }

    pub fn memory_usage(&self) -> MemoryUsage {
        let st = self.inner.state.borrow();
        let idx = st.index.memory();
        let queues = st.queues.values().flat_map(|t| t.values());
        MemoryUsage {
            tail_cache_bytes: st.log.cache.held_bytes(),
            cq_cache_bytes: queues.clone().map(|q| q.held_bytes()).sum(),
            index_slot_bytes: idx.slot_bytes,
            index_unwritten_bytes: idx.unwritten_bytes,
            index_cache_bytes: idx.cache_bytes,
            index_filter_bytes: idx.filter_bytes,
            index_filter_cache_bytes: idx.filter_cache_bytes,
            read_ahead_bytes: self.inner.read_ahead.held_bytes(),
            queues: queues.count() as u64,
        }
    }

    /// Publishes every write and fdatasync latency and group-commit size into `stats`.
    pub fn attach_engine_stats(&self, stats: std::sync::Arc<crate::stats::ShardStats>) {
        *self.inner.stats.engine.borrow_mut() = Some(stats);
    }

    /// The I/O failure that made the log read-only, if any.
    pub fn read_only_cause(&self) -> Option<String> {
        self.inner.failure.borrow().clone()
    }

    /// Writes and fdatasyncs everything, checkpoints, leaves the clean-shutdown marker and
    /// stops the background tasks. Appends after this fail with [`StoreError::Closed`].
    pub async fn close(self) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        inner.closing.set(true);
        inner.writer_wake.notify_all();
        inner.progress.notify_all();
        inner
            .progress
            .wait_for(|| {
                (inner.writer_done.get()
                    && inner.syncer_done.get()
                    && inner.zeroer_done.get()
                    && inner.periodic_done.get())
                .then_some(())
            })
            .await;
        if let Some(cause) = inner.failure.borrow().clone() {
            return Err(StoreError::ReadOnly { cause });
        }
        flush::sync_round(&inner).await?;
        // The slot table of the index file being filled too, so the next open reads it
        // instead of rebuilding it from the file's entries.
        let index = inner.state.borrow().index.clone();
        index.flush(true).await?;
        flush::flush_derived(&inner).await?;
        let end = {
            let st = inner.state.borrow();
            assert_eq!(st.log.flushed, st.log.end, "close leaves nothing unflushed");
            st.log.end
        };
        let cp = inner
            .last_checkpoint
            .get()
            .expect("flush_derived wrote a checkpoint");
        assert_eq!(
            cp.log_offset, end,
            "the final checkpoint covers the whole log"
        );
        checkpoint::write(&inner.clean_marker_path(), cp).await
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Without close(): stop the background tasks (whatever is unwritten is lost, as in a crash).
        self.inner.closing.set(true);
        self.inner.writer_wake.notify_all();
        self.inner.progress.notify_all();
    }
}
