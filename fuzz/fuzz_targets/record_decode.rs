//! Fuzz target: the stored-record decoder (and the properties and batch-body parsers it feeds)
//! must never panic, never read past the input, and a record that decodes with a good CRC as
//! V1 with IPv4 hosts must re-encode to exactly its own bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringmq_proto::message::{BatchIter, DecodedRecord, Magic, PropertiesIter};

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = DecodedRecord::decode(data) {
        assert!(d.total_size <= data.len());
        for (k, v) in PropertiesIter::new(d.record.properties) {
            assert!(!k.is_empty() && !v.is_empty());
        }
        let v4_hosts = d.record.sys_flag & 0x30 == 0;
        // Ports are stored as ints; only values that fit a u16 survive a round trip.
        let ports_fit = data[52..54] == [0, 0] && data[68..70] == [0, 0];
        if d.magic == Magic::V1 && v4_hosts && ports_fit && d.verify_body_crc().is_ok() {
            let mut out = vec![0u8; d.total_size];
            let n = d.record.encode(&mut out).expect("a decoded V1 record re-encodes");
            assert_eq!(&out[..n], &data[..d.total_size]);
        }
    }
    for item in BatchIter::new(data) {
        if let Ok(item) = item {
            assert!(item.encoded_len() <= data.len());
        }
    }
});
