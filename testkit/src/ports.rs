//! Free loopback ports. ringmq's servers listen with SO_REUSEPORT, so two tests given the same
//! free port would both bind it and share its connections: a port is never handed out twice in
//! one test binary, even after the process that used it stopped (another test may be
//! restarting on it).

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Attempts before giving up on finding a port.
const ATTEMPTS: usize = 100;
/// A broker listens on its port p, on its VIP port p − 2 and (as a master) on its HA port p + 1.
const VIP_PORT_OFFSET: u16 = 2;
const HA_PORT_OFFSET: u16 = 1;

fn handed_out() -> MutexGuard<'static, HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn os_chosen_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind an OS-chosen loopback port")
        .port()
}

/// A free port not handed out before.
pub fn free_port() -> u16 {
    for _ in 0..ATTEMPTS {
        let port = os_chosen_port();
        if handed_out().insert(port) {
            return port;
        }
    }
    panic!("no free port found");
}

/// A port p such that p, p − 2 and p + 1 were all free a moment ago (a broker listens on the
/// first two, a master also on the third) and none was handed out before.
pub fn free_port_pair() -> u16 {
    for _ in 0..ATTEMPTS {
        let port = os_chosen_port();
        if port <= 1024 + VIP_PORT_OFFSET || port == u16::MAX {
            continue;
        }
        let (vip, ha) = (port - VIP_PORT_OFFSET, port + HA_PORT_OFFSET);
        let mut handed = handed_out();
        if [port, vip, ha].iter().any(|p| handed.contains(p)) {
            continue;
        }
        let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(vip) && free(ha) {
            handed.extend([port, vip, ha]);
            return port;
        }
    }
    panic!("no free port pair found");
}

/// Starts a server with `start(port)` on fresh port pairs until it does not refuse with the
/// servers' "… already in use" (a port picked free can be taken by another process before the
/// server binds it). `start` returns `Err(log)` when the server exited; other failures panic
/// with the log, and so does the last attempt.
pub fn start_on_free_port_pair<T>(mut start: impl FnMut(u16) -> Result<T, String>) -> T {
    const START_ATTEMPTS: usize = 3;
    for attempt in 1..=START_ATTEMPTS {
        let port = free_port_pair();
        match start(port) {
            Ok(server) => return server,
            Err(log) if log.contains("already in use") && attempt < START_ATTEMPTS => continue,
            Err(log) => panic!("server on {port} did not start:\n{log}"),
        }
    }
    unreachable!("the last attempt returns or panics")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_never_handed_out_twice() {
        let mut seen = HashSet::new();
        for _ in 0..20 {
            let pair = free_port_pair();
            assert!(seen.insert(pair));
            assert!(seen.insert(pair - VIP_PORT_OFFSET) && seen.insert(pair + HA_PORT_OFFSET));
            assert!(seen.insert(free_port()));
        }
    }
}
