//! `recommend`: a broker configuration derived from what `check` saw and what `probe-disk`
//! measured, each value with the reason for it, in the broker's `broker.conf` format.

use std::fmt::Write as _;

use ringmq_proto::java_properties;
use serde::Serialize;

use crate::brokerconf as keys;
use crate::check::memory::memlock_need_bytes as memory_need;
use crate::check::{
    human_bytes, CheckContext, CheckReport, DEFAULT_SEGMENT_SIZE_BYTES, GLOMMIO_IO_MEMORY_BYTES,
};
use crate::cpulist::CpuSet;
use crate::host;
use crate::probe::DiskProbe;

/// Smallest segment recommended: below this, segment roll and preallocation happen too often.
pub const MIN_SEGMENT_SIZE_BYTES: u64 = 64 << 20;
/// Segments each shard should be able to hold on the free space before retention bites.
pub const SEGMENTS_PER_SHARD_WANTED: u64 = 8;
/// fdatasync p99 at or under which SYNC_FLUSH is recommended (PLP-class devices).
pub const SYNC_FLUSH_P99_LIMIT_US: f64 = 1000.0;
/// Share of RAM given to the tail caches of all shards together.
pub const TAIL_CACHE_RAM_PERCENT: u64 = 25;
/// Physical cores from which one core is left to interrupts and housekeeping.
pub const HOUSEKEEPING_CORE_FROM: usize = 8;
/// Tail-cache clamp per shard.
pub const TAIL_CACHE_MIN_BYTES: u64 = 16 << 20;
pub const TAIL_CACHE_MAX_BYTES: u64 = 4 << 30;

/// One recommended key.
#[derive(Debug, Clone, Serialize)]
pub struct Setting {
    pub key: &'static str,
    pub value: String,
    pub reason: String,
}

/// The whole recommendation.
#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    pub header: Vec<String>,
    pub settings: Vec<Setting>,
    /// The memory budget: not a setting, the sum the settings imply.
    pub memory_budget: Vec<String>,
}

impl Recommendation {
    /// The value recommended for `key`.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|s| s.key == key)
            .map(|s| s.value.as_str())
    }

    /// The broker.conf text: a header, then each key with its reason as a comment above it.
    pub fn to_broker_conf(&self) -> String {
        let mut out = String::new();
        for line in &self.header {
            let _ = writeln!(out, "# {line}");
        }
        for setting in &self.settings {
            out.push('\n');
            for line in setting.reason.lines() {
                let _ = writeln!(out, "# {line}");
            }
            java_properties::write_pair(&mut out, setting.key, &setting.value);
        }
        out.push_str("\n# Memory budget (not a setting: what the values above add up to)\n");
        for line in &self.memory_budget {
            let _ = writeln!(out, "#   {line}");
        }
        out
    }
}

/// Derives the recommendation. `probe` is optional; without it the flush values fall back to
/// RocketMQ's defaults and say so.
pub fn recommend(
    ctx: &CheckContext,
    report: &CheckReport,
    probe: Option<&DiskProbe>,
) -> Recommendation {
    let facts = &report.facts;
    let cpus = recommend_cpus(ctx, report);
    let shards = cpus.value.len().max(1) as u64;
    let free_bytes = facts.store.as_ref().and_then(|s| s.free_bytes);
    let memory_bytes = facts.memory_total_bytes.unwrap_or(0);

    let segment = segment_size(free_bytes, shards);
    let flush = flush_type(probe);
    let interval = flush_interval(probe);
    let timeout = sync_flush_timeout(probe);
    let tail_cache = tail_cache_bytes(memory_bytes, shards);

    let settings = vec![
        Setting {
            key: keys::STORE_PATH_ROOT_DIR,
            value: report.store_path.display().to_string(),
            reason: "The store path that was checked (and probed, if a probe was given).".into(),
        },
        Setting {
            key: keys::RINGMQ_CPUS,
            value: cpus.value.to_spec_string(),
            reason: cpus.reason,
        },
        segment.setting,
        flush,
        interval,
        timeout,
        Setting {
            key: keys::RINGMQ_TAIL_CACHE_BYTES,
            value: tail_cache.0.to_string(),
            reason: tail_cache.1,
        },
    ];
    let memory_budget = memory_budget(shards, tail_cache.0, memory_bytes);
    Recommendation {
        header: header(report, probe),
        settings,
        memory_budget,
    }
}

struct CpuChoice {
    value: CpuSet,
    reason: String,
}

