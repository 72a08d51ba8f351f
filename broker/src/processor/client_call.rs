//! Requests the broker forwards to a client and answers with what the client says (Java's
//! `AdminBrokerProcessor.callConsumer` over `Broker2Client.callClient`): GET_CONSUMER_RUNNING_INFO
//! (307). Runs on the metadata shard, where client registrations live.
//!
//! The handler only decides whom to ask ([`Outcome::CallClient`]); the server sends the call on
//! the client's connection, waits for the answer up to [`CALL_CLIENT_TIMEOUT_MS`] and turns the
//! result into the admin's answer with [`answer_from_client`]. Both halves are pure.

use ringmq_proto::code::{RequestCode, ResponseCode};
use ringmq_proto::command::RemotingCommand;
use ringmq_proto::header::GetConsumerRunningInfoRequestHeader;

use super::{bad_header, respond_error, Outcome};
use crate::channel::{CallError, ConnHandle};
use crate::metadata::Metadata;

/// How long the broker waits for a client's answer (Java's `callClient`: 10 s).
pub const CALL_CLIENT_TIMEOUT_MS: u64 = 10_000;

/// A request to send to one client, and whom it is for (named in the error remarks).
#[derive(Debug)]
pub struct ClientCall {
    pub conn: ConnHandle,
    pub request: RemotingCommand,
    pub group: String,
    pub client_id: String,
    pub timeout_ms: u64,
}

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
