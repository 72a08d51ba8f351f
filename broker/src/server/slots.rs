//! Bounded counts of what a shard holds: requests in progress (its SYSTEM_BUSY bound), parked
//! pulls, open connections.
//!
//! A [`Slot`] is taken when a thing starts and given back when the slot is dropped, whichever
//! way the thing ends (a request answered, rerouted, parked, or its task cancelled at shutdown):
//! nothing has to remember to give it back.

use std::cell::Cell;
use std::rc::Rc;

/// One count of one shard.
#[derive(Debug, Default)]
pub struct SlotCounter {
    count: Rc<Cell<usize>>,
}

/// One thing's place in the count.
#[derive(Debug)]
pub struct Slot {
    count: Rc<Cell<usize>>,
}

impl SlotCounter {
    /// A slot, unless `max` are already taken.
    pub fn try_acquire(&self, max: usize) -> Option<Slot> {
        let pending = self.count.get();
        if pending >= max {
            return None;
        }
        self.count.set(pending + 1);
        Some(Slot {
            count: self.count.clone(),
        })
    }

    pub fn count(&self) -> usize {
        self.count.get()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let pending = self.count.get();
        assert!(pending > 0, "a slot outlived its count");
        self.count.set(pending - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_given_back_on_drop() {
        let pending = SlotCounter::default();
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
