//! The delivery task of one shard.
//!
//! * **Delay levels**: each level's consume queue (`SCHEDULE_TOPIC_XXXX`, queue `level - 1`) is
//!   in due order (same delay, store order), so the task reads entries from the level's progress
//!   offset and delivers while the due time in the tag slot has passed; the first entry not due
//!   ends that level's turn.
//! * **Timers**: entries of `rmq_sys_wheel_timer` queue 0 are read into the pending set
//!   ([`Timers`]) as they are dispatched; due ones are popped in (due, offset) order.
//! * **Delivery** reads the batch's held records in log order through the read-ahead extents
//!   (`Store::view_messages`), writes for each a new record to its real (topic, queue) with
//!   the delivered properties ([`plan::delivered_properties`]), one `Store::append` per batch of
//!   at most [`DELIVER_BATCH_MAX`]; progress moves only after the append completed (the flush
//!   mode's promise holds), so a crash can repeat a delivery but never lose one. Up to
//!   [`APPENDS_IN_FLIGHT`] appends are pipelined: a batch is encoded (and stamped) at once and
//!   the task goes on collecting while its write is on the way to the disk (measured: one
//!   delivery write took > 200 ms on a busy disk, and everything due meanwhile waited for it).
//!   Batches complete in the order they were started, so progress moves in order.
//! * **Progress** is written by a task of its own ([`persist`]) at most every
//!   [`PROGRESS_INTERVAL_MS`] while it changes, so delivery never waits for a page write and its
//!   fdatasync (measured: they made turns hundreds of ms long on a busy disk). Delivery waits
//!   only when [`UNPERSISTED_MAX`] deliveries are not yet in a written page, which is what
//!   bounds duplicates after a crash: at most `UNPERSISTED_MAX + DELIVER_BATCH_MAX - 1` per
//!   shard ([`DUPLICATES_BOUND`]). Timers taken for a delivery still in progress count as
//!   pending in any page written meanwhile (`State::in_flight`), so a page never claims an
//!   undelivered timer.
//! * **Retention**: a level offset below its queue's min offset jumps to it; a held record the
//!   log no longer has is counted in `dropped` and skipped.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ringmq_proto::message::record::{DecodedRecord, Record};

use super::phases::PhaseTimes;
use super::plan::{self, TimerStamps};
use super::progress::{Progress, ProgressError, ProgressFile};
use super::timers::{PendingTimer, Timers};
use super::{ScheduleConfig, SCHEDULE_TOPIC, TIMER_TOPIC};
use crate::store::{CqEntry, Store, StoreError};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};

/// Most held records delivered by one append.
pub const DELIVER_BATCH_MAX: usize = 256;
/// Delivery appends in flight at once (each at most [`DELIVER_BATCH_MAX`] records).
pub const APPENDS_IN_FLIGHT: usize = 4;
/// Deliveries not yet in the progress file before the task writes it (bounds duplicates).
pub const UNPERSISTED_MAX: u64 = 4096;
/// Most duplicates one shard can deliver after a crash.
pub const DUPLICATES_BOUND: u64 = UNPERSISTED_MAX + DELIVER_BATCH_MAX as u64 - 1;
/// Progress is written at most this often while it changes.
pub const PROGRESS_INTERVAL_MS: u64 = 100;
/// Longest sleep while idle: a new delay-level entry is noticed within this (level delays are
/// whole seconds, so this costs no lateness); new timers wake the task at once.
pub const IDLE_POLL_MS: u64 = 100;
/// Timer-queue entries read per step when filling the pending set.
const INGEST_BATCH: usize = 4096;
/// Wait after a failed append before trying again (a read-only store stays read-only).
const RETRY_AFTER_ERROR_MS: u64 = 1000;

const _: () = assert!(UNPERSISTED_MAX >= DELIVER_BATCH_MAX as u64);

/// Counters of one shard's schedule service.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ServiceStats {
    pub delivered: u64,
    /// Held records gone (retention) or unreadable when due.
    pub dropped: u64,
    pub pending_timers: u64,
    pub progress_writes: u64,
}

