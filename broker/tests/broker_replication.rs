//! Replication against real processes on 127.0.0.1: a master and a slave `ringmq-broker`
//! (two shards each), killed with SIGKILL, paused with SIGSTOP, restarted, compared byte for
//! byte. Every wait is for a condition with a bounded deadline.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::msg::*;
use common::*;
use ringmq_proto::body::{
    DelayOffsetBody, JsonBody, KvTable, ShardScheduleProgress, SHARD_PROGRESS_FIELD,
};
use ringmq_proto::code::{RequestCode, ResponseCode};

const TOPIC: &str = "ReplTopic";
const QUEUES: i32 = 4;
const DEADLINE: Duration = Duration::from_secs(60);
/// syncFlushTimeout for these tests: how long a SYNC_MASTER send waits for the slave.
const SYNC_TIMEOUT_MS: u64 = 1500;

/// A listen port p with p − 2, p + 1 and p + 2 free too (VIP port, HA ports of two shards).
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
    panic!("no free port quadruple");
}

fn ha_settings() -> Vec<String> {
    [
        "syncFlushTimeout=1500",
        "haSendHeartbeatInterval=200",
        "haHousekeepingInterval=3000",
        "ringmqSlaveSyncIntervalMs=300",
    ]
    .iter()
    .flat_map(|kv| ["--set".to_string(), kv.to_string()])
    .collect()
}

