//! kill -9 crash tests with real processes. The test binary re-executes itself as a child (an
//! environment variable tells the test function to act as the child): the child appends from
//! several concurrent tasks and prints one `ACK` line per completed append; the parent SIGKILLs
//! it at a random moment, reopens the store and checks that every acknowledged record is
//! present, intact and in order. Several seeded rounds per flush mode, each bounded.

mod store_support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use ringmq_broker::store::{AppendStatus, FlushMode, GetRequest, GetStatus, Store, StoreConfig};
use store_support::{record, run, small_config, split_records};

const CHILD_ENV: &str = "RINGMQ_STORE_CRASH_CHILD";
const QUEUES: i32 = 4;
const APPENDERS: usize = 8;

fn config(dir: &str, mode: FlushMode) -> StoreConfig {
    let mut c = small_config(std::path::Path::new(dir), mode);
    c.segment_size_bytes = 256 * 1024;
    c.tail_cache_bytes = 64 * 1024;
    c.flush_interval_ms = 15;
    // Checkpoints every third round: crashes also land after write-only rounds.
    c.checkpoint_interval_ms = 45;
    // Zero-ahead on (off by default), so the kill -9 rounds also cover zeros and segments
    // written ahead of the log end.
    c.zero_ahead_bytes = 128 * 1024;
    c
}

/// The body a record with this id and length carries (recomputed by the parent to compare).
fn body_for(id: &str, len: usize) -> Vec<u8> {
    let mut b = id.as_bytes().to_vec();
    let fill = b'a' + (len % 26) as u8;
    b.resize(len.max(id.len()), fill);
    b
}

/// The child: append forever from `APPENDERS` tasks; print `ACK queue offset phys id len`
/// after each completed append. Never returns; the parent kills it.
fn child_main(spec: &str) -> ! {
    let parts: Vec<&str> = spec.split('|').collect();
    let (dir, mode, seed, round) = (
        parts[0],
        parts[1],
        parts[2].parse::<u64>().unwrap(),
        parts[3],
    );
    let mode = if mode == "sync" {
        FlushMode::Sync
    } else {
        FlushMode::Async
    };
    let cfg = config(dir, mode);
    let round = round.to_owned();
    run(|| async move {
        let store = Rc::new(Store::open(cfg).await.expect("child opens the store"));
        let mut tasks = Vec::new();
        for t in 0..APPENDERS {
            let store = store.clone();
            let round = round.clone();
            tasks.push(glommio::spawn_local(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed * 1000 + t as u64);
                for n in 0u64.. {
                    let batch = rng.gen_range(1..=3);
                    let ids: Vec<(String, usize, i32)> = (0..batch)
                        .map(|k| {
                            (
                                format!("r{round}-t{t}-n{n}-k{k}"),
                                rng.gen_range(20..1500),
                                rng.gen_range(0..QUEUES),
                            )
                        })
                        .collect();
                    let bodies: Vec<Vec<u8>> =
                        ids.iter().map(|(id, len, _)| body_for(id, *len)).collect();
                    let recs: Vec<_> = ids
                        .iter()
                        .zip(&bodies)
                        .map(|((_, _, q), b)| record("CRASH", *q, b, b""))
                        .collect();
                    let out = store.append(&recs).await.expect("append");
                    if out.status == AppendStatus::PutOk {
                        for ((id, len, q), r) in ids.iter().zip(&out.records) {
                            println!(
                                "ACK {q} {} {} {id} {len}",
                                r.queue_offset, r.physical_offset
                            );
                        }
                    }
                }
            }));
        }
        for t in tasks {
            t.await;
        }
    });
    unreachable!("appenders never finish")
}

struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Ack {
    queue: i32,
    queue_offset: u64,
    physical_offset: u64,
    id: String,
    len: usize,
}

fn parse_ack(line: &str) -> Option<Ack> {
    let f: Vec<&str> = line.split(' ').collect();
    if f.len() != 6 || f[0] != "ACK" {
        return None;
    }
    Some(Ack {
        queue: f[1].parse().ok()?,
        queue_offset: f[2].parse().ok()?,
        physical_offset: f[3].parse().ok()?,
        id: f[4].to_owned(),
        len: f[5].parse().ok()?,
    })
}

