//! The slave side of one shard: follow the master's shard k, append what it sends through the
//! store's raw path and acknowledge the durable end.
//!
//! Two halves per connection, so the slave's writes are batched like the master's: a reader
//! gathers DATA bytes into `pending` while the applier has one `append_raw` in flight; the next
//! `append_raw` takes everything that gathered, and its completion is one cumulative ACK.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use glommio::net::TcpStream;

use super::state::SlaveState;
use super::wire::{self, Frame, Hello, RefuseCode, TAIL_CHECK_BYTES};
use super::{read_frame, shard_addr, write_frame, HaError, HaSettings};
use crate::store::offset::split_global;
use crate::store::{FlushMode, Store};

/// Follows the master until [`SlaveState::stop`], reconnecting after failures. `master_addr`
/// gives shard 0's HA address (configured, or learned from the name server) when known.
/// Returns an error only when following can never work: another shard count, or a master
/// whose log does not contain this slave's (divergence; also recorded in `state`).
pub async fn run_slave(
    store: Rc<Store>,
    state: Rc<SlaveState>,
    settings: HaSettings,
    master_addr: impl Fn() -> Option<String>,
) -> Result<(), HaError> {
    let retry = Duration::from_millis(super::RECONNECT_DELAY_MS);
    while !state.is_stopped() {
        let Some(addr) = master_addr().and_then(|a| shard_addr(&a, settings.shard_id)) else {
            sleep_or_stop(&state, retry).await;
            continue;
        };
        *state.master.borrow_mut() = Some(addr.clone());
        let followed = follow(&addr, &store, &state, &settings);
        let result = futures_lite::future::or(followed, async {
            state.stopped().await;
            Ok(())
        })
        .await;
        state.connected.set(false);
        match result {
            Err(e @ (HaError::ShardCount { .. } | HaError::Diverged(_))) => {
                tracing::error!(shard = settings.shard_id, master = %addr, "replication stopped: {e}");
                if let HaError::Diverged(text) = &e {
                    *state.diverged.borrow_mut() = Some(text.clone());
                }
                return Err(e);
            }
            Err(e) => {
                tracing::warn!(shard = settings.shard_id, master = %addr, "HA: {e}; reconnecting");
                sleep_or_stop(&state, retry).await;
            }
            Ok(()) => {}
        }
    }
    Ok(())
}

async fn sleep_or_stop(state: &SlaveState, d: Duration) {
    futures_lite::future::or(glommio::timer::sleep(d), state.stopped()).await;
}

/// The slave's end and the CRC of the bytes just before it (within its last segment).
async fn hello(store: &Store, settings: &HaSettings) -> Result<Hello, HaError> {
    // A previous connection's append may still be writing: wait until the log is all written.
    loop {
        let log = store.log_offsets();
        if log.written == log.end {
            break;
        }
        store
            .wait_written_past(log.written, Duration::from_millis(100))
            .await;
    }
    let end = store.log_offsets().end;
    let (_, local) = split_global(end);
    let segment = store.config().segment_size_bytes;
    let (mut tail_from, mut tail) = (end, Vec::new());
    if local > 0 {
        let seg_base = (local - 1) - (local - 1) % segment;
        tail_from = end - (local - local.saturating_sub(TAIL_CHECK_BYTES).max(seg_base));
        tail = store
            .read_raw(tail_from, (end - tail_from) as usize)
            .await?;
    }
    Ok(Hello {
        shard_count: settings.shard_count,
        shard_id: settings.shard_id,
        end,
        tail_from,
        tail_len: tail.len() as u32,
        tail_crc: crc32fast::hash(&tail),
    })
}

