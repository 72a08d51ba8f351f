//! Rust client for RocketMQ-protocol brokers (ringmq or Apache RocketMQ), on glommio.
//!
//! Everything here is `!Send`: a client lives on the glommio executor that created it, so a
//! load generator runs one client (or many) per core without locks. The client speaks the
//! remoting protocol as the Java client does: JSON headers, language JAVA, SEND_MESSAGE_V2 with
//! short field names, SEND_BATCH_MESSAGE, PULL_MESSAGE with the SUSPEND bit, heartbeats with
//! TAG subscriptions, client-side `AllocateMessageQueueAveragely` rebalancing.
//!
//! Entry points: [`Producer`], [`PushConsumer`], [`PullConsumer`], [`Admin`]; all take a
//! [`ClientConfig`] naming the name servers.
//!
//! ```no_run
//! use ringmq_client::{
//!     ClientConfig, ConsumeStatus, Message, MessageExt, MessageQueue, Producer, ProducerConfig,
//!     PushConsumer, PushConsumerConfig, QueueSelector,
//! };
//!
//! glommio::LocalExecutor::default().run(async {
//!     let client = ClientConfig::new("127.0.0.1:9876").unwrap();
//!     let producer = Producer::start(ProducerConfig::new(client.clone(), "pg")).unwrap();
//!     let result = producer
//!         .send(Message::new("TopicA", "hello").with_tags("TagA"))
//!         .await
//!         .unwrap();
//!     println!("stored at {} offset {}", result.queue, result.queue_offset);
//!     // Async: returns once in flight; at most `max_async_in_flight` at a time.
//!     producer
//!         .send_async(Message::new("TopicA", "later"), QueueSelector::RoundRobin, |r| {
//!             let _ = r.map(|sent| sent.msg_id);
//!         })
//!         .await
//!         .unwrap();
//!
//!     let listener = |queue: &MessageQueue, messages: &[MessageExt]| {
//!         println!("{} messages from {queue}", messages.len());
//!         ConsumeStatus::Success
//!     };
//!     let consumer = PushConsumer::start(
//!         PushConsumerConfig::new(client, "cg"),
//!         &[("TopicA", "TagA || TagB")],
//!         listener,
//!     )
//!     .await
//!     .unwrap();
//!     consumer.shutdown().await;
//!     producer.shutdown().await;
//! });
//! ```

mod admin;
mod admin_lookup;
mod admin_ops;
mod broker_api;
pub mod compression;
mod config;
pub mod consumer;
mod core;
mod error;
mod message;
mod oneshot;
mod producer;
mod queue;
pub mod rebalance;
pub mod remoting;
mod requests;
mod route;
mod send_frame;
mod validate;

pub use admin::Admin;
pub use admin_lookup::KeyKind;
pub use admin_ops::parse_properties_text;
pub use config::{ClientConfig, Credentials, ACCESS_KEY_ENV, SECRET_KEY_ENV};
pub use consumer::{
    ConsumeFrom, ConsumeStatus, MessageListener, MessageModel, MessageSelector, PullConsumer,
    PullResult, PullStatus, PushConsumer, PushConsumerConfig,
};
pub use core::AUTO_CREATE_TOPIC_KEY;
pub use error::{is_retriable_send_code, ClientError};
pub use message::{decode_records, DecodeError, Message, MessageExt};
pub use producer::{
    CheckListener, LocalTransactionState, Producer, ProducerConfig, SendResult, SendStatus,
    TransactionProducer, TransactionSendResult, CLIENT_INNER_PRODUCER_GROUP,
};
pub use queue::{queue_index_for_hash, MessageQueue, QueueSelector, RoundRobin};
pub use route::TopicRoute;
pub use validate::{validate_message, validate_topic, TOPIC_MAX_LEN};

/// Re-exported so users can build topic configs and read cluster info without naming the
/// protocol crate.
pub use ringmq_proto::body::{ClusterInfo, SubscriptionGroupConfig, TopicConfig};
