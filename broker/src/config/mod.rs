//! Broker configuration: defaults, RocketMQ's `broker.conf` keys, ringmq's own keys, and the
//! precedence rule **defaults < `-c` file < `NAMESRV_ADDR` (only if nothing else set it) < flags**.
//!
//! Pure: this module reads no files and no environment itself; `main` hands it the text.

pub mod cli;
pub mod cpus;
pub mod limits;
mod properties;
mod validate;

use std::path::PathBuf;

pub use cpus::{CpuSpec, CpuSpecError};
pub use limits::FlowLimits;
/// The properties parser is the workspace's one (in `ringmq-proto`, shared with the name server
/// and the tuner); re-exported under the names the broker has always used.
pub use ringmq_proto::java_properties::{
    parse as parse_properties, write_pair, PropertiesError, Property,
};

/// When a send is acknowledged (design §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushDiskType {
    AsyncFlush,
    SyncFlush,
}

/// Replication role (design §4): a master acknowledges sends by its flush mode (ASYNC_MASTER)
/// or also waits for a slave to hold them (SYNC_MASTER); a SLAVE copies its master's logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerRole {
    AsyncMaster,
    SyncMaster,
    Slave,
}

/// Everything the broker process is configured with. Field names carry units.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerConfig {
    pub broker_cluster_name: String,
    pub broker_name: String,
    pub broker_id: i64,
    /// Name servers as `ip:port`, in the order given.
    pub namesrv_addrs: Vec<String>,
    pub listen_port: u16,
    /// Address bound and advertised to clients and name servers (`brokerIP1`).
    pub broker_ip1: String,
    pub store_path_root_dir: PathBuf,
    pub flush_disk_type: FlushDiskType,
    pub broker_role: BrokerRole,
    /// Broker-wide permission bits (`brokerPermission`): 6 = read + write, 4 = read only.
    pub broker_permission: i32,
    pub default_topic_queue_nums: u32,
    pub auto_create_topic_enable: bool,
    pub cluster_topic_enable: bool,
    pub broker_topic_enable: bool,
    pub max_message_size_bytes: u32,
    pub file_reserved_time_hours: u32,
    pub disk_max_used_space_ratio_percent: u32,
    pub mapped_file_size_commit_log_bytes: u64,
    pub flush_interval_commit_log_ms: u64,
    /// `flushConsumeQueueThoroughInterval`: consume queues and index are fdatasynced and the
    /// checkpoint written this often (their pages are written every `flushIntervalCommitLog`).
    pub flush_consume_queue_thorough_interval_ms: u64,
    pub sync_flush_timeout_ms: u64,
    pub register_name_server_period_ms: u64,
    pub long_polling_enable: bool,
    pub short_polling_time_ms: u64,
    /// SQL92 property filters (Java's `enablePropertyFilter`, default false): when off, SQL92
    /// subscriptions are refused with Java's SYSTEM_ERROR remark.
    pub enable_property_filter: bool,
    /// Region stamped into MSG_REGION of stored messages and send responses.
    pub region_id: String,
    pub trace_on: bool,
    /// A connection that sends nothing for this long is closed (Netty's
    /// `serverChannelMaxIdleTimeSeconds`; clients heartbeat every 30 s).
    pub server_channel_max_idle_time_seconds: u64,
    /// Interval at which consumer offsets and other broker metadata are written to disk.
    pub flush_consumer_offset_interval_ms: u64,
    pub cpus: CpuSpec,
    pub tail_cache_bytes: u64,
    /// Read-ahead extents (1 MiB each) a shard keeps for pulls that fall behind the tail cache.
    pub read_ahead_extents: u64,
    /// Most messages one pull returns, whatever the client asks (Java's
    /// `maxTransferCountOnMessageInMemory`; ringmq applies it to pulls from disk too, which its
    /// read-ahead serves from memory).
    pub max_transfer_count_on_message_in_memory: u32,
    /// Most bytes of messages one pull returns (Java's `maxTransferBytesOnMessageInMemory`).
    pub max_transfer_bytes_on_message_in_memory: u32,
    /// Consume-queue entries each shard keeps in memory, all its queues together.
    pub consume_queue_cache_entries: u64,
    /// Hash slots per key-index file (`maxHashSlotNum`; ringmq's default is smaller than
    /// Java's, see [`crate::store::INDEX_SLOTS_PER_FILE_DEFAULT`]).
    pub max_hash_slot_num: u32,
    /// Entries per key-index file (`maxIndexNum`; see
    /// [`crate::store::INDEX_ENTRIES_PER_FILE_DEFAULT`]).
    pub max_index_num: u32,
    /// Bytes of full key-index files' filters each shard keeps for QUERY_MESSAGE (0: lookups
    /// walk every full file); see [`crate::store::INDEX_FILTER_CACHE_BYTES_DEFAULT`].
    pub index_filter_cache_bytes: u64,
    /// Bytes of segment space the store zeroes ahead of the log end (0 = off); see
    /// [`ZERO_AHEAD_BYTES_DEFAULT`] and docs/storage-format.md §2.3.
    pub zero_ahead_bytes: u64,
    /// `ringmqWriteLingerMicros`: how long a log write round waits for more appends while
    /// appends arrive concurrently; see [`WRITE_LINGER_US_DEFAULT`].
    pub write_linger_us: u64,
    /// Accepted but not applied yet (a warning says so): the store's group commit takes
    /// whatever arrived during the previous fdatasync, without a byte cap.
    pub group_commit_max_bytes: u64,
    /// `accessMessageInMemoryMaxRatio`: percent of physical memory within which Java counts a
    /// message as still in memory. A new consumer group starts at offset 0 of a queue whose
    /// backlog from 0 to its end is under this share (Java's `checkInDiskByConsumeOffset`).
    pub access_message_in_memory_max_ratio_percent: u32,
    /// Requests a shard may have in progress before new ones get SYSTEM_BUSY.
    pub shard_pending_requests_max: usize,
    /// The request path's other bounds (connections, inboxes, parked pulls).
    pub limits: FlowLimits,
    /// How often each shard looks for half messages to check back (`transactionCheckInterval`).
    pub transaction_check_interval_ms: u64,
    /// A half message younger than this is not checked back yet (`transactionTimeOut`).
    pub transaction_timeout_ms: u64,
    /// Check-backs before a half message is given up (`transactionCheckMax`).
    pub transaction_check_max: u32,
    /// ACL 1.0 (`aclEnable`): every request is checked against plain_acl.yml.
    pub acl_enable: bool,
    /// The ACL file (`aclFilePath`); unset means `$ROCKETMQ_HOME/conf/plain_acl.yml`.
    pub acl_file_path: Option<PathBuf>,
    /// How often the ACL file is checked for changes (`ringmqAclReloadIntervalMs`).
    pub acl_reload_interval_ms: u64,
    /// `metricsExporterType`: `DISABLE` (default) or `PROM` (serve `GET /metrics`).
    pub metrics_exporter_type: MetricsExporterType,
    /// `metricsPromExporterHost`: address the metrics endpoint binds (default: `brokerIP1`).
    pub metrics_prom_exporter_host: Option<String>,
    /// `metricsPromExporterPort` (RocketMQ 5's default 5557).
    pub metrics_prom_exporter_port: u16,
    /// Delay levels and timers: `messageDelayLevel`, `timerMaxDelaySec`, `timerWheelEnable`.
    pub schedule: crate::schedule::ScheduleConfig,
    /// Unknown consumer groups are created on heartbeat and pull (`autoCreateSubscriptionGroup`).
    pub auto_create_subscription_group: bool,
    /// First HA port (`haListenPort`, default listenPort + 1): shard k of a master listens for
    /// its slaves on `ha_listen_port + k`.
    pub ha_listen_port: Option<u16>,
    /// `ip:port` of the master's HA port (shard 0's); the slave adds k for shard k. When unset
    /// the slave learns it from the name server's REGISTER_BROKER answer (`haServerAddr`).
    pub ha_master_address: Option<String>,
    /// The HA address a master advertises (`brokerIP2`, default brokerIP1).
    pub broker_ip2: Option<String>,
    /// A SYNC_MASTER send answers SLAVE_NOT_AVAILABLE when the slave lags more than this.
    pub ha_slave_fallbehind_max_bytes: u64,
    /// With it, a master tells a consumer that lags far behind to read from slave 1.
    pub slave_read_enable: bool,
    /// How often each side of an idle HA connection says it is alive.
    pub ha_send_heartbeat_interval_ms: u64,
    /// An HA connection silent for this long is closed (and the slave reconnects).
    pub ha_housekeeping_interval_ms: u64,
    /// How often a slave copies topics, subscription groups and offsets from its master.
    pub slave_sync_interval_ms: u64,
}

