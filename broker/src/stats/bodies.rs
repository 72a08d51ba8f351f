//! The admin bodies one shard contributes (its own queues, its own consumer offsets), and how
//! the parts from every shard are merged. Handlers call these with only what they use: the
//! shard's [`Store`], its [`ConsumerOffsets`], the queue ids it owns.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use ringmq_proto::body::{
    ConsumeStats, ConsumerOffsetSerializeWrapper, MessageQueue, OffsetWrapper, ResetOffsetBody,
    TopicOffset, TopicStatsTable,
};
use ringmq_proto::message::DecodedRecord;

use crate::metadata::offsets::ConsumerOffsets;
use crate::store::{GetRequest, Store, StoreError};

/// Bytes read to find one record's store time (a record's head is well under this).
const PEEK_BYTES: u32 = 64 * 1024;

fn queue(broker_name: &str, topic: &str, queue_id: i32) -> MessageQueue {
    MessageQueue {
        broker_name: broker_name.to_string(),
        queue_id,
        topic: topic.to_string(),
    }
}

/// Store time of the message at `offset` of a queue; 0 if there is none.
pub async fn store_time_at(
    store: &Store,
    topic: &str,
    queue_id: i32,
    offset: u64,
) -> Result<i64, StoreError> {
    let request = GetRequest {
        topic,
        queue_id,
        offset,
        max_count: 1,
        max_bytes: PEEK_BYTES,
        tag_hashes: None,
    };
    let result = store.get_messages(&request).await?;
    Ok(DecodedRecord::decode(&result.body)
        .map(|decoded| decoded.record.store_timestamp)
        .unwrap_or(0))
}

/// GET_TOPIC_STATS_INFO's rows for the queues of `topic` this shard owns.
pub async fn topic_stats(
    store: &Store,
    broker_name: &str,
    topic: &str,
    queue_ids: &[i32],
) -> Result<TopicStatsTable, StoreError> {
    let mut table = TopicStatsTable::default();
    for &queue_id in queue_ids {
        let (min, max) = (
            store.min_offset(topic, queue_id),
            store.max_offset(topic, queue_id),
        );
        let last_update_timestamp = if max > min {
            store_time_at(store, topic, queue_id, max - 1).await?
        } else {
            0
        };
        table.offset_table.insert(
            queue(broker_name, topic, queue_id),
            TopicOffset {
                last_update_timestamp,
                max_offset: max as i64,
                min_offset: min as i64,
            },
        );
    }
    Ok(table)
}

/// GET_CONSUME_STATS's rows for `group` on the queues of `topic` this shard owns. A queue
/// without a committed offset counts as consumed up to 0 (Java's `getOffset` < 0 → 0).
pub async fn consume_stats(
    store: &Store,
    offsets: &RefCell<ConsumerOffsets>,
    broker_name: &str,
    group: &str,
    topic: &str,
    queue_ids: &[i32],
) -> Result<ConsumeStats, StoreError> {
    let mut stats = ConsumeStats::default();
    for &queue_id in queue_ids {
        let broker_offset = store.max_offset(topic, queue_id) as i64;
        // Borrowed only for the lookup: other tasks of the shard commit offsets meanwhile.
        let committed = offsets.borrow().query(group, topic, queue_id);
        let consumer_offset = committed.unwrap_or(0).max(0);
        let last_timestamp = if consumer_offset > 0 {
            store_time_at(store, topic, queue_id, consumer_offset as u64 - 1).await?
        } else {
            0
        };
        stats.offset_table.insert(
            queue(broker_name, topic, queue_id),
            OffsetWrapper {
                broker_offset,
                consumer_offset,
                last_timestamp,
                pull_offset: consumer_offset,
            },
        );
    }
    Ok(stats)
}

/// Java's reset timestamp that means "the end of the queue".
pub const RESET_TO_END: i64 = -1;

/// Where INVOKE_BROKER_TO_RESET_OFFSET moves a group: to the first message stored at or after
/// `timestamp_ms` ([`RESET_TO_END`]: the queue's end); without `force` an offset only moves
/// back (Java's `Broker2Client.resetOffset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetTarget {
    pub timestamp_ms: i64,
    pub force: bool,
}

/// Moves `group`'s offsets of the given queues of `topic` to `to` and returns the new offsets
/// (every queue, whether or not the group had an offset there).
pub async fn reset_offsets(
    store: &Store,
    offsets: &RefCell<ConsumerOffsets>,
    broker_name: &str,
    (topic, group): (&str, &str),
    queue_ids: &[i32],
    to: ResetTarget,
) -> Result<ResetOffsetBody, StoreError> {
    let mut body = ResetOffsetBody::default();
    for &queue_id in queue_ids {
        let target = if to.timestamp_ms == RESET_TO_END {
            store.max_offset(topic, queue_id)
        } else {
            store
                .search_offset_by_time(topic, queue_id, to.timestamp_ms)
                .await?
        } as i64;
        // Read after the store's await: no borrow of the offsets is held across it.
        let committed = offsets.borrow().query(group, topic, queue_id);
        let offset = match committed {
            Some(current) if !to.force && target >= current => current,
            _ => target,
        };
        offsets.borrow_mut().commit(group, topic, queue_id, offset);
        body.offset_table
            .insert(queue(broker_name, topic, queue_id), offset);
    }
    Ok(body)
}

