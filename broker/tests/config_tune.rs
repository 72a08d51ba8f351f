//! `ringmq-tune recommend` writes a config the broker reads and applies whole (issue 13, one
//! properties parser): the real tuner binary probes a temporary store and recommends; its
//! output goes through the broker's config loader with no warning (no unknown, ignored or
//! not-applied key), every recommended value lands in the effective configuration, and the real
//! broker binary accepts the file (`-c FILE -p`).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::broker_binary;
use ringmq_broker::config::{parse_properties, BrokerConfig, CpuSpec};

/// Builds the tuner binary once (a no-op when fresh) and locates it next to the broker's.
fn tune_binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .args(["build", "-p", "ringmq-tune", "--bin", "ringmq-tune"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .status()
        .expect("run cargo build -p ringmq-tune");
    assert!(status.success(), "cargo build -p ringmq-tune failed");
    let path = broker_binary().with_file_name("ringmq-tune");
    assert!(path.exists(), "{} missing after build", path.display());
    path
}

fn run(binary: &Path, args: &[&str]) -> Output {
    let output = Command::new(binary)
        .args(args)
        .env_remove("NAMESRV_ADDR")
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", binary.display()));
    assert!(
        output.status.success(),
        "{} {args:?}: {}\n{}",
        binary.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Whether `written` (the tuner's text) and `effective` (the broker's) say the same. CPU lists
/// have two spellings of one core (`0,` from the tuner, `0-0` from the broker), so they compare
/// parsed.
fn same_value(key: &str, written: &str, effective: Option<&String>) -> bool {
    match (key, effective) {
        ("ringmqCpus", Some(effective)) => {
            CpuSpec::parse(written).ok() == CpuSpec::parse(effective).ok()
        }
        (_, Some(effective)) => written == effective,
        (_, None) => false,
    }
}

fn pairs(text: &str) -> BTreeMap<String, String> {
    parse_properties(text)
        .unwrap()
        .into_iter()
        .map(|p| (p.key, p.value))
        .collect()
}

#[test]
fn recommended_config_is_read_and_applied_by_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let store_text = store.to_str().unwrap();
    let tune = tune_binary();
    let probe = dir.path().join("probe.json");
    run(
        &tune,
        &[
            "probe-disk",
            "--dir",
            store_text,
            "--duration-secs",
            "2",
            "--max-bytes",
            "1M",
            "--out",
            probe.to_str().unwrap(),
        ],
    );
    let conf = dir.path().join("recommended.conf");
    run(
        &tune,
        &[
            "recommend",
            "--store",
            store_text,
            "--cpus",
            "1",
            "--probe",
            probe.to_str().unwrap(),
            "--out",
            conf.to_str().unwrap(),
        ],
    );
    let text = std::fs::read_to_string(&conf).unwrap();
    let recommended = pairs(&text);
    assert!(
        recommended.len() >= 5 && recommended.contains_key("storePathRootDir"),
        "{text}"
    );

    let mut config = BrokerConfig::default();
    let warnings = config.apply_properties("recommended.conf", &text).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}\n{text}");
    config.validate().unwrap();
    let effective = pairs(&config.to_properties());
    for (key, value) in &recommended {
        assert!(
            same_value(key, value, effective.get(key)),
            "{key}={value} not applied: {:?}",
            effective.get(key)
        );
    }

    // The broker process itself: it reads the file, prints the same values, warns about nothing.
    let printed = run(&broker_binary(), &["-c", conf.to_str().unwrap(), "-p"]);
    let stderr = String::from_utf8_lossy(&printed.stderr);
    assert!(!stderr.contains("WARN"), "{stderr}");
    let printed = pairs(&String::from_utf8_lossy(&printed.stdout));
    for (key, value) in &recommended {
        assert!(
            same_value(key, value, printed.get(key)),
            "{key}={value} not in -p output: {:?}",
            printed.get(key)
        );
    }
}
