//! Every check item on the tuned fixture host (OK) and on a host broken in that one respect.

mod common;

use common::{item, Fixture, DISK_IRQS, NIC_IRQS};
use ringmq_tune::check::{run_checks, Status};
use ringmq_tune::uring::UringSupport;

fn status_of(fixture: &Fixture, id: &str) -> Status {
    item(&fixture.report(), id).status
}

#[test]
fn tuned_host_is_ok_on_every_item() {
    let fixture = Fixture::tuned();
    let report = fixture.report();
    let not_ok: Vec<_> = report
        .items
        .iter()
        .filter(|i| i.status != Status::Ok)
        .collect();
    assert!(not_ok.is_empty(), "items not OK: {not_ok:#?}");
    assert_eq!(report.items.len(), 20);
    assert_eq!(report.summary.ok, 20);
    assert_eq!(report.broker_cpus.to_string(), "1-3");
    assert_eq!(report.shards, 3);
    // OK items carry no fix; every item says what it saw and wants.
    for i in &report.items {
        assert!(i.fix.is_none(), "{i:?}");
        assert!(!i.seen.is_empty() && !i.wanted.is_empty(), "{i:?}");
    }
    let store = report.facts.store.as_ref().unwrap();
    assert_eq!(store.fs_type.as_deref(), Some("xfs"));
    assert_eq!(store.disk.as_deref(), Some("nvme0n1"));
    assert_eq!(store.disk_model.as_deref(), Some("Fixture NVMe"));
    assert_eq!(
        report.facts.cpu_model.as_deref(),
        Some("Fixture CPU @ 3.0GHz")
    );
    assert_eq!(report.facts.physical_cores, 4);
    assert_eq!(report.facts.memory_total_bytes, Some(65_536_000 * 1024));
}

#[test]
fn old_kernel_fails() {
    let fixture = Fixture::tuned();
    fixture.write("/proc/sys/kernel/osrelease", "5.4.0-150-generic\n");
    let report = fixture.report();
    let kernel = item(&report, "kernel_version");
    assert_eq!(kernel.status, Status::Fail);
    assert_eq!(kernel.seen, "5.4.0-150-generic");
    assert!(kernel.fix.is_some());
}

#[test]
fn missing_or_unavailable_io_uring_fails() {
    let fixture = Fixture::tuned();
    let mut ctx = fixture.context();
    ctx.uring = UringSupport::from_supported(|code| code != io_uring::opcode::Statx::CODE);
    let report = run_checks(&ctx);
    let ops = item(&report, "io_uring_ops");
    assert_eq!(ops.status, Status::Fail);
    assert_eq!(ops.seen, "missing STATX");

    ctx.uring = UringSupport::Unavailable {
        error: "Operation not permitted (os error 1)".into(),
    };
    let report = run_checks(&ctx);
    let ops = item(&report, "io_uring_ops");
    assert_eq!(ops.status, Status::Fail);
    assert!(ops.seen.contains("not permitted"), "{ops:?}");
}

#[test]
fn io_uring_disabled_sysctl_warns_or_fails() {
    let fixture = Fixture::tuned();
    fixture.write("/proc/sys/kernel/io_uring_disabled", "1\n");
    assert_eq!(status_of(&fixture, "io_uring_disabled"), Status::Warn);
    fixture.write("/proc/sys/kernel/io_uring_disabled", "2\n");
    let report = fixture.report();
    let disabled = item(&report, "io_uring_disabled");
    assert_eq!(disabled.status, Status::Fail);
    assert_eq!(
        disabled.fix.as_deref(),
        Some("sysctl -w kernel.io_uring_disabled=0")
    );
    fixture.remove("/proc/sys/kernel/io_uring_disabled");
    assert_eq!(status_of(&fixture, "io_uring_disabled"), Status::Ok);
}

fn limits_with(memlock: &str, nofile: &str) -> String {
    format!(
        "Limit                     Soft Limit           Hard Limit           Units     \n\
         Max open files            {nofile}              {nofile}              files     \n\
         Max locked memory         {memlock}              {memlock}              bytes     \n"
    )
}

