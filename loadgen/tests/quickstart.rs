//! End to end: `ringmq-loadgen quickstart` starts the real name server and broker binaries of
//! this build on 127.0.0.1, runs a short verified workload, writes its results and stops both.
//! (`scripts/test.sh` builds the binaries before the tests.)

use std::path::Path;
use std::process::Command;

fn sibling_binaries_built() -> bool {
    let exe = Path::new(env!("CARGO_BIN_EXE_ringmq-loadgen"));
    let dir = exe.parent().expect("binary directory");
    ["ringmq-namesrv", "ringmq-broker"]
        .iter()
        .all(|b| dir.join(b).is_file())
}

fn run_quickstart(extra: &[&str], results: &Path) -> (Option<i32>, String, String) {
    assert!(
        sibling_binaries_built(),
        "build the servers first: cargo build --workspace --bins"
    );
    let results = results.to_string_lossy().into_owned();
    let mut args = vec!["quickstart"];
    if !extra.contains(&"--messages") {
        args.extend_from_slice(&["--duration-secs", "2"]);
    }
    args.extend_from_slice(&[
        "--warmup-secs",
        "1",
        "--producers",
        "4",
        "--connections",
        "2",
        "--consumers",
        "1",
        "--queues",
        "4",
        "--verify",
        "--results-dir",
        &results,
        "--label",
        "e2e",
    ]);
    args.extend_from_slice(extra);
    let o = Command::new(env!("CARGO_BIN_EXE_ringmq-loadgen"))
        .args(&args)
        .output()
        .expect("run ringmq-loadgen quickstart");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn result_json(dir: &Path) -> serde_json::Value {
    result_json_named(dir, "-e2e.json")
}

fn result_json_named(dir: &Path, suffix: &str) -> serde_json::Value {
    let json = std::fs::read_dir(dir)
        .expect("results dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a JSON result");
    let name = json
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    assert!(
        name.starts_with("loadgen-") && name.ends_with(suffix),
        "{name}"
    );
    serde_json::from_str(&std::fs::read_to_string(&json).expect("read")).expect("valid JSON")
}

#[test]
fn quickstart_sync_sends_are_all_consumed_and_verified() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, stdout, stderr) = run_quickstart(&[], dir.path());
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("verify   PASSED"), "{stdout}");
    assert!(stderr.contains("measure"), "no progress line:\n{stderr}");
    let r = result_json(dir.path());
    assert!(r["send"]["ok_messages"].as_u64().unwrap_or(0) > 0, "{r}");
    assert_eq!(r["verify"]["missing"], 0, "{r}");
    assert_eq!(r["verify"]["corrupt_bodies"], 0, "{r}");
    assert_eq!(r["verify"]["acknowledged"], r["verify"]["consumed"], "{r}");
    assert_eq!(r["target"]["flush_disk_type"], "ASYNC_FLUSH");
    assert!(
        r["consume"]["end_to_end_latency_us"]["count"]
            .as_u64()
            .unwrap_or(0)
            > 0
    );
    assert!(r["host"]["logical_cpus"].as_u64().unwrap_or(0) >= 1);
    assert!(
        dir.path().read_dir().expect("dir").count() == 2,
        "JSON and markdown"
    );
}

#[test]
fn quickstart_with_a_sync_master_slave_is_verified_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, stdout, stderr) = run_quickstart(
        &["--replication", "SYNC_MASTER", "--broker-cpus", "2"],
        dir.path(),
    );
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("verify   PASSED"), "{stdout}");
    let r = result_json(dir.path());
    assert_eq!(r["target"]["broker_role"], "SYNC_MASTER");
    // The slave attached before the load, so no send was answered SLAVE_NOT_AVAILABLE.
    assert_eq!(r["send"]["failed_messages"], 0, "{r}");
    let notes = r["notes"].to_string();
    assert!(notes.contains("replication verified"), "{notes}");
    assert!(notes.contains("slave lag at the end"), "{notes}");
}

#[test]
fn quickstart_batch_open_loop_under_sync_flush_is_verified() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, stdout, stderr) = run_quickstart(
        &[
            "--flush",
            "SYNC_FLUSH",
            "--mode",
            "batch",
            "--batch-size",
            "8",
            "--rate",
            "2000",
        ],
        dir.path(),
    );
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let r = result_json(dir.path());
    assert_eq!(r["target"]["flush_disk_type"], "SYNC_FLUSH");
    assert_eq!(r["verify"]["missing"], 0, "{r}");
    assert!(
        r["send"]["publish_delay_us"]["count"].as_u64().unwrap_or(0) > 0,
        "{r}"
    );
    // The broker's own fdatasync counters (GET_BROKER_RUNTIME_INFO), not the disk's flush
    // requests: under SYNC_FLUSH every acknowledged batch was covered by at least one.
    let flush = &r["broker_flush"];
    assert!(
        flush["source"]
            .as_str()
            .unwrap_or_default()
            .contains("GET_BROKER_RUNTIME_INFO"),
        "{r}"
    );
    assert!(flush["fdatasyncs"].as_u64().unwrap_or(0) > 0, "{r}");
    assert!(
        flush["records_per_fdatasync"].as_f64().unwrap_or(0.0) >= 1.0,
        "{r}"
    );
}

