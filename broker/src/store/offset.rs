//! Physical offsets that resolve broker-wide: the shard id sits in bits 48–55, the shard-local
//! byte offset of the record in the low 48 bits. Bit 63 stays clear so Java sees a non-negative
//! long; a shard may hold 256 TiB of log.

/// Bits of the local offset.
pub const LOCAL_OFFSET_BITS: u32 = 48;
/// Largest shard id an offset can carry (bits 48–54; bit 55 left clear, bit 63 must be).
pub const MAX_SHARD_ID: u8 = 127;
const LOCAL_MASK: u64 = (1 << LOCAL_OFFSET_BITS) - 1;

/// The global physical offset of shard-local byte `local` in shard `shard`.
pub fn to_global(shard: u8, local: u64) -> u64 {
    assert!(shard <= MAX_SHARD_ID, "shard id {shard} out of range");
    assert!(local <= LOCAL_MASK, "local offset {local} out of range");
    (u64::from(shard) << LOCAL_OFFSET_BITS) | local
}

/// Splits a global physical offset into (shard, local).
pub fn split_global(global: u64) -> (u8, u64) {
    ((global >> LOCAL_OFFSET_BITS) as u8, global & LOCAL_MASK)
}

/// The shard a global physical offset (e.g. decoded from an offsetMsgId) belongs to, or `None`
/// when the value cannot be one of ours.
pub fn shard_of(global: i64) -> Option<u8> {
    if global < 0 || (global as u64) >> LOCAL_OFFSET_BITS > u64::from(MAX_SHARD_ID) {
        return None;
    }
    Some(split_global(global as u64).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_sign() {
        let g = to_global(5, 0x1234);
        assert_eq!(g, 0x0005_0000_0000_1234);
        assert_eq!(split_global(g), (5, 0x1234));
        assert!((to_global(MAX_SHARD_ID, LOCAL_MASK) as i64) > 0);
        assert_eq!(shard_of(g as i64), Some(5));
        assert_eq!(shard_of(-1), None);
    }
}