/// Every committed offset of this shard, as GET_ALL_CONSUMER_OFFSET carries them.
pub fn all_offsets(offsets: &ConsumerOffsets) -> ConsumerOffsetSerializeWrapper {
    ConsumerOffsetSerializeWrapper {
        offset_table: offsets.table().clone(),
    }
}

/// Groups with committed offsets on `topic` (QUERY_TOPIC_CONSUME_BY_WHO's offset part).
pub fn groups_of_topic(offsets: &ConsumerOffsets, topic: &str) -> BTreeSet<String> {
    offsets
        .table()
        .keys()
        .filter_map(|key| key.split_once('@'))
        .filter(|(t, _)| *t == topic)
        .map(|(_, g)| g.to_string())
        .collect()
}

/// Topics `group` has committed offsets on (QUERY_TOPICS_BY_CONSUMER).
pub fn topics_of_group(offsets: &ConsumerOffsets, group: &str) -> BTreeSet<String> {
    offsets
        .table()
        .keys()
        .filter_map(|key| key.rsplit_once('@'))
        .filter(|(_, g)| *g == group)
        .map(|(t, _)| t.to_string())
        .collect()
}

/// Merges per-shard GET_ALL_CONSUMER_OFFSET parts (each `topic@group` queue lives on one shard).
pub fn merge_offsets(parts: Vec<ConsumerOffsetSerializeWrapper>) -> ConsumerOffsetSerializeWrapper {
    let mut all: BTreeMap<String, BTreeMap<i32, i64>> = BTreeMap::new();
    for part in parts {
        for (key, queues) in part.offset_table {
            all.entry(key).or_default().extend(queues);
        }
    }
    ConsumerOffsetSerializeWrapper { offset_table: all }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreConfig;
    use ringmq_proto::message::Record;
    use ringmq_testkit::sample_record;

    fn record(queue_id: i32) -> Record<'static> {
        sample_record(b"T", queue_id, b"x", b"")
    }

    #[test]
    fn shard_bodies_from_a_real_store() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .make()
            .expect("glommio executor (run as root or with `ulimit -l unlimited`)");
        ex.run(async move {
            let mut config = StoreConfig::new(&root, 0);
            config.segment_size_bytes = 1024 * 1024;
            config.max_record_bytes = 64 * 1024;
            config.tail_cache_bytes = 256 * 1024;
            let store = Store::open(config).await.unwrap();
            for _ in 0..5 {
                store.append(&[record(0)]).await.unwrap();
            }
            store.append(&[record(1)]).await.unwrap();
            let stats = topic_stats(&store, "b", "T", &[0, 1, 2]).await.unwrap();
            let q0 = &stats.offset_table[&queue("b", "T", 0)];
            assert_eq!((q0.min_offset, q0.max_offset), (0, 5));
            assert!(q0.last_update_timestamp > 1_700_000_000_000);
            assert_eq!(stats.offset_table[&queue("b", "T", 2)].max_offset, 0);

            let offsets = ConsumerOffsets::load(root.join("offsets.json")).unwrap();
            let offsets = RefCell::new(offsets);
            offsets.borrow_mut().commit("g", "T", 0, 2);
            let consume = consume_stats(&store, &offsets, "b", "g", "T", &[0, 1])
                .await
                .unwrap();
            assert_eq!(consume.total_diff(), 3 + 1);
            assert_eq!(
                groups_of_topic(&offsets.borrow(), "T"),
                BTreeSet::from(["g".to_string()])
            );
            assert_eq!(
                topics_of_group(&offsets.borrow(), "g"),
                BTreeSet::from(["T".to_string()])
            );

            let reset_to = |timestamp_ms, force| {
                let to = ResetTarget {
                    timestamp_ms,
                    force,
                };
                reset_offsets(&store, &offsets, "b", ("T", "g"), &[0], to)
            };
            // Without force an offset only moves back: the end (5) leaves 2 where it is.
            let kept = reset_to(RESET_TO_END, false).await.unwrap();
            assert_eq!(kept.offset_table[&queue("b", "T", 0)], 2);
            let reset = reset_to(0, false).await.unwrap();
            assert_eq!(reset.offset_table[&queue("b", "T", 0)], 0);
            assert_eq!(offsets.borrow().query("g", "T", 0), Some(0));
            let future = reset_to(i64::MAX, true).await.unwrap();
            assert_eq!(future.offset_table[&queue("b", "T", 0)], 5);
            assert_eq!(all_offsets(&offsets.borrow()).offset_table["T@g"][&0], 5);
            let end = reset_to(RESET_TO_END, true).await.unwrap();
            assert_eq!(end.offset_table[&queue("b", "T", 0)], 5);
            store.close().await.unwrap();
        });
    }
}
