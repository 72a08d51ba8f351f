//! The subscription-group table (Java's `SubscriptionGroupManager`): admin changes (200, 207),
//! the listing (201), auto-creation on heartbeat and pull when `autoCreateSubscriptionGroup` is
//! on, and persistence in `<store root>/config/subscriptionGroup.json`
//! (`SubscriptionGroupWrapper` JSON).
//!
//! Owned by the metadata shard; every change bumps the data version, is written atomically and
//! then published in the `BrokerView`, where hot paths (send-back: `retryMaxTimes`,
//! `retryQueueNums`; pull: `consumeEnable`, `consumeBroadcastEnable`, `brokerId`) read it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ringmq_proto::body::{
    DataVersion, JsonBody, SubscriptionGroupConfig, SubscriptionGroupWrapper,
};

use crate::persist;

/// File name under `<store root>/config/`.
pub const GROUPS_FILE: &str = "subscriptionGroup.json";

/// Groups Java creates at start (`SubscriptionGroupManager.init`); the first two with
/// broadcast consumption off, as Java does for the tools and filter-server groups.
const SYSTEM_GROUPS: &[(&str, bool)] = &[
    ("TOOLS_CONSUMER", false),
    ("FILTERSRV_CONSUMER", false),
    ("SELF_TEST_C_GROUP", true),
    ("CID_ONS-HTTP-PROXY", true),
    ("CID_ONSAPI_PULL", true),
    ("CID_ONSAPI_PERMISSION", true),
    ("CID_ONSAPI_OWNER", true),
    ("CID_RMQ_SYS_TRANS", true),
];

/// Why the group table could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum GroupTableError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: ringmq_proto::body::BodyError,
    },
}

/// See the module documentation.
#[derive(Debug)]
pub struct GroupTable {
    path: PathBuf,
    table: BTreeMap<String, SubscriptionGroupConfig>,
    data_version: DataVersion,
    auto_create: bool,
}

impl GroupTable {
    /// Loads `<config dir>/subscriptionGroup.json` (absent: Java's system groups only).
    pub fn load(config_dir: &Path, auto_create: bool) -> Result<GroupTable, GroupTableError> {
        let path = config_dir.join(GROUPS_FILE);
        let bytes = persist::read_optional(&path).map_err(|source| GroupTableError::Io {
            path: path.clone(),
            source,
        })?;
        let wrapper = match bytes {
            Some(bytes) => SubscriptionGroupWrapper::from_json(&bytes).map_err(|source| {
                GroupTableError::Parse {
                    path: path.clone(),
                    source,
                }
            })?,
            None => SubscriptionGroupWrapper::default(),
        };
        let mut table = wrapper.subscription_group_table;
        for (name, broadcast) in SYSTEM_GROUPS {
            table
                .entry(name.to_string())
                .or_insert_with(|| SubscriptionGroupConfig {
                    consume_broadcast_enable: *broadcast,
                    ..SubscriptionGroupConfig::new(*name)
                });
        }
        Ok(GroupTable {
            path,
            table,
            data_version: wrapper.data_version,
            auto_create,
        })
    }

    pub fn get(&self, group: &str) -> Option<&SubscriptionGroupConfig> {
        self.table.get(group)
    }

    /// The read copy published to every shard.
    pub fn snapshot(&self) -> BTreeMap<String, SubscriptionGroupConfig> {
        self.table.clone()
    }

    /// GET_ALL_SUBSCRIPTIONGROUP_CONFIG's body.
    pub fn wrapper(&self) -> SubscriptionGroupWrapper {
        SubscriptionGroupWrapper {
            data_version: self.data_version.clone(),
            subscription_group_table: self.table.clone(),
        }
    }

    /// UPDATE_AND_CREATE_SUBSCRIPTIONGROUP: replaces or adds the group.
    pub fn upsert(&mut self, config: SubscriptionGroupConfig) -> Result<(), GroupTableError> {
        self.table.insert(config.group_name.clone(), config);
        self.changed()
    }

    /// DELETE_SUBSCRIPTIONGROUP; `false` if there was no such group.
    pub fn delete(&mut self, group: &str) -> Result<bool, GroupTableError> {
        if self.table.remove(group).is_none() {
            return Ok(false);
        }
        self.changed()?;
        Ok(true)
    }

