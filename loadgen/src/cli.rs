//! Command-line interface: `run` benchmarks a running system, `quickstart` brings one up first.
//!
//! Flag names follow RocketMQ's benchmark tools where they have an equivalent (`-w` threads is
//! `--producers`, `-s` is `--message-size-bytes`, `-k` is `--keys`, `-l` is `--tags`, `-q` is
//! `--messages`), spelled out and with units.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::body::BODY_HEADER_BYTES;

#[derive(Debug, Parser)]
#[command(name = "ringmq-loadgen", version, about = "ringmq load generator")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Benchmark any RocketMQ-protocol system through its name server.
    Run(RunArgs),
    /// Start a name server and a broker from this build on 127.0.0.1 in a temporary directory,
    /// run a workload (default: about 20 s of producers and consumers), print the report, stop both.
    Quickstart(QuickstartArgs),
    /// Drain the backlog of existing topics (all of it, or its newest `--last-messages`) with a
    /// fresh consumer group and time it: messages/s and MB/s of message bodies. Wire protocol
    /// only, so it measures any RocketMQ broker.
    CatchUp(CatchUpArgs),
    /// Time QUERY_MESSAGE lookups, one at a time, of keys that `run --keys --messages N` runs
    /// stored (read from their JSON results): found/not found, p50/p99.
    QueryKeys(QueryKeysArgs),
}

/// How messages are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SendMode {
    /// Each producer waits for the response before sending again (RocketMQ's default).
    Sync,
    /// Each producer keeps up to `--max-in-flight` sends outstanding.
    Async,
    /// Fire and forget: no response, so no send latency and nothing to verify as acknowledged.
    Oneway,
    /// `--batch-size` messages per SEND_BATCH_MESSAGE, sent synchronously.
    Batch,
    /// A transaction per message: half message, local decision (commit / rollback / unknown by
    /// `--tx-rollback-percent` and `--tx-unknown-percent`), END_TRANSACTION; unknown ones are
    /// committed when the broker checks back. Each producer runs one transaction at a time.
    Transaction,
}

/// What a `--mode transaction` local transaction decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxOutcome {
    Commit,
    Rollback,
    /// UNKNOWN at first; the check-back commits it.
    Unknown,
}

/// The broker's flush mode (`flushDiskType`), for the broker the quickstart starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
pub enum FlushMode {
    #[value(name = "ASYNC_FLUSH", alias = "async")]
    #[serde(rename = "ASYNC_FLUSH")]
    AsyncFlush,
    #[value(name = "SYNC_FLUSH", alias = "sync")]
    #[serde(rename = "SYNC_FLUSH")]
    SyncFlush,
}

impl FlushMode {
    pub fn config_value(self) -> &'static str {
        match self {
            FlushMode::AsyncFlush => "ASYNC_FLUSH",
            FlushMode::SyncFlush => "SYNC_FLUSH",
        }
    }
}

/// Replication of the quickstart broker: none, or a master (this `brokerRole`) plus one slave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
pub enum Replication {
    #[value(name = "NONE", alias = "none")]
    #[serde(rename = "NONE")]
    None,
    #[value(name = "ASYNC_MASTER", alias = "async")]
    #[serde(rename = "ASYNC_MASTER")]
    AsyncMaster,
    #[value(name = "SYNC_MASTER", alias = "sync")]
    #[serde(rename = "SYNC_MASTER")]
    SyncMaster,
}

impl Replication {
    /// The master's `brokerRole`.
    pub fn master_role(self) -> &'static str {
        match self {
            Replication::None | Replication::AsyncMaster => "ASYNC_MASTER",
            Replication::SyncMaster => "SYNC_MASTER",
        }
    }
}