#[derive(Default)]
struct State {
    /// Next queue offset to deliver, per level (everything below was delivered).
    levels: Vec<u64>,
    /// Next queue offset to collect, per level: past `levels` by the batches in flight.
    claimed: Vec<u64>,
    timers: Timers,
    /// Timer-queue offsets below this are in `timers` (or delivered).
    ingested: u64,
    /// Recovery filter for `[scan start, cursor)`: entries with a key below this were delivered.
    recovered_until: Option<(u64, (i64, u64))>,
    unpersisted: u64,
    dirty: bool,
    stats: ServiceStats,
    phases: PhaseTimes,
    /// Per delivery append in flight, oldest first: the least key and offset of its timers
    /// (`None` when it has none). A page written meanwhile must still count them as pending.
    in_flight: VecDeque<Option<InFlight>>,
    /// Held records in the appends in flight (counted against [`UNPERSISTED_MAX`]).
    in_flight_records: u64,
    /// The delivery task has ended: the progress task writes its last page and ends too.
    finished: bool,
}

/// The least key and queue offset of the timers of the delivery in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InFlight {
    min_key: (i64, u64),
    min_offset: u64,
}

impl State {
    /// The page to write now. The first pending key and the scan start take the in-flight
    /// timers into account: by the recovery rule (docs/storage-format.md §14) a timer with a
    /// key at or above the first pending key, and an offset at or above the scan start, is
    /// delivered again after a crash.
    fn progress(&self) -> Progress {
        let flights = self.in_flight.iter().flatten();
        let next_key = flights
            .clone()
            .map(|f| f.min_key)
            .chain(self.timers.peek().map(PendingTimer::key))
            .min();
        let scan_start = flights
            .map(|f| f.min_offset)
            .chain(self.timers.lowest_offset_bound())
            .min()
            .unwrap_or(self.ingested);
        Progress {
            level_offsets: self.levels.clone(),
            timer_ingested: self.ingested,
            timer_scan_start: scan_start,
            timer_next_key: next_key.unwrap_or((0, 0)),
        }
    }
}

/// A handle to one shard's delivery task.
pub struct ScheduleService {
    state: Rc<RefCell<State>>,
    stop: Rc<Cell<bool>>,
    done: flume::Receiver<()>,
}

/// What the task needs, owned by it (the store handle is dropped when the task ends).
struct Task {
    store: Rc<Store>,
    state: Rc<RefCell<State>>,
    stop: Rc<Cell<bool>>,
    /// Asks the progress task for a page now (too much unpersisted, or finished).
    wake_persister: LocalSender<()>,
    /// The progress task wrote a page.
    page_written: LocalReceiver<()>,
    /// Delivery appends in flight, oldest first.
    appends: VecDeque<Delivery>,
}

/// A delivery append in flight.
struct Delivery {
    due: Vec<Due>,
    /// Records appended (held records gone or unreadable are dropped, not appended).
    records: u64,
    started: Instant,
    /// The append, polled once when started (so it is encoded and stamped at once).
    append: AppendFuture,
    /// Its result, if that first poll completed it.
    ready: Option<Result<(), StoreError>>,
}

impl ScheduleService {
    /// Reads the progress at `progress_path` and starts the task on the current executor.
    pub async fn start(
        store: Rc<Store>,
        config: ScheduleConfig,
        progress_path: &Path,
    ) -> Result<ScheduleService, ProgressError> {
        let (file, progress) = ProgressFile::open(progress_path).await?;
        let mut state = State::default();
        let p = progress.unwrap_or_default();
        state.levels = p.level_offsets.clone();
        state.levels.resize(config.level_delays_ms.len(), 0);
        state.claimed = state.levels.clone();
        state.ingested = p.timer_scan_start;
        if p.timer_scan_start < p.timer_ingested {
            state.recovered_until = Some((p.timer_ingested, p.timer_next_key));
        }
        let state = Rc::new(RefCell::new(state));
        let stop = Rc::new(Cell::new(false));
        let (done_tx, done) = flume::bounded(1);
        // Capacity 1: a wake-up or "written" signal is a flag, never a queue of them.
        let (wake_persister, wake_rx) = local_channel::new_bounded(1);
        let (written_tx, page_written) = local_channel::new_bounded(1);
        let task = Task {
            store,
            state: state.clone(),
            stop: stop.clone(),
            wake_persister,
            page_written,
            appends: VecDeque::new(),
        };
        let persister = persist::Persister::new(state.clone(), file, wake_rx, written_tx);
        glommio::spawn_local(task.run()).detach();
        glommio::spawn_local(async move {
            // Ends after the delivery task did, with the last page written.
            persister.run().await;
            let _ = done_tx.send(());
        })
        .detach();
        Ok(ScheduleService { state, stop, done })
    }