    /// A slave's metadata sync: the master's table replaces this one when the data versions
    /// differ (Java's `syncSubscriptionGroupConfig`); `Ok(true)` if it did.
    pub fn replace_from_master(
        &mut self,
        master: SubscriptionGroupWrapper,
    ) -> Result<bool, GroupTableError> {
        if master.data_version == self.data_version {
            return Ok(false);
        }
        self.table = master.subscription_group_table;
        self.data_version = master.data_version;
        self.persist()?;
        Ok(true)
    }

    /// The group's config, created with Java's defaults when auto-creation is on (Java's
    /// `findSubscriptionGroupConfig`); `Ok(None)` when absent and auto-creation is off.
    /// The second value says whether the table changed (publish a new view then).
    pub fn find_or_create(
        &mut self,
        group: &str,
    ) -> Result<(Option<SubscriptionGroupConfig>, bool), GroupTableError> {
        if let Some(c) = self.table.get(group) {
            return Ok((Some(c.clone()), false));
        }
        if !self.auto_create || group.is_empty() {
            return Ok((None, false));
        }
        let config = SubscriptionGroupConfig::new(group);
        self.upsert(config.clone())?;
        tracing::info!(group, "auto-created subscription group");
        Ok((Some(config), true))
    }

    fn changed(&mut self) -> Result<(), GroupTableError> {
        self.data_version.counter += 1;
        self.data_version.timestamp = super::topics::now_ms();
        self.persist()
    }

    fn persist(&self) -> Result<(), GroupTableError> {
        persist::write_file_atomically(&self.path, self.wrapper().to_json().as_bytes()).map_err(
            |source| GroupTableError::Io {
                path: self.path.clone(),
                source,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persists_changes_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = GroupTable::load(dir.path(), true).unwrap();
        assert!(t
            .get("TOOLS_CONSUMER")
            .is_some_and(|g| !g.consume_broadcast_enable));
        let (g, created) = t.find_or_create("G1").unwrap();
        assert!(created);
        assert_eq!(g.unwrap().retry_max_times, 16);
        t.upsert(SubscriptionGroupConfig {
            retry_max_times: 1,
            ..SubscriptionGroupConfig::new("G2")
        })
        .unwrap();
        assert!(t.delete("G1").unwrap());
        assert!(!t.delete("G1").unwrap());
        let again = GroupTable::load(dir.path(), false).unwrap();
        assert_eq!(again.get("G2").unwrap().retry_max_times, 1);
        assert!(again.get("G1").is_none());
        assert_eq!(again.wrapper().data_version, t.wrapper().data_version);
    }

    #[test]
    fn a_masters_table_replaces_this_one_when_its_version_differs() {
        let dir = tempfile::tempdir().unwrap();
        let mut slave = GroupTable::load(dir.path(), true).unwrap();
        // Two changes here against the master's one: the versions differ by their counters even
        // when both tables are changed within the same millisecond (their timestamps tie).
        slave.find_or_create("slave-only").unwrap();
        slave.find_or_create("slave-only-2").unwrap();
        let master_dir = tempfile::tempdir().unwrap();
        let mut master = GroupTable::load(master_dir.path(), true).unwrap();
        master
            .upsert(SubscriptionGroupConfig {
                retry_max_times: 3,
                ..SubscriptionGroupConfig::new("G")
            })
            .unwrap();
        assert!(slave.replace_from_master(master.wrapper()).unwrap());
        assert!(!slave.replace_from_master(master.wrapper()).unwrap());
        assert_eq!(slave.get("G").unwrap().retry_max_times, 3);
        assert!(slave.get("slave-only").is_none());
        assert!(slave.get("slave-only-2").is_none());
        // Persisted: a restarted slave starts from the copy.
        let again = GroupTable::load(dir.path(), true).unwrap();
        assert_eq!(again.wrapper(), master.wrapper());
    }

    #[test]
    fn no_auto_create_when_off() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = GroupTable::load(dir.path(), false).unwrap();
        assert_eq!(t.find_or_create("G").unwrap(), (None, false));
    }

    #[test]
    fn a_corrupt_file_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(GROUPS_FILE), b"{not json").unwrap();
        let e = GroupTable::load(dir.path(), true).unwrap_err();
        assert!(e.to_string().contains(GROUPS_FILE));
    }
}
