//! Bad input to the `ringmq-loadgen` binary: a clear error, a non-zero status, nothing started.

use std::net::TcpListener;
use std::process::{Command, Output};

fn loadgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringmq-loadgen"))
        .args(args)
        .output()
        .expect("run ringmq-loadgen")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn invalid_combinations_are_refused_with_the_flag_named() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["run", "--message-size-bytes", "8"],
            "--message-size-bytes 8",
        ),
        (&["run", "--verify", "--mode", "oneway"], "oneway"),
        (
            &["run", "--producers", "2", "--connections", "3"],
            "--connections 3",
        ),
        (&["run", "--cpus", "x"], "--cpus"),
    ];
    for (args, needle) in cases {
        let o = loadgen(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn unknown_flags_and_modes_are_usage_errors() {
    for args in [
        &["run", "--mode", "fast"][..],
        &["run", "--no-such-flag"],
        &["bogus"],
    ] {
        let o = loadgen(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn an_unreachable_name_server_fails_within_the_setup_timeout() {
    // A port nobody listens on: bind, read the port, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let namesrv = format!("127.0.0.1:{port}");
    let o = loadgen(&[
        "run",
        "--namesrv",
        &namesrv,
        "--setup-timeout-secs",
        "1",
        "--results-dir",
        "none",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no broker registered"),
        "{}",
        stderr(&o)
    );
}