    /// Next queue offset to deliver per level (index = level - 1): GET_ALL_DELAY_OFFSET.
    pub fn level_offsets(&self) -> Vec<u64> {
        self.state.borrow().levels.clone()
    }

    /// The progress as a page written now would hold it (deliveries whose appends completed;
    /// timers of appends in flight count as pending): what a slave copies.
    pub fn progress(&self) -> Progress {
        self.state.borrow().progress()
    }

    /// Where the delivery task's time went (see [`super::phases`]).
    pub fn phases(&self) -> PhaseTimes {
        self.state.borrow().phases
    }

    pub fn stats(&self) -> ServiceStats {
        let st = self.state.borrow();
        ServiceStats {
            pending_timers: st.timers.len() as u64,
            ..st.stats
        }
    }

    /// Stops the tasks: delivery finishes its batch and drops its store handle, then the last
    /// progress page is written.
    pub async fn stop(&self) {
        self.stop.set(true);
        let _ = self.done.recv_async().await;
    }
}

fn now_ms() -> i64 {
    crate::store::now_ms()
}

/// One due held record.
struct Due {
    /// `Some(level index)` for a delay level, `None` for a timer.
    level: Option<usize>,
    queue_offset: u64,
    physical_offset: u64,
    due_ms: i64,
}

impl Task {
    async fn run(mut self) {
        while !self.stop.get() {
            if self.must_finish_one() {
                self.finish_oldest().await;
                continue;
            }
            if !self.room_to_deliver().await {
                continue;
            }
            let turn = Instant::now();
            let Some((due, next_due)) = self.due_now().await else {
                glommio::timer::sleep(Duration::from_millis(RETRY_AFTER_ERROR_MS)).await;
                continue;
            };
            let full = due.len() >= DELIVER_BATCH_MAX;
            if !due.is_empty() {
                let delivery = self.start_delivery(due).await;
                self.appends.push_back(delivery);
                self.state.borrow_mut().phases.end_turn(turn);
                if full {
                    continue;
                }
            }
            // Nothing more is due now. Waiting here for a write in flight would hold back
            // whatever comes due meanwhile, so only what already completed is finished.
            self.finish_completed().await;
            self.idle(next_due).await;
        }
        while !self.appends.is_empty() {
            self.finish_oldest().await;
        }
        self.state.borrow_mut().finished = true;
        let _ = self.wake_persister.try_send(());
        let phases = self.state.borrow().phases;
        tracing::info!("schedule: delivery task stopped; {}", phases.summary());
    }

    /// The oldest append in flight must complete before another batch starts: the pipeline is
    /// full, or the duplicate bound leaves no room (see [`Self::room_to_deliver`]).
    fn must_finish_one(&self) -> bool {
        let st = self.state.borrow();
        let unwritten = st.unpersisted + st.in_flight_records;
        self.appends.len() >= APPENDS_IN_FLIGHT
            || (!self.appends.is_empty() && unwritten >= UNPERSISTED_MAX)
    }

