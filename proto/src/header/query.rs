//! QUERY_MESSAGE (12) and VIEW_MESSAGE_BY_ID (33) headers (reference §2.9).

use super::{command_header, field, CommandHeader, ExtFields, HeaderError};

/// The ext field that marks a QUERY_MESSAGE key as a UNIQ_KEY rather than one of `KEYS`.
pub const UNIQUE_KEY_QUERY_FIELD: &str = "_UNIQUE_KEY_QUERY";

/// QUERY_MESSAGE request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryMessageRequestHeader {
    pub topic: String,
    pub key: String,
    pub max_num: i32,
    pub begin_timestamp: i64,
    pub end_timestamp: i64,
    /// From the `_UNIQUE_KEY_QUERY` ext field: `key` is a UNIQ_KEY. Absent means false.
    pub unique_key_query: bool,
}

impl CommandHeader for QueryMessageRequestHeader {
    fn write_to(&self, ext: &mut ExtFields) {
        field::put(ext, "topic", &self.topic);
        field::put(ext, "key", &self.key);
        field::put_display(ext, "maxNum", self.max_num);
        field::put_display(ext, "beginTimestamp", self.begin_timestamp);
        field::put_display(ext, "endTimestamp", self.end_timestamp);
        field::put_display(ext, UNIQUE_KEY_QUERY_FIELD, self.unique_key_query);
    }

    fn read_from(ext: &ExtFields) -> Result<Self, HeaderError> {
        Ok(QueryMessageRequestHeader {
            topic: field::string(ext, "topic")?,
            key: field::string(ext, "key")?,
            max_num: field::i32(ext, "maxNum")?,
            begin_timestamp: field::i64(ext, "beginTimestamp")?,
            end_timestamp: field::i64(ext, "endTimestamp")?,
            unique_key_query: field::opt_bool(ext, UNIQUE_KEY_QUERY_FIELD).unwrap_or(false),
        })
    }
}

command_header! {
    /// QUERY_MESSAGE response; the body is the matching stored records.
    pub struct QueryMessageResponseHeader {
        index_last_update_timestamp: i64 = "indexLastUpdateTimestamp",
        index_last_update_phyoffset: i64 = "indexLastUpdatePhyoffset",
    }
}

command_header! {
    /// VIEW_MESSAGE_BY_ID request: a commit-log offset decoded from an offsetMsgId.
    pub struct ViewMessageRequestHeader {
        offset: i64 = "offset",
        topic: Option<String> = "topic",
    }
}
