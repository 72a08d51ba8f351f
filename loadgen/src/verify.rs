//! The `--verify` ledger: was every acknowledged message consumed, once, intact?
//!
//! Message ids are `(producer id, sequence)` and travel in the body, so the ledger needs one
//! bit per sent message for acknowledgements and two bits per message for receipts (seen, seen
//! again), and nothing per message in flight: 100 M messages cost about 36 MiB.
//! Producers record into an [`AckLedger`] on their executor, consumers into a
//! [`ConsumeLedger`] on theirs; [`reconcile`] merges them once after the drain.

use serde::Serialize;

use crate::body::{check_body, BodyCodec, BodyError};
use crate::order::OrderReport;

/// A growable set of `u64` indices, one bit each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    /// Sets bit `index`; returns whether it was already set.
    pub fn insert(&mut self, index: u64) -> bool {
        let word = (index / 64) as usize;
        if word >= self.words.len() {
            // Grow geometrically so a run of n messages costs O(log n) reallocations.
            self.words.resize((word + 1).max(self.words.len() * 2), 0);
        }
        let mask = 1u64 << (index % 64);
        let was_set = self.words[word] & mask != 0;
        self.words[word] |= mask;
        was_set
    }

    pub fn contains(&self, index: u64) -> bool {
        self.words
            .get((index / 64) as usize)
            .is_some_and(|w| w & (1u64 << (index % 64)) != 0)
    }

    pub fn count(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    fn word(&self, i: usize) -> u64 {
        self.words.get(i).copied().unwrap_or(0)
    }

    fn len_words(&self) -> usize {
        self.words.len()
    }

    /// `self |= other`.
    pub fn union_with(&mut self, other: &BitSet) {
        if other.words.len() > self.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }
}

/// Acknowledged sends, per global producer id.
#[derive(Clone, Debug, Default)]
pub struct AckLedger {
    acked: Vec<BitSet>,
}

impl AckLedger {
    pub fn record_ack(&mut self, producer_id: u32, sequence: u64) {
        let p = producer_id as usize;
        if p >= self.acked.len() {
            self.acked.resize_with(p + 1, BitSet::default);
        }
        let was_set = self.acked[p].insert(sequence);
        assert!(
            !was_set,
            "producer {producer_id} acknowledged sequence {sequence} twice"
        );
    }

    pub fn merge(&mut self, other: &AckLedger) {
        if other.acked.len() > self.acked.len() {
            self.acked.resize_with(other.acked.len(), BitSet::default);
        }
        for (a, b) in self.acked.iter_mut().zip(&other.acked) {
            a.union_with(b);
        }
    }

    pub fn acknowledged(&self) -> u64 {
        self.acked.iter().map(BitSet::count).sum()
    }

    /// Whether message `(producer_id, sequence)` was acknowledged.
    pub fn contains(&self, producer_id: u32, sequence: u64) -> bool {
        self.acked
            .get(producer_id as usize)
            .is_some_and(|b| b.contains(sequence))
    }
}

/// Messages a consumer received, with anything wrong about them.
#[derive(Clone, Debug, Default)]
pub struct ConsumeLedger {
    seen: Vec<BitSet>,
    seen_again: Vec<BitSet>,
    /// Deliveries beyond the first, summed over all messages.
    pub extra_deliveries: u64,
    /// Bodies that are ours (this run) but fail the header or filler check.
    pub corrupt_bodies: u64,
    /// Messages of other runs or other writers on the same topic (skipped).
    pub foreign_messages: u64,
    /// The first corruption seen, for the report.
    pub first_corruption: Option<String>,
    /// `--mode transaction`: deliveries of messages whose transaction was rolled back.
    pub rolled_back_delivered: u64,
}

