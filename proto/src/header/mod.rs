//! Typed request and response headers (reference §2).
//!
//! A header is flattened into a command's [`ExtFields`] by name, every value as text, the way
//! Java's `CommandCustomHeader` reflection does it. [`CommandHeader::read_from`] is strict about
//! what a field must be (required fields present, numbers parsable) and lenient about what real
//! clients send (surrounding whitespace, a leading `+`, extra fields).

mod admin;
mod client;
mod namesrv;
mod offset;
mod pull;
mod query;
pub mod routing;
mod send;
mod to_client;
mod topic;
mod transaction;

pub use crate::command::ExtFields;
pub use crate::error::HeaderError;
pub use admin::*;
pub use client::*;
pub use namesrv::*;
pub use offset::*;
pub use pull::*;
pub use query::*;
pub use send::*;
pub use to_client::*;
pub use topic::*;
pub use transaction::*;

/// A typed header that round-trips through [`ExtFields`].
pub trait CommandHeader: Sized {
    /// Writes every present field; absent optional fields are not written.
    fn write_to(&self, ext: &mut ExtFields);
    /// Reads the header; a missing required field is [`HeaderError::Missing`], an unparsable
    /// value [`HeaderError::Invalid`].
    fn read_from(ext: &ExtFields) -> Result<Self, HeaderError>;
}

/// A header with no fields (LOCK_BATCH_MQ, UNLOCK_BATCH_MQ, HEART_BEAT, CHECK_CLIENT_CONFIG,
/// GET_BROKER_CLUSTER_INFO, ...: their content is in the body).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EmptyHeader;

impl CommandHeader for EmptyHeader {
    fn write_to(&self, _ext: &mut ExtFields) {}
    fn read_from(_ext: &ExtFields) -> Result<Self, HeaderError> {
        Ok(EmptyHeader)
    }
}

/// A type a header field can hold: how it is read from and written to [`ExtFields`].
/// `T` is a required field (absent is [`HeaderError::Missing`]); `Option<T>` an optional one.
pub trait HeaderField: Sized {
    /// Reads the field called `name`.
    fn read(ext: &ExtFields, name: &'static str) -> Result<Self, HeaderError>;
    /// Writes the field called `name` (an absent optional writes nothing).
    fn write(&self, ext: &mut ExtFields, name: &'static str);
}

impl HeaderField for String {
    fn read(ext: &ExtFields, name: &'static str) -> Result<Self, HeaderError> {
        field::string(ext, name)
    }
    fn write(&self, ext: &mut ExtFields, name: &'static str) {
        field::put(ext, name, self);
    }
}

impl HeaderField for Option<String> {
    fn read(ext: &ExtFields, name: &'static str) -> Result<Self, HeaderError> {
        Ok(field::opt_string(ext, name))
    }
    fn write(&self, ext: &mut ExtFields, name: &'static str) {
        field::put_opt(ext, name, self.as_deref());
    }
}

macro_rules! number_field {
    ($ty:ty, $required:ident, $optional:ident) => {
        impl HeaderField for $ty {
            fn read(ext: &ExtFields, name: &'static str) -> Result<Self, HeaderError> {
                field::$required(ext, name)
            }
            fn write(&self, ext: &mut ExtFields, name: &'static str) {
                field::put_display(ext, name, self);
            }
        }

        impl HeaderField for Option<$ty> {
            fn read(ext: &ExtFields, name: &'static str) -> Result<Self, HeaderError> {
                field::$optional(ext, name)
            }
            fn write(&self, ext: &mut ExtFields, name: &'static str) {
                field::put_opt_display(ext, name, *self);
            }
        }
    };
}

number_field!(i32, i32, opt_i32);
number_field!(i64, i64, opt_i64);

impl HeaderField for bool {
    fn read(ext: &ExtFields, name: &'static str) -> Result<Self, HeaderError> {
        field::bool(ext, name)
    }
    fn write(&self, ext: &mut ExtFields, name: &'static str) {
        field::put_display(ext, name, self);
    }
}

impl HeaderField for Option<bool> {
    fn read(ext: &ExtFields, name: &'static str) -> Result<Self, HeaderError> {
        Ok(field::opt_bool(ext, name))
    }
    fn write(&self, ext: &mut ExtFields, name: &'static str) {
        field::put_opt_display(ext, name, *self);
    }
}

/// Declares a header struct whose fields map one-to-one to ext fields, and its
/// [`CommandHeader`] impl. `field: Type = "wireName"` is required when `Type` is not an
/// `Option`; `field: Type = "wireName" or default` reads an absent field as `default` (Java
/// primitives and documented defaults) and always writes it.
macro_rules! command_header {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $field:ident : $ty:ty = $wire:literal $(or $default:expr)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $crate::header::CommandHeader for $name {
            fn write_to(&self, ext: &mut $crate::command::ExtFields) {
                $($crate::header::HeaderField::write(&self.$field, ext, $wire);)*
            }

            fn read_from(ext: &$crate::command::ExtFields) -> Result<Self, $crate::error::HeaderError> {
                Ok($name {
                    $($field: command_header!(@read ext, $ty, $wire $(, $default)?),)*
                })
            }
        }
    };
    (@read $ext:ident, $ty:ty, $wire:literal) => {
        <$ty as $crate::header::HeaderField>::read($ext, $wire)?
    };
    (@read $ext:ident, $ty:ty, $wire:literal, $default:expr) => {
        <Option<$ty> as $crate::header::HeaderField>::read($ext, $wire)?.unwrap_or_else(|| $default)
    };
}
pub(crate) use command_header;

/// Field readers and writers shared by every header.
pub mod field {
    use super::{ExtFields, HeaderError};

