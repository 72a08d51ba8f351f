//! `catch-up`: how fast a lagging consumer group drains a backlog that is already stored.
//!
//! Reads every queue's end offset, then one fresh group drains the whole backlog (or the
//! newest `--last-messages` of it) with the shared [`crate::drain`] (one pipelined pull loop
//! per queue, `--pull-batch-size` per pull, the listener only counting). The rates are of the
//! messages delivered and of their body bytes; MB are 10^6 bytes. Nothing but the wire
//! protocol is used, so the same command measures ringmq and any other RocketMQ broker.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use glommio::{LocalExecutorBuilder, Placement};
use ringmq_client::{Admin, ClientConfig, MessageSelector};
use serde::Serialize;

use crate::cli::{topic_names, CatchUpArgs};
use crate::clock;
use crate::drain::{self, DrainOutcome, DrainSpec, QueueRange};
use crate::procstat::{usage_between, CpuReading, CpuUsage};

/// Registered I/O memory of the drain's executor (no DMA file I/O here).
const IO_MEMORY_BYTES: usize = 1 << 20;

/// The result of one catch-up drain, as printed and written.
#[derive(Clone, Debug, Serialize)]
pub struct CatchUpResult {
    pub tool: String,
    pub tool_version: String,
    pub label: String,
    pub started_at_utc: String,
    pub settings: CatchUpArgs,
    pub group: String,
    pub topics: Vec<String>,
    pub queues: usize,
    /// Queue entries of the topics when the drain started.
    pub stored_messages: u64,
    /// `whole backlog` or `newest N messages`.
    pub scope: String,
    pub drain: DrainOutcome,
    pub delivered_per_sec: f64,
    /// Body bytes delivered per second, in MB (10^6 bytes).
    pub body_mb_per_sec: f64,
    /// The delivered messages as RocketMQ V1 records (header, body, topic, properties) per
    /// second, in MB: about what the broker's log holds for them.
    pub record_mb_per_sec: f64,
    pub mean_body_bytes: f64,
    /// CPU of this process (the consumer) and of `--broker-pid` during the drain.
    pub cpu: CpuUsage,
}

/// The newest `n` entries of `ranges`, taken from each queue in proportion to its length
/// (rounded down, so at most `n`; a queue never gives more than it holds).
pub fn newest(ranges: &[QueueRange], n: u64) -> Vec<QueueRange> {
    let total = drain::backlog(ranges);
    if n >= total {
        return ranges.to_vec();
    }
    ranges
        .iter()
        .map(|r| {
            let share = u128::from(r.len()) * u128::from(n) / u128::from(total);
            QueueRange {
                start: r.end - share as i64,
                ..r.clone()
            }
        })
        .collect()
}

/// `ringmq-loadgen catch-up`: runs the drain on an executor of its own, prints the report
/// and writes the JSON result.
pub fn command(args: CatchUpArgs) -> anyhow::Result<CatchUpResult> {
    args.tool.results.validate()?;
    let started_unix_secs = clock::unix_now_secs();
    let moved = args.clone();
    let result = LocalExecutorBuilder::new(Placement::Unbound)
        .name("loadgen-catch-up")
        .io_memory(IO_MEMORY_BYTES)
        .make()
        .map_err(|e| anyhow::anyhow!("starting the catch-up executor: {e}"))?
        .run(async move { measure(moved, started_unix_secs).await })?;
    print!("{}", result.text_report());
    if let Some(path) = write_json(
        &args.tool.results.results_dir,
        &result.file_stem(started_unix_secs),
        &result,
    )? {
        println!("results  {}", path.display());
    }
    Ok(result)
}

