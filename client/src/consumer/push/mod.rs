//! The push consumer: subscriptions, heartbeats, client-side rebalancing, one long-polling pull
//! loop per assigned queue, inline consumption, offset commits, send-back of failed messages.
//!
//! Data flow: the rebalance task (timer, NOTIFY_CONSUMER_IDS_CHANGED doorbell, or start) asks
//! one broker of each subscribed topic for the group's consumer ids, allocates queues with
//! `AllocateMessageQueueAveragely`, stops the loops of queues it lost (committing their offsets)
//! and starts loops for queues it gained at the committed offset (or per `ConsumeFrom`). Each
//! queue loop pulls (SUSPEND bit, 15 s budget), re-filters tags exactly, calls the listener in
//! order, sends failed messages back, and advances the queue's offset; the commit task sends
//! changed offsets every 5 s as oneway UPDATE_CONSUMER_OFFSET.
//!
//! Pipelining: when a pull brings messages, the queue loop sends the pull for the offset after
//! them *before* the listener sees them, so the next batch travels while this one is consumed
//! (one round trip per batch would otherwise cap a queue at one pull batch per round trip).
//! The bound is explicit: per queue at most one pull is in flight and one batch is being
//! consumed, so a queue holds at most two pull batches (`2 × pull_batch_size` messages; Java's
//! `pullThresholdForQueue` plays the same role). Order is unchanged: the prefetched batch is
//! consumed only after the current one, and only if the queue's offset is still where that
//! pull started.
//!
//! Delivery: at least once. A queue's offset moves past a message only after the listener
//! returned `Success` for it or it was handed back to the broker.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::{Rc, Weak};
use std::time::Duration;

use glommio::channels::local_channel::{self, LocalReceiver};
use glommio::Task;
use ringmq_proto::body::JsonBody;
use ringmq_proto::code::{RequestCode, ResponseCode};

mod activity;
mod consume;
mod orderly;
mod server_requests;

pub use orderly::{LOCK_RETRY_DELAY_MS, LOCK_TRUST_MS, REBALANCE_RETRY_DELAY_MS};

use super::heartbeat;
use super::local_offsets;
use super::offset_store::OffsetTable;
use super::pull::{pull_once, pull_sys_flag, PullResult, PullSpec, PullStatus};
use super::subscription::{MessageSelector, Subscription};
use crate::broker_api;
use crate::config::ClientConfig;
use crate::core::ClientCore;
use crate::error::ClientError;
use crate::message::MessageExt;
use crate::producer::now_ms;
use crate::queue::MessageQueue;
use crate::rebalance::allocate_averagely;
use crate::remoting::ServerRequestHandler;
use crate::requests;

/// Prefix of every group's retry topic.
pub const RETRY_GROUP_TOPIC_PREFIX: &str = "%RETRY%";

/// One consumer of the group gets each message (clustering), or every consumer does
/// (broadcasting; offsets stay in this client's memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageModel {
    Clustering,
    Broadcasting,
}

/// Where a queue without a committed offset starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeFrom {
    /// At the queue's end (retry queues start at 0), as Java's CONSUME_FROM_LAST_OFFSET.
    LastOffset,
    /// At offset 0.
    FirstOffset,
    /// At the first message stored at or after this time (ms since the epoch), found with
    /// SEARCH_OFFSET_BY_TIMESTAMP, as Java's CONSUME_FROM_TIMESTAMP.
    Timestamp(i64),
}

/// The listener's verdict on a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeStatus {
    Success,
    /// Redeliver later: clustering consumers hand the batch back to the broker's retry topic.
    ReconsumeLater,
}

/// Consumes messages. Called on the consumer's executor, in queue order per queue; messages of
/// different queues interleave. It must not block the thread.
pub trait MessageListener: 'static {
    fn consume(&self, queue: &MessageQueue, messages: &[MessageExt]) -> ConsumeStatus;
}

impl<F> MessageListener for F
where
    F: Fn(&MessageQueue, &[MessageExt]) -> ConsumeStatus + 'static,
{
    fn consume(&self, queue: &MessageQueue, messages: &[MessageExt]) -> ConsumeStatus {
        self(queue, messages)
    }
}

