//! The transaction service against a real store in a temp dir, without a broker process.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::rc::Rc;

use ringmq_proto::code::ResponseCode;
use ringmq_proto::command::RemotingCommand;
use ringmq_proto::header::{
    CheckTransactionStateRequestHeader, CommandHeader, EndTransactionRequestHeader,
    TRANSACTION_COMMIT_TYPE, TRANSACTION_NOT_TYPE, TRANSACTION_ROLLBACK_TYPE,
};
use ringmq_proto::message::properties::{encode_properties, find_property};
use ringmq_proto::message::{sysflag, DecodedRecord, Record};
use ringmq_testkit::sample_record;

use super::check::{CheckChannel, ProducerDirectory};
use super::*;
use crate::store::{GetRequest, Store, StoreConfig};

const SHARD: u8 = 1;
const FAR_FUTURE_MS: i64 = 4_000_000_000_000;

fn store_config(root: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(root, SHARD);
    c.segment_size_bytes = 1024 * 1024;
    c.tail_cache_bytes = 256 * 1024;
    c.max_record_bytes = 64 * 1024;
    c
}

fn run<F: Future<Output = ()> + 'static>(f: impl FnOnce(std::path::PathBuf) -> F + Send + 'static) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .spawn(move || f(root))
        .expect("glommio executor (run with `ulimit -l unlimited`)")
        .join()
        .unwrap();
}

fn props(uniq: &str, group: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    let base = [("TRAN_MSG", "true"), ("UNIQ_KEY", uniq), ("PGROUP", group)];
    encode_properties(base.iter().chain(extra).copied(), &mut out);
    out
}

fn real<'a>(queue_id: i32, body: &'a [u8], properties: &'a [u8]) -> Record<'a> {
    Record {
        sys_flag: sysflag::TRANSACTION_PREPARED_TYPE,
        ..sample_record(b"TxTopic", queue_id, body, properties)
    }
}

/// (half offset, commit-log offset) of a half message sent with group `group`.
async fn send_half(tx: &TransactionService, store: &Store, uniq: &str, group: &str) -> (i64, i64) {
    let p = props(uniq, group, &[]);
    let out = tx
        .append_half(store, &real(2, uniq.as_bytes(), &p), group)
        .await
        .unwrap();
    let r = out.records[0];
    (r.queue_offset as i64, r.physical_offset as i64)
}

fn end_header(group: &str, half: (i64, i64), state: i32) -> EndTransactionRequestHeader {
    let mut ext = ringmq_proto::command::ExtFields::new();
    ext.insert("producerGroup", group);
    ext.insert("tranStateTableOffset", half.0.to_string());
    ext.insert("commitLogOffset", half.1.to_string());
    ext.insert("commitOrRollback", state.to_string());
    ext.insert("msgId", "m");
    EndTransactionRequestHeader::read_from(&ext).unwrap()
}

async fn open(store: &Store, root: &Path, config: TransactionConfig) -> TransactionService {
    TransactionService::open(store, root, SHARD, config)
        .await
        .unwrap()
}

async fn bodies(store: &Store, topic: &str, queue_id: i32) -> Vec<Vec<u8>> {
    let got = store
        .get_messages(&GetRequest {
            topic,
            queue_id,
            offset: 0,
            max_count: 1000,
            max_bytes: 1 << 24,
            tag_hashes: None,
        })
        .await
        .unwrap();
    let mut out = Vec::new();
    for_each_record(&got.body, |r| out.push(r.body.to_vec()));
    out
}

