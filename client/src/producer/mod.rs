//! The producer: sync, async (bounded in flight), oneway and batch sends with SEND_MESSAGE_V2 /
//! SEND_BATCH_MESSAGE, queue selection, compression, UNIQ_KEY assignment, retries on another
//! broker, heartbeats and route refresh.
//!
//! Data flow of a send: validate → assign UNIQ_KEY → compress (single messages over the
//! threshold) → route (cached; TBW102 fallback for unknown topics) → select a queue → encode the
//! header and body straight into the broker connection's outbox → await the response matched by
//! opaque → `SendResult`. A retriable failure picks a queue on another broker, up to
//! `1 + retry_times_when_send_failed` attempts.

mod prepare;
mod transaction;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use glommio::sync::Semaphore;
use glommio::Task;
use ringmq_proto::code::ResponseCode;

use crate::compression::{DEFAULT_COMPRESS_OVER_BYTES, DEFAULT_ZLIB_LEVEL};
use crate::config::ClientConfig;
use crate::core::{ClientCore, AUTO_CREATE_TOPIC_KEY};
use crate::error::ClientError;
use crate::message::Message;
use crate::queue::{queue_index_for_hash, MessageQueue, QueueSelector, RoundRobin};
use crate::remoting::ServerRequestHandler;
use crate::requests::{self, SendArgs};
use crate::route::TopicRoute;
use crate::send_frame::{encode_send_frame, send_request_code};
pub(crate) use prepare::now_ms;
use prepare::{prepare_batch, prepare_single, PreparedSend};
pub use transaction::{
    CheckListener, LocalTransactionState, TransactionProducer, TransactionSendResult,
};

/// The producer group Java clients also register, so brokers see every client as a producer.
pub const CLIENT_INNER_PRODUCER_GROUP: &str = "CLIENT_INNER_PRODUCER";

/// Producer settings; defaults are Java's `DefaultMQProducer`.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    pub client: ClientConfig,
    pub group: String,
    pub send_timeout_ms: u64,
    /// Extra attempts after a retriable failure of a sync or async send (Java: 2).
    pub retry_times_when_send_failed: u32,
    /// Bodies larger than this are zlib-compressed (Java `compressMsgBodyOverHowmuch`: 4096).
    pub compress_over_bytes: usize,
    pub compress_level: u32,
    /// Queue count asked for when the broker auto-creates a topic (Java: 4).
    pub default_topic_queue_nums: i32,
    /// Largest body accepted (Java `maxMessageSize`: 4 MiB).
    pub max_message_size_bytes: usize,
    /// Async sends in flight at once; `send_async` waits for a slot beyond this.
    pub max_async_in_flight: usize,
}

impl ProducerConfig {
    pub fn new(client: ClientConfig, group: impl Into<String>) -> ProducerConfig {
        ProducerConfig {
            client,
            group: group.into(),
            send_timeout_ms: 3_000,
            retry_times_when_send_failed: 2,
            compress_over_bytes: DEFAULT_COMPRESS_OVER_BYTES,
            compress_level: DEFAULT_ZLIB_LEVEL,
            default_topic_queue_nums: 4,
            max_message_size_bytes: 4 * 1024 * 1024,
            max_async_in_flight: 1024,
        }
    }
}

/// How the broker stored a message. Every status means "stored"; the last three say that the
/// durability the broker was configured for was not reached in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendStatus {
    SendOk,
    FlushDiskTimeout,
    FlushSlaveTimeout,
    SlaveNotAvailable,
}

impl SendStatus {
    /// The status a send response code means, or `None` if the code is an error.
    pub fn from_response_code(code: i32) -> Option<SendStatus> {
        match ResponseCode::from_code(code) {
            ResponseCode::Success => Some(SendStatus::SendOk),
            ResponseCode::FlushDiskTimeout => Some(SendStatus::FlushDiskTimeout),
            ResponseCode::FlushSlaveTimeout => Some(SendStatus::FlushSlaveTimeout),
            ResponseCode::SlaveNotAvailable => Some(SendStatus::SlaveNotAvailable),
            _ => None,
        }
    }
}

/// The outcome of a successful send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendResult {
    pub status: SendStatus,
    /// The client id (UNIQ_KEY); for a batch, the ids of its messages joined with `,`.
    pub msg_id: String,
    /// The broker id (store host + commit-log offset); for a batch, joined with `,`.
    pub offset_msg_id: String,
    pub queue: MessageQueue,
    /// Consume-queue offset of the (first) message.
    pub queue_offset: i64,
    /// The broker's transactionId field (the message's UNIQ_KEY), if it sent one.
    pub transaction_id: Option<String>,
}

/// A producer bound to the glommio executor it was started on (`!Send`).
#[derive(Clone)]
pub struct Producer {
    inner: Rc<ProducerInner>,
}

