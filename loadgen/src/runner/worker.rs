//! One executor's part of a run: its producer connections and producer tasks, its push
//! consumers, and everything they measure (kept executor-local, returned at the end).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ringmq_client::{
    ClientConfig, ClientError, ConsumeFrom, ConsumeStatus, LocalTransactionState, Message,
    MessageExt, MessageQueue, MessageSelector, Producer, ProducerConfig, PushConsumer,
    PushConsumerConfig, QueueSelector, SendResult, SendStatus, TransactionProducer,
};
use ringmq_proto::code::ResponseCode;
use ringmq_proto::message::property;

use super::plan::{producer_quota, ExecutorShare};
use super::Shared;
use crate::body::{decode_header, BodyCodec, BodyHeader};
use crate::cli::{SendMode, TxOutcome, WorkloadArgs};
use crate::clock::{now_ns, unix_now_us};
use crate::process::interrupted;
use crate::schedule::{OpenLoopSchedule, RunWindow};
use crate::stats::{ExecutorStats, LiveCounters};
use crate::verify::{AckLedger, ConsumeLedger};

/// Producer group of every load-generator producer.
pub const PRODUCER_GROUP: &str = "loadgen_producer";
/// An open-loop send due less than this far ahead goes now: a timer cannot wait shorter.
const SLEEP_THRESHOLD_NS: u64 = 20_000;
/// How often waiting loops look at the shared state.
const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// Rebalance waiting consumers every 100 polls (about half a second).
const REBALANCE_EVERY_POLLS: u64 = 100;

/// Everything one executor needs; built on the coordinator thread and moved in.
pub struct WorkerContext {
    pub share: ExecutorShare,
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
struct Local {
    run_id: u32,
    verify: bool,
    workload: Arc<WorkloadArgs>,
    codec: BodyCodec,
    shared: Arc<Shared>,
    counters: Arc<LiveCounters>,
    window: Cell<Option<RunWindow>>,
    stats: RefCell<ExecutorStats>,
    acks: RefCell<AckLedger>,
    consumed: RefCell<ConsumeLedger>,
}

impl Local {
    /// The run window once the coordinator has fixed the start.
    fn window(&self) -> Option<RunWindow> {
        if self.window.get().is_none() {
            self.window.set(self.shared.window());
        }
        self.window.get()
    }

    fn on_consumed(&self, message: &MessageExt, now: u64) {
        let body = &message.body[..];
        if let Ok(BodyHeader {
            run_id, born_ns, ..
        }) = decode_header(body)
        {
            if run_id == self.run_id {
                self.counters.add_consumed(1);
                if self.window().is_some_and(|w| w.is_measured(born_ns)) {
                    let e2e_us = now.saturating_sub(born_ns) / 1_000;
                    let mut stats = self.stats.borrow_mut();
                    stats.record_consumed(e2e_us, body.len() as u64);
                    if let Some(due_ms) = message
                        .property(property::TIMER_OUT_MS)
                        .and_then(|v| v.parse::<i64>().ok())
                    {
                        stats.record_delivery(due_ms, message.store_timestamp_ms, unix_now_us());
                    }
                }
            }
        }
        if self.verify {
            let mut consumed = self.consumed.borrow_mut();
            consumed.record_body(&self.codec, self.run_id, body);
            if let Ok(h) = decode_header(body) {
                let tx = self.workload.mode == SendMode::Transaction;
                if tx && h.run_id == self.run_id && self.tx_outcome(&h) == TxOutcome::Rollback {
                    consumed.rolled_back_delivered += 1;
                }
            }
        }
    }

    fn tx_outcome(&self, h: &BodyHeader) -> TxOutcome {
        self.workload.tx_outcome(h.producer_id, h.sequence)
    }

