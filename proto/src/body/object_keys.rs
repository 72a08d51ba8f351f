//! fastjson's object-keyed maps (reference §1.8): `{"offsetTable":{{"brokerName":"b",
//! "queueId":0,"topic":"t"}:5}}`. Java writes `Map<MessageQueue, _>` this way in the admin
//! bodies (TopicStatsTable, ConsumeStats, ResetOffsetBody, ConsumerRunningInfo) and reads them
//! only in this form, so both directions are needed.
//!
//! The body types model such a map with string keys holding the key object's JSON
//! ([`mq_map`]); [`unquote_object_keys`] turns those string keys into bare objects on the way
//! out and [`quote_object_keys`] does the reverse on the way in. Like
//! [`super::fastjson::quote_numeric_keys`], these are scanners, not parsers: serde_json
//! validates the result.

use std::borrow::Cow;

/// Rewrites every object key that is a bare `{...}` into a JSON string holding that text.
pub fn quote_object_keys(text: &[u8]) -> Cow<'_, [u8]> {
    rewrite_keys(text, |text, i, out| {
        if text[i] != b'{' {
            return None;
        }
        let end = object_end(text, i)?;
        if !followed_by_colon(text, end) {
            return None;
        }
        let key = std::str::from_utf8(&text[i..end]).ok()?;
        let quoted = serde_json::to_string(key).ok()?;
        out.extend_from_slice(quoted.as_bytes());
        Some(end)
    })
}

/// Rewrites every string key whose content starts with `{` into the bare object it holds.
pub fn unquote_object_keys(text: &[u8]) -> Cow<'_, [u8]> {
    rewrite_keys(text, |text, i, out| {
        if !text[i..].starts_with(b"\"{") {
            return None;
        }
        let end = string_end(text, i);
        if !followed_by_colon(text, end) {
            return None;
        }
        let key: String = serde_json::from_slice(&text[i..end]).ok()?;
        out.extend_from_slice(key.as_bytes());
        Some(end)
    })
}

/// Walks `text`, calling `rewrite` at each position where an object key starts; when it returns
/// `Some(end)` it has written a replacement for `text[i..end]` into the output.
fn rewrite_keys<F>(text: &[u8], rewrite: F) -> Cow<'_, [u8]>
where
    F: Fn(&[u8], usize, &mut Vec<u8>) -> Option<usize>,
{
    let mut out: Vec<u8> = Vec::with_capacity(text.len());
    let mut changed = false;
    // Innermost container is an object (true) or an array (false).
    let mut stack: Vec<bool> = Vec::new();
    let mut expect_key = false;
    let mut i = 0;
    while i < text.len() {
        if expect_key && !text[i].is_ascii_whitespace() {
            expect_key = false;
            if let Some(end) = rewrite(text, i, &mut out) {
                changed = true;
                i = end;
                continue;
            }
        }
        let byte = text[i];
        if byte == b'"' {
            let end = string_end(text, i);
            out.extend_from_slice(&text[i..end]);
            i = end;
            continue;
        }
        match byte {
            b'{' => {
                stack.push(true);
                expect_key = true;
            }
            b'[' => stack.push(false),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => expect_key = stack.last() == Some(&true),
            _ => {}
        }
        out.push(byte);
        i += 1;
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

/// One past the `}` matching the `{` at `start`, skipping strings; `None` if unbalanced.
fn object_end(text: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    while i < text.len() {
        match text[i] {
            b'"' => {
                i = string_end(text, i);
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn string_end(text: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < text.len() {
        match text[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    text.len()
}

fn followed_by_colon(text: &[u8], end: usize) -> bool {
    text[end.min(text.len())..]
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        == Some(&b':')
}

/// Serde adaptor for `BTreeMap<MessageQueue, V>` fields: keys travel as strings holding the
/// queue's JSON, which [`unquote_object_keys`] / [`quote_object_keys`] turn into fastjson's bare
/// object keys.
pub mod mq_map {
    use std::collections::BTreeMap;

    use serde::de::{DeserializeOwned, Error as _};
    use serde::ser::{Error as _, SerializeMap};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::body::MessageQueue;

    pub fn serialize<S, V>(map: &BTreeMap<MessageQueue, V>, s: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        V: Serialize,
    {
        let mut out = s.serialize_map(Some(map.len()))?;
        for (queue, value) in map {
            let key = serde_json::to_string(queue).map_err(S::Error::custom)?;
            out.serialize_entry(&key, value)?;
        }
        out.end()
    }

    pub fn deserialize<'de, D, V>(d: D) -> Result<BTreeMap<MessageQueue, V>, D::Error>
    where
        D: Deserializer<'de>,
        V: DeserializeOwned,
    {
        let raw = Option::<BTreeMap<String, V>>::deserialize(d)?.unwrap_or_default();
        raw.into_iter()
            .map(|(key, value)| {
                let queue = serde_json::from_str::<MessageQueue>(&key).map_err(D::Error::custom)?;
                Ok((queue, value))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_round_trip_through_string_keys() {
        let fastjson = br#"{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"t"}:5,{"brokerName":"b","queueId":1,"topic":"t,}"}:{"x":[1,{"y":2}]}},"z":"{no:"}"#;
        let quoted = quote_object_keys(fastjson);
        let value: serde_json::Value = serde_json::from_slice(&quoted).unwrap();
        let table = value["offsetTable"].as_object().unwrap();
        assert_eq!(table[r#"{"brokerName":"b","queueId":0,"topic":"t"}"#], 5);
        assert_eq!(value["z"], "{no:");
        assert_eq!(&*unquote_object_keys(&quoted), &fastjson[..]);
    }

    #[test]
    fn standard_json_is_borrowed_unchanged() {
        let text = br#"{"a":{"b":[{"c":1}]},"d":"{x}"}"#;
        assert!(matches!(quote_object_keys(text), Cow::Borrowed(_)));
        assert!(matches!(unquote_object_keys(text), Cow::Borrowed(_)));
    }

    #[test]
    fn unbalanced_key_is_left_for_serde_to_reject() {
        let text = br#"{{"a":1"#;
        assert_eq!(&*quote_object_keys(text), &text[..]);
    }
}