/// Everything that shapes the load; recorded verbatim in every result file.
#[derive(Clone, Debug, Args, Serialize)]
pub struct WorkloadArgs {
    /// Topic name; with `--topics N > 1`, topics are `<topic>-0` … `<topic>-(N-1)`.
    #[arg(long, default_value = "BenchmarkTest")]
    pub topic: String,
    /// Number of topics the producers spread over.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub topics: u32,
    /// Queues per topic (used when the load generator creates the topic).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub queues: u32,
    /// Body size of every message, at least the 32-byte load-generator header.
    #[arg(long, default_value_t = 128)]
    pub message_size_bytes: usize,
    /// Concurrent senders (RocketMQ benchmark `-w`), spread over the connections.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub producers: u32,
    /// Producer client instances, each with its own connection to each broker; producers are
    /// spread over them round robin, and connections over the executors.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,
    #[arg(long, value_enum, default_value_t = SendMode::Sync)]
    pub mode: SendMode,
    /// Messages per batch send (`--mode batch`).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// `--mode transaction`: percent of transactions rolled back by the local transaction.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub tx_rollback_percent: u8,
    /// `--mode transaction`: percent left UNKNOWN, resolved (committed) by the broker's check-back.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub tx_unknown_percent: u8,
    /// Outstanding sends per producer in `--mode async`.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,
    /// Open loop: total messages per second across all producers. Latency is measured from each
    /// message's intended send time. Without it the run is closed loop (as fast as it goes).
    #[arg(long)]
    pub rate: Option<u64>,
    /// Measured seconds after the warm-up.
    #[arg(long, default_value_t = 20, conflicts_with = "messages")]
    pub duration_secs: u64,
    /// Stop after this many measured messages instead of after `--duration-secs`.
    #[arg(long)]
    pub messages: Option<u64>,
    /// Seconds of load before measurement starts; excluded from every figure.
    #[arg(long, default_value_t = 3)]
    pub warmup_secs: u64,
    /// Push-consumer instances (each its own connection) in one consumer group; 0 for none.
    #[arg(long, default_value_t = 2)]
    pub consumers: u32,
    /// Messages asked for per pull (RocketMQ `pullBatchSize`); also the most a consumer hands
    /// to the load generator at once. Default: RocketMQ's 32, and 128 with `--mode batch` and
    /// `--mode async`, whose producers outrun one pull of 32 in flight per queue (a quickstart
    /// broker then allows 128 per pull with `maxTransferCountOnMessageInMemory`; others may cap
    /// it).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub pull_batch_size: Option<u32>,
    /// Consumer group; a fresh `loadgen_<run id>` group when not given.
    #[arg(long)]
    pub group: Option<String>,
    /// Set a unique key on every message (RocketMQ benchmark `-k`).
    #[arg(long)]
    pub keys: bool,
    /// Tag messages with one of this many tags, `TagA-0` … (RocketMQ benchmark `-l`); 0 for none.
    #[arg(long, default_value_t = 0)]
    pub tags: u32,
    /// Give every message a property `p` with one of this many values, `0` … (the sequence
    /// modulo this); 0 for none. With `--props 10 --sql "p = 0"`, 10 % of messages match.
    #[arg(long, default_value_t = 0)]
    pub props: u32,
    /// Consumers subscribe with this SQL92 expression instead of `*` (the broker needs
    /// `enablePropertyFilter=true`; the quickstart broker has it).
    #[arg(long)]
    pub sql: Option<String>,
    /// Consumers subscribe with this TAG expression instead of `*` (e.g. `TagA-0` with
    /// `--tags 10` for 10 % of messages); the broker filters by the consume queue's tag hash.
    #[arg(long, conflicts_with = "sql")]
    pub tag_filter: Option<String>,
    /// After the load, drain the whole backlog with a fresh group per drain, alternately with
    /// the `--sql`/`--tag-filter` subscription and with none (two drains each, filtered
    /// first), and report records scanned and delivered per second of each: the filtered
    /// against the unfiltered pull throughput, same run. Usually with `--consumers 0`.
    #[arg(long)]
    pub filter_compare: bool,
    /// Orderly workload: each producer sends its messages under 8 keys, each key's messages to
    /// the queue the key hashes to (Java's `SelectMessageQueueByHash`), one topic per producer;
    /// consumers are orderly (queues locked on the broker, each consumed serially in offset
    /// order). With `--verify`, the report checks every key was consumed in send order.
    #[arg(long)]
    pub orderly: bool,
    /// Extra consumers of the group that join at about a third of the run and leave (clean
    /// shutdown) from two thirds on, once each has consumed something; producers pause at half
    /// way until every joined consumer holds a queue. So queues change hands during the load.
    #[arg(long, default_value_t = 0)]
    pub churn_consumers: u32,
    /// Send every message with this delay level (DELAY property, 1..=18 by default); the
    /// report adds delivery lateness (due → stored, due → consumed).
    #[arg(long, conflicts_with = "timer_delay_ms", value_parser = clap::value_parser!(u32).range(1..))]
    pub delay_level: Option<u32>,
    /// Send every message as a RocketMQ 5 timer due this many milliseconds after the broker
    /// receives it (TIMER_DELAY_MS); the report adds delivery lateness.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub timer_delay_ms: Option<u64>,
    /// Check that every acknowledged message is consumed, once, with an intact body.
    #[arg(long)]
    pub verify: bool,
    /// Seconds consumers may take after the producers stop to catch up.
    #[arg(long, default_value_t = 15)]
    pub drain_secs: u64,
    /// Seconds setup may take: broker registration, topic routes, consumer assignment.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub setup_timeout_secs: u64,
    /// Send timeout per request.
    #[arg(long, default_value_t = 3_000)]
    pub send_timeout_ms: u64,
    /// Executors of the load generator: a count (unpinned) or a CPU list such as `0-1` or `0,2`
    /// (one pinned executor per CPU). Default: one per online CPU, unpinned; for `quickstart`,
    /// one per CPU its brokers' shards leave free, at least one.
    #[arg(long)]
    pub cpus: Option<String>,
    #[command(flatten)]
    #[serde(flatten)]
    pub results: ResultArgs,
}

