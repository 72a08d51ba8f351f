//! The ringmq broker: thread-per-core shards serving RocketMQ clients over O_DIRECT storage.

pub mod store;