/// Cores: one thread per physical core (SMT siblings share execution units; two shards on one
/// core look like two cores but are not), and from 8 physical cores up the first core is left
/// to interrupts and housekeeping.
fn recommend_cpus(ctx: &CheckContext, report: &CheckReport) -> CpuChoice {
    let root = &ctx.root;
    let online = report.facts.online_cpus.clone().unwrap_or_default();
    let base = if ctx.cpus.is_some() {
        report.broker_cpus.clone()
    } else {
        online.clone()
    };
    let mut chosen = host::one_thread_per_core(root, &base);
    let mut reasons = vec![format!(
        "One shard per physical core: {} CPUs given, {} physical cores among them ({}).",
        base.len(),
        chosen.len(),
        if chosen.len() < base.len() {
            "SMT siblings dropped"
        } else {
            "no SMT siblings"
        }
    )];
    if ctx.cpus.is_none() && chosen.len() >= HOUSEKEEPING_CORE_FROM {
        let first_cpu = chosen.iter().next();
        if let Some(first) = first_cpu {
            let housekeeping =
                host::thread_siblings(root, first).unwrap_or_else(|_| CpuSet::from_ids([first]));
            chosen = chosen.difference(&housekeeping);
            reasons.push(format!(
                "With >= {HOUSEKEEPING_CORE_FROM} cores, core {housekeeping} is left for NIC/disk interrupts and the OS (apply moves IRQs there)."
            ));
        }
    } else if ctx.cpus.is_none() {
        reasons.push(format!(
            "Fewer than {HOUSEKEEPING_CORE_FROM} physical cores: every core runs a shard; interrupts share them."
        ));
    }
    CpuChoice {
        value: chosen,
        reason: reasons.join("\n"),
    }
}

struct SegmentChoice {
    setting: Setting,
}

/// Segment size: RocketMQ's 1 GiB, halved until each shard can hold 8 segments in the free
/// space (retention deletes whole segments, so a few per shard are needed), not below 64 MiB.
fn segment_size(free_bytes: Option<u64>, shards: u64) -> SegmentChoice {
    let mut segment = DEFAULT_SEGMENT_SIZE_BYTES;
    let reason = match free_bytes {
        Some(free) => {
            let per_shard = free / shards;
            while segment > MIN_SEGMENT_SIZE_BYTES
                && per_shard < SEGMENTS_PER_SHARD_WANTED * segment
            {
                segment /= 2;
            }
            format!(
                "{} free / {shards} shards = {} per shard; the largest size from RocketMQ's 1 GiB down to 64 MiB\nthat fits {SEGMENTS_PER_SHARD_WANTED} segments per shard (retention deletes whole segments).",
                human_bytes(free),
                human_bytes(per_shard)
            )
        }
        None => "Free space unknown: RocketMQ's default 1 GiB.".to_string(),
    };
    SegmentChoice {
        setting: Setting {
            key: keys::MAPPED_FILE_SIZE_COMMIT_LOG,
            value: segment.to_string(),
            reason,
        },
    }
}

fn flush_type(probe: Option<&DiskProbe>) -> Setting {
    let (value, reason) = match probe {
        Some(p) => {
            let sync = &p.fdatasync_4k;
            let over = &p.fdatasync_4k_overwrite;
            let cost = format!(
                "Measured fdatasync after a 4 KiB write into fresh preallocated space: p50 {:.0} us, p99 {:.0} us, p99.9 {:.0} us ({} samples);\nover already-written blocks: p50 {:.0} us, p99 {:.0} us ({} samples).",
                sync.p50_us, sync.p99_us, sync.p999_us, sync.ops, over.p50_us, over.p99_us, over.ops
            );
            if sync.p99_us <= SYNC_FLUSH_P99_LIMIT_US {
                (
                    "SYNC_FLUSH",
                    format!("{cost}\nAt p99 <= {SYNC_FLUSH_P99_LIMIT_US:.0} us a durable ack (group commit) costs little: SEND_OK means on disk."),
                )
            } else {
                (
                    "ASYNC_FLUSH",
                    format!(
                        "{cost}\nSYNC_FLUSH would add about {:.1} ms (p99) to acks; ASYNC_FLUSH acks after the O_DIRECT write\n(survives a broker crash, not a power loss). Choose SYNC_FLUSH anyway if acks must mean on disk;\ngroup commit then does at most ~{:.0} fdatasyncs/s per shard.",
                        sync.p99_us / 1000.0,
                        1e6 / sync.p50_us.max(1.0)
                    ),
                )
            }
        }
        None => (
            "ASYNC_FLUSH",
            "No disk probe given (run probe-disk and pass --probe): RocketMQ's default."
                .to_string(),
        ),
    };
    Setting {
        key: keys::FLUSH_DISK_TYPE,
        value: value.to_string(),
        reason,
    }
}

/// ASYNC_FLUSH interval: RocketMQ's 500 ms, raised so that fdatasync at its p99 takes at most
/// 1 % of a shard's time.
fn flush_interval(probe: Option<&DiskProbe>) -> Setting {
    let (value, reason) = match probe {
        Some(p) => {
            let p99_ms = p.fdatasync_4k.p99_us / 1000.0;
            let value = ((p99_ms * 100.0).ceil() as u64).clamp(500, 10_000);
            (
                value,
                format!("max(500 ms RocketMQ default, 100 x fdatasync p99 {p99_ms:.2} ms): background fdatasync stays under 1% of time."),
            )
        }
        None => (500, "RocketMQ's default (no probe).".to_string()),
    };
    Setting {
        key: keys::FLUSH_INTERVAL_COMMIT_LOG,
        value: value.to_string(),
        reason,
    }
}

