//! QUERY_CONSUMER_OFFSET and UPDATE_CONSUMER_OFFSET (reference §2.5), served by the shard that
//! owns the queue, from its own offset table.

use std::rc::Rc;

use ringmq_proto::code::ResponseCode;
use ringmq_proto::command::RemotingCommand;
use ringmq_proto::header::field;

use super::{bad_header, respond_error, success, Outcome};
use crate::server::shard::Shard;

struct QueueOfGroup {
    group: String,
    topic: String,
    queue_id: i32,
}

fn queue_of_group(request: &RemotingCommand) -> Result<QueueOfGroup, Outcome> {
    let ext = &request.ext_fields;
    Ok(QueueOfGroup {
        group: field::string(ext, "consumerGroup").map_err(|e| bad_header(request, e))?,
        topic: field::string(ext, "topic").map_err(|e| bad_header(request, e))?,
        queue_id: field::i32(ext, "queueId").map_err(|e| bad_header(request, e))?,
    })
}

/// The committed offset, or QUERY_NOT_FOUND (22) when the group has none for the queue — the
/// answer Java clients read as "no offset yet" (pitfall 18); any other error code would make
/// them skip the queue.
///
/// Decision on Java's "offset 0 while the queue's first message is still in memory" rule: not
/// emulated; a group without a committed offset always gets 22 and the client applies its
/// `consumeFromWhere`.
pub fn query_consumer_offset(shard: &Rc<Shard>, request: &RemotingCommand) -> Outcome {
    let q = match queue_of_group(request) {
        Ok(q) => q,
        Err(outcome) => return outcome,
    };
    match shard.offsets.borrow().query(&q.group, &q.topic, q.queue_id) {
        Some(offset) => {
            let mut response = success(request);
            response.ext_fields.insert("offset", offset.to_string());
            Outcome::Respond(response)
        }
        None => respond_error(
            request,
            ResponseCode::QueryNotFound,
            "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first".to_string(),
        ),
    }
}

pub fn update_consumer_offset(shard: &Rc<Shard>, request: &RemotingCommand) -> Outcome {
    let q = match queue_of_group(request) {
        Ok(q) => q,
        Err(outcome) => return outcome,
    };
    let offset = match field::i64(&request.ext_fields, "commitOffset") {
        Ok(offset) => offset,
        Err(e) => return bad_header(request, e),
    };
    let view = shard.view();
    let Some(topic) = view.topics.get(&q.topic) else {
        return respond_error(
            request,
            ResponseCode::TopicNotExist,
            format!("Topic {} not exist!", q.topic),
        );
    };
    if q.queue_id < 0 || q.queue_id >= topic.read_queue_nums.max(topic.write_queue_nums) {
        return respond_error(
            request,
            ResponseCode::InvalidParameter,
            format!(
                "QueueId {} is out of range of topic {}",
                q.queue_id, q.topic
            ),
        );
    }
    if offset < 0 {
        return respond_error(
            request,
            ResponseCode::InvalidParameter,
            format!("commitOffset {offset} is negative"),
        );
    }
    shard
        .offsets
        .borrow_mut()
        .commit(&q.group, &q.topic, q.queue_id, offset);
    Outcome::Respond(success(request))
}

/// Writes this shard's offsets if they changed (timer and shutdown).
pub fn persist(shard: &Rc<Shard>) {
    if let Err(e) = shard.offsets.borrow_mut().persist_if_dirty() {
        tracing::error!(shard = shard.id.0, "cannot persist consumer offsets: {e}");
    }
}
