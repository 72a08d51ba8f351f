//! The orderly push consumer against a real name server and broker: queue locks hand each
//! queue to one consumer at a time, each queue is consumed in offset order with no gap, across
//! a consumer joining and leaving cleanly and across a consumer process killed with SIGKILL
//! (its locks then lapse on the broker after the 60 s lease).
//!
//! The killed consumer is a real process: this test binary run again with only the ignored
//! `orderly_child_consumer` test selected, which consumes and appends `queue seq` lines to a
//! file until it is killed by PID.

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::cluster::{config, create_topic, push_config, Cluster};
use common::{run, wait_until};
use ringmq_client::{
    Admin, ConsumeStatus, Message, MessageExt, MessageQueue, Producer, ProducerConfig,
    PushConsumer, PushConsumerConfig, QueueSelector,
};

const QUEUES: i32 = 4;
const CHILD_ENV: &str = "RINGMQ_ORDERLY_CHILD";

/// `(queue id, sequence)` of each consumed message, in consumption order.
type Log = Rc<RefCell<Vec<(i32, u64)>>>;

fn parse(message: &MessageExt) -> (i32, u64) {
    let text = String::from_utf8_lossy(&message.body).into_owned();
    let (queue, seq) = text.split_once(':').expect("body is queue:seq");
    (queue.parse().unwrap(), seq.parse().unwrap())
}

fn orderly_config(ns: &str, group: &str, instance: &str) -> PushConsumerConfig {
    let mut c = push_config(ns, group, instance);
    c.consume_orderly = true;
    c.lock_interval_ms = 1_000;
    c
}

fn logging_listener(log: Log) -> impl Fn(&MessageQueue, &[MessageExt]) -> ConsumeStatus {
    move |queue: &MessageQueue, messages: &[MessageExt]| {
        for m in messages {
            let (q, seq) = parse(m);
            assert_eq!(q, queue.queue_id, "message delivered on its own queue");
            log.borrow_mut().push((q, seq));
        }
        ConsumeStatus::Success
    }
}

/// Sends `from..to` to each queue, in order per queue.
async fn produce(producer: &Producer, topic: &str, from: u64, to: u64) {
    let queues = producer.write_queues(topic).await.unwrap();
    for seq in from..to {
        for queue in &queues {
            let body = format!("{}:{seq}", queue.queue_id);
            producer
                .send_with(
                    Message::new(topic, body),
                    QueueSelector::Explicit(queue.clone()),
                )
                .await
                .unwrap();
        }
    }
}

/// Per queue, the sequences in consumption order.
fn per_queue(entries: &[(i32, u64)]) -> BTreeMap<i32, Vec<u64>> {
    let mut map: BTreeMap<i32, Vec<u64>> = BTreeMap::new();
    for (q, seq) in entries {
        map.entry(*q).or_default().push(*seq);
    }
    map
}

fn assert_contiguous(who: &str, queue: i32, seqs: &[u64]) {
    for pair in seqs.windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + 1,
            "{who}: queue {queue} out of order or with a gap: {seqs:?}"
        );
    }
}

#[test]
fn a_joining_and_leaving_consumer_keeps_order_with_no_gap_or_duplicate() {
    let cluster = Cluster::start();
    let (ns, broker) = cluster.addrs();
    run(move || async move {
        let admin = Admin::new(config(&ns)).unwrap();
        create_topic(&admin, &broker, "OrderJoin", QUEUES).await;
        let producer = Producer::start(ProducerConfig::new(config(&ns), "pg")).unwrap();
        // One global log: consumption order across both consumers.
        let log: Log = Rc::default();
        let a = PushConsumer::start(
            orderly_config(&ns, "og-join", "a"),
            &[("OrderJoin", "*")],
            logging_listener(log.clone()),
        )
        .await
        .unwrap();
        produce(&producer, "OrderJoin", 0, 20).await;
        wait_until("a consumed the first part", || async {
            log.borrow().len() >= 40
        })
        .await;

        let b = PushConsumer::start(
            orderly_config(&ns, "og-join", "b"),
            &[("OrderJoin", "*")],
            logging_listener(log.clone()),
        )
        .await
        .unwrap();
        let owned = |c: &PushConsumer| {
            c.assigned_queues()
                .iter()
                .filter(|q| q.topic == "OrderJoin")
                .count()
        };
        wait_until("a 2/2 split", || async { owned(&a) == 2 && owned(&b) == 2 }).await;
        produce(&producer, "OrderJoin", 20, 40).await;
        wait_until("the second part", || async { log.borrow().len() >= 120 }).await;

        a.shutdown().await;
        wait_until("b took every queue", || async { owned(&b) == 4 }).await;
        produce(&producer, "OrderJoin", 40, 60).await;
        let total = (QUEUES as usize) * 60;
        wait_until("everything", || async { log.borrow().len() >= total }).await;
        b.shutdown().await;
        producer.shutdown().await;

        let entries = log.borrow().clone();
        assert_eq!(
            entries.len(),
            total,
            "clean hand-overs deliver nothing twice"
        );
        for (queue, seqs) in per_queue(&entries) {
            assert_eq!(seqs.first(), Some(&0));
            assert_eq!(seqs.len(), 60);
            assert_contiguous("group", queue, &seqs);
        }
    });
}