    /// The check-back's answer: the decision the local transaction would have made, with
    /// UNKNOWN ones committed now (the broker asked, so the "slow" transaction is done).
    fn check_back(&self, message: &MessageExt) -> LocalTransactionState {
        match decode_header(&message.body).map(|h| self.tx_outcome(&h)) {
            Ok(TxOutcome::Rollback) => LocalTransactionState::RollbackMessage,
            Ok(_) => LocalTransactionState::CommitMessage,
            Err(_) => LocalTransactionState::Unknown,
        }
    }
}

/// What one send carried, for recording its outcome.
#[derive(Clone, Copy)]
struct SendTicket {
    producer_id: u32,
    first_sequence: u64,
    messages: u64,
    bytes: u64,
    /// Latency counts from here: the intended time (open loop) or the send start.
    latency_from_ns: u64,
    measured: bool,
    /// Whether consumers must see it (`--verify`): false for rolled-back transactions.
    visible: bool,
}

/// The status name a failed send is counted under.
pub fn failure_status(error: &ClientError) -> String {
    match error {
        ClientError::Server { code, .. } => match ResponseCode::from_code(*code) {
            ResponseCode::Unknown(c) => format!("CODE_{c}"),
            named => named.name().to_string(),
        },
        ClientError::RetriesExhausted { last, .. } => failure_status(last),
        ClientError::Timeout { .. } => "TIMEOUT".into(),
        ClientError::Connect { .. } => "CONNECT_FAILED".into(),
        ClientError::ConnectionClosed { .. } => "CONNECTION_CLOSED".into(),
        ClientError::Frame { .. } => "MALFORMED_FRAME".into(),
        ClientError::BadResponse { .. } => "BAD_RESPONSE".into(),
        ClientError::NoRoute { .. } => "NO_ROUTE".into(),
        ClientError::NoQueue { .. } => "NO_QUEUE".into(),
        ClientError::InvalidMessage(_) => "INVALID_MESSAGE".into(),
        ClientError::Shutdown => "SHUTDOWN".into(),
        ClientError::NameServerUnavailable { .. } => "NAMESRV_UNAVAILABLE".into(),
        _ => "CLIENT_ERROR".into(),
    }
}

/// A stored-but-not-durable status (RocketMQ `SendStatus` other than SEND_OK).
pub fn send_status_name(status: SendStatus) -> &'static str {
    match status {
        SendStatus::SendOk => "SEND_OK",
        SendStatus::FlushDiskTimeout => "FLUSH_DISK_TIMEOUT",
        SendStatus::FlushSlaveTimeout => "FLUSH_SLAVE_TIMEOUT",
        SendStatus::SlaveNotAvailable => "SLAVE_NOT_AVAILABLE",
    }
}

fn on_send_result(local: &Local, ticket: SendTicket, result: Result<SendResult, ClientError>) {
    let latency_us = now_ns().saturating_sub(ticket.latency_from_ns) / 1_000;
    match result {
        Ok(r) => {
            // Every answered send is stored; a non-OK status means the promised durability
            // was not reached in time, which the report counts as a failure by status.
            // Rolled-back transactions never reach a consumer: the drain does not wait for them.
            if ticket.visible {
                local.counters.add_acknowledged(ticket.messages);
            }
            if r.status == SendStatus::SendOk {
                local
                    .counters
                    .add_sent(ticket.messages, ticket.bytes, latency_us);
                if ticket.measured {
                    local.stats.borrow_mut().record_send_ok(
                        latency_us,
                        ticket.messages,
                        ticket.bytes,
                    );
                }
            } else {
                local.counters.add_failed(ticket.messages);
                if ticket.measured {
                    local
                        .stats
                        .borrow_mut()
                        .record_send_failure(send_status_name(r.status), ticket.messages);
                }
            }
            if local.verify && ticket.visible {
                let mut acks = local.acks.borrow_mut();
                for s in ticket.first_sequence..ticket.first_sequence + ticket.messages {
                    acks.record_ack(ticket.producer_id, s);
                }
            }
        }
        Err(e) => {
            local.counters.add_failed(ticket.messages);
            if ticket.measured {
                local
                    .stats
                    .borrow_mut()
                    .record_send_failure(&failure_status(&e), ticket.messages);
            }
        }
    }
}

/// Settings every producer task of the run shares.
struct ProducerSettings {
    workload: Arc<WorkloadArgs>,
    topics: Arc<Vec<String>>,
    window: RunWindow,
    producers_total: u32,
}

fn build_message(
    local: &Local,
    settings: &ProducerSettings,
    header: &BodyHeader,
    topic: &str,
    body_buf: &mut Vec<u8>,
) -> Message {
    local.codec.encode_into(header, body_buf);
    let mut message = Message::new(topic, body_buf.clone());
    let w = &settings.workload;
    if w.tags > 0 {
        message = message.with_tags(format!("TagA-{}", header.sequence % u64::from(w.tags)));
    }
    if w.props > 0 {
        message.set_property("p", (header.sequence % u64::from(w.props)).to_string());
    }
    if let Some(level) = w.delay_level {
        message.set_property(property::DELAY, level.to_string());
    }
    if let Some(ms) = w.timer_delay_ms {
        message = message.with_delay_time_ms(ms as i64);
    }
    if w.keys {
        message = message.with_keys([format!(
            "{:08x}-{}-{}",
            header.run_id, header.producer_id, header.sequence
        )]);
    }
    message
}

