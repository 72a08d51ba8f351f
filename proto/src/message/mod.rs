//! The stored-message record (RocketMQ commit-log format), properties, batch bodies, message ids.
//!
//! Everything here is pure byte work (reference §3–4):
//!
//! * [`record`]: the stored record of reference §3.1 — [`Record::encode`] writes magic V1 with IPv4
//!   hosts into a caller buffer whose size [`Record::encoded_len`] computes first;
//!   [`DecodedRecord::decode`] reads V1 and V2, IPv4 and IPv6 hosts, borrowing from the input.
//! * [`properties`]: the `name 0x01 value 0x02` properties string (§3.4).
//! * [`batch`]: the client batch body (§3.6) as a borrowing iterator.
//! * [`ids`]: UNIQ_KEY generation (§4.1), offsetMsgId (§4.2), the Java `String.hashCode` tag hash.
//!
//! Decoding never copies; encoding never allocates.

pub mod batch;
pub mod ids;
pub mod properties;
pub mod record;

pub use batch::{BatchItem, BatchIter};
pub use ids::{
    decode_offset_msg_id, encode_offset_msg_id, tag_hash, IdError, OffsetMsgId, UniqKeyGenerator,
};
pub use properties::{
    encode_properties, find_properties, find_property, properties_len, push_property,
    PropertiesIter,
};
pub use record::{
    body_crc, peek_header, store_timestamp_pos, DecodedRecord, Magic, Record, RecordError,
};

/// Magic code of a V1 stored record (1-byte topic length).
pub const MAGIC_V1: u32 = 0xDAA3_20A7;
/// Magic code of a V2 stored record (2-byte topic length).
pub const MAGIC_V2: u32 = 0xDAA3_20AB;
/// Magic code of the end-of-segment filler record (`TOTALSIZE`, `MAGICCODE`, then nothing).
pub const MAGIC_BLANK: u32 = 0xCBD4_3194;

/// Fixed overhead of a V1 record with IPv4 hosts: 91 bytes plus body, topic and properties.
pub const RECORD_OVERHEAD_V1_IPV4: usize = 91;
/// Longest topic a V1 record can carry (its length is one signed byte).
pub const MAX_TOPIC_LEN_V1: usize = 127;
/// Longest properties string (its length is a signed short).
pub const MAX_PROPERTIES_LEN: usize = 32_767;

/// `MessageSysFlag` bits (reference §3.2).
pub mod sysflag {
    /// The body is compressed.
    pub const COMPRESSED: i32 = 0x1;
    /// Topic filter type MULTI_TAG.
    pub const MULTI_TAGS: i32 = 0x2;
    /// Mask of the two transaction bits.
    pub const TRANSACTION_MASK: i32 = 0xC;
    /// Not a transactional record.
    pub const TRANSACTION_NOT_TYPE: i32 = 0x0;
    /// Half (prepared) transactional record.
    pub const TRANSACTION_PREPARED_TYPE: i32 = 0x4;
    /// Committed transactional record.
    pub const TRANSACTION_COMMIT_TYPE: i32 = 0x8;
    /// Rolled-back transactional record.
    pub const TRANSACTION_ROLLBACK_TYPE: i32 = 0xC;
    /// BORNHOST is IPv6 (20 bytes).
    pub const BORNHOST_V6: i32 = 0x10;
    /// STOREHOST is IPv6 (20 bytes).
    pub const STOREHOST_V6: i32 = 0x20;
    /// Inner batch must be unwrapped.
    pub const NEED_UNWRAP: i32 = 0x40;
    /// Inner batch record.
    pub const INNER_BATCH: i32 = 0x80;
    /// Mask of the compression type bits.
    pub const COMPRESSION_TYPE_MASK: i32 = 0x700;
    /// LZ4 compression.
    pub const COMPRESSION_LZ4: i32 = 0x100;
    /// ZSTD compression.
    pub const COMPRESSION_ZSTD: i32 = 0x200;
    /// ZLIB compression.
    pub const COMPRESSION_ZLIB: i32 = 0x300;

    /// The transaction type bits of `sys_flag`.
    pub fn transaction_type(sys_flag: i32) -> i32 {
        sys_flag & TRANSACTION_MASK
    }
}

/// Property names (`MessageConst`, reference §3.5).
pub mod property {
    pub const TAGS: &str = "TAGS";
    pub const KEYS: &str = "KEYS";
    pub const UNIQ_KEY: &str = "UNIQ_KEY";
    pub const WAIT: &str = "WAIT";
    pub const DELAY: &str = "DELAY";
    pub const TIMER_DELIVER_MS: &str = "TIMER_DELIVER_MS";
    pub const TIMER_DELAY_SEC: &str = "TIMER_DELAY_SEC";
    pub const TIMER_DELAY_MS: &str = "TIMER_DELAY_MS";
    pub const TIMER_OUT_MS: &str = "TIMER_OUT_MS";
    pub const TIMER_ENQUEUE_MS: &str = "TIMER_ENQUEUE_MS";
    pub const TIMER_DEQUEUE_MS: &str = "TIMER_DEQUEUE_MS";
    pub const REAL_TOPIC: &str = "REAL_TOPIC";
    pub const REAL_QID: &str = "REAL_QID";
    pub const RETRY_TOPIC: &str = "RETRY_TOPIC";
    pub const ORIGIN_MESSAGE_ID: &str = "ORIGIN_MESSAGE_ID";
    pub const RECONSUME_TIME: &str = "RECONSUME_TIME";
    pub const MAX_RECONSUME_TIMES: &str = "MAX_RECONSUME_TIMES";
    pub const TRAN_MSG: &str = "TRAN_MSG";
    pub const PRODUCER_GROUP: &str = "PGROUP";
    pub const TRANSACTION_ID: &str = "__transactionId__";
    pub const TRANSACTION_CHECK_TIMES: &str = "TRANSACTION_CHECK_TIMES";
    pub const TRAN_PREPARED_QUEUE_OFFSET: &str = "TRAN_PREPARED_QUEUE_OFFSET";
    pub const CHECK_IMMUNITY_TIME_IN_SECONDS: &str = "CHECK_IMMUNITY_TIME_IN_SECONDS";
    pub const MIN_OFFSET: &str = "MIN_OFFSET";
    pub const MAX_OFFSET: &str = "MAX_OFFSET";
    pub const CLUSTER: &str = "CLUSTER";
    pub const MSG_REGION: &str = "MSG_REGION";
    pub const TRACE_ON: &str = "TRACE_ON";
    pub const INSTANCE_ID: &str = "INSTANCE_ID";
    pub const CONSUME_START_TIME: &str = "CONSUME_START_TIME";
    pub const CORRELATION_ID: &str = "CORRELATION_ID";
    pub const REPLY_TO_CLIENT: &str = "REPLY_TO_CLIENT";
    pub const TTL: &str = "TTL";
    pub const MSG_TYPE: &str = "MSG_TYPE";
    pub const SHARDING_KEY: &str = "__SHARDINGKEY";
    pub const INNER_NUM: &str = "INNER_NUM";
    pub const INNER_BASE: &str = "INNER_BASE";
    pub const CRC32: &str = "__CRC32#";
    pub const POP_CK: &str = "POP_CK";
    pub const FIRST_POP_TIME: &str = "1ST_POP_TIME";
}
