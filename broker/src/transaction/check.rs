//! The check-back (Java `TransactionalMessageCheckService` + `TransactionalMessageServiceImpl
//! .check`): every `transactionCheckInterval`, each shard walks its unresolved half messages
//! oldest first. One older than `transactionTimeOut` (or its CHECK_IMMUNITY_TIME_IN_SECONDS) is
//! sent as CHECK_TRANSACTION_STATE to a live producer of its group, rotating over the group's
//! producers; with none connected it waits for the next round. After `transactionCheckMax`
//! checks it is given up: copied to TRANS_CHECK_MAX_TIME_TOPIC and resolved by an op record.
//!
//! Where producers are connected is broker-wide state; the shard reaches it through a
//! [`ProducerDirectory`] the server implements, so this module never imports the server.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use ringmq_proto::code::RequestCode;
use ringmq_proto::command::{ExtFields, RemotingCommand};
use ringmq_proto::header::{CheckTransactionStateRequestHeader, CommandHeader};
use ringmq_proto::message::ids::encode_offset_msg_id;
use ringmq_proto::message::{DecodedRecord, Record};

use super::half::{self, HalfInfo, SYSTEM_QUEUE_ID};
use super::{bump, TransactionError, TransactionService, CHECK_MAX_TOPIC, HALF_TOPIC};
use crate::store::{GetRequest, GetStatus, Store};

/// A connection of a producer that can be asked about a transaction.
pub trait CheckChannel {
    /// Sends a server-initiated oneway request.
    fn send_check(&self, request: RemotingCommand);
}

impl CheckChannel for crate::channel::ConnHandle {
    fn send_check(&self, request: RemotingCommand) {
        // A fresh opaque, in the serialization the client last used.
        self.send_request(request);
    }
}

/// Broker-wide lookup of the live producer connections of a group.
pub trait ProducerDirectory {
    type Channel: CheckChannel;
    /// The group's live producer connections (empty when none is connected).
    fn producers(&self, group: &str) -> impl Future<Output = Vec<Self::Channel>>;
}

/// What one check round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CheckReport {
    pub checked: u64,
    pub given_up: u64,
    /// Due, but no producer of the group was connected: asked again next round.
    pub no_producer: u64,
}

/// Producers per group for one round, with a rotating start so checks spread over them.
struct Producers<C> {
    by_group: HashMap<String, (Vec<C>, usize)>,
}

impl<C: CheckChannel> Producers<C> {
    async fn pick<D: ProducerDirectory<Channel = C>>(
        &mut self,
        directory: &D,
        group: &str,
    ) -> Option<&C> {
        if !self.by_group.contains_key(group) {
            let found = directory.producers(group).await;
            let start = rand::random::<u32>() as usize;
            self.by_group.insert(group.to_string(), (found, start));
        }
        let (list, next) = self.by_group.get_mut(group)?;
        if list.is_empty() {
            return None;
        }
        *next = next.wrapping_add(1);
        Some(&list[*next % list.len()])
    }
}

impl TransactionService {
    /// One check round over this shard's unresolved half messages.
    pub async fn check_round<D: ProducerDirectory>(
        &self,
        store: &Store,
        directory: &D,
        now_ms: i64,
    ) -> Result<CheckReport, TransactionError> {
        let mut report = CheckReport::default();
        let mut producers = Producers {
            by_group: HashMap::new(),
        };
        let max = store.max_offset(HALF_TOPIC, SYSTEM_QUEUE_ID);
        let mut next = self.window.borrow().base();
        while next < max {
            let from = self.first_unresolved(next, max);
            if from >= max {
                break;
            }
            let got = store
                .get_messages(&GetRequest {
                    topic: HALF_TOPIC,
                    queue_id: SYSTEM_QUEUE_ID,
                    offset: from,
                    max_count: super::SCAN_BATCH_RECORDS,
                    max_bytes: super::SCAN_BATCH_BYTES,
                    tag_hashes: None,
                })
                .await?;
            if got.status == GetStatus::OffsetTooSmall {
                // Retention removed them: nobody can be asked about them any more.
                self.window.borrow_mut().skip_below(got.min_offset);
                next = got.min_offset;
                continue;
            }
            let young = self
                .check_records(
                    store,
                    directory,
                    &mut producers,
                    &got.body,
                    now_ms,
                    &mut report,
                )
                .await?;
            if young || got.next_begin_offset <= from {
                break;
            }
            next = got.next_begin_offset;
        }
        Ok(report)
    }

    fn first_unresolved(&self, from: u64, max: u64) -> u64 {
        let w = self.window.borrow();
        (from.max(w.base())..max)
            .find(|&h| !w.is_resolved(h))
            .unwrap_or(max)
    }

