//! Golden tests for client bodies (reference §2.6, §2.8), written by hand from the reference.

use ringmq_proto::body::{
    CheckClientConfigBody, ConsumeFromWhere, ConsumeType, ConsumerData, ConsumerListBody,
    ExpressionType, HeartbeatData, JsonBody, LockBatchRequestBody, LockBatchResponseBody,
    MessageModel, MessageQueue, ProducerData, SubscriptionData,
};

/// The §2.6 Java heartbeat, compact (fastjson: sorted keys, no blanks).
const HEARTBEAT_JSON: &str = concat!(
    r#"{"clientID":"10.0.0.5@12345#9186713520123","consumerDataSet":[{"consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","#,
    r#""consumeType":"CONSUME_PASSIVELY","groupName":"cg1","messageModel":"CLUSTERING","subscriptionDataSet":["#,
    r#"{"classFilterMode":false,"codeSet":[2598919,2598920],"expressionType":"TAG","subString":"TagA || TagB","#,
    r#""subVersion":1700000000000,"tagsSet":["TagA","TagB"],"topic":"T1"},"#,
    r#"{"classFilterMode":false,"codeSet":[],"expressionType":"TAG","subString":"*","subVersion":1700000000001,"#,
    r#""tagsSet":[],"topic":"%RETRY%cg1"}],"unitMode":false}],"#,
    r#""heartbeatFingerprint":0,"producerDataSet":[{"groupName":"CLIENT_INNER_PRODUCER"}],"withoutSub":false}"#
);

fn example_heartbeat() -> HeartbeatData {
    HeartbeatData {
        client_id: "10.0.0.5@12345#9186713520123".to_owned(),
        consumer_data_set: vec![ConsumerData {
            consume_from_where: ConsumeFromWhere::ConsumeFromLastOffset,
            consume_type: ConsumeType::ConsumePassively,
            group_name: "cg1".to_owned(),
            message_model: MessageModel::Clustering,
            subscription_data_set: vec![
                SubscriptionData {
                    class_filter_mode: false,
                    code_set: vec![2598919, 2598920],
                    expression_type: ExpressionType::Tag,
                    sub_string: "TagA || TagB".to_owned(),
                    sub_version: 1_700_000_000_000,
                    tags_set: vec!["TagA".to_owned(), "TagB".to_owned()],
                    topic: "T1".to_owned(),
                },
                SubscriptionData {
                    class_filter_mode: false,
                    code_set: vec![],
                    expression_type: ExpressionType::Tag,
                    sub_string: "*".to_owned(),
                    sub_version: 1_700_000_000_001,
                    tags_set: vec![],
                    topic: "%RETRY%cg1".to_owned(),
                },
            ],
            unit_mode: false,
        }],
        heartbeat_fingerprint: 0,
        producer_data_set: vec![ProducerData {
            group_name: "CLIENT_INNER_PRODUCER".to_owned(),
        }],
        without_sub: false,
    }
}

#[test]
fn heartbeat_decodes_the_reference_example() {
    assert_eq!(
        HeartbeatData::from_json(HEARTBEAT_JSON.as_bytes()).unwrap(),
        example_heartbeat()
    );
}

#[test]
fn heartbeat_encodes_exactly_as_fastjson_does() {
    assert_eq!(example_heartbeat().to_json(), HEARTBEAT_JSON);
}

#[test]
fn missing_expression_type_means_tag_and_absent_fields_default() {
    let heartbeat = HeartbeatData::from_json(
        br#"{"clientID":"c","consumerDataSet":[{"groupName":"g","subscriptionDataSet":[{"topic":"T","subString":"*"}]}]}"#,
    )
    .unwrap();
    let consumer = &heartbeat.consumer_data_set[0];
    assert_eq!(consumer.message_model, MessageModel::Clustering);
    assert_eq!(consumer.consume_type, ConsumeType::ConsumePassively);
    let subscription = &consumer.subscription_data_set[0];
    assert_eq!(subscription.expression_type, ExpressionType::Tag);
    assert!(subscription.tags_set.is_empty());
    assert!(heartbeat.producer_data_set.is_empty());
}

