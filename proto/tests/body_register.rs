//! REGISTER_BROKER bodies: plain JSON (golden) and the compressed form of reference §2.11.

use std::io::Write;

use flate2::write::ZlibEncoder;
use flate2::Compression;
use ringmq_proto::body::{
    BodyError, DataVersion, JsonBody, RegisterBrokerBody, TopicConfig, TopicConfigSerializeWrapper,
    TopicFilterType,
};

fn body_with_topics(count: usize) -> RegisterBrokerBody {
    let mut wrapper = TopicConfigSerializeWrapper {
        data_version: DataVersion {
            counter: 7,
            state_version: 0,
            timestamp: 1_700_000_000_123,
        },
        ..TopicConfigSerializeWrapper::default()
    };
    for i in 0..count {
        let mut config = TopicConfig::new(format!("Topic-{i}"), 4);
        config.perm = 6;
        wrapper
            .topic_config_table
            .insert(config.topic_name.clone(), config);
    }
    RegisterBrokerBody {
        filter_server_list: vec![],
        topic_config_serialize_wrapper: wrapper,
    }
}

fn be(value: i32) -> [u8; 4] {
    value.to_be_bytes()
}

fn part(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&be(text.len() as i32));
    out.extend_from_slice(text.as_bytes());
}

fn deflate(plain: &[u8]) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(plain).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn plain_body_golden() {
    let expected = concat!(
        r#"{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":{"counter":7,"stateVersion":0,"#,
        r#""timestamp":1700000000123},"topicConfigTable":{"Topic-0":{"attributes":{},"order":false,"perm":6,"#,
        r#""readQueueNums":4,"topicFilterType":"SINGLE_TAG","topicName":"Topic-0","topicSysFlag":0,"writeQueueNums":4}}}}"#
    );
    let body = body_with_topics(1);
    assert_eq!(body.to_json(), expected);
    assert_eq!(
        RegisterBrokerBody::decode(expected.as_bytes(), false).unwrap(),
        body
    );
}

#[test]
fn plain_body_from_a_java_5_broker_with_extra_fields() {
    let java = concat!(
        r#"{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":{"counter":2,"stateVersion":0,"timestamp":5},"#,
        r#""mappingDataVersion":{"counter":0,"stateVersion":0,"timestamp":1},"topicConfigTable":{"TBW102":{"attributes":{},"#,
        r#""order":false,"perm":7,"readQueueNums":8,"topicFilterType":"SINGLE_TAG","topicName":"TBW102","topicSysFlag":0,"#,
        r#""writeQueueNums":8}},"topicQueueMappingDetailMap":{},"topicQueueMappingInfoMap":{}}}"#
    );
    let body = RegisterBrokerBody::decode(java.as_bytes(), false).unwrap();
    let wrapper = &body.topic_config_serialize_wrapper;
    assert_eq!(wrapper.data_version.counter, 2);
    assert_eq!(wrapper.topic_config_table["TBW102"].perm, 7);
    assert_eq!(wrapper.topic_config_table["TBW102"].read_queue_nums, 8);
}

