//! The two header serializations: JSON (reference §1.3) and ROCKETMQ binary (§1.4).
//!
//! Both decode into [`DecodedHeader`] (everything of a command but its body and serialize
//! type) and encode straight into the caller's buffer.

pub(crate) mod binary;
pub(crate) mod json;
mod json_scan;

use crate::command::{ExtFields, LanguageCode};

/// Room reserved for ext fields on the first entry: a SEND_MESSAGE_V2 header has up to 14,
/// so one allocation covers nearly every header, and a header without ext fields costs none.
pub(crate) const TYPICAL_EXT_ENTRIES: usize = 16;
/// Room reserved for the ext fields' text on the first entry, when its size is not known
/// (a response being built): the keys and values of a typical send response fit.
pub(crate) const TYPICAL_EXT_TEXT_BYTES: usize = 256;

/// The header part of a command, as either serialization carries it.
#[derive(Debug)]
pub(crate) struct DecodedHeader {
    pub code: i32,
    pub language: LanguageCode,
    pub version: i32,
    pub opaque: i32,
    pub flag: i32,
    pub remark: Option<String>,
    pub ext_fields: ExtFields,
}

impl DecodedHeader {
    /// What a header missing every field means: a fresh Java `RemotingCommand` is JAVA with
    /// zeros.
    pub(crate) fn java_defaults() -> Self {
        DecodedHeader {
            code: 0,
            language: LanguageCode::Java,
            version: 0,
            opaque: 0,
            flag: 0,
            remark: None,
            ext_fields: ExtFields::new(),
        }
    }
}
