//! `plain_acl.yml`, RocketMQ 4.x's format, parsed into an immutable [`AclConfig`].
//!
//! ```yaml
//! globalWhiteRemoteAddresses: [10.10.103.*]
//! accounts:
//!   - accessKey: RocketMQ
//!     secretKey: 12345678
//!     whiteRemoteAddress:
//!     admin: false
//!     defaultTopicPerm: DENY
//!     defaultGroupPerm: SUB
//!     topicPerms: [topicA=DENY, topicB=PUB|SUB]
//!     groupPerms: [groupA=DENY, groupB=SUB]
//! ```
//!
//! Scalars are read as text whatever YAML makes of them (`secretKey: 12345678` is a number to
//! YAML and a string to Java's loader). A group permission is stored under the group's name; a
//! topic permission on a retry topic (`%RETRY%g=SUB`) lands on group `g`, as it does in Java
//! where both live in one map keyed by topic and retry topic.

use std::collections::HashMap;

use serde_yaml::Value;

use super::address::AddrPattern;
use super::perm::parse_perm;
use super::{AclError, RETRY_GROUP_TOPIC_PREFIX};

/// Java refuses keys of this many characters or fewer (`AclConstants.ACCESS_KEY_MIN_LENGTH`).
pub const ACCESS_KEY_MIN_LENGTH: usize = 6;
/// Java refuses secrets of this many characters or fewer (`AclConstants.SECRET_KEY_MIN_LENGTH`).
pub const SECRET_KEY_MIN_LENGTH: usize = 6;

/// One account of the file.
#[derive(Debug, Clone)]
pub struct Account {
    pub access_key: String,
    pub secret_key: String,
    /// Requests from a matching address pass without a signature.
    pub white_remote_address: AddrPattern,
    pub admin: bool,
    pub default_topic_perm: u8,
    pub default_group_perm: u8,
    pub topic_perms: HashMap<String, u8>,
    pub group_perms: HashMap<String, u8>,
}

/// Everything the file says, ready for lookups. Shards share one snapshot through an `Arc`.
#[derive(Debug, Clone, Default)]
pub struct AclConfig {
    pub global_white_remote_addresses: Vec<AddrPattern>,
    pub accounts: HashMap<String, Account>,
}

/// A YAML scalar as Java's loader would turn it into a string.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn field<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !v.is_null())
}

fn text_list(map: &Value, key: &str) -> Result<Vec<String>, AclError> {
    match field(map, key) {
        None => Ok(Vec::new()),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|i| scalar_text(i).ok_or_else(|| AclError::Format(format!("{key}: {i:?}"))))
            .collect(),
        Some(other) => Err(AclError::Format(format!("{key} is not a list: {other:?}"))),
    }
}

/// `name=PERM` entries; Java refuses anything that does not split in two on `=`.
fn parse_resource_perms(entries: &[String], kind: &str) -> Result<Vec<(String, u8)>, AclError> {
    entries
        .iter()
        .map(|entry| {
            let parts: Vec<&str> = entry.split('=').filter(|p| !p.is_empty()).collect();
            match parts.as_slice() {
                [name, perm] => Ok((name.trim().to_string(), parse_perm(Some(perm)))),
                _ => Err(AclError::Format(format!(
                    "Parse resource permission failed for {kind}:{entry}"
                ))),
            }
        })
        .collect()
}

impl Account {
    fn from_yaml(value: &Value) -> Result<Account, AclError> {
        let text = |key: &str| field(value, key).and_then(scalar_text);
        let access_key = text("accessKey").unwrap_or_default();
        let secret_key = text("secretKey").unwrap_or_default();
        if access_key.chars().count() <= ACCESS_KEY_MIN_LENGTH
            || secret_key.chars().count() <= SECRET_KEY_MIN_LENGTH
        {
            // Java's message names the secret; ours does not, so the log never shows it.
            return Err(AclError::Format(format!(
                "The accessKey={access_key} and secretKey cannot be null and length should \
                 longer than 6"
            )));
        }
        let mut account = Account {
            white_remote_address: AddrPattern::parse(
                &text("whiteRemoteAddress").unwrap_or_default(),
            )?,
            admin: text("admin").is_some_and(|a| a.trim().eq_ignore_ascii_case("true")),
            default_topic_perm: parse_perm(text("defaultTopicPerm").as_deref()),
            default_group_perm: parse_perm(text("defaultGroupPerm").as_deref()),
            topic_perms: HashMap::new(),
            group_perms: HashMap::new(),
            access_key,
            secret_key,
        };
        for (group, perm) in parse_resource_perms(&text_list(value, "groupPerms")?, "group")? {
            account.group_perms.insert(group, perm);
        }
        for (topic, perm) in parse_resource_perms(&text_list(value, "topicPerms")?, "topic")? {
            match topic.strip_prefix(RETRY_GROUP_TOPIC_PREFIX) {
                Some(group) => account.group_perms.insert(group.to_string(), perm),
                None => account.topic_perms.insert(topic, perm),
            };
        }
        Ok(account)
    }
}