/// Push consumer settings; defaults are Java's `DefaultMQPushConsumer`.
#[derive(Debug, Clone)]
pub struct PushConsumerConfig {
    pub client: ClientConfig,
    pub group: String,
    pub message_model: MessageModel,
    pub consume_from: ConsumeFrom,
    /// `maxMsgNums` of each pull (Java `pullBatchSize`: 32).
    pub pull_batch_size: i32,
    /// Messages per listener call (Java `consumeMessageBatchMaxSize`: 1).
    pub consume_batch_max_size: usize,
    /// Broker-side long-poll budget (Java: 15 s).
    pub suspend_timeout_ms: u64,
    /// Client-side pull timeout; longer than the suspend budget (Java: 30 s).
    pub pull_timeout_ms: u64,
    /// Wait before pulling again after a failed pull.
    pub pull_error_delay_ms: u64,
    /// Rebalance period besides NOTIFY_CONSUMER_IDS_CHANGED (Java: 20 s).
    pub rebalance_interval_ms: u64,
    /// Offset commit period (Java `persistConsumerOffsetInterval`: 5 s).
    pub commit_interval_ms: u64,
    /// Deliveries before the broker moves a message to the DLQ; -1 leaves it to the group's
    /// `retryMaxTimes` on the broker (default 16, as in Java).
    pub max_reconsume_times: i32,
    /// Delay level of a message handed back after RECONSUME_LATER (Java's
    /// `delayLevelWhenNextConsume`): 0 lets the broker pick `3 + reconsumeTimes`, a negative
    /// value sends it straight to the DLQ.
    pub send_back_delay_level: i32,
    /// Wait before re-consuming locally a message that could not be sent back.
    pub local_retry_delay_ms: u64,
    /// Orderly consumption (Java's `MessageListenerOrderly`): queues locked on the broker,
    /// consumed serially; `ReconsumeLater` then means SUSPEND_CURRENT_QUEUE_A_MOMENT. See
    /// `orderly.rs`.
    pub consume_orderly: bool,
    /// Orderly: pause before a suspended queue's messages are consumed again (Java's
    /// `suspendCurrentQueueTimeMillis`: 1 s).
    pub suspend_current_queue_time_ms: u64,
    /// Orderly: lock renewal period (Java's `rocketmq.client.rebalance.lockInterval`: 20 s).
    pub lock_interval_ms: u64,
    /// Broadcasting only: a file that keeps this consumer's offsets across restarts (Java's
    /// `LocalFileOffsetStore`). `None` keeps them in memory: a restarted broadcasting consumer
    /// then starts per `consume_from`.
    pub broadcast_offset_file: Option<std::path::PathBuf>,
}

impl PushConsumerConfig {
    pub fn new(client: ClientConfig, group: impl Into<String>) -> PushConsumerConfig {
        PushConsumerConfig {
            client,
            group: group.into(),
            message_model: MessageModel::Clustering,
            consume_from: ConsumeFrom::LastOffset,
            pull_batch_size: 32,
            consume_batch_max_size: 1,
            suspend_timeout_ms: 15_000,
            pull_timeout_ms: 30_000,
            pull_error_delay_ms: 1_000,
            rebalance_interval_ms: 20_000,
            commit_interval_ms: 5_000,
            max_reconsume_times: -1,
            send_back_delay_level: 0,
            local_retry_delay_ms: 1_000,
            broadcast_offset_file: None,
            consume_orderly: false,
            suspend_current_queue_time_ms: 1_000,
            lock_interval_ms: 20_000,
        }
    }

    /// The offset file, when this consumer keeps its offsets locally.
    fn local_offset_file(&self) -> Option<&std::path::Path> {
        match self.message_model {
            MessageModel::Broadcasting => self.broadcast_offset_file.as_deref(),
            MessageModel::Clustering => None,
        }
    }

    /// The maximum sent with a send-back: none when not configured, so the broker applies the
    /// group's `retryMaxTimes` (Java's client sends 16 here, which hides the group's setting).
    fn effective_max_reconsume_times(&self) -> Option<i32> {
        (self.max_reconsume_times >= 0).then_some(self.max_reconsume_times)
    }
}

/// A started push consumer (`!Send`; lives on the executor it was started on). Clones share
/// the consumer.
#[derive(Clone)]
pub struct PushConsumer {
    inner: Rc<PushInner>,
}