    /// Whether a batch may be delivered now. The duplicate bound holds only if nothing more is
    /// delivered while [`UNPERSISTED_MAX`] deliveries are not in a written page: then the
    /// progress task is asked for a page at once and this waits for it (at most
    /// [`RETRY_AFTER_ERROR_MS`], as the write may be failing).
    async fn room_to_deliver(&self) -> bool {
        let unwritten = |st: &State| st.unpersisted + st.in_flight_records;
        if unwritten(&self.state.borrow()) < UNPERSISTED_MAX {
            return true;
        }
        let waited = Instant::now();
        let _ = self.wake_persister.try_send(());
        futures_lite::future::or(
            async {
                let _ = self.page_written.recv().await;
            },
            glommio::timer::sleep(Duration::from_millis(RETRY_AFTER_ERROR_MS)),
        )
        .await;
        let mut st = self.state.borrow_mut();
        st.phases.progress_wait.add_since(waited);
        unwritten(&st) < UNPERSISTED_MAX
    }

    /// Reads new timers, then up to [`DELIVER_BATCH_MAX`] due records and the earliest due time
    /// of what is left; `None` after a read error (logged).
    async fn due_now(&mut self) -> Option<(Vec<Due>, Option<i64>)> {
        let started = Instant::now();
        let ingested = self.ingest_timers().await;
        self.state.borrow_mut().phases.ingest.add_since(started);
        if let Err(e) = ingested {
            tracing::error!(error = %e, "schedule: reading the timer queue failed");
            return None;
        }
        let started = Instant::now();
        let collected = self.collect_due(now_ms()).await;
        self.state.borrow_mut().phases.collect.add_since(started);
        collected
            .map_err(|e| tracing::error!(error = %e, "schedule: reading a level queue failed"))
            .ok()
    }

    /// Sleeps until the next due time (at most [`IDLE_POLL_MS`]) or a new timer arrives.
    async fn idle(&self, next_due: Option<i64>) {
        let now = now_ms();
        let wait_ms = next_due.map_or(IDLE_POLL_MS, |d| {
            (d - now).clamp(0, IDLE_POLL_MS as i64) as u64
        });
        if wait_ms == 0 {
            return;
        }
        let cursor = self.state.borrow().ingested;
        self.store
            .wait_for_messages(TIMER_TOPIC, 0, cursor, Duration::from_millis(wait_ms))
            .await;
    }

    /// Reads newly dispatched timer-queue entries into the pending set.
    async fn ingest_timers(&mut self) -> Result<(), StoreError> {
        loop {
            let from = self
                .state
                .borrow()
                .ingested
                .max(self.store.min_offset(TIMER_TOPIC, 0));
            let entries = self
                .store
                .cq_entries(TIMER_TOPIC, 0, from, INGEST_BATCH)
                .await?;
            let n = entries.len();
            let mut st = self.state.borrow_mut();
            for (i, e) in entries.into_iter().enumerate() {
                let t = PendingTimer {
                    due_ms: e.tag_hash,
                    queue_offset: from + i as u64,
                    physical_offset: e.physical_offset,
                    size: e.size,
                };
                let delivered_before_crash = st
                    .recovered_until
                    .is_some_and(|(cursor, key)| t.queue_offset < cursor && t.key() < key);
                if !delivered_before_crash {
                    st.timers.push(t);
                }
            }
            st.ingested = from + n as u64;
            if st
                .recovered_until
                .is_some_and(|(cursor, _)| st.ingested >= cursor)
            {
                st.recovered_until = None;
            }
            st.dirty |= n > 0;
            if n < INGEST_BATCH {
                return Ok(());
            }
        }
    }

