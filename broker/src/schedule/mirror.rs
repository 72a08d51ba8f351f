//! A slave shard's copy of its master shard's schedule progress (Java's
//! `SlaveSynchronize.syncDelayOffset`, and for timers its `syncTimerCheckPoint`).
//!
//! A slave delivers nothing (its log is a byte copy of the master's, which delivers), but it
//! keeps the master's progress in the same progress file the delivery task uses
//! (`<store>/shard-<k>/schedule/progress`, [`ProgressFile`]), so a slave restarted as master
//! resumes delivery where its master was instead of delivering every held message again; and
//! it answers GET_ALL_DELAY_OFFSET from it.
//!
//! A copy is installed only once this shard's log holds every delivery it counts: the master
//! reports its written log end with the progress (deliveries count only after their append
//! completed, so they lie below it), and a copy waits while the slave's written end is below
//! that. Installing it earlier would let a promoted slave skip deliveries it never received.
//! While one copy waits, newer ones are dropped (the waiting one is the first to become
//! installable; the next sync round brings a newer copy again).

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use ringmq_proto::body::ShardScheduleProgress;

use super::progress::{Progress, ProgressError, ProgressFile};

/// The master's progress of one shard and the written log end (global) it is valid for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MasterProgress {
    pub progress: Progress,
    pub log_written: u64,
}

impl MasterProgress {
    pub fn from_body(body: &ShardScheduleProgress) -> MasterProgress {
        MasterProgress {
            progress: Progress {
                level_offsets: body.level_offsets.clone(),
                timer_ingested: body.timer_ingested,
                timer_scan_start: body.timer_scan_start,
                timer_next_key: (body.timer_next_due_ms, body.timer_next_queue_offset),
            },
            log_written: body.log_written,
        }
    }

    pub fn to_body(&self, shard: u32) -> ShardScheduleProgress {
        let p = &self.progress;
        ShardScheduleProgress {
            shard,
            level_offsets: p.level_offsets.clone(),
            timer_ingested: p.timer_ingested,
            timer_scan_start: p.timer_scan_start,
            timer_next_due_ms: p.timer_next_key.0,
            timer_next_queue_offset: p.timer_next_key.1,
            log_written: self.log_written,
        }
    }
}

#[derive(Default)]
struct MirrorState {
    /// The progress installed (and written, or being written).
    installed: Progress,
    /// A copy waiting for this shard's log to reach its `log_written`.
    waiting: Option<MasterProgress>,
    /// `installed` is not in the file yet.
    dirty: bool,
    /// Stop asked: the writer writes what is dirty and ends.
    stopping: bool,
}

/// Decides what to install when `offered` arrives and this shard's log is written up to
/// `written` (global): the newest installable copy among the waiting one and `offered`, if any.
/// An offered copy that cannot be installed yet waits, unless an older one already does.
fn installable(
    waiting: &mut Option<MasterProgress>,
    offered: MasterProgress,
    written: u64,
) -> Option<Progress> {
    let earlier = waiting
        .take_if(|w| w.log_written <= written)
        .map(|w| w.progress);
    if offered.log_written <= written {
        return Some(offered.progress);
    }
    if waiting.is_none() {
        *waiting = Some(offered);
    }
    earlier
}

/// A slave shard's schedule progress copy and the task that writes it.
pub struct ScheduleMirror {
    state: Rc<RefCell<MirrorState>>,
    wake: LocalSender<()>,
    done: flume::Receiver<()>,
}

impl ScheduleMirror {
    /// Reads the progress file (what a previous run installed or delivered) and starts the
    /// writer task on the current executor.
    pub async fn start(progress_path: &Path) -> Result<ScheduleMirror, ProgressError> {
        let (file, progress) = ProgressFile::open(progress_path).await?;
        let state = Rc::new(RefCell::new(MirrorState {
            installed: progress.unwrap_or_default(),
            ..MirrorState::default()
        }));
        // Capacity 1: a wake-up is a flag, never a queue of them.
        let (wake, woken) = local_channel::new_bounded(1);
        let (done_tx, done) = flume::bounded(1);
        let writer = state.clone();
        glommio::spawn_local(async move {
            write_installed(writer, file, woken).await;
            let _ = done_tx.send(());
        })
        .detach();
        Ok(ScheduleMirror { state, wake, done })
    }

    /// The installed progress (GET_ALL_DELAY_OFFSET on a slave).
    pub fn progress(&self) -> Progress {
        self.state.borrow().installed.clone()
    }