struct PushInner {
    config: PushConsumerConfig,
    core: Rc<ClientCore>,
    /// By topic; includes `%RETRY%<group>` for clustering consumers.
    subscriptions: BTreeMap<String, Subscription>,
    listener: Rc<dyn MessageListener>,
    offsets: RefCell<OffsetTable>,
    /// Broker id each queue's broker suggested for the next pull (Java's
    /// `pullFromWhichNodeTable`): 1 when the master says this consumer lags (slaveReadEnable).
    pull_from: RefCell<BTreeMap<MessageQueue, i64>>,
    workers: RefCell<BTreeMap<MessageQueue, Task<()>>>,
    /// Brokers that got this client's heartbeat since it started.
    heartbeat_addrs: RefCell<BTreeSet<String>>,
    running: Cell<bool>,
    background: RefCell<Vec<Task<()>>>,
    /// Orderly: this client's view of its queue locks.
    locks: RefCell<BTreeMap<MessageQueue, orderly::QueueLock>>,
    /// Orderly: a delayed rebalance round is already scheduled.
    rebalance_pending: Cell<bool>,
    /// Pull and consume counters for GET_CONSUMER_RUNNING_INFO.
    activity: RefCell<activity::Activity>,
}

impl PushConsumer {
    /// Starts consuming: `subscriptions` are `(topic, tag expression)` pairs (`"*"` for all).
    /// Fetches routes, heartbeats, rebalances once, then keeps all of it going in the
    /// background. A topic that has no route yet is picked up by a later rebalance.
    pub async fn start(
        config: PushConsumerConfig,
        subscriptions: &[(&str, &str)],
        listener: impl MessageListener,
    ) -> Result<PushConsumer, ClientError> {
        let selectors: Vec<(&str, MessageSelector)> = subscriptions
            .iter()
            .map(|(topic, expression)| (*topic, MessageSelector::by_tag(*expression)))
            .collect();
        PushConsumer::start_with_selectors(config, &selectors, listener).await
    }

    /// [`PushConsumer::start`] with any selector per topic (TAG or SQL92). A SQL92
    /// subscription is first checked with CHECK_CLIENT_CONFIG on a broker of its topic, as
    /// Java's `checkClientInBroker`: a broker without `enablePropertyFilter`, or an invalid
    /// expression, fails the start with the broker's code and remark.
    pub async fn start_with_selectors(
        config: PushConsumerConfig,
        subscriptions: &[(&str, MessageSelector)],
        listener: impl MessageListener,
    ) -> Result<PushConsumer, ClientError> {
        if config.group.is_empty() {
            return Err(ClientError::Config("consumer group is empty".to_string()));
        }
        if subscriptions.is_empty() {
            return Err(ClientError::Config("no subscription".to_string()));
        }
        let version = now_ms();
        let mut subs = BTreeMap::new();
        for (topic, selector) in subscriptions {
            crate::validate::validate_topic(topic)?;
            subs.insert(
                topic.to_string(),
                Subscription::new(topic, selector, version)?,
            );
        }
        if config.message_model == MessageModel::Clustering {
            let retry_topic = retry_topic(&config.group);
            subs.insert(
                retry_topic.clone(),
                Subscription::parse(&retry_topic, "*", version)?,
            );
        }
        let (doorbell_tx, doorbell_rx) = local_channel::new_bounded(1);
        // The handler is built before the consumer it serves (the connections need it), so it
        // reaches the consumer through this cell, set once the consumer exists.
        let this: Rc<OnceCell<Weak<PushInner>>> = Rc::new(OnceCell::new());
        let this_in_handler = this.clone();
        let handler: ServerRequestHandler = Rc::new(move |addr, request| {
            if request.code == RequestCode::NotifyConsumerIdsChanged.code() {
                tracing::debug!(%addr, "consumer ids changed; rebalancing");
                // Full means a rebalance is already pending.
                let _ = doorbell_tx.try_send(());
                return None;
            }
            let inner = this_in_handler.get().and_then(Weak::upgrade)?;
            server_requests::serve(&inner, request)
        });
        let core = ClientCore::new(config.client.clone(), Some(handler))?;
        let mut offsets = OffsetTable::default();
        if let Some(path) = config.local_offset_file() {
            for (queue, offset) in local_offsets::load(path)? {
                offsets.reset(&queue, offset);
            }
        }
        let inner = Rc::new(PushInner {
            config,
            core,
            subscriptions: subs,
            listener: Rc::new(listener),
            offsets: RefCell::new(offsets),
            pull_from: RefCell::new(BTreeMap::new()),
            workers: RefCell::new(BTreeMap::new()),
            heartbeat_addrs: RefCell::new(BTreeSet::new()),
            running: Cell::new(true),
            background: RefCell::new(Vec::new()),
            locks: RefCell::new(BTreeMap::new()),
            rebalance_pending: Cell::new(false),
            activity: RefCell::new(activity::Activity::new(now_ms())),
        });
        let _ = this.set(Rc::downgrade(&inner));
        if let Err(e) = inner.check_sql_subscriptions().await {
            inner.core.pool.flush_and_close_all(0).await;
            return Err(e);
        }
        inner.rebalance().await;
        start_background_tasks(&inner, doorbell_rx);
        Ok(PushConsumer { inner })
    }

