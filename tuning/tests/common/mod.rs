//! A fixture host tree: a tuned 8-CPU (4 cores x 2 threads) machine with an NVMe store disk and
//! one NIC, every value at what `check` wants. Tests break one value at a time.
#![allow(dead_code)] // each test binary uses a different part

use std::fs;
use std::path::{Path, PathBuf};

use ringmq_tune::check::{run_checks, CheckContext, CheckItem, CheckReport};
use ringmq_tune::cpulist::CpuSpec;
use ringmq_tune::sysroot::SysRoot;
use ringmq_tune::uring::UringSupport;

pub const NVME_PCI: &str = "/sys/devices/pci0000:00/0000:00:04.0";
pub const NIC_PCI: &str = "/sys/devices/pci0000:00/0000:00:05.0";
pub const DISK_IRQS: [u32; 2] = [40, 41];
pub const NIC_IRQS: [u32; 2] = [50, 51];

pub struct Fixture {
    pub root_dir: tempfile::TempDir,
    pub store_dir: tempfile::TempDir,
}

impl Fixture {
    /// A host where every check item is OK for a broker on CPUs 1-3.
    pub fn tuned() -> Self {
        let fixture = Self {
            root_dir: tempfile::tempdir().unwrap(),
            store_dir: tempfile::tempdir().unwrap(),
        };
        fixture.build();
        fixture
    }

    pub fn root(&self) -> SysRoot {
        SysRoot::at(self.root_dir.path())
    }

    pub fn store(&self) -> &Path {
        self.store_dir.path()
    }

    /// Writes `content` at host path `path` inside the fixture.
    pub fn write(&self, path: &str, content: &str) {
        let on_disk = self.root().path(path);
        fs::create_dir_all(on_disk.parent().unwrap()).unwrap();
        fs::write(on_disk, content).unwrap();
    }

    /// Reads a host path inside the fixture.
    pub fn read(&self, path: &str) -> String {
        fs::read_to_string(self.root().path(path))
            .unwrap()
            .trim()
            .to_string()
    }

    pub fn remove(&self, path: &str) {
        let on_disk = self.root().path(path);
        if on_disk.is_dir() {
            fs::remove_dir_all(on_disk).unwrap();
        } else {
            fs::remove_file(on_disk).unwrap();
        }
    }

    /// A relative symlink at host path `link` pointing at host path `target`, as sysfs has.
    pub fn symlink(&self, link: &str, target: &str) {
        let link_on_disk = self.root().path(link);
        fs::create_dir_all(link_on_disk.parent().unwrap()).unwrap();
        let depth = Path::new(link).parent().unwrap().components().count() - 1;
        let relative: PathBuf = std::iter::repeat_n("..", depth)
            .collect::<PathBuf>()
            .join(target.trim_start_matches('/'));
        std::os::unix::fs::symlink(relative, link_on_disk).unwrap();
    }

    fn build(&self) {
        self.build_proc();
        self.build_cpus_and_mm();
        self.build_store_disk();
        self.build_nic_and_irqs();
    }

    /// Kernel identity, memory, the process's limits and mounts, and the tuned sysctls.
    fn build_proc(&self) {
        self.write("/proc/sys/kernel/osrelease", "6.8.0-45-generic\n");
        self.write("/proc/sys/kernel/hostname", "fixture\n");
        self.write("/proc/sys/kernel/io_uring_disabled", "0\n");
        self.write("/proc/sys/kernel/io_uring_group", "-1\n");
        self.write(
            "/proc/cpuinfo",
            "processor\t: 0\nmodel name\t: Fixture CPU @ 3.0GHz\n\n",
        );
        self.write(
            "/proc/meminfo",
            "MemTotal:       65536000 kB\nMemFree:        60000000 kB\nMemAvailable:   62000000 kB\n",
        );
        self.write(
            "/proc/self/limits",
            "Limit                     Soft Limit           Hard Limit           Units     \n\
             Max cpu time              unlimited            unlimited            seconds   \n\
             Max open files            1048576              1048576              files     \n\
             Max locked memory         unlimited            unlimited            bytes     \n",
        );
        self.write(
            "/proc/self/mounts",
            "proc /proc proc rw 0 0\n/dev/nvme0n1p1 / xfs rw,noatime 0 0\n",
        );
        self.write("/proc/sys/vm/swappiness", "1\n");
        self.write("/proc/sys/net/core/somaxconn", "4096\n");
        self.write("/proc/sys/net/ipv4/tcp_max_syn_backlog", "8192\n");
        self.write("/proc/sys/fs/file-max", "9223372036854775807\n");
    }