    /// Up to [`DELIVER_BATCH_MAX`] due records (levels first, then timers) and the earliest
    /// due time of what is left. What it returns is claimed: a later call does not return it
    /// again (level offsets move in `claimed`, timers leave the pending set and are recorded in
    /// `in_flight` for the batch).
    async fn collect_due(&self, now: i64) -> Result<(Vec<Due>, Option<i64>), StoreError> {
        let mut due = Vec::new();
        let mut next_due: Option<i64> = None;
        let levels = self.state.borrow().levels.len();
        for level in 0..levels {
            let room = DELIVER_BATCH_MAX - due.len();
            if room == 0 {
                break;
            }
            let from = self.level_start(level);
            let entries = self
                .store
                .cq_entries(SCHEDULE_TOPIC, level as i32, from, room)
                .await?;
            let ready = entries.iter().take_while(|e| e.tag_hash <= now).count();
            if let Some(e) = entries.get(ready) {
                next_due = Some(next_due.map_or(e.tag_hash, |d| d.min(e.tag_hash)));
            }
            for (i, e) in entries[..ready].iter().enumerate() {
                due.push(due_of(Some(level), from + i as u64, e));
            }
            self.state.borrow_mut().claimed[level] = from + ready as u64;
        }
        let mut st = self.state.borrow_mut();
        let mut flight: Option<InFlight> = None;
        while due.len() < DELIVER_BATCH_MAX {
            let Some(t) = st.timers.pop_due(now) else {
                break;
            };
            // Popped in key order: the first is the least key; offsets need the minimum.
            let f = flight.get_or_insert(InFlight {
                min_key: t.key(),
                min_offset: t.queue_offset,
            });
            f.min_offset = f.min_offset.min(t.queue_offset);
            due.push(Due {
                level: None,
                queue_offset: t.queue_offset,
                physical_offset: t.physical_offset,
                due_ms: t.due_ms,
            });
        }
        if !due.is_empty() {
            st.in_flight.push_back(flight);
        }
        if let Some(t) = st.timers.peek() {
            next_due = Some(next_due.map_or(t.due_ms, |d| d.min(t.due_ms)));
        }
        Ok((due, next_due))
    }

    /// A level's next offset to collect, moved past what retention removed.
    fn level_start(&self, level: usize) -> u64 {
        let min = self.store.min_offset(SCHEDULE_TOPIC, level as i32);
        let mut st = self.state.borrow_mut();
        if st.claimed[level] < min {
            tracing::warn!(
                level = level + 1,
                from = st.claimed[level],
                to = min,
                "schedule: held records removed by retention"
            );
            st.claimed[level] = min;
        }
        if st.levels[level] < min {
            st.levels[level] = min;
            st.dirty = true;
        }
        st.claimed[level]
    }

    /// Reads a batch's held records and starts its append (polled once, so the deliveries are
    /// encoded and stamped now); [`Self::finish_oldest`] completes it.
    async fn start_delivery(&mut self, due: Vec<Due>) -> Delivery {
        let started = Instant::now();
        let offsets: Vec<u64> = due.iter().map(|d| d.physical_offset).collect();
        let held: Vec<Option<Vec<u8>>> = self
            .store
            .view_messages(&offsets)
            .await
            .into_iter()
            .zip(&offsets)
            .map(|(read, &offset)| {
                // A read error counts as a missing record: it is logged and skipped, like
                // Java's schedule service skips a message it cannot look up.
                read.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, offset, "schedule: held record unreadable");
                    None
                })
            })
            .collect();
        self.state.borrow_mut().phases.read.add_since(started);
        let owned = deliveries(&due, held, now_ms());
        let records = owned.len() as u64;
        self.state.borrow_mut().in_flight_records += due.len() as u64;
        let store = self.store.clone();
        let mut append: AppendFuture = Box::pin(async move {
            let records: Vec<Record<'_>> = owned.iter().filter_map(Owned::record).collect();
            if records.is_empty() {
                return Ok(());
            }
            store.append(&records).await.map(|_| ())
        });
        let ready = futures_lite::future::poll_once(&mut append).await;
        Delivery {
            due,
            records,
            started: Instant::now(),
            append,
            ready,
        }
    }

    /// Finishes the appends in flight that have completed, oldest first, without waiting.
    async fn finish_completed(&mut self) {
        while let Some(front) = self.appends.front_mut() {
            if front.ready.is_none() {
                front.ready = futures_lite::future::poll_once(&mut front.append).await;
            }
            if front.ready.is_none() {
                return;
            }
            self.finish_oldest().await;
        }
    }

    /// Waits for the oldest append in flight, then moves progress (or, if it failed, puts its
    /// timers back and every later batch's with it, since progress must move in order).
    async fn finish_oldest(&mut self) {
        let Some(delivery) = self.appends.pop_front() else {
            return;
        };
        let result = match delivery.ready {
            Some(result) => result,
            None => delivery.append.await,
        };
        self.state
            .borrow_mut()
            .phases
            .append
            .add_since(delivery.started);
        let Err(e) = result else {
            self.advance(&delivery.due, delivery.records);
            return;
        };
        tracing::error!(error = %e, "schedule: delivering {} held records failed", delivery.records);
        self.put_back(&delivery.due);
        // Later batches may not move progress past this one: they are undone too (delivered
        // again later if their appends did land: duplicates, never loss).
        while let Some(later) = self.appends.pop_front() {
            if later.ready.is_none() {
                let _ = later.append.await;
            }
            self.put_back(&later.due);
        }
        {
            let mut st = self.state.borrow_mut();
            st.claimed = st.levels.clone();
        }
        glommio::timer::sleep(Duration::from_millis(RETRY_AFTER_ERROR_MS)).await;
    }

    /// Undoes a batch that was not delivered: its timers are pending again.
    fn put_back(&self, due: &[Due]) {
        let mut st = self.state.borrow_mut();
        st.in_flight.pop_front();
        st.in_flight_records -= due.len() as u64;
        for d in due.iter().filter(|d| d.level.is_none()) {
            st.timers.push(PendingTimer {
                due_ms: d.due_ms,
                queue_offset: d.queue_offset,
                physical_offset: d.physical_offset,
                size: 0,
            });
        }
    }

    /// Progress after a batch's append completed: `records` delivered, the rest dropped.
    fn advance(&self, due: &[Due], records: u64) {
        let mut st = self.state.borrow_mut();
        st.in_flight.pop_front();
        st.in_flight_records -= due.len() as u64;
        for d in due {
            if let Some(level) = d.level {
                st.levels[level] = st.levels[level].max(d.queue_offset + 1);
            }
        }
        st.stats.delivered += records;
        st.stats.dropped += due.len() as u64 - records;
        st.unpersisted += due.len() as u64;
        st.dirty = true;
    }
}

