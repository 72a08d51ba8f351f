//! Pulls behind the tail cache go through read-ahead extents: every record comes back intact
//! and in order while several queues are drained concurrently, each stretch of the log is read
//! from disk about once (shared by the queues), and the extents stay within their bound.

mod store_support;

use std::rc::Rc;

use ringmq_broker::store::{FlushMode, GetRequest, GetStatus, Store, StoreConfig};
use store_support::{record, run, small_config, split_records};

const QUEUES: i32 = 4;
const RECORDS: u64 = 2400;
const EXTENT_BYTES: u64 = 64 * 1024;
const EXTENTS: usize = 8;

fn config(dir: &std::path::Path, extents: usize) -> StoreConfig {
    let mut c = small_config(dir, FlushMode::Async);
    c.segment_size_bytes = 1 << 20;
    c.read_ahead_bytes = EXTENT_BYTES;
    c.read_ahead_extents = extents;
    c
}

fn body(i: u64) -> Vec<u8> {
    let mut b = format!("ra-{i}-").into_bytes();
    b.resize(900 + (i % 7) as usize * 50, b'a' + (i % 26) as u8);
    b
}

/// Drains every queue from 0 with one task per queue; checks bodies and order.
async fn drain(store: &Rc<Store>) {
    let tasks: Vec<_> = (0..QUEUES)
        .map(|q| {
            let store = store.clone();
            glommio::spawn_local(async move {
                let mut offset = 0;
                while offset < store.max_offset("RA", q) {
                    let req = GetRequest {
                        topic: "RA",
                        queue_id: q,
                        offset,
                        max_count: 32,
                        max_bytes: 1 << 20,
                        tag_hashes: None,
                    };
                    let res = store.get_messages(&req).await.unwrap();
                    assert_eq!(res.status, GetStatus::Found);
                    for (k, r) in split_records(&res.body).iter().enumerate() {
                        let i = (offset + k as u64) * QUEUES as u64 + q as u64;
                        assert_eq!(r.record.queue_offset as u64, offset + k as u64);
                        assert_eq!(r.record.body, &body(i)[..], "record {i}");
                    }
                    offset = res.next_begin_offset;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await;
    }
}

#[test]
fn concurrent_pulls_share_read_ahead_extents() {
    let dir = tempfile::tempdir().unwrap();
    let log_bytes = run(|| async {
        let store = Store::open(config(dir.path(), EXTENTS)).await.unwrap();
        for i in 0..RECORDS {
            let b = body(i);
            let rec = record("RA", (i % QUEUES as u64) as i32, &b, b"");
            store.append(&[rec]).await.unwrap();
        }
        let end = store.log_offsets().end;
        store.close().await.unwrap();
        end & ((1 << 48) - 1)
    });
    for extents in [EXTENTS, 0] {
        run(|| async {
            // Reopened: only the last partial page is in the tail cache.
            let store = Rc::new(Store::open(config(dir.path(), extents)).await.unwrap());
            drain(&store).await;
            let read = store.stats().read_ahead_bytes_read;
            let held = store.memory_usage().read_ahead_bytes;
            assert!(held <= 2 * EXTENTS as u64 * EXTENT_BYTES, "holds {held}");
            if extents == 0 {
                assert_eq!(read, 0, "read-ahead off reads no extents");
            } else {
                assert!(read >= log_bytes - 4096, "read {read} of {log_bytes}");
                assert!(read <= 2 * log_bytes, "read {read} for {log_bytes} of log");
            }
            Rc::try_unwrap(store).ok().unwrap().close().await.unwrap();
        });
    }
}
