//! The name server's network side: one glommio executor, one task per connection, one task for
//! the liveness scan. The handler state lives in an `Rc<RefCell<_>>` owned by this one thread;
//! a borrow never spans an await, so no task ever waits on another's borrow, and a slow or
//! stalled connection only ever suspends its own task.
//!
//! Per connection: read into a buffer, take every whole frame off it with `decode_frame`, hand
//! each request to the handler, encode the responses, write them all in one go, read again.
//! A frame that cannot be decoded (oversize, bad lengths, bad header) closes that connection
//! only, after the responses to the frames before it are written. When a connection ends, the
//! brokers that registered on it are dropped.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use glommio::{LocalExecutorBuilder, Placement};
use ringmq_metrics::Exporter;
use ringmq_proto::{decode_frame, RemotingCommand, ResponseCode};
use tracing::{debug, info, warn};

use crate::config::NamesrvConfig;
use crate::handler::Handler;
use crate::metrics::NamesrvMetrics;
use crate::registry::{ConnectionId, RemovedBroker};

/// Bytes asked of the socket per read. Requests to a name server are small; a REGISTER_BROKER
/// body of a large broker arrives in several reads.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// io_uring buffer memory for the executor. The name server does no DMA file I/O, so glommio's
/// 10 MiB default is not needed, and a small value lets it start under common `ulimit -l` limits.
const EXECUTOR_IO_MEMORY_BYTES: usize = 256 * 1024;

/// glommio refuses to start below this RLIMIT_MEMLOCK (its own check).
const GLOMMIO_MIN_MEMLOCK_BYTES: u64 = 512 * 1024;

/// Pause after a failed accept (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "cannot start the glommio executor: {source}. glommio runs on io_uring (Linux 5.8 or \
         later) and registers its buffers in locked memory; RLIMIT_MEMLOCK here is {memlock}, \
         and at least {min_kib} KiB is needed. Raise it with `ulimit -l unlimited` (or `memlock` \
         in /etc/security/limits.conf) and start again"
    )]
    Executor {
        source: glommio::GlommioError<()>,
        memlock: String,
        min_kib: u64,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Milliseconds since the server started, from a monotonic clock: a wall-clock jump must not
/// expire (or revive) brokers.
#[derive(Clone, Copy)]
struct Clock {
    start: Instant,
}

impl Clock {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// Runs the name server on the current thread until the process is stopped. `on_listening` is
/// called once with the bound address (the port may have been 0).
pub fn run(
    config: NamesrvConfig,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), ServerError> {
    let executor = LocalExecutorBuilder::new(Placement::Unbound)
        .name("ringmq-namesrv")
        .io_memory(EXECUTOR_IO_MEMORY_BYTES)
        .make()
        .map_err(|source| ServerError::Executor {
            source,
            memlock: memlock_limit_text(),
            min_kib: GLOMMIO_MIN_MEMLOCK_BYTES / 1024,
        })?;
    executor.run(serve(config, on_listening))
}

async fn serve(
    config: NamesrvConfig,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), ServerError> {
    let listener = bind_exclusive(config.listen).map_err(|source| ServerError::Bind {
        addr: config.listen,
        source,
    })?;
    let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: config.listen,
        source: source.into(),
    })?;
    info!(
        listen = %local_addr,
        scan_interval_ms = config.scan_interval_ms,
        broker_expiry_ms = config.broker_expiry_ms,
        "name server started"
    );
    on_listening(local_addr);

    let clock = Clock {
        start: Instant::now(),
    };
    let scan_interval = Duration::from_millis(config.scan_interval_ms);
    let idle_timeout = Duration::from_millis(config.idle_timeout_ms);
    let metrics = Arc::new(NamesrvMetrics::default());
    // Kept alive for the life of the server; its thread reads only `metrics`.
    let _exporter = match config.metrics_prom_listen {
        Some(addr) => {
            let published = Arc::clone(&metrics);
            let render = Box::new(move || crate::metrics::render(&published));
            let exporter = Exporter::spawn(addr, render)
                .map_err(|source| ServerError::Bind { addr, source })?;
            info!(metrics = %exporter.local_addr(), "serving GET /metrics");
            Some(exporter)
        }
        None => None,
    };
    let state = Rc::new(RefCell::new(Handler::with_metrics(config, metrics)));
    glommio::spawn_local(scan_brokers(state.clone(), clock, scan_interval)).detach();

    let mut next_connection = 0u64;
    loop {
        match listener.accept().await {
            Ok(stream) => {
                next_connection += 1;
                let connection = ConnectionId(next_connection);
                let connection_state = state.clone();
                glommio::spawn_local(serve_connection(
                    stream,
                    connection,
                    connection_state,
                    clock,
                    idle_timeout,
                ))
                .detach();
            }
            Err(error) => {
                warn!(%error, "accept failed; retrying");
                glommio::timer::sleep(ACCEPT_RETRY_DELAY).await;
            }
        }
    }
}

/// Binds without SO_REUSEPORT. glommio's own `TcpListener::bind` sets it (for one listener per
/// executor), which would let a second name server start on the same port and silently take
/// half of the connections, each process seeing half of the brokers. A name server must own
/// its port, so a second one fails with "address in use" instead.
fn bind_exclusive(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    // SAFETY: the descriptor comes from a listening socket we own; `into_raw_fd` gives up that
    // ownership, so glommio's listener is its only owner and closes it.
    Ok(unsafe { TcpListener::from_raw_fd(listener.into_raw_fd()) })
}