async fn measure(args: CatchUpArgs, started_unix_secs: u64) -> anyhow::Result<CatchUpResult> {
    let topics = topic_names(&args.topic, args.topics);
    let mut config = ClientConfig::new(&args.tool.namesrv)?;
    config.credentials = args.tool.results.credentials();
    let admin = Admin::new(config)?;
    let whole = drain::whole_queues(&admin, &topics).await?;
    admin.shutdown();
    let stored_messages = drain::backlog(&whole);
    let (ranges, scope) = match args.last_messages {
        Some(n) if n < stored_messages => (newest(&whole, n), format!("newest {n} messages")),
        _ => (whole, "whole backlog".to_string()),
    };
    let group = (args.group.clone())
        .unwrap_or_else(|| format!("loadgen_catchup_{:08x}", rand::random::<u32>()));
    let spec = DrainSpec {
        namesrv: &args.tool.namesrv,
        credentials: args.tool.results.credentials(),
        group: &group,
        topics: &topics,
        ranges: &ranges,
        pull_batch_size: args.pull_batch_size,
        limit: Duration::from_secs(args.timeout_secs),
    };
    drain::commit_starts(&spec).await?;
    let before = CpuReading::now(args.broker_pid);
    let outcome = drain::drain(&spec, &MessageSelector::by_tag("*")).await?;
    let cpu = usage_between(
        &before,
        &CpuReading::now(args.broker_pid),
        outcome.secs,
        outcome.delivered,
    );
    Ok(CatchUpResult {
        tool: "ringmq-loadgen".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        label: (args.tool.results.label.clone()).unwrap_or_else(|| args.topic.clone()),
        started_at_utc: clock::iso8601_utc(started_unix_secs),
        group,
        queues: ranges.len(),
        topics,
        stored_messages,
        scope,
        delivered_per_sec: outcome.delivered_per_sec(),
        body_mb_per_sec: outcome.body_mb_per_sec(),
        record_mb_per_sec: outcome.record_mb_per_sec(),
        mean_body_bytes: drain::per_sec(outcome.body_bytes as f64, outcome.delivered as f64),
        drain: outcome,
        cpu,
        settings: args,
    })
}

impl CatchUpResult {
    /// The printed report.
    pub fn text_report(&self) -> String {
        let d = &self.drain;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "catch-up {} ({} queues, {} stored): {}, fresh group {}, pull batch {}",
            self.topics.join(","),
            self.queues,
            self.stored_messages,
            self.scope,
            self.group,
            self.settings.pull_batch_size
        );
        let first = d
            .first_delivery_secs
            .map_or("no delivery".to_string(), |s| {
                format!("first delivery after {s:.3} s")
            });
        let _ = writeln!(
            out,
            "drained  {} of {} messages in {:.3} s ({first}){}",
            d.delivered,
            d.scanned,
            d.secs,
            if d.complete {
                ""
            } else {
                ", INCOMPLETE: time limit reached"
            }
        );
        let _ = writeln!(
            out,
            "rate     {:.0} msg/s, {:.1} MB/s of message bodies (mean {:.0} B), {:.1} MB/s as \
             stored records (header, body, topic, properties); MB = 10^6 B",
            self.delivered_per_sec,
            self.body_mb_per_sec,
            self.mean_body_bytes,
            self.record_mb_per_sec
        );
        let c = &self.cpu;
        let broker = (c.broker_cores_busy).map_or(String::new(), |b| format!("; broker {b:.2}"));
        let _ = writeln!(
            out,
            "cpu      cores busy: consumer (this process) {:.2} ({:.2} us/msg){broker}; load \
             average {} -> {}",
            c.loadgen_cores_busy,
            c.loadgen_cpu_us_per_message,
            load(c.load_average_start),
            load(c.load_average_end)
        );
        out
    }

    /// `catch-up-<compact UTC>-<label>`.
    pub fn file_stem(&self, started_unix_secs: u64) -> String {
        format!(
            "catch-up-{}-{}",
            clock::compact_utc(started_unix_secs),
            self.label
        )
    }
}

/// The 1-minute load average, or `?`.
fn load(average: Option<[f64; 3]>) -> String {
    average.map_or("?".to_string(), |a| format!("{:.2}", a[0]))
}

