//! Small readers of CPU, kernel and memory facts under a [`SysRoot`]. Each returns what the host
//! says or an error naming the file; interpretation (OK / WARN / FAIL) lives in `check/`.

use crate::cpulist::CpuSet;
use crate::error::{Result, TuneError};
use crate::sysroot::SysRoot;

/// The online logical CPUs (`/sys/devices/system/cpu/online`).
pub fn online_cpus(root: &SysRoot) -> Result<CpuSet> {
    CpuSet::parse_list(&root.read("/sys/devices/system/cpu/online")?)
}

/// The SMT siblings of `cpu`, itself included (`topology/thread_siblings_list`).
pub fn thread_siblings(root: &SysRoot, cpu: usize) -> Result<CpuSet> {
    let path = format!("/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list");
    CpuSet::parse_list(&root.read(path)?)
}

/// One CPU per physical core of `cpus` (the lowest id of each sibling group). CPUs whose topology cannot be read count as their own core.
pub fn one_thread_per_core(root: &SysRoot, cpus: &CpuSet) -> CpuSet {
    let mut chosen = CpuSet::default();
    let mut covered = CpuSet::default();
    for cpu in cpus.iter() {
        if covered.contains(cpu) {
            continue;
        }
        let siblings = thread_siblings(root, cpu).unwrap_or_else(|_| CpuSet::from_ids([cpu]));
        siblings.iter().for_each(|s| covered.insert(s));
        chosen.insert(cpu);
    }
    chosen
}

/// The kernel release string (`/proc/sys/kernel/osrelease`, what `uname -r` prints).
pub fn kernel_release(root: &SysRoot) -> Result<String> {
    Ok(root.read("/proc/sys/kernel/osrelease")?.trim().to_string())
}

/// The (major, minor) of a release string such as `6.18.44-fc-v595`.
pub fn kernel_major_minor(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The CPU model name of the first processor in `/proc/cpuinfo` (x86 `model name`, or arm64's
/// `CPU part` line when that is all there is).
pub fn cpu_model(root: &SysRoot) -> Result<String> {
    let text = root.read("/proc/cpuinfo")?;
    let field = |key: &str| {
        text.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    Ok(field("model name")
        .or_else(|| field("Hardware"))
        .or_else(|| field("CPU part").map(|p| format!("CPU part {p}")))
        .unwrap_or_else(|| "unknown".to_string()))
}

/// A `/proc/meminfo` field in bytes (`MemTotal`, `MemAvailable`, ...).
pub fn meminfo_bytes(root: &SysRoot, key: &str) -> Result<u64> {
    let text = root.read("/proc/meminfo")?;
    for line in text.lines() {
        let Some((k, rest)) = line.split_once(':') else {
            continue;
        };
        if k.trim() != key {
            continue;
        }
        let mut words = rest.split_whitespace();
        let value: u64 =
            words
                .next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| TuneError::Parse {
                    path: root.path("/proc/meminfo"),
                    what: "meminfo value is not a number",
                    content: line.to_string(),
                })?;
        let scale = if words.next() == Some("kB") { 1024 } else { 1 };
        return Ok(value * scale);
    }
    Err(TuneError::Parse {
        path: root.path("/proc/meminfo"),
        what: "field not found",
        content: key.to_string(),
    })
}

/// A resource limit of this process from `/proc/self/limits` (soft, hard), `None` meaning
/// unlimited. `name` is the row label, e.g. `Max locked memory` or `Max open files`.
pub fn process_limit(root: &SysRoot, name: &str) -> Result<(Option<u64>, Option<u64>)> {
    let text = root.read("/proc/self/limits")?;
    let bad = |line: &str| TuneError::Parse {
        path: root.path("/proc/self/limits"),
        what: "limit row is not `<name> <soft> <hard> [unit]`",
        content: line.to_string(),
    };
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let value = |word: Option<&str>| match word {
            Some("unlimited") => Ok(None),
            Some(n) => n.parse::<u64>().map(Some).map_err(|_| bad(line)),
            None => Err(bad(line)),
        };
        let soft = value(words.next())?;
        let hard = value(words.next())?;
        return Ok((soft, hard));
    }
    Err(TuneError::Parse {
        path: root.path("/proc/self/limits"),
        what: "limit not found",
        content: name.to_string(),
    })
}

/// CAP_IPC_LOCK's bit in the capability sets.
pub const CAP_IPC_LOCK: u32 = 14;

/// Whether this process's effective capabilities (`CapEff` in `/proc/self/status`) include
/// capability bit `cap`; `None` if the status file cannot be read.
pub fn has_effective_capability(root: &SysRoot, cap: u32) -> Option<bool> {
    let text = root.read("/proc/self/status").ok()?;
    let hex = text.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim();
    let bits = u64::from_str_radix(hex, 16).ok()?;
    Some(bits & (1 << cap) != 0)
}

/// Reads `/proc/sys/<dotted.name>` the way `sysctl -n` does.
pub fn sysctl(root: &SysRoot, name: &str) -> Result<String> {
    Ok(root.read(sysctl_path(name))?.trim().to_string())
}

/// The `/proc/sys` path of a dotted sysctl name.
pub fn sysctl_path(name: &str) -> String {
    format!("/proc/sys/{}", name.replace('.', "/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(kernel_major_minor("6.18.44-fc-v595"), Some((6, 18)));
        assert_eq!(kernel_major_minor("5.4.0-150-generic"), Some((5, 4)));
        assert_eq!(kernel_major_minor("garbage"), None);
    }

    #[test]
    fn sysctl_names_map_to_proc_sys() {
        assert_eq!(sysctl_path("vm.swappiness"), "/proc/sys/vm/swappiness");
    }
}
