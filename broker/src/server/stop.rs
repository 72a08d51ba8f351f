//! A shard-local "stop now" event that any number of tasks can await (parked pulls wait on it
//! next to their queue, so shutdown answers them at once instead of after their timeout).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::task::{Poll, Waker};

#[derive(Debug, Default)]
pub struct StopSignal {
    fired: Cell<bool>,
    wakers: RefCell<Vec<Waker>>,
}

impl StopSignal {
    /// Fires the event; every current and future waiter completes.
    pub fn fire(&self) {
        self.fired.set(true);
        for waker in self.wakers.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    pub fn is_fired(&self) -> bool {
        self.fired.get()
    }

    /// Completes once [`StopSignal::fire`] has been called.
    pub fn wait(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.fired.get() {
                return Poll::Ready(());
            }
            let mut wakers = self.wakers.borrow_mut();
            // A waiter polled again (its sibling future woke it) must not pile up wakers.
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }
}