async fn follow(
    addr: &str,
    store: &Rc<Store>,
    state: &SlaveState,
    settings: &HaSettings,
) -> Result<(), HaError> {
    let timeout = Duration::from_millis(super::CONNECT_TIMEOUT_MS);
    let stream = TcpStream::connect_timeout(addr, timeout)
        .await
        .map_err(|e| HaError::Io(std::io::Error::other(e.to_string())))?;
    stream.set_nodelay(true).ok();
    let (mut r, mut w) = futures_lite::io::split(stream);
    let (mut buf, mut scratch) = (Vec::new(), Vec::new());
    let hello = hello(store, settings).await?;
    write_frame(&mut w, &Frame::Hello(hello), &mut scratch).await?;
    let kind = read_frame(&mut r, &mut buf, settings.housekeeping()).await?;
    let master_written = match wire::decode_payload(kind, &buf)? {
        Frame::Welcome {
            shard_count,
            master_written,
            ..
        } if shard_count == settings.shard_count => master_written,
        Frame::Welcome { shard_count, .. } => {
            return Err(HaError::ShardCount {
                slave: settings.shard_count,
                master: shard_count,
            })
        }
        Frame::Refuse { code, text } => return Err(refused(code, text, settings, &hello)),
        other => {
            return Err(HaError::Protocol(format!(
                "expected WELCOME, got {other:?}"
            )))
        }
    };
    tracing::info!(shard = settings.shard_id, master = %addr, from = hello.end, master_written, "following master");
    state.connected.set(true);
    state.progress(master_written, hello.end, crate::store::now_ms());
    let pending = RefCell::new(Pending::new(hello.end));
    let gathered = crate::ha::state::Wake::default();
    let receive = receive(&mut r, &pending, &gathered, state, settings);
    let apply = apply(&mut w, &pending, &gathered, store, state, settings);
    futures_lite::future::or(receive, apply).await
}

