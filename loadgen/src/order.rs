//! The `--orderly --verify` check: was every key's sequence consumed in send order?
//!
//! With `--orderly`, producer `p` sends its message `s` under key `p * KEYS_PER_PRODUCER +
//! s % KEYS_PER_PRODUCER` to the queue the key hashes to (Java's `SelectMessageQueueByHash`),
//! synchronously, so each key's messages sit in one queue in send order; the key's own
//! sequence number is `s / KEYS_PER_PRODUCER`. Consumers are orderly push consumers: the broker
//! lends each queue to one consumer at a time (LOCK_BATCH_MQ, 60 s lease), and a queue that
//! changes hands is resumed by its new owner from the group's committed offset.
//!
//! So, per key, in the order the consumptions happened (one mutex per key makes that order
//! total across executors):
//!
//! * one consumer never goes back: a step to a sequence at or below its previous one, without
//!   another consumer having consumed the key in between, is a **violation**;
//! * when another consumer takes the key over (a **handover**: a rebalance, a consumer joining
//!   or leaving), it resumes from the committed offset, which is at or before the message after
//!   the last one consumed; going back there is an allowed **redelivery** (every message at or
//!   below the highest sequence already consumed counts as one);
//! * a step forward by more than one skips sequences; that is only allowed when none of the
//!   skipped messages was acknowledged (a send that failed): checked against the producers'
//!   acknowledgements at the end. A skipped message consumed later would be a step back by the
//!   same consumer or a redelivery after a skip, so skips are what catch two consumers
//!   consuming one queue at once (their interleaving jumps forward on each change of hands).
//!
//! Assumption, true of ringmq's client: a consumer that gets a queue back resumes where it
//! committed, and it commits (waiting for the answer) before unlocking a queue it releases, so
//! the same consumer instance never legitimately goes back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

/// Keys each producer cycles through, so that even a few producers cover every queue.
pub const KEYS_PER_PRODUCER: u32 = 8;
/// Skips remembered for the final acknowledgement check; past this the run cannot be proved
/// and fails (a healthy run with sync sends has a skip only where a send failed).
pub const MAX_SKIP_RECORDS: usize = 65_536;

/// The key message `(producer_id, sequence)` is sent under, and its sequence within the key.
pub fn key_of(producer_id: u32, sequence: u64) -> (u32, u64) {
    let per = u64::from(KEYS_PER_PRODUCER);
    let key = producer_id * KEYS_PER_PRODUCER + (sequence % per) as u32;
    (key, sequence / per)
}

/// The producer and producer sequence of `key`'s message number `key_sequence`.
pub fn message_of(key: u32, key_sequence: u64) -> (u32, u64) {
    let producer_id = key / KEYS_PER_PRODUCER;
    let sequence = key_sequence * u64::from(KEYS_PER_PRODUCER) + u64::from(key % KEYS_PER_PRODUCER);
    (producer_id, sequence)
}

/// The message key string of `key` in run `run_id` (hashed to pick the queue).
pub fn key_name(run_id: u32, key: u32) -> String {
    format!("{run_id:08x}-key{key}")
}

/// What one consumption of a key was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The next message, or the first consumed of the key.
    InOrder,
    /// Consumed before (at or below the highest sequence seen), after a handover.
    Redelivery,
    /// The same consumer went back to `sequence` after consuming `last`.
    Backwards { last: u64 },
}

/// Key sequences `from..=to` passed over by one step: a violation if any was acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Skip {
    pub key: u32,
    pub from: u64,
    pub to: u64,
}

/// The state of one key.
#[derive(Clone, Debug, Default)]
pub struct KeyOrder {
    /// The consumer and key sequence of the last consumption.
    last: Option<(u32, u64)>,
    max_sequence: u64,
    pub consumed: u64,
    pub redeliveries: u64,
    pub handovers: u64,
    pub violations: u64,
    pub first_violation: Option<String>,
}

