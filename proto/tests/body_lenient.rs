//! fastjson's coercions on every body (design §6, issue 12 §1): golden fixtures in
//! `tests/fixtures/lenient/`, one per form (numbers as strings, strings as numbers, booleans as
//! strings, nulls, unknown fields), the exact rocketmq-client-cpp heartbeat, the errors that
//! remain errors, and a property test that rewriting every scalar as a string changes nothing.

use std::collections::BTreeMap;

use proptest::prelude::*;
use ringmq_proto::body::{
    BrokerData, CheckClientConfigBody, ConsumeFromWhere, ConsumeType, ConsumerData, DataVersion,
    ExpressionType, HeartbeatData, JsonBody, LockBatchRequestBody, MessageModel, MessageQueue,
    ProducerData, QueueData, RegisterBrokerBody, SubscriptionData, TopicConfig,
    TopicConfigSerializeWrapper, TopicFilterType, TopicRouteData,
};
use serde_json::Value;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/lenient/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

#[test]
fn cpp_engine_heartbeat_with_string_sub_version_decodes() {
    // jsoncpp's FastWriter: sorted keys, a trailing newline, empty lists and defaults omitted,
    // and `subVersion` written with UtilAll::to_string, i.e. as a JSON string.
    let text = fixture("cpp_heartbeat.json");
    assert!(text.ends_with(b"}\n"));
    let heartbeat = HeartbeatData::from_json(&text).unwrap();
    assert_eq!(heartbeat.client_id, "172.17.0.2@4242#1796604663223");
    assert!(!heartbeat.without_sub);
    let consumer = &heartbeat.consumer_data_set[0];
    assert_eq!(consumer.group_name, "GID_cpp");
    assert_eq!(consumer.message_model, MessageModel::Clustering);
    assert_eq!(consumer.consume_type, ConsumeType::ConsumePassively);
    let subscriptions = &consumer.subscription_data_set;
    assert_eq!(subscriptions.len(), 2);
    assert_eq!(subscriptions[0].topic, "%RETRY%GID_cpp");
    assert!(subscriptions[0].tags_set.is_empty() && subscriptions[0].code_set.is_empty());
    assert_eq!(
        subscriptions[1],
        SubscriptionData {
            class_filter_mode: false,
            code_set: vec![2598919, 2598920],
            expression_type: ExpressionType::Tag,
            sub_string: "TagA || TagB".to_owned(),
            sub_version: 1_796_604_663_223,
            tags_set: vec!["TagA".to_owned(), "TagB".to_owned()],
            topic: "T1".to_owned(),
        }
    );
    assert_eq!(
        heartbeat.producer_data_set,
        vec![ProducerData {
            group_name: "CLIENT_INNER_PRODUCER".to_owned()
        }]
    );
}

#[test]
fn numbers_written_as_strings() {
    let body =
        RegisterBrokerBody::decode(&fixture("numbers_as_strings_register.json"), false).unwrap();
    let wrapper = &body.topic_config_serialize_wrapper;
    assert_eq!(
        wrapper.data_version,
        DataVersion {
            counter: 7,
            state_version: 0,
            timestamp: 1_700_000_000_123
        }
    );
    let mut expected = TopicConfig::new("T1", 4);
    expected.perm = 6;
    assert_eq!(wrapper.topic_config_table["T1"], expected);
}

#[test]
fn strings_written_as_numbers() {
    let heartbeat =
        HeartbeatData::from_json(&fixture("strings_as_numbers_heartbeat.json")).unwrap();
    assert_eq!(heartbeat.client_id, "10017");
    let consumer = &heartbeat.consumer_data_set[0];
    assert_eq!(consumer.group_name, "4242");
    let subscription = &consumer.subscription_data_set[0];
    assert_eq!(subscription.topic, "31415");
    assert_eq!(subscription.sub_string, "7");
    assert_eq!(subscription.tags_set, vec!["7".to_owned()]);
    assert_eq!(subscription.code_set, vec![55]);
    assert_eq!(heartbeat.producer_data_set[0].group_name, "1.5");
}

