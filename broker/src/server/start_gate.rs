//! The start gate: no shard accepts a connection before every shard serves its inbox.
//!
//! Each shard opens its store (recovery), its transactions and its schedule progress inside its
//! own executor, so shards become ready at different times; a restart with a large backlog,
//! or a busy disk, makes the difference seconds. A shard that accepted connections before
//! another was ready forwarded requests into that shard's inbox, where they waited; a send
//! that waited longer than `waitTimeMillsInSendQueue` was answered SYSTEM_BUSY
//! `[TIMEOUT_CLEAN_QUEUE]` (seen as an early send failing right after start). So every shard
//! finishes its start-up work, passes the gate, and only then binds its listeners.
//!
//! The gate is a channel nobody sends on: each shard holds a sender (its token) and drops it
//! when ready; receiving ends once every token is dropped. A shard that panics while starting
//! drops its token too, so the others never wait forever.

/// One shard's place at the gate.
pub struct StartGate {
    token: flume::Sender<()>,
    opened: flume::Receiver<()>,
}

impl StartGate {
    /// One gate per shard.
    pub fn for_shards(shards: usize) -> Vec<StartGate> {
        let (token, opened) = flume::bounded(0);
        (0..shards)
            .map(|_| StartGate {
                token: token.clone(),
                opened: opened.clone(),
            })
            .collect()
    }

    /// This shard is ready; resolves once every shard is.
    pub async fn pass(self) {
        let StartGate { token, opened } = self;
        drop(token);
        // Nothing is ever sent: this ends with Disconnected once the last token is dropped.
        let _ = opened.recv_async().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::{block_on, poll_once};

    #[test]
    fn the_gate_opens_when_the_last_shard_is_ready() {
        let mut gates = StartGate::for_shards(3);
        let last = gates.pop().unwrap();
        let mut first = Box::pin(gates.remove(0).pass());
        let mut second = Box::pin(gates.remove(0).pass());
        block_on(async {
            assert!(poll_once(&mut first).await.is_none());
            assert!(poll_once(&mut second).await.is_none());
            assert!(
                poll_once(&mut first).await.is_none(),
                "still one shard starting"
            );
            last.pass().await;
            first.await;
            second.await;
        });
    }

    #[test]
    fn a_shard_that_fails_to_start_does_not_hold_the_others() {
        let mut gates = StartGate::for_shards(2);
        let failed = gates.pop().unwrap();
        let waiting = gates.pop().unwrap();
        std::thread::spawn(move || {
            let _token = failed;
            panic!("store did not open");
        })
        .join()
        .unwrap_err();
        block_on(waiting.pass());
    }
}
