//! A client connection as the rest of the broker sees it: an id and a handle that queues
//! commands for the connection's writer. `Send + Clone`, so any shard can answer on any
//! connection and client registrations can keep one. The socket itself, its reader and its
//! writer live in `server::conn`; nothing here does I/O.
//!
//! Server-initiated requests that wait for the client's answer (GET_CONSUMER_RUNNING_INFO,
//! Java's `Broker2Client.callClient`) are registered in the connection's table of pending
//! calls, keyed by opaque; the connection's reader hands every response it reads to
//! [`ConnHandle::complete_call`]. The waiter may be on any shard, so the table sits behind a
//! mutex: it is touched only by such calls (admin traffic) and by responses from clients,
//! never on the send or pull path.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ringmq_proto::command::{RemotingCommand, SerializeType};

/// Globally unique connection id: shard index in the top 16 bits, a per-shard counter below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl ConnId {
    pub fn new(shard: usize, counter: u64) -> ConnId {
        assert!(shard < 1 << 16);
        assert!(counter < 1 << 48);
        ConnId((shard as u64) << 48 | counter)
    }
}

/// A consumer's registered connection and the client id it registered with (the metadata
/// shard's answer to [`crate::processor::ShardMesh::consumer_channels`]).
#[derive(Debug, Clone)]
pub struct ConsumerChannel {
    pub client_id: String,
    pub conn: ConnHandle,
}

/// What any shard holds to talk to a connection: `Send + Clone`, cheap to copy into a forwarded
/// request or a client registration.
#[derive(Debug, Clone)]
pub struct ConnHandle {
    pub id: ConnId,
    pub peer: SocketAddr,
    outbound: flume::Sender<RemotingCommand>,
    shared: Arc<ConnShared>,
}

/// State of one connection that every shard answering on it updates.
#[derive(Debug)]
struct ConnShared {
    /// The serialize type the client last used; server-initiated requests use it.
    last_serialize_type: AtomicU8,
    /// Opaque counter for server-initiated requests on this connection.
    next_opaque: AtomicI32,
    /// Bytes of commands queued for the writer and not yet written to the socket.
    queued_bytes: AtomicU64,
    /// Requests read from this connection and not finished (parked pulls excluded).
    in_flight: AtomicUsize,
    /// Set while the reader waits for room; the writer and finishing requests then wake it.
    /// SeqCst with the counters: the reader stores this then loads a counter, a waker updates
    /// the counter then loads this; weaker orderings let both miss the other (a lost wake-up).
    reader_paused: AtomicBool,
    /// One-token wake-up for a paused reader.
    resume: flume::Sender<()>,
    /// The writer has ended (socket error or close): a paused reader must stop too.
    writer_gone: AtomicBool,
    /// Server-initiated requests waiting for the client's answer.
    calls: Mutex<PendingCalls>,
    limits: ConnLimits,
}

/// Calls one connection may have waiting for answers at once. An admin tool asks one client
/// at a time; the bound only stops a flood of admin requests at a client that never answers
/// from holding memory until their timeouts.
pub const CONNECTION_CALLS_PENDING_MAX: usize = 64;

/// Why a server-initiated call got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("{CONNECTION_CALLS_PENDING_MAX} calls already wait for this client")]
    TooManyPending,
    #[error("the client connection closed")]
    Closed,
    #[error("no answer within {0} ms")]
    Timeout(u64),
}

/// The table of calls waiting on one connection: opaque → where its answer goes.
#[derive(Debug, Default)]
struct PendingCalls {
    waiting: HashMap<i32, flume::Sender<RemotingCommand>>,
    /// The connection ended: every waiter was failed and no new call is taken.
    closed: bool,
}

/// The bounds of one connection (design §9), from `config::FlowLimits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Past this many queued response bytes the reader stops reading.
    pub write_high_water_bytes: u64,
    /// A paused reader resumes once queued bytes fall below this.
    pub write_low_water_bytes: u64,
    /// Past this many requests in progress the reader stops reading.
    pub requests_in_flight_max: usize,
}

/// Room a command is charged against the connection's write bound besides its body: the frame
/// prefix and a typical JSON header (an estimate; the bound is about orders of magnitude).
const COMMAND_HEADER_ESTIMATE_BYTES: u64 = 256;

