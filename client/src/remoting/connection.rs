//! One TCP connection to a broker or name server: pipelined requests matched by opaque.
//!
//! Data flow: a caller encodes its request straight into the connection's outbox buffer, registers
//! a one-shot slot under the request's opaque and wakes the writer task. The writer task takes
//! everything in the outbox and writes it in one `write_all` (frames queued while a write is in
//! flight go out together in the next one: the batching is explicit and costs no per-frame
//! allocation). The reader task decodes frames and completes the slot whose opaque matches, in
//! whatever order responses arrive; server-initiated requests go to the handler.
//!
//! Timeouts: a request stores its deadline next to its response slot; one sweeper task per
//! connection fails the overdue ones. A request therefore costs no timer of its own (glommio's
//! `timeout` would insert and remove a reactor timer, and allocate one, per request): the
//! sweeper sleeps until the earliest deadline, but never longer than [`SWEEP_MAX_SLEEP`], so a
//! request whose deadline is later than the sweeper's next wake-up - every request, when the
//! timeouts of a connection are equal - does not touch the sweeper at all. Only a request due
//! before that wake-up (a shorter timeout than those in flight) re-arms it.
//!
//! Invariant: once a connection is closed (read error, write error, malformed frame, EOF) every
//! in-flight request has failed with `ConnectionClosed`/`Frame` and the connection never becomes
//! usable again; the pool replaces it on next use. Dropping the `Connection` cancels both tasks,
//! which drops the socket.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::TcpStream;
use glommio::Task;
use ringmq_proto::code::ResponseCode;
use ringmq_proto::command::RemotingCommand;
use ringmq_proto::read_buffer::ReadBuffer;

use crate::config::Credentials;
use crate::error::ClientError;
use crate::oneshot;

/// Handles a request the server sent to the client (NOTIFY_CONSUMER_IDS_CHANGED,
/// CHECK_TRANSACTION_STATE, ...). Arguments: the server address and the request. For a request
/// that is not oneway, the returned command is sent back as the response (the connection sets its
/// opaque and response flag); `None` makes the connection answer REQUEST_CODE_NOT_SUPPORTED.
pub type ServerRequestHandler = Rc<dyn Fn(&str, &RemotingCommand) -> Option<RemotingCommand>>;

/// Initial capacity of the outbox and of the writer's batch buffer.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Callers wait before queueing more once this many encoded bytes await the writer: a peer that
/// reads slowly back-pressures senders (oneway sends have no response to wait for otherwise)
/// instead of growing the outbox without bound.
pub const OUTBOX_HIGH_WATER_BYTES: usize = 4 * 1024 * 1024;

/// The writer's spare buffer is dropped and re-made when a burst grew it past this.
const SPARE_BUFFER_MAX_BYTES: usize = 1024 * 1024;

/// The longest the timeout sweeper sleeps while requests are in flight. Requests due after its
/// next wake-up never have to wake it; shorter sleeps would only cost more wake-ups.
const SWEEP_MAX_SLEEP: Duration = Duration::from_secs(1);

type ResponseSlot = oneshot::Sender<Result<RemotingCommand, ClientError>>;

/// A request waiting for its response.
struct PendingRequest {
    slot: ResponseSlot,
    /// When the sweeper fails it with [`ClientError::Timeout`].
    deadline: Instant,
    request_code: i32,
    timeout_ms: u64,
}

/// Opaques are consecutive integers: a multiplicative hash spreads them over the table at a
/// fraction of SipHash's cost (and nothing here is keyed by peer-chosen data: responses only
/// look up opaques this connection issued).
#[derive(Default)]
struct OpaqueHasher(u64);

