//! One shard: a pinned glommio executor that accepts connections, serves the requests it owns
//! and forwards the others to their owners over the shard mesh.
//!
//! Everything in [`Shard`] is shard-local (`Rc`/`RefCell`, so `!Send`): no other thread can
//! touch it. Other shards reach it only through [`ShardMsg`]s on its inbox.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use glommio::net::TcpListener;
use ringmq_proto::code::ResponseCode;
use ringmq_proto::command::RemotingCommand;

use super::conn::{self, ConnEnd, ConnHandle, ConnId, RequestSink};
use super::route::{route, Route, METADATA_SHARD};
use crate::config::BrokerConfig;
use crate::metadata::offsets::ConsumerOffsets;
use crate::metadata::{BrokerView, ControlCall, Metadata};
use crate::processor;
use crate::shard_map::ShardId;
use crate::store::{FlushMode, Store, StoreConfig};
use ringmq_proto::message::ids::UniqKeyGenerator;
use std::net::SocketAddr;

use super::stop::StopSignal;

/// A message between shards. The inbox of each shard receives these in order.
pub enum ShardMsg {
    /// Requests another shard received for queues (or metadata) this shard owns, in arrival
    /// order; one message per (source read, destination) pair.
    Requests(Vec<Forwarded>),
    /// A call into broker-wide state; only the metadata shard receives these.
    Control(ControlCall),
    /// A new read copy of broker-wide state, published by the metadata shard.
    View(Arc<BrokerView>),
    /// This shard's part of a QUERY_MESSAGE that another shard received.
    IndexQuery(processor::lookup::IndexQuery),
    /// GET_BROKER_RUNTIME_INFO on another shard asks for this shard's counters.
    CountersQuery(flume::Sender<processor::runtime_info::ShardCounters>),
    /// A connection closed; the metadata shard drops its client registrations.
    ConnClosed(ConnId),
    /// Stop accepting, finish in-flight work, persist, exit.
    Shutdown,
}

/// A request served by a shard other than the one whose connection received it.
pub struct Forwarded {
    pub conn: ConnHandle,
    pub request: RemotingCommand,
}

/// Senders to every shard's inbox, indexed by shard id. `Send + Clone`.
pub type Mesh = Arc<Vec<flume::Sender<ShardMsg>>>;

/// How long shutdown waits for in-flight requests before closing anyway.
const SHUTDOWN_DRAIN_MAX: Duration = Duration::from_secs(5);
/// Poll interval while draining at shutdown.
const SHUTDOWN_DRAIN_POLL: Duration = Duration::from_millis(20);

pub struct Shard {
    pub id: ShardId,
    pub shards: usize,
    pub config: Arc<BrokerConfig>,
    mesh: Mesh,
    view: RefCell<Arc<BrokerView>>,
    /// Requests accepted on this shard and not answered yet (parked pulls excluded).
    pending_requests: Cell<usize>,
    next_conn: Cell<u64>,
    /// Broker-wide state; `Some` only on the metadata shard.
    pub metadata: Option<RefCell<Metadata>>,
    /// Consumer offsets of the queues this shard owns.
    pub offsets: RefCell<ConsumerOffsets>,
    /// This shard's storage engine; `None` once closed at shutdown.
    store: RefCell<Option<Rc<Store>>>,
    /// UNIQ_KEY for messages that arrive without one.
    pub uniq_keys: RefCell<UniqKeyGenerator>,
    /// The address stored as STOREHOST and encoded in offsetMsgIds.
    pub store_host: SocketAddr,
    /// Fired at shutdown: parked pulls answer at once.
    pub stop: StopSignal,
    shutting_down: Cell<bool>,
    /// Messages put and got on this shard (GET_BROKER_RUNTIME_INFO).
    pub counters: processor::runtime_info::RequestCounters,
    /// When the broker started (ms since the epoch), for GET_BROKER_RUNTIME_INFO.
    pub boot_timestamp_ms: i64,
}

