//! The JSON header (reference §1.3).
//!
//! Output is what a Java server sends: compact, keys in fastjson's alphabetical order, every
//! ext value a JSON string, control characters escaped, `remark` omitted when absent.
//! Input is whatever real clients send: ext values of any scalar type, absent or null maps,
//! `""` remarks, unknown keys, trailing whitespace, any language name.

use std::fmt::{self, Write as _};

use bytes::{BufMut, BytesMut};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use super::DecodedHeader;
use crate::command::{ExtFields, LanguageCode, RemotingCommand, SerializeType};
use crate::error::WireHeaderError;

/// Appends the JSON header of `command` to `dst`.
pub(crate) fn encode(command: &RemotingCommand, dst: &mut BytesMut) {
    dst.put_slice(b"{\"code\":");
    put_int(dst, command.code);
    dst.put_slice(b",\"extFields\":{");
    for (i, (key, value)) in command.ext_fields.iter().enumerate() {
        if i > 0 {
            dst.put_u8(b',');
        }
        put_str(dst, key);
        dst.put_u8(b':');
        put_str(dst, value);
    }
    dst.put_slice(b"},\"flag\":");
    put_int(dst, command.flag);
    dst.put_slice(b",\"language\":");
    put_str(dst, command.language.name());
    dst.put_slice(b",\"opaque\":");
    put_int(dst, command.opaque);
    if let Some(remark) = &command.remark {
        dst.put_slice(b",\"remark\":");
        put_str(dst, remark);
    }
    dst.put_slice(b",\"serializeTypeCurrentRPC\":");
    put_str(dst, SerializeType::Json.name());
    dst.put_slice(b",\"version\":");
    put_int(dst, command.version);
    dst.put_u8(b'}');
}

fn put_int(dst: &mut BytesMut, value: i32) {
    // BytesMut's fmt::Write grows the buffer as needed and cannot fail.
    let _ = write!(dst, "{value}");
}

/// Writes `s` as a JSON string: `"` and `\` escaped, control characters below 0x20 escaped
/// (short forms where JSON has them, `\u00XX` otherwise, as fastjson does). Runs without
/// escapes are copied in one piece.
pub(crate) fn put_str(dst: &mut BytesMut, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    dst.reserve(bytes.len() + 2);
    dst.put_u8(b'"');
    let mut run_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        dst.put_slice(&bytes[run_start..i]);
        run_start = i + 1;
        if short.is_empty() {
            dst.put_slice(b"\\u00");
            dst.put_u8(HEX[usize::from(b >> 4)]);
            dst.put_u8(HEX[usize::from(b & 0xf)]);
        } else {
            dst.put_slice(short);
        }
    }
    dst.put_slice(&bytes[run_start..]);
    dst.put_u8(b'"');
}

/// Decodes a JSON header: the common shape by a direct scan, anything else by serde. Only ext
/// keys, ext values and the remark are copied out (they outlive the read buffer).
pub(crate) fn decode(header: &[u8]) -> Result<DecodedHeader, WireHeaderError> {
    if let Some(decoded) = super::json_scan::decode(header) {
        return Ok(decoded);
    }
    decode_general(header)
}

/// The general decoder: every input [`decode`] accepts, with its errors. Real clients' headers
/// take the scanner's path ([`super::json_scan`]); this one decides the rest.
pub(crate) fn decode_general(header: &[u8]) -> Result<DecodedHeader, WireHeaderError> {
    let mut deserializer = serde_json::Deserializer::from_slice(header);
    let decoded = deserializer.deserialize_map(HeaderVisitor {
        header_bytes: header.len(),
    })?;
    // Trailing whitespace (C++ appends '\n') is allowed; anything else is an error.
    deserializer.end()?;
    Ok(decoded)
}

/// The top-level keys the decoder looks at; everything else is skipped.
enum Key {
    Code,
    Language,
    Version,
    Opaque,
    Flag,
    Remark,
    ExtFields,
    Ignored,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a header key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "code" => Key::Code,
                    "language" => Key::Language,
                    "version" => Key::Version,
                    "opaque" => Key::Opaque,
                    "flag" => Key::Flag,
                    "remark" => Key::Remark,
                    "extFields" => Key::ExtFields,
                    _ => Key::Ignored,
                })
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// `header_bytes` bounds the text of the ext fields (unescaping only shortens it).
struct HeaderVisitor {
    header_bytes: usize,
}

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = DecodedHeader;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a remoting command header object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DecodedHeader, A::Error> {
        // Absent fields take Java's defaults: a fresh RemotingCommand is JAVA with zeros.
        let mut header = DecodedHeader::java_defaults();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Code => header.code = map.next_value_seed(IntSeed("code"))?,
                Key::Version => header.version = map.next_value_seed(IntSeed("version"))?,
                Key::Opaque => header.opaque = map.next_value_seed(IntSeed("opaque"))?,
                Key::Flag => header.flag = map.next_value_seed(IntSeed("flag"))?,
                Key::Language => header.language = map.next_value_seed(LanguageSeed)?,
                Key::Remark => {
                    header.remark = map.next_value_seed(ScalarText)?.filter(|r| !r.is_empty())
                }
                Key::ExtFields => {
                    header.ext_fields = map.next_value_seed(ExtFieldsSeed {
                        text_bytes: self.header_bytes,
                    })?
                }
                Key::Ignored => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(header)
    }
}

