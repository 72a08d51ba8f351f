//! HEART_BEAT, UNREGISTER_CLIENT, GET_CONSUMER_LIST_BY_GROUP and NOTIFY_CONSUMER_IDS_CHANGED
//! (reference §2.6, §2.8). Served on the metadata shard.

use std::cell::RefMut;
use std::rc::Rc;

use bytes::Bytes;
use ringmq_proto::body::{
    CheckClientConfigBody, ConsumerListBody, HeartbeatData, JsonBody, LockBatchRequestBody,
    LockBatchResponseBody,
};
use ringmq_proto::code::{RequestCode, ResponseCode};
use ringmq_proto::command::{ExtFields, RemotingCommand};
use ringmq_proto::header::field;

use super::{bad_header, respond_error, success, Outcome};
use crate::metadata::clients::ClientChannel;
use crate::metadata::topics::{now_ms, retry_topic};
use crate::metadata::Metadata;
use crate::server::conn::{ConnHandle, ConnId};
use crate::server::shard::Shard;

fn metadata(shard: &Shard) -> RefMut<'_, Metadata> {
    shard
        .metadata
        .as_ref()
        .expect("client requests are routed to the metadata shard")
        .borrow_mut()
}

pub fn heartbeat(shard: &Rc<Shard>, conn: &ConnHandle, request: &RemotingCommand) -> Outcome {
    let data = match HeartbeatData::from_json(&request.body) {
        Ok(data) => data,
        Err(e) => {
            return respond_error(
                request,
                ResponseCode::SystemError,
                format!("bad heartbeat body: {e}"),
            )
        }
    };
    let now = now_ms();
    let mut topics_changed = false;
    let mut view_changed = false;
    let mut notify_groups = Vec::new();
    {
        let mut meta = metadata(shard);
        for consumer in data
            .consumer_data_set
            .iter()
            .filter(|c| !c.group_name.is_empty())
        {
            match meta
                .topics
                .ensure_group_topic(&retry_topic(&consumer.group_name))
            {
                Ok((_, created)) => topics_changed |= created,
                Err(e) => tracing::error!(
                    "cannot create the retry topic of {}: {e}",
                    consumer.group_name
                ),
            }
            let client = ClientChannel {
                client_id: data.client_id.clone(),
                channel: conn.clone(),
                last_heartbeat_ms: now,
            };
            let outcome = meta.clients.register_consumer(consumer, conn.id, client);
            view_changed |= outcome.subscriptions_changed;
            if outcome.ids_changed {
                notify_groups.push(consumer.group_name.clone());
            }
        }
        for producer in data
            .producer_data_set
            .iter()
            .filter(|p| !p.group_name.is_empty())
        {
            let client = ClientChannel {
                client_id: data.client_id.clone(),
                channel: conn.clone(),
                last_heartbeat_ms: now,
            };
            meta.clients
                .register_producer(&producer.group_name, conn.id, client);
        }
    }
    announce(shard, topics_changed, view_changed || topics_changed);
    for group in &notify_groups {
        notify_consumer_ids_changed(shard, group);
    }
    let mut response = success(request);
    response
        .ext_fields
        .insert("IS_SUPPORT_HEART_BEAT_V2", "false");
    response
        .ext_fields
        .insert("IS_SUB_CHANGE", view_changed.to_string());
    Outcome::Respond(response)
}

pub fn unregister_client(
    shard: &Rc<Shard>,
    conn: &ConnHandle,
    request: &RemotingCommand,
) -> Outcome {
    let ext = &request.ext_fields;
    if let Err(e) = field::string(ext, "clientID") {
        return bad_header(request, e);
    }
    let producer_group = field::opt_string(ext, "producerGroup").filter(|g| !g.is_empty());
    let consumer_group = field::opt_string(ext, "consumerGroup").filter(|g| !g.is_empty());
    let mut changed = false;
    {
        let mut meta = metadata(shard);
        if let Some(group) = &producer_group {
            meta.clients.unregister_producer(group, conn.id);
        }
        if let Some(group) = &consumer_group {
            changed = meta.clients.unregister_consumer(group, conn.id);
        }
    }
    if changed {
        let group = consumer_group.expect("changed only when a consumer group was given");
        announce(shard, false, true);
        notify_consumer_ids_changed(shard, &group);
    }
    Outcome::Respond(success(request))
}