async fn sleep_until_ns(at_ns: u64) {
    let now = now_ns();
    if at_ns > now + SLEEP_THRESHOLD_NS {
        glommio::timer::sleep(Duration::from_nanos(at_ns - now)).await;
    }
}

/// One producer: sends until the window ends, its quota is met, or the run is stopped.
async fn run_producer(
    local: Rc<Local>,
    (producer, tx): (Producer, Option<TransactionProducer>),
    producer_id: u32,
    settings: Rc<ProducerSettings>,
) {
    let w = settings.workload.clone();
    let per_send = u64::from(w.messages_per_send());
    let quota = w
        .messages
        .map(|total| producer_quota(total, settings.producers_total, producer_id));
    let mut schedule = w.rate.map(|rate| {
        OpenLoopSchedule::new(
            settings.window.start_ns,
            rate as f64 / per_send as f64,
            producer_id,
            settings.producers_total,
        )
    });
    let mut body_buf = Vec::with_capacity(w.message_size_bytes);
    let mut sequence: u64 = 0;
    let mut measured_messages: u64 = 0;
    loop {
        if local.shared.stop.load(Ordering::Relaxed) || interrupted() {
            break;
        }
        if quota.is_some_and(|q| measured_messages >= q) || settings.window.is_over(now_ns()) {
            break;
        }
        let intended_ns = match schedule.as_mut() {
            Some(s) => {
                let at = s.next_intended_ns();
                if settings.window.is_over(at) {
                    break;
                }
                sleep_until_ns(at).await;
                Some(at)
            }
            None => None,
        };
        let send_start_ns = now_ns();
        let born_ns = intended_ns.unwrap_or(send_start_ns);
        let measured = settings.window.is_measured(born_ns);
        if let (Some(at), true) = (intended_ns, measured) {
            let delay_us = send_start_ns.saturating_sub(at) / 1_000;
            local.stats.borrow_mut().publish_delay.record_us(delay_us);
        }
        let topic = &settings.topics
            [(producer_id as u64 + sequence / per_send) as usize % settings.topics.len()];
        let ticket = SendTicket {
            producer_id,
            first_sequence: sequence,
            messages: per_send,
            bytes: per_send * w.message_size_bytes as u64,
            latency_from_ns: born_ns,
            measured,
            visible: true,
        };
        let header = |s: u64| BodyHeader {
            run_id: local.run_id,
            producer_id,
            sequence: s,
            born_ns,
        };
        match w.mode {
            SendMode::Sync => {
                let m = build_message(&local, &settings, &header(sequence), topic, &mut body_buf);
                let result = producer.send(m).await;
                on_send_result(&local, ticket, result);
            }
            SendMode::Batch => {
                let batch = (sequence..sequence + per_send)
                    .map(|s| build_message(&local, &settings, &header(s), topic, &mut body_buf))
                    .collect();
                let result = producer.send_batch(batch, QueueSelector::RoundRobin).await;
                on_send_result(&local, ticket, result);
            }
            SendMode::Async => {
                let m = build_message(&local, &settings, &header(sequence), topic, &mut body_buf);
                let callback_local = local.clone();
                let started = producer
                    .send_async(m, QueueSelector::RoundRobin, move |r| {
                        on_send_result(&callback_local, ticket, r)
                    })
                    .await;
                if let Err(e) = started {
                    on_send_result(&local, ticket, Err(e));
                }
            }
            SendMode::Transaction => {
                let m = build_message(&local, &settings, &header(sequence), topic, &mut body_buf);
                let tx = tx
                    .as_ref()
                    .expect("transaction mode starts transactional producers");
                send_transaction(&local, tx, m, ticket, &header(sequence)).await;
            }
            SendMode::Oneway => {
                let m = build_message(&local, &settings, &header(sequence), topic, &mut body_buf);
                match producer.send_oneway(m, QueueSelector::RoundRobin).await {
                    Ok(()) => {
                        local.counters.add_sent_untimed(per_send, ticket.bytes);
                        local.counters.add_acknowledged(per_send);
                        if measured {
                            let mut stats = local.stats.borrow_mut();
                            stats.sent_ok_messages += per_send;
                            stats.sent_ok_bytes += ticket.bytes;
                        }
                    }
                    Err(e) => on_send_result(&local, ticket, Err(e)),
                }
            }
        }
        sequence += per_send;
        if measured {
            measured_messages += per_send;
        }
    }
    let stopped_early = local.shared.stop.load(Ordering::Relaxed) || interrupted();
    if let (Some(s), Some(end), false) = (schedule, settings.window.measure_end_ns, stopped_early) {
        let unsent_sends =
            s.remaining_before(end) - s.remaining_before(settings.window.measure_start_ns);
        local.stats.borrow_mut().unsent_scheduled_messages += unsent_sends * per_send;
    }
}

