//! A single-value, single-threaded channel: the slot a pending request's response lands in.
//!
//! Why not a glommio local channel: a request needs exactly one value delivered once, and this
//! costs one `Rc` allocation instead of a channel with its queue. It is `!Send` by construction,
//! like everything else in the client.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
    /// The sender was dropped without sending.
    sender_gone: bool,
}

/// Sending side; consumed by `send`.
pub(crate) struct Sender<T> {
    slot: Rc<RefCell<Slot<T>>>,
}

/// Receiving side; a future that yields `Some(value)` or `None` when the sender was dropped.
pub(crate) struct Receiver<T> {
    slot: Rc<RefCell<Slot<T>>>,
}

pub(crate) fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Rc::new(RefCell::new(Slot {
        value: None,
        waker: None,
        sender_gone: false,
    }));
    (Sender { slot: slot.clone() }, Receiver { slot })
}

impl<T> Sender<T> {
    pub(crate) fn send(self, value: T) {
        let waker = {
            let mut slot = self.slot.borrow_mut();
            slot.value = Some(value);
            slot.waker.take()
        };
        // `self` drops here; Drop sees the value and does not mark the sender as gone.
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut slot = self.slot.borrow_mut();
            if slot.value.is_some() {
                return;
            }
            slot.sender_gone = true;
            slot.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut slot = self.slot.borrow_mut();
        if let Some(value) = slot.value.take() {
            return Poll::Ready(Some(value));
        }
        if slot.sender_gone {
            return Poll::Ready(None);
        }
        slot.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivers_value_sent_before_and_after_first_poll() {
        let (tx, rx) = channel::<u32>();
        tx.send(7);
        assert_eq!(futures_lite::future::block_on(rx), Some(7));

        let (tx, rx) = channel::<u32>();
        let waiter = std::cell::RefCell::new(Some(rx));
        let mut rx = waiter.borrow_mut().take().unwrap();
        let noop = futures_lite::future::poll_once(&mut rx);
        assert_eq!(futures_lite::future::block_on(noop), None);
        tx.send(9);
        assert_eq!(futures_lite::future::block_on(rx), Some(9));
    }

    #[test]
    fn dropped_sender_yields_none() {
        let (tx, rx) = channel::<u32>();
        drop(tx);
        assert_eq!(futures_lite::future::block_on(rx), None);
    }
}
