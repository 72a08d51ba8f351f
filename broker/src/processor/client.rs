//! HEART_BEAT, UNREGISTER_CLIENT, GET_CONSUMER_LIST_BY_GROUP and NOTIFY_CONSUMER_IDS_CHANGED
//! (reference §2.6, §2.8), queue locks and CHECK_CLIENT_CONFIG. Served on the metadata shard
//! (CHECK_CLIENT_CONFIG anywhere): handlers take `&mut Metadata` and return, besides their
//! answer, the [`Announce`] the server carries out (publish the view, notify groups).

use bytes::Bytes;
use ringmq_proto::body::{
    CheckClientConfigBody, ConsumerListBody, HeartbeatData, JsonBody, LockBatchRequestBody,
    LockBatchResponseBody,
};
use ringmq_proto::code::{RequestCode, ResponseCode};
use ringmq_proto::command::{ExtFields, RemotingCommand};
use ringmq_proto::header::field;

use super::{bad_header, respond_error, success, Announce, Outcome};
use crate::channel::{ConnHandle, ConnId};
use crate::config::BrokerConfig;
use crate::filter::{self, SqlFilter};
use crate::metadata::clients::ClientChannel;
use crate::metadata::topics::retry_topic;
use crate::metadata::Metadata;

pub fn heartbeat(
    meta: &mut Metadata,
    conn: &ConnHandle,
    request: &RemotingCommand,
    now_ms: i64,
) -> (Outcome, Announce) {
    let data = match HeartbeatData::from_json(&request.body) {
        Ok(data) => data,
        Err(e) => {
            let remark = format!("bad heartbeat body: {e}");
            let refusal = respond_error(request, ResponseCode::SystemError, remark);
            return (refusal, Announce::default());
        }
    };
    let mut announce = Announce::default();
    let mut groups_created = false;
    let client = ClientChannel {
        client_id: data.client_id.clone(),
        channel: conn.clone(),
        last_heartbeat_ms: now_ms,
        language: request.language.name(),
        version: request.version,
    };
    for consumer in data
        .consumer_data_set
        .iter()
        .filter(|c| !c.group_name.is_empty())
    {
        groups_created |= ensure_group(meta, &consumer.group_name, &mut announce);
        let outcome = meta
            .clients
            .register_consumer(consumer, conn.id, client.clone());
        announce.republish |= outcome.subscriptions_changed;
        if outcome.ids_changed {
            announce.notify_groups.push(consumer.group_name.clone());
        }
    }
    for producer in data
        .producer_data_set
        .iter()
        .filter(|p| !p.group_name.is_empty())
    {
        meta.clients
            .register_producer(&producer.group_name, conn.id, client.clone());
    }
    let subscriptions_changed = announce.republish;
    announce.republish |= announce.reregister || groups_created;
    let mut response = success(request);
    let ext = &mut response.ext_fields;
    ext.insert("IS_SUPPORT_HEART_BEAT_V2", "false");
    ext.insert("IS_SUB_CHANGE", subscriptions_changed.to_string());
    (Outcome::Respond(response), announce)
}

/// Java's `findSubscriptionGroupConfig` on heartbeat: the group is created when
/// `autoCreateSubscriptionGroup` is on, and its retry topic is made to exist with the group's
/// `retryQueueNums` queues (not for an unknown group, as in Java). Returns whether the group
/// was created now.
fn ensure_group(meta: &mut Metadata, group: &str, announce: &mut Announce) -> bool {
    let (retry_queues, created) = match meta.groups.find_or_create(group) {
        Ok((config, created)) => (config.map(|g| g.retry_queue_nums), created),
        Err(e) => {
            tracing::error!("cannot create group {group}: {e}");
            (None, false)
        }
    };
    if let Some(queues) = retry_queues {
        let retry = retry_topic(group);
        match meta.topics.ensure_group_topic(&retry, queues) {
            Ok((_, created)) => announce.reregister |= created,
            Err(e) => tracing::error!("cannot create the retry topic {retry}: {e}"),
        }
    }
    created
}

pub fn unregister_client(
    meta: &mut Metadata,
    conn: &ConnHandle,
    request: &RemotingCommand,
) -> (Outcome, Announce) {
    let ext = &request.ext_fields;
    if let Err(e) = field::string(ext, "clientID") {
        return (bad_header(request, e), Announce::default());
    }
    let producer_group = field::opt_string(ext, "producerGroup").filter(|g| !g.is_empty());
    let consumer_group = field::opt_string(ext, "consumerGroup").filter(|g| !g.is_empty());
    if let Some(group) = &producer_group {
        meta.clients.unregister_producer(group, conn.id);
    }
    let mut announce = Announce::default();
    if let Some(group) = consumer_group {
        if meta.clients.unregister_consumer(&group, conn.id) {
            announce.republish = true;
            announce.notify_groups.push(group);
        }
    }
    (Outcome::Respond(success(request)), announce)
}

