//! The result of a run: the final text report, the JSON result and the markdown summary
//! written under `results/` (`loadgen-<UTC time>-<label>.json` and `.md`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::cli::WorkloadArgs;
use crate::clock;
use crate::filter_compare::{report_lines, FilterCompare};
use crate::host::{cores, TargetFacts};
use crate::latency::PercentileSummary;
use crate::order::OrderReport;
use crate::procstat::CpuUsage;
use crate::progress::{thousands, TimelinePoint};
use crate::stats::ExecutorStats;
use crate::verify::VerifyReport;
use ringmq_tune::facts::HostFacts;

/// Sends of the measured window.
#[derive(Clone, Debug, Serialize)]
pub struct SendResult {
    pub ok_messages: u64,
    pub ok_bytes: u64,
    pub msg_per_sec: f64,
    pub mb_per_sec: f64,
    pub failed_messages: u64,
    pub failed_messages_by_status: BTreeMap<String, u64>,
    /// Closed loop: from send to response. Open loop: from the intended send time to response.
    /// Batch: one sample per message, each carrying its batch's latency.
    pub latency_us: PercentileSummary,
    /// Open loop only: how late sends left compared with their schedule.
    pub publish_delay_us: Option<PercentileSummary>,
    /// Open loop only: messages due in the measured window that were never sent because the
    /// producers fell behind the schedule (0 when the system kept up).
    pub unsent_scheduled_messages: Option<u64>,
}

/// Consumption of messages born in the measured window.
#[derive(Clone, Debug, Serialize)]
pub struct ConsumeResult {
    pub messages: u64,
    pub msg_per_sec: f64,
    pub mb_per_sec: f64,
    /// Born (intended send time in open loop, send time in closed loop) to consumed.
    pub end_to_end_latency_us: PercentileSummary,
    /// Scheduled runs only: how late delivery was, from the due time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_lateness: Option<DeliveryLateness>,
}

/// Delivery lateness of scheduled messages (`--delay-level`, `--timer-delay-ms`).
#[derive(Clone, Debug, Serialize)]
pub struct DeliveryLateness {
    /// Due time to the delivered record's store time (millisecond resolution).
    pub due_to_stored_us: PercentileSummary,
    /// Due time to receipt by the consumer.
    pub due_to_consumed_us: PercentileSummary,
    /// Delivered records stored before their due time (a correctness failure if not 0).
    pub early_deliveries: u64,
}

/// fdatasync activity of the broker during the measured window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BrokerFlushStats {
    /// Where the counts come from: the broker's own counters (GET_BROKER_RUNTIME_INFO), or the
    /// store disk's completed flush requests (`/sys/block/<disk>/stat`, every process on the
    /// disk, divided into the messages the broker acknowledged).
    pub source: String,
    pub fdatasyncs: u64,
    pub records_flushed: u64,
    pub fdatasyncs_per_sec: f64,
    pub records_per_fdatasync: f64,
}

impl BrokerFlushStats {
    /// From two readings of cumulative `(fdatasyncs, records flushed)` counters.
    pub fn between(source: &str, before: (u64, u64), after: (u64, u64), secs: f64) -> Self {
        let fdatasyncs = after.0.saturating_sub(before.0);
        let records_flushed = after.1.saturating_sub(before.1);
        Self {
            source: source.to_string(),
            fdatasyncs,
            records_flushed,
            fdatasyncs_per_sec: if secs > 0.0 {
                fdatasyncs as f64 / secs
            } else {
                0.0
            },
            records_per_fdatasync: if fdatasyncs > 0 {
                records_flushed as f64 / fdatasyncs as f64
            } else {
                0.0
            },
        }
    }
}

