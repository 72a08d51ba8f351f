//! The store's typed errors. Each variant says what the caller should do.

use std::path::PathBuf;

use ringmq_proto::message::RecordError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A write or fdatasync failed earlier; the log accepts no more appends until restart
    /// (never retried silently). Reads still work. Answer SERVICE_NOT_AVAILABLE.
    #[error("store is read-only after an I/O failure: {cause}")]
    ReadOnly { cause: String },
    /// A file operation failed (open, read, recovery). The path says where.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The record cannot be stored as given (topic too long, properties too long, IPv6 host).
    /// Answer MESSAGE_ILLEGAL.
    #[error("invalid record: {0}")]
    InvalidRecord(#[from] RecordError),
    /// The record is larger than `max_record_bytes`. Answer MESSAGE_ILLEGAL.
    #[error("record of {size} bytes exceeds the limit of {limit}")]
    RecordTooLarge { size: usize, limit: usize },
    /// A physical offset names another shard; forward the request to that shard.
    #[error("physical offset {offset:#x} belongs to shard {owner}, not {this}")]
    WrongShard { offset: u64, owner: u8, this: u8 },
    /// Replication: raw bytes offered at the wrong position.
    #[error("raw append at {offered}, but the log ends at {end}")]
    RawOffsetMismatch { offered: u64, end: u64 },
    /// Replication: raw bytes that are not whole valid records.
    #[error("raw bytes at {offset} are not valid records: {reason}")]
    CorruptRaw { offset: u64, reason: String },
    /// The topic cannot name a queue directory. Answer MESSAGE_ILLEGAL.
    #[error("invalid topic {0:?}")]
    InvalidTopic(String),
    /// The store's configuration is unusable.
    #[error("bad store config: {0}")]
    Config(String),
    /// The store was closed.
    #[error("store is closed")]
    Closed,
}

impl StoreError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
