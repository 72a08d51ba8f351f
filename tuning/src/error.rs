//! The crate's error type. Each variant says what went wrong and where, so a CLI user can act on it.

use std::path::PathBuf;

/// Errors of the tuner's library API.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    /// A host file under the root path could not be read or written. The path is the one on disk
    /// (root prefix included), so a test fixture or a missing sysfs file is easy to find.
    #[error("{op} {path}: {source}")]
    HostFile {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A host file had content we could not interpret; `content` is what was there.
    #[error("cannot parse {path}: {what} (content: {content:?})")]
    Parse {
        path: PathBuf,
        what: &'static str,
        content: String,
    },
    /// A CPU list such as `0-3,8` or a count was malformed.
    #[error("bad CPU list {0:?}: expected a count (\"4\") or a list (\"0-3,8\")")]
    CpuList(String),
    /// The disk probe failed; `stage` says which step (open, fallocate, write, fdatasync, ...).
    #[error("disk probe {stage} on {path}: {source}")]
    Probe {
        stage: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The probe was given bounds it cannot work with.
    #[error("disk probe: {0}")]
    ProbeBounds(String),
    /// `apply` or `restore` run by a user who is not root.
    #[error("{0} changes kernel settings and must run as root (effective uid is {1}); use --dry-run to see what it would do")]
    NotRoot(&'static str, u32),
    /// A restore file was missing, unreadable or malformed.
    #[error("restore file {path}: {what}")]
    RestoreFile { path: PathBuf, what: String },
    /// A broker config file line could not be parsed.
    #[error("{path}:{line}: {what}")]
    Config {
        path: PathBuf,
        line: usize,
        what: String,
    },
}

/// Result alias for the crate.
pub type Result<T> = std::result::Result<T, TuneError>;
