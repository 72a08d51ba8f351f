//! The HA stream end to end inside one process: a master store and a slave store in temp
//! directories, the real master listener and slave follower over loopback TCP.

use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::net::TcpListener;
use ringmq_proto::message::Record;
use ringmq_testkit::sample_record;

use super::master::run_master;
use super::slave::run_slave;
use super::{HaError, HaSettings, MasterState, Replication, SlaveState};
use crate::store::{FlushMode, Store, StoreConfig};

const DEADLINE: Duration = Duration::from_secs(30);
const TOPICS: [&str; 2] = ["ReplA", "ReplB"];

fn run<F: std::future::Future<Output = ()>>(f: impl FnOnce() -> F) {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .make()
        .expect("glommio executor (run with `ulimit -l unlimited`)")
        .run(f());
}

fn config(root: &Path, mode: FlushMode) -> StoreConfig {
    let mut c = StoreConfig::new(root, 0);
    c.segment_size_bytes = 64 * 1024;
    c.max_record_bytes = 16 * 1024;
    c.tail_cache_bytes = 16 * 1024;
    c.flush_mode = mode;
    c.flush_interval_ms = 20;
    // Checkpoints every third round, so write-only rounds run between them.
    c.checkpoint_interval_ms = 60;
    c
}

fn settings(shard_count: u16) -> HaSettings {
    HaSettings {
        shard_id: 0,
        shard_count,
        heartbeat_interval_ms: 50,
        housekeeping_interval_ms: 2000,
    }
}

fn record(topic: &str, queue_id: i32, body: &[u8]) -> Record<'static> {
    let body: &'static [u8] = Box::leak(body.to_vec().into_boxed_slice());
    let topic: &'static [u8] = Box::leak(topic.as_bytes().to_vec().into_boxed_slice());
    sample_record(topic, queue_id, body, b"")
}

/// Appends `n` records of varied sizes (so segments close with fillers), returns the log end.
async fn append(store: &Store, n: usize, seed: u8) -> u64 {
    let mut end = 0;
    for i in 0..n {
        let size = 100 + (i * 997 + seed as usize * 31) % 5000;
        let body = vec![seed.wrapping_add(i as u8); size];
        let r = record(TOPICS[i % 2], (i % 3) as i32, &body);
        let out = store.append(&[r]).await.unwrap();
        let last = out.records[0];
        end = last.physical_offset + u64::from(last.size);
    }
    end
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
}

struct Pair {
    master: Rc<Store>,
    master_state: Rc<MasterState>,
    addr: String,
}

async fn start_master(root: &Path, shard_count: u16) -> Pair {
    let master = Rc::new(Store::open(config(root, FlushMode::Async)).await.unwrap());
    let master_state = Rc::new(MasterState::default());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = run_master(
        listener,
        master.clone(),
        master_state.clone(),
        settings(shard_count),
    );
    glommio::spawn_local(task).detach();
    Pair {
        master,
        master_state,
        addr,
    }
}

fn follow(
    slave: &Rc<Store>,
    state: &Rc<SlaveState>,
    addr: &str,
    shard_count: u16,
) -> glommio::task::JoinHandle<Result<(), HaError>> {
    let addr = addr.to_string();
    let task = run_slave(
        slave.clone(),
        state.clone(),
        settings(shard_count),
        move || Some(addr.clone()),
    );
    glommio::spawn_local(task).detach()
}

async fn whole_log(store: &Store) -> Vec<u8> {
    let log = store.log_offsets();
    let mut out = Vec::new();
    let mut at = log.min;
    while at < log.written {
        let chunk = store.read_raw(at, 1 << 20).await.unwrap();
        assert!(!chunk.is_empty());
        at += chunk.len() as u64;
        out.extend_from_slice(&chunk);
    }
    out
}

