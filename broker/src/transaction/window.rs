//! Which half messages of one shard are resolved: one bit per half-queue offset from the oldest
//! unresolved one (`base`) onwards. Pure state, no I/O.
//!
//! Half-queue offsets are dense (0, 1, 2, … in log order), so a bitmap costs one bit per half
//! message still in the window, however many resolutions arrive out of order behind one that
//! waits for its check-back. The window slides forward over every resolved prefix.

use std::collections::{HashMap, VecDeque};

const WORD_BITS: u64 = 64;
/// Every this many half offsets, the op queue's length at append time is remembered, so the
/// persisted op progress is a safe lower bound without one entry per message.
pub const OP_MARK_EVERY: u64 = 1024;

/// Resolution state of one shard's half queue.
#[derive(Debug, Default)]
pub struct Window {
    /// Every half offset below this is resolved (committed, rolled back or given up).
    base: u64,
    /// Bit `i` of word `w` is half offset `word_start + 64 w + i`.
    words: VecDeque<u64>,
    word_start: u64,
    /// (half offset, op-queue length when that half was appended), oldest first.
    op_marks: VecDeque<(u64, u64)>,
    /// Op-queue offset from which a replay finds every resolution at or after `base`.
    op_floor: u64,
    /// Checks sent so far, by half offset (only for half messages checked at least once).
    check_times: HashMap<u64, u32>,
}

impl Window {
    /// A window whose first unresolved half offset is `base`; replaying the op queue from
    /// `op_floor` recovers every later resolution.
    pub fn new(base: u64, op_floor: u64) -> Window {
        let below = base % WORD_BITS;
        // Offsets below `base` in its first word count as resolved, as slid-over ones do.
        let words = if below == 0 {
            VecDeque::new()
        } else {
            VecDeque::from([(1u64 << below) - 1])
        };
        Window {
            base,
            words,
            word_start: base - below,
            op_marks: VecDeque::from([(base, op_floor)]),
            op_floor,
            check_times: HashMap::new(),
        }
    }

    pub fn base(&self) -> u64 {
        self.base
    }

    /// Op-queue offset to persist: a replay from there sees every resolution at or after `base`.
    pub fn op_floor(&self) -> u64 {
        self.op_floor
    }

    pub fn is_resolved(&self, half: u64) -> bool {
        if half < self.base {
            return true;
        }
        let rel = half - self.word_start;
        let word = (rel / WORD_BITS) as usize;
        self.words
            .get(word)
            .is_some_and(|w| w & (1 << (rel % WORD_BITS)) != 0)
    }

    /// Marks `half` resolved; `false` if it already was (a repeated END_TRANSACTION).
    pub fn resolve(&mut self, half: u64) -> bool {
        if self.is_resolved(half) {
            return false;
        }
        let rel = half - self.word_start;
        let word = (rel / WORD_BITS) as usize;
        if self.words.len() <= word {
            self.words.resize(word + 1, 0);
        }
        self.words[word] |= 1 << (rel % WORD_BITS);
        self.check_times.remove(&half);
        self.slide();
        true
    }

    /// Undoes [`Window::resolve`] for a resolution whose op record could not be stored.
    pub fn unresolve(&mut self, half: u64) {
        if half < self.base {
            // The window slid over it: reopen from there (rare: only after a failed append).
            self.reopen_from(half);
        }
        let rel = half - self.word_start;
        if let Some(w) = self.words.get_mut((rel / WORD_BITS) as usize) {
            *w &= !(1 << (rel % WORD_BITS));
        }
    }

    fn reopen_from(&mut self, half: u64) {
        let new_start = half - half % WORD_BITS;
        while self.word_start > new_start {
            self.words.push_front(u64::MAX);
            self.word_start -= WORD_BITS;
        }
        self.base = half;
    }

    /// Remembers the op-queue length seen just before half `half` was appended.
    pub fn note_half_appended(&mut self, half: u64, op_len: u64) {
        if half % OP_MARK_EVERY == 0 && self.op_marks.back().is_none_or(|m| m.0 < half) {
            self.op_marks.push_back((half, op_len));
        }
    }

    fn slide(&mut self) {
        loop {
            let rel = self.base - self.word_start;
            let Some(&w) = self.words.front() else { break };
            if rel >= WORD_BITS {
                self.words.pop_front();
                self.word_start += WORD_BITS;
                continue;
            }
            if w & (1 << rel) == 0 {
                break;
            }
            self.base += 1;
        }
        while self.op_marks.len() > 1 && self.op_marks[1].0 <= self.base {
            self.op_marks.pop_front();
        }
        if let Some(&(_, op)) = self.op_marks.front() {
            self.op_floor = self.op_floor.max(op);
        }
    }

    /// The window moves past half offsets the store no longer holds (retention).
    pub fn skip_below(&mut self, min: u64) {
        while self.base < min {
            let base = self.base;
            self.resolve(base);
        }
    }

    pub fn check_times(&self, half: u64) -> u32 {
        self.check_times.get(&half).copied().unwrap_or(0)
    }

    pub fn note_checked(&mut self, half: u64) -> u32 {
        let n = self.check_times.entry(half).or_insert(0);
        *n += 1;
        *n
    }

    pub fn set_check_times(&mut self, half: u64, times: u32) {
        if half >= self.base {
            self.check_times.insert(half, times);
        }
    }

    pub fn all_check_times(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.check_times.iter().map(|(&k, &v)| (k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_out_of_order_and_slides_over_prefixes() {
        let mut w = Window::new(0, 0);
        assert!(w.resolve(2));
        assert!(w.resolve(1));
        assert_eq!(w.base(), 0);
        assert!(!w.resolve(2), "a repeat is not a new resolution");
        assert!(w.resolve(0));
        assert_eq!(w.base(), 3);
        assert!(w.is_resolved(1) && !w.is_resolved(3));
        for h in 3..200 {
            w.resolve(h);
        }
        assert_eq!(w.base(), 200);
        assert!(w.words.len() <= 1, "resolved words are dropped");
    }

    #[test]
    fn op_floor_follows_marks_of_the_oldest_unresolved_half() {
        let mut w = Window::new(0, 7);
        w.note_half_appended(OP_MARK_EVERY, 40);
        w.note_half_appended(2 * OP_MARK_EVERY, 90);
        for h in 0..OP_MARK_EVERY + 5 {
            w.resolve(h);
        }
        assert_eq!(w.op_floor(), 40);
        for h in OP_MARK_EVERY + 5..2 * OP_MARK_EVERY {
            w.resolve(h);
        }
        assert_eq!(w.op_floor(), 90);
    }

    #[test]
    fn unresolve_reopens_and_check_times_go_with_resolution() {
        let mut w = Window::new(130, 0);
        assert_eq!(w.note_checked(131), 1);
        assert_eq!(w.note_checked(131), 2);
        w.resolve(131);
        assert_eq!(w.check_times(131), 0);
        w.resolve(130);
        assert_eq!(w.base(), 132);
        w.unresolve(130);
        assert_eq!(w.base(), 130);
        assert!(!w.is_resolved(130) && w.is_resolved(131));
        w.skip_below(135);
        assert_eq!(w.base(), 135);
    }
}