impl KeyOrder {
    /// Records that `consumer` consumed key sequence `sequence`; returns what the step was and
    /// the sequences it skipped, if any.
    pub fn observe(&mut self, consumer: u32, sequence: u64) -> (Step, Option<(u64, u64)>) {
        self.consumed += 1;
        let Some((last_consumer, last)) = self.last.replace((consumer, sequence)) else {
            self.max_sequence = sequence;
            return (Step::InOrder, None);
        };
        let handover = last_consumer != consumer;
        self.handovers += u64::from(handover);
        let skipped = (sequence > last + 1).then(|| (last + 1, sequence - 1));
        let step = if !handover && sequence <= last {
            self.violations += 1;
            self.first_violation.get_or_insert_with(|| {
                format!("consumer {consumer} went back from {last} to {sequence}")
            });
            Step::Backwards { last }
        } else if sequence <= self.max_sequence {
            self.redeliveries += 1;
            Step::Redelivery
        } else {
            Step::InOrder
        };
        self.max_sequence = self.max_sequence.max(sequence);
        (step, skipped)
    }
}

/// Every key's state, shared by the consumers of all executors.
pub struct OrderChecker {
    keys: Vec<Mutex<KeyOrder>>,
    skips: Mutex<Vec<Skip>>,
    skips_dropped: AtomicU64,
    /// Messages of producer ids outside the run (cannot be keyed).
    unknown_keys: AtomicU64,
}

/// The order verdict, in the report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OrderReport {
    /// Keys with at least one message consumed.
    pub keys_checked: u64,
    pub messages_checked: u64,
    /// Steps back by one consumer, plus acknowledged messages skipped over.
    pub violations: u64,
    /// Deliveries of messages consumed before, after a handover.
    pub redeliveries: u64,
    /// Times a key's consumption passed from one consumer to another.
    pub handovers: u64,
    /// Skips not remembered (beyond [`MAX_SKIP_RECORDS`]): the run is not proved.
    pub unchecked_skips: u64,
    pub first_violation: Option<String>,
}

impl OrderReport {
    pub fn passed(&self) -> bool {
        self.messages_checked > 0 && self.violations == 0 && self.unchecked_skips == 0
    }
}

impl OrderChecker {
    pub fn new(producers: u32) -> OrderChecker {
        let keys = (0..producers * KEYS_PER_PRODUCER)
            .map(|_| Mutex::new(KeyOrder::default()))
            .collect();
        OrderChecker {
            keys,
            skips: Mutex::new(Vec::new()),
            skips_dropped: AtomicU64::new(0),
            unknown_keys: AtomicU64::new(0),
        }
    }

