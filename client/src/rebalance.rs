//! Client-side queue allocation: RocketMQ's `AllocateMessageQueueAveragely` (reference §5.1).
//!
//! Every consumer of a group runs this on the same inputs (all readable queues, all consumer
//! ids) and so, without talking to each other, they split the queues into disjoint contiguous
//! ranges that together cover every queue.

use crate::queue::MessageQueue;

/// The queues `my_id` consumes. `queues` and `consumer_ids` may come in any order: both are
/// sorted here, as every client must sort them identically. An id not in the list gets nothing.
pub fn allocate_averagely(
    my_id: &str,
    queues: &[MessageQueue],
    consumer_ids: &[String],
) -> Vec<MessageQueue> {
    let mut ids: Vec<&str> = consumer_ids.iter().map(String::as_str).collect();
    ids.sort_unstable();
    ids.dedup();
    let Some(index) = ids.iter().position(|id| *id == my_id) else {
        return Vec::new();
    };
    let mut sorted = queues.to_vec();
    sorted.sort();
    sorted.dedup();
    let (start, count) = averagely_range(sorted.len(), ids.len(), index);
    sorted[start..start + count].to_vec()
}

/// `(start, count)` of consumer `index`'s range, with `queue_count` queues and `consumer_count`
/// consumers (Java's arithmetic, including its handling of more consumers than queues).
pub fn averagely_range(queue_count: usize, consumer_count: usize, index: usize) -> (usize, usize) {
    assert!(index < consumer_count, "consumer index out of range");
    let remainder = queue_count % consumer_count;
    let count = if queue_count <= consumer_count {
        1
    } else if remainder > 0 && index < remainder {
        queue_count / consumer_count + 1
    } else {
        queue_count / consumer_count
    };
    let start = if remainder > 0 && index < remainder {
        index * count
    } else {
        index * count + remainder
    };
    // Java: `range = Math.min(averageSize, mqAll.size() - startIndex)`, which is 0 (or negative,
    // i.e. nothing) for the consumers beyond the queue count.
    let count = count.min(queue_count.saturating_sub(start));
    (start.min(queue_count), count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn queues(n: i32) -> Vec<MessageQueue> {
        // Two brokers, interleaved on purpose so the sort matters.
        (0..n)
            .map(|i| MessageQueue::new("T", if i % 2 == 0 { "b" } else { "a" }, i / 2))
            .collect()
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.0.0.{i}@{i}")).collect()
    }

    #[test]
    fn eight_queues_three_consumers_split_three_three_two() {
        let qs = queues(8);
        let cs = ids(3);
        let sizes: Vec<usize> = cs
            .iter()
            .map(|c| allocate_averagely(c, &qs, &cs).len())
            .collect();
        assert_eq!(sizes, [3, 3, 2]);
        let first = allocate_averagely(&cs[0], &qs, &cs);
        let names: Vec<String> = first.iter().map(|q| q.to_string()).collect();
        assert_eq!(names, ["T@a#0", "T@a#1", "T@a#2"]);
    }

    #[test]
    fn more_consumers_than_queues_leaves_the_last_ones_idle() {
        let qs = queues(2);
        let cs = ids(4);
        let sizes: Vec<usize> = cs
            .iter()
            .map(|c| allocate_averagely(c, &qs, &cs).len())
            .collect();
        assert_eq!(sizes, [1, 1, 0, 0]);
    }

    #[test]
    fn unknown_consumer_gets_nothing_and_input_order_does_not_matter() {
        let qs = queues(4);
        let cs = ids(2);
        assert!(allocate_averagely("stranger", &qs, &cs).is_empty());
        let mut reversed_ids = cs.clone();
        reversed_ids.reverse();
        let mut reversed_qs = qs.clone();
        reversed_qs.reverse();
        assert_eq!(
            allocate_averagely(&cs[1], &qs, &cs),
            allocate_averagely(&cs[1], &reversed_qs, &reversed_ids)
        );
    }

    #[test]
    fn every_split_is_a_disjoint_cover_of_contiguous_ranges() {
        for queue_count in 0..20 {
            for consumer_count in 1..9 {
                let qs = queues(queue_count);
                let cs = ids(consumer_count);
                let mut seen = BTreeSet::new();
                let mut next_start = 0;
                for (index, consumer) in cs.iter().enumerate() {
                    let (start, count) =
                        averagely_range(queue_count as usize, consumer_count, index);
                    if count > 0 {
                        assert_eq!(start, next_start, "ranges must be contiguous");
                        next_start = start + count;
                    }
                    for q in allocate_averagely(consumer, &qs, &cs) {
                        assert!(seen.insert(q), "a queue was allocated twice");
                    }
                }
                assert_eq!(seen.len(), queue_count as usize, "every queue allocated");
                // Sizes differ by at most one.
                let sizes: Vec<usize> = cs
                    .iter()
                    .map(|c| allocate_averagely(c, &qs, &cs).len())
                    .collect();
                let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(
                    max - min <= 1,
                    "{queue_count} queues / {consumer_count}: {sizes:?}"
                );
            }
        }
    }
}
