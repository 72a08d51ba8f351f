//! Orderly consumption (Java's `ConsumeMessageOrderlyService` with `RebalancePushImpl`'s lock
//! handling), used when `PushConsumerConfig::consume_orderly` is set.
//!
//! * A clustering consumer takes a queue only after LOCK_BATCH_MQ grants it, renews every lock
//!   it holds every `lock_interval_ms` (Java: 20 s), and consumes only while its lock is fresh
//!   (renewed within [`LOCK_TRUST_MS`], Java's `rebalance.lockMaxLiveTime` 30 s, half the
//!   broker's 60 s lease). A queue whose lock lapsed is locked again before anything more of
//!   it is consumed.
//! * Each queue is consumed serially in offset order, one listener call at a time, with no
//!   prefetch: the next pull starts from where consumption stopped.
//! * `ReconsumeLater` means Java's SUSPEND_CURRENT_QUEUE_A_MOMENT: the same messages are given
//!   to the listener again after `suspend_current_queue_time_ms`, nothing after them is
//!   consumed meanwhile. A message already redelivered `max_reconsume_times` times (default
//!   unlimited, as Java's orderly consumer) goes to `%DLQ%<group>` and consumption moves on.
//! * Releasing a queue (rebalance or shutdown) commits its offset and waits for the broker's
//!   answer, then unlocks it, so the next owner starts exactly after the last message
//!   consumed here. The listener is synchronous, so a release never interrupts it: it happens
//!   between messages.

use std::rc::{Rc, Weak};
use std::time::Duration;

use super::consume::restore_retry_topic;
use super::{ConsumeStatus, PushInner};
use crate::broker_api;
use crate::consumer::pull::{PullResult, PullStatus};
use crate::message::MessageExt;
use crate::producer::now_ms;
use crate::queue::MessageQueue;

/// A lock is trusted this long after its last grant or renewal (Java's 30 s).
pub const LOCK_TRUST_MS: i64 = 30_000;
/// Wait before locking a queue again after the broker refused it (Java pulls again after 3 s).
pub const LOCK_RETRY_DELAY_MS: u64 = 1_000;
/// Wait before a rebalance round is retried when some new queue could not be locked (Java's
/// `rebalanceLater(500)`): its previous owner is usually releasing it right now.
pub const REBALANCE_RETRY_DELAY_MS: u64 = 500;

/// This client's view of one queue lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct QueueLock {
    pub locked: bool,
    pub last_lock_ms: i64,
}

impl PushInner {
    /// True when this consumer may consume `queue` now.
    pub(super) fn holds_lock(&self, queue: &MessageQueue) -> bool {
        if !self.is_clustering() {
            return true;
        }
        self.locks
            .borrow()
            .get(queue)
            .is_some_and(|l| l.locked && now_ms() - l.last_lock_ms <= LOCK_TRUST_MS)
    }

    /// LOCK_BATCH_MQ of one queue on its master; true when granted.
    pub(super) async fn lock_queue(&self, queue: &MessageQueue) -> bool {
        let addr = match self.master_addr(queue) {
            Ok(addr) => addr,
            Err(e) => {
                tracing::debug!(%queue, error = %e, "no master to lock at");
                return false;
            }
        };
        let granted = match broker_api::lock_batch(
            &self.core,
            &addr,
            &self.config.group,
            std::slice::from_ref(queue),
        )
        .await
        {
            Ok(locked) => locked.contains(queue),
            Err(e) => {
                tracing::debug!(%queue, error = %e, "lock request failed");
                false
            }
        };
        self.record_lock(queue, granted);
        granted
    }

    fn record_lock(&self, queue: &MessageQueue, granted: bool) {
        let mut locks = self.locks.borrow_mut();
        let entry = locks.entry(queue.clone()).or_insert(QueueLock {
            locked: false,
            last_lock_ms: 0,
        });
        entry.locked = granted;
        if granted {
            entry.last_lock_ms = now_ms();
        }
    }

    /// Renews every lock this consumer holds, one LOCK_BATCH_MQ per broker (Java's `lockAll`).
    pub(super) async fn renew_locks(&self) {
        let held: Vec<MessageQueue> = self.workers.borrow().keys().cloned().collect();
        for (addr, queues) in self.by_master(held) {
            match broker_api::lock_batch(&self.core, &addr, &self.config.group, &queues).await {
                Ok(granted) => {
                    for queue in &queues {
                        let ok = granted.contains(queue);
                        if !ok {
                            tracing::warn!(%queue, "queue lock lost; consumption pauses");
                        }
                        self.record_lock(queue, ok);
                    }
                }
                Err(e) => tracing::debug!(%addr, error = %e, "lock renewal failed"),
            }
        }
    }

    /// UNLOCK_BATCH_MQ of `queues`, grouped by master, waiting for each answer.
    pub(super) async fn unlock_queues(&self, queues: Vec<MessageQueue>) {
        for queue in &queues {
            self.locks.borrow_mut().remove(queue);
        }
        for (addr, queues) in self.by_master(queues) {
            if let Err(e) =
                broker_api::unlock_batch(&self.core, &addr, &self.config.group, &queues).await
            {
                tracing::warn!(%addr, error = %e, "unlock failed; the broker lease lapses in 60 s");
            }
        }
    }

