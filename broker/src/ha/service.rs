//! One shard's replication service: what the server starts on each shard and what handlers ask
//! (the SYNC_MASTER wait, the slave refusal, the lag for runtime info). Narrow on purpose: it
//! holds only its own state and settings; the store is handed to [`ShardHa::start`].

use std::rc::Rc;
use std::time::Duration;

use glommio::net::TcpListener;
use glommio::task::JoinHandle;

use super::master::run_master;
use super::slave::run_slave;
use super::sync::master_ha_addr;
use super::{HaError, HaSettings, LearnedMaster, MasterState, Replication, SlaveState};
use crate::config::{BrokerConfig, BrokerRole};
use crate::store::Store;

/// Exit status of a slave whose master runs another shard count (a configuration error that no
/// retry can fix).
pub const EXIT_SHARD_COUNT_MISMATCH: i32 = 3;

/// Replication figures of one shard, for GET_BROKER_RUNTIME_INFO.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HaStatus {
    /// Slaves attached to this master shard (0 on a slave).
    pub slaves: u32,
    /// Master: bytes the best slave is behind (`None` without a slave). Slave: bytes behind
    /// the master, as far as it knows.
    pub lag_bytes: Option<u64>,
    /// How long the lag has lasted, ms (0 when caught up).
    pub lag_ms: Option<i64>,
    /// Slave: connected to its master now.
    pub following: bool,
    /// Summed over shards by [`HaStatus::add`]: shards following their master.
    pub following_shards: u32,
    /// Slave: why replication stopped for good (divergence), with both offsets.
    pub diverged: Option<String>,
    /// Slave: the master HA address followed.
    pub master: Option<String>,
}

impl HaStatus {
    /// Adds another shard's figures: slaves and following shards add up, the lag is the
    /// worst shard's, the first divergence and master seen are kept.
    pub fn add(&mut self, other: &HaStatus) {
        self.slaves += other.slaves;
        self.following |= other.following;
        self.following_shards += u32::from(other.following);
        self.lag_bytes = self.lag_bytes.max(other.lag_bytes);
        self.lag_ms = self.lag_ms.max(other.lag_ms);
        if self.diverged.is_none() {
            self.diverged.clone_from(&other.diverged);
        }
        if self.master.is_none() {
            self.master.clone_from(&other.master);
        }
    }
}

pub struct ShardHa {
    role: BrokerRole,
    master: Rc<MasterState>,
    slave: Rc<SlaveState>,
    settings: HaSettings,
    fallbehind_max_bytes: u64,
    sync_timeout: Duration,
}

impl ShardHa {
    pub fn new(config: &BrokerConfig, shard_id: u16, shard_count: u16) -> Rc<ShardHa> {
        Rc::new(ShardHa {
            role: config.broker_role,
            master: Rc::default(),
            slave: Rc::default(),
            settings: HaSettings::new(config, shard_id, shard_count),
            fallbehind_max_bytes: config.ha_slave_fallbehind_max_bytes,
            sync_timeout: Duration::from_millis(config.sync_flush_timeout_ms),
        })
    }

    pub fn is_slave(&self) -> bool {
        self.role == BrokerRole::Slave
    }

    /// `brokerRole` as RocketMQ spells it.
    pub fn role_name(&self) -> &'static str {
        match self.role {
            BrokerRole::AsyncMaster => "ASYNC_MASTER",
            BrokerRole::SyncMaster => "SYNC_MASTER",
            BrokerRole::Slave => "SLAVE",
        }
    }

    /// Starts this shard's HA task: a master listens on `haListenPort + shard`, a slave follows
    /// its master's same shard. The task ends at [`ShardHa::stop`]. A bind failure is returned
    /// (the broker cannot keep its promise without the port).
    pub fn start(
        &self,
        config: &BrokerConfig,
        store: Rc<Store>,
        learned: LearnedMaster,
    ) -> Result<JoinHandle<()>, HaError> {
        let settings = self.settings.clone();
        if self.role != BrokerRole::Slave {
            let port = config
                .ha_listen_port()
                .checked_add(settings.shard_id)
                .ok_or_else(|| HaError::Protocol("haListenPort + shard exceeds 65535".into()))?;
            let listener = TcpListener::bind((config.broker_ip1.as_str(), port))
                .map_err(|e| HaError::Io(std::io::Error::other(format!("HA port {port}: {e}"))))?;
            let task = run_master(listener, store, self.master.clone(), settings);
            return Ok(glommio::spawn_local(task).detach());
        }
        let config = config.clone();
        let state = self.slave.clone();
        let follow = run_slave(store, state, settings.clone(), move || {
            master_ha_addr(&config, &learned)
        });
        Ok(glommio::spawn_local(async move {
            if let Err(e @ HaError::ShardCount { .. }) = follow.await {
                tracing::error!(shard = settings.shard_id, "{e}");
                eprintln!("ringmq-broker: {e}");
                std::process::exit(EXIT_SHARD_COUNT_MISMATCH);
            }
        })
        .detach())
    }

    /// Ends the HA task and answers every waiting SYNC_MASTER send (shutdown).
    pub fn stop(&self) {
        self.master.stop();
        self.slave.stop();
    }

    /// After the local flush promise held for a send ending at `end`: SYNC_MASTER waits for a
    /// slave (group-committed, see [`MasterState::wait_replicated`]); other roles return at once.
    pub async fn replicate(&self, end: u64) -> Replication {
        if self.role != BrokerRole::SyncMaster {
            return Replication::Replicated;
        }
        self.master
            .wait_replicated(end, self.fallbehind_max_bytes, self.sync_timeout)
            .await
    }

    /// This shard's replication figures; `written` is its log's written end.
    pub fn status(&self, written: u64, now_ms: i64) -> HaStatus {
        if self.role == BrokerRole::Slave {
            let (bytes, ms) = self.slave.lag(now_ms);
            return HaStatus {
                slaves: 0,
                lag_bytes: Some(bytes),
                lag_ms: Some(ms),
                following: self.slave.connected.get(),
                following_shards: 0,
                diverged: self.slave.diverged.borrow().clone(),
                master: self.slave.master.borrow().clone(),
            };
        }
        let lag = self.master.lag(written, now_ms);
        HaStatus {
            slaves: self.master.slaves().len() as u32,
            lag_bytes: lag.map(|l| l.0),
            lag_ms: lag.map(|l| l.1),
            following: false,
            following_shards: 0,
            diverged: None,
            master: None,
        }
    }

    /// The master shard this slave follows (`ip:port` of its HA listener), if known.
    pub fn master(&self) -> Option<String> {
        self.slave.master.borrow().clone()
    }
}