impl Hasher for OpaqueHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_i32(&mut self, value: i32) {
        // Fibonacci hashing: the high bits (which hashbrown uses for its tag byte) vary too.
        self.0 = u64::from(value as u32).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type PendingTable = HashMap<i32, PendingRequest, BuildHasherDefault<OpaqueHasher>>;

struct Shared {
    addr: String,
    pending: RefCell<PendingTable>,
    outbox: RefCell<BytesMut>,
    /// `Some(reason)` once the connection is unusable.
    closed: RefCell<Option<String>>,
    next_opaque: Cell<i32>,
    /// Capacity-1 doorbell for the writer task: a full channel already means "work is waiting".
    writer_doorbell: LocalSender<()>,
    /// Callers waiting for the outbox to drain (below [`OUTBOX_HIGH_WATER_BYTES`], or fully).
    drain_waiters: RefCell<Vec<Waker>>,
    /// The writer task is in the middle of a write.
    writing: Cell<bool>,
    /// When the sweeper wakes next; `None` while it is parked (nothing was in flight).
    sweep_at: Cell<Option<Instant>>,
    /// Set (and the sweeper woken) when a request is due before `sweep_at` or arrives while
    /// the sweeper is parked.
    sweep_rearm: Cell<bool>,
    sweeper_waker: RefCell<Option<Waker>>,
    handler: Option<ServerRequestHandler>,
    /// The socket, for `shutdown(2)` on close. Valid while either task holds its stream half;
    /// see [`Shared::close`] for why that holds whenever it is used.
    fd: RawFd,
}

/// A live connection. Obtain one from [`super::ConnectionPool`]; it is `!Send`.
pub struct Connection {
    shared: Rc<Shared>,
    /// Signs every request when the client has an ACL account.
    credentials: Option<Rc<Credentials>>,
    _reader: Task<()>,
    _writer: Task<()>,
    _sweeper: Task<()>,
}

impl Connection {
    /// Connects to `addr` (`ip:port`), with TCP_NODELAY, and starts the reader and writer tasks.
    pub async fn connect(
        addr: &str,
        connect_timeout_ms: u64,
        handler: Option<ServerRequestHandler>,
    ) -> Result<Connection, ClientError> {
        let socket_addr: SocketAddr = addr
            .parse()
            .map_err(|_| ClientError::Config(format!("address {addr:?} is not ip:port")))?;
        let connect_error = |source| ClientError::Connect {
            addr: addr.to_string(),
            source,
        };
        let stream =
            TcpStream::connect_timeout(socket_addr, Duration::from_millis(connect_timeout_ms))
                .await
                .map_err(|e| connect_error(std::io::Error::from(e)))?;
        stream
            .set_nodelay(true)
            .map_err(|e| connect_error(std::io::Error::from(e)))?;
        let fd = stream.as_raw_fd();
        let (reader, writer) = futures_lite::io::split(stream);
        let (doorbell_tx, doorbell_rx) = local_channel::new_bounded(1);
        let shared = Rc::new(Shared {
            addr: addr.to_string(),
            pending: RefCell::new(PendingTable::default()),
            outbox: RefCell::new(BytesMut::with_capacity(WRITE_BUFFER_BYTES)),
            closed: RefCell::new(None),
            next_opaque: Cell::new(1),
            writer_doorbell: doorbell_tx,
            drain_waiters: RefCell::new(Vec::new()),
            writing: Cell::new(false),
            sweep_at: Cell::new(None),
            sweep_rearm: Cell::new(false),
            sweeper_waker: RefCell::new(None),
            handler,
            fd,
        });
        let reader_task = glommio::spawn_local(read_loop(shared.clone(), reader));
        let writer_task = glommio::spawn_local(write_loop(shared.clone(), writer, doorbell_rx));
        let sweeper_task = glommio::spawn_local(sweep_loop(shared.clone()));
        Ok(Connection {
            shared,
            credentials: None,
            _reader: reader_task,
            _writer: writer_task,
            _sweeper: sweeper_task,
        })
    }

    /// Signs every request sent from now on with `credentials` (ACL 1.0).
    pub fn set_credentials(&mut self, credentials: Option<Rc<Credentials>>) {
        self.credentials = credentials;
    }

    /// Whether requests are signed; a caller that writes frames itself must then sign too.
    pub fn signs_requests(&self) -> bool {
        self.credentials.is_some()
    }

    /// The address this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// Whether the connection is broken; a broken connection never recovers.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.borrow().is_some()
    }

    /// Number of requests waiting for a response.
    pub fn in_flight(&self) -> usize {
        self.shared.pending.borrow().len()
    }

    /// Sends `request` and waits for its response, at most `timeout_ms`. The opaque is assigned
    /// here. A response with an error code is still `Ok`: callers map codes themselves.
    pub async fn request(
        &self,
        mut request: RemotingCommand,
        timeout_ms: u64,
    ) -> Result<RemotingCommand, ClientError> {
        let request_code = request.code;
        if let Some(credentials) = &self.credentials {
            credentials.sign(&mut request);
        }
        self.request_encoded(request_code, timeout_ms, |opaque, outbox| {
            request.opaque = opaque;
            request
                .encode(outbox)
                .map_err(|e| ClientError::InvalidMessage(format!("cannot encode request: {e}")))
        })
        .await
    }

