//! fastjson's type coercion, in one place, for every JSON body ringmq reads.
//!
//! The Java broker reads bodies with fastjson, which converts a value to the type of the Java
//! field it lands in: `"subVersion":"1796604663223"` into a `long` (the rocketmq-client-cpp
//! engine writes it that way), `"brokerName":123` into a `String`, `"unitMode":"true"` or `"1"`
//! into a `boolean`, `null` into the field's default. Real clients depend on that.
//!
//! [`from_value`] is a serde [`Deserializer`] over a parsed [`serde_json::Value`] that does the
//! same conversions whenever the target type asks for a scalar, at every depth (maps, lists,
//! nested structs), so no body type declares anything field by field. Why a tree and not a
//! streaming adaptor around `serde_json::Deserializer`: bodies are small and off the data path
//! (heartbeats, locks, registrations, configs; sends and pulls carry none), and over a tree the
//! adaptor is plain code instead of a visitor-wrapping layer per container; see ARCHITECTURE.md.
//!
//! The rules, as fastjson's `TypeUtils.castTo*` apply them:
//!
//! | target | accepted |
//! | --- | --- |
//! | integer | a number (a fraction is truncated toward zero), a decimal string (trimmed; `""` is 0), `true`/`false` as 1/0 |
//! | float | a number, a decimal string, `true`/`false` as 1/0 |
//! | bool | `true`/`false`, the strings `true`/`false` (any case), `1`/`0`, `Y`/`N`, `T`/`F`, the numbers 1/0 |
//! | string | a string, a number (its JSON text), a bool (`true`/`false`), an object or list (its JSON text) |
//! | anything | `null`, read as the type's default; an object member whose value is `null` counts as absent |
//!
//! Values outside the target's range and text that is no number are still errors: leniency is
//! about spelling, not about inventing data.

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess,
    Unexpected, Visitor,
};
use serde::forward_to_deserialize_any;
use serde_json::{Error, Map, Number, Value};

/// Deserializes `T` from `value` with fastjson's coercions.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, Error> {
    T::deserialize(Lenient(value))
}

/// A value being read with fastjson's coercions.
struct Lenient(Value);

impl Lenient {
    /// The value as a signed integer, or the error naming what it was.
    fn to_i64(&self) -> Result<i64, Error> {
        match &self.0 {
            Value::Number(number) => number_to_i64(number),
            Value::String(text) => text_to_i64(text),
            Value::Bool(flag) => Ok(i64::from(*flag)),
            Value::Null => Ok(0),
            other => Err(unexpected(other, "an integer")),
        }
    }

    /// The value as an unsigned integer (u64 values above i64::MAX included).
    fn to_u64(&self) -> Result<u64, Error> {
        let exact = match &self.0 {
            Value::Number(number) => number.as_u64(),
            Value::String(text) => text.trim().parse::<u64>().ok(),
            _ => None,
        };
        match exact {
            Some(value) => Ok(value),
            None => {
                let signed = self.to_i64()?;
                u64::try_from(signed).map_err(|_| {
                    Error::invalid_value(Unexpected::Signed(signed), &"an unsigned integer")
                })
            }
        }
    }

    fn to_f64(&self) -> Result<f64, Error> {
        match &self.0 {
            Value::Number(number) => Ok(number.as_f64().unwrap_or_default()),
            Value::String(text) if text.trim().is_empty() => Ok(0.0),
            Value::String(text) => text
                .trim()
                .parse()
                .map_err(|_| Error::invalid_value(Unexpected::Str(text), &"a number")),
            Value::Bool(flag) => Ok(f64::from(u8::from(*flag))),
            Value::Null => Ok(0.0),
            other => Err(unexpected(other, "a number")),
        }
    }

    fn to_bool(&self) -> Result<bool, Error> {
        match &self.0 {
            Value::Bool(flag) => Ok(*flag),
            Value::Null => Ok(false),
            Value::String(text) => text_to_bool(text)
                .ok_or_else(|| Error::invalid_value(Unexpected::Str(text), &"a boolean")),
            Value::Number(number) => match number.as_i64() {
                Some(1) => Ok(true),
                Some(0) => Ok(false),
                _ => Err(unexpected(&self.0, "a boolean")),
            },
            other => Err(unexpected(other, "a boolean")),
        }
    }