struct ProducerInner {
    config: ProducerConfig,
    core: Rc<ClientCore>,
    round_robin_by_topic: RefCell<HashMap<String, Rc<RoundRobin>>>,
    async_slots: Rc<Semaphore>,
    shut_down: Cell<bool>,
    background: RefCell<Vec<Task<()>>>,
}

impl Producer {
    /// Starts a producer: validates the configuration and starts route refresh and heartbeats.
    /// Sends nothing until the first send (as Java's `start()`).
    pub fn start(config: ProducerConfig) -> Result<Producer, ClientError> {
        Producer::start_with_handler(config, None)
    }

    /// As [`Producer::start`], with a handler for requests brokers send to this client
    /// (CHECK_TRANSACTION_STATE for transactional producers). Without one, non-oneway server
    /// requests are answered REQUEST_CODE_NOT_SUPPORTED and oneway ones are dropped.
    pub fn start_with_handler(
        config: ProducerConfig,
        handler: Option<ServerRequestHandler>,
    ) -> Result<Producer, ClientError> {
        if config.group.is_empty() {
            return Err(ClientError::Config("producer group is empty".to_string()));
        }
        let core = ClientCore::new(config.client.clone(), handler)?;
        let inner = Rc::new(ProducerInner {
            async_slots: Rc::new(Semaphore::new(config.max_async_in_flight.max(1) as u64)),
            config,
            core,
            round_robin_by_topic: RefCell::new(HashMap::new()),
            shut_down: Cell::new(false),
            background: RefCell::new(Vec::new()),
        });
        let producer = Producer { inner };
        producer.start_background_tasks();
        Ok(producer)
    }

    /// This client's id as brokers see it.
    pub fn client_id(&self) -> &str {
        &self.inner.core.client_id
    }

    /// Sends `message` round robin and waits for the broker's answer; retries retriable failures
    /// on another broker.
    pub async fn send(&self, message: Message) -> Result<SendResult, ClientError> {
        self.send_with(message, QueueSelector::RoundRobin).await
    }

    /// Sends `message` to the queue `selector` picks and waits for the answer. Only round-robin
    /// sends are retried on another queue; hash and explicit sends keep their queue.
    pub async fn send_with(
        &self,
        message: Message,
        selector: QueueSelector,
    ) -> Result<SendResult, ClientError> {
        self.send_to(message, &selector).await
    }

    /// [`Producer::send_with`] with a borrowed selector, so a sender that keeps one selector
    /// per message key does not build a new one (nor copy its key) per message.
    pub async fn send_to(
        &self,
        mut message: Message,
        selector: &QueueSelector,
    ) -> Result<SendResult, ClientError> {
        self.inner.check_running()?;
        let prepared = prepare_single(&self.inner.config, &mut message)?;
        self.inner.send_prepared(&prepared, selector).await
    }

    /// Sends `messages` (same topic) as one SEND_BATCH_MESSAGE. Batches are never compressed.
    pub async fn send_batch(
        &self,
        messages: Vec<Message>,
        selector: QueueSelector,
    ) -> Result<SendResult, ClientError> {
        self.inner.check_running()?;
        let prepared = prepare_batch(&self.inner.config, messages)?;
        self.inner.send_prepared(&prepared, &selector).await
    }

    /// Starts a send and returns once it is in flight; `callback` gets the result. At most
    /// `max_async_in_flight` sends are in flight: beyond that this waits for one to finish,
    /// which is the back-pressure an open-loop load generator must see.
    pub async fn send_async<F>(
        &self,
        mut message: Message,
        selector: QueueSelector,
        callback: F,
    ) -> Result<(), ClientError>
    where
        F: FnOnce(Result<SendResult, ClientError>) + 'static,
    {
        self.inner.check_running()?;
        let prepared = prepare_single(&self.inner.config, &mut message)?;
        let permit = self
            .inner
            .async_slots
            .acquire_static_permit(1)
            .await
            .map_err(|_| ClientError::Shutdown)?;
        let inner = self.inner.clone();
        glommio::spawn_local(async move {
            let result = inner.send_prepared(&prepared, &selector).await;
            drop(permit);
            callback(result);
        })
        .detach();
        Ok(())
    }

    /// Sends without waiting for (or getting) an answer. No retry: a oneway send that cannot be
    /// written fails here, one lost later is lost.
    pub async fn send_oneway(
        &self,
        mut message: Message,
        selector: QueueSelector,
    ) -> Result<(), ClientError> {
        self.inner.check_running()?;
        let prepared = prepare_single(&self.inner.config, &mut message)?;
        let inner = &self.inner;
        let route = inner.route(&prepared.topic).await?;
        let queue = inner.select_queue(&route, &selector, None)?;
        let addr = master_addr(&route, &queue)?;
        let request = inner.send_request(&prepared, &queue);
        inner.core.pool.invoke_oneway(addr, request).await
    }

