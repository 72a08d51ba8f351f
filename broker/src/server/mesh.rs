//! The shard mesh: every shard's two inboxes and the messages they carry.
//!
//! Forwarded requests travel on a **bounded** inbox (`ringmqShardInboxBatchesMax` batches): a
//! shard that cannot keep up makes the forwarding shard answer SYSTEM_BUSY instead of growing a
//! queue without limit. Control messages (views, replies, connection closes, shutdown) travel on
//! a separate unbounded inbox: they are few, each is caused by a request or a connection the
//! other bounds already limit, and losing one would leave a shard with a stale view.

use std::sync::Arc;
use std::time::Instant;

use ringmq_proto::command::RemotingCommand;

use crate::channel::{ConnHandle, ConnId, InFlightSlot};
use crate::metadata::{BrokerView, CreateTopicReply, CreateTopicRequest};
use crate::processor::lookup::IndexQuery;
use crate::processor::runtime_info::ShardCounters;
use crate::processor::stats::{AdminPart, AdminQuery};
use crate::processor::RequestOrigin;
use crate::shard_map::ShardId;
use crate::store::QueryResult;

/// A control message between shards.
pub enum ShardMsg {
    /// Auto-create a topic on send; only the metadata shard receives these.
    CreateTopic(CreateTopicRequest, flume::Sender<CreateTopicReply>),
    /// A new read copy of broker-wide state, published by the metadata shard. The receiver
    /// acknowledges on the sender once the copy is installed.
    View(Arc<BrokerView>, flume::Sender<()>),
    /// This shard's part of a QUERY_MESSAGE.
    IndexQuery(IndexQuery, flume::Sender<Result<QueryResult, String>>),
    /// GET_BROKER_RUNTIME_INFO asks for this shard's counters.
    CountersQuery(flume::Sender<ShardCounters>),
    /// The live connections of a producer group (a shard's transaction check-back); only the
    /// metadata shard receives these.
    ProducerChannels(String, flume::Sender<Vec<ConnHandle>>),
    /// The live connections of a consumer group (INVOKE_BROKER_TO_RESET_OFFSET tells them the
    /// new offsets); only the metadata shard receives these.
    ConsumerChannels(String, flume::Sender<Vec<crate::channel::ConsumerChannel>>),
    /// This shard's part of an admin request (topic or consume stats, offsets, reset).
    AdminQuery(AdminQuery, flume::Sender<Result<AdminPart, String>>),
    /// GET_ALL_DELAY_OFFSET asks for this shard's schedule progress.
    ScheduleProgressQuery(flume::Sender<ringmq_proto::body::ShardScheduleProgress>),
    /// A slave's metadata sync brought part of its master's metadata: topics and groups go to
    /// the metadata shard only, offsets and schedule progress to every shard (each keeps the
    /// queues, or the progress, it owns).
    FromMaster(Arc<crate::ha::sync::MasterMetadata>),
    /// A connection closed; the metadata shard drops its client registrations.
    ConnClosed(ConnId),
    /// Stop accepting, finish in-flight work, persist, exit.
    Shutdown,
}

/// A request served by a shard other than the one whose connection received it.
pub struct Forwarded {
    pub conn: ConnHandle,
    pub request: RemotingCommand,
    /// Who made it: a client, or the broker (a send-back rerouted to its send's owner).
    pub origin: RequestOrigin,
    /// The request's place in its connection's in-flight count.
    pub in_flight: InFlightSlot,
    /// When the receiving shard read it (for `waitTimeMillsInSendQueue`).
    pub received_at: Instant,
}

/// The sending ends of one shard's inboxes. `Send + Clone`.
#[derive(Clone)]
pub struct ShardInbox {
    requests: flume::Sender<Vec<Forwarded>>,
    control: flume::Sender<ShardMsg>,
}

/// The receiving ends of one shard's inboxes.
pub struct InboxReceivers {
    pub requests: flume::Receiver<Vec<Forwarded>>,
    pub control: flume::Receiver<ShardMsg>,
}

/// Senders to every shard's inboxes, indexed by shard id.
pub type Mesh = Arc<Vec<ShardInbox>>;

/// Why a batch was not forwarded; it is handed back to be answered where it is.
pub enum ForwardError {
    /// The owner's request inbox is at its bound.
    Full(Vec<Forwarded>),
    /// The owner has stopped (shutdown).
    Gone(Vec<Forwarded>),
}

/// A mesh of `shards` shards, each request inbox bounded to `inbox_batches_max` batches.
pub fn mesh(shards: usize, inbox_batches_max: usize) -> (Mesh, Vec<InboxReceivers>) {
    assert!(inbox_batches_max > 0);
    let (senders, receivers) = (0..shards)
        .map(|_| {
            let (requests, requests_rx) = flume::bounded(inbox_batches_max);
            let (control, control_rx) = flume::unbounded();
            let inbox = ShardInbox { requests, control };
            let receivers = InboxReceivers {
                requests: requests_rx,
                control: control_rx,
            };
            (inbox, receivers)
        })
        .unzip();
    (Arc::new(senders), receivers)
}

impl ShardInbox {
    /// Queues a batch of forwarded requests without waiting (a shard thread never blocks).
    pub fn forward(&self, batch: Vec<Forwarded>) -> Result<(), ForwardError> {
        self.requests.try_send(batch).map_err(|e| match e {
            flume::TrySendError::Full(batch) => ForwardError::Full(batch),
            flume::TrySendError::Disconnected(batch) => ForwardError::Gone(batch),
        })
    }

    /// Queues a control message; `false` when the shard has stopped.
    pub fn control(&self, msg: ShardMsg) -> bool {
        self.control.send(msg).is_ok()
    }
}

/// Shard ids of a mesh, for iteration.
pub fn shard_ids(mesh: &Mesh) -> impl Iterator<Item = ShardId> {
    (0..mesh.len()).map(ShardId)
}
