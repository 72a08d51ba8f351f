//! Messages found by physical offset or by key (reference §2.9):
//! VIEW_MESSAGE_BY_ID (33) on the shard the offset names (its bits 48–55), and QUERY_MESSAGE
//! (12), which asks every shard's index (a topic's queues spread over all shards) and merges.

use std::rc::Rc;

use bytes::Bytes;
use ringmq_proto::code::ResponseCode;
use ringmq_proto::command::RemotingCommand;
use ringmq_proto::header::{
    QueryMessageRequestHeader, QueryMessageResponseHeader, ViewMessageRequestHeader,
};

use super::{bad_header, respond_error, success, Outcome};
use crate::server::shard::{Shard, ShardMsg};
use crate::shard_map::ShardId;
use crate::store::QueryResult;

/// Most records one QUERY_MESSAGE returns, whatever `maxNum` asks (RocketMQ's
/// `maxMsgsNumBatch` is 64).
pub const QUERY_MAX_MESSAGES: u32 = 64;

pub async fn view_message(shard: &Rc<Shard>, request: &RemotingCommand) -> Outcome {
    let header = match request.decode_header::<ViewMessageRequestHeader>() {
        Ok(h) => h,
        Err(e) => return bad_header(request, e),
    };
    let not_found = || {
        respond_error(
            request,
            ResponseCode::SystemError,
            format!("can not find message by the offset, {}", header.offset),
        )
    };
    // Routing sent it here only if the offset names this shard; anything else is not ours.
    if crate::store::offset::shard_of(header.offset) != Some(shard.id.0 as u8) {
        return not_found();
    }
    let Some(store) = shard.store() else {
        return respond_error(
            request,
            ResponseCode::ServiceNotAvailable,
            "store is closed".to_string(),
        );
    };
    match store.view_message(header.offset as u64).await {
        Ok(Some(record)) => Outcome::Respond(success(request).with_body(Bytes::from(record))),
        Ok(None) => not_found(),
        Err(e) => respond_error(request, ResponseCode::SystemError, e.to_string()),
    }
}

/// One shard's part of a QUERY_MESSAGE.
pub struct IndexQuery {
    pub topic: String,
    pub key: String,
    pub unique_key: bool,
    pub max_count: u32,
    pub begin_timestamp: i64,
    pub end_timestamp: i64,
    pub reply: flume::Sender<Result<QueryResult, String>>,
}

/// Runs one shard's part (on that shard).
pub async fn run_index_query(shard: Rc<Shard>, query: IndexQuery) {
    let result = match shard.store() {
        Some(store) => store
            .query_messages(
                &query.topic,
                &query.key,
                query.unique_key,
                query.max_count,
                query.begin_timestamp,
                query.end_timestamp,
            )
            .await
            .map_err(|e| e.to_string()),
        None => Err("store is closed".to_string()),
    };
    let _ = query.reply.send(result);
}

/// Appends up to `room` whole records from `records` (stored records back to back, each
/// starting with its 4-byte TOTALSIZE) to `out`; returns how many.
fn append_records(records: &[u8], room: u32, out: &mut Vec<u8>) -> u32 {
    let mut rest = records;
    let mut taken = 0;
    while taken < room && rest.len() >= 4 {
        let size = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if size < 4 || size > rest.len() {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size..];
        taken += 1;
    }
    taken
}

pub async fn query_message(shard: &Rc<Shard>, request: &RemotingCommand) -> Outcome {
    let header = match request.decode_header::<QueryMessageRequestHeader>() {
        Ok(h) => h,
        Err(e) => return bad_header(request, e),
    };
    let max_count = (header.max_num.max(1) as u32).min(QUERY_MAX_MESSAGES);
    let (reply, answers) = flume::unbounded();
    for target in 0..shard.shards {
        let query = IndexQuery {
            topic: header.topic.clone(),
            key: header.key.clone(),
            unique_key: header.unique_key_query,
            max_count,
            begin_timestamp: header.begin_timestamp,
            end_timestamp: header.end_timestamp,
            reply: reply.clone(),
        };
        if target == shard.id.0 {
            glommio::spawn_local(run_index_query(shard.clone(), query)).detach();
        } else {
            shard.send_to(ShardId(target), ShardMsg::IndexQuery(query));
        }
    }
    drop(reply);
    let mut body = Vec::new();
    let (mut count, mut last_timestamp, mut last_offset) = (0u32, 0i64, 0i64);
    // Every shard answers (or its reply sender is dropped when it stops): bounded.
    while let Ok(part) = answers.recv_async().await {
        match part {
            Ok(part) => {
                last_timestamp = last_timestamp.max(part.index_last_update_timestamp);
                last_offset = last_offset.max(part.index_last_update_offset as i64);
                count += append_records(&part.body, max_count - count, &mut body);
            }
            Err(e) => tracing::warn!("QUERY_MESSAGE on one shard failed: {e}"),
        }
    }
    if count == 0 {
        return respond_error(
            request,
            ResponseCode::QueryNotFound,
            "can not find message, maybe time range not correct".to_string(),
        );
    }
    let mut response = success(request).with_body(Bytes::from(body));
    response.set_header(&QueryMessageResponseHeader {
        index_last_update_timestamp: last_timestamp,
        index_last_update_phyoffset: last_offset,
    });
    Outcome::Respond(response)
}
