//! Requests the broker forwards to clients and answers with what they say (Java's
//! `AdminBrokerProcessor.callConsumer` over `Broker2Client.callClient`, and
//! `Broker2Client.getConsumeStatus`):
//!
//! * GET_CONSUMER_RUNNING_INFO (307), on the metadata shard, where client registrations live;
//! * CONSUME_MESSAGE_DIRECTLY (309), on the shard whose log holds the message (it becomes the
//!   call's body); the consumer's connection comes from the metadata shard over the mesh;
//! * INVOKE_BROKER_TO_GET_CONSUMER_STATUS (223), on the metadata shard: GET_CONSUMER_STATUS_FROM_
//!   CLIENT (221) to every consumer of the group (or the one named), answers gathered by client.
//!
//! The handler only decides whom to ask ([`Outcome::CallClient`], [`Outcome::CallClients`]); the
//! server sends the calls on the clients' connections, waits for the answers up to the calls'
//! timeout and turns the results into the admin's answer with [`answer_from_client`] or the
//! calls' [`ClientCalls::gather`]. Both halves are pure.

use bytes::Bytes;
use ringmq_proto::body::{AdminBody, GetConsumerStatusBody, QueueOffsets};
use ringmq_proto::code::{RequestCode, ResponseCode};
use ringmq_proto::command::{ExtFields, RemotingCommand};
use ringmq_proto::header::{
    CommandHeader, ConsumeMessageDirectlyResultRequestHeader, GetConsumerRunningInfoRequestHeader,
    GetConsumerStatusRequestHeader,
};
use ringmq_proto::message::ids::decode_offset_msg_id;

use super::{bad_header, respond_error, success, Outcome, ShardMesh};
use crate::channel::{CallError, ConnHandle};
use crate::metadata::Metadata;
use crate::store::Store;

/// How long the broker waits for a client's answer (Java's `callClient`: 10 s).
pub const CALL_CLIENT_TIMEOUT_MS: u64 = 10_000;

/// How long the broker waits for each consumer's GET_CONSUMER_STATUS_FROM_CLIENT answer
/// (Java's `getConsumeStatus`: 5 s).
pub const CONSUMER_STATUS_TIMEOUT_MS: u64 = 5_000;

/// A request to send to one client, and whom it is for (named in the error remarks).
#[derive(Debug, Clone)]
pub struct ClientCall {
    pub conn: ConnHandle,
    pub request: RemotingCommand,
    pub group: String,
    pub client_id: String,
    pub timeout_ms: u64,
}

/// Calls to several clients, sent at once, and how their results become the admin's answer.
#[derive(Debug)]
pub struct ClientCalls {
    pub calls: Vec<ClientCall>,
    /// The admin's answer from the admin request and each call's result, in `calls` order.
    pub gather: fn(&RemotingCommand, &[ClientCall], Vec<CallResult>) -> RemotingCommand,
}

/// What one client call came to.
pub type CallResult = Result<RemotingCommand, CallError>;

/// GET_CONSUMER_RUNNING_INFO (307): forwarded, ext fields and body unchanged, to the live
/// consumer `clientId` of `consumerGroup`.
pub fn consumer_running_info(meta: &Metadata, request: &RemotingCommand) -> Outcome {
    let header = match request.decode_header::<GetConsumerRunningInfoRequestHeader>() {
        Ok(h) => h,
        Err(e) => return bad_header(request, e),
    };
    let (group, client_id) = (header.consumer_group, header.client_id);
    let channel = meta
        .clients
        .consumer_group(&group)
        .and_then(|g| g.clients.values().find(|c| c.client_id == client_id));
    let Some(channel) = channel else {
        let remark = format!("The Consumer <{group}> <{client_id}> not online");
        return respond_error(request, ResponseCode::SystemError, remark);
    };
    let forwarded = RemotingCommand::new_request(
        RequestCode::GetConsumerRunningInfo.code(),
        request.ext_fields.clone(),
        request.body.clone(),
    );
    Outcome::CallClient(Box::new(ClientCall {
        conn: channel.channel.clone(),
        request: forwarded,
        group,
        client_id,
        timeout_ms: CALL_CLIENT_TIMEOUT_MS,
    }))
}

