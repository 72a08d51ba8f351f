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

use glommio::net::TcpListener;
use ringmq_proto::message::ids::UniqKeyGenerator;

use super::conn::{self, ConnEnd};
use super::dispatch::{self, ShardRef};
use super::mesh::{InboxReceivers, Mesh, ShardMsg};
use super::placement::METADATA_SHARD;
use super::slots::{Slot, SlotCounter};
use crate::acl::AclGate;
use crate::channel::{self as channel, ConnId};
use crate::channel::{ConnHandle, ConsumerChannel};
use crate::config::BrokerConfig;
use crate::ha::sync::MasterMetadata;
use crate::ha::{LearnedMaster, ShardHa};
use crate::metadata::offsets::ConsumerOffsets;
use crate::metadata::{BrokerView, CreateTopicReply, CreateTopicRequest, Metadata};
use crate::persist::FileWriter;
use crate::processor::lookup::IndexQuery;
use crate::processor::runtime_info::{self, RequestCounters, ShardCounters};
use crate::processor::stats::{run_admin_query, AdminPart, AdminQuery, ShardScope};
use crate::processor::{self, Announce, ShardMesh};
use crate::schedule::{MasterProgress, ShardSchedule};
use crate::shard_map::{shard_of, ShardId};
use crate::stats::{lag, BrokerStats};
use crate::stop::StopSignal;
use crate::store::{FlushMode, QueryResult, Store, StoreConfig};
use crate::transaction::check::ProducerDirectory;
use crate::transaction::TransactionService;