    /// Takes the master's progress of this shard; `written` is this shard's written log end.
    pub fn offer(&self, offered: MasterProgress, written: u64) {
        let mut st = self.state.borrow_mut();
        if let Some(progress) = installable(&mut st.waiting, offered, written) {
            if progress != st.installed {
                st.installed = progress;
                st.dirty = true;
            }
        }
        // Also after a failed write: each sync round tries again.
        if st.dirty {
            let _ = self.wake.try_send(());
        }
    }

    /// Writes what is not written yet and stops the writer.
    pub async fn stop(&self) {
        self.state.borrow_mut().stopping = true;
        let _ = self.wake.try_send(());
        let _ = self.done.recv_async().await;
    }
}

/// The writer task: writes the installed progress whenever it changed, until stopped.
async fn write_installed(
    state: Rc<RefCell<MirrorState>>,
    mut file: ProgressFile,
    woken: LocalReceiver<()>,
) {
    loop {
        let (progress, stopping) = {
            let mut st = state.borrow_mut();
            let progress = std::mem::take(&mut st.dirty).then(|| st.installed.clone());
            (progress, st.stopping)
        };
        if let Some(progress) = progress {
            if let Err(e) = file.write(&progress).await {
                tracing::error!(error = %e, "schedule: writing the master's progress failed");
                state.borrow_mut().dirty = true;
            }
        }
        if stopping || woken.recv().await.is_none() {
            break;
        }
    }
    file.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(level1: u64, log_written: u64) -> MasterProgress {
        MasterProgress {
            progress: Progress {
                level_offsets: vec![level1],
                ..Progress::default()
            },
            log_written,
        }
    }

    #[test]
    fn a_copy_is_installed_only_once_the_log_holds_its_deliveries() {
        let mut waiting = None;
        // Written up to 100: a copy valid at 100 is installed at once.
        assert_eq!(
            installable(&mut waiting, copy(1, 100), 100),
            Some(copy(1, 100).progress)
        );
        // One valid at 200 waits.
        assert_eq!(installable(&mut waiting, copy(2, 200), 150), None);
        assert_eq!(waiting, Some(copy(2, 200)));
        // A newer one (300) arrives while the log is at 250: the waiting copy is installed
        // and the newer one waits in its place.
        assert_eq!(
            installable(&mut waiting, copy(3, 300), 250),
            Some(copy(2, 200).progress)
        );
        assert_eq!(waiting, Some(copy(3, 300)));
        // Still short of 300: a newer copy is dropped, the older keeps waiting.
        assert_eq!(installable(&mut waiting, copy(4, 400), 260), None);
        assert_eq!(waiting, Some(copy(3, 300)));
        // Caught up past both: the newest is installed and nothing waits.
        assert_eq!(
            installable(&mut waiting, copy(5, 500), 500),
            Some(copy(5, 500).progress)
        );
        assert_eq!(waiting, None);
    }

    #[test]
    fn body_round_trips() {
        let m = MasterProgress {
            progress: Progress {
                level_offsets: vec![4, 0, 9],
                timer_ingested: 70,
                timer_scan_start: 60,
                timer_next_key: (1_700_000_000_000, 61),
            },
            log_written: 1 << 48 | 8192,
        };
        let body = m.to_body(1);
        assert_eq!(body.shard, 1);
        assert_eq!(MasterProgress::from_body(&body), m);
    }

    #[test]
    fn installed_progress_is_in_the_file_the_delivery_task_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("schedule").join("progress");
        let dir_path = dir.path().to_owned();
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                crate::store::backend::prime_iopoll_probe(dir_path.as_path())
                    .await
                    .unwrap();
                let mirror = ScheduleMirror::start(&path).await.unwrap();
                assert_eq!(mirror.progress(), Progress::default());
                mirror.offer(copy(7, 10), 5); // not yet held by this log
                assert_eq!(mirror.progress(), Progress::default());
                mirror.offer(copy(8, 20), 10); // the waiting copy (7) is installed
                assert_eq!(mirror.progress(), copy(7, 10).progress);
                mirror.offer(copy(9, 30), 30);
                mirror.stop().await;
                let (_, read) = ProgressFile::open(&path).await.unwrap();
                assert_eq!(read, Some(copy(9, 30).progress));
                // A restarted slave serves what it had installed.
                let again = ScheduleMirror::start(&path).await.unwrap();
                assert_eq!(again.progress(), copy(9, 30).progress);
                again.stop().await;
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