    /// The queues this producer can send `topic` to (fetching the route if needed).
    pub async fn write_queues(&self, topic: &str) -> Result<Vec<MessageQueue>, ClientError> {
        Ok(self.inner.route(topic).await?.write_queues.clone())
    }

    /// Stops background tasks, waits for async sends in flight, unregisters from every broker
    /// and closes connections. Sends after this fail with [`ClientError::Shutdown`].
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        if inner.shut_down.replace(true) {
            return;
        }
        inner.background.borrow_mut().clear();
        let all = inner.config.max_async_in_flight.max(1) as u64;
        // Waiting for every slot means every async send has called back.
        let _ = inner.async_slots.acquire(all).await;
        inner.async_slots.close();
        for addr in inner.core.known_master_addrs() {
            let request =
                requests::unregister_client(&inner.core.client_id, Some(&inner.config.group), None);
            if let Err(e) = inner.core.invoke_broker(&addr, request).await {
                tracing::debug!(%addr, error = %e, "unregister failed");
            }
        }
        inner
            .core
            .pool
            .flush_and_close_all(inner.core.config.request_timeout_ms)
            .await;
    }

    fn start_background_tasks(&self) {
        let weak = Rc::downgrade(&self.inner);
        let refresh_ms = self.inner.config.client.route_refresh_interval_ms;
        let route_task = glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(Duration::from_millis(refresh_ms)).await;
                let Some(inner) = weak.upgrade() else { return };
                inner
                    .core
                    .refresh_routes(Some(inner.config.default_topic_queue_nums))
                    .await;
            }
        });
        let weak = Rc::downgrade(&self.inner);
        let heartbeat_ms = self.inner.config.client.heartbeat_interval_ms;
        let heartbeat_task = glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(Duration::from_millis(heartbeat_ms)).await;
                let Some(inner) = weak.upgrade() else { return };
                inner.send_heartbeats().await;
            }
        });
        self.inner
            .background
            .borrow_mut()
            .extend([route_task, heartbeat_task]);
    }
}

impl ProducerInner {
    fn check_running(&self) -> Result<(), ClientError> {
        if self.shut_down.get() {
            return Err(ClientError::Shutdown);
        }
        Ok(())
    }

    async fn route(&self, topic: &str) -> Result<Rc<TopicRoute>, ClientError> {
        self.core
            .publish_route(topic, self.config.default_topic_queue_nums)
            .await
    }

