//! The `ringmq-tune` binary end to end, on fixture roots and a temporary store.

mod common;

use std::process::{Command, Output};

use common::Fixture;

fn tune(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringmq-tune"))
        .args(args)
        .output()
        .expect("run ringmq-tune")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A broker.conf pointing at the fixture's store with small segments and no used-space limit,
/// in every separator style Java (and so the broker) accepts, with a continuation line.
fn config(fixture: &Fixture) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        format!(
            "# test broker\nbrokerName broker-a\nstorePathRootDir = {}\nringmqCpus : 1-3\nmappedFileSizeCommitLog=10\\\n    48576\ndiskMaxUsedSpaceRatio\t100\n",
            fixture.store().display()
        ),
    )
    .unwrap();
    file
}

#[test]
fn check_json_reads_the_config_and_the_fixture_root() {
    let fixture = Fixture::tuned();
    let conf = config(&fixture);
    let root = fixture.root_dir.path().to_str().unwrap().to_string();
    let out = tune(&[
        "--root",
        &root,
        "check",
        "--json",
        "--config",
        conf.path().to_str().unwrap(),
    ]);
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("check --json is JSON");
    assert_eq!(json["broker_cpus"], "1-3");
    assert_eq!(json["shards"], 3);
    assert_eq!(json["facts"]["store"]["fs_type"], "xfs");
    let items = json["items"].as_array().unwrap();
    assert_eq!(items.len(), 20);
    for item in items {
        // free_disk keeps the 10 GiB floor of the real disk under the test's store.
        if item["id"] != "free_disk" {
            assert_eq!(item["status"], "OK", "{item}");
        }
        assert!(item["seen"].is_string() && item["wanted"].is_string());
    }
    assert_eq!(json["io_uring"]["state"], "probed");
}

#[test]
fn check_text_has_one_line_per_item_and_exits_1_on_fail() {
    let fixture = Fixture::tuned();
    fixture.write("/proc/sys/kernel/osrelease", "4.19.0\n");
    fixture.write("/proc/sys/vm/swappiness", "60\n");
    let conf = config(&fixture);
    let root = fixture.root_dir.path().to_str().unwrap().to_string();
    let out = tune(&[
        "--root",
        &root,
        "check",
        "--config",
        conf.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    let kernel_line = text.lines().find(|l| l.contains("kernel_version")).unwrap();
    assert!(kernel_line.starts_with("FAIL"), "{kernel_line}");
    let swap_line = text.lines().find(|l| l.contains("swappiness")).unwrap();
    assert!(
        swap_line.starts_with("WARN") && swap_line.contains("seen: 60"),
        "{swap_line}"
    );
    assert!(
        swap_line.ends_with("fix: sysctl -w vm.swappiness=1"),
        "{swap_line}"
    );
    // header + 20 items + summary
    assert_eq!(text.lines().count(), 22, "{text}");
}

#[test]
fn apply_dry_run_prints_commands_and_changes_nothing() {
    let fixture = Fixture::tuned();
    fixture.write("/proc/sys/vm/swappiness", "60\n");
    let conf = config(&fixture);
    let root = fixture.root_dir.path().to_str().unwrap().to_string();
    let out = tune(&[
        "--root",
        &root,
        "apply",
        "--dry-run",
        "--config",
        conf.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let swap_on_disk = fixture.root().path("/proc/sys/vm/swappiness");
    let line = format!(
        "sysctl -w vm.swappiness=1    # {}: 60 -> 1 (swappiness)",
        swap_on_disk.display()
    );
    assert!(text.contains(&line), "{text}");
    assert!(text.contains("restore.json first"), "{text}");
    assert_eq!(fixture.read("/proc/sys/vm/swappiness"), "60");
    assert!(!fixture.root().exists("/var/lib/ringmq-tune/restore.json"));
}

#[test]
fn apply_then_restore_through_the_cli() {
    let fixture = Fixture::tuned();
    fixture.write("/proc/sys/net/core/somaxconn", "128\n");
    let conf = config(&fixture);
    let root = fixture.root_dir.path().to_str().unwrap().to_string();
    // Tests run as root (TEAM.md); a non-root run is refused, which apply_fixture tests.
    let out = tune(&[
        "--root",
        &root,
        "apply",
        "--config",
        conf.path().to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(fixture.read("/proc/sys/net/core/somaxconn"), "4096");
    let out = tune(&["--root", &root, "restore", "--dry-run"]);
    assert!(stdout(&out).contains("echo 128 > "), "{}", stdout(&out));
    assert_eq!(fixture.read("/proc/sys/net/core/somaxconn"), "4096");
    let out = tune(&["--root", &root, "restore"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fixture.read("/proc/sys/net/core/somaxconn"), "128");
}

#[test]
fn probe_then_recommend() {
    let fixture = Fixture::tuned();
    let conf = config(&fixture);
    let root = fixture.root_dir.path().to_str().unwrap().to_string();
    let probe_json = fixture.root_dir.path().join("probe.json");
    let out = tune(&[
        "probe-disk",
        "--dir",
        fixture.store().to_str().unwrap(),
        "--duration-secs",
        "10",
        "--max-bytes",
        "1M",
        "--out",
        probe_json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("fdatasync after 4 KiB write (fresh preallocated space): 32 ops"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_dir(fixture.store()).unwrap().count(), 0);
    let probe: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&probe_json).unwrap()).unwrap();
    assert_eq!(probe["fdatasync_4k"]["ops"], 32);

    let out = tune(&[
        "--root",
        &root,
        "recommend",
        "--config",
        conf.path().to_str().unwrap(),
        "--probe",
        probe_json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("ringmqCpus=1-3"), "{text}");
    assert!(
        text.contains("# Measured fdatasync after a 4 KiB write into fresh"),
        "{text}"
    );
    assert!(text.contains("flushDiskType="), "{text}");
}

#[test]
fn bad_input_is_a_clear_error_with_status_2() {
    let out = tune(&["check", "--store", "/tmp", "--cpus", "zero"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("bad CPU list \"zero\""),
        "{}",
        stderr(&out)
    );
    let out = tune(&["probe-disk", "--dir", "/tmp", "--max-bytes", "lots"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a byte count"),
        "{}",
        stderr(&out)
    );
    let out = tune(&["probe-disk", "--dir", "/tmp", "--duration-secs", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("positive"), "{}", stderr(&out));
    let bad_conf = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        bad_conf.path(),
        "storePathRootDir=/tmp\nbad=\\u12 is not an escape\n",
    )
    .unwrap();
    let out = tune(&["check", "--config", bad_conf.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(":2: malformed \\uXXXX escape"),
        "{}",
        stderr(&out)
    );
    let out = tune(&[
        "recommend",
        "--store",
        "/tmp",
        "--probe",
        bad_conf.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is not a probe-disk JSON result"),
        "{}",
        stderr(&out)
    );
}
