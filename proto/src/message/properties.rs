//! The properties string (reference §3.4): `name 0x01 value 0x02` per entry.
//!
//! Parsing follows `MessageDecoder.string2messageProperties` exactly: split at 0x02 (a missing
//! final 0x02 ends the last item at the end of the string); skip items shorter than 3 bytes;
//! find the first 0x01 searching from the item's start; skip the item unless that separator lies
//! strictly after the item's first byte and strictly before its last byte (so empty names and
//! empty values are dropped). Later duplicates win, as in the Java `HashMap`.

/// Separator between a name and its value.
pub const NAME_VALUE_SEPARATOR: u8 = 0x01;
/// Terminator after each entry.
pub const PROPERTY_SEPARATOR: u8 = 0x02;

/// Iterates over the `(name, value)` pairs of a properties string, borrowing from it.
#[derive(Debug, Clone)]
pub struct PropertiesIter<'a> {
    buf: &'a [u8],
    index: usize,
}

impl<'a> PropertiesIter<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        PropertiesIter { buf, index: 0 }
    }
}

impl<'a> Iterator for PropertiesIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let buf = self.buf;
        while self.index < buf.len() {
            let start = self.index;
            // memchr: the separators are scanned word-wise, not byte by byte; every stored
            // record's properties are scanned at dispatch.
            let end =
                memchr::memchr(PROPERTY_SEPARATOR, &buf[start..]).map_or(buf.len(), |p| start + p);
            self.index = end + 1;
            if end - start < 3 {
                continue;
            }
            // Java searches for 0x01 from the item start through the whole string, then
            // requires it to fall inside the item; searching within the item is equivalent.
            let Some(sep) = memchr::memchr(NAME_VALUE_SEPARATOR, &buf[start..end]) else {
                continue;
            };
            let sep = start + sep;
            if sep > start && sep < end - 1 {
                return Some((&buf[start..sep], &buf[sep + 1..end]));
            }
        }
        None
    }
}

/// The value of property `name` (the last one if repeated, as Java's map keeps it).
pub fn find_property<'a>(properties: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let [value] = find_properties(properties, [name]);
    value
}

/// The values of several properties in one pass over the string: `values[i]` is the last
/// value of `names[i]`, as [`find_property`] would return it. Dispatch reads TAGS, KEYS and
/// UNIQ_KEY of every stored record; one pass instead of three.
pub fn find_properties<'a, const N: usize>(
    properties: &'a [u8],
    names: [&str; N],
) -> [Option<&'a [u8]>; N] {
    let mut values = [None; N];
    for (k, v) in PropertiesIter::new(properties) {
        for (name, value) in names.iter().zip(values.iter_mut()) {
            if k == name.as_bytes() {
                *value = Some(v);
            }
        }
    }
    values
}

/// Length of the properties string [`encode_properties`] writes for these pairs.
pub fn properties_len<'p, I>(pairs: I) -> usize
where
    I: IntoIterator<Item = (&'p str, &'p str)>,
{
    pairs.into_iter().map(|(k, v)| k.len() + v.len() + 2).sum()
}

/// Appends `name 0x01 value 0x02` for each pair to `out`; returns the bytes appended.
pub fn encode_properties<'p, I>(pairs: I, out: &mut Vec<u8>) -> usize
where
    I: IntoIterator<Item = (&'p str, &'p str)>,
{
    let before = out.len();
    for (k, v) in pairs {
        push_property(out, k.as_bytes(), v.as_bytes());
    }
    out.len() - before
}

/// Appends one entry, `name 0x01 value 0x02`, to `out`; returns where the value starts. For
/// writers that copy entries as they read them (names and values as bytes, never re-checked
/// as UTF-8).
pub fn push_property(out: &mut Vec<u8>, name: &[u8], value: &[u8]) -> usize {
    out.extend_from_slice(name);
    out.push(NAME_VALUE_SEPARATOR);
    let value_at = out.len();
    out.extend_from_slice(value);
    out.push(PROPERTY_SEPARATOR);
    value_at
}
