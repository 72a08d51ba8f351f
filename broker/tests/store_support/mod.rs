//! Helpers shared by the store tests: an executor per test, small store configs, records.
#![allow(dead_code)]

use std::future::Future;
use std::path::Path;

use ringmq_broker::store::{FlushMode, StoreConfig};
use ringmq_proto::message::Record;
use ringmq_testkit::sample_record;

/// Runs `f` on a fresh glommio executor (one per test keeps locked memory small).
pub fn run<T, F: Future<Output = T>>(f: impl FnOnce() -> F) -> T {
    let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .make()
        .expect("glommio executor (run `ulimit -l unlimited` first)");
    ex.run(f())
}

/// A store config with small segments and a small tail cache, so tests cross segment
/// boundaries and read from disk.
pub fn small_config(root: &Path, mode: FlushMode) -> StoreConfig {
    let mut c = StoreConfig::new(root, 3);
    c.segment_size_bytes = 64 * 1024;
    c.max_record_bytes = 16 * 1024;
    c.tail_cache_bytes = 16 * 1024;
    c.cq_cache_entries_total = 32;
    c.flush_mode = mode;
    c.flush_interval_ms = 20;
    // Checkpoints every third round, so write-only rounds run between them.
    c.checkpoint_interval_ms = 60;
    // Small key-index files, so tests fill several and roll over.
    c.index_slots_per_file = 64;
    c.index_entries_per_file = 256;
    c.index_cache_pages = 8;
    c
}

/// A record for `topic`/`queue_id` with `body` and a properties string.
pub fn record<'a>(
    topic: &'a str,
    queue_id: i32,
    body: &'a [u8],
    properties: &'a [u8],
) -> Record<'a> {
    sample_record(topic.as_bytes(), queue_id, body, properties)
}

/// Splits a pull body into records.
pub fn split_records(mut body: &[u8]) -> Vec<ringmq_proto::message::DecodedRecord<'_>> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let d = ringmq_proto::message::DecodedRecord::decode(body)
            .expect("pull body holds whole records");
        d.verify_body_crc().expect("crc");
        body = &body[d.total_size..];
        out.push(d);
    }
    out
}