/// Where a measurement's results go and what they say about it, and the ACL account it signs
/// with: the flags `run`, `quickstart` and the other measuring subcommands share.
#[derive(Clone, Debug, Args, Serialize)]
pub struct ResultArgs {
    /// Directory for the JSON result and markdown summary; `none` writes nothing. Default:
    /// `ringmq-results` in the system's temporary directory, so a run never writes into the
    /// checkout it was started from.
    #[arg(long, default_value_os_t = default_results_dir())]
    pub results_dir: PathBuf,
    /// Short name of the run, used in result file names.
    #[arg(long)]
    pub label: Option<String>,
    /// Describes the system under test in the results (e.g. "rocketmq-5.3.3 ASYNC_FLUSH");
    /// for a quickstart broker this is filled in from its configuration.
    #[arg(long)]
    pub target_description: Option<String>,
    /// ACL 1.0 access key: with a secret key, every request is signed. Default:
    /// `RINGMQ_ACCESS_KEY` from the environment.
    #[arg(long)]
    pub access_key: Option<String>,
    /// ACL 1.0 secret key (never written to the results). Default: `RINGMQ_SECRET_KEY`.
    #[arg(long)]
    #[serde(skip)]
    pub secret_key: Option<SecretKey>,
}

impl ResultArgs {
    /// The ACL account to sign with, from the flags or the environment.
    pub fn credentials(&self) -> Option<ringmq_client::Credentials> {
        ringmq_client::Credentials::from_flags_or_env(
            self.access_key.as_deref(),
            self.secret_key.as_ref().map(|s| s.0.as_str()),
        )
    }

    /// Rejects a label that cannot be part of a file name.
    pub fn validate(&self) -> Result<(), WorkloadError> {
        match &self.label {
            Some(label) if !valid_label(label) => Err(WorkloadError::BadLabel(label.clone())),
            _ => Ok(()),
        }
    }
}

/// A secret key flag: `Debug` hides it, so a logged `WorkloadArgs` does not show it.
#[derive(Clone)]
pub struct SecretKey(pub String);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<hidden>")
    }
}

impl std::str::FromStr for SecretKey {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(SecretKey(s.to_string()))
    }
}

#[derive(Clone, Debug, Args)]
pub struct RunArgs {
    /// Name server address(es), `host:port[;host:port]`.
    #[arg(long, default_value = "127.0.0.1:9876")]
    pub namesrv: String,
    /// Also report the CPU per message of a broker running on this host, by its PID.
    #[arg(long, conflicts_with = "broker_process")]
    pub broker_pid: Option<u32>,
    /// The same by process name (comma-separated alternatives, e.g.
    /// `ringmq-broker,rocketmq-broker-rust`): exactly one running process may match.
    #[arg(long, env = "RINGMQ_LOADGEN_BROKER_PROCESS", value_delimiter = ',')]
    pub broker_process: Vec<String>,
    #[command(flatten)]
    pub workload: WorkloadArgs,
}

