//! Per-file key filters: a split-block Bloom filter over the 64-bit key hashes of one index
//! file's entries, so a lookup walks (almost) only the files that hold its key.
//!
//! Why this filter. It is built one entry at a time while its file fills, in memory bounded by
//! the file's capacity, and recovery rebuilds it from the same entry reads that rebuild the slot
//! table. A binary fuse or xor filter (about 9 bits a key for 0.4 %) is built from every key at
//! once: at seal, the file's 2 Mi hashes (16 MiB) plus construction tables of about as much
//! again, or a 64 MiB re-read of the file. At [`FILTER_BITS_PER_ENTRY`] = 8 a filter takes one
//! byte per entry, 2 MiB for a file of the default layout (1/32 of the file), and answers
//! "maybe" for about 3.3 % of keys it does not hold (the 256-bit-block analysis: 10 bits would
//! give 1.3 % for 2.5 MiB, 12 bits 0.5 % for 3 MiB). A false "maybe" costs one walk of that file,
//! run alongside the walk of the file that holds the key.
//!
//! The filter is an array of blocks of eight 32-bit words. A key hash is first remixed
//! ([`mix`]: FNV-1a's high bits are weak for short keys that differ in their last bytes); the
//! high 32 bits pick the block (`(hi * blocks) >> 32`), and the low 32 bits `x` set one bit in
//! every word of it: bit `(x * SALTS[i]) >> 27` of word `i`. A lookup reads those eight bits.
//!
//! File `index/<seq>.filter` (`docs/storage-format.md` §5): a header page, then the blocks, each
//! word big-endian, zero-padded to a page. The header binds the filter to the entries it was
//! built from (first sequence number, capacity, entry count and the first and last entries' store
//! time and offset), so a filter left from other entries is never used.

use super::super::{align_up, PAGE_BYTES};
use super::Range;

/// Filter bits per index entry (see the module documentation for the trade-off).
pub(super) const FILTER_BITS_PER_ENTRY: u64 = 8;
/// Words of a block; a key sets one bit in each.
const BLOCK_WORDS: usize = 8;
const BLOCK_BYTES: usize = BLOCK_WORDS * 4;
const BLOCK_BITS: u64 = BLOCK_BYTES as u64 * 8;
/// The header page at the start of every filter file.
pub(super) const FILTER_HEADER_BYTES: usize = PAGE_BYTES as usize;
const FILTER_MAGIC: &[u8; 8] = b"RINGFLT1";
const BODY_CRC_AT: usize = 64;
const HEADER_CRC_AT: usize = 68;

/// splitmix64: the next state and its output.
const fn splitmix64(state: u64) -> (u64, u64) {
    let state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    (state, mix(state))
}

/// splitmix64's finalizer: every output bit depends on every input bit.
const fn mix(h: u64) -> u64 {
    let h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// One odd multiplier per word: the low 32 bits of the first eight splitmix64 outputs from
/// state 0, made odd (any distinct odd constants would do; these are part of the file format).
const SALTS: [u32; BLOCK_WORDS] = salts();

const fn salts() -> [u32; BLOCK_WORDS] {
    let mut out = [0u32; BLOCK_WORDS];
    let mut state = 0;
    let mut i = 0;
    while i < BLOCK_WORDS {
        let (next, value) = splitmix64(state);
        state = next;
        out[i] = value as u32 | 1;
        i += 1;
    }
    out
}

/// What a filter file must say about its index file to be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Binding {
    pub(super) first_seq: u64,
    pub(super) capacity: u32,
    pub(super) range: Range,
}

/// Why a filter file was not used (the lookup then walks the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum FilterReject {
    #[error("filter file too short: {0} bytes")]
    Short(usize),
    #[error("not a filter file (magic)")]
    Magic,
    #[error("filter header checksum mismatch")]
    HeaderCrc,
    #[error("filter built from other entries than the index file's")]
    OtherEntries,
    #[error("filter body checksum mismatch")]
    BodyCrc,
}

/// A split-block Bloom filter over key hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KeyFilter {
    words: Vec<u32>,
}

impl KeyFilter {
    /// Blocks of the filter of a file of `capacity` entries (at least one).
    fn blocks_for(capacity: u32) -> usize {
        (u64::from(capacity) * FILTER_BITS_PER_ENTRY)
            .div_ceil(BLOCK_BITS)
            .max(1) as usize
    }

    /// Bytes of the filter of a file of `capacity` entries, in memory.
    pub(super) fn bytes_for(capacity: u32) -> usize {
        Self::blocks_for(capacity) * BLOCK_BYTES
    }

    /// Bytes of the filter file of an index file of `capacity` entries.
    pub(super) fn file_bytes_for(capacity: u32) -> usize {
        FILTER_HEADER_BYTES + align_up(Self::bytes_for(capacity) as u64) as usize
    }

    /// An empty filter for a file of `capacity` entries.
    pub(super) fn for_capacity(capacity: u32) -> Self {
        KeyFilter {
            words: vec![0; Self::blocks_for(capacity) * BLOCK_WORDS],
        }
    }