impl ConsumeLedger {
    /// Checks a consumed body of this run (`run_id`) and records it.
    pub fn record_body(&mut self, codec: &BodyCodec, run_id: u32, body: &[u8]) {
        match check_body(codec, body) {
            Ok(h) if h.run_id == run_id => self.record_receipt(h.producer_id, h.sequence),
            Ok(_) | Err(BodyError::NotOurs) | Err(BodyError::TooShort { .. }) => {
                self.foreign_messages += 1
            }
            Err(e) => {
                self.corrupt_bodies += 1;
                self.first_corruption.get_or_insert_with(|| e.to_string());
            }
        }
    }

    /// Records one delivery of message `(producer_id, sequence)`.
    pub fn record_receipt(&mut self, producer_id: u32, sequence: u64) {
        let p = producer_id as usize;
        if p >= self.seen.len() {
            self.seen.resize_with(p + 1, BitSet::default);
            self.seen_again.resize_with(p + 1, BitSet::default);
        }
        if self.seen[p].insert(sequence) {
            self.seen_again[p].insert(sequence);
            self.extra_deliveries += 1;
        }
    }
}

/// The `--verify` verdict.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Messages the broker acknowledged with SEND_OK.
    pub acknowledged: u64,
    /// Distinct messages of this run consumed.
    pub consumed: u64,
    /// Acknowledged but never consumed: a loss if the run drained fully.
    pub missing: u64,
    /// Distinct messages consumed more than once (at-least-once redelivery).
    pub duplicated: u64,
    /// Total deliveries beyond the first.
    pub extra_deliveries: u64,
    /// Consumed although the send was not acknowledged (e.g. timed out after being stored):
    /// allowed by at-least-once, reported for completeness.
    pub consumed_unacknowledged: u64,
    pub corrupt_bodies: u64,
    pub foreign_messages: u64,
    pub first_corruption: Option<String>,
    /// `--mode transaction`: messages consumed although their transaction rolled back.
    pub rolled_back_delivered: u64,
    /// `--orderly`: the per-key order check.
    pub order: Option<OrderReport>,
}

impl VerifyReport {
    /// Something was acknowledged, none of it is missing, every body was intact, and (with
    /// `--orderly`) every key kept its order. A run with nothing acknowledged proves nothing,
    /// so it does not pass.
    pub fn passed(&self) -> bool {
        self.acknowledged > 0
            && self.missing == 0
            && self.corrupt_bodies == 0
            && self.rolled_back_delivered == 0
            && self.order.as_ref().is_none_or(OrderReport::passed)
    }
}

