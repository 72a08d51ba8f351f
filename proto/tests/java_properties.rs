//! The properties parser against what Java's `Properties.store` writes: any key and value,
//! written with [`write_pair`], read back unchanged; arbitrary text never panics.

use proptest::prelude::*;
use ringmq_proto::java_properties::{parse, write_pair};

proptest! {
    #[test]
    fn any_pairs_written_read_back(
        pairs in prop::collection::vec((any::<String>(), any::<String>()), 0..8),
    ) {
        let mut text = String::new();
        for (key, value) in &pairs {
            write_pair(&mut text, key, value);
        }
        let read: Vec<(String, String)> = parse(&text)
            .unwrap()
            .into_iter()
            .map(|p| (p.key, p.value))
            .collect();
        prop_assert_eq!(read, pairs);
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = parse(&text);
    }

    #[test]
    fn properties_like_text_never_panics(text in "[a-z=: \\t\\\\#!u0-9\\r\\n]{0,60}") {
        let _ = parse(&text);
    }
}
