//! One executor's producers: their clients, the send loop of each producer task (closed or
//! open loop), and how each answer is recorded.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ringmq_client::{
    ClientError, LocalTransactionState, Message, Producer, ProducerConfig, QueueSelector,
    SendResult, SendStatus, TransactionProducer,
};
use ringmq_proto::code::ResponseCode;
use ringmq_proto::message::property;

use super::plan::producer_quota;
use super::worker::{client_config, Local, WorkerContext, POLL_INTERVAL};
use crate::body::BodyHeader;
use crate::cli::{SendMode, TxOutcome, WorkloadArgs};
use crate::clock::now_ns;
use crate::key_space::{message_key, spread_topic_index};
use crate::order::{key_name, key_of, KEYS_PER_PRODUCER};
use crate::process::interrupted;
use crate::schedule::{OpenLoopSchedule, RunWindow};

/// Producer group of every load-generator producer.
pub const PRODUCER_GROUP: &str = "loadgen_producer";
/// An open-loop send due less than this far ahead goes now: a timer cannot wait shorter.
const SLEEP_THRESHOLD_NS: u64 = 20_000;

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
        message = message.with_keys([message_key(
            header.run_id,
            header.producer_id,
            header.sequence,
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

/// The round-robin selector, shared (it holds nothing, so one constant serves every send).
const ROUND_ROBIN: QueueSelector = QueueSelector::RoundRobin;

/// One producer's position in its run.
struct ProducerState {
    producer_id: u32,
    per_send: u64,
    quota: Option<u64>,
    schedule: Option<OpenLoopSchedule>,
    body_buf: Vec<u8>,
    sequence: u64,
    measured_messages: u64,
    /// `--orderly`: one selector per key of this producer, built once (its key's hash picks
    /// the queue); empty otherwise.
    selectors: Vec<QueueSelector>,
}

impl ProducerState {
    fn new(local: &Local, settings: &ProducerSettings, producer_id: u32) -> ProducerState {
        let w = &settings.workload;
        let per_send = u64::from(w.messages_per_send());
        let selectors = if w.orderly {
            (0..u64::from(KEYS_PER_PRODUCER))
                .map(|s| QueueSelector::ByKeyHash(key_name(local.run_id, key_of(producer_id, s).0)))
                .collect()
        } else {
            Vec::new()
        };
        ProducerState {
            producer_id,
            per_send,
            quota: w
                .messages
                .map(|total| producer_quota(total, settings.producers_total, producer_id)),
            schedule: w.rate.map(|rate| {
                OpenLoopSchedule::new(
                    settings.window.start_ns,
                    rate as f64 / per_send as f64,
                    producer_id,
                    settings.producers_total,
                )
            }),
            body_buf: Vec::with_capacity(w.message_size_bytes),
            sequence: 0,
            measured_messages: 0,
            selectors,
        }
    }

    /// The queue selector of the next message: its key's with `--orderly`.
    fn selector(&self) -> &QueueSelector {
        let key = (self.sequence % u64::from(KEYS_PER_PRODUCER)) as usize;
        self.selectors.get(key).unwrap_or(&ROUND_ROBIN)
    }

    /// The topic of the next send. An orderly producer keeps to one topic, so each key stays
    /// in one queue.
    fn topic<'s>(&self, settings: &'s ProducerSettings) -> &'s str {
        let topics = &settings.topics;
        &topics[spread_topic_index(
            self.producer_id,
            self.sequence,
            self.per_send,
            topics.len(),
            settings.workload.orderly,
        )]
    }
}

/// Waits for the next send's time; `None` when the producer is done, else the intended send
/// time (open loop) if any.
async fn next_send(
    local: &Local,
    settings: &ProducerSettings,
    state: &mut ProducerState,
) -> Option<Option<u64>> {
    loop {
        if local.shared.stop.load(Ordering::Relaxed) || interrupted() {
            return None;
        }
        let quota_met = state.quota.is_some_and(|q| state.measured_messages >= q);
        if quota_met || settings.window.is_over(now_ns()) {
            return None;
        }
        // `--churn-consumers`: half way, wait until the joined consumers hold queues.
        if !local
            .shared
            .churn
            .producers_may_send(|| local.shared.progress())
        {
            glommio::timer::sleep(POLL_INTERVAL).await;
            continue;
        }
        let Some(schedule) = state.schedule.as_mut() else {
            return Some(None);
        };
        let at = schedule.next_intended_ns();
        if settings.window.is_over(at) {
            return None;
        }
        sleep_until_ns(at).await;
        return Some(Some(at));
    }
}

/// One producer: sends until the window ends, its quota is met, or the run is stopped.
async fn run_producer(
    local: Rc<Local>,
    (producer, tx): (Producer, Option<TransactionProducer>),
    producer_id: u32,
    settings: Rc<ProducerSettings>,
) {
    let mut state = ProducerState::new(&local, &settings, producer_id);
    while let Some(intended_ns) = next_send(&local, &settings, &mut state).await {
        let send_start_ns = now_ns();
        let born_ns = intended_ns.unwrap_or(send_start_ns);
        let measured = settings.window.is_measured(born_ns);
        if let (Some(at), true) = (intended_ns, measured) {
            let delay_us = send_start_ns.saturating_sub(at) / 1_000;
            local.stats.borrow_mut().publish_delay.record_us(delay_us);
        }
        let ticket = SendTicket {
            producer_id,
            first_sequence: state.sequence,
            messages: state.per_send,
            bytes: state.per_send * settings.workload.message_size_bytes as u64,
            latency_from_ns: born_ns,
            measured,
            visible: true,
        };
        send_one(
            &local,
            (&producer, tx.as_ref()),
            &settings,
            &mut state,
            ticket,
        )
        .await;
        state.sequence += state.per_send;
        if measured {
            state.measured_messages += state.per_send;
        }
    }
    let stopped_early = local.shared.stop.load(Ordering::Relaxed) || interrupted();
    let window = settings.window;
    if let (Some(s), Some(end), false) = (state.schedule, window.measure_end_ns, stopped_early) {
        let unsent_sends = s.remaining_before(end) - s.remaining_before(window.measure_start_ns);
        local.stats.borrow_mut().unsent_scheduled_messages += unsent_sends * state.per_send;
    }
}

/// Sends the message(s) of `ticket` the way `--mode` says and records the outcome.
async fn send_one(
    local: &Rc<Local>,
    (producer, tx): (&Producer, Option<&TransactionProducer>),
    settings: &ProducerSettings,
    state: &mut ProducerState,
    ticket: SendTicket,
) {
    let header = |s: u64| BodyHeader {
        run_id: local.run_id,
        producer_id: ticket.producer_id,
        sequence: s,
        born_ns: ticket.latency_from_ns,
    };
    let (topic, seq) = (state.topic(settings), state.sequence);
    let mode = settings.workload.mode;
    if mode == SendMode::Batch {
        let batch = (seq..seq + state.per_send)
            .map(|s| build_message(local, settings, &header(s), topic, &mut state.body_buf))
            .collect();
        let result = producer.send_batch(batch, state.selector().clone()).await;
        return on_send_result(local, ticket, result);
    }
    let m = build_message(local, settings, &header(seq), topic, &mut state.body_buf);
    match mode {
        SendMode::Sync | SendMode::Batch => {
            let result = producer.send_to(m, state.selector()).await;
            on_send_result(local, ticket, result);
        }
        SendMode::Async => {
            let callback_local = local.clone();
            let started = producer
                .send_async(m, state.selector().clone(), move |r| {
                    on_send_result(&callback_local, ticket, r)
                })
                .await;
            if let Err(e) = started {
                on_send_result(local, ticket, Err(e));
            }
        }
        SendMode::Transaction => {
            let tx = tx.expect("transaction mode starts transactional producers");
            send_transaction(local, tx, m, ticket, &header(seq)).await;
        }
        SendMode::Oneway => match producer.send_oneway(m, state.selector().clone()).await {
            Ok(()) => {
                local
                    .counters
                    .add_sent_untimed(ticket.messages, ticket.bytes);
                local.counters.add_acknowledged(ticket.messages);
                if ticket.measured {
                    let mut stats = local.stats.borrow_mut();
                    stats.sent_ok_messages += ticket.messages;
                    stats.sent_ok_bytes += ticket.bytes;
                }
            }
            Err(e) => on_send_result(local, ticket, Err(e)),
        },
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

pub(super) async fn shutdown_producers<T>(producers: &[((Producer, T), Vec<u32>)]) {
    for ((producer, _), _) in producers {
        producer.shutdown().await;
    }
}

pub(super) type Producers = Vec<((Producer, Option<TransactionProducer>), Vec<u32>)>;

/// One producer client per connection of this executor's share.
pub(super) fn start_producers(ctx: &WorkerContext, local: &Rc<Local>) -> anyhow::Result<Producers> {
    let mut producers = Vec::new();
    for conn in &ctx.share.connections {
        let client = client_config(
            ctx,
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
        producers.push((start_producer(local, config)?, conn.producers.clone()));
    }
    Ok(producers)
}

/// Runs every producer task of this executor to its end.
pub(super) async fn produce(
    ctx: &WorkerContext,
    local: &Rc<Local>,
    producers: &Producers,
    window: RunWindow,
) {
    let settings = Rc::new(ProducerSettings {
        workload: ctx.workload.clone(),
        topics: ctx.topics.clone(),
        window,
        producers_total: ctx.workload.producers,
    });
    let mut tasks = Vec::new();
    for (producer, ids) in producers {
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
