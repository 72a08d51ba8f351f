//! Facts about the machine and the system under test, recorded with every result.
//!
//! The load generator records what it can see itself (cores, kernel, the results directory's
//! disk) and what it was told or started (the broker's flush and replication mode). The
//! tuner's full host report is embedded when available (`ringmq_tune`).

use std::path::Path;

use serde::Serialize;

/// What the host looked like during the run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HostFacts {
    pub hostname: String,
    /// Online CPUs.
    pub cores: usize,
    /// `uname -r`.
    pub kernel: String,
    pub machine: String,
    pub memory_total_bytes: Option<u64>,
    /// The block device and filesystem holding the broker's store (quickstart) or the results.
    pub data_disk: Option<DiskFacts>,
}

/// The filesystem a path lives on, from `/proc/self/mountinfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DiskFacts {
    pub path: String,
    pub mount_point: String,
    pub filesystem: String,
    pub device: String,
}

/// The system the load ran against.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TargetFacts {
    pub namesrv: String,
    /// What the user said it is (`--target-description`), or "ringmq (quickstart)".
    pub description: Option<String>,
    /// `flushDiskType` when known.
    pub flush_disk_type: Option<String>,
    /// `brokerRole` when known.
    pub broker_role: Option<String>,
    /// Executors of the broker (`ringmqCpus`) when known.
    pub broker_cpus: Option<u32>,
    /// Started by this process (quickstart) on the same machine.
    pub started_by_loadgen: bool,
}

fn uname_field(field: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = field
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Collects the host facts; `data_path` is the directory whose disk matters.
pub fn collect(data_path: &Path) -> HostFacts {
    // SAFETY: `uname` fills a caller-owned, zero-initialised struct and nothing else.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    let uname_ok = unsafe { libc::uname(&mut uts) } == 0;
    HostFacts {
        hostname: if uname_ok {
            uname_field(&uts.nodename)
        } else {
            String::new()
        },
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel: if uname_ok {
            uname_field(&uts.release)
        } else {
            String::new()
        },
        machine: if uname_ok {
            uname_field(&uts.machine)
        } else {
            String::new()
        },
        memory_total_bytes: std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| parse_mem_total_bytes(&m)),
        data_disk: std::fs::read_to_string("/proc/self/mountinfo")
            .ok()
            .and_then(|m| {
                let canonical = data_path.canonicalize().ok()?;
                disk_of(&m, &canonical.to_string_lossy())
            }),
    }
}

fn parse_mem_total_bytes(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The mount with the longest mount point that contains `path` (`/proc/self/mountinfo` format:
/// `id parent major:minor root mount-point options … - fstype source super-options`).
pub fn disk_of(mountinfo: &str, path: &str) -> Option<DiskFacts> {
    let mut best: Option<DiskFacts> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if fields.len() < dash + 3 || fields.len() < 5 {
            continue;
        }
        let mount_point = fields[4];
        let inside = path == mount_point
            || mount_point == "/"
            || path
                .strip_prefix(mount_point)
                .is_some_and(|rest| rest.starts_with('/'));
        if inside
            && best
                .as_ref()
                .is_none_or(|b| mount_point.len() >= b.mount_point.len())
        {
            best = Some(DiskFacts {
                path: path.to_string(),
                mount_point: mount_point.to_string(),
                filesystem: fields[dash + 1].to_string(),
                device: fields[dash + 2].to_string(),
            });
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:26 / /tmp rw,nosuid - tmpfs tmpfs rw
31 22 259:1 / /data rw - xfs /dev/nvme0n1 rw
32 31 259:2 / /data/fast rw - ext4 /dev/nvme1n1 rw
";

    #[test]
    fn longest_containing_mount_wins() {
        let d = disk_of(MOUNTINFO, "/data/fast/store").expect("found");
        assert_eq!(
            (d.mount_point.as_str(), d.device.as_str()),
            ("/data/fast", "/dev/nvme1n1")
        );
        let d = disk_of(MOUNTINFO, "/data/x").expect("found");
        assert_eq!(d.filesystem, "xfs");
        let d = disk_of(MOUNTINFO, "/datax").expect("found");
        assert_eq!(d.mount_point, "/");
        let d = disk_of(MOUNTINFO, "/tmp").expect("found");
        assert_eq!(d.filesystem, "tmpfs");
    }

    #[test]
    fn meminfo_total() {
        assert_eq!(
            parse_mem_total_bytes("MemTotal:       24000000 kB\nMemFree: 1 kB\n"),
            Some(24_000_000 * 1024)
        );
        assert_eq!(parse_mem_total_bytes("nothing"), None);
    }

    #[test]
    fn this_host_has_cores_and_a_kernel() {
        let facts = collect(Path::new("/"));
        assert!(facts.cores >= 1);
        assert!(!facts.kernel.is_empty());
        assert_eq!(
            facts.data_disk.map(|d| d.mount_point),
            Some("/".to_string())
        );
    }
}
