//! Consumers: the push consumer (rebalancing, long polling, offsets) and the pull consumer.

mod heartbeat;
mod local_offsets;
mod offset_store;
mod pull;
mod pull_consumer;
mod push;
mod subscription;

pub use offset_store::OffsetTable;
pub use pull::{pull_sys_flag, PullResult, PullStatus};
pub use pull_consumer::PullConsumer;
pub use push::{
    retry_topic, ConsumeFrom, ConsumeStatus, MessageListener, MessageModel, PushConsumer,
    PushConsumerConfig, LOCK_RETRY_DELAY_MS, LOCK_TRUST_MS, REBALANCE_RETRY_DELAY_MS,
    RETRY_GROUP_TOPIC_PREFIX,
};
pub use subscription::{MessageSelector, Subscription, TagSubscription, SUBSCRIBE_ALL};
