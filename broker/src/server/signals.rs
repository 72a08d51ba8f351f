//! SIGTERM / SIGINT become one call to a shutdown function, on a thread of their own.
//!
//! The signals are blocked in the calling thread before any other thread exists, so every
//! thread inherits the mask and none is interrupted; the dedicated thread takes them with
//! `sigwait`. No async-signal-safety puzzles and no handler that touches shard state.

use std::io;

/// Blocks SIGTERM and SIGINT in the calling thread (and so in threads it spawns later).
/// Call first thing in `main`.
pub fn block_termination_signals() -> io::Result<()> {
    let set = termination_set()?;
    // SAFETY: `set` is a valid, initialised sigset_t; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Spawns the thread that waits for SIGTERM/SIGINT and then runs `on_signal` once.
pub fn spawn_signal_thread(on_signal: impl FnOnce(i32) + Send + 'static) -> io::Result<()> {
    let set = termination_set()?;
    std::thread::Builder::new()
        .name("ringmq-signals".to_string())
        .spawn(move || {
            let mut signal: libc::c_int = 0;
            // SAFETY: `set` is initialised and `signal` is a valid out-pointer.
            let rc = unsafe { libc::sigwait(&set, &mut signal) };
            if rc == 0 {
                on_signal(signal);
            } else {
                tracing::error!("sigwait failed: {}", io::Error::from_raw_os_error(rc));
            }
        })?;
    Ok(())
}

fn termination_set() -> io::Result<libc::sigset_t> {
    // SAFETY: sigemptyset initialises the zeroed set; sigaddset adds valid signal numbers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        if libc::sigemptyset(&mut set) != 0
            || libc::sigaddset(&mut set, libc::SIGTERM) != 0
            || libc::sigaddset(&mut set, libc::SIGINT) != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(set)
    }
}
