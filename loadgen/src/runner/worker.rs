//! One executor's part of a run: its push consumers, the producers of `producer`, and everything
//! they measure (kept executor-local, returned at the end).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ringmq_client::{
    ClientConfig, ConsumeFrom, ConsumeStatus, LocalTransactionState, MessageExt, MessageQueue,
    MessageSelector, PushConsumer, PushConsumerConfig,
};
use ringmq_proto::message::property;

use super::plan::ExecutorShare;
use super::producer::{produce, shutdown_producers, start_producers};
use super::{churn, Shared};
use crate::body::{decode_header, BodyCodec, BodyHeader};
use crate::cli::{SendMode, TxOutcome, WorkloadArgs};
use crate::clock::{now_ns, unix_now_us};
use crate::schedule::RunWindow;
use crate::stats::{ExecutorStats, LiveCounters};
use crate::verify::{AckLedger, ConsumeLedger};

/// How often waiting loops look at the shared state.
pub(super) const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// Rebalance waiting consumers every 100 polls (about half a second).
const REBALANCE_EVERY_POLLS: u64 = 100;

/// Everything one executor needs; built on the coordinator thread and moved in.
pub struct WorkerContext {
    pub share: ExecutorShare,
    /// `--churn-consumers` ids this executor runs (they join and leave mid-run).
    pub churn: Vec<u32>,
    pub workload: Arc<WorkloadArgs>,
    pub namesrv: String,
    pub run_id: u32,
    pub topics: Arc<Vec<String>>,
    pub group: String,
    pub shared: Arc<Shared>,
}

/// What one executor measured.
pub struct WorkerOutcome {
    pub stats: ExecutorStats,
    pub acks: AckLedger,
    pub consumed: ConsumeLedger,
    pub notes: Vec<String>,
}

/// Executor-local state shared by this executor's tasks (`Rc`, never crosses threads).
pub(super) struct Local {
    pub(super) run_id: u32,
    pub(super) verify: bool,
    pub(super) workload: Arc<WorkloadArgs>,
    pub(super) codec: BodyCodec,
    pub(super) shared: Arc<Shared>,
    pub(super) counters: Arc<LiveCounters>,
    pub(super) window: Cell<Option<RunWindow>>,
    pub(super) stats: RefCell<ExecutorStats>,
    pub(super) acks: RefCell<AckLedger>,
    pub(super) consumed: RefCell<ConsumeLedger>,
}

impl Local {
    /// The run window once the coordinator has fixed the start.
    fn window(&self) -> Option<RunWindow> {
        if self.window.get().is_none() {
            self.window.set(self.shared.window());
        }
        self.window.get()
    }

    fn on_consumed(&self, consumer: u32, message: &MessageExt, now: u64) {
        let body = &message.body[..];
        let header = decode_header(body);
        if let Some(h) = header.as_ref().ok().filter(|h| h.run_id == self.run_id) {
            self.counters.add_consumed(1);
            if self.window().is_some_and(|w| w.is_measured(h.born_ns)) {
                let e2e_us = now.saturating_sub(h.born_ns) / 1_000;
                let mut stats = self.stats.borrow_mut();
                stats.record_consumed(e2e_us, body.len() as u64);
                if let Some(due_ms) = message
                    .property(property::TIMER_OUT_MS)
                    .and_then(|v| v.parse::<i64>().ok())
                {
                    stats.record_delivery(due_ms, message.store_timestamp_ms, unix_now_us());
                }
            }
            if let Some(order) = &self.shared.order {
                order.observe(consumer, h.producer_id, h.sequence);
            }
        }
        if self.verify {
            let mut consumed = self.consumed.borrow_mut();
            consumed.record_body(&self.codec, self.run_id, body);
            if let Ok(h) = header {
                let tx = self.workload.mode == SendMode::Transaction;
                if tx && h.run_id == self.run_id && self.tx_outcome(&h) == TxOutcome::Rollback {
                    consumed.rolled_back_delivered += 1;
                }
            }
        }
    }

    pub(super) fn tx_outcome(&self, h: &BodyHeader) -> TxOutcome {
        self.workload.tx_outcome(h.producer_id, h.sequence)
    }

