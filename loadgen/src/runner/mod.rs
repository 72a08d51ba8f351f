//! Runs a workload against a name server: the coordinator (setup, start barrier, broker
//! counters, drain, merge) and one worker executor per CPU slot ([`worker`], its producers in
//! [`producer`]).
//!
//! Sequence: the coordinator waits for a registered broker, creates the topics on every
//! master (or falls back to existing/auto-created topics), and starts the workers. Each worker
//! starts its push consumers and producer clients and reports ready; once every consumer queue
//! is assigned exactly once, the coordinator fixes the start time. Producers warm up, measure,
//! and stop at the end of the window or their message quota; consumers then drain until every
//! acknowledged message is consumed (or `--drain-secs` passes). Executors merge nothing while
//! running: each returns its histograms and ledgers once, at the end.

mod churn;
mod plan;
mod producer;
mod worker;

pub use plan::{assign, producer_quota, ConnectionShare, ExecutorShare};
pub use producer::{failure_status, send_status_name, PRODUCER_GROUP};

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use glommio::{LocalExecutorBuilder, Placement};
use ringmq_client::{Admin, ClientConfig, TopicConfig};

use crate::broker_info;
use crate::cli::{ExecutorPlacement, WorkloadArgs};
use crate::clock::{self, now_ns};
use crate::host::TargetFacts;
use crate::order::OrderChecker;
use crate::process::interrupted;
use crate::procstat::{usage_between, CpuReading, CpuUsage};
use crate::progress::{PhaseAt, ProgressReporter};
use crate::report::BrokerFlushStats;
use crate::schedule::RunWindow;
use crate::stats::{ExecutorStats, LiveCounters, LiveSample};
use crate::verify::{reconcile, AckLedger, ConsumeLedger, VerifyReport};
use worker::{run_worker, WorkerContext, WorkerOutcome};

const POLL: Duration = Duration::from_millis(10);
/// Registered I/O memory per load-generator executor. The load generator does no DMA file
/// I/O, so glommio's 10 MiB default would only eat into `ulimit -l` (8 MiB on some hosts).
const EXECUTOR_IO_MEMORY_BYTES: usize = 1 << 20;

/// State every executor reads; written by the coordinator or by counters' owners.
pub struct Shared {
    pub counters: Vec<Arc<LiveCounters>>,
    /// Non-retry queues the consumers of each executor pull.
    pub assigned_queues: Vec<AtomicUsize>,
    pub executors_ready: AtomicUsize,
    /// Process-clock start of the run; 0 until fixed.
    start_ns: AtomicU64,
    warmup: Duration,
    duration: Option<Duration>,
    /// Set on Ctrl-C or a failed executor: producers stop, waits end.
    pub stop: AtomicBool,
    /// Set by the coordinator when consumers may stop.
    pub drain_over: AtomicBool,
    executors_producing: AtomicUsize,
    producers_done_ns: AtomicU64,
    /// `--messages`: the measured total (the run's progress is acknowledgements against it).
    messages: Option<u64>,
    /// `--orderly --verify`: every key's consumption order, across executors.
    pub order: Option<OrderChecker>,
    /// `--churn-consumers`: how many join and how many of those hold a queue now.
    pub churn: churn::ChurnState,
}

impl Shared {
    fn new(executors: usize, workload: &WorkloadArgs) -> Self {
        Self {
            counters: (0..executors)
                .map(|_| Arc::new(LiveCounters::default()))
                .collect(),
            assigned_queues: (0..executors).map(|_| AtomicUsize::new(0)).collect(),
            executors_ready: AtomicUsize::new(0),
            start_ns: AtomicU64::new(0),
            warmup: workload.warmup(),
            duration: workload.duration(),
            stop: AtomicBool::new(false),
            drain_over: AtomicBool::new(false),
            executors_producing: AtomicUsize::new(executors),
            producers_done_ns: AtomicU64::new(0),
            messages: workload.messages,
            order: (workload.orderly && workload.verify)
                .then(|| OrderChecker::new(workload.producers)),
            churn: churn::ChurnState::new(workload.churn_consumers as usize),
        }
    }

    /// How far the run is, 0 to 1: acknowledged messages against `--messages`, else the time
    /// into the measured window (0 during setup and warm-up).
    pub fn progress(&self) -> f64 {
        if self.producers_done().is_some() {
            return 1.0;
        }
        if let Some(total) = self.messages {
            let acked = self.live_total().acknowledged_messages;
            return acked as f64 / total.max(1) as f64;
        }
        match (self.window(), self.duration) {
            (Some(w), Some(d)) => {
                let into = now_ns().saturating_sub(w.measure_start_ns);
                into as f64 / d.as_nanos().max(1) as f64
            }
            _ => 0.0,
        }
    }