#[test]
fn slave_converges_byte_for_byte_and_catches_up_after_a_restart() {
    let (m, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run(|| async move {
        let pair = start_master(m.path(), 1).await;
        append(&pair.master, 40, 1).await;
        let slave = Rc::new(
            Store::open(config(s.path(), FlushMode::Sync))
                .await
                .unwrap(),
        );
        let state = Rc::new(SlaveState::default());
        let task = follow(&slave, &state, &pair.addr, 1);
        let end = append(&pair.master, 60, 2).await;
        until("the slave to catch up", || {
            slave.log_offsets().flushed >= end
        })
        .await;
        // Stopped slave: the master keeps writing; a new follower resumes from the slave's end.
        state.stop();
        assert!(task.await.unwrap().is_ok());
        let end = append(&pair.master, 50, 3).await;
        let state = Rc::new(SlaveState::default());
        let task = follow(&slave, &state, &pair.addr, 1);
        until("the restarted slave to catch up", || {
            slave.log_offsets().flushed >= end
        })
        .await;
        assert_eq!(whole_log(&slave).await, whole_log(&pair.master).await);
        for topic in TOPICS {
            for q in 0..3 {
                assert_eq!(slave.max_offset(topic, q), pair.master.max_offset(topic, q));
            }
        }
        until("the master to see the ACK", || {
            pair.master_state.lag(end, 0) == Some((0, 0))
        })
        .await;
        assert_eq!(state.lag(0).0, 0);
        state.stop();
        pair.master_state.stop();
        assert!(task.await.unwrap().is_ok());
    });
}

#[test]
fn sync_master_wait_is_released_by_the_ack_and_refused_without_a_slave() {
    let (m, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run(|| async move {
        let pair = start_master(m.path(), 1).await;
        let timeout = Duration::from_secs(10);
        let end = append(&pair.master, 5, 1).await;
        assert_eq!(
            pair.master_state
                .wait_replicated(end, 1 << 30, timeout)
                .await,
            Replication::SlaveNotAvailable
        );
        let slave = Rc::new(
            Store::open(config(s.path(), FlushMode::Async))
                .await
                .unwrap(),
        );
        let state = Rc::new(SlaveState::default());
        let task = follow(&slave, &state, &pair.addr, 1);
        until("the slave to attach", || {
            !pair.master_state.slaves().is_empty()
        })
        .await;
        let end = append(&pair.master, 5, 2).await;
        assert_eq!(
            pair.master_state
                .wait_replicated(end, 1 << 30, timeout)
                .await,
            Replication::Replicated
        );
        assert!(slave.log_offsets().written >= end);
        // A slave further behind than haSlaveFallbehindMax does not count.
        let end = append(&pair.master, 1, 3).await;
        let far = end + 10_000;
        assert_eq!(
            pair.master_state.wait_replicated(far, 100, timeout).await,
            Replication::SlaveNotAvailable
        );
        state.stop();
        assert!(task.await.unwrap().is_ok());
        until("the master to drop the slave", || {
            pair.master_state.slaves().is_empty()
        })
        .await;
        let end = append(&pair.master, 1, 4).await;
        assert_eq!(
            pair.master_state
                .wait_replicated(end, 1 << 30, timeout)
                .await,
            Replication::SlaveNotAvailable
        );
        pair.master_state.stop();
    });
}

#[test]
fn a_slave_holding_more_than_its_master_is_refused_with_both_offsets() {
    let (m, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run(|| async move {
        let pair = start_master(m.path(), 1).await;
        let master_end = append(&pair.master, 3, 1).await;
        let slave = Rc::new(
            Store::open(config(s.path(), FlushMode::Async))
                .await
                .unwrap(),
        );
        let slave_end = append(&slave, 6, 1).await;
        let state = Rc::new(SlaveState::default());
        let result = follow(&slave, &state, &pair.addr, 1).await.unwrap();
        assert!(matches!(result, Err(HaError::Diverged(_))), "{result:?}");
        let text = state.diverged.borrow().clone().unwrap();
        assert!(text.contains(&slave_end.to_string()), "{text}");
        assert!(text.contains(&master_end.to_string()), "{text}");
        // Nothing was appended to the slave.
        assert_eq!(slave.log_offsets().end, slave_end);
        pair.master_state.stop();
    });
}

#[test]
fn a_slave_whose_bytes_differ_from_the_master_is_refused() {
    let (m, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run(|| async move {
        let pair = start_master(m.path(), 1).await;
        append(&pair.master, 6, 1).await;
        let slave = Rc::new(
            Store::open(config(s.path(), FlushMode::Async))
                .await
                .unwrap(),
        );
        // Same sizes, other bytes: the slave's end is inside the master's log.
        append(&slave, 3, 9).await;
        let state = Rc::new(SlaveState::default());
        let result = follow(&slave, &state, &pair.addr, 1).await.unwrap();
        assert!(matches!(result, Err(HaError::Diverged(_))), "{result:?}");
        assert!(state.diverged.borrow().as_ref().unwrap().contains("differ"));
        pair.master_state.stop();
    });
}

#[test]
fn a_slave_with_another_shard_count_is_refused_naming_both_counts() {
    let (m, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run(|| async move {
        let pair = start_master(m.path(), 1).await;
        let slave = Rc::new(
            Store::open(config(s.path(), FlushMode::Async))
                .await
                .unwrap(),
        );
        let state = Rc::new(SlaveState::default());
        let result = follow(&slave, &state, &pair.addr, 2).await.unwrap();
        let err = result.unwrap_err();
        assert!(
            matches!(
                err,
                HaError::ShardCount {
                    slave: 2,
                    master: 1
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("2 shards, its master 1"), "{err}");
        pair.master_state.stop();
    });
}