    async fn send_prepared(
        &self,
        prepared: &PreparedSend,
        selector: &QueueSelector,
    ) -> Result<SendResult, ClientError> {
        // No shutdown check here: an async send accepted before `shutdown` still completes.
        let attempts = match selector {
            QueueSelector::RoundRobin => 1 + self.config.retry_times_when_send_failed,
            _ => 1,
        };
        let mut failed_broker: Option<String> = None;
        let mut last_error = None;
        for _ in 0..attempts {
            let route = match self.route(&prepared.topic).await {
                Ok(route) => route,
                Err(e) => {
                    last_error = Some(e);
                    continue;
                }
            };
            let queue = self.select_queue(&route, selector, failed_broker.as_deref())?;
            match self.send_once(prepared, &route, &queue).await {
                Ok(result) => return Ok(result),
                Err(e) if e.is_retriable_send_failure() => {
                    tracing::debug!(queue = %queue, error = %e, "send failed; retrying");
                    failed_broker = Some(queue.broker_name.clone());
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        let last = last_error.expect("at least one attempt ran");
        if attempts == 1 {
            return Err(last);
        }
        Err(ClientError::RetriesExhausted {
            attempts,
            last: Box::new(last),
        })
    }

    async fn send_once(
        &self,
        prepared: &PreparedSend,
        route: &TopicRoute,
        queue: &MessageQueue,
    ) -> Result<SendResult, ClientError> {
        let addr = master_addr(route, queue)?;
        let args = self.send_args(prepared, queue);
        let request_code = send_request_code(&args);
        let connection = self.core.pool.get(addr).await?;
        let timeout_ms = self.config.send_timeout_ms;
        let response = if connection.signs_requests() {
            // A signed send goes through the generic builder: the signature covers the ext
            // fields, which the direct frame writer never holds as a map.
            let request = requests::send_message(&args, prepared.body.clone());
            connection.request(request, timeout_ms).await?
        } else {
            // The frame is written straight into the connection's outbox (see `send_frame`).
            connection
                .request_encoded(request_code, timeout_ms, |opaque, outbox| {
                    encode_send_frame(&args, &prepared.body, opaque, outbox)
                })
                .await?
        };
        let Some(status) = SendStatus::from_response_code(response.code) else {
            return Err(requests::server_error(addr, request_code, &response));
        };
        let header = requests::parse_send_response(addr, request_code, &response)?;
        Ok(SendResult {
            status,
            msg_id: prepared.msg_id.clone(),
            offset_msg_id: header.msg_id,
            queue: MessageQueue::new(&queue.topic, &queue.broker_name, header.queue_id),
            queue_offset: header.queue_offset,
            transaction_id: header.transaction_id,
        })
    }

    fn send_args<'a>(
        &'a self,
        prepared: &'a PreparedSend,
        queue: &'a MessageQueue,
    ) -> SendArgs<'a> {
        SendArgs {
            producer_group: &self.config.group,
            topic: &prepared.topic,
            default_topic: AUTO_CREATE_TOPIC_KEY,
            default_topic_queue_nums: self.config.default_topic_queue_nums,
            queue_id: queue.queue_id,
            sys_flag: prepared.sys_flag,
            born_timestamp_ms: now_ms(),
            flag: prepared.flag,
            properties: &prepared.properties,
            reconsume_times: 0,
            max_reconsume_times: None,
            batch: prepared.batch,
            broker_name: &queue.broker_name,
        }
    }

    /// The send as a generic command (oneway sends, which are not the hot path).
    fn send_request(
        &self,
        prepared: &PreparedSend,
        queue: &MessageQueue,
    ) -> ringmq_proto::command::RemotingCommand {
        requests::send_message(&self.send_args(prepared, queue), prepared.body.clone())
    }

    fn select_queue(
        &self,
        route: &TopicRoute,
        selector: &QueueSelector,
        avoid_broker: Option<&str>,
    ) -> Result<MessageQueue, ClientError> {
        let no_queue = || ClientError::NoQueue {
            topic: route.topic.clone(),
            what: "writable",
        };
        match selector {
            QueueSelector::Explicit(queue) => Ok(queue.clone()),
            QueueSelector::ByKeyHash(key) => {
                if route.write_queues.is_empty() {
                    return Err(no_queue());
                }
                let hash = ringmq_proto::message::tag_hash(key) as i32;
                let index = queue_index_for_hash(hash, route.write_queues.len());
                Ok(route.write_queues[index].clone())
            }
            QueueSelector::RoundRobin => {
                // Looked up by `&str` first: the entry API would allocate the key every send.
                let existing = self
                    .round_robin_by_topic
                    .borrow()
                    .get(route.topic.as_str())
                    .cloned();
                let counter = existing.unwrap_or_else(|| {
                    let counter = Rc::new(RoundRobin::starting_at(rand::random()));
                    self.round_robin_by_topic
                        .borrow_mut()
                        .insert(route.topic.clone(), counter.clone());
                    counter
                });
                counter
                    .pick(&route.write_queues, avoid_broker)
                    .ok_or_else(no_queue)
            }
        }
    }

    async fn send_heartbeats(&self) {
        let body = requests::producer_heartbeat_body(&self.core.client_id, &self.config.group);
        for addr in self.core.known_master_addrs() {
            let request = requests::heartbeat(body.clone());
            match self.core.invoke_broker(&addr, request).await {
                Ok(response) if response.code == ResponseCode::Success.code() => {}
                Ok(response) => {
                    tracing::warn!(%addr, code = response.code, remark = ?response.remark,
                        "heartbeat refused")
                }
                Err(e) => tracing::debug!(%addr, error = %e, "heartbeat failed"),
            }
        }
    }
}

fn master_addr<'r>(route: &'r TopicRoute, queue: &MessageQueue) -> Result<&'r str, ClientError> {
    route
        .master_addr(&queue.broker_name)
        .ok_or_else(|| ClientError::NoQueue {
            topic: queue.topic.clone(),
            what: "master-hosted",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_codes_are_statuses_and_others_are_errors() {
        assert_eq!(SendStatus::from_response_code(0), Some(SendStatus::SendOk));
        assert_eq!(
            SendStatus::from_response_code(10),
            Some(SendStatus::FlushDiskTimeout)
        );
        assert_eq!(
            SendStatus::from_response_code(11),
            Some(SendStatus::SlaveNotAvailable)
        );
        assert_eq!(
            SendStatus::from_response_code(12),
            Some(SendStatus::FlushSlaveTimeout)
        );
        for code in [1, 2, 13, 14, 16, 17, 29] {
            assert_eq!(SendStatus::from_response_code(code), None);
        }
        // Java's retry set: busy/unavailable/permission/unknown topic, not MESSAGE_ILLEGAL.
        for code in [1, 2, 14, 16, 17, 204, 205] {
            assert!(crate::error::is_retriable_send_code(code), "{code}");
        }
        for code in [13, 29, 3] {
            assert!(!crate::error::is_retriable_send_code(code), "{code}");
        }
    }
}