/// What every measuring subcommand besides `run` needs: where the system is, where results go.
#[derive(Clone, Debug, Args, Serialize)]
pub struct ToolArgs {
    /// Name server address(es), `host:port[;host:port]`.
    #[arg(long, default_value = "127.0.0.1:9876")]
    pub namesrv: String,
    #[command(flatten)]
    #[serde(flatten)]
    pub results: ResultArgs,
}

/// Default time bound of a catch-up drain: 20 GB at 25 MB/s.
pub const CATCH_UP_DEFAULT_TIMEOUT_SECS: u64 = 900;

/// RocketMQ's default `pullBatchSize` (and its broker's `maxTransferCountOnMessageInMemory`).
pub const ROCKETMQ_PULL_BATCH_SIZE: u32 = 32;
/// The pull batch of consumers in the modes whose producers keep many sends in flight
/// (`batch`, `async`). One pull is in flight per queue, and at those rates its round trip waits
/// behind the sends on the broker's shard, so 32 per round trip falls behind: with batch
/// producers at 640k msg/s two consumers on 8 queues took about 240k
/// (`results/batch-pull-size-2026-12-07.md`), with async producers at 210k about 85k
/// (`results/async-pull-size-2026-12-07.md`). With 128 they keep up in both.
pub const BATCH_MODE_PULL_BATCH_SIZE: u32 = 128;

#[derive(Clone, Debug, Args, Serialize)]
pub struct CatchUpArgs {
    /// Topic to drain; with `--topics N > 1`, topics `<topic>-0` … `<topic>-(N-1)` (as `run`).
    #[arg(long, default_value = "BenchmarkTest")]
    pub topic: String,
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub topics: u32,
    /// Messages asked for per pull (RocketMQ's `pullBatchSize` default). Brokers cap it: by
    /// default ringmq at 32 messages and 256 KiB (`maxTransferCountOnMessageInMemory`,
    /// `maxTransferBytesOnMessageInMemory`), as Java RocketMQ does for messages in memory (8
    /// and 64 KiB from disk); a larger value only helps a broker that allows more.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub pull_batch_size: u32,
    /// Drain only the newest N messages, taken from every queue in proportion to what it
    /// holds: a consumer group lagging N messages behind. Default: the whole backlog.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub last_messages: Option<u64>,
    /// Consumer group; it must have no offsets on these topics. Default: a fresh
    /// `loadgen_catchup_<random>`.
    #[arg(long)]
    pub group: Option<String>,
    /// The drain stops after this long and is reported incomplete.
    #[arg(long, default_value_t = CATCH_UP_DEFAULT_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_secs: u64,
    /// Also report the CPU a broker on this host spent during the drain, by its PID (the
    /// consumer's own CPU is always reported: near one core busy means it was the limit).
    #[arg(long)]
    pub broker_pid: Option<u32>,
    #[command(flatten)]
    pub tool: ToolArgs,
}

/// Default lookups of `query-keys`: enough for a p99 from 10 samples above it.
pub const QUERY_KEYS_DEFAULT_LOOKUPS: u64 = 1_000;
/// Default seed of the key sample, so repeated measurements look up the same keys.
pub const QUERY_KEYS_DEFAULT_SEED: u64 = 15;
/// Default `maxNum` of each QUERY_MESSAGE (RocketMQ's `mqadmin queryMsgByKey` asks 64; keys
/// of these runs are unique, so one message matches).
pub const QUERY_KEYS_DEFAULT_MAX: i32 = 32;

#[derive(Clone, Debug, Args, Serialize)]
pub struct QueryKeysArgs {
    /// JSON result of a `ringmq-loadgen run --keys --messages N` whose messages are in the
    /// store; repeat it for several runs (keys are drawn uniformly from all of them).
    #[arg(long = "keys-from", required = true)]
    pub keys_from: Vec<PathBuf>,
    /// Lookups to time, each of a different key, one at a time.
    #[arg(long, default_value_t = QUERY_KEYS_DEFAULT_LOOKUPS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub lookups: u64,
    /// Seed of the key sample.
    #[arg(long, default_value_t = QUERY_KEYS_DEFAULT_SEED)]
    pub seed: u64,
    /// `maxNum` of each QUERY_MESSAGE.
    #[arg(long, default_value_t = QUERY_KEYS_DEFAULT_MAX,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub max_per_lookup: i32,
    /// The lookups stop after this long and are reported incomplete.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_secs: u64,
    #[command(flatten)]
    pub tool: ToolArgs,
}

