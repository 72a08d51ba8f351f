//! The broker's cores: that they exist, their frequency governor, their SMT siblings.

use super::{CheckItem, HostView, Status};
use crate::cpulist::{CpuSet, CpuSpec};
use crate::host;

/// The broker's cores are online CPUs (a list naming offline CPUs, or a count above the online
/// count, would leave shards unpinned or missing).
pub fn broker_cpus_online(view: &HostView) -> CheckItem {
    let wanted = format!("a subset of the online CPUs {}", view.online);
    let requested_count = match &view.ctx.cpus {
        Some(CpuSpec::Count(n)) => Some(*n),
        _ => None,
    };
    let offline = view.broker_cpus.difference(&view.online);
    let (status, seen) = if view.online.is_empty() {
        (Status::Fail, "online CPU list unreadable".to_string())
    } else if !offline.is_empty() {
        (
            Status::Fail,
            format!("{} (not online: {offline})", view.broker_cpus),
        )
    } else if requested_count.is_some_and(|n| n > view.online.len()) {
        (
            Status::Fail,
            format!(
                "{} CPUs asked for, {} online",
                requested_count.unwrap_or(0),
                view.online.len()
            ),
        )
    } else {
        (
            Status::Ok,
            format!("{} ({} shards)", view.broker_cpus, view.shards()),
        )
    };
    CheckItem::new("broker_cpus", status, seen, wanted)
        .fix(format!("ringmqCpus=<list within {}>", view.online))
}

/// The frequency governor of each broker core: `performance` keeps the clock up so a core
/// woken by a completion does not first ramp its frequency.
pub fn cpu_governor(view: &HostView) -> CheckItem {
    let wanted = "performance on every broker core";
    let mut not_performance = Vec::new();
    let mut readable = 0;
    for cpu in view.broker_cpus.iter() {
        let path = format!("/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor");
        if let Some(governor) = view.root.read_trimmed(path) {
            readable += 1;
            if governor != "performance" {
                not_performance.push((cpu, governor));
            }
        }
    }
    if readable == 0 {
        return CheckItem::new(
            "cpu_governor",
            Status::Ok,
            "no cpufreq driver: the firmware or hypervisor sets the frequency",
            wanted,
        );
    }
    if not_performance.is_empty() {
        return CheckItem::new("cpu_governor", Status::Ok, "performance", wanted);
    }
    let bad = CpuSet::from_ids(not_performance.iter().map(|(cpu, _)| *cpu));
    let seen = not_performance
        .iter()
        .map(|(cpu, g)| format!("cpu{cpu}={g}"))
        .collect::<Vec<_>>()
        .join(" ");
    CheckItem::new("cpu_governor", Status::Warn, seen, wanted).fix(format!(
        "cpupower -c {bad} frequency-set -g performance (or: echo performance > /sys/devices/system/cpu/cpuN/cpufreq/scaling_governor for N in {bad})"
    ))
}

/// SMT: two shards on the two hyperthreads of one core halve each other's throughput while
/// looking like two cores. One shard per physical core is wanted.
pub fn smt_siblings(view: &HostView) -> CheckItem {
    let wanted = "no two broker cores on one physical core";
    let mut shared = Vec::new();
    let mut unreadable = Vec::new();
    let mut seen_pairs = CpuSet::default();
    for cpu in view.broker_cpus.iter() {
        match host::thread_siblings(view.root, cpu) {
            Ok(siblings) => {
                let in_broker = siblings.intersection(&view.broker_cpus);
                if in_broker.len() > 1 && !seen_pairs.contains(cpu) {
                    in_broker.iter().for_each(|c| seen_pairs.insert(c));
                    shared.push(in_broker.to_string());
                }
            }
            Err(_) => unreadable.push(cpu),
        }
    }
    let one_per_core = host::one_thread_per_core(view.root, &view.broker_cpus);
    if !shared.is_empty() {
        return CheckItem::new(
            "smt_siblings",
            Status::Warn,
            format!("sharing a core: {}", shared.join(" ")),
            wanted,
        )
        .fix(format!("ringmqCpus={one_per_core}"));
    }
    if !unreadable.is_empty() {
        return CheckItem::new(
            "smt_siblings",
            Status::Warn,
            format!(
                "topology unreadable for cpu {}",
                CpuSet::from_ids(unreadable)
            ),
            wanted,
        );
    }
    CheckItem::new(
        "smt_siblings",
        Status::Ok,
        format!(
            "{} broker cores on {} physical cores",
            view.broker_cpus.len(),
            one_per_core.len()
        ),
        wanted,
    )
}
