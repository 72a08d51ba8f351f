//! The keys a `--keys` run gave its messages, rebuilt from the run's JSON result, so
//! `query-keys` looks up keys that exist instead of guessing.
//!
//! A producer's messages carry the key `<run id as 8 hex digits>-<producer>-<sequence>`, and a
//! run bounded by `--messages M` over `P` producers sends sequences `0..quota(p)` from every
//! producer `p` (the quota counts measured messages only, so warm-up sends add sequences past
//! it, never gaps below it). Numbering a run's keys `j = sequence × P + producer` makes them
//! exactly `0..M`, which is what the sampler draws from.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;

use crate::cli::{topic_names, SendMode};

/// The key of message `sequence` of producer `producer_id` in run `run_id`.
pub fn message_key(run_id: u32, producer_id: u32, sequence: u64) -> String {
    format!("{run_id:08x}-{producer_id}-{sequence}")
}

/// Which of `topics` a producer's send goes to: orderly producers keep one topic (each key
/// stays in one queue), the others move to the next topic with every send.
pub fn spread_topic_index(
    producer_id: u32,
    sequence: u64,
    per_send: u64,
    topics: usize,
    orderly: bool,
) -> usize {
    let spread = if orderly {
        u64::from(producer_id)
    } else {
        u64::from(producer_id) + sequence / per_send.max(1)
    };
    (spread % topics.max(1) as u64) as usize
}

/// Why a result file cannot serve as a key source.
#[derive(Debug, thiserror::Error)]
pub enum KeySourceError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a ringmq-loadgen run result: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{0}: the run did not set keys (run it with --keys)")]
    NoKeys(PathBuf),
    #[error("{0}: the run was bounded by time; key sources must be --messages runs")]
    NotBounded(PathBuf),
    #[error("the key sources hold no messages")]
    Empty,
}

/// The part of a run result's `settings` that decides its keys and their topics.
#[derive(Debug, Deserialize)]
struct RecordedSettings {
    topic: String,
    topics: u32,
    producers: u32,
    messages: Option<u64>,
    mode: SendMode,
    batch_size: u32,
    keys: bool,
    orderly: bool,
}

#[derive(Debug, Deserialize)]
struct RecordedRun {
    run_id: u32,
    settings: RecordedSettings,
}

/// The keys of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunKeys {
    pub run_id: u32,
    pub producers: u32,
    pub messages: u64,
    per_send: u64,
    topics: Vec<String>,
    orderly: bool,
}

/// A key that exists, and the topic its message went to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TopicKey {
    pub topic: String,
    pub key: String,
}

impl RunKeys {
    /// Reads the keys of the run whose JSON result is `path`.
    pub fn from_file(path: &Path) -> Result<RunKeys, KeySourceError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeySourceError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        RunKeys::from_json(&text, path)
    }

    /// The keys of the run whose JSON result is `text` (`path` names it in errors).
    pub fn from_json(text: &str, path: &Path) -> Result<RunKeys, KeySourceError> {
        let run: RecordedRun =
            serde_json::from_str(text).map_err(|source| KeySourceError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        let s = run.settings;
        if !s.keys {
            return Err(KeySourceError::NoKeys(path.to_path_buf()));
        }
        let Some(messages) = s.messages else {
            return Err(KeySourceError::NotBounded(path.to_path_buf()));
        };
        let per_send = if s.mode == SendMode::Batch {
            u64::from(s.batch_size)
        } else {
            1
        };
        Ok(RunKeys {
            run_id: run.run_id,
            producers: s.producers.max(1),
            messages,
            per_send,
            topics: topic_names(&s.topic, s.topics),
            orderly: s.orderly,
        })
    }

    /// Key number `j` (`0..messages`) of this run.
    pub fn key(&self, j: u64) -> TopicKey {
        let producers = u64::from(self.producers);
        let producer_id = (j % producers) as u32;
        let sequence = j / producers;
        let topic = spread_topic_index(
            producer_id,
            sequence,
            self.per_send,
            self.topics.len(),
            self.orderly,
        );
        TopicKey {
            topic: self.topics[topic].clone(),
            key: message_key(self.run_id, producer_id, sequence),
        }
    }
}

