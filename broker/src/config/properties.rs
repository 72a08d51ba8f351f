//! The effective configuration rendered as properties text (`--print-config`), grouped by
//! concern; it reads back to the same configuration.

use super::{write_pair, BrokerConfig, BrokerRole, FlushDiskType};

impl BrokerConfig {
    /// Renders the effective configuration as properties text (what `--print-config` shows),
    /// escaped so that it reads back to the same configuration.
    pub fn to_properties(&self) -> String {
        let mut out = String::new();
        let pairs = self.identity_pairs().into_iter();
        let pairs = pairs.chain(self.store_pairs()).chain(self.service_pairs());
        let pairs = pairs.chain(self.schedule_pairs());
        let pairs = pairs.chain(self.ha_pairs());
        for (key, value) in pairs.chain(self.limits.properties()) {
            write_pair(&mut out, key, &value);
        }
        if let Some(host) = &self.metrics_prom_exporter_host {
            write_pair(&mut out, "metricsPromExporterHost", host);
        }
        out
    }

    /// Delay levels, timers and subscription groups.
    fn schedule_pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "messageDelayLevel",
                crate::schedule::format_delay_levels(&self.schedule.level_delays_ms),
            ),
            (
                "timerMaxDelaySec",
                self.schedule.timer_max_delay_sec.to_string(),
            ),
            ("timerWheelEnable", self.schedule.timer_enabled.to_string()),
            (
                "autoCreateSubscriptionGroup",
                self.auto_create_subscription_group.to_string(),
            ),
        ]
    }

    /// Who the broker is and where it is reachable.
    fn identity_pairs(&self) -> Vec<(&'static str, String)> {
        let role = match self.broker_role {
            BrokerRole::AsyncMaster => "ASYNC_MASTER",
            BrokerRole::SyncMaster => "SYNC_MASTER",
            BrokerRole::Slave => "SLAVE",
        };
        vec![
            ("brokerClusterName", self.broker_cluster_name.clone()),
            ("brokerName", self.broker_name.clone()),
            ("brokerId", self.broker_id.to_string()),
            ("namesrvAddr", self.namesrv_addrs.join(";")),
            ("listenPort", self.listen_port.to_string()),
            ("brokerIP1", self.broker_ip1.clone()),
            ("brokerRole", role.to_string()),
            ("brokerPermission", self.broker_permission.to_string()),
            ("regionId", self.region_id.clone()),
        ]
    }

    /// Storage, flush and retention. `ringmqGroupCommitMaxBytes` is left out: it has no effect
    /// (see [`ConfigWarning::NotApplied`]).
    fn store_pairs(&self) -> Vec<(&'static str, String)> {
        let flush = match self.flush_disk_type {
            FlushDiskType::AsyncFlush => "ASYNC_FLUSH",
            FlushDiskType::SyncFlush => "SYNC_FLUSH",
        };
        let store_dir = self.store_path_root_dir.display().to_string();
        vec![
            ("storePathRootDir", store_dir),
            ("flushDiskType", flush.to_string()),
            ("maxMessageSize", self.max_message_size_bytes.to_string()),
            (
                "fileReservedTime",
                self.file_reserved_time_hours.to_string(),
            ),
            (
                "diskMaxUsedSpaceRatio",
                self.disk_max_used_space_ratio_percent.to_string(),
            ),
            (
                "mappedFileSizeCommitLog",
                self.mapped_file_size_commit_log_bytes.to_string(),
            ),
            (
                "flushIntervalCommitLog",
                self.flush_interval_commit_log_ms.to_string(),
            ),
            (
                "flushConsumeQueueThoroughInterval",
                self.flush_consume_queue_thorough_interval_ms.to_string(),
            ),
            ("syncFlushTimeout", self.sync_flush_timeout_ms.to_string()),
            ("ringmqTailCacheBytes", self.tail_cache_bytes.to_string()),
            (
                "ringmqReadAheadExtents",
                self.read_ahead_extents.to_string(),
            ),
            (
                "maxTransferCountOnMessageInMemory",
                self.max_transfer_count_on_message_in_memory.to_string(),
            ),
            (
                "maxTransferBytesOnMessageInMemory",
                self.max_transfer_bytes_on_message_in_memory.to_string(),
            ),
            (
                "ringmqConsumeQueueCacheEntries",
                self.consume_queue_cache_entries.to_string(),
            ),
            ("maxHashSlotNum", self.max_hash_slot_num.to_string()),
            ("maxIndexNum", self.max_index_num.to_string()),
            (
                "ringmqIndexFilterCacheBytes",
                self.index_filter_cache_bytes.to_string(),
            ),
            ("ringmqZeroAheadBytes", self.zero_ahead_bytes.to_string()),
            ("ringmqWriteLingerMicros", self.write_linger_us.to_string()),
        ]
    }

    /// Replication keys; empty values are the defaults derived from other keys.
    fn ha_pairs(&self) -> Vec<(&'static str, String)> {
        let or_empty = |v: Option<String>| v.unwrap_or_default();
        vec![
            (
                "haListenPort",
                or_empty(self.ha_listen_port.map(|p| p.to_string())),
            ),
            ("haMasterAddress", or_empty(self.ha_master_address.clone())),
            ("brokerIP2", or_empty(self.broker_ip2.clone())),
            (
                "haSlaveFallbehindMax",
                self.ha_slave_fallbehind_max_bytes.to_string(),
            ),
            ("slaveReadEnable", self.slave_read_enable.to_string()),
            (
                "haSendHeartbeatInterval",
                self.ha_send_heartbeat_interval_ms.to_string(),
            ),
            (
                "haHousekeepingInterval",
                self.ha_housekeeping_interval_ms.to_string(),
            ),
            (
                "ringmqSlaveSyncIntervalMs",
                self.slave_sync_interval_ms.to_string(),
            ),
        ]
    }

    /// Topics, consumers, connections, cores.
    fn service_pairs(&self) -> Vec<(&'static str, String)> {
        let ratio = self.access_message_in_memory_max_ratio_percent;
        vec![
            (
                "defaultTopicQueueNums",
                self.default_topic_queue_nums.to_string(),
            ),
            (
                "autoCreateTopicEnable",
                self.auto_create_topic_enable.to_string(),
            ),
            ("clusterTopicEnable", self.cluster_topic_enable.to_string()),
            ("brokerTopicEnable", self.broker_topic_enable.to_string()),
            (
                "registerNameServerPeriod",
                self.register_name_server_period_ms.to_string(),
            ),
            ("longPollingEnable", self.long_polling_enable.to_string()),
            (
                "enablePropertyFilter",
                self.enable_property_filter.to_string(),
            ),
            (
                "shortPollingTimeMills",
                self.short_polling_time_ms.to_string(),
            ),
            ("traceOn", self.trace_on.to_string()),
            (
                "flushConsumerOffsetInterval",
                self.flush_consumer_offset_interval_ms.to_string(),
            ),
            (
                "serverChannelMaxIdleTimeSeconds",
                self.server_channel_max_idle_time_seconds.to_string(),
            ),
            ("accessMessageInMemoryMaxRatio", ratio.to_string()),
            ("ringmqCpus", self.cpus.to_string()),
            (
                "ringmqShardPendingRequestsMax",
                self.shard_pending_requests_max.to_string(),
            ),
            (
                "transactionCheckInterval",
                self.transaction_check_interval_ms.to_string(),
            ),
            (
                "transactionTimeOut",
                self.transaction_timeout_ms.to_string(),
            ),
            (
                "transactionCheckMax",
                self.transaction_check_max.to_string(),
            ),
            (
                "metricsExporterType",
                self.metrics_exporter_type.name().to_string(),
            ),
            (
                "metricsPromExporterPort",
                self.metrics_prom_exporter_port.to_string(),
            ),
        ]
    }
}
