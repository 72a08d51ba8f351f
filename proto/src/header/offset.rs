//! Offset requests (reference §2.5): QUERY/UPDATE_CONSUMER_OFFSET, GET_MAX/MIN_OFFSET,
//! SEARCH_OFFSET_BY_TIMESTAMP, GET_EARLIEST_MSG_STORETIME.

use super::{command_header, field, ExtFields, HeaderError, HeaderField};

command_header! {
    /// QUERY_CONSUMER_OFFSET (14) request.
    pub struct QueryConsumerOffsetRequestHeader {
        consumer_group: String = "consumerGroup",
        topic: String = "topic",
        queue_id: i32 = "queueId",
        /// `Some(false)` asks for QUERY_NOT_FOUND rather than offset 0 when nothing is stored.
        set_zero_if_not_found: Option<bool> = "setZeroIfNotFound",
    }
}

command_header! {
    /// QUERY_CONSUMER_OFFSET (14) response: the committed (next to consume) offset.
    pub struct QueryConsumerOffsetResponseHeader {
        offset: i64 = "offset",
    }
}

command_header! {
    /// UPDATE_CONSUMER_OFFSET (15) request, usually oneway.
    pub struct UpdateConsumerOffsetRequestHeader {
        consumer_group: String = "consumerGroup",
        topic: String = "topic",
        queue_id: i32 = "queueId",
        commit_offset: i64 = "commitOffset",
    }
}

command_header! {
    /// GET_MAX_OFFSET (30) request.
    pub struct GetMaxOffsetRequestHeader {
        topic: String = "topic",
        queue_id: i32 = "queueId",
        /// Only committed (flushed/replicated) data counts; Java's default is true.
        committed: bool = "committed" or true,
    }
}

command_header! {
    /// GET_MAX_OFFSET (30) response: the next offset to be written.
    pub struct GetMaxOffsetResponseHeader {
        offset: i64 = "offset",
    }
}

command_header! {
    /// GET_MIN_OFFSET (31) request.
    pub struct GetMinOffsetRequestHeader {
        topic: String = "topic",
        queue_id: i32 = "queueId",
    }
}

command_header! {
    /// GET_MIN_OFFSET (31) response.
    pub struct GetMinOffsetResponseHeader {
        offset: i64 = "offset",
    }
}

/// Which entry SEARCH_OFFSET_BY_TIMESTAMP returns when several match.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BoundaryType {
    /// The first entry stored at or after the timestamp (the default).
    #[default]
    Lower,
    /// The last entry stored at or before the timestamp.
    Upper,
}

impl BoundaryType {
    /// The Java enum name.
    pub const fn name(self) -> &'static str {
        match self {
            BoundaryType::Lower => "LOWER",
            BoundaryType::Upper => "UPPER",
        }
    }

    /// As Java's `BoundaryType.getType`: `UPPER` in any case is Upper, anything else Lower.
    pub fn from_name(name: &str) -> Self {
        if name.trim().eq_ignore_ascii_case("UPPER") {
            BoundaryType::Upper
        } else {
            BoundaryType::Lower
        }
    }
}

impl HeaderField for Option<BoundaryType> {
    fn read(ext: &ExtFields, name: &'static str) -> Result<Self, HeaderError> {
        Ok(field::opt_string(ext, name).map(|v| BoundaryType::from_name(&v)))
    }
    fn write(&self, ext: &mut ExtFields, name: &'static str) {
        field::put_opt(ext, name, self.map(BoundaryType::name));
    }
}

impl HeaderField for BoundaryType {
    fn read(ext: &ExtFields, name: &'static str) -> Result<Self, HeaderError> {
        Option::<BoundaryType>::read(ext, name)?.ok_or(HeaderError::Missing { field: name })
    }
    fn write(&self, ext: &mut ExtFields, name: &'static str) {
        field::put(ext, name, self.name());
    }
}

command_header! {
    /// SEARCH_OFFSET_BY_TIMESTAMP (29) request.
    pub struct SearchOffsetRequestHeader {
        topic: String = "topic",
        queue_id: i32 = "queueId",
        /// Milliseconds since the epoch.
        timestamp: i64 = "timestamp",
        boundary_type: BoundaryType = "boundaryType" or BoundaryType::Lower,
    }
}

command_header! {
    /// SEARCH_OFFSET_BY_TIMESTAMP (29) response.
    pub struct SearchOffsetResponseHeader {
        offset: i64 = "offset",
    }
}

command_header! {
    /// GET_EARLIEST_MSG_STORETIME (32) request.
    pub struct GetEarliestMsgStoretimeRequestHeader {
        topic: String = "topic",
        queue_id: i32 = "queueId",
    }
}

command_header! {
    /// GET_EARLIEST_MSG_STORETIME (32) response: store time of the queue's first message, ms.
    pub struct GetEarliestMsgStoretimeResponseHeader {
        timestamp: i64 = "timestamp",
    }
}
