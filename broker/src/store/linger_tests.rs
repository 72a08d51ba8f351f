//! `write_linger_us`: after a round that carried several appends, the next write round waits
//! for more appends and carries them in one write; without it (or after a round of one append)
//! a round is written at once. Real files, real io_uring; writes are counted, not timed.

use std::path::Path;
use std::rc::Rc;

use super::flush::LINGER_MIN_LAST_ROUND_APPENDS;
use super::test_support::{executor, quiet_config};
use super::{Store, StoreConfig};
use ringmq_testkit::sample_record;

/// Long enough that the appends a test makes right after the round started always arrive
/// within it (they are already runnable tasks): the test never depends on the clock.
const TEST_LINGER_US: u64 = 200_000;

fn config(root: &Path, write_linger_us: u64) -> StoreConfig {
    let mut c = quiet_config(root);
    c.write_linger_us = write_linger_us;
    c
}

/// Starts `n` appends of one record each, as `n` concurrent senders would.
fn spawn_appends(store: &Rc<Store>, n: usize) -> Vec<glommio::task::JoinHandle<()>> {
    (0..n)
        .map(|i| {
            let store = store.clone();
            glommio::spawn_local(async move {
                let body = format!("m{i}");
                let record = sample_record(b"Linger", 0, body.as_bytes(), b"");
                store.append(&[record]).await.unwrap();
            })
            .detach()
        })
        .collect()
}

async fn join(tasks: Vec<glommio::task::JoinHandle<()>>) {
    for t in tasks {
        t.await.expect("append task finished");
    }
}

/// Log writes that carried appends `a`, then `b` and `c` made right after `a`'s round began,
/// following a round of `first_round` concurrent appends.
async fn writes_for_late_arrivals(root: &Path, write_linger_us: u64, first_round: usize) -> u64 {
    let store = Rc::new(Store::open(config(root, write_linger_us)).await.unwrap());
    join(spawn_appends(&store, first_round)).await;
    let before = store.stats().writes;
    let a = spawn_appends(&store, 1);
    // Let `a` append and the writer start its round (write at once, or linger).
    for _ in 0..4 {
        futures_lite::future::yield_now().await;
    }
    let bc = spawn_appends(&store, 2);
    join(a).await;
    join(bc).await;
    let writes = store.stats().writes - before;
    Rc::try_unwrap(store).ok().unwrap().close().await.unwrap();
    writes
}

#[test]
fn after_a_busy_round_a_lingering_round_carries_the_appends_that_arrive_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let busy = LINGER_MIN_LAST_ROUND_APPENDS as usize * 2;
    executor().run(async move {
        let lingering =
            writes_for_late_arrivals(&dir.path().join("on"), TEST_LINGER_US, busy).await;
        assert_eq!(lingering, 1, "one write for a, b and c");
        let at_once = writes_for_late_arrivals(&dir.path().join("off"), 0, busy).await;
        assert_eq!(at_once, 2, "a alone, then b and c");
    });
}

#[test]
fn after_a_round_of_one_append_the_next_round_does_not_wait() {
    let dir = tempfile::tempdir().unwrap();
    executor().run(async move {
        let writes = writes_for_late_arrivals(dir.path(), TEST_LINGER_US, 1).await;
        assert_eq!(writes, 2, "a lone sender's write is not held back");
    });
}
