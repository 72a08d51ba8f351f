//! A shard's listeners and connections: accepting within the connection bound, and serving
//! one connection (reader, writer, accounting) until it ends.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use glommio::net::TcpListener;

use super::conn::{self, ConnEnd};
use super::dispatch::ShardRef;
use super::mesh::ShardMsg;
use super::placement::METADATA_SHARD;
use super::shard::Shard;
use super::slots::Slot;
use crate::channel::{self, ConnId};

/// Pause after a failed accept (EMFILE and the like) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

pub(super) fn bind(shard: &Shard, port: u16) -> glommio::Result<TcpListener, ()> {
    // glommio's bind sets SO_REUSEPORT, so every shard binds the same port and the kernel
    // spreads incoming connections over them.
    TcpListener::bind((shard.config.broker_ip1.as_str(), port))
}

pub(super) async fn accept_loop(shard: Rc<Shard>, listener: TcpListener) {
    let limits = &shard.config.limits;
    // Each shard takes its share of the broker-wide bound, rounded up.
    let connections_max = limits.connections_max.div_ceil(shard.shards);
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning; the listener stays.
                tracing::warn!(shard = shard.id.0, "accept failed: {e}");
                glommio::timer::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Some(slot) = shard.connections.try_acquire(connections_max) else {
            // Closing at once tells the client to try elsewhere; holding it would use memory.
            tracing::warn!(
                shard = shard.id.0,
                connections_max,
                "connection refused: ringmqMaxConnections reached"
            );
            continue;
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!("TCP_NODELAY: {e}");
        }
        let idle = Duration::from_secs(shard.config.server_channel_max_idle_time_seconds);
        if let Err(e) = stream.set_read_timeout(Some(idle)) {
            tracing::warn!("read timeout: {e}");
        }
        let Ok(peer) = stream.peer_addr() else {
            continue;
        };
        glommio::spawn_local(serve_connection(shard.clone(), stream, peer, slot)).detach();
    }
}

/// Reads and writes one connection until it ends, then drops its registrations.
async fn serve_connection(
    shard: Rc<Shard>,
    stream: glommio::net::TcpStream,
    peer: SocketAddr,
    _slot: Slot,
) {
    let counter = shard.next_conn.get();
    shard.next_conn.set(counter + 1);
    let id = ConnId::new(shard.id.0, counter);
    let (handle, outbound, backpressure) =
        channel::new_connection(id, peer, conn_limits(&shard.config.limits));
    let engine = Arc::clone(shard.counters.stats.shared());
    engine.engine.connections.fetch_add(1, Ordering::Relaxed);
    shard.open_connections.opened(&handle);
    let (reader, writer) = futures_lite::io::split(stream);
    let writer_task = glommio::spawn_local(conn::write_loop(writer, outbound));
    let sink = ShardRef(shard.clone());
    let end = conn::read_loop(reader, &handle, &backpressure, &sink).await;
    match &end {
        ConnEnd::PeerClosed => tracing::debug!(conn = id.0, %peer, "connection closed by peer"),
        ConnEnd::Io(e) => tracing::debug!(conn = id.0, %peer, "connection error: {e}"),
        ConnEnd::WriterGone => tracing::debug!(conn = id.0, %peer, "connection write failed"),
        ConnEnd::Malformed(e) => {
            tracing::warn!(conn = id.0, %peer, "malformed frame, closing connection: {e}")
        }
    }
    // Calls waiting for this client's answers fail now rather than at their timeouts.
    handle.close_calls();
    shard.open_connections.closed(id);
    shard.send_control(METADATA_SHARD, ShardMsg::ConnClosed(id));
    // The writer ends once every clone of the handle is gone; a peer that closed or sent
    // garbage gets nothing more, so stop it now (the socket closes with it).
    drop(handle);
    writer_task.cancel().await;
    engine.engine.connections.fetch_sub(1, Ordering::Relaxed);
}

fn conn_limits(limits: &crate::config::FlowLimits) -> channel::ConnLimits {
    channel::ConnLimits {
        write_high_water_bytes: limits.connection_write_high_water_bytes,
        write_low_water_bytes: limits.connection_write_low_water_bytes,
        requests_in_flight_max: limits.connection_requests_in_flight_max,
    }
}
