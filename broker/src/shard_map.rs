//! Which shard owns which queue, and the shard count pinned in the store root.
//!
//! Ownership is a pure function of (topic, queue id, shard count):
//!
//! ```text
//! shard = fnv1a_64(topic UTF-8 bytes ++ queue_id as 4 big-endian bytes) mod shards
//! ```
//!
//! FNV-1a 64 (offset basis 0xcbf29ce484222325, prime 0x100000001b3) is written out here rather
//! than taken from `std::hash` because std's hashers are not promised to be stable across Rust
//! releases, and this mapping must not change for the life of a data directory. For the same
//! reason the shard count is written into the store root on first start and a different count
//! is refused later.

use std::path::{Path, PathBuf};

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Index of a shard (0-based, < shard count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId(pub usize);

/// The stable 64-bit hash of a queue's identity.
pub fn queue_hash(topic: &str, queue_id: i32) -> u64 {
    let mut hash = FNV_OFFSET_BASIS;
    for byte in topic.as_bytes().iter().chain(queue_id.to_be_bytes().iter()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// The shard that owns (topic, queue_id) when the broker runs `shards` shards.
pub fn shard_of(topic: &str, queue_id: i32, shards: usize) -> ShardId {
    assert!(shards > 0, "shard count must be positive");
    ShardId((queue_hash(topic, queue_id) % shards as u64) as usize)
}

/// The shard that owns broker-wide state keyed by a name (a consumer group's offsets live with
/// their queues; this is for state that has no queue, such as a group's client list).
pub fn shard_of_name(name: &str, shards: usize) -> ShardId {
    shard_of(name, -1, shards)
}

/// File in the store root that records the shard count the store was created with.
pub const SHARD_COUNT_FILE: &str = "ringmq-shards";

#[derive(Debug, thiserror::Error)]
pub enum ShardCountError {
    #[error(
        "the store at {root} was created with {stored} shards but this start has {configured}; \
         start with --cpus {stored} (or a list of {stored} cores), or use another storePathRootDir"
    )]
    Mismatch {
        root: PathBuf,
        stored: usize,
        configured: usize,
    },
    #[error("{path}: unreadable shard count `{text}`")]
    Corrupt { path: PathBuf, text: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Records `shards` in `root` on first start; on later starts checks it matches.
/// Runs once in `main` before any shard starts (plain blocking file I/O on purpose).
pub fn pin_shard_count(root: &Path, shards: usize) -> Result<(), ShardCountError> {
    assert!(shards > 0);
    let path = root.join(SHARD_COUNT_FILE);
    let io_err = |source| ShardCountError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let stored: usize = text
                .trim()
                .strip_prefix("shards=")
                .and_then(|n| n.parse().ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| ShardCountError::Corrupt {
                    path: path.clone(),
                    text: text.clone(),
                })?;
            if stored != shards {
                return Err(ShardCountError::Mismatch {
                    root: root.to_path_buf(),
                    stored,
                    configured: shards,
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(root).map_err(io_err)?;
            crate::persist::write_file_atomically(&path, format!("shards={shards}\n").as_bytes())
                .map_err(io_err)
        }
        Err(e) => Err(io_err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        // FNV-1a 64 of "" and "a" (from the FNV reference test suite), with no queue bytes.
        let raw = |bytes: &[u8]| {
            let mut h = FNV_OFFSET_BASIS;
            for b in bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(FNV_PRIME);
            }
            h
        };
        assert_eq!(raw(b""), 0xcbf29ce484222325);
        assert_eq!(raw(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(raw(b"foobar"), 0x85944171f73967e8);
        assert_eq!(queue_hash("foob", i32::from_be_bytes(*b"ar\0\0")), {
            raw(b"foobar\0\0")
        });
    }

    #[test]
    fn mapping_is_pinned() {
        // These values must never change: they decide where existing data lives. They were
        // computed independently (a few lines of Python over the same definition).
        assert_eq!(queue_hash("TopicTest", 0), 0x050b_fcf0_d25d_3b20);
        let four: Vec<usize> = (0..8).map(|q| shard_of("TopicTest", q, 4).0).collect();
        assert_eq!(four, vec![0, 3, 2, 1, 0, 3, 2, 1]);
        let two: Vec<usize> = (0..8).map(|q| shard_of("TopicTest", q, 2).0).collect();
        assert_eq!(two, vec![0, 1, 0, 1, 0, 1, 0, 1]);
    }

    #[test]
    fn queues_spread_over_shards() {
        let mut counts = [0usize; 4];
        for q in 0..400 {
            counts[shard_of("SpreadTopic", q, 4).0] += 1;
        }
        assert!(counts.iter().all(|c| *c > 50), "{counts:?}");
    }

    #[test]
    fn shard_count_is_pinned_in_the_store_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        pin_shard_count(&root, 2).unwrap();
        pin_shard_count(&root, 2).unwrap();
        let err = pin_shard_count(&root, 3).unwrap_err();
        assert!(matches!(
            err,
            ShardCountError::Mismatch {
                stored: 2,
                configured: 3,
                ..
            }
        ));
        assert!(err.to_string().contains("--cpus 2"), "{err}");
        std::fs::write(root.join(SHARD_COUNT_FILE), "garbage").unwrap();
        assert!(matches!(
            pin_shard_count(&root, 2),
            Err(ShardCountError::Corrupt { .. })
        ));
    }
}
