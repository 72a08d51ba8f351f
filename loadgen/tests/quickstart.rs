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
    let mut args = vec![
        "quickstart",
        "--duration-secs",
        "2",
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
    ];
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
        name.starts_with("loadgen-") && name.ends_with("-e2e.json"),
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
}
