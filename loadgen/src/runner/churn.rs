//! `--churn-consumers`: consumers that join the group during the load and leave again, so
//! queues change hands while messages flow (with `--orderly`, under the broker's queue locks).
//!
//! Each extra consumer joins at [`JOIN_AT`] of the run, and producers pause at [`HOLD_AT`]
//! until every joined consumer holds a queue (or a joiner gives up after the setup timeout):
//! without that, a short run could end before the group has rebalanced, and nothing would
//! change hands. A joined consumer leaves (clean shutdown: offsets committed, queues
//! unlocked) from [`LEAVE_AT`] on, once it has consumed a message of the run, or at the end.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Fraction of the run after which the extra consumers join.
pub const JOIN_AT: f64 = 1.0 / 3.0;
/// Fraction of the run at which producers wait for the joined consumers to hold queues.
pub const HOLD_AT: f64 = 0.5;
/// Fraction of the run from which the extra consumers leave.
pub const LEAVE_AT: f64 = 2.0 / 3.0;

const _: () = assert!(JOIN_AT < HOLD_AT && HOLD_AT < LEAVE_AT && LEAVE_AT < 1.0);

/// Shared by all executors.
#[derive(Debug)]
pub struct ChurnState {
    count: usize,
    holding: AtomicUsize,
    gate_open: AtomicBool,
}

impl ChurnState {
    pub fn new(count: usize) -> ChurnState {
        ChurnState {
            count,
            holding: AtomicUsize::new(0),
            gate_open: AtomicBool::new(count == 0),
        }
    }

    /// Whether producers may send now, `progress` being how far the run is.
    pub fn producers_may_send(&self, progress: impl FnOnce() -> f64) -> bool {
        self.gate_open.load(Ordering::Relaxed) || progress() < HOLD_AT
    }

    /// A joined consumer holds a queue now; the last one opens the gate.
    pub fn joined_and_holding(&self) {
        if self.holding.fetch_add(1, Ordering::AcqRel) + 1 >= self.count {
            self.open_gate();
        }
    }

    /// Lets producers go on whatever the joiners hold (a joiner gave up, or failed).
    pub fn open_gate(&self) {
        self.gate_open.store(true, Ordering::Relaxed);
    }
}

/// The extra consumer ids executor `executor` of `executors` runs: ids `consumers..consumers +
/// churn`, placed round robin from executor 0 (regular consumers fill from the last one).
pub fn churn_ids(consumers: u32, churn: u32, executor: usize, executors: usize) -> Vec<u32> {
    (0..churn)
        .filter(|j| *j as usize % executors == executor)
        .map(|j| consumers + j)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_extra_consumer_is_placed_once() {
        let mut all: Vec<u32> = (0..3).flat_map(|e| churn_ids(2, 5, e, 3)).collect();
        all.sort_unstable();
        assert_eq!(all, vec![2, 3, 4, 5, 6]);
        assert_eq!(churn_ids(2, 5, 0, 3), vec![2, 5]);
    }

    #[test]
    fn producers_pause_at_half_way_until_every_joiner_holds_a_queue() {
        let churn = ChurnState::new(2);
        assert!(churn.producers_may_send(|| 0.4));
        assert!(!churn.producers_may_send(|| 0.5));
        churn.joined_and_holding();
        assert!(!churn.producers_may_send(|| 0.6));
        churn.joined_and_holding();
        assert!(churn.producers_may_send(|| 0.6));
        assert!(ChurnState::new(0).producers_may_send(|| 0.9));
    }
}
