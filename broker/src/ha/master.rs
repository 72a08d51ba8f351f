//! The master side of one shard: accept slaves on `haListenPort + k`, check each one's HELLO,
//! then push log bytes from its end on while reading its ACKs.

use std::rc::Rc;

use glommio::net::{TcpListener, TcpStream};

use super::state::MasterState;
use super::wire::{self, Frame, Hello, RefuseCode, DATA_CHUNK_MAX_BYTES};
use super::{read_frame, write_frame, HaError, HaSettings};
use crate::store::offset::split_global;
use crate::store::Store;

/// Accepts slaves until [`MasterState::stop`]. Each slave is served by its own task.
pub async fn run_master(
    listener: TcpListener,
    store: Rc<Store>,
    state: Rc<MasterState>,
    settings: HaSettings,
) {
    let accept = async {
        loop {
            let stream = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(shard = settings.shard_id, "HA accept failed: {e}");
                    glommio::timer::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (store, state, settings) = (store.clone(), state.clone(), settings.clone());
            glommio::spawn_local(async move {
                let peer = stream
                    .peer_addr()
                    .map_or_else(|_| "?".to_string(), |a| a.to_string());
                let stop = state.clone();
                let served = serve_slave(stream, &peer, &store, &state, &settings);
                let result = futures_lite::future::or(served, async {
                    stop.stopped().await;
                    Ok(())
                })
                .await;
                if let Err(e) = result {
                    tracing::warn!(shard = settings.shard_id, %peer, "HA slave connection ended: {e}");
                }
            })
            .detach();
        }
    };
    futures_lite::future::or(accept, state.stopped()).await;
}

/// Why HELLO cannot be served, checked in this order: version (by the decoder), shard count,
/// shard id, a slave log longer than the master's, one the master no longer retains, and last
/// bytes that differ.
async fn check_hello(
    hello: &Hello,
    store: &Store,
    settings: &HaSettings,
) -> Result<(), (RefuseCode, String)> {
    if hello.shard_count != settings.shard_count {
        return Err((
            RefuseCode::ShardCount,
            format!(
                "slave runs {} shards, master runs {}",
                hello.shard_count, settings.shard_count
            ),
        ));
    }
    let (owner, _) = split_global(hello.end);
    if hello.shard_id != settings.shard_id || u16::from(owner) != settings.shard_id {
        return Err((
            RefuseCode::WrongShard,
            format!(
                "slave shard {} (offset {}) dialled master shard {}",
                hello.shard_id, hello.end, settings.shard_id
            ),
        ));
    }
    let log = store.log_offsets();
    if hello.end > log.written {
        return Err((
            RefuseCode::Diverged,
            format!(
                "slave log ends at {}, beyond the master's end {}: the master lost data the slave holds",
                hello.end, log.written
            ),
        ));
    }
    let empty_slave = split_global(hello.end).1 == 0;
    if hello.end < log.min || (empty_slave && split_global(log.min).1 > 0) {
        return Err((
            RefuseCode::BehindRetention,
            format!(
                "slave log ends at {}, below the master's min offset {}",
                hello.end, log.min
            ),
        ));
    }
    if hello.tail_len > 0 {
        let ours = store
            .read_raw(hello.tail_from, hello.tail_len as usize)
            .await
            .map_err(|e| (RefuseCode::Diverged, e.to_string()))?;
        if ours.len() == hello.tail_len as usize && crc32fast::hash(&ours) != hello.tail_crc {
            return Err((
                RefuseCode::Diverged,
                format!(
                    "bytes [{}, {}) differ between master and slave",
                    hello.tail_from, hello.end
                ),
            ));
        }
    }
    Ok(())
}

async fn serve_slave(
    stream: TcpStream,
    peer: &str,
    store: &Rc<Store>,
    state: &MasterState,
    settings: &HaSettings,
) -> Result<(), HaError> {
    // DATA frames are small when the load is light: Nagle would hold them for the slave's
    // delayed ACK (tens of ms on every SYNC_MASTER send).
    stream
        .set_nodelay(true)
        .map_err(|e| HaError::Io(std::io::Error::other(e.to_string())))?;
    let (mut r, mut w) = futures_lite::io::split(stream);
    let mut buf = Vec::new();
    let mut scratch = Vec::new();
    let kind = read_frame(&mut r, &mut buf, settings.housekeeping()).await?;
    let Frame::Hello(hello) = wire::decode_payload(kind, &buf)? else {
        return Err(HaError::Protocol("first frame is not HELLO".into()));
    };
    if let Err((code, text)) = check_hello(&hello, store, settings).await {
        tracing::error!(shard = settings.shard_id, %peer, ?code, "refusing slave: {text}");
        write_frame(&mut w, &Frame::Refuse { code, text: &text }, &mut scratch).await?;
        return Ok(());
    }
    let welcome = Frame::Welcome {
        shard_count: settings.shard_count,
        shard_id: settings.shard_id,
        master_written: store.log_offsets().written,
    };
    write_frame(&mut w, &welcome, &mut scratch).await?;
    let link = state.attach(peer.to_string(), hello.end);
    tracing::info!(shard = settings.shard_id, %peer, from = hello.end, "slave attached");
    let acks = read_acks(&mut r, link, store, state, settings);
    let push = push_log(&mut w, hello.end, store, settings);
    let result = futures_lite::future::or(acks, push).await;
    state.detach(link);
    tracing::info!(shard = settings.shard_id, %peer, "slave detached");
    result
}

/// Reads the slave's cumulative ACKs (and heartbeats, which are ACKs too).
async fn read_acks<R: futures_lite::AsyncRead + Unpin>(
    r: &mut R,
    link: u64,
    store: &Store,
    state: &MasterState,
    settings: &HaSettings,
) -> Result<(), HaError> {
    let mut buf = Vec::new();
    loop {
        let kind = read_frame(r, &mut buf, settings.housekeeping()).await?;
        match wire::decode_payload(kind, &buf)? {
            Frame::Ack { end } => {
                let written = store.log_offsets().written;
                state.acknowledge(link, end, written, crate::store::now_ms());
            }
            other => return Err(HaError::Protocol(format!("unexpected frame {other:?}"))),
        }
    }
}

/// Pushes log bytes from `from` on as the master writes them: each DATA frame carries up to
/// [`DATA_CHUNK_MAX_BYTES`] of whatever was written since the last one (the batch is what
/// gathered), and an empty DATA frame goes out as a heartbeat when nothing was.
async fn push_log<W: futures_lite::AsyncWrite + Unpin>(
    w: &mut W,
    from: u64,
    store: &Store,
    settings: &HaSettings,
) -> Result<(), HaError> {
    let mut cursor = from;
    let mut scratch = Vec::with_capacity(DATA_CHUNK_MAX_BYTES + 64);
    loop {
        let Some(written) = store.wait_written_past(cursor, settings.heartbeat()).await else {
            return Ok(()); // the store is closing or failed: nothing more will come
        };
        let bytes = if written > cursor {
            store.read_raw(cursor, DATA_CHUNK_MAX_BYTES).await?
        } else {
            Vec::new()
        };
        if written > cursor && bytes.is_empty() {
            return Err(HaError::Protocol(format!(
                "offset {cursor} is no longer retained by the master"
            )));
        }
        let frame = Frame::Data {
            offset: cursor,
            master_written: written,
            bytes: &bytes,
        };
        write_frame(w, &frame, &mut scratch).await?;
        cursor += bytes.len() as u64;
    }
}
