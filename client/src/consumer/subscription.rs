//! Subscriptions: TAG (`TagA || TagB` / `*`) and SQL92 property selectors; the heartbeat's
//! SubscriptionData, and the exact client-side re-filter of tags (brokers filter tags by 32-bit
//! hash, so collisions get through). SQL92 is evaluated by the broker only (as in Java): the
//! client passes what the broker sends.

use std::collections::BTreeSet;

use ringmq_proto::body::{ExpressionType, SubscriptionData};
use ringmq_proto::message::tag_hash;

use crate::error::ClientError;
use crate::message::MessageExt;

/// Matches every tag (and messages without one).
pub const SUBSCRIBE_ALL: &str = "*";

/// How messages are selected, as Java's `MessageSelector`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageSelector {
    /// `*`, or tags separated by `||`.
    Tag(String),
    /// A SQL92 expression over message properties (`a > 5 AND TAGS = 'TagA'`); the broker
    /// must run with `enablePropertyFilter=true`.
    Sql92(String),
}

impl MessageSelector {
    pub fn by_tag(expression: impl Into<String>) -> MessageSelector {
        MessageSelector::Tag(expression.into())
    }

    pub fn by_sql(expression: impl Into<String>) -> MessageSelector {
        MessageSelector::Sql92(expression.into())
    }
}

/// One topic's subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub topic: String,
    /// The expression as given (`*`, `A || B`, or SQL92); sent in heartbeats and pulls.
    pub expression: String,
    pub expression_type: ExpressionType,
    /// TAG only: empty means "all".
    pub tags: BTreeSet<String>,
    /// Subscription version (creation time in ms), as Java's `subVersion`.
    pub version: i64,
}

/// The name this type had when only tags were supported.
pub type TagSubscription = Subscription;

impl Subscription {
    /// A subscription by `selector`.
    pub fn new(topic: &str, selector: &MessageSelector, version: i64) -> Result<Self, ClientError> {
        match selector {
            MessageSelector::Tag(expression) => Subscription::parse(topic, expression, version),
            MessageSelector::Sql92(expression) => Subscription::sql92(topic, expression, version),
        }
    }

    /// A SQL92 subscription. The broker compiles it (and CHECK_CLIENT_CONFIG reports its
    /// verdict at start); here only an empty expression is refused.
    pub fn sql92(topic: &str, expression: &str, version: i64) -> Result<Self, ClientError> {
        if expression.trim().is_empty() {
            return Err(ClientError::Config(format!(
                "SQL92 subscription for {topic} is empty"
            )));
        }
        Ok(Subscription {
            topic: topic.to_string(),
            expression: expression.to_string(),
            expression_type: ExpressionType::Sql92,
            tags: BTreeSet::new(),
            version,
        })
    }

    pub fn is_sql92(&self) -> bool {
        self.expression_type == ExpressionType::Sql92
    }

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
        Ok(Subscription {
            topic: topic.to_string(),
            expression_type: ExpressionType::Tag,
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

    /// Exact match of a received message's TAGS against the subscribed tag strings (SQL92:
    /// the broker already filtered).
    pub fn matches(&self, message: &MessageExt) -> bool {
        if self.subscribes_all() || self.is_sql92() {
            return true;
        }
        message.tags().is_some_and(|tag| self.tags.contains(tag))
    }

    /// The heartbeat form: tags and their Java `String.hashCode` codes.
    pub fn to_subscription_data(&self) -> SubscriptionData {
        SubscriptionData {
            class_filter_mode: false,
            code_set: self.tags.iter().map(|t| tag_hash(t) as i32).collect(),
            expression_type: self.expression_type.clone(),
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
    fn sql92_subscriptions_pass_everything_the_broker_sends() {
        let sub = Subscription::new("T", &MessageSelector::by_sql("a > 1"), 3).unwrap();
        let data = sub.to_subscription_data();
        assert_eq!(data.expression_type, ExpressionType::Sql92);
        assert_eq!(data.sub_string, "a > 1");
        assert!(data.code_set.is_empty() && data.tags_set.is_empty());
        assert!(Subscription::sql92("T", "  ", 1).is_err());
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
