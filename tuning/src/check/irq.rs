//! Where the store disk's and the NICs' interrupts are delivered, against the broker's cores.
//!
//! Policy: when the broker leaves CPUs spare, interrupts belong there (Redpanda's `sq_split`
//! idea): a shard's loop is not pre-empted by another device's completions. When the broker
//! has every CPU there is nowhere else to send them, and any placement is accepted.

use super::{CheckItem, HostView, Status};
use crate::cpulist::CpuSet;
use crate::storage;
use crate::sysroot::SysRoot;

/// The CPUs an IRQ is delivered to: the effective affinity if the kernel reports it, else the
/// configured one.
pub fn irq_affinity(root: &SysRoot, irq: u32) -> Option<CpuSet> {
    ["effective_affinity_list", "smp_affinity_list"]
        .iter()
        .filter_map(|file| root.read_trimmed(format!("/proc/irq/{irq}/{file}")))
        .find(|list| !list.is_empty())
        .and_then(|list| CpuSet::parse_list(&list).ok())
}

/// Judges a set of IRQs of one kind of device (`what`) against the broker's cores.
fn judge_irqs(view: &HostView, id: &'static str, what: &str, irqs: &[u32]) -> CheckItem {
    let spare = view.spare_cpus();
    let wanted = if spare.is_empty() {
        "any CPU (the broker has every CPU)".to_string()
    } else {
        format!(
            "spare CPUs {spare} (off the broker's cores {})",
            view.broker_cpus
        )
    };
    if irqs.is_empty() {
        return CheckItem::new(
            id,
            Status::Warn,
            format!("no IRQs found for {what}"),
            wanted,
        );
    }
    let mut placements = Vec::new();
    let mut on_broker = Vec::new();
    for &irq in irqs {
        match irq_affinity(view.root, irq) {
            Some(cpus) => {
                placements.push(format!("{irq}->{cpus}"));
                if !spare.is_empty() && !cpus.is_subset(&spare) {
                    on_broker.push(irq);
                }
            }
            None => placements.push(format!("{irq}->?")),
        }
    }
    let seen = format!("{what}: {}", placements.join(" "));
    if on_broker.is_empty() {
        return CheckItem::new(id, Status::Ok, seen, wanted);
    }
    let fix = on_broker
        .iter()
        .map(|irq| format!("echo {spare} > /proc/irq/{irq}/smp_affinity_list"))
        .collect::<Vec<_>>()
        .join("; ");
    CheckItem::new(id, Status::Warn, seen, wanted).fix(format!("systemctl stop irqbalance; {fix}"))
}

/// The store disk's IRQs.
pub fn disk_irq_affinity(view: &HostView) -> CheckItem {
    let Some(disk) = view.store_disk() else {
        return CheckItem::new(
            "disk_irq_affinity",
            Status::Warn,
            "store is not on a block device",
            "the store on a local disk",
        );
    };
    let irqs = storage::disk_irqs(view.root, disk);
    judge_irqs(view, "disk_irq_affinity", disk, &irqs)
}

/// Every physical NIC's IRQs.
pub fn nic_irq_affinity(view: &HostView) -> CheckItem {
    let nics = storage::physical_nics(view.root);
    if nics.is_empty() {
        return CheckItem::new(
            "nic_irq_affinity",
            Status::Warn,
            "no physical network interface found",
            "a NIC with its IRQs off the broker's cores",
        );
    }
    let mut irqs = Vec::new();
    for nic in &nics {
        irqs.extend(storage::nic_irqs(view.root, nic));
    }
    judge_irqs(view, "nic_irq_affinity", &nics.join(","), &irqs)
}
