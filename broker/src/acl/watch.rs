//! Loading plain_acl.yml, reloading it when it changes, and handing each shard the current
//! snapshot.
//!
//! A plain OS thread (never a shard: reading a file blocks) polls the file's modification time
//! and length every `aclReloadIntervalMs`, as RocketMQ's `AclFileWatchService` polls, re-reads it
//! when either changed and then held still for one interval, and publishes the parsed configuration as a new immutable
//! `Arc<AclConfig>` with a bumped generation. A shard's [`AclView`] compares one atomic
//! generation per request and takes the mutex only after a reload, so the data path has no
//! lock and no shared writes. A file that fails to parse is logged and the previous
//! configuration stays in force; a broker does not start with a broken file.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use super::config::AclConfig;
use super::AclError;

/// The published configuration: generation counter and the snapshot it names.
#[derive(Debug)]
pub struct AclShared {
    generation: AtomicU64,
    snapshot: Mutex<Arc<AclConfig>>,
    /// Reloads refused because the changed file did not parse (for logs and tests).
    failed_reloads: AtomicU64,
}

impl AclShared {
    pub fn new(config: AclConfig) -> Arc<AclShared> {
        Arc::new(AclShared {
            generation: AtomicU64::new(0),
            snapshot: Mutex::new(Arc::new(config)),
            failed_reloads: AtomicU64::new(0),
        })
    }

    /// Replaces the configuration; views pick it up on their next request.
    pub fn publish(&self, config: AclConfig) {
        let mut slot = self.snapshot.lock().unwrap_or_else(|p| p.into_inner());
        *slot = Arc::new(config);
        // Release after the store above: a view that sees the new generation sees the snapshot.
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Runs `f` on the current snapshot (for start-up logs and tests; shards use a view).
    pub fn with_snapshot<R>(&self, f: impl FnOnce(&AclConfig) -> R) -> R {
        f(&self.current().1)
    }

    /// How many changed versions of the file were refused.
    pub fn failed_reloads(&self) -> u64 {
        self.failed_reloads.load(Ordering::Relaxed)
    }

    fn current(&self) -> (u64, Arc<AclConfig>) {
        let generation = self.generation.load(Ordering::Acquire);
        let slot = self.snapshot.lock().unwrap_or_else(|p| p.into_inner());
        (generation, slot.clone())
    }
}

/// One shard's handle on the configuration. Not `Sync`: each shard has its own.
#[derive(Debug)]
pub struct AclView {
    shared: Arc<AclShared>,
    seen_generation: Cell<u64>,
    config: RefCell<Arc<AclConfig>>,
}

impl AclView {
    pub fn new(shared: Arc<AclShared>) -> AclView {
        let (generation, config) = shared.current();
        AclView {
            shared,
            seen_generation: Cell::new(generation),
            config: RefCell::new(config),
        }
    }

    /// Runs `f` on the newest configuration.
    pub fn with_config<R>(&self, f: impl FnOnce(&AclConfig) -> R) -> R {
        if self.shared.generation.load(Ordering::Acquire) != self.seen_generation.get() {
            let (generation, config) = self.shared.current();
            self.seen_generation.set(generation);
            *self.config.borrow_mut() = config;
        }
        f(&self.config.borrow())
    }
}

/// Reads and parses the file.
pub fn load_file(path: &Path) -> Result<AclConfig, AclError> {
    let text = std::fs::read_to_string(path).map_err(|e| AclError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    AclConfig::parse(&text).map_err(|e| AclError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// What the watcher compares to notice a change.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// The watcher thread; dropping it stops the thread (within one interval) and joins it.
pub struct AclWatcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl AclWatcher {
    /// Loads `path` and starts watching it. The file's stamp is taken before it is read, so a
    /// change made while it is being loaded is seen by the watcher.
    pub fn load_and_watch(
        path: PathBuf,
        interval_ms: u64,
    ) -> Result<(Arc<AclShared>, AclWatcher), AclError> {
        let loaded = stamp(&path);
        let shared = AclShared::new(load_file(&path)?);
        let stop = Arc::new(AtomicBool::new(false));
        let (stop_flag, publish_to) = (stop.clone(), shared.clone());
        let thread = std::thread::Builder::new()
            .name("acl-watch".to_string())
            .spawn({
                let path = path.clone();
                move || watch_loop(&path, loaded, interval_ms, &publish_to, &stop_flag)
            })
            .map_err(|e| AclError::Read {
                path,
                reason: format!("cannot start the watcher thread: {e}"),
            })?;
        let watcher = AclWatcher {
            stop,
            thread: Some(thread),
        };
        Ok((shared, watcher))
    }
}

impl Drop for AclWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn watch_loop(
    path: &Path,
    mut loaded: Stamp,
    interval_ms: u64,
    shared: &AclShared,
    stop: &AtomicBool,
) {
    // A change is loaded once the file has looked the same for one whole interval, so a file
    // caught half-written (truncated, then filled) is not loaded in between.
    let mut seen = loaded;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(interval_ms));
        let now = stamp(path);
        if now != seen {
            seen = now;
            continue;
        }
        if now == loaded {
            continue;
        }
        loaded = now;
        reload(path, now.is_some(), shared);
    }
}

fn reload(path: &Path, exists: bool, shared: &AclShared) {
    if !exists {
        tracing::warn!(path = %path.display(), "ACL file is gone; the last loaded accounts stay in force");
        return;
    }
    match load_file(path) {
        Ok(config) => {
            tracing::info!(path = %path.display(), accounts = config.accounts.len(), "ACL file reloaded");
            shared.publish(config);
        }
        Err(e) => {
            shared.failed_reloads.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "ACL file not reloaded; the last loaded accounts stay in force")
        }
    }
}
