//! `ExtFields`: the string-to-string map that carries every typed header field.

use std::collections::HashSet;

/// The "custom header" of a command: field name to text value (reference §1.2).
///
/// A small vector, not a hash map: real headers hold 0 to ~15 entries, where a linear scan
/// beats hashing and keeps insertion order (so encoding is deterministic). Keys are unique:
/// [`ExtFields::insert`] replaces, and decoding keeps the last of duplicated keys, as Java's
/// `HashMap` does. Equality ignores order.
///
/// Every key and value lives in one text buffer that the entries index into, so decoding a
/// header of 15 fields costs one growing allocation instead of 30 small ones (header decoding
/// led the broker's user-space profile of sends). A replaced or removed entry leaves its text
/// behind until the map is dropped; maps live for one request. The buffer and the entries sit
/// behind one box, absent while the map is empty, so a command stays small (it travels in
/// `Result`s and channels) and a header without ext fields allocates nothing.
#[derive(Clone, Debug, Default)]
pub struct ExtFields {
    fields: Option<Box<Fields>>,
}

/// The text buffer and the entries of a non-empty [`ExtFields`].
#[derive(Clone, Debug, Default)]
struct Fields {
    text: String,
    entries: Vec<Entry>,
}

/// Where one entry's key and value are in [`Fields::text`].
#[derive(Clone, Copy, Debug)]
struct Entry {
    key: Span,
    value: Span,
    /// The key's length and first byte: lookups and de-duplication compare these first and
    /// touch the text only when they match (the send header's keys are distinct letters).
    key_tag: KeyTag,
}

/// A key's length (saturated at 255) and first byte. Equal keys have equal tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct KeyTag(u8, u8);

impl KeyTag {
    fn of(key: &str) -> KeyTag {
        let len = u8::try_from(key.len()).unwrap_or(u8::MAX);
        KeyTag(len, key.as_bytes().first().copied().unwrap_or(0))
    }
}

/// A byte range of [`Fields::text`], on character boundaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    len: u32,
}

impl Span {
    /// Frames are at most `FRAME_MAX_BYTES`, far below 4 GiB, so spans fit in `u32`.
    fn new(start: usize, len: usize) -> Self {
        Span {
            start: u32::try_from(start).expect("header text below 4 GiB"),
            len: u32::try_from(len).expect("header text below 4 GiB"),
        }
    }
}

/// Above this many entries, de-duplicating decoded input uses a hash set instead of a
/// quadratic scan, so a hostile header with millions of keys costs linear time.
const QUADRATIC_DEDUP_MAX_ENTRIES: usize = 16;

impl ExtFields {
    /// An empty map.
    pub const fn new() -> Self {
        ExtFields { fields: None }
    }

    /// An empty map with room for `capacity` entries.
    pub fn with_capacity(capacity: usize) -> Self {
        ExtFields {
            fields: Some(Box::new(Fields {
                text: String::new(),
                entries: Vec::with_capacity(capacity),
            })),
        }
    }

    /// An empty map whose text buffer holds `text_bytes` without growing (a decoder knows an
    /// upper bound: the bytes of the header it decodes).
    pub(crate) fn with_text_capacity(text_bytes: usize) -> Self {
        ExtFields {
            fields: Some(Box::new(Fields {
                text: String::with_capacity(text_bytes),
                entries: Vec::new(),
            })),
        }
    }

