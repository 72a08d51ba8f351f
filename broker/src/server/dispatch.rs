//! From decoded requests to answers: place each request on its shard (the placement table),
//! run its handler with the narrow arguments it takes, and carry out the [`Outcome`] it returns.
//!
//! Handlers never call back into the server: a handler that wants its request served elsewhere
//! returns [`Outcome::Reroute`], a pull that waits returns [`Outcome::Park`], and this module
//! does the rest.
//!
//! Every request carries its [`RequestOrigin`] beside it, never in it: a request read from a
//! connection is [`RequestOrigin::Client`] here, by construction; only a handler's reroute
//! names another origin, and the send handler is told it.

use std::rc::Rc;
use std::time::{Duration, Instant};

use ringmq_proto::code::{RequestCode, ResponseCode};
use ringmq_proto::command::RemotingCommand;

use super::conn::RequestSink;
use super::mesh::{ForwardError, Forwarded};
use super::placement::{self, AdminHandler, Handler, MetaHandler};
use super::shard::{Shard, ViewInstalled};
use super::slots::Slot;
use crate::channel::CallError;
use crate::channel::{ConnHandle, InFlightSlot};
use crate::metadata::topics::now_ms;
use crate::processor::client_call::{self, ClientCall};
use crate::processor::{
    self, admin, client, group, lookup, offset, pull, queue_info, runtime_info, send, send_back,
    stats, transaction, Announce, Outcome, RequestOrigin,
};
use crate::shard_map::ShardId;
use crate::store::Store;

/// The shard as its connections' [`RequestSink`].
#[derive(Clone)]
pub struct ShardRef(pub Rc<Shard>);

impl RequestSink for ShardRef {
    fn dispatch(&self, conn: &ConnHandle, requests: Vec<RemotingCommand>) {
        let shard = &self.0;
        let received_at = Instant::now();
        // One batch per destination shard, kept in arrival order.
        let mut remote: Vec<Vec<Forwarded>> = (0..shard.shards).map(|_| Vec::new()).collect();
        for request in requests {
            if !admitted(shard, conn, &request) {
                continue;
            }
            let in_flight = conn.start_request();
            let owner = owner_of(shard, &request);
            let origin = RequestOrigin::Client;
            if owner == shard.id {
                serve_here(shard, conn.clone(), request, origin, in_flight);
            } else {
                remote[owner.0].push(Forwarded {
                    conn: conn.clone(),
                    request,
                    origin,
                    in_flight,
                    received_at,
                });
            }
        }
        for (owner, batch) in remote.into_iter().enumerate() {
            if !batch.is_empty() {
                forward(shard, ShardId(owner), batch);
            }
        }
    }
}

/// The ACL check, once per request on the shard that read it (forwarded and rerouted requests
/// are not checked again). A refused request is answered here and goes no further; the
/// connection stays open.
fn admitted(shard: &Shard, conn: &ConnHandle, request: &RemotingCommand) -> bool {
    let Some(gate) = &shard.acl else {
        return true;
    };
    match gate.check(request, conn.peer) {
        Ok(()) => true,
        Err(refusal) => {
            if !request.is_oneway() {
                conn.send(refusal);
            }
            false
        }
    }
}

fn owner_of(shard: &Shard, request: &RemotingCommand) -> ShardId {
    let entry = placement::entry(RequestCode::from_code(request.code));
    placement::shard_for(request, entry.placement, shard.id, shard.shards)
}

/// Hands a batch to its owner; if the owner's inbox is full (or gone) every request in it is
/// answered SYSTEM_BUSY here.
fn forward(shard: &Shard, owner: ShardId, batch: Vec<Forwarded>) {
    let refused = match shard.forward(owner, batch) {
        Ok(()) => return,
        Err(ForwardError::Full(batch)) | Err(ForwardError::Gone(batch)) => batch,
    };
    tracing::debug!(
        from = shard.id.0,
        to = owner.0,
        requests = refused.len(),
        "owner inbox full"
    );
    for forwarded in refused {
        let remark = busy_remark(
            PCBUSY_CLEAN_QUEUE,
            0,
            shard.config.limits.shard_inbox_batches_max,
        );
        answer_busy(&forwarded.conn, &forwarded.request, remark);
    }
}