    /// Bytes held.
    pub(super) fn bytes(&self) -> usize {
        self.words.len() * 4
    }

    /// The block's first word and the value whose products with the salts pick the bits.
    fn locate(&self, hash: u64) -> (usize, u32) {
        let h = mix(hash);
        let blocks = (self.words.len() / BLOCK_WORDS) as u64;
        let block = ((h >> 32) * blocks) >> 32;
        (block as usize * BLOCK_WORDS, h as u32)
    }

    pub(super) fn insert(&mut self, hash: u64) {
        let (at, x) = self.locate(hash);
        for (word, salt) in self.words[at..at + BLOCK_WORDS].iter_mut().zip(SALTS) {
            *word |= 1 << (x.wrapping_mul(salt) >> 27);
        }
    }

    /// False only if no entry with this hash was inserted.
    pub(super) fn may_contain(&self, hash: u64) -> bool {
        let (at, x) = self.locate(hash);
        self.words[at..at + BLOCK_WORDS]
            .iter()
            .zip(SALTS)
            .all(|(word, salt)| word & (1 << (x.wrapping_mul(salt) >> 27)) != 0)
    }

    /// Writes the filter file into `out` (`file_bytes_for(capacity)` bytes, zeroed).
    pub(super) fn encode(&self, at: &Binding, out: &mut [u8]) {
        let body = &mut out[FILTER_HEADER_BYTES..FILTER_HEADER_BYTES + self.bytes()];
        for (chunk, word) in body.chunks_exact_mut(4).zip(&self.words) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        let body_crc = crc32fast::hash(body);
        let r = at.range;
        let h = &mut out[..FILTER_HEADER_BYTES];
        h[0..8].copy_from_slice(FILTER_MAGIC);
        h[8..16].copy_from_slice(&at.first_seq.to_be_bytes());
        h[16..20].copy_from_slice(&at.capacity.to_be_bytes());
        h[20..24].copy_from_slice(&(FILTER_BITS_PER_ENTRY as u32).to_be_bytes());
        h[24..28].copy_from_slice(&((self.words.len() / BLOCK_WORDS) as u32).to_be_bytes());
        h[28..32].copy_from_slice(&r.count.to_be_bytes());
        h[32..40].copy_from_slice(&r.begin_ts.to_be_bytes());
        h[40..48].copy_from_slice(&r.end_ts.to_be_bytes());
        h[48..56].copy_from_slice(&r.begin_phy.to_be_bytes());
        h[56..64].copy_from_slice(&r.end_phy.to_be_bytes());
        h[BODY_CRC_AT..BODY_CRC_AT + 4].copy_from_slice(&body_crc.to_be_bytes());
        let crc = crc32fast::hash(&h[..HEADER_CRC_AT]);
        h[HEADER_CRC_AT..HEADER_CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    }

    /// The filter in a filter file's bytes, if they are intact and were written for `want`.
    pub(super) fn decode(b: &[u8], want: &Binding) -> Result<KeyFilter, FilterReject> {
        let body_bytes = Self::bytes_for(want.capacity);
        if b.len() < FILTER_HEADER_BYTES + body_bytes {
            return Err(FilterReject::Short(b.len()));
        }
        if &b[0..8] != FILTER_MAGIC {
            return Err(FilterReject::Magic);
        }
        let u32_at = |at: usize| u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |at: usize| u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        if u32_at(HEADER_CRC_AT) != crc32fast::hash(&b[..HEADER_CRC_AT]) {
            return Err(FilterReject::HeaderCrc);
        }
        let said = Binding {
            first_seq: u64_at(8),
            capacity: u32_at(16),
            range: Range {
                count: u32_at(28),
                begin_ts: u64_at(32) as i64,
                end_ts: u64_at(40) as i64,
                begin_phy: u64_at(48),
                end_phy: u64_at(56),
            },
        };
        let layout_ok = u64::from(u32_at(20)) == FILTER_BITS_PER_ENTRY
            && u32_at(24) as usize == Self::blocks_for(want.capacity);
        if said != *want || !layout_ok {
            return Err(FilterReject::OtherEntries);
        }
        let body = &b[FILTER_HEADER_BYTES..FILTER_HEADER_BYTES + body_bytes];
        if u32_at(BODY_CRC_AT) != crc32fast::hash(body) {
            return Err(FilterReject::BodyCrc);
        }
        let words = body
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes(c.try_into().expect("4 bytes")))
            .collect();
        Ok(KeyFilter { words })
    }
}

#[cfg(test)]
mod tests {
    use super::super::key_hash;
    use super::*;

    /// The false-positive rate of a full filter whose entries all have distinct keys is 3.32 %
    /// by the analysis (block loads Poisson-distributed); measured against this bound.
    const FILTER_FALSE_POSITIVE_BOUND: f64 = 0.04;

    fn hash(i: u64) -> u64 {
        key_hash(b"TopicTest", format!("KEY-{i:010}").as_bytes())
    }

