//! Scheduled delivery end to end through real `ringmq-namesrv` and `ringmq-broker` processes:
//! delay levels, timer messages, the retry schedule and its DLQ, bad schedule properties, and a
//! restart and a kill -9 while messages wait.
//!
//! Times are only ever checked as lower bounds ("not before its due time"); how late a delivery
//! is belongs to the benchmarks. The brokers run short delay levels (`1s 2s 3s 4s 5s`) so the
//! level arithmetic is visible without long waits.

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::cluster::{config, create_topic, push_config, wall_ms};
use common::{run, Broker, Namesrv};
use ringmq_client::{
    Admin, ConsumeStatus, Message, MessageExt, MessageQueue, Producer, ProducerConfig, PushConsumer,
};

const LEVELS: &str = "messageDelayLevel=1s 2s 3s 4s 5s";
/// The broker's bound on duplicates after a crash (`schedule::service::DUPLICATES_BOUND`).
const DUPLICATES_BOUND: usize = 4096 + 256 - 1;
/// Deliveries here wait up to the longest delay plus rebalancing: a generous bound.
const DELIVERY_WAIT: Duration = Duration::from_secs(60);

/// (body, message, wall ms at receipt) in arrival order.
type Log = Rc<RefCell<Vec<(String, MessageExt, i64)>>>;

fn logger(log: &Log) -> impl Fn(&MessageQueue, &[MessageExt]) -> ConsumeStatus {
    let sink = log.clone();
    move |_: &MessageQueue, messages: &[MessageExt]| {
        let now = wall_ms();
        for m in messages {
            let body = String::from_utf8_lossy(&m.body).into_owned();
            sink.borrow_mut().push((body, m.clone(), now));
        }
        ConsumeStatus::Success
    }
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + DELIVERY_WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
}

fn due_ms(m: &MessageExt) -> Option<i64> {
    m.property("TIMER_OUT_MS")?.parse().ok()
}

/// A delivered held message: stored and received no earlier than its due time.
fn assert_not_early(body: &str, m: &MessageExt, received_ms: i64) {
    let due = due_ms(m).unwrap_or_else(|| panic!("{body}: no due time stamped"));
    assert!(
        m.store_timestamp_ms >= due,
        "{body}: stored at {} before due {due}",
        m.store_timestamp_ms
    );
    assert!(received_ms >= due, "{body}: received before due");
}

