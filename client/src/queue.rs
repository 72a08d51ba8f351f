//! Message queues and the producer's queue selection.

use std::cell::Cell;
use std::fmt;

/// One queue of a topic on one broker. Ordered by topic, broker name, queue id: the order
/// rebalancing sorts queues in (reference §5.1). The protocol crate's `body::MessageQueue` is the
/// JSON form (its derived order differs); convert with `From`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageQueue {
    pub topic: String,
    pub broker_name: String,
    pub queue_id: i32,
}

impl MessageQueue {
    pub fn new(topic: &str, broker_name: &str, queue_id: i32) -> MessageQueue {
        MessageQueue {
            topic: topic.to_string(),
            broker_name: broker_name.to_string(),
            queue_id,
        }
    }
}

impl From<&MessageQueue> for ringmq_proto::body::MessageQueue {
    fn from(queue: &MessageQueue) -> Self {
        ringmq_proto::body::MessageQueue {
            broker_name: queue.broker_name.clone(),
            queue_id: queue.queue_id,
            topic: queue.topic.clone(),
        }
    }
}

impl From<ringmq_proto::body::MessageQueue> for MessageQueue {
    fn from(queue: ringmq_proto::body::MessageQueue) -> Self {
        MessageQueue {
            topic: queue.topic,
            broker_name: queue.broker_name,
            queue_id: queue.queue_id,
        }
    }
}

impl fmt::Display for MessageQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}#{}", self.topic, self.broker_name, self.queue_id)
    }
}

/// How a producer picks the queue of a send.
#[derive(Debug, Clone)]
pub enum QueueSelector {
    /// Next queue in round-robin order (the Java default); a retry avoids the broker that failed.
    RoundRobin,
    /// `abs(java_string_hash(key)) % queue_count`, as Java's `SelectMessageQueueByHash`: every
    /// message with the same key goes to the same queue while the route is unchanged.
    ByKeyHash(String),
    /// Exactly this queue; no retry on another broker.
    Explicit(MessageQueue),
}

/// The producer's round-robin position. Java keeps one counter per topic, started at a random
/// value, so that many producers do not all start at queue 0.
#[derive(Debug)]
pub struct RoundRobin {
    next: Cell<u32>,
}

impl RoundRobin {
    pub fn starting_at(start: u32) -> RoundRobin {
        RoundRobin {
            next: Cell::new(start),
        }
    }

    /// Picks the next queue index among `queue_count`, skipping queues of `avoid_broker` when
    /// another broker has one (Java's `selectOneMessageQueue(lastBrokerName)`).
    pub fn pick(
        &self,
        queues: &[MessageQueue],
        avoid_broker: Option<&str>,
    ) -> Option<MessageQueue> {
        if queues.is_empty() {
            return None;
        }
        for _ in 0..queues.len() {
            let index = self.advance() as usize % queues.len();
            let queue = &queues[index];
            if avoid_broker != Some(queue.broker_name.as_str()) {
                return Some(queue.clone());
            }
        }
        // Every queue is on the broker to avoid: use the next one anyway.
        let index = self.advance() as usize % queues.len();
        Some(queues[index].clone())
    }

    fn advance(&self) -> u32 {
        let value = self.next.get();
        self.next.set(value.wrapping_add(1));
        value
    }
}

/// Queue index for a key, as Java's `SelectMessageQueueByHash` (`Math.abs(hashCode) % size`).
/// `Math.abs(Integer.MIN_VALUE)` is negative in Java; use `unsigned_abs` so it stays a valid index.
pub fn queue_index_for_hash(hash: i32, queue_count: usize) -> usize {
    assert!(
        queue_count > 0,
        "queue_index_for_hash needs at least one queue"
    );
    (hash.unsigned_abs() as usize) % queue_count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queues(spec: &[(&str, i32)]) -> Vec<MessageQueue> {
        spec.iter()
            .map(|(broker, id)| MessageQueue::new("T", broker, *id))
            .collect()
    }

    #[test]
    fn round_robin_cycles_through_every_queue() {
        let qs = queues(&[("a", 0), ("a", 1), ("b", 0)]);
        let rr = RoundRobin::starting_at(0);
        let picked: Vec<_> = (0..6).map(|_| rr.pick(&qs, None).unwrap()).collect();
        assert_eq!(picked[..3], qs[..]);
        assert_eq!(picked[3..], qs[..]);
    }

    #[test]
    fn round_robin_avoids_the_failed_broker_when_it_can() {
        let qs = queues(&[("a", 0), ("a", 1), ("b", 0)]);
        let rr = RoundRobin::starting_at(0);
        for _ in 0..10 {
            assert_eq!(rr.pick(&qs, Some("a")).unwrap().broker_name, "b");
        }
        let only_a = queues(&[("a", 0), ("a", 1)]);
        assert_eq!(rr.pick(&only_a, Some("a")).unwrap().broker_name, "a");
        assert!(rr.pick(&[], None).is_none());
    }

    #[test]
    fn round_robin_wraps_around_u32() {
        let qs = queues(&[("a", 0), ("a", 1), ("a", 2)]);
        let rr = RoundRobin::starting_at(u32::MAX);
        let first = rr.pick(&qs, None).unwrap();
        let second = rr.pick(&qs, None).unwrap();
        assert_eq!(first.queue_id, (u32::MAX % 3) as i32);
        assert_eq!(second.queue_id, 0);
    }

    #[test]
    fn hash_index_matches_java_math_abs_modulo() {
        assert_eq!(queue_index_for_hash(7, 4), 3);
        assert_eq!(queue_index_for_hash(-7, 4), 3);
        assert_eq!(queue_index_for_hash(0, 4), 0);
        // Integer.MIN_VALUE: Java's Math.abs overflows; ours stays a valid index.
        assert!(queue_index_for_hash(i32::MIN, 3) < 3);
    }

    #[test]
    fn queues_sort_by_topic_then_broker_then_id() {
        let mut qs = [
            MessageQueue::new("T", "b", 0),
            MessageQueue::new("T", "a", 1),
            MessageQueue::new("S", "z", 9),
            MessageQueue::new("T", "a", 0),
        ];
        qs.sort();
        let order: Vec<String> = qs.iter().map(|q| q.to_string()).collect();
        assert_eq!(order, ["S@z#9", "T@a#0", "T@a#1", "T@b#0"]);
    }
}