pub fn consumer_list(meta: &Metadata, request: &RemotingCommand) -> Outcome {
    let group = match field::string(&request.ext_fields, "consumerGroup") {
        Ok(group) => group,
        Err(e) => return bad_header(request, e),
    };
    let ids = meta.clients.consumer_ids(&group);
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

/// Drops a closed connection's registrations; the groups it left are to be notified.
pub fn connection_closed(meta: &mut Metadata, conn: ConnId) -> Announce {
    members_left(meta.clients.connection_closed(conn))
}

/// Drops clients silent for too long (Java's `channelExpiredTimeout`).
pub fn expire_clients(meta: &mut Metadata, now_ms: i64) -> Announce {
    members_left(meta.clients.expire(now_ms))
}

fn members_left(groups: Vec<String>) -> Announce {
    Announce {
        reregister: false,
        republish: !groups.is_empty(),
        notify_groups: groups,
    }
}

/// NOTIFY_CONSUMER_IDS_CHANGED (40, oneway, header `consumerGroup`) to every live member.
pub fn notify_consumer_ids_changed(meta: &Metadata, group: &str) {
    for member in meta.clients.consumer_channels(group) {
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

/// LOCK_BATCH_MQ (41): body names the queues; the answer lists those now held by the client.
pub fn lock_batch(meta: &mut Metadata, request: &RemotingCommand, now_ms: i64) -> Outcome {
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
    let locked =
        meta.locks
            .try_lock_batch(&body.consumer_group, &body.client_id, &body.mq_set, now_ms);
    let answer = LockBatchResponseBody {
        lock_ok_mq_set: locked,
    };
    Outcome::Respond(success(request).with_body(Bytes::from(answer.to_json().into_bytes())))
}

/// UNLOCK_BATCH_MQ (42), often oneway.
pub fn unlock_batch(meta: &mut Metadata, request: &RemotingCommand) -> Outcome {
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
    meta.locks
        .unlock_batch(&body.consumer_group, &body.client_id, &body.mq_set);
    Outcome::Respond(success(request))
}

/// CHECK_CLIENT_CONFIG (46): sent at push-consumer start for non-TAG subscriptions. TAG is
/// accepted; SQL92 is refused with Java's SYSTEM_ERROR remark while `enablePropertyFilter` is
/// off (its default), and otherwise compiled: a bad expression gets SUBSCRIPTION_PARSE_FAILED
/// with the reason, so the consumer fails to start with a clear message instead of failing
/// every pull.
pub fn check_client_config(config: &BrokerConfig, request: &RemotingCommand) -> Outcome {
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
    let subscription = &body.subscription_data;
    let expression_type = subscription.expression_type.as_str();
    if expression_type.eq_ignore_ascii_case("TAG") {
        return Outcome::Respond(success(request));
    }
    if !config.enable_property_filter {
        return respond_error(
            request,
            ResponseCode::SystemError,
            filter::unsupported_remark(expression_type),
        );
    }
    if !filter::is_sql92(expression_type) {
        let remark = format!("unknown expression type {expression_type}");
        return respond_error(request, ResponseCode::SubscriptionParseFailed, remark);
    }
    match SqlFilter::compile(&subscription.sub_string) {
        Ok(_) => Outcome::Respond(success(request)),
        Err(e) => respond_error(
            request,
            ResponseCode::SubscriptionParseFailed,
            e.to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processor::testing::{self, connection, request, responded};

    const HEARTBEAT: &str = r#"{"clientID":"10.0.0.1@1","consumerDataSet":[{"consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","consumeType":"CONSUME_PASSIVELY","groupName":"g","messageModel":"CLUSTERING","subscriptionDataSet":[{"classFilterMode":false,"codeSet":[],"expressionType":"TAG","subString":"*","subVersion":1,"tagsSet":[],"topic":"T"}],"unitMode":false}],"producerDataSet":[{"groupName":"p"}]}"#;

    #[test]
    fn a_heartbeat_registers_the_group_creates_its_retry_topic_and_announces() {
        testing::run(|fx| async move {
            let (conn, notices) = connection(1);
            let mut meta = fx.metadata.borrow_mut();
            let hb = request(RequestCode::HeartBeat, &[], HEARTBEAT.as_bytes());
            let (outcome, announce) = heartbeat(&mut meta, &conn, &hb, 1_000);
            let response = responded(outcome);
            assert_eq!(response.code, ResponseCode::Success.code());
            assert_eq!(response.ext_fields.get("IS_SUB_CHANGE"), Some("true"));
            assert!(announce.reregister && announce.republish);
            assert_eq!(announce.notify_groups, vec!["g".to_string()]);
            assert!(meta.topics.get("%RETRY%g").is_some());
            assert!(meta.view().subscriptions["g"].contains_key("T"));
            notify_consumer_ids_changed(&meta, "g");
            let notice = notices.commands.try_recv().expect("the member is notified");
            assert_eq!(notice.code, RequestCode::NotifyConsumerIdsChanged.code());
            // The same heartbeat again changes nothing.
            let (_, again) = heartbeat(&mut meta, &conn, &hb, 2_000);
            assert!(again.is_empty(), "{again:?}");
            let list = request(
                RequestCode::GetConsumerListByGroup,
                &[("consumerGroup", "g")],
                b"",
            );
            let body = responded(consumer_list(&meta, &list)).body;
            assert!(std::str::from_utf8(&body).unwrap().contains("10.0.0.1@1"));
        });
    }

    #[test]
    fn unregister_close_and_expiry_remove_members() {
        testing::run(|fx| async move {
            let (conn, _notices) = connection(1);
            let mut meta = fx.metadata.borrow_mut();
            let hb = request(RequestCode::HeartBeat, &[], HEARTBEAT.as_bytes());
            let _ = heartbeat(&mut meta, &conn, &hb, 1_000);
            let fields = [("clientID", "10.0.0.1@1"), ("consumerGroup", "g")];
            let unregister = request(RequestCode::UnregisterClient, &fields, b"");
            let (outcome, announce) = unregister_client(&mut meta, &conn, &unregister);
            assert_eq!(responded(outcome).code, ResponseCode::Success.code());
            assert_eq!(announce.notify_groups, vec!["g".to_string()]);
            let _ = heartbeat(&mut meta, &conn, &hb, 1_000);
            assert_eq!(
                connection_closed(&mut meta, conn.id).notify_groups,
                vec!["g"]
            );
            let _ = heartbeat(&mut meta, &conn, &hb, 1_000);
            assert!(expire_clients(&mut meta, 1_000).is_empty());
            assert_eq!(
                expire_clients(&mut meta, 10_000_000).notify_groups,
                vec!["g"]
            );
            let list = request(
                RequestCode::GetConsumerListByGroup,
                &[("consumerGroup", "g")],
                b"",
            );
            assert_eq!(
                responded(consumer_list(&meta, &list)).code,
                ResponseCode::SystemError.code()
            );
        });
    }

    #[test]
    fn locks_go_to_one_client_at_a_time_and_bad_bodies_are_refused() {
        testing::run(|fx| async move {
            let mut meta = fx.metadata.borrow_mut();
            let body = |client: &str| {
                format!(
                    r#"{{"consumerGroup":"g","clientId":"{client}","mqSet":[{{"topic":"T","brokerName":"b","queueId":0}}]}}"#
                )
            };
            let lock = |meta: &mut Metadata, client: &str, now| {
                let r = request(RequestCode::LockBatchMq, &[], body(client).as_bytes());
                let body = responded(lock_batch(meta, &r, now)).body;
                String::from_utf8(body.to_vec()).unwrap()
            };
            assert!(lock(&mut meta, "a", 0).contains("\"queueId\":0"));
            assert!(!lock(&mut meta, "b", 1).contains("\"queueId\":0"));
            let unlock = request(RequestCode::UnlockBatchMq, &[], body("a").as_bytes());
            assert_eq!(responded(unlock_batch(&mut meta, &unlock)).code, 0);
            assert!(lock(&mut meta, "b", 2).contains("\"queueId\":0"));
            let garbage = request(RequestCode::LockBatchMq, &[], b"{nope");
            let code = responded(lock_batch(&mut meta, &garbage, 3)).code;
            assert_eq!(code, ResponseCode::SystemError.code());
            let hb = request(RequestCode::HeartBeat, &[], b"[1,2]");
            let (conn, _) = connection(2);
            let (outcome, announce) = heartbeat(&mut meta, &conn, &hb, 0);
            assert_eq!(responded(outcome).code, ResponseCode::SystemError.code());
            assert!(announce.is_empty());
        });
    }

    #[test]
    fn check_client_config_refuses_sql92_unless_enabled_and_valid() {
        let check = |config: &BrokerConfig, kind: &str, expression: &str| {
            let body = format!(
                r#"{{"clientId":"c","group":"g","subscriptionData":{{"expressionType":"{kind}","subString":"{expression}","topic":"T","subVersion":1}}}}"#
            );
            responded(check_client_config(
                config,
                &request(RequestCode::CheckClientConfig, &[], body.as_bytes()),
            ))
        };
        let mut config = BrokerConfig::default();
        assert_eq!(
            check(&config, "TAG", "*").code,
            ResponseCode::Success.code()
        );
        let off = check(&config, "SQL92", "a > 1");
        assert_eq!(off.code, ResponseCode::SystemError.code());
        assert_eq!(
            off.remark.as_deref(),
            Some("The broker does not support consumer to filter message by SQL92")
        );
        config.enable_property_filter = true;
        assert_eq!(
            check(&config, "SQL92", "a > 1").code,
            ResponseCode::Success.code()
        );
        let bad = check(&config, "SQL92", "a >");
        assert_eq!(bad.code, ResponseCode::SubscriptionParseFailed.code());
        assert!(bad.remark.unwrap().starts_with("Invalid MessageSelector. "));
        let garbage = responded(check_client_config(
            &config,
            &request(RequestCode::CheckClientConfig, &[], b"{not json"),
        ));
        assert_eq!(garbage.code, ResponseCode::SystemError.code());
    }
}