#[test]
fn commit_stores_the_real_message_once_rollback_stores_nothing_visible() {
    run(|root| async move {
        let store = Store::open(store_config(&root)).await.unwrap();
        let tx = open(&store, &root, TransactionConfig::default()).await;
        let a = send_half(&tx, &store, "A", "g").await;
        let b = send_half(&tx, &store, "B", "g").await;
        assert_eq!((a.0, b.0), (0, 1), "half-queue offsets are dense");
        assert!(
            bodies(&store, "TxTopic", 2).await.is_empty(),
            "halves are invisible"
        );
        for _ in 0..2 {
            let done = tx
                .end(&store, &end_header("g", a, TRANSACTION_COMMIT_TYPE), 1)
                .await;
            assert!(matches!(done, EndOutcome::Done));
        }
        let done = tx
            .end(&store, &end_header("g", b, TRANSACTION_ROLLBACK_TYPE), 1)
            .await;
        assert!(matches!(done, EndOutcome::Done));
        let late = tx
            .end(&store, &end_header("g", b, TRANSACTION_COMMIT_TYPE), 1)
            .await;
        assert!(matches!(late, EndOutcome::Done));
        assert_eq!(bodies(&store, "TxTopic", 2).await, vec![b"A".to_vec()]);
        assert_eq!(
            bodies(&store, OP_TOPIC, 0).await,
            vec![b"0".to_vec(), b"1".to_vec()]
        );
        let c = tx.counters();
        assert_eq!((c.half, c.committed, c.rolled_back), (2, 1, 1));
        let got = store
            .get_messages(&GetRequest {
                topic: "TxTopic",
                queue_id: 2,
                offset: 0,
                max_count: 1,
                max_bytes: 1 << 20,
                tag_hashes: None,
            })
            .await
            .unwrap();
        let rec = DecodedRecord::decode(&got.body).unwrap().record;
        assert_eq!(
            sysflag::transaction_type(rec.sys_flag),
            sysflag::TRANSACTION_COMMIT_TYPE
        );
        assert_eq!(rec.prepared_transaction_offset, a.1);
        assert!(find_property(rec.properties, "REAL_TOPIC").is_none());
        store.close().await.unwrap();
    });
}

