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
