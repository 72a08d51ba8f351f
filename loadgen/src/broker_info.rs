//! What the load generator asks brokers about themselves, through the client's admin calls:
//! their configuration (GET_BROKER_CONFIG, 26: flush and replication mode for the results)
//! and their runtime counters (GET_BROKER_RUNTIME_INFO, 28: fdatasyncs and records flushed,
//! read before and after the measured window).
//!
//! Both are plain RocketMQ admin requests, so they work against any RocketMQ-protocol broker;
//! a broker that does not answer them (or lacks the counters) leaves the fields empty and the
//! results say so.

use std::collections::BTreeMap;

use bytes::Bytes;
use ringmq_client::{Admin, ClientError};
use ringmq_proto::body::KvTable;
use ringmq_proto::code::RequestCode;
use ringmq_proto::command::{ExtFields, RemotingCommand};

/// Runtime-info keys holding the broker's cumulative count of commit-log fdatasyncs. A ringmq
/// broker reports `ringmqFdatasyncTotal` and `ringmqFlushedRecordsTotal` summed over its shards
/// (`broker/src/processor/runtime_info.rs`); the second spelling is for other brokers.
pub const FDATASYNC_COUNT_KEYS: [&str; 2] = ["ringmqFdatasyncTotal", "commitLogFdatasyncTotal"];
/// Runtime-info keys holding the cumulative count of records made durable by those fdatasyncs.
pub const FLUSHED_RECORD_COUNT_KEYS: [&str; 2] =
    ["ringmqFlushedRecordsTotal", "commitLogFlushedRecordsTotal"];

/// Completed flush requests of block device `disk` (`/sys/block/<disk>/stat`, field 16;
/// kernels since 5.5). Each fdatasync that reaches a disk with a volatile write cache issues
/// one; the counter covers every process using the disk.
pub fn disk_flush_requests(disk: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/sys/block/{disk}/stat")).ok()?;
    parse_disk_flushes(&stat)
}

fn parse_disk_flushes(stat: &str) -> Option<u64> {
    stat.split_whitespace().nth(15)?.parse().ok()
}

/// Parses a `key=value` properties text (GET_BROKER_CONFIG body). Blank lines and `#`
/// comments are skipped; the first `=` separates key and value.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// The first of `keys` present in `table` with an unsigned integer value.
pub fn counter(table: &BTreeMap<String, String>, keys: &[&str]) -> Option<u64> {
    keys.iter().find_map(|k| table.get(*k)?.trim().parse().ok())
}

/// `(fdatasyncs, records flushed)` from a runtime-info table, when the broker reports both.
pub fn flush_counters(table: &BTreeMap<String, String>) -> Option<(u64, u64)> {
    Some((
        counter(table, &FDATASYNC_COUNT_KEYS)?,
        counter(table, &FLUSHED_RECORD_COUNT_KEYS)?,
    ))
}

async fn invoke_for_body(
    admin: &Admin,
    addr: &str,
    code: RequestCode,
) -> Result<Bytes, ClientError> {
    let request = RemotingCommand::new_request(code.code(), ExtFields::default(), Bytes::new());
    let response = admin.invoke(addr, request).await?;
    if response.code != 0 {
        return Err(ClientError::Server {
            addr: addr.to_string(),
            request_code: code.code(),
            code: response.code,
            remark: response.remark.unwrap_or_default(),
        });
    }
    Ok(response.body)
}

/// The broker's configuration as `key → value`.
pub async fn broker_config(
    admin: &Admin,
    addr: &str,
) -> Result<BTreeMap<String, String>, ClientError> {
    let body = invoke_for_body(admin, addr, RequestCode::GetBrokerConfig).await?;
    Ok(parse_properties(&String::from_utf8_lossy(&body)))
}

/// The broker's runtime information table.
pub async fn runtime_info(
    admin: &Admin,
    addr: &str,
) -> Result<BTreeMap<String, String>, ClientError> {
    let body = invoke_for_body(admin, addr, RequestCode::GetBrokerRuntimeInfo).await?;
    let table: KvTable = serde_json::from_slice(&body).map_err(|e| ClientError::BadResponse {
        addr: addr.to_string(),
        request_code: RequestCode::GetBrokerRuntimeInfo.code(),
        detail: format!("runtime info body: {e}"),
    })?;
    Ok(table.table)
}

/// Sum of `(fdatasyncs, records flushed)` over `addrs`; `None` if any broker lacks them.
pub async fn total_flush_counters(admin: &Admin, addrs: &[String]) -> Option<(u64, u64)> {
    let mut total = (0, 0);
    for addr in addrs {
        let table = runtime_info(admin, addr).await.ok()?;
        let (syncs, records) = flush_counters(&table)?;
        total.0 += syncs;
        total.1 += records;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_text_parses_like_java_properties() {
        let p = parse_properties(
            "# comment\nflushDiskType=SYNC_FLUSH\n\nbrokerRole = ASYNC_MASTER\nnamesrvAddr=a:1;b:2\nx=y=z\n",
        );
        assert_eq!(p["flushDiskType"], "SYNC_FLUSH");
        assert_eq!(p["brokerRole"], "ASYNC_MASTER");
        assert_eq!(p["namesrvAddr"], "a:1;b:2");
        assert_eq!(p["x"], "y=z");
        assert_eq!(p.len(), 4);
    }

    #[test]
    fn flush_counters_need_both_keys() {
        let mut t = BTreeMap::new();
        t.insert("ringmqFdatasyncTotal".to_string(), "120".to_string());
        assert_eq!(flush_counters(&t), None);
        t.insert(
            "commitLogFlushedRecordsTotal".to_string(),
            " 6000 ".to_string(),
        );
        assert_eq!(flush_counters(&t), Some((120, 6_000)));
        t.insert("ringmqFdatasyncTotal".to_string(), "n/a".to_string());
        assert_eq!(flush_counters(&t), None);
    }

    #[test]
    fn disk_stat_flush_field() {
        let stat = "  150812 21133 8056745 448758 328295 112166 49483832 502520 37 72216 976824 49545 44 28317872 18949 61131 6596\n";
        assert_eq!(parse_disk_flushes(stat), Some(61_131));
        assert_eq!(parse_disk_flushes("1 2 3 4 5 6 7 8 9 10 11"), None);
        assert_eq!(disk_flush_requests("no-such-disk-xyz"), None);
    }

    #[test]
    fn runtime_info_body_is_a_kv_table() {
        let body = br#"{"table":{"ringmqFdatasyncTotal":"7","ringmqFlushedRecordsTotal":"70","putTps":"1.0"}}"#;
        let table: KvTable = serde_json::from_slice(body).expect("kv table");
        assert_eq!(flush_counters(&table.table), Some((7, 70)));
    }
}