#[test]
fn unknown_enum_names_are_kept_and_written_back() {
    let text = br#"{"consumeFromWhere":"CONSUME_FROM_SOMEWHERE_NEW","consumeType":"CONSUME_LATER","groupName":"g","messageModel":"CLUSTERING","subscriptionDataSet":[{"expressionType":"JSONPATH","topic":"T"}],"unitMode":false}"#;
    let consumer = ConsumerData::from_json(text).unwrap();
    assert_eq!(
        consumer.consume_from_where,
        ConsumeFromWhere::Other("CONSUME_FROM_SOMEWHERE_NEW".to_owned())
    );
    assert_eq!(
        consumer.consume_type,
        ConsumeType::Other("CONSUME_LATER".to_owned())
    );
    assert_eq!(
        consumer.subscription_data_set[0].expression_type,
        ExpressionType::Other("JSONPATH".to_owned())
    );
    let again = ConsumerData::from_json(consumer.to_json().as_bytes()).unwrap();
    assert_eq!(again, consumer);
}

#[test]
fn enum_ordinals_and_nulls_are_accepted() {
    // fastjson reads enums by ordinal too; Go writes null for empty slices.
    let consumer = ConsumerData::from_json(
        br#"{"consumeFromWhere":4,"consumeType":0,"messageModel":0,"subscriptionDataSet":[{"codeSet":null,"tagsSet":null,"expressionType":null,"topic":"T"}]}"#,
    )
    .unwrap();
    assert_eq!(
        consumer.consume_from_where,
        ConsumeFromWhere::ConsumeFromFirstOffset
    );
    assert_eq!(consumer.consume_type, ConsumeType::ConsumeActively);
    assert_eq!(consumer.message_model, MessageModel::Broadcasting);
    assert_eq!(
        consumer.subscription_data_set[0].expression_type,
        ExpressionType::Tag
    );
    assert!(ConsumerData::from_json(br#"{"messageModel":[1]}"#).is_err());
}

#[test]
fn consumer_list_golden() {
    let body = ConsumerListBody {
        consumer_id_list: vec!["10.0.0.5@1".to_owned(), "10.0.0.6@2".to_owned()],
    };
    let json = r#"{"consumerIdList":["10.0.0.5@1","10.0.0.6@2"]}"#;
    assert_eq!(body.to_json(), json);
    assert_eq!(ConsumerListBody::from_json(json.as_bytes()).unwrap(), body);
}

#[test]
fn lock_batch_bodies_golden() {
    let queue = MessageQueue {
        broker_name: "broker-a".to_owned(),
        queue_id: 0,
        topic: "T1".to_owned(),
    };
    let request = LockBatchRequestBody {
        client_id: "10.0.0.5@1".to_owned(),
        consumer_group: "cg1".to_owned(),
        mq_set: vec![queue.clone()],
        only_this_broker: false,
    };
    let json = r#"{"clientId":"10.0.0.5@1","consumerGroup":"cg1","mqSet":[{"brokerName":"broker-a","queueId":0,"topic":"T1"}],"onlyThisBroker":false}"#;
    assert_eq!(request.to_json(), json);
    assert_eq!(
        LockBatchRequestBody::from_json(json.as_bytes()).unwrap(),
        request
    );

    let response = LockBatchResponseBody {
        lock_ok_mq_set: vec![queue],
    };
    let json = r#"{"lockOKMQSet":[{"brokerName":"broker-a","queueId":0,"topic":"T1"}]}"#;
    assert_eq!(response.to_json(), json);
    assert_eq!(
        LockBatchResponseBody::from_json(json.as_bytes()).unwrap(),
        response
    );
}

#[test]
fn check_client_config_golden() {
    let json = r#"{"clientId":"c1","group":"g1","subscriptionData":{"classFilterMode":false,"codeSet":[],"expressionType":"SQL92","subString":"a > 5","subVersion":1,"tagsSet":[],"topic":"T1"}}"#;
    let body = CheckClientConfigBody::from_json(json.as_bytes()).unwrap();
    assert_eq!(body.group, "g1");
    assert_eq!(
        body.subscription_data.expression_type,
        ExpressionType::Sql92
    );
    assert_eq!(body.subscription_data.sub_string, "a > 5");
    assert_eq!(body.to_json(), json);
}

#[test]
fn control_characters_and_unicode_round_trip() {
    let mut heartbeat = example_heartbeat();
    heartbeat.client_id = "h\u{1}\u{2}\"\\é😀".to_owned();
    let json = heartbeat.to_json();
    assert!(json.contains(r#"h\u0001\u0002\"\\"#), "{json}");
    assert_eq!(
        HeartbeatData::from_json(json.as_bytes()).unwrap(),
        heartbeat
    );
    let escaped = br#"{"clientID":"\u0001\ud83d\ude00"}"#;
    assert_eq!(
        HeartbeatData::from_json(escaped).unwrap().client_id,
        "\u{1}😀"
    );
}