#[test]
fn plain_body_without_data_version_does_not_fail() {
    let body = RegisterBrokerBody::decode(br#"{"topicConfigSerializeWrapper":{}}"#, false).unwrap();
    assert_eq!(
        body.topic_config_serialize_wrapper.data_version,
        DataVersion::default()
    );
    let body = RegisterBrokerBody::decode(b"{}", false).unwrap();
    assert!(body
        .topic_config_serialize_wrapper
        .topic_config_table
        .is_empty());
}

#[test]
fn compressed_body_built_by_hand_decodes() {
    // The inflated layout of §2.11, as a 4.x broker writes it (no mapping section).
    let mut plain = Vec::new();
    part(
        &mut plain,
        r#"{"counter":3,"stateVersion":0,"timestamp":99}"#,
    );
    plain.extend_from_slice(&be(2));
    part(&mut plain, "T1 4 4 6 SINGLE_TAG {}");
    part(
        &mut plain,
        r#"T2 8 2 7 MULTI_TAG {"+message.type":"NORMAL"}"#,
    );
    part(&mut plain, r#"["127.0.0.1:40001"]"#);
    let body = RegisterBrokerBody::decode(&deflate(&plain), true).unwrap();

    let wrapper = &body.topic_config_serialize_wrapper;
    assert_eq!(wrapper.data_version.counter, 3);
    assert_eq!(wrapper.data_version.timestamp, 99);
    let t2 = &wrapper.topic_config_table["T2"];
    assert_eq!(
        (t2.read_queue_nums, t2.write_queue_nums, t2.perm),
        (8, 2, 7)
    );
    assert_eq!(t2.topic_filter_type, TopicFilterType::MultiTag);
    assert_eq!(t2.attributes["+message.type"], "NORMAL");
    assert_eq!(wrapper.topic_config_table["T1"].perm, 6);
    assert_eq!(body.filter_server_list, vec!["127.0.0.1:40001".to_owned()]);
}

#[test]
fn compressed_body_with_5x_mapping_section_decodes() {
    let mut plain = Vec::new();
    part(
        &mut plain,
        r#"{"counter":1,"stateVersion":0,"timestamp":1}"#,
    );
    plain.extend_from_slice(&be(1));
    part(&mut plain, "T1 1 1 6 SINGLE_TAG {}");
    part(&mut plain, "[]");
    plain.extend_from_slice(&be(1));
    part(
        &mut plain,
        r#"{"bname":"b","currIdMap":{-1:"x"},"epoch":0,"topic":"T1","totalQueues":1}"#,
    );
    let body = RegisterBrokerBody::decode(&deflate(&plain), true).unwrap();
    assert_eq!(
        body.topic_config_serialize_wrapper.topic_config_table.len(),
        1
    );
}

#[test]
fn compressed_round_trip_of_a_large_table_spanning_many_deflate_blocks() {
    let body = body_with_topics(5000);
    let compressed = body.encode(true);
    assert!(
        compressed.len() > 1000,
        "large enough to need several reads"
    );
    let decoded = RegisterBrokerBody::decode(&compressed, true).unwrap();
    // The compressed form carries no order / topicSysFlag: they decode as defaults, as in Java.
    assert_eq!(decoded, body);
}

#[test]
fn compressed_stream_with_flush_points_is_read_to_the_end() {
    let mut plain = Vec::new();
    part(
        &mut plain,
        r#"{"counter":1,"stateVersion":0,"timestamp":1}"#,
    );
    plain.extend_from_slice(&be(300));
    for i in 0..300 {
        part(&mut plain, &format!("Flushy-{i} 2 2 6 SINGLE_TAG {{}}"));
    }
    part(&mut plain, "[]");
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::fast());
    for chunk in plain.chunks(97) {
        encoder.write_all(chunk).unwrap();
        encoder.flush().unwrap(); // sync-flush markers between every chunk
    }
    let body = RegisterBrokerBody::decode(&encoder.finish().unwrap(), true).unwrap();
    assert_eq!(
        body.topic_config_serialize_wrapper.topic_config_table.len(),
        300
    );
}

#[test]
fn bad_compressed_bodies_are_typed_errors() {
    // Not zlib at all.
    assert!(matches!(
        RegisterBrokerBody::decode(b"{\"plain\":true}", true),
        Err(BodyError::Inflate(_))
    ));
    // Truncated zlib stream.
    let full = body_with_topics(3).encode(true);
    assert!(matches!(
        RegisterBrokerBody::decode(&full[..full.len() / 2], true),
        Err(BodyError::Inflate(_))
    ));
    // Valid zlib, inflated parts cut short.
    let mut plain = Vec::new();
    part(&mut plain, r#"{"counter":1}"#);
    plain.extend_from_slice(&be(2));
    part(&mut plain, "T1 1 1 6 SINGLE_TAG {}");
    assert!(matches!(
        RegisterBrokerBody::decode(&deflate(&plain), true),
        Err(BodyError::Truncated { .. })
    ));
    // Negative length.
    let mut plain = be(-5).to_vec();
    plain.extend_from_slice(b"xxxx");
    assert!(matches!(
        RegisterBrokerBody::decode(&deflate(&plain), true),
        Err(BodyError::NegativeLength { .. })
    ));
    // A bad topic line.
    let mut plain = Vec::new();
    part(&mut plain, "{}");
    plain.extend_from_slice(&be(1));
    part(&mut plain, "T1 one 1 6");
    assert!(matches!(
        RegisterBrokerBody::decode(&deflate(&plain), true),
        Err(BodyError::TopicConfigLine { .. })
    ));
    // Empty input.
    assert!(RegisterBrokerBody::decode(b"", true).is_err());
}

#[test]
fn plain_and_compressed_encodings_agree() {
    let body = body_with_topics(20);
    let from_plain = RegisterBrokerBody::decode(&body.encode(false), false).unwrap();
    let from_compressed = RegisterBrokerBody::decode(&body.encode(true), true).unwrap();
    assert_eq!(from_plain, from_compressed);
    assert_eq!(from_plain, body);
}