    /// As [`Connection::request`] for a caller that writes the frame itself: `encode` gets the
    /// opaque and appends one complete request frame carrying it to the outbox (appending
    /// nothing when it fails). The producer's send path uses this to skip building a
    /// `RemotingCommand` per message.
    pub(crate) async fn request_encoded(
        &self,
        request_code: i32,
        timeout_ms: u64,
        encode: impl FnOnce(i32, &mut BytesMut) -> Result<(), ClientError>,
    ) -> Result<RemotingCommand, ClientError> {
        self.outbox_below_high_water().await;
        self.fail_if_closed()?;
        let opaque = self.shared.take_opaque();
        let (tx, rx) = oneshot::channel();
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        self.shared.register(
            opaque,
            PendingRequest {
                slot: tx,
                deadline,
                request_code,
                timeout_ms,
            },
        );
        // Removes the slot if this future is dropped before the response arrives.
        let _pending = PendingGuard {
            shared: &self.shared,
            opaque,
        };
        encode(opaque, &mut self.shared.outbox.borrow_mut())?;
        self.shared.ring_writer();
        // The reader (response), the sweeper (timeout) or a close (error) fills the slot.
        match rx.await {
            Some(result) => result,
            None => Err(self.shared.closed_error()),
        }
    }

    /// Sends `request` with the ONEWAY flag; the server does not answer. Returns once the
    /// request is queued for the socket (after waiting, if the outbox is over its high water).
    pub async fn send_oneway(&self, mut request: RemotingCommand) -> Result<(), ClientError> {
        self.outbox_below_high_water().await;
        self.fail_if_closed()?;
        if let Some(credentials) = &self.credentials {
            credentials.sign(&mut request);
        }
        request.opaque = self.shared.take_opaque();
        request.set_oneway();
        self.shared.enqueue(&request)
    }

    /// Closes the connection: in-flight requests fail, the tasks stop when it is dropped.
    pub fn close(&self, reason: &str) {
        self.shared.close(reason.to_string());
    }

    /// Bytes encoded but not yet taken by the writer.
    pub fn queued_bytes(&self) -> usize {
        self.shared.outbox.borrow().len()
    }

    /// Waits until everything queued so far has been written to the socket (or the connection
    /// closed). Oneway requests are only queued when `send_oneway` returns; call this before
    /// dropping a connection whose last oneway requests must go out.
    pub async fn flush(&self) {
        OutboxDrained {
            shared: &self.shared,
            limit_bytes: 0,
        }
        .await
    }

    fn outbox_below_high_water(&self) -> OutboxDrained<'_> {
        OutboxDrained {
            shared: &self.shared,
            limit_bytes: OUTBOX_HIGH_WATER_BYTES,
        }
    }

    fn fail_if_closed(&self) -> Result<(), ClientError> {
        if self.is_closed() {
            return Err(self.shared.closed_error());
        }
        Ok(())
    }
}

/// Ready when the outbox holds at most `limit_bytes` (0: empty and no write in flight) or the
/// connection closed.
struct OutboxDrained<'a> {
    shared: &'a Shared,
    limit_bytes: usize,
}

impl Future for OutboxDrained<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let shared = self.shared;
        let queued = shared.outbox.borrow().len();
        let drained = if self.limit_bytes == 0 {
            queued == 0 && !shared.writing.get()
        } else {
            queued <= self.limit_bytes
        };
        if drained || shared.closed.borrow().is_some() {
            return Poll::Ready(());
        }
        shared.drain_waiters.borrow_mut().push(cx.waker().clone());
        Poll::Pending
    }
}

struct PendingGuard<'a> {
    shared: &'a Shared,
    opaque: i32,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared.pending.borrow_mut().remove(&self.opaque);
    }
}

impl Shared {
    /// The next opaque not used by a pending request. Java's counter is an int that wraps; this
    /// one stays positive (logs read naturally) and, after a wrap, skips opaques still pending
    /// (a long-polling pull can be older than two billion requests in theory).
    fn take_opaque(&self) -> i32 {
        let pending = self.pending.borrow();
        loop {
            let opaque = self.next_opaque.get();
            self.next_opaque.set(opaque.checked_add(1).unwrap_or(1));
            if !pending.contains_key(&opaque) {
                return opaque;
            }
        }
    }

    /// Encodes `command` into the outbox and wakes the writer. Nothing is queued on error.
    fn enqueue(&self, command: &RemotingCommand) -> Result<(), ClientError> {
        command
            .encode(&mut self.outbox.borrow_mut())
            .map_err(|e| ClientError::InvalidMessage(format!("cannot encode request: {e}")))?;
        self.ring_writer();
        Ok(())
    }

