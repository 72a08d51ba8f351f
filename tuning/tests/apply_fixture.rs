//! `apply` and `restore` against fixture roots: the real host is never written.

mod common;

use std::path::Path;

use common::{Fixture, DISK_IRQS, NIC_IRQS, NVME_PCI};
use ringmq_tune::apply::{self, DEFAULT_RESTORE_FILE};
use ringmq_tune::check::{run_checks, Status};
use ringmq_tune::TuneError;

const QUEUE: &str = "/sys/block/nvme0n1/queue";

/// The tuned fixture with one value off per setting apply owns.
fn untuned() -> Fixture {
    let fixture = Fixture::tuned();
    let queue = format!("{NVME_PCI}/nvme/nvme0/nvme0n1/queue");
    fixture.write("/proc/sys/vm/swappiness", "60\n");
    fixture.write("/proc/sys/net/core/somaxconn", "128\n");
    fixture.write("/proc/sys/kernel/io_uring_disabled", "2\n");
    fixture.write(&format!("{queue}/scheduler"), "none [mq-deadline] kyber\n");
    fixture.write(&format!("{queue}/nomerges"), "0\n");
    fixture.write(
        "/sys/kernel/mm/transparent_hugepage/defrag",
        "[always] defer madvise never\n",
    );
    fixture.write(
        "/sys/devices/system/cpu/cpu1/cpufreq/scaling_governor",
        "powersave\n",
    );
    fixture.write(
        "/sys/devices/system/clocksource/clocksource0/current_clocksource",
        "hpet\n",
    );
    fixture.write(
        &format!("/proc/irq/{}/smp_affinity_list", DISK_IRQS[0]),
        "0-7\n",
    );
    fixture.write(
        &format!("/proc/irq/{}/effective_affinity_list", DISK_IRQS[0]),
        "3\n",
    );
    fixture
}

fn restore_path() -> &'static Path {
    Path::new(DEFAULT_RESTORE_FILE)
}

#[test]
fn plan_lists_exact_paths_and_commands() {
    let fixture = untuned();
    let plan = apply::plan(&fixture.root(), &fixture.report());
    let commands: Vec<String> = plan.changes.iter().map(|c| c.command()).collect();
    let expected = [
        "sysctl -w vm.swappiness=1",
        "sysctl -w net.core.somaxconn=4096",
        "sysctl -w kernel.io_uring_disabled=0",
        "echo none > /sys/block/nvme0n1/queue/scheduler",
        "echo 2 > /sys/block/nvme0n1/queue/nomerges",
        "echo madvise > /sys/kernel/mm/transparent_hugepage/defrag",
        "echo performance > /sys/devices/system/cpu/cpu1/cpufreq/scaling_governor",
        "echo tsc > /sys/devices/system/clocksource/clocksource0/current_clocksource",
        "echo 0,4-7 > /proc/irq/40/smp_affinity_list",
    ];
    assert_eq!(commands, expected);
    let scheduler = &plan.changes[3];
    assert_eq!(scheduler.current, "mq-deadline");
    // IRQs already on spare CPUs are left alone.
    assert!(!commands
        .iter()
        .any(|c| c.contains(&format!("/proc/irq/{}/", NIC_IRQS[0]))));
    // A tuned host needs nothing.
    let tuned = Fixture::tuned();
    assert!(apply::plan(&tuned.root(), &tuned.report())
        .changes
        .is_empty());
}

#[test]
fn apply_refuses_without_root_and_changes_nothing() {
    let fixture = untuned();
    let plan = apply::plan(&fixture.root(), &fixture.report());
    let err = apply::apply(&fixture.root(), 1000, &plan, restore_path()).unwrap_err();
    assert!(matches!(err, TuneError::NotRoot("apply", 1000)), "{err}");
    assert!(err.to_string().contains("--dry-run"));
    assert_eq!(fixture.read("/proc/sys/vm/swappiness"), "60");
    assert!(!fixture.root().exists(restore_path()));
    let err = apply::restore(&fixture.root(), 1000, restore_path()).unwrap_err();
    assert!(matches!(err, TuneError::NotRoot("restore", 1000)), "{err}");
}