/// A delivery append, owning everything it appends.
type AppendFuture = Pin<Box<dyn Future<Output = Result<(), StoreError>>>>;

/// One delivery, owned so that its append can outlive the turn that started it.
struct Owned {
    held: Vec<u8>,
    topic: String,
    queue_id: i32,
    properties: Vec<u8>,
}

impl Owned {
    /// The delivered record: the held one in its real (topic, queue), delivered properties.
    fn record(&self) -> Option<Record<'_>> {
        let rec = DecodedRecord::decode(&self.held).ok()?.record;
        Some(Record {
            topic: self.topic.as_bytes(),
            queue_id: self.queue_id,
            properties: &self.properties,
            queue_offset: 0,
            physical_offset: 0,
            store_timestamp: 0,
            prepared_transaction_offset: 0,
            ..rec
        })
    }
}

/// The deliveries of a batch's held records; a record gone or unreadable (`None`), or without
/// its real queue, is dropped.
fn deliveries(due: &[Due], held: Vec<Option<Vec<u8>>>, now: i64) -> Vec<Owned> {
    due.iter()
        .zip(held)
        .filter_map(|(d, bytes)| {
            let bytes = bytes?;
            let rec = DecodedRecord::decode(&bytes).ok()?.record;
            let real = plan::real_queue(rec.properties)?;
            let stamps = d.level.is_none().then_some(TimerStamps {
                enqueue_ms: rec.store_timestamp,
                due_ms: d.due_ms,
                dequeue_ms: now,
            });
            let mut properties = Vec::with_capacity(rec.properties.len() + 64);
            plan::delivered_properties(rec.properties, stamps, &mut properties);
            Some(Owned {
                held: bytes,
                topic: real.topic,
                queue_id: real.queue_id,
                properties,
            })
        })
        .collect()
}

fn due_of(level: Option<usize>, queue_offset: u64, e: &CqEntry) -> Due {
    Due {
        level,
        queue_offset,
        physical_offset: e.physical_offset,
        due_ms: e.tag_hash,
    }
}

mod persist;
#[cfg(test)]
mod tests;