/// Everything a run produced; serialised as the JSON result.
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    pub tool: String,
    pub tool_version: String,
    pub label: String,
    pub run_id: u32,
    pub started_at_utc: String,
    pub settings: WorkloadArgs,
    pub loop_kind: String,
    pub target: TargetFacts,
    pub host: HostFacts,
    /// The tuner's host report, when the tuner could produce one.
    pub host_checks: Option<serde_json::Value>,
    pub measured_secs: f64,
    pub send: SendResult,
    pub consume: Option<ConsumeResult>,
    pub verify: Option<VerifyReport>,
    pub broker_flush: Option<BrokerFlushStats>,
    /// CPU of the load generator (and a local broker) in the window, and the host's load.
    pub cpu: Option<CpuUsage>,
    pub timeline: Vec<TimelinePoint>,
    /// `--filter-compare`: filtered against unfiltered drains of the backlog.
    pub filter_compare: Option<FilterCompare>,
    /// What the reader must know to interpret the numbers (e.g. a run cut short by Ctrl-C).
    pub notes: Vec<String>,
}

/// Throughput and latency sections from the merged executor statistics.
pub fn send_and_consume(
    stats: &ExecutorStats,
    measured_secs: f64,
    open_loop: bool,
    with_consumers: bool,
) -> (SendResult, Option<ConsumeResult>) {
    let per_sec = |n: u64| {
        if measured_secs > 0.0 {
            n as f64 / measured_secs
        } else {
            0.0
        }
    };
    let send = SendResult {
        ok_messages: stats.sent_ok_messages,
        ok_bytes: stats.sent_ok_bytes,
        msg_per_sec: per_sec(stats.sent_ok_messages),
        mb_per_sec: per_sec(stats.sent_ok_bytes) / 1e6,
        failed_messages: stats.failed_messages(),
        failed_messages_by_status: stats.failed_messages_by_status.clone(),
        latency_us: stats.send_latency.summary(),
        publish_delay_us: open_loop.then(|| stats.publish_delay.summary()),
        unsent_scheduled_messages: open_loop.then_some(stats.unsent_scheduled_messages),
    };
    let consume = with_consumers.then(|| ConsumeResult {
        messages: stats.consumed_messages,
        msg_per_sec: per_sec(stats.consumed_messages),
        mb_per_sec: per_sec(stats.consumed_bytes) / 1e6,
        end_to_end_latency_us: stats.end_to_end_latency.summary(),
        delivery_lateness: (stats.due_to_stored.summary().count > 0).then(|| DeliveryLateness {
            due_to_stored_us: stats.due_to_stored.summary(),
            due_to_consumed_us: stats.due_to_consumed.summary(),
            early_deliveries: stats.early_deliveries,
        }),
    });
    (send, consume)
}

/// The `--orderly --verify` line: keys checked, violations (must be 0), redeliveries.
fn order_line(o: &OrderReport) -> String {
    let mut line = format!(
        "{}: keys checked {}, messages {}, violations {}, redeliveries {}, handovers {}",
        if o.passed() { "PASSED" } else { "FAILED" },
        o.keys_checked,
        o.messages_checked,
        o.violations,
        o.redeliveries,
        o.handovers
    );
    if o.unchecked_skips > 0 {
        line.push_str(&format!(", unchecked skips {}", o.unchecked_skips));
    }
    if let Some(first) = &o.first_violation {
        line.push_str(&format!(" (first: {first})"));
    }
    line
}

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1e3)
}

fn latency_row(name: &str, s: &PercentileSummary) -> String {
    format!(
        "| {name} | {} | {} | {} | {} | {} | {} | {} |\n",
        ms(s.p50_us),
        ms(s.p90_us),
        ms(s.p99_us),
        ms(s.p99_9_us),
        ms(s.p99_99_us),
        ms(s.max_us),
        thousands(s.count as f64)
    )
}

fn cpu_line(c: &CpuUsage) -> String {
    let mut line = format!(
        "loadgen {:.2} cores ({:.1} us/msg)",
        c.loadgen_cores_busy, c.loadgen_cpu_us_per_message
    );
    if let (Some(cores), Some(per)) = (c.broker_cores_busy, c.broker_cpu_us_per_message) {
        line.push_str(&format!(", broker {cores:.2} cores ({per:.1} us/msg)"));
    }
    if let (Some(a), Some(b)) = (c.load_average_start, c.load_average_end) {
        line.push_str(&format!(", host load average {:.2} -> {:.2}", a[0], b[0]));
    }
    line
}

