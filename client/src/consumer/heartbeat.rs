//! The push consumer's HEART_BEAT body, as a Java push consumer builds it (reference §2.6).

use ringmq_proto::body::{
    ConsumeFromWhere, ConsumeType, ConsumerData, HeartbeatData, MessageModel as WireModel,
    ProducerData,
};

use super::push::{ConsumeFrom, MessageModel, PushConsumerConfig};
use super::subscription::TagSubscription;
use crate::producer::CLIENT_INNER_PRODUCER_GROUP;

/// One consumer group with its subscriptions, plus the `CLIENT_INNER_PRODUCER` group every
/// Java client instance registers.
pub(crate) fn consumer_heartbeat<'a>(
    client_id: &str,
    config: &PushConsumerConfig,
    subscriptions: impl Iterator<Item = &'a TagSubscription>,
) -> HeartbeatData {
    let consumer = ConsumerData {
        consume_from_where: match config.consume_from {
            ConsumeFrom::LastOffset => ConsumeFromWhere::ConsumeFromLastOffset,
            ConsumeFrom::FirstOffset => ConsumeFromWhere::ConsumeFromFirstOffset,
            ConsumeFrom::Timestamp(_) => ConsumeFromWhere::ConsumeFromTimestamp,
        },
        consume_type: ConsumeType::ConsumePassively,
        group_name: config.group.clone(),
        message_model: match config.message_model {
            MessageModel::Clustering => WireModel::Clustering,
            MessageModel::Broadcasting => WireModel::Broadcasting,
        },
        subscription_data_set: subscriptions
            .map(TagSubscription::to_subscription_data)
            .collect(),
        unit_mode: false,
    };
    HeartbeatData {
        client_id: client_id.to_string(),
        consumer_data_set: vec![consumer],
        producer_data_set: vec![ProducerData {
            group_name: CLIENT_INNER_PRODUCER_GROUP.to_string(),
        }],
        ..HeartbeatData::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ClientConfig;
    use ringmq_proto::body::JsonBody;
    use serde_json::Value;

    /// The Java 5.x heartbeat of reference §2.6, byte for byte once the two subscriptions are in
    /// the same order (Java's set order is a hash order; brokers do not care).
    const JAVA_HEARTBEAT: &str = concat!(
        r#"{"clientID":"10.0.0.5@12345#9186713520123","consumerDataSet":[{"consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","#,
        r#""consumeType":"CONSUME_PASSIVELY","groupName":"cg1","messageModel":"CLUSTERING","subscriptionDataSet":["#,
        r#"{"classFilterMode":false,"codeSet":[],"expressionType":"TAG","subString":"*","subVersion":1700000000001,"#,
        r#""tagsSet":[],"topic":"%RETRY%cg1"},"#,
        r#"{"classFilterMode":false,"codeSet":[2598919,2598920],"expressionType":"TAG","subString":"TagA || TagB","#,
        r#""subVersion":1700000000000,"tagsSet":["TagA","TagB"],"topic":"T1"}],"unitMode":false}],"#,
        r#""heartbeatFingerprint":0,"producerDataSet":[{"groupName":"CLIENT_INNER_PRODUCER"}],"withoutSub":false}"#
    );

    #[test]
    fn matches_the_java_push_consumer_heartbeat() {
        let config = PushConsumerConfig::new(ClientConfig::new("127.0.0.1:9876").unwrap(), "cg1");
        let subscriptions = [
            TagSubscription::parse("%RETRY%cg1", "*", 1_700_000_000_001).unwrap(),
            TagSubscription::parse("T1", "TagA || TagB", 1_700_000_000_000).unwrap(),
        ];
        let data = consumer_heartbeat(
            "10.0.0.5@12345#9186713520123",
            &config,
            subscriptions.iter(),
        );
        assert_eq!(data.to_json(), JAVA_HEARTBEAT);
        // And it is the same JSON value as Java's, whatever the formatting.
        let ours: Value = serde_json::from_str(&data.to_json()).unwrap();
        let java: Value = serde_json::from_str(JAVA_HEARTBEAT).unwrap();
        assert_eq!(ours, java);
    }
}
