//! The logical remoting command (reference §1.2): what a frame carries once decoded.
//!
//! Encoding lives in [`crate::frame`] (frame layout) and `crate::serialize` (the two header
//! serializations); this module holds the data and the request/response conventions.

mod ext_fields;
mod language;

use bytes::Bytes;

pub use crate::error::EncodeError;
pub use ext_fields::ExtFields;
pub use language::{LanguageCode, SerializeType};

use crate::error::HeaderError;
use crate::header::CommandHeader;

/// The `MQVersion` ordinal ringmq puts in every command it sends: V4_9_4 (reference §1.6).
/// It is at least 232 (Java clients allow SQL92 only above it), non-zero, inside the Go
/// client's int16, and high enough that route data is standard JSON.
pub const SERVER_VERSION: i32 = 401;

/// `ResponseCode::RequestCodeNotSupported`, as a plain number for the helper below.
const REQUEST_CODE_NOT_SUPPORTED: i32 = 3;

/// Flag bit 0: the command is a response.
pub const RESPONSE_FLAG: i32 = 1;
/// Flag bit 1: the request is oneway; the receiver must not answer.
pub const ONEWAY_FLAG: i32 = 2;

/// One request or response.
#[derive(Clone, Debug, PartialEq)]
pub struct RemotingCommand {
    /// Request code ([`crate::code::RequestCode`]) or response code
    /// ([`crate::code::ResponseCode`]).
    pub code: i32,
    /// The sender's language.
    pub language: LanguageCode,
    /// The sender's `MQVersion` ordinal.
    pub version: i32,
    /// Request id; a response carries its request's opaque.
    pub opaque: i32,
    /// [`RESPONSE_FLAG`] and [`ONEWAY_FLAG`] bits.
    pub flag: i32,
    /// Error text of a response. `None` and empty are the same on the wire; decoding yields
    /// `None` for both.
    pub remark: Option<String>,
    /// Every typed header field, as text.
    pub ext_fields: ExtFields,
    /// The header serialization this command was received in, or will be sent in.
    pub serialize_type: SerializeType,
    /// The frame body, possibly empty. Decoding makes it a zero-copy slice of the read buffer.
    pub body: Bytes,
}

impl RemotingCommand {
    /// A request as ringmq sends it: JAVA, [`SERVER_VERSION`], JSON, flag 0, opaque 0 (the
    /// sender assigns the opaque).
    pub fn new_request(code: i32, ext_fields: ExtFields, body: Bytes) -> Self {
        RemotingCommand {
            code,
            language: LanguageCode::Java,
            version: SERVER_VERSION,
            opaque: 0,
            flag: 0,
            remark: None,
            ext_fields,
            serialize_type: SerializeType::Json,
            body,
        }
    }

    /// The response to `request`: same opaque, same serialization (a C++ or ali-ons client
    /// cannot read any other, reference §8.1), RESPONSE flag, no ext fields, no body.
    pub fn response_to(request: &RemotingCommand, code: i32, remark: Option<String>) -> Self {
        RemotingCommand {
            code,
            language: LanguageCode::Java,
            version: SERVER_VERSION,
            opaque: request.opaque,
            flag: RESPONSE_FLAG,
            remark,
            ext_fields: ExtFields::new(),
            serialize_type: request.serialize_type,
            body: Bytes::new(),
        }
    }

    /// The REQUEST_CODE_NOT_SUPPORTED (3) answer to `request`, with Java's remark text
    /// (reference §1.5).
    pub fn request_code_not_supported(request: &RemotingCommand) -> Self {
        let remark = format!(" request type {} not supported", request.code);
        RemotingCommand::response_to(request, REQUEST_CODE_NOT_SUPPORTED, Some(remark))
    }

    /// Whether the RESPONSE flag bit is set.
    pub fn is_response(&self) -> bool {
        self.flag & RESPONSE_FLAG != 0
    }

    /// Whether the ONEWAY flag bit is set (a request that gets no answer).
    pub fn is_oneway(&self) -> bool {
        self.flag & ONEWAY_FLAG != 0
    }

    /// Marks the request oneway.
    pub fn set_oneway(&mut self) {
        self.flag |= ONEWAY_FLAG;
    }

    /// Reads a typed header from the ext fields.
    pub fn decode_header<H: CommandHeader>(&self) -> Result<H, HeaderError> {
        H::read_from(&self.ext_fields)
    }

    /// Writes a typed header into the ext fields, replacing fields of the same name.
    pub fn set_header<H: CommandHeader>(&mut self, header: &H) {
        header.write_to(&mut self.ext_fields);
    }

    /// Builder form of setting the body.
    pub fn with_body(mut self, body: Bytes) -> Self {
        self.body = body;
        self
    }
}