    /// A required string field.
    pub fn string(ext: &ExtFields, field: &'static str) -> Result<String, HeaderError> {
        ext.get(field)
            .map(str::to_owned)
            .ok_or(HeaderError::Missing { field })
    }

    /// An optional string field.
    pub fn opt_string(ext: &ExtFields, field: &'static str) -> Option<String> {
        ext.get(field).map(str::to_owned)
    }

    /// A required `int` field.
    pub fn i32(ext: &ExtFields, field: &'static str) -> Result<i32, HeaderError> {
        opt_i32(ext, field)?.ok_or(HeaderError::Missing { field })
    }

    /// An optional `int` field; present but unparsable is an error.
    pub fn opt_i32(ext: &ExtFields, field: &'static str) -> Result<Option<i32>, HeaderError> {
        ext.get(field).map(|v| parse_int(field, v)).transpose()
    }

    /// A required `long` field.
    pub fn i64(ext: &ExtFields, field: &'static str) -> Result<i64, HeaderError> {
        opt_i64(ext, field)?.ok_or(HeaderError::Missing { field })
    }

    /// An optional `long` field; present but unparsable is an error.
    pub fn opt_i64(ext: &ExtFields, field: &'static str) -> Result<Option<i64>, HeaderError> {
        ext.get(field).map(|v| parse_int(field, v)).transpose()
    }

    /// A required `boolean` field.
    pub fn bool(ext: &ExtFields, field: &'static str) -> Result<bool, HeaderError> {
        opt_bool(ext, field).ok_or(HeaderError::Missing { field })
    }

    /// An optional `boolean` field. As Java's `Boolean.parseBoolean` (`true` in any case is
    /// true, any other text false, so no boolean is ever invalid), and beyond Java `1` is true
    /// too: the rocketmq-client-cpp engine writes header booleans as `1`/`0` (a batch sent as
    /// SEND_MESSAGE with `batch=1`, apache/rocketmq-client-cpp#363), and Java storing that
    /// batch as one garbage message helps no one.
    pub fn opt_bool(ext: &ExtFields, field: &'static str) -> Option<bool> {
        ext.get(field).map(|v| {
            let v = v.trim();
            v.eq_ignore_ascii_case("true") || v == "1"
        })
    }

    /// Parses decimal text as Java's `Integer.parseInt`/`Long.parseLong` do (optional sign),
    /// also allowing surrounding whitespace and an integral `.0` tail (a JSON number a client
    /// wrote as a double).
    fn parse_int<T: std::str::FromStr>(field: &'static str, text: &str) -> Result<T, HeaderError> {
        let trimmed = text.trim();
        let integral = trimmed
            .strip_suffix(".0")
            .filter(|head| !head.is_empty())
            .unwrap_or(trimmed);
        integral.parse().map_err(|_| HeaderError::Invalid {
            field,
            value: text.to_owned(),
        })
    }

    /// Writes a string field.
    pub fn put(ext: &mut ExtFields, field: &'static str, value: &str) {
        ext.insert(field, value);
    }

    /// Writes an optional string field when present.
    pub fn put_opt(ext: &mut ExtFields, field: &'static str, value: Option<&str>) {
        if let Some(value) = value {
            ext.insert(field, value);
        }
    }

    /// Writes a number or boolean field as its decimal / `true` / `false` text.
    pub fn put_display(ext: &mut ExtFields, field: &'static str, value: impl std::fmt::Display) {
        ext.insert(field, value.to_string());
    }

    /// Writes an optional number or boolean field when present.
    pub fn put_opt_display<T: std::fmt::Display>(
        ext: &mut ExtFields,
        field: &'static str,
        value: Option<T>,
    ) {
        if let Some(value) = value {
            ext.insert(field, value.to_string());
        }
    }
}