/// How long shutdown waits for in-flight requests before closing anyway.
const SHUTDOWN_DRAIN_MAX: Duration = Duration::from_secs(5);
/// Poll interval while draining at shutdown.
const SHUTDOWN_DRAIN_POLL: Duration = Duration::from_millis(20);
/// Pause after a failed accept (EMFILE and the like) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
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
    connections: SlotCounter,
    /// The same connections' handles, for the bytes queued for their writers.
    open_connections: channel::OpenConnections,
    next_conn: Cell<u64>,
    /// Broker-wide state; `Some` only on the metadata shard.
    pub metadata: Option<RefCell<Metadata>>,
    /// Consumer offsets of the queues this shard owns.
    pub offsets: RefCell<ConsumerOffsets>,
    /// This shard's storage engine; `None` once closed at shutdown.
    store: RefCell<Option<Rc<Store>>>,
    /// The delay-level and timer delivery task over this shard's store on a master, the copy
    /// of the master's progress on a slave (`crate::schedule`).
    schedule: RefCell<Option<ShardSchedule>>,
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
    fn install_view(&self, view: Arc<BrokerView>) {
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
    fn live_producers(&self, group: &str) -> Vec<ConnHandle> {
        let channels = self.metadata().borrow().clients.producer_channels(group);
        channels.into_iter().filter(ConnHandle::is_open).collect()
    }

    fn live_consumers(&self, group: &str) -> Vec<ConsumerChannel> {
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

/// Answers this shard's part of an admin request on a task of its own (it reads the store).
fn answer_admin_query(
    shard: &Rc<Shard>,
    query: AdminQuery,
    reply: flume::Sender<Result<AdminPart, String>>,
) {
    let Some(store) = shard.store() else {
        let _ = reply.send(Err("store is closed".to_string()));
        return;
    };
    let shard = shard.clone();
    glommio::spawn_local(async move {
        let view = shard.view();
        let scope = ShardScope {
            store: &store,
            offsets: &shard.offsets,
            view: &view,
            shard: shard.id,
            shards: shard.shards,
            broker_name: &shard.config.broker_name,
        };
        let _ = reply.send(run_admin_query(&scope, &query).await);
    })
    .detach();
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

/// One wake-up of the inbox loop.
enum Incoming {
    Control(ShardMsg),
    Requests(Vec<super::mesh::Forwarded>),
}

/// Serves both inboxes until Shutdown. Control messages are polled first; after each wake-up
/// whatever else is already queued is handled before yielding (one wake-up, many messages).
async fn serve_inbox(shard: &Rc<Shard>, inbox: &InboxReceivers) {
    loop {
        let next = futures_lite::future::or(
            async { inbox.control.recv_async().await.map(Incoming::Control) },
            async { inbox.requests.recv_async().await.map(Incoming::Requests) },
        )
        .await;
        let Ok(first) = next else {
            return;
        };
        if !handle_incoming(shard, first) {
            return;
        }
        while let Ok(msg) = inbox.control.try_recv() {
            if !handle_incoming(shard, Incoming::Control(msg)) {
                return;
            }
        }
        while let Ok(batch) = inbox.requests.try_recv() {
            dispatch::serve_forwarded(shard, batch);
        }
    }
}

/// `false` on Shutdown.
fn handle_incoming(shard: &Rc<Shard>, incoming: Incoming) -> bool {
    match incoming {
        Incoming::Control(ShardMsg::Shutdown) => false,
        Incoming::Control(msg) => {
            handle_inbox(shard, msg);
            true
        }
        Incoming::Requests(batch) => {
            dispatch::serve_forwarded(shard, batch);
            true
        }
    }
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

/// This shard's schedule progress and its written log end, for GET_ALL_DELAY_OFFSET.
fn schedule_progress(shard: &Shard) -> ringmq_proto::body::ShardScheduleProgress {
    let progress = shard
        .schedule
        .borrow()
        .as_ref()
        .map(ShardSchedule::progress)
        .unwrap_or_default();
    let log_written = shard.store().map_or(0, |s| s.log_offsets().written);
    MasterProgress {
        progress,
        log_written,
    }
    .to_body(shard.id.0 as u32)
}

/// A slave shard takes its part of the master's schedule progress.
fn install_schedule_progress(shard: &Shard, shards: &[ringmq_proto::body::ShardScheduleProgress]) {
    let Some(part) = shards.iter().find(|p| p.shard as usize == shard.id.0) else {
        return;
    };
    let schedule = shard.schedule.borrow();
    let (Some(ShardSchedule::Mirror(mirror)), Some(store)) = (schedule.as_ref(), shard.store())
    else {
        return;
    };
    mirror.offer(MasterProgress::from_body(part), store.log_offsets().written);
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

fn handle_inbox(shard: &Rc<Shard>, msg: ShardMsg) {
    match msg {
        ShardMsg::CreateTopic(request, reply) => {
            let (answer, announce) = {
                let mut meta = shard.metadata().borrow_mut();
                processor::admin::create_topic_on_send(&mut meta, &request)
            };
            // The sending shard retries its send once answered, so it must see the topic.
            match shard.carry_out(announce) {
                Some(installed) => {
                    glommio::spawn_local(async move {
                        installed.wait().await;
                        let _ = reply.send(answer);
                    })
                    .detach();
                }
                None => {
                    let _ = reply.send(answer);
                }
            }
        }
        ShardMsg::ProducerChannels(group, reply) => {
            let _ = reply.send(shard.live_producers(&group));
        }
        ShardMsg::ConsumerChannels(group, reply) => {
            let _ = reply.send(shard.live_consumers(&group));
        }
        ShardMsg::View(view, installed) => {
            shard.install_view(view);
            // The publisher may have stopped waiting (shutdown); nothing to tell then.
            let _ = installed.send(());
        }
        ShardMsg::ScheduleProgressQuery(reply) => {
            let _ = reply.send(schedule_progress(shard));
        }
        ShardMsg::CountersQuery(reply) => {
            let store = shard.store();
            let now_ms = crate::metadata::topics::now_ms();
            let counters = &shard.counters;
            let _ = reply.send(runtime_info::shard_counters(
                store.as_deref(),
                counters,
                shard.transaction.counters(),
                &shard.ha,
                now_ms,
            ));
        }
        ShardMsg::FromMaster(part) => install_from_master(shard, &part),
        ShardMsg::ConnClosed(conn_id) => {
            let announce = {
                let mut meta = shard.metadata().borrow_mut();
                processor::client::connection_closed(&mut meta, conn_id)
            };
            shard.carry_out(announce);
        }
        ShardMsg::AdminQuery(query, reply) => answer_admin_query(shard, query, reply),
        ShardMsg::IndexQuery(query, reply) => {
            let Some(store) = shard.store() else {
                let _ = reply.send(Err("store is closed".to_string()));
                return;
            };
            glommio::spawn_local(async move {
                let _ = reply.send(processor::lookup::run_index_query(&store, &query).await);
            })
            .detach();
        }
        ShardMsg::Shutdown => unreachable!("handled by the inbox loop"),
    }
}

/// A slave's metadata sync delivered part of its master's metadata (see [`ShardMsg::FromMaster`]).
fn install_from_master(shard: &Rc<Shard>, part: &MasterMetadata) {
    let announce = match part {
        MasterMetadata::Topics(topics) => {
            let mut meta = shard.metadata().borrow_mut();
            processor::admin::replace_topics_from_master(&mut meta, topics.clone())
        }
        MasterMetadata::Groups(groups) => {
            let mut meta = shard.metadata().borrow_mut();
            processor::group::replace_groups_from_master(&mut meta, groups.clone())
        }
        MasterMetadata::Offsets(offsets) => {
            let (me, shards) = (shard.id, shard.shards);
            let owns = |topic: &str, queue_id| shard_of(topic, queue_id, shards) == me;
            let changed = shard
                .offsets
                .borrow_mut()
                .merge_from_master(&offsets.offset_table, owns);
            if changed > 0 {
                tracing::debug!(
                    shard = me.0,
                    changed,
                    "consumer offsets copied from the master"
                );
            }
            return;
        }
        MasterMetadata::Schedule(shards) => {
            install_schedule_progress(shard, shards);
            return;
        }
    };
    shard.carry_out(announce);
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

/// Serves what is still in flight (and forwarded work still arriving) for a bounded time.
async fn drain(shard: &Rc<Shard>, inbox: &InboxReceivers) {
    let started = std::time::Instant::now();
    loop {
        while let Ok(msg) = inbox.control.try_recv() {
            if !matches!(msg, ShardMsg::Shutdown) {
                handle_inbox(shard, msg);
            }
        }
        while let Ok(batch) = inbox.requests.try_recv() {
            dispatch::serve_forwarded(shard, batch);
        }
        if shard.pending.count() == 0 || started.elapsed() >= SHUTDOWN_DRAIN_MAX {
            break;
        }
        glommio::timer::sleep(SHUTDOWN_DRAIN_POLL).await;
    }
    if shard.pending.count() > 0 {
        tracing::warn!(
            shard = shard.id.0,
            pending = shard.pending.count(),
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
    store.checkpoint_interval_ms = config.flush_consume_queue_thorough_interval_ms;
    store.sync_flush_timeout_ms = config.sync_flush_timeout_ms;
    store.tail_cache_bytes = config.tail_cache_bytes as usize;
    store.read_ahead_extents = config.read_ahead_extents as usize;
    store.cq_cache_entries_total = config.consume_queue_cache_entries as usize;
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
