//! The broker's config file format (RocketMQ's `broker.conf`: Java properties, `key=value`,
//! `#` comments) and, in one place, every key the tuner reads or writes. The broker must accept
//! exactly these names.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Result, TuneError};

/// RocketMQ's key: root directory of the store.
pub const STORE_PATH_ROOT_DIR: &str = "storePathRootDir";
/// RocketMQ's key: commit-log segment size in bytes.
pub const MAPPED_FILE_SIZE_COMMIT_LOG: &str = "mappedFileSizeCommitLog";
/// RocketMQ's key: `ASYNC_FLUSH` or `SYNC_FLUSH`.
pub const FLUSH_DISK_TYPE: &str = "flushDiskType";
/// RocketMQ's key: ASYNC_FLUSH fdatasync interval in milliseconds.
pub const FLUSH_INTERVAL_COMMIT_LOG: &str = "flushIntervalCommitLog";
/// RocketMQ's key: SYNC_FLUSH wait before FLUSH_DISK_TIMEOUT, in milliseconds.
pub const SYNC_FLUSH_TIMEOUT: &str = "syncFlushTimeout";
/// RocketMQ's key: used-space percentage past which old segments are deleted early.
pub const DISK_MAX_USED_SPACE_RATIO: &str = "diskMaxUsedSpaceRatio";
/// ringmq's key: the broker's cores, a count (`4`) or a kernel CPU list (`0-3,8`).
pub const RINGMQ_CPUS: &str = "ringmqCpus";
/// ringmq's key: per-shard bound of the in-memory commit-log tail cache, in bytes.
pub const RINGMQ_TAIL_CACHE_BYTES: &str = "ringmqTailCacheBytes";
/// ringmq's key: per-shard bound of bytes gathered into one group-commit write + fdatasync.
pub const RINGMQ_GROUP_COMMIT_MAX_BYTES: &str = "ringmqGroupCommitMaxBytes";

/// Every key `recommend` writes, in the order it writes them.
pub const RECOMMENDED_KEYS: &[&str] = &[
    STORE_PATH_ROOT_DIR,
    RINGMQ_CPUS,
    MAPPED_FILE_SIZE_COMMIT_LOG,
    FLUSH_DISK_TYPE,
    FLUSH_INTERVAL_COMMIT_LOG,
    SYNC_FLUSH_TIMEOUT,
    RINGMQ_GROUP_COMMIT_MAX_BYTES,
    RINGMQ_TAIL_CACHE_BYTES,
];

/// Parses properties text into a map. Supports what broker.conf files use: `key=value` or
/// `key: value`, `#` and `!` comments, blank lines, surrounding whitespace. A line with no
/// separator is an error naming the line, not silently skipped.
pub fn parse(path: &Path, text: &str) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some(split) = line.find(['=', ':']) else {
            return Err(TuneError::Config {
                path: path.to_path_buf(),
                line: index + 1,
                what: format!("expected key=value, found {line:?}"),
            });
        };
        let key = line[..split].trim();
        if key.is_empty() {
            return Err(TuneError::Config {
                path: path.to_path_buf(),
                line: index + 1,
                what: "empty key".to_string(),
            });
        }
        map.insert(key.to_string(), line[split + 1..].trim().to_string());
    }
    Ok(map)
}

/// Reads and parses a config file.
pub fn read(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).map_err(|source| TuneError::HostFile {
        op: "read",
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_properties_and_rejects_garbage() {
        let text =
            "# comment\nbrokerName = broker-a\n\nringmqCpus=0-3\nnamesrvAddr: 127.0.0.1:9876\n";
        let map = parse(Path::new("b.conf"), text).unwrap();
        assert_eq!(map["brokerName"], "broker-a");
        assert_eq!(map[RINGMQ_CPUS], "0-3");
        assert_eq!(map["namesrvAddr"], "127.0.0.1:9876");
        let err = parse(Path::new("b.conf"), "ok=1\nnonsense\n").unwrap_err();
        assert!(err.to_string().contains("b.conf:2"), "{err}");
    }
}
