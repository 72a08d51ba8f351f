//! SEND_MESSAGE (10), SEND_MESSAGE_V2 (310), SEND_BATCH_MESSAGE (320) headers
//! (reference §2.3).
//!
//! One request struct, two spellings: code 10 uses Java's long field names, codes 310/320 the
//! one-letter names `a`..`n`. Decoding accepts either spelling for any code (short names when
//! `a` is present, long names otherwise): C++ sends 310 for everything, Go sends 10 with `bname`.
//! Whether the body is a batch is decided by the `batch`/`m` flag, never by the code.

use super::{command_header, field, CommandHeader, ExtFields, HeaderError, HeaderField};

/// The `MSG_REGION` value a Java broker answers with by default.
pub const DEFAULT_MSG_REGION: &str = "DefaultRegion";

/// A send request header, whichever spelling it arrived in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendMessageRequestHeader {
    pub producer_group: String,
    pub topic: String,
    /// Template for auto-creation, normally `TBW102`.
    pub default_topic: String,
    /// Queue count for auto-creation (client default 4).
    pub default_topic_queue_nums: i32,
    /// Target queue; negative lets the broker pick.
    pub queue_id: i32,
    /// Message sysflag bits (compression, transaction type).
    pub sys_flag: i32,
    /// Client wall clock, ms.
    pub born_timestamp: i64,
    /// User flag, stored verbatim.
    pub flag: i32,
    /// Properties string (name 0x01 value 0x02 ...).
    pub properties: Option<String>,
    pub reconsume_times: Option<i32>,
    pub unit_mode: Option<bool>,
    pub max_reconsume_times: Option<i32>,
    /// The body is a batch (reference §3.6).
    pub batch: Option<bool>,
    pub broker_name: Option<String>,
}

/// The field names of one spelling, in struct order.
pub(crate) struct SendFieldNames {
    producer_group: &'static str,
    pub(crate) topic: &'static str,
    pub(crate) default_topic: &'static str,
    pub(crate) default_topic_queue_nums: &'static str,
    pub(crate) queue_id: &'static str,
    sys_flag: &'static str,
    born_timestamp: &'static str,
    flag: &'static str,
    properties: &'static str,
    reconsume_times: &'static str,
    unit_mode: &'static str,
    max_reconsume_times: &'static str,
    batch: &'static str,
    broker_name: &'static str,
}

const LONG_NAMES: SendFieldNames = SendFieldNames {
    producer_group: "producerGroup",
    topic: "topic",
    default_topic: "defaultTopic",
    default_topic_queue_nums: "defaultTopicQueueNums",
    queue_id: "queueId",
    sys_flag: "sysFlag",
    born_timestamp: "bornTimestamp",
    flag: "flag",
    properties: "properties",
    reconsume_times: "reconsumeTimes",
    unit_mode: "unitMode",
    max_reconsume_times: "maxReconsumeTimes",
    batch: "batch",
    broker_name: "brokerName",
};

const SHORT_NAMES: SendFieldNames = SendFieldNames {
    producer_group: "a",
    topic: "b",
    default_topic: "c",
    default_topic_queue_nums: "d",
    queue_id: "e",
    sys_flag: "f",
    born_timestamp: "g",
    flag: "h",
    properties: "i",
    reconsume_times: "j",
    unit_mode: "k",
    max_reconsume_times: "l",
    batch: "m",
    broker_name: "n",
};

/// The spelling a send header uses: short names when `a` is present (C++ sends 310 with either
/// spelling; Go sends 10 with long names).
pub(crate) fn send_field_names(ext: &ExtFields) -> &'static SendFieldNames {
    if ext.contains_key(SHORT_NAMES.producer_group) {
        &SHORT_NAMES
    } else {
        &LONG_NAMES
    }
}

/// The 5.x `RpcRequestHeader` broker-name field, sent by Go alongside the long names.
const BNAME: &str = "bname";

impl SendMessageRequestHeader {
    /// Whether the body is a batch: the `batch`/`m` flag, whatever the request code.
    pub fn is_batch(&self) -> bool {
        self.batch.unwrap_or(false)
    }

    /// Reads either spelling: short names when `a` is present, long names otherwise.
    pub fn read_any(ext: &ExtFields) -> Result<Self, HeaderError> {
        Self::read_with(ext, send_field_names(ext))
    }

    /// Writes the short names `a`..`n` (codes 310 and 320).
    pub fn write_v2(&self, ext: &mut ExtFields) {
        self.write_with(ext, &SHORT_NAMES);
    }

    /// Writes the long names (code 10).
    pub fn write_v1(&self, ext: &mut ExtFields) {
        self.write_with(ext, &LONG_NAMES);
    }