    fn binding(capacity: u32, count: u32) -> Binding {
        Binding {
            first_seq: 3 * u64::from(capacity),
            capacity,
            range: Range {
                count,
                begin_ts: 1_700_000_000_000,
                end_ts: 1_700_000_009_999,
                begin_phy: 4096,
                end_phy: 1 << 30,
            },
        }
    }

    /// A full filter of `capacity` distinct keys.
    fn full(capacity: u32) -> KeyFilter {
        let mut f = KeyFilter::for_capacity(capacity);
        for i in 0..u64::from(capacity) {
            f.insert(hash(i));
        }
        f
    }

    #[test]
    fn salts_are_odd_and_distinct() {
        for (i, s) in SALTS.iter().enumerate() {
            assert_eq!(s & 1, 1);
            assert!(!SALTS[..i].contains(s));
        }
    }

    #[test]
    fn sizes_follow_the_capacity() {
        assert_eq!(KeyFilter::bytes_for(1 << 21), 2 << 20, "a byte per entry");
        assert_eq!(KeyFilter::file_bytes_for(1 << 21), (2 << 20) + 4096);
        assert_eq!(KeyFilter::bytes_for(128), 128);
        assert_eq!(
            KeyFilter::file_bytes_for(128),
            8192,
            "the body is padded to a page"
        );
        assert_eq!(KeyFilter::for_capacity(1).bytes(), 32, "at least one block");
    }

    #[test]
    fn no_false_negatives() {
        let capacity = 100_096;
        let f = full(capacity);
        let missed = (0..u64::from(capacity))
            .filter(|&i| !f.may_contain(hash(i)))
            .count();
        assert_eq!(missed, 0);
        // Filled far past its capacity it still finds everything (only its rate suffers).
        let mut small = KeyFilter::for_capacity(128);
        (0..10_000).for_each(|i| small.insert(hash(i)));
        assert!((0..10_000).all(|i| small.may_contain(hash(i))));
    }

    #[test]
    fn false_positive_rate_is_within_its_bound() {
        let capacity = 1 << 18;
        let f = full(capacity);
        let probes = 1_000_000u64;
        let from = u64::from(capacity);
        let hits = (from..from + probes)
            .filter(|&i| f.may_contain(hash(i)))
            .count();
        let rate = hits as f64 / probes as f64;
        assert!(rate <= FILTER_FALSE_POSITIVE_BOUND, "rate {rate}");
        // And not far below the analysis (3.32 %): a filter setting too many bits, or picking
        // blocks unevenly, would show up here as well as above.
        assert!(rate >= 0.025, "rate {rate}");
        // Half full, the rate falls far below (keys per block halve).
        let mut half = KeyFilter::for_capacity(capacity);
        (0..from / 2).for_each(|i| half.insert(hash(i)));
        let hits = (from..from + probes)
            .filter(|&i| half.may_contain(hash(i)))
            .count();
        assert!((hits as f64 / probes as f64) < 0.005, "{hits}");
    }

    #[test]
    fn encode_decode_round_trip() {
        let capacity = 4096;
        let f = full(capacity);
        let at = binding(capacity, capacity);
        let mut file = vec![0u8; KeyFilter::file_bytes_for(capacity)];
        f.encode(&at, &mut file);
        let back = KeyFilter::decode(&file, &at).expect("intact");
        assert_eq!(back, f);
        assert!((0..u64::from(capacity)).all(|i| back.may_contain(hash(i))));
    }

    #[test]
    fn damage_and_other_entries_are_rejected() {
        let capacity = 4096;
        let at = binding(capacity, capacity);
        let mut file = vec![0u8; KeyFilter::file_bytes_for(capacity)];
        full(capacity).encode(&at, &mut file);
        let decode = |b: &[u8]| KeyFilter::decode(b, &at);
        let mut body = file.clone();
        body[FILTER_HEADER_BYTES + 100] ^= 0x10;
        assert_eq!(decode(&body), Err(FilterReject::BodyCrc));
        let mut header = file.clone();
        header[30] ^= 1; // the entry count
        assert_eq!(decode(&header), Err(FilterReject::HeaderCrc));
        let mut magic = file.clone();
        magic[0] = b'X';
        assert_eq!(decode(&magic), Err(FilterReject::Magic));
        assert_eq!(
            decode(&file[..file.len() - 4096]),
            Err(FilterReject::Short(file.len() - 4096))
        );
        assert_eq!(decode(&vec![0u8; file.len()]), Err(FilterReject::Magic));
        // Intact, but for other entries: a partial file's filter, another file, another layout.
        for other in [
            binding(capacity, capacity - 1),
            Binding { first_seq: 0, ..at },
            binding(2 * capacity, capacity),
        ] {
            let mut file = vec![0u8; KeyFilter::file_bytes_for(other.capacity)];
            full(capacity).encode(&at, &mut file[..KeyFilter::file_bytes_for(capacity)]);
            assert_eq!(
                KeyFilter::decode(&file, &other),
                Err(FilterReject::OtherEntries)
            );
        }
    }
}
