//! Committed consumer offsets of the queues one shard owns (reference §2.5, §5.2).
//!
//! Each shard keeps the offsets of its own queues, so QUERY/UPDATE_CONSUMER_OFFSET are served by
//! the queue's owner without any lock. Persisted as RocketMQ's `consumerOffset.json` shape
//! (`{"offsetTable":{"<topic>@<group>":{"<queueId>":offset}}}`), one file per shard
//! (`<root>/config/consumerOffset-shard-<k>.json`), written every `flushConsumerOffsetInterval`
//! when something changed and at shutdown.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::persist;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OffsetFile {
    #[serde(default)]
    offset_table: BTreeMap<String, BTreeMap<i32, i64>>,
}

#[derive(Debug, thiserror::Error)]
pub enum OffsetsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a consumer offset table: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

pub struct ConsumerOffsets {
    /// `topic@group` → queue id → next offset to consume.
    table: BTreeMap<String, BTreeMap<i32, i64>>,
    path: PathBuf,
    dirty: bool,
}

fn key(topic: &str, group: &str) -> String {
    format!("{topic}@{group}")
}

impl ConsumerOffsets {
    pub fn file_path(root: &Path, shard: usize) -> PathBuf {
        root.join("config")
            .join(format!("consumerOffset-shard-{shard}.json"))
    }

    pub fn load(path: PathBuf) -> Result<ConsumerOffsets, OffsetsError> {
        let table = match persist::read_optional(&path).map_err(|source| OffsetsError::Io {
            path: path.clone(),
            source,
        })? {
            Some(bytes) => {
                serde_json::from_slice::<OffsetFile>(&bytes)
                    .map_err(|source| OffsetsError::Corrupt {
                        path: path.clone(),
                        source,
                    })?
                    .offset_table
            }
            None => BTreeMap::new(),
        };
        Ok(ConsumerOffsets {
            table,
            path,
            dirty: false,
        })
    }

    /// `topic@group` → queue id → offset (admin bodies read the whole table).
    pub fn table(&self) -> &BTreeMap<String, BTreeMap<i32, i64>> {
        &self.table
    }

    pub fn query(&self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        self.table.get(&key(topic, group))?.get(&queue_id).copied()
    }

    pub fn commit(&mut self, group: &str, topic: &str, queue_id: i32, offset: i64) {
        let queues = self.table.entry(key(topic, group)).or_default();
        if queues.insert(queue_id, offset) != Some(offset) {
            self.dirty = true;
        }
    }

    /// A slave's metadata sync: every offset the master lists for a queue this shard owns
    /// (`owns(topic, queue_id)`) overwrites this table's (Java's `putAll` of the master's
    /// table); entries the master does not list stay. Returns how many offsets changed.
    pub fn merge_from_master(
        &mut self,
        master: &BTreeMap<String, BTreeMap<i32, i64>>,
        owns: impl Fn(&str, i32) -> bool,
    ) -> usize {
        let mut changed = 0;
        for (topic_at_group, queues) in master {
            // `topic@group`: neither a topic nor a group name may contain '@'.
            let Some((topic, _group)) = topic_at_group.split_once('@') else {
                continue;
            };
            for (&queue_id, &offset) in queues.iter().filter(|(q, _)| owns(topic, **q)) {
                let mine = self.table.entry(topic_at_group.clone()).or_default();
                if mine.insert(queue_id, offset) != Some(offset) {
                    changed += 1;
                }
            }
        }
        self.dirty |= changed > 0;
        changed
    }

    /// Drops every offset of a topic (DELETE_TOPIC_IN_BROKER).
    pub fn remove_topic(&mut self, topic: &str) {
        let prefix = format!("{topic}@");
        let before = self.table.len();
        self.table.retain(|k, _| !k.starts_with(&prefix));
        self.dirty |= self.table.len() != before;
    }

    /// The file's path and content if the table changed since the last snapshot, which is then
    /// taken as written; if the write fails, call [`ConsumerOffsets::mark_dirty`].
    pub fn take_dirty_snapshot(&mut self) -> Option<(PathBuf, Vec<u8>)> {
        if !self.dirty {
            return None;
        }
        let file = OffsetFile {
            offset_table: self.table.clone(),
        };
        let json = serde_json::to_vec(&file).expect("offset table always serializes");
        self.dirty = false;
        Some((self.path.clone(), json))
    }

    /// A snapshot's write failed: write again next time.
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// Writes the table if it changed since the last write (blocking; start-up and tests).
    pub fn persist_if_dirty(&mut self) -> Result<(), OffsetsError> {
        if !self.dirty {
            return Ok(());
        }
        let file = OffsetFile {
            offset_table: self.table.clone(),
        };
        let json = serde_json::to_vec(&file).expect("offset table always serializes");
        persist::write_file_atomically(&self.path, &json).map_err(|source| OffsetsError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_query_persist_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = ConsumerOffsets::file_path(dir.path(), 1);
        let mut offsets = ConsumerOffsets::load(path.clone()).unwrap();
        assert_eq!(offsets.query("g", "T", 0), None);
        offsets.commit("g", "T", 0, 5);
        offsets.commit("g", "T", 3, 9);
        offsets.commit("g", "U", 0, 1);
        offsets.commit("h", "T", 0, 2);
        offsets.remove_topic("U");
        offsets.persist_if_dirty().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            r#"{"offsetTable":{"T@g":{"0":5,"3":9},"T@h":{"0":2}}}"#
        );
        let reloaded = ConsumerOffsets::load(path).unwrap();
        assert_eq!(reloaded.query("g", "T", 3), Some(9));
        assert_eq!(reloaded.query("h", "T", 0), Some(2));
        assert_eq!(reloaded.query("g", "U", 0), None);
    }

    #[test]
    fn a_masters_offsets_overwrite_the_owned_queues_and_keep_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let mut slave = ConsumerOffsets::load(dir.path().join("o.json")).unwrap();
        slave.commit("g", "T", 0, 3);
        slave.commit("g", "T", 1, 7); // committed to the slave while the master was gone
        slave.persist_if_dirty().unwrap();
        let master = BTreeMap::from([
            ("T@g".to_string(), BTreeMap::from([(0, 5), (2, 9)])),
            ("U@g".to_string(), BTreeMap::from([(0, 4)])),
            ("no-separator".to_string(), BTreeMap::from([(0, 1)])),
        ]);
        // This shard owns every queue of T and none of U.
        let changed = slave.merge_from_master(&master, |topic, _| topic == "T");
        assert_eq!(changed, 2);
        assert_eq!(slave.query("g", "T", 0), Some(5));
        assert_eq!(slave.query("g", "T", 1), Some(7));
        assert_eq!(slave.query("g", "T", 2), Some(9));
        assert_eq!(slave.query("g", "U", 0), None);
        assert!(slave.take_dirty_snapshot().is_some());
        assert_eq!(slave.merge_from_master(&master, |t, _| t == "T"), 0);
        assert!(slave.take_dirty_snapshot().is_none(), "nothing changed");
    }

    #[test]
    fn corrupt_file_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.json");
        std::fs::write(&path, "[1,2").unwrap();
        let err = ConsumerOffsets::load(path).err().unwrap();
        assert!(err.to_string().contains("o.json"), "{err}");
    }
}
