//! Typed errors of the codec, one enum per operation, so callers know what to do with each.
//!
//! * [`FrameError`]: the byte stream is not a valid frame. The caller closes the connection
//!   (RocketMQ never tries to resynchronise a stream).
//! * [`EncodeError`]: a command cannot be expressed on the wire (too large, a field out of range
//!   for the binary header). Nothing was written; the caller answers or logs.
//! * [`WireHeaderError`]: the header bytes of a frame are not a valid JSON or ROCKETMQ header.
//!   Wrapped by [`FrameError::Header`].
//! * [`HeaderError`]: a typed request/response header lacks a field or holds an unparsable one.
//!   The broker answers with a RocketMQ error code and this error's text as the remark.

/// Why a frame could not be decoded. Every variant means "close this connection".
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length field is smaller than the 4-byte header-length field it must cover.
    #[error("frame length {length} is below the minimum of 4")]
    LengthTooSmall { length: i32 },
    /// The frame (length field included) is larger than [`crate::frame::FRAME_MAX_BYTES`].
    #[error("frame of {frame_bytes} bytes exceeds the cap of {max_bytes} bytes")]
    TooLarge { frame_bytes: u64, max_bytes: usize },
    /// The header length does not fit in the frame.
    #[error("header length {header_bytes} exceeds the {available_bytes} bytes left in the frame")]
    HeaderLengthExceedsFrame {
        header_bytes: usize,
        available_bytes: usize,
    },
    /// The serialize-type byte is neither 0 (JSON) nor 1 (ROCKETMQ).
    #[error("unknown serialize type byte {0}")]
    UnknownSerializeType(u8),
    /// The header bytes did not decode.
    #[error("bad command header: {0}")]
    Header(#[from] WireHeaderError),
}

/// Why a command could not be encoded. Nothing was appended to the destination buffer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodeError {
    /// A field is outside the range its wire type can carry (the ROCKETMQ header stores `code`
    /// and `version` as 16-bit shorts).
    #[error("{field} = {value} does not fit the ROCKETMQ header's 16-bit field")]
    FieldOutOfRange { field: &'static str, value: i32 },
    /// A string is longer than its length prefix can express (ROCKETMQ ext keys use a short).
    #[error("{field} of {len_bytes} bytes is longer than its length prefix allows")]
    StringTooLong {
        field: &'static str,
        len_bytes: usize,
    },
    /// The header is longer than the 24 bits of the header-length field.
    #[error("header of {header_bytes} bytes exceeds the 24-bit header length")]
    HeaderTooLarge { header_bytes: usize },
    /// The whole frame would exceed [`crate::frame::FRAME_MAX_BYTES`].
    #[error("frame of {frame_bytes} bytes exceeds the cap of {max_bytes} bytes")]
    FrameTooLarge {
        frame_bytes: usize,
        max_bytes: usize,
    },
}

/// Why the header bytes of a frame did not decode.
#[derive(Debug, thiserror::Error)]
pub enum WireHeaderError {
    /// The JSON header is not valid JSON or has a field of an impossible type.
    #[error("JSON header: {0}")]
    Json(#[from] serde_json::Error),
    /// The ROCKETMQ header ends before a field it announces.
    #[error("ROCKETMQ header truncated at {field}: need {need_bytes} bytes, have {have_bytes}")]
    Truncated {
        field: &'static str,
        need_bytes: usize,
        have_bytes: usize,
    },
    /// A ROCKETMQ length prefix is negative or larger than the header (Java rejects both).
    #[error(
        "ROCKETMQ header: {field} length {length} is invalid (header is {header_bytes} bytes)"
    )]
    BadLength {
        field: &'static str,
        length: i64,
        header_bytes: usize,
    },
    /// A ROCKETMQ string is not UTF-8.
    #[error("ROCKETMQ header: {field} is not valid UTF-8")]
    InvalidUtf8 { field: &'static str },
}

/// Why a typed header could not be read from a command's ext fields.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum HeaderError {
    /// A required field is absent.
    #[error("the header field {field} is missing")]
    Missing { field: &'static str },
    /// A field is present but its text is not a value of the field's type.
    #[error("the header field {field} has the invalid value {value:?}")]
    Invalid { field: &'static str, value: String },
}
