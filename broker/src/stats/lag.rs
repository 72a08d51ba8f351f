//! Consumer lag of one shard's queues (`rocketmq_consumer_lag_messages` and
//! `rocketmq_consumer_lag_latency`), computed periodically by the shard from its store and its
//! consumer offsets and published wholesale (see [`super::ShardStats::publish_lag`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use super::bodies::store_time_at;
use super::counters::{GroupKey, Lag};
use crate::metadata::offsets::ConsumerOffsets;
use crate::store::Store;

/// How often a shard recomputes its lag table.
pub const LAG_INTERVAL: Duration = Duration::from_secs(5);

/// Lag of every (topic, group) with committed offsets on this shard: messages stored past the
/// committed offset, and the age of the oldest of them.
pub async fn compute(
    store: &Store,
    offsets: &RefCell<ConsumerOffsets>,
    now_ms: i64,
) -> HashMap<GroupKey, Lag> {
    // A copy, so no borrow is held across the store reads below.
    let table = offsets.borrow().table().clone();
    let mut lags: HashMap<GroupKey, Lag> = HashMap::new();
    for (key, queues) in table {
        let Some((topic, group)) = key.split_once('@') else {
            continue;
        };
        let lag = lags
            .entry((topic.to_string(), group.to_string()))
            .or_default();
        for (queue_id, committed) in queues {
            let max = store.max_offset(topic, queue_id);
            let committed = committed.max(0) as u64;
            if max <= committed {
                continue;
            }
            lag.messages += max - committed;
            // The oldest unconsumed message is the one at the committed offset.
            if let Ok(stored_ms) = store_time_at(store, topic, queue_id, committed).await {
                if stored_ms > 0 {
                    let age = now_ms.saturating_sub(stored_ms).max(0) as u64;
                    lag.latency_ms = lag.latency_ms.max(age);
                }
            }
        }
    }
    lags
}