/// CONSUME_MESSAGE_DIRECTLY (309), on the shard the offset inside `msgId` names: the stored
/// record becomes the body, `brokerName` is added to the ext fields, and the request goes to
/// the live consumer `clientId` of `consumerGroup`. As in Java, the message is looked up before
/// the consumer.
pub async fn consume_message_directly(
    store: &Store,
    shard_id: u8,
    mesh: &dyn ShardMesh,
    broker_name: &str,
    request: &RemotingCommand,
) -> Outcome {
    let header = match request.decode_header::<ConsumeMessageDirectlyResultRequestHeader>() {
        Ok(h) => h,
        Err(e) => return bad_header(request, e),
    };
    let msg_id = header.msg_id.as_deref().unwrap_or_default().trim();
    let not_found = || {
        let remark = format!("can not find message by the msgId, {msg_id}");
        respond_error(request, ResponseCode::SystemError, remark)
    };
    let Ok(id) = decode_offset_msg_id(msg_id) else {
        return not_found();
    };
    let record = match super::lookup::own_record(store, shard_id, id.commit_log_offset).await {
        Ok(Some(record)) => record,
        Ok(None) => return not_found(),
        Err(e) => return respond_error(request, ResponseCode::SystemError, e),
    };
    let group = header.consumer_group;
    let client_id = header.client_id.unwrap_or_default();
    let members = mesh.consumer_channels(&group).recv_async().await;
    let member = members
        .unwrap_or_default()
        .into_iter()
        .find(|m| m.client_id == client_id);
    let Some(member) = member else {
        let remark = format!("The Consumer <{group}> <{client_id}> not online");
        return respond_error(request, ResponseCode::SystemError, remark);
    };
    let mut ext_fields = request.ext_fields.clone();
    ext_fields.insert("brokerName", broker_name);
    let code = RequestCode::ConsumeMessageDirectly.code();
    let forwarded = RemotingCommand::new_request(code, ext_fields, Bytes::from(record));
    Outcome::CallClient(Box::new(ClientCall {
        conn: member.conn,
        request: forwarded,
        group,
        client_id,
        timeout_ms: CALL_CLIENT_TIMEOUT_MS,
    }))
}

/// INVOKE_BROKER_TO_GET_CONSUMER_STATUS (223): GET_CONSUMER_STATUS_FROM_CLIENT (221, `topic` and
/// `group`) to each live consumer of the group, or only to the one whose client id is
/// `clientAddr` (Java compares it with the client id); no consumer at all is Java's
/// SYSTEM_ERROR. The answers are gathered by [`gather_consumer_status`].
pub fn consumer_status(meta: &Metadata, request: &RemotingCommand) -> Outcome {
    let header = match request.decode_header::<GetConsumerStatusRequestHeader>() {
        Ok(h) => h,
        Err(e) => return bad_header(request, e),
    };
    let group = header.group.clone();
    let members: Vec<(String, ConnHandle)> = meta
        .clients
        .consumer_members(&group)
        .into_iter()
        .filter(|(_, conn)| conn.is_open())
        .collect();
    if members.is_empty() {
        let remark = format!("No Any Consumer online in the consumer group: [{group}]");
        return respond_error(request, ResponseCode::SystemError, remark);
    }
    let origin = header.client_addr.as_deref().map(str::trim);
    let origin = origin.filter(|id| !id.is_empty());
    let ask = GetConsumerStatusRequestHeader {
        topic: header.topic,
        group: header.group,
        client_addr: None,
    };
    let mut ext_fields = ExtFields::new();
    ask.write_to(&mut ext_fields);
    let code = RequestCode::GetConsumerStatusFromClient.code();
    let call = |(client_id, conn): (String, ConnHandle)| ClientCall {
        conn,
        request: RemotingCommand::new_request(code, ext_fields.clone(), Bytes::new()),
        group: group.clone(),
        client_id,
        timeout_ms: CONSUMER_STATUS_TIMEOUT_MS,
    };
    let calls: Vec<ClientCall> = match origin {
        // Java stops at the first connection of that client.
        Some(origin) => members
            .into_iter()
            .find(|(id, _)| id == origin)
            .map(call)
            .into_iter()
            .collect(),
        None => members.into_iter().map(call).collect(),
    };
    Outcome::CallClients(Box::new(ClientCalls {
        calls,
        gather: gather_consumer_status,
    }))
}