    /// The run window once the start is fixed.
    pub fn window(&self) -> Option<RunWindow> {
        let start = self.start_ns.load(Ordering::Acquire);
        (start != 0).then(|| RunWindow::new(start, self.warmup, self.duration))
    }

    /// Called once by each executor when its producers have stopped and their sends settled.
    pub fn producer_executor_finished(&self) {
        if self.executors_producing.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.producers_done_ns.store(now_ns(), Ordering::Release);
        }
    }

    fn producers_done(&self) -> Option<u64> {
        let at = self.producers_done_ns.load(Ordering::Acquire);
        (at != 0).then_some(at)
    }

    fn live_total(&self) -> LiveSample {
        let mut total = LiveSample::default();
        for c in &self.counters {
            // Only the cumulative counts are used here; the latency fields it resets belong
            // to the progress line, so read without taking.
            total.add(&c.peek());
        }
        total
    }

    fn assigned_total(&self) -> usize {
        self.assigned_queues
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .sum()
    }

    fn should_stop(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || interrupted()
    }
}

struct PhaseView(Arc<Shared>);

impl PhaseAt for PhaseView {
    fn phase_at(&self, now: Instant) -> &'static str {
        let now_ns = clock::ns_since_origin(now);
        match self.0.window() {
            None => "setup",
            Some(w) if now_ns < w.measure_start_ns => "warm-up",
            Some(_) if self.0.producers_done().is_none() => "measure",
            Some(_) => "drain",
        }
    }
}

/// What the coordinator learned while setting up.
struct Prepared {
    master_addrs: Vec<String>,
    read_queues: usize,
    notes: Vec<String>,
}

async fn wait_for_brokers(admin: &Admin, timeout: Duration) -> anyhow::Result<Vec<String>> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match admin.cluster_info().await {
            Ok(info) => {
                let masters: Vec<String> = info
                    .broker_addr_table
                    .values()
                    .filter_map(|b| b.broker_addrs.get(&0).cloned())
                    .collect();
                if !masters.is_empty() {
                    return Ok(masters);
                }
                "no master broker registered".to_string()
            }
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline || interrupted() {
            bail!("no broker registered with the name server within {timeout:?}: {last}");
        }
        glommio::timer::sleep(Duration::from_millis(100)).await;
    }
}

async fn prepare(
    admin: &Admin,
    workload: &WorkloadArgs,
    topics: &[String],
) -> anyhow::Result<Prepared> {
    let timeout = workload.setup_timeout();
    let master_addrs = wait_for_brokers(admin, timeout).await?;
    let mut notes = Vec::new();
    for topic in topics {
        for addr in &master_addrs {
            let config = TopicConfig {
                topic_name: topic.clone(),
                read_queue_nums: workload.queues as i32,
                write_queue_nums: workload.queues as i32,
                ..TopicConfig::default()
            };
            if let Err(e) = admin.create_topic(addr, &config).await {
                notes.push(format!(
                    "could not create topic {topic} on {addr} ({e}); using the existing or auto-created topic"
                ));
            }
        }
    }
    let mut read_queues = 0;
    for topic in topics {
        let deadline = Instant::now() + timeout;
        loop {
            match admin.topic_route(topic).await {
                Ok(route) if !route.read_queues.is_empty() => {
                    read_queues += route.read_queues.len();
                    break;
                }
                Ok(_) | Err(_) if Instant::now() < deadline && !interrupted() => {
                    glommio::timer::sleep(Duration::from_millis(100)).await;
                }
                Ok(_) => bail!("topic {topic} has no readable queue on the name server"),
                Err(e) => return Err(e).with_context(|| format!("route of topic {topic}")),
            }
        }
    }
    Ok(Prepared {
        master_addrs,
        read_queues,
        notes,
    })
}

/// Fills what the target facts lack from the first master's configuration.
async fn complete_target(admin: &Admin, master: &str, target: &mut TargetFacts) {
    if target.flush_disk_type.is_some() && target.broker_role.is_some() {
        return;
    }
    if let Ok(config) = broker_info::broker_config(admin, master).await {
        target.flush_disk_type = target
            .flush_disk_type
            .take()
            .or(config.get("flushDiskType").cloned());
        target.broker_role = target
            .broker_role
            .take()
            .or(config.get("brokerRole").cloned());
    }
}

