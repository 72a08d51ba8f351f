//! The producer: sync, async (bounded in flight), oneway and batch sends with SEND_MESSAGE_V2 /
//! SEND_BATCH_MESSAGE, queue selection, compression, UNIQ_KEY assignment, retries on another
//! broker, heartbeats and route refresh.
//!
//! Data flow of a send: validate → assign UNIQ_KEY → compress (single messages over the
//! threshold) → route (cached; TBW102 fallback for unknown topics) → select a queue → encode the
//! header and body straight into the broker connection's outbox → await the response matched by
//! opaque → `SendResult`. A retriable failure picks a queue on another broker, up to
//! `1 + retry_times_when_send_failed` attempts.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use glommio::sync::Semaphore;
use glommio::Task;
use ringmq_proto::code::ResponseCode;
use ringmq_proto::message::{property, BatchItem, UniqKeyGenerator};

use crate::compression::{compress_body, DEFAULT_COMPRESS_OVER_BYTES, DEFAULT_ZLIB_LEVEL};
use crate::config::ClientConfig;
use crate::core::{ClientCore, AUTO_CREATE_TOPIC_KEY};
use crate::error::ClientError;
use crate::message::Message;
use crate::queue::{queue_index_for_hash, MessageQueue, QueueSelector, RoundRobin};
use crate::requests::{self, SendArgs};
use crate::route::TopicRoute;
use crate::validate::{validate_message, validate_topic};

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

/// Encoded, ready-to-send form of one send (single message or batch), reused across retries.
struct PreparedSend {
    topic: String,
    body: Bytes,
    sys_flag: i32,
    flag: i32,
    properties: String,
    batch: bool,
    /// SendResult.msg_id: the UNIQ_KEY, or the joined UNIQ_KEYs of a batch.
    msg_id: String,
}

impl Producer {
    /// Starts a producer: validates the configuration and starts route refresh and heartbeats.
    /// Sends nothing until the first send (as Java's `start()`).
    pub fn start(config: ProducerConfig) -> Result<Producer, ClientError> {
        if config.group.is_empty() {
            return Err(ClientError::Config("producer group is empty".to_string()));
        }
        let core = ClientCore::new(config.client.clone(), None)?;
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
        mut message: Message,
        selector: QueueSelector,
    ) -> Result<SendResult, ClientError> {
        let prepared = self.inner.prepare_single(&mut message)?;
        self.inner.send_prepared(&prepared, &selector).await
    }

