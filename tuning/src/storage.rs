//! From a store path to what it lives on: the mount (filesystem type, options), the block
//! device and its disk, the disk's queue settings and the IRQs of the devices behind it.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::sysroot::SysRoot;

/// One row of `/proc/self/mounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub source: String,
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub options: String,
}

/// The nearest existing ancestor of `path` (the path itself if it exists), made absolute and
/// free of symlinks. A store directory that does not exist yet is judged by where it will be made.
pub fn nearest_existing(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    let mut candidate = absolute.as_path();
    loop {
        if let Ok(real) = std::fs::canonicalize(candidate) {
            return real;
        }
        match candidate.parent() {
            Some(parent) => candidate = parent,
            None => return PathBuf::from("/"),
        }
    }
}

/// Parses the mounts table, undoing the kernel's octal escapes (`\040` for a space).
pub fn parse_mounts(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            Some(MountEntry {
                source: unescape_octal(fields.next()?),
                mount_point: PathBuf::from(unescape_octal(fields.next()?)),
                fs_type: fields.next()?.to_string(),
                options: fields.next().unwrap_or("").to_string(),
            })
        })
        .collect()
}

fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let is_escape = bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b));
        if is_escape {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("0");
            out.push(u8::from_str_radix(digits, 8).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount holding `path`: the entry with the longest mount point that is a prefix of it.
/// Later entries win ties, as the last mount over a point is the visible one.
pub fn mount_of(root: &SysRoot, path: &Path) -> Option<MountEntry> {
    let text = root
        .read("/proc/self/mounts")
        .or_else(|_| root.read("/proc/mounts"))
        .ok()?;
    let mut best: Option<MountEntry> = None;
    for entry in parse_mounts(&text) {
        if !path.starts_with(&entry.mount_point) {
            continue;
        }
        let longer = best
            .as_ref()
            .is_none_or(|b| entry.mount_point.as_os_str().len() >= b.mount_point.as_os_str().len());
        if longer {
            best = Some(entry);
        }
    }
    best
}

/// The whole-disk block device name (`nvme0n1`, `vda`, `sda`) behind a mount source such as
/// `/dev/nvme0n1p2`, or `None` for sources that are not block devices (tmpfs, overlay, nfs).
pub fn disk_of_source(root: &SysRoot, source: &str) -> Option<String> {
    let device = if root.is_host() && source.starts_with("/dev/") {
        // /dev/mapper/x and /dev/disk/by-uuid/... are links to /dev/dm-N or /dev/sdXN.
        std::fs::canonicalize(source).unwrap_or_else(|_| PathBuf::from(source))
    } else {
        PathBuf::from(source)
    };
    if !device.starts_with("/dev/") {
        return None;
    }
    let name = device.file_name()?.to_string_lossy().into_owned();
    disk_of_block_name(root, &name)
}

/// The disk for a block name: itself if it is a disk, its parent if it is a partition.
pub fn disk_of_block_name(root: &SysRoot, name: &str) -> Option<String> {
    if root.exists(format!("/sys/block/{name}")) {
        return Some(name.to_string());
    }
    root.list_dir("/sys/block")
        .into_iter()
        .find(|disk| root.exists(format!("/sys/block/{disk}/{name}/partition")))
}

/// The disk holding `path` on the real host, found from the file's device number through
/// `/sys/dev/block/MAJ:MIN` (covers `/dev/root` and other sources without a usable name).
pub fn disk_of_path_by_devno(root: &SysRoot, path: &Path) -> Option<String> {
    let c_path = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: c_path is a valid NUL-terminated string and st is a plain C struct we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::stat(c_path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let (major, minor) = (libc::major(st.st_dev), libc::minor(st.st_dev));
    let device = root.canonical(format!("/sys/dev/block/{major}:{minor}"))?;
    let name = device.file_name()?.to_string_lossy().into_owned();
    disk_of_block_name(root, &name)
}

/// Free and total bytes of the filesystem holding `path` (statvfs; `f_bavail` is what an
/// unprivileged writer can use, which is what the broker gets).
pub fn free_and_total_bytes(path: &Path) -> Option<(u64, u64)> {
    let c_path = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: c_path is valid and NUL-terminated; vfs is a plain C struct we own.
    let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut vfs) } != 0 {
        return None;
    }
    let block = vfs.f_frsize as u64;
    Some((vfs.f_bavail as u64 * block, vfs.f_blocks as u64 * block))
}

/// The IRQ numbers of the device behind a sysfs device path: walks up from the device towards
/// `/sys/devices` until a directory lists `msi_irqs` (PCI MSI/MSI-X) or has a non-zero `irq`.
pub fn irqs_of_device(root: &SysRoot, device: &Path) -> Vec<u32> {
    let mut dir = Some(device.to_path_buf());
    while let Some(current) = dir {
        if current == Path::new("/sys/devices") || current == Path::new("/") {
            break;
        }
        let msi: Vec<u32> = root
            .list_dir(current.join("msi_irqs"))
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect();
        if !msi.is_empty() {
            return msi;
        }
        if let Some(irq) = root
            .read_trimmed(current.join("irq"))
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|&irq| irq != 0)
        {
            return vec![irq];
        }
        dir = current.parent().map(Path::to_path_buf);
    }
    Vec::new()
}

/// IRQs of a disk (`/sys/block/<disk>` resolved to its device).
pub fn disk_irqs(root: &SysRoot, disk: &str) -> Vec<u32> {
    match root.canonical(format!("/sys/block/{disk}")) {
        Some(device) => irqs_of_device(root, &device),
        None => Vec::new(),
    }
}

/// Network interfaces backed by a device (skips `lo`, bridges, bonds' virtual parts, ifb).
pub fn physical_nics(root: &SysRoot) -> Vec<String> {
    root.list_dir("/sys/class/net")
        .into_iter()
        .filter(|nic| root.exists(format!("/sys/class/net/{nic}/device")))
        .collect()
}

/// IRQs of a NIC (`/sys/class/net/<nic>/device` resolved).
pub fn nic_irqs(root: &SysRoot, nic: &str) -> Vec<u32> {
    match root.canonical(format!("/sys/class/net/{nic}/device")) {
        Some(device) => irqs_of_device(root, &device),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_parse_with_escapes() {
        let rows =
            parse_mounts("/dev/sda1 /mnt/my\\040disk xfs rw,noatime 0 0\nproc /proc proc rw 0 0\n");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].mount_point, PathBuf::from("/mnt/my disk"));
        assert_eq!(rows[0].fs_type, "xfs");
        assert_eq!(rows[1].source, "proc");
    }

    #[test]
    fn nearest_existing_climbs_to_an_existing_dir() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("a/b/c");
        assert_eq!(
            nearest_existing(&missing),
            std::fs::canonicalize(dir.path()).unwrap()
        );
    }
}