fn start_master(dir: &Path, port: u16, role: &str) -> Broker {
    let role = format!("brokerRole={role}");
    let mut args = ha_settings();
    args.extend(["--set".into(), role]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    start_broker_on(dir, port, &args)
}

fn slave_args(master_port: u16, cpus: &str) -> Vec<String> {
    let mut args = ha_settings();
    args.extend([
        "--set".to_string(),
        "brokerRole=SLAVE".to_string(),
        "--set".to_string(),
        "brokerId=1".to_string(),
        "--set".to_string(),
        format!("haMasterAddress=127.0.0.1:{}", master_port + 1),
        "--cpus".to_string(),
        cpus.to_string(),
    ]);
    args
}

fn start_slave(dir: &Path, port: u16, master_port: u16) -> Broker {
    let args = slave_args(master_port, "2");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    start_broker_on(dir, port, &args)
}

fn runtime_info(client: &mut Client) -> BTreeMap<String, String> {
    let response = client.call(json_request(
        RequestCode::GetBrokerRuntimeInfo.code(),
        &[],
        b"",
    ));
    assert_eq!(response.code, ResponseCode::Success.code());
    KvTable::from_json(&response.body).unwrap().table
}

fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the slave knows the topic (metadata sync) and follows on every shard.
fn wait_following(slave: &Broker) {
    let mut client = slave.connect();
    until("the slave to sync topics and follow", || {
        let pulled = pull_now(&mut client, TOPIC, 0, 0);
        let info = runtime_info(&mut client);
        pulled.code != ResponseCode::TopicNotExist.code()
            && info.get("ringmqHaFollowingShards").map(String::as_str) == Some("2")
    });
}

fn send(client: &mut Client, queue: i32, body: &[u8]) -> ringmq_proto::command::RemotingCommand {
    client.call(send_v2(TOPIC, queue, &props(&[("KEYS", "k")]), body))
}

/// The body at (queue, offset) on `client`'s broker, if readable.
fn read_at(client: &mut Client, queue: i32, offset: i64) -> Option<Vec<u8>> {
    let response = pull_now(client, TOPIC, queue, offset);
    if response.code != ResponseCode::Success.code() {
        return None;
    }
    let records = decode_records(&response.body);
    let first = records.first()?;
    (first.record.queue_offset == offset).then(|| first.record.body.to_vec())
}

/// A SEND_OK message: (queue, queue offset, body).
type Acked = (i32, i64, Vec<u8>);

#[test]
fn sync_master_killed_under_load_every_send_ok_is_readable_from_the_slave() {
    let root = tempfile::tempdir().unwrap();
    let (mdir, sdir) = (root.path().join("m"), root.path().join("s"));
    let mport = free_ports();
    let mut master = start_master(&mdir, mport, "SYNC_MASTER");
    create_topic(&mut master.connect(), TOPIC, QUEUES);
    let slave = start_slave(&sdir, free_ports(), mport);
    wait_following(&slave);

    // Four producers send until the master dies; each SEND_OK is recorded.
    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    let producers: Vec<_> = (0..4)
        .map(|t| {
            let (acked, addr) = (acked.clone(), master.addr());
            std::thread::spawn(move || {
                let mut client = Client::connect(&addr);
                for i in 0.. {
                    let body = format!("p{t}-m{i}").into_bytes();
                    let queue = (i % QUEUES as usize) as i32;
                    client.send(send_v2(TOPIC, queue, "", &body));
                    let Some(response) = client.read_frame() else {
                        return;
                    };
                    if response.code == ResponseCode::Success.code() {
                        let offset = header_i64(&response, "queueOffset");
                        acked.lock().unwrap().push((queue, offset, body));
                    }
                }
            })
        })
        .collect();
    until("sends to be acknowledged", || {
        acked.lock().unwrap().len() >= 400
    });
    // SAFETY: SIGKILL to the master process this test started.
    unsafe { libc::kill(master.process.pid(), libc::SIGKILL) };
    for p in producers {
        let _ = p.join(); // a producer ends (or panics on a broken pipe) when the master dies
    }
    master.process.wait_exit();

    let acked = acked.lock().unwrap().clone();
    let mut client = slave.connect();
    for (queue, offset, body) in &acked {
        assert_eq!(
            read_at(&mut client, *queue, *offset).as_deref(),
            Some(&body[..]),
            "SEND_OK message at {queue}/{offset} missing on the slave ({} acked)",
            acked.len()
        );
    }
}

#[test]
fn sync_master_answers_slave_errors_within_the_timeout_and_recovers() {
    let root = tempfile::tempdir().unwrap();
    let (mdir, sdir) = (root.path().join("m"), root.path().join("s"));
    let (mport, sport) = (free_ports(), free_ports());
    let master = start_master(&mdir, mport, "SYNC_MASTER");
    let mut client = master.connect();
    create_topic(&mut client, TOPIC, QUEUES);
    // No slave: SLAVE_NOT_AVAILABLE at once, the message is stored anyway (Java's sendOK).
    let response = send(&mut client, 0, b"alone");
    assert_eq!(response.code, ResponseCode::SlaveNotAvailable.code());
    header_i64(&response, "queueOffset");

    let mut slave = start_slave(&sdir, sport, mport);
    wait_following(&slave);
    until("SEND_OK with the slave attached", || {
        send(&mut client, 1, b"with slave").code == ResponseCode::Success.code()
    });

    // kill -9 of the slave: 11 or 12, each within the timeout plus slack; nothing hangs.
    // SAFETY: SIGKILL to the slave process this test started.
    unsafe { libc::kill(slave.process.pid(), libc::SIGKILL) };
    slave.process.wait_exit();
    for i in 0..3 {
        let started = Instant::now();
        let code = send(&mut client, 2, format!("slave dead {i}").as_bytes()).code;
        assert!(
            code == ResponseCode::SlaveNotAvailable.code()
                || code == ResponseCode::FlushSlaveTimeout.code(),
            "code {code}"
        );
        assert!(started.elapsed() < Duration::from_millis(SYNC_TIMEOUT_MS * 4));
    }
    let slave = start_slave(&sdir, sport, mport);
    wait_following(&slave);
    until("SEND_OK once the slave is back", || {
        send(&mut client, 3, b"slave back").code == ResponseCode::Success.code()
    });

    // SIGSTOP: the connection stays, the slave stops confirming: FLUSH_SLAVE_TIMEOUT (or, once
    // the master drops the silent connection, SLAVE_NOT_AVAILABLE), never a hang.
    // SAFETY: signals to the slave process this test started.
    unsafe { libc::kill(slave.process.pid(), libc::SIGSTOP) };
    // The signal is asynchronous: wait until every thread of the slave is stopped.
    let pid = slave.process.pid();
    until("the slave to be stopped", || all_threads_stopped(pid));
    let started = Instant::now();
    let code = send(&mut client, 0, b"slave paused").code;
    assert!(
        code == ResponseCode::FlushSlaveTimeout.code()
            || code == ResponseCode::SlaveNotAvailable.code(),
        "code {code}\nMASTER:\n{}\nSLAVE:\n{}",
        master.process.log(),
        slave.process.log()
    );
    assert!(started.elapsed() < Duration::from_millis(SYNC_TIMEOUT_MS * 4));
    unsafe { libc::kill(slave.process.pid(), libc::SIGCONT) };
    until("SEND_OK once the slave runs again", || {
        send(&mut client, 0, b"slave resumed").code == ResponseCode::Success.code()
    });
}

/// Whether every thread of `pid` is in state T (stopped), per /proc.
fn all_threads_stopped(pid: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|t| {
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // The state follows the parenthesised command name.
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('T') || rest.starts_with('t'))
    })
}