fn remark(outcome: EndOutcome) -> String {
    match outcome {
        EndOutcome::Refused(code, remark) => {
            assert_eq!(code, ResponseCode::SystemError);
            remark
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn bad_end_transaction_inputs_get_javas_remarks() {
    run(|root| async move {
        let store = Store::open(store_config(&root)).await.unwrap();
        let tx = open(&store, &root, TransactionConfig::default()).await;
        let a = send_half(&tx, &store, "A", "g").await;
        let commit = |g: &str, h| end_header(g, h, TRANSACTION_COMMIT_TYPE);
        assert_eq!(
            remark(tx.end(&store, &commit("other", a), 1).await),
            "The producer group wrong"
        );
        assert_eq!(
            remark(tx.end(&store, &commit("g", (a.0 + 5, a.1)), 1).await),
            "The transaction state table offset wrong"
        );
        for offset in [a.1 + 1, a.1 + 1_000_000, -1, 3 << 48, i64::MAX] {
            assert_eq!(
                remark(tx.end(&store, &commit("g", (a.0, offset)), 1).await),
                REMARK_NOT_FOUND
            );
        }
        // A normal message is not a half message.
        let normal = store
            .append(&[Record {
                topic: b"Plain",
                ..real(0, b"x", b"")
            }])
            .await
            .unwrap();
        let off = normal.records[0].physical_offset as i64;
        assert_eq!(
            remark(tx.end(&store, &commit("g", (0, off)), 1).await),
            REMARK_NOT_FOUND
        );
        let unknown = tx
            .end(&store, &end_header("g", a, TRANSACTION_NOT_TYPE), 1)
            .await;
        assert!(matches!(unknown, EndOutcome::Ignored));
        assert!(matches!(
            tx.end(&store, &end_header("g", a, 5), 1).await,
            EndOutcome::Ignored
        ));
        assert!(bodies(&store, "TxTopic", 2).await.is_empty());
        store.close().await.unwrap();
    });
}

#[derive(Clone)]
struct FakeChannel {
    id: usize,
    sent: Rc<RefCell<Vec<(usize, RemotingCommand)>>>,
}

impl CheckChannel for FakeChannel {
    fn send_check(&self, request: RemotingCommand) {
        self.sent.borrow_mut().push((self.id, request));
    }
}

#[derive(Default)]
struct FakeDirectory {
    groups: HashMap<String, Vec<FakeChannel>>,
    sent: Rc<RefCell<Vec<(usize, RemotingCommand)>>>,
}

impl FakeDirectory {
    fn with(group: &str, producers: usize) -> FakeDirectory {
        let mut d = FakeDirectory::default();
        let list = (0..producers)
            .map(|id| FakeChannel {
                id,
                sent: d.sent.clone(),
            })
            .collect();
        d.groups.insert(group.to_string(), list);
        d
    }
}

impl ProducerDirectory for FakeDirectory {
    type Channel = FakeChannel;
    fn producers(&self, group: &str) -> impl Future<Output = Vec<FakeChannel>> {
        let found = self.groups.get(group).cloned().unwrap_or_default();
        async move { found }
    }
}

#[test]
fn checks_spread_over_producers_wait_without_any_and_give_up_after_the_maximum() {
    run(|root| async move {
        let store = Store::open(store_config(&root)).await.unwrap();
        let config = TransactionConfig {
            check_max: 2,
            ..TransactionConfig::default()
        };
        let tx = open(&store, &root, config).await;
        let mut halves = Vec::new();
        for i in 0..4 {
            halves.push(send_half(&tx, &store, &format!("U{i}"), "g").await);
        }
        send_half(&tx, &store, "orphan", "nobody").await;
        let p = props("immune", "g", &[("CHECK_IMMUNITY_TIME_IN_SECONDS", "3600")]);
        tx.append_half(&store, &real(2, b"i", &p), "g")
            .await
            .unwrap();
        let dir = FakeDirectory::with("g", 2);
        // Too young for the default 6 s timeout: nothing is checked.
        let now = crate::metadata::topics::now_ms();
        assert_eq!(tx.check_round(&store, &dir, now).await.unwrap().checked, 0);
        let r = tx.check_round(&store, &dir, FAR_FUTURE_MS).await.unwrap();
        assert_eq!(
            (r.checked, r.no_producer, r.given_up),
            (5, 1, 0),
            "immunity has passed too"
        );
        let sent = dir.sent.borrow().clone();
        assert!(
            sent.iter().any(|s| s.0 == 0) && sent.iter().any(|s| s.0 == 1),
            "both producers asked"
        );
        let (_, first) = &sent[0];
        assert!(first.is_oneway());
        let h = CheckTransactionStateRequestHeader::read_from(&first.ext_fields).unwrap();
        assert_eq!((h.tran_state_table_offset, h.commit_log_offset), halves[0]);
        assert_eq!(h.transaction_id.as_deref(), Some("U0"));
        let body = DecodedRecord::decode(&first.body).unwrap().record;
        assert_eq!(
            (body.topic, body.queue_id, body.body),
            (&b"TxTopic"[..], 2, &b"U0"[..])
        );
        // Resolved between rounds: not asked again.
        tx.end(
            &store,
            &end_header("g", halves[1], TRANSACTION_COMMIT_TYPE),
            1,
        )
        .await;
        let r = tx.check_round(&store, &dir, FAR_FUTURE_MS).await.unwrap();
        assert_eq!(r.checked, 4);
        let r = tx.check_round(&store, &dir, FAR_FUTURE_MS).await.unwrap();
        assert_eq!((r.checked, r.given_up, r.no_producer), (0, 4, 1));
        assert_eq!(bodies(&store, CHECK_MAX_TOPIC, 0).await.len(), 4);
        assert_eq!(tx.counters().given_up, 4);
        store.close().await.unwrap();
    });
}

#[test]
fn resolutions_and_check_counts_survive_a_restart() {
    run(|root| async move {
        let (a, b, c);
        {
            let store = Store::open(store_config(&root)).await.unwrap();
            let tx = open(&store, &root, TransactionConfig::default()).await;
            a = send_half(&tx, &store, "A", "g").await;
            b = send_half(&tx, &store, "B", "g").await;
            c = send_half(&tx, &store, "C", "g").await;
            tx.end(&store, &end_header("g", a, TRANSACTION_COMMIT_TYPE), 1)
                .await;
            tx.end(&store, &end_header("g", c, TRANSACTION_ROLLBACK_TYPE), 1)
                .await;
            let dir = FakeDirectory::with("g", 1);
            assert_eq!(
                tx.check_round(&store, &dir, FAR_FUTURE_MS)
                    .await
                    .unwrap()
                    .checked,
                1
            );
            tx.persist().unwrap();
            store.close().await.unwrap();
        }
        let store = Store::open(store_config(&root)).await.unwrap();
        let tx = open(
            &store,
            &root,
            TransactionConfig {
                check_max: 2,
                ..Default::default()
            },
        )
        .await;
        for h in [a, c] {
            let again = tx
                .end(&store, &end_header("g", h, TRANSACTION_COMMIT_TYPE), 1)
                .await;
            assert!(matches!(again, EndOutcome::Done));
        }
        assert_eq!(bodies(&store, "TxTopic", 2).await, vec![b"A".to_vec()]);
        assert_eq!(tx.pending(&store), 1);
        let dir = FakeDirectory::with("g", 1);
        let r = tx.check_round(&store, &dir, FAR_FUTURE_MS).await.unwrap();
        assert_eq!(
            r.checked, 1,
            "only B is pending; its first check was remembered"
        );
        let h = CheckTransactionStateRequestHeader::read_from(&dir.sent.borrow()[0].1.ext_fields)
            .unwrap();
        assert_eq!(h.commit_log_offset, b.1);
        let r = tx.check_round(&store, &dir, FAR_FUTURE_MS).await.unwrap();
        assert_eq!(r.given_up, 1);
        store.close().await.unwrap();
    });
}
