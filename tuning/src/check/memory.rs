//! Locked-memory limit, transparent huge pages, swappiness.

use super::{human_bytes, CheckItem, HostView, Status};
use crate::host;
use crate::sysroot::selected_choice;

/// Locked memory glommio needs to create one executor's three rings (its README: 512 KiB).
pub const RING_MEMLOCK_BYTES_PER_SHARD: u64 = 512 << 10;

/// The memlock a broker with `shards` shards needs: (minimum to start, need for full speed).
///
/// minimum = shards x 512 KiB (glommio's three rings per executor; below this executors fail).
/// full    = shards x (512 KiB + 3 x io_memory): glommio registers its io_memory buffer area
///           (default 10 MiB) with each of the three rings, and each registration pins and
///           accounts the pages again. Without it glommio logs a warning and falls back to
///           unregistered buffers (an extra copy per I/O).
pub fn memlock_need_bytes(shards: u64, io_memory_bytes_per_shard: u64) -> (u64, u64) {
    let minimum = shards * RING_MEMLOCK_BYTES_PER_SHARD;
    let full = shards * (RING_MEMLOCK_BYTES_PER_SHARD + 3 * io_memory_bytes_per_shard);
    (minimum, full)
}

/// RLIMIT_MEMLOCK (soft) against what the shards need.
pub fn memlock(view: &HostView) -> CheckItem {
    let (minimum, full) = memlock_need_bytes(view.shards(), view.ctx.io_memory_bytes_per_shard);
    let wanted = format!(
        ">= {} for {} shards = shards x (512 KiB rings + 3 x {} registered io memory); {} to start at all",
        human_bytes(full),
        view.shards(),
        human_bytes(view.ctx.io_memory_bytes_per_shard),
        human_bytes(minimum)
    );
    let fix = "ulimit -l unlimited (shell), or LimitMEMLOCK=infinity (systemd unit), or '* - memlock unlimited' in /etc/security/limits.d/ringmq.conf";
    let (soft, hard) = match host::process_limit(view.root, "Max locked memory") {
        Ok(limits) => limits,
        Err(e) => return CheckItem::new("memlock", Status::Warn, e.to_string(), wanted).fix(fix),
    };
    let show = |v: Option<u64>| v.map_or("unlimited".to_string(), human_bytes);
    let ipc_lock = match host::has_effective_capability(view.root, host::CAP_IPC_LOCK) {
        Some(true) => "; this process has CAP_IPC_LOCK, so io_uring charges it nothing (a broker run without that capability is charged)",
        _ => "",
    };
    let seen = format!(
        "soft {} hard {} (this process; the broker inherits its launcher's){ipc_lock}",
        show(soft),
        show(hard)
    );
    let status = match soft {
        None => Status::Ok,
        Some(limit) if limit >= full => Status::Ok,
        Some(limit) if limit >= minimum => Status::Warn,
        Some(_) => Status::Fail,
    };
    CheckItem::new("memlock", status, seen, wanted).fix(fix)
}

/// THP: `always` or `madvise` lets allocators and glommio's buffers use huge pages; `never`
/// costs TLB misses. Defrag `always` makes page faults compact memory synchronously, a known
/// source of multi-millisecond stalls.
pub fn transparent_hugepages(view: &HostView) -> CheckItem {
    const DIR: &str = "/sys/kernel/mm/transparent_hugepage";
    let wanted = "enabled=madvise|always, defrag not always";
    let (Some(enabled), Some(defrag)) = (
        view.root.read_trimmed(format!("{DIR}/enabled")),
        view.root.read_trimmed(format!("{DIR}/defrag")),
    ) else {
        return CheckItem::new(
            "transparent_hugepages",
            Status::Warn,
            "not exposed (kernel without THP)",
            wanted,
        );
    };
    let (enabled, defrag) = (selected_choice(&enabled), selected_choice(&defrag));
    let mut fixes = Vec::new();
    if enabled == "never" {
        fixes.push(format!("echo madvise > {DIR}/enabled"));
    }
    if defrag == "always" {
        fixes.push(format!("echo madvise > {DIR}/defrag"));
    }
    let status = if fixes.is_empty() {
        Status::Ok
    } else {
        Status::Warn
    };
    CheckItem::new(
        "transparent_hugepages",
        status,
        format!("enabled={enabled} defrag={defrag}"),
        wanted,
    )
    .fix(fixes.join("; "))
}

/// `vm.swappiness`: RocketMQ's os.sh and rpk both set 1 so the broker's memory is not swapped
/// while the page cache of other files is kept.
pub fn swappiness(view: &HostView) -> CheckItem {
    let wanted = "<= 1 (os.sh and rpk set 1)";
    let status_of = |v: u64| if v <= 1 { Status::Ok } else { Status::Warn };
    match host::sysctl(view.root, "vm.swappiness").map(|v| v.parse::<u64>()) {
        Ok(Ok(value)) => CheckItem::new("swappiness", status_of(value), value.to_string(), wanted)
            .fix("sysctl -w vm.swappiness=1"),
        Ok(Err(_)) | Err(_) => CheckItem::new("swappiness", Status::Warn, "unreadable", wanted)
            .fix("sysctl -w vm.swappiness=1"),
    }
}