impl Shard {
    pub fn new(
        id: ShardId,
        config: Arc<BrokerConfig>,
        mesh: Mesh,
        view: Arc<BrokerView>,
        metadata: Option<Metadata>,
        offsets: ConsumerOffsets,
        store: Store,
    ) -> Shard {
        assert_eq!(metadata.is_some(), id == METADATA_SHARD);
        let store_host: SocketAddr = config
            .advertised_addr()
            .parse()
            .expect("brokerIP1 is validated as IPv4");
        let process_constant = rand::random::<i32>();
        let uniq_keys =
            UniqKeyGenerator::new(store_host.ip(), std::process::id(), process_constant);
        Shard {
            id,
            shards: mesh.len(),
            config,
            mesh,
            view: RefCell::new(view),
            pending_requests: Cell::new(0),
            next_conn: Cell::new(0),
            metadata: metadata.map(RefCell::new),
            offsets: RefCell::new(offsets),
            store: RefCell::new(Some(Rc::new(store))),
            uniq_keys: RefCell::new(uniq_keys),
            store_host,
            stop: StopSignal::default(),
            shutting_down: Cell::new(false),
            counters: Default::default(),
            boot_timestamp_ms: crate::metadata::topics::now_ms(),
        }
    }

    /// The store, unless it was already closed (answer SERVICE_NOT_AVAILABLE then).
    pub fn store(&self) -> Option<Rc<Store>> {
        self.store.borrow().clone()
    }

    /// This shard's read copy of broker-wide state.
    pub fn view(&self) -> Arc<BrokerView> {
        self.view.borrow().clone()
    }

    /// Sends a message to a shard's inbox (this one included).
    pub fn send_to(&self, shard: ShardId, msg: ShardMsg) {
        if self.mesh[shard.0].send(msg).is_err() {
            // Only at shutdown, when the other executor has already left.
            tracing::debug!(from = self.id.0, to = shard.0, "shard inbox closed");
        }
    }

    /// Publishes a new read copy of broker-wide state to every shard (metadata shard only).
    /// Its own copy is replaced at once, so the next request it serves already sees the change.
    pub fn publish_view(&self, view: Arc<BrokerView>) {
        assert_eq!(self.id, METADATA_SHARD);
        for shard in (0..self.shards).filter(|s| *s != self.id.0) {
            self.send_to(ShardId(shard), ShardMsg::View(view.clone()));
        }
        self.install_view(view);
    }

    /// Swaps in a new read copy; offsets of topics that disappeared are dropped with them.
    fn install_view(&self, view: Arc<BrokerView>) {
        let old = std::mem::replace(&mut *self.view.borrow_mut(), view.clone());
        let mut offsets = self.offsets.borrow_mut();
        for topic in old.topics.keys().filter(|t| !view.topics.contains_key(*t)) {
            offsets.remove_topic(topic);
        }
    }

    /// Sends a control call to the metadata shard.
    pub fn control(&self, call: ControlCall) {
        self.send_to(METADATA_SHARD, ShardMsg::Control(call));
    }

    /// Marks a request answered (or parked) for the SYSTEM_BUSY bound.
    pub fn request_finished(&self) {
        let pending = self.pending_requests.get();
        assert!(pending > 0, "request finished twice");
        self.pending_requests.set(pending - 1);
    }
}

/// The shard as its connections' [`RequestSink`].
#[derive(Clone)]
pub struct ShardRef(pub Rc<Shard>);

impl RequestSink for ShardRef {
    fn dispatch(&self, conn: &ConnHandle, requests: Vec<RemotingCommand>) {
        let shard = &self.0;
        // One batch per destination shard, kept in arrival order.
        let mut remote: Vec<Vec<Forwarded>> = (0..shard.shards).map(|_| Vec::new()).collect();
        for request in requests {
            match route(&request, shard.id, shard.shards) {
                Route::Shard(owner) if owner == shard.id => serve(shard, conn.clone(), request),
                Route::Shard(owner) => remote[owner.0].push(Forwarded {
                    conn: conn.clone(),
                    request,
                }),
                Route::ResolveSend => {
                    let shard = shard.clone();
                    let conn = conn.clone();
                    glommio::spawn_local(async move {
                        processor::send::resolve_and_route(shard, conn, request).await;
                    })
                    .detach();
                }
            }
        }
        for (owner, batch) in remote.into_iter().enumerate() {
            if !batch.is_empty() {
                shard.send_to(ShardId(owner), ShardMsg::Requests(batch));
            }
        }
    }
}

