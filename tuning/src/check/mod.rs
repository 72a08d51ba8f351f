//! `check`: one item per host property the broker cares about, each with a status, the value
//! seen, the value wanted and the command that fixes it. Modelled on `rpk redpanda check`.
//!
//! Every item is a small pure function of a [`HostView`] (itself read through the [`SysRoot`]),
//! so each can be tested on fixture trees. The only live inputs are the io_uring probe (held in
//! the context, replaceable in tests) and, for the store path, statvfs and an O_DIRECT open.

mod cpu;
pub mod disk;
pub mod irq;
mod kernel;
pub mod limits;
pub mod memory;

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::cpulist::{CpuSet, CpuSpec};
use crate::facts::HostFacts;
use crate::host;
use crate::sysroot::SysRoot;
use crate::uring::UringSupport;

/// glommio's default registered I/O memory per executor (`DEFAULT_IO_MEMORY`, 10 MiB).
pub const GLOMMIO_IO_MEMORY_BYTES: u64 = 10 << 20;
/// RocketMQ's default commit-log segment size (`mappedFileSizeCommitLog`, 1 GiB).
pub const DEFAULT_SEGMENT_SIZE_BYTES: u64 = 1 << 30;
/// RocketMQ's default store root (`$HOME/store`); used when no store path is given.
pub const DEFAULT_STORE_SUBDIR: &str = "store";

/// Verdict of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Status {
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "WARN")]
    Warn,
    #[serde(rename = "FAIL")]
    Fail,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        })
    }
}

/// One line of the check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckItem {
    /// Stable identifier (`swappiness`, `disk_scheduler`, ...).
    pub id: &'static str,
    pub status: Status,
    /// What the host has.
    pub seen: String,
    /// What the broker wants, with the reason when it is not obvious.
    pub wanted: String,
    /// Command(s) that fix it; `None` when nothing needs fixing or nothing can be done here.
    pub fix: Option<String>,
}

impl CheckItem {
    fn new(
        id: &'static str,
        status: Status,
        seen: impl Into<String>,
        wanted: impl Into<String>,
    ) -> Self {
        Self {
            id,
            status,
            seen: seen.into(),
            wanted: wanted.into(),
            fix: None,
        }
    }

    fn fix(mut self, fix: impl Into<String>) -> Self {
        if self.status != Status::Ok {
            self.fix = Some(fix.into());
        }
        self
    }
}

/// What to check: the root to read, the broker's store path and cores, the broker's sizing.
#[derive(Debug, Clone)]
pub struct CheckContext {
    pub root: SysRoot,
    /// The broker's `storePathRootDir` (a real path; need not exist yet).
    pub store_path: PathBuf,
    /// The broker's cores; `None` means every online CPU (the broker's default).
    pub cpus: Option<CpuSpec>,
    /// Commit-log segment size, for the free-space need.
    pub segment_size_bytes: u64,
    /// Registered I/O memory per shard, for the memlock need.
    pub io_memory_bytes_per_shard: u64,
    /// Free space below which the store is WARNed about (rpk's 10 GiB).
    pub free_floor_bytes: u64,
    /// Used-space percentage past which retention deletes early (`diskMaxUsedSpaceRatio`).
    pub disk_max_used_percent: u64,
    /// io_uring support of the kernel the broker will run on.
    pub uring: UringSupport,
}

impl CheckContext {
    /// A context for this host: root `/`, the live kernel's io_uring probe, default sizing.
    pub fn for_host(store_path: impl Into<PathBuf>, cpus: Option<CpuSpec>) -> Self {
        Self::new(
            SysRoot::host(),
            store_path,
            cpus,
            UringSupport::probe_kernel(),
        )
    }

    /// A context with every input explicit (tests use fixture roots and a chosen probe result).
    pub fn new(
        root: SysRoot,
        store_path: impl Into<PathBuf>,
        cpus: Option<CpuSpec>,
        uring: UringSupport,
    ) -> Self {
        Self {
            root,
            store_path: store_path.into(),
            cpus,
            segment_size_bytes: DEFAULT_SEGMENT_SIZE_BYTES,
            io_memory_bytes_per_shard: GLOMMIO_IO_MEMORY_BYTES,
            free_floor_bytes: disk::FREE_FLOOR_BYTES,
            disk_max_used_percent: disk::DISK_MAX_USED_PERCENT,
            uring,
        }
    }
}

