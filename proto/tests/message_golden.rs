//! Golden-byte tests for the stored record, batch body and ids. Every expected byte below is
//! written out by hand from reference §3–4 (CRC and hash values were computed with Python's
//! `zlib.crc32` and a hand-written Java `hashCode`, not with the code under test).

use std::net::{Ipv6Addr, SocketAddr};

use ringmq_proto::message::{
    decode_offset_msg_id, encode_offset_msg_id, find_property, peek_header, sysflag, tag_hash,
    BatchItem, BatchIter, DecodedRecord, Magic, PropertiesIter, Record, RecordError,
    UniqKeyGenerator, MAGIC_BLANK,
};

fn sample_record() -> Record<'static> {
    Record {
        queue_id: 3,
        flag: 7,
        queue_offset: 5,
        physical_offset: 0x0001_0000_0000_0100,
        sys_flag: 0,
        born_timestamp: 0x0000_018B_CFE5_6800,
        born_host: "10.0.0.1:54321".parse().unwrap(),
        store_timestamp: 0x0000_018B_CFE5_6810,
        store_host: "127.0.0.1:10911".parse().unwrap(),
        reconsume_times: 1,
        prepared_transaction_offset: 0,
        body: b"hi",
        topic: b"T",
        properties: b"TAGS\x01TagA\x02",
    }
}

#[rustfmt::skip]
const SAMPLE_BYTES: [u8; 104] = [
    0x00, 0x00, 0x00, 0x68,                         // TOTALSIZE 104
    0xDA, 0xA3, 0x20, 0xA7,                         // MAGICCODE V1
    0x58, 0x93, 0x2A, 0xAC,                         // BODYCRC crc32("hi") & 0x7FFFFFFF
    0x00, 0x00, 0x00, 0x03,                         // QUEUEID
    0x00, 0x00, 0x00, 0x07,                         // FLAG
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, // QUEUEOFFSET
    0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, // PHYSICALOFFSET
    0x00, 0x00, 0x00, 0x00,                         // SYSFLAG
    0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0x68, 0x00, // BORNTIMESTAMP
    0x0A, 0x00, 0x00, 0x01, 0x00, 0x00, 0xD4, 0x31, // BORNHOST 10.0.0.1:54321
    0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0x68, 0x10, // STORETIMESTAMP
    0x7F, 0x00, 0x00, 0x01, 0x00, 0x00, 0x2A, 0x9F, // STOREHOST 127.0.0.1:10911
    0x00, 0x00, 0x00, 0x01,                         // RECONSUMETIMES
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // PREPARED TRANSACTION OFFSET
    0x00, 0x00, 0x00, 0x02, b'h', b'i',             // BODYLEN + BODY
    0x01, b'T',                                     // TOPICLEN + TOPIC
    0x00, 0x0A, b'T', b'A', b'G', b'S', 0x01, b'T', b'a', b'g', b'A', 0x02, // PROPLEN + PROPS
];

#[test]
fn encode_matches_hand_written_bytes() {
    let rec = sample_record();
    assert_eq!(rec.encoded_len().unwrap(), 104);
    let mut out = [0u8; 120];
    let n = rec.encode(&mut out).unwrap();
    assert_eq!(n, 104);
    assert_eq!(&out[..n], &SAMPLE_BYTES[..]);
}

#[test]
fn decode_hand_written_bytes() {
    let d = DecodedRecord::decode(&SAMPLE_BYTES).unwrap();
    assert_eq!(d.total_size, 104);
    assert_eq!(d.magic, Magic::V1);
    assert_eq!(d.body_crc, 0x5893_2AAC);
    assert_eq!(d.record, sample_record());
    d.verify_body_crc().unwrap();
    assert_eq!(peek_header(&SAMPLE_BYTES).unwrap(), (104, 0xDAA3_20A7));
}

