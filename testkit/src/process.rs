//! A child process owned by a test: it dies with the test binary (PDEATHSIG), it is killed by
//! PID and reaped when its guard drops (also when the test fails), and its stdout and stderr
//! go to a log file that failures quote.

use std::ffi::OsStr;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::wait::WAIT_LIMIT;

/// How often a wait polls the child.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A running child; SIGKILLed and reaped on drop unless it was stopped before.
pub struct ChildGuard {
    child: Option<Child>,
    pub name: String,
    pub log_path: PathBuf,
}

impl ChildGuard {
    /// Starts `binary` with `args`, its output appended to `log_path`. The environment's
    /// `NAMESRV_ADDR` is removed (a test names its name server explicitly) and `RUST_LOG`
    /// defaults to `info`.
    pub fn spawn<S: AsRef<OsStr>>(
        name: &str,
        binary: &Path,
        args: &[S],
        log_path: PathBuf,
    ) -> ChildGuard {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap_or_else(|e| panic!("create {}: {e}", log_path.display()));
        let mut command = Command::new(binary);
        die_with_this_process(&mut command);
        command
            .args(args)
            .env_remove("NAMESRV_ADDR")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log);
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info");
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));
        ChildGuard::adopt(name, child, log_path)
    }

    /// Takes ownership of a child started elsewhere (e.g. with a piped stdout).
    pub fn adopt(name: &str, child: Child, log_path: PathBuf) -> ChildGuard {
        ChildGuard {
            child: Some(child),
            name: name.to_string(),
            log_path,
        }
    }

    fn child(&mut self) -> &mut Child {
        self.child
            .as_mut()
            .unwrap_or_else(|| panic!("{} was already stopped", self.name))
    }

    pub fn pid(&self) -> i32 {
        let child = self.child.as_ref().expect("running");
        i32::try_from(child.id()).expect("pids fit pid_t")
    }

    /// Sends `signal` to the process by PID (SIGSTOP, SIGCONT, SIGINT ...).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the PID of a child this guard owns and has not reaped yet, so the
        // PID cannot have been reused.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill({}, {signal})", self.pid());
    }

    /// What the process wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && matches!(self.child().try_wait(), Ok(None))
    }

    /// kill -9 by PID and reap: no shutdown work runs.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait_exit()
    }

    /// Waits (bounded by [`WAIT_LIMIT`]) for the process to exit on its own.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait for a child") {
                return status;
            }
            if started.elapsed() > WAIT_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} did not exit within {WAIT_LIMIT:?}", self.name);
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Waits until `port` on 127.0.0.1 accepts connections; `Err(exit status and log)` if the
    /// process exited first. Panics past [`WAIT_LIMIT`].
    pub fn try_wait_listening(&mut self, port: u16) -> Result<(), String> {
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = self.child().try_wait().expect("poll a child") {
                self.child = None;
                return Err(format!("exit status {status}\n{}", self.log()));
            }
            assert!(
                started.elapsed() < WAIT_LIMIT,
                "{} not listening on {port}:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(POLL_INTERVAL);
        }
        Ok(())
    }

    /// As [`ChildGuard::try_wait_listening`], panicking with the log if the process exited.
    pub fn wait_listening(&mut self, port: u16) {
        if let Err(log) = self.try_wait_listening(port) {
            panic!("{} exited before listening on {port}:\n{log}", self.name);
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The child gets SIGKILL when the thread that started it ends (the test's thread, or the
/// whole test binary if it is killed), so no server outlives its test.
pub fn die_with_this_process(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the child's own state.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