    /// Records that `consumer` consumed message `(producer_id, sequence)`.
    pub fn observe(&self, consumer: u32, producer_id: u32, sequence: u64) {
        let (key, key_sequence) = key_of(producer_id, sequence);
        let Some(slot) = self.keys.get(key as usize) else {
            self.unknown_keys.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let (_, skipped) = lock(slot).observe(consumer, key_sequence);
        if let Some((from, to)) = skipped {
            let mut skips = lock(&self.skips);
            if skips.len() < MAX_SKIP_RECORDS {
                skips.push(Skip { key, from, to });
            } else {
                self.skips_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The verdict; `acknowledged(producer, sequence)` says whether a send was acknowledged.
    pub fn finish(&self, acknowledged: impl Fn(u32, u64) -> bool) -> OrderReport {
        let mut report = OrderReport {
            unchecked_skips: self.skips_dropped.load(Ordering::Relaxed),
            ..OrderReport::default()
        };
        for key in &self.keys {
            let k = lock(key);
            report.keys_checked += u64::from(k.consumed > 0);
            report.messages_checked += k.consumed;
            report.redeliveries += k.redeliveries;
            report.handovers += k.handovers;
            report.violations += k.violations;
            if report.first_violation.is_none() {
                report.first_violation = k.first_violation.clone();
            }
        }
        for skip in lock(&self.skips).iter() {
            let acked = (skip.from..=skip.to)
                .filter(|&s| {
                    let (producer, sequence) = message_of(skip.key, s);
                    acknowledged(producer, sequence)
                })
                .count() as u64;
            if acked > 0 {
                report.violations += acked;
                report.first_violation.get_or_insert_with(|| {
                    format!(
                        "key {} skipped {acked} acknowledged messages in {}..={}",
                        skip.key, skip.from, skip.to
                    )
                });
            }
        }
        report
    }
}

/// A poisoned lock only means another consumer thread panicked; its state is still a count.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_acked(_: u32, _: u64) -> bool {
        true
    }

    #[test]
    fn keys_and_messages_map_back_and_forth() {
        for (p, s) in [(0, 0), (3, 17), (63, 1_000_003)] {
            let (key, ks) = key_of(p, s);
            assert_eq!(message_of(key, ks), (p, s));
        }
        assert_eq!(key_of(1, 9), (KEYS_PER_PRODUCER + 1, 1));
    }

    #[test]
    fn one_consumer_in_order_passes() {
        let c = OrderChecker::new(2);
        for s in 0..100 {
            c.observe(0, 0, s);
            c.observe(1, 1, s);
        }
        let r = c.finish(all_acked);
        assert_eq!(r.keys_checked, 2 * u64::from(KEYS_PER_PRODUCER));
        assert_eq!(
            (r.messages_checked, r.violations, r.redeliveries),
            (200, 0, 0)
        );
        assert!(r.passed());
    }

    #[test]
    fn out_of_order_by_one_consumer_fails() {
        let c = OrderChecker::new(1);
        let per = u64::from(KEYS_PER_PRODUCER);
        // Key 0 gets key sequences 0, 2, 1: the swap is a step back.
        for ks in [0, 2, 1] {
            c.observe(0, 0, ks * per);
        }
        let r = c.finish(all_acked);
        // Two: the step from 0 to 2 skipped an acknowledged message, and 1 came after 2.
        assert_eq!(r.violations, 2, "{r:?}");
        assert!(!r.passed());
        assert!(r.first_violation.unwrap().contains("went back from 2 to 1"));
    }

    #[test]
    fn the_same_message_twice_in_a_row_by_one_consumer_fails() {
        let mut k = KeyOrder::default();
        k.observe(0, 5);
        assert_eq!(k.observe(0, 5).0, Step::Backwards { last: 5 });
    }

    #[test]
    fn going_back_after_a_handover_is_a_redelivery() {
        let mut k = KeyOrder::default();
        for s in 0..=10 {
            assert_eq!(k.observe(0, s), (Step::InOrder, None));
        }
        // The new owner resumes from an older committed offset and catches up.
        assert_eq!(k.observe(1, 8).0, Step::Redelivery);
        assert_eq!(k.observe(1, 9).0, Step::Redelivery);
        assert_eq!(k.observe(1, 10).0, Step::Redelivery);
        assert_eq!(k.observe(1, 11), (Step::InOrder, None));
        assert_eq!((k.violations, k.redeliveries, k.handovers), (0, 3, 1));
    }

    #[test]
    fn two_consumers_interleaving_one_key_fail() {
        // Both consume the queue at once: each hand-over jumps forward past the other's next.
        let c = OrderChecker::new(1);
        let per = u64::from(KEYS_PER_PRODUCER);
        for (consumer, ks) in [(0, 0), (0, 1), (1, 0), (0, 2), (1, 1), (0, 3)] {
            c.observe(consumer, 0, ks * per);
        }
        let r = c.finish(all_acked);
        assert!(r.violations > 0, "{r:?}");
        assert!(r.first_violation.unwrap().contains("skipped"));
    }

    #[test]
    fn a_skip_over_unacknowledged_sends_is_allowed() {
        let c = OrderChecker::new(1);
        let per = u64::from(KEYS_PER_PRODUCER);
        for ks in [0, 1, 4, 5] {
            c.observe(0, 0, ks * per);
        }
        // Key sequences 2 and 3 of key 0 (producer sequences 16, 24) failed to send.
        let r = c.finish(|p, s| !(p == 0 && (s == 2 * per || s == 3 * per)));
        assert!(r.passed(), "{r:?}");
        let r = c.finish(all_acked);
        assert_eq!(r.violations, 2, "{r:?}");
    }

    #[test]
    fn nothing_consumed_proves_nothing() {
        assert!(!OrderChecker::new(4).finish(all_acked).passed());
    }
}