async fn scan_brokers(state: Rc<RefCell<Handler>>, clock: Clock, interval: Duration) {
    loop {
        glommio::timer::sleep(interval).await;
        let removed = state.borrow_mut().expire(clock.now_ms());
        log_removed(&removed, "silent past its timeout");
    }
}

fn log_removed(removed: &[RemovedBroker], why: &str) {
    for broker in removed {
        warn!(
            broker = %broker.broker_name,
            addr = %broker.broker_addr,
            id = broker.broker_id,
            cluster = %broker.cluster_name,
            silent_ms = broker.silent_ms,
            "broker removed: {why}"
        );
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    connection: ConnectionId,
    state: Rc<RefCell<Handler>>,
    clock: Clock,
    idle_timeout: Duration,
) {
    let peer = stream
        .peer_addr()
        .map(|addr| addr.to_string())
        .unwrap_or_else(|_| "unknown peer".to_owned());
    if let Err(error) = stream.set_nodelay(true) {
        debug!(%peer, %error, "cannot set TCP_NODELAY");
    }
    // A peer that sends nothing, or accepts none of our bytes, for this long is gone or stuck:
    // close it, as Java's idle handler does. This also bounds how long a non-reading client
    // can hold its task and buffers.
    for (what, result) in [
        ("read", stream.set_read_timeout(Some(idle_timeout))),
        ("write", stream.set_write_timeout(Some(idle_timeout))),
    ] {
        if let Err(error) = result {
            warn!(%peer, %error, "cannot set the {what} timeout");
        }
    }
    debug!(%peer, id = connection.0, "connection opened");
    let end = exchange_frames(&mut stream, connection, &state, clock).await;
    match &end {
        ConnectionEnd::PeerClosed => debug!(%peer, "connection closed by peer"),
        ConnectionEnd::Io(error) if error.kind() == std::io::ErrorKind::TimedOut => {
            info!(%peer, "closing idle connection")
        }
        ConnectionEnd::Io(error) => debug!(%peer, %error, "connection failed"),
        ConnectionEnd::BadFrame(error) => {
            warn!(%peer, %error, "closing connection: malformed frame")
        }
    }
    let removed = state
        .borrow_mut()
        .connection_closed(connection, clock.now_ms());
    log_removed(&removed, "its connection closed");
    // Dropping the stream closes the socket.
}

enum ConnectionEnd {
    PeerClosed,
    Io(std::io::Error),
    BadFrame(String),
}

/// Reads frames and writes responses until the peer closes, the socket fails or a frame is bad.
async fn exchange_frames(
    stream: &mut TcpStream,
    connection: ConnectionId,
    state: &Rc<RefCell<Handler>>,
    clock: Clock,
) -> ConnectionEnd {
    let mut inbound = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut outbound = BytesMut::with_capacity(READ_CHUNK_BYTES);
    loop {
        // Batch: answer every whole frame already buffered, then write once.
        let decode_result = loop {
            match decode_frame(&mut inbound) {
                Ok(Some(request)) => {
                    let response = state
                        .borrow_mut()
                        .handle(&request, connection, clock.now_ms());
                    if let Some(response) = response {
                        encode_response(&request, &response, &mut outbound);
                    }
                }
                Ok(None) => break Ok(()),
                Err(error) => break Err(error.to_string()),
            }
        };
        if !outbound.is_empty() {
            if let Err(error) = stream.write_all(&outbound).await {
                return ConnectionEnd::Io(error);
            }
            outbound.clear();
        }
        if let Err(error) = decode_result {
            return ConnectionEnd::BadFrame(error);
        }
        let filled = inbound.len();
        inbound.resize(filled + READ_CHUNK_BYTES, 0);
        match stream.read(&mut inbound[filled..]).await {
            Ok(0) => return ConnectionEnd::PeerClosed,
            Ok(read) => inbound.truncate(filled + read),
            Err(error) => return ConnectionEnd::Io(error),
        }
    }
}

/// Appends `response`; if it cannot be encoded (e.g. a body past the frame cap), appends a
/// SYSTEM_ERROR response saying why instead, so the client is not left waiting.
fn encode_response(request: &RemotingCommand, response: &RemotingCommand, out: &mut BytesMut) {
    if let Err(error) = response.encode(out) {
        warn!(code = request.code, %error, "cannot encode response");
        let fallback = RemotingCommand::response_to(
            request,
            ResponseCode::SystemError.code(),
            Some(format!("cannot encode response: {error}")),
        );
        if let Err(error) = fallback.encode(out) {
            warn!(code = request.code, %error, "cannot encode error response either");
        }
    }
}

/// The soft RLIMIT_MEMLOCK as text, for the start-up error message.
fn memlock_limit_text() -> String {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own and reads nothing else.
    let result = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) };
    if result != 0 {
        return "unknown".to_owned();
    }
    if limit.rlim_cur == libc::RLIM_INFINITY {
        "unlimited".to_owned()
    } else {
        format!("{} KiB", limit.rlim_cur / 1024)
    }
}
