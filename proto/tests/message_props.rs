//! Property tests: encode/decode round trips and decoders that never panic on any input.

use proptest::prelude::*;
use ringmq_proto::message::{
    encode_properties, find_properties, find_property, BatchItem, BatchIter, DecodedRecord,
    PropertiesIter, Record,
};

/// `MessageDecoder.string2messageProperties`, written out byte by byte as the Java does it:
/// the reference the word-wise parser must agree with.
fn java_properties(bytes: &[u8]) -> Vec<(&[u8], &[u8])> {
    bytes
        .split(|&b| b == 0x02)
        .filter(|item| item.len() >= 3)
        .filter_map(|item| {
            let sep = item.iter().position(|&b| b == 0x01)?;
            (sep > 0 && sep < item.len() - 1).then(|| (&item[..sep], &item[sep + 1..]))
        })
        .collect()
}

fn host() -> impl Strategy<Value = std::net::SocketAddr> {
    (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| std::net::SocketAddr::from((ip, port)))
}

proptest! {
    #[test]
    fn record_round_trip(
        queue_id in any::<i32>(), flag in any::<i32>(), queue_offset in any::<i64>(),
        physical_offset in any::<i64>(), sys_flag in any::<i32>(), born_timestamp in any::<i64>(),
        born_host in host(), store_timestamp in any::<i64>(), store_host in host(),
        reconsume_times in any::<i32>(), prepared in any::<i64>(),
        body in proptest::collection::vec(any::<u8>(), 0..300),
        topic in proptest::collection::vec(any::<u8>(), 0..=127),
        properties in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let rec = Record {
            queue_id, flag, queue_offset, physical_offset,
            sys_flag: sys_flag & !0x30, born_timestamp, born_host, store_timestamp, store_host,
            reconsume_times, prepared_transaction_offset: prepared,
            body: &body, topic: &topic, properties: &properties,
        };
        let len = rec.encoded_len().unwrap();
        prop_assert_eq!(len, 91 + body.len() + topic.len() + properties.len());
        let mut buf = vec![0u8; len + 7];
        prop_assert_eq!(rec.encode(&mut buf).unwrap(), len);
        let d = DecodedRecord::decode(&buf).unwrap();
        prop_assert_eq!(d.total_size, len);
        prop_assert_eq!(d.record, rec);
        prop_assert!(d.verify_body_crc().is_ok());
    }

    #[test]
    fn record_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(d) = DecodedRecord::decode(&bytes) {
            prop_assert!(d.total_size <= bytes.len());
            let _ = d.verify_body_crc();
        }
    }

    #[test]
    fn properties_round_trip(
        pairs in proptest::collection::vec(("[A-Za-z_]{1,12}", "[ -~]{1,20}"), 0..10)
    ) {
        let mut out = Vec::new();
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        encode_properties(refs.iter().copied(), &mut out);
        let back: Vec<(&[u8], &[u8])> = PropertiesIter::new(&out).collect();
        let expect: Vec<(&[u8], &[u8])> =
            refs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
        prop_assert_eq!(back, expect);
    }

    #[test]
    fn properties_parse_never_panics(bytes in proptest::collection::vec(0u8..4, 0..64)) {
        for (k, v) in PropertiesIter::new(&bytes) {
            prop_assert!(!k.is_empty() && !v.is_empty());
            prop_assert!(!k.contains(&0x02) && !v.contains(&0x02) && !k.contains(&0x01));
        }
    }

    #[test]
    fn properties_parse_as_java_does(bytes in proptest::collection::vec(
        prop_oneof![Just(0x01u8), Just(0x02u8), Just(b'A'), Just(b'B'), 0u8..=255], 0..96)
    ) {
        // The generated strings end with or without 0x02; `split` then yields a final empty or
        // partial item, as Java's scan does.
        let got: Vec<_> = PropertiesIter::new(&bytes).collect();
        prop_assert_eq!(got, java_properties(&bytes));
    }

    #[test]
    fn one_pass_lookup_equals_one_lookup_per_name(
        pairs in proptest::collection::vec(("[ABK]{1,2}", "[a-z]{1,3}"), 0..12)
    ) {
        let mut out = Vec::new();
        encode_properties(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), &mut out);
        let names = ["A", "B", "K", "AB", "Z"];
        let together = find_properties(&out, names);
        for (name, value) in names.iter().zip(together) {
            let last = pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_bytes());
            prop_assert_eq!(value, last);
            prop_assert_eq!(find_property(&out, name), last);
        }
    }

    #[test]
    fn batch_round_trip(
        items in proptest::collection::vec(
            (any::<i32>(), proptest::collection::vec(any::<u8>(), 0..50),
             proptest::collection::vec(any::<u8>(), 0..50)), 0..8)
    ) {
        let mut body = Vec::new();
        for (flag, b, p) in &items {
            BatchItem { flag: *flag, body: b, properties: p }.encode(&mut body).unwrap();
        }
        let back: Vec<BatchItem> = BatchIter::new(&body).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(back.len(), items.len());
        for (got, (flag, b, p)) in back.iter().zip(&items) {
            prop_assert_eq!(got.flag, *flag);
            prop_assert_eq!(got.body, &b[..]);
            prop_assert_eq!(got.properties, &p[..]);
        }
    }

    #[test]
    fn batch_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        for item in BatchIter::new(&bytes) {
            let _ = item;
        }
    }
}
