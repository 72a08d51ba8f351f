//! The two header serializations: JSON (reference §1.3) and ROCKETMQ binary (§1.4).
//!
//! Both decode into [`DecodedHeader`] (everything of a command but its body and serialize
//! type) and encode straight into the caller's buffer.

pub(crate) mod binary;
pub(crate) mod json;

use crate::command::{ExtFields, LanguageCode};

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
