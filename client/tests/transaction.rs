//! Transactional messages end to end: the real name server and broker (two shards) on
//! 127.0.0.1, the client's TransactionProducer and consumers. Commit, rollback and unknown
//! resolved by check-back; a producer that dies; restart and kill -9; bad END_TRANSACTION input;
//! half messages never delivered.

mod common;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use bytes::Bytes;
use common::cluster::create_topic;
use common::{client_config, run, wait_until, Broker, Namesrv};
use ringmq_client::{
    Admin, ClientConfig, LocalTransactionState, Message, MessageExt, ProducerConfig, PullConsumer,
    PullStatus, QueueSelector, TransactionProducer,
};
use ringmq_proto::body::{JsonBody, KvTable};
use ringmq_proto::command::{ExtFields, RemotingCommand};
use ringmq_proto::message::ids::decode_offset_msg_id;
use ringmq_proto::RequestCode;

const TOPIC: &str = "TxTopic";
/// Eight queues over two shards: both shards' logs hold half messages.
const QUEUES: i32 = 8;
/// Fast check-backs for tests: a round every 200 ms for halves older than 300 ms.
const FAST_CHECKS: [&str; 4] = [
    "--set",
    "transactionCheckInterval=200",
    "--set",
    "transactionTimeOut=300",
];