/// `(source, (fdatasyncs, records))` now: the broker's own counters when it reports them, else
/// the local store disk's flush requests against the messages acknowledged so far.
async fn flush_reading(
    admin: &Admin,
    masters: &[String],
    disk: Option<&str>,
    shared: &Shared,
) -> Option<(String, (u64, u64))> {
    if let Some(counters) = broker_info::total_flush_counters(admin, masters).await {
        return Some(("broker counters (GET_BROKER_RUNTIME_INFO)".into(), counters));
    }
    let disk = disk?;
    let flushes = broker_info::disk_flush_requests(disk)?;
    let acknowledged = shared.live_total().acknowledged_messages;
    Some((
        format!("flush requests completed by /dev/{disk} (all processes) per acknowledged message"),
        (flushes, acknowledged),
    ))
}

/// The slave lag a master reports (GET_BROKER_RUNTIME_INFO `ringmqHaLagBytes`/`ringmqHaLagMs`,
/// the worst shard), read at the end of the measured window while the load is still on.
async fn slave_lag(admin: &Admin, masters: &[String]) -> Option<String> {
    let mut parts = Vec::new();
    for addr in masters {
        let table = broker_info::runtime_info(admin, addr).await.ok()?;
        let bytes = table.get("ringmqHaLagBytes")?;
        let ms = table.get("ringmqHaLagMs")?;
        parts.push(format!("{addr}: {bytes} bytes, {ms} ms"));
    }
    (!parts.is_empty()).then(|| {
        format!(
            "slave lag at the end of the measured window: {}",
            parts.join("; ")
        )
    })
}

/// What the run can observe of a broker on this host.
#[derive(Clone, Debug, Default)]
pub struct LocalBroker {
    /// Block device of the broker's store (flush requests stand in for fdatasync counts).
    pub store_disk: Option<String>,
    /// The broker's PID (its CPU time per message is reported).
    pub pid: Option<u32>,
}

/// Everything a run measured, before it is turned into a result.
pub struct RunOutcome {
    pub stats: ExecutorStats,
    pub verify: Option<VerifyReport>,
    pub measured_secs: f64,
    pub broker_flush: Option<BrokerFlushStats>,
    pub cpu: Option<CpuUsage>,
    pub timeline: Vec<crate::progress::TimelinePoint>,
    pub target: TargetFacts,
    pub notes: Vec<String>,
}

/// Waits until `done` or `timeout`; returns whether `done` became true.
async fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        glommio::timer::sleep(POLL).await;
    }
    true
}

async fn sleep_until_ns(at_ns: u64) {
    let now = now_ns();
    if at_ns > now {
        glommio::timer::sleep(Duration::from_nanos(at_ns - now)).await;
    }
}

/// Runs `workload` against the name server `namesrv`.
///
/// `local` describes a broker running on this host (quickstart), whose CPU time and store
/// disk the run can observe.
pub fn run(
    workload: WorkloadArgs,
    namesrv: String,
    run_id: u32,
    target: TargetFacts,
    local: LocalBroker,
) -> anyhow::Result<RunOutcome> {
    workload.validate()?;
    LocalExecutorBuilder::new(Placement::Unbound)
        .name("loadgen-coordinator")
        .io_memory(EXECUTOR_IO_MEMORY_BYTES)
        .make()
        .map_err(|e| {
            anyhow::anyhow!("starting the coordinator executor (is `ulimit -l` large enough?): {e}")
        })?
        .run(coordinate(workload, namesrv, run_id, target, local))
}

/// The executors started for a run.
struct Workers {
    handles: Vec<glommio::ExecutorJoinHandle<anyhow::Result<WorkerOutcome>>>,
    executors: usize,
}