    /// Checks or gives up each due record; `true` once a record too young for any check is met
    /// (later ones are younger still).
    async fn check_records<D: ProducerDirectory>(
        &self,
        store: &Store,
        directory: &D,
        producers: &mut Producers<D::Channel>,
        mut body: &[u8],
        now_ms: i64,
        report: &mut CheckReport,
    ) -> Result<bool, TransactionError> {
        while let Ok(decoded) = DecodedRecord::decode(body) {
            body = &body[decoded.total_size.min(body.len())..];
            let rec = decoded.record;
            let half_offset = rec.queue_offset as u64;
            if self.window.borrow().is_resolved(half_offset) {
                continue;
            }
            let Ok(info) = half::half_info(&rec) else {
                // Not a half message we can ask anyone about.
                self.give_up(store, &rec, 0).await?;
                report.given_up += 1;
                continue;
            };
            let age_ms = now_ms.saturating_sub(rec.store_timestamp).max(0) as u64;
            match info.immunity_secs {
                None if age_ms < self.config.timeout_ms => return Ok(true),
                Some(secs) if age_ms < secs.saturating_mul(1000) => continue,
                _ => {}
            }
            let times = self.window.borrow().check_times(half_offset);
            if times >= self.config.check_max {
                self.give_up(store, &rec, times).await?;
                report.given_up += 1;
                continue;
            }
            match producers.pick(directory, &info.producer_group).await {
                Some(channel) => {
                    channel.send_check(check_request(&rec, &info, store_host_id(&rec)));
                    self.window.borrow_mut().note_checked(half_offset);
                    bump(&self.counters.checked, 1);
                    report.checked += 1;
                }
                None => report.no_producer += 1,
            }
        }
        Ok(false)
    }

    /// Copies a half message to TRANS_CHECK_MAX_TIME_TOPIC and resolves it by an op record, in
    /// one append.
    async fn give_up(
        &self,
        store: &Store,
        rec: &Record<'_>,
        times: u32,
    ) -> Result<(), TransactionError> {
        let half_offset = rec.queue_offset as u64;
        if !self.window.borrow_mut().resolve(half_offset) {
            return Ok(());
        }
        let props = half::given_up_properties(rec.properties, times);
        let copy = Record {
            topic: CHECK_MAX_TOPIC.as_bytes(),
            queue_id: SYSTEM_QUEUE_ID,
            properties: &props,
            ..*rec
        };
        let op_body = half_offset.to_string();
        let op_props = half::op_properties();
        let op = half::op_record(rec, op_body.as_bytes(), &op_props);
        self.append_claimed(store, &[copy, op], half_offset).await?;
        bump(&self.counters.given_up, 1);
        tracing::info!(half_offset, times, "transaction given up after its checks");
        Ok(())
    }

    /// The shard's check loop, until the task is cancelled: a round every
    /// `transactionCheckInterval`, progress persisted every `persist_interval`.
    pub async fn run<D: ProducerDirectory>(
        &self,
        store: &Store,
        directory: &D,
        persist_interval: Duration,
        writer: &crate::persist::FileWriter,
    ) {
        let check_every = Duration::from_millis(self.config.check_interval_ms.max(1));
        let tick = check_every
            .min(persist_interval)
            .max(Duration::from_millis(10));
        let mut since_check = Duration::ZERO;
        loop {
            glommio::timer::sleep(tick).await;
            since_check += tick;
            if since_check >= check_every {
                since_check = Duration::ZERO;
                if let Err(e) = self
                    .check_round(store, directory, crate::metadata::topics::now_ms())
                    .await
                {
                    tracing::warn!(error = %e, "transaction check round failed");
                }
            }
            if let Err(e) = self.persist_with(writer).await {
                tracing::warn!(error = %e, "transaction progress not persisted");
            }
        }
    }
}

fn store_host_id(rec: &Record<'_>) -> String {
    encode_offset_msg_id(rec.store_host, rec.physical_offset)
}

/// CHECK_TRANSACTION_STATE (39), oneway, with Java's header and the message as body.
pub fn check_request(rec: &Record<'_>, info: &HalfInfo, offset_msg_id: String) -> RemotingCommand {
    let header = CheckTransactionStateRequestHeader {
        topic: Some(info.real_topic.clone()),
        tran_state_table_offset: rec.queue_offset,
        commit_log_offset: rec.physical_offset,
        msg_id: Some(info.uniq_key.clone()),
        transaction_id: Some(info.uniq_key.clone()),
        offset_msg_id: Some(offset_msg_id),
        broker_name: None,
    };
    let mut ext = ExtFields::new();
    header.write_to(&mut ext);
    let body = Bytes::from(half::check_message_body(rec, info));
    let mut request =
        RemotingCommand::new_request(RequestCode::CheckTransactionState.code(), ext, body);
    request.set_oneway();
    request
}