#[test]
fn decode_v2_with_ipv6_hosts() {
    let mut b: Vec<u8> = Vec::new();
    b.extend_from_slice(&[0x00, 0x00, 0x00, 0x75]); // 117 = 91 + 12 + 12 + 1 (V2) + 1 (topic)
    b.extend_from_slice(&[0xDA, 0xA3, 0x20, 0xAB]); // V2
    b.extend_from_slice(&[0x00, 0x00, 0x00, 0x00]); // crc32("") = 0
    b.extend_from_slice(&[0x00, 0x00, 0x00, 0x01]); // queue id 1
    b.extend_from_slice(&[0x00, 0x00, 0x00, 0x00]); // flag
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 9]); // queue offset 9
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x10, 0]); // physical offset 4096
    b.extend_from_slice(&[0x00, 0x00, 0x00, 0x30]); // both hosts IPv6
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]); // born ts
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5]); // [::1]:5
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 2]); // store ts
    b.extend_from_slice(&[
        0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0x2A, 0x9F,
    ]);
    b.extend_from_slice(&[0, 0, 0, 0]); // reconsume
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]); // prepared offset
    b.extend_from_slice(&[0, 0, 0, 0]); // body len 0
    b.extend_from_slice(&[0x00, 0x01, b'Z']); // V2: 2-byte topic length
    b.extend_from_slice(&[0x00, 0x00]); // no properties
    assert_eq!(b.len(), 117);
    let d = DecodedRecord::decode(&b).unwrap();
    assert_eq!(d.magic, Magic::V2);
    assert_eq!(d.record.topic, b"Z");
    assert_eq!(d.record.queue_offset, 9);
    assert_eq!(d.record.physical_offset, 4096);
    assert_eq!(
        d.record.born_host,
        SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 5)
    );
    assert_eq!(
        d.record.store_host,
        "[fe80::1]:10911".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(d.record.store_timestamp, 2);
    d.verify_body_crc().unwrap();
}

#[test]
fn decode_rejects_corruption() {
    let mut bad = SAMPLE_BYTES;
    bad[5] = 0xA4;
    assert!(matches!(
        DecodedRecord::decode(&bad),
        Err(RecordError::BadMagic(_))
    ));

    assert!(matches!(
        DecodedRecord::decode(&SAMPLE_BYTES[..100]),
        Err(RecordError::Truncated {
            need: 104,
            have: 100
        })
    ));

    let mut bad = SAMPLE_BYTES;
    bad[3] = 0x69; // TOTALSIZE one larger than the fields
    let mut longer = bad.to_vec();
    longer.push(0);
    assert!(matches!(
        DecodedRecord::decode(&longer),
        Err(RecordError::Inconsistent { .. })
    ));

    let mut bad = SAMPLE_BYTES;
    bad[88] ^= 0xFF; // flip a body byte
    let d = DecodedRecord::decode(&bad).unwrap();
    assert!(matches!(
        d.verify_body_crc(),
        Err(RecordError::BodyCrcMismatch { .. })
    ));

    let mut bad = SAMPLE_BYTES;
    bad[0..4].copy_from_slice(&[0, 0, 0, 10]);
    assert!(matches!(
        DecodedRecord::decode(&bad),
        Err(RecordError::BadTotalSize(10))
    ));
}

#[test]
fn encode_rejects_what_v1_cannot_carry() {
    let long_topic = [b'a'; 128];
    let mut r = sample_record();
    r.topic = &long_topic;
    assert_eq!(r.encoded_len(), Err(RecordError::TopicTooLong(128)));

    let big_props = vec![b'x'; 32_768];
    let mut r = sample_record();
    r.properties = &big_props;
    assert_eq!(r.encoded_len(), Err(RecordError::PropertiesTooLong(32_768)));

    let mut r = sample_record();
    r.store_host = "[::1]:1".parse().unwrap();
    assert!(matches!(r.encoded_len(), Err(RecordError::Ipv6Host(_))));

    let mut small = [0u8; 50];
    assert_eq!(
        sample_record().encode(&mut small),
        Err(RecordError::BufferTooSmall {
            need: 104,
            have: 50
        })
    );
}

#[test]
fn blank_magic_is_not_a_record() {
    let blank = [0x00, 0x00, 0x10, 0x00, 0xCB, 0xD4, 0x31, 0x94];
    assert_eq!(peek_header(&blank).unwrap(), (4096, MAGIC_BLANK));
    assert!(matches!(
        DecodedRecord::decode(&blank),
        Err(RecordError::BadMagic(0xCBD4_3194))
    ));
}

#[test]
fn properties_parse_follows_java_rules() {
    let parsed: Vec<_> =
        PropertiesIter::new(b"a\x01b\x02\x01x\x02c\x01\x02ab\x02k\x01v1\x01v2\x02z\x01y").collect();
    assert_eq!(
        parsed,
        vec![
            (&b"a"[..], &b"b"[..]),
            (&b"k"[..], &b"v1\x01v2"[..]),
            (&b"z"[..], &b"y"[..]),
        ]
    );
    assert_eq!(
        find_property(b"K\x01one\x02K\x01two\x02", "K"),
        Some(&b"two"[..])
    );
    assert_eq!(find_property(b"TAGS\x01TagA\x02", "KEYS"), None);
    assert_eq!(PropertiesIter::new(b"").count(), 0);
    assert_eq!(PropertiesIter::new(b"\x02\x02\x02").count(), 0);
}

