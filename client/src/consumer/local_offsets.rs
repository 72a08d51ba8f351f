//! Offsets of a broadcasting consumer, kept in a local file (brokers keep none for it, as in
//! Java's `LocalFileOffsetStore`). The file is JSON, rewritten whole through a temporary file
//! and a rename, so a crash leaves either the old or the new version.
//!
//! This is plain blocking file I/O on the consumer's executor: a few hundred bytes every commit
//! interval, which costs less than handing it to another thread.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::ClientError;
use crate::queue::MessageQueue;

/// Reads the offsets stored at `path`; a missing file means none.
pub(crate) fn load(path: &Path) -> Result<BTreeMap<MessageQueue, i64>, ClientError> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(offset_file_error(path, &e.to_string())),
    };
    let value: Value =
        serde_json::from_slice(&text).map_err(|e| offset_file_error(path, &e.to_string()))?;
    let entries = value["offsets"]
        .as_array()
        .ok_or_else(|| offset_file_error(path, "no \"offsets\" array"))?;
    let mut offsets = BTreeMap::new();
    for entry in entries {
        let (Some(topic), Some(broker), Some(queue_id), Some(offset)) = (
            entry["topic"].as_str(),
            entry["brokerName"].as_str(),
            entry["queueId"].as_i64(),
            entry["offset"].as_i64(),
        ) else {
            return Err(offset_file_error(path, &format!("bad entry {entry}")));
        };
        let queue_id = i32::try_from(queue_id)
            .map_err(|_| offset_file_error(path, &format!("bad queue id {queue_id}")))?;
        offsets.insert(MessageQueue::new(topic, broker, queue_id), offset);
    }
    Ok(offsets)
}

/// Replaces the file at `path` with `offsets`.
pub(crate) fn store(path: &Path, offsets: &[(MessageQueue, i64)]) -> Result<(), ClientError> {
    let entries: Vec<Value> = offsets
        .iter()
        .map(|(queue, offset)| {
            json!({
                "topic": queue.topic,
                "brokerName": queue.broker_name,
                "queueId": queue.queue_id,
                "offset": offset,
            })
        })
        .collect();
    let text = json!({ "offsets": entries }).to_string();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| offset_file_error(path, &e.to_string()))?;
    }
    let temporary = temporary_path(path);
    std::fs::write(&temporary, text).map_err(|e| offset_file_error(path, &e.to_string()))?;
    std::fs::rename(&temporary, path).map_err(|e| offset_file_error(path, &e.to_string()))
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

fn offset_file_error(path: &Path, detail: &str) -> ClientError {
    ClientError::Config(format!("offset file {}: {detail}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_treats_a_missing_file_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("group").join("offsets.json");
        assert!(load(&path).unwrap().is_empty());
        let offsets = [
            (MessageQueue::new("T", "b", 0), 7),
            (MessageQueue::new("T", "b", 1), 0),
        ];
        store(&path, &offsets).unwrap();
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[&MessageQueue::new("T", "b", 0)], 7);
        store(&path, &offsets[..1]).unwrap();
        assert_eq!(load(&path).unwrap().len(), 1);
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offsets.json");
        std::fs::write(&path, "{not json").unwrap();
        let error = load(&path).unwrap_err().to_string();
        assert!(error.contains("offsets.json"), "{error}");
        std::fs::write(&path, r#"{"offsets":[{"topic":"T"}]}"#).unwrap();
        assert!(load(&path).is_err());
    }
}
