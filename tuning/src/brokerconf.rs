//! The broker's config file format (RocketMQ's `broker.conf`: Java properties, `key=value`,
//! `#` comments) and, in one place, every key the tuner reads or writes. The broker must accept
//! exactly these names.

use std::collections::BTreeMap;
use std::path::Path;

use ringmq_proto::java_properties;

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

/// Every key `recommend` writes, in the order it writes them. Each is a key the broker reads
/// and applies (broker/tests/config_tune.rs feeds `recommend`'s output to the broker's loader
/// and fails on any warning).
pub const RECOMMENDED_KEYS: &[&str] = &[
    STORE_PATH_ROOT_DIR,
    RINGMQ_CPUS,
    MAPPED_FILE_SIZE_COMMIT_LOG,
    FLUSH_DISK_TYPE,
    FLUSH_INTERVAL_COMMIT_LOG,
    SYNC_FLUSH_TIMEOUT,
    RINGMQ_TAIL_CACHE_BYTES,
];

/// Parses properties text into a map with the workspace's one Java-properties parser (the one
/// the broker reads its file with, so `check` accepts exactly what the broker accepts). Values
/// are trimmed, as the broker trims them; a later duplicate key wins, as in Java.
pub fn parse(path: &Path, text: &str) -> Result<BTreeMap<String, String>> {
    let properties = java_properties::parse(text).map_err(|e| TuneError::Config {
        path: path.to_path_buf(),
        line: e.line,
        what: e.reason.to_string(),
    })?;
    Ok(properties
        .into_iter()
        .map(|p| (p.key, p.value.trim().to_owned()))
        .collect())
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
    fn parses_every_form_the_broker_accepts() {
        let text = "# comment\nbrokerName = broker-a\n\nringmqCpus=0-3\nnamesrvAddr: 127.0.0.1:9876\n\
                    listenPort 10911\nstorePathRootDir=/data/\\\n    ringmq\nmappedFileSizeCommitLog=1024  \n";
        let map = parse(Path::new("b.conf"), text).unwrap();
        assert_eq!(map["brokerName"], "broker-a");
        assert_eq!(map[RINGMQ_CPUS], "0-3");
        assert_eq!(map["namesrvAddr"], "127.0.0.1:9876");
        assert_eq!(map["listenPort"], "10911");
        assert_eq!(map[STORE_PATH_ROOT_DIR], "/data/ringmq");
        assert_eq!(map[MAPPED_FILE_SIZE_COMMIT_LOG], "1024");
        // A line with only a key is a key with an empty value, as in Java.
        assert_eq!(
            parse(Path::new("b.conf"), "lonely\n").unwrap()["lonely"],
            ""
        );
        let err = parse(Path::new("b.conf"), "ok=1\nbad=\\u00G0\n").unwrap_err();
        assert!(err.to_string().contains("b.conf:2"), "{err}");
    }
}
