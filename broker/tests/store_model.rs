//! The store against a reference model: seeded random sequences of appends (batches over
//! several queues, sizes crossing segment boundaries), pulls at random offsets with random
//! limits and tag filters, lookups by physical offset, clean and unclean restarts. After every
//! step the store must answer exactly what the model predicts. The seed is in every message.

mod store_support;

use rand::{Rng, SeedableRng};
use ringmq_broker::store::{FlushMode, GetRequest, GetStatus, Store, StoreConfig};
use ringmq_proto::message::tag_hash;
use store_support::{record, run, small_config, split_records};

const QUEUES: i32 = 3;
const TAGS: [&str; 3] = ["TagA", "TagB", "TagC"];

#[derive(Clone)]
struct ModelRecord {
    body: Vec<u8>,
    tag: usize,
    physical_offset: u64,
}

/// Per queue, every record in queue-offset order.
type Model = Vec<Vec<ModelRecord>>;

async fn check_pull(store: &Store, model: &Model, rng: &mut rand::rngs::StdRng, seed: u64) {
    let q = rng.gen_range(0..QUEUES);
    let recs = &model[q as usize];
    let max = recs.len() as u64;
    let offset = rng.gen_range(0..=max + 2);
    let max_count = rng.gen_range(1..12);
    let filter = rng
        .gen_bool(0.3)
        .then(|| [tag_hash(TAGS[rng.gen_range(0..3)])]);
    let req = GetRequest {
        topic: "M",
        queue_id: q,
        offset,
        max_count,
        max_bytes: rng.gen_range(1..20_000),
        tag_hashes: filter.as_ref().map(|f| &f[..]),
    };
    let res = store.get_messages(&req).await.unwrap();
    let ctx = format!("seed {seed} queue {q} offset {offset} max {max}");
    assert_eq!(res.max_offset, max, "{ctx}");
    if max == 0 {
        assert_eq!(res.status, GetStatus::NoMessageInQueue, "{ctx}");
        return;
    }
    if offset == max {
        assert_eq!(res.status, GetStatus::OffsetOverflowOne, "{ctx}");
        return;
    }
    if offset > max {
        assert_eq!(
            (res.status, res.next_begin_offset),
            (GetStatus::OffsetOverflowBadly, max),
            "{ctx}"
        );
        return;
    }
    let (expect, next) = expected_pull(recs, &req);
    let got: Vec<u64> = split_records(&res.body)
        .iter()
        .map(|d| d.record.queue_offset as u64)
        .collect();
    assert_eq!(got, expect, "{ctx}");
    for d in split_records(&res.body) {
        let m = &recs[d.record.queue_offset as usize];
        assert_eq!(d.record.body, &m.body[..], "{ctx}");
        assert_eq!(d.record.physical_offset as u64, m.physical_offset, "{ctx}");
    }
    if expect.is_empty() {
        assert_eq!(
            (res.status, res.next_begin_offset),
            (GetStatus::NoMatchedMessage, next),
            "{ctx}"
        );
    } else {
        assert_eq!(
            (res.status, res.next_begin_offset),
            (GetStatus::Found, next),
            "{ctx}"
        );
    }
}

/// What the model says a pull of `req` from `recs` (its queue) returns: the queue offsets of
/// the records taken, and the next begin offset. Walks from the offset, taking matching
/// records within the limits.
fn expected_pull(recs: &[ModelRecord], req: &GetRequest<'_>) -> (Vec<u64>, u64) {
    let max = recs.len() as u64;
    let mut expect = Vec::new();
    let mut bytes = 0usize;
    let mut next = req.offset;
    while next < max && expect.len() < req.max_count as usize {
        let r = &recs[next as usize];
        if req
            .tag_hashes
            .is_some_and(|f| f[0] != tag_hash(TAGS[r.tag]))
        {
            next += 1;
            continue;
        }
        let size = 91 + r.body.len() + 1 + 10;
        if !expect.is_empty() && bytes + size > req.max_bytes as usize {
            break;
        }
        bytes += size;
        expect.push(next);
        next += 1;
    }
    (expect, next)
}

/// Appends a random batch of 1 to 4 records (random queues and tags, mostly small bodies, some
/// of several KiB) and records it in the model.
async fn append_random_batch(
    store: &Store,
    model: &mut Model,
    rng: &mut rand::rngs::StdRng,
    seed: u64,
) {
    let n = rng.gen_range(1..5);
    let spec: Vec<(i32, usize, Vec<u8>)> = (0..n)
        .map(|_| {
            let len = if rng.gen_bool(0.1) {
                rng.gen_range(3000..7000)
            } else {
                rng.gen_range(0..400)
            };
            (
                rng.gen_range(0..QUEUES),
                rng.gen_range(0..3),
                (0..len).map(|_| rng.gen()).collect(),
            )
        })
        .collect();
    let props: Vec<String> = spec
        .iter()
        .map(|(_, t, _)| format!("TAGS\x01{}\x02", TAGS[*t]))
        .collect();
    let recs: Vec<_> = spec
        .iter()
        .zip(&props)
        .map(|((q, _, b), p)| record("M", *q, b, p.as_bytes()))
        .collect();
    let out = store.append(&recs).await.unwrap();
    for ((q, t, b), r) in spec.iter().zip(&out.records) {
        assert_eq!(
            r.queue_offset,
            model[*q as usize].len() as u64,
            "seed {seed}"
        );
        model[*q as usize].push(ModelRecord {
            body: b.clone(),
            tag: *t,
            physical_offset: r.physical_offset,
        });
    }
}

/// Views a random record of a random queue (if it has any) by its physical offset.
async fn check_random_view(store: &Store, model: &Model, rng: &mut rand::rngs::StdRng, seed: u64) {
    let q = rng.gen_range(0..QUEUES) as usize;
    if let Some(m) = (!model[q].is_empty()).then(|| &model[q][rng.gen_range(0..model[q].len())]) {
        let bytes = store
            .view_message(m.physical_offset)
            .await
            .unwrap()
            .expect("view by offset");
        assert_eq!(
            split_records(&bytes)[0].record.body,
            &m.body[..],
            "seed {seed}"
        );
    }
}

fn model_run(seed: u64, mode: FlushMode) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg: StoreConfig = small_config(dir.path(), mode);
    cfg.segment_size_bytes = 32 * 1024;
    cfg.max_record_bytes = 8 * 1024;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut model: Model = vec![Vec::new(); QUEUES as usize];
    for epoch in 0..4 {
        let clean = rng.gen_bool(0.5);
        model = run(|| async {
            let store = Store::open(cfg.clone()).await.unwrap();
            for q in 0..QUEUES {
                assert_eq!(
                    store.max_offset("M", q),
                    model[q as usize].len() as u64,
                    "seed {seed} epoch {epoch}"
                );
            }
            for _ in 0..120 {
                match rng.gen_range(0..10) {
                    0..=4 => append_random_batch(&store, &mut model, &mut rng, seed).await,
                    5..=8 => check_pull(&store, &model, &mut rng, seed).await,
                    _ => check_random_view(&store, &model, &mut rng, seed).await,
                }
            }
            if clean {
                store.close().await.unwrap();
            } else {
                drop(store);
            }
            model
        });
    }
}

#[test]
fn store_matches_model_async() {
    for seed in [1, 2, 3] {
        model_run(seed, FlushMode::Async);
    }
}

#[test]
fn store_matches_model_sync() {
    for seed in [4, 5] {
        model_run(seed, FlushMode::Sync);
    }
}