#[test]
fn booleans_written_as_strings() {
    let lock = LockBatchRequestBody::from_json(&fixture("booleans_as_strings_lock.json")).unwrap();
    assert!(lock.only_this_broker);
    assert_eq!(
        lock.mq_set,
        vec![MessageQueue {
            broker_name: "broker-a".to_owned(),
            queue_id: 3,
            topic: "T1".to_owned()
        }]
    );
    let heartbeat =
        HeartbeatData::from_json(&fixture("booleans_as_strings_heartbeat.json")).unwrap();
    assert!(heartbeat.without_sub);
    let consumer = &heartbeat.consumer_data_set[0];
    assert!(!consumer.unit_mode);
    assert_eq!(
        consumer.consume_from_where,
        ConsumeFromWhere::ConsumeFromFirstOffset
    );
    assert!(!consumer.subscription_data_set[0].class_filter_mode);
    assert_eq!(consumer.subscription_data_set[0].sub_version, 1);
}

#[test]
fn every_boolean_spelling_fastjson_reads() {
    for (text, expected) in [
        ("true", true),
        ("\"true\"", true),
        ("\"TRUE\"", true),
        ("\"1\"", true),
        ("1", true),
        ("\"Y\"", true),
        ("\"T\"", true),
        ("false", false),
        ("\"False\"", false),
        ("\"0\"", false),
        ("0", false),
        ("\"N\"", false),
        ("\"F\"", false),
        ("null", false),
    ] {
        let json = format!(r#"{{"mqSet":[],"onlyThisBroker":{text}}}"#);
        let body = LockBatchRequestBody::from_json(json.as_bytes())
            .unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(body.only_this_broker, expected, "{json}");
    }
}

#[test]
fn nulls_read_as_java_defaults() {
    let config = TopicConfig::from_json(&fixture("nulls_topic_config.json")).unwrap();
    // A null member is an absent member: Java's defaults (16 queues, perm 6), not zeroes.
    assert_eq!(config, TopicConfig::new("T1", 16));
    let heartbeat = HeartbeatData::from_json(&fixture("nulls_heartbeat.json")).unwrap();
    assert_eq!(heartbeat.client_id, "");
    assert!(heartbeat.producer_data_set.is_empty());
    let consumer = &heartbeat.consumer_data_set[0];
    assert_eq!(consumer.consume_type, ConsumeType::ConsumePassively);
    let subscription = &consumer.subscription_data_set[0];
    assert_eq!(subscription.sub_version, 0);
    assert_eq!(subscription.expression_type, ExpressionType::Tag);
    assert!(subscription.tags_set.is_empty());
    // A null list element of a scalar type is that type's default.
    let consumer = ConsumerData::from_json(
        br#"{"subscriptionDataSet":[{"codeSet":[null,"7"],"tagsSet":[null,"a"]}]}"#,
    )
    .unwrap();
    let subscription = &consumer.subscription_data_set[0];
    assert_eq!(subscription.code_set, vec![0, 7]);
    assert_eq!(subscription.tags_set, vec![String::new(), "a".to_owned()]);
    // A null body is an empty body.
    assert_eq!(
        HeartbeatData::from_json(b"null").unwrap(),
        HeartbeatData::default()
    );
}

#[test]
fn unknown_fields_are_ignored_at_every_depth() {
    let heartbeat = HeartbeatData::from_json(&fixture("unknown_fields_heartbeat.json")).unwrap();
    assert_eq!(heartbeat.client_id, "c1");
    let consumer = &heartbeat.consumer_data_set[0];
    assert_eq!(consumer.group_name, "g");
    assert_eq!(consumer.subscription_data_set[0].topic, "T1");
    assert_eq!(heartbeat.producer_data_set[0].group_name, "p");
}

#[test]
fn route_bodies_take_string_ids_and_counts() {
    let route = TopicRouteData::from_json(
        br#"{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911","1":"127.0.0.1:10921"},"brokerName":"b","cluster":"c","enableActingMaster":"false"}],"queueDatas":[{"brokerName":"b","perm":"6","readQueueNums":"8","topicSynFlag":"0","writeQueueNums":8.0}]}"#,
    )
    .unwrap();
    let broker = &route.broker_datas[0];
    assert_eq!(broker.master_addr(), Some("127.0.0.1:10911"));
    assert_eq!(broker.broker_addrs[&1], "127.0.0.1:10921");
    assert_eq!(
        route.queue_datas[0],
        QueueData {
            broker_name: "b".to_owned(),
            perm: 6,
            read_queue_nums: 8,
            topic_sys_flag: 0,
            write_queue_nums: 8,
        }
    );
}

#[test]
fn fractions_truncate_toward_zero_as_fastjson_does() {
    let queue = MessageQueue::from_json(br#"{"queueId":3.9}"#).unwrap();
    assert_eq!(queue.queue_id, 3);
    let queue = MessageQueue::from_json(br#"{"queueId":"-2.5"}"#).unwrap();
    assert_eq!(queue.queue_id, -2);
    let queue = MessageQueue::from_json(br#"{"queueId":"  "}"#).unwrap();
    assert_eq!(queue.queue_id, 0);
}

#[test]
fn what_no_spelling_can_mean_is_still_an_error() {
    for bad in [
        &br#"{"queueId":"three"}"#[..],
        br#"{"queueId":4294967296}"#,
        br#"{"queueId":"1e30"}"#,
        br#"{"queueId":[1]}"#,
        br#"{"queueId":{"a":1}}"#,
        br#"{"topic":"T","queueId":1e300}"#,
    ] {
        let error = MessageQueue::from_json(bad).unwrap_err();
        assert!(
            error.to_string().starts_with("invalid JSON body"),
            "{}: {error}",
            String::from_utf8_lossy(bad)
        );
    }
    assert!(LockBatchRequestBody::from_json(br#"{"onlyThisBroker":"2"}"#).is_err());
    assert!(LockBatchRequestBody::from_json(br#"{"onlyThisBroker":"yes please"}"#).is_err());
    assert!(LockBatchRequestBody::from_json(br#"{"mqSet":"T1"}"#).is_err());
    assert!(HeartbeatData::from_json(b"[1,2]").is_err());
    assert!(HeartbeatData::from_json(b"{\"clientID\":").is_err());
}

#[test]
fn compressed_register_topic_attributes_are_lenient_too() {
    // The attributes JSON inside a compressed topic line goes through the same decoder.
    let mut config = TopicConfig::new("T1", 2);
    config.attributes = BTreeMap::from([("+message.type".to_owned(), "NORMAL".to_owned())]);
    let mut body = RegisterBrokerBody::default();
    body.topic_config_serialize_wrapper
        .topic_config_table
        .insert("T1".to_owned(), config.clone());
    let decoded = RegisterBrokerBody::decode(&body.encode(true), true).unwrap();
    assert_eq!(
        decoded.topic_config_serialize_wrapper.topic_config_table["T1"],
        config
    );
}

/// Rewrites every number and boolean of `value` as a JSON string, at every depth.
fn stringify_scalars(value: Value) -> Value {
    match value {
        Value::Number(number) => Value::String(number.to_string()),
        Value::Bool(flag) => Value::String(flag.to_string()),
        Value::Array(items) => Value::Array(items.into_iter().map(stringify_scalars).collect()),
        Value::Object(members) => Value::Object(
            members
                .into_iter()
                .map(|(key, value)| (key, stringify_scalars(value)))
                .collect(),
        ),
        other => other,
    }
}

/// Encodes `body`, rewrites every scalar as a string, and decodes it back.
fn via_strings<T: JsonBody>(body: &T) -> T {
    let value: Value = serde_json::from_str(&body.to_json()).unwrap();
    T::from_json(stringify_scalars(value).to_string().as_bytes()).unwrap()
}

fn arb_subscription() -> impl Strategy<Value = SubscriptionData> {
    (
        any::<bool>(),
        prop::collection::vec(any::<i32>(), 0..4),
        any::<i64>(),
        prop::collection::vec("[A-Za-z0-9]{1,6}", 0..4),
        "[A-Za-z0-9%_]{1,12}",
    )
        .prop_map(
            |(class_filter_mode, code_set, sub_version, tags_set, topic)| SubscriptionData {
                class_filter_mode,
                code_set,
                expression_type: ExpressionType::Tag,
                sub_string: tags_set.join(" || "),
                sub_version,
                tags_set,
                topic,
            },
        )
}

fn arb_topic_config() -> impl Strategy<Value = TopicConfig> {
    (
        "[A-Za-z0-9_]{1,12}",
        any::<bool>(),
        any::<i32>(),
        any::<i32>(),
        any::<i32>(),
        any::<i32>(),
    )
        .prop_map(|(name, order, perm, read, write, sys_flag)| TopicConfig {
            order,
            perm,
            read_queue_nums: read,
            write_queue_nums: write,
            topic_sys_flag: sys_flag,
            topic_filter_type: TopicFilterType::MultiTag,
            ..TopicConfig::new(name, 1)
        })
}

proptest! {
    #[test]
    fn heartbeat_survives_every_scalar_as_a_string(
        subscriptions in prop::collection::vec(arb_subscription(), 0..4),
        fingerprint in any::<i32>(),
        unit_mode in any::<bool>(),
        without_sub in any::<bool>(),
    ) {
        let heartbeat = HeartbeatData {
            client_id: "10.0.0.1@1".to_owned(),
            consumer_data_set: vec![ConsumerData {
                group_name: "g".to_owned(),
                subscription_data_set: subscriptions,
                unit_mode,
                ..ConsumerData::default()
            }],
            heartbeat_fingerprint: fingerprint,
            producer_data_set: vec![],
            without_sub,
        };
        prop_assert_eq!(via_strings(&heartbeat), heartbeat.clone());
        let check = CheckClientConfigBody {
            client_id: "c".to_owned(),
            group: "g".to_owned(),
            subscription_data: heartbeat.consumer_data_set[0]
                .subscription_data_set
                .first()
                .cloned()
                .unwrap_or_default(),
        };
        prop_assert_eq!(via_strings(&check), check);
    }

    #[test]
    fn topic_tables_survive_every_scalar_as_a_string(
        configs in prop::collection::vec(arb_topic_config(), 0..4),
        counter in any::<i64>(),
        timestamp in any::<i64>(),
        broker_ids in prop::collection::btree_set(any::<i64>(), 0..4),
    ) {
        let wrapper = TopicConfigSerializeWrapper {
            data_version: DataVersion { counter, state_version: 0, timestamp },
            topic_config_table: configs
                .into_iter()
                .map(|config| (config.topic_name.clone(), config))
                .collect(),
        };
        prop_assert_eq!(via_strings(&wrapper), wrapper.clone());
        let body = RegisterBrokerBody {
            filter_server_list: vec!["127.0.0.1:1".to_owned()],
            topic_config_serialize_wrapper: wrapper,
        };
        prop_assert_eq!(via_strings(&body), body);
        let mut broker = BrokerData::new("c", "b");
        broker.broker_addrs = broker_ids.into_iter().map(|id| (id, format!("h:{id}"))).collect();
        prop_assert_eq!(via_strings(&broker), broker);
    }

    #[test]
    fn arbitrary_text_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = HeartbeatData::from_json(&bytes);
        let _ = RegisterBrokerBody::decode(&bytes, false);
        let _ = LockBatchRequestBody::from_json(&bytes);
    }
}