/// Merges the producers' acknowledgements and the consumers' receipts into the verdict.
pub fn reconcile(acks: &AckLedger, consumers: &[ConsumeLedger]) -> VerifyReport {
    let producers = consumers
        .iter()
        .map(|c| c.seen.len())
        .chain([acks.acked.len()])
        .max()
        .unwrap_or(0);
    let mut report = VerifyReport::default();
    let empty = BitSet::default();
    for p in 0..producers {
        let acked = acks.acked.get(p).unwrap_or(&empty);
        let mut seen = BitSet::default();
        let mut twice = BitSet::default();
        for c in consumers {
            if let Some(s) = c.seen.get(p) {
                // Seen by this consumer and by an earlier one: a duplicate across consumers.
                let words = s.len_words().max(seen.len_words());
                let mut overlap = BitSet {
                    words: vec![0; words],
                };
                for (i, w) in overlap.words.iter_mut().enumerate() {
                    *w = s.word(i) & seen.word(i);
                }
                report.extra_deliveries += overlap.count();
                twice.union_with(&overlap);
                twice.union_with(&c.seen_again[p]);
                seen.union_with(s);
            }
        }
        let words = acked.len_words().max(seen.len_words());
        for i in 0..words {
            let (a, s) = (acked.word(i), seen.word(i));
            report.missing += u64::from((a & !s).count_ones());
            report.consumed_unacknowledged += u64::from((s & !a).count_ones());
        }
        report.acknowledged += acked.count();
        report.consumed += seen.count();
        report.duplicated += twice.count();
    }
    for c in consumers {
        report.extra_deliveries += c.extra_deliveries;
        report.corrupt_bodies += c.corrupt_bodies;
        report.foreign_messages += c.foreign_messages;
        report.rolled_back_delivered += c.rolled_back_delivered;
        if report.first_corruption.is_none() {
            report.first_corruption = c.first_corruption.clone();
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::BodyHeader;

    #[test]
    fn bitset_insert_contains_count() {
        let mut b = BitSet::default();
        assert!(!b.insert(0));
        assert!(!b.insert(1_000));
        assert!(b.insert(1_000));
        assert!(b.contains(0) && b.contains(1_000) && !b.contains(999) && !b.contains(1 << 40));
        assert_eq!(b.count(), 2);
    }

    #[test]
    fn all_consumed_once_passes() {
        let mut acks = AckLedger::default();
        let mut c = ConsumeLedger::default();
        for p in 0..3 {
            for s in 0..1_000 {
                acks.record_ack(p, s);
                c.record_receipt(p, s);
            }
        }
        let r = reconcile(&acks, &[c]);
        assert_eq!(r.acknowledged, 3_000);
        assert_eq!(r.consumed, 3_000);
        assert_eq!(
            (r.missing, r.duplicated, r.consumed_unacknowledged),
            (0, 0, 0)
        );
        assert!(r.passed());
    }

    #[test]
    fn missing_duplicated_and_unacknowledged_are_counted() {
        let mut acks = AckLedger::default();
        for s in 0..10 {
            acks.record_ack(0, s);
        }
        let mut c1 = ConsumeLedger::default();
        let mut c2 = ConsumeLedger::default();
        for s in 0..8 {
            c1.record_receipt(0, s); // 8 and 9 missing
        }
        c1.record_receipt(0, 3); // duplicate within one consumer
        c2.record_receipt(0, 5); // duplicate across consumers
        c2.record_receipt(0, 5); // and within the second
        c2.record_receipt(0, 10); // never acknowledged
        c2.record_receipt(1, 0); // producer with no acks at all
        let r = reconcile(&acks, &[c1, c2]);
        assert_eq!(r.acknowledged, 10);
        assert_eq!(r.consumed, 10); // 0..=7, 10, and (1,0)
        assert_eq!(r.missing, 2);
        assert_eq!(r.duplicated, 2); // sequences 3 and 5
        assert_eq!(r.extra_deliveries, 3);
        assert_eq!(r.consumed_unacknowledged, 2);
        assert!(!r.passed());
    }

    #[test]
    fn merged_ack_ledgers_cover_all_executors() {
        let mut a = AckLedger::default();
        let mut b = AckLedger::default();
        a.record_ack(0, 1);
        b.record_ack(5, 70);
        a.merge(&b);
        assert_eq!(a.acknowledged(), 2);
        let r = reconcile(&a, &[]);
        assert_eq!(r.missing, 2);
        assert!(
            !reconcile(&AckLedger::default(), &[]).passed(),
            "nothing verified"
        );
    }

    #[test]
    fn bodies_are_checked_and_classified() {
        let codec = BodyCodec::new(64);
        let mut c = ConsumeLedger::default();
        let ours = BodyHeader {
            run_id: 9,
            producer_id: 1,
            sequence: 4,
            born_ns: 1,
        };
        let body = codec.encode(&ours);
        c.record_body(&codec, 9, &body);
        let other_run = codec.encode(&BodyHeader { run_id: 8, ..ours });
        c.record_body(&codec, 9, &other_run);
        c.record_body(&codec, 9, b"hello");
        let mut corrupt = body.clone();
        corrupt[40] ^= 0xFF;
        c.record_body(&codec, 9, &corrupt);
        assert_eq!(c.foreign_messages, 2);
        assert_eq!(c.corrupt_bodies, 1);
        assert!(c
            .first_corruption
            .as_deref()
            .unwrap_or("")
            .contains("byte 40"));
        let mut acks = AckLedger::default();
        acks.record_ack(1, 4);
        let r = reconcile(&acks, &[c]);
        assert_eq!((r.consumed, r.missing, r.corrupt_bodies), (1, 0, 1));
        assert!(!r.passed());
    }
}