fn broker_args(extra: &[&'static str]) -> Vec<&'static str> {
    let mut args = vec!["--cpus", "2"];
    args.extend_from_slice(extra);
    args
}

fn client(namesrv: &str, instance: &str) -> ClientConfig {
    let mut c = client_config(&[namesrv.to_string()]);
    c.instance_name = instance.to_string();
    c.heartbeat_interval_ms = 500;
    c
}

/// Decides check-backs by body prefix: "commit…" commits, "rollback…" rolls back, else unknown.
fn by_body(message: &MessageExt) -> LocalTransactionState {
    let body = String::from_utf8_lossy(&message.body);
    if body.contains("commit") {
        LocalTransactionState::CommitMessage
    } else if body.contains("rollback") {
        LocalTransactionState::RollbackMessage
    } else {
        LocalTransactionState::Unknown
    }
}

fn producer(
    namesrv: &str,
    instance: &str,
    checks: Rc<RefCell<Vec<String>>>,
) -> TransactionProducer {
    let config = ProducerConfig::new(client(namesrv, instance), "tx-group");
    TransactionProducer::start(
        config,
        Rc::new(move |m: &MessageExt| {
            checks
                .borrow_mut()
                .push(String::from_utf8_lossy(&m.body).into_owned());
            by_body(m)
        }),
    )
    .unwrap()
}

/// Sends `body` in a transaction whose local outcome is `state`; returns the send result.
async fn send(
    p: &TransactionProducer,
    body: &str,
    state: LocalTransactionState,
) -> ringmq_client::SendResult {
    let r = p
        .send_in_transaction(
            Message::new(TOPIC, body.to_string()),
            QueueSelector::RoundRobin,
            |_| state,
        )
        .await
        .unwrap();
    assert_eq!(r.state, state);
    r.send
}

/// Every message of the topic, read by pulling each queue from offset 0.
async fn all_bodies(consumer: &PullConsumer) -> Vec<String> {
    let mut out = Vec::new();
    for queue in consumer.fetch_queues(TOPIC).await.unwrap() {
        let mut offset = 0;
        loop {
            let r = consumer.pull(&queue, "*", offset, 32).await.unwrap();
            if r.status != PullStatus::Found {
                break;
            }
            out.extend(
                r.messages
                    .iter()
                    .map(|m| String::from_utf8_lossy(&m.body).into_owned()),
            );
            offset = r.next_begin_offset;
        }
    }
    out.sort();
    out
}

async fn runtime(admin: &Admin, broker: &str) -> BTreeMap<String, String> {
    let request = RemotingCommand::new_request(
        RequestCode::GetBrokerRuntimeInfo.code(),
        ExtFields::new(),
        Bytes::new(),
    );
    let response = admin.invoke(broker, request).await.unwrap();
    KvTable::from_json(&response.body).unwrap().table
}

async fn counter(admin: &Admin, broker: &str, key: &str) -> u64 {
    runtime(admin, broker)
        .await
        .get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:03}")).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn commit_rollback_and_unknown_resolved_by_check_back_across_shards() {
    let namesrv = Namesrv::start();
    let broker = Broker::start(
        &namesrv.addr_string(),
        "broker-a",
        &broker_args(&FAST_CHECKS),
    );
    let (ns, addr) = (namesrv.addr_string(), broker.addr());
    run(move || async move {
        let admin = Admin::new(client(&ns, "admin")).unwrap();
        create_topic(&admin, &addr, TOPIC, QUEUES).await;
        let checks = Rc::new(RefCell::new(Vec::new()));
        let p = producer(&ns, "p1", checks.clone());
        let mut expected = Vec::new();
        let mut shards = BTreeSet::new();
        for name in names("commit", 16) {
            let r = send(&p, &name, LocalTransactionState::CommitMessage).await;
            // The shard sits in bits 48.. of the half's commit-log offset.
            shards.insert(
                decode_offset_msg_id(&r.offset_msg_id)
                    .unwrap()
                    .commit_log_offset
                    >> 48,
            );
            expected.push(name);
        }
        assert_eq!(shards.len(), 2, "half messages on both shards");
        for name in names("rollback", 16) {
            send(&p, &name, LocalTransactionState::RollbackMessage).await;
        }
        for name in names("unknown-commit", 16) {
            send(&p, &name, LocalTransactionState::Unknown).await;
            expected.push(name);
        }
        for name in names("unknown-rollback", 16) {
            send(&p, &name, LocalTransactionState::Unknown).await;
        }
        let expected = sorted(expected);
        let consumer = PullConsumer::start(client(&ns, "c1"), "tx-consumer").unwrap();
        wait_until("committed and checked-back messages visible", || async {
            all_bodies(&consumer).await.len() >= expected.len()
        })
        .await;
        wait_until("every transaction resolved", || async {
            counter(&admin, &addr, "ringmqTransactionRolledBack").await == 32
        })
        .await;
        assert_eq!(
            all_bodies(&consumer).await,
            expected,
            "exactly once, rollbacks never"
        );
        let table = runtime(&admin, &addr).await;
        assert_eq!(table["ringmqTransactionHalf"], "64");
        assert_eq!(table["ringmqTransactionCommitted"], "32");
        assert_eq!(table["ringmqShardsAnswered"], "2");
        let checked: BTreeSet<String> = checks.borrow().iter().cloned().collect();
        for name in names("unknown-commit", 16) {
            assert!(checked.contains(&name), "{name} was checked back");
        }
        assert!(
            !checked.iter().any(|b| b.starts_with("commit-")),
            "decided ones are not checked"
        );
        p.shutdown().await;
    });
}

#[test]
fn half_messages_are_never_delivered_even_by_pull_at_their_offsets() {
    let namesrv = Namesrv::start();
    // No check-back during the test: unknown halves stay pending.
    let broker = Broker::start(&namesrv.addr_string(), "broker-a", &broker_args(&[]));
    let (ns, addr) = (namesrv.addr_string(), broker.addr());
    run(move || async move {
        let admin = Admin::new(client(&ns, "admin")).unwrap();
        create_topic(&admin, &addr, TOPIC, QUEUES).await;
        let p = producer(&ns, "p1", Rc::default());
        let mut halves = Vec::new();
        for name in names("pending", 16) {
            halves.push(send(&p, &name, LocalTransactionState::Unknown).await);
        }
        let consumer = PullConsumer::start(client(&ns, "c1"), "tx-consumer").unwrap();
        for half in &halves {
            // The send result's queue offset is the half queue's; nothing is there in the real queue.
            let r = consumer
                .pull(&half.queue, "*", half.queue_offset, 32)
                .await
                .unwrap();
            assert!(
                r.messages.is_empty(),
                "{:?} at {}",
                r.status,
                half.queue_offset
            );
            let r = consumer.pull(&half.queue, "*", 0, 32).await.unwrap();
            assert!(r.messages.is_empty());
            assert_eq!(consumer.max_offset(&half.queue).await.unwrap(), 0);
        }
        // A committed message of the same producer does become visible, alone.
        send(&p, "commit-marker", LocalTransactionState::CommitMessage).await;
        wait_until("the committed marker", || async {
            all_bodies(&consumer).await.len() == 1
        })
        .await;
        assert_eq!(
            all_bodies(&consumer).await,
            vec!["commit-marker".to_string()]
        );
        p.shutdown().await;
    });
}

#[test]
fn a_dead_producers_transactions_are_checked_with_another_producer_of_the_group() {
    let namesrv = Namesrv::start();
    let broker = Broker::start(
        &namesrv.addr_string(),
        "broker-a",
        &broker_args(&FAST_CHECKS),
    );
    let (ns, addr) = (namesrv.addr_string(), broker.addr());
    run(move || async move {
        let admin = Admin::new(client(&ns, "admin")).unwrap();
        create_topic(&admin, &addr, TOPIC, QUEUES).await;
        let survivor_checks = Rc::new(RefCell::new(Vec::new()));
        let survivor = producer(&ns, "survivor", survivor_checks.clone());
        send(
            &survivor,
            "commit-survivor",
            LocalTransactionState::CommitMessage,
        )
        .await;
        // The dying producer cannot decide: its check listener always answers UNKNOWN.
        let config = ProducerConfig::new(client(&ns, "dying"), "tx-group");
        let dying = TransactionProducer::start(
            config,
            Rc::new(|_: &MessageExt| LocalTransactionState::Unknown),
        )
        .unwrap();
        let mut expected = vec!["commit-survivor".to_string()];
        for name in names("orphan-commit", 8) {
            let r = dying
                .send_in_transaction(
                    Message::new(TOPIC, name.clone()),
                    QueueSelector::RoundRobin,
                    |_| LocalTransactionState::Unknown,
                )
                .await
                .unwrap();
            assert_eq!(r.state, LocalTransactionState::Unknown);
            expected.push(name);
        }
        dying.shutdown().await;
        let consumer = PullConsumer::start(client(&ns, "c1"), "tx-consumer").unwrap();
        let expected = sorted(expected);
        wait_until("orphans committed by the survivor", || async {
            all_bodies(&consumer).await == expected
        })
        .await;
        let asked: BTreeSet<String> = survivor_checks.borrow().iter().cloned().collect();
        for name in names("orphan-commit", 8) {
            assert!(asked.contains(&name), "{name} was asked of the survivor");
        }
        survivor.shutdown().await;
    });
}

/// Phase one of [`survives_a_restart`]; returns the send results of the committed ones.
fn before_restart(ns: String, addr: String) -> Vec<ringmq_client::SendResult> {
    let (tx, rx) = std::sync::mpsc::channel();
    run(move || async move {
        let admin = Admin::new(client(&ns, "admin")).unwrap();
        create_topic(&admin, &addr, TOPIC, QUEUES).await;
        let p = producer(&ns, "p1", Rc::default());
        let mut results = Vec::new();
        for name in names("commit", 10) {
            results.push(send(&p, &name, LocalTransactionState::CommitMessage).await);
        }
        for name in names("rollback", 10) {
            send(&p, &name, LocalTransactionState::RollbackMessage).await;
        }
        for name in names("pending-commit", 10) {
            send(&p, &name, LocalTransactionState::Unknown).await;
        }
        wait_until("the oneway END_TRANSACTIONs applied", || async {
            counter(&admin, &addr, "ringmqTransactionRolledBack").await == 10
                && counter(&admin, &addr, "ringmqTransactionCommitted").await == 10
        })
        .await;
        tx.send(results).unwrap();
    });
    rx.recv().unwrap()
}

/// Phase one: decided and undecided transactions, then the broker dies (`kill9`) or stops.
/// Phase two: committed ones are there exactly once, rolled-back ones never, pending ones are
/// checked back and committed, and a repeated END_TRANSACTION for a committed one adds nothing.
fn survives_a_restart(kill9: bool) {
    let namesrv = Namesrv::start();
    let store = tempfile::tempdir().unwrap();
    let ns = namesrv.addr_string();
    // No check-back before the restart.
    let mut broker = Broker::start_in(&ns, "broker-a", Some(store.path()), &broker_args(&[]));
    let committed = before_restart(ns.clone(), broker.addr());
    if kill9 {
        broker.kill9();
    } else {
        broker.stop();
    }
    let broker2 = Broker::start_in(
        &ns,
        "broker-a",
        Some(store.path()),
        &broker_args(&FAST_CHECKS),
    );
    let addr2 = broker2.addr();
    run(move || async move {
        let admin = Admin::new(client(&ns, "admin")).unwrap();
        // The name server routes to the restarted broker once it registered again.
        wait_until("the restarted broker's route", || async {
            admin
                .topic_route(TOPIC)
                .await
                .is_ok_and(|r| r.master_addr("broker-a") == Some(addr2.as_str()))
        })
        .await;
        let p = producer(&ns, "p2", Rc::default());
        // Heartbeat the group to the restarted broker (one decided transaction does it).
        send(&p, "commit-after", LocalTransactionState::CommitMessage).await;
        let mut expected = names("commit", 10);
        expected.extend(names("pending-commit", 10));
        expected.push("commit-after".to_string());
        let expected = sorted(expected);
        let consumer = PullConsumer::start(client(&ns, "c1"), "tx-consumer").unwrap();
        wait_until(
            "pending transactions checked back after the restart",
            || async { all_bodies(&consumer).await.len() >= expected.len() },
        )
        .await;
        // Repeat the commits of phase one: nothing new may appear.
        for r in &committed {
            let response = admin
                .invoke(&addr2, end_request(r, "tx-group", 8))
                .await
                .unwrap();
            assert_eq!(response.code, 0, "{:?}", response.remark);
        }
        assert_eq!(all_bodies(&consumer).await, expected);
        p.shutdown().await;
    });
    drop(broker2);
}

#[test]
fn committed_exactly_once_and_pending_checked_after_kill_9() {
    survives_a_restart(true);
}

#[test]
fn committed_exactly_once_and_pending_checked_after_a_clean_restart() {
    survives_a_restart(false);
}

/// A non-oneway END_TRANSACTION for a send result.
fn end_request(r: &ringmq_client::SendResult, group: &str, state: i32) -> RemotingCommand {
    let offset = decode_offset_msg_id(&r.offset_msg_id)
        .unwrap()
        .commit_log_offset;
    end_raw(group, r.queue_offset, offset, state)
}

fn end_raw(group: &str, table_offset: i64, commit_log_offset: i64, state: i32) -> RemotingCommand {
    let mut ext = ExtFields::new();
    ext.insert("producerGroup", group);
    ext.insert("tranStateTableOffset", table_offset.to_string());
    ext.insert("commitLogOffset", commit_log_offset.to_string());
    ext.insert("commitOrRollback", state.to_string());
    ext.insert("fromTransactionCheck", "false");
    ext.insert("msgId", "m");
    RemotingCommand::new_request(RequestCode::EndTransaction.code(), ext, Bytes::new())
}

/// END_TRANSACTIONs Java refuses, with its remark.
fn bad_cases(
    half: &ringmq_client::SendResult,
    half_offset: i64,
    normal_offset: i64,
) -> Vec<(RemotingCommand, &'static str)> {
    let not_found = "Find prepared transaction message failed";
    vec![
        (end_raw("tx-group", 0, half_offset + 1, 8), not_found),
        (end_raw("tx-group", 0, 1 << 40, 8), not_found),
        (end_raw("tx-group", 0, 127 << 48, 8), not_found),
        (end_raw("tx-group", 0, -5, 12), not_found),
        (end_raw("tx-group", 0, normal_offset, 8), not_found),
        (
            end_raw("other-group", half.queue_offset, half_offset, 8),
            "The producer group wrong",
        ),
        (
            end_raw("tx-group", half.queue_offset + 7, half_offset, 12),
            "The transaction state table offset wrong",
        ),
    ]
}

#[test]
fn bad_end_transaction_inputs_get_javas_codes_and_remarks() {
    let namesrv = Namesrv::start();
    let broker = Broker::start(&namesrv.addr_string(), "broker-a", &broker_args(&[]));
    let (ns, addr) = (namesrv.addr_string(), broker.addr());
    run(move || async move {
        let admin = Admin::new(client(&ns, "admin")).unwrap();
        create_topic(&admin, &addr, TOPIC, QUEUES).await;
        let p = producer(&ns, "p1", Rc::default());
        let half = send(&p, "pending", LocalTransactionState::Unknown).await;
        let normal = p
            .producer()
            .send(Message::new(TOPIC, "plain"))
            .await
            .unwrap();
        let half_offset = decode_offset_msg_id(&half.offset_msg_id)
            .unwrap()
            .commit_log_offset;
        let normal_offset = decode_offset_msg_id(&normal.offset_msg_id)
            .unwrap()
            .commit_log_offset;
        let cases = bad_cases(&half, half_offset, normal_offset);
        for (request, remark) in cases {
            let response = admin.invoke(&addr, request).await.unwrap();
            assert_eq!(response.code, 1, "SYSTEM_ERROR for {remark}");
            assert_eq!(response.remark.as_deref(), Some(remark));
        }
        let mut missing = end_raw("tx-group", 0, half_offset, 8);
        missing.ext_fields.remove("commitLogOffset");
        let response = admin.invoke(&addr, missing).await.unwrap();
        assert_eq!(response.code, 1);
        assert!(response
            .remark
            .unwrap_or_default()
            .contains("commitLogOffset"));
        // UNKNOWN and unknown values change nothing; the broker stays up and the half pending.
        for state in [0, 5] {
            let response = admin
                .invoke(&addr, end_request(&half, "tx-group", state))
                .await
                .unwrap();
            assert_eq!(response.code, 0);
        }
        let consumer = PullConsumer::start(client(&ns, "c1"), "tx-consumer").unwrap();
        assert_eq!(all_bodies(&consumer).await, vec!["plain".to_string()]);
        let response = admin
            .invoke(&addr, end_request(&half, "tx-group", 8))
            .await
            .unwrap();
        assert_eq!(response.code, 0);
        wait_until("the commit visible", || async {
            all_bodies(&consumer).await.len() == 2
        })
        .await;
        assert_eq!(
            all_bodies(&consumer).await,
            vec!["pending".to_string(), "plain".to_string()]
        );
        p.shutdown().await;
    });
}