    pub fn client_id(&self) -> &str {
        &self.inner.core.client_id
    }

    pub fn group(&self) -> &str {
        &self.inner.config.group
    }

    /// The queues this consumer pulls now.
    pub fn assigned_queues(&self) -> Vec<MessageQueue> {
        self.inner.workers.borrow().keys().cloned().collect()
    }

    /// The next offset this consumer will consume from `queue` (its uncommitted progress).
    pub fn consumed_offset(&self, queue: &MessageQueue) -> Option<i64> {
        self.inner.offsets.borrow().get(queue)
    }

    /// Runs a rebalance round now (besides the timer and broker notifications).
    pub async fn rebalance_now(&self) {
        self.inner.rebalance().await;
    }

    /// Stops pulling, commits every offset (waiting for the broker's answer), unregisters from
    /// every broker and closes connections.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        if !inner.running.replace(false) {
            return;
        }
        inner.background.borrow_mut().clear();
        inner.workers.borrow_mut().clear();
        inner.store_local_offsets();
        if inner.config.message_model == MessageModel::Clustering {
            let offsets = inner.offsets.borrow().all();
            let queues: Vec<MessageQueue> = offsets.iter().map(|(q, _)| q.clone()).collect();
            for (queue, offset) in offsets {
                if let Err(e) = inner.commit_offset_sync(&queue, offset).await {
                    tracing::warn!(%queue, offset, error = %e, "final offset commit failed");
                }
            }
            if inner.config.consume_orderly {
                // After the commits: the next owner starts where this one stopped.
                inner.unlock_queues(queues).await;
            }
        }
        for addr in inner.core.known_broker_addrs() {
            let request =
                requests::unregister_client(&inner.core.client_id, None, Some(&inner.config.group));
            if let Err(e) = inner.core.invoke_broker(&addr, request).await {
                tracing::debug!(%addr, error = %e, "unregister failed");
            }
        }
        inner
            .core
            .pool
            .flush_and_close_all(inner.core.config.request_timeout_ms)
            .await;
    }
}

/// `%RETRY%<group>`.
pub fn retry_topic(group: &str) -> String {
    format!("{RETRY_GROUP_TOPIC_PREFIX}{group}")
}

fn start_background_tasks(inner: &Rc<PushInner>, doorbell: LocalReceiver<()>) {
    let weak = Rc::downgrade(inner);
    let interval = Duration::from_millis(inner.config.rebalance_interval_ms);
    let rebalance = glommio::spawn_local(async move {
        loop {
            futures_lite::future::or(
                async {
                    doorbell.recv().await;
                },
                glommio::timer::sleep(interval),
            )
            .await;
            let Some(inner) = weak.upgrade() else { return };
            inner.rebalance().await;
        }
    });
    let commit = periodic(inner, inner.config.commit_interval_ms, |inner| async move {
        inner.commit_dirty_offsets().await
    });
    let heartbeat = periodic(
        inner,
        inner.config.client.heartbeat_interval_ms,
        |inner| async move { inner.send_heartbeats(inner.core.known_broker_addrs()).await },
    );
    let routes = periodic(
        inner,
        inner.config.client.route_refresh_interval_ms,
        |inner| async move { inner.core.refresh_routes(None).await },
    );
    inner
        .background
        .borrow_mut()
        .extend([rebalance, commit, heartbeat, routes]);
    if inner.config.consume_orderly && inner.is_clustering() {
        let renew = periodic(inner, inner.config.lock_interval_ms, |inner| async move {
            inner.renew_locks().await
        });
        inner.background.borrow_mut().push(renew);
    }
}

