//! Subscription groups (`SubscriptionGroupConfig`, `SubscriptionGroupWrapper`): the bodies of
//! UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200) and GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201), and the
//! broker's `subscriptionGroup.json` (decoded as leniently as every body, see `decode_lenient`). Java's `groupRetryPolicy` and `subscriptionDataSet` are not kept.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::topic::DataVersion;

/// One consumer group's configuration on one broker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SubscriptionGroupConfig {
    pub attributes: BTreeMap<String, String>,
    pub broker_id: i64,
    pub consume_broadcast_enable: bool,
    pub consume_enable: bool,
    pub consume_from_min_enable: bool,
    pub consume_message_orderly: bool,
    pub consume_timeout_minute: i64,
    pub group_name: String,
    pub group_sys_flag: i32,
    pub notify_consumer_ids_changed_enable: bool,
    pub retry_max_times: i32,
    pub retry_queue_nums: i32,
    pub which_broker_when_consume_slowly: i64,
}

impl Default for SubscriptionGroupConfig {
    /// Java's defaults.
    fn default() -> Self {
        SubscriptionGroupConfig {
            attributes: BTreeMap::new(),
            broker_id: 0,
            consume_broadcast_enable: true,
            consume_enable: true,
            consume_from_min_enable: true,
            consume_message_orderly: false,
            consume_timeout_minute: 15,
            group_name: String::new(),
            group_sys_flag: 0,
            notify_consumer_ids_changed_enable: true,
            retry_max_times: 16,
            retry_queue_nums: 1,
            which_broker_when_consume_slowly: 1,
        }
    }
}

impl SubscriptionGroupConfig {
    /// A group with Java's defaults.
    pub fn new(group_name: impl Into<String>) -> Self {
        SubscriptionGroupConfig {
            group_name: group_name.into(),
            ..Self::default()
        }
    }
}

/// The whole table with its version (`SubscriptionGroupWrapper`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SubscriptionGroupWrapper {
    pub data_version: DataVersion,
    pub subscription_group_table: BTreeMap<String, SubscriptionGroupConfig>,
}

/// GET_ALL_DELAY_OFFSET's body (`delayOffset.json`): delivery progress per delay level.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DelayOffsetBody {
    pub offset_table: BTreeMap<i32, i64>,
    /// ringmq's extension, present only when the request carries
    /// [`SHARD_PROGRESS_FIELD`]`=true` (a ringmq slave's metadata sync): each shard's whole
    /// schedule progress, which a slave keeps per shard. Java's body has no such key, so a
    /// Java tool's answer is Java's exactly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ringmq_shard_progress: Option<Vec<ShardScheduleProgress>>,
}

/// The request ext field that asks GET_ALL_DELAY_OFFSET for [`ShardScheduleProgress`]es.
pub const SHARD_PROGRESS_FIELD: &str = "ringmqShardProgress";

/// One master shard's schedule progress (delay levels and timers), as its progress page holds
/// it (docs/storage-format.md §14), with the log offset it is valid for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ShardScheduleProgress {
    pub shard: u32,
    /// Per delay level (index = level - 1): the next `SCHEDULE_TOPIC_XXXX` offset to deliver.
    pub level_offsets: Vec<u64>,
    pub timer_ingested: u64,
    pub timer_scan_start: u64,
    pub timer_next_due_ms: i64,
    pub timer_next_queue_offset: u64,
    /// The shard's written log end (global offset) when the progress was read: every delivery
    /// the progress counts lies below it.
    pub log_written: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::JsonBody;

    #[test]
    fn java_defaults_and_lenient_values() {
        let c = SubscriptionGroupConfig::from_json(
            br#"{"groupName":"g","retryMaxTimes":"1","consumeEnable":"false","brokerId":null,"groupRetryPolicy":{"type":"CUSTOMIZED"}}"#,
        )
        .unwrap();
        assert_eq!(c.group_name, "g");
        assert_eq!(c.retry_max_times, 1);
        assert!(!c.consume_enable);
        assert_eq!(c.retry_queue_nums, 1);
        assert!(c.consume_broadcast_enable);
        assert!(SubscriptionGroupConfig::from_json(br#"{"retryMaxTimes":"x"}"#).is_err());
    }

    #[test]
    fn wrapper_round_trips_with_sorted_keys() {
        let mut w = SubscriptionGroupWrapper::default();
        w.subscription_group_table
            .insert("g".into(), SubscriptionGroupConfig::new("g"));
        let json = w.to_json();
        assert!(json.starts_with(r#"{"dataVersion":{"#), "{json}");
        assert!(
            json.contains(r#""retryMaxTimes":16,"retryQueueNums":1"#),
            "{json}"
        );
        assert_eq!(
            SubscriptionGroupWrapper::from_json(json.as_bytes()).unwrap(),
            w
        );
        let d = DelayOffsetBody::from_json(br#"{"offsetTable":{1:5,3:0}}"#).unwrap();
        assert_eq!(d.offset_table.get(&1), Some(&5));
        assert_eq!(d.to_json(), r#"{"offsetTable":{"1":5,"3":0}}"#);
        let mut with_shards = d.clone();
        with_shards.ringmq_shard_progress = Some(vec![ShardScheduleProgress {
            shard: 1,
            level_offsets: vec![5, 0, 0],
            timer_next_due_ms: -1,
            log_written: 1 << 48 | 4096,
            ..ShardScheduleProgress::default()
        }]);
        let json = with_shards.to_json();
        assert!(
            json.contains(r#""ringmqShardProgress":[{"shard":1,"#),
            "{json}"
        );
        assert_eq!(
            DelayOffsetBody::from_json(json.as_bytes()).unwrap(),
            with_shards
        );
    }
}
