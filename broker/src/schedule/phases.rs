//! Where the delivery task's time goes: per phase of a turn, how often it ran, the total and
//! the longest wait. Kept so that delivery lateness can be explained by measurement (issue 10
//! asks ≤ 100 ms at p99); summarised in the broker log when the service stops and readable
//! through [`super::ScheduleService::phases`].

use std::time::Instant;

/// A turn whose phases together took longer than this is counted as slow: a message due at
/// the start of such a turn is stored at least this late.
pub const SLOW_TURN_MS: u64 = 100;

/// One phase: how many times it ran, the total and the longest time, microseconds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Phase {
    pub count: u64,
    pub total_us: u64,
    pub max_us: u64,
}

impl Phase {
    /// Adds the time since `start`.
    pub fn add_since(&mut self, start: Instant) {
        self.add_us(start.elapsed().as_micros() as u64);
    }

    pub fn add_us(&mut self, us: u64) {
        self.count += 1;
        self.total_us += us;
        self.max_us = self.max_us.max(us);
    }

    fn summary(&self) -> String {
        let mean = self.total_us.checked_div(self.count).unwrap_or(0);
        format!(
            "n={} mean={}us max={}us total={}ms",
            self.count,
            mean,
            self.max_us,
            self.total_us / 1000
        )
    }
}

/// The phases of the delivery task (see `service`), and of the progress writes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PhaseTimes {
    /// Reading new timer-queue entries into the pending set.
    pub ingest: Phase,
    /// Reading the level queues' due entries and popping due timers.
    pub collect: Phase,
    /// Reading the held records of a batch.
    pub read: Phase,
    /// The delivery append (until its flush-mode promise holds).
    pub append: Phase,
    /// Writing the progress page (write + fdatasync).
    pub progress_write: Phase,
    /// Time the delivery task waited for a progress write before it could deliver more.
    pub progress_wait: Phase,
    /// Whole turns that delivered something.
    pub turn: Phase,
    /// Turns longer than [`SLOW_TURN_MS`].
    pub slow_turns: u64,
}

impl PhaseTimes {
    /// Counts one delivering turn that started at `start`.
    pub fn end_turn(&mut self, start: Instant) {
        let us = start.elapsed().as_micros() as u64;
        self.turn.add_us(us);
        if us > SLOW_TURN_MS * 1000 {
            self.slow_turns += 1;
        }
    }

    /// One line per phase, for the log.
    pub fn summary(&self) -> String {
        format!(
            "turns[{}] slow_turns={} ingest[{}] collect[{}] read[{}] append[{}] \
             progress_write[{}] progress_wait[{}]",
            self.turn.summary(),
            self.slow_turns,
            self.ingest.summary(),
            self.collect.summary(),
            self.read.summary(),
            self.append.summary(),
            self.progress_write.summary(),
            self.progress_wait.summary(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_sum_count_and_keep_the_longest() {
        let mut p = Phase::default();
        p.add_us(5);
        p.add_us(20);
        p.add_us(2);
        assert_eq!(
            p,
            Phase {
                count: 3,
                total_us: 27,
                max_us: 20
            }
        );
        assert!(p.summary().starts_with("n=3 mean=9us max=20us"));
    }

    #[test]
    fn only_turns_past_the_threshold_are_slow() {
        let mut t = PhaseTimes::default();
        t.end_turn(Instant::now());
        let long_ago = Instant::now() - std::time::Duration::from_millis(SLOW_TURN_MS + 5);
        t.end_turn(long_ago);
        assert_eq!(t.turn.count, 2);
        assert_eq!(t.slow_turns, 1);
    }
}
