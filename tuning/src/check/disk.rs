//! The store's disk and filesystem: scheduler, merges, write cache, free space, O_DIRECT.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::{human_bytes, CheckItem, HostView, Status};
use crate::sysroot::selected_choice;

/// RocketMQ's default `diskMaxUsedSpaceRatio` (percent): past it retention deletes segments early.
pub const DISK_MAX_USED_PERCENT: u64 = 75;
/// rpk's free-space floor.
pub const FREE_FLOOR_BYTES: u64 = 10 << 30;

fn no_disk(id: &'static str, wanted: &str) -> CheckItem {
    CheckItem::new(id, Status::Warn, "store is not on a block device", wanted)
}

/// I/O scheduler of the store disk: `none` for SSD/NVMe/virtio (the device and the broker's
/// own batching order the I/O; a scheduler only adds latency), `mq-deadline` for spinning disks
/// (os.sh's `deadline`).
pub fn io_scheduler(view: &HostView) -> CheckItem {
    let Some(disk) = view.store_disk() else {
        return no_disk("io_scheduler", "none (SSD) | mq-deadline (HDD)");
    };
    let path = format!("/sys/block/{disk}/queue/scheduler");
    let rotational = view
        .root
        .read_trimmed(format!("/sys/block/{disk}/queue/rotational"))
        .is_some_and(|r| r == "1");
    let want = if rotational { "mq-deadline" } else { "none" };
    let wanted = format!(
        "{want} ({})",
        if rotational {
            "rotational disk"
        } else {
            "non-rotational disk"
        }
    );
    let Some(content) = view.root.read_trimmed(&path) else {
        return CheckItem::new(
            "io_scheduler",
            Status::Warn,
            format!("{path} unreadable"),
            wanted,
        );
    };
    let current = selected_choice(&content);
    let status = if current == want {
        Status::Ok
    } else {
        Status::Warn
    };
    CheckItem::new("io_scheduler", status, format!("{disk}: {current}"), wanted)
        .fix(format!("echo {want} > {path}"))
}

/// `nomerges`: 2 turns off the block layer's merge attempts (rpk); the broker already writes
/// large aligned batches, so merge lookups are pure cost.
pub fn nomerges(view: &HostView) -> CheckItem {
    let Some(disk) = view.store_disk() else {
        return no_disk("nomerges", "2");
    };
    let path = format!("/sys/block/{disk}/queue/nomerges");
    let wanted = "2 (no merge attempts; the broker batches its own writes)";
    match view.root.read_trimmed(&path) {
        Some(value) => {
            let status = if value == "2" {
                Status::Ok
            } else {
                Status::Warn
            };
            CheckItem::new("nomerges", status, format!("{disk}: {value}"), wanted)
                .fix(format!("echo 2 > {path}"))
        }
        None => CheckItem::new(
            "nomerges",
            Status::Warn,
            format!("{path} unreadable"),
            wanted,
        ),
    }
}

/// The kernel's view of the device's write cache. `write back` means the kernel sends a cache
/// flush with every fdatasync, so acks under SYNC_FLUSH are durable. `write through` means it
/// sends none: durable only if the device really has no volatile cache (or power-loss
/// protection). Never switch a volatile-cache device to `write through`: that loses data on
/// power failure. `apply` leaves this setting alone.
pub fn write_cache(view: &HostView) -> CheckItem {
    let wanted =
        "as the device truly is: write back (flushes sent) unless the cache is non-volatile";
    let Some(disk) = view.store_disk() else {
        return no_disk("write_cache", wanted);
    };
    let path = format!("/sys/block/{disk}/queue/write_cache");
    let fua = view
        .root
        .read_trimmed(format!("/sys/block/{disk}/queue/fua"))
        .map_or(String::new(), |f| format!(", fua {f}"));
    match view.root.read_trimmed(&path).as_deref() {
        Some("write back") => CheckItem::new(
            "write_cache",
            Status::Ok,
            format!("{disk}: write back{fua} (fdatasync flushes the device cache)"),
            wanted,
        ),
        Some("write through") => CheckItem::new(
            "write_cache",
            Status::Warn,
            format!("{disk}: write through{fua} (the kernel sends no cache flushes)"),
            wanted,
        )
        .fix(format!(
            "verify the device has no volatile write cache or has power-loss protection; if it does have one: echo 'write back' > {path}"
        )),
        Some(other) => CheckItem::new("write_cache", Status::Warn, format!("{disk}: {other}"), wanted),
        None => CheckItem::new("write_cache", Status::Warn, format!("{path} unreadable"), wanted),
    }
}

