//! The pending timers of one shard, in memory: a min-heap by (due time, timer-queue offset),
//! plus a count of pending entries per block of queue offsets, so the lowest queue offset still
//! pending (where recovery must start scanning) is known without walking the heap.
//!
//! 32 bytes per pending timer: 1M pending timers cost 32 MiB. Pushing and popping are
//! O(log n) and touch nothing on the ordinary send path.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// Queue offsets are counted per block of this many for the "lowest pending" lower bound.
const OFFSET_BLOCK_SHIFT: u32 = 12;

/// One pending timer: where its held record is and when it is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PendingTimer {
    /// Ordering key, first: due time, epoch ms.
    pub due_ms: i64,
    /// Ordering key, second: offset in `rmq_sys_wheel_timer` queue 0.
    pub queue_offset: u64,
    /// Global physical offset of the held record.
    pub physical_offset: u64,
    /// Size of the held record.
    pub size: u32,
}

impl PendingTimer {
    /// The (due, queue offset) key delivery follows.
    pub fn key(&self) -> (i64, u64) {
        (self.due_ms, self.queue_offset)
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<PendingTimer>>,
    blocks: BTreeMap<u64, u32>,
}

impl Timers {
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    pub fn push(&mut self, t: PendingTimer) {
        *self
            .blocks
            .entry(t.queue_offset >> OFFSET_BLOCK_SHIFT)
            .or_default() += 1;
        self.heap.push(Reverse(t));
    }

    /// The next timer to deliver.
    pub fn peek(&self) -> Option<&PendingTimer> {
        self.heap.peek().map(|r| &r.0)
    }

    /// Removes and returns the next timer if it is due at `now_ms`.
    pub fn pop_due(&mut self, now_ms: i64) -> Option<PendingTimer> {
        if self.peek()?.due_ms > now_ms {
            return None;
        }
        let t = self.heap.pop()?.0;
        let block = t.queue_offset >> OFFSET_BLOCK_SHIFT;
        if let Some(n) = self.blocks.get_mut(&block) {
            *n -= 1;
            if *n == 0 {
                self.blocks.remove(&block);
            }
        }
        Some(t)
    }

    /// A queue offset at or below every pending timer's (`None` when nothing is pending).
    pub fn lowest_offset_bound(&self) -> Option<u64> {
        self.blocks.keys().next().map(|b| b << OFFSET_BLOCK_SHIFT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(due_ms: i64, queue_offset: u64) -> PendingTimer {
        PendingTimer {
            due_ms,
            queue_offset,
            physical_offset: queue_offset * 100,
            size: 100,
        }
    }

    #[test]
    fn pops_in_due_then_offset_order_and_only_when_due() {
        let mut timers = Timers::default();
        for (due, off) in [(30, 0), (10, 1), (10, 2), (20, 3)] {
            timers.push(t(due, off));
        }
        assert_eq!(timers.pop_due(9), None);
        assert_eq!(timers.pop_due(10).map(|t| t.key()), Some((10, 1)));
        assert_eq!(timers.pop_due(10).map(|t| t.key()), Some((10, 2)));
        assert_eq!(timers.pop_due(10), None);
        assert_eq!(timers.pop_due(100).map(|t| t.key()), Some((20, 3)));
        assert_eq!(timers.len(), 1);
    }

    #[test]
    fn lowest_offset_bound_follows_pops() {
        let mut timers = Timers::default();
        timers.push(t(5, 10_000));
        timers.push(t(1, 3));
        assert_eq!(timers.lowest_offset_bound(), Some(0));
        timers.pop_due(1);
        assert_eq!(timers.lowest_offset_bound(), Some(8192));
        timers.pop_due(5);
        assert_eq!(timers.lowest_offset_bound(), None);
        assert!(timers.is_empty());
    }
}