#[derive(Clone, Debug, Args)]
pub struct QuickstartArgs {
    /// The broker's flush mode.
    #[arg(long, value_enum, default_value_t = FlushMode::AsyncFlush)]
    pub flush: FlushMode,
    /// The broker's `ringmqCpus` (executor count).
    #[arg(long, default_value_t = 1)]
    pub broker_cpus: u32,
    /// Also start a slave (brokerId 1, same shard count) of a master with this role. With
    /// `--verify`, the run also checks the slave's commit logs equal the master's byte for byte.
    #[arg(long, value_enum, default_value_t = Replication::None)]
    pub replication: Replication,
    /// Keep the temporary directory (broker store and process logs) after the run.
    #[arg(long)]
    pub keep_dir: bool,
    #[command(flatten)]
    pub workload: WorkloadArgs,
}

/// CPUs this process may run on (1 if the system cannot tell).
pub fn online_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl QuickstartArgs {
    /// The load generator's executors when `--cpus` is not given: the CPUs the local brokers'
    /// shards leave free (a slave has as many shards as its master), at least one. On two
    /// cores with one broker shard that is one executor: a second would take time from the
    /// broker's core, which measured lower throughput and higher open-loop tails
    /// (`results/quickstart-executors-2026-12-08.md`).
    pub fn default_loadgen_executors(&self, online_cpus: usize) -> usize {
        let brokers = if self.replication == Replication::None {
            1
        } else {
            2
        };
        let broker_cores = self.broker_cpus as usize * brokers;
        online_cpus.saturating_sub(broker_cores).max(1)
    }
}

/// A workload flag combination that cannot run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WorkloadError {
    #[error(
        "--message-size-bytes {0} is below the {BODY_HEADER_BYTES}-byte load-generator header"
    )]
    MessageTooSmall(usize),
    #[error("--rate must be positive")]
    ZeroRate,
    #[error("--connections {connections} exceeds --producers {producers}: a connection would carry no producer")]
    MoreConnectionsThanProducers { connections: u32, producers: u32 },
    #[error("--verify needs at least one consumer")]
    VerifyWithoutConsumers,
    #[error("--verify cannot check --mode oneway: oneway sends are never acknowledged")]
    VerifyOneway,
    #[error("--tx-rollback-percent plus --tx-unknown-percent exceeds 100")]
    TransactionMix,
    #[error("--verify cannot check --sql or --tag-filter: the messages the filter rejects are never consumed")]
    VerifySql,
    #[error("--filter-compare needs --sql or --tag-filter")]
    FilterCompareWithoutFilter,
    #[error("--orderly --verify needs --mode sync: only sync sends keep each key's order")]
    OrderlyVerifyNeedsSync,
    #[error("--churn-consumers needs --consumers > 0")]
    ChurnWithoutConsumers,
    #[error("--duration-secs must be positive")]
    ZeroDuration,
    #[error("invalid --cpus {0:?}: expected a count such as 2 or a list such as 0-1 or 0,2")]
    BadCpus(String),
    #[error("invalid --label {0:?}: use letters, digits, '-', '_' and '.'")]
    BadLabel(String),
}

/// Where the load generator's executors run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum ExecutorPlacement {
    /// This many executors, placed by the kernel.
    Unpinned(usize),
    /// One executor pinned to each listed CPU.
    Pinned(Vec<usize>),
}

impl ExecutorPlacement {
    pub fn executor_count(&self) -> usize {
        match self {
            ExecutorPlacement::Unpinned(n) => *n,
            ExecutorPlacement::Pinned(cpus) => cpus.len(),
        }
    }
}

