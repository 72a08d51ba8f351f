//! Request handlers, one module per area, and the table from request code to handler.
//!
//! A handler runs on the shard that owns what the request is about (see `server::route`) and
//! returns an [`Outcome`]. Bad input is answered with RocketMQ's code and a remark, never by
//! closing the connection (only an undecodable frame does that).

pub mod admin;
pub mod client;
pub mod lookup;
pub mod offset;
pub mod pull;
pub mod queue_info;
pub mod runtime_info;
pub mod send;
pub mod send_back;

use std::rc::Rc;
use std::time::Duration;

use ringmq_proto::code::{RequestCode, ResponseCode};
use ringmq_proto::command::RemotingCommand;
use ringmq_proto::error::HeaderError;

use crate::metadata::ControlCall;
use crate::server::conn::{ConnHandle, ConnId};
use crate::server::shard::Shard;

/// What a handler did with a request.
pub enum Outcome {
    /// Answer with this (dropped if the request was oneway).
    Respond(RemotingCommand),
    /// Parked (a long-polling pull): it is answered later by the code that parked it, which has
    /// already released its slot in the shard's pending count.
    Parked,
    /// Handed to another shard (rewritten and routed again), which answers it.
    Forwarded,
}

/// Interval of the client-expiry sweep on the metadata shard.
const CLIENT_EXPIRY_SWEEP: Duration = Duration::from_secs(10);

pub async fn process(shard: &Rc<Shard>, conn: &ConnHandle, request: RemotingCommand) -> Outcome {
    let code = RequestCode::from_code(request.code);
    match code {
        RequestCode::SendMessage | RequestCode::SendMessageV2 | RequestCode::SendBatchMessage => {
            send::send_message(shard, conn, &request).await
        }
        RequestCode::PullMessage | RequestCode::LitePullMessage => {
            pull::pull_message(shard, conn, &request).await
        }
        RequestCode::GetMaxOffset => queue_info::max_offset(shard, &request),
        RequestCode::GetMinOffset => queue_info::min_offset(shard, &request),
        RequestCode::SearchOffsetByTimestamp => queue_info::search_offset(shard, &request).await,
        RequestCode::GetEarliestMsgStoretime => {
            queue_info::earliest_store_time(shard, &request).await
        }
        RequestCode::ViewMessageById => lookup::view_message(shard, &request).await,
        RequestCode::QueryMessage => lookup::query_message(shard, &request).await,
        RequestCode::ConsumerSendMsgBack => {
            send_back::consumer_send_msg_back(shard, conn, &request).await
        }
        RequestCode::HeartBeat => client::heartbeat(shard, conn, &request),
        RequestCode::UnregisterClient => client::unregister_client(shard, conn, &request),
        RequestCode::GetConsumerListByGroup => client::consumer_list(shard, &request),
        RequestCode::LockBatchMq => client::lock_batch(shard, &request),
        RequestCode::UnlockBatchMq => client::unlock_batch(shard, &request),
        RequestCode::CheckClientConfig => client::check_client_config(&request),
        RequestCode::QueryConsumerOffset => offset::query_consumer_offset(shard, &request).await,
        RequestCode::UpdateConsumerOffset => offset::update_consumer_offset(shard, &request),
        RequestCode::UpdateAndCreateTopic => admin::update_and_create_topic(shard, &request),
        RequestCode::DeleteTopicInBroker => admin::delete_topic(shard, &request),
        RequestCode::GetAllTopicConfig => admin::all_topic_config(shard, &request),
        RequestCode::UpdateBrokerConfig => admin::update_broker_config(shard, &request),
        RequestCode::GetBrokerConfig => admin::broker_config(shard, &request),
        RequestCode::GetBrokerRuntimeInfo => runtime_info::runtime_info(shard, &request).await,
        _ => not_supported(&request),
    }
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

pub fn success(request: &RemotingCommand) -> RemotingCommand {
    RemotingCommand::response_to(request, ResponseCode::Success.code(), None)
}

/// A call from another shard into broker-wide state (metadata shard only).
pub fn control(shard: &Rc<Shard>, call: ControlCall) {
    match call {
        ControlCall::CreateTopicOnSend {
            topic,
            default_topic,
            queue_nums,
            group_topic,
            reply,
        } => {
            let result =
                admin::create_topic_on_send(shard, &topic, &default_topic, queue_nums, group_topic);
            let _ = reply.send(result);
        }
    }
}

/// A connection closed: drop its registrations (metadata shard only).
pub fn connection_closed(shard: &Rc<Shard>, conn: ConnId) {
    client::connection_closed(shard, conn);
}

/// Periodic work of a shard; the tasks are cancelled at shutdown.
pub fn spawn_timers(shard: &Rc<Shard>) -> Vec<glommio::Task<()>> {
    let mut tasks = Vec::new();
    let interval = Duration::from_millis(shard.config.flush_consumer_offset_interval_ms.max(100));
    let offsets_shard = shard.clone();
    tasks.push(glommio::spawn_local(async move {
        loop {
            glommio::timer::sleep(interval).await;
            offset::persist(&offsets_shard);
        }
    }));
    if let Some(metadata) = &shard.metadata {
        metadata.borrow().register_with_name_servers();
        let sweep_shard = shard.clone();
        tasks.push(glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(CLIENT_EXPIRY_SWEEP).await;
                client::expire_clients(&sweep_shard);
            }
        }));
    }
    tasks
}

/// Last work of a shard before it stops: persist what it owns.
pub async fn on_shutdown(shard: &Rc<Shard>) {
    offset::persist(shard);
}