/// Serves requests another shard forwarded here. A send that waited longer than
/// `waitTimeMillsInSendQueue` is answered SYSTEM_BUSY `[TIMEOUT_CLEAN_QUEUE]`, as Java's send
/// queue cleaner does: its client has likely given up or is about to.
pub(super) fn serve_forwarded(shard: &Rc<Shard>, batch: Vec<Forwarded>) {
    let wait_max = Duration::from_millis(shard.config.limits.wait_time_ms_in_send_queue);
    let now = Instant::now();
    let queued = batch.len();
    for forwarded in batch {
        let waited = now.saturating_duration_since(forwarded.received_at);
        if waited > wait_max && is_send(&forwarded.request) {
            let remark = busy_remark(TIMEOUT_CLEAN_QUEUE, waited.as_millis(), queued);
            answer_busy(&forwarded.conn, &forwarded.request, remark);
            continue;
        }
        let Forwarded {
            conn,
            request,
            origin,
            in_flight,
            ..
        } = forwarded;
        serve_here(shard, conn, request, origin, in_flight);
    }
}

fn is_send(request: &RemotingCommand) -> bool {
    let entry = placement::entry(RequestCode::from_code(request.code));
    entry.handler == Handler::Send
}

/// Java's flow-control remark prefixes, which clients already recognise.
const PCBUSY_CLEAN_QUEUE: &str = "[PCBUSY_CLEAN_QUEUE]";
const TIMEOUT_CLEAN_QUEUE: &str = "[TIMEOUT_CLEAN_QUEUE]";

fn busy_remark(prefix: &str, waited_ms: u128, queue_size: usize) -> String {
    format!(
        "{prefix}broker busy, start flow control for a while, period in queue: {waited_ms}ms, \
         size of queue: {queue_size}"
    )
}

fn answer_busy(conn: &ConnHandle, request: &RemotingCommand, remark: String) {
    if !request.is_oneway() {
        let busy = ResponseCode::SystemBusy.code();
        conn.send(RemotingCommand::response_to(request, busy, Some(remark)));
    }
}

/// Places one rerouted request, keeping its origin: served here, or forwarded to its owner.
fn place(
    shard: &Rc<Shard>,
    conn: ConnHandle,
    request: RemotingCommand,
    origin: RequestOrigin,
    in_flight: InFlightSlot,
) {
    let owner = owner_of(shard, &request);
    if owner == shard.id {
        serve_here(shard, conn, request, origin, in_flight);
    } else {
        let received_at = Instant::now();
        let forwarded = Forwarded {
            conn,
            request,
            origin,
            in_flight,
            received_at,
        };
        forward(shard, owner, vec![forwarded]);
    }
}

/// Serves one request that belongs to this shard: SYSTEM_BUSY past the pending bound, else a
/// task that runs its handler and carries out the outcome.
///
/// glommio polls a spawned task at once, up to its first await, so a handler that never waits
/// is done before this returns; only requests that wait (for the store, for another shard)
/// stay pending. Callers must not hold a `RefCell` borrow of shard state across this call.
fn serve_here(
    shard: &Rc<Shard>,
    conn: ConnHandle,
    request: RemotingCommand,
    origin: RequestOrigin,
    in_flight: InFlightSlot,
) {
    let max = shard.config.shard_pending_requests_max;
    let Some(slot) = shard.pending.try_acquire(max) else {
        let remark = busy_remark(PCBUSY_CLEAN_QUEUE, 0, shard.pending.count());
        return answer_busy(&conn, &request, remark);
    };
    let shard = shard.clone();
    glommio::spawn_local(async move {
        let handler = placement::entry(RequestCode::from_code(request.code)).handler;
        let started = std::time::Instant::now();
        let outcome = run(&shard, &conn, handler, origin, &request).await;
        // rocketmq_rpc_latency: handling time of requests answered here (a parked pull's wait
        // and a rerouted request's second placement are not handling time).
        if let Outcome::Respond(response) = &outcome {
            let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            shard
                .counters
                .stats
                .on_rpc(request.code, response.code, micros);
        }
        carry_out(&shard, conn, request, outcome, (slot, in_flight)).await;
    })
    .detach();
}