/// Parses `--cpus`: a bare number is a count, `a-b` and `a,b,c` (mixable) are CPU lists.
pub fn parse_cpus(spec: &str) -> Result<ExecutorPlacement, WorkloadError> {
    let bad = || WorkloadError::BadCpus(spec.to_string());
    let spec = spec.trim();
    if !spec.contains(['-', ',']) {
        let count: usize = spec.parse().map_err(|_| bad())?;
        return if count == 0 {
            Err(bad())
        } else {
            Ok(ExecutorPlacement::Unpinned(count))
        };
    }
    let mut cpus = Vec::new();
    for part in spec.split(',') {
        match part.split_once('-') {
            Some((lo, hi)) => {
                let lo: usize = lo.trim().parse().map_err(|_| bad())?;
                let hi: usize = hi.trim().parse().map_err(|_| bad())?;
                if lo > hi || hi - lo > 4_096 {
                    return Err(bad());
                }
                cpus.extend(lo..=hi);
            }
            None => cpus.push(part.trim().parse().map_err(|_| bad())?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(ExecutorPlacement::Pinned(cpus))
}

impl WorkloadArgs {
    /// Messages the consumers ask for per pull (see `--pull-batch-size`).
    pub fn pull_batch_size(&self) -> u32 {
        self.pull_batch_size.unwrap_or(match self.mode {
            SendMode::Batch | SendMode::Async => BATCH_MODE_PULL_BATCH_SIZE,
            _ => ROCKETMQ_PULL_BATCH_SIZE,
        })
    }

    /// Rejects combinations that cannot run, with the flag to change.
    pub fn validate(&self) -> Result<(), WorkloadError> {
        if self.message_size_bytes < BODY_HEADER_BYTES {
            return Err(WorkloadError::MessageTooSmall(self.message_size_bytes));
        }
        if self.rate == Some(0) {
            return Err(WorkloadError::ZeroRate);
        }
        if self.connections > self.producers {
            return Err(WorkloadError::MoreConnectionsThanProducers {
                connections: self.connections,
                producers: self.producers,
            });
        }
        if self.verify && self.consumers == 0 {
            return Err(WorkloadError::VerifyWithoutConsumers);
        }
        if self.verify && self.mode == SendMode::Oneway {
            return Err(WorkloadError::VerifyOneway);
        }
        if u32::from(self.tx_rollback_percent) + u32::from(self.tx_unknown_percent) > 100 {
            return Err(WorkloadError::TransactionMix);
        }
        if self.verify && (self.sql.is_some() || self.tag_filter.is_some()) {
            return Err(WorkloadError::VerifySql);
        }
        if self.filter_compare && self.sql.is_none() && self.tag_filter.is_none() {
            return Err(WorkloadError::FilterCompareWithoutFilter);
        }
        if self.verify && self.orderly && self.mode != SendMode::Sync {
            return Err(WorkloadError::OrderlyVerifyNeedsSync);
        }
        if self.churn_consumers > 0 && self.consumers == 0 {
            return Err(WorkloadError::ChurnWithoutConsumers);
        }
        if self.messages.is_none() && self.duration_secs == 0 {
            return Err(WorkloadError::ZeroDuration);
        }
        self.results.validate()?;
        self.placement()?;
        Ok(())
    }

    /// The executors to start.
    pub fn placement(&self) -> Result<ExecutorPlacement, WorkloadError> {
        match &self.cpus {
            Some(spec) => parse_cpus(spec),
            None => Ok(ExecutorPlacement::Unpinned(online_cpus())),
        }
    }

    /// The topic names, in order.
    pub fn topic_names(&self) -> Vec<String> {
        topic_names(&self.topic, self.topics)
    }

    /// Messages carried by one send.
    pub fn messages_per_send(&self) -> u32 {
        if self.mode == SendMode::Batch {
            self.batch_size
        } else {
            1
        }
    }

    /// `--mode transaction`: what the local transaction of message `(producer, sequence)`
    /// decides. A pure function of the id, so the consumer side knows which ones must never
    /// appear, and the check-back answers without state.
    pub fn tx_outcome(&self, producer_id: u32, sequence: u64) -> TxOutcome {
        // A multiplicative hash spreads the mix evenly over sequences and producers.
        let h = (sequence.wrapping_add(u64::from(producer_id) << 40))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            >> 32;
        let bucket = (h % 100) as u8;
        if bucket < self.tx_rollback_percent {
            TxOutcome::Rollback
        } else if bucket < self.tx_rollback_percent + self.tx_unknown_percent {
            TxOutcome::Unknown
        } else {
            TxOutcome::Commit
        }
    }

    pub fn setup_timeout(&self) -> Duration {
        Duration::from_secs(self.setup_timeout_secs)
    }

    pub fn warmup(&self) -> Duration {
        Duration::from_secs(self.warmup_secs)
    }

    /// The measured duration, or `None` for a run bounded by `--messages`.
    pub fn duration(&self) -> Option<Duration> {
        match self.messages {
            Some(_) => None,
            None => Some(Duration::from_secs(self.duration_secs)),
        }
    }
}

/// A label is safe in a file name: letters, digits, '-', '_' and '.'.
fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// `topic` alone, or `topic-0` … `topic-(count-1)` for more than one.
pub fn topic_names(topic: &str, count: u32) -> Vec<String> {
    if count <= 1 {
        vec![topic.to_string()]
    } else {
        (0..count).map(|i| format!("{topic}-{i}")).collect()
    }
}

/// Where results go unless `--results-dir` says otherwise.
pub fn default_results_dir() -> PathBuf {
    std::env::temp_dir().join("ringmq-results")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("ringmq-loadgen").chain(args.iter().copied()))
    }

    fn workload(args: &[&str]) -> WorkloadArgs {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        match parse(&all).expect("parses").command {
            Command::Run(run) => run.workload,
            _ => unreachable!("parsed a run"),
        }
    }

    fn quickstart(args: &[&str]) -> QuickstartArgs {
        let mut all = vec!["quickstart"];
        all.extend_from_slice(args);
        match parse(&all).expect("parses").command {
            Command::Quickstart(q) => q,
            _ => unreachable!("parsed a quickstart"),
        }
    }

    #[test]
    fn the_quickstart_leaves_the_brokers_cores_to_the_brokers() {
        let default = quickstart(&[]);
        assert_eq!(default.default_loadgen_executors(2), 1);
        assert_eq!(default.default_loadgen_executors(8), 7);
        assert_eq!(default.default_loadgen_executors(1), 1, "at least one");
        let two_shards = quickstart(&["--broker-cpus", "2"]);
        assert_eq!(two_shards.default_loadgen_executors(8), 6);
        let with_slave = quickstart(&["--broker-cpus", "2", "--replication", "SYNC_MASTER"]);
        assert_eq!(with_slave.default_loadgen_executors(8), 4);
        assert_eq!(with_slave.default_loadgen_executors(2), 1);
    }

    #[test]
    fn acl_flags_sign_and_the_secret_stays_out_of_results_and_logs() {
        let w = workload(&["--access-key", "RocketMQ", "--secret-key", "12345678"]);
        let credentials = w.results.credentials().expect("both halves given");
        assert_eq!(credentials.access_key, "RocketMQ");
        assert_eq!(credentials.secret_key, "12345678");
        let recorded = serde_json::to_string(&w).unwrap();
        assert!(recorded.contains("RocketMQ"));
        assert!(!recorded.contains("12345678"));
        assert!(!format!("{w:?}").contains("12345678"));
    }

    #[test]
    fn defaults_match_the_documented_workload() {
        let w = workload(&[]);
        assert_eq!(w.message_size_bytes, 128);
        assert_eq!(w.producers, 64);
        assert_eq!(w.mode, SendMode::Sync);
        assert_eq!(w.rate, None);
        assert_eq!(w.duration(), Some(Duration::from_secs(20)));
        assert_eq!(w.topic_names(), vec!["BenchmarkTest".to_string()]);
        assert_eq!(w.validate(), Ok(()));
        assert_eq!(w.pull_batch_size(), ROCKETMQ_PULL_BATCH_SIZE);
    }

    #[test]
    fn batch_consumers_pull_more_per_round_trip_unless_told() {
        let batch = workload(&["--mode", "batch"]);
        assert_eq!(batch.pull_batch_size(), BATCH_MODE_PULL_BATCH_SIZE);
        let told = workload(&["--mode", "batch", "--pull-batch-size", "32"]);
        assert_eq!(told.pull_batch_size(), 32);
        let sync = workload(&["--pull-batch-size", "64"]);
        assert_eq!(sync.pull_batch_size(), 64);
        let async_sends = workload(&["--mode", "async"]);
        assert_eq!(async_sends.pull_batch_size(), BATCH_MODE_PULL_BATCH_SIZE);
        let oneway = workload(&["--mode", "oneway"]);
        assert_eq!(oneway.pull_batch_size(), ROCKETMQ_PULL_BATCH_SIZE);
    }

    #[test]
    fn all_flags_parse() {
        let cli = parse(&[
            "run",
            "--namesrv",
            "10.0.0.1:9876",
            "--topic",
            "T",
            "--topics",
            "3",
            "--queues",
            "16",
            "--message-size-bytes",
            "1024",
            "--producers",
            "64",
            "--connections",
            "64",
            "--mode",
            "batch",
            "--batch-size",
            "32",
            "--rate",
            "100000",
            "--messages",
            "5000",
            "--warmup-secs",
            "1",
            "--consumers",
            "4",
            "--keys",
            "--tags",
            "5",
            "--verify",
            "--results-dir",
            "/tmp/r",
            "--cpus",
            "0-1",
            "--label",
            "x.1",
        ])
        .expect("parses");
        let Command::Run(run) = cli.command else {
            panic!("not a run")
        };
        assert_eq!(run.namesrv, "10.0.0.1:9876");
        let w = run.workload;
        assert_eq!(w.topic_names(), vec!["T-0", "T-1", "T-2"]);
        assert_eq!(w.messages_per_send(), 32);
        assert_eq!(w.duration(), None);
        assert_eq!(w.placement(), Ok(ExecutorPlacement::Pinned(vec![0, 1])));
        assert_eq!(w.validate(), Ok(()));
    }

    #[test]
    fn duration_and_message_count_conflict() {
        assert!(parse(&["run", "--duration-secs", "5", "--messages", "10"]).is_err());
    }

    #[test]
    fn unknown_mode_is_rejected_by_the_parser() {
        assert!(parse(&["run", "--mode", "fast"]).is_err());
        assert!(parse(&["run", "--producers", "0"]).is_err());
    }

    #[test]
    fn impossible_combinations_name_the_flag() {
        let cases: [(&[&str], WorkloadError); 11] = [
            (
                &["--message-size-bytes", "8"],
                WorkloadError::MessageTooSmall(8),
            ),
            (&["--rate", "0"], WorkloadError::ZeroRate),
            (
                &["--producers", "2", "--connections", "4"],
                WorkloadError::MoreConnectionsThanProducers {
                    connections: 4,
                    producers: 2,
                },
            ),
            (
                &["--verify", "--consumers", "0"],
                WorkloadError::VerifyWithoutConsumers,
            ),
            (
                &["--verify", "--mode", "oneway"],
                WorkloadError::VerifyOneway,
            ),
            (&["--duration-secs", "0"], WorkloadError::ZeroDuration),
            (&["--label", "a/b"], WorkloadError::BadLabel("a/b".into())),
            (
                &["--orderly", "--verify", "--mode", "async"],
                WorkloadError::OrderlyVerifyNeedsSync,
            ),
            (
                &["--churn-consumers", "1", "--consumers", "0"],
                WorkloadError::ChurnWithoutConsumers,
            ),
            (
                &["--filter-compare"],
                WorkloadError::FilterCompareWithoutFilter,
            ),
            (
                &["--verify", "--tag-filter", "TagA-0"],
                WorkloadError::VerifySql,
            ),
        ];
        for (args, expected) in cases {
            assert_eq!(workload(args).validate(), Err(expected), "{args:?}");
        }
    }

    #[test]
    fn cpu_specs() {
        assert_eq!(parse_cpus("2"), Ok(ExecutorPlacement::Unpinned(2)));
        assert_eq!(parse_cpus("1-1"), Ok(ExecutorPlacement::Pinned(vec![1])));
        assert_eq!(
            parse_cpus("0,2-3,2"),
            Ok(ExecutorPlacement::Pinned(vec![0, 2, 3]))
        );
        for bad in ["0", "", "a", "3-1", "1,,2", "-"] {
            assert!(parse_cpus(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn quickstart_takes_flush_mode_and_workload() {
        let cli = parse(&[
            "quickstart",
            "--flush",
            "SYNC_FLUSH",
            "--duration-secs",
            "5",
        ])
        .expect("parses");
        let Command::Quickstart(q) = cli.command else {
            panic!("not a quickstart")
        };
        assert_eq!(q.flush, FlushMode::SyncFlush);
        assert_eq!(q.workload.duration_secs, 5);
        let alias = parse(&["quickstart", "--flush", "sync"]).expect("alias parses");
        let Command::Quickstart(q) = alias.command else {
            panic!("not a quickstart")
        };
        assert_eq!(q.flush, FlushMode::SyncFlush);
    }
}