/// Bytes a queued command is charged.
fn charged_bytes(command: &RemotingCommand) -> u64 {
    command.body.len() as u64
        + command.remark.as_ref().map_or(0, |r| r.len() as u64)
        + COMMAND_HEADER_ESTIMATE_BYTES
}

impl ConnHandle {
    /// Queues a response (or any command already carrying its opaque) for the writer. A closed
    /// connection drops it: there is nobody left to answer.
    pub fn send(&self, command: RemotingCommand) {
        let bytes = charged_bytes(&command);
        // Charged before it is queued: the writer (on the connection's shard, while this may
        // run on another) can write it and report it written before `send` returns here.
        // Charging after the send let `written` see the bytes before they were counted, and
        // its underflow check brought the whole shard down.
        self.shared.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        if self.outbound.send(command).is_err() {
            self.shared.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    /// Sends a server-initiated request (e.g. NOTIFY_CONSUMER_IDS_CHANGED): a fresh opaque from
    /// this connection's counter, in the serialize type the client last used (JSON if unknown).
    pub fn send_request(&self, mut request: RemotingCommand) {
        request.opaque = self.shared.next_opaque.fetch_add(1, Ordering::Relaxed);
        request.serialize_type = self.serialize_type();
        self.send(request);
    }

    /// Sends a server-initiated request that expects an answer and registers it under its
    /// opaque; the returned [`PendingCall`] yields the client's response. Dropping it (after a
    /// timeout, say) takes it out of the table, so a late answer is discarded.
    pub fn call(&self, mut request: RemotingCommand) -> Result<PendingCall, CallError> {
        let (answer_tx, answer_rx) = flume::bounded(1);
        let opaque = self.shared.next_opaque.fetch_add(1, Ordering::Relaxed);
        {
            let mut calls = self.shared.lock_calls();
            if calls.closed || !self.is_open() {
                return Err(CallError::Closed);
            }
            if calls.waiting.len() >= CONNECTION_CALLS_PENDING_MAX {
                return Err(CallError::TooManyPending);
            }
            calls.waiting.insert(opaque, answer_tx);
        }
        request.opaque = opaque;
        request.serialize_type = self.serialize_type();
        self.send(request);
        Ok(PendingCall {
            opaque,
            answer: answer_rx,
            shared: self.shared.clone(),
        })
    }

    /// Routes a response read from the client to the call waiting for it. `false`: nothing
    /// waits for that opaque (a oneway request's stray answer, or a call that timed out).
    pub(crate) fn complete_call(&self, response: RemotingCommand) -> bool {
        let waiter = self.shared.lock_calls().waiting.remove(&response.opaque);
        waiter.is_some_and(|tx| tx.send(response).is_ok())
    }

    /// The connection ended: every waiting call fails with [`CallError::Closed`] now (their
    /// senders are dropped) and new calls are refused.
    pub(crate) fn close_calls(&self) {
        let mut calls = self.shared.lock_calls();
        calls.closed = true;
        calls.waiting.clear();
    }

    /// Calls waiting for an answer now.
    pub fn calls_pending(&self) -> usize {
        self.shared.lock_calls().waiting.len()
    }

    fn serialize_type(&self) -> SerializeType {
        SerializeType::from_byte(self.shared.last_serialize_type.load(Ordering::Relaxed))
            .unwrap_or(SerializeType::Json)
    }

    /// Whether the connection is still open (its writer still listens).
    pub fn is_open(&self) -> bool {
        !self.outbound.is_disconnected()
    }

    pub(crate) fn note_serialize_type(&self, serialize_type: SerializeType) {
        self.shared
            .last_serialize_type
            .store(serialize_type.byte(), Ordering::Relaxed);
    }

    /// Counts a request read from this connection as in progress until the slot is dropped.
    pub fn start_request(&self) -> InFlightSlot {
        self.shared.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlightSlot {
            shared: self.shared.clone(),
        }
    }

    /// Bytes queued for the writer now.
    pub fn queued_bytes(&self) -> u64 {
        self.shared.queued_bytes.load(Ordering::Relaxed)
    }

    /// Requests in progress now.
    pub fn requests_in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Relaxed)
    }
}

