//! Request handlers, one module per area.
//!
//! A handler is a function of *what it uses* and the request: the shard's store, the read copy
//! of broker-wide state ([`BrokerView`](crate::metadata::BrokerView)), the consumer offsets, the
//! configuration, `&mut Metadata` on the metadata shard, the clock as a number. It never sees the
//! shard or the server, so every handler is unit-tested with a store in a temporary directory and
//! no process. It returns an [`Outcome`] saying what it decided, and the server (`server::
//! dispatch`) carries it out: send the response, place a rewritten request again, park a pull,
//! or forward a request to a client and answer with the client's response.
//!
//! Where a request runs and which handler serves it is decided by one table,
//! `server::placement`. Requests that need another shard's state go through [`ShardMesh`], which
//! the server implements with cross-shard messages.
//!
//! Bad input is answered with RocketMQ's code and a remark, never by closing the connection
//! (only an undecodable frame does that).

pub mod admin;
pub mod client;
pub mod client_call;
pub mod group;
pub mod lookup;
pub mod offset;
pub mod pull;
pub mod queue_info;
pub mod runtime_info;
pub mod send;
pub mod send_back;
pub mod stats;
#[cfg(test)]
pub(crate) mod testing;
pub mod transaction;

use ringmq_proto::code::ResponseCode;
use ringmq_proto::command::RemotingCommand;
use ringmq_proto::error::HeaderError;

use crate::metadata::CreateTopicReply;
pub use crate::metadata::CreateTopicRequest;
use crate::store::QueryResult;

/// Java's `FAQUrl.SUBSCRIPTION_GROUP_NOT_EXIST`.
pub const FAQ_SUBSCRIPTION_GROUP_NOT_EXIST: &str = "http://rocketmq.apache.org/docs/faq/";

/// Java's `FAQUrl.suggestTodo`: the pointer Java appends to some remarks.
pub fn faq_suggest(url: &str) -> String {
    format!("\nSee {url} for further details.")
}

/// What a handler decided.
pub enum Outcome {
    /// Answer with this (dropped if the request was oneway).
    Respond(RemotingCommand),
    /// Place this (rewritten) request again: the shard that owns it now serves and answers it.
    /// A send whose queue the broker picks, a send diverted to the DLQ, a send-back turned into
    /// a send to `%RETRY%` all end here. `origin` goes with it to the handler that serves it.
    Reroute {
        request: RemotingCommand,
        origin: RequestOrigin,
    },
    /// A long-polling pull that found nothing: the server releases the request's pending slot
    /// and waits with [`pull::wait_parked`] until a message arrives, the deadline or shutdown.
    Park(Box<pull::ParkedPull>),
    /// Ask a client over its own connection and answer with what it says (Java's
    /// `Broker2Client.callClient`): the server sends the call, waits for the answer up to the
    /// call's timeout and answers with [`client_call::answer_from_client`].
    CallClient(Box<client_call::ClientCall>),
    /// Ask several clients at once (Java's `Broker2Client.getConsumeStatus`): the server sends
    /// every call, waits for each answer up to its call's timeout and answers with the calls'
    /// [`client_call::ClientCalls::gather`].
    CallClients(Box<client_call::ClientCalls>),
}

/// Who made a request the broker serves: a client (every request read from a connection), or
/// the broker itself (a send-back turned into a send). It travels beside the request, never in
/// it, so nothing a client puts on the wire can make its request a send-back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOrigin {
    /// Read from a client's connection (possibly rerouted since, keeping its origin).
    Client,
    /// The send a CONSUMER_SEND_MSG_BACK became ([`send_back::consumer_send_msg_back`]): the
    /// send path counts `SNDBCK_PUT_NUMS` when it is stored.
    SendBack,
}

/// What the metadata shard must do after a change to broker-wide state, besides answering.
#[derive(Debug, Default, PartialEq, Eq)]
#[must_use = "an announcement left undone keeps other shards on a stale view"]
pub struct Announce {
    /// The topic table changed: register again with the name servers.
    pub reregister: bool,
    /// The read copy changed: publish a new one to every shard.
    pub republish: bool,
    /// Groups whose consumer list changed: send NOTIFY_CONSUMER_IDS_CHANGED to their members.
    pub notify_groups: Vec<String>,
}

impl Announce {
    /// Topics changed (and so the view).
    pub fn topics_changed(changed: bool) -> Announce {
        Announce {
            reregister: changed,
            republish: changed,
            notify_groups: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        !self.reregister && !self.republish && self.notify_groups.is_empty()
    }
}

/// Requests to other shards, implemented by the server over the shard mesh. Each returns a
/// receiver that yields the answers; a closed receiver means the shards are stopping.
pub trait ShardMesh {
    /// Asks the metadata shard to auto-create a topic on send (reference §2.3 step 2).
    fn create_topic_on_send(
        &self,
        request: CreateTopicRequest,
    ) -> flume::Receiver<CreateTopicReply>;
    /// Runs one QUERY_MESSAGE index lookup on every shard (this one included); one answer each.
    fn query_index_everywhere(
        &self,
        query: lookup::IndexQuery,
    ) -> flume::Receiver<Result<QueryResult, String>>;
    /// Collects every shard's counters (this one included); one answer each.
    fn counters_everywhere(&self) -> flume::Receiver<runtime_info::ShardCounters>;
    /// Runs one admin query on every shard (this one included); one answer each.
    fn admin_everywhere(
        &self,
        query: stats::AdminQuery,
    ) -> flume::Receiver<Result<stats::AdminPart, String>>;
    /// Collects every shard's schedule progress (this one included); one answer each.
    fn schedule_progress_everywhere(
        &self,
    ) -> flume::Receiver<ringmq_proto::body::ShardScheduleProgress>;
    /// The open connections of a consumer group's members, with their client ids (asked of
    /// the metadata shard).
    fn consumer_channels(
        &self,
        group: &str,
    ) -> flume::Receiver<Vec<crate::channel::ConsumerChannel>>;
}

/// REQUEST_CODE_NOT_SUPPORTED with Java's remark (reference §1.5).
pub fn not_supported(request: &RemotingCommand) -> Outcome {
    respond_error(
        request,
        ResponseCode::RequestCodeNotSupported,
        format!(" request type {} not supported", request.code),
    )
}

pub fn respond_error(request: &RemotingCommand, code: ResponseCode, remark: String) -> Outcome {
    Outcome::Respond(RemotingCommand::response_to(
        request,
        code.code(),
        Some(remark),
    ))
}

/// A request whose typed header is incomplete or unparsable. Java answers these with
/// SYSTEM_ERROR (its header decoding throws inside the processor); so do we, naming the field.
pub fn bad_header(request: &RemotingCommand, e: HeaderError) -> Outcome {
    respond_error(
        request,
        ResponseCode::SystemError,
        format!("bad request header: {e}"),
    )
}

/// SERVICE_NOT_AVAILABLE for a request that needs the store after it was closed at shutdown.
pub fn store_closed(request: &RemotingCommand) -> Outcome {
    respond_error(
        request,
        ResponseCode::ServiceNotAvailable,
        "store is closed".to_string(),
    )
}

pub fn success(request: &RemotingCommand) -> RemotingCommand {
    RemotingCommand::response_to(request, ResponseCode::Success.code(), None)
}