#[test]
fn memlock_is_judged_against_the_shards_need() {
    let fixture = Fixture::tuned();
    // 3 shards: minimum 3 x 512 KiB = 1.5 MiB, full 3 x (512 KiB + 30 MiB) = 91.5 MiB.
    fixture.write("/proc/self/limits", &limits_with("8388608", "1048576"));
    let report = fixture.report();
    let memlock = item(&report, "memlock");
    assert_eq!(memlock.status, Status::Warn, "{memlock:?}");
    assert!(memlock.wanted.contains("91.5 MiB"), "{memlock:?}");
    assert!(!memlock.seen.contains("CAP_IPC_LOCK"), "{memlock:?}");
    // A process with CAP_IPC_LOCK is told that io_uring does not charge it (the status stays
    // about the limit: the broker may run as another user).
    fixture.write(
        "/proc/self/status",
        "Name:\tringmq-tune\nCapEff:\t000001fffeffffff\n",
    );
    let report = fixture.report();
    let memlock = item(&report, "memlock");
    assert_eq!(memlock.status, Status::Warn);
    assert!(memlock.seen.contains("CAP_IPC_LOCK"), "{memlock:?}");
    fixture.write("/proc/self/limits", &limits_with("1048576", "1048576"));
    assert_eq!(status_of(&fixture, "memlock"), Status::Fail);
    fixture.write("/proc/self/limits", &limits_with("95944704", "1048576"));
    assert_eq!(status_of(&fixture, "memlock"), Status::Ok);
}

#[test]
fn broker_cpus_must_be_online() {
    let fixture = Fixture::tuned();
    let report = run_checks(&fixture.context_with_cpus(Some("6-9")));
    assert_eq!(item(&report, "broker_cpus").status, Status::Fail);
    let report = run_checks(&fixture.context_with_cpus(Some("16")));
    assert_eq!(item(&report, "broker_cpus").status, Status::Fail);
    let report = run_checks(&fixture.context_with_cpus(Some("2")));
    assert_eq!(item(&report, "broker_cpus").status, Status::Ok);
}

#[test]
fn governor_other_than_performance_warns() {
    let fixture = Fixture::tuned();
    fixture.write(
        "/sys/devices/system/cpu/cpu2/cpufreq/scaling_governor",
        "powersave\n",
    );
    let report = fixture.report();
    let governor = item(&report, "cpu_governor");
    assert_eq!(governor.status, Status::Warn);
    assert_eq!(governor.seen, "cpu2=powersave");
    assert!(governor
        .fix
        .as_deref()
        .unwrap()
        .contains("cpupower -c 2 frequency-set -g performance"));
    // A governor on a CPU the broker does not use is not the broker's concern.
    fixture.write(
        "/sys/devices/system/cpu/cpu2/cpufreq/scaling_governor",
        "performance\n",
    );
    fixture.write(
        "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor",
        "powersave\n",
    );
    assert_eq!(status_of(&fixture, "cpu_governor"), Status::Ok);
}

#[test]
fn shards_on_smt_siblings_warn() {
    let fixture = Fixture::tuned();
    let report = run_checks(&fixture.context_with_cpus(Some("1-5")));
    let smt = item(&report, "smt_siblings");
    assert_eq!(smt.status, Status::Warn);
    assert!(smt.seen.contains("1,5"), "{smt:?}");
    assert_eq!(smt.fix.as_deref(), Some("ringmqCpus=1-4"));
}

#[test]
fn disk_and_nic_irqs_on_broker_cores_warn() {
    let fixture = Fixture::tuned();
    fixture.write(
        &format!("/proc/irq/{}/effective_affinity_list", DISK_IRQS[1]),
        "2\n",
    );
    fixture.write(
        &format!("/proc/irq/{}/effective_affinity_list", NIC_IRQS[0]),
        "0-3\n",
    );
    let report = fixture.report();
    let disk = item(&report, "disk_irq_affinity");
    assert_eq!(disk.status, Status::Warn);
    assert!(disk.seen.contains("41->2"), "{disk:?}");
    let fix = disk.fix.as_deref().unwrap();
    assert!(
        fix.contains("echo 0,4-7 > /proc/irq/41/smp_affinity_list"),
        "{fix}"
    );
    assert!(!fix.contains("/proc/irq/40/"), "{fix}");
    let nic = item(&report, "nic_irq_affinity");
    assert_eq!(nic.status, Status::Warn);
    assert!(nic.seen.starts_with("eth0:"), "{nic:?}");
    // With every CPU given to the broker there is nowhere else for them: OK.
    let report = run_checks(&fixture.context_with_cpus(None));
    assert_eq!(item(&report, "disk_irq_affinity").status, Status::Ok);
    assert_eq!(item(&report, "nic_irq_affinity").status, Status::Ok);
}