/// Does what the handler decided. The pending slot is given back before anything waits; a
/// parked pull leaves its connection's in-flight count and takes a parked-pull slot instead.
async fn carry_out(
    shard: &Rc<Shard>,
    conn: ConnHandle,
    request: RemotingCommand,
    outcome: Outcome,
    (slot, in_flight): (Slot, InFlightSlot),
) {
    drop(slot);
    let response = match outcome {
        Outcome::Respond(response) => response,
        Outcome::Reroute { request, origin } => {
            return place(shard, conn, request, origin, in_flight)
        }
        Outcome::Park(mut parked) => {
            drop(in_flight);
            let Some(store) = shard.store() else {
                return conn.send(store_closed_response(&request));
            };
            let parked_slot = shard
                .parked_pulls
                .try_acquire(shard.config.limits.shard_parked_pulls_max);
            if parked_slot.is_none() {
                // Past the bound the pull is answered with what it found (nothing) at once.
                parked.expire_now();
            }
            let counters = &shard.counters;
            pull::wait_parked(&store, counters, &shard.stop, &request, parked).await
        }
        // The admin request keeps its place in its connection's in-flight count while the
        // client is asked; the wait is bounded by the call's timeout.
        Outcome::CallClient(call) => {
            let result = call_client(&call).await;
            client_call::answer_from_client(&request, &call, result)
        }
        Outcome::CallClients(calls) => {
            let results = call_clients(&calls.calls).await;
            (calls.gather)(&request, &calls.calls, results)
        }
    };
    // A oneway request is handled in full but never answered (reference §1.5).
    if !request.is_oneway() {
        conn.send(response);
    }
}

/// Sends `call` on the client's connection and waits for the answer, at most its timeout.
async fn call_client(call: &ClientCall) -> Result<RemotingCommand, CallError> {
    let pending = call.conn.call(call.request.clone())?;
    let timeout = Duration::from_millis(call.timeout_ms);
    let expired = async {
        glommio::timer::sleep(timeout).await;
        Err(CallError::Timeout(call.timeout_ms))
    };
    // On a timeout `pending` is dropped here, which takes the call out of the table.
    futures_lite::future::or(pending.answer(), expired).await
}

/// Sends every call at once, then waits for each answer up to its call's timeout (counted from
/// the sending), so the whole wait is bounded by the longest timeout, not their sum.
async fn call_clients(calls: &[ClientCall]) -> Vec<client_call::CallResult> {
    let sent_at = Instant::now();
    let pending: Vec<_> = calls
        .iter()
        .map(|call| call.conn.call(call.request.clone()))
        .collect();
    let mut results = Vec::with_capacity(calls.len());
    for (call, pending) in calls.iter().zip(pending) {
        let result = match pending {
            Ok(pending) => {
                let deadline = sent_at + Duration::from_millis(call.timeout_ms);
                let expired = async {
                    glommio::timer::sleep(deadline.saturating_duration_since(Instant::now())).await;
                    Err(CallError::Timeout(call.timeout_ms))
                };
                futures_lite::future::or(pending.answer(), expired).await
            }
            Err(e) => Err(e),
        };
        results.push(result);
    }
    results
}