/// RocketMQ 5's `MetricsExporterType`; only the Prometheus pull exporter is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsExporterType {
    Disable,
    Prom,
}

impl MetricsExporterType {
    pub fn name(self) -> &'static str {
        match self {
            MetricsExporterType::Disable => "DISABLE",
            MetricsExporterType::Prom => "PROM",
        }
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            broker_cluster_name: "DefaultCluster".to_string(),
            broker_name: "broker-a".to_string(),
            broker_id: 0,
            namesrv_addrs: Vec::new(),
            listen_port: 10911,
            broker_ip1: "127.0.0.1".to_string(),
            store_path_root_dir: PathBuf::from("store"),
            flush_disk_type: FlushDiskType::AsyncFlush,
            broker_role: BrokerRole::AsyncMaster,
            broker_permission: 6,
            default_topic_queue_nums: 8,
            auto_create_topic_enable: true,
            cluster_topic_enable: true,
            broker_topic_enable: true,
            max_message_size_bytes: 4 * 1024 * 1024,
            file_reserved_time_hours: 72,
            disk_max_used_space_ratio_percent: 75,
            mapped_file_size_commit_log_bytes: 1024 * 1024 * 1024,
            flush_interval_commit_log_ms: 500,
            flush_consume_queue_thorough_interval_ms: crate::store::CHECKPOINT_INTERVAL_MS_DEFAULT,
            sync_flush_timeout_ms: 5000,
            register_name_server_period_ms: 30_000,
            long_polling_enable: true,
            short_polling_time_ms: 1000,
            enable_property_filter: false,
            region_id: "DefaultRegion".to_string(),
            trace_on: true,
            server_channel_max_idle_time_seconds: 120,
            flush_consumer_offset_interval_ms: 5000,
            cpus: CpuSpec::Count(1),
            tail_cache_bytes: 64 * 1024 * 1024,
            read_ahead_extents: crate::store::READ_AHEAD_EXTENTS_DEFAULT as u64,
            max_transfer_count_on_message_in_memory: PULL_TRANSFER_COUNT_DEFAULT,
            max_transfer_bytes_on_message_in_memory: PULL_TRANSFER_BYTES_DEFAULT,
            consume_queue_cache_entries: crate::store::CQ_CACHE_ENTRIES_TOTAL_DEFAULT as u64,
            max_hash_slot_num: crate::store::INDEX_SLOTS_PER_FILE_DEFAULT,
            max_index_num: crate::store::INDEX_ENTRIES_PER_FILE_DEFAULT,
            index_filter_cache_bytes: crate::store::INDEX_FILTER_CACHE_BYTES_DEFAULT as u64,
            zero_ahead_bytes: ZERO_AHEAD_BYTES_DEFAULT,
            write_linger_us: WRITE_LINGER_US_DEFAULT,
            group_commit_max_bytes: 1024 * 1024,
            access_message_in_memory_max_ratio_percent: 40,
            shard_pending_requests_max: 10_000,
            limits: FlowLimits::default(),
            transaction_check_interval_ms: 60_000,
            transaction_timeout_ms: 6_000,
            transaction_check_max: 15,
            acl_enable: false,
            acl_file_path: None,
            acl_reload_interval_ms: crate::acl::DEFAULT_RELOAD_INTERVAL_MS,
            metrics_exporter_type: MetricsExporterType::Disable,
            metrics_prom_exporter_host: None,
            metrics_prom_exporter_port: 5557,
            schedule: crate::schedule::ScheduleConfig::default(),
            auto_create_subscription_group: true,
            ha_listen_port: None,
            ha_master_address: None,
            broker_ip2: None,
            ha_slave_fallbehind_max_bytes: 256 * 1024 * 1024,
            slave_read_enable: false,
            ha_send_heartbeat_interval_ms: 5000,
            ha_housekeeping_interval_ms: 20_000,
            slave_sync_interval_ms: 3000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("config file: {0}")]
    Properties(#[from] PropertiesError),
    #[error("{source_name}: key `{key}`: `{value}` is not {expected}")]
    BadValue {
        source_name: String,
        key: String,
        value: String,
        expected: &'static str,
    },
    #[error("{source_name}: key `{key}`: {reason}")]
    BadCpus {
        source_name: String,
        key: String,
        reason: CpuSpecError,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// A problem worth logging that does not stop the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigWarning {
    /// A key nobody knows (likely a typo).
    UnknownKey { source_name: String, key: String },
    /// A RocketMQ key ringmq accepts but does not act on.
    IgnoredKey { source_name: String, key: String },
    /// A ringmq key that is read but whose value has no effect yet.
    NotApplied { source_name: String, key: String },
}

impl std::fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigWarning::UnknownKey { source_name, key } => {
                write!(f, "{source_name}: unknown key `{key}` ignored")
            }
            ConfigWarning::IgnoredKey { source_name, key } => {
                write!(
                    f,
                    "{source_name}: RocketMQ key `{key}` has no effect in ringmq"
                )
            }
            ConfigWarning::NotApplied { source_name, key } => {
                write!(
                    f,
                    "{source_name}: `{key}` is accepted but not applied yet: a group commit \
                     takes whatever arrived during the previous fdatasync"
                )
            }
        }
    }
}

