//! Per-shard replication state, shared by the HA tasks and the handlers of the same shard
//! (`Rc`, shard-local, no locks).
//!
//! The master side is what SYNC_MASTER sends wait on: one acknowledged offset per shard, and
//! waiters sorted by the offset they need. A slave's ACK is cumulative, so one ACK releases every
//! send below it: many sends, one wait (the group commit of design §4).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::future::poll_fn;
use std::task::{Poll, Waker};
use std::time::Duration;

/// Outcome of a SYNC_MASTER wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replication {
    /// A slave holds every byte below the target (SEND_OK).
    Replicated,
    /// No slave attached, or the best one lags more than `haSlaveFallbehindMax`
    /// (SLAVE_NOT_AVAILABLE, 11).
    SlaveNotAvailable,
    /// A slave is attached but did not confirm in time (FLUSH_SLAVE_TIMEOUT, 12).
    Timeout,
}

/// Tasks waiting for an offset, woken only when it is reached (or at stop).
#[derive(Default)]
pub(crate) struct OffsetWaiters {
    next_id: Cell<u64>,
    by_target: RefCell<BTreeMap<(u64, u64), Waker>>,
}

/// Removes a waiter's entry when its future is dropped (a timed-out send).
struct Entry<'a> {
    waiters: &'a OffsetWaiters,
    key: Cell<Option<(u64, u64)>>,
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.get() {
            self.waiters.by_target.borrow_mut().remove(&key);
        }
    }
}

impl OffsetWaiters {
    /// Wakes every waiter whose target is at or below `reached`.
    pub(crate) fn wake_up_to(&self, reached: u64) {
        let woken = {
            let mut map = self.by_target.borrow_mut();
            let rest = map.split_off(&(reached.saturating_add(1), 0));
            std::mem::replace(&mut *map, rest)
        };
        woken.into_values().for_each(Waker::wake);
    }

    pub(crate) fn wake_all(&self) {
        let woken = std::mem::take(&mut *self.by_target.borrow_mut());
        woken.into_values().for_each(Waker::wake);
    }