/// Free space on the store's filesystem: at least one preallocated segment per shard to start
/// (FAIL below), and rpk's 10 GiB or two segments per shard to run (WARN below); used space
/// past `diskMaxUsedSpaceRatio` makes retention delete at once (WARN).
pub fn free_disk(view: &HostView) -> CheckItem {
    let segment = view.ctx.segment_size_bytes;
    let minimum = view.shards() * segment;
    let comfortable = view.ctx.free_floor_bytes.max(2 * minimum);
    let max_used = view.ctx.disk_max_used_percent;
    let wanted = format!(
        ">= {} free (floor {} or 2 segments per shard), >= {} to start (1 segment of {} per shard), used < {max_used}%",
        human_bytes(comfortable),
        human_bytes(view.ctx.free_floor_bytes),
        human_bytes(minimum),
        human_bytes(segment)
    );
    let store = view.facts.store.as_ref();
    let (Some(free), Some(total)) = (
        store.and_then(|s| s.free_bytes),
        store.and_then(|s| s.total_bytes),
    ) else {
        return CheckItem::new(
            "free_disk",
            Status::Fail,
            "statvfs failed on the store path",
            wanted,
        );
    };
    let used_percent = ((total - free.min(total)) * 100)
        .checked_div(total)
        .unwrap_or(100);
    let status = if free < minimum {
        Status::Fail
    } else if free < comfortable || used_percent >= max_used {
        Status::Warn
    } else {
        Status::Ok
    };
    let where_ = store.map_or(String::new(), |s| s.existing_path.display().to_string());
    CheckItem::new(
        "free_disk",
        status,
        format!(
            "{} free of {} ({used_percent}% used) at {where_}",
            human_bytes(free),
            human_bytes(total)
        ),
        wanted,
    )
    .fix("free space, put the store on a larger filesystem, or lower mappedFileSizeCommitLog")
}

/// The store's filesystem type and whether it takes O_DIRECT. XFS and ext4 are what O_DIRECT
/// with preallocated files is made for; copy-on-write filesystems change what fdatasync costs;
/// memory and network filesystems make "on disk" mean something else.
pub fn filesystem(view: &HostView) -> CheckItem {
    let wanted = "xfs or ext4 on a local disk, O_DIRECT accepted";
    let Some(store) = view.facts.store.as_ref() else {
        return CheckItem::new("filesystem", Status::Fail, "no store path", wanted);
    };
    let fs_type = store
        .fs_type
        .clone()
        .unwrap_or_else(|| "unknown".to_string());
    let (type_status, note) = match fs_type.as_str() {
        "xfs" | "ext4" => (Status::Ok, ""),
        "btrfs" | "zfs" | "f2fs" | "bcachefs" => (
            Status::Warn,
            " (copy-on-write/own caching: fdatasync cost and O_DIRECT semantics differ)",
        ),
        "tmpfs" | "ramfs" => (Status::Fail, " (memory: nothing survives a reboot)"),
        "nfs" | "nfs4" | "cifs" | "smb3" | "9p" | "ceph" => (
            Status::Fail,
            " (network filesystem: fdatasync is not a local device flush)",
        ),
        t if t.starts_with("fuse") => (
            Status::Fail,
            " (FUSE: O_DIRECT and fdatasync depend on the daemon)",
        ),
        _ => (Status::Warn, " (untested filesystem)"),
    };
    let (direct_status, direct_seen) = if store.path.is_dir() {
        match try_open_direct(&store.path) {
            Ok(()) => (Status::Ok, "O_DIRECT open ok".to_string()),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                (Status::Fail, "O_DIRECT refused (EINVAL)".to_string())
            }
            Err(e) => (Status::Warn, format!("O_DIRECT not tested: {e}")),
        }
    } else {
        (
            Status::Ok,
            "O_DIRECT not tested: store path does not exist yet".to_string(),
        )
    };
    let mount = store
        .mount_point
        .as_ref()
        .map_or(String::new(), |m| format!(" on {}", m.display()));
    CheckItem::new(
        "filesystem",
        type_status.max(direct_status),
        format!("{fs_type}{mount}{note}, {direct_seen}"),
        wanted,
    )
    .fix("put storePathRootDir on an xfs or ext4 filesystem on a local disk")
}

/// Creates, then removes, an O_DIRECT file in `dir`: the only reliable O_DIRECT test is asking.
fn try_open_direct(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".ringmq-tune-odirect-{}", std::process::id()));
    let c_path = CString::new(probe.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: c_path is a valid NUL-terminated path; the fd is closed below.
    let fd = unsafe {
        libc::open(
            c_path.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_DIRECT | libc::O_CLOEXEC,
            0o600,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was returned by open above and is closed once.
    unsafe { libc::close(fd) };
    std::fs::remove_file(&probe)
}
