//! The broker's topic table: system topics, auto-creation, admin changes, persistence.
//!
//! Owned by the metadata shard. Every change bumps the data version, is written to
//! `<store root>/config/topics.json` (RocketMQ's `TopicConfigSerializeWrapper` JSON) and then
//! published to the other shards as a read copy and re-registered with the name servers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ringmq_proto::body::{perm, DataVersion, JsonBody, TopicConfig, TopicConfigSerializeWrapper};

use crate::config::BrokerConfig;
use crate::persist;

/// The auto-create template topic (reference Appendix A).
pub const AUTO_CREATE_TOPIC_KEY: &str = "TBW102";
pub const SELF_TEST_TOPIC: &str = "SELF_TEST_TOPIC";
pub const OFFSET_MOVED_EVENT: &str = "OFFSET_MOVED_EVENT";
pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";
pub const TRANS_HALF_TOPIC: &str = "RMQ_SYS_TRANS_HALF_TOPIC";
pub const TRANS_OP_HALF_TOPIC: &str = "RMQ_SYS_TRANS_OP_HALF_TOPIC";
pub const TRANS_CHECK_MAX_TIME_TOPIC: &str = "TRANS_CHECK_MAX_TIME_TOPIC";
pub const RETRY_GROUP_TOPIC_PREFIX: &str = "%RETRY%";
pub const DLQ_GROUP_TOPIC_PREFIX: &str = "%DLQ%";

/// Topics clients may not send to (reference §2.3 step 1).
pub const NOT_ALLOWED_SEND_TOPICS: &[&str] = &[
    SCHEDULE_TOPIC,
    TRANS_HALF_TOPIC,
    TRANS_OP_HALF_TOPIC,
    TRANS_CHECK_MAX_TIME_TOPIC,
    SELF_TEST_TOPIC,
    OFFSET_MOVED_EVENT,
];

/// Longest topic name: the stored record's topic length is one byte and ringmq always writes
/// V1 records, which Go and ali-ons need (reference §3.1), so retry/DLQ names are capped at 127
/// too, unlike Java 5.x's 255.
pub const TOPIC_NAME_MAX_BYTES: usize = 127;

pub fn retry_topic(group: &str) -> String {
    format!("{RETRY_GROUP_TOPIC_PREFIX}{group}")
}

pub fn dlq_topic(group: &str) -> String {
    format!("{DLQ_GROUP_TOPIC_PREFIX}{group}")
}

