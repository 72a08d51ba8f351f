//! Async client tests run on a small glommio executor of their own.

use std::future::Future;

use glommio::{LocalExecutorBuilder, Placement};

/// I/O memory per test executor: small, so many tests fit in a low `ulimit -l`.
const TEST_EXECUTOR_IO_MEMORY_BYTES: usize = 256 * 1024;

/// Runs `body` to completion on a fresh glommio executor thread; a panic in it fails the test.
pub fn run<F, Fut>(body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(TEST_EXECUTOR_IO_MEMORY_BYTES)
        .spawn(move || async move { body().await })
        .expect("start glommio executor")
        .join()
        .expect("test body panicked");
}
