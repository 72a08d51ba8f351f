//! Permission bits and their rules (RocketMQ 4.x `Permission`).

/// The resource is refused whatever else is set.
pub const DENY: u8 = 1;
/// Any of PUB and SUB satisfies the need.
pub const ANY: u8 = 1 << 1;
/// Produce to a topic.
pub const PUB: u8 = 1 << 2;
/// Consume from a topic, or act as a member of a group.
pub const SUB: u8 = 1 << 3;

/// Java's `Permission.parsePermFromString`: `PUB`, `SUB`, `PUB|SUB`, `SUB|PUB`; anything else
/// (including `DENY` and a missing value) is DENY.
pub fn parse_perm(text: Option<&str>) -> u8 {
    match text.map(str::trim) {
        Some("PUB") => PUB,
        Some("SUB") => SUB,
        Some("PUB|SUB") | Some("SUB|PUB") => PUB | SUB,
        _ => DENY,
    }
}

/// Whether an account that owns `owned` may do what needs `needed` (`Permission.checkPermission`).
pub fn check_permission(needed: u8, owned: u8) -> bool {
    if owned & DENY != 0 {
        return false;
    }
    if needed & ANY != 0 {
        return owned & (PUB | SUB) != 0;
    }
    needed & owned != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_java_spellings_and_denies_the_rest() {
        assert_eq!(parse_perm(Some("PUB")), PUB);
        assert_eq!(parse_perm(Some(" SUB ")), SUB);
        assert_eq!(parse_perm(Some("PUB|SUB")), PUB | SUB);
        assert_eq!(parse_perm(Some("SUB|PUB")), PUB | SUB);
        assert_eq!(parse_perm(Some("DENY")), DENY);
        assert_eq!(parse_perm(Some("pub")), DENY);
        assert_eq!(parse_perm(None), DENY);
    }

    #[test]
    fn check_follows_java() {
        assert!(check_permission(PUB, PUB));
        assert!(check_permission(PUB, PUB | SUB));
        assert!(!check_permission(PUB, SUB));
        assert!(!check_permission(SUB, DENY));
        assert!(!check_permission(PUB, PUB | DENY));
        assert!(check_permission(ANY, SUB));
        assert!(!check_permission(ANY, DENY));
    }
}
