//! `apply` and `restore`: the host settings `check` wants, written through sysctl files
//! (`/proc/sys`) and sysfs, after their current values are saved durably to a restore file.
//!
//! Order is the safety argument: (1) refuse unless root, (2) compute the plan from current
//! values, (3) write and fsync the restore file, merging with an existing one so a second
//! `apply` never records already-tuned values as the originals, (4) change settings one by
//! one, collecting failures instead of stopping (each write is independent). `restore` writes
//! the saved values back and renames the restore file to `<file>.restored` once all succeeded.
//!
//! Left alone on purpose: resource limits (memlock, nofile) are per process and belong in the
//! broker's systemd unit or limits.d, and the device write-cache mode, where the wrong value
//! loses data on power failure.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::check::irq::irq_affinity;
use crate::check::limits::{BACKLOG_WANTED, NOFILE_WANTED};
use crate::check::CheckReport;
use crate::error::{Result, TuneError};
use crate::host;
use crate::storage;
use crate::sysroot::{selected_choice, SysRoot};

/// Where the restore file goes by default (under the root prefix).
pub const DEFAULT_RESTORE_FILE: &str = "/var/lib/ringmq-tune/restore.json";

/// One setting to change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The check item this fixes.
    pub item: &'static str,
    /// Host path written (`/proc/sys/vm/swappiness`, `/sys/block/vda/queue/nomerges`).
    pub path: PathBuf,
    /// The value there now, in the form the file accepts back.
    pub current: String,
    pub wanted: String,
}

impl Change {
    /// The shell command equivalent to this change, as `--dry-run` prints it.
    pub fn command(&self) -> String {
        let path = self.path.display().to_string();
        match path.strip_prefix("/proc/sys/") {
            Some(name) => format!("sysctl -w {}={}", name.replace('/', "."), self.wanted),
            None => format!("echo {} > {path}", shell_quote(&self.wanted)),
        }
    }
}

fn shell_quote(value: &str) -> String {
    if value.contains(' ') {
        format!("'{value}'")
    } else {
        value.to_string()
    }
}

/// What `apply` would do: the changes, and what it leaves alone with the reason.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub not_applied: Vec<String>,
}

/// Saved original values.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RestoreFile {
    pub tool_version: String,
    pub created_unix_s: u64,
    pub entries: Vec<RestoreEntry>,
}

/// One saved value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RestoreEntry {
    pub path: PathBuf,
    pub value: String,
}

/// Result of writing settings: what was written and what failed (with the error).
#[derive(Debug, Default)]
pub struct Outcome {
    pub written: Vec<PathBuf>,
    pub failed: Vec<(PathBuf, TuneError)>,
}

/// Computes the plan for the host the report describes (read through `root`).
pub fn plan(root: &SysRoot, report: &CheckReport) -> Plan {
    let mut planner = Planner {
        root,
        plan: Plan {
            changes: Vec::new(),
            not_applied: vec![
                "memlock and nofile limits: per-process; set LimitMEMLOCK=infinity and LimitNOFILE=655350 in the broker's systemd unit (see check's fix column)".to_string(),
                "write cache mode: left as the device reports it; forcing 'write through' on a volatile cache loses data".to_string(),
            ],
        },
    };
    // The order of the steps is the order of the plan's changes (and of `--dry-run`'s output).
    planner.sysctls();
    let disk = report.facts.store.as_ref().and_then(|s| s.disk.clone());
    planner.disk_queue(disk.as_deref());
    planner.transparent_hugepages();
    planner.cpu_governors(report);
    planner.clocksource();
    planner.irq_affinity(report, disk.as_deref());
    planner.plan
}

/// The plan under construction, with the host it reads current values from.
struct Planner<'r> {
    root: &'r SysRoot,
    plan: Plan,
}