    /// Tells the writer task that the outbox has frames.
    fn ring_writer(&self) {
        // A full doorbell means the writer has not yet taken the previous batch: it will take
        // these frames with it.
        let _ = self.writer_doorbell.try_send(());
    }

    /// Puts a request in the table and makes sure the sweeper will look at it in time.
    fn register(&self, opaque: i32, request: PendingRequest) {
        let deadline = request.deadline;
        self.pending.borrow_mut().insert(opaque, request);
        let sweeper_sees_it_in_time = self.sweep_at.get().is_some_and(|at| at <= deadline);
        if !sweeper_sees_it_in_time {
            self.sweep_rearm.set(true);
            if let Some(waker) = self.sweeper_waker.borrow_mut().take() {
                waker.wake();
            }
        }
    }

    /// Fails every request whose deadline is at or before `now` with `Timeout`; returns the
    /// earliest deadline still in flight.
    fn expire_overdue(&self, now: Instant) -> Option<Instant> {
        let mut overdue: Vec<PendingRequest> = Vec::new();
        let mut earliest: Option<Instant> = None;
        {
            let mut pending = self.pending.borrow_mut();
            let mut overdue_opaques = Vec::new();
            for (opaque, request) in pending.iter() {
                if request.deadline <= now {
                    overdue_opaques.push(*opaque);
                } else {
                    earliest = Some(earliest.map_or(request.deadline, |e| e.min(request.deadline)));
                }
            }
            overdue.extend(overdue_opaques.iter().filter_map(|o| pending.remove(o)));
        }
        // Sent outside the borrow: a woken caller may start a new request at once.
        for request in overdue {
            request.slot.send(Err(ClientError::Timeout {
                addr: self.addr.clone(),
                request_code: request.request_code,
                timeout_ms: request.timeout_ms,
            }));
        }
        earliest
    }

    fn closed_error(&self) -> ClientError {
        ClientError::ConnectionClosed {
            addr: self.addr.clone(),
            reason: self
                .closed
                .borrow()
                .clone()
                .unwrap_or_else(|| "closed".to_string()),
        }
    }

    /// Marks the connection unusable, shuts the socket down (the peer sees the close at once)
    /// and fails every in-flight request with `make_error`. Idempotent: only the first call acts.
    fn close_with(&self, reason: String, make_error: impl Fn() -> ClientError) {
        if self.closed.borrow().is_some() {
            return;
        }
        tracing::debug!(addr = %self.addr, %reason, "connection closed");
        *self.closed.borrow_mut() = Some(reason);
        // SAFETY: `fd` is the socket both stream halves share; it stays open until both halves
        // are dropped. The first close comes either from a task that still holds its half (the
        // reader on EOF/error/bad frame, the writer on a write error) or from `Connection::close`
        // while both tasks are alive (a task only exits after closing). Later calls return above
        // and never touch the fd. shutdown(2) on a valid socket has no memory effects.
        unsafe {
            libc::shutdown(self.fd, libc::SHUT_RDWR);
        }
        self.fail_pending(make_error);
        self.wake_drain_waiters();
    }

    fn wake_drain_waiters(&self) {
        let waiters = std::mem::take(&mut *self.drain_waiters.borrow_mut());
        for waker in waiters {
            waker.wake();
        }
    }

    fn close(&self, reason: String) {
        self.close_with(reason, || self.closed_error());
    }

    fn fail_pending(&self, make_error: impl Fn() -> ClientError) {
        let slots: Vec<ResponseSlot> = self
            .pending
            .borrow_mut()
            .drain()
            .map(|(_, request)| request.slot)
            .collect();
        for slot in slots {
            slot.send(Err(make_error()));
        }
        // The sweeper ends once it sees the connection closed.
        if let Some(waker) = self.sweeper_waker.borrow_mut().take() {
            waker.wake();
        }
    }

    fn dispatch(&self, command: RemotingCommand) {
        if command.is_response() {
            let pending = self.pending.borrow_mut().remove(&command.opaque);
            match pending {
                Some(request) => request.slot.send(Ok(command)),
                // The request timed out or was dropped; Java logs and ignores these too.
                None => tracing::debug!(addr = %self.addr, opaque = command.opaque,
                    "response for unknown opaque ignored"),
            }
            return;
        }
        self.answer_server_request(command);
    }