fn store_closed_response(request: &RemotingCommand) -> RemotingCommand {
    match processor::store_closed(request) {
        Outcome::Respond(response) => response,
        _ => unreachable!("store_closed responds"),
    }
}

/// Runs the handler with the arguments it takes (only the send handler takes the origin).
async fn run(
    shard: &Rc<Shard>,
    conn: &ConnHandle,
    handler: Handler,
    origin: RequestOrigin,
    request: &RemotingCommand,
) -> Outcome {
    match handler {
        Handler::Meta(meta_handler) => {
            let (outcome, installed) = run_meta(shard, conn, meta_handler, request);
            if let Some(installed) = installed {
                installed.wait().await;
            }
            outcome
        }
        Handler::NotSupported => processor::not_supported(request),
        Handler::CheckClientConfig => client::check_client_config(&shard.config, request),
        Handler::QueryMessage => lookup::query_message(shard.as_ref(), request).await,
        Handler::GetBrokerRuntimeInfo => {
            runtime_info::runtime_info(shard.as_ref(), shard.facts(), request).await
        }
        Handler::Admin(admin_handler) => run_admin(shard, admin_handler, request).await,
        Handler::GetAllDelayOffset => group::all_delay_offsets(shard.as_ref(), request).await,
        store_handler => match shard.store() {
            Some(store) => {
                run_with_store(shard, conn, &store, store_handler, origin, request).await
            }
            None => processor::store_closed(request),
        },
    }
}

/// Handlers of the shard's own queues and log.
async fn run_with_store(
    shard: &Rc<Shard>,
    conn: &ConnHandle,
    store: &Store,
    handler: Handler,
    origin: RequestOrigin,
    request: &RemotingCommand,
) -> Outcome {
    let config = &shard.config;
    let shard_id = shard.id.0 as u8;
    match handler {
        Handler::Send => {
            let view = shard.view();
            let ctx = send::SendContext {
                config,
                view: &view,
                store,
                uniq_keys: &shard.uniq_keys,
                store_host: shard.store_host,
                counters: &shard.counters,
                mesh: shard.as_ref(),
                transaction: &shard.transaction,
                ha: &shard.ha,
                now_ms: now_ms(),
            };
            send::send_message(&ctx, conn.peer, origin, request).await
        }
        Handler::Pull => {
            let view = shard.view();
            let ctx = pull::PullContext {
                store,
                view: &view,
                offsets: &shard.offsets,
                config,
                counters: &shard.counters,
                filters: &shard.filters,
                stopping: shard.stop.is_fired(),
            };
            pull::pull_message(&ctx, request).await
        }
        Handler::GetMaxOffset => queue_info::max_offset(store, request),
        Handler::GetMinOffset => queue_info::min_offset(store, request),
        Handler::SearchOffsetByTimestamp => queue_info::search_offset(store, request).await,
        Handler::GetEarliestMsgStoretime => queue_info::earliest_store_time(store, request).await,
        Handler::QueryConsumerOffset => {
            let in_memory = config.in_memory_max_bytes(offset::physical_memory_bytes());
            offset::query_consumer_offset(store, &shard.offsets, in_memory, request).await
        }
        Handler::UpdateConsumerOffset => {
            offset::update_consumer_offset(&shard.view(), &shard.offsets, request)
        }
        Handler::ViewMessageById => lookup::view_message(store, shard_id, request).await,
        Handler::EndTransaction => {
            let role = config.broker_role;
            transaction::end_transaction(&shard.transaction, store, role, request, now_ms()).await
        }
        Handler::ConsumerSendMsgBack => {
            let view = shard.view();
            send_back::consumer_send_msg_back(config, &view, store, shard_id, request).await
        }
        Handler::ConsumeMessageDirectly => {
            let (mesh, broker_name) = (shard.as_ref(), &config.broker_name);
            client_call::consume_message_directly(store, shard_id, mesh, broker_name, request).await
        }
        Handler::Meta(_)
        | Handler::Admin(_)
        | Handler::NotSupported
        | Handler::CheckClientConfig
        | Handler::QueryMessage
        | Handler::GetBrokerRuntimeInfo
        | Handler::GetAllDelayOffset => unreachable!("served without the store"),
    }
}