#[test]
fn apply_saves_old_values_then_writes_and_restore_puts_them_back() {
    let fixture = untuned();
    let root = fixture.root();
    let plan = apply::plan(&root, &fixture.report());
    let outcome = apply::apply(&root, 0, &plan, restore_path()).unwrap();
    assert!(outcome.failed.is_empty(), "{:?}", outcome.failed);
    assert_eq!(outcome.written.len(), plan.changes.len());

    let saved = apply::read_restore_file(&root, restore_path()).unwrap();
    let saved_value = |path: &str| {
        saved
            .entries
            .iter()
            .find(|e| e.path == Path::new(path))
            .map(|e| e.value.clone())
            .unwrap_or_else(|| panic!("{path} not saved"))
    };
    assert_eq!(saved_value("/proc/sys/vm/swappiness"), "60");
    assert_eq!(saved_value(&format!("{QUEUE}/scheduler")), "mq-deadline");
    assert_eq!(saved_value("/proc/irq/40/smp_affinity_list"), "0-7");

    assert_eq!(fixture.read("/proc/sys/vm/swappiness"), "1");
    assert_eq!(fixture.read(&format!("{QUEUE}/nomerges")), "2");
    assert_eq!(fixture.read("/proc/irq/40/smp_affinity_list"), "0,4-7");
    // After apply the settings it owns are OK (the IRQ's effective affinity is the kernel's
    // to update, so the fixture's stale copy is dropped to let the configured one count).
    fixture.remove("/proc/irq/40/effective_affinity_list");
    fixture.write(&format!("{QUEUE}/scheduler"), "[none] mq-deadline kyber\n");
    fixture.write(
        "/sys/kernel/mm/transparent_hugepage/defrag",
        "always defer [madvise] never\n",
    );
    let report = fixture.report();
    let not_ok: Vec<_> = report
        .items
        .iter()
        .filter(|i| i.status != Status::Ok)
        .collect();
    assert!(not_ok.is_empty(), "{not_ok:#?}");

    let outcome = apply::restore(&root, 0, restore_path()).unwrap();
    assert!(outcome.failed.is_empty(), "{:?}", outcome.failed);
    assert_eq!(fixture.read("/proc/sys/vm/swappiness"), "60");
    assert_eq!(fixture.read(&format!("{QUEUE}/nomerges")), "0");
    assert_eq!(fixture.read(&format!("{QUEUE}/scheduler")), "mq-deadline");
    assert_eq!(fixture.read("/proc/irq/40/smp_affinity_list"), "0-7");
    assert_eq!(fixture.read("/proc/sys/kernel/io_uring_disabled"), "2");
    assert!(
        !root.exists(restore_path()),
        "restore file kept after a full restore"
    );
    assert!(root.exists("/var/lib/ringmq-tune/restore.json.restored"));
}

#[test]
fn a_second_apply_keeps_the_first_originals() {
    let fixture = untuned();
    let root = fixture.root();
    let plan = apply::plan(&root, &fixture.report());
    apply::apply(&root, 0, &plan, restore_path()).unwrap();
    // Someone changes swappiness again; the next apply must not record 1 (our value) or 30 as
    // the original of a path it already saved.
    fixture.write("/proc/sys/vm/swappiness", "30\n");
    let plan = apply::plan(&root, &fixture.report());
    apply::apply(&root, 0, &plan, restore_path()).unwrap();
    let saved = apply::read_restore_file(&root, restore_path()).unwrap();
    let swappiness: Vec<_> = saved
        .entries
        .iter()
        .filter(|e| e.path == Path::new("/proc/sys/vm/swappiness"))
        .collect();
    assert_eq!(swappiness.len(), 1);
    assert_eq!(swappiness[0].value, "60");
}

#[test]
fn a_failed_write_is_reported_and_the_restore_file_was_written_first() {
    let fixture = untuned();
    let root = fixture.root();
    let plan = apply::plan(&root, &fixture.report());
    // Make one target unwritable the way sysfs refuses: replace the file with a directory.
    let nomerges = root.path(format!("{NVME_PCI}/nvme/nvme0/nvme0n1/queue/nomerges"));
    std::fs::remove_file(&nomerges).unwrap();
    std::fs::create_dir(&nomerges).unwrap();
    let outcome = apply::apply(&root, 0, &plan, restore_path()).unwrap();
    assert_eq!(outcome.failed.len(), 1);
    assert!(outcome.failed[0].0.ends_with("nomerges"));
    assert_eq!(outcome.written.len(), plan.changes.len() - 1);
    let saved = apply::read_restore_file(&root, restore_path()).unwrap();
    assert_eq!(saved.entries.len(), plan.changes.len());
    // A restore that cannot write everything keeps the file for another try.
    let outcome = apply::restore(&root, 0, restore_path()).unwrap();
    assert_eq!(outcome.failed.len(), 1);
    assert!(root.exists(restore_path()));
}

#[test]
fn a_corrupt_restore_file_is_rejected_with_its_path() {
    let fixture = Fixture::tuned();
    fixture.write(DEFAULT_RESTORE_FILE, "{not json");
    let err = apply::restore(&fixture.root(), 0, restore_path()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("restore.json") && text.contains("not a ringmq-tune restore file"),
        "{text}"
    );
    // apply also refuses to merge into it rather than overwrite the saved originals.
    let report = run_checks(&fixture.context());
    let plan = apply::plan(&fixture.root(), &report);
    assert!(apply::apply(&fixture.root(), 0, &plan, restore_path()).is_err());
}