/// The seven sends of the delay test as (body, message, least delay in ms after `sent_ms`):
/// delay levels (an out-of-range level is clamped to the last), relative and absolute timers,
/// and two that are not held at all (level 0, a deliver time in the past).
fn scheduled_sends(sent_ms: i64) -> [(&'static str, Message, i64); 7] {
    [
        (
            "lvl2",
            Message::new("Sched", "lvl2")
                .with_tags("TagX")
                .with_delay_level(2),
            2000,
        ),
        (
            "lvl99",
            Message::new("Sched", "lvl99").with_property("DELAY", "99"),
            5000,
        ),
        (
            "t700",
            Message::new("Sched", "t700").with_delay_time_ms(700),
            700,
        ),
        (
            "tsec",
            Message::new("Sched", "tsec").with_delay_time_sec(1),
            1000,
        ),
        (
            "tabs",
            Message::new("Sched", "tabs").with_deliver_time_ms(sent_ms + 1500),
            1500,
        ),
        (
            "lvl0",
            Message::new("Sched", "lvl0").with_property("DELAY", "0"),
            0,
        ),
        (
            "past",
            Message::new("Sched", "past").with_deliver_time_ms(sent_ms - 10_000),
            0,
        ),
    ]
}

/// Every held message was stored and received no earlier than its due time, which is at least
/// its delay after sending, and arrives on its own topic without DELAY; the others carry no
/// due time.
fn check_held_not_before_due(log: &Log, min_delay: &BTreeMap<String, i64>, sent_ms: i64) {
    for (body, m, received) in log.borrow().iter() {
        let delay = min_delay[body.as_str()];
        if delay == 0 {
            assert_eq!(due_ms(m), None, "{body} is not held");
            continue;
        }
        assert_not_early(body, m, *received);
        assert!(
            due_ms(m).unwrap() >= sent_ms + delay,
            "{body}: due earlier than its delay"
        );
        assert_eq!(
            m.property("DELAY"),
            None,
            "{body}: DELAY removed on delivery"
        );
        assert_eq!(m.topic, "Sched");
    }
}

/// What the schedule moved aside comes back on delivery: tags and the real topic, and the
/// timer's stamps.
fn check_restored_properties(log: &Log) {
    let by_body: BTreeMap<_, _> = log
        .borrow()
        .iter()
        .map(|(b, m, _)| (b.clone(), m.clone()))
        .collect();
    assert_eq!(by_body["lvl2"].tags(), Some("TagX"), "tags restored");
    assert_eq!(by_body["lvl2"].property("REAL_TOPIC"), Some("Sched"));
    assert!(by_body["t700"].property("TIMER_ENQUEUE_MS").is_some());
    assert!(by_body["tabs"].property("TIMER_DELIVER_MS").is_some());
}

#[test]
fn delay_levels_and_timers_are_delivered_not_before_due() {
    let namesrv = Namesrv::start();
    let ns = namesrv.addr_string();
    let broker = Broker::start(
        &ns,
        "broker-a",
        &["--set", LEVELS, "--set", "timerMaxDelaySec=60"],
    );
    let addr = broker.addr();
    run(move || async move {
        let admin = Admin::new(config(&ns)).unwrap();
        create_topic(&admin, &addr, "Sched", 4).await;
        let log: Log = Rc::default();
        let consumer = PushConsumer::start(
            push_config(&ns, "cg-sched", "s"),
            &[("Sched", "*")],
            logger(&log),
        )
        .await
        .unwrap();
        let producer = Producer::start(ProducerConfig::new(config(&ns), "pg-sched")).unwrap();
        let sent_ms = wall_ms();
        let sends = scheduled_sends(sent_ms);
        let mut min_delay = BTreeMap::new();
        for (name, message, delay) in sends {
            producer.send(message).await.unwrap();
            min_delay.insert(name.to_string(), delay);
        }
        wait_for("all seven delivered", || log.borrow().len() >= 7).await;
        check_held_not_before_due(&log, &min_delay, sent_ms);
        check_restored_properties(&log);
        assert_eq!(log.borrow().len(), 7, "each delivered once");
        consumer.shutdown().await;
        producer.shutdown().await;
        admin.shutdown();
    });
    drop(broker);
    drop(namesrv);
}

#[test]
fn bad_schedule_properties_get_javas_answers() {
    let namesrv = Namesrv::start();
    let ns = namesrv.addr_string();
    let broker = Broker::start(&ns, "broker-a", &["--set", "timerMaxDelaySec=60"]);
    let addr = broker.addr();
    run(move || async move {
        let admin = Admin::new(config(&ns)).unwrap();
        create_topic(&admin, &addr, "Bad", 1).await;
        let producer = Producer::start(ProducerConfig::new(config(&ns), "pg-bad")).unwrap();
        let garbage = Message::new("Bad", "x").with_property("DELAY", "soon");
        let e = producer.send(garbage).await.unwrap_err().to_string();
        assert!(
            e.contains("code 1:") && e.contains("NumberFormatException"),
            "{e}"
        );
        let too_far = Message::new("Bad", "x").with_delay_time_sec(61);
        let e = producer.send(too_far).await.unwrap_err().to_string();
        assert!(
            e.contains("code 13:") && e.contains("timer message illegal"),
            "{e}"
        );
        assert!(e.contains("max delay 60000ms"), "{e}");
        let garbage_timer = Message::new("Bad", "x").with_property("TIMER_DELAY_MS", "1e3");
        let e = producer.send(garbage_timer).await.unwrap_err().to_string();
        assert!(e.contains("code 13:"), "{e}");
        // The broker still serves.
        producer.send(Message::new("Bad", "fine")).await.unwrap();
        producer.shutdown().await;
        admin.shutdown();
    });
    drop(broker);
    drop(namesrv);
}

#[test]
fn reconsume_later_comes_back_at_level_3_then_level_4() {
    let namesrv = Namesrv::start();
    let ns = namesrv.addr_string();
    let broker = Broker::start(&ns, "broker-a", &["--set", LEVELS]);
    let addr = broker.addr();
    run(move || async move {
        let admin = Admin::new(config(&ns)).unwrap();
        create_topic(&admin, &addr, "Later", 1).await;
        let log: Log = Rc::default();
        let sink = log.clone();
        let listener = move |_: &MessageQueue, messages: &[MessageExt]| {
            let m = &messages[0];
            sink.borrow_mut()
                .push((String::new(), m.clone(), wall_ms()));
            if sink.borrow().len() <= 2 {
                ConsumeStatus::ReconsumeLater
            } else {
                ConsumeStatus::Success
            }
        };
        let consumer = PushConsumer::start(
            push_config(&ns, "cg-later", "l"),
            &[("Later", "*")],
            listener,
        )
        .await
        .unwrap();
        let producer = Producer::start(ProducerConfig::new(config(&ns), "pg-later")).unwrap();
        producer.send(Message::new("Later", "flaky")).await.unwrap();
        wait_for("three attempts", || log.borrow().len() >= 3).await;
        let attempts = log.borrow().clone();
        let (first, second, third) = (&attempts[0], &attempts[1], &attempts[2]);
        assert_eq!(second.1.reconsume_times, 1);
        assert_eq!(third.1.reconsume_times, 2);
        assert_eq!(second.1.msg_id(), first.1.msg_id());
        // Level 3 (3 s here) after the first rejection, level 4 (4 s) after the second: the
        // due time is set when the broker takes the send-back, after the listener returned.
        assert!(
            second.2 - first.2 >= 3000,
            "second attempt {} ms after the first",
            second.2 - first.2
        );
        assert!(
            third.2 - second.2 >= 4000,
            "third attempt {} ms after the second",
            third.2 - second.2
        );
        assert_not_early("attempt 2", &second.1, second.2);
        assert_not_early("attempt 3", &third.1, third.2);
        assert_eq!(
            third.1.topic, "Later",
            "the listener sees the original topic"
        );
        consumer.shutdown().await;
        producer.shutdown().await;
        admin.shutdown();
    });
    drop(broker);
    drop(namesrv);
}

/// Sends timers and level messages, stops the broker while they wait (`kill9` or SIGTERM),
/// restarts it and consumes everything. Returns (distinct bodies, deliveries).
fn restart_while_waiting(kill9: bool) -> (usize, usize) {
    const TIMERS: usize = 200;
    const LEVEL_MSGS: usize = 100;
    let namesrv = Namesrv::start();
    let ns = namesrv.addr_string();
    let store = tempfile::tempdir().unwrap();
    let mut broker = Broker::start_in(&ns, "broker-a", Some(store.path()), &["--set", LEVELS]);
    let addr = broker.addr();
    let ns2 = ns.clone();
    run(move || async move {
        let admin = Admin::new(config(&ns2)).unwrap();
        create_topic(&admin, &addr, "Crash", 4).await;
        let producer = Producer::start(ProducerConfig::new(config(&ns2), "pg-crash")).unwrap();
        for i in 0..TIMERS {
            let m = Message::new("Crash", format!("t{i}")).with_delay_time_ms(1000 + 10 * i as i64);
            producer.send(m).await.unwrap();
        }
        for i in 0..LEVEL_MSGS {
            producer
                .send(Message::new("Crash", format!("l{i}")).with_delay_level(2))
                .await
                .unwrap();
        }
        // Let part of them come due, so the stop lands while deliveries are in progress.
        glommio::timer::sleep(Duration::from_millis(1500)).await;
        producer.shutdown().await;
        admin.shutdown();
    });
    if kill9 {
        broker.kill9();
    } else {
        broker.stop();
    }
    drop(broker);
    let broker = Broker::start_in(&ns, "broker-a", Some(store.path()), &["--set", LEVELS]);
    let counts = std::sync::Arc::new(std::sync::Mutex::new((0, 0)));
    let out = counts.clone();
    run(move || async move {
        let log: Log = Rc::default();
        let consumer = PushConsumer::start(
            push_config(&ns, "cg-crash", "c"),
            &[("Crash", "*")],
            logger(&log),
        )
        .await
        .unwrap();
        let total = TIMERS + LEVEL_MSGS;
        let distinct = || {
            log.borrow()
                .iter()
                .map(|(b, _, _)| b.clone())
                .collect::<std::collections::BTreeSet<_>>()
        };
        wait_for("every held message delivered", || distinct().len() >= total).await;
        consumer.shutdown().await;
        for (body, m, received) in log.borrow().iter() {
            assert_not_early(body, m, *received);
        }
        *out.lock().unwrap() = (distinct().len(), log.borrow().len());
    });
    drop(broker);
    drop(namesrv);
    let counts = *counts.lock().unwrap();
    counts
}

#[test]
fn a_clean_restart_while_messages_wait_loses_and_repeats_nothing() {
    let (distinct, deliveries) = restart_while_waiting(false);
    assert_eq!(distinct, 300);
    assert_eq!(
        deliveries, 300,
        "a clean stop writes the progress: no duplicates"
    );
}

#[test]
fn a_kill_9_while_messages_wait_loses_nothing_and_repeats_within_the_bound() {
    let (distinct, deliveries) = restart_while_waiting(true);
    assert_eq!(distinct, 300, "every scheduled message delivered");
    assert!(
        deliveries - distinct <= DUPLICATES_BOUND,
        "{} duplicates",
        deliveries - distinct
    );
}

/// Creates group cg-dlq with retryMaxTimes 1 and checks the broker lists it so.
async fn create_group_retrying_once(admin: &Admin, addr: &str) {
    let group = ringmq_client::SubscriptionGroupConfig {
        retry_max_times: 1,
        ..ringmq_client::SubscriptionGroupConfig::new("cg-dlq")
    };
    admin.create_subscription_group(addr, &group).await.unwrap();
    let listed = admin.subscription_groups(addr).await.unwrap();
    assert_eq!(listed.subscription_group_table["cg-dlq"].retry_max_times, 1);
}

/// A listener that records every delivery attempt in `attempts` and always asks for a retry.
fn always_later(attempts: &Log) -> impl Fn(&MessageQueue, &[MessageExt]) -> ConsumeStatus {
    let sink = attempts.clone();
    move |_: &MessageQueue, messages: &[MessageExt]| {
        for m in messages {
            sink.borrow_mut()
                .push((String::new(), m.clone(), wall_ms()));
        }
        ConsumeStatus::ReconsumeLater
    }
}

/// Waits (bounded) until %DLQ%cg-dlq has a route, starts a reader group on it logging into
/// `dlq`, and waits until something arrives; returns the reader for shutdown.
async fn read_dlq_once_routed(admin: &Admin, ns: &str, dlq: &Log) -> Option<PushConsumer> {
    let mut reader = None;
    let deadline = Instant::now() + DELIVERY_WAIT;
    while dlq.borrow().is_empty() {
        assert!(Instant::now() < deadline, "nothing readable in %DLQ%cg-dlq");
        if reader.is_none() && admin.topic_route("%DLQ%cg-dlq").await.is_ok() {
            let c = PushConsumer::start(
                push_config(ns, "cg-dlq-reader", "r"),
                &[("%DLQ%cg-dlq", "*")],
                logger(dlq),
            )
            .await
            .unwrap();
            reader = Some(c);
        }
        glommio::timer::sleep(Duration::from_millis(100)).await;
    }
    reader
}

#[test]
fn a_group_with_retry_max_times_1_ends_in_its_readable_dlq() {
    let namesrv = Namesrv::start();
    let ns = namesrv.addr_string();
    let broker = Broker::start(&ns, "broker-a", &["--set", LEVELS]);
    let addr = broker.addr();
    run(move || async move {
        let admin = Admin::new(config(&ns)).unwrap();
        create_topic(&admin, &addr, "Doomed", 1).await;
        create_group_retrying_once(&admin, &addr).await;
        let attempts: Log = Rc::default();
        let consumer = PushConsumer::start(
            push_config(&ns, "cg-dlq", "d"),
            &[("Doomed", "*")],
            always_later(&attempts),
        )
        .await
        .unwrap();
        let producer = Producer::start(ProducerConfig::new(config(&ns), "pg-dlq")).unwrap();
        producer
            .send(Message::new("Doomed", "doomed"))
            .await
            .unwrap();
        // Attempt 1, then the retry at level 3, then the DLQ: read it with another group.
        let dlq: Log = Rc::default();
        let reader = read_dlq_once_routed(&admin, &ns, &dlq).await;
        let (body, m, _) = dlq.borrow()[0].clone();
        assert_eq!(body, "doomed");
        assert_eq!(m.topic, "%DLQ%cg-dlq");
        assert_eq!(m.property("RETRY_TOPIC"), Some("Doomed"));
        assert_eq!(
            attempts.borrow().len(),
            2,
            "one first delivery and one retry"
        );
        assert_eq!(attempts.borrow()[1].1.reconsume_times, 1);
        admin
            .delete_subscription_group(&addr, "cg-dlq", false)
            .await
            .unwrap();
        let listed = admin.subscription_groups(&addr).await.unwrap();
        assert!(!listed.subscription_group_table.contains_key("cg-dlq"));
        if let Some(r) = reader {
            r.shutdown().await;
        }
        consumer.shutdown().await;
        producer.shutdown().await;
        admin.shutdown();
    });
    drop(broker);
    drop(namesrv);
}