#[test]
fn scheduler_depends_on_rotational() {
    let fixture = Fixture::tuned();
    let queue = format!("{}/nvme/nvme0/nvme0n1/queue", common::NVME_PCI);
    fixture.write(&format!("{queue}/scheduler"), "none [mq-deadline] kyber\n");
    let report = fixture.report();
    let scheduler = item(&report, "io_scheduler");
    assert_eq!(scheduler.status, Status::Warn);
    assert_eq!(
        scheduler.fix.as_deref(),
        Some("echo none > /sys/block/nvme0n1/queue/scheduler")
    );
    fixture.write(&format!("{queue}/rotational"), "1\n");
    assert_eq!(status_of(&fixture, "io_scheduler"), Status::Ok);
}

#[test]
fn nomerges_other_than_two_warns() {
    let fixture = Fixture::tuned();
    fixture.write(
        &format!("{}/nvme/nvme0/nvme0n1/queue/nomerges", common::NVME_PCI),
        "0\n",
    );
    let report = fixture.report();
    let nomerges = item(&report, "nomerges");
    assert_eq!(nomerges.status, Status::Warn);
    assert_eq!(nomerges.seen, "nvme0n1: 0");
}

#[test]
fn write_through_cache_warns() {
    let fixture = Fixture::tuned();
    fixture.write(
        &format!("{}/nvme/nvme0/nvme0n1/queue/write_cache", common::NVME_PCI),
        "write through\n",
    );
    let report = fixture.report();
    let cache = item(&report, "write_cache");
    assert_eq!(cache.status, Status::Warn);
    assert!(cache
        .fix
        .as_deref()
        .unwrap()
        .contains("power-loss protection"));
}

#[test]
fn thp_never_or_defrag_always_warns() {
    let fixture = Fixture::tuned();
    fixture.write(
        "/sys/kernel/mm/transparent_hugepage/defrag",
        "[always] defer madvise never\n",
    );
    let report = fixture.report();
    let thp = item(&report, "transparent_hugepages");
    assert_eq!(thp.status, Status::Warn);
    assert_eq!(thp.seen, "enabled=madvise defrag=always");
    fixture.write(
        "/sys/kernel/mm/transparent_hugepage/defrag",
        "always defer [madvise] never\n",
    );
    fixture.write(
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "always madvise [never]\n",
    );
    assert_eq!(status_of(&fixture, "transparent_hugepages"), Status::Warn);
}

#[test]
fn swappiness_above_one_warns() {
    let fixture = Fixture::tuned();
    fixture.write("/proc/sys/vm/swappiness", "60\n");
    let report = fixture.report();
    let swappiness = item(&report, "swappiness");
    assert_eq!(swappiness.status, Status::Warn);
    assert_eq!(swappiness.seen, "60");
    assert_eq!(swappiness.fix.as_deref(), Some("sysctl -w vm.swappiness=1"));
}

#[test]
fn small_backlogs_warn() {
    let fixture = Fixture::tuned();
    fixture.write("/proc/sys/net/core/somaxconn", "128\n");
    fixture.write("/proc/sys/net/ipv4/tcp_max_syn_backlog", "1024\n");
    let report = fixture.report();
    assert_eq!(item(&report, "somaxconn").status, Status::Warn);
    let syn = item(&report, "tcp_max_syn_backlog");
    assert_eq!(syn.status, Status::Warn);
    assert_eq!(
        syn.fix.as_deref(),
        Some("sysctl -w net.ipv4.tcp_max_syn_backlog=4096")
    );
}

#[test]
fn file_descriptor_limits_warn_then_fail() {
    let fixture = Fixture::tuned();
    fixture.write("/proc/self/limits", &limits_with("unlimited", "20000"));
    assert_eq!(status_of(&fixture, "file_descriptors"), Status::Warn);
    fixture.write("/proc/self/limits", &limits_with("unlimited", "1024"));
    assert_eq!(status_of(&fixture, "file_descriptors"), Status::Fail);
    fixture.write("/proc/self/limits", &limits_with("unlimited", "1048576"));
    fixture.write("/proc/sys/fs/file-max", "100000\n");
    let report = fixture.report();
    let fds = item(&report, "file_descriptors");
    assert_eq!(fds.status, Status::Warn);
    assert_eq!(fds.fix.as_deref(), Some("sysctl -w fs.file-max=655350"));
}