/// Serves one request on this shard: SYSTEM_BUSY past the pending bound, else a task.
///
/// glommio polls a spawned task at once, up to its first await, so a handler that never waits
/// is done before this returns; only requests that wait (for the store, for another shard)
/// stay pending. Callers must not hold a `RefCell` borrow of shard state across this call.
pub fn serve(shard: &Rc<Shard>, conn: ConnHandle, request: RemotingCommand) {
    if shard.pending_requests.get() >= shard.config.shard_pending_requests_max {
        if !request.is_oneway() {
            let remark = format!(
                "[SYSTEM_BUSY] shard {} has {} requests in progress; try again",
                shard.id.0,
                shard.pending_requests.get()
            );
            conn.send(RemotingCommand::response_to(
                &request,
                ResponseCode::SystemBusy.code(),
                Some(remark),
            ));
        }
        return;
    }
    shard.pending_requests.set(shard.pending_requests.get() + 1);
    let shard = shard.clone();
    glommio::spawn_local(async move {
        let oneway = request.is_oneway();
        match processor::process(&shard, &conn, request).await {
            processor::Outcome::Respond(response) => {
                shard.request_finished();
                // A oneway request is handled in full but never answered (reference §1.5).
                if !oneway {
                    conn.send(response);
                }
            }
            processor::Outcome::Forwarded => shard.request_finished(),
            // The pull answers later itself and already released its slot when it parked.
            processor::Outcome::Parked => {}
        }
    })
    .detach();
}

/// Runs shard `id` until shutdown. Called inside the shard's executor.
pub async fn run_shard(shard: Rc<Shard>, inbox: flume::Receiver<ShardMsg>) {
    let listen = bind(&shard, shard.config.listen_port);
    let vip = bind(&shard, shard.config.vip_port());
    let (listen, vip) = match (listen, vip) {
        (Ok(listen), Ok(vip)) => (listen, vip),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(shard = shard.id.0, "cannot listen: {e}");
            std::process::exit(1);
        }
    };
    let accept_listen = glommio::spawn_local(accept_loop(shard.clone(), listen));
    let accept_vip = glommio::spawn_local(accept_loop(shard.clone(), vip));
    let timers = processor::spawn_timers(&shard);
    tracing::info!(shard = shard.id.0, "shard serving");

    while let Ok(msg) = inbox.recv_async().await {
        if let ShardMsg::Shutdown = msg {
            break;
        }
        handle_inbox(&shard, msg);
        // Drain what else is already queued before yielding: one wake-up, many messages.
        while let Ok(msg) = inbox.try_recv() {
            if let ShardMsg::Shutdown = msg {
                shard.shutting_down.set(true);
                break;
            }
            handle_inbox(&shard, msg);
        }
        if shard.shutting_down.get() {
            break;
        }
    }
    shard.shutting_down.set(true);
    accept_listen.cancel().await;
    accept_vip.cancel().await;
    for timer in timers {
        timer.cancel().await;
    }
    shard.stop.fire();
    drain(&shard, &inbox).await;
    processor::on_shutdown(&shard).await;
    close_store(&shard).await;
    tracing::info!(shard = shard.id.0, "shard stopped");
}

fn handle_inbox(shard: &Rc<Shard>, msg: ShardMsg) {
    match msg {
        ShardMsg::Requests(batch) => {
            for forwarded in batch {
                serve(shard, forwarded.conn, forwarded.request);
            }
        }
        ShardMsg::Control(call) => processor::control(shard, call),
        ShardMsg::View(view) => shard.install_view(view),
        ShardMsg::CountersQuery(reply) => {
            let _ = reply.send(processor::runtime_info::shard_counters(shard));
        }
        ShardMsg::ConnClosed(conn_id) => processor::connection_closed(shard, conn_id),
        ShardMsg::IndexQuery(query) => {
            glommio::spawn_local(processor::lookup::run_index_query(shard.clone(), query)).detach();
        }
        ShardMsg::Shutdown => unreachable!("handled by the inbox loop"),
    }
}

/// Serves what is still in flight (and forwarded work still arriving) for a bounded time.
async fn drain(shard: &Rc<Shard>, inbox: &flume::Receiver<ShardMsg>) {
    let started = std::time::Instant::now();
    loop {
        while let Ok(msg) = inbox.try_recv() {
            if !matches!(msg, ShardMsg::Shutdown) {
                handle_inbox(shard, msg);
            }
        }
        if shard.pending_requests.get() == 0 || started.elapsed() >= SHUTDOWN_DRAIN_MAX {
            break;
        }
        glommio::timer::sleep(SHUTDOWN_DRAIN_POLL).await;
    }
    if shard.pending_requests.get() > 0 {
        tracing::warn!(
            shard = shard.id.0,
            pending = shard.pending_requests.get(),
            "stopping with requests unanswered"
        );
    }
}

