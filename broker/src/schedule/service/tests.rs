//! The delivery task against a real store in a temporary directory.

use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ringmq_proto::message::properties::encode_properties;
use ringmq_proto::message::record::{DecodedRecord, Record};
use ringmq_proto::message::{find_property, property};
use ringmq_testkit::sample_record;

use super::super::plan::{held_properties, Placement};
use super::super::progress::{Progress, ProgressFile};
use super::super::{parse_delay_levels, ScheduleConfig, SCHEDULE_TOPIC, TIMER_TOPIC};
use super::*;
use crate::store::{GetRequest, StoreConfig};

const REAL: &str = "RealTopic";

fn run<F: std::future::Future<Output = ()> + 'static>(f: impl FnOnce() -> F + Send + 'static) {
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move { f().await })
        .unwrap()
        .join()
        .unwrap();
}

fn config() -> ScheduleConfig {
    ScheduleConfig {
        level_delays_ms: parse_delay_levels("1s 2s").unwrap(),
        ..ScheduleConfig::default()
    }
}

/// Stores a held record for `placement` with body `body` into real queue `REAL`/1.
async fn hold(store: &Store, placement: Placement, body: &[u8]) {
    let mut client = Vec::new();
    encode_properties(
        [
            ("TAGS", "tagA"),
            ("UNIQ_KEY", std::str::from_utf8(body).unwrap()),
        ],
        &mut client,
    );
    let props = held_properties(&client, &placement, REAL, 1);
    let (topic, queue_id) = placement.holding_queue().unwrap();
    let rec = Record {
        born_timestamp: 1,
        ..sample_record(topic.as_bytes(), queue_id, body, &props)
    };
    store.append(&[rec]).await.unwrap();
}

/// (body, store timestamp, properties) of every record in the real queue.
async fn delivered(store: &Store) -> Vec<(Vec<u8>, i64, Vec<u8>)> {
    let req = GetRequest {
        topic: REAL,
        queue_id: 1,
        offset: 0,
        max_count: 10_000,
        max_bytes: 64 << 20,
        tag_hashes: None,
    };
    let res = store.get_messages(&req).await.unwrap();
    let mut out = Vec::new();
    let mut rest = &res.body[..];
    while !rest.is_empty() {
        let d = DecodedRecord::decode(rest).unwrap();
        out.push((
            d.record.body.to_vec(),
            d.record.store_timestamp,
            d.record.properties.to_vec(),
        ));
        rest = &rest[d.total_size..];
    }
    out
}

async fn wait_delivered(store: &Store, n: usize) -> Vec<(Vec<u8>, i64, Vec<u8>)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = delivered(store).await;
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
}

fn due_of(props: &[u8]) -> i64 {
    let v = find_property(props, property::TIMER_OUT_MS).expect("due stamp");
    std::str::from_utf8(v).unwrap().parse().unwrap()
}

async fn open(dir: &Path) -> Rc<Store> {
    let mut config = StoreConfig::new(dir, 0);
    // Small segments: tests run in parallel on shared disks.
    config.segment_size_bytes = 16 * 1024 * 1024;
    config.max_record_bytes = 1024 * 1024;
    Rc::new(Store::open(config).await.unwrap())
}

#[test]
fn timers_and_levels_are_delivered_not_before_due() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    run(move || async move {
        let store = open(&root).await;
        let svc = ScheduleService::start(store.clone(), config(), &root.join("progress"))
            .await
            .unwrap();
        let now = crate::store::now_ms();
        // Timers out of order, one level-1 message (1 s).
        for (i, ms) in [300i64, 50, 200, 120].iter().enumerate() {
            hold(
                &store,
                Placement::Timer { due_ms: now + ms },
                format!("t{i}").as_bytes(),
            )
            .await;
        }
        hold(
            &store,
            Placement::Delay {
                level: 1,
                due_ms: now + 1000,
            },
            b"d0",
        )
        .await;
        let got = wait_delivered(&store, 5).await;
        assert_eq!(got.len(), 5, "all delivered");
        let bodies: Vec<_> = got
            .iter()
            .map(|g| String::from_utf8(g.0.clone()).unwrap())
            .collect();
        assert_eq!(bodies, ["t1", "t3", "t2", "t0", "d0"], "due order");
        for (_, stored, props) in &got {
            assert!(*stored >= due_of(props), "delivered before its due time");
            assert_eq!(find_property(props, "TAGS"), Some(&b"tagA"[..]));
            assert!(find_property(props, "DELAY").is_none());
        }
        let timer_props = &got[0].2;
        assert!(find_property(timer_props, "TIMER_ENQUEUE_MS").is_some());
        assert!(find_property(timer_props, "TIMER_DELIVER_MS").is_some());
        assert!(find_property(timer_props, "REAL_TOPIC").is_none());
        assert_eq!(
            find_property(&got[4].2, "REAL_TOPIC"),
            Some(REAL.as_bytes())
        );
        // The records are readable once written; the task counts them when its append returns.
        let deadline = Instant::now() + Duration::from_secs(10);
        while svc.stats().delivered < 5 && Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(svc.stats().delivered, 5);
        assert_eq!(svc.level_offsets(), vec![1, 0]);
        svc.stop().await;
        drop(store);
    });
}

