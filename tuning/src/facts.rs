//! [`HostFacts`]: what a benchmark result records about the machine it ran on. Cheap to collect
//! (a few dozen small file reads and one statvfs, no disk probe), serialisable with serde.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cpulist::CpuSet;
use crate::host;
use crate::storage;
use crate::sysroot::{selected_choice, SysRoot};

/// Machine facts. Fields a host does not expose are `None` rather than guessed.
#[derive(Debug, Clone, Serialize)]
pub struct HostFacts {
    pub hostname: Option<String>,
    pub kernel_release: Option<String>,
    pub cpu_model: Option<String>,
    pub online_cpus: Option<CpuSet>,
    pub logical_cpus: usize,
    pub physical_cores: usize,
    pub memory_total_bytes: Option<u64>,
    pub memory_available_bytes: Option<u64>,
    pub store: Option<StoreFacts>,
}

/// Where a store path lives: filesystem, disk and free space.
#[derive(Debug, Clone, Serialize)]
pub struct StoreFacts {
    /// The path as given.
    pub path: PathBuf,
    /// The nearest existing directory (the path itself once it exists): what was measured.
    pub existing_path: PathBuf,
    pub mount_point: Option<PathBuf>,
    pub mount_source: Option<String>,
    pub fs_type: Option<String>,
    pub mount_options: Option<String>,
    /// Whole-disk block device name (`nvme0n1`, `vda`), if the filesystem sits on one.
    pub disk: Option<String>,
    pub disk_model: Option<String>,
    pub rotational: Option<bool>,
    pub logical_block_bytes: Option<u64>,
    pub scheduler: Option<String>,
    pub write_cache: Option<String>,
    pub free_bytes: Option<u64>,
    pub total_bytes: Option<u64>,
}

impl HostFacts {
    /// Collects the facts under `root`; `store_path` (a real path) adds the storage facts.
    pub fn collect(root: &SysRoot, store_path: Option<&Path>) -> Self {
        let online = host::online_cpus(root).ok();
        let logical_cpus = online.as_ref().map_or(0, CpuSet::len);
        let physical_cores = online
            .as_ref()
            .map_or(0, |cpus| host::one_thread_per_core(root, cpus).len());
        Self {
            hostname: root.read_trimmed("/proc/sys/kernel/hostname"),
            kernel_release: host::kernel_release(root).ok(),
            cpu_model: host::cpu_model(root).ok(),
            online_cpus: online,
            logical_cpus,
            physical_cores,
            memory_total_bytes: host::meminfo_bytes(root, "MemTotal").ok(),
            memory_available_bytes: host::meminfo_bytes(root, "MemAvailable").ok(),
            store: store_path.map(|p| StoreFacts::collect(root, p)),
        }
    }
}

impl StoreFacts {
    /// Collects storage facts for `path` (which need not exist yet).
    pub fn collect(root: &SysRoot, path: &Path) -> Self {
        let existing = storage::nearest_existing(path);
        let mount = storage::mount_of(root, &existing);
        let disk = mount
            .as_ref()
            .and_then(|m| storage::disk_of_source(root, &m.source))
            .or_else(|| {
                root.is_host()
                    .then(|| storage::disk_of_path_by_devno(root, &existing))
                    .flatten()
            });
        let queue = |file: &str| {
            disk.as_ref()
                .and_then(|d| root.read_trimmed(format!("/sys/block/{d}/queue/{file}")))
        };
        let (free_bytes, total_bytes) = match storage::free_and_total_bytes(&existing) {
            Some((free, total)) => (Some(free), Some(total)),
            None => (None, None),
        };
        Self {
            path: path.to_path_buf(),
            existing_path: existing,
            mount_point: mount.as_ref().map(|m| m.mount_point.clone()),
            mount_source: mount.as_ref().map(|m| m.source.clone()),
            fs_type: mount.as_ref().map(|m| m.fs_type.clone()),
            mount_options: mount.as_ref().map(|m| m.options.clone()),
            disk_model: disk
                .as_ref()
                .and_then(|d| root.read_trimmed(format!("/sys/block/{d}/device/model"))),
            rotational: queue("rotational").map(|r| r == "1"),
            logical_block_bytes: queue("logical_block_size").and_then(|v| v.parse().ok()),
            scheduler: queue("scheduler").map(|s| selected_choice(&s)),
            write_cache: queue("write_cache"),
            disk,
            free_bytes,
            total_bytes,
        }
    }
}