    /// The check-back's answer: the decision the local transaction would have made, with
    /// UNKNOWN ones committed now (the broker asked, so the "slow" transaction is done).
    pub(super) fn check_back(&self, message: &MessageExt) -> LocalTransactionState {
        match decode_header(&message.body).map(|h| self.tx_outcome(&h)) {
            Ok(TxOutcome::Rollback) => LocalTransactionState::RollbackMessage,
            Ok(_) => LocalTransactionState::CommitMessage,
            Err(_) => LocalTransactionState::Unknown,
        }
    }
}

pub(super) fn client_config(
    ctx: &WorkerContext,
    instance_name: String,
) -> anyhow::Result<ClientConfig> {
    let mut config = ClientConfig::new(&ctx.namesrv)?;
    config.instance_name = instance_name;
    config.credentials = ctx.workload.results.credentials();
    Ok(config)
}

/// Every topic of the run, with the subscription `--sql` or `--tag-filter` asks for (else
/// all tags).
fn subscriptions(ctx: &WorkerContext) -> Vec<(&str, MessageSelector)> {
    let selector = crate::filter_compare::filtered_selector(&ctx.workload)
        .unwrap_or_else(|| MessageSelector::by_tag("*"));
    ctx.topics
        .iter()
        .map(|t| (t.as_str(), selector.clone()))
        .collect()
}

/// Starts consumer instance `k` of the group; `consumed` (if any) counts what it consumes.
async fn start_consumer(
    ctx: &WorkerContext,
    local: &Rc<Local>,
    k: u32,
    consumed: Option<Rc<Cell<u64>>>,
) -> anyhow::Result<PushConsumer> {
    let client = client_config(ctx, format!("loadgen-{:08x}-c{k}", ctx.run_id))?;
    let mut config = PushConsumerConfig::new(client, ctx.group.clone());
    // A fresh group starts at the end of each queue: only this run's messages count.
    config.consume_from = ConsumeFrom::LastOffset;
    config.pull_batch_size = ctx.workload.pull_batch_size() as i32;
    config.consume_batch_max_size = ctx.workload.pull_batch_size() as usize;
    config.consume_orderly = ctx.workload.orderly;
    let listener_local = local.clone();
    let listener = move |_queue: &MessageQueue, messages: &[MessageExt]| {
        let now = now_ns();
        for m in messages {
            listener_local.on_consumed(k, m, now);
        }
        if let Some(count) = &consumed {
            count.set(count.get() + messages.len() as u64);
        }
        ConsumeStatus::Success
    };
    let subscriptions = subscriptions(ctx);
    Ok(PushConsumer::start_with_selectors(config, &subscriptions, listener).await?)
}

async fn start_consumers(
    ctx: &WorkerContext,
    local: &Rc<Local>,
) -> anyhow::Result<Vec<PushConsumer>> {
    let mut consumers = Vec::new();
    for &k in &ctx.share.consumers {
        consumers.push(start_consumer(ctx, local, k, None).await?);
    }
    Ok(consumers)
}

/// Waits (polling) until `done`, the run is stopped or drained; false unless `done`.
async fn wait_for(
    shared: &super::Shared,
    timeout: Option<Duration>,
    done: impl Fn() -> bool,
) -> bool {
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    loop {
        if done() {
            return true;
        }
        let over = shared.stop.load(Ordering::Relaxed) || shared.drain_over.load(Ordering::Relaxed);
        if over || deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return false;
        }
        glommio::timer::sleep(POLL_INTERVAL).await;
    }
}

/// One `--churn-consumers` consumer: joins a third of the way in, tells the producers once it
/// holds a queue, leaves from two thirds on once it has consumed something (or at the end).
async fn churn_consumer(ctx: Rc<WorkerContext>, local: Rc<Local>, k: u32) -> Option<String> {
    let shared = &ctx.shared;
    if !wait_for(shared, None, || shared.progress() >= churn::JOIN_AT).await {
        shared.churn.open_gate();
        return None;
    }
    let consumed = Rc::new(Cell::new(0));
    let consumer = match start_consumer(&ctx, &local, k, Some(consumed.clone())).await {
        Ok(c) => c,
        Err(e) => {
            shared.churn.open_gate();
            return Some(format!("joining consumer {k} did not start: {e:#}"));
        }
    };
    let holds = || assigned_queue_count(std::slice::from_ref(&consumer)) > 0;
    let mut note = None;
    if wait_for(shared, Some(ctx.workload.setup_timeout()), holds).await {
        shared.churn.joined_and_holding();
    } else {
        shared.churn.open_gate();
        note = Some(format!(
            "joining consumer {k} held no queue within the setup timeout"
        ));
    }
    let leave = || shared.progress() >= churn::LEAVE_AT && consumed.get() > 0;
    wait_for(shared, None, leave).await;
    consumer.shutdown().await;
    note.or_else(|| (consumed.get() == 0).then(|| format!("joining consumer {k} consumed nothing")))
}

