//! One client connection: a reader that decodes frames and dispatches them, and a writer that
//! sends whatever responses are ready, in the order they become ready.
//!
//! Responses reach the writer through a channel that any shard may send to (a forwarded request
//! is answered by its owner shard directly), so a response never waits for an earlier request
//! on the same connection: a parked pull simply has not put anything into the channel yet.
//! The writer drains everything queued and writes it with one `write_all` (explicit batching).

use bytes::BytesMut;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use glommio::net::TcpStream;
use ringmq_proto::code::ResponseCode;
use ringmq_proto::command::RemotingCommand;
use ringmq_proto::read_buffer::ReadBuffer;

use crate::channel::{Backpressure, ConnHandle, Outbound};

/// Upper bound on bytes the writer gathers into one write.
const WRITE_BATCH_MAX_BYTES: usize = 1024 * 1024;
/// Bodies at least this large are written from their own buffer, not copied into the batch.
const LARGE_BODY_MIN_BYTES: usize = 16 * 1024;
/// Initial capacity of the writer's batch buffer (reused, grows as needed).
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Where the reader hands decoded requests. Implemented by the shard (routing and dispatch).
pub trait RequestSink {
    /// Takes every request decoded from one read, in arrival order. Batching across requests
    /// (one cross-shard message per destination) happens behind this call.
    fn dispatch(&self, conn: &ConnHandle, requests: Vec<RemotingCommand>);
}

/// Why a connection ended, for the log.
#[derive(Debug)]
pub enum ConnEnd {
    PeerClosed,
    Io(std::io::Error),
    /// The writer ended (the socket failed on write) while the reader waited for room.
    WriterGone,
    Malformed(ringmq_proto::error::FrameError),
}

/// Reads frames until the peer closes or sends something undecodable.
pub async fn read_loop(
    mut reader: ReadHalf<TcpStream>,
    conn: &ConnHandle,
    backpressure: &Backpressure,
    sink: &dyn RequestSink,
) -> ConnEnd {
    let mut buf = ReadBuffer::new();
    loop {
        // Past the connection's bounds nothing more is read until its responses drain.
        if !backpressure.room().await {
            return ConnEnd::WriterGone;
        }
        // Reads go into the buffer's reused spare room: no zero-fill or allocation per read.
        let read = match reader.read(buf.spare()).await {
            Ok(0) => return ConnEnd::PeerClosed,
            Ok(n) => n,
            Err(e) => return ConnEnd::Io(e),
        };
        buf.filled(read);
        let mut requests = Vec::new();
        loop {
            match buf.decode() {
                Ok(Some(command)) => {
                    if command.is_response() {
                        // An answer to a server-initiated request: to the call waiting for it,
                        // if any (answers to oneway requests and to calls that timed out have
                        // nobody waiting).
                        let (code, opaque) = (command.code, command.opaque);
                        if !conn.complete_call(command) {
                            tracing::debug!(conn = conn.id.0, code, opaque, "unawaited response");
                        }
                        continue;
                    }
                    conn.note_serialize_type(command.serialize_type);
                    requests.push(command);
                }
                Ok(None) => break,
                Err(e) => {
                    // Requests decoded before the bad frame are still dispatched (as Netty
                    // would have), but the connection closes now, so their answers may be lost.
                    if !requests.is_empty() {
                        sink.dispatch(conn, requests);
                    }
                    return ConnEnd::Malformed(e);
                }
            }
        }
        if !requests.is_empty() {
            sink.dispatch(conn, requests);
        }
    }
}

/// Writes queued commands until every sender is gone or the socket fails. What is written is
/// reported to the connection's accounting, so a reader paused at the high water mark resumes.
pub async fn write_loop(mut writer: WriteHalf<TcpStream>, outbound: Outbound) {
    let mut buf = BytesMut::with_capacity(WRITE_BUFFER_BYTES);
    while let Ok(first) = outbound.commands.recv_async().await {
        let mut next = Some(first);
        // Bytes charged for the commands in `buf` (reported once `buf` is written).
        let mut charged = 0;
        // Everything already queued goes out now, small frames gathered into one write.
        while let Some(command) = next.take() {
            charged += Outbound::charged(&command);
            let sent_large_body =
                command.body.len() >= LARGE_BODY_MIN_BYTES && command.encode_head(&mut buf).is_ok();
            if sent_large_body {
                // A pull body (up to 256 KiB of records) is written from its own buffer
                // instead of being copied behind its header.
                if write_out(&mut writer, &mut buf).await.is_err()
                    || writer.write_all(&command.body).await.is_err()
                {
                    return;
                }
                outbound.written(std::mem::take(&mut charged));
            } else {
                encode_or_error(&command, &mut buf);
            }
            if buf.len() >= WRITE_BATCH_MAX_BYTES {
                if write_out(&mut writer, &mut buf).await.is_err() {
                    return;
                }
                outbound.written(std::mem::take(&mut charged));
            }
            next = outbound.commands.try_recv().ok();
        }
        if write_out(&mut writer, &mut buf).await.is_err() || writer.flush().await.is_err() {
            return;
        }
        outbound.written(charged);
    }
    let _ = writer.close().await;
}

/// Writes and empties `buf` (nothing to do when empty).
async fn write_out(writer: &mut WriteHalf<TcpStream>, buf: &mut BytesMut) -> std::io::Result<()> {
    if !buf.is_empty() {
        writer.write_all(buf).await?;
        buf.clear();
    }
    Ok(())
}

/// Encodes `command`; if it cannot be expressed on the wire (e.g. a body over the frame cap),
/// a response is replaced by SYSTEM_ERROR naming why, so the client is not left waiting.
fn encode_or_error(command: &RemotingCommand, buf: &mut BytesMut) {
    let Err(e) = command.encode(buf) else {
        return;
    };
    tracing::warn!(
        code = command.code,
        opaque = command.opaque,
        "cannot encode command: {e}"
    );
    if command.is_response() {
        let mut fallback = command.clone();
        fallback.code = ResponseCode::SystemError.code();
        fallback.remark = Some(format!("response cannot be encoded: {e}"));
        fallback.ext_fields = Default::default();
        fallback.body = bytes::Bytes::new();
        if let Err(e) = fallback.encode(buf) {
            tracing::error!("cannot encode the fallback error response either: {e}");
        }
    }
}
