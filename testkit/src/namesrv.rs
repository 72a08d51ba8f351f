//! A real `ringmq-namesrv` on an OS-chosen loopback port: the port is read from its boot line
//! (as an operator reads it), so there is no window in which another process takes it.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use crate::process::{die_with_this_process, ChildGuard};
use crate::wait::WAIT_LIMIT;

/// What the name server prints once it listens, followed by the address.
const BOOT_LINE_PREFIX: &str = "The Name Server boot success. listening on ";

/// A running name server; killed by PID on drop.
pub struct NamesrvProcess {
    pub process: ChildGuard,
    pub addr: SocketAddr,
}

impl NamesrvProcess {
    /// Starts `binary` with exactly `args` (which should include `--listen 127.0.0.1:0`),
    /// its output in `log_path`, and waits for the boot line.
    ///
    /// Never restart one on a port it used before: listeners set SO_REUSEPORT, so a port
    /// freed by a kill can meanwhile be bound by another test's process.
    pub fn start(binary: &Path, args: &[&str], log_path: PathBuf) -> NamesrvProcess {
        let log = std::fs::File::create(&log_path)
            .unwrap_or_else(|e| panic!("create {}: {e}", log_path.display()));
        let mut command = Command::new(binary);
        die_with_this_process(&mut command);
        let mut child = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log.try_clone().expect("clone the log handle"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        // The guard exists before waiting, so the child is killed even if it never boots.
        let process = ChildGuard::adopt("ringmq-namesrv", child, log_path);
        let lines = forward_lines(stdout, log);
        let addr = wait_boot_line(&process, &lines);
        NamesrvProcess { process, addr }
    }

    pub fn addr_string(&self) -> String {
        self.addr.to_string()
    }
}

/// Copies the child's stdout into its log and hands each line to the returned channel.
fn forward_lines(
    stdout: std::process::ChildStdout,
    mut log: std::fs::File,
) -> mpsc::Receiver<String> {
    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(log, "{line}");
            // The test may have stopped listening; the log still gets every line.
            let _ = lines_tx.send(line);
        }
    });
    lines_rx
}

fn wait_boot_line(process: &ChildGuard, lines: &mpsc::Receiver<String>) -> SocketAddr {
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = lines.recv_timeout(left) else {
            panic!("ringmq-namesrv printed no boot line:\n{}", process.log());
        };
        if let Some(addr) = line.strip_prefix(BOOT_LINE_PREFIX) {
            return addr.trim().parse().expect("the boot line names an address");
        }
    }
}
