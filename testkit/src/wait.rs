//! Bounded waits for conditions that depend on background work (registration, rebalancing,
//! replication): the bound only turns a hang into a failure, it never stands in for a result.

use std::time::{Duration, Instant};

/// Upper bound for anything a test waits on; a healthy run needs a small fraction of it.
pub const WAIT_LIMIT: Duration = Duration::from_secs(30);
/// How often a condition is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Polls `condition` until it holds; panics naming `what` after [`WAIT_LIMIT`].
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT_LIMIT;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {WAIT_LIMIT:?} waiting for {what}"
        );
        std::thread::sleep(POLL_INTERVAL);
    }
}