    /// Sends `messages` (same topic) as one SEND_BATCH_MESSAGE. Batches are never compressed.
    pub async fn send_batch(
        &self,
        messages: Vec<Message>,
        selector: QueueSelector,
    ) -> Result<SendResult, ClientError> {
        let prepared = self.inner.prepare_batch(messages)?;
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
        let prepared = self.inner.prepare_single(&mut message)?;
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
        let prepared = self.inner.prepare_single(&mut message)?;
        let inner = &self.inner;
        let route = inner.route(&prepared.topic).await?;
        let queue = inner.select_queue(&route, &selector, None)?;
        let addr = master_addr(&route, &queue)?;
        let request = inner.send_request(&prepared, &queue);
        inner.core.pool.invoke_oneway(&addr, request).await
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
        inner.core.pool.close_all();
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

    fn next_uniq_key(&self) -> String {
        next_uniq_key(&self.config.client.client_ip)
    }

    fn prepare_single(&self, message: &mut Message) -> Result<PreparedSend, ClientError> {
        self.check_running()?;
        validate_message(message, self.config.max_message_size_bytes)?;
        if message.uniq_key().is_none() {
            message.set_property(property::UNIQ_KEY, self.next_uniq_key());
        }
        let msg_id = message.uniq_key().unwrap_or_default().to_string();
        let (body, sys_flag) = if message.body.len() > self.config.compress_over_bytes {
            let (compressed, flags) = compress_body(&message.body, self.config.compress_level);
            (Bytes::from(compressed), flags)
        } else {
            (message.body.clone(), 0)
        };
        Ok(PreparedSend {
            topic: message.topic.clone(),
            body,
            sys_flag,
            flag: message.flag,
            properties: message.encode_properties(),
            batch: false,
            msg_id,
        })
    }

    fn prepare_batch(&self, mut messages: Vec<Message>) -> Result<PreparedSend, ClientError> {
        self.check_running()?;
        let Some(first) = messages.first() else {
            return Err(ClientError::InvalidMessage("empty batch".to_string()));
        };
        let topic = first.topic.clone();
        validate_topic(&topic)?;
        let mut body = Vec::new();
        let mut ids = Vec::with_capacity(messages.len());
        for message in &mut messages {
            validate_message(message, self.config.max_message_size_bytes)?;
            if message.topic != topic {
                return Err(ClientError::InvalidMessage(
                    "all messages of a batch must have the same topic".to_string(),
                ));
            }
            if message.property(property::DELAY).is_some() {
                return Err(ClientError::InvalidMessage(
                    "batch messages cannot be delayed".to_string(),
                ));
            }
            if message.uniq_key().is_none() {
                message.set_property(property::UNIQ_KEY, self.next_uniq_key());
            }
            ids.push(message.uniq_key().unwrap_or_default().to_string());
            let properties = message.encode_properties();
            BatchItem {
                flag: message.flag,
                body: &message.body,
                properties: properties.as_bytes(),
            }
            .encode(&mut body)
            .map_err(|e| ClientError::InvalidMessage(format!("batch item: {e}")))?;
        }
        if body.len() > self.config.max_message_size_bytes {
            return Err(ClientError::InvalidMessage(format!(
                "batch body of {} bytes exceeds {} bytes",
                body.len(),
                self.config.max_message_size_bytes
            )));
        }
        Ok(PreparedSend {
            topic,
            body: Bytes::from(body),
            sys_flag: 0,
            flag: 0,
            // The batch's own properties: Java sets WAIT from the first message.
            properties: Message::new("", Bytes::new()).encode_properties(),
            batch: true,
            msg_id: ids.join(","),
        })
    }

    async fn send_prepared(
        &self,
        prepared: &PreparedSend,
        selector: &QueueSelector,
    ) -> Result<SendResult, ClientError> {
        self.check_running()?;
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
        let request = self.send_request(prepared, queue);
        let request_code = request.code;
        let connection = self.core.pool.get(&addr).await?;
        let response = connection
            .request(request, self.config.send_timeout_ms)
            .await?;
        let Some(status) = SendStatus::from_response_code(response.code) else {
            return Err(requests::server_error(&addr, request_code, &response));
        };
        let header = requests::parse_send_response(&addr, request_code, &response)?;
        Ok(SendResult {
            status,
            msg_id: prepared.msg_id.clone(),
            offset_msg_id: header.msg_id,
            queue: MessageQueue::new(&queue.topic, &queue.broker_name, header.queue_id),
            queue_offset: header.queue_offset,
            transaction_id: header.transaction_id,
        })
    }

    fn send_request(
        &self,
        prepared: &PreparedSend,
        queue: &MessageQueue,
    ) -> ringmq_proto::command::RemotingCommand {
        let args = SendArgs {
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
        };
        requests::send_message(&args, prepared.body.clone())
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
                let counter = self
                    .round_robin_by_topic
                    .borrow_mut()
                    .entry(route.topic.clone())
                    .or_insert_with(|| Rc::new(RoundRobin::starting_at(rand::random())))
                    .clone();
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

fn master_addr(route: &TopicRoute, queue: &MessageQueue) -> Result<String, ClientError> {
    route
        .master_addr(&queue.broker_name)
        .map(str::to_string)
        .ok_or_else(|| ClientError::NoQueue {
            topic: queue.topic.clone(),
            what: "master-hosted",
        })
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

thread_local! {
    /// One generator per executor thread, shared by every producer on it: ids differ by the
    /// counter, so two generators with the same prefix would repeat each other. Java's
    /// "class-loader hash" is a per-process constant; a random value per thread keeps ids from
    /// two executors of one process apart.
    static UNIQ_KEYS: RefCell<Option<UniqKeyGenerator>> = const { RefCell::new(None) };
}

/// The next UNIQ_KEY of this thread; `client_ip` goes into the id's first bytes (loopback if it
/// does not parse).
fn next_uniq_key(client_ip: &str) -> String {
    UNIQ_KEYS.with(|keys| {
        let mut keys = keys.borrow_mut();
        let generator = keys.get_or_insert_with(|| {
            let ip = client_ip
                .parse()
                .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
            UniqKeyGenerator::new(ip, std::process::id(), rand::random())
        });
        generator.next_id(now_ms())
    })
}
