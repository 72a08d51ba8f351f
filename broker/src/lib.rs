//! The ringmq broker: thread-per-core shards serving RocketMQ clients over O_DIRECT storage.

pub mod config;
pub mod metadata;
pub mod persist;
pub mod processor;
pub mod server;
pub mod shard_map;
pub mod store;