/// Runs one child until it has acknowledged `kill_after` records (plus a random delay), then
/// SIGKILLs it. Returns the acknowledgements it printed completely.
fn run_child_and_kill(
    test_name: &str,
    spec: String,
    kill_after: usize,
    extra_delay_ms: u64,
) -> Vec<Ack> {
    let exe = std::env::current_exe().unwrap();
    let child = Command::new(exe)
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let mut guard = ChildGuard(child);
    let stdout = guard.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(a) = parse_ack(&line) {
                if tx.send(a).is_err() {
                    break;
                }
            }
        }
    });
    let mut acks = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while acks.len() < kill_after {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(a) => acks.push(a),
            Err(_) => panic!(
                "child produced only {} acks before the deadline",
                acks.len()
            ),
        }
    }
    std::thread::sleep(Duration::from_millis(extra_delay_ms));
    guard.0.kill().expect("SIGKILL child");
    guard.0.wait().unwrap();
    reader.join().unwrap();
    // Lines the child completed before it died (a half-written line fails to parse and is not
    // an acknowledgement).
    acks.extend(rx.try_iter());
    acks
}

/// Reopens the store and checks every acknowledged record; returns queue sizes.
fn verify(dir: &str, mode: FlushMode, acks: &[Ack]) {
    let cfg = config(dir, mode);
    run(|| async {
        let store = Store::open(cfg).await.expect("reopen after kill -9");
        let mut found: HashMap<(i32, u64), (u64, Vec<u8>)> = HashMap::new();
        for q in 0..QUEUES {
            let mut next = 0;
            let mut last_phys = None;
            loop {
                let req = GetRequest {
                    topic: "CRASH",
                    queue_id: q,
                    offset: next,
                    max_count: 64,
                    max_bytes: 1 << 20,
                    tag_hashes: None,
                };
                let res = store.get_messages(&req).await.unwrap();
                if res.status != GetStatus::Found {
                    break;
                }
                for d in split_records(&res.body) {
                    let qo = d.record.queue_offset as u64;
                    assert_eq!(qo, next, "queue offsets are dense and in order");
                    let phys = d.record.physical_offset as u64;
                    assert!(
                        last_phys.is_none_or(|p| p < phys),
                        "log order follows queue order"
                    );
                    last_phys = Some(phys);
                    found.insert((q, qo), (phys, d.record.body.to_vec()));
                    next += 1;
                }
            }
        }
        for a in acks {
            let (phys, body) = found
                .get(&(a.queue, a.queue_offset))
                .unwrap_or_else(|| panic!("acknowledged record {a:?} lost"));
            assert_eq!(*phys, a.physical_offset, "record {a:?} moved");
            assert_eq!(*body, body_for(&a.id, a.len), "record {a:?} damaged");
        }
        drop(store); // no clean close: the next child recovers through the scan path too
    });
}

fn crash_rounds(test_name: &str, mode: FlushMode) {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child_main(&spec);
    }
    let mode_name = if mode == FlushMode::Sync {
        "sync"
    } else {
        "async"
    };
    // Seeds vary per run, printed so a failure can be replayed with RINGMQ_CRASH_SEED.
    let base_seed = std::env::var("RINGMQ_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| rand::random::<u32>() as u64);
    eprintln!("{test_name}: seeds {base_seed}.. (replay with RINGMQ_CRASH_SEED={base_seed})");
    for seed in [base_seed, base_seed + 1, base_seed + 2] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap().to_owned();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut all_acks = Vec::new();
        for round in 0..3 {
            let kill_after = rng.gen_range(1..600);
            let delay = rng.gen_range(0..25);
            let spec = format!("{path}|{mode_name}|{seed}|{round}");
            let acks = run_child_and_kill(test_name, spec, kill_after, delay);
            assert!(acks.len() >= kill_after);
            all_acks.extend(acks);
            verify(&path, mode, &all_acks);
        }
    }
}

#[test]
fn sync_flush_acked_records_survive_kill9() {
    crash_rounds("sync_flush_acked_records_survive_kill9", FlushMode::Sync);
}

#[test]
fn async_flush_acked_records_survive_kill9() {
    crash_rounds("async_flush_acked_records_survive_kill9", FlushMode::Async);
}
