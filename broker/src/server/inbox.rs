//! What a shard does with the messages other shards send it over the mesh (`ShardMsg`):
//! forwarded requests, view publications and their acknowledgements, metadata and schedule
//! progress a slave copies from its master, and the queries other shards ask of this one.

use std::rc::Rc;

use super::dispatch;
use super::mesh::{InboxReceivers, ShardMsg};
use super::shard::{Shard, SHUTDOWN_DRAIN_MAX, SHUTDOWN_DRAIN_POLL};
use crate::ha::sync::MasterMetadata;
use crate::processor;
use crate::processor::runtime_info;
use crate::processor::stats::{run_admin_query, AdminPart, AdminQuery, ShardScope};
use crate::schedule::{MasterProgress, ShardSchedule};
use crate::shard_map::shard_of;

/// One wake-up of the inbox loop.
enum Incoming {
    Control(ShardMsg),
    Requests(Vec<super::mesh::Forwarded>),
}

/// Serves both inboxes until Shutdown. Control messages are polled first; after each wake-up
/// whatever else is already queued is handled before yielding (one wake-up, many messages).
pub(super) async fn serve_inbox(shard: &Rc<Shard>, inbox: &InboxReceivers) {
    loop {
        let next = futures_lite::future::or(
            async { inbox.control.recv_async().await.map(Incoming::Control) },
            async { inbox.requests.recv_async().await.map(Incoming::Requests) },
        )
        .await;
        let Ok(first) = next else {
            return;
        };
        if !handle_incoming(shard, first) {
            return;
        }
        while let Ok(msg) = inbox.control.try_recv() {
            if !handle_incoming(shard, Incoming::Control(msg)) {
                return;
            }
        }
        while let Ok(batch) = inbox.requests.try_recv() {
            dispatch::serve_forwarded(shard, batch);
        }
    }
}

/// `false` on Shutdown.
fn handle_incoming(shard: &Rc<Shard>, incoming: Incoming) -> bool {
    match incoming {
        Incoming::Control(ShardMsg::Shutdown) => false,
        Incoming::Control(msg) => {
            handle_inbox(shard, msg);
            true
        }
        Incoming::Requests(batch) => {
            dispatch::serve_forwarded(shard, batch);
            true
        }
    }
}

/// This shard's schedule progress and its written log end, for GET_ALL_DELAY_OFFSET.
fn schedule_progress(shard: &Shard) -> ringmq_proto::body::ShardScheduleProgress {
    let progress = shard
        .schedule
        .borrow()
        .as_ref()
        .map(ShardSchedule::progress)
        .unwrap_or_default();
    let log_written = shard.store().map_or(0, |s| s.log_offsets().written);
    MasterProgress {
        progress,
        log_written,
    }
    .to_body(shard.id.0 as u32)
}

/// A slave shard takes its part of the master's schedule progress.
fn install_schedule_progress(shard: &Shard, shards: &[ringmq_proto::body::ShardScheduleProgress]) {
    let Some(part) = shards.iter().find(|p| p.shard as usize == shard.id.0) else {
        return;
    };
    let schedule = shard.schedule.borrow();
    let (Some(ShardSchedule::Mirror(mirror)), Some(store)) = (schedule.as_ref(), shard.store())
    else {
        return;
    };
    mirror.offer(MasterProgress::from_body(part), store.log_offsets().written);
}