pub fn consumer_list(shard: &Rc<Shard>, request: &RemotingCommand) -> Outcome {
    let group = match field::string(&request.ext_fields, "consumerGroup") {
        Ok(group) => group,
        Err(e) => return bad_header(request, e),
    };
    let ids = metadata(shard).clients.consumer_ids(&group);
    if ids.is_empty() {
        return respond_error(
            request,
            ResponseCode::SystemError,
            format!("no consumer for this group, {group}"),
        );
    }
    let body = ConsumerListBody {
        consumer_id_list: ids,
    };
    Outcome::Respond(success(request).with_body(Bytes::from(body.to_json().into_bytes())))
}

/// Drops a closed connection's registrations and notifies the groups it left.
pub fn connection_closed(shard: &Rc<Shard>, conn: ConnId) {
    let changed = metadata(shard).clients.connection_closed(conn);
    after_members_left(shard, &changed);
}

/// Drops clients silent for too long (Java's `channelExpiredTimeout`).
pub fn expire_clients(shard: &Rc<Shard>) {
    let changed = metadata(shard).clients.expire(now_ms());
    after_members_left(shard, &changed);
}

fn after_members_left(shard: &Rc<Shard>, groups: &[String]) {
    if groups.is_empty() {
        return;
    }
    announce(shard, false, true);
    for group in groups {
        notify_consumer_ids_changed(shard, group);
    }
}

/// NOTIFY_CONSUMER_IDS_CHANGED (40, oneway, header `consumerGroup`) to every live member.
fn notify_consumer_ids_changed(shard: &Rc<Shard>, group: &str) {
    let members = metadata(shard).clients.consumer_channels(group);
    for member in members {
        let mut ext = ExtFields::new();
        ext.insert("consumerGroup", group);
        let mut notify = RemotingCommand::new_request(
            RequestCode::NotifyConsumerIdsChanged.code(),
            ext,
            Bytes::new(),
        );
        notify.set_oneway();
        member.send_request(notify);
    }
}

/// After a change: publish the read copy and, if topics changed, re-register.
pub fn announce(shard: &Rc<Shard>, topics_changed: bool, view_changed: bool) {
    if !topics_changed && !view_changed {
        return;
    }
    let view = {
        let meta = metadata(shard);
        if topics_changed {
            meta.register_with_name_servers();
        }
        meta.view()
    };
    shard.publish_view(view);
}

/// LOCK_BATCH_MQ (41): body names the queues; the answer lists those now held by the client.
pub fn lock_batch(shard: &Rc<Shard>, request: &RemotingCommand) -> Outcome {
    let body = match LockBatchRequestBody::from_json(&request.body) {
        Ok(body) => body,
        Err(e) => {
            return respond_error(
                request,
                ResponseCode::SystemError,
                format!("bad lock body: {e}"),
            )
        }
    };
    let locked = metadata(shard).locks.try_lock_batch(
        &body.consumer_group,
        &body.client_id,
        &body.mq_set,
        now_ms(),
    );
    let answer = LockBatchResponseBody {
        lock_ok_mq_set: locked,
    };
    Outcome::Respond(success(request).with_body(Bytes::from(answer.to_json().into_bytes())))
}

/// UNLOCK_BATCH_MQ (42), often oneway.
pub fn unlock_batch(shard: &Rc<Shard>, request: &RemotingCommand) -> Outcome {
    let body = match LockBatchRequestBody::from_json(&request.body) {
        Ok(body) => body,
        Err(e) => {
            return respond_error(
                request,
                ResponseCode::SystemError,
                format!("bad unlock body: {e}"),
            )
        }
    };
    metadata(shard)
        .locks
        .unlock_batch(&body.consumer_group, &body.client_id, &body.mq_set);
    Outcome::Respond(success(request))
}

/// CHECK_CLIENT_CONFIG (46): sent at push-consumer start for non-TAG subscriptions. TAG is
/// accepted; SQL92 is refused (property filters are not built; Java refuses the same way
/// while `enablePropertyFilter` is off, its default), so the consumer fails to start with a
/// clear message instead of failing every pull.
pub fn check_client_config(request: &RemotingCommand) -> Outcome {
    let body = match CheckClientConfigBody::from_json(&request.body) {
        Ok(body) => body,
        Err(e) => {
            return respond_error(
                request,
                ResponseCode::SystemError,
                format!("bad client config body: {e}"),
            )
        }
    };
    let expression_type = body.subscription_data.expression_type.as_str();
    if expression_type.eq_ignore_ascii_case("TAG") {
        return Outcome::Respond(success(request));
    }
    respond_error(
        request,
        ResponseCode::SystemError,
        format!("The broker does not support consumer to filter message by {expression_type}"),
    )
}
