//! RocketMQ remoting codec.
//!
//! Architecture invariant: this crate is pure. It does no I/O, has no async code and depends on
//! no runtime, so every byte layout here can be tested on its own and reused by the broker, the
//! name server and the client alike.
//!
//! # Layout
//!
//! * [`frame`]: the frame layout; [`frame::decode_frame`] (incremental, zero-copy body) and
//!   [`RemotingCommand::encode`].
//! * [`command`]: [`RemotingCommand`] and its parts ([`ExtFields`], [`LanguageCode`],
//!   [`SerializeType`]), request/response conventions.
//! * `serialize` (private): the JSON and ROCKETMQ header serializations; [`json_text`] exposes
//!   the JSON string writer for callers that encode a header from borrowed fields.
//! * [`code`]: [`RequestCode`] and [`ResponseCode`].
//! * [`header`]: [`CommandHeader`] and a typed header for each request and response.
//! * [`error`]: one error enum per operation.
//! * [`body`]: JSON bodies (route data, heartbeat, topic config).
//! * [`message`]: the stored-message record, properties, batches, message ids.
//! * [`java_properties`]: Java `.properties` text, the config format of broker, name server
//!   and tuner (one parser for all three).
//! * [`acl`]: the ACL 1.0 request signature (HmacSHA1 over sorted ext-field values and body).

pub mod acl;
pub mod body;
pub mod code;
pub mod command;
pub mod error;
pub mod frame;
pub mod header;
pub mod java_properties;
pub mod message;
pub mod read_buffer;
mod serialize;

/// JSON text as the header encoder writes it, for hot paths that build a header straight from
/// borrowed fields (the client's send frame) and must produce the same bytes.
pub mod json_text {
    /// Appends `s` as a JSON string: `"` and `\` escaped, control characters as their short
    /// escapes or `\u00XX` (lower-case hex, as fastjson writes them), everything else verbatim.
    pub fn put_string(dst: &mut bytes::BytesMut, s: &str) {
        crate::serialize::json::put_str(dst, s);
    }
}

pub use code::{RequestCode, ResponseCode};
pub use command::{ExtFields, LanguageCode, RemotingCommand, SerializeType, SERVER_VERSION};
pub use error::{EncodeError, FrameError, HeaderError, WireHeaderError};
pub use frame::{decode_frame, FRAME_MAX_BYTES};
pub use header::CommandHeader;