/// Closes the store once no task holds it any more (bounded wait: a task still holding it at
/// the deadline means its work is abandoned and the store is left to recovery at next start).
async fn close_store(shard: &Rc<Shard>) {
    let Some(mut store) = shard.store.borrow_mut().take() else {
        return;
    };
    let started = std::time::Instant::now();
    let store = loop {
        match Rc::try_unwrap(store) {
            Ok(store) => break store,
            Err(shared) if started.elapsed() < SHUTDOWN_DRAIN_MAX => {
                store = shared;
                glommio::timer::sleep(SHUTDOWN_DRAIN_POLL).await;
            }
            Err(_) => {
                tracing::error!(
                    shard = shard.id.0,
                    "store still in use at shutdown; not closed cleanly"
                );
                return;
            }
        }
    };
    match store.close().await {
        Ok(()) => tracing::info!(shard = shard.id.0, "store closed"),
        Err(e) => tracing::error!(shard = shard.id.0, "store close failed: {e}"),
    }
}

/// The storage settings of shard `shard_id` from the broker configuration.
pub fn store_config(config: &BrokerConfig, shard_id: u8) -> StoreConfig {
    let mut store = StoreConfig::new(config.store_path_root_dir.clone(), shard_id);
    store.segment_size_bytes = config.mapped_file_size_commit_log_bytes;
    store.flush_mode = match config.flush_disk_type {
        crate::config::FlushDiskType::AsyncFlush => FlushMode::Async,
        crate::config::FlushDiskType::SyncFlush => FlushMode::Sync,
    };
    store.flush_interval_ms = config.flush_interval_commit_log_ms;
    store.sync_flush_timeout_ms = config.sync_flush_timeout_ms;
    store.tail_cache_bytes = config.tail_cache_bytes as usize;
    store.zero_ahead_bytes = config.zero_ahead_bytes;
    // Room for the record header, topic and properties around a maximal body.
    store.max_record_bytes = config.max_message_size_bytes as usize + 64 * 1024;
    store.file_reserved_time_ms = u64::from(config.file_reserved_time_hours) * 3600 * 1000;
    store.disk_max_used_ratio_percent = config.disk_max_used_space_ratio_percent as u8;
    store
}

fn bind(shard: &Shard, port: u16) -> glommio::Result<TcpListener, ()> {
    // glommio's bind sets SO_REUSEPORT, so every shard binds the same port and the kernel
    // spreads incoming connections over them.
    TcpListener::bind((shard.config.broker_ip1.as_str(), port))
}

async fn accept_loop(shard: Rc<Shard>, listener: TcpListener) {
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning; the listener stays.
                tracing::warn!(shard = shard.id.0, "accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(100)).await;
                continue;
            }
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
        let counter = shard.next_conn.get();
        shard.next_conn.set(counter + 1);
        let (handle, outbound) = conn::new_connection(ConnId::new(shard.id.0, counter), peer);
        let shard = shard.clone();
        glommio::spawn_local(async move {
            let (reader, writer) = futures_lite::io::split(stream);
            let writer_task = glommio::spawn_local(conn::write_loop(writer, outbound));
            let end = conn::read_loop(reader, &handle, &ShardRef(shard.clone())).await;
            match &end {
                ConnEnd::PeerClosed => tracing::debug!(conn = handle.id.0, %peer, "connection closed by peer"),
                ConnEnd::Io(e) => tracing::debug!(conn = handle.id.0, %peer, "connection error: {e}"),
                ConnEnd::Malformed(e) => {
                    tracing::warn!(conn = handle.id.0, %peer, "malformed frame, closing connection: {e}")
                }
            }
            shard.send_to(METADATA_SHARD, ShardMsg::ConnClosed(handle.id));
            // The writer ends once every clone of the handle is gone; a peer that closed or
            // sent garbage gets nothing more, so stop it now (the socket closes with it).
            drop(handle);
            writer_task.cancel().await;
        })
        .detach();
    }
}