impl AclConfig {
    /// Parses the text of a plain_acl.yml. An empty file is an empty configuration (Java
    /// skips it with a warning): nobody but a whitelisted address gets in.
    pub fn parse(text: &str) -> Result<AclConfig, AclError> {
        let root: Value =
            serde_yaml::from_str(text).map_err(|e| AclError::Format(e.to_string()))?;
        let mut config = AclConfig::default();
        if root.is_null() {
            return Ok(config);
        }
        for pattern in text_list(&root, "globalWhiteRemoteAddresses")? {
            config
                .global_white_remote_addresses
                .push(AddrPattern::parse(&pattern)?);
        }
        match field(&root, "accounts") {
            None => {}
            Some(Value::Sequence(accounts)) => {
                for value in accounts {
                    let account = Account::from_yaml(value)?;
                    config.accounts.insert(account.access_key.clone(), account);
                }
            }
            Some(other) => {
                return Err(AclError::Format(format!(
                    "accounts is not a list: {other:?}"
                )))
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::perm::{DENY, PUB, SUB};

    /// RocketMQ 4.9's distribution/conf/plain_acl.yml, comments removed.
    pub(crate) const ROCKETMQ_SAMPLE: &str = "
globalWhiteRemoteAddresses:
  - 10.10.103.*
  - 192.168.0.*

accounts:
  - accessKey: RocketMQ
    secretKey: 12345678
    whiteRemoteAddress:
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - topicA=DENY
      - topicB=PUB|SUB
      - topicC=SUB
    groupPerms:
      - groupA=DENY
      - groupB=PUB|SUB
      - groupC=SUB

  - accessKey: rocketmq2
    secretKey: 12345678
    whiteRemoteAddress: 192.168.1.*
    admin: true
";

    #[test]
    fn rocketmq_sample_file_loads() {
        let config = AclConfig::parse(ROCKETMQ_SAMPLE).unwrap();
        assert_eq!(config.global_white_remote_addresses.len(), 2);
        let a = &config.accounts["RocketMQ"];
        assert_eq!(a.secret_key, "12345678");
        assert!(!a.admin);
        assert_eq!(a.white_remote_address, AddrPattern::Nothing);
        assert_eq!(a.default_topic_perm, DENY);
        assert_eq!(a.default_group_perm, SUB);
        assert_eq!(a.topic_perms["topicA"], DENY);
        assert_eq!(a.topic_perms["topicB"], PUB | SUB);
        assert_eq!(a.group_perms["groupC"], SUB);
        let b = &config.accounts["rocketmq2"];
        assert!(b.admin);
        assert_eq!(b.default_topic_perm, DENY);
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        assert!(AclConfig::parse("accounts: [ {accessKey: short, secretKey: 12345678} ]").is_err());
        assert!(AclConfig::parse(
            "accounts: [ {accessKey: longenough, secretKey: 12345678, topicPerms: [a=b=c]} ]"
        )
        .is_err());
        assert!(AclConfig::parse("globalWhiteRemoteAddresses: [ 999.1.1.1 ]").is_err());
        assert!(AclConfig::parse("accounts: {").is_err());
        assert!(AclConfig::parse("").unwrap().accounts.is_empty());
    }

    #[test]
    fn retry_topic_permissions_land_on_the_group() {
        let config = AclConfig::parse(
            "accounts: [ {accessKey: longenough, secretKey: 12345678, topicPerms: ['%RETRY%g1=SUB']} ]",
        )
        .unwrap();
        assert_eq!(config.accounts["longenough"].group_perms["g1"], SUB);
    }
}
