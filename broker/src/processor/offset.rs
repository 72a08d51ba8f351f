//! QUERY_CONSUMER_OFFSET and UPDATE_CONSUMER_OFFSET (reference §2.5), served by the shard that
//! owns the queue, from its own offset table.

use std::cell::RefCell;

use ringmq_proto::code::ResponseCode;
use ringmq_proto::command::RemotingCommand;
use ringmq_proto::header::field;

use ringmq_proto::message::record::DecodedRecord;

use super::{bad_header, respond_error, success, Outcome};
use crate::metadata::offsets::ConsumerOffsets;
use crate::metadata::BrokerView;
use crate::store::{GetRequest, Store};

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

/// The committed offset; without one, Java's rule (pitfall 18, followed on purpose, issue 12):
///
/// * `setZeroIfNotFound=false` → QUERY_NOT_FOUND (22);
/// * else, if the queue still starts at offset 0 and is empty or its first message is within
///   `in_memory_max_bytes` of the end of the shard's commit log (Java's
///   `!checkInDiskByConsumeOffset(topic, queue, 0)`; the bound is `accessMessageInMemoryMaxRatio`
///   percent of physical memory, [`BrokerConfig::in_memory_max_bytes`]) → SUCCESS with offset 0,
///   so a brand-new group reads a small backlog from its beginning, also after a restart;
/// * else QUERY_NOT_FOUND (22), and the client applies its `consumeFromWhere`.
///
/// 22 is the answer Java clients read as "no offset yet"; any other error code would make them
/// skip the queue.
///
/// [`BrokerConfig::in_memory_max_bytes`]: crate::config::BrokerConfig::in_memory_max_bytes
pub async fn query_consumer_offset(
    store: &Store,
    offsets: &RefCell<ConsumerOffsets>,
    in_memory_max_bytes: u64,
    request: &RemotingCommand,
) -> Outcome {
    let q = match queue_of_group(request) {
        Ok(q) => q,
        Err(outcome) => return outcome,
    };
    let committed = offsets.borrow().query(&q.group, &q.topic, q.queue_id);
    let offset = match committed {
        Some(offset) => Some(offset),
        None if field::opt_bool(&request.ext_fields, "setZeroIfNotFound") == Some(false) => None,
        None => head_is_in_memory(store, in_memory_max_bytes, &q)
            .await
            .then_some(0),
    };
    match offset {
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

/// Whether the queue starts at 0 and is empty or has its first message within
/// `in_memory_max_bytes` of the end of the shard's commit log.
async fn head_is_in_memory(store: &Store, in_memory_max_bytes: u64, q: &QueueOfGroup) -> bool {
    if store.min_offset(&q.topic, q.queue_id) > 0 {
        return false;
    }
    // Java: no consume-queue entry at 0 means "not on disk", so an empty queue starts at 0.
    if store.max_offset(&q.topic, q.queue_id) == 0 {
        return true;
    }
    let first = GetRequest {
        topic: &q.topic,
        queue_id: q.queue_id,
        offset: 0,
        max_count: 1,
        max_bytes: 1,
        tag_hashes: None,
    };
    let Ok(result) = store.get_messages(&first).await else {
        return false;
    };
    let Ok(record) = DecodedRecord::decode(&result.body) else {
        return false;
    };
    // Both offsets are global (shard bits included) and of the same shard's log.
    let distance = store
        .log_offsets()
        .end
        .saturating_sub(record.record.physical_offset as u64);
    distance <= in_memory_max_bytes
}

/// Total physical memory (Java's `StoreUtil.TOTAL_PHYSICAL_MEMORY_SIZE`), asked of the system
/// once per process; 0 if it does not say, which makes every stored message count as on disk.
pub fn physical_memory_bytes() -> u64 {
    static TOTAL: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TOTAL.get_or_init(|| {
        // SAFETY: sysconf has no preconditions; it returns -1 for a name it does not know.
        let (pages, page_bytes) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        let pages = u64::try_from(pages).unwrap_or(0);
        pages.saturating_mul(u64::try_from(page_bytes).unwrap_or(0))
    })
}

pub fn update_consumer_offset(
    view: &BrokerView,
    offsets: &RefCell<ConsumerOffsets>,
    request: &RemotingCommand,
) -> Outcome {
    let q = match queue_of_group(request) {
        Ok(q) => q,
        Err(outcome) => return outcome,
    };
    let offset = match field::i64(&request.ext_fields, "commitOffset") {
        Ok(offset) => offset,
        Err(e) => return bad_header(request, e),
    };
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
    offsets
        .borrow_mut()
        .commit(&q.group, &q.topic, q.queue_id, offset);
    Outcome::Respond(success(request))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processor::testing::{self, request, responded};
    use ringmq_proto::code::RequestCode;

    fn query(set_zero: &str) -> RemotingCommand {
        let fields = [
            ("consumerGroup", "g"),
            ("topic", "T"),
            ("queueId", "0"),
            ("setZeroIfNotFound", set_zero),
        ];
        request(RequestCode::QueryConsumerOffset, &fields, b"")
    }

    #[test]
    fn a_committed_offset_is_answered_and_a_missing_one_follows_javas_rule() {
        testing::run(|fx| async move {
            fx.create_topic("T", 1);
            let (zero, no_zero) = (query("true"), query("false"));
            let q = |r| query_consumer_offset(&fx.store, &fx.offsets, u64::MAX, r);
            // An empty queue is not "on disk": a new group reads it from 0.
            let response = responded(q(&zero).await);
            assert_eq!(response.ext_fields.get("offset"), Some("0"));
            let response = responded(q(&no_zero).await);
            assert_eq!(response.code, ResponseCode::QueryNotFound.code());
            let update = request(
                RequestCode::UpdateConsumerOffset,
                &[
                    ("consumerGroup", "g"),
                    ("topic", "T"),
                    ("queueId", "0"),
                    ("commitOffset", "7"),
                ],
                b"",
            );
            let view = fx.view();
            let response = responded(update_consumer_offset(&view, &fx.offsets, &update));
            assert_eq!(response.code, ResponseCode::Success.code());
            let response = responded(q(&no_zero).await);
            assert_eq!(response.ext_fields.get("offset"), Some("7"));
        });
    }

    #[test]
    fn a_new_group_starts_at_0_while_the_head_is_within_the_in_memory_share() {
        testing::run(|fx| async move {
            fx.create_topic("T", 1);
            for i in 0..4 {
                fx.put("T", 0, format!("message {i}").as_bytes(), "").await;
            }
            // The distance from the first message to the end of the log.
            let end = fx.store.log_offsets().end;
            let first = GetRequest {
                topic: "T",
                queue_id: 0,
                offset: 0,
                max_count: 1,
                max_bytes: 1,
                tag_hashes: None,
            };
            let body = fx.store.get_messages(&first).await.unwrap().body;
            let head = DecodedRecord::decode(&body).unwrap().record.physical_offset as u64;
            let distance = end - head;
            let zero = query("true");
            let code_and_offset = |outcome| {
                let response = responded(outcome);
                let offset = response.ext_fields.get("offset").map(str::to_owned);
                (response.code, offset)
            };
            let at = |bound| query_consumer_offset(&fx.store, &fx.offsets, bound, &zero);
            // Java: in memory while (max - offsetPy) <= memory; on disk past it.
            assert_eq!(code_and_offset(at(distance).await), (0, Some("0".into())));
            let not_found = ResponseCode::QueryNotFound.code();
            assert_eq!(code_and_offset(at(distance - 1).await), (not_found, None));
            assert_eq!(code_and_offset(at(0).await), (not_found, None));
            // The bound the broker passes: 40 % of this machine's memory covers a few records.
            let bound = fx.config.in_memory_max_bytes(physical_memory_bytes());
            assert!(physical_memory_bytes() > 0);
            assert_eq!(code_and_offset(at(bound).await), (0, Some("0".into())));
        });
    }

    #[test]
    fn updates_to_unknown_topics_bad_queues_and_negative_offsets_are_refused() {
        testing::run(|fx| async move {
            fx.create_topic("T", 1);
            let view = fx.view();
            let update = |topic: &str, queue: &str, offset: &str| {
                let fields = [
                    ("consumerGroup", "g"),
                    ("topic", topic),
                    ("queueId", queue),
                    ("commitOffset", offset),
                ];
                let r = request(RequestCode::UpdateConsumerOffset, &fields, b"");
                responded(update_consumer_offset(&view, &fx.offsets, &r)).code
            };
            assert_eq!(update("Nope", "0", "1"), ResponseCode::TopicNotExist.code());
            assert_eq!(update("T", "4", "1"), ResponseCode::InvalidParameter.code());
            assert_eq!(
                update("T", "0", "-1"),
                ResponseCode::InvalidParameter.code()
            );
            assert_eq!(update("T", "x", "1"), ResponseCode::SystemError.code());
            assert_eq!(fx.offsets.borrow().query("g", "T", 0), None);
        });
    }
}
