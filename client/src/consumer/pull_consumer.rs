//! The simple pull consumer: the caller picks queues and offsets; the consumer pulls, decodes and
//! re-filters, and reads or commits offsets on request.

use std::rc::Rc;

use super::pull::{pull_once, pull_sys_flag, PullResult, PullSpec};
use super::subscription::TagSubscription;
use crate::broker_api;
use crate::config::ClientConfig;
use crate::core::ClientCore;
use crate::error::ClientError;
use crate::producer::now_ms;
use crate::queue::MessageQueue;

/// A pull consumer of one group (`!Send`).
pub struct PullConsumer {
    core: Rc<ClientCore>,
    group: String,
    /// Client-side timeout of a pull that does not long-poll.
    pull_timeout_ms: u64,
}

impl PullConsumer {
    pub fn start(
        client: ClientConfig,
        group: impl Into<String>,
    ) -> Result<PullConsumer, ClientError> {
        let group = group.into();
        if group.is_empty() {
            return Err(ClientError::Config("consumer group is empty".to_string()));
        }
        let pull_timeout_ms = client.request_timeout_ms;
        Ok(PullConsumer {
            core: ClientCore::new(client, None)?,
            group,
            pull_timeout_ms,
        })
    }

    /// The readable queues of `topic`.
    pub async fn fetch_queues(&self, topic: &str) -> Result<Vec<MessageQueue>, ClientError> {
        Ok(self.core.route(topic).await?.read_queues.clone())
    }

    /// Pulls up to `max_msg_nums` messages of `queue` from `offset` that match the TAG
    /// `expression` (`*` for all). Returns at once when nothing is there.
    pub async fn pull(
        &self,
        queue: &MessageQueue,
        expression: &str,
        offset: i64,
        max_msg_nums: i32,
    ) -> Result<PullResult, ClientError> {
        self.pull_inner(queue, expression, offset, max_msg_nums, None)
            .await
    }

    /// As [`PullConsumer::pull`], but the broker holds the request up to `suspend_timeout_ms`
    /// until a message arrives (long polling).
    pub async fn pull_blocking(
        &self,
        queue: &MessageQueue,
        expression: &str,
        offset: i64,
        max_msg_nums: i32,
        suspend_timeout_ms: u64,
    ) -> Result<PullResult, ClientError> {
        self.pull_inner(
            queue,
            expression,
            offset,
            max_msg_nums,
            Some(suspend_timeout_ms),
        )
        .await
    }

    async fn pull_inner(
        &self,
        queue: &MessageQueue,
        expression: &str,
        offset: i64,
        max_msg_nums: i32,
        suspend_timeout_ms: Option<u64>,
    ) -> Result<PullResult, ClientError> {
        let subscription = TagSubscription::parse(&queue.topic, expression, now_ms())?;
        let route = self.core.route(&queue.topic).await?;
        let addr = route
            .read_addr(&queue.broker_name)
            .ok_or_else(|| ClientError::NoQueue {
                topic: queue.topic.clone(),
                what: "reachable",
            })?
            .to_string();
        // No heartbeat registers this group's subscription, so every pull carries it.
        let mut sys_flag = pull_sys_flag::SUBSCRIPTION;
        let mut timeout_ms = self.pull_timeout_ms;
        if let Some(suspend) = suspend_timeout_ms {
            sys_flag |= pull_sys_flag::SUSPEND;
            timeout_ms = timeout_ms.max(suspend + 15_000);
        }
        let spec = PullSpec {
            group: &self.group,
            queue,
            offset,
            max_msg_nums,
            sys_flag,
            commit_offset: 0,
            suspend_timeout_ms: suspend_timeout_ms.unwrap_or(0),
            timeout_ms,
            subscription: &subscription,
        };
        pull_once(&self.core, &addr, &spec).await
    }

    /// The group's committed offset of `queue`, `None` if it has none.
    pub async fn committed_offset(&self, queue: &MessageQueue) -> Result<Option<i64>, ClientError> {
        let addr = self.master_addr(queue).await?;
        broker_api::query_consumer_offset(&self.core, &addr, &self.group, queue).await
    }

    /// Commits `offset` (the next offset to consume) for `queue`, waiting for the broker.
    pub async fn commit_offset(
        &self,
        queue: &MessageQueue,
        offset: i64,
    ) -> Result<(), ClientError> {
        let addr = self.master_addr(queue).await?;
        broker_api::update_consumer_offset(&self.core, &addr, &self.group, queue, offset).await
    }

    /// The next offset to be written in `queue`.
    pub async fn max_offset(&self, queue: &MessageQueue) -> Result<i64, ClientError> {
        let addr = self.master_addr(queue).await?;
        broker_api::max_offset(&self.core, &addr, queue).await
    }

    /// The oldest offset still in `queue`.
    pub async fn min_offset(&self, queue: &MessageQueue) -> Result<i64, ClientError> {
        let addr = self.master_addr(queue).await?;
        broker_api::min_offset(&self.core, &addr, queue).await
    }

    /// Closes connections.
    pub fn shutdown(&self) {
        self.core.pool.close_all();
    }

    async fn master_addr(&self, queue: &MessageQueue) -> Result<String, ClientError> {
        let route = self.core.route(&queue.topic).await?;
        route
            .master_addr(&queue.broker_name)
            .map(str::to_string)
            .ok_or_else(|| ClientError::NoQueue {
                topic: queue.topic.clone(),
                what: "master-hosted",
            })
    }
}