impl ConnShared {
    /// The pending-call table. A waiter that panicked cannot leave it inconsistent (every
    /// change is one map operation), so a poisoned lock is still used.
    fn lock_calls(&self) -> MutexGuard<'_, PendingCalls> {
        self.calls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the reader must stop reading.
    fn over_bounds(&self, high_water_bytes: u64) -> bool {
        self.queued_bytes.load(Ordering::SeqCst) > high_water_bytes
            || self.in_flight.load(Ordering::SeqCst) >= self.limits.requests_in_flight_max
    }

    fn wake_reader(&self) {
        if self.reader_paused.load(Ordering::SeqCst) {
            let _ = self.resume.try_send(());
        }
    }
}

/// A server-initiated request waiting for the client's answer; leaves the table on drop.
#[derive(Debug)]
pub struct PendingCall {
    opaque: i32,
    answer: flume::Receiver<RemotingCommand>,
    shared: Arc<ConnShared>,
}

impl PendingCall {
    /// The client's response; [`CallError::Closed`] if the connection ends first. Waits without
    /// a bound: the caller puts its timeout around this.
    pub async fn answer(&self) -> Result<RemotingCommand, CallError> {
        self.answer
            .recv_async()
            .await
            .map_err(|_| CallError::Closed)
    }

    pub fn opaque(&self) -> i32 {
        self.opaque
    }
}

impl Drop for PendingCall {
    fn drop(&mut self) {
        self.shared.lock_calls().waiting.remove(&self.opaque);
    }
}

/// One request's place in its connection's in-flight count; given back on drop.
#[derive(Debug)]
pub struct InFlightSlot {
    shared: Arc<ConnShared>,
}

impl Drop for InFlightSlot {
    fn drop(&mut self) {
        let before = self.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        assert!(before > 0, "an in-flight slot outlived its count");
        self.shared.wake_reader();
    }
}

/// The writer's end of a connection: the queued commands, and the accounting of what it wrote.
pub struct Outbound {
    pub commands: flume::Receiver<RemotingCommand>,
    shared: Arc<ConnShared>,
}

impl Outbound {
    /// Bytes `command` was charged when queued; pass the sum to [`Outbound::written`].
    pub fn charged(command: &RemotingCommand) -> u64 {
        charged_bytes(command)
    }

    /// `bytes` of queued commands reached the socket: a paused reader may resume.
    pub fn written(&self, bytes: u64) {
        let before = self.shared.queued_bytes.fetch_sub(bytes, Ordering::SeqCst);
        assert!(before >= bytes, "written more than was queued");
        if before - bytes < self.shared.limits.write_low_water_bytes {
            self.shared.wake_reader();
        }
    }
}

impl Drop for Outbound {
    fn drop(&mut self) {
        self.shared.writer_gone.store(true, Ordering::Relaxed);
        let _ = self.shared.resume.try_send(());
    }
}

/// The reader's end of a connection's bounds.
pub struct Backpressure {
    resume: flume::Receiver<()>,
    shared: Arc<ConnShared>,
}

impl Backpressure {
    /// Returns once the connection is under its bounds: below the high water mark of queued
    /// bytes (after a pause: below the low one) and under its in-flight maximum. While it waits
    /// nothing is read, so TCP pushes back on this client alone. `false`: the writer has ended,
    /// so the connection is going away and the reader should stop.
    pub async fn room(&self) -> bool {
        let shared = &self.shared;
        if !shared.over_bounds(shared.limits.write_high_water_bytes) {
            return true;
        }
        shared.reader_paused.store(true, Ordering::SeqCst);
        while shared.over_bounds(shared.limits.write_low_water_bytes)
            && !shared.writer_gone.load(Ordering::Relaxed)
        {
            if self.resume.recv_async().await.is_err() {
                break;
            }
        }
        shared.reader_paused.store(false, Ordering::Relaxed);
        !shared.writer_gone.load(Ordering::Relaxed)
    }
}

/// The open connections one shard accepted, so it can publish the bytes queued for their
/// writers (`ringmq_connection_queued_bytes`). Shard-local; a connection is in it from accept
/// to close.
#[derive(Debug, Default)]
pub struct OpenConnections {
    open: std::cell::RefCell<HashMap<ConnId, ConnHandle>>,
}

impl OpenConnections {
    pub fn opened(&self, conn: &ConnHandle) {
        self.open.borrow_mut().insert(conn.id, conn.clone());
    }

