//! `catch-up` and `query-keys` end to end against this build's name server and broker: a keyed
//! backlog is sent with `run --consumers 0`, drained by fresh groups (all of it, then its
//! newest part) and looked up by key. (`scripts/test.sh` builds the binaries before the tests.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ringmq_loadgen::cli::{FlushMode, Replication};
use ringmq_loadgen::cluster::LocalCluster;
use serde_json::Value;

const TOPIC: &str = "CatchUpE2E";
const MESSAGES: u64 = 2_000;
const BODY_BYTES: u64 = 256;
const NEWEST: u64 = 500;
const QUEUES: u64 = 4;
const LOOKUPS: u64 = 50;

fn loadgen(args: &[&str]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_ringmq-loadgen"))
        .args(args)
        .output()
        .expect("run ringmq-loadgen");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{args:?}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// The one JSON file in `dir`.
fn only_json(dir: &Path) -> (PathBuf, Value) {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("results directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let value = serde_json::from_str(&std::fs::read_to_string(&files[0]).expect("read"))
        .expect("JSON result");
    (files[0].clone(), value)
}

fn fill(namesrv: &str, dir: &Path) -> PathBuf {
    let dir = dir.to_string_lossy();
    let messages = MESSAGES.to_string();
    let body = BODY_BYTES.to_string();
    let queues = QUEUES.to_string();
    loadgen(&[
        "run",
        "--namesrv",
        namesrv,
        "--topic",
        TOPIC,
        "--queues",
        &queues,
        "--mode",
        "batch",
        "--batch-size",
        "8",
        "--producers",
        "4",
        "--connections",
        "2",
        "--keys",
        "--consumers",
        "0",
        "--messages",
        &messages,
        "--warmup-secs",
        "0",
        "--message-size-bytes",
        &body,
        "--results-dir",
        &dir,
        "--label",
        "fill",
    ]);
    only_json(Path::new(dir.as_ref())).0
}

fn catch_up(namesrv: &str, dir: &Path, extra: &[&str]) -> (String, Value) {
    let results = dir.to_string_lossy();
    let mut args = vec!["catch-up", "--namesrv", namesrv, "--topic", TOPIC];
    args.extend_from_slice(&["--results-dir", &results, "--timeout-secs", "120"]);
    args.extend_from_slice(extra);
    let o = loadgen(&args);
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        only_json(dir).1,
    )
}

#[test]
fn a_fresh_group_drains_the_backlog_and_sampled_keys_are_found() {
    let mut cluster = LocalCluster::start(FlushMode::AsyncFlush, 1, false, Replication::None, 32)
        .expect("cluster starts");
    let namesrv = cluster.namesrv_addr.to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let [fill_dir, all_dir, newest_dir, keys_dir] =
        ["fill", "all", "newest", "keys"].map(|d| dir.path().join(d));
    let fill_json = fill(&namesrv, &fill_dir);

    let (stdout, all) = catch_up(&namesrv, &all_dir, &[]);
    let stored = all["stored_messages"].as_u64().expect("stored");
    assert!(stored >= MESSAGES, "{all}");
    let drain = &all["drain"];
    assert_eq!(drain["complete"], true, "{all}");
    assert_eq!(drain["delivered"], stored, "{all}");
    assert_eq!(drain["body_bytes"], stored * BODY_BYTES, "{all}");
    assert!(
        drain["record_bytes"].as_u64() > drain["body_bytes"].as_u64(),
        "{all}"
    );
    assert_eq!(all["scope"], "whole backlog", "{all}");
    assert!(stdout.contains("MB/s of message bodies"), "{stdout}");

    let newest = NEWEST.to_string();
    let (_, part) = catch_up(&namesrv, &newest_dir, &["--last-messages", &newest]);
    let delivered = part["drain"]["delivered"].as_u64().expect("delivered");
    // Each queue gives its proportional share rounded down: at most one short per queue.
    assert!((NEWEST - QUEUES..=NEWEST).contains(&delivered), "{part}");
    assert_eq!(part["drain"]["scanned"], delivered, "{part}");
    assert_eq!(part["scope"], format!("newest {NEWEST} messages"), "{part}");

    let (keys_from, keys) = (fill_json.to_string_lossy(), keys_dir.to_string_lossy());
    let lookups = LOOKUPS.to_string();
    loadgen(&[
        "query-keys",
        "--namesrv",
        &namesrv,
        "--keys-from",
        &keys_from,
        "--lookups",
        &lookups,
        "--results-dir",
        &keys,
    ]);
    let (_, q) = only_json(&keys_dir);
    assert_eq!(q["tally"]["lookups"], LOOKUPS, "{q}");
    assert_eq!(q["tally"]["found"], LOOKUPS, "{q}");
    assert_eq!(q["tally"]["errors"], 0, "{q}");
    assert_eq!(q["tally"]["latency"]["count"], LOOKUPS, "{q}");
    cluster.stop();
}
