//! Every read and write of `/proc`, `/sys` and the tuner's own state files goes through a
//! [`SysRoot`], a path prefix that is `/` on a real host and a fixture tree in tests. That is what
//! lets each check be tested against OK and bad hosts, and `apply` be tested without touching the
//! machine the tests run on.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{Result, TuneError};

/// A root directory under which host paths such as `/proc/meminfo` are looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysRoot {
    prefix: PathBuf,
}

impl Default for SysRoot {
    fn default() -> Self {
        Self::host()
    }
}

impl SysRoot {
    /// The real host: paths are used as they are.
    pub fn host() -> Self {
        Self {
            prefix: PathBuf::from("/"),
        }
    }

    /// A fixture tree: `/proc/meminfo` becomes `<prefix>/proc/meminfo`.
    pub fn at(prefix: impl Into<PathBuf>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// True when this root is the real host's `/`.
    pub fn is_host(&self) -> bool {
        self.prefix == Path::new("/")
    }

    /// The prefix itself.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// Maps an absolute host path (`/proc/x`) to the path on disk under this root.
    pub fn path(&self, host_path: impl AsRef<Path>) -> PathBuf {
        let host_path = host_path.as_ref();
        let relative = host_path.strip_prefix("/").unwrap_or(host_path);
        self.prefix.join(relative)
    }

    /// Maps a path on disk under this root back to the host path it stands for.
    pub fn host_path_of(&self, on_disk: &Path) -> PathBuf {
        match on_disk.strip_prefix(&self.prefix) {
            Ok(rest) => Path::new("/").join(rest),
            Err(_) => on_disk.to_path_buf(),
        }
    }

    /// Whether a host path exists under this root.
    pub fn exists(&self, host_path: impl AsRef<Path>) -> bool {
        self.path(host_path).exists()
    }

    /// Reads a host file as text.
    pub fn read(&self, host_path: impl AsRef<Path>) -> Result<String> {
        let path = self.path(host_path);
        fs::read_to_string(&path).map_err(|source| TuneError::HostFile {
            op: "read",
            path,
            source,
        })
    }

    /// Reads a host file and trims surrounding whitespace; `None` if it does not exist or cannot
    /// be read (sysfs files vanish with hardware and drivers, which the checks report, not fail on).
    pub fn read_trimmed(&self, host_path: impl AsRef<Path>) -> Option<String> {
        self.read(host_path).ok().map(|s| s.trim().to_string())
    }

    /// Reads a host file holding one integer.
    pub fn read_u64(&self, host_path: impl AsRef<Path>) -> Result<u64> {
        let host_path = host_path.as_ref();
        let text = self.read(host_path)?;
        text.trim().parse().map_err(|_| TuneError::Parse {
            path: self.path(host_path),
            what: "expected an unsigned integer",
            content: text.trim().to_string(),
        })
    }

    /// Names of the entries of a host directory, sorted; empty if the directory is absent.
    pub fn list_dir(&self, host_path: impl AsRef<Path>) -> Vec<String> {
        let mut names: Vec<String> = match fs::read_dir(self.path(host_path)) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }

    /// Resolves symlinks of a host path (sysfs device links) and returns the host path it leads
    /// to. Fixtures use relative links, so resolution stays inside the fixture tree.
    pub fn canonical(&self, host_path: impl AsRef<Path>) -> Option<PathBuf> {
        let on_disk = fs::canonicalize(self.path(host_path)).ok()?;
        let prefix = fs::canonicalize(&self.prefix).ok()?;
        let rest = on_disk.strip_prefix(&prefix).ok()?;
        Some(Path::new("/").join(rest))
    }

    /// Writes a value to a host file the way `echo value > file` does (sysfs and /proc/sys
    /// files take one write of the whole value).
    pub fn write(&self, host_path: impl AsRef<Path>, value: &str) -> Result<()> {
        let path = self.path(host_path);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(|source| TuneError::HostFile {
                op: "open for write",
                path: path.clone(),
                source,
            })?;
        file.write_all(format!("{value}\n").as_bytes())
            .map_err(|source| TuneError::HostFile {
                op: "write",
                path,
                source,
            })
    }

    /// Writes a whole regular file durably: temp file, fsync, rename, fsync of the directory.
    /// Used for the restore file, which must be on disk before any setting changes.
    pub fn write_file_durably(&self, host_path: impl AsRef<Path>, content: &str) -> Result<()> {
        let path = self.path(host_path);
        let io_err = |op: &'static str, p: &Path| {
            let p = p.to_path_buf();
            move |source| TuneError::HostFile {
                op,
                path: p,
                source,
            }
        };
        let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        let tmp = path.with_extension("tmp");
        let mut file = fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
        file.write_all(content.as_bytes())
            .map_err(io_err("write", &tmp))?;
        file.sync_all().map_err(io_err("fsync", &tmp))?;
        fs::rename(&tmp, &path).map_err(io_err("rename", &path))?;
        fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("fsync directory", &dir))
    }
}

/// The bracketed choice of a sysfs selector file (`none [mq-deadline] kyber` gives
/// `mq-deadline`); a file without brackets gives its trimmed content.
pub fn selected_choice(content: &str) -> String {
    match (content.find('['), content.find(']')) {
        (Some(open), Some(close)) if open < close => content[open + 1..close].to_string(),
        _ => content.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_host_paths_under_the_prefix_and_back() {
        let root = SysRoot::at("/tmp/fixture");
        let on_disk = root.path("/proc/meminfo");
        assert_eq!(on_disk, PathBuf::from("/tmp/fixture/proc/meminfo"));
        assert_eq!(root.host_path_of(&on_disk), PathBuf::from("/proc/meminfo"));
        assert_eq!(SysRoot::host().path("/proc/x"), PathBuf::from("/proc/x"));
    }

    #[test]
    fn selected_choice_reads_brackets_or_plain_values() {
        assert_eq!(selected_choice("none [mq-deadline] kyber\n"), "mq-deadline");
        assert_eq!(selected_choice("[none] mq-deadline\n"), "none");
        assert_eq!(selected_choice("performance\n"), "performance");
        assert_eq!(selected_choice("always defer [madvise] never"), "madvise");
    }
}
