//! Requests a shard has accepted and not answered yet, for its SYSTEM_BUSY bound.
//!
//! A [`PendingSlot`] is taken when a request is accepted and given back when it is dropped,
//! whichever way the request ends (answered, rerouted, parked, or its task cancelled at
//! shutdown): nothing has to remember to give it back.

use std::cell::Cell;
use std::rc::Rc;

/// The count of one shard.
#[derive(Debug, Default)]
pub struct PendingRequests {
    count: Rc<Cell<usize>>,
}

/// One accepted request's place in the count.
#[derive(Debug)]
pub struct PendingSlot {
    count: Rc<Cell<usize>>,
}

impl PendingRequests {
    /// A slot, unless `max` requests are already pending.
    pub fn try_acquire(&self, max: usize) -> Option<PendingSlot> {
        let pending = self.count.get();
        if pending >= max {
            return None;
        }
        self.count.set(pending + 1);
        Some(PendingSlot {
            count: self.count.clone(),
        })
    }

    pub fn count(&self) -> usize {
        self.count.get()
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let pending = self.count.get();
        assert!(pending > 0, "a pending slot outlived its count");
        self.count.set(pending - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_given_back_on_drop() {
        let pending = PendingRequests::default();
        let first = pending.try_acquire(2).expect("room for two");
        let second = pending.try_acquire(2).expect("room for two");
        assert_eq!(pending.count(), 2);
        assert!(pending.try_acquire(2).is_none());
        drop(first);
        assert_eq!(pending.count(), 1);
        let third = pending.try_acquire(2).expect("a slot was given back");
        drop((second, third));
        assert_eq!(pending.count(), 0);
    }
}