/// The resolved host the items look at: read once, shared by all items.
pub struct HostView<'a> {
    pub ctx: &'a CheckContext,
    pub root: &'a SysRoot,
    pub online: CpuSet,
    /// The broker's cores, resolved against the online CPUs.
    pub broker_cpus: CpuSet,
    pub facts: HostFacts,
}

impl HostView<'_> {
    /// Number of shards: one per broker core.
    pub fn shards(&self) -> u64 {
        self.broker_cpus.len().max(1) as u64
    }

    /// Online CPUs the broker does not use: where IRQs and housekeeping should go.
    pub fn spare_cpus(&self) -> CpuSet {
        self.online.difference(&self.broker_cpus)
    }

    /// The store's whole-disk device, if it sits on one.
    pub fn store_disk(&self) -> Option<&str> {
        self.facts.store.as_ref()?.disk.as_deref()
    }
}

/// Totals of a report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub ok: usize,
    pub warn: usize,
    pub fail: usize,
}

/// The result of `check`: the facts, the resolved broker cores, one item per property.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub tool: &'static str,
    pub tool_version: &'static str,
    pub root: PathBuf,
    pub store_path: PathBuf,
    pub broker_cpus: CpuSet,
    pub shards: u64,
    pub facts: HostFacts,
    pub io_uring: UringSupport,
    pub items: Vec<CheckItem>,
    pub summary: Summary,
}

impl CheckReport {
    /// The worst status of any item.
    pub fn worst(&self) -> Status {
        self.items
            .iter()
            .map(|i| i.status)
            .max()
            .unwrap_or(Status::Ok)
    }

    /// The item with `id`.
    pub fn item(&self, id: &str) -> Option<&CheckItem> {
        self.items.iter().find(|i| i.id == id)
    }
}

/// Runs every check item against the context's host.
pub fn run_checks(ctx: &CheckContext) -> CheckReport {
    let root = &ctx.root;
    let facts = HostFacts::collect(root, Some(&ctx.store_path));
    let online = facts
        .online_cpus
        .clone()
        .or_else(|| host::online_cpus(root).ok())
        .unwrap_or_default();
    let broker_cpus = match &ctx.cpus {
        Some(spec) => spec.resolve(&online),
        None => online.clone(),
    };
    let view = HostView {
        ctx,
        root,
        online,
        broker_cpus,
        facts,
    };
    let items = vec![
        kernel::kernel_version(&view),
        kernel::io_uring_ops(&view),
        kernel::io_uring_disabled(&view),
        memory::memlock(&view),
        cpu::broker_cpus_online(&view),
        cpu::cpu_governor(&view),
        cpu::smt_siblings(&view),
        irq::disk_irq_affinity(&view),
        irq::nic_irq_affinity(&view),
        disk::io_scheduler(&view),
        disk::nomerges(&view),
        disk::write_cache(&view),
        memory::transparent_hugepages(&view),
        memory::swappiness(&view),
        limits::somaxconn(&view),
        limits::tcp_max_syn_backlog(&view),
        limits::file_descriptors(&view),
        kernel::clocksource(&view),
        disk::free_disk(&view),
        disk::filesystem(&view),
    ];
    let mut summary = Summary::default();
    for item in &items {
        match item.status {
            Status::Ok => summary.ok += 1,
            Status::Warn => summary.warn += 1,
            Status::Fail => summary.fail += 1,
        }
    }
    CheckReport {
        tool: "ringmq-tune",
        tool_version: env!("CARGO_PKG_VERSION"),
        root: root.prefix().to_path_buf(),
        store_path: ctx.store_path.clone(),
        shards: view.shards(),
        broker_cpus: view.broker_cpus.clone(),
        facts: view.facts,
        io_uring: ctx.uring.clone(),
        items,
        summary,
    }
}

/// Formats a byte count for people: `512 KiB`, `30.5 MiB`, `1 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn bytes_read_as_people_write_them() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(512 << 10), "512 KiB");
        assert_eq!(human_bytes(61 << 20), "61 MiB");
        assert_eq!(human_bytes((30 << 20) + (512 << 10)), "30.5 MiB");
        assert_eq!(human_bytes(1 << 30), "1 GiB");
    }
}