    /// 8 CPUs (4 cores x 2 threads) on the performance governor, THP at madvise, tsc clock.
    fn build_cpus_and_mm(&self) {
        self.write("/sys/devices/system/cpu/online", "0-7\n");
        for cpu in 0..8 {
            let core = cpu % 4;
            let base = format!("/sys/devices/system/cpu/cpu{cpu}");
            self.write(
                &format!("{base}/topology/thread_siblings_list"),
                &format!("{core},{}\n", core + 4),
            );
            self.write(&format!("{base}/cpufreq/scaling_governor"), "performance\n");
        }
        self.write(
            "/sys/kernel/mm/transparent_hugepage/enabled",
            "always [madvise] never\n",
        );
        self.write(
            "/sys/kernel/mm/transparent_hugepage/defrag",
            "always defer defer+madvise [madvise] never\n",
        );
        let clock = "/sys/devices/system/clocksource/clocksource0";
        self.write(&format!("{clock}/current_clocksource"), "tsc\n");
        self.write(
            &format!("{clock}/available_clocksource"),
            "tsc hpet acpi_pm \n",
        );
    }

    /// NVMe disk with one partition; IRQs on the PCI function.
    fn build_store_disk(&self) {
        let disk = format!("{NVME_PCI}/nvme/nvme0/nvme0n1");
        self.write(
            &format!("{disk}/queue/scheduler"),
            "[none] mq-deadline kyber\n",
        );
        self.write(&format!("{disk}/queue/nomerges"), "2\n");
        self.write(&format!("{disk}/queue/rotational"), "0\n");
        self.write(&format!("{disk}/queue/write_cache"), "write back\n");
        self.write(&format!("{disk}/queue/fua"), "1\n");
        self.write(&format!("{disk}/queue/logical_block_size"), "512\n");
        self.write(&format!("{disk}/device/model"), "Fixture NVMe\n");
        self.write(&format!("{disk}/nvme0n1p1/partition"), "1\n");
        self.symlink("/sys/block/nvme0n1", &disk);
        for irq in DISK_IRQS {
            self.write(&format!("{NVME_PCI}/msi_irqs/{irq}"), "msix\n");
        }
    }

    /// One NIC, plus lo which has no device; every disk and NIC IRQ on CPU 0 (off the broker).
    fn build_nic_and_irqs(&self) {
        self.write(&format!("{NIC_PCI}/vendor"), "0x8086\n");
        for irq in NIC_IRQS {
            self.write(&format!("{NIC_PCI}/msi_irqs/{irq}"), "msix\n");
        }
        self.symlink("/sys/class/net/eth0/device", NIC_PCI);
        self.write("/sys/class/net/lo/operstate", "unknown\n");
        for irq in DISK_IRQS.iter().chain(NIC_IRQS.iter()) {
            self.write(&format!("/proc/irq/{irq}/smp_affinity_list"), "0\n");
            self.write(&format!("/proc/irq/{irq}/effective_affinity_list"), "0\n");
        }
    }

    /// A check context for a broker on CPUs 1-3 (one thread per core, core 0 spare).
    pub fn context(&self) -> CheckContext {
        self.context_with_cpus(Some("1-3"))
    }

    pub fn context_with_cpus(&self, cpus: Option<&str>) -> CheckContext {
        let mut ctx = CheckContext::new(
            self.root(),
            self.store(),
            cpus.map(|c| CpuSpec::parse(c).unwrap()),
            UringSupport::from_supported(|_| true),
        );
        // Small segments, no floor and no used-space limit, so the free-space item does not
        // depend on the test machine's disk; tests of that item set their own bounds.
        ctx.segment_size_bytes = 1 << 20;
        ctx.free_floor_bytes = 0;
        ctx.disk_max_used_percent = 101;
        ctx
    }

    pub fn report(&self) -> CheckReport {
        run_checks(&self.context())
    }
}

/// The item `id` of a report, or a panic naming what exists.
pub fn item<'a>(report: &'a CheckReport, id: &str) -> &'a CheckItem {
    report.item(id).unwrap_or_else(|| {
        panic!(
            "no item {id} in {:?}",
            report.items.iter().map(|i| i.id).collect::<Vec<_>>()
        )
    })
}
