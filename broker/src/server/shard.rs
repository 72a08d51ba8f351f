//! One shard: a pinned glommio executor that accepts connections, serves the requests it owns
//! and forwards the others to their owners over the shard mesh.
//!
//! Everything in [`Shard`] is shard-local (`Rc`/`RefCell`, so `!Send`): no other thread can
//! touch it. Other shards reach it only through [`ShardMsg`]s on its inbox.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ringmq_proto::message::ids::UniqKeyGenerator;

use super::inbox::{drain, serve_inbox};
use super::listen::{accept_loop, bind};
use super::mesh::{InboxReceivers, Mesh, ShardMsg};
use super::placement::METADATA_SHARD;
use super::slots::SlotCounter;
use crate::acl::AclGate;
use crate::channel;
use crate::channel::{ConnHandle, ConsumerChannel};
use crate::config::BrokerConfig;
use crate::ha::{LearnedMaster, ShardHa};
use crate::metadata::offsets::ConsumerOffsets;
use crate::metadata::{BrokerView, CreateTopicReply, CreateTopicRequest, Metadata};
use crate::persist::FileWriter;
use crate::processor::lookup::IndexQuery;
use crate::processor::runtime_info::{self, RequestCounters, ShardCounters};
use crate::processor::stats::{AdminPart, AdminQuery};
use crate::processor::{self, Announce, ShardMesh};
use crate::schedule::ShardSchedule;
use crate::shard_map::ShardId;
use crate::stats::{lag, BrokerStats};
use crate::stop::StopSignal;
use crate::store::{FlushMode, QueryResult, Store, StoreConfig};
use crate::transaction::check::ProducerDirectory;
use crate::transaction::TransactionService;

/// How long shutdown waits for in-flight requests before closing anyway.
pub(super) const SHUTDOWN_DRAIN_MAX: Duration = Duration::from_secs(5);
/// Poll interval while draining at shutdown.
pub(super) const SHUTDOWN_DRAIN_POLL: Duration = Duration::from_millis(20);
/// Interval of the client-expiry sweep on the metadata shard.
const CLIENT_EXPIRY_SWEEP: Duration = Duration::from_secs(10);
/// Shortest interval between two writes of a shard's consumer offsets.
const OFFSETS_PERSIST_INTERVAL_MIN: Duration = Duration::from_millis(100);

/// What a shard owns besides broker-wide state, made ready before its executor starts.
pub struct ShardParts {
    pub offsets: ConsumerOffsets,
    pub store: Store,
    pub file_writer: FileWriter,
    pub transaction: TransactionService,
    /// The broker's statistics; this shard writes its own slot.
    pub stats: Arc<BrokerStats>,
}

pub struct Shard {
    pub id: ShardId,
    pub shards: usize,
    pub config: Arc<BrokerConfig>,
    mesh: Mesh,
    view: RefCell<Arc<BrokerView>>,
    /// Requests accepted on this shard and not answered yet (parked pulls excluded).
    pub(super) pending: SlotCounter,
    /// Pulls parked on this shard's queues.
    pub(super) parked_pulls: SlotCounter,
    /// Client connections this shard accepted and has open.
    pub(super) connections: SlotCounter,
    /// The same connections' handles, for the bytes queued for their writers.
    pub(super) open_connections: channel::OpenConnections,
    pub(super) next_conn: Cell<u64>,
    /// Broker-wide state; `Some` only on the metadata shard.
    pub metadata: Option<RefCell<Metadata>>,
    /// Consumer offsets of the queues this shard owns.
    pub offsets: RefCell<ConsumerOffsets>,
    /// This shard's storage engine; `None` once closed at shutdown.
    store: RefCell<Option<Rc<Store>>>,
    /// The delay-level and timer delivery task over this shard's store on a master, the copy
    /// of the master's progress on a slave (`crate::schedule`).
    pub(super) schedule: RefCell<Option<ShardSchedule>>,
    /// UNIQ_KEY for messages that arrive without one.
    pub uniq_keys: RefCell<UniqKeyGenerator>,
    /// The address stored as STOREHOST and encoded in offsetMsgIds.
    pub store_host: SocketAddr,
    /// Fired at shutdown: parked pulls answer at once.
    pub stop: StopSignal,
    /// Messages put and got on this shard (GET_BROKER_RUNTIME_INFO), and the statistics it
    /// publishes.
    pub counters: RequestCounters,
    /// Every shard's published statistics (read by VIEW_BROKER_STATS_DATA).
    pub stats: Arc<BrokerStats>,
    /// When the broker started (ms since the epoch), for GET_BROKER_RUNTIME_INFO.
    pub boot_timestamp_ms: i64,
    /// Writes this shard's periodic files (consumer offsets) off the shard thread.
    file_writer: FileWriter,
    /// Half messages, END_TRANSACTION and check-backs of this shard's log.
    pub transaction: Rc<TransactionService>,
    /// SQL92 subscriptions compiled for this shard's pulls.
    pub filters: RefCell<crate::filter::FilterCache>,
    /// The ACL check (`aclEnable`), run on the receiving shard before a request is placed.
    pub acl: Option<AclGate>,
    /// This shard's replication service (HA task, SYNC_MASTER waits, status).
    pub ha: Rc<ShardHa>,
}

