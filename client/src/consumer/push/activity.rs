//! What a push consumer reports about itself in GET_CONSUMER_RUNNING_INFO: per topic, pull and
//! consume counts and times; per queue, when it last pulled and consumed. Plain counters on
//! the consumer's executor, updated where pulls answer and listener calls return.
//!
//! Rates are over the consumer's whole life (count / seconds since start), not Java's sliding
//! minute: exact, cheap, and enough to tell a consumer that works from one that does not.

use std::collections::BTreeMap;

use ringmq_proto::body::ConsumeStatus;

use crate::queue::MessageQueue;

const MS_PER_SECOND: f64 = 1000.0;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct TopicCounts {
    pulls: u64,
    pull_ms_total: u64,
    consumed_ok: u64,
    consumed_failed: u64,
    consume_calls: u64,
    consume_ms_total: u64,
}

/// When a queue last pulled and consumed (ms since the epoch; 0: never).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueActivity {
    pub last_pull_ms: i64,
    pub last_consume_ms: i64,
}

/// A consumer's counters since it started.
#[derive(Debug)]
pub(crate) struct Activity {
    started_ms: i64,
    topics: BTreeMap<String, TopicCounts>,
    queues: BTreeMap<MessageQueue, QueueActivity>,
}

impl Activity {
    pub(crate) fn new(started_ms: i64) -> Activity {
        Activity {
            started_ms,
            topics: BTreeMap::new(),
            queues: BTreeMap::new(),
        }
    }

    pub(crate) fn started_ms(&self) -> i64 {
        self.started_ms
    }

    /// A pull of `queue` answered after `rt_ms`.
    pub(crate) fn on_pull(&mut self, queue: &MessageQueue, rt_ms: u64, now_ms: i64) {
        let counts = self.topics.entry(queue.topic.clone()).or_default();
        counts.pulls += 1;
        counts.pull_ms_total += rt_ms;
        self.queues.entry(queue.clone()).or_default().last_pull_ms = now_ms;
    }

    /// One listener call on `messages` messages of `queue` returned after `rt_ms`.
    pub(crate) fn on_consumed(
        &mut self,
        queue: &MessageQueue,
        messages: usize,
        ok: bool,
        rt_ms: u64,
        now_ms: i64,
    ) {
        let counts = self.topics.entry(queue.topic.clone()).or_default();
        counts.consume_calls += 1;
        counts.consume_ms_total += rt_ms;
        if ok {
            counts.consumed_ok += messages as u64;
        } else {
            counts.consumed_failed += messages as u64;
        }
        self.queues
            .entry(queue.clone())
            .or_default()
            .last_consume_ms = now_ms;
    }

    pub(crate) fn queue(&self, queue: &MessageQueue) -> QueueActivity {
        self.queues.get(queue).copied().unwrap_or_default()
    }

    /// Java's `ConsumeStatus` of `topic` at `now_ms`: average times and lifetime rates.
    pub(crate) fn status(&self, topic: &str, now_ms: i64) -> ConsumeStatus {
        let counts = self.topics.get(topic).copied().unwrap_or_default();
        // At least one second, so a consumer asked right at start reports counts, not infinity.
        let seconds = ((now_ms - self.started_ms) as f64 / MS_PER_SECOND).max(1.0);
        let average = |total: u64, n: u64| if n == 0 { 0.0 } else { total as f64 / n as f64 };
        ConsumeStatus {
            pull_rt: average(counts.pull_ms_total, counts.pulls),
            pull_tps: counts.pulls as f64 / seconds,
            consume_rt: average(counts.consume_ms_total, counts.consume_calls),
            consume_ok_tps: counts.consumed_ok as f64 / seconds,
            consume_failed_tps: counts.consumed_failed as f64 / seconds,
            consume_failed_msgs: counts.consumed_failed as i64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_become_averages_and_lifetime_rates() {
        let q = MessageQueue::new("T", "b", 1);
        let mut activity = Activity::new(10_000);
        activity.on_pull(&q, 4, 11_000);
        activity.on_pull(&q, 6, 12_000);
        activity.on_consumed(&q, 3, true, 2, 12_500);
        activity.on_consumed(&q, 1, false, 4, 13_000);
        let status = activity.status("T", 20_000);
        assert_eq!(status.pull_rt, 5.0);
        assert_eq!(status.pull_tps, 0.2);
        assert_eq!(status.consume_rt, 3.0);
        assert_eq!(status.consume_ok_tps, 0.3);
        assert_eq!(status.consume_failed_tps, 0.1);
        assert_eq!(status.consume_failed_msgs, 1);
        assert_eq!(
            activity.queue(&q),
            QueueActivity {
                last_pull_ms: 12_000,
                last_consume_ms: 13_000
            }
        );
        assert_eq!(activity.status("Other", 20_000), ConsumeStatus::default());
    }
}