/// The 223 answer: SUCCESS with a `GetConsumerStatusBody` whose `consumerTable` holds each
/// client that answered SUCCESS with a body; clients that failed, timed out or answered
/// otherwise are left out (Java logs them).
pub fn gather_consumer_status(
    request: &RemotingCommand,
    calls: &[ClientCall],
    results: Vec<CallResult>,
) -> RemotingCommand {
    let mut gathered = GetConsumerStatusBody::default();
    for (call, result) in calls.iter().zip(results) {
        let client_id = &call.client_id;
        let answer = match result {
            Ok(answer) if answer.code == ResponseCode::Success.code() => answer,
            Ok(answer) => {
                tracing::warn!(client_id, code = answer.code, "consumer status refused");
                continue;
            }
            Err(e) => {
                tracing::warn!(client_id, error = %e, "consumer status not answered");
                continue;
            }
        };
        if answer.body.is_empty() {
            continue;
        }
        match GetConsumerStatusBody::from_fastjson(&answer.body) {
            Ok(status) => {
                let offsets = QueueOffsets(status.message_queue_table);
                gathered.consumer_table.insert(client_id.clone(), offsets);
            }
            Err(e) => tracing::warn!(client_id, error = %e, "bad consumer status body"),
        }
    }
    success(request).with_body(Bytes::from(gathered.to_fastjson()))
}