/// Java's answer to a send on a slave (`PutMessageStatus.SERVICE_NOT_AVAILABLE`), code 14.
pub fn slave_send_refusal_remark(disk_ratio: &str) -> String {
    format!(
        "service not available now. It may be caused by one of the following reasons: the \
         broker's disk is full [{disk_ratio}], messages are put to the slave, message store has \
         been shut down, etc."
    )
}

/// Java's `diskUtil()` text for the remark: the store's file-system use (ringmq keeps consume
/// queues and index on the same file system as the commit log, so all three show it).
pub fn disk_ratio_text(store_root: &std::path::Path) -> String {
    let ratio = disk_used_ratio(store_root).unwrap_or(-1.0);
    format!("CL: {ratio:5.2} CQ: {ratio:5.2} INDEX: {ratio:5.2}")
}

fn disk_used_ratio(path: &std::path::Path) -> Option<f64> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we own; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 || st.f_blocks == 0 {
        return None;
    }
    Some(1.0 - st.f_bavail as f64 / st.f_blocks as f64)
}

/// The response code of a send whose local flush held, by its replication outcome (Java's
/// `handlePutMessageResult`: the response still carries msgId and offsets).
pub fn replication_code(r: Replication) -> ringmq_proto::code::ResponseCode {
    use ringmq_proto::code::ResponseCode;
    match r {
        Replication::Replicated => ResponseCode::Success,
        Replication::SlaveNotAvailable => ResponseCode::SlaveNotAvailable,
        Replication::Timeout => ResponseCode::FlushSlaveTimeout,
    }
}

/// `suggestWhichBrokerId` for a pull answered by a master (Java's `PullMessageProcessor`): with
/// `slaveReadEnable`, the group's `whichBrokerWhenConsumeSlowly` when the consumer reads further
/// behind the log end than `accessMessageInMemoryMaxRatio` % of RAM (its reads would leave
/// memory), else the group's `brokerId`; without it, the master (0).
/// `group` is (`brokerId`, `whichBrokerWhenConsumeSlowly`).
pub fn suggest_which_broker_id(
    slave_read_enable: bool,
    ratio_percent: u32,
    memory_bytes: u64,
    (log_end, pulled_offset): (u64, u64),
    (broker_id, when_slow): (i64, i64),
) -> i64 {
    if !slave_read_enable {
        return MASTER_ID;
    }
    let behind = log_end.saturating_sub(pulled_offset);
    let in_memory = memory_bytes / 100 * u64::from(ratio_percent);
    if behind > in_memory {
        when_slow
    } else {
        broker_id
    }
}

/// Java's `MixAll.MASTER_ID`.
pub const MASTER_ID: i64 = 0;

/// Physical memory of this host (from `/proc/meminfo`, read once).
pub fn total_memory_bytes() -> u64 {
    static TOTAL: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TOTAL.get_or_init(|| {
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| {
                let line = t.lines().find(|l| l.starts_with("MemTotal:"))?;
                let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(kib * 1024)
            })
            .unwrap_or(u64::MAX)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lagging_consumer_is_sent_to_the_slave_only_with_slave_read_enable() {
        let gib = 1u64 << 30;
        let suggest = |enable, log_end, group| {
            suggest_which_broker_id(enable, 40, 10 * gib, (log_end, gib), group)
        };
        // 40 % of 10 GiB = 4 GiB: 5 GiB behind is slow.
        assert_eq!(suggest(true, 6 * gib, (0, 1)), 1);
        assert_eq!(suggest(true, 2 * gib, (0, 1)), 0);
        // The group's own brokerId / whichBrokerWhenConsumeSlowly are what is suggested.
        assert_eq!(suggest(true, 6 * gib, (0, 2)), 2);
        assert_eq!(suggest(true, 2 * gib, (1, 2)), 1);
        assert_eq!(suggest(false, 6 * gib, (1, 2)), MASTER_ID);
        assert!(total_memory_bytes() > 0);
    }

    #[test]
    fn slave_refusal_is_javas_remark() {
        let remark = slave_send_refusal_remark("CL:  0.10 CQ:  0.10 INDEX:  0.10");
        assert!(remark.starts_with("service not available now."));
        assert!(remark.contains("messages are put to the slave"));
    }
}