/// Commit-log segment files of every shard, by relative path.
fn commit_logs(store: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for shard in 0..2 {
        let dir = store.join(format!("shard-{shard}/commitlog"));
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = format!("shard-{shard}/{}", entry.file_name().to_string_lossy());
            out.insert(name, std::fs::read(entry.path()).unwrap());
        }
    }
    out
}

#[test]
fn async_master_slave_converges_byte_for_byte_and_serves_reads_but_not_sends() {
    let root = tempfile::tempdir().unwrap();
    let (mdir, sdir) = (root.path().join("m"), root.path().join("s"));
    let mport = free_ports();
    let master = start_master(&mdir, mport, "ASYNC_MASTER");
    let mut client = master.connect();
    create_topic(&mut client, TOPIC, QUEUES);
    for i in 0..300 {
        let response = send(&mut client, i % QUEUES, format!("async {i}").as_bytes());
        assert_eq!(response.code, ResponseCode::Success.code());
    }
    let slave = start_slave(&sdir, free_ports(), mport);
    wait_following(&slave);
    until("byte-for-byte convergence", || {
        let (m, s) = (commit_logs(&mdir), commit_logs(&sdir));
        !m.is_empty() && m == s
    });
    let mut on_slave = slave.connect();
    assert_eq!(
        read_at(&mut on_slave, 1, 0).as_deref(),
        Some(&b"async 1"[..])
    );
    let refused = send(&mut on_slave, 0, b"to a slave");
    assert_eq!(refused.code, ResponseCode::ServiceNotAvailable.code());
    let remark = refused.remark.unwrap_or_default();
    assert!(remark.contains("messages are put to the slave"), "{remark}");
    let info = runtime_info(&mut on_slave);
    assert_eq!(info["ringmqHaLagBytes"], "0", "{info:?}");
}

#[test]
fn a_returning_master_with_a_shorter_log_is_refused_loudly() {
    let root = tempfile::tempdir().unwrap();
    let (mdir, sdir) = (root.path().join("m"), root.path().join("s"));
    let mport = free_ports();
    let mut master = start_master(&mdir, mport, "ASYNC_MASTER");
    let mut client = master.connect();
    create_topic(&mut client, TOPIC, QUEUES);
    for i in 0..50 {
        send(&mut client, i % QUEUES, b"before the loss");
    }
    let mut slave = start_slave(&sdir, free_ports(), mport);
    wait_following(&slave);
    until("the slave to hold the log", || {
        commit_logs(&mdir) == commit_logs(&sdir)
    });
    // The master comes back without its data (it lost what it had acknowledged). (Clients
    // close first: a broker on main does not finish SIGTERM while a client stays connected.)
    drop(client);
    master.process.terminate();
    std::fs::remove_dir_all(&mdir).unwrap();
    let master = start_master(&mdir, mport, "ASYNC_MASTER");
    let mut client = master.connect();
    create_topic(&mut client, TOPIC, QUEUES);
    send(&mut client, 0, b"after the loss");
    until("the slave to report the divergence", || {
        slave.process.log().contains("divergence")
    });
    let log = slave.process.log();
    assert!(log.contains("beyond the master's end"), "{log}");
    let info = runtime_info(&mut slave.connect());
    assert!(info["ringmqHaDiverged"].contains("beyond"), "{info:?}");
    // The slave kept its own bytes: nothing divergent was appended.
    let mut on_slave = slave.connect();
    assert_eq!(
        read_at(&mut on_slave, 0, 0).as_deref(),
        Some(&b"before the loss"[..])
    );
    drop(on_slave);
    slave.process.terminate();
}

