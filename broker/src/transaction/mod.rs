//! Transactional messages (RocketMQ's half / op design, Java `broker/transaction/` and
//! `EndTransactionProcessor`), one [`TransactionService`] per shard.
//!
//! * A half message is stored in the log of the shard that owns its real (topic, queue), in
//!   `RMQ_SYS_TRANS_HALF_TOPIC` queue 0, with REAL_TOPIC / REAL_QID / PGROUP ([`half`]).
//! * END_TRANSACTION reaches that same shard (the commit-log offset's shard bits), so a commit is
//!   a local append: the real record (sysflag TRANSACTION_COMMIT) and its op record in
//!   `RMQ_SYS_TRANS_OP_HALF_TOPIC` go into the log as one batch ([`TransactionService::end`]).
//! * Which half offsets are resolved is a bitmap window ([`window`]) rebuilt at start by
//!   replaying the op queue from the persisted op progress, so a repeated END_TRANSACTION never
//!   stores a second copy.
//! * The check task ([`check`]) asks a live producer of the group about old unresolved halves
//!   and gives up after `transactionCheckMax` checks (copy to `TRANS_CHECK_MAX_TIME_TOPIC`).
//!
//! Nothing here imports the server: the shard hands in its store and a [`check::ProducerDirectory`].

pub mod check;
pub mod half;
pub mod window;

#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::PathBuf;

use ringmq_proto::code::ResponseCode;
use ringmq_proto::header::{EndTransactionRequestHeader, TransactionResolution};
use ringmq_proto::message::{sysflag, DecodedRecord, Record};
use serde::{Deserialize, Serialize};

pub use crate::metadata::topics::{
    TRANS_CHECK_MAX_TIME_TOPIC as CHECK_MAX_TOPIC, TRANS_HALF_TOPIC as HALF_TOPIC,
    TRANS_OP_HALF_TOPIC as OP_TOPIC,
};
use crate::store::GetRequest;
use crate::store::{offset, AppendOutcome, Store, StoreError};
use half::SYSTEM_QUEUE_ID;
use window::Window;

/// Records read per store call while replaying the op queue or scanning half messages.
pub const SCAN_BATCH_RECORDS: u32 = 64;
/// Bytes read per store call while scanning (the first record is returned even if larger).
pub const SCAN_BATCH_BYTES: u32 = 1024 * 1024;
/// Java's remark when the commit-log offset names no half message.
pub const REMARK_NOT_FOUND: &str = "Find prepared transaction message failed";

/// Broker keys `transactionCheckInterval`, `transactionTimeOut`, `transactionCheckMax`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionConfig {
    pub check_interval_ms: u64,
    /// A half message younger than this (store time) is not checked yet.
    pub timeout_ms: u64,
    /// Checks before a half message is given up.
    pub check_max: u32,
}

impl TransactionConfig {
    pub fn from_broker(config: &crate::config::BrokerConfig) -> TransactionConfig {
        TransactionConfig {
            check_interval_ms: config.transaction_check_interval_ms,
            timeout_ms: config.transaction_timeout_ms,
            check_max: config.transaction_check_max,
        }
    }
}

