//! Replication (design §4): shard k of a master streams its commit log to shard k of each
//! slave, byte for byte, over ringmq's own HA stream ([`wire`], documented in
//! docs/storage-format.md §6).
//!
//! * [`master`] — one listener per shard on `haListenPort + k`; per attached slave a pusher
//!   (log bytes from the slave's end on) and an ACK reader.
//! * [`slave`] — one follower per shard: dials the master's shard k, refuses a master with
//!   another shard count or a log that does not contain its own, appends what arrives through
//!   [`crate::store::Store::append_raw`] (whole records checked, consume queues and index derived
//!   by the store's dispatch, as recovery does) and acknowledges its durable end.
//! * [`state`] — what handlers read: the acknowledged offset SYNC_MASTER sends wait on
//!   (group-committed), slave lag, divergence.
//!
//! Tasks here use only the store and their settings; they never import `server/`.

pub mod master;
pub mod service;
pub mod slave;
pub mod state;
pub mod sync;
pub mod wire;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};

use crate::config::BrokerConfig;
use crate::store::StoreError;
pub use service::{HaStatus, ShardHa};
pub use state::{MasterState, Replication, SlaveState};
use wire::{Frame, RefuseCode, WireError, FRAME_HEADER_BYTES};

/// A master's addresses as a slave learns them from its name servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterAddrs {
    /// `masterAddr`: the master's remoting address (metadata sync).
    pub broker_addr: String,
    /// `haServerAddr`: the master's shard-0 HA address.
    pub ha_addr: String,
}

/// Written by the registrar thread, read by each shard's follower when it (re)connects: not on
/// any data path, so a mutex is fine.
pub type LearnedMaster = Arc<Mutex<Option<MasterAddrs>>>;

/// How long a slave waits before dialling its master again after a failure.
pub const RECONNECT_DELAY_MS: u64 = 1000;
/// How long a TCP connect to a master may take.
pub const CONNECT_TIMEOUT_MS: u64 = 3000;

#[derive(Debug, thiserror::Error)]
pub enum HaError {
    #[error("HA connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("HA stream: {0}")]
    Wire(#[from] WireError),
    #[error("HA store: {0}")]
    Store(#[from] StoreError),
    #[error("HA peer silent for {0} ms")]
    Silent(u64),
    #[error("HA protocol: {0}")]
    Protocol(String),
    /// The master refused with a code a retry can fix (it is not a master yet, ...).
    #[error("master refused ({code:?}): {text}")]
    Refused { code: RefuseCode, text: String },
    /// Fatal for the slave: attaching can never work with this configuration.
    #[error("shard count mismatch: this slave runs {slave} shards, its master {master}; a slave must run the master's shard count")]
    ShardCount { slave: u16, master: u16 },
    /// Fatal for replication: the master's log does not contain this slave's.
    #[error("divergence: {0}")]
    Diverged(String),
}

/// What the HA tasks of one shard are configured with.
#[derive(Debug, Clone)]
pub struct HaSettings {
    pub shard_id: u16,
    pub shard_count: u16,
    pub heartbeat_interval_ms: u64,
    pub housekeeping_interval_ms: u64,
}

impl HaSettings {
    pub fn new(config: &BrokerConfig, shard_id: u16, shard_count: u16) -> HaSettings {
        HaSettings {
            shard_id,
            shard_count,
            heartbeat_interval_ms: config.ha_send_heartbeat_interval_ms,
            housekeeping_interval_ms: config.ha_housekeeping_interval_ms,
        }
    }

    fn housekeeping(&self) -> Duration {
        Duration::from_millis(self.housekeeping_interval_ms)
    }

    fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }
}

/// `host:port` of shard `shard`'s HA listener, given shard 0's.
pub fn shard_addr(base: &str, shard: u16) -> Option<String> {
    let (host, port) = base.rsplit_once(':')?;
    let port = port.parse::<u16>().ok()?.checked_add(shard)?;
    Some(format!("{host}:{port}"))
}

/// Reads one frame into `buf` (payload only) and returns its kind. A peer silent for
/// `silence` is an error: the connection is dead or stuck.
async fn read_frame<R: futures_lite::AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    silence: Duration,
) -> Result<u8, HaError> {
    let read = async {
        let mut head = [0u8; FRAME_HEADER_BYTES];
        r.read_exact(&mut head).await?;
        let (len, kind) = wire::decode_header(&head)?;
        buf.resize(len, 0);
        r.read_exact(buf).await?;
        Ok(kind)
    };
    futures_lite::future::or(read, async {
        glommio::timer::sleep(silence).await;
        Err(HaError::Silent(silence.as_millis() as u64))
    })
    .await
}

/// Encodes `frame` into `scratch` (reused) and writes it.
async fn write_frame<W: futures_lite::AsyncWrite + Unpin>(
    w: &mut W,
    frame: &Frame<'_>,
    scratch: &mut Vec<u8>,
) -> Result<(), HaError> {
    scratch.clear();
    frame.encode(scratch);
    w.write_all(scratch).await?;
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests;