impl Shard {
    pub fn new(
        id: ShardId,
        config: Arc<BrokerConfig>,
        mesh: Mesh,
        view: Arc<BrokerView>,
        metadata: Option<Metadata>,
        parts: ShardParts,
    ) -> Shard {
        let ShardParts {
            offsets,
            store,
            file_writer,
            transaction,
            stats,
        } = parts;
        store.attach_engine_stats(Arc::clone(&stats.shards()[id.0]));
        assert_eq!(metadata.is_some(), id == METADATA_SHARD);
        let store_host: SocketAddr = config
            .advertised_addr()
            .parse()
            .expect("brokerIP1 is validated as IPv4");
        let process_constant = rand::random::<i32>();
        let uniq_keys =
            UniqKeyGenerator::new(store_host.ip(), std::process::id(), process_constant);
        let ha = ShardHa::new(&config, id.0 as u16, mesh.len() as u16);
        Shard {
            id,
            shards: mesh.len(),
            config,
            mesh,
            view: RefCell::new(view),
            pending: SlotCounter::default(),
            parked_pulls: SlotCounter::default(),
            connections: SlotCounter::default(),
            open_connections: channel::OpenConnections::default(),
            next_conn: Cell::new(0),
            metadata: metadata.map(RefCell::new),
            offsets: RefCell::new(offsets),
            store: RefCell::new(Some(Rc::new(store))),
            schedule: RefCell::new(None),
            uniq_keys: RefCell::new(uniq_keys),
            store_host,
            stop: StopSignal::default(),
            counters: RequestCounters::new(stats.handle(id.0)),
            stats,
            boot_timestamp_ms: crate::metadata::topics::now_ms(),
            file_writer,
            transaction: Rc::new(transaction),
            filters: RefCell::default(),
            acl: None,
            ha,
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

    /// Queues forwarded requests for their owner shard, without waiting.
    pub(super) fn forward(
        &self,
        owner: ShardId,
        batch: Vec<super::mesh::Forwarded>,
    ) -> Result<(), super::mesh::ForwardError> {
        self.mesh[owner.0].forward(batch)
    }

    /// Sends a control message to a shard (this one included).
    pub fn send_control(&self, shard: ShardId, msg: ShardMsg) {
        if !self.mesh[shard.0].control(msg) {
            // Only at shutdown, when the other executor has already left.
            tracing::debug!(from = self.id.0, to = shard.0, "shard inbox closed");
        }
    }

    /// Publishes a new read copy of broker-wide state to every shard (metadata shard only).
    /// Its own copy is replaced at once, so the next request it serves already sees the change;
    /// the other shards' copies are in place when the returned [`ViewInstalled`] resolves.
    fn publish_view(&self, view: Arc<BrokerView>) -> ViewInstalled {
        assert_eq!(self.id, METADATA_SHARD);
        let (acks, installed) = flume::bounded(self.shards);
        for shard in (0..self.shards).filter(|s| *s != self.id.0) {
            self.send_control(ShardId(shard), ShardMsg::View(view.clone(), acks.clone()));
        }
        self.install_view(view);
        ViewInstalled {
            installed,
            expected: self.shards - 1,
        }
    }

    /// Swaps in a new read copy; offsets of topics that disappeared are dropped with them.
    pub(super) fn install_view(&self, view: Arc<BrokerView>) {
        let old = std::mem::replace(&mut *self.view.borrow_mut(), view.clone());
        let mut offsets = self.offsets.borrow_mut();
        for topic in old.topics.keys().filter(|t| !view.topics.contains_key(*t)) {
            offsets.remove_topic(topic);
        }
    }

    /// Broker-wide state, on the metadata shard. The placement table sends every handler that
    /// needs it there, so its absence is a bug in the table.
    pub(super) fn metadata(&self) -> &RefCell<Metadata> {
        self.metadata
            .as_ref()
            .expect("the placement table sends metadata handlers to the metadata shard")
    }

    /// Carries out what a change to broker-wide state asks for (metadata shard only). A request
    /// whose change republished the view waits on the returned handle before it is answered,
    /// so a client's next request sees its change on whichever shard serves it (a heartbeat,
    /// then a pull on another shard's queue).
    pub(super) fn carry_out(&self, announce: Announce) -> Option<ViewInstalled> {
        if announce.is_empty() {
            return None;
        }
        let view = {
            let meta = self.metadata().borrow();
            if announce.reregister {
                meta.register_with_name_servers();
            }
            for group in &announce.notify_groups {
                processor::client::notify_consumer_ids_changed(&meta, group);
            }
            announce.republish.then(|| meta.view())
        };
        view.map(|view| self.publish_view(view))
    }

    /// The live connections of a producer group (metadata shard only).
    pub(super) fn live_producers(&self, group: &str) -> Vec<ConnHandle> {
        let channels = self.metadata().borrow().clients.producer_channels(group);
        channels.into_iter().filter(ConnHandle::is_open).collect()
    }

    pub(super) fn live_consumers(&self, group: &str) -> Vec<ConsumerChannel> {
        let members = self.metadata().borrow().clients.consumer_members(group);
        members
            .into_iter()
            .filter(|(_, conn)| conn.is_open())
            .map(|(client_id, conn)| ConsumerChannel { client_id, conn })
            .collect()
    }

    /// Broker facts GET_BROKER_RUNTIME_INFO reports.
    pub(super) fn facts(&self) -> runtime_info::BrokerFacts {
        runtime_info::BrokerFacts {
            boot_timestamp_ms: self.boot_timestamp_ms,
            shards: self.shards,
            role: self.ha.role_name(),
        }
    }

    /// Sends `msg(reply)` to every shard and returns the receiving end of their replies.
    fn ask_every_shard<T>(&self, msg: impl Fn(flume::Sender<T>) -> ShardMsg) -> flume::Receiver<T> {
        let (reply, answers) = flume::bounded(self.shards);
        for target in 0..self.shards {
            self.send_control(ShardId(target), msg(reply.clone()));
        }
        answers
    }
}

impl ShardMesh for Shard {
    fn create_topic_on_send(
        &self,
        request: CreateTopicRequest,
    ) -> flume::Receiver<CreateTopicReply> {
        let (reply, answer) = flume::bounded(1);
        self.send_control(METADATA_SHARD, ShardMsg::CreateTopic(request, reply));
        answer
    }

    fn query_index_everywhere(
        &self,
        query: IndexQuery,
    ) -> flume::Receiver<Result<QueryResult, String>> {
        self.ask_every_shard(|reply| ShardMsg::IndexQuery(query.clone(), reply))
    }

    fn counters_everywhere(&self) -> flume::Receiver<ShardCounters> {
        self.ask_every_shard(ShardMsg::CountersQuery)
    }

    fn admin_everywhere(&self, query: AdminQuery) -> flume::Receiver<Result<AdminPart, String>> {
        self.ask_every_shard(|reply| ShardMsg::AdminQuery(query.clone(), reply))
    }
    fn schedule_progress_everywhere(
        &self,
    ) -> flume::Receiver<ringmq_proto::body::ShardScheduleProgress> {
        self.ask_every_shard(ShardMsg::ScheduleProgressQuery)
    }

    fn consumer_channels(&self, group: &str) -> flume::Receiver<Vec<ConsumerChannel>> {
        let (reply, answer) = flume::bounded(1);
        if self.metadata.is_some() {
            let _ = reply.send(self.live_consumers(group));
        } else {
            let msg = ShardMsg::ConsumerChannels(group.to_string(), reply);
            self.send_control(METADATA_SHARD, msg);
        }
        answer
    }
}

/// The other shards' acknowledgements of one published view.
pub(super) struct ViewInstalled {
    installed: flume::Receiver<()>,
    expected: usize,
}

impl ViewInstalled {
    /// Resolves when every other shard has installed the view, or has stopped (shutdown).
    pub(super) async fn wait(self) {
        for _ in 0..self.expected {
            if self.installed.recv_async().await.is_err() {
                return;
            }
        }
    }
}

/// Producer registrations for the shard's transaction check task: asked of the metadata shard
/// over the mesh (answered directly when this is the metadata shard).
struct ShardProducers(Rc<Shard>);

impl ProducerDirectory for ShardProducers {
    type Channel = ConnHandle;
    async fn producers(&self, group: &str) -> Vec<ConnHandle> {
        if self.0.metadata.is_some() {
            return self.0.live_producers(group);
        }
        let (reply, answer) = flume::bounded(1);
        let msg = ShardMsg::ProducerChannels(group.to_string(), reply);
        self.0.send_control(METADATA_SHARD, msg);
        // A closed reply channel means the metadata shard is stopping: nobody to ask.
        answer.recv_async().await.unwrap_or_default()
    }
}

/// The shard's check-back loop; cancelled at shutdown with the other timers, before the store
/// closes.
fn spawn_transaction_checks(shard: &Rc<Shard>, store: Rc<Store>) -> glommio::Task<()> {
    let interval = Duration::from_millis(shard.config.flush_consumer_offset_interval_ms)
        .max(OFFSETS_PERSIST_INTERVAL_MIN);
    let transaction = shard.transaction.clone();
    let directory = ShardProducers(shard.clone());
    let writer = shard.file_writer.clone();
    glommio::spawn_local(
        async move { transaction.run(&store, &directory, interval, &writer).await },
    )
}

/// Runs shard `id` until shutdown. Called inside the shard's executor. The shard listens only
/// once every shard passed `gate` (see [`super::start_gate`]), and serves its inbox from then on
/// without awaiting anything else first.
pub async fn run_shard(
    shard: Rc<Shard>,
    inbox: InboxReceivers,
    learned: LearnedMaster,
    gate: super::start_gate::StartGate,
) {
    start_schedule(&shard).await;
    gate.pass().await;
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
    // Registers with the name servers (metadata shard): only now that every shard listens.
    let timers = spawn_timers(&shard);
    let ha_task = start_ha(&shard, learned);
    tracing::info!(shard = shard.id.0, "shard serving");
    serve_inbox(&shard, &inbox).await;
    accept_listen.cancel().await;
    accept_vip.cancel().await;
    for timer in timers {
        timer.cancel().await;
    }
    shard.stop.fire();
    // Waiting SYNC_MASTER sends answer now; the HA task lets go of the store before it closes.
    shard.ha.stop();
    ha_task.await;
    drain(&shard, &inbox).await;
    persist_offsets(&shard).await;
    if let Err(e) = shard.transaction.persist_with(&shard.file_writer).await {
        tracing::warn!(
            shard = shard.id.0,
            "transaction progress not persisted: {e}"
        );
    }
    // The schedule task writes its progress and lets go of the store before it is closed.
    let schedule = shard.schedule.borrow_mut().take();
    if let Some(schedule) = schedule {
        schedule.stop().await;
    }
    close_store(&shard).await;
    tracing::info!(shard = shard.id.0, "shard stopped");
}

/// Starts the shard's delivery of held messages on a master (without it held messages wait,
/// nothing is lost, until a start that succeeds). A slave delivers nothing: its log is a byte
/// copy of its master's, which delivers them itself (Java's `handleScheduleMessageService` stops
/// the service on a SLAVE), and deliveries of its own would diverge; it keeps a copy of the
/// master's progress in the same file instead, so it resumes from there if started as master.
async fn start_schedule(shard: &Rc<Shard>) {
    let Some(store) = shard.store() else { return };
    let path = store.config().shard_dir().join("schedule").join("progress");
    let started = if shard.config.is_slave() {
        crate::schedule::ScheduleMirror::start(&path)
            .await
            .map(ShardSchedule::Mirror)
    } else {
        let config = shard.config.schedule.clone();
        crate::schedule::ScheduleService::start(store, config, &path)
            .await
            .map(ShardSchedule::Delivery)
    };
    match started {
        Ok(schedule) => *shard.schedule.borrow_mut() = Some(schedule),
        Err(e) => tracing::error!(shard = shard.id.0, "schedule service not started: {e}"),
    }
}

/// Writes this shard's consumer offsets if they changed, on the writer thread: the fsyncs of an
/// atomic write took 12–30 ms on a shard thread (`results/stalls-2026-12-07.md`).
async fn persist_offsets(shard: &Shard) {
    let Some((path, bytes)) = shard.offsets.borrow_mut().take_dirty_snapshot() else {
        return;
    };
    if let Err(e) = shard.file_writer.write(path, bytes).await {
        shard.offsets.borrow_mut().mark_dirty();
        tracing::error!(shard = shard.id.0, "cannot persist consumer offsets: {e}");
    }
}

/// Starts the shard's HA task (master listener or slave follower). Without its HA port a master
/// cannot keep its promise, so a failure stops the process.
fn start_ha(shard: &Rc<Shard>, learned: LearnedMaster) -> glommio::task::JoinHandle<()> {
    let store = shard.store().expect("the store is open until shutdown");
    match shard.ha.start(&shard.config, store, learned) {
        Ok(task) => task,
        Err(e) => {
            tracing::error!(shard = shard.id.0, "cannot start replication: {e}");
            eprintln!(
                "ringmq-broker: shard {}: cannot start replication: {e}",
                shard.id.0
            );
            std::process::exit(1);
        }
    }
}

/// Periodic work of a shard; the tasks are cancelled at shutdown.
fn spawn_timers(shard: &Rc<Shard>) -> Vec<glommio::Task<()>> {
    let mut tasks = Vec::new();
    let interval = Duration::from_millis(shard.config.flush_consumer_offset_interval_ms)
        .max(OFFSETS_PERSIST_INTERVAL_MIN);
    let offsets_shard = shard.clone();
    tasks.push(glommio::spawn_local(async move {
        loop {
            glommio::timer::sleep(interval).await;
            persist_offsets(&offsets_shard).await;
        }
    }));
    // Transaction check-backs run on a master only (Java's `startProcessorByHa`): a slave
    // cannot append the op records their answers produce.
    if let Some(store) = shard.store().filter(|_| !shard.config.is_slave()) {
        tasks.push(spawn_transaction_checks(shard, store));
    }
    tasks.push(glommio::spawn_local(publish_engine_stats(shard.clone())));
    if let Some(metadata) = &shard.metadata {
        metadata.borrow().register_with_name_servers();
        let sweep_shard = shard.clone();
        tasks.push(glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(CLIENT_EXPIRY_SWEEP).await;
                let now_ms = crate::metadata::topics::now_ms();
                let announce = {
                    let mut meta = sweep_shard.metadata().borrow_mut();
                    processor::client::expire_clients(&mut meta, now_ms)
                };
                sweep_shard.carry_out(announce);
            }
        }));
    }
    tasks
}