    /// Resolves once `ready()` is `Some`; re-checked when woken for `target`.
    pub(crate) async fn wait_for<T>(&self, target: u64, mut ready: impl FnMut() -> Option<T>) -> T {
        let entry = Entry {
            waiters: self,
            key: Cell::new(None),
        };
        poll_fn(|cx| {
            if let Some(v) = ready() {
                return Poll::Ready(v);
            }
            let key = entry.key.get().unwrap_or_else(|| {
                let id = self.next_id.get();
                self.next_id.set(id + 1);
                (target, id)
            });
            entry.key.set(Some(key));
            self.by_target.borrow_mut().insert(key, cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// Wake-everyone notifier: tasks wait for a condition and re-check it when woken.
#[derive(Default)]
pub(crate) struct Wake(OffsetWaiters);

impl Wake {
    pub(crate) fn wake(&self) {
        self.0.wake_all();
    }

    pub(crate) async fn wait_for<T>(&self, ready: impl FnMut() -> Option<T>) -> T {
        self.0.wait_for(0, ready).await
    }
}

/// One attached slave connection, as the master sees it.
#[derive(Debug, Clone)]
pub struct SlaveLink {
    pub peer: String,
    /// The slave's acknowledged end (global offset).
    pub acked: u64,
}

/// The master side of one shard.
#[derive(Default)]
pub struct MasterState {
    slaves: RefCell<HashMap<u64, SlaveLink>>,
    next_link: Cell<u64>,
    /// Highest offset any slave acknowledged; only grows.
    acked: Cell<u64>,
    /// When a slave last acknowledged everything the master had written (ms since the epoch).
    caught_up_at_ms: Cell<i64>,
    waiters: OffsetWaiters,
    stopped: Cell<bool>,
    stop_waiters: OffsetWaiters,
}

impl MasterState {
    /// A slave attached with its log ending at `end`; returns its link id.
    pub fn attach(&self, peer: String, end: u64) -> u64 {
        let id = self.next_link.get();
        self.next_link.set(id + 1);
        self.slaves
            .borrow_mut()
            .insert(id, SlaveLink { peer, acked: end });
        self.acknowledge(id, end, 0, 0);
        id
    }

    pub fn detach(&self, id: u64) {
        self.slaves.borrow_mut().remove(&id);
    }

    /// A slave holds everything below `end`; `written` is the master's written end now.
    pub fn acknowledge(&self, id: u64, end: u64, written: u64, now_ms: i64) {
        if let Some(link) = self.slaves.borrow_mut().get_mut(&id) {
            link.acked = link.acked.max(end);
        }
        if end >= written {
            self.caught_up_at_ms.set(now_ms);
        }
        if end > self.acked.get() {
            self.acked.set(end);
            self.waiters.wake_up_to(end);
        }
    }

    /// Best acknowledged end among attached slaves.
    pub fn best_attached(&self) -> Option<u64> {
        self.slaves.borrow().values().map(|l| l.acked).max()
    }

    pub fn slaves(&self) -> Vec<SlaveLink> {
        self.slaves.borrow().values().cloned().collect()
    }

    /// Highest offset any slave ever acknowledged.
    pub fn acked(&self) -> u64 {
        self.acked.get()
    }

    /// (bytes, ms) the best slave is behind `written`; `None` without a slave.
    pub fn lag(&self, written: u64, now_ms: i64) -> Option<(u64, i64)> {
        let best = self.best_attached()?;
        let bytes = written.saturating_sub(best);
        let ms = if bytes == 0 {
            0
        } else {
            (now_ms - self.caught_up_at_ms.get()).max(0)
        };
        Some((bytes, ms))
    }

    /// SYNC_MASTER: waits until a slave holds every byte below `target` (a send's record end),
    /// Java's `submitReplicaRequest` semantics: SLAVE_NOT_AVAILABLE at once when no slave is
    /// attached or the best lags more than `fallbehind_max_bytes`, FLUSH_SLAVE_TIMEOUT after
    /// `timeout`. Every send behind the same ACK is released by it.
    pub async fn wait_replicated(
        &self,
        target: u64,
        fallbehind_max_bytes: u64,
        timeout: Duration,
    ) -> Replication {
        if self.acked.get() >= target {
            return Replication::Replicated;
        }
        match self.best_attached() {
            Some(best) if target.saturating_sub(best) <= fallbehind_max_bytes => {}
            _ => return Replication::SlaveNotAvailable,
        }
        let acked = self.waiters.wait_for(target, || {
            if self.acked.get() >= target {
                Some(Replication::Replicated)
            } else {
                self.stopped.get().then_some(Replication::Timeout)
            }
        });
        futures_lite::future::or(acked, async {
            glommio::timer::sleep(timeout).await;
            if self.acked.get() >= target {
                Replication::Replicated
            } else {
                Replication::Timeout
            }
        })
        .await
    }

    /// Shutdown: waiters answer at once, HA connections end.
    pub fn stop(&self) {
        self.stopped.set(true);
        self.waiters.wake_all();
        self.stop_waiters.wake_all();
    }

    /// Resolves once [`MasterState::stop`] ran.
    pub async fn stopped(&self) {
        self.stop_waiters
            .wait_for(0, || self.stopped.get().then_some(()))
            .await
    }
}

/// The slave side of one shard.
#[derive(Default)]
pub struct SlaveState {
    /// `ip:port` of the master shard followed right now.
    pub master: RefCell<Option<String>>,
    pub connected: Cell<bool>,
    /// The master's written end, as last reported in a DATA frame.
    pub master_written: Cell<u64>,
    /// This slave's durable end.
    pub end: Cell<u64>,
    caught_up_at_ms: Cell<i64>,
    /// Set when the master's log does not contain this slave's (never cleared by the process).
    pub diverged: RefCell<Option<String>>,
    stopped: Cell<bool>,
    stop_waiters: OffsetWaiters,
}

impl SlaveState {
    /// Records progress: what the master has and what this slave holds.
    pub fn progress(&self, master_written: u64, end: u64, now_ms: i64) {
        self.master_written
            .set(self.master_written.get().max(master_written));
        self.end.set(end);
        if end >= self.master_written.get() {
            self.caught_up_at_ms.set(now_ms);
        }
    }

    /// (bytes, ms) this slave is behind its master, as far as it knows.
    pub fn lag(&self, now_ms: i64) -> (u64, i64) {
        let bytes = self.master_written.get().saturating_sub(self.end.get());
        let ms = if bytes == 0 {
            0
        } else {
            (now_ms - self.caught_up_at_ms.get()).max(0)
        };
        (bytes, ms)
    }

    pub fn stop(&self) {
        self.stopped.set(true);
        self.stop_waiters.wake_all();
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.get()
    }

    pub async fn stopped(&self) {
        self.stop_waiters
            .wait_for(0, || self.stopped.get().then_some(()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    fn run<F: std::future::Future<Output = ()>>(f: F) {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .make()
            .expect("glommio executor (run with `ulimit -l unlimited`)")
            .run(f);
    }

    #[test]
    fn no_slave_or_a_far_behind_slave_is_not_available() {
        run(async {
            let m = MasterState::default();
            let t = Duration::from_secs(5);
            assert_eq!(
                m.wait_replicated(10, 100, t).await,
                Replication::SlaveNotAvailable
            );
            m.attach("s".into(), 0);
            assert_eq!(
                m.wait_replicated(1000, 100, t).await,
                Replication::SlaveNotAvailable
            );
        });
    }

    #[test]
    fn one_ack_releases_every_send_below_it_and_only_those() {
        run(async {
            let m = Rc::new(MasterState::default());
            let id = m.attach("s".into(), 0);
            let mut tasks = Vec::new();
            for target in [10u64, 20, 30, 40] {
                let m = m.clone();
                tasks.push(glommio::spawn_local(async move {
                    m.wait_replicated(target, 1 << 20, Duration::from_millis(300))
                        .await
                }));
            }
            // (spawn_local ran each task up to its wait already.)
            // One cumulative ACK at 30: the first three sends are released by it.
            m.acknowledge(id, 30, 40, 1);
            let mut results = Vec::new();
            for t in tasks {
                results.push(t.await);
            }
            assert_eq!(
                results,
                [
                    Replication::Replicated,
                    Replication::Replicated,
                    Replication::Replicated,
                    Replication::Timeout
                ]
            );
            assert!(m.waiters.by_target.borrow().is_empty(), "no stale waiters");
        });
    }

    #[test]
    fn lag_counts_bytes_and_time_since_caught_up() {
        let m = MasterState::default();
        assert_eq!(m.lag(100, 5), None);
        let id = m.attach("s".into(), 0);
        m.acknowledge(id, 100, 100, 1_000);
        assert_eq!(m.lag(100, 1_500), Some((0, 0)));
        assert_eq!(m.lag(150, 1_500), Some((50, 500)));
        let s = SlaveState::default();
        s.progress(200, 200, 10);
        s.progress(300, 250, 20);
        assert_eq!(s.lag(70), (50, 60));
    }
}
