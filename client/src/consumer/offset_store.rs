//! Consumer offsets held by the client between commits: the next offset to consume per queue,
//! and which ones changed since the last commit.

use std::collections::BTreeMap;

use crate::queue::MessageQueue;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    offset: i64,
    /// Changed since the last commit.
    dirty: bool,
}

/// The in-memory offset table of one consumer group.
///
/// Invariant: an offset only moves forward through [`OffsetTable::advance`]; jumps backwards
/// happen only through [`OffsetTable::reset`] (a rebalance start or an OFFSET_MOVED answer).
#[derive(Debug, Default)]
pub struct OffsetTable {
    entries: BTreeMap<MessageQueue, Entry>,
}

impl OffsetTable {
    /// Sets the offset a queue starts (or restarts) from; marked dirty so it gets committed.
    pub fn reset(&mut self, queue: &MessageQueue, offset: i64) {
        self.entries.insert(
            queue.clone(),
            Entry {
                offset,
                dirty: true,
            },
        );
    }

    /// Records progress; ignores values behind the current offset.
    pub fn advance(&mut self, queue: &MessageQueue, offset: i64) {
        match self.entries.get_mut(queue) {
            Some(entry) if offset > entry.offset => {
                entry.offset = offset;
                entry.dirty = true;
            }
            Some(_) => {}
            None => self.reset(queue, offset),
        }
    }

    pub fn get(&self, queue: &MessageQueue) -> Option<i64> {
        self.entries.get(queue).map(|e| e.offset)
    }

    /// Forgets a queue (after its final commit when it is rebalanced away).
    pub fn remove(&mut self, queue: &MessageQueue) -> Option<i64> {
        self.entries.remove(queue).map(|e| e.offset)
    }

    /// The changed offsets, marking them clean: what the periodic commit sends.
    pub fn take_dirty(&mut self) -> Vec<(MessageQueue, i64)> {
        let mut changed = Vec::new();
        for (queue, entry) in self.entries.iter_mut().filter(|(_, e)| e.dirty) {
            entry.dirty = false;
            changed.push((queue.clone(), entry.offset));
        }
        changed
    }

    /// Every offset (the final commit at shutdown sends all of them).
    pub fn all(&self) -> Vec<(MessageQueue, i64)> {
        self.entries
            .iter()
            .map(|(q, e)| (q.clone(), e.offset))
            .collect()
    }

    /// Marks `queue` dirty again, after a commit that could not be sent.
    pub fn mark_dirty(&mut self, queue: &MessageQueue) {
        if let Some(entry) = self.entries.get_mut(queue) {
            entry.dirty = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advances_forward_only_and_tracks_dirty_entries() {
        let q = MessageQueue::new("T", "b", 0);
        let mut table = OffsetTable::default();
        table.reset(&q, 10);
        assert_eq!(table.take_dirty(), [(q.clone(), 10)]);
        assert!(table.take_dirty().is_empty());
        table.advance(&q, 5);
        assert_eq!(table.get(&q), Some(10));
        assert!(table.take_dirty().is_empty());
        table.advance(&q, 12);
        assert_eq!(table.take_dirty(), [(q.clone(), 12)]);
        table.reset(&q, 3);
        assert_eq!(table.get(&q), Some(3));
        table.mark_dirty(&q);
        assert_eq!(table.take_dirty().len(), 1);
        assert_eq!(table.all(), [(q.clone(), 3)]);
        assert_eq!(table.remove(&q), Some(3));
        assert!(table.get(&q).is_none());
    }
}
