//! A single-threaded wake-everyone notifier: tasks wait for a condition on shard state and are
//! re-polled whenever that state changes. Shard-local (`!Send`), no locks.

use std::cell::RefCell;
use std::future::poll_fn;
use std::task::{Poll, Waker};

#[derive(Default)]
pub(crate) struct Notify {
    waiters: RefCell<Registrations>,
}

#[derive(Default)]
struct Registrations {
    next_id: u64,
    wakers: std::collections::HashMap<u64, Waker>,
}

/// Removes a waiter's registration when its future is dropped (a parked pull that timed out),
/// so idle notifiers do not collect stale wakers.
struct Registration<'a> {
    notify: &'a Notify,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.notify.waiters.borrow_mut().wakers.remove(&self.id);
    }
}

impl Notify {
    /// Wakes every waiting task; each re-checks its own condition.
    pub(crate) fn notify_all(&self) {
        let wakers = std::mem::take(&mut self.waiters.borrow_mut().wakers);
        for w in wakers.into_values() {
            w.wake();
        }
    }

    /// Resolves once `ready()` returns `Some`.
    pub(crate) async fn wait_for<T>(&self, mut ready: impl FnMut() -> Option<T>) -> T {
        let id = {
            let mut r = self.waiters.borrow_mut();
            r.next_id += 1;
            r.next_id
        };
        let _registration = Registration { notify: self, id };
        poll_fn(|cx| match ready() {
            Some(v) => Poll::Ready(v),
            None => {
                self.waiters
                    .borrow_mut()
                    .wakers
                    .insert(id, cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    #[cfg(test)]
    fn registered(&self) -> usize {
        self.waiters.borrow().wakers.len()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::Context;

    #[test]
    fn dropped_waiter_leaves_no_registration() {
        let n = Notify::default();
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        {
            let mut fut = pin!(n.wait_for(|| None::<()>));
            assert!(fut.as_mut().poll(&mut cx).is_pending());
            assert!(fut.as_mut().poll(&mut cx).is_pending());
            assert_eq!(n.registered(), 1, "re-polling replaces the registration");
        }
        assert_eq!(n.registered(), 0, "dropping the waiter removes it");
    }

    #[test]
    fn offset_waiters_wake_only_reached_targets() {
        let w = OffsetWaiters::default();
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let reached = std::cell::Cell::new(0u64);
        let mut a = pin!(w.wait_for(10, || (reached.get() >= 10).then_some(())));
        let mut b = pin!(w.wait_for(20, || (reached.get() >= 20).then_some(())));
        assert!(a.as_mut().poll(&mut cx).is_pending());
        assert!(b.as_mut().poll(&mut cx).is_pending());
        reached.set(15);
        w.wake_up_to(15);
        assert_eq!(
            w.waiters.borrow().len(),
            1,
            "only the target-20 waiter stays registered"
        );
        assert!(a.as_mut().poll(&mut cx).is_ready());
        assert!(b.as_mut().poll(&mut cx).is_pending());
    }
}