/// Why a topic name is refused; the text is the remark clients see.
pub fn validate_topic_name(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("The specified topic is blank.".to_string());
    }
    if topic.len() > TOPIC_NAME_MAX_BYTES {
        return Err(format!(
            "The specified topic is longer than topic max length {TOPIC_NAME_MAX_BYTES}."
        ));
    }
    if let Some(bad) = topic
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '%' | '|' | '_' | '-')))
    {
        return Err(format!(
            "The specified topic[{topic}] contains illegal character {bad:?}, allowing only ^[%|a-zA-Z0-9_-]+$"
        ));
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum TopicTableError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a topic table: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

pub struct TopicTable {
    table: BTreeMap<String, TopicConfig>,
    data_version: DataVersion,
    path: PathBuf,
    auto_create_topic_enable: bool,
}

impl TopicTable {
    /// Loads `<root>/config/topics.json` if present, then adds the system topics that are
    /// missing (without overwriting admin changes to them).
    pub fn load(root: &Path, config: &BrokerConfig) -> Result<TopicTable, TopicTableError> {
        let path = root.join("config").join("topics.json");
        let io_err = |source| TopicTableError::Io {
            path: path.clone(),
            source,
        };
        let wrapper = match persist::read_optional(&path).map_err(io_err)? {
            Some(bytes) => TopicConfigSerializeWrapper::from_json(&bytes).map_err(|e| {
                TopicTableError::Corrupt {
                    path: path.clone(),
                    reason: e.to_string(),
                }
            })?,
            None => TopicConfigSerializeWrapper::default(),
        };
        let mut topics = TopicTable {
            table: wrapper.topic_config_table,
            data_version: wrapper.data_version,
            path,
            auto_create_topic_enable: config.auto_create_topic_enable,
        };
        topics.add_system_topics(config);
        topics.persist()?;
        Ok(topics)
    }

    fn add_system_topics(&mut self, config: &BrokerConfig) {
        let queues = config.default_topic_queue_nums as i32;
        let mut system = vec![
            TopicConfig::new(SELF_TEST_TOPIC, 1),
            TopicConfig::new(OFFSET_MOVED_EVENT, 1),
        ];
        if config.auto_create_topic_enable {
            let mut template = TopicConfig::new(AUTO_CREATE_TOPIC_KEY, queues);
            template.perm = perm::INHERIT | perm::READ | perm::WRITE;
            system.push(template);
        }
        // Java: a topic named after the cluster and one after the broker, so admin tools can
        // address them; readable/writable only when enabled.
        let mut cluster = TopicConfig::new(config.broker_cluster_name.clone(), 16);
        cluster.perm = perm::INHERIT
            | if config.cluster_topic_enable {
                perm::READ | perm::WRITE
            } else {
                0
            };
        system.push(cluster);
        let mut broker = TopicConfig::new(config.broker_name.clone(), 1);
        broker.perm = perm::INHERIT
            | if config.broker_topic_enable {
                perm::READ | perm::WRITE
            } else {
                0
            };
        system.push(broker);
        for topic in system {
            if !self.table.contains_key(&topic.topic_name) {
                self.table.insert(topic.topic_name.clone(), topic);
            }
        }
    }

    pub fn get(&self, topic: &str) -> Option<&TopicConfig> {
        self.table.get(topic)
    }

    /// The whole table as the name server and GET_ALL_TOPIC_CONFIG want it.
    pub fn wrapper(&self) -> TopicConfigSerializeWrapper {
        TopicConfigSerializeWrapper {
            data_version: self.data_version.clone(),
            topic_config_table: self.table.clone(),
        }
    }

    pub fn snapshot(&self) -> BTreeMap<String, TopicConfig> {
        self.table.clone()
    }

    /// Auto-creation on send (reference §2.3 step 2): from `default_topic` if its perm has the
    /// INHERIT bit; queues = min(requested, template's write queues); perm = template's without
    /// INHERIT. A requested count ≤ 0 takes the template's count (Java would create a topic
    /// with no queue, which no send can use). `None` when the template does not allow it.
    pub fn create_on_send(
        &mut self,
        topic: &str,
        default_topic: &str,
        requested_queue_nums: i32,
    ) -> Result<Option<TopicConfig>, TopicTableError> {
        if let Some(existing) = self.table.get(topic) {
            return Ok(Some(existing.clone()));
        }
        let Some(template) = self.table.get(default_topic) else {
            return Ok(None);
        };
        let mut template_perm = template.perm;
        if default_topic == AUTO_CREATE_TOPIC_KEY && !self.auto_create_topic_enable {
            template_perm = perm::READ | perm::WRITE;
        }
        if template_perm & perm::INHERIT == 0 {
            return Ok(None);
        }
        let queues = if requested_queue_nums > 0 {
            requested_queue_nums.min(template.write_queue_nums)
        } else {
            template.write_queue_nums
        };
        let mut created = TopicConfig::new(topic, queues);
        created.perm = template_perm & !perm::INHERIT;
        created.topic_sys_flag = template.topic_sys_flag;
        created.topic_filter_type = template.topic_filter_type.clone();
        self.put(created.clone())?;
        Ok(Some(created))
    }

    /// `%RETRY%<group>` (the group's `retryQueueNums` queues) / `%DLQ%<group>` (one queue),
    /// read + write (reference §2.6, §2.7; Java's `createTopicInSendMessageBackMethod`).
    /// Returns the config and whether it was created now.
    pub fn ensure_group_topic(
        &mut self,
        topic: &str,
        queues: i32,
    ) -> Result<(TopicConfig, bool), TopicTableError> {
        if let Some(existing) = self.table.get(topic) {
            return Ok((existing.clone(), false));
        }
        let created = TopicConfig::new(topic, queues);
        self.put(created.clone())?;
        Ok((created, true))
    }

    /// UPDATE_AND_CREATE_TOPIC: replaces the topic's config. Returns whether anything changed.
    pub fn update_or_create(&mut self, config: TopicConfig) -> Result<bool, TopicTableError> {
        if self.table.get(&config.topic_name) == Some(&config) {
            return Ok(false);
        }
        self.put(config)?;
        Ok(true)
    }

    /// DELETE_TOPIC_IN_BROKER. Returns whether the topic existed.
    pub fn delete(&mut self, topic: &str) -> Result<bool, TopicTableError> {
        if self.table.remove(topic).is_none() {
            return Ok(false);
        }
        self.bump_version();
        self.persist()?;
        Ok(true)
    }

    /// A slave takes its master's table whole when the master's data version differs (Java's
    /// `SlaveSynchronize.syncTopicConfig`). Returns whether anything changed.
    pub fn replace_from_master(
        &mut self,
        master: TopicConfigSerializeWrapper,
    ) -> Result<bool, TopicTableError> {
        if master.data_version == self.data_version {
            return Ok(false);
        }
        self.table = master.topic_config_table;
        self.data_version = master.data_version;
        self.persist()?;
        Ok(true)
    }

    /// Marks the table changed without changing a topic: a broker permission change alters what
    /// is announced, and name servers only re-read topics whose data version moved.
    pub fn touch(&mut self) -> Result<(), TopicTableError> {
        self.bump_version();
        self.persist()
    }

    fn put(&mut self, config: TopicConfig) -> Result<(), TopicTableError> {
        self.table.insert(config.topic_name.clone(), config);
        self.bump_version();
        self.persist()
    }

    fn bump_version(&mut self) {
        self.data_version.counter += 1;
        self.data_version.timestamp = now_ms();
    }

    fn persist(&self) -> Result<(), TopicTableError> {
        persist::write_file_atomically(&self.path, self.wrapper().to_json().as_bytes()).map_err(
            |source| TopicTableError::Io {
                path: self.path.clone(),
                source,
            },
        )
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(dir: &Path, auto_create: bool) -> TopicTable {
        let config = BrokerConfig {
            auto_create_topic_enable: auto_create,
            ..BrokerConfig::default()
        };
        TopicTable::load(dir, &config).unwrap()
    }

    #[test]
    fn system_topics_and_template() {
        let dir = tempfile::tempdir().unwrap();
        let topics = table(dir.path(), true);
        let template = topics.get(AUTO_CREATE_TOPIC_KEY).unwrap();
        assert_eq!(template.perm, 7);
        assert_eq!(template.write_queue_nums, 8);
        assert!(topics.get(SELF_TEST_TOPIC).is_some());
        assert!(topics.get("DefaultCluster").is_some());
        assert!(topics.get("broker-a").is_some());
        let without = tempfile::tempdir().unwrap();
        assert!(table(without.path(), false)
            .get(AUTO_CREATE_TOPIC_KEY)
            .is_none());
    }

    #[test]
    fn create_on_send_follows_the_template() {
        let dir = tempfile::tempdir().unwrap();
        let mut topics = table(dir.path(), true);
        let created = topics
            .create_on_send("T1", AUTO_CREATE_TOPIC_KEY, 4)
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                created.read_queue_nums,
                created.write_queue_nums,
                created.perm
            ),
            (4, 4, 6)
        );
        let capped = topics
            .create_on_send("T2", AUTO_CREATE_TOPIC_KEY, 100)
            .unwrap()
            .unwrap();
        assert_eq!(capped.write_queue_nums, 8);
        let zero = topics
            .create_on_send("T3", AUTO_CREATE_TOPIC_KEY, 0)
            .unwrap()
            .unwrap();
        assert_eq!(zero.write_queue_nums, 8);
        // A template without INHERIT, or no template: no topic.
        assert!(topics.create_on_send("T4", "T1", 4).unwrap().is_none());
        assert!(topics
            .create_on_send("T5", "NoSuchTemplate", 4)
            .unwrap()
            .is_none());
        assert!(topics.get("T4").is_none());
    }

    #[test]
    fn changes_persist_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let version_before;
        {
            let mut topics = table(dir.path(), true);
            version_before = topics.wrapper().data_version.counter;
            topics
                .create_on_send("Kept", AUTO_CREATE_TOPIC_KEY, 2)
                .unwrap();
            topics.ensure_group_topic(&retry_topic("g1"), 1).unwrap();
            topics
                .create_on_send("Gone", AUTO_CREATE_TOPIC_KEY, 2)
                .unwrap();
            assert!(topics.delete("Gone").unwrap());
            assert!(!topics.delete("Gone").unwrap());
            let mut admin = TopicConfig::new(AUTO_CREATE_TOPIC_KEY, 3);
            admin.perm = 7;
            assert!(topics.update_or_create(admin.clone()).unwrap());
            assert!(!topics.update_or_create(admin).unwrap());
        }
        let topics = table(dir.path(), true);
        assert_eq!(topics.get("Kept").unwrap().write_queue_nums, 2);
        assert_eq!(topics.get("%RETRY%g1").unwrap().write_queue_nums, 1);
        assert!(topics.get("Gone").is_none());
        // The admin change to the template survives; system topics do not overwrite it.
        assert_eq!(
            topics.get(AUTO_CREATE_TOPIC_KEY).unwrap().write_queue_nums,
            3
        );
        assert!(topics.wrapper().data_version.counter > version_before);
    }

    #[test]
    fn corrupt_file_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        std::fs::write(dir.path().join("config/topics.json"), "{not json").unwrap();
        let err = TopicTable::load(dir.path(), &BrokerConfig::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("topics.json"), "{err}");
    }

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("Topic_A-1%|x").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("bad topic").is_err());
        assert!(validate_topic_name("bad/topic").is_err());
        assert!(validate_topic_name(&"t".repeat(127)).is_ok());
        assert!(validate_topic_name(&"t".repeat(128)).is_err());
        assert!(validate_topic_name("é").is_err());
    }
}