    fn by_master(
        &self,
        queues: Vec<MessageQueue>,
    ) -> std::collections::BTreeMap<String, Vec<MessageQueue>> {
        let mut grouped = std::collections::BTreeMap::<String, Vec<MessageQueue>>::new();
        for queue in queues {
            if let Ok(addr) = self.master_addr(&queue) {
                grouped.entry(addr).or_default().push(queue);
            }
        }
        grouped
    }

    /// Runs a rebalance round after [`REBALANCE_RETRY_DELAY_MS`], once however often asked.
    pub(super) fn rebalance_later(self: &Rc<Self>) {
        if self.rebalance_pending.replace(true) {
            return;
        }
        let weak = Rc::downgrade(self);
        glommio::spawn_local(async move {
            glommio::timer::sleep(Duration::from_millis(REBALANCE_RETRY_DELAY_MS)).await;
            if let Some(inner) = weak.upgrade() {
                inner.rebalance_pending.set(false);
                inner.rebalance().await;
            }
        })
        .detach();
    }

    /// Consumes one pull's messages in order; stops early (offset left at the first message
    /// not consumed) on shutdown or when the lock is no longer trusted.
    async fn consume_orderly(&self, queue: &MessageQueue, result: PullResult) {
        match result.status {
            PullStatus::Found => {
                let mut messages = result.messages;
                for message in &mut messages {
                    restore_retry_topic(message, &self.config.group);
                }
                let batch = self.config.consume_batch_max_size.max(1);
                for chunk in messages.chunks_mut(batch) {
                    if !self.consume_chunk(queue, chunk).await {
                        return;
                    }
                    let after = chunk.last().map_or(0, |m| m.queue_offset + 1);
                    self.offsets.borrow_mut().advance(queue, after);
                }
                // Filtered-out entries after the last message are passed too.
                self.offsets
                    .borrow_mut()
                    .advance(queue, result.next_begin_offset);
            }
            PullStatus::NoNewMsg | PullStatus::NoMatchedMsg => {
                self.offsets
                    .borrow_mut()
                    .advance(queue, result.next_begin_offset);
            }
            PullStatus::OffsetIllegal => self.offset_moved(queue, &result).await,
        }
    }

    /// The listener on `chunk` until it succeeds or the chunk goes to the DLQ; false when
    /// consumption must stop first (shutdown, lock no longer held).
    async fn consume_chunk(&self, queue: &MessageQueue, chunk: &mut [MessageExt]) -> bool {
        loop {
            if !self.running.get() || !self.holds_lock(queue) {
                return false;
            }
            if self.call_listener(queue, chunk) == ConsumeStatus::Success {
                return true;
            }
            if !self.suspend_again(queue, chunk).await {
                return true;
            }
            let pause = Duration::from_millis(self.config.suspend_current_queue_time_ms);
            glommio::timer::sleep(pause).await;
        }
    }

    /// Java's `checkReconsumeTimes`: messages under the maximum are counted and consumed again;
    /// those at it go to the DLQ. True when the chunk must be consumed again.
    async fn suspend_again(&self, queue: &MessageQueue, chunk: &mut [MessageExt]) -> bool {
        let max = self.orderly_max_reconsume_times();
        let mut again = false;
        for message in chunk.iter_mut() {
            if message.reconsume_times < max || !self.send_to_dlq(queue, message).await {
                message.reconsume_times += 1;
                again = true;
            }
        }
        again
    }

    /// Hands `message` to the broker for `%DLQ%<group>` (a send-back with delay level -1).
    async fn send_to_dlq(&self, queue: &MessageQueue, message: &MessageExt) -> bool {
        let addr = self
            .master_addr(queue)
            .unwrap_or_else(|_| message.store_host.to_string());
        let result = broker_api::send_message_back(
            &self.core,
            &addr,
            &self.config.group,
            message,
            -1,
            Some(self.orderly_max_reconsume_times()),
        )
        .await;
        match result {
            Ok(()) => {
                tracing::warn!(%queue, msg_id = %message.msg_id(), "orderly message sent to the DLQ");
                true
            }
            Err(e) => {
                tracing::warn!(%queue, error = %e, "DLQ send failed; consuming again");
                false
            }
        }
    }

    /// `max_reconsume_times`, where -1 means unlimited (Java's orderly `Integer.MAX_VALUE`).
    fn orderly_max_reconsume_times(&self) -> i32 {
        if self.config.max_reconsume_times < 0 {
            i32::MAX
        } else {
            self.config.max_reconsume_times
        }
    }
}

/// The loop of one orderly queue: (re)lock when needed, pull from the consumed offset, consume
/// in order. Ends when the queue is released (task dropped) or the consumer is gone.
pub(super) async fn orderly_loop(weak: Weak<PushInner>, queue: MessageQueue) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        if !inner.running.get() {
            return;
        }
        if !inner.holds_lock(&queue) && !inner.lock_queue(&queue).await {
            drop(inner);
            glommio::timer::sleep(Duration::from_millis(LOCK_RETRY_DELAY_MS)).await;
            continue;
        }
        let Some(offset) = inner.offsets.borrow().get(&queue) else {
            return;
        };
        match inner.pull(&queue, offset).await {
            Ok(result) => inner.consume_orderly(&queue, result).await,
            Err(e) => {
                tracing::debug!(%queue, error = %e, "pull failed; pausing");
                inner.after_pull_error(&queue, &e).await;
                let delay = Duration::from_millis(inner.config.pull_error_delay_ms);
                drop(inner);
                glommio::timer::sleep(delay).await;
            }
        }
    }
}