fn refused(code: RefuseCode, text: &str, settings: &HaSettings, hello: &Hello) -> HaError {
    match code {
        RefuseCode::ShardCount => {
            let master = text
                .rsplit(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            HaError::ShardCount {
                slave: settings.shard_count,
                master,
            }
        }
        RefuseCode::Diverged | RefuseCode::BehindRetention => HaError::Diverged(format!(
            "the master refused this slave's log (end {}): {text}",
            hello.end
        )),
        _ => HaError::Refused {
            code,
            text: text.to_string(),
        },
    }
}

/// DATA bytes received and not yet appended: `bytes` start at global offset `at`.
struct Pending {
    at: u64,
    bytes: Vec<u8>,
    /// The master's written end with the latest frame.
    master_written: u64,
}

impl Pending {
    fn new(at: u64) -> Pending {
        Pending {
            at,
            bytes: Vec::new(),
            master_written: at,
        }
    }

    /// Takes DATA bytes for `offset`. Bytes below what is already held (the rest of a segment
    /// filler the store already skipped) are dropped; a gap is a protocol error.
    fn push(&mut self, offset: u64, bytes: &[u8]) -> Result<(), HaError> {
        let expected = self.at + self.bytes.len() as u64;
        if offset > expected {
            return Err(HaError::Protocol(format!(
                "DATA at {offset}, expected {expected}"
            )));
        }
        let skip = ((expected - offset) as usize).min(bytes.len());
        self.bytes.extend_from_slice(&bytes[skip..]);
        Ok(())
    }

    /// After `append_raw(at, batch)` returned `end` while newer bytes gathered behind the
    /// batch: what the store left of the batch (a partial record) goes back in front of them.
    fn put_back(&mut self, at: u64, batch: &[u8], end: u64) {
        let taken = (end.saturating_sub(at) as usize).min(batch.len());
        let newer = std::mem::take(&mut self.bytes);
        self.bytes.extend_from_slice(&batch[taken..]);
        self.bytes.extend_from_slice(&newer);
        self.at = at + taken as u64;
        self.consumed_to(end);
    }

    /// The store took everything below `end`: drop it (it may be past what is held, when a
    /// filler was only partly received).
    fn consumed_to(&mut self, end: u64) {
        let n = (end.saturating_sub(self.at) as usize).min(self.bytes.len());
        self.bytes.drain(..n);
        self.at = self.at.max(end);
    }
}

async fn receive<R: futures_lite::AsyncRead + Unpin>(
    r: &mut R,
    pending: &RefCell<Pending>,
    gathered: &crate::ha::state::Wake,
    state: &SlaveState,
    settings: &HaSettings,
) -> Result<(), HaError> {
    let mut buf = Vec::new();
    loop {
        let kind = read_frame(r, &mut buf, settings.housekeeping()).await?;
        match wire::decode_payload(kind, &buf)? {
            Frame::Data {
                offset,
                master_written,
                bytes,
            } => {
                let mut p = pending.borrow_mut();
                p.push(offset, bytes)?;
                p.master_written = p.master_written.max(master_written);
                drop(p);
                state.progress(master_written, state.end.get(), crate::store::now_ms());
                gathered.wake();
            }
            other => return Err(HaError::Protocol(format!("unexpected frame {other:?}"))),
        }
    }
}

/// Appends what gathered, one `append_raw` at a time, and acknowledges each durable end; with
/// nothing to append it still acknowledges every heartbeat interval, so the master knows the
/// slave is alive.
async fn apply<W: futures_lite::AsyncWrite + Unpin>(
    w: &mut W,
    pending: &RefCell<Pending>,
    gathered: &crate::ha::state::Wake,
    store: &Store,
    state: &SlaveState,
    settings: &HaSettings,
) -> Result<(), HaError> {
    let mut scratch = Vec::new();
    let mut batch = Vec::new();
    // Bytes held that the store could not take yet (a partial record): wait for more than that.
    let mut stalled_len = 0usize;
    loop {
        let has_bytes = || (pending.borrow().bytes.len() > stalled_len).then_some(());
        // New bytes, or the heartbeat interval: either way an ACK goes out below.
        futures_lite::future::or(gathered.wait_for(has_bytes), async {
            glommio::timer::sleep(settings.heartbeat()).await;
        })
        .await;
        let at = {
            let mut p = pending.borrow_mut();
            let at = p.at;
            if p.bytes.len() > stalled_len {
                // Frames arriving during the append continue after this batch.
                std::mem::swap(&mut batch, &mut p.bytes);
                p.at += batch.len() as u64;
            }
            at
        };
        if !batch.is_empty() {
            let (_, end) = store.append_raw(at, &batch).await?;
            // Whatever arrived meanwhile follows the part of this batch the store left (a
            // partial record), so put the leftover back in front.
            let mut p = pending.borrow_mut();
            p.put_back(at, &batch, end);
            stalled_len = if end == at { p.bytes.len() } else { 0 };
            batch.clear();
        }
        let log = store.log_offsets();
        let durable = match store.config().flush_mode {
            FlushMode::Async => log.written,
            FlushMode::Sync => log.flushed,
        };
        let master_written = pending.borrow().master_written;
        state.progress(master_written, durable, crate::store::now_ms());
        write_frame(w, &Frame::Ack { end: durable }, &mut scratch).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_takes_contiguous_bytes_skips_overlap_and_refuses_gaps() {
        let mut p = Pending::new(100);
        p.push(100, b"abcd").unwrap();
        p.push(104, b"ef").unwrap();
        assert_eq!(p.bytes, b"abcdef");
        // Overlap (already held) is dropped.
        p.push(103, b"def").unwrap();
        assert_eq!(p.bytes, b"abcdef");
        assert!(p.push(107, b"x").is_err());
        // The store skipped further than held (a filler): later frames below `at` drop too.
        p.consumed_to(110);
        assert!(p.bytes.is_empty());
        assert_eq!(p.at, 110);
        p.push(106, b"wxyz12").unwrap();
        assert_eq!(p.bytes, b"12");
    }

    #[test]
    fn a_partial_record_goes_back_in_front_of_what_arrived_meanwhile() {
        // Batch [100, 110) taken for an append; [110, 114) arrived meanwhile.
        let mut p = Pending::new(110);
        p.push(110, b"WXYZ").unwrap();
        p.put_back(100, b"0123456789", 106);
        assert_eq!((p.at, &p.bytes[..]), (106, &b"6789WXYZ"[..]));
        // Nothing taken: everything stays, in order.
        let mut p = Pending::new(110);
        p.push(110, b"WX").unwrap();
        p.put_back(100, b"0123456789", 100);
        assert_eq!((p.at, &p.bytes[..]), (100, &b"0123456789WX"[..]));
        // A filler the store skipped past what was received: later bytes below it drop.
        let mut p = Pending::new(110);
        p.push(110, b"WXYZ").unwrap();
        p.put_back(100, b"0123456789", 112);
        assert_eq!((p.at, &p.bytes[..]), (112, &b"YZ"[..]));
        p.push(114, b"!").unwrap();
        assert_eq!(p.bytes, b"YZ!");
    }
}
