//! Unit-test fixtures shared by the store's test modules: a small store whose background
//! rounds never run on their own (each test drives what it checks), and an executor.

use std::path::Path;

use super::{FlushMode, StoreConfig};

/// An interval the tests never reach: the periodic task stays idle.
pub(crate) const NEVER_MS: u64 = 3_600_000;

/// A store of 1 MiB segments and a 256 KiB tail cache, ASYNC_FLUSH, with no periodic flush,
/// checkpoint or zeroing: tests set what they need on top.
pub(crate) fn quiet_config(root: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(root, 2);
    c.segment_size_bytes = 1 << 20;
    c.max_record_bytes = 16 * 1024;
    c.tail_cache_bytes = 256 * 1024;
    c.flush_mode = FlushMode::Async;
    c.flush_interval_ms = NEVER_MS;
    c.checkpoint_interval_ms = NEVER_MS;
    c.zero_ahead_bytes = 0;
    c
}

pub(crate) fn executor() -> glommio::LocalExecutor {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .make()
        .expect("glommio executor (run as root or with `ulimit -l unlimited`)")
}