fn spawn_workers(
    workload: &Arc<WorkloadArgs>,
    placement: &ExecutorPlacement,
    (namesrv, run_id, group): (&str, u32, &str),
    topics: &Arc<Vec<String>>,
    shared: &Arc<Shared>,
) -> anyhow::Result<Workers> {
    let executors = placement.executor_count();
    let shares = assign(
        workload.producers,
        workload.connections,
        workload.consumers,
        executors,
    );
    let mut handles = Vec::new();
    for share in shares {
        let glommio_placement = match placement {
            ExecutorPlacement::Pinned(cpus) => Placement::Fixed(cpus[share.executor]),
            ExecutorPlacement::Unpinned(_) => Placement::Unbound,
        };
        let ctx = WorkerContext {
            churn: churn::churn_ids(
                workload.consumers,
                workload.churn_consumers,
                share.executor,
                executors,
            ),
            share,
            workload: workload.clone(),
            namesrv: namesrv.to_string(),
            run_id,
            topics: topics.clone(),
            group: group.to_string(),
            shared: shared.clone(),
        };
        let worker_shared = shared.clone();
        let handle = LocalExecutorBuilder::new(glommio_placement)
            .name("loadgen")
            .io_memory(EXECUTOR_IO_MEMORY_BYTES)
            .spawn(move || async move {
                let outcome = run_worker(ctx).await;
                if outcome.is_err() {
                    // Release everyone waiting on this executor.
                    worker_shared.stop.store(true, Ordering::Relaxed);
                    worker_shared.drain_over.store(true, Ordering::Relaxed);
                }
                outcome
            })
            .map_err(|e| anyhow::anyhow!("starting a load-generator executor: {e}"))?;
        handles.push(handle);
    }
    Ok(Workers { handles, executors })
}

/// Waits for every executor to be ready and, with consumers, for every queue to be assigned.
async fn wait_ready(
    workload: &WorkloadArgs,
    shared: &Shared,
    executors: usize,
    read_queues: usize,
    notes: &mut Vec<String>,
) {
    let ready = wait_until(workload.setup_timeout(), || {
        shared.executors_ready.load(Ordering::SeqCst) == executors || shared.should_stop()
    })
    .await;
    if !ready {
        notes.push("executors did not become ready in time".into());
        shared.stop.store(true, Ordering::Relaxed);
    }
    if workload.consumers > 0 && !shared.should_stop() {
        let balanced = wait_until(workload.setup_timeout(), || {
            shared.assigned_total() == read_queues || shared.should_stop()
        })
        .await;
        if !balanced {
            notes.push(format!(
                "consumers held {} of {read_queues} queues when the run started (rebalance incomplete)",
                shared.assigned_total()
            ));
        }
    }
}

/// What the measured window observed of the broker and the host.
#[derive(Default)]
struct Measured {
    broker_flush: Option<BrokerFlushStats>,
    measure_end_ns: Option<u64>,
    cpu_window: Option<(CpuReading, CpuReading, f64)>,
}

/// Fixes the start, waits out the warm-up and the measured window, reading the broker's
/// counters at both ends; then waits for the producers to settle.
async fn measure(
    admin: &Admin,
    workload: &WorkloadArgs,
    shared: &Shared,
    (masters, flush_disk, pid): (&[String], Option<&str>, Option<u32>),
    notes: &mut Vec<String>,
) -> Measured {
    let start = now_ns() + 20_000_000;
    shared.start_ns.store(start, Ordering::Release);
    let window = shared.window().expect("start just fixed");
    sleep_until_ns(window.measure_start_ns).await;
    let before = flush_reading(admin, masters, flush_disk, shared).await;
    let before_ns = now_ns();
    let cpu_before = CpuReading::now(pid);
    // The measurement ends at the window's end or when the producers are done.
    while !shared.should_stop() && shared.producers_done().is_none() && !window.is_over(now_ns()) {
        glommio::timer::sleep(POLL).await;
    }
    let end = match (window.measure_end_ns, shared.producers_done()) {
        (Some(end), Some(done)) => end.min(done),
        (Some(end), None) => end.min(now_ns()),
        (None, done) => done.unwrap_or_else(now_ns),
    };
    let after = flush_reading(admin, masters, flush_disk, shared).await;
    if let Some(lag) = slave_lag(admin, masters).await {
        notes.push(lag);
    }
    let secs = (now_ns() - before_ns) as f64 / 1e9;
    let broker_flush = match (before, after) {
        (Some((source, b)), Some((source_after, a))) if source == source_after => {
            Some(BrokerFlushStats::between(&source, b, a, secs))
        }
        _ => {
            notes.push(
                "no fdatasync counts: the broker does not report them \
                 (GET_BROKER_RUNTIME_INFO) and no local store disk is known"
                    .into(),
            );
            None
        }
    };
    // Producers finish their last sends (bounded by the send timeout).
    let settle = Duration::from_millis(workload.send_timeout_ms) + workload.setup_timeout();
    if !wait_until(settle, || {
        shared.producers_done().is_some() || shared.stop.load(Ordering::Relaxed)
    })
    .await
    {
        notes.push("producers did not settle in time".into());
        shared.stop.store(true, Ordering::Relaxed);
    }
    Measured {
        broker_flush,
        measure_end_ns: Some(end.max(window.measure_start_ns)),
        cpu_window: Some((cpu_before, CpuReading::now(pid), secs)),
    }
}