/// SYNC_FLUSH timeout: RocketMQ's 5 s, raised to 10 x the fdatasync p99.9 on slow devices so a
/// FLUSH_DISK_TIMEOUT means trouble, not an ordinary tail.
fn sync_flush_timeout(probe: Option<&DiskProbe>) -> Setting {
    let (value, reason) = match probe {
        Some(p) => {
            let tail_ms = p.fdatasync_4k.p999_us.max(p.fdatasync_4k.max_us) / 1000.0;
            let value = (((tail_ms * 10.0) / 1000.0).ceil() as u64 * 1000).max(5000);
            (
                value,
                format!("max(5000 ms RocketMQ default, 10 x worst measured fdatasync {tail_ms:.1} ms): a timeout signals a fault, not the tail."),
            )
        }
        None => (5000, "RocketMQ's default (no probe).".to_string()),
    };
    Setting {
        key: keys::SYNC_FLUSH_TIMEOUT,
        value: value.to_string(),
        reason,
    }
}

/// Tail cache per shard: 25 % of RAM over the shards, in [16 MiB, 4 GiB], whole MiB.
fn tail_cache_bytes(memory_bytes: u64, shards: u64) -> (u64, String) {
    let share = memory_bytes * TAIL_CACHE_RAM_PERCENT / 100 / shards;
    let bytes = (share >> 20 << 20).clamp(TAIL_CACHE_MIN_BYTES, TAIL_CACHE_MAX_BYTES);
    (
        bytes,
        format!(
            "{TAIL_CACHE_RAM_PERCENT}% of {} RAM over {shards} shards, in [16 MiB, 4 GiB]: recent data is served from memory;\nthe rest of RAM stays for consume-queue/index page cache, connections and the OS.",
            human_bytes(memory_bytes)
        ),
    )
}

fn memory_budget(shards: u64, tail_cache: u64, memory_bytes: u64) -> Vec<String> {
    let io_memory = GLOMMIO_IO_MEMORY_BYTES;
    let per_shard = tail_cache + io_memory;
    let total = per_shard * shards;
    let (memlock_min, memlock_full) = memory_need(shards, io_memory);
    vec![
        format!(
            "per shard: tail cache {} + glommio io memory {} = {}",
            human_bytes(tail_cache),
            human_bytes(io_memory),
            human_bytes(per_shard)
        ),
        format!(
            "{shards} shards: {} of {} RAM ({}%)",
            human_bytes(total),
            human_bytes(memory_bytes),
            (total * 100).checked_div(memory_bytes).unwrap_or(0)
        ),
        format!(
            "memlock: {} = shards x (512 KiB rings + 3 x io memory); {} minimum to start",
            human_bytes(memlock_full),
            human_bytes(memlock_min)
        ),
    ]
}

fn header(report: &CheckReport, probe: Option<&DiskProbe>) -> Vec<String> {
    let f = &report.facts;
    let mut lines = vec![
        format!(
            "ringmq broker configuration recommended by ringmq-tune {}",
            report.tool_version
        ),
        format!(
            "host: {}, {}, {} CPUs / {} cores, {} RAM, kernel {}",
            f.hostname.as_deref().unwrap_or("?"),
            f.cpu_model.as_deref().unwrap_or("?"),
            f.logical_cpus,
            f.physical_cores,
            human_bytes(f.memory_total_bytes.unwrap_or(0)),
            f.kernel_release.as_deref().unwrap_or("?")
        ),
    ];
    if let Some(s) = &f.store {
        lines.push(format!(
            "store: {} on {} ({}), {} free",
            s.path.display(),
            s.fs_type.as_deref().unwrap_or("?"),
            s.disk.as_deref().unwrap_or("no block device"),
            human_bytes(s.free_bytes.unwrap_or(0))
        ));
    }
    match probe {
        Some(p) => lines.push(format!(
            "disk probe: {:.0} MB/s sequential; 4 KiB write p50 {:.0} us p99 {:.0} us; fdatasync p50 {:.0} us p99 {:.0} us p99.9 {:.0} us (fresh space), p50 {:.0} us p99 {:.0} us (overwrite)",
            p.sequential_write.megabytes_per_s,
            p.write_4k.p50_us,
            p.write_4k.p99_us,
            p.fdatasync_4k.p50_us,
            p.fdatasync_4k.p99_us,
            p.fdatasync_4k.p999_us,
            p.fdatasync_4k_overwrite.p50_us,
            p.fdatasync_4k_overwrite.p99_us
        )),
        None => lines.push("disk probe: none given (ringmq-tune probe-disk --dir <store> --out probe.json; then --probe probe.json)".into()),
    }
    lines.push(format!(
        "host check: {} OK, {} WARN, {} FAIL (ringmq-tune check for details; apply for the host settings)",
        report.summary.ok, report.summary.warn, report.summary.fail
    ));
    lines
}