    fn answer_server_request(&self, request: RemotingCommand) {
        let response = self
            .handler
            .as_ref()
            .and_then(|handler| handler(&self.addr, &request));
        if request.is_oneway() {
            return;
        }
        let mut response = response.unwrap_or_else(|| {
            RemotingCommand::response_to(
                &request,
                ResponseCode::RequestCodeNotSupported.code(),
                Some(format!(" request type {} not supported", request.code)),
            )
        });
        // Whatever the handler built, the answer must carry the request's opaque and flag.
        response.opaque = request.opaque;
        response.flag |= ringmq_proto::command::RESPONSE_FLAG;
        if let Err(e) = self.enqueue(&response) {
            tracing::warn!(addr = %self.addr, error = %e, "cannot answer server request");
        }
    }
}

async fn read_loop(shared: Rc<Shared>, mut reader: futures_lite::io::ReadHalf<TcpStream>) {
    // Reads land in the buffer's spare room and frames split off its front: a pull response's
    // records are never copied on their way to the consumer.
    let mut buffer = ReadBuffer::new();
    loop {
        let read = match reader.read(buffer.spare()).await {
            Ok(0) => {
                shared.close("peer closed the connection".to_string());
                return;
            }
            Ok(n) => n,
            Err(e) => {
                shared.close(format!("read failed: {e}"));
                return;
            }
        };
        buffer.filled(read);
        loop {
            match buffer.decode() {
                Ok(Some(command)) => shared.dispatch(command),
                Ok(None) => break,
                Err(e) => {
                    // Never resync inside a byte stream: a bad frame ends the connection.
                    let detail = e.to_string();
                    tracing::warn!(addr = %shared.addr, %detail, "malformed frame; closing");
                    shared.close_with(format!("malformed frame: {detail}"), || {
                        ClientError::Frame {
                            addr: shared.addr.clone(),
                            detail: detail.clone(),
                        }
                    });
                    return;
                }
            }
        }
    }
}

async fn write_loop(
    shared: Rc<Shared>,
    mut writer: futures_lite::io::WriteHalf<TcpStream>,
    doorbell: LocalReceiver<()>,
) {
    // Double buffering: the writer swaps this (empty) buffer with the outbox, writes what it
    // took, clears it and keeps it for the next swap. Both buffers keep their capacity, so
    // encoding a request never allocates or grows a buffer in the steady state.
    let mut batch = BytesMut::with_capacity(WRITE_BUFFER_BYTES);
    while doorbell.recv().await.is_some() {
        if shared.closed.borrow().is_some() {
            return;
        }
        std::mem::swap(&mut *shared.outbox.borrow_mut(), &mut batch);
        // The outbox is empty again: senders held at the high water may queue more while this
        // batch is written.
        shared.wake_drain_waiters();
        if batch.is_empty() {
            continue;
        }
        shared.writing.set(true);
        let written = writer.write_all(&batch).await;
        shared.writing.set(false);
        batch.clear();
        if batch.capacity() > SPARE_BUFFER_MAX_BYTES {
            // A burst grew it (up to the high water): do not keep megabytes per idle connection.
            batch = BytesMut::with_capacity(WRITE_BUFFER_BYTES);
        }
        if let Err(e) = written {
            shared.close(format!("write failed: {e}"));
            return;
        }
        // Wakes `flush` callers (and anyone who queued up to the high water meanwhile).
        shared.wake_drain_waiters();
    }
}

/// Fails overdue requests. Sleeps until the earliest deadline in flight (at most
/// [`SWEEP_MAX_SLEEP`]), parks without a timer while nothing is in flight, and ends when the
/// connection closes (closing fails every request itself).
async fn sweep_loop(shared: Rc<Shared>) {
    loop {
        if shared.closed.borrow().is_some() {
            return;
        }
        shared.sweep_rearm.set(false);
        let now = Instant::now();
        match shared.expire_overdue(now) {
            None => {
                shared.sweep_at.set(None);
                SweeperRearmed { shared: &shared }.await;
            }
            Some(earliest) => {
                let wake_at = earliest.min(now + SWEEP_MAX_SLEEP);
                shared.sweep_at.set(Some(wake_at));
                futures_lite::future::or(
                    glommio::timer::sleep(wake_at.saturating_duration_since(now)),
                    SweeperRearmed { shared: &shared },
                )
                .await;
            }
        }
    }
}

/// Ready once a request needs the sweeper earlier than planned, or the connection closed.
struct SweeperRearmed<'a> {
    shared: &'a Shared,
}

impl Future for SweeperRearmed<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let shared = self.shared;
        if shared.sweep_rearm.get() || shared.closed.borrow().is_some() {
            return Poll::Ready(());
        }
        *shared.sweeper_waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}