/// Consumers catch up on what was acknowledged, for at most `--drain-secs`.
async fn drain(workload: &WorkloadArgs, shared: &Shared, notes: &mut Vec<String>) {
    let drained = wait_until(Duration::from_secs(workload.drain_secs), || {
        let t = shared.live_total();
        t.consumed_messages >= t.acknowledged_messages
            || shared.stop.load(Ordering::Relaxed)
            || interrupted()
    })
    .await;
    if !drained {
        let t = shared.live_total();
        notes.push(format!(
            "drain ended after {} s with {} acknowledged messages not yet consumed",
            workload.drain_secs,
            t.acknowledged_messages.saturating_sub(t.consumed_messages)
        ));
    }
}

/// Everything the executors measured, merged.
#[derive(Default)]
struct Collected {
    stats: ExecutorStats,
    acks: AckLedger,
    consumed: Vec<ConsumeLedger>,
}

fn collect(workers: Workers, notes: &mut Vec<String>) -> anyhow::Result<Collected> {
    let mut all = Collected::default();
    let mut first_error = None;
    for handle in workers.handles {
        match handle.join() {
            Ok(Ok(outcome)) => {
                all.stats.merge(&outcome.stats);
                all.acks.merge(&outcome.acks);
                all.consumed.push(outcome.consumed);
                notes.extend(outcome.notes);
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(anyhow::anyhow!("executor failed: {e}"));
            }
        }
    }
    match first_error {
        Some(e) => Err(e.context("a load-generator executor failed")),
        None => Ok(all),
    }
}

/// The `--verify` verdict, with the order check when the run was orderly.
fn verdict(shared: &Shared, collected: &Collected) -> VerifyReport {
    let mut report = reconcile(&collected.acks, &collected.consumed);
    report.order = shared
        .order
        .as_ref()
        .map(|o| o.finish(|p, s| collected.acks.contains(p, s)));
    report
}

async fn coordinate(
    workload: WorkloadArgs,
    namesrv: String,
    run_id: u32,
    mut target: TargetFacts,
    local: LocalBroker,
) -> anyhow::Result<RunOutcome> {
    let placement = workload.placement()?;
    let topics = Arc::new(workload.topic_names());
    let mut admin_config = ClientConfig::new(&namesrv)?;
    admin_config.credentials = workload.results.credentials();
    let admin = Admin::new(admin_config)?;
    let prepared = prepare(&admin, &workload, &topics).await?;
    let mut notes = prepared.notes;
    complete_target(&admin, &prepared.master_addrs[0], &mut target).await;

    let shared = Arc::new(Shared::new(placement.executor_count(), &workload));
    let group = workload
        .group
        .clone()
        .unwrap_or_else(|| format!("loadgen_{run_id:08x}"));
    let workload = Arc::new(workload);
    let ids = (namesrv.as_str(), run_id, group.as_str());
    let workers = spawn_workers(&workload, &placement, ids, &topics, &shared)?;
    let progress = ProgressReporter::start(
        shared.counters.clone(),
        workload.consumers > 0,
        PhaseView(shared.clone()),
    );
    let (executors, read_queues) = (workers.executors, prepared.read_queues);
    wait_ready(&workload, &shared, executors, read_queues, &mut notes).await;
    let mut measured = Measured::default();
    if !shared.should_stop() {
        let observe = (
            prepared.master_addrs.as_slice(),
            local.store_disk.as_deref(),
            local.pid,
        );
        measured = measure(&admin, &workload, &shared, observe, &mut notes).await;
    }
    if interrupted() {
        notes.push("interrupted (Ctrl-C): figures cover the part of the run completed".into());
    }
    if workload.consumers > 0 {
        drain(&workload, &shared, &mut notes).await;
    }
    shared.drain_over.store(true, Ordering::Relaxed);
    let timeline = progress.finish();
    admin.shutdown();
    let collected = collect(workers, &mut notes)?;
    let measured_secs = match (shared.window(), measured.measure_end_ns) {
        (Some(w), Some(end)) => (end - w.measure_start_ns) as f64 / 1e9,
        _ => 0.0,
    };
    let sent = collected.stats.sent_ok_messages;
    let cpu = measured
        .cpu_window
        .map(|(before, after, secs)| usage_between(&before, &after, secs, sent));
    Ok(RunOutcome {
        cpu,
        verify: workload.verify.then(|| verdict(&shared, &collected)),
        stats: collected.stats,
        measured_secs,
        broker_flush: measured.broker_flush,
        timeline,
        target,
        notes,
    })
}