impl Planner<'_> {
    /// Adds a change when the file exists and its (selected) value differs from `wanted`;
    /// a missing file means the host does not have the setting, so there is nothing to do.
    fn push(&mut self, item: &'static str, path: String, wanted: String) {
        if let Some(content) = self.root.read_trimmed(&path) {
            let current = selected_choice(&content);
            if current != wanted {
                self.plan.changes.push(Change {
                    item,
                    path: PathBuf::from(path),
                    current,
                    wanted,
                });
            }
        }
    }

    fn sysctl_u64(&self, name: &str) -> Option<u64> {
        host::sysctl(self.root, name)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
    }

    /// swappiness, the accept backlogs, fs.file-max and io_uring_disabled. The backlogs and
    /// file-max are minimums: a host already above them is left alone.
    fn sysctls(&mut self) {
        if self.sysctl_u64("vm.swappiness").is_some_and(|v| v > 1) {
            self.push("swappiness", host::sysctl_path("vm.swappiness"), "1".into());
        }
        for (item, name, wanted) in [
            ("somaxconn", "net.core.somaxconn", BACKLOG_WANTED),
            (
                "tcp_max_syn_backlog",
                "net.ipv4.tcp_max_syn_backlog",
                BACKLOG_WANTED,
            ),
            ("file_descriptors", "fs.file-max", NOFILE_WANTED),
        ] {
            if self.sysctl_u64(name).is_some_and(|v| v < wanted) {
                self.push(item, host::sysctl_path(name), wanted.to_string());
            }
        }
        if host::sysctl(self.root, "kernel.io_uring_disabled").is_ok_and(|v| v != "0") {
            self.push(
                "io_uring_disabled",
                host::sysctl_path("kernel.io_uring_disabled"),
                "0".into(),
            );
        }
    }

    /// The store disk's scheduler (mq-deadline on spinning disks, none otherwise) and nomerges.
    fn disk_queue(&mut self, disk: Option<&str>) {
        let Some(disk) = disk else {
            self.plan
                .not_applied
                .push("disk queue settings: the store is not on a block device".into());
            return;
        };
        let rotational = self
            .root
            .read_trimmed(format!("/sys/block/{disk}/queue/rotational"))
            .is_some_and(|r| r == "1");
        let scheduler = if rotational { "mq-deadline" } else { "none" };
        self.push(
            "io_scheduler",
            format!("/sys/block/{disk}/queue/scheduler"),
            scheduler.into(),
        );
        self.push(
            "nomerges",
            format!("/sys/block/{disk}/queue/nomerges"),
            "2".into(),
        );
    }

    /// THP to madvise, only from the values check flags (enabled=never, defrag=always).
    fn transparent_hugepages(&mut self) {
        const THP: &str = "/sys/kernel/mm/transparent_hugepage";
        for (file, flagged) in [("enabled", "never"), ("defrag", "always")] {
            if self
                .root
                .read_trimmed(format!("{THP}/{file}"))
                .is_some_and(|v| selected_choice(&v) == flagged)
            {
                self.push(
                    "transparent_hugepages",
                    format!("{THP}/{file}"),
                    "madvise".into(),
                );
            }
        }
    }

    fn cpu_governors(&mut self, report: &CheckReport) {
        for cpu in report.broker_cpus.iter() {
            self.push(
                "cpu_governor",
                format!("/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor"),
                "performance".into(),
            );
        }
    }

    /// tsc, when the kernel offers it.
    fn clocksource(&mut self) {
        const CLOCK: &str = "/sys/devices/system/clocksource/clocksource0";
        if self
            .root
            .read_trimmed(format!("{CLOCK}/available_clocksource"))
            .is_some_and(|a| a.split_whitespace().any(|c| c == "tsc"))
        {
            self.push(
                "clocksource",
                format!("{CLOCK}/current_clocksource"),
                "tsc".into(),
            );
        }
    }

    /// Moves the store disk's and the physical NICs' interrupts onto the CPUs the broker does
    /// not use; with no such CPU there is nowhere to move them.
    fn irq_affinity(&mut self, report: &CheckReport, disk: Option<&str>) {
        let online = report.facts.online_cpus.clone().unwrap_or_default();
        let spare = online.difference(&report.broker_cpus);
        if spare.is_empty() {
            self.plan.not_applied.push(
                "IRQ affinity: the broker has every CPU, there is no spare CPU to move interrupts to"
                    .into(),
            );
            return;
        }
        let mut irqs = disk
            .map(|d| storage::disk_irqs(self.root, d))
            .unwrap_or_default();
        for nic in storage::physical_nics(self.root) {
            irqs.extend(storage::nic_irqs(self.root, &nic));
        }
        for irq in irqs {
            let off_broker =
                irq_affinity(self.root, irq).is_some_and(|cpus| cpus.is_subset(&spare));
            if !off_broker {
                self.push(
                    "irq_affinity",
                    format!("/proc/irq/{irq}/smp_affinity_list"),
                    spare.to_string(),
                );
            }
        }
        self.plan.not_applied.push(
            "irqbalance: stop it (systemctl disable --now irqbalance) or it moves the IRQs back"
                .into(),
        );
    }
}