/// `n` distinct keys drawn uniformly from all of `runs` (all of them when there are fewer),
/// the same ones for the same `seed`.
pub fn sample(runs: &[RunKeys], n: u64, seed: u64) -> Result<Vec<TopicKey>, KeySourceError> {
    let total: u64 = runs.iter().map(|r| r.messages).sum();
    if total == 0 {
        return Err(KeySourceError::Empty);
    }
    let n = n.min(total);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut drawn = HashSet::new();
    let mut keys = Vec::new();
    while (keys.len() as u64) < n {
        let global = rng.gen_range(0..total);
        if drawn.insert(global) {
            keys.push(key_at(runs, global));
        }
    }
    Ok(keys)
}

/// Key number `global` of the runs taken one after the other.
fn key_at(runs: &[RunKeys], mut global: u64) -> TopicKey {
    for run in runs {
        if global < run.messages {
            return run.key(global);
        }
        global -= run.messages;
    }
    unreachable!("the caller draws below the total")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::producer_quota;

    fn result_json(keys: bool, messages: &str, topics: u32) -> String {
        format!(
            r#"{{"run_id": 3735928559, "other": 1, "settings": {{"topic": "FillTest",
            "topics": {topics}, "producers": 3, "messages": {messages}, "mode": "batch",
            "batch_size": 4, "keys": {keys}, "orderly": false, "more": "ignored"}}}}"#
        )
    }

    fn run(messages: u64, topics: u32) -> RunKeys {
        let json = result_json(true, &messages.to_string(), topics);
        RunKeys::from_json(&json, Path::new("r.json")).expect("a keyed bounded run")
    }

    #[test]
    fn keys_match_the_producers_format() {
        assert_eq!(message_key(0xdead_beef, 2, 17), "deadbeef-2-17");
        assert_eq!(message_key(1, 0, 0), "00000001-0-0");
    }

    #[test]
    fn numbered_keys_are_exactly_the_quota_of_every_producer() {
        let r = run(10, 1);
        let mut per_producer = [0u64; 3];
        for j in 0..r.messages {
            let k = r.key(j);
            let parts: Vec<&str> = k.key.split('-').collect();
            assert_eq!(parts[0], "deadbeef");
            let producer: usize = parts[1].parse().unwrap();
            let sequence: u64 = parts[2].parse().unwrap();
            assert!(
                sequence < producer_quota(10, 3, producer as u32),
                "{}",
                k.key
            );
            per_producer[producer] += 1;
            assert_eq!(k.topic, "FillTest");
        }
        for (p, count) in per_producer.iter().enumerate() {
            assert_eq!(*count, producer_quota(10, 3, p as u32));
        }
    }

    #[test]
    fn topics_follow_the_batch_spread() {
        let r = run(24, 2);
        // Producer 0, sequences 0..4 are its first batch (topic 0), 4..8 its second (topic 1).
        assert_eq!(r.key(0).topic, "FillTest-0");
        assert_eq!(r.key(3 * 4).topic, "FillTest-1");
        assert_eq!(
            r.key(1).topic,
            "FillTest-1",
            "producer 1 starts one topic on"
        );
    }

    #[test]
    fn samples_are_distinct_reproducible_and_bounded() {
        let mut second = run(7, 1);
        second.run_id = 7;
        let runs = [run(5, 1), second];
        let a = sample(&runs, 8, 42).unwrap();
        assert_eq!(a, sample(&runs, 8, 42).unwrap());
        assert_eq!(a.iter().collect::<HashSet<_>>().len(), 8);
        assert_eq!(
            sample(&runs, 100, 1).unwrap().len(),
            12,
            "capped at all keys"
        );
        assert!(matches!(sample(&[], 1, 1), Err(KeySourceError::Empty)));
    }

    #[test]
    fn unusable_results_are_refused_with_the_reason() {
        let p = Path::new("r.json");
        let no_keys = RunKeys::from_json(&result_json(false, "10", 1), p);
        assert!(matches!(no_keys, Err(KeySourceError::NoKeys(_))));
        let timed = RunKeys::from_json(&result_json(true, "null", 1), p);
        assert!(matches!(timed, Err(KeySourceError::NotBounded(_))));
        let junk = RunKeys::from_json("{}", p);
        assert!(matches!(junk, Err(KeySourceError::Parse { .. })));
    }
}