/// Runs `work` every `interval_ms` while the consumer is alive.
fn periodic<F, Fut>(inner: &Rc<PushInner>, interval_ms: u64, work: F) -> Task<()>
where
    F: Fn(Rc<PushInner>) -> Fut + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let weak = Rc::downgrade(inner);
    glommio::spawn_local(async move {
        loop {
            glommio::timer::sleep(Duration::from_millis(interval_ms)).await;
            let Some(inner) = weak.upgrade() else { return };
            work(inner).await;
        }
    })
}

impl PushInner {
    fn is_clustering(&self) -> bool {
        self.config.message_model == MessageModel::Clustering
    }

    fn heartbeat_body(&self) -> bytes::Bytes {
        let data = heartbeat::consumer_heartbeat(
            &self.core.client_id,
            &self.config,
            self.subscriptions.values(),
        );
        bytes::Bytes::from(data.to_json())
    }

    async fn send_heartbeats(&self, addrs: BTreeSet<String>) {
        let body = self.heartbeat_body();
        for addr in addrs {
            let request = requests::heartbeat(body.clone());
            let request_code = request.code;
            let result = match self.core.invoke_broker(&addr, request).await {
                Ok(response) => requests::expect_success(&addr, request_code, &response),
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {
                    self.heartbeat_addrs.borrow_mut().insert(addr);
                }
                Err(e) => tracing::warn!(%addr, error = %e, "heartbeat failed"),
            }
        }
    }

    /// One rebalance round over every subscribed topic.
    async fn rebalance(self: &Rc<Self>) {
        if !self.running.get() {
            return;
        }
        let mut routes = Vec::new();
        for topic in self.subscriptions.keys() {
            match self.core.route(topic).await {
                Ok(route) => routes.push(route),
                Err(e) => tracing::debug!(%topic, error = %e, "no route yet; skipping topic"),
            }
        }
        // Brokers must know this client (heartbeat) before they list it as a group member.
        let unknown: BTreeSet<String> = self
            .core
            .known_broker_addrs()
            .difference(&self.heartbeat_addrs.borrow())
            .cloned()
            .collect();
        if !unknown.is_empty() {
            self.send_heartbeats(unknown).await;
        }
        for route in routes {
            let Some(wanted) = self.allocate(&route).await else {
                continue;
            };
            self.apply_allocation(&route.topic, wanted).await;
        }
    }

    /// The queues of `route` this client should consume, or `None` to leave the topic's current
    /// assignment alone this round (the consumer list was unavailable).
    async fn allocate(&self, route: &crate::route::TopicRoute) -> Option<BTreeSet<MessageQueue>> {
        if !self.is_clustering() {
            return Some(route.read_queues.iter().cloned().collect());
        }
        let addr = route
            .read_queues
            .iter()
            .find_map(|q| route.read_addr(&q.broker_name))?
            .to_string();
        match broker_api::consumer_ids(&self.core, &addr, &self.config.group).await {
            Ok(ids) => Some(
                allocate_averagely(&self.core.client_id, &route.read_queues, &ids)
                    .into_iter()
                    .collect(),
            ),
            Err(e) => {
                tracing::debug!(topic = %route.topic, error = %e, "consumer list unavailable");
                None
            }
        }
    }

    async fn apply_allocation(self: &Rc<Self>, topic: &str, wanted: BTreeSet<MessageQueue>) {
        let current: Vec<MessageQueue> = self
            .workers
            .borrow()
            .keys()
            .filter(|q| q.topic == topic)
            .cloned()
            .collect();
        for queue in current.iter().filter(|q| !wanted.contains(q)) {
            self.release_queue(queue).await;
        }
        let orderly_locks = self.config.consume_orderly && self.is_clustering();
        for queue in wanted {
            if self.workers.borrow().contains_key(&queue) || !self.running.get() {
                continue;
            }
            if orderly_locks && !self.lock_queue(&queue).await {
                // Its previous owner has not released it yet: try again shortly.
                tracing::debug!(%queue, "queue still locked by another consumer");
                self.rebalance_later();
                continue;
            }
            let start = match self.start_offset(&queue).await {
                Ok(offset) => offset,
                Err(e) => {
                    // Java skips the queue until the next rebalance.
                    tracing::warn!(%queue, error = %e, "cannot find start offset; skipping");
                    continue;
                }
            };
            if !self.running.get() || self.workers.borrow().contains_key(&queue) {
                continue;
            }
            self.offsets.borrow_mut().reset(&queue, start);
            let task = self.spawn_queue_loop(queue.clone());
            tracing::debug!(%queue, start, "queue assigned");
            self.workers.borrow_mut().insert(queue, task);
        }
    }