#[test]
fn quickstart_async_over_several_topics_with_keys_tags_and_a_message_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, stdout, stderr) = run_quickstart(
        &[
            "--mode",
            "async",
            "--topics",
            "3",
            "--keys",
            "--tags",
            "4",
            "--messages",
            "3000",
            "--max-in-flight",
            "8",
            "--message-size-bytes",
            "512",
        ],
        dir.path(),
    );
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let r = result_json(dir.path());
    assert_eq!(r["send"]["ok_messages"], 3000, "{r}");
    assert_eq!(r["verify"]["missing"], 0, "{r}");
    assert_eq!(r["verify"]["duplicated"], 0, "{r}");
    assert_eq!(r["settings"]["topics"], 3);
}

#[test]
fn quickstart_orderly_keeps_every_key_in_order_while_a_consumer_joins_and_leaves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, stdout, stderr) = run_quickstart(
        &["--orderly", "--churn-consumers", "1", "--messages", "4000"],
        dir.path(),
    );
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("order    PASSED"), "{stdout}");
    let r = result_json(dir.path());
    let order = &r["verify"]["order"];
    assert_eq!(order["violations"], 0, "{r}");
    assert_eq!(order["unchecked_skips"], 0, "{r}");
    // 4 producers x 8 keys, every one consumed.
    assert_eq!(order["keys_checked"], 32, "{r}");
    assert_eq!(order["messages_checked"], r["verify"]["consumed"], "{r}");
    // The joining consumer held a queue before the producers went on and consumed from it
    // before leaving, so keys changed hands at least once.
    assert!(order["handovers"].as_u64().unwrap_or(0) > 0, "{r}");
    assert_eq!(r["verify"]["missing"], 0, "{r}");
    assert!(order["redeliveries"].is_u64(), "{r}");
}

#[test]
fn quickstart_filter_compare_drains_the_backlog_filtered_and_unfiltered() {
    assert!(sibling_binaries_built(), "build the servers first");
    let dir = tempfile::tempdir().expect("tempdir");
    let results = dir.path().to_string_lossy().into_owned();
    let producers = 4;
    let o = Command::new(env!("CARGO_BIN_EXE_ringmq-loadgen"))
        .args(["quickstart", "--consumers", "0", "--messages", "4000"])
        .args(["--warmup-secs", "1", "--producers", &producers.to_string()])
        .args(["--connections", "2", "--queues", "4", "--props", "10"])
        .args(["--sql", "p = 0", "--filter-compare", "--drain-secs", "60"])
        .args(["--results-dir", &results, "--label", "e2e"])
        .output()
        .expect("run ringmq-loadgen quickstart");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let r = result_json(dir.path());
    let compare = &r["filter_compare"];
    let backlog = compare["backlog"].as_u64().unwrap_or(0);
    assert!(backlog >= 4000, "{r}");
    let drains = compare["drains"].as_array().expect("drains");
    assert_eq!(drains.len(), 4, "{r}");
    for d in drains {
        assert_eq!(d["complete"], true, "{r}");
        assert_eq!(d["scanned"], backlog, "{r}");
        let delivered = d["delivered"].as_u64().unwrap_or(0);
        if d["arm"] == "unfiltered" {
            assert_eq!(delivered, backlog, "{r}");
        } else {
            // p = sequence % 10 per producer: each producer's first of every ten matches.
            assert!(
                delivered >= backlog / 10 && delivered <= backlog / 10 + producers,
                "{r}"
            );
        }
    }
    assert!(stdout.contains("filtered/unfiltered scan rate"), "{stdout}");
}

/// The PIDs the quickstart announces on stderr: `… (pid N) … (pid M, …)`.
fn announced_pids(stderr: &str) -> Vec<u32> {
    stderr
        .lines()
        .filter(|l| l.starts_with("quickstart:"))
        .flat_map(|l| l.split("(pid ").skip(1))
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

#[test]
fn ctrl_c_stops_the_run_writes_the_report_and_stops_both_servers() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    assert!(
        sibling_binaries_built(),
        "build the servers first: cargo build --workspace --bins"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringmq-loadgen"))
        .args([
            "quickstart",
            "--duration-secs",
            "600",
            "--warmup-secs",
            "0",
            "--producers",
            "2",
            "--connections",
            "1",
            "--consumers",
            "1",
            "--queues",
            "2",
            "--label",
            "interrupted",
            "--results-dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start quickstart");
    // Read stderr until the first measured progress line, then interrupt. If the test fails
    // before the interrupt, the guard kills the 600 s run (its servers die with it: the load
    // generator starts them with PR_SET_PDEATHSIG).
    let stderr = child.stderr.take().expect("stderr");
    let mut guard = KillOnDrop(Some(child));
    let mut stderr_lines = BufReader::new(stderr).lines();
    let mut seen = String::new();
    for line in stderr_lines.by_ref() {
        let line = line.expect("stderr line");
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("measure") {
            break;
        }
    }
    let pids = announced_pids(&seen);
    assert_eq!(pids.len(), 2, "announced pids in:\n{seen}");
    let child = guard.0.take().expect("still running");
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let rest: Vec<String> = stderr_lines.map_while(Result::ok).collect();
    let output = child.wait_with_output().expect("quickstart exits");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{seen}{}",
        rest.join("\n")
    );
    assert!(stdout.contains("interrupted (Ctrl-C)"), "{stdout}");
    for pid in pids {
        assert!(
            unsafe { libc::kill(pid as libc::pid_t, 0) } != 0,
            "server {pid} still running"
        );
    }
    let r = result_json_named(dir.path(), "-interrupted.json");
    assert!(r["send"]["ok_messages"].as_u64().unwrap_or(0) > 0, "{r}");
}

/// A child killed (SIGKILL) and reaped when dropped, unless taken out first.
struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