/// Every [`lag::LAG_INTERVAL`]: this shard's consumer lag and busy time into its published
/// statistics (for /metrics).
async fn publish_engine_stats(shard: Rc<Shard>) {
    loop {
        glommio::timer::sleep(lag::LAG_INTERVAL).await;
        // Task run time since the last call (glommio resets the stats it returns).
        let busy = glommio::executor().executor_stats().executor_runtime();
        let shared = shard.counters.stats.shared();
        let busy_ns = u64::try_from(busy.as_nanos()).unwrap_or(u64::MAX);
        shared.engine.busy_ns.fetch_add(busy_ns, Ordering::Relaxed);
        let queued = shard.open_connections.queued_bytes();
        let gauge = &shared.engine.connection_queued_bytes;
        gauge.store(queued, Ordering::Relaxed);
        let Some(store) = shard.store() else {
            return;
        };
        let lags = lag::compute(&store, &shard.offsets, crate::metadata::topics::now_ms()).await;
        shared.publish_lag(lags);
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
    store.checkpoint_interval_ms = config.flush_consume_queue_thorough_interval_ms;
    store.sync_flush_timeout_ms = config.sync_flush_timeout_ms;
    store.tail_cache_bytes = config.tail_cache_bytes as usize;
    store.read_ahead_extents = config.read_ahead_extents as usize;
    store.cq_cache_entries_total = config.consume_queue_cache_entries as usize;
    store.index_slots_per_file = config.max_hash_slot_num;
    store.index_entries_per_file = config.max_index_num;
    store.index_filter_cache_bytes = config.index_filter_cache_bytes as usize;
    store.zero_ahead_bytes = config.zero_ahead_bytes;
    store.write_linger_us = config.write_linger_us;
    // Room for the record header, topic and properties around a maximal body.
    store.max_record_bytes = config.max_message_size_bytes as usize + 64 * 1024;
    store.file_reserved_time_ms = u64::from(config.file_reserved_time_hours) * 3600 * 1000;
    store.disk_max_used_ratio_percent = config.disk_max_used_space_ratio_percent as u8;
    store
}