    /// Starts the loop that consumes `queue` from its offset in the table.
    fn spawn_queue_loop(self: &Rc<Self>, queue: MessageQueue) -> Task<()> {
        let weak = Rc::downgrade(self);
        if self.config.consume_orderly {
            glommio::spawn_local(orderly::orderly_loop(weak, queue))
        } else {
            glommio::spawn_local(pull_loop(weak, queue))
        }
    }

    /// The listener on `batch`, timed and counted for GET_CONSUMER_RUNNING_INFO.
    fn call_listener(&self, queue: &MessageQueue, batch: &[MessageExt]) -> ConsumeStatus {
        let started = now_ms();
        let status = self.listener.consume(queue, batch);
        let now = now_ms();
        let ok = status == ConsumeStatus::Success;
        let rt_ms = u64::try_from(now - started).unwrap_or(0);
        let mut activity = self.activity.borrow_mut();
        activity.on_consumed(queue, batch.len(), ok, rt_ms, now);
        status
    }

    /// Stops consuming `queue` and hands it on: its loop is dropped between messages, its
    /// offset committed (orderly: waiting for the answer, then the lock is released).
    async fn release_queue(&self, queue: &MessageQueue) {
        self.workers.borrow_mut().remove(queue);
        let offset = self.offsets.borrow_mut().remove(queue);
        if !self.is_clustering() {
            return;
        }
        if !self.config.consume_orderly {
            if let Some(offset) = offset {
                self.commit_offset_oneway(queue, offset).await;
            }
            tracing::debug!(%queue, "queue released");
            return;
        }
        if let Some(offset) = offset {
            if let Err(e) = self.commit_offset_sync(queue, offset).await {
                tracing::warn!(%queue, offset, error = %e, "offset commit before unlock failed");
            }
        }
        self.unlock_queues(vec![queue.clone()]).await;
        tracing::debug!(%queue, "orderly queue released and unlocked");
    }

    /// CHECK_CLIENT_CONFIG of each SQL92 subscription on one broker of its topic.
    async fn check_sql_subscriptions(&self) -> Result<(), ClientError> {
        for subscription in self.subscriptions.values().filter(|s| s.is_sql92()) {
            let route = self.core.route(&subscription.topic).await?;
            let Some(addr) = route
                .read_queues
                .iter()
                .find_map(|q| route.master_addr(&q.broker_name))
                .map(str::to_string)
            else {
                continue;
            };
            broker_api::check_client_config(
                &self.core,
                &addr,
                &self.config.group,
                subscription.to_subscription_data(),
            )
            .await?;
        }
        Ok(())
    }

