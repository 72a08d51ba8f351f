//! The key index: message keys (space-separated KEYS) and UNIQ_KEY → global physical offsets,
//! for QUERY_MESSAGE. On disk a file of 16-byte entries (key hash 8, physical offset 8),
//! written behind the commit log like the consume queues; in memory a hash map rebuilt from
//! that file on open. Hash collisions are resolved by the query re-checking each record.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use super::append_file::AppendFile;

/// Bytes of one index entry.
pub const INDEX_ENTRY_BYTES: usize = 16;

/// FNV-1a over `topic # key`, the index's key space (RocketMQ also keys by `topic#key`).
pub(crate) fn key_hash(topic: &[u8], key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in topic.iter().chain(b"#").chain(key) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

pub(crate) struct KeyIndex {
    pub(crate) file: RefCell<AppendFile>,
    map: RefCell<HashMap<u64, Vec<u64>>>,
    /// Store time and physical offset of the last record indexed (QUERY_MESSAGE response header).
    pub(crate) last_update_timestamp: Cell<i64>,
    pub(crate) last_update_offset: Cell<u64>,
}

impl KeyIndex {
    /// An index over the entries already in `file` (`entries` are its decoded contents).
    pub(crate) fn new(file: AppendFile, entries: &[u8]) -> Self {
        let mut map: HashMap<u64, Vec<u64>> = HashMap::new();
        let mut last = 0;
        for e in entries.chunks_exact(INDEX_ENTRY_BYTES) {
            let (h, off) = decode_entry(e);
            map.entry(h).or_default().push(off);
            last = off;
        }
        KeyIndex {
            file: RefCell::new(file),
            map: RefCell::new(map),
            last_update_timestamp: Cell::new(0),
            last_update_offset: Cell::new(last),
        }
    }

    pub(crate) fn add(&self, topic: &[u8], key: &[u8], global_offset: u64) {
        if key.is_empty() {
            return;
        }
        let h = key_hash(topic, key);
        let mut e = [0u8; INDEX_ENTRY_BYTES];
        e[0..8].copy_from_slice(&h.to_be_bytes());
        e[8..16].copy_from_slice(&global_offset.to_be_bytes());
        self.file.borrow_mut().append(&e);
        self.map
            .borrow_mut()
            .entry(h)
            .or_default()
            .push(global_offset);
        self.last_update_offset.set(global_offset);
    }

    /// Candidate offsets for `topic#key`, newest last.
    pub(crate) fn lookup(&self, topic: &[u8], key: &[u8]) -> Vec<u64> {
        self.map
            .borrow()
            .get(&key_hash(topic, key))
            .cloned()
            .unwrap_or_default()
    }

    /// Drops offsets below `global_min` (retention moved the log's start).
    pub(crate) fn trim_below(&self, global_min: u64) {
        self.map.borrow_mut().retain(|_, offs| {
            offs.retain(|&o| o >= global_min);
            !offs.is_empty()
        });
    }
}

pub(crate) fn decode_entry(e: &[u8]) -> (u64, u64) {
    (
        u64::from_be_bytes(e[0..8].try_into().expect("8 bytes")),
        u64::from_be_bytes(e[8..16].try_into().expect("8 bytes")),
    )
}