/// Admin handlers that gather every shard's part.
async fn run_admin(shard: &Rc<Shard>, handler: AdminHandler, request: &RemotingCommand) -> Outcome {
    let view = shard.view();
    let mesh: &dyn processor::ShardMesh = shard.as_ref();
    match handler {
        AdminHandler::GetTopicStatsInfo => stats::topic_stats(mesh, &view, request).await,
        AdminHandler::GetConsumeStats => {
            stats::consume_stats(mesh, &view, &shard.stats, request, now_ms()).await
        }
        AdminHandler::GetAllConsumerOffset => stats::all_consumer_offsets(mesh, request).await,
        AdminHandler::InvokeBrokerToResetOffset => stats::reset_offset(mesh, &view, request).await,
        AdminHandler::QueryTopicConsumeByWho => {
            stats::topic_consumed_by(mesh, &view, request).await
        }
        AdminHandler::QueryTopicsByConsumer => {
            let addr = shard.store_host.to_string();
            stats::topics_by_consumer(mesh, &view, &addr, request).await
        }
        AdminHandler::ViewBrokerStatsData => {
            stats::view_broker_stats(&shard.stats, request, now_ms())
        }
    }
}

/// Handlers of broker-wide state, with `&mut Metadata`; the announcement is carried out after
/// the borrow ends, and the caller answers once a republished view is on every shard.
fn run_meta(
    shard: &Rc<Shard>,
    conn: &ConnHandle,
    handler: MetaHandler,
    request: &RemotingCommand,
) -> (Outcome, Option<ViewInstalled>) {
    let (outcome, announce) = {
        let mut meta = shard.metadata().borrow_mut();
        let meta = &mut *meta;
        let quiet = |outcome| (outcome, Announce::default());
        match handler {
            MetaHandler::HeartBeat => client::heartbeat(meta, conn, request, now_ms()),
            MetaHandler::UnregisterClient => client::unregister_client(meta, conn, request),
            MetaHandler::GetConsumerListByGroup => quiet(client::consumer_list(meta, request)),
            MetaHandler::LockBatchMq => quiet(client::lock_batch(meta, request, now_ms())),
            MetaHandler::UnlockBatchMq => quiet(client::unlock_batch(meta, request)),
            MetaHandler::UpdateAndCreateTopic => admin::update_and_create_topic(meta, request),
            MetaHandler::DeleteTopicInBroker => admin::delete_topic(meta, request),
            MetaHandler::GetAllTopicConfig => quiet(admin::all_topic_config(meta, request)),
            MetaHandler::UpdateBrokerConfig => admin::update_broker_config(meta, request),
            MetaHandler::GetBrokerConfig => {
                quiet(admin::broker_config(meta, &shard.config, request))
            }
            MetaHandler::GetConsumerConnectionList => {
                quiet(stats::consumer_connection(meta, request))
            }
            MetaHandler::GetProducerConnectionList => {
                quiet(stats::producer_connection(meta, request))
            }
            MetaHandler::UpdateAndCreateSubscriptionGroup => {
                group::update_and_create(meta, request)
            }
            MetaHandler::GetAllSubscriptionGroupConfig => quiet(group::all(meta, request)),
            MetaHandler::DeleteSubscriptionGroup => group::delete(meta, request),
            MetaHandler::GetConsumerRunningInfo => {
                quiet(client_call::consumer_running_info(meta, request))
            }
            MetaHandler::InvokeBrokerToGetConsumerStatus => {
                quiet(client_call::consumer_status(meta, request))
            }
        }
    };
    let installed = shard.carry_out(announce);
    (outcome, installed)
}