impl RunResult {
    /// The report printed at the end of a run.
    pub fn text_report(&self) -> String {
        let mut out = String::new();
        self.text_setup(&mut out);
        self.text_send(&mut out);
        self.text_outcome(&mut out);
        out
    }

    /// Target, workload and host lines.
    fn text_setup(&self, out: &mut String) {
        let s = &self.settings;
        let _ = writeln!(
            out,
            "== ringmq-loadgen report: {} ({})",
            self.label, self.started_at_utc
        );
        let _ = writeln!(
            out,
            "target   {} via {}{}",
            self.target
                .description
                .as_deref()
                .unwrap_or("RocketMQ-protocol system"),
            self.target.namesrv,
            self.target
                .flush_disk_type
                .as_ref()
                .map(|f| format!(", {f}"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "workload {:?} {}, {} B messages, {} producers over {} connections, {} topic(s) x {} queues, {} consumers, warm-up {} s, measured {:.1} s",
            s.mode,
            self.loop_kind,
            s.message_size_bytes,
            s.producers,
            s.connections,
            s.topics,
            s.queues,
            s.consumers,
            s.warmup_secs,
            self.measured_secs
        );
        let _ = writeln!(
            out,
            "host     {} cores, kernel {}",
            cores(&self.host),
            self.host.kernel_release.as_deref().unwrap_or("unknown")
        );
    }

    /// Send throughput and latency.
    fn text_send(&self, out: &mut String) {
        let send = &self.send;
        let _ = writeln!(
            out,
            "send     {} msg/s, {:.1} MB/s ({} ok, {} failed{})",
            thousands(send.msg_per_sec),
            send.mb_per_sec,
            thousands(send.ok_messages as f64),
            thousands(send.failed_messages as f64),
            if send.failed_messages_by_status.is_empty() {
                String::new()
            } else {
                format!(": {:?}", send.failed_messages_by_status)
            }
        );
        let _ = writeln!(out, "  latency       {}", send.latency_us.one_line());
        if let Some(d) = &send.publish_delay_us {
            let _ = writeln!(out, "  publish delay {}", d.one_line());
        }
        if let Some(unsent) = send.unsent_scheduled_messages.filter(|n| *n > 0) {
            let _ = writeln!(
                out,
                "  behind schedule: {} scheduled messages never sent (the target rate was not reached)",
                thousands(unsent as f64)
            );
        }
    }

    /// Consumption, broker, CPU, verification and notes.
    fn text_outcome(&self, out: &mut String) {
        if let Some(c) = &self.consume {
            let _ = writeln!(
                out,
                "consume  {} msg/s, {:.1} MB/s ({} consumed)",
                thousands(c.msg_per_sec),
                c.mb_per_sec,
                thousands(c.messages as f64)
            );
            let _ = writeln!(
                out,
                "  born-to-consumed {}",
                c.end_to_end_latency_us.one_line()
            );
        }
        if let Some(f) = &self.broker_flush {
            let _ = writeln!(
                out,
                "broker   {:.0} fdatasync/s, {:.1} records per fdatasync ({})",
                f.fdatasyncs_per_sec, f.records_per_fdatasync, f.source
            );
        }
        if let Some(c) = &self.cpu {
            let _ = writeln!(out, "cpu      {}", cpu_line(c));
        }
        if let Some(v) = &self.verify {
            let _ = writeln!(
                out,
                "verify   {}: acknowledged {}, consumed {}, missing {}, duplicated {} ({} extra deliveries), consumed-unacknowledged {}, corrupt {}, rolled-back delivered {}",
                if v.passed() { "PASSED" } else { "FAILED" },
                v.acknowledged,
                v.consumed,
                v.missing,
                v.duplicated,
                v.extra_deliveries,
                v.consumed_unacknowledged,
                v.corrupt_bodies,
                v.rolled_back_delivered
            );
            if let Some(o) = &v.order {
                let _ = writeln!(out, "order    {}", order_line(o));
            }
        }
        for line in self.filter_compare.iter().flat_map(report_lines) {
            let _ = writeln!(out, "filter   {line}");
        }
        for note in &self.notes {
            let _ = writeln!(out, "note     {note}");
        }
    }

    /// The markdown summary written next to the JSON result.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        self.md_settings(&mut md);
        self.md_figures(&mut md);
        self.md_outcome(&mut md);
        md
    }

    /// Title and the settings table.
    fn md_settings(&self, md: &mut String) {
        let s = &self.settings;
        let _ = writeln!(
            md,
            "# loadgen run `{}` — {}\n",
            self.label, self.started_at_utc
        );
        let _ = writeln!(md, "| setting | value |\n| --- | --- |");
        let target = self
            .target
            .description
            .as_deref()
            .unwrap_or("RocketMQ-protocol system");
        let _ = writeln!(
            md,
            "| target | {target} (name server {}) |",
            self.target.namesrv
        );
        let flush = self.target.flush_disk_type.as_deref().unwrap_or("unknown");
        let role = self.target.broker_role.as_deref().unwrap_or("unknown");
        let _ = writeln!(md, "| broker flush / role | {flush} / {role} |");
        let _ = writeln!(md, "| mode | {:?}, {} |", s.mode, self.loop_kind);
        let _ = writeln!(md, "| message size | {} B |", s.message_size_bytes);
        let _ = writeln!(
            md,
            "| producers / connections | {} / {} |",
            s.producers, s.connections
        );
        if s.mode == crate::cli::SendMode::Batch {
            let _ = writeln!(md, "| batch size | {} |", s.batch_size);
        }
        let _ = writeln!(md, "| topics x queues | {} x {} |", s.topics, s.queues);
        let _ = writeln!(md, "| consumers | {} |", s.consumers);
        let _ = writeln!(
            md,
            "| warm-up / measured | {} s / {:.1} s |",
            s.warmup_secs, self.measured_secs
        );
        let disk = self
            .host
            .store
            .as_ref()
            .map(|d| {
                format!(
                    "{} {} on {}",
                    d.disk
                        .as_deref()
                        .or(d.mount_source.as_deref())
                        .unwrap_or("?"),
                    d.fs_type.as_deref().unwrap_or("?"),
                    d.mount_point
                        .as_ref()
                        .map_or("?".into(), |m| m.display().to_string())
                )
            })
            .unwrap_or_else(|| "unknown".into());
        let _ = writeln!(
            md,
            "| host | {} cores, kernel {}, disk {disk} |\n",
            cores(&self.host),
            self.host.kernel_release.as_deref().unwrap_or("unknown")
        );
    }

    /// Throughput and latency tables.
    fn md_figures(&self, md: &mut String) {
        let _ = writeln!(md, "| throughput | msg/s | MB/s |\n| --- | --- | --- |");
        let _ = writeln!(
            md,
            "| send (ok) | {} | {:.1} |",
            thousands(self.send.msg_per_sec),
            self.send.mb_per_sec
        );
        if let Some(c) = &self.consume {
            let _ = writeln!(
                md,
                "| consume | {} | {:.1} |",
                thousands(c.msg_per_sec),
                c.mb_per_sec
            );
        }
        let _ = writeln!(
            md,
            "\n| latency (ms) | p50 | p90 | p99 | p99.9 | p99.99 | max | samples |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
        );
        md.push_str(&latency_row("send", &self.send.latency_us));
        if let Some(d) = &self.send.publish_delay_us {
            md.push_str(&latency_row("publish delay", d));
        }
        if let Some(c) = &self.consume {
            md.push_str(&latency_row("born-to-consumed", &c.end_to_end_latency_us));
            if let Some(d) = &c.delivery_lateness {
                md.push_str(&latency_row(
                    "due-to-stored (lateness)",
                    &d.due_to_stored_us,
                ));
                md.push_str(&latency_row(
                    "due-to-consumed (lateness)",
                    &d.due_to_consumed_us,
                ));
                let _ = writeln!(
                    md,
                    "\nScheduled messages stored before their due time: {}.",
                    d.early_deliveries
                );
            }
        }
        if let Some(unsent) = self.send.unsent_scheduled_messages.filter(|n| *n > 0) {
            let _ = writeln!(
                md,
                "\nBehind schedule: {unsent} scheduled messages were never sent (target rate not reached)."
            );
        }
    }

    /// Failures, broker, CPU, verification and notes.
    fn md_outcome(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "\nFailed sends: {}{}",
            self.send.failed_messages,
            if self.send.failed_messages_by_status.is_empty() {
                String::new()
            } else {
                format!(" {:?}", self.send.failed_messages_by_status)
            }
        );
        if let Some(f) = &self.broker_flush {
            let _ = writeln!(
                md,
                "\nBroker: {:.0} fdatasync/s, {:.1} records per fdatasync ({}).",
                f.fdatasyncs_per_sec, f.records_per_fdatasync, f.source
            );
        }
        if let Some(c) = &self.cpu {
            let _ = writeln!(md, "\nCPU: {}.", cpu_line(c));
        }
        if let Some(v) = &self.verify {
            let _ = writeln!(
                md,
                "\nVerify {}: acknowledged {}, consumed {}, missing {}, duplicated {}, consumed-unacknowledged {}, corrupt {}, rolled-back delivered {}.",
                if v.passed() { "passed" } else { "FAILED" },
                v.acknowledged,
                v.consumed,
                v.missing,
                v.duplicated,
                v.consumed_unacknowledged,
                v.corrupt_bodies,
                v.rolled_back_delivered
            );
            if let Some(o) = &v.order {
                let _ = writeln!(md, "\nOrder: {}.", order_line(o));
            }
        }
        if let Some(c) = &self.filter_compare {
            let _ = writeln!(md, "\nFilter comparison (records per second):\n");
            for line in report_lines(c) {
                let _ = writeln!(md, "    {line}");
            }
        }
        for note in &self.notes {
            let _ = writeln!(md, "\nNote: {note}");
        }
    }

