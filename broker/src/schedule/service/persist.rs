//! The progress task of one shard's schedule service: writes the progress page (O_DIRECT write
//! and fdatasync, [`ProgressFile`]) beside the delivery task instead of inside it.
//!
//! Why a task of its own: with the write inside the delivery loop, every turn that wrote a page
//! held back every due message for the length of one fdatasync, and on a busy disk that is
//! hundreds of milliseconds (results/schedule-lateness-*.md). Recovery needs the page only to
//! bound duplicates, not to avoid loss (progress moves only after the delivery append, and a
//! page written during an append counts its timers as pending), so the page may lag; the
//! delivery task waits for it only past [`UNPERSISTED_MAX`](super::UNPERSISTED_MAX).
//!
//! Pacing: a page at most every [`PROGRESS_INTERVAL_MS`] while progress changes, at once when
//! the delivery task asks (too much unpersisted, or it has ended), and a last one at the end.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::channels::local_channel::{LocalReceiver, LocalSender};

use super::{State, PROGRESS_INTERVAL_MS};
use crate::schedule::progress::ProgressFile;

pub(super) struct Persister {
    state: Rc<RefCell<State>>,
    file: ProgressFile,
    /// The delivery task asks for a page now.
    wake: LocalReceiver<()>,
    /// Told after every page written.
    written: LocalSender<()>,
}

impl Persister {
    pub(super) fn new(
        state: Rc<RefCell<State>>,
        file: ProgressFile,
        wake: LocalReceiver<()>,
        written: LocalSender<()>,
    ) -> Persister {
        Persister {
            state,
            file,
            wake,
            written,
        }
    }

    /// Runs until the delivery task has finished, then writes the last page and closes the file.
    pub(super) async fn run(mut self) {
        loop {
            // Read before writing: a delivery task that finishes during this write wakes the
            // loop again, and the next round writes the final page.
            let finished = self.state.borrow().finished;
            self.write_if_changed().await;
            let _ = self.written.try_send(());
            if finished {
                break;
            }
            futures_lite::future::or(
                async {
                    let _ = self.wake.recv().await;
                },
                glommio::timer::sleep(Duration::from_millis(PROGRESS_INTERVAL_MS)),
            )
            .await;
        }
        self.file.close().await;
    }

    /// Writes the page when progress changed since the last one; on success the deliveries it
    /// covers are no longer counted as unpersisted.
    async fn write_if_changed(&mut self) {
        let (progress, covered) = {
            let st = self.state.borrow();
            if !st.dirty {
                return;
            }
            (st.progress(), st.unpersisted)
        };
        let started = Instant::now();
        let written = self.file.write(&progress).await;
        let mut st = self.state.borrow_mut();
        st.phases.progress_write.add_since(started);
        match written {
            Ok(()) => {
                st.unpersisted -= covered;
                st.dirty = st.unpersisted > 0 || st.progress() != progress;
                st.stats.progress_writes += 1;
            }
            Err(e) => tracing::error!(error = %e, "schedule: writing progress failed"),
        }
    }
}
