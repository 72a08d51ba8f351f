//! Child processes the quickstart starts, and Ctrl-C.
//!
//! A started server is owned by a [`ChildGuard`]: dropping it (normal end, error, panic
//! unwinding) stops the process by its PID — SIGTERM, then SIGKILL if it has not exited within
//! the grace period. Children run in their own process group, so a terminal Ctrl-C reaches only
//! the load generator, which then stops them in order; and they carry PR_SET_PDEATHSIG, so a
//! load generator killed with SIGKILL does not leave servers behind.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_signal: libc::c_int) {
    // Only an atomic swap and _exit: both async-signal-safe. The first Ctrl-C stops the run
    // and still writes the report; a second one exits at once (the servers a quickstart
    // started die with us through PR_SET_PDEATHSIG).
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        unsafe { libc::_exit(130) };
    }
}

/// Installs SIGINT/SIGTERM handlers that set the flag [`interrupted`] reads; a second signal
/// exits immediately with status 130.
pub fn install_interrupt_handler() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only performs an atomic store; sigaction is given a fully
        // initialised struct.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_interrupt as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// Whether Ctrl-C (SIGINT) or SIGTERM has been received.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// How long a stopped server gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// A running child process, stopped when dropped.
#[derive(Debug)]
pub struct ChildGuard {
    name: String,
    child: Option<Child>,
    log_path: PathBuf,
}

impl ChildGuard {
    /// Starts `program args…` with stdout and stderr appended to `log_path`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[&str],
        log_path: &Path,
    ) -> anyhow::Result<Self> {
        let log = File::create(log_path)
            .with_context(|| format!("creating {name} log {}", log_path.display()))?;
        let log_err = log.try_clone().context("duplicating the log handle")?;
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {name} ({})", program.display()))?;
        Ok(Self {
            name: name.to_string(),
            child: Some(child),
            log_path: log_path.to_path_buf(),
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `Some(status)` if the process has already exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// The last `lines` lines of the process's log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log_path, lines)
    }

    /// Stops the process (SIGTERM, then SIGKILL after `grace`) and returns its exit status.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        let pid = child.id() as libc::pid_t;
        // SAFETY: kill on the PID of a child we have not yet reaped, so it cannot be reused.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill(); // SIGKILL
        child.wait().ok()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop(STOP_GRACE);
    }
}

/// The last `lines` lines of a file (empty if unreadable).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(file) = File::open(path) else {
        return String::new();
    };
    let all: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: u32) -> bool {
        // Signal 0 checks existence; a zombie still exists, so callers reap first.
        unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
    }

    #[test]
    fn drop_stops_the_process_by_pid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let guard = ChildGuard::spawn(
            "sleeper",
            Path::new("sleep"),
            &["30"],
            &dir.path().join("s.log"),
        )
        .expect("spawn");
        let pid = guard.pid().expect("pid");
        assert!(alive(pid));
        drop(guard);
        assert!(!alive(pid), "process {pid} survived its guard");
    }

    #[test]
    fn stop_escalates_to_sigkill_when_sigterm_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut guard = ChildGuard::spawn(
            "stubborn",
            Path::new("sh"),
            &["-c", "trap '' TERM; echo ready; while :; do sleep 1; done"],
            &dir.path().join("t.log"),
        )
        .expect("spawn");
        // Wait until the trap is installed (the echo follows it).
        for _ in 0..500 {
            if guard.log_tail(1) == "ready" {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let status = guard.stop(Duration::from_millis(200)).expect("status");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert!(
            guard.stop(Duration::ZERO).is_none(),
            "second stop is a no-op"
        );
    }

    #[test]
    fn exit_status_and_log_of_a_failed_start_are_visible() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut guard = ChildGuard::spawn(
            "failing",
            Path::new("sh"),
            &["-c", "echo line1; echo 'bad config' >&2; exit 3"],
            &dir.path().join("f.log"),
        )
        .expect("spawn");
        let status = loop {
            if let Some(s) = guard.exited() {
                break s;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(status.code(), Some(3));
        assert_eq!(guard.log_tail(1), "bad config");
        assert_eq!(guard.log_tail(5), "line1\nbad config");
    }

    #[test]
    fn a_missing_program_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = ChildGuard::spawn(
            "ghost",
            Path::new("/nonexistent/ringmq-x"),
            &[],
            &dir.path().join("g.log"),
        )
        .expect_err("must fail");
        assert!(format!("{err:#}").contains("starting ghost"), "{err:#}");
    }
}