/// An `int` header field: a JSON integer in i32 range, or a string holding one.
struct IntSeed(&'static str);

impl<'de> DeserializeSeed<'de> for IntSeed {
    type Value = i32;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<i32, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Visitor<'_> for IntSeed {
    type Value = i32;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a 32-bit integer for {}", self.0)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i32, E> {
        i32::try_from(v).map_err(|_| E::custom(format!("{} = {v} is out of range", self.0)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i32, E> {
        i32::try_from(v).map_err(|_| E::custom(format!("{} = {v} is out of range", self.0)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i32, E> {
        // A client that writes numbers as doubles (105.0) still means an integer.
        let integral = v.fract() == 0.0 && v >= f64::from(i32::MIN) && v <= f64::from(i32::MAX);
        if integral {
            Ok(v as i32)
        } else {
            Err(E::custom(format!(
                "{} = {v} is not a 32-bit integer",
                self.0
            )))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i32, E> {
        v.trim()
            .parse()
            .map_err(|_| E::custom(format!("{} = {v:?} is not an integer", self.0)))
    }
}

/// The `language` field: any name (unknown → OTHER), a byte number, or null (→ JAVA).
struct LanguageSeed;

impl<'de> DeserializeSeed<'de> for LanguageSeed {
    type Value = LanguageCode;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<LanguageCode, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Visitor<'_> for LanguageSeed {
    type Value = LanguageCode;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a language name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<LanguageCode, E> {
        Ok(LanguageCode::from_name(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<LanguageCode, E> {
        Ok(u8::try_from(v).map_or(LanguageCode::Other, LanguageCode::from_byte))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<LanguageCode, E> {
        Ok(u8::try_from(v).map_or(LanguageCode::Other, LanguageCode::from_byte))
    }
    fn visit_unit<E: de::Error>(self) -> Result<LanguageCode, E> {
        Ok(LanguageCode::Java)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<LanguageCode, E> {
        Ok(LanguageCode::Other)
    }
}

/// `extFields`: an object (values converted by [`ScalarText`]), `null`, or absent.
struct ExtFieldsSeed {
    /// Room for the keys' and values' text: the header's length bounds it.
    text_bytes: usize,
}

impl<'de> DeserializeSeed<'de> for ExtFieldsSeed {
    type Value = ExtFields;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ExtFields, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ExtFieldsSeed {
    type Value = ExtFields;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an extFields object or null")
    }
    fn visit_unit<E: de::Error>(self) -> Result<ExtFields, E> {
        Ok(ExtFields::new())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ExtFields, A::Error> {
        // Keys and values are decoded straight into the map's one text buffer, reserved on
        // the first key (an empty object costs nothing).
        let mut fields = ExtFields::new();
        loop {
            let key_start = fields.text_len();
            let key_into = KeyInto {
                fields: &mut fields,
                reserve_bytes: self.text_bytes,
            };
            if map.next_key_seed(key_into)?.is_none() {
                break;
            }
            let key = fields.span_since(key_start);
            let value_start = fields.text_len();
            if map.next_value_seed(ScalarInto(fields.text_mut(0)))? {
                let value = fields.span_since(value_start);
                fields.push_decoded(key, value);
            } else {
                // A null value is a field Java would leave null: drop the entry.
                fields.truncate_text(key_start);
            }
        }
        fields.keep_last_of_duplicates();
        Ok(fields)
    }
}

/// An `extFields` key, appended to the map's text buffer (which gets `reserve_bytes` of room
/// first if it has none: the map allocates only once it has a key).
struct KeyInto<'b> {
    fields: &'b mut ExtFields,
    reserve_bytes: usize,
}

impl<'de> DeserializeSeed<'de> for KeyInto<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyInto<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an extFields key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.fields.text_mut(self.reserve_bytes).push_str(v);
        Ok(())
    }
}

/// An `extFields` value as header text ([`ScalarText`]'s conversions), appended to the map's
/// text buffer; `false` for null.
struct ScalarInto<'b>(&'b mut String);

impl<'de> DeserializeSeed<'de> for ScalarInto<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl ScalarInto<'_> {
    fn push(self, text: Option<String>) -> bool {
        match text {
            Some(text) => {
                self.0.push_str(&text);
                true
            }
            None => false,
        }
    }
}

impl<'de> Visitor<'de> for ScalarInto<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        self.0.push_str(v);
        Ok(true)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        ScalarText.visit_bool(v).map(|t| self.push(t))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        ScalarText.visit_i64(v).map(|t| self.push(t))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        ScalarText.visit_u64(v).map(|t| self.push(t))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<bool, E> {
        ScalarText.visit_f64(v).map(|t| self.push(t))
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        ScalarText.visit_map(map).map(|t| self.push(t))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        ScalarText.visit_seq(seq).map(|t| self.push(t))
    }
}

/// Any JSON value as header text: strings as they are, numbers in decimal, booleans as
/// `true`/`false`, null as `None`, objects and arrays as their compact JSON text (no client
/// sends those, but rejecting a whole request over one odd field helps nobody).
struct ScalarText;

impl<'de> DeserializeSeed<'de> for ScalarText {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarText {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(if v { "true" } else { "false" }.to_owned()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // 1e3 and 1000.0 print as "1000", so integral numbers parse as integers downstream.
        Ok(Some(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let value = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Some(value.to_string()))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let value = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(Some(value.to_string()))
    }
}