/// One transaction: half message, the mix's local decision, END_TRANSACTION. Its latency is
/// the whole exchange; a rolled-back one is sent but never expected at a consumer.
async fn send_transaction(
    local: &Local,
    tx: &TransactionProducer,
    message: Message,
    mut ticket: SendTicket,
    header: &BodyHeader,
) {
    let outcome = local.tx_outcome(header);
    let state = match outcome {
        TxOutcome::Commit => LocalTransactionState::CommitMessage,
        TxOutcome::Rollback => LocalTransactionState::RollbackMessage,
        TxOutcome::Unknown => LocalTransactionState::Unknown,
    };
    ticket.visible = outcome != TxOutcome::Rollback;
    let result = tx
        .send_in_transaction(message, QueueSelector::RoundRobin, |_| state)
        .await
        .map(|r| r.send);
    on_send_result(local, ticket, result);
}

/// A producer of the run: plain, or transactional in `--mode transaction` (its check-back
/// answers from the message id alone).
fn start_producer(
    local: &Rc<Local>,
    config: ProducerConfig,
) -> anyhow::Result<(Producer, Option<TransactionProducer>)> {
    if local.workload.mode != SendMode::Transaction {
        return Ok((Producer::start(config)?, None));
    }
    let check_local = local.clone();
    let tx = TransactionProducer::start(config, Rc::new(move |m| check_local.check_back(m)))?;
    Ok((tx.producer().clone(), Some(tx)))
}

fn client_config(ctx: &WorkerContext, instance_name: String) -> anyhow::Result<ClientConfig> {
    let mut config = ClientConfig::new(&ctx.namesrv)?;
    config.instance_name = instance_name;
    config.credentials = ctx.workload.credentials();
    Ok(config)
}

