//! TAG subscriptions: parsing `TagA || TagB` / `*`, the heartbeat's SubscriptionData, and the
//! exact client-side re-filter (brokers filter by 32-bit hash, so collisions get through).

use std::collections::BTreeSet;

use ringmq_proto::body::{ExpressionType, SubscriptionData};
use ringmq_proto::message::tag_hash;

use crate::error::ClientError;
use crate::message::MessageExt;

/// Matches every tag (and messages without one).
pub const SUBSCRIBE_ALL: &str = "*";

/// One topic's TAG subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSubscription {
    pub topic: String,
    /// The expression as given (`*` or `A || B`); sent in heartbeats and pulls.
    pub expression: String,
    /// Empty means "all".
    pub tags: BTreeSet<String>,
    /// Subscription version (creation time in ms), as Java's `subVersion`.
    pub version: i64,
}

impl TagSubscription {
    /// Parses `expression` as Java's `FilterAPI.build` does: empty or `*` means all; otherwise
    /// tags separated by `||`, trimmed, empty pieces dropped.
    pub fn parse(topic: &str, expression: &str, version: i64) -> Result<Self, ClientError> {
        let trimmed = expression.trim();
        let mut tags = BTreeSet::new();
        if !(trimmed.is_empty() || trimmed == SUBSCRIBE_ALL) {
            for tag in trimmed.split("||").map(str::trim).filter(|t| !t.is_empty()) {
                tags.insert(tag.to_string());
            }
            if tags.is_empty() {
                return Err(ClientError::Config(format!(
                    "subscription {expression:?} for {topic} names no tag"
                )));
            }
        }
        Ok(TagSubscription {
            topic: topic.to_string(),
            expression: if tags.is_empty() {
                SUBSCRIBE_ALL.to_string()
            } else {
                trimmed.to_string()
            },
            tags,
            version,
        })
    }

    pub fn subscribes_all(&self) -> bool {
        self.tags.is_empty()
    }

    /// Exact match of a received message's TAGS against the subscribed tag strings.
    pub fn matches(&self, message: &MessageExt) -> bool {
        if self.subscribes_all() {
            return true;
        }
        message.tags().is_some_and(|tag| self.tags.contains(tag))
    }

    /// The heartbeat form: tags and their Java `String.hashCode` codes.
    pub fn to_subscription_data(&self) -> SubscriptionData {
        SubscriptionData {
            class_filter_mode: false,
            code_set: self.tags.iter().map(|t| tag_hash(t) as i32).collect(),
            expression_type: ExpressionType::Tag,
            sub_string: self.expression.clone(),
            sub_version: self.version,
            tags_set: self.tags.iter().cloned().collect(),
            topic: self.topic.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_star_and_tag_lists() {
        let all = TagSubscription::parse("T", " * ", 1).unwrap();
        assert!(all.subscribes_all());
        assert_eq!(all.expression, "*");
        let empty = TagSubscription::parse("T", "", 1).unwrap();
        assert!(empty.subscribes_all());
        let two = TagSubscription::parse("T", "TagA || TagB||", 1).unwrap();
        assert_eq!(two.tags.iter().collect::<Vec<_>>(), ["TagA", "TagB"]);
        assert!(TagSubscription::parse("T", "||", 1).is_err());
    }

    #[test]
    fn heartbeat_codes_are_java_string_hashes() {
        let sub = TagSubscription::parse("T", "TagA || TagB", 7).unwrap();
        let data = sub.to_subscription_data();
        assert_eq!(data.code_set, [2_598_919, 2_598_920]);
        assert_eq!(data.tags_set, ["TagA", "TagB"]);
        assert_eq!(data.sub_string, "TagA || TagB");
        assert_eq!(data.sub_version, 7);
        assert_eq!(data.expression_type, ExpressionType::Tag);
    }
}
