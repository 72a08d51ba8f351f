//! GET_MAX_OFFSET (30), GET_MIN_OFFSET (31), SEARCH_OFFSET_BY_TIMESTAMP (29) and
//! GET_EARLIEST_MSG_STORETIME (32), reference §2.5, on the shard that owns the queue.

use ringmq_proto::code::ResponseCode;
use ringmq_proto::command::RemotingCommand;
use ringmq_proto::header::{
    BoundaryType, GetEarliestMsgStoretimeRequestHeader, GetMaxOffsetRequestHeader,
    GetMinOffsetRequestHeader, SearchOffsetRequestHeader,
};

use super::{bad_header, respond_error, success, Outcome};
use crate::store::Store;

fn with_offset(request: &RemotingCommand, name: &str, value: i64) -> Outcome {
    let mut response = success(request);
    response.ext_fields.insert(name, value.to_string());
    Outcome::Respond(response)
}

/// The next offset to be written (0 for a queue that never held a message).
pub fn max_offset(store: &Store, request: &RemotingCommand) -> Outcome {
    let header = match request.decode_header::<GetMaxOffsetRequestHeader>() {
        Ok(h) => h,
        Err(e) => return bad_header(request, e),
    };
    let offset = store.max_offset(&header.topic, header.queue_id);
    with_offset(request, "offset", offset as i64)
}

pub fn min_offset(store: &Store, request: &RemotingCommand) -> Outcome {
    let header = match request.decode_header::<GetMinOffsetRequestHeader>() {
        Ok(h) => h,
        Err(e) => return bad_header(request, e),
    };
    let offset = store.min_offset(&header.topic, header.queue_id);
    with_offset(request, "offset", offset as i64)
}

/// LOWER: the first offset stored at or after the time (the max offset if none);
/// UPPER: the last offset stored at or before it (the min offset if none).
pub async fn search_offset(store: &Store, request: &RemotingCommand) -> Outcome {
    let header = match request.decode_header::<SearchOffsetRequestHeader>() {
        Ok(h) => h,
        Err(e) => return bad_header(request, e),
    };
    let (topic, queue) = (header.topic.as_str(), header.queue_id);
    let result = match header.boundary_type {
        BoundaryType::Lower => {
            store
                .search_offset_by_time(topic, queue, header.timestamp)
                .await
        }
        BoundaryType::Upper => store
            .search_offset_by_time(topic, queue, header.timestamp.saturating_add(1))
            .await
            .map(|after| after.saturating_sub(1).max(store.min_offset(topic, queue))),
    };
    match result {
        Ok(offset) => with_offset(request, "offset", offset as i64),
        Err(e) => respond_error(request, ResponseCode::SystemError, e.to_string()),
    }
}

/// Store time of the queue's first readable message; -1 when it has none (as Java's store
/// reports a failed lookup).
pub async fn earliest_store_time(store: &Store, request: &RemotingCommand) -> Outcome {
    let header = match request.decode_header::<GetEarliestMsgStoretimeRequestHeader>() {
        Ok(h) => h,
        Err(e) => return bad_header(request, e),
    };
    match store
        .earliest_store_time(&header.topic, header.queue_id)
        .await
    {
        Ok(timestamp) => with_offset(request, "timestamp", timestamp.unwrap_or(-1)),
        Err(e) => respond_error(request, ResponseCode::SystemError, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processor::testing::{self, request, responded};
    use ringmq_proto::code::RequestCode;

    #[test]
    fn offsets_and_times_of_a_queue() {
        testing::run(|fx| async move {
            fx.create_topic("T", 1);
            for _ in 0..3 {
                fx.put("T", 0, b"x", "").await;
            }
            let queue = [("topic", "T"), ("queueId", "0")];
            let max = request(RequestCode::GetMaxOffset, &queue, b"");
            assert_eq!(
                responded(max_offset(&fx.store, &max))
                    .ext_fields
                    .get("offset"),
                Some("3")
            );
            let min = request(RequestCode::GetMinOffset, &queue, b"");
            assert_eq!(
                responded(min_offset(&fx.store, &min))
                    .ext_fields
                    .get("offset"),
                Some("0")
            );
            let earliest = request(RequestCode::GetEarliestMsgStoretime, &queue, b"");
            let response = responded(earliest_store_time(&fx.store, &earliest).await);
            let stored_at: i64 = response
                .ext_fields
                .get("timestamp")
                .unwrap()
                .parse()
                .unwrap();
            assert!(stored_at > 0);
            let fields = [("topic", "T"), ("queueId", "0"), ("timestamp", "0")];
            let search = request(RequestCode::SearchOffsetByTimestamp, &fields, b"");
            let response = responded(search_offset(&fx.store, &search).await);
            assert_eq!(response.ext_fields.get("offset"), Some("0"));
            let bad = request(RequestCode::GetMaxOffset, &[("topic", "T")], b"");
            assert_eq!(
                responded(max_offset(&fx.store, &bad)).code,
                ResponseCode::SystemError.code()
            );
        });
    }
}