#[test]
fn a_slave_with_another_shard_count_is_refused_naming_both_counts() {
    let root = tempfile::tempdir().unwrap();
    let (mdir, sdir) = (root.path().join("m"), root.path().join("s"));
    let mport = free_ports();
    let _master = start_master(&mdir, mport, "ASYNC_MASTER");
    let mut args = slave_args(mport, "1");
    args.extend(["--listen-port".to_string(), free_ports().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, log) = run_broker_expecting_failure(&sdir, &args);
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("this slave runs 1 shards, its master 2"),
        "{log}"
    );
}

/// Held (delayed) messages are delivered by the master only, and reach the slave through the
/// HA stream like any record: the slave's log stays a byte copy of the master's. Java stops the
/// schedule service on a SLAVE; a slave delivering them itself would append records of its own
/// (one more at each queue's next offset) and diverge from its master.
#[test]
fn held_messages_are_delivered_by_the_master_only() {
    let root = tempfile::tempdir().unwrap();
    let (mdir, sdir) = (root.path().join("m"), root.path().join("s"));
    let mport = free_ports();
    let master = start_master(&mdir, mport, "ASYNC_MASTER");
    let mut client = master.connect();
    create_topic(&mut client, TOPIC, QUEUES);
    let slave = start_slave(&sdir, free_ports(), mport);
    wait_following(&slave);
    let held = props(&[("DELAY", "1")]); // level 1: one second
    for queue in 0..QUEUES {
        let response = client.call(send_v2(TOPIC, queue, &held, b"held"));
        assert_eq!(response.code, ResponseCode::Success.code());
    }
    until("the master to deliver every held message", || {
        (0..QUEUES).all(|q| read_at(&mut client, q, 0).as_deref() == Some(&b"held"[..]))
    });
    // A marker after each delivery: on the slave it must sit right behind the master's
    // delivery, at queue offset 1.
    for queue in 0..QUEUES {
        let response = send(&mut client, queue, b"marker");
        assert_eq!(response.code, ResponseCode::Success.code());
    }
    let mut on_slave = slave.connect();
    until("the slave to hold each delivery and marker once", || {
        (0..QUEUES).all(|q| {
            read_at(&mut on_slave, q, 0).as_deref() == Some(&b"held"[..])
                && read_at(&mut on_slave, q, 1).as_deref() == Some(&b"marker"[..])
        })
    });
    until("byte-for-byte convergence", || {
        let (m, s) = (commit_logs(&mdir), commit_logs(&sdir));
        !m.is_empty() && m == s
    });
}

/// GET_ALL_DELAY_OFFSET as a ringmq slave asks it: Java's summed table, and every shard's
/// progress (its log end left out: master and slave compare at different moments).
fn schedule_progress(client: &mut Client) -> (BTreeMap<i32, i64>, Vec<ShardScheduleProgress>) {
    let request = json_request(
        RequestCode::GetAllDelayOffset.code(),
        &[(SHARD_PROGRESS_FIELD, "true")],
        b"",
    );
    let response = client.call(request);
    assert_eq!(response.code, ResponseCode::Success.code());
    let body = DelayOffsetBody::from_json(&response.body).unwrap();
    let shards = body.ringmq_shard_progress.expect("asked for the shards");
    let shards = shards
        .into_iter()
        .map(|p| ShardScheduleProgress {
            log_written: 0,
            ..p
        })
        .collect();
    (body.offset_table, shards)
}

/// GET_ALL_DELAY_OFFSET as Java's tools ask it.
fn java_delay_offsets(client: &mut Client) -> DelayOffsetBody {
    let request = json_request(RequestCode::GetAllDelayOffset.code(), &[], b"");
    let response = client.call(request);
    assert_eq!(response.code, ResponseCode::Success.code());
    DelayOffsetBody::from_json(&response.body).unwrap()
}