/// Run only as the child process of the kill test: an orderly consumer of `OrderKill` that
/// appends `queue seq` to the file named in the environment, flushed per message.
#[test]
#[ignore = "the kill test's child process"]
fn orderly_child_consumer() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (ns, path) = spec.split_once('|').expect("namesrv|path");
    let (ns, path) = (ns.to_string(), path.to_string());
    run(move || async move {
        let file = Rc::new(RefCell::new(
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&path)
                .unwrap(),
        ));
        let listener = move |queue: &MessageQueue, messages: &[MessageExt]| {
            for m in messages {
                let (q, seq) = parse(m);
                assert_eq!(q, queue.queue_id);
                writeln!(file.borrow_mut(), "{q} {seq}").unwrap();
            }
            file.borrow_mut().flush().unwrap();
            ConsumeStatus::Success
        };
        let _consumer = PushConsumer::start(
            orderly_config(&ns, "og-kill", "child"),
            &[("OrderKill", "*")],
            listener,
        )
        .await
        .unwrap();
        // Consume until killed.
        loop {
            glommio::timer::sleep(Duration::from_secs(3600)).await;
        }
    });
}

fn read_child_log(path: &std::path::Path) -> Vec<(i32, u64)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (q, seq) = line.split_once(' ')?;
            Some((q.parse().ok()?, seq.parse().ok()?))
        })
        .collect()
}

/// This test binary run again as the ignored `orderly_child_consumer` test: an orderly consumer
/// in its own process, logging to `child_log`, that can be killed by PID.
fn spawn_child_consumer(ns: &str, child_log: &std::path::Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "orderly_child_consumer",
            "--nocapture",
        ])
        .env(CHILD_ENV, format!("{ns}|{}", child_log.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits (up to 150 s: the killed consumer's locks lapse after the broker's 60 s lease) until
/// the survivor's log and the killed consumer's together hold `total` distinct messages.
async fn wait_until_all_consumed_by_either(log: &Log, child_log: &std::path::Path, total: u64) {
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let mut seen = per_queue(&log.borrow());
        for (q, seqs) in per_queue(&read_child_log(child_log)) {
            seen.entry(q).or_default().extend(seqs);
        }
        let distinct: u64 = seen
            .values()
            .map(|s| s.iter().collect::<std::collections::BTreeSet<_>>().len() as u64)
            .sum();
        if distinct == total {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {distinct}/{total} consumed"
        );
        glommio::timer::sleep(Duration::from_millis(200)).await;
    }
}

/// Per queue, both consumers consumed contiguously; a queue the killed one never had is the
/// survivor's from 0, and one it had was taken over with no gap and finished by the survivor.
fn check_hand_over(survivor_log: &[(i32, u64)], killed_log: &[(i32, u64)]) {
    let mine = per_queue(survivor_log);
    let theirs = per_queue(killed_log);
    for queue in 0..QUEUES {
        let a = mine.get(&queue).cloned().unwrap_or_default();
        let b = theirs.get(&queue).cloned().unwrap_or_default();
        assert_contiguous("survivor", queue, &a);
        assert_contiguous("killed", queue, &b);
        if b.is_empty() {
            assert_eq!(a.first(), Some(&0));
            continue;
        }
        // Taken over: the survivor starts at or before the first message the killed
        // consumer had not consumed (redelivery of uncommitted ones is allowed), never
        // after it, and never consumed the queue while the other held it.
        assert_eq!(b.first(), Some(&0));
        let first_mine = *a.first().expect("the survivor took the queue over");
        assert!(
            first_mine <= b.last().unwrap() + 1,
            "gap at hand-over on queue {queue}"
        );
        assert_eq!(a.last(), Some(&49));
    }
}

#[test]
fn a_killed_orderly_consumer_hands_its_queues_on_in_order_with_nothing_lost() {
    let cluster = Cluster::start();
    let (ns, broker) = cluster.addrs();
    let dir = tempfile::tempdir().unwrap();
    let child_log = dir.path().join("child.log");
    run(move || async move {
        let admin = Admin::new(config(&ns)).unwrap();
        create_topic(&admin, &broker, "OrderKill", QUEUES).await;
        let producer = Producer::start(ProducerConfig::new(config(&ns), "pg")).unwrap();
        let log: Log = Rc::default();
        let survivor = PushConsumer::start(
            orderly_config(&ns, "og-kill", "survivor"),
            &[("OrderKill", "*")],
            logging_listener(log.clone()),
        )
        .await
        .unwrap();
        let mut child = spawn_child_consumer(&ns, &child_log);
        let owned = |c: &PushConsumer| {
            c.assigned_queues()
                .iter()
                .filter(|q| q.topic == "OrderKill")
                .count()
        };
        wait_until("a 2/2 split", || async { owned(&survivor) == 2 }).await;
        produce(&producer, "OrderKill", 0, 30).await;
        wait_until("both consumed", || async {
            log.borrow().len() >= 60 && read_child_log(&child_log).len() >= 60
        })
        .await;
        // Killed by PID, mid-run: its locks stay until the broker's lease lapses.
        child.kill().unwrap();
        child.wait().unwrap();
        produce(&producer, "OrderKill", 30, 50).await;
        wait_until_all_consumed_by_either(&log, &child_log, QUEUES as u64 * 50).await;
        survivor.shutdown().await;
        producer.shutdown().await;
        check_hand_over(&log.borrow(), &read_child_log(&child_log));
    });
}