fn require_root(what: &'static str, euid: u32) -> Result<()> {
    if euid == 0 {
        Ok(())
    } else {
        Err(TuneError::NotRoot(what, euid))
    }
}

/// Reads a restore file (host path under `root`).
pub fn read_restore_file(root: &SysRoot, restore_path: &Path) -> Result<RestoreFile> {
    let text = root
        .read(restore_path)
        .map_err(|e| TuneError::RestoreFile {
            path: root.path(restore_path),
            what: e.to_string(),
        })?;
    serde_json::from_str(&text).map_err(|e| TuneError::RestoreFile {
        path: root.path(restore_path),
        what: format!("not a ringmq-tune restore file: {e}"),
    })
}

/// Applies the plan: root check, restore file written and synced, then each change.
pub fn apply(root: &SysRoot, euid: u32, plan: &Plan, restore_path: &Path) -> Result<Outcome> {
    require_root("apply", euid)?;
    let mut restore = if root.exists(restore_path) {
        read_restore_file(root, restore_path)?
    } else {
        RestoreFile {
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            created_unix_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            entries: Vec::new(),
        }
    };
    for change in &plan.changes {
        // An earlier apply's saved value is the true original; keep it.
        if !restore.entries.iter().any(|e| e.path == change.path) {
            restore.entries.push(RestoreEntry {
                path: change.path.clone(),
                value: change.current.clone(),
            });
        }
    }
    let json = serde_json::to_string_pretty(&restore).expect("restore file serialises");
    root.write_file_durably(restore_path, &json)?;
    let mut outcome = Outcome::default();
    for change in &plan.changes {
        match root.write(&change.path, &change.wanted) {
            Ok(()) => outcome.written.push(change.path.clone()),
            Err(e) => outcome.failed.push((change.path.clone(), e)),
        }
    }
    Ok(outcome)
}

/// Writes the saved values back; on full success renames the file to `<file>.restored`.
pub fn restore(root: &SysRoot, euid: u32, restore_path: &Path) -> Result<Outcome> {
    require_root("restore", euid)?;
    let saved = read_restore_file(root, restore_path)?;
    let mut outcome = Outcome::default();
    for entry in &saved.entries {
        match root.write(&entry.path, &entry.value) {
            Ok(()) => outcome.written.push(entry.path.clone()),
            Err(e) => outcome.failed.push((entry.path.clone(), e)),
        }
    }
    if outcome.failed.is_empty() {
        let from = root.path(restore_path);
        let to = from.with_extension("json.restored");
        std::fs::rename(&from, &to).map_err(|source| TuneError::HostFile {
            op: "rename restore file",
            path: from,
            source,
        })?;
    }
    Ok(outcome)
}