/// Default `ringmqZeroAheadBytes`: on. An O_DIRECT write into preallocated (unwritten) space is
/// not done inline by io_uring on ext4: every log write went to a kernel worker thread. With the
/// space zeroed ahead, log writes overwrite written blocks and complete inline. Measured on/off:
/// sync sends over 8 connections +18–23 %, async +4–12 %, batch +6–8 %, 64 connections unchanged
/// (`results/zero-ahead-default-2026-12-07.md`); through the quickstart the sync gain was within
/// noise, with lower open-loop tails (`results/session-ab-2026-12-07-night.md`).
pub const ZERO_AHEAD_BYTES_DEFAULT: u64 = 16 << 20;

/// Default `ringmqWriteLingerMicros`. A write round waits this long for more appends only when
/// the previous round carried several (so a lone or slow sender never waits), adding at
/// most this much to a send's latency. Measured against 0 in `results/write-linger-2026-12-07.md`.
pub const WRITE_LINGER_US_DEFAULT: u64 = 0;
/// Largest `ringmqWriteLingerMicros` accepted: the wait is added to send latency.
pub const WRITE_LINGER_US_MAX: u64 = 10_000;

/// Most messages one pull returns by default (Java's `maxTransferCountOnMessageInMemory`).
pub const PULL_TRANSFER_COUNT_DEFAULT: u32 = 32;
/// Most bytes one pull returns by default (Java's `maxTransferBytesOnMessageInMemory`).
pub const PULL_TRANSFER_BYTES_DEFAULT: u32 = 256 * 1024;
/// Upper bound of `maxTransferBytesOnMessageInMemory`: a pull's answer is built in memory and
/// waits in its connection's outbound queue, so this bounds what one pull can add there.
pub const PULL_TRANSFER_BYTES_MAX: u32 = 4 << 20;