    /// Where a newly assigned queue starts: the committed offset, else per `consume_from`.
    async fn start_offset(&self, queue: &MessageQueue) -> Result<i64, ClientError> {
        let addr = self.broker_addr(queue)?;
        if self.is_clustering() {
            let committed =
                broker_api::query_consumer_offset(&self.core, &addr, &self.config.group, queue)
                    .await?;
            if let Some(offset) = committed.filter(|o| *o >= 0) {
                return Ok(offset);
            }
        } else if let Some(offset) = self.offsets.borrow().get(queue) {
            return Ok(offset);
        }
        if queue.topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) {
            return Ok(0);
        }
        match self.config.consume_from {
            ConsumeFrom::FirstOffset => Ok(0),
            ConsumeFrom::LastOffset => broker_api::max_offset(&self.core, &addr, queue).await,
            ConsumeFrom::Timestamp(ms) => {
                broker_api::offset_at_time(&self.core, &addr, queue, ms).await
            }
        }
    }

    fn broker_addr(&self, queue: &MessageQueue) -> Result<String, ClientError> {
        let route = self
            .core
            .cached_route(&queue.topic)
            .ok_or_else(|| ClientError::NoRoute {
                topic: queue.topic.clone(),
            })?;
        let broker_id = self
            .pull_from
            .borrow()
            .get(queue)
            .copied()
            .unwrap_or(ringmq_proto::body::MASTER_ID);
        route
            .subscribe_addr(&queue.broker_name, broker_id)
            .map(str::to_string)
            .ok_or_else(|| ClientError::NoQueue {
                topic: queue.topic.clone(),
                what: "reachable",
            })
    }

    /// One pull of `queue` at `offset`.
    async fn pull(&self, queue: &MessageQueue, offset: i64) -> Result<PullResult, ClientError> {
        let subscription = &self.subscriptions[&queue.topic];
        let addr = self.broker_addr(queue)?;
        let commit_offset = self.offsets.borrow().get(queue).unwrap_or(0);
        let mut sys_flag = pull_sys_flag::SUSPEND;
        if self.is_clustering() && commit_offset > 0 {
            sys_flag |= pull_sys_flag::COMMIT_OFFSET;
        }
        let spec = PullSpec {
            group: &self.config.group,
            queue,
            offset,
            max_msg_nums: self.config.pull_batch_size,
            sys_flag,
            commit_offset,
            suspend_timeout_ms: self.config.suspend_timeout_ms,
            timeout_ms: self.config.pull_timeout_ms,
            subscription,
        };
        let started = now_ms();
        let result = pull_once(&self.core, &addr, &spec).await;
        if let Ok(pulled) = &result {
            self.pull_from
                .borrow_mut()
                .insert(queue.clone(), pulled.suggest_which_broker_id);
            let now = now_ms();
            let rt_ms = u64::try_from(now - started).unwrap_or(0);
            self.activity.borrow_mut().on_pull(queue, rt_ms, now);
        }
        result
    }

    /// Consumes what a pull of `queue` brought and records progress. When it
    /// brought messages, the pull of the next offset is sent before the listener runs; its
    /// answer is returned (with the offset it pulled) for the queue loop to use next.
    async fn consume_pulled(&self, queue: &MessageQueue, result: PullResult) -> Option<Prefetched> {
        match result.status {
            PullStatus::Found if result.messages.is_empty() => {
                // Everything was filtered out: nothing to consume, nothing to overlap.
                self.offsets
                    .borrow_mut()
                    .advance(queue, result.next_begin_offset);
                None
            }
            PullStatus::Found => {
                let next_offset = result.next_begin_offset;
                let mut messages = result.messages;
                // Start the next pull: the first poll queues its request in the outbox, and the
                // yield lets the connection's writer put it on the socket before the listener
                // runs (the listener does not yield, so without it the request would wait).
                let mut next = std::pin::pin!(self.pull(queue, next_offset));
                let answered = futures_lite::future::poll_once(next.as_mut()).await;
                futures_lite::future::yield_now().await;
                if !self.consume_in_order(queue, &mut messages).await {
                    // Shut down mid-batch: keep the offset so the rest is redelivered (the pull
                    // in flight is dropped with `next`).
                    return None;
                }
                // Progress is recorded as soon as the batch is consumed, not when the next pull
                // answers (a long poll can take seconds): commits never lag consumption.
                self.offsets.borrow_mut().advance(queue, next_offset);
                let result = match answered {
                    Some(result) => result,
                    None => next.await,
                };
                Some(Prefetched {
                    offset: next_offset,
                    result,
                })
            }
            PullStatus::NoNewMsg | PullStatus::NoMatchedMsg => {
                self.offsets
                    .borrow_mut()
                    .advance(queue, result.next_begin_offset);
                None
            }
            PullStatus::OffsetIllegal => {
                self.offset_moved(queue, &result).await;
                None
            }
        }
    }

    /// PULL_OFFSET_MOVED: continue (and commit) where the broker says.
    async fn offset_moved(&self, queue: &MessageQueue, result: &PullResult) {
        tracing::warn!(%queue, next = result.next_begin_offset, "offset moved by the broker");
        self.offsets
            .borrow_mut()
            .reset(queue, result.next_begin_offset);
        if self.is_clustering() {
            self.commit_offset_oneway(queue, result.next_begin_offset)
                .await;
        }
    }

    /// A broker that lost this client's registration (it restarted, or the connection broke and
    /// it dropped the channel's registrations) answers pulls with SUBSCRIPTION_NOT_EXIST /
    /// SUBSCRIPTION_NOT_LATEST until the next heartbeat; send that heartbeat now instead of up to
    /// 30 s later.
    async fn after_pull_error(&self, queue: &MessageQueue, error: &ClientError) {
        let lost_registration = match error {
            ClientError::Server { code, .. } => [
                ResponseCode::SubscriptionNotExist.code(),
                ResponseCode::SubscriptionNotLatest.code(),
                ResponseCode::SubscriptionGroupNotExist.code(),
            ]
            .contains(code),
            ClientError::ConnectionClosed { .. } | ClientError::Connect { .. } => true,
            _ => false,
        };
        if !lost_registration {
            return;
        }
        let Ok(addr) = self.broker_addr(queue) else {
            return;
        };
        self.heartbeat_addrs.borrow_mut().remove(&addr);
        self.send_heartbeats(BTreeSet::from([addr])).await;
    }

    async fn commit_dirty_offsets(&self) {
        if !self.is_clustering() {
            let changed = !self.offsets.borrow_mut().take_dirty().is_empty();
            if changed {
                self.store_local_offsets();
            }
            return;
        }
        let dirty = self.offsets.borrow_mut().take_dirty();
        for (queue, offset) in dirty {
            self.commit_offset_oneway(&queue, offset).await;
        }
    }

    /// Writes every offset to the local offset file, if this consumer has one.
    fn store_local_offsets(&self) {
        let Some(path) = self.config.local_offset_file() else {
            return;
        };
        let all = self.offsets.borrow().all();
        if let Err(e) = local_offsets::store(path, &all) {
            tracing::warn!(error = %e, "cannot write local offsets");
        }
    }

    async fn commit_offset_oneway(&self, queue: &MessageQueue, offset: i64) {
        let result = match self.broker_addr_for_offsets(queue) {
            Ok(addr) => {
                broker_api::update_consumer_offset_oneway(
                    &self.core,
                    &addr,
                    &self.config.group,
                    queue,
                    offset,
                )
                .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::debug!(%queue, offset, error = %e, "offset commit failed; will retry");
            self.offsets.borrow_mut().mark_dirty(queue);
        }
    }

    async fn commit_offset_sync(
        &self,
        queue: &MessageQueue,
        offset: i64,
    ) -> Result<(), ClientError> {
        let addr = self.broker_addr_for_offsets(queue)?;
        broker_api::update_consumer_offset(&self.core, &addr, &self.config.group, queue, offset)
            .await
    }

    /// The master of the queue's broker (queue locks and the DLQ go there, as in Java).
    fn master_addr(&self, queue: &MessageQueue) -> Result<String, ClientError> {
        self.core
            .cached_route(&queue.topic)
            .and_then(|r| r.master_addr(&queue.broker_name).map(str::to_string))
            .ok_or_else(|| ClientError::NoQueue {
                topic: queue.topic.clone(),
                what: "master-hosted",
            })
    }

    /// Where offsets are committed: the master, else a slave while the master is gone (Java's
    /// `findBrokerAddressInSubscribe(brokerName, MASTER_ID, false)`); the next pull from the
    /// returning master carries the offset again (COMMIT_OFFSET), so it is not lost.
    fn broker_addr_for_offsets(&self, queue: &MessageQueue) -> Result<String, ClientError> {
        self.core
            .cached_route(&queue.topic)
            .and_then(|r| r.read_addr(&queue.broker_name).map(str::to_string))
            .ok_or_else(|| ClientError::NoQueue {
                topic: queue.topic.clone(),
                what: "reachable",
            })
    }
}

/// A pull answered while the previous batch was consumed.
struct Prefetched {
    /// The offset it pulled from; used only if the queue is still there.
    offset: i64,
    result: Result<PullResult, ClientError>,
}

/// The loop of one assigned queue; ends when the queue is released (task dropped, which also
/// drops a pull in flight) or the consumer is gone.
async fn pull_loop(weak: Weak<PushInner>, queue: MessageQueue) {
    let mut prefetched: Option<Prefetched> = None;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        if !inner.running.get() {
            return;
        }
        let Some(offset) = inner.offsets.borrow().get(&queue) else {
            return;
        };
        let pulled = match prefetched.take() {
            Some(p) if p.offset == offset => p.result,
            // Nothing prefetched, or the offset moved meanwhile (a reset): pull where it is now.
            _ => inner.pull(&queue, offset).await,
        };
        match pulled {
            Ok(result) => prefetched = inner.consume_pulled(&queue, result).await,
            Err(e) => {
                tracing::debug!(%queue, error = %e, "pull failed; pausing");
                inner.after_pull_error(&queue, &e).await;
                let delay = Duration::from_millis(inner.config.pull_error_delay_ms);
                drop(inner);
                glommio::timer::sleep(delay).await;
            }
        }
    }
}
