//! Who owns a broker port.
//!
//! The shards bind their port with SO_REUSEPORT, so a second broker of the same user on the same
//! port would bind too and silently split the traffic. Each port is therefore claimed first with
//! an abstract Unix socket named after it (`@ringmq-broker/<ip>:<port>`): the kernel lets one
//! process hold a name, and frees it the instant that process dies, so
//!
//! * a live broker on the port is detected without connecting to it, and
//! * a broker killed with -9 frees the name at once, even while its io_uring still holds the
//!   listening socket for a moment (the old connect probe mistook that dying listener for a live
//!   broker and refused to start 3 times in 5).
//!
//! A listener of another program (no SO_REUSEPORT) is caught by a trial bind with SO_REUSEPORT,
//! which fails with EADDRINUSE; a dying ringmq listener does not fail it. Abstract names live in
//! the network namespace, as ports do.

use std::net::{IpAddr, SocketAddr};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

/// How long a start waits for the name of a broker that is still exiting.
pub const PORT_CLAIM_WAIT: Duration = Duration::from_secs(3);
/// Poll interval while waiting.
const PORT_CLAIM_POLL: Duration = Duration::from_millis(20);

/// A claimed port; the claim ends when this is dropped or the process dies.
#[derive(Debug)]
pub struct PortClaim {
    _name: UnixListener,
}

/// Why a port cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PortClaimError {
    #[error(
        "port {port} on {ip} is already in use: another ringmq broker serves it (waited {}s for \
         it to exit)",
        PORT_CLAIM_WAIT.as_secs()
    )]
    HeldByBroker { ip: IpAddr, port: u16 },
    #[error("port {port} on {ip} is already in use by another program: {source}")]
    HeldByOther {
        ip: IpAddr,
        port: u16,
        source: std::io::Error,
    },
    #[error("cannot claim port {port} on {ip}: {source}")]
    Io {
        ip: IpAddr,
        port: u16,
        source: std::io::Error,
    },
}

/// Claims `ip:port` for this process, waiting up to [`PORT_CLAIM_WAIT`] for a broker that is
/// exiting, then checks no other program listens there.
pub fn claim(ip: IpAddr, port: u16) -> Result<PortClaim, PortClaimError> {
    let name = format!("ringmq-broker/{ip}:{port}");
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
        .map_err(|source| PortClaimError::Io { ip, port, source })?;
    let started = Instant::now();
    let listener = loop {
        match UnixListener::bind_addr(&address) {
            Ok(listener) => break listener,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                if started.elapsed() >= PORT_CLAIM_WAIT {
                    return Err(PortClaimError::HeldByBroker { ip, port });
                }
                std::thread::sleep(PORT_CLAIM_POLL);
            }
            Err(source) => return Err(PortClaimError::Io { ip, port, source }),
        }
    };
    trial_bind(SocketAddr::new(ip, port)).map_err(|source| PortClaimError::HeldByOther {
        ip,
        port,
        source,
    })?;
    Ok(PortClaim { _name: listener })
}

/// Binds (without listening) as the shards will, and lets go at once.
fn trial_bind(addr: SocketAddr) -> std::io::Result<()> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    #[test]
    fn a_port_is_claimed_once_and_freed_on_drop() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let port = free_port();
        let claim_one = claim(ip, port).expect("free port");
        let started = Instant::now();
        let err = claim(ip, port).expect_err("claimed twice");
        assert!(matches!(err, PortClaimError::HeldByBroker { .. }), "{err}");
        assert!(
            started.elapsed() >= PORT_CLAIM_WAIT,
            "waited for the holder to exit"
        );
        drop(claim_one);
        claim(ip, port).expect("freed on drop");
    }

    #[test]
    fn another_programs_listener_is_refused() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let holder = std::net::TcpListener::bind((ip, 0)).unwrap();
        let port = holder.local_addr().unwrap().port();
        let err = claim(ip, port).expect_err("held by a plain listener");
        assert!(matches!(err, PortClaimError::HeldByOther { .. }), "{err}");
        assert!(err.to_string().contains("already in use"));
    }
}