/// Non-retry queues this executor's consumers pull now.
fn assigned_queue_count(consumers: &[PushConsumer]) -> usize {
    consumers
        .iter()
        .map(|c| {
            c.assigned_queues()
                .iter()
                .filter(|q| !q.topic.starts_with('%'))
                .count()
        })
        .sum()
}

/// Reports queue assignment until the coordinator fixes the start time; `None` if stopped.
async fn await_start(ctx: &WorkerContext, consumers: &[PushConsumer]) -> Option<RunWindow> {
    let (shared, executor) = (&ctx.shared, ctx.share.executor);
    let mut polls: u64 = 0;
    loop {
        shared.assigned_queues[executor].store(assigned_queue_count(consumers), Ordering::Relaxed);
        if let Some(w) = shared.window() {
            return Some(w);
        }
        if shared.stop.load(Ordering::Relaxed) {
            return None;
        }
        polls += 1;
        if polls % REBALANCE_EVERY_POLLS == 0 {
            // Consumers that started before their peers each took every queue; rebalance
            // until the group's assignment is a partition (the coordinator waits for that).
            for c in consumers {
                c.rebalance_now().await;
            }
        }
        glommio::timer::sleep(POLL_INTERVAL).await;
    }
}

fn new_local(ctx: &WorkerContext) -> Rc<Local> {
    let shared = ctx.shared.clone();
    Rc::new(Local {
        run_id: ctx.run_id,
        verify: ctx.workload.verify,
        workload: ctx.workload.clone(),
        codec: BodyCodec::new(ctx.workload.message_size_bytes),
        counters: shared.counters[ctx.share.executor].clone(),
        shared,
        window: Cell::new(None),
        stats: RefCell::new(ExecutorStats::default()),
        acks: RefCell::new(AckLedger::default()),
        consumed: RefCell::new(ConsumeLedger::default()),
    })
}

/// Runs one executor's share of the run and returns what it measured.
pub async fn run_worker(ctx: WorkerContext) -> anyhow::Result<WorkerOutcome> {
    let ctx = Rc::new(ctx);
    let shared = ctx.shared.clone();
    let local = new_local(&ctx);
    let consumers = start_consumers(&ctx, &local).await?;
    let producers = start_producers(&ctx, &local)?;
    shared.executors_ready.fetch_add(1, Ordering::SeqCst);
    let window = await_start(&ctx, &consumers).await;
    let churn: Vec<_> = (ctx.churn.iter())
        .map(|&k| glommio::spawn_local(churn_consumer(ctx.clone(), local.clone(), k)))
        .collect();
    if let Some(window) = window {
        produce(&ctx, &local, &producers, window).await;
    }
    // Shutting a producer down waits for its async sends, so every ack is recorded first.
    // Transactional producers stay up through the drain: they answer the check-backs that
    // resolve the last UNKNOWN transactions (they have no async sends to wait for).
    let answers_checks = ctx.workload.mode == SendMode::Transaction;
    if !answers_checks {
        shutdown_producers(&producers).await;
    }
    shared.producer_executor_finished();
    while !shared.drain_over.load(Ordering::Relaxed) {
        glommio::timer::sleep(POLL_INTERVAL).await;
    }
    let mut notes = Vec::new();
    for task in churn {
        notes.extend(task.await);
    }
    if answers_checks {
        shutdown_producers(&producers).await;
    }
    for c in &consumers {
        c.shutdown().await;
    }
    let foreign = local.consumed.borrow().foreign_messages;
    if !consumers.is_empty() && foreign > 0 {
        let executor = ctx.share.executor;
        notes.push(format!(
            "executor {executor}: {foreign} messages of other runs or writers on the topic were skipped"
        ));
    }
    drop(consumers);
    drop(producers);
    // Taken rather than unwrapped: a client task may still hold the listener for a moment.
    Ok(WorkerOutcome {
        stats: local.stats.take(),
        acks: local.acks.take(),
        consumed: local.consumed.take(),
        notes,
    })
}