    fn read_with(ext: &ExtFields, names: &SendFieldNames) -> Result<Self, HeaderError> {
        let broker_name = match field::opt_string(ext, names.broker_name) {
            Some(name) => Some(name),
            None => field::opt_string(ext, BNAME),
        };
        Ok(SendMessageRequestHeader {
            producer_group: field::string(ext, names.producer_group)?,
            topic: field::string(ext, names.topic)?,
            default_topic: field::string(ext, names.default_topic)?,
            default_topic_queue_nums: field::i32(ext, names.default_topic_queue_nums)?,
            queue_id: field::i32(ext, names.queue_id)?,
            sys_flag: field::i32(ext, names.sys_flag)?,
            born_timestamp: field::i64(ext, names.born_timestamp)?,
            flag: field::i32(ext, names.flag)?,
            properties: field::opt_string(ext, names.properties),
            reconsume_times: field::opt_i32(ext, names.reconsume_times)?,
            unit_mode: field::opt_bool(ext, names.unit_mode),
            max_reconsume_times: field::opt_i32(ext, names.max_reconsume_times)?,
            batch: field::opt_bool(ext, names.batch),
            broker_name,
        })
    }

    fn write_with(&self, ext: &mut ExtFields, names: &SendFieldNames) {
        self.producer_group.write(ext, names.producer_group);
        self.topic.write(ext, names.topic);
        self.default_topic.write(ext, names.default_topic);
        self.default_topic_queue_nums
            .write(ext, names.default_topic_queue_nums);
        self.queue_id.write(ext, names.queue_id);
        self.sys_flag.write(ext, names.sys_flag);
        self.born_timestamp.write(ext, names.born_timestamp);
        self.flag.write(ext, names.flag);
        self.properties.write(ext, names.properties);
        self.reconsume_times.write(ext, names.reconsume_times);
        self.unit_mode.write(ext, names.unit_mode);
        self.max_reconsume_times
            .write(ext, names.max_reconsume_times);
        self.batch.write(ext, names.batch);
        self.broker_name.write(ext, names.broker_name);
    }
}

/// The long-name spelling (SEND_MESSAGE, code 10). Reading accepts either spelling.
impl CommandHeader for SendMessageRequestHeader {
    fn write_to(&self, ext: &mut ExtFields) {
        self.write_v1(ext);
    }
    fn read_from(ext: &ExtFields) -> Result<Self, HeaderError> {
        Self::read_any(ext)
    }
}

/// The short-name spelling (SEND_MESSAGE_V2 310, SEND_BATCH_MESSAGE 320). Reading accepts
/// either spelling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendMessageRequestHeaderV2(pub SendMessageRequestHeader);

impl CommandHeader for SendMessageRequestHeaderV2 {
    fn write_to(&self, ext: &mut ExtFields) {
        self.0.write_v2(ext);
    }
    fn read_from(ext: &ExtFields) -> Result<Self, HeaderError> {
        SendMessageRequestHeader::read_any(ext).map(SendMessageRequestHeaderV2)
    }
}

command_header! {
    /// A send response. `msg_id`, `queue_id` and `queue_offset` are required: the Java client
    /// unboxes them on every stored response (reference §8.2). `msg_region` and `trace_on`
    /// are the `MSG_REGION`/`TRACE_ON` ext fields a Java broker adds; use
    /// [`SendMessageResponseHeader::new`] to get them.
    pub struct SendMessageResponseHeader {
        /// offsetMsgId of the stored message; for a batch, all of them joined with `,`.
        msg_id: String = "msgId",
        queue_id: i32 = "queueId",
        /// Consume-queue offset of the (first) stored message.
        queue_offset: i64 = "queueOffset",
        /// The message's UNIQ_KEY (transactional producers need it).
        transaction_id: Option<String> = "transactionId",
        batch_uniq_id: Option<String> = "batchUniqId",
        recall_handle: Option<String> = "recallHandle",
        msg_region: Option<String> = "MSG_REGION",
        trace_on: Option<bool> = "TRACE_ON",
    }
}

impl SendMessageResponseHeader {
    /// A response as a Java broker writes it: region `DefaultRegion`, trace on.
    pub fn new(msg_id: String, queue_id: i32, queue_offset: i64) -> Self {
        SendMessageResponseHeader {
            msg_id,
            queue_id,
            queue_offset,
            transaction_id: None,
            batch_uniq_id: None,
            recall_handle: None,
            msg_region: Some(DEFAULT_MSG_REGION.to_string()),
            trace_on: Some(true),
        }
    }
}