fn handle_inbox(shard: &Rc<Shard>, msg: ShardMsg) {
    match msg {
        ShardMsg::CreateTopic(request, reply) => {
            let (answer, announce) = {
                let mut meta = shard.metadata().borrow_mut();
                processor::admin::create_topic_on_send(&mut meta, &request)
            };
            // The sending shard retries its send once answered, so it must see the topic.
            match shard.carry_out(announce) {
                Some(installed) => {
                    glommio::spawn_local(async move {
                        installed.wait().await;
                        let _ = reply.send(answer);
                    })
                    .detach();
                }
                None => {
                    let _ = reply.send(answer);
                }
            }
        }
        ShardMsg::ProducerChannels(group, reply) => {
            let _ = reply.send(shard.live_producers(&group));
        }
        ShardMsg::ConsumerChannels(group, reply) => {
            let _ = reply.send(shard.live_consumers(&group));
        }
        ShardMsg::View(view, installed) => {
            shard.install_view(view);
            // The publisher may have stopped waiting (shutdown); nothing to tell then.
            let _ = installed.send(());
        }
        ShardMsg::ScheduleProgressQuery(reply) => {
            let _ = reply.send(schedule_progress(shard));
        }
        ShardMsg::CountersQuery(reply) => {
            let store = shard.store();
            let now_ms = crate::metadata::topics::now_ms();
            let counters = &shard.counters;
            let _ = reply.send(runtime_info::shard_counters(
                store.as_deref(),
                counters,
                shard.transaction.counters(),
                &shard.ha,
                now_ms,
            ));
        }
        ShardMsg::FromMaster(part) => install_from_master(shard, &part),
        ShardMsg::ConnClosed(conn_id) => {
            let announce = {
                let mut meta = shard.metadata().borrow_mut();
                processor::client::connection_closed(&mut meta, conn_id)
            };
            shard.carry_out(announce);
        }
        ShardMsg::AdminQuery(query, reply) => answer_admin_query(shard, query, reply),
        ShardMsg::IndexQuery(query, reply) => {
            let Some(store) = shard.store() else {
                let _ = reply.send(Err("store is closed".to_string()));
                return;
            };
            glommio::spawn_local(async move {
                let _ = reply.send(processor::lookup::run_index_query(&store, &query).await);
            })
            .detach();
        }
        ShardMsg::Shutdown => unreachable!("handled by the inbox loop"),
    }
}

/// A slave's metadata sync delivered part of its master's metadata (see [`ShardMsg::FromMaster`]).
fn install_from_master(shard: &Rc<Shard>, part: &MasterMetadata) {
    let announce = match part {
        MasterMetadata::Topics(topics) => {
            let mut meta = shard.metadata().borrow_mut();
            processor::admin::replace_topics_from_master(&mut meta, topics.clone())
        }
        MasterMetadata::Groups(groups) => {
            let mut meta = shard.metadata().borrow_mut();
            processor::group::replace_groups_from_master(&mut meta, groups.clone())
        }
        MasterMetadata::Offsets(offsets) => {
            let (me, shards) = (shard.id, shard.shards);
            let owns = |topic: &str, queue_id| shard_of(topic, queue_id, shards) == me;
            let changed = shard
                .offsets
                .borrow_mut()
                .merge_from_master(&offsets.offset_table, owns);
            if changed > 0 {
                tracing::debug!(
                    shard = me.0,
                    changed,
                    "consumer offsets copied from the master"
                );
            }
            return;
        }
        MasterMetadata::Schedule(shards) => {
            install_schedule_progress(shard, shards);
            return;
        }
    };
    shard.carry_out(announce);
}

/// Answers this shard's part of an admin request on a task of its own (it reads the store).
fn answer_admin_query(
    shard: &Rc<Shard>,
    query: AdminQuery,
    reply: flume::Sender<Result<AdminPart, String>>,
) {
    let Some(store) = shard.store() else {
        let _ = reply.send(Err("store is closed".to_string()));
        return;
    };
    let shard = shard.clone();
    glommio::spawn_local(async move {
        let view = shard.view();
        let scope = ShardScope {
            store: &store,
            offsets: &shard.offsets,
            view: &view,
            shard: shard.id,
            shards: shard.shards,
            broker_name: &shard.config.broker_name,
        };
        let _ = reply.send(run_admin_query(&scope, &query).await);
    })
    .detach();
}

/// Serves what is still in flight (and forwarded work still arriving) for a bounded time.
pub(super) async fn drain(shard: &Rc<Shard>, inbox: &InboxReceivers) {
    let started = std::time::Instant::now();
    loop {
        while let Ok(msg) = inbox.control.try_recv() {
            if !matches!(msg, ShardMsg::Shutdown) {
                handle_inbox(shard, msg);
            }
        }
        while let Ok(batch) = inbox.requests.try_recv() {
            dispatch::serve_forwarded(shard, batch);
        }
        if shard.pending.count() == 0 || started.elapsed() >= SHUTDOWN_DRAIN_MAX {
            break;
        }
        glommio::timer::sleep(SHUTDOWN_DRAIN_POLL).await;
    }
    if shard.pending.count() > 0 {
        tracing::warn!(
            shard = shard.id.0,
            pending = shard.pending.count(),
            "stopping with requests unanswered"
        );
    }
}
