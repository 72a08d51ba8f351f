//! Messages found by physical offset or by key (reference §2.9):
//! VIEW_MESSAGE_BY_ID (33) on the shard the offset names (its bits 48–55), and QUERY_MESSAGE
//! (12), which asks every shard's index (a topic's queues spread over all shards) and merges.

use bytes::Bytes;
use ringmq_proto::code::ResponseCode;
use ringmq_proto::command::RemotingCommand;
use ringmq_proto::header::{
    QueryMessageRequestHeader, QueryMessageResponseHeader, ViewMessageRequestHeader,
};

use super::{bad_header, respond_error, success, Outcome, ShardMesh};
use crate::store::{QueryResult, Store};

/// Most records one QUERY_MESSAGE returns, whatever `maxNum` asks (RocketMQ's
/// `maxMsgsNumBatch` is 64).
pub const QUERY_MAX_MESSAGES: u32 = 64;

/// The stored record at the global `offset` when it lives on this shard (`shard_id`).
/// `Ok(None)`: the offset names another shard (routing sent the request here only if it names
/// this one, so anything else is not ours) or holds no record. `Err`: the store's failure, as
/// the remark. VIEW_MESSAGE_BY_ID, CONSUMER_SEND_MSG_BACK and CONSUME_MESSAGE_DIRECTLY all
/// read a record this way.
pub async fn own_record(
    store: &Store,
    shard_id: u8,
    offset: i64,
) -> Result<Option<Vec<u8>>, String> {
    if crate::store::offset::shard_of(offset) != Some(shard_id) {
        return Ok(None);
    }
    store
        .view_message(offset as u64)
        .await
        .map_err(|e| e.to_string())
}

/// `shard_id` is the serving shard: an offset that names another one is not found here.
pub async fn view_message(store: &Store, shard_id: u8, request: &RemotingCommand) -> Outcome {
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
    match own_record(store, shard_id, header.offset).await {
        Ok(Some(record)) => Outcome::Respond(success(request).with_body(Bytes::from(record))),
        Ok(None) => not_found(),
        Err(e) => respond_error(request, ResponseCode::SystemError, e),
    }
}

/// One shard's part of a QUERY_MESSAGE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexQuery {
    pub topic: String,
    pub key: String,
    pub unique_key: bool,
    pub max_count: u32,
    pub begin_timestamp: i64,
    pub end_timestamp: i64,
}

/// Runs one shard's part (on that shard).
pub async fn run_index_query(store: &Store, query: &IndexQuery) -> Result<QueryResult, String> {
    store
        .query_messages(
            &query.topic,
            &query.key,
            query.unique_key,
            query.max_count,
            query.begin_timestamp,
            query.end_timestamp,
        )
        .await
        .map_err(|e| e.to_string())
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

pub async fn query_message(mesh: &dyn ShardMesh, request: &RemotingCommand) -> Outcome {
    let header = match request.decode_header::<QueryMessageRequestHeader>() {
        Ok(h) => h,
        Err(e) => return bad_header(request, e),
    };
    let max_count = (header.max_num.max(1) as u32).min(QUERY_MAX_MESSAGES);
    let answers = mesh.query_index_everywhere(IndexQuery {
        topic: header.topic.clone(),
        key: header.key.clone(),
        unique_key: header.unique_key_query,
        max_count,
        begin_timestamp: header.begin_timestamp,
        end_timestamp: header.end_timestamp,
    });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processor::testing::{self, request, responded};
    use ringmq_proto::code::RequestCode;
    use ringmq_proto::message::ids::decode_offset_msg_id;

    #[test]
    fn a_message_is_found_by_its_offset_and_by_its_key() {
        testing::run(|fx| async move {
            fx.create_topic("T", 1);
            let (_, msg_id) = fx.put("T", 0, b"body", "KEYS\u{1}order-1\u{2}").await;
            let offset = decode_offset_msg_id(&msg_id)
                .unwrap()
                .commit_log_offset
                .to_string();
            let view = request(RequestCode::ViewMessageById, &[("offset", &offset)], b"");
            let response = responded(view_message(&fx.store, 0, &view).await);
            assert_eq!(response.code, 0);
            assert!(response.body.windows(4).any(|w| w == b"body"));
            // An offset naming another shard is not this shard's to answer.
            let response = responded(view_message(&fx.store, 1, &view).await);
            assert_eq!(response.code, ResponseCode::SystemError.code());
            let fields = [
                ("topic", "T"),
                ("key", "order-1"),
                ("maxNum", "10"),
                ("beginTimestamp", "0"),
                ("endTimestamp", &i64::MAX.to_string()),
            ];
            let query = request(RequestCode::QueryMessage, &fields, b"");
            let response = responded(query_message(fx.as_ref(), &query).await);
            assert_eq!(response.code, 0, "{:?}", response.remark);
            assert!(response.body.windows(4).any(|w| w == b"body"));
            let mut missing = query.clone();
            missing.ext_fields.insert("key", "nope");
            let response = responded(query_message(fx.as_ref(), &missing).await);
            assert_eq!(response.code, ResponseCode::QueryNotFound.code());
        });
    }

    #[test]
    fn append_records_takes_whole_records_only() {
        let mut records = Vec::new();
        for size in [8u32, 6] {
            records.extend_from_slice(&size.to_be_bytes());
            records.resize(records.len() + size as usize - 4, 0xAB);
        }
        let mut out = Vec::new();
        assert_eq!(append_records(&records, 1, &mut out), 1);
        assert_eq!(out.len(), 8);
        out.clear();
        assert_eq!(
            append_records(&records[..10], 5, &mut out),
            1,
            "a torn tail is left out"
        );
    }
}
