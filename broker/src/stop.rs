//! A shard-local "stop now" event that any number of tasks can await (parked pulls wait on it
//! next to their queue, so shutdown answers them at once instead of after their timeout).
//!
//! Each waiter holds a slot that it gives back when it is dropped: a parked pull that ends
//! normally (message arrived, timeout) leaves nothing behind. (The first version kept every
//! waker until shutdown: one task leaked per parked pull, and a linear scan per poll.)

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

#[derive(Debug, Default)]
pub struct StopSignal {
    fired: Cell<bool>,
    /// Wakers of the waiters currently pending, by waiter id.
    wakers: RefCell<HashMap<u64, Waker>>,
    next_waiter_id: Cell<u64>,
}

impl StopSignal {
    /// Fires the event; every current and future waiter completes.
    pub fn fire(&self) {
        self.fired.set(true);
        // Taken out first: a woken task may run (and drop its waiter) while we iterate.
        let wakers = std::mem::take(&mut *self.wakers.borrow_mut());
        for waker in wakers.into_values() {
            waker.wake();
        }
    }

    pub fn is_fired(&self) -> bool {
        self.fired.get()
    }

    /// Completes once [`StopSignal::fire`] has been called.
    pub fn wait(&self) -> StopWait<'_> {
        StopWait {
            signal: self,
            waiter_id: None,
        }
    }

    /// Waiters currently registered (pending and not dropped).
    pub fn waiters(&self) -> usize {
        self.wakers.borrow().len()
    }
}

/// The future of [`StopSignal::wait`]; deregisters itself when dropped.
#[derive(Debug)]
pub struct StopWait<'a> {
    signal: &'a StopSignal,
    waiter_id: Option<u64>,
}

impl Future for StopWait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let signal = self.signal;
        if signal.fired.get() {
            return Poll::Ready(());
        }
        let id = *self.waiter_id.get_or_insert_with(|| {
            let id = signal.next_waiter_id.get();
            signal.next_waiter_id.set(id + 1);
            id
        });
        let mut wakers = signal.wakers.borrow_mut();
        match wakers.get_mut(&id) {
            // Polled again by the same task (its sibling future woke it): nothing to do.
            Some(waker) if waker.will_wake(cx.waker()) => {}
            Some(waker) => waker.clone_from(cx.waker()),
            None => {
                wakers.insert(id, cx.waker().clone());
            }
        }
        Poll::Pending
    }
}

impl Drop for StopWait<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.waiter_id {
            self.signal.wakers.borrow_mut().remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn dropped_waiters_leave_nothing_behind() {
        let signal = StopSignal::default();
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        for _ in 0..1000 {
            let mut wait = std::pin::pin!(signal.wait());
            assert!(wait.as_mut().poll(&mut cx).is_pending());
            assert!(wait.as_mut().poll(&mut cx).is_pending());
            assert_eq!(signal.waiters(), 1);
        }
        assert_eq!(signal.waiters(), 0);
        signal.fire();
        assert_eq!(counter.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn fire_wakes_every_pending_waiter_and_later_ones_complete_at_once() {
        let signal = StopSignal::default();
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        let mut first = Box::pin(signal.wait());
        let mut second = Box::pin(signal.wait());
        assert!(first.as_mut().poll(&mut cx).is_pending());
        assert!(second.as_mut().poll(&mut cx).is_pending());
        assert_eq!(signal.waiters(), 2);
        signal.fire();
        assert_eq!(counter.0.load(Ordering::SeqCst), 2);
        assert!(first.as_mut().poll(&mut cx).is_ready());
        assert!(second.as_mut().poll(&mut cx).is_ready());
        let mut late = Box::pin(signal.wait());
        assert!(late.as_mut().poll(&mut cx).is_ready());
        assert_eq!(signal.waiters(), 0);
    }
}