    /// The value as text: strings verbatim, anything else as its JSON text, `null` as "".
    fn into_text(self) -> String {
        match self.0 {
            Value::String(text) => text,
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
}

/// A JSON number as a Java `long`: integers exactly, fractions truncated toward zero.
fn number_to_i64(number: &Number) -> Result<i64, Error> {
    if let Some(value) = number.as_i64() {
        return Ok(value);
    }
    let float = number.as_f64().unwrap_or(f64::NAN);
    // `as` saturates; the range check makes an out-of-range number an error instead.
    if float.is_finite() && float.trunc() >= i64::MIN as f64 && float.trunc() < i64::MAX as f64 {
        Ok(float.trunc() as i64)
    } else {
        Err(Error::invalid_value(
            Unexpected::Other(&number.to_string()),
            &"a number in the range of a long",
        ))
    }
}

/// Decimal text as a Java `long`; blank is 0 (fastjson reads "" as null), `"1.0"` is 1.
fn text_to_i64(text: &str) -> Result<i64, Error> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(0);
    }
    if let Ok(value) = trimmed.parse::<i64>() {
        return Ok(value);
    }
    match trimmed.parse::<f64>() {
        Ok(float) if float.is_finite() => {
            number_to_i64(&Number::from_f64(float).expect("a finite float is a JSON number"))
        }
        _ => Err(Error::invalid_value(Unexpected::Str(text), &"an integer")),
    }
}

/// fastjson's boolean spellings.
fn text_to_bool(text: &str) -> Option<bool> {
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("true") {
        return Some(true);
    }
    if trimmed.eq_ignore_ascii_case("false") {
        return Some(false);
    }
    match trimmed {
        "1" | "Y" | "T" => Some(true),
        "0" | "N" | "F" => Some(false),
        _ => None,
    }
}

fn unexpected(value: &Value, expected: &'static str) -> Error {
    let kind = match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(flag) => Unexpected::Bool(*flag),
        Value::Number(_) => Unexpected::Other("number"),
        Value::String(text) => Unexpected::Str(text),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    };
    Error::invalid_type(kind, &expected)
}

/// Signed integer targets: read as i64, the visitor checks the narrower range.
macro_rules! signed {
    ($($method:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            visitor.visit_i64(self.to_i64()?)
        }
    )*};
}

/// Unsigned integer targets: read as u64, the visitor checks the narrower range.
macro_rules! unsigned {
    ($($method:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            visitor.visit_u64(self.to_u64()?)
        }
    )*};
}

impl<'de> Deserializer<'de> for Lenient {
    type Error = Error;

    /// Self-describing targets (`serde_json::Value`, untyped enums) get the value as it is,
    /// with containers still read leniently inside.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(Items(items.into_iter())),
            Value::Object(members) => visitor.visit_map(Members::new(members)),
            scalar => scalar.deserialize_any(visitor),
        }
    }

    signed!(
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64
    );
    unsigned!(
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64
    );

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_f64(self.to_f64()?)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_f64(self.to_f64()?)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_bool(self.to_bool()?)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_string(self.into_text())
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_string(self.into_text())
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_string(self.into_text())
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_string(self.into_text())
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            value => visitor.visit_some(Lenient(value)),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(Items(items.into_iter())),
            Value::Null => visitor.visit_seq(Items(Vec::new().into_iter())),
            other => Err(unexpected(&other, "a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(members) => visitor.visit_map(Members::new(members)),
            Value::Null => visitor.visit_map(Members::new(Map::new())),
            other => Err(unexpected(&other, "an object")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        i128 u128 bytes byte_buf unit unit_struct
    }
}

/// The elements of a JSON list, each read leniently.
struct Items(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for Items {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0
            .next()
            .map(|value| seed.deserialize(Lenient(value)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// The members of a JSON object, keys and values read leniently (a key `"0"` fills an integer
/// map key). Members whose value is `null` are skipped: fastjson leaves such a field at its
/// default, exactly as if it were absent, and `#[serde(default)]` does the same here.
struct Members {
    members: serde_json::map::IntoIter,
    value: Option<Value>,
}

impl Members {
    fn new(members: Map<String, Value>) -> Self {
        Self {
            members: members.into_iter(),
            value: None,
        }
    }
}

impl<'de> MapAccess<'de> for Members {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        for (key, value) in self.members.by_ref() {
            if value.is_null() {
                continue;
            }
            self.value = Some(value);
            return seed.deserialize(Lenient(Value::String(key))).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let value = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("a map value was asked for before its key"))?;
        seed.deserialize(Lenient(value))
    }
}
