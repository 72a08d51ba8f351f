//! GET_MAX_OFFSET (30), GET_MIN_OFFSET (31), SEARCH_OFFSET_BY_TIMESTAMP (29) and
//! GET_EARLIEST_MSG_STORETIME (32), reference §2.5, on the shard that owns the queue.

use std::rc::Rc;

use ringmq_proto::code::ResponseCode;
use ringmq_proto::command::RemotingCommand;
use ringmq_proto::header::{
    BoundaryType, GetEarliestMsgStoretimeRequestHeader, GetMaxOffsetRequestHeader,
    GetMinOffsetRequestHeader, SearchOffsetRequestHeader,
};

use super::{bad_header, respond_error, success, Outcome};
use crate::server::shard::Shard;
use crate::store::Store;

fn store_or_error(shard: &Shard, request: &RemotingCommand) -> Result<Rc<Store>, Outcome> {
    shard.store().ok_or_else(|| {
        respond_error(
            request,
            ResponseCode::ServiceNotAvailable,
            "store is closed".to_string(),
        )
    })
}

fn with_offset(request: &RemotingCommand, name: &str, value: i64) -> Outcome {
    let mut response = success(request);
    response.ext_fields.insert(name, value.to_string());
    Outcome::Respond(response)
}

/// The next offset to be written (0 for a queue that never held a message).
pub fn max_offset(shard: &Rc<Shard>, request: &RemotingCommand) -> Outcome {
    let header = match request.decode_header::<GetMaxOffsetRequestHeader>() {
        Ok(h) => h,
        Err(e) => return bad_header(request, e),
    };
    match store_or_error(shard, request) {
        Ok(store) => with_offset(
            request,
            "offset",
            store.max_offset(&header.topic, header.queue_id) as i64,
        ),
        Err(outcome) => outcome,
    }
}

pub fn min_offset(shard: &Rc<Shard>, request: &RemotingCommand) -> Outcome {
    let header = match request.decode_header::<GetMinOffsetRequestHeader>() {
        Ok(h) => h,
        Err(e) => return bad_header(request, e),
    };
    match store_or_error(shard, request) {
        Ok(store) => with_offset(
            request,
            "offset",
            store.min_offset(&header.topic, header.queue_id) as i64,
        ),
        Err(outcome) => outcome,
    }
}

/// LOWER: the first offset stored at or after the time (the max offset if none);
/// UPPER: the last offset stored at or before it (the min offset if none).
pub async fn search_offset(shard: &Rc<Shard>, request: &RemotingCommand) -> Outcome {
    let header = match request.decode_header::<SearchOffsetRequestHeader>() {
        Ok(h) => h,
        Err(e) => return bad_header(request, e),
    };
    let store = match store_or_error(shard, request) {
        Ok(store) => store,
        Err(outcome) => return outcome,
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
pub async fn earliest_store_time(shard: &Rc<Shard>, request: &RemotingCommand) -> Outcome {
    let header = match request.decode_header::<GetEarliestMsgStoretimeRequestHeader>() {
        Ok(h) => h,
        Err(e) => return bad_header(request, e),
    };
    let store = match store_or_error(shard, request) {
        Ok(store) => store,
        Err(outcome) => return outcome,
    };
    match store
        .earliest_store_time(&header.topic, header.queue_id)
        .await
    {
        Ok(timestamp) => with_offset(request, "timestamp", timestamp.unwrap_or(-1)),
        Err(e) => respond_error(request, ResponseCode::SystemError, e.to_string()),
    }
}
