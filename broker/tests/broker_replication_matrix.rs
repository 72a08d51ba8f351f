//! The replication crash matrix (outside CI: `#[ignore]`; run by scripts/ha-crash-matrix.sh):
//! {ASYNC, SYNC}_FLUSH × {ASYNC, SYNC}_MASTER × {kill -9 master, kill -9 slave, SIGSTOP slave},
//! one combination per seeded round, real processes on 127.0.0.1. Each round counts
//! acknowledged messages lost where the mode promises them, lost where it does not promise
//! them, duplicated, and recovered after the fault. Environment: HA_MATRIX_ROUNDS (default
//! 12), HA_MATRIX_SEED (default 1). A promised loss or a duplicate fails the run.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::msg::*;
use common::*;
use ringmq_proto::code::ResponseCode;

const TOPIC: &str = "MatrixTopic";
const QUEUES: i32 = 4;
const DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
enum Fault {
    KillMaster,
    KillSlave,
    PauseSlave,
}

#[derive(Debug, Default, Clone)]
struct Counts {
    acked: u64,
    lost_promised: u64,
    lost_unpromised: u64,
    duplicated: u64,
    recovered: u64,
}

/// A small deterministic generator (xorshift64*), so a seed replays its rounds.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn free_ports() -> u16 {
    for _ in 0..200 {
        let p = free_port_pair();
        if p < u16::MAX - 2
            && [p + 1, p + 2]
                .iter()
                .all(|q| std::net::TcpListener::bind(("127.0.0.1", *q)).is_ok())
        {
            return p;
        }
    }
    panic!("no free ports");
}

fn common_args(flush: &str) -> Vec<String> {
    [
        format!("flushDiskType={flush}"),
        "syncFlushTimeout=1000".into(),
        "haSendHeartbeatInterval=200".into(),
        "haHousekeepingInterval=2000".into(),
        "ringmqSlaveSyncIntervalMs=300".into(),
    ]
    .into_iter()
    .flat_map(|kv| ["--set".to_string(), kv])
    .collect()
}

fn start(dir: &Path, port: u16, flush: &str, extra: &[String]) -> Broker {
    let mut args = common_args(flush);
    args.extend_from_slice(extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    start_broker_on(dir, port, &args)
}

fn slave_extra(mport: u16) -> Vec<String> {
    [
        "brokerRole=SLAVE".to_string(),
        "brokerId=1".to_string(),
        format!("haMasterAddress=127.0.0.1:{}", mport + 1),
    ]
    .into_iter()
    .flat_map(|kv| ["--set".to_string(), kv])
    .collect()
}

fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every body stored in the topic on `broker`, with how often it appears.
fn all_bodies(broker: &Broker) -> HashMap<Vec<u8>, u32> {
    let mut client = broker.connect();
    let mut seen = HashMap::new();
    for queue in 0..QUEUES {
        let mut offset = 0;
        loop {
            let response = pull_now(&mut client, TOPIC, queue, offset);
            if response.code != ResponseCode::Success.code() {
                break;
            }
            for record in decode_records(&response.body) {
                *seen.entry(record.record.body.to_vec()).or_default() += 1;
            }
            offset = header_i64(&response, "nextBeginOffset");
        }
    }
    seen
}

/// Producers sending until `stop`; returns the bodies answered SEND_OK.
fn producers(addr: String, stop: Arc<AtomicBool>, round: u64) -> Vec<std::thread::JoinHandle<()>> {
    (0..2)
        .map(|t| {
            let (addr, stop) = (addr.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut client = Client::connect(&addr);
                for i in 0u64.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let body = format!("r{round}-t{t}-m{i}").into_bytes();
                    client.send(send_v2(TOPIC, (i % QUEUES as u64) as i32, "", &body));
                    match client.read_frame() {
                        Some(r) if r.code == ResponseCode::Success.code() => {
                            ACKED.lock().unwrap().push(body)
                        }
                        Some(_) => {}
                        None => return,
                    }
                }
            })
        })
        .collect()
}

static ACKED: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

fn round(root: &Path, rng: &mut Rng, n: u64) -> (String, Counts) {
    let flush = ["ASYNC_FLUSH", "SYNC_FLUSH"][(rng.next() % 2) as usize];
    let role = ["ASYNC_MASTER", "SYNC_MASTER"][(rng.next() % 2) as usize];
    let fault = [Fault::KillMaster, Fault::KillSlave, Fault::PauseSlave][(rng.next() % 3) as usize];
    let load_ms = 300 + rng.next() % 700;
    let label = format!("{flush} {role} {fault:?}");
    let (mdir, sdir) = (root.join(format!("m{n}")), root.join(format!("s{n}")));
    let (mport, sport) = (free_ports(), free_ports());
    let role_arg = vec!["--set".to_string(), format!("brokerRole={role}")];
    let mut master = start(&mdir, mport, flush, &role_arg);
    create_topic(&mut master.connect(), TOPIC, QUEUES);
    let mut slave = start(&sdir, sport, flush, &slave_extra(mport));
    until("the slave to sync the topic", || {
        pull_now(&mut slave.connect(), TOPIC, 0, 0).code != ResponseCode::TopicNotExist.code()
    });
    ACKED.lock().unwrap().clear();
    let stop = Arc::new(AtomicBool::new(false));
    let threads = producers(master.addr(), stop.clone(), n);
    std::thread::sleep(Duration::from_millis(load_ms));
    let pid = match fault {
        Fault::KillMaster => master.process.pid(),
        _ => slave.process.pid(),
    };
    let signal = match fault {
        Fault::PauseSlave => libc::SIGSTOP,
        _ => libc::SIGKILL,
    };
    // SAFETY: a signal to a child process this round started.
    unsafe { libc::kill(pid, signal) };
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let acked: Vec<Vec<u8>> = ACKED.lock().unwrap().clone();
    let setup = Setup {
        flush,
        role,
        role_arg: &role_arg,
        dirs: (&mdir, &sdir),
        master_port: mport,
    };
    let counts = evaluate(&setup, fault, pid, &acked, &mut master, &mut slave);
    drop(slave);
    drop(master);
    let _ = std::fs::remove_dir_all(&mdir);
    let _ = std::fs::remove_dir_all(&sdir);
    (label, counts)
}