/// The admin's answer: the client's response (code, remark, ext fields, body) under the
/// admin request's opaque and serialization; or Java's CONSUME_MSG_TIMEOUT / SYSTEM_ERROR
/// remarks when the client did not answer.
pub fn answer_from_client(
    request: &RemotingCommand,
    call: &ClientCall,
    result: Result<RemotingCommand, CallError>,
) -> RemotingCommand {
    let (group, client_id) = (&call.group, &call.client_id);
    match result {
        Ok(answer) => {
            let mut response = RemotingCommand::response_to(request, answer.code, answer.remark);
            response.ext_fields = answer.ext_fields;
            response.body = answer.body;
            response
        }
        Err(CallError::Timeout(ms)) => {
            let peer = call.conn.peer;
            let remark = format!(
                "consumer <{group}> <{client_id}> Timeout: wait response on the channel \
                 <{peer}> timeout, {ms}(ms)"
            );
            let code = ResponseCode::ConsumeMsgTimeout.code();
            RemotingCommand::response_to(request, code, Some(remark))
        }
        Err(e) => {
            let remark = format!("invoke consumer <{group}> <{client_id}> Exception: {e}");
            let code = ResponseCode::SystemError.code();
            RemotingCommand::response_to(request, code, Some(remark))
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::processor::client::heartbeat;
    use crate::processor::testing::{self, connection, request, responded};

    const HEARTBEAT: &str = r#"{"clientID":"10.0.0.1@1","consumerDataSet":[{"consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","consumeType":"CONSUME_PASSIVELY","groupName":"g","messageModel":"CLUSTERING","subscriptionDataSet":[{"subString":"*","subVersion":1,"topic":"T"}]}],"producerDataSet":[]}"#;

    fn running_info_request(client_id: &str) -> RemotingCommand {
        let fields = [("consumerGroup", "g"), ("clientId", client_id)];
        let mut admin = request(RequestCode::GetConsumerRunningInfo, &fields, b"");
        admin.opaque = 77;
        admin
    }

    #[test]
    fn the_request_goes_to_the_named_consumer_and_its_answer_comes_back() {
        testing::run(|fx| async move {
            let (conn, outbound) = connection(1);
            let admin = running_info_request("10.0.0.1@1");
            let outcome = {
                let mut meta = fx.metadata.borrow_mut();
                let hb = request(RequestCode::HeartBeat, &[], HEARTBEAT.as_bytes());
                let _ = heartbeat(&mut meta, &conn, &hb, 1_000);
                consumer_running_info(&meta, &admin)
            };
            let Outcome::CallClient(call) = outcome else {
                panic!("a live consumer is called");
            };
            assert_eq!(call.conn.id, conn.id);
            assert_eq!(
                call.request.code,
                RequestCode::GetConsumerRunningInfo.code()
            );
            assert_eq!(call.request.ext_fields.get("clientId"), Some("10.0.0.1@1"));
            assert_eq!(call.timeout_ms, CALL_CLIENT_TIMEOUT_MS);
            // The call travels on the consumer's connection and its answer is routed back.
            let pending = call.conn.call(call.request.clone()).unwrap();
            let sent = outbound.commands.try_recv().unwrap();
            let mut answer = RemotingCommand::response_to(&sent, 0, None);
            answer.body = Bytes::from_static(b"{\"properties\":{}}");
            assert!(conn.complete_call(answer));
            let answered = pending.answer().await;
            let response = answer_from_client(&admin, &call, answered);
            assert_eq!((response.code, response.opaque), (0, 77));
            assert!(response.is_response());
            assert_eq!(&response.body[..], b"{\"properties\":{}}");
        });
    }

    fn heartbeat_as(meta: &mut Metadata, conn: &ConnHandle, client_id: &str) {
        let body = HEARTBEAT.replace("10.0.0.1@1", client_id);
        let hb = request(RequestCode::HeartBeat, &[], body.as_bytes());
        let _ = heartbeat(meta, conn, &hb, 1_000);
    }

    fn direct_request(msg_id: &str, client_id: &str) -> RemotingCommand {
        let fields = [
            ("consumerGroup", "g"),
            ("clientId", client_id),
            ("msgId", msg_id),
            ("topic", "T"),
        ];
        request(RequestCode::ConsumeMessageDirectly, &fields, b"")
    }

    #[test]
    fn a_message_is_handed_to_the_named_consumer_with_its_record_and_broker_name() {
        testing::run(|fx| async move {
            fx.create_topic("T", 1);
            let (_, msg_id) = fx.put("T", 0, b"payload", "").await;
            let (conn, _outbound) = connection(1);
            heartbeat_as(&mut fx.metadata.borrow_mut(), &conn, "10.0.0.1@1");
            let admin = direct_request(&msg_id, "10.0.0.1@1");
            let outcome = consume_message_directly(&fx.store, 0, &*fx, "broker-a", &admin).await;
            let Outcome::CallClient(call) = outcome else {
                panic!("a live consumer is called");
            };
            assert_eq!(call.conn.id, conn.id);
            assert_eq!(call.timeout_ms, CALL_CLIENT_TIMEOUT_MS);
            let forwarded = &call.request;
            assert_eq!(forwarded.code, RequestCode::ConsumeMessageDirectly.code());
            assert_eq!(forwarded.ext_fields.get("brokerName"), Some("broker-a"));
            assert_eq!(forwarded.ext_fields.get("msgId"), Some(msg_id.as_str()));
            let id = decode_offset_msg_id(&msg_id).unwrap();
            let stored = fx.store.view_message(id.commit_log_offset as u64).await;
            assert_eq!(&forwarded.body[..], &stored.unwrap().unwrap()[..]);
        });
    }

    #[test]
    fn an_unknown_message_is_refused_before_the_consumer_is_looked_for() {
        testing::run(|fx| async move {
            fx.create_topic("T", 1);
            let (_, msg_id) = fx.put("T", 0, b"payload", "").await;
            let (conn, _outbound) = connection(1);
            heartbeat_as(&mut fx.metadata.borrow_mut(), &conn, "10.0.0.1@1");
            let offline = direct_request(&msg_id, "someone-else");
            let outcome = consume_message_directly(&fx.store, 0, &*fx, "b", &offline).await;
            let offline = responded(outcome);
            assert_eq!(offline.code, ResponseCode::SystemError.code());
            assert_eq!(
                offline.remark.as_deref(),
                Some("The Consumer <g> <someone-else> not online")
            );
            let id = decode_offset_msg_id(&msg_id).unwrap();
            let host = id.store_host;
            let past_end = ringmq_proto::message::ids::encode_offset_msg_id(host, 1 << 20);
            for bad in [past_end.as_str(), "not-an-id"] {
                let unknown = direct_request(bad, "10.0.0.1@1");
                let outcome = consume_message_directly(&fx.store, 0, &*fx, "b", &unknown).await;
                let response = responded(outcome);
                assert_eq!(response.code, ResponseCode::SystemError.code());
                let remark = response.remark.unwrap();
                assert_eq!(remark, format!("can not find message by the msgId, {bad}"));
            }
        });
    }

    fn status_request(client_addr: Option<&str>) -> RemotingCommand {
        let mut fields = vec![("topic", "T"), ("group", "g")];
        if let Some(addr) = client_addr {
            fields.push(("clientAddr", addr));
        }
        request(RequestCode::InvokeBrokerToGetConsumerStatus, &fields, b"")
    }

    fn status_answer(call: &ClientCall, offset: i64) -> CallResult {
        let mut table = std::collections::BTreeMap::new();
        let queue = ringmq_proto::body::MessageQueue {
            broker_name: "b".into(),
            queue_id: 0,
            topic: "T".into(),
        };
        table.insert(queue, offset);
        let body = GetConsumerStatusBody {
            message_queue_table: table,
            ..GetConsumerStatusBody::default()
        };
        let mut answer = RemotingCommand::response_to(&call.request, 0, None);
        answer.body = Bytes::from(body.to_fastjson());
        Ok(answer)
    }

    #[test]
    fn consumer_status_asks_every_consumer_and_gathers_those_that_answer() {
        testing::run(|fx| async move {
            let (one, _o1) = connection(1);
            let (two, _o2) = connection(2);
            {
                let mut meta = fx.metadata.borrow_mut();
                heartbeat_as(&mut meta, &one, "c1");
                heartbeat_as(&mut meta, &two, "c2");
            }
            let admin = status_request(None);
            let outcome = consumer_status(&fx.metadata.borrow(), &admin);
            let Outcome::CallClients(calls) = outcome else {
                panic!("the group's consumers are called");
            };
            let ids: Vec<&str> = calls.calls.iter().map(|c| c.client_id.as_str()).collect();
            assert_eq!(ids, ["c1", "c2"]);
            for call in &calls.calls {
                assert_eq!(call.request.code, 221);
                assert_eq!(call.request.ext_fields.get("topic"), Some("T"));
                assert_eq!(call.request.ext_fields.get("group"), Some("g"));
                assert_eq!(call.request.ext_fields.get("clientAddr"), None);
                assert_eq!(call.timeout_ms, CONSUMER_STATUS_TIMEOUT_MS);
            }
            let results = vec![
                status_answer(&calls.calls[0], 7),
                Err(CallError::Timeout(CONSUMER_STATUS_TIMEOUT_MS)),
            ];
            let response = (calls.gather)(&admin, &calls.calls, results);
            assert_eq!(response.code, ResponseCode::Success.code());
            let body = GetConsumerStatusBody::from_fastjson(&response.body).unwrap();
            assert_eq!(body.consumer_table.len(), 1);
            assert_eq!(
                body.consumer_table["c1"]
                    .0
                    .values()
                    .copied()
                    .collect::<Vec<_>>(),
                [7]
            );
            // One client named: only that one is asked.
            let named = consumer_status(&fx.metadata.borrow(), &status_request(Some("c2")));
            let Outcome::CallClients(calls) = named else {
                panic!("the named consumer is called");
            };
            assert_eq!(calls.calls.len(), 1);
            assert_eq!(calls.calls[0].client_id, "c2");
        });
    }

    #[test]
    fn consumer_status_of_a_group_without_consumers_is_javas_error() {
        testing::run(|fx| async move {
            let admin = status_request(None);
            let response = responded(consumer_status(&fx.metadata.borrow(), &admin));
            assert_eq!(response.code, ResponseCode::SystemError.code());
            assert_eq!(
                response.remark.as_deref(),
                Some("No Any Consumer online in the consumer group: [g]")
            );
        });
    }

    #[test]
    fn an_unknown_client_a_timeout_and_a_closed_connection_name_the_consumer() {
        testing::run(|fx| async move {
            let (conn, _outbound) = connection(1);
            let mut meta = fx.metadata.borrow_mut();
            let hb = request(RequestCode::HeartBeat, &[], HEARTBEAT.as_bytes());
            let _ = heartbeat(&mut meta, &conn, &hb, 1_000);
            let offline = responded(consumer_running_info(&meta, &running_info_request("x")));
            assert_eq!(offline.code, ResponseCode::SystemError.code());
            assert_eq!(
                offline.remark.as_deref(),
                Some("The Consumer <g> <x> not online")
            );
            let admin = running_info_request("10.0.0.1@1");
            let Outcome::CallClient(call) = consumer_running_info(&meta, &admin) else {
                panic!("a live consumer is called");
            };
            let timeout = answer_from_client(&admin, &call, Err(CallError::Timeout(10_000)));
            assert_eq!(timeout.code, ResponseCode::ConsumeMsgTimeout.code());
            let remark = timeout.remark.unwrap();
            assert!(
                remark.starts_with("consumer <g> <10.0.0.1@1> Timeout: "),
                "{remark}"
            );
            assert!(remark.ends_with("timeout, 10000(ms)"), "{remark}");
            let closed = answer_from_client(&admin, &call, Err(CallError::Closed));
            assert_eq!(closed.code, ResponseCode::SystemError.code());
            assert_eq!(
                closed.remark.as_deref(),
                Some("invoke consumer <g> <10.0.0.1@1> Exception: the client connection closed")
            );
        });
    }
}