/// RocketMQ broker keys that appear in real broker.conf files but that ringmq does not use
/// (their job is done differently or not at all). They are accepted with a warning, not an error.
const IGNORED_ROCKETMQ_KEYS: &[&str] = &[
    "deleteWhen",
    "storePathCommitLog",
    "storePathConsumeQueue",
    "storePathIndex",
    "storeCheckpoint",
    "abortFile",
    "mappedFileSizeConsumeQueue",
    "flushIntervalConsumeQueue",
    "transientStorePoolEnable",
    "sendMessageThreadPoolNums",
    "pullMessageThreadPoolNums",
    "useReentrantLockWhenPutMessage",
    "osPageCacheBusyTimeOutMills",
    "warmMapedFileEnable",
    "enableDLegerCommitLog",
    "enablePropertyFilter",
    "brokerFastFailureEnable",
];

/// Where a key's value came from, for messages.
pub struct Source<'a>(pub &'a str);

impl BrokerConfig {
    /// Applies one `key = value` (RocketMQ or ringmq key name). Unknown and ignored keys come back
    /// as warnings; a bad value is an error naming the key.
    pub fn apply(
        &mut self,
        source: &Source<'_>,
        key: &str,
        raw_value: &str,
    ) -> Result<Option<ConfigWarning>, ConfigError> {
        let value = raw_value.trim();
        let v = Value {
            source: source.0,
            key,
            value,
        };
        if key == "ringmqGroupCommitMaxBytes" {
            self.group_commit_max_bytes = v.number()?;
            return Ok(Some(ConfigWarning::NotApplied {
                source_name: source.0.to_string(),
                key: key.to_string(),
            }));
        }
        // The applied keys come before the ignored ones: `enablePropertyFilter` is in both.
        if self.apply_core_key(&v)? {
            return Ok(None);
        }
        if limits::KEYS.contains(&key) {
            self.limits.apply(key, &v)?;
            return Ok(None);
        }
        if self.apply_feature_key(&v)? {
            return Ok(None);
        }
        if IGNORED_ROCKETMQ_KEYS.contains(&key) {
            return Ok(Some(ConfigWarning::IgnoredKey {
                source_name: source.0.to_string(),
                key: key.to_string(),
            }));
        }
        Ok(Some(ConfigWarning::UnknownKey {
            source_name: source.0.to_string(),
            key: key.to_string(),
        }))
    }