    pub fn closed(&self, id: ConnId) {
        self.open.borrow_mut().remove(&id);
    }

    /// Bytes of commands queued for these connections' writers and not yet written, now.
    pub fn queued_bytes(&self) -> u64 {
        self.open
            .borrow()
            .values()
            .map(ConnHandle::queued_bytes)
            .sum()
    }
}

/// Creates the handle, the writer's end and the reader's end of a new connection.
pub fn new_connection(
    id: ConnId,
    peer: SocketAddr,
    limits: ConnLimits,
) -> (ConnHandle, Outbound, Backpressure) {
    assert!(limits.write_low_water_bytes < limits.write_high_water_bytes);
    let (tx, rx) = flume::unbounded();
    let (resume_tx, resume_rx) = flume::bounded(1);
    let shared = Arc::new(ConnShared {
        last_serialize_type: AtomicU8::new(SerializeType::Json.byte()),
        next_opaque: AtomicI32::new(1),
        queued_bytes: AtomicU64::new(0),
        in_flight: AtomicUsize::new(0),
        reader_paused: AtomicBool::new(false),
        resume: resume_tx,
        writer_gone: AtomicBool::new(false),
        calls: Mutex::new(PendingCalls::default()),
        limits,
    });
    let handle = ConnHandle {
        id,
        peer,
        outbound: tx,
        shared: shared.clone(),
    };
    let outbound = Outbound {
        commands: rx,
        shared: shared.clone(),
    };
    (
        handle,
        outbound,
        Backpressure {
            resume: resume_rx,
            shared,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures_lite::future::{block_on, poll_once};
    use ringmq_proto::command::ExtFields;

    const LIMITS: ConnLimits = ConnLimits {
        write_high_water_bytes: 10_000,
        write_low_water_bytes: 2_000,
        requests_in_flight_max: 3,
    };

    fn response(body_bytes: usize) -> RemotingCommand {
        let body = Bytes::from(vec![0u8; body_bytes]);
        RemotingCommand::new_request(0, ExtFields::new(), body)
    }

    fn connection() -> (ConnHandle, Outbound, Backpressure) {
        new_connection(ConnId(1), "127.0.0.1:1".parse().unwrap(), LIMITS)
    }

    #[test]
    fn the_reader_pauses_past_the_high_water_mark_until_below_the_low_one() {
        let (conn, outbound, backpressure) = connection();
        assert_eq!(block_on(poll_once(backpressure.room())), Some(true));
        for _ in 0..3 {
            conn.send(response(4_000));
        }
        assert!(conn.queued_bytes() > LIMITS.write_high_water_bytes);
        let mut room = Box::pin(backpressure.room());
        assert_eq!(
            block_on(poll_once(&mut room)),
            None,
            "paused above the high mark"
        );
        let charged: Vec<u64> = (0..3)
            .map(|_| Outbound::charged(&outbound.commands.try_recv().unwrap()))
            .collect();
        outbound.written(charged[0]);
        assert_eq!(
            block_on(poll_once(&mut room)),
            None,
            "still above the low mark"
        );
        outbound.written(charged[1] + charged[2]);
        assert_eq!(block_on(poll_once(&mut room)), Some(true));
        assert_eq!(conn.queued_bytes(), 0);
    }

    #[test]
    fn the_reader_pauses_at_the_in_flight_bound_and_stops_when_the_writer_ends() {
        let (conn, outbound, backpressure) = connection();
        let slots: Vec<InFlightSlot> = (0..3).map(|_| conn.start_request()).collect();
        assert_eq!(conn.requests_in_flight(), 3);
        let mut room = Box::pin(backpressure.room());
        assert_eq!(block_on(poll_once(&mut room)), None);
        drop(slots);
        assert_eq!(block_on(poll_once(&mut room)), Some(true));
        let _slots: Vec<InFlightSlot> = (0..3).map(|_| conn.start_request()).collect();
        let mut room = Box::pin(backpressure.room());
        assert_eq!(block_on(poll_once(&mut room)), None);
        drop(outbound);
        assert_eq!(
            block_on(poll_once(&mut room)),
            Some(false),
            "writer gone ends the wait"
        );
    }

    /// Another shard answers while the writer drains at once: every command must be charged
    /// before the writer can report it written (the old order underflowed the count and the
    /// assertion took the shard down, about one run in five of the backpressure test).
    #[test]
    fn a_command_written_as_soon_as_it_is_queued_was_already_charged() {
        const COMMANDS: usize = 200_000;
        let (conn, outbound, _backpressure) = connection();
        let sender = std::thread::spawn(move || {
            for _ in 0..COMMANDS {
                conn.send(response(0));
            }
            conn
        });
        for _ in 0..COMMANDS {
            let command = outbound.commands.recv().unwrap();
            outbound.written(Outbound::charged(&command));
        }
        let conn = sender.join().unwrap();
        assert_eq!(conn.queued_bytes(), 0);
    }

    fn answer_to(request: &RemotingCommand, body: &'static [u8]) -> RemotingCommand {
        let mut response = RemotingCommand::response_to(request, 0, None);
        response.body = Bytes::from_static(body);
        response
    }

    #[test]
    fn a_call_gets_the_answer_with_its_opaque_and_leaves_the_table() {
        let (conn, outbound, _backpressure) = connection();
        let first = conn.call(response(0)).unwrap();
        let second = conn.call(response(0)).unwrap();
        assert_ne!(first.opaque(), second.opaque());
        let sent_first = outbound.commands.try_recv().unwrap();
        let sent_second = outbound.commands.try_recv().unwrap();
        assert_eq!(sent_first.opaque, first.opaque());
        assert_eq!(conn.calls_pending(), 2);
        // Answers in the other order reach the right callers.
        assert!(conn.complete_call(answer_to(&sent_second, b"two")));
        assert!(conn.complete_call(answer_to(&sent_first, b"one")));
        assert_eq!(&block_on(first.answer()).unwrap().body[..], b"one");
        assert_eq!(&block_on(second.answer()).unwrap().body[..], b"two");
        assert_eq!(conn.calls_pending(), 0);
        // A second answer to the same opaque, or one nobody asked for, is dropped.
        assert!(!conn.complete_call(answer_to(&sent_first, b"again")));
    }

    #[test]
    fn an_abandoned_call_is_forgotten_and_its_late_answer_dropped() {
        let (conn, outbound, _backpressure) = connection();
        let call = conn.call(response(0)).unwrap();
        let sent = outbound.commands.try_recv().unwrap();
        drop(call);
        assert_eq!(conn.calls_pending(), 0);
        assert!(!conn.complete_call(answer_to(&sent, b"late")));
    }

    #[test]
    fn calls_are_bounded_and_fail_when_the_connection_ends() {
        let (conn, _outbound, _backpressure) = connection();
        let calls: Vec<PendingCall> = (0..CONNECTION_CALLS_PENDING_MAX)
            .map(|_| conn.call(response(0)).unwrap())
            .collect();
        assert_eq!(
            conn.call(response(0)).unwrap_err(),
            CallError::TooManyPending
        );
        conn.close_calls();
        for call in &calls {
            assert_eq!(block_on(call.answer()).unwrap_err(), CallError::Closed);
        }
        assert_eq!(conn.call(response(0)).unwrap_err(), CallError::Closed);
    }

    #[test]
    fn open_connections_sum_what_their_writers_have_not_written() {
        let open = OpenConnections::default();
        let (a, a_out, _a_bp) = connection();
        let (b, _b_out, _b_bp) = new_connection(ConnId(2), "127.0.0.1:2".parse().unwrap(), LIMITS);
        open.opened(&a);
        open.opened(&b);
        a.send(response(1_000));
        a.send(response(24));
        b.send(response(0));
        let header = COMMAND_HEADER_ESTIMATE_BYTES;
        assert_eq!(
            open.queued_bytes(),
            (1_000 + header) + (24 + header) + header
        );
        let first = a_out.commands.try_recv().unwrap();
        a_out.written(Outbound::charged(&first));
        assert_eq!(open.queued_bytes(), (24 + header) + header);
        open.closed(b.id);
        assert_eq!(open.queued_bytes(), 24 + header);
    }

    #[test]
    fn sends_to_a_closed_connection_are_not_charged() {
        let (conn, outbound, _backpressure) = connection();
        drop(outbound);
        conn.send(response(100));
        assert_eq!(conn.queued_bytes(), 0);
        assert!(!conn.is_open());
    }
}