/// Sends to every queue one message held for delay level 1 and one timer due in 500 ms, named
/// `<tag>-level` and `<tag>-timer`.
fn send_held(client: &mut Client, tag: &str) {
    let level = props(&[("DELAY", "1")]);
    let timer = props(&[("TIMER_DELAY_MS", "500")]);
    for queue in 0..QUEUES {
        for (properties, kind) in [(&level, "level"), (&timer, "timer")] {
            let body = format!("{tag}-{kind}");
            let response = client.call(send_v2(TOPIC, queue, properties, body.as_bytes()));
            assert_eq!(response.code, ResponseCode::Success.code());
        }
    }
}

/// Every body of `queue` from offset 0 to its end, in order.
fn queue_bodies(client: &mut Client, queue: i32) -> Vec<String> {
    (0..)
        .map_while(|offset| read_at(client, queue, offset))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect()
}

/// Whether every queue holds exactly `expected` (in any order).
fn queues_hold(client: &mut Client, expected: &[&str]) -> bool {
    let mut expected: Vec<&str> = expected.to_vec();
    expected.sort_unstable();
    (0..QUEUES).all(|q| {
        let mut got = queue_bodies(client, q);
        got.sort_unstable();
        got == expected
    })
}

/// Java's `SlaveSynchronize.syncDelayOffset` (and `syncTimerCheckPoint`): the slave copies the
/// master's schedule progress, serves it on GET_ALL_DELAY_OFFSET, and keeps it in its own
/// progress files, so the slave restarted as master resumes delivery where the master was
/// instead of delivering every held message again.
#[test]
fn schedule_progress_reaches_the_slave_and_a_promoted_slave_resumes_from_it() {
    let root = tempfile::tempdir().unwrap();
    let (mdir, sdir) = (root.path().join("m"), root.path().join("s"));
    let mport = free_ports();
    let mut master = start_master(&mdir, mport, "ASYNC_MASTER");
    let mut client = master.connect();
    create_topic(&mut client, TOPIC, QUEUES);
    let mut slave = start_slave(&sdir, free_ports(), mport);
    wait_following(&slave);
    send_held(&mut client, "first");
    until("the master to deliver every held message", || {
        queues_hold(&mut client, &["first-level", "first-timer"])
    });
    // Progress moves once the delivery task sees its append completed, which may be a turn
    // after the deliveries became readable.
    let mut on_master = schedule_progress(&mut client);
    until("the master's progress to count every delivery", || {
        on_master = schedule_progress(&mut client);
        let shards = &on_master.1;
        let timers_done = shards
            .iter()
            .all(|p| p.timer_scan_start == p.timer_ingested);
        let timers: u64 = shards.iter().map(|p| p.timer_ingested).sum();
        on_master.0.get(&1) == Some(&i64::from(QUEUES)) && timers_done && timers == QUEUES as u64
    });
    let mut on_slave = slave.connect();
    until("the slave to hold the master's schedule progress", || {
        schedule_progress(&mut on_slave) == on_master
    });
    assert_eq!(
        java_delay_offsets(&mut on_slave),
        java_delay_offsets(&mut client)
    );
    master.process.terminate();
    slave.process.terminate();
    promoted_slave_resumes(&sdir, &on_master);
}

/// The slave's store started as master: its progress is the master's, and new held messages
/// are delivered without any old one delivered again before them.
fn promoted_slave_resumes(sdir: &Path, copied: &(BTreeMap<i32, i64>, Vec<ShardScheduleProgress>)) {
    let promoted = start_master(sdir, free_ports(), "ASYNC_MASTER");
    let mut client = promoted.connect();
    assert_eq!(&schedule_progress(&mut client), copied);
    create_topic(&mut client, TOPIC, QUEUES);
    send_held(&mut client, "second");
    let all = ["first-level", "first-timer", "second-level", "second-timer"];
    // Level 1 delivers in order, and an old timer (due long ago) would be delivered before
    // the new one (due in 500 ms): once the second pair is there, a repeat would be too.
    until(
        "the promoted slave to deliver the new held messages",
        || (0..QUEUES).all(|q| queue_bodies(&mut client, q).len() >= all.len()),
    );
    assert!(
        queues_hold(&mut client, &all),
        "{:?}",
        (0..QUEUES)
            .map(|q| queue_bodies(&mut client, q))
            .collect::<Vec<_>>()
    );
}
