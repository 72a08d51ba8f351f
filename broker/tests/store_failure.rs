//! A write-path I/O error is never retried silently: the log turns read-only, every append
//! fails with `StoreError::ReadOnly`, reads keep working. The error is real: a child process
//! runs with RLIMIT_FSIZE so the kernel refuses (EFBIG) to extend the log into a new segment.

mod store_support;

use std::process::{Command, Stdio};

use ringmq_broker::store::{FlushMode, GetRequest, GetStatus, Store, StoreError};
use store_support::{record, run, small_config};

const CHILD_ENV: &str = "RINGMQ_STORE_FAILURE_CHILD";

fn child_main(dir: &str, mode: FlushMode) {
    // SAFETY: plain libc calls on this process's own limits and signal disposition.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let lim = libc::rlimit {
            rlim_cur: 100 * 1024,
            rlim_max: libc::RLIM_INFINITY,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
    let cfg = small_config(std::path::Path::new(dir), mode);
    run(|| async {
        let store = Store::open(cfg).await.unwrap();
        let body = vec![5u8; 1000];
        let mut ok = 0u64;
        let err = loop {
            match store.append(&[record("F", 0, &body, b"")]).await {
                Ok(_) => ok += 1,
                Err(e) => break e,
            }
            assert!(ok < 10_000, "the size limit never hit");
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
        assert_eq!(res.status, GetStatus::Found);
        assert_eq!(u64::from(res.message_count), res.max_offset);
        assert!(res.max_offset >= ok);
        assert!(store.close().await.is_err(), "close reports the failure");
        println!("READONLY-OK {ok}");
    });
}

fn run_child(test_name: &str, mode: FlushMode) {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child_main(&dir, mode);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .expect("run child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}");
    assert!(stdout.contains("READONLY-OK"), "child output: {stdout}");
}

#[test]
fn write_error_makes_log_read_only_async() {
    run_child("write_error_makes_log_read_only_async", FlushMode::Async);
}

#[test]
fn write_error_makes_log_read_only_sync() {
    run_child("write_error_makes_log_read_only_sync", FlushMode::Sync);
}
