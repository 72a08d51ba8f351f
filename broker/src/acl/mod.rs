//! ACL 1.0, as RocketMQ 4.x's `PlainAccessValidator` (`aclEnable=true`).
//!
//! * [`config`]: plain_acl.yml → [`AclConfig`] (accounts, permissions, whitelists). Pure.
//! * [`address`]: the whitelist address patterns. Pure.
//! * [`perm`]: permission bits and Java's rules. Pure.
//! * [`check`]: the decision for one request: whitelist, access key, signature (computed by
//!   [`ringmq_proto::acl`], constant-time compare), admin codes, topic and group permissions.
//!   Pure.
//! * [`watch`]: loading, reloading on change from a non-shard thread, and the per-shard view of
//!   the newest immutable snapshot.
//!
//! The server runs [`check::validate`] on every request before dispatching it; a refusal is
//! answered with [`REFUSAL_CODE`] and the Java message as remark, and the connection stays open.

pub mod address;
pub mod check;
pub mod config;
pub mod gate;
pub mod perm;
pub mod watch;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use check::{validate, AclRequest, Refusal};
pub use config::AclConfig;
pub use gate::{AclGate, AclRuntime};
pub use watch::{AclShared, AclView, AclWatcher};

use ringmq_proto::code::ResponseCode;

/// `MixAll.RETRY_GROUP_TOPIC_PREFIX`: a retry topic stands for its consumer group.
pub const RETRY_GROUP_TOPIC_PREFIX: &str = "%RETRY%";

/// The answer to a refused request. RocketMQ 4.x let the `AclException` escape its RPC hook and
/// so answered SYSTEM_ERROR with the exception text; RocketMQ 5's auth pipeline answers
/// NO_PERMISSION with the message, which is what ringmq does. Java clients treat both codes
/// alike (an `MQBrokerException`, retried by producers).
pub const REFUSAL_CODE: ResponseCode = ResponseCode::NoPermission;

/// Default poll period of the file watcher (`aclReloadIntervalMs`).
pub const DEFAULT_RELOAD_INTERVAL_MS: u64 = 500;

/// Errors loading the ACL file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    #[error("ACL whitelist address pattern `{0}` is not valid")]
    Address(String),
    #[error("ACL file format: {0}")]
    Format(String),
    #[error("cannot read ACL file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("ACL file {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

/// The file ACL reads: `aclFilePath` when set, else `$ROCKETMQ_HOME/conf/plain_acl.yml` as
/// RocketMQ reads it, else `conf/plain_acl.yml` under the working directory.
pub fn acl_file_path(configured: Option<&Path>, rocketmq_home: Option<&str>) -> PathBuf {
    if let Some(path) = configured {
        return path.to_path_buf();
    }
    let home = rocketmq_home.filter(|h| !h.is_empty()).unwrap_or(".");
    Path::new(home).join("conf").join("plain_acl.yml")
}
