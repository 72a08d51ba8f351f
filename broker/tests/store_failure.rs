//! A write-path I/O error is never retried silently: the log turns read-only, every append
//! fails with `StoreError::ReadOnly`, reads keep working. The errors are real, from the kernel:
//! a child process runs with RLIMIT_FSIZE, so either preallocating a commit-log segment fails
//! with EFBIG (limit below the segment size) or, later, the write that grows the index file
//! past the limit comes back short.

mod store_support;

use std::process::{Command, Stdio};

use ringmq_broker::store::{FlushMode, GetRequest, GetStatus, Store, StoreError};
use store_support::{record, run, small_config};

const CHILD_ENV: &str = "RINGMQ_STORE_FAILURE_CHILD";

/// Longest a child test process may run.
const CHILD_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(120);

fn child_main(spec: &str, mode: FlushMode) {
    let (dir, limit) = spec.split_once('|').unwrap();
    let limit: u64 = limit.parse().unwrap();
    // SAFETY: plain libc calls on this process's own limits and signal disposition.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let lim = libc::rlimit {
            rlim_cur: limit,
            rlim_max: libc::RLIM_INFINITY,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
    let mut cfg = small_config(std::path::Path::new(dir), mode);
    cfg.segment_size_bytes = 32 * 1024;
    cfg.max_record_bytes = 8 * 1024;
    // Index files large enough that the index (20 keys a record) is the first derived file to
    // grow past the limit.
    cfg.index_entries_per_file = 4096;
    let keys: String = (0..20).map(|k| format!("key{k} ")).collect();
    let props = format!("KEYS\x01{keys}\x02");
    run(|| async {
        let store = Store::open(cfg).await.unwrap();
        let body = vec![5u8; 1000];
        let mut ok = 0u64;
        let err = loop {
            match store
                .append(&[record("F", 0, &body, props.as_bytes())])
                .await
            {
                Ok(_) => ok += 1,
                Err(e) => break e,
            }
            assert!(ok < 100_000, "the size limit never hit");
        };
        assert!(matches!(err, StoreError::ReadOnly { .. }), "{err}");
        assert!(
            err.to_string().contains("preallocate") || err.to_string().contains("write"),
            "{err}"
        );
        // Every later append fails the same way; nothing is retried behind the caller's back.
        for _ in 0..3 {
            assert!(matches!(
                store.append(&[record("F", 0, b"x", b"")]).await,
                Err(StoreError::ReadOnly { .. })
            ));
        }
        assert!(store.read_only_cause().is_some());
        // What was acknowledged is still readable.
        let req = GetRequest {
            topic: "F",
            queue_id: 0,
            offset: 0,
            max_count: 1000,
            max_bytes: 1 << 30,
            tag_hashes: None,
        };
        let res = store.get_messages(&req).await.unwrap();
        let expect = if ok == 0 {
            GetStatus::NoMessageInQueue
        } else {
            GetStatus::Found
        };
        assert_eq!(res.status, expect);
        assert_eq!(u64::from(res.message_count), res.max_offset.min(1000));
        assert!(res.max_offset >= ok);
        assert!(store.close().await.is_err(), "close reports the failure");
        println!("READONLY-OK {ok} {err}");
    });
}

fn run_child(test_name: &str, mode: FlushMode, limit_bytes: u64) -> String {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child_main(&spec, mode);
        return String::new();
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{}|{limit_bytes}", dir.path().display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run child");
    // Bounded: a child that hangs is killed and the test fails with what it printed.
    let started = std::time::Instant::now();
    while child.try_wait().expect("poll child").is_none() {
        if started.elapsed() > CHILD_WAIT_MAX {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("child output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}");
    assert!(stdout.contains("READONLY-OK"), "child output: {stdout}");
    stdout.into_owned()
}

#[test]
fn index_write_error_makes_log_read_only_async() {
    let out = run_child(
        "index_write_error_makes_log_read_only_async",
        FlushMode::Async,
        32 * 1024,
    );
    assert!(out.is_empty() || out.contains(".idx"), "{out}");
}

#[test]
fn index_write_error_makes_log_read_only_sync() {
    let out = run_child(
        "index_write_error_makes_log_read_only_sync",
        FlushMode::Sync,
        32 * 1024,
    );
    assert!(out.is_empty() || out.contains(".idx"), "{out}");
}

#[test]
fn segment_preallocate_error_fails_first_append() {
    let out = run_child(
        "segment_preallocate_error_fails_first_append",
        FlushMode::Sync,
        16 * 1024,
    );
    assert!(
        out.is_empty() || out.contains("READONLY-OK 0 ") && out.contains("preallocate"),
        "{out}"
    );
}