    /// The file stem: `loadgen-<compact UTC>-<label>`.
    pub fn file_stem(&self, started_unix_secs: u64) -> String {
        format!(
            "loadgen-{}-{}",
            clock::compact_utc(started_unix_secs),
            self.label
        )
    }

    /// Writes `<dir>/<stem>.json` and `<dir>/<stem>.md`; returns both paths.
    pub fn write(&self, dir: &Path, started_unix_secs: u64) -> anyhow::Result<(PathBuf, PathBuf)> {
        let stem = self.file_stem(started_unix_secs);
        let json_path = write_json_file(dir, &stem, self)?;
        let md_path = dir.join(format!("{stem}.md"));
        std::fs::write(&md_path, self.markdown())
            .with_context(|| format!("writing {}", md_path.display()))?;
        Ok((json_path, md_path))
    }
}

/// Writes `value` as `<dir>/<stem>.json` (creating `dir`); returns the path written.
pub fn write_json_file<T: Serialize>(dir: &Path, stem: &str, value: &T) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating results directory {}", dir.display()))?;
    let path = dir.join(format!("{stem}.json"));
    let json = serde_json::to_string_pretty(value).context("serialising the result")?;
    std::fs::write(&path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn sample() -> RunResult {
        let cli = Cli::try_parse_from(["ringmq-loadgen", "run", "--rate", "1000"]).expect("parses");
        let Command::Run(run) = cli.command else {
            panic!("not a run")
        };
        let mut stats = ExecutorStats::default();
        for i in 0..1_000 {
            stats.record_send_ok(100 + i, 1, 128);
            stats.publish_delay.record_us(5);
            stats.record_consumed(300 + i, 128);
        }
        stats.record_send_failure("SYSTEM_BUSY", 3);
        let (send, consume) = send_and_consume(&stats, 2.0, true, true);
        RunResult {
            tool: "ringmq-loadgen".into(),
            tool_version: "0.1.0".into(),
            label: "unit".into(),
            run_id: 1,
            started_at_utc: clock::iso8601_utc(1_795_262_865),
            settings: run.workload,
            loop_kind: "open loop 1000 msg/s".into(),
            target: TargetFacts {
                namesrv: "127.0.0.1:9876".into(),
                flush_disk_type: Some("ASYNC_FLUSH".into()),
                ..TargetFacts::default()
            },
            host: crate::host::host_facts(std::path::Path::new("/tmp")),
            host_checks: None,
            measured_secs: 2.0,
            send,
            consume,
            verify: Some(VerifyReport {
                acknowledged: 1_000,
                consumed: 1_000,
                order: Some(OrderReport {
                    keys_checked: 32,
                    messages_checked: 1_000,
                    redeliveries: 3,
                    handovers: 5,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            broker_flush: Some(BrokerFlushStats::between(
                "broker",
                (10, 100),
                (30, 1_100),
                2.0,
            )),
            cpu: Some(CpuUsage {
                loadgen_cores_busy: 0.5,
                loadgen_cpu_us_per_message: 5.0,
                broker_cores_busy: Some(1.0),
                broker_cpu_us_per_message: Some(10.0),
                load_average_start: Some([1.0, 1.0, 1.0]),
                load_average_end: Some([2.0, 1.0, 1.0]),
                ..CpuUsage::default()
            }),
            timeline: vec![],
            filter_compare: None,
            notes: vec!["a note".into()],
        }
    }

    #[test]
    fn throughput_is_per_measured_second() {
        let r = sample();
        assert_eq!(r.send.msg_per_sec, 500.0);
        assert_eq!(r.send.mb_per_sec, 0.064);
        assert_eq!(r.send.failed_messages, 3);
        assert_eq!(r.consume.as_ref().map(|c| c.messages), Some(1_000));
    }

    #[test]
    fn flush_stats_from_counters() {
        let f = BrokerFlushStats::between("broker", (10, 100), (30, 1_100), 2.0);
        assert_eq!((f.fdatasyncs, f.records_flushed), (20, 1_000));
        assert_eq!(
            (f.fdatasyncs_per_sec, f.records_per_fdatasync),
            (10.0, 50.0)
        );
        let idle = BrokerFlushStats::between("broker", (5, 5), (5, 5), 0.0);
        assert_eq!(
            (idle.fdatasyncs_per_sec, idle.records_per_fdatasync),
            (0.0, 0.0)
        );
    }

    #[test]
    fn report_markdown_and_json_carry_every_section() {
        let r = sample();
        let text = r.text_report();
        for needle in [
            "send     500 msg/s",
            "publish delay",
            "born-to-consumed",
            "verify   PASSED",
            "order    PASSED: keys checked 32, messages 1000, violations 0, redeliveries 3",
            "10 fdatasync/s",
            "SYSTEM_BUSY",
            "note     a note",
            "broker 1.00 cores (10.0 us/msg)",
            "host load average 1.00 -> 2.00",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from\n{text}");
        }
        let md = r.markdown();
        for needle in [
            "| send (ok) | 500 |",
            "| publish delay |",
            "| born-to-consumed |",
            "ASYNC_FLUSH",
            "Verify passed",
            "Order: PASSED: keys checked 32",
        ] {
            assert!(md.contains(needle), "{needle:?} missing from\n{md}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let (json_path, md_path) = r.write(dir.path(), 1_795_262_865).expect("writes");
        assert_eq!(
            json_path.file_name().and_then(|n| n.to_str()),
            Some("loadgen-20261121T120745Z-unit.json")
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json_path).expect("read"))
                .expect("json");
        assert_eq!(json["settings"]["rate"], 1000);
        assert_eq!(json["send"]["failed_messages_by_status"]["SYSTEM_BUSY"], 3);
        assert_eq!(json["consume"]["end_to_end_latency_us"]["count"], 1000);
        assert_eq!(json["target"]["flush_disk_type"], "ASYNC_FLUSH");
        assert!(json["send"]["publish_delay_us"]["p99_us"].is_u64());
        assert!(md_path.exists());
    }
}