#[test]
fn restart_resumes_from_progress_without_loss_or_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    run(move || async move {
        let store = open(&root).await;
        let svc = ScheduleService::start(store.clone(), config(), &root.join("progress"))
            .await
            .unwrap();
        let now = crate::store::now_ms();
        for i in 0..10i64 {
            hold(
                &store,
                Placement::Timer {
                    due_ms: now + 30 + i,
                },
                format!("a{i}").as_bytes(),
            )
            .await;
        }
        // Far in the future: pending across the restart.
        for i in 0..5i64 {
            hold(
                &store,
                Placement::Timer {
                    due_ms: now + 3_600_000 + i,
                },
                format!("f{i}").as_bytes(),
            )
            .await;
        }
        assert_eq!(wait_delivered(&store, 10).await.len(), 10);
        svc.stop().await;
        // A new service over the same store: the 10 are not repeated, the 5 stay pending,
        // and a new near timer is delivered.
        let svc = ScheduleService::start(store.clone(), config(), &root.join("progress"))
            .await
            .unwrap();
        hold(
            &store,
            Placement::Timer {
                due_ms: crate::store::now_ms() + 20,
            },
            b"n0",
        )
        .await;
        let got = wait_delivered(&store, 11).await;
        glommio::timer::sleep(Duration::from_millis(300)).await;
        assert_eq!(delivered(&store).await.len(), 11, "nothing repeated");
        assert_eq!(got[10].0, b"n0");
        assert_eq!(svc.stats().pending_timers, 5);
        svc.stop().await;
    });
}

#[test]
fn recovery_rule_skips_delivered_keys_below_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    run(move || async move {
        let store = open(&root).await;
        let past = crate::store::now_ms() - 1000;
        // Queue offsets 0..4 with dues past+4, past+3, ... : the progress says offsets below 4
        // were ingested and keys below (past+2, 2) delivered, i.e. offsets 3 and 4... as written:
        for i in 0..5i64 {
            hold(
                &store,
                Placement::Timer {
                    due_ms: past + 4 - i,
                },
                format!("r{i}").as_bytes(),
            )
            .await;
        }
        // Pending at the "crash": offsets 0, 1, 2 (dues past+4, +3, +2); delivered: 3 (past+1).
        // Offset 4 (past+0) was never ingested (cursor 4), so it must be delivered too.
        let (mut f, _) = ProgressFile::open(&root.join("progress")).await.unwrap();
        f.write(&Progress {
            level_offsets: vec![0, 0],
            timer_ingested: 4,
            timer_scan_start: 0,
            timer_next_key: (past + 2, 2),
        })
        .await
        .unwrap();
        f.close().await;
        let svc = ScheduleService::start(store.clone(), config(), &root.join("progress"))
            .await
            .unwrap();
        let got = wait_delivered(&store, 4).await;
        glommio::timer::sleep(Duration::from_millis(300)).await;
        let mut bodies: Vec<_> = delivered(&store)
            .await
            .iter()
            .map(|g| String::from_utf8(g.0.clone()).unwrap())
            .collect();
        bodies.sort();
        assert_eq!(got.len(), 4);
        assert_eq!(bodies, ["r0", "r1", "r2", "r4"]);
        svc.stop().await;
    });
}

#[test]
fn held_records_use_the_due_time_as_tag_slot() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    run(move || async move {
        let store = open(&root).await;
        hold(
            &store,
            Placement::Delay {
                level: 2,
                due_ms: 123_456,
            },
            b"x",
        )
        .await;
        hold(&store, Placement::Timer { due_ms: 654_321 }, b"y").await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while store.max_offset(TIMER_TOPIC, 0) == 0 && Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
        let level = store.cq_entries(SCHEDULE_TOPIC, 1, 0, 10).await.unwrap();
        let timer = store.cq_entries(TIMER_TOPIC, 0, 0, 10).await.unwrap();
        assert_eq!(level[0].tag_hash, 123_456);
        assert_eq!(timer[0].tag_hash, 654_321);
    });
}

#[test]
fn a_page_written_during_a_delivery_keeps_its_timers_pending() {
    let timer = |due_ms, queue_offset| PendingTimer {
        due_ms,
        queue_offset,
        physical_offset: 0,
        size: 0,
    };
    let mut st = State {
        ingested: 20_000,
        ..State::default()
    };
    st.timers.push(timer(500, 9_000));
    // Two timers taken for an append that has not returned: (100, 12_000) and (300, 5).
    st.in_flight.push_back(Some(InFlight {
        min_key: (100, 12_000),
        min_offset: 5,
    }));
    // A second batch in flight with no timers changes nothing.
    st.in_flight.push_back(None);
    let p = st.progress();
    assert_eq!(p.timer_next_key, (100, 12_000));
    assert!(p.timer_scan_start <= 5, "{}", p.timer_scan_start);
    // By the recovery rule both in-flight timers are pending in this page.
    for (due, offset) in [(100, 12_000), (300, 5)] {
        let pending = offset >= p.timer_ingested
            || (offset >= p.timer_scan_start && (due, offset) >= p.timer_next_key);
        assert!(pending, "({due}, {offset}) would be lost");
    }
    // Once the append returned, the page moves on to the heap's first timer.
    st.in_flight.clear();
    let p = st.progress();
    assert_eq!(p.timer_next_key, (500, 9_000));
    assert_eq!(p.timer_scan_start, 8_192);
}