/// Writes `value` as `<dir>/<stem>.json` unless `dir` is `none`; returns the path written.
pub fn write_json<T: Serialize>(
    dir: &Path,
    stem: &str,
    value: &T,
) -> anyhow::Result<Option<PathBuf>> {
    if dir == Path::new("none") {
        return Ok(None);
    }
    crate::report::write_json_file(dir, stem, value).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::drain::tests::range;
    use clap::Parser;

    fn args(extra: &[&str]) -> CatchUpArgs {
        let mut all = vec!["ringmq-loadgen", "catch-up", "--topic", "FillTest"];
        all.extend_from_slice(extra);
        match Cli::try_parse_from(all).expect("parses").command {
            Command::CatchUp(a) => a,
            _ => unreachable!("parsed a catch-up"),
        }
    }

    #[test]
    fn the_newest_part_is_taken_in_proportion_and_never_exceeds_a_queue() {
        let ranges = [range(0, 0, 300), range(1, 0, 100), range(2, 50, 50)];
        let part = newest(&ranges, 200);
        assert_eq!(part[0].start, 150);
        assert_eq!(part[1].start, 50);
        assert_eq!(part[2].start, 50, "an empty queue stays empty");
        assert_eq!(drain::backlog(&part), 200);
        assert_eq!(
            newest(&ranges, 1_000),
            ranges.to_vec(),
            "more than stored: all of it"
        );
    }

    #[test]
    fn flags_parse_with_their_defaults() {
        let a = args(&[]);
        assert_eq!(a.pull_batch_size, 32);
        assert_eq!(a.last_messages, None);
        assert_eq!(a.timeout_secs, crate::cli::CATCH_UP_DEFAULT_TIMEOUT_SECS);
        let a = args(&[
            "--last-messages",
            "1000",
            "--pull-batch-size",
            "64",
            "--label",
            "x",
        ]);
        assert_eq!(a.last_messages, Some(1000));
        assert_eq!(a.pull_batch_size, 64);
        assert!(a.tool.results.validate().is_ok());
        assert!(args(&["--label", "a b"]).tool.results.validate().is_err());
        let bad = ["--last-messages", "0"];
        let mut all = vec!["ringmq-loadgen", "catch-up"];
        all.extend_from_slice(&bad);
        assert!(Cli::try_parse_from(all).is_err());
    }

    #[test]
    fn the_report_says_which_bytes_and_flags_an_incomplete_drain() {
        let drain = DrainOutcome {
            secs: 2.0,
            first_delivery_secs: Some(0.05),
            scanned: 2_000,
            delivered: 1_500,
            body_bytes: 1_536_000,
            record_bytes: 2_000_000,
            complete: false,
        };
        let result = CatchUpResult {
            tool: "ringmq-loadgen".into(),
            tool_version: "0".into(),
            label: "FillTest".into(),
            started_at_utc: String::new(),
            settings: args(&[]),
            group: "g".into(),
            topics: vec!["FillTest".into()],
            queues: 8,
            stored_messages: 2_000,
            scope: "whole backlog".into(),
            delivered_per_sec: drain.delivered_per_sec(),
            body_mb_per_sec: drain.body_mb_per_sec(),
            record_mb_per_sec: drain.record_mb_per_sec(),
            mean_body_bytes: 1024.0,
            cpu: CpuUsage {
                loadgen_cores_busy: 0.97,
                loadgen_cpu_us_per_message: 1.25,
                broker_cores_busy: Some(0.5),
                ..CpuUsage::default()
            },
            drain,
        };
        let text = result.text_report();
        assert!(
            text.contains("750 msg/s, 0.8 MB/s of message bodies"),
            "{text}"
        );
        assert!(text.contains("1.0 MB/s as stored records"), "{text}");
        assert!(text.contains("INCOMPLETE"), "{text}");
        assert!(text.contains("first delivery after 0.050 s"), "{text}");
        assert!(
            text.contains(
                "consumer (this process) 0.97 (1.25 us/msg); broker 0.50; load average ? -> ?"
            ),
            "{text}"
        );
        assert_eq!(result.file_stem(0), "catch-up-19700101T000000Z-FillTest");
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["drain"]["body_bytes"], 1_536_000);
    }
}