async fn start_consumers(
    ctx: &WorkerContext,
    local: &Rc<Local>,
) -> anyhow::Result<Vec<PushConsumer>> {
    let selector = match &ctx.workload.sql {
        Some(sql) => MessageSelector::by_sql(sql.clone()),
        None => MessageSelector::by_tag("*"),
    };
    let subscriptions: Vec<(&str, MessageSelector)> = ctx
        .topics
        .iter()
        .map(|t| (t.as_str(), selector.clone()))
        .collect();
    let mut consumers = Vec::new();
    for &k in &ctx.share.consumers {
        let client = client_config(ctx, format!("loadgen-{:08x}-c{k}", ctx.run_id))?;
        let mut config = PushConsumerConfig::new(client, ctx.group.clone());
        // A fresh group starts at the end of each queue: only this run's messages count.
        config.consume_from = ConsumeFrom::LastOffset;
        config.pull_batch_size = ctx.workload.pull_batch_size as i32;
        config.consume_batch_max_size = ctx.workload.pull_batch_size as usize;
        config.consume_orderly = ctx.workload.orderly;
        let listener_local = local.clone();
        let listener = move |_queue: &MessageQueue, messages: &[MessageExt]| {
            let now = now_ns();
            for m in messages {
                listener_local.on_consumed(m, now);
            }
            ConsumeStatus::Success
        };
        consumers.push(PushConsumer::start_with_selectors(config, &subscriptions, listener).await?);
    }
    Ok(consumers)
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

async fn shutdown_producers<T>(producers: &[((Producer, T), Vec<u32>)]) {
    for ((producer, _), _) in producers {
        producer.shutdown().await;
    }
}

/// Runs one executor's share of the run and returns what it measured.
pub async fn run_worker(ctx: WorkerContext) -> anyhow::Result<WorkerOutcome> {
    let shared = ctx.shared.clone();
    let executor = ctx.share.executor;
    let local = Rc::new(Local {
        run_id: ctx.run_id,
        verify: ctx.workload.verify,
        workload: ctx.workload.clone(),
        codec: BodyCodec::new(ctx.workload.message_size_bytes),
        shared: shared.clone(),
        counters: shared.counters[executor].clone(),
        window: Cell::new(None),
        stats: RefCell::new(ExecutorStats::default()),
        acks: RefCell::new(AckLedger::default()),
        consumed: RefCell::new(ConsumeLedger::default()),
    });
    let mut notes = Vec::new();
    let consumers = start_consumers(&ctx, &local).await?;
    let mut producers = Vec::new();
    for conn in &ctx.share.connections {
        let client = client_config(
            &ctx,
            format!("loadgen-{:08x}-p{}", ctx.run_id, conn.connection),
        )?;
        let mut config = ProducerConfig::new(client, PRODUCER_GROUP);
        config.send_timeout_ms = ctx.workload.send_timeout_ms;
        // No client retries: a failure is counted under its status, not hidden by a retry.
        config.retry_times_when_send_failed = 0;
        // Bodies are incompressible filler; never spend CPU trying.
        config.compress_over_bytes = usize::MAX;
        config.max_async_in_flight = ctx.workload.max_in_flight as usize * conn.producers.len();
        config.default_topic_queue_nums = ctx.workload.queues as i32;
        producers.push((start_producer(&local, config)?, conn.producers.clone()));
    }
    shared.executors_ready.fetch_add(1, Ordering::SeqCst);

    // Report queue assignment until the coordinator fixes the start time.
    let mut polls: u64 = 0;
    let window = loop {
        shared.assigned_queues[executor].store(assigned_queue_count(&consumers), Ordering::Relaxed);
        if let Some(w) = shared.window() {
            break Some(w);
        }
        if shared.stop.load(Ordering::Relaxed) {
            break None;
        }
        polls += 1;
        if polls % REBALANCE_EVERY_POLLS == 0 {
            // Consumers that started before their peers each took every queue; rebalance
            // until the group's assignment is a partition (the coordinator waits for that).
            for c in &consumers {
                c.rebalance_now().await;
            }
        }
        glommio::timer::sleep(POLL_INTERVAL).await;
    };

    if let Some(window) = window {
        let settings = Rc::new(ProducerSettings {
            workload: ctx.workload.clone(),
            topics: ctx.topics.clone(),
            window,
            producers_total: ctx.workload.producers,
        });
        let mut tasks = Vec::new();
        for (producer, ids) in &producers {
            for &id in ids {
                tasks.push(glommio::spawn_local(run_producer(
                    local.clone(),
                    producer.clone(),
                    id,
                    settings.clone(),
                )));
            }
        }
        for t in tasks {
            t.await;
        }
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
    if answers_checks {
        shutdown_producers(&producers).await;
    }
    for c in &consumers {
        c.shutdown().await;
    }
    if !consumers.is_empty() && local.consumed.borrow().foreign_messages > 0 {
        notes.push(format!(
            "executor {executor}: {} messages of other runs or writers on the topic were skipped",
            local.consumed.borrow().foreign_messages
        ));
    }
    drop(consumers);
    drop(producers);
    // Taken rather than unwrapped: a client task may still hold the listener for a moment.
    let stats = local.stats.take();
    let acks = local.acks.take();
    let consumed = local.consumed.take();
    Ok(WorkerOutcome {
        stats,
        acks,
        consumed,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_named_by_response_code_or_transport() {
        let server = |code| ClientError::Server {
            addr: "a".into(),
            request_code: 310,
            code,
            remark: String::new(),
        };
        assert_eq!(failure_status(&server(2)), "SYSTEM_BUSY");
        assert_eq!(failure_status(&server(9_999)), "CODE_9999");
        let exhausted = ClientError::RetriesExhausted {
            attempts: 3,
            last: Box::new(server(14)),
        };
        assert_eq!(failure_status(&exhausted), "SERVICE_NOT_AVAILABLE");
        let timeout = ClientError::Timeout {
            addr: "a".into(),
            request_code: 310,
            timeout_ms: 3,
        };
        assert_eq!(failure_status(&timeout), "TIMEOUT");
        assert_eq!(
            send_status_name(SendStatus::FlushDiskTimeout),
            "FLUSH_DISK_TIMEOUT"
        );
    }
}