    fn fields_mut(&mut self) -> &mut Fields {
        self.fields.get_or_insert_with(Box::default)
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.as_deref()?.get(key)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`, returning the previous value.
    pub fn insert(&mut self, key: impl AsRef<str>, value: impl AsRef<str>) -> Option<String> {
        self.fields_mut().insert(key.as_ref(), value.as_ref())
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.fields.as_deref_mut()?.remove(key)
    }

    /// The entries in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        let fields = self.fields.as_deref();
        let entries = fields.map_or(&[][..], |f| &f.entries[..]);
        entries.iter().map(move |e| {
            let f = fields.expect("entries come from the fields");
            (f.slice(e.key), f.slice(e.value))
        })
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.fields.as_deref().map_or(0, |f| f.entries.len())
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes in the text buffer so far (where a decoder's next key or value starts).
    pub(crate) fn text_len(&self) -> usize {
        self.fields.as_deref().map_or(0, |f| f.text.len())
    }

    /// The buffer decoders append a key's or value's text to (with [`ExtFields::span_since`]);
    /// `reserve_bytes` of room are reserved if it has none.
    pub(crate) fn text_mut(&mut self, reserve_bytes: usize) -> &mut String {
        let text = &mut self.fields_mut().text;
        if text.capacity() == 0 {
            text.reserve(reserve_bytes);
        }
        text
    }

    /// Appends `text` to the buffer.
    pub(crate) fn push_text(&mut self, text: &str) -> Span {
        self.fields_mut().push_text(text)
    }

    /// The span of what was appended to the buffer since it was `start` bytes long.
    pub(crate) fn span_since(&self, start: usize) -> Span {
        let len = self.text_len() - start;
        Span::new(start, len)
    }

    /// Drops text appended after `start` (a decoded key whose value turned out null).
    pub(crate) fn truncate_text(&mut self, start: usize) {
        if let Some(f) = self.fields.as_deref_mut() {
            f.text.truncate(start);
        }
    }

    /// Adds a decoded entry whose text is already in the buffer, without looking for its key;
    /// [`ExtFields::keep_last_of_duplicates`] runs once decoding is done.
    pub(crate) fn push_decoded(&mut self, key: Span, value: Span) {
        self.fields_mut().push_decoded(key, value);
    }

    /// After decoding: a key that repeats keeps only its last entry, as Java's `HashMap` does.
    pub(crate) fn keep_last_of_duplicates(&mut self) {
        if let Some(f) = self.fields.as_deref_mut() {
            f.keep_last_of_duplicates();
        }
    }

    /// Builds the map from decoded wire entries, which may repeat a key: the last one wins.
    #[cfg(test)]
    fn from_decoded(entries: Vec<(String, String)>) -> Self {
        let mut fields = ExtFields::new();
        for (k, v) in &entries {
            let key = fields.push_text(k);
            let value = fields.push_text(v);
            fields.push_decoded(key, value);
        }
        fields.keep_last_of_duplicates();
        fields
    }
}

impl Fields {
    fn slice(&self, span: Span) -> &str {
        let start = span.start as usize;
        &self.text[start..start + span.len as usize]
    }

    fn position(&self, key: &str) -> Option<usize> {
        let tag = KeyTag::of(key);
        self.entries
            .iter()
            .position(|e| e.key_tag == tag && self.slice(e.key) == key)
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.position(key)
            .map(|i| self.slice(self.entries[i].value))
    }

    fn insert(&mut self, key: &str, value: &str) -> Option<String> {
        match self.position(key) {
            Some(i) => {
                let old = self.slice(self.entries[i].value).to_owned();
                self.entries[i].value = self.push_text(value);
                Some(old)
            }
            None => {
                let key = self.push_text(key);
                let value = self.push_text(value);
                self.push_decoded(key, value);
                None
            }
        }
    }

    fn remove(&mut self, key: &str) -> Option<String> {
        let i = self.position(key)?;
        let entry = self.entries.remove(i);
        Some(self.slice(entry.value).to_owned())
    }

    fn push_text(&mut self, text: &str) -> Span {
        if self.text.capacity() == 0 {
            self.text.reserve(crate::serialize::TYPICAL_EXT_TEXT_BYTES);
        }
        let start = self.text.len();
        self.text.push_str(text);
        Span::new(start, text.len())
    }

    /// Adds an entry without looking for its key (the caller did, or de-duplicates after).
    fn push_decoded(&mut self, key: Span, value: Span) {
        if self.entries.capacity() == 0 {
            self.entries.reserve(crate::serialize::TYPICAL_EXT_ENTRIES);
        }
        let key_tag = KeyTag::of(self.slice(key));
        self.entries.push(Entry {
            key,
            value,
            key_tag,
        });
    }

    /// After decoding: a key that repeats keeps only its last entry, as Java's `HashMap` does.
    pub(crate) fn keep_last_of_duplicates(&mut self) {
        let mut entries = std::mem::take(&mut self.entries);
        if entries.len() <= QUADRATIC_DEDUP_MAX_ENTRIES {
            let mut i = 0;
            while i < entries.len() {
                let (key, tag) = (self.slice(entries[i].key), entries[i].key_tag);
                let later_duplicate = entries[i + 1..]
                    .iter()
                    .any(|e| e.key_tag == tag && self.slice(e.key) == key);
                if later_duplicate {
                    entries.remove(i);
                } else {
                    i += 1;
                }
            }
        } else {
            // Walk from the end so the last occurrence of each key is the one kept.
            let mut keep = vec![false; entries.len()];
            let mut seen: HashSet<&str> = HashSet::with_capacity(entries.len());
            for (i, e) in entries.iter().enumerate().rev() {
                keep[i] = seen.insert(self.slice(e.key));
            }
            let mut keep_iter = keep.into_iter();
            entries.retain(|_| keep_iter.next().unwrap_or(false));
        }
        self.entries = entries;
    }
}

impl PartialEq for ExtFields {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl Eq for ExtFields {}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for ExtFields {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut fields = ExtFields::new();
        for (k, v) in iter {
            fields.insert(k, v);
        }
        fields
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Extend<(K, V)> for ExtFields {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_replaces_and_remove_removes() {
        let mut fields = ExtFields::new();
        assert_eq!(fields.insert("a", "1"), None);
        assert_eq!(fields.insert("a", "2"), Some("1".to_string()));
        assert_eq!(fields.get("a"), Some("2"));
        assert_eq!(fields.len(), 1);
        assert_eq!(fields.remove("a"), Some("2".to_string()));
        assert!(fields.is_empty());
    }

    #[test]
    fn decoded_duplicates_keep_the_last_value_small_and_large() {
        let small = vec![
            ("k".into(), "1".into()),
            ("j".into(), "x".into()),
            ("k".into(), "2".into()),
        ];
        let fields = ExtFields::from_decoded(small);
        assert_eq!(fields.len(), 2);
        assert_eq!(fields.get("k"), Some("2"));

        let mut large: Vec<(String, String)> = (0..100)
            .map(|i| (format!("k{}", i % 40), i.to_string()))
            .collect();
        large.push(("k0".into(), "last".into()));
        let fields = ExtFields::from_decoded(large);
        assert_eq!(fields.len(), 40);
        assert_eq!(fields.get("k0"), Some("last"));
        assert_eq!(fields.get("k39"), Some("79"));
    }

    #[test]
    fn equality_ignores_order() {
        let a: ExtFields = [("x", "1"), ("y", "2")].into_iter().collect();
        let b: ExtFields = [("y", "2"), ("x", "1")].into_iter().collect();
        let c: ExtFields = [("y", "2"), ("x", "3")].into_iter().collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
