//! Kernel version, io_uring availability, clock source.

use super::{CheckItem, HostView, Status};
use crate::host;
use crate::uring::{UringSupport, BROKER_URING_OPS};

/// glommio's minimum kernel (README: 5.8).
const MIN_KERNEL: (u32, u32) = (5, 8);

/// Kernel release against glommio's minimum.
pub fn kernel_version(view: &HostView) -> CheckItem {
    let wanted = format!(">= {}.{} (glommio's minimum)", MIN_KERNEL.0, MIN_KERNEL.1);
    let release = match host::kernel_release(view.root) {
        Ok(r) => r,
        Err(e) => return CheckItem::new("kernel_version", Status::Fail, e.to_string(), wanted),
    };
    let status = match host::kernel_major_minor(&release) {
        Some(v) if v >= MIN_KERNEL => Status::Ok,
        Some(_) => Status::Fail,
        None => Status::Warn,
    };
    CheckItem::new("kernel_version", status, release, wanted)
        .fix("install a kernel >= 5.8 (the distribution's HWE/backports kernel)")
}

/// The io_uring operations the broker uses, probed on the running kernel.
pub fn io_uring_ops(view: &HostView) -> CheckItem {
    let wanted = format!("all {} ops glommio uses", BROKER_URING_OPS.len());
    match &view.ctx.uring {
        UringSupport::Probed { supported, missing } if missing.is_empty() => CheckItem::new(
            "io_uring_ops",
            Status::Ok,
            format!("{}/{} supported", supported.len(), BROKER_URING_OPS.len()),
            wanted,
        ),
        UringSupport::Probed { missing, .. } => CheckItem::new(
            "io_uring_ops",
            Status::Fail,
            format!("missing {}", missing.join(",")),
            wanted,
        )
        .fix("install a kernel >= 5.8 that supports every listed op"),
        UringSupport::Unavailable { error } => CheckItem::new(
            "io_uring_ops",
            Status::Fail,
            format!("cannot create a ring: {error}"),
            wanted,
        )
        .fix("sysctl -w kernel.io_uring_disabled=0; allow io_uring_setup in the container's seccomp profile; ulimit -l unlimited"),
    }
}

/// `kernel.io_uring_disabled` (6.6+): 0 allows everyone, 1 only `io_uring_group` and
/// CAP_SYS_ADMIN, 2 nobody.
pub fn io_uring_disabled(view: &HostView) -> CheckItem {
    let wanted = "0 (io_uring allowed)";
    let Ok(value) = host::sysctl(view.root, "kernel.io_uring_disabled") else {
        return CheckItem::new(
            "io_uring_disabled",
            Status::Ok,
            "absent (kernel before 6.6 has no switch)",
            wanted,
        );
    };
    let group = host::sysctl(view.root, "kernel.io_uring_group").unwrap_or_default();
    let (status, seen) = match value.as_str() {
        "0" => (Status::Ok, "0".to_string()),
        "1" => (
            Status::Warn,
            format!("1 (only gid {group} and CAP_SYS_ADMIN may create rings)"),
        ),
        "2" => (Status::Fail, "2 (io_uring disabled for all)".to_string()),
        other => (Status::Warn, format!("{other} (unknown value)")),
    };
    CheckItem::new("io_uring_disabled", status, seen, wanted)
        .fix("sysctl -w kernel.io_uring_disabled=0")
}

/// The clock source: `tsc` is read in user space at a few ns; `kvm-clock` and arm's
/// `arch_sys_counter` are vDSO clocks too; `hpet`/`acpi_pm` make every timestamp a syscall.
pub fn clocksource(view: &HostView) -> CheckItem {
    const DIR: &str = "/sys/devices/system/clocksource/clocksource0";
    let wanted = "tsc (or another vDSO clock when tsc is not offered)";
    let Some(current) = view.root.read_trimmed(format!("{DIR}/current_clocksource")) else {
        return CheckItem::new("clocksource", Status::Warn, "unreadable", wanted);
    };
    let available = view
        .root
        .read_trimmed(format!("{DIR}/available_clocksource"))
        .unwrap_or_default();
    let tsc_offered = available.split_whitespace().any(|c| c == "tsc");
    let vdso_clock = matches!(current.as_str(), "tsc" | "kvm-clock" | "arch_sys_counter");
    let status = if current == "tsc" || (!tsc_offered && vdso_clock) {
        Status::Ok
    } else {
        Status::Warn
    };
    let fix = if tsc_offered {
        format!("echo tsc > {DIR}/current_clocksource")
    } else {
        "none here: the kernel does not offer tsc (it judged it unstable); check BIOS/hypervisor"
            .to_string()
    };
    CheckItem::new(
        "clocksource",
        status,
        format!("{current} (available: {available})"),
        wanted,
    )
    .fix(fix)
}
