//! `ExtFields`: the string-to-string map that carries every typed header field.

use std::collections::HashSet;

/// The "custom header" of a command: field name to text value (reference §1.2).
///
/// A small vector, not a hash map: real headers hold 0 to ~15 entries, where a linear scan
/// beats hashing and keeps insertion order (so encoding is deterministic). Keys are unique:
/// [`ExtFields::insert`] replaces, and decoding keeps the last of duplicated keys, as Java's
/// `HashMap` does. Equality ignores order.
#[derive(Clone, Debug, Default)]
pub struct ExtFields {
    entries: Vec<(String, String)>,
}

/// Above this many entries, de-duplicating decoded input uses a hash set instead of a
/// quadratic scan, so a hostile header with millions of keys costs linear time.
const QUADRATIC_DEDUP_MAX_ENTRIES: usize = 16;

impl ExtFields {
    /// An empty map.
    pub const fn new() -> Self {
        ExtFields {
            entries: Vec::new(),
        }
    }

    /// An empty map with room for `capacity` entries.
    pub fn with_capacity(capacity: usize) -> Self {
        ExtFields {
            entries: Vec::with_capacity(capacity),
        }
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    /// Sets `key` to `value`, returning the previous value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        let key = key.into();
        let value = value.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, old)) => Some(std::mem::replace(old, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let index = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(index).1)
    }

    /// The entries in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Builds the map from decoded wire entries, which may repeat a key: the last one wins.
    pub(crate) fn from_decoded(mut entries: Vec<(String, String)>) -> Self {
        if entries.len() <= QUADRATIC_DEDUP_MAX_ENTRIES {
            let mut i = 0;
            while i < entries.len() {
                let later_duplicate = entries[i + 1..].iter().any(|(k, _)| *k == entries[i].0);
                if later_duplicate {
                    entries.remove(i);
                } else {
                    i += 1;
                }
            }
            return ExtFields { entries };
        }
        // Walk from the end so the last occurrence of each key is the one kept.
        let mut keep = vec![false; entries.len()];
        let mut seen: HashSet<&str> = HashSet::with_capacity(entries.len());
        for (i, (k, _)) in entries.iter().enumerate().rev() {
            keep[i] = seen.insert(k.as_str());
        }
        let mut keep_iter = keep.into_iter();
        entries.retain(|_| keep_iter.next().unwrap_or(false));
        ExtFields { entries }
    }
}

impl PartialEq for ExtFields {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl Eq for ExtFields {}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for ExtFields {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut fields = ExtFields::new();
        for (k, v) in iter {
            fields.insert(k, v);
        }
        fields
    }
}

impl<K: Into<String>, V: Into<String>> Extend<(K, V)> for ExtFields {
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
