//! The request path's bounds (design §9): what a connection, a shard and the broker may hold
//! because of what clients do or do not do. Each bound is a config key; the relations between
//! the defaults are checked at compile time and between configured values by [`FlowLimits::validate`].

use super::{ConfigError, Value};

/// Default high water mark of response bytes waiting for one connection's writer.
pub const CONNECTION_WRITE_HIGH_WATER_BYTES_DEFAULT: u64 = 4 * 1024 * 1024;
/// Default low water mark: a paused reader resumes once the queue drains below it.
pub const CONNECTION_WRITE_LOW_WATER_BYTES_DEFAULT: u64 = 1024 * 1024;
/// Default bound on requests one connection may have in progress (parked pulls excluded).
pub const CONNECTION_REQUESTS_IN_FLIGHT_MAX_DEFAULT: usize = 1024;
/// Default bound on open client connections, broker-wide (split evenly over the shards).
pub const CONNECTIONS_MAX_DEFAULT: usize = 16 * 1024;
/// Default bound on parked (long-polling) pulls per shard.
pub const SHARD_PARKED_PULLS_MAX_DEFAULT: usize = 64 * 1024;
/// Default bound on batches of forwarded requests waiting in one shard's inbox.
pub const SHARD_INBOX_BATCHES_MAX_DEFAULT: usize = 4096;
/// Java's `waitTimeMillsInSendQueue`: a forwarded request that waited longer in the owner's
/// inbox is answered SYSTEM_BUSY `[TIMEOUT_CLEAN_QUEUE]` instead of served late.
pub const WAIT_TIME_MS_IN_SEND_QUEUE_DEFAULT: u64 = 200;

const _: () =
    assert!(CONNECTION_WRITE_LOW_WATER_BYTES_DEFAULT < CONNECTION_WRITE_HIGH_WATER_BYTES_DEFAULT);
const _: () = assert!(CONNECTION_REQUESTS_IN_FLIGHT_MAX_DEFAULT > 0);

/// The keys [`FlowLimits::apply`] reads.
pub const KEYS: &[&str] = &[
    "ringmqConnectionWriteHighWaterBytes",
    "ringmqConnectionWriteLowWaterBytes",
    "ringmqConnectionRequestsInFlightMax",
    "ringmqMaxConnections",
    "ringmqShardParkedPullsMax",
    "ringmqShardInboxBatchesMax",
    "waitTimeMillsInSendQueue",
];

/// The request path's bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowLimits {
    /// Past this many response bytes queued for a connection its reader stops reading, so TCP
    /// pushes back on that client alone (Netty's write-buffer high water mark).
    pub connection_write_high_water_bytes: u64,
    /// A paused reader resumes below this.
    pub connection_write_low_water_bytes: u64,
    /// Past this many requests in progress on a connection its reader stops reading.
    pub connection_requests_in_flight_max: usize,
    /// Open client connections, broker-wide; a connection past it is closed at accept.
    pub connections_max: usize,
    /// Parked pulls per shard; past it a pull that finds nothing is answered at once.
    pub shard_parked_pulls_max: usize,
    /// Batches of forwarded requests waiting in one shard's inbox; past it the forwarding shard
    /// answers SYSTEM_BUSY.
    pub shard_inbox_batches_max: usize,
    /// Longest a forwarded request may wait in its owner's inbox before being answered
    /// SYSTEM_BUSY `[TIMEOUT_CLEAN_QUEUE]`.
    pub wait_time_ms_in_send_queue: u64,
}

impl Default for FlowLimits {
    fn default() -> Self {
        FlowLimits {
            connection_write_high_water_bytes: CONNECTION_WRITE_HIGH_WATER_BYTES_DEFAULT,
            connection_write_low_water_bytes: CONNECTION_WRITE_LOW_WATER_BYTES_DEFAULT,
            connection_requests_in_flight_max: CONNECTION_REQUESTS_IN_FLIGHT_MAX_DEFAULT,
            connections_max: CONNECTIONS_MAX_DEFAULT,
            shard_parked_pulls_max: SHARD_PARKED_PULLS_MAX_DEFAULT,
            shard_inbox_batches_max: SHARD_INBOX_BATCHES_MAX_DEFAULT,
            wait_time_ms_in_send_queue: WAIT_TIME_MS_IN_SEND_QUEUE_DEFAULT,
        }
    }
}

impl FlowLimits {
    /// Applies one of [`KEYS`].
    pub(super) fn apply(&mut self, key: &str, v: &Value<'_>) -> Result<(), ConfigError> {
        match key {
            "ringmqConnectionWriteHighWaterBytes" => {
                self.connection_write_high_water_bytes = v.number()?
            }
            "ringmqConnectionWriteLowWaterBytes" => {
                self.connection_write_low_water_bytes = v.number()?
            }
            "ringmqConnectionRequestsInFlightMax" => {
                self.connection_requests_in_flight_max = v.number()?
            }
            "ringmqMaxConnections" => self.connections_max = v.number()?,
            "ringmqShardParkedPullsMax" => self.shard_parked_pulls_max = v.number()?,
            "ringmqShardInboxBatchesMax" => self.shard_inbox_batches_max = v.number()?,
            "waitTimeMillsInSendQueue" => self.wait_time_ms_in_send_queue = v.number()?,
            _ => unreachable!("only KEYS are applied here"),
        }
        Ok(())
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |reason: &str| Err(ConfigError::Invalid(reason.to_string()));
        if self.connection_write_low_water_bytes >= self.connection_write_high_water_bytes {
            return invalid(
                "ringmqConnectionWriteLowWaterBytes must be below \
                 ringmqConnectionWriteHighWaterBytes",
            );
        }
        let positive = [
            self.connection_requests_in_flight_max,
            self.connections_max,
            self.shard_inbox_batches_max,
        ];
        if positive.contains(&0) || self.wait_time_ms_in_send_queue == 0 {
            return invalid(
                "ringmqConnectionRequestsInFlightMax, ringmqMaxConnections, \
                 ringmqShardInboxBatchesMax and waitTimeMillsInSendQueue must be positive",
            );
        }
        Ok(())
    }

    /// The lines `to_properties` prints.
    pub(super) fn properties(&self) -> Vec<(&'static str, String)> {
        vec![
            (KEYS[0], self.connection_write_high_water_bytes.to_string()),
            (KEYS[1], self.connection_write_low_water_bytes.to_string()),
            (KEYS[2], self.connection_requests_in_flight_max.to_string()),
            (KEYS[3], self.connections_max.to_string()),
            (KEYS[4], self.shard_parked_pulls_max.to_string()),
            (KEYS[5], self.shard_inbox_batches_max.to_string()),
            (KEYS[6], self.wait_time_ms_in_send_queue.to_string()),
        ]
    }
}
