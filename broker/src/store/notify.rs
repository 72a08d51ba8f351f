//! A single-threaded wake-everyone notifier: tasks wait for a condition on shard state and are
//! re-polled whenever that state changes. Shard-local (`!Send`), no locks.

use std::cell::RefCell;
use std::future::poll_fn;
use std::task::{Poll, Waker};

#[derive(Default)]
pub(crate) struct Notify {
    wakers: RefCell<Vec<Waker>>,
}

impl Notify {
    /// Wakes every waiting task; each re-checks its own condition.
    pub(crate) fn notify_all(&self) {
        let wakers = std::mem::take(&mut *self.wakers.borrow_mut());
        for w in wakers {
            w.wake();
        }
    }

    /// Resolves once `ready()` returns `Some`.
    pub(crate) async fn wait_for<T>(&self, mut ready: impl FnMut() -> Option<T>) -> T {
        poll_fn(|cx| match ready() {
            Some(v) => Poll::Ready(v),
            None => {
                self.wakers.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// Tasks waiting for a watermark (written or flushed offset) to reach their own target. Only
/// the tasks whose target was reached are woken, so a group commit of many appenders costs one
/// wake-up per appender, not one per appender per event.
#[derive(Default)]
pub(crate) struct OffsetWaiters {
    waiters: RefCell<std::collections::BTreeMap<u64, Vec<Waker>>>,
}

impl OffsetWaiters {
    /// Wakes every task whose target is at or below `watermark`.
    pub(crate) fn wake_up_to(&self, watermark: u64) {
        let ready = {
            let mut w = self.waiters.borrow_mut();
            let rest = w.split_off(&(watermark.saturating_add(1)));
            std::mem::replace(&mut *w, rest)
        };
        for waker in ready.into_values().flatten() {
            waker.wake();
        }
    }

    /// Wakes everyone (failure, close).
    pub(crate) fn wake_all(&self) {
        let all = std::mem::take(&mut *self.waiters.borrow_mut());
        for waker in all.into_values().flatten() {
            waker.wake();
        }
    }

    /// Resolves once `ready()` returns `Some`; registered under `target` meanwhile.
    pub(crate) async fn wait_for<T>(&self, target: u64, mut ready: impl FnMut() -> Option<T>) -> T {
        poll_fn(|cx| match ready() {
            Some(v) => Poll::Ready(v),
            None => {
                let mut w = self.waiters.borrow_mut();
                let list = w.entry(target).or_default();
                if !list.iter().any(|x| x.will_wake(cx.waker())) {
                    list.push(cx.waker().clone());
                }
                Poll::Pending
            }
        })
        .await
    }
}
