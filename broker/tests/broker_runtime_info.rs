//! GET_BROKER_RUNTIME_INFO (28) against a real two-shard `ringmq-broker`: a KVTable body whose
//! counters are summed over both shards and move with the sends and pulls made.

mod common;

use std::collections::BTreeMap;

use common::msg::*;
use common::*;
use ringmq_proto::body::{JsonBody, KvTable};
use ringmq_proto::code::{RequestCode, ResponseCode};

fn runtime_info(client: &mut Client) -> BTreeMap<String, String> {
    let response = client.call(json_request(
        RequestCode::GetBrokerRuntimeInfo.code(),
        &[],
        b"",
    ));
    assert_eq!(
        response.code,
        ResponseCode::Success.code(),
        "{:?}",
        response.remark
    );
    // The shape Java's `mqadmin brokerStatus` reads: {"table":{...}}.
    let json: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert!(json["table"].is_object(), "{json}");
    KvTable::from_json(&response.body).unwrap().table
}

fn counter(table: &BTreeMap<String, String>, key: &str) -> u64 {
    table
        .get(key)
        .unwrap_or_else(|| panic!("{key} missing from {table:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("{key}={}: {e}", table[key]))
}

/// The memory budget's structures and the index's counters, reported whatever they hold.
const REPORTED_KEYS: &[&str] = &[
    "ringmqMemReadAheadBytes",
    "ringmqMemIndexSlotBytes",
    "ringmqMemIndexCacheBytes",
    "ringmqMemConsumeQueueBytes",
    "ringmqMemIndexFilterBytes",
    "ringmqMemIndexFilterCacheBytes",
    "ringmqIndexFiles",
    "ringmqIndexFilesWalkedTotal",
    "ringmqIndexFilesSkippedTotal",
];

#[test]
fn runtime_info_sums_flush_and_message_counters_over_shards() {
    let dir = tempfile::tempdir().unwrap();
    // SYNC_FLUSH: every acknowledged send has been fdatasynced, so the counters must cover it.
    let broker = start_broker(
        &dir.path().join("store"),
        &["--cpus", "2", "--set", "flushDiskType=SYNC_FLUSH"],
    );
    let mut client = broker.connect();
    let before = runtime_info(&mut client);
    assert_eq!(counter(&before, "ringmqShards"), 2);
    assert_eq!(counter(&before, "ringmqShardsAnswered"), 2);
    assert_eq!(counter(&before, "msgPutTotalTodayNow"), 0);
    assert!(before.contains_key("brokerVersion") && before.contains_key("bootTimestamp"));

    create_topic(&mut client, "InfoT", 8);
    let body = [b'x'; 100];
    // Queues 0..8 spread over both shards.
    for i in 0..16 {
        let response = client.call(send_v2("InfoT", i % 8, &props(&[("TAGS", "a")]), &body));
        assert_eq!(
            response.code,
            ResponseCode::Success.code(),
            "{:?}",
            response.remark
        );
    }
    let response = pull_now(&mut client, "InfoT", 3, 0);
    assert_eq!(
        response.code,
        ResponseCode::Success.code(),
        "{:?}",
        response.remark
    );
    let pulled = decode_records(&response.body).len() as u64;
    assert_eq!(pulled, 2);

    // Asked on another connection (it may land on the other shard): the same sums.
    let mut other = broker.connect();
    let after = runtime_info(&mut other);
    assert_eq!(counter(&after, "ringmqShardsAnswered"), 2);
    assert_eq!(counter(&after, "msgPutTotalTodayNow"), 16);
    assert_eq!(counter(&after, "msgGetTotalTodayNow"), pulled);
    let synced = counter(&after, "ringmqFlushedRecordsTotal")
        - counter(&before, "ringmqFlushedRecordsTotal");
    assert!(
        synced >= 16,
        "16 SYNC_FLUSH sends acknowledged, {synced} records synced"
    );
    let fdatasyncs =
        counter(&after, "ringmqFdatasyncTotal") - counter(&before, "ringmqFdatasyncTotal");
    assert!(
        (1..=synced).contains(&fdatasyncs),
        "{fdatasyncs} fdatasyncs for {synced} records"
    );
    let bytes =
        counter(&after, "ringmqBytesWrittenTotal") - counter(&before, "ringmqBytesWrittenTotal");
    assert!(
        bytes >= 16 * 100,
        "{bytes} bytes written for 16 bodies of 100 bytes"
    );
    assert!(counter(&after, "ringmqWritesTotal") > counter(&before, "ringmqWritesTotal"));
    // The memory budget, summed over the shards: the tails hold what was just sent.
    assert!(counter(&after, "ringmqMemTailCacheBytes") >= 16 * 100);
    assert!(counter(&after, "ringmqStoreQueues") >= 1);
    for &key in REPORTED_KEYS {
        assert!(after.contains_key(key), "{key} missing from {after:?}");
    }
    drop(other);
    client.close();
}