    /// Applies `v` if it is one of the broker's identity, network, storage, polling or metrics
    /// keys; `false` when it is none of them.
    fn apply_core_key(&mut self, v: &Value<'_>) -> Result<bool, ConfigError> {
        match v.key {
            "brokerClusterName" => self.broker_cluster_name = v.non_empty()?,
            "brokerName" => self.broker_name = v.non_empty()?,
            "brokerId" => self.broker_id = v.number()?,
            "namesrvAddr" => self.namesrv_addrs = v.addr_list()?,
            "listenPort" => self.listen_port = v.number()?,
            "brokerIP1" => self.broker_ip1 = v.ipv4()?,
            "storePathRootDir" => self.store_path_root_dir = PathBuf::from(v.non_empty()?),
            "flushDiskType" => self.flush_disk_type = v.flush_disk_type()?,
            "brokerRole" => self.broker_role = v.broker_role()?,
            "brokerPermission" => self.broker_permission = v.number()?,
            "defaultTopicQueueNums" => self.default_topic_queue_nums = v.number()?,
            "autoCreateTopicEnable" => self.auto_create_topic_enable = v.boolean()?,
            "clusterTopicEnable" => self.cluster_topic_enable = v.boolean()?,
            "brokerTopicEnable" => self.broker_topic_enable = v.boolean()?,
            "maxMessageSize" => self.max_message_size_bytes = v.number()?,
            "fileReservedTime" => self.file_reserved_time_hours = v.number()?,
            "diskMaxUsedSpaceRatio" => self.disk_max_used_space_ratio_percent = v.number()?,
            "mappedFileSizeCommitLog" => self.mapped_file_size_commit_log_bytes = v.number()?,
            "flushIntervalCommitLog" => self.flush_interval_commit_log_ms = v.number()?,
            "flushConsumeQueueThoroughInterval" => {
                self.flush_consume_queue_thorough_interval_ms = v.number()?
            }
            "syncFlushTimeout" => self.sync_flush_timeout_ms = v.number()?,
            "registerNameServerPeriod" => self.register_name_server_period_ms = v.number()?,
            "longPollingEnable" => self.long_polling_enable = v.boolean()?,
            "enablePropertyFilter" => self.enable_property_filter = v.boolean()?,
            "shortPollingTimeMills" => self.short_polling_time_ms = v.number()?,
            "regionId" => self.region_id = v.non_empty()?,
            "traceOn" => self.trace_on = v.boolean()?,
            "flushConsumerOffsetInterval" => self.flush_consumer_offset_interval_ms = v.number()?,
            "serverChannelMaxIdleTimeSeconds" => {
                self.server_channel_max_idle_time_seconds = v.number()?
            }
            "ringmqCpus" => self.cpus = v.cpus()?,
            "ringmqTailCacheBytes" => self.tail_cache_bytes = v.number()?,
            "ringmqReadAheadExtents" => self.read_ahead_extents = v.number()?,
            "maxTransferCountOnMessageInMemory" => {
                self.max_transfer_count_on_message_in_memory = v.number()?
            }
            "maxTransferBytesOnMessageInMemory" => {
                self.max_transfer_bytes_on_message_in_memory = v.number()?
            }
            "ringmqConsumeQueueCacheEntries" => self.consume_queue_cache_entries = v.number()?,
            "maxHashSlotNum" => self.max_hash_slot_num = v.number()?,
            "maxIndexNum" => self.max_index_num = v.number()?,
            "ringmqIndexFilterCacheBytes" => self.index_filter_cache_bytes = v.number()?,
            "ringmqZeroAheadBytes" => self.zero_ahead_bytes = v.number()?,
            "ringmqWriteLingerMicros" => self.write_linger_us = v.number()?,
            "accessMessageInMemoryMaxRatio" => {
                self.access_message_in_memory_max_ratio_percent = v.number()?
            }
            "ringmqShardPendingRequestsMax" => self.shard_pending_requests_max = v.number()?,
            "metricsExporterType" => self.metrics_exporter_type = v.metrics_exporter_type()?,
            "metricsPromExporterHost" => self.metrics_prom_exporter_host = Some(v.ipv4()?),
            "metricsPromExporterPort" => self.metrics_prom_exporter_port = v.number()?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Applies `v` if it is one of the transaction, ACL, scheduled-message, subscription-group or
    /// HA keys; `false` when it is none of them.
    fn apply_feature_key(&mut self, v: &Value<'_>) -> Result<bool, ConfigError> {
        match v.key {
            "transactionCheckInterval" => self.transaction_check_interval_ms = v.number()?,
            "transactionTimeOut" => self.transaction_timeout_ms = v.number()?,
            "transactionCheckMax" => self.transaction_check_max = v.number()?,
            "aclEnable" => self.acl_enable = v.boolean()?,
            "aclFilePath" => self.acl_file_path = Some(PathBuf::from(v.non_empty()?)),
            "ringmqAclReloadIntervalMs" => self.acl_reload_interval_ms = v.number()?,
            "messageDelayLevel" => {
                self.schedule.level_delays_ms = crate::schedule::parse_delay_levels(v.value)
                    .map_err(|_| v.bad("delay levels like \"1s 5s 10s 1m 2h 1d\" (1 to 64)"))?
            }
            "timerMaxDelaySec" => self.schedule.timer_max_delay_sec = v.number()?,
            "timerWheelEnable" => self.schedule.timer_enabled = v.boolean()?,
            "autoCreateSubscriptionGroup" => self.auto_create_subscription_group = v.boolean()?,
            "haListenPort" | "listenPortHA" => {
                self.ha_listen_port = (!v.value.is_empty()).then(|| v.number()).transpose()?
            }
            "haMasterAddress" => self.ha_master_address = v.optional_addr()?,
            "brokerIP2" => self.broker_ip2 = (!v.value.is_empty()).then(|| v.ipv4()).transpose()?,
            "haSlaveFallbehindMax" => self.ha_slave_fallbehind_max_bytes = v.number()?,
            "slaveReadEnable" => self.slave_read_enable = v.boolean()?,
            "haSendHeartbeatInterval" => self.ha_send_heartbeat_interval_ms = v.number()?,
            "haHousekeepingInterval" => self.ha_housekeeping_interval_ms = v.number()?,
            "ringmqSlaveSyncIntervalMs" => self.slave_sync_interval_ms = v.number()?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Applies every pair of a properties file, in order.
    pub fn apply_properties(
        &mut self,
        file_name: &str,
        text: &str,
    ) -> Result<Vec<ConfigWarning>, ConfigError> {
        let mut warnings = Vec::new();
        for property in parse_properties(text)? {
            let source_name = format!("{file_name}:{}", property.line);
            let warning = self.apply(&Source(&source_name), &property.key, &property.value)?;
            warnings.extend(warning);
        }
        Ok(warnings)
    }

    /// First HA port: shard k of a master accepts its slaves on this + k.
    pub fn ha_listen_port(&self) -> u16 {
        self.ha_listen_port
            .unwrap_or_else(|| self.listen_port.wrapping_add(1))
    }

    /// `ip:port` of shard 0's HA listener, as registered with name servers (`haServerAddr`).
    pub fn ha_server_addr(&self) -> String {
        let ip = self.broker_ip2.as_deref().unwrap_or(&self.broker_ip1);
        format!("{ip}:{}", self.ha_listen_port())
    }

    /// Whether this broker copies a master's logs.
    pub fn is_slave(&self) -> bool {
        self.broker_role == BrokerRole::Slave
    }

    /// `host:port` the broker advertises (name server registration, offsetMsgId store host).
    pub fn advertised_addr(&self) -> String {
        format!("{}:{}", self.broker_ip1, self.listen_port)
    }

    /// Bytes of commit log behind its end that Java counts as "in memory"
    /// (`accessMessageInMemoryMaxRatio` percent of `physical_memory_bytes`, Java's
    /// `checkInDiskByCommitOffset`): a new group starts at 0 on a queue whose head is this
    /// close to the end of its log.
    pub fn in_memory_max_bytes(&self, physical_memory_bytes: u64) -> u64 {
        let ratio = u128::from(self.access_message_in_memory_max_ratio_percent);
        // u128: a ratio times a memory size in bytes overflows u64 past 184 PB; saturate anyway.
        u64::try_from(u128::from(physical_memory_bytes) * ratio / 100).unwrap_or(u64::MAX)
    }

    /// Port of the VIP ("fast") channel older Java clients send to.
    /// The address the metrics endpoint binds: `metricsPromExporterHost`, else `brokerIP1`.
    pub fn metrics_prom_exporter_host(&self) -> String {
        self.metrics_prom_exporter_host
            .clone()
            .unwrap_or_else(|| self.broker_ip1.clone())
    }

    pub fn vip_port(&self) -> u16 {
        self.listen_port - 2
    }
}

/// One value being applied, with what is needed to name it in an error.
struct Value<'a> {
    source: &'a str,
    key: &'a str,
    value: &'a str,
}

impl Value<'_> {
    fn bad(&self, expected: &'static str) -> ConfigError {
        ConfigError::BadValue {
            source_name: self.source.to_string(),
            key: self.key.to_string(),
            value: self.value.to_string(),
            expected,
        }
    }

    fn non_empty(&self) -> Result<String, ConfigError> {
        if self.value.is_empty() {
            return Err(self.bad("a non-empty string"));
        }
        Ok(self.value.to_string())
    }

    fn number<T: std::str::FromStr>(&self) -> Result<T, ConfigError> {
        self.value
            .parse()
            .map_err(|_| self.bad("a number in range"))
    }

    fn boolean(&self) -> Result<bool, ConfigError> {
        match self.value.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(self.bad("true or false")),
        }
    }

    fn ipv4(&self) -> Result<String, ConfigError> {
        self.value
            .parse::<std::net::Ipv4Addr>()
            .map(|ip| ip.to_string())
            .map_err(|_| self.bad("an IPv4 address"))
    }

    /// Empty means "no name server" (a blank `namesrvAddr=` line, or a printed default config).
    fn addr_list(&self) -> Result<Vec<String>, ConfigError> {
        if self.value.is_empty() {
            return Ok(Vec::new());
        }
        parse_addr_list(self.value).ok_or_else(|| self.bad("`;`-separated ip:port addresses"))
    }

    /// Empty means unset (a printed default config has `haMasterAddress=`).
    fn optional_addr(&self) -> Result<Option<String>, ConfigError> {
        if self.value.is_empty() {
            return Ok(None);
        }
        match parse_addr_list(self.value).as_deref() {
            Some([one]) => Ok(Some(one.clone())),
            _ => Err(self.bad("one ip:port address")),
        }
    }

    fn flush_disk_type(&self) -> Result<FlushDiskType, ConfigError> {
        match self.value {
            "ASYNC_FLUSH" => Ok(FlushDiskType::AsyncFlush),
            "SYNC_FLUSH" => Ok(FlushDiskType::SyncFlush),
            _ => Err(self.bad("ASYNC_FLUSH or SYNC_FLUSH")),
        }
    }

    fn metrics_exporter_type(&self) -> Result<MetricsExporterType, ConfigError> {
        // RocketMQ 5 also names OTLP_GRPC and LOG; ringmq serves only the pull endpoint.
        match self.value.to_ascii_uppercase().as_str() {
            "DISABLE" => Ok(MetricsExporterType::Disable),
            "PROM" => Ok(MetricsExporterType::Prom),
            _ => Err(self.bad("DISABLE or PROM")),
        }
    }

    fn broker_role(&self) -> Result<BrokerRole, ConfigError> {
        match self.value {
            "ASYNC_MASTER" => Ok(BrokerRole::AsyncMaster),
            "SYNC_MASTER" => Ok(BrokerRole::SyncMaster),
            "SLAVE" => Ok(BrokerRole::Slave),
            _ => Err(self.bad("ASYNC_MASTER, SYNC_MASTER or SLAVE")),
        }
    }

    fn cpus(&self) -> Result<CpuSpec, ConfigError> {
        CpuSpec::parse(self.value).map_err(|reason| ConfigError::BadCpus {
            source_name: self.source.to_string(),
            key: self.key.to_string(),
            reason,
        })
    }
}

/// Parses `a:1;b:2` (RocketMQ's `namesrvAddr`); empty items are skipped; each item must be
/// `host:port` with a numeric port. `None` if any item is malformed or none is given.
pub fn parse_addr_list(text: &str) -> Option<Vec<String>> {
    let mut addrs = Vec::new();
    for item in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (host, port) = item.rsplit_once(':')?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return None;
        }
        addrs.push(item.to_string());
    }
    (!addrs.is_empty()).then_some(addrs)
}

#[cfg(test)]
mod tests;
