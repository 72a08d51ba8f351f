//! Checks between configuration values that single keys cannot check (ranges that depend on
//! other keys, the index layout, replication roles).

use super::{BrokerConfig, BrokerRole, ConfigError, PULL_TRANSFER_BYTES_MAX, WRITE_LINGER_US_MAX};

impl BrokerConfig {
    /// Checks relations between values that single keys cannot check.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |reason: String| Err(ConfigError::Invalid(reason));
        if self.listen_port < 3 {
            // The VIP port is listenPort − 2 and must be a real port too.
            return invalid(format!(
                "listenPort {} leaves no VIP port (listenPort − 2)",
                self.listen_port
            ));
        }
        if self.default_topic_queue_nums == 0 || self.default_topic_queue_nums > 1024 {
            return invalid("defaultTopicQueueNums must be 1..=1024".to_string());
        }
        if self.max_message_size_bytes == 0 {
            return invalid("maxMessageSize must be positive".to_string());
        }
        if self.disk_max_used_space_ratio_percent == 0
            || self.disk_max_used_space_ratio_percent > 95
        {
            return invalid("diskMaxUsedSpaceRatio must be 1..=95".to_string());
        }
        if self.broker_permission & !7 != 0 {
            return invalid(format!(
                "brokerPermission {} has bits other than 1|2|4",
                self.broker_permission
            ));
        }
        if self.mapped_file_size_commit_log_bytes == 0
            || self.mapped_file_size_commit_log_bytes % 4096 != 0
            || self.mapped_file_size_commit_log_bytes
                < u64::from(self.max_message_size_bytes) + 64 * 1024 + 8
        {
            return invalid(format!(
                "mappedFileSizeCommitLog {} must be a multiple of 4096 and hold a maximal message \
                 (maxMessageSize {} plus 64 KiB of header room)",
                self.mapped_file_size_commit_log_bytes, self.max_message_size_bytes
            ));
        }
        if self.zero_ahead_bytes % 4096 != 0 {
            return invalid("ringmqZeroAheadBytes must be a multiple of 4096".to_string());
        }
        if self.write_linger_us > WRITE_LINGER_US_MAX {
            return invalid(format!(
                "ringmqWriteLingerMicros must be at most {WRITE_LINGER_US_MAX}"
            ));
        }
        if self.tail_cache_bytes < 8192 {
            return invalid("ringmqTailCacheBytes must be at least 8192".to_string());
        }
        if self.consume_queue_cache_entries == 0 {
            return invalid("ringmqConsumeQueueCacheEntries must be positive".to_string());
        }
        if !(1..=PULL_TRANSFER_BYTES_MAX).contains(&self.max_transfer_bytes_on_message_in_memory)
            || self.max_transfer_count_on_message_in_memory == 0
        {
            return invalid(format!(
                "maxTransferCountOnMessageInMemory must be positive and \
                 maxTransferBytesOnMessageInMemory 1..={PULL_TRANSFER_BYTES_MAX}"
            ));
        }
        if self.server_channel_max_idle_time_seconds == 0 {
            return invalid("serverChannelMaxIdleTimeSeconds must be positive".to_string());
        }
        if self.access_message_in_memory_max_ratio_percent > 100 {
            return invalid("accessMessageInMemoryMaxRatio must be 0..=100".to_string());
        }
        if self.shard_pending_requests_max == 0 {
            return invalid("ringmqShardPendingRequestsMax must be positive".to_string());
        }
        self.limits.validate()?;
        self.validate_index()?;
        self.validate_ha()
    }

    /// The key index's file layout (`docs/storage-format.md` §5).
    fn validate_index(&self) -> Result<(), ConfigError> {
        use crate::store::{INDEX_ENTRIES_PER_FILE_MAX, INDEX_ENTRIES_PER_PAGE};
        let slots_max = crate::store::INDEX_SLOTS_PER_FILE_MAX;
        if !(1..=slots_max).contains(&self.max_hash_slot_num) {
            return Err(ConfigError::Invalid(format!(
                "maxHashSlotNum must be 1..={slots_max}"
            )));
        }
        if !(1..=INDEX_ENTRIES_PER_FILE_MAX).contains(&self.max_index_num)
            || self.max_index_num % INDEX_ENTRIES_PER_PAGE != 0
        {
            return Err(ConfigError::Invalid(format!(
                "maxIndexNum must be a multiple of {INDEX_ENTRIES_PER_PAGE} \
                 up to {INDEX_ENTRIES_PER_FILE_MAX}"
            )));
        }
        // A budget smaller than one filter would read and cache nothing, silently.
        let one = crate::store::index_filter_bytes(self.max_index_num);
        let budget = self.index_filter_cache_bytes;
        if budget != 0 && (budget < one || usize::try_from(budget).is_err()) {
            return Err(ConfigError::Invalid(format!(
                "ringmqIndexFilterCacheBytes must be 0 (off) or hold at least one index file's \
                 filter: {one} bytes with maxIndexNum {}",
                self.max_index_num
            )));
        }
        Ok(())
    }

    fn validate_ha(&self) -> Result<(), ConfigError> {
        let invalid = |reason: String| Err(ConfigError::Invalid(reason));
        match self.broker_role {
            // Java's own start-up check and wording.
            BrokerRole::Slave if self.broker_id <= 0 => {
                return invalid("Slave's brokerId must be > 0".to_string())
            }
            BrokerRole::AsyncMaster | BrokerRole::SyncMaster if self.broker_id != 0 => {
                return invalid(format!(
                    "a master has brokerId 0, not {} (brokerRole {:?})",
                    self.broker_id, self.broker_role
                ))
            }
            _ => {}
        }
        if self.ha_listen_port() == self.listen_port || self.ha_listen_port() == self.vip_port() {
            return invalid(format!(
                "haListenPort {} collides with listenPort {} or its VIP port",
                self.ha_listen_port(),
                self.listen_port
            ));
        }
        if self.ha_send_heartbeat_interval_ms == 0
            || self.ha_housekeeping_interval_ms <= self.ha_send_heartbeat_interval_ms
        {
            return invalid(
                "haHousekeepingInterval must be longer than haSendHeartbeatInterval (> 0)"
                    .to_string(),
            );
        }
        if self.slave_sync_interval_ms == 0 {
            return invalid("ringmqSlaveSyncIntervalMs must be positive".to_string());
        }
        Ok(())
    }
}