impl Default for TransactionConfig {
    fn default() -> Self {
        TransactionConfig {
            check_interval_ms: 60_000,
            timeout_ms: 6_000,
            check_max: 15,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransactionError {
    #[error("half message has no {0} property")]
    MissingProperty(&'static str),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("transaction progress file {path}: {cause}")]
    Progress { path: PathBuf, cause: String },
}

/// Runtime-info counters of one shard.
#[derive(Debug, Default)]
pub struct TransactionCounters {
    pub half: Cell<u64>,
    pub committed: Cell<u64>,
    pub rolled_back: Cell<u64>,
    pub checked: Cell<u64>,
    pub given_up: Cell<u64>,
}

/// A copy of [`TransactionCounters`], summed over shards for GET_BROKER_RUNTIME_INFO.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CounterSnapshot {
    pub half: u64,
    pub committed: u64,
    pub rolled_back: u64,
    pub checked: u64,
    pub given_up: u64,
}

impl CounterSnapshot {
    pub fn add(&mut self, o: &CounterSnapshot) {
        self.half += o.half;
        self.committed += o.committed;
        self.rolled_back += o.rolled_back;
        self.checked += o.checked;
        self.given_up += o.given_up;
    }

    /// Runtime-info keys and values (ringmq's names; Java has no per-state counters).
    pub fn entries(&self) -> [(&'static str, u64); 5] {
        [
            ("ringmqTransactionHalf", self.half),
            ("ringmqTransactionCommitted", self.committed),
            ("ringmqTransactionRolledBack", self.rolled_back),
            ("ringmqTransactionChecked", self.checked),
            ("ringmqTransactionGivenUp", self.given_up),
        ]
    }
}

/// The persisted progress: `<root>/config/transaction-shard-<k>.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Progress {
    #[serde(rename = "halfOffset")]
    half_offset: u64,
    #[serde(rename = "opOffset")]
    op_offset: u64,
    #[serde(rename = "checkTimes", default)]
    check_times: BTreeMap<u64, u32>,
}

/// What END_TRANSACTION did.
#[derive(Debug)]
pub enum EndOutcome {
    /// Committed or rolled back now, or already before (a repeat stores nothing).
    Done,
    /// UNKNOWN (or any other value): nothing changes; Java sends no response.
    Ignored,
    /// Refused with Java's code and remark.
    Refused(ResponseCode, String),
    /// The store failed; nothing was resolved.
    StoreFailed(StoreError),
}

/// One shard's transaction state. Lives on the shard's executor (`!Send`).
pub struct TransactionService {
    shard_id: u8,
    config: TransactionConfig,
    progress_path: PathBuf,
    window: RefCell<Window>,
    counters: TransactionCounters,
    /// (half base, op floor, check-times count) last written, to skip unchanged writes.
    persisted: Cell<(u64, u64, usize)>,
    /// Resolutions claimed in the window whose append has not completed. Decremented only when
    /// the append returns, so one abandoned by a cancelled task (shutdown) keeps the progress
    /// file at its last consistent state and the half is checked again after the restart.
    claims_in_flight: Cell<usize>,
}

impl TransactionService {
    /// Loads the progress file and replays the op queue from its op offset.
    pub async fn open(
        store: &Store,
        store_root: &std::path::Path,
        shard_id: u8,
        config: TransactionConfig,
    ) -> Result<TransactionService, TransactionError> {
        let progress_path = store_root
            .join("config")
            .join(format!("transaction-shard-{shard_id}.json"));
        let progress = read_progress(&progress_path)?;
        let clamp = |topic: &str, v: u64| {
            v.clamp(
                store.min_offset(topic, SYSTEM_QUEUE_ID),
                store.max_offset(topic, SYSTEM_QUEUE_ID),
            )
        };
        let base = clamp(HALF_TOPIC, progress.half_offset);
        let op_floor = clamp(OP_TOPIC, progress.op_offset);
        let mut window = Window::new(base, op_floor);
        replay_ops(store, &mut window, op_floor).await?;
        for (half, times) in progress.check_times {
            if !window.is_resolved(half) {
                window.set_check_times(half, times);
            }
        }
        let service = TransactionService {
            shard_id,
            config,
            progress_path,
            window: RefCell::new(window),
            counters: TransactionCounters::default(),
            persisted: Cell::new((u64::MAX, u64::MAX, 0)),
            claims_in_flight: Cell::new(0),
        };
        Ok(service)
    }

    pub fn config(&self) -> &TransactionConfig {
        &self.config
    }

    pub fn counters(&self) -> CounterSnapshot {
        let c = &self.counters;
        CounterSnapshot {
            half: c.half.get(),
            committed: c.committed.get(),
            rolled_back: c.rolled_back.get(),
            checked: c.checked.get(),
            given_up: c.given_up.get(),
        }
    }

    /// Stores `real` (a send to its real topic and queue, properties as the broker stores them)
    /// as a half message (Java `parseHalfMessageInner`). The outcome's queue offset is the
    /// half-queue offset clients echo as `tranStateTableOffset`.
    pub async fn append_half(
        &self,
        store: &Store,
        real: &Record<'_>,
        producer_group: &str,
    ) -> Result<AppendOutcome, StoreError> {
        let mut props = Vec::with_capacity(real.properties.len() + 64);
        props.extend_from_slice(real.properties);
        half::add_half_properties(&mut props, &real.topic_str(), real.queue_id, producer_group);
        let rec = Record {
            topic: HALF_TOPIC.as_bytes(),
            queue_id: SYSTEM_QUEUE_ID,
            sys_flag: real.sys_flag & !sysflag::TRANSACTION_MASK,
            properties: &props,
            ..*real
        };
        // Read before the append: every op record stored later has a queue offset at or past it.
        let op_len = store.max_offset(OP_TOPIC, SYSTEM_QUEUE_ID);
        let outcome = store.append(&[rec]).await?;
        if let Some(r) = outcome.records.first() {
            self.window
                .borrow_mut()
                .note_half_appended(r.queue_offset, op_len);
            bump(&self.counters.half, 1);
        }
        Ok(outcome)
    }

    /// Half messages stored and not resolved yet.
    pub fn pending(&self, store: &Store) -> u64 {
        let w = self.window.borrow();
        let max = store.max_offset(HALF_TOPIC, SYSTEM_QUEUE_ID);
        (w.base()..max).filter(|&h| !w.is_resolved(h)).count() as u64
    }

    /// The progress file's path, content and the state it records, when it changed since the
    /// last write (and no resolution is half-way through an append).
    fn progress_snapshot(&self) -> Option<(PathBuf, Vec<u8>, PersistedState)> {
        if self.claims_in_flight.get() > 0 {
            return None;
        }
        let w = self.window.borrow();
        let now = (w.base(), w.op_floor(), w.all_check_times().count());
        if now == self.persisted.get() && now.2 == 0 {
            return None;
        }
        let progress = Progress {
            half_offset: w.base(),
            op_offset: w.op_floor(),
            check_times: w.all_check_times().collect(),
        };
        let bytes = serde_json::to_vec(&progress).expect("plain numbers serialize");
        Some((self.progress_path.clone(), bytes, now))
    }

    fn progress_error(&self, cause: std::io::Error) -> TransactionError {
        TransactionError::Progress {
            path: self.progress_path.clone(),
            cause: cause.to_string(),
        }
    }

    /// Writes the progress file when it changed, blocking (start-up and tests).
    pub fn persist(&self) -> Result<(), TransactionError> {
        let Some((path, bytes, now)) = self.progress_snapshot() else {
            return Ok(());
        };
        crate::persist::write_file_atomically(&path, &bytes).map_err(|e| self.progress_error(e))?;
        self.persisted.set(now);
        Ok(())
    }

    /// Writes the progress file when it changed, on the writer thread: the shard's thread never
    /// waits in fsync (design §9).
    pub async fn persist_with(
        &self,
        writer: &crate::persist::FileWriter,
    ) -> Result<(), TransactionError> {
        let Some((path, bytes, now)) = self.progress_snapshot() else {
            return Ok(());
        };
        writer
            .write(path, bytes)
            .await
            .map_err(|e| self.progress_error(e))?;
        self.persisted.set(now);
        Ok(())
    }
}

/// What a progress write recorded: half base, op floor, check-time count.
type PersistedState = (u64, u64, usize);

fn bump(c: &Cell<u64>, n: u64) {
    c.set(c.get() + n);
}

fn read_progress(path: &std::path::Path) -> Result<Progress, TransactionError> {
    let err = |cause: String| TransactionError::Progress {
        path: path.to_path_buf(),
        cause,
    };
    match crate::persist::read_optional(path).map_err(|e| err(e.to_string()))? {
        None => Ok(Progress::default()),
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| err(e.to_string())),
    }
}

/// Marks every half offset the op queue names (from `from`) as resolved.
async fn replay_ops(store: &Store, window: &mut Window, from: u64) -> Result<(), StoreError> {
    let mut next = from;
    loop {
        let got = store
            .get_messages(&GetRequest {
                topic: OP_TOPIC,
                queue_id: SYSTEM_QUEUE_ID,
                offset: next,
                max_count: SCAN_BATCH_RECORDS,
                max_bytes: SCAN_BATCH_BYTES,
                tag_hashes: None,
            })
            .await?;
        for_each_record(&got.body, |rec| {
            for half in half::parse_op_body(rec.body) {
                window.resolve(half);
            }
        });
        if got.next_begin_offset <= next || got.next_begin_offset >= got.max_offset {
            return Ok(());
        }
        next = got.next_begin_offset;
    }
}

/// Calls `f` for each record of a run of stored records (a pull body).
pub(crate) fn for_each_record(mut body: &[u8], mut f: impl FnMut(&Record<'_>)) {
    while !body.is_empty() {
        let Ok(decoded) = DecodedRecord::decode(body) else {
            return;
        };
        f(&decoded.record);
        body = &body[decoded.total_size.min(body.len())..];
    }
}

impl TransactionService {
    /// END_TRANSACTION on the shard owning `commit_log_offset` (Java `EndTransactionProcessor`).
    pub async fn end(
        &self,
        store: &Store,
        header: &EndTransactionRequestHeader,
        now_ms: i64,
    ) -> EndOutcome {
        let commit = match header.resolution() {
            TransactionResolution::Commit => true,
            TransactionResolution::Rollback => false,
            TransactionResolution::Unknown(_) => return EndOutcome::Ignored,
        };
        let raw = match self.find_half(store, header.commit_log_offset).await {
            Ok(Some(raw)) => raw,
            Ok(None) => return refused(REMARK_NOT_FOUND),
            Err(e) => return EndOutcome::StoreFailed(e),
        };
        let Ok(decoded) = DecodedRecord::decode(&raw) else {
            return refused(REMARK_NOT_FOUND);
        };
        let rec = decoded.record;
        let Ok(info) = half::half_info(&rec) else {
            return refused(REMARK_NOT_FOUND);
        };
        if info.producer_group != header.producer_group {
            return refused("The producer group wrong");
        }
        if rec.queue_offset != header.tran_state_table_offset {
            return refused("The transaction state table offset wrong");
        }
        if rec.physical_offset != header.commit_log_offset {
            return refused("The commit log offset wrong");
        }
        let half_offset = rec.queue_offset as u64;
        // Claimed before the append, so a repeat arriving meanwhile stores nothing either.
        if !self.window.borrow_mut().resolve(half_offset) {
            return EndOutcome::Done;
        }
        let commit_props;
        let mut records = Vec::with_capacity(2);
        if commit {
            commit_props = half::commit_properties(rec.properties);
            records.push(half::commit_record(&rec, &info, &commit_props));
        }
        let op_body = half_offset.to_string();
        let op_props = half::op_properties();
        let template = Record {
            born_timestamp: now_ms,
            ..rec
        };
        records.push(half::op_record(&template, op_body.as_bytes(), &op_props));
        if let Err(e) = self.append_claimed(store, &records, half_offset).await {
            return EndOutcome::StoreFailed(e);
        }
        let counter = if commit {
            &self.counters.committed
        } else {
            &self.counters.rolled_back
        };
        bump(counter, 1);
        EndOutcome::Done
    }

    /// Appends the records of a resolution claimed in the window; a failed append releases the
    /// claim, so the half is pending again.
    async fn append_claimed(
        &self,
        store: &Store,
        records: &[Record<'_>],
        half_offset: u64,
    ) -> Result<(), StoreError> {
        self.claims_in_flight.set(self.claims_in_flight.get() + 1);
        let result = store.append(records).await;
        self.claims_in_flight.set(self.claims_in_flight.get() - 1);
        if result.is_err() {
            self.window.borrow_mut().unresolve(half_offset);
        }
        result.map(|_| ())
    }

    /// The half record at a commit-log offset of this shard, if one starts there.
    async fn find_half(&self, store: &Store, offset: i64) -> Result<Option<Vec<u8>>, StoreError> {
        if offset < 0 || offset::shard_of(offset) != Some(self.shard_id) {
            return Ok(None);
        }
        let Some(raw) = store.view_message(offset as u64).await? else {
            return Ok(None);
        };
        let is_half =
            DecodedRecord::decode(&raw).is_ok_and(|d| d.record.topic == HALF_TOPIC.as_bytes());
        Ok(is_half.then_some(raw))
    }
}

fn refused(remark: &str) -> EndOutcome {
    EndOutcome::Refused(ResponseCode::SystemError, remark.to_string())
}