#[test]
fn properties_encode_bytes() {
    let mut out = Vec::new();
    let n = ringmq_proto::message::encode_properties([("KEYS", "k1 k2"), ("TAGS", "A")], &mut out);
    assert_eq!(n, 18);
    assert_eq!(out, b"KEYS\x01k1 k2\x02TAGS\x01A\x02");
    assert_eq!(
        ringmq_proto::message::properties_len([("KEYS", "k1 k2"), ("TAGS", "A")]),
        18
    );
}

#[test]
fn batch_item_bytes() {
    #[rustfmt::skip]
    let body: Vec<u8> = vec![
        0x00, 0x00, 0x00, 0x1C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        0, 0, 0, 2, b'a', b'b', 0x00, 0x04, b'K', 0x01, b'V', 0x02,
        0x00, 0x00, 0x00, 0x16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
        0, 0, 0, 0, 0x00, 0x00,
    ];
    let items: Vec<_> = BatchIter::new(&body).collect::<Result<_, _>>().unwrap();
    assert_eq!(
        items,
        vec![
            BatchItem {
                flag: 1,
                body: b"ab",
                properties: b"K\x01V\x02"
            },
            BatchItem {
                flag: 2,
                body: b"",
                properties: b""
            },
        ]
    );
    let mut re = Vec::new();
    for it in &items {
        it.encode(&mut re).unwrap();
    }
    assert_eq!(re, body);

    let mut bad = body.clone();
    bad.truncate(40);
    let res: Vec<_> = BatchIter::new(&bad).collect();
    assert_eq!(res.len(), 2);
    assert!(res[1].is_err());
}

#[test]
fn tag_hash_is_java_string_hashcode() {
    assert_eq!(tag_hash("TagA"), 2_598_919);
    assert_eq!(tag_hash("TagB"), 2_598_920);
    assert_eq!(tag_hash(""), 0);
    // Non-BMP characters hash as two UTF-16 code units (surrogates).
    assert_eq!(tag_hash("日本😀"), 804_253_066);
    assert_eq!(
        tag_hash("a much longer tag value that overflows"),
        146_710_832
    );
}

#[test]
fn offset_msg_id_bytes() {
    let host: SocketAddr = "127.0.0.1:10911".parse().unwrap();
    let id = encode_offset_msg_id(host, 0x0001_0000_0000_0100);
    assert_eq!(id, "7F00000100002A9F0001000000000100");
    let back = decode_offset_msg_id(&id).unwrap();
    assert_eq!(back.store_host, host);
    assert_eq!(back.commit_log_offset, 0x0001_0000_0000_0100);
    assert_eq!(decode_offset_msg_id(&id.to_lowercase()).unwrap(), back);

    let v6: SocketAddr = "[::1]:10911".parse().unwrap();
    let id6 = encode_offset_msg_id(v6, 1);
    assert_eq!(
        id6,
        "0000000000000000000000000000000100002A9F0000000000000001"
    );
    assert_eq!(decode_offset_msg_id(&id6).unwrap().store_host, v6);

    assert!(decode_offset_msg_id("XYZ").is_err());
    assert!(decode_offset_msg_id("G0000000000000000000000000000000").is_err());
}

#[test]
fn uniq_key_layout() {
    let mut g = UniqKeyGenerator::new("192.168.0.1".parse().unwrap(), 0x1_2345, 0x0A0B_0C0D);
    // 2024-02-01T00:00:01.000Z: 1000 ms into the month.
    let a = g.next_id(1_706_745_601_000);
    let b = g.next_id(1_706_745_601_000);
    assert_eq!(a, "C0A8000123450A0B0C0D000003E80000");
    assert_eq!(b, "C0A8000123450A0B0C0D000003E80001");
}

#[test]
fn sysflag_constants() {
    assert_eq!(
        sysflag::transaction_type(0x1 | 0xC),
        sysflag::TRANSACTION_ROLLBACK_TYPE
    );
    assert_eq!(sysflag::COMPRESSION_ZLIB | sysflag::COMPRESSED, 0x301);
    assert_eq!(sysflag::BORNHOST_V6 | sysflag::STOREHOST_V6, 0x30);
}