/// What a round started with, for restarting its brokers.
struct Setup<'a> {
    flush: &'a str,
    role: &'a str,
    role_arg: &'a [String],
    dirs: (&'a Path, &'a Path),
    master_port: u16,
}

/// Counts what the fault cost: lost where promised or not, duplicated, recovered.
fn evaluate(
    setup: &Setup<'_>,
    fault: Fault,
    pid: i32,
    acked: &[Vec<u8>],
    master: &mut Broker,
    slave: &mut Broker,
) -> Counts {
    let Setup {
        flush,
        role,
        role_arg,
        dirs: (mdir, sdir),
        master_port: mport,
    } = *setup;
    let mut counts = Counts {
        acked: acked.len() as u64,
        ..Counts::default()
    };
    match fault {
        Fault::KillMaster => {
            master.process.wait_exit();
            // While the master is down: what the slave holds is all a reader gets.
            let on_slave = all_bodies(slave);
            for body in acked {
                if !on_slave.contains_key(body) {
                    if role == "SYNC_MASTER" {
                        counts.lost_promised += 1;
                    } else {
                        counts.lost_unpromised += 1;
                    }
                }
            }
            counts.duplicated = on_slave.values().filter(|c| **c > 1).count() as u64;
            // The master comes back: its own log still holds every acknowledged message.
            let restarted = start(mdir, mport, flush, role_arg);
            let on_master = all_bodies(&restarted);
            *master = restarted;
            counts.recovered = acked.iter().filter(|b| on_master.contains_key(*b)).count() as u64;
            counts.lost_promised += counts.acked - counts.recovered;
        }
        Fault::KillSlave | Fault::PauseSlave => {
            if matches!(fault, Fault::PauseSlave) {
                // SAFETY: a signal to the child process this round paused.
                unsafe { libc::kill(pid, libc::SIGCONT) };
            } else {
                slave.process.wait_exit();
                // A fresh port: nothing refers to the slave's, and the old one may be taken.
                *slave = start(sdir, free_ports(), flush, &slave_extra(mport));
            }
            let on_master = all_bodies(master);
            counts.lost_promised =
                acked.iter().filter(|b| !on_master.contains_key(*b)).count() as u64;
            counts.duplicated = on_master.values().filter(|c| **c > 1).count() as u64;
            let mut on_slave = HashMap::new();
            until("the slave to catch up after the fault", || {
                on_slave = all_bodies(slave);
                acked.iter().all(|b| on_slave.contains_key(b))
            });
            counts.recovered = acked.len() as u64;
        }
    }
    counts
}

#[test]
#[ignore = "crash matrix: minutes of real processes; run scripts/ha-crash-matrix.sh"]
fn replication_crash_matrix() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let rounds = env("HA_MATRIX_ROUNDS", 12);
    let mut rng = Rng(env("HA_MATRIX_SEED", 1).max(1));
    let root = tempfile::tempdir().unwrap();
    let mut by_combo: BTreeMap<String, (u64, Counts)> = BTreeMap::new();
    for n in 0..rounds {
        let (label, c) = round(root.path(), &mut rng, n);
        println!(
            "round {n:3} {label:40} acked {:5} lost(promised) {} lost(not promised) {} duplicated {} recovered {}",
            c.acked, c.lost_promised, c.lost_unpromised, c.duplicated, c.recovered
        );
        let e = by_combo.entry(label).or_default();
        e.0 += 1;
        e.1.acked += c.acked;
        e.1.lost_promised += c.lost_promised;
        e.1.lost_unpromised += c.lost_unpromised;
        e.1.duplicated += c.duplicated;
        e.1.recovered += c.recovered;
    }
    let mut bad = false;
    println!("| combination | rounds | acked | lost (promised) | lost (not promised) | duplicated | recovered |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (label, (rounds, c)) in &by_combo {
        println!(
            "| {label} | {rounds} | {} | {} | {} | {} | {} |",
            c.acked, c.lost_promised, c.lost_unpromised, c.duplicated, c.recovered
        );
        bad |= c.lost_promised > 0 || c.duplicated > 0;
    }
    assert!(!bad, "a promised message was lost or duplicated");
}