#[test]
fn clocksource_other_than_offered_tsc_warns() {
    let fixture = Fixture::tuned();
    let clock = "/sys/devices/system/clocksource/clocksource0";
    fixture.write(&format!("{clock}/current_clocksource"), "hpet\n");
    let report = fixture.report();
    let item_ = item(&report, "clocksource");
    assert_eq!(item_.status, Status::Warn);
    assert_eq!(
        item_.fix.as_deref(),
        Some("echo tsc > /sys/devices/system/clocksource/clocksource0/current_clocksource")
    );
    // kvm-clock where tsc is not offered is the best a guest has.
    fixture.write(&format!("{clock}/current_clocksource"), "kvm-clock\n");
    fixture.write(
        &format!("{clock}/available_clocksource"),
        "kvm-clock hpet\n",
    );
    assert_eq!(status_of(&fixture, "clocksource"), Status::Ok);
}

#[test]
fn free_disk_fails_when_a_segment_per_shard_does_not_fit() {
    let fixture = Fixture::tuned();
    let mut ctx = fixture.context();
    ctx.segment_size_bytes = 1 << 50; // 1 PiB per shard: no test machine has that free
    let report = run_checks(&ctx);
    let free = item(&report, "free_disk");
    assert_eq!(free.status, Status::Fail);
    assert!(free.seen.contains("free of"), "{free:?}");
}

#[test]
fn free_disk_warns_below_the_floor_or_past_the_used_ratio() {
    let fixture = Fixture::tuned();
    let mut ctx = fixture.context();
    ctx.free_floor_bytes = 1 << 50;
    assert_eq!(item(&run_checks(&ctx), "free_disk").status, Status::Warn);
    ctx.free_floor_bytes = 0;
    ctx.disk_max_used_percent = 0; // any use at all is past it
    assert_eq!(item(&run_checks(&ctx), "free_disk").status, Status::Warn);
}

#[test]
fn filesystem_type_and_o_direct() {
    let fixture = Fixture::tuned();
    let report = fixture.report();
    let fs = item(&report, "filesystem");
    assert!(fs.seen.contains("O_DIRECT open ok"), "{fs:?}");
    // The O_DIRECT test leaves nothing behind in the store.
    assert_eq!(std::fs::read_dir(fixture.store()).unwrap().count(), 0);

    fixture.write("/proc/self/mounts", "tmpfs / tmpfs rw 0 0\n");
    let report = fixture.report();
    assert_eq!(item(&report, "filesystem").status, Status::Fail);
    // Not on a block device: the disk items say so instead of guessing.
    assert_eq!(item(&report, "io_scheduler").status, Status::Warn);
    assert_eq!(
        item(&report, "io_scheduler").seen,
        "store is not on a block device"
    );

    fixture.write("/proc/self/mounts", "/dev/sdb1 / btrfs rw 0 0\n");
    assert_eq!(status_of(&fixture, "filesystem"), Status::Warn);
}

#[test]
fn a_store_path_that_does_not_exist_yet_is_judged_by_its_parent() {
    let fixture = Fixture::tuned();
    let mut ctx = fixture.context();
    ctx.store_path = fixture.store().join("not/yet/made");
    let report = run_checks(&ctx);
    let fs = item(&report, "filesystem");
    assert_eq!(fs.status, Status::Ok, "{fs:?}");
    assert!(fs.seen.contains("does not exist yet"), "{fs:?}");
    assert!(!ctx.store_path.exists(), "check must not create the store");
}

#[test]
fn partitions_resolve_to_their_disk_and_unknown_devices_warn() {
    let fixture = Fixture::tuned();
    // The partition resolves to nvme0n1 (tested by the OK run); an unknown device does not.
    fixture.write("/proc/self/mounts", "/dev/sdz9 / xfs rw 0 0\n");
    let report = fixture.report();
    assert!(report.facts.store.as_ref().unwrap().disk.is_none());
    assert_eq!(item(&report, "nomerges").status, Status::Warn);
    assert_eq!(item(&report, "disk_irq_affinity").status, Status::Warn);
}
