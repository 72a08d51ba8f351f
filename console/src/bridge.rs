//! The remoting side of the console: one glommio executor thread running ringmq-client (which
//! is `!Send`), fed jobs from the HTTP runtime over a channel and answering each on a oneshot.
//!
//! Why a thread of its own: the client's connections, futures and `Rc`s live on a glommio
//! executor, while axum runs on tokio; a job is a `Send` closure that builds a local future on
//! the glommio side, so nothing `!Send` ever crosses.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};

use crate::error::ConsoleError;
use crate::remote::{Remote, RemoteConfig};

/// io_uring buffer memory of the executor: the console moves little data, and glommio locks
/// this memory (a smaller lock fits default `ulimit -l` values).
const EXECUTOR_IO_MEMORY_BYTES: usize = 512 * 1024;
/// Jobs waiting for the remoting thread before HTTP handlers wait to enqueue more.
const JOB_QUEUE_MAX: usize = 256;

type LocalJob = Pin<Box<dyn Future<Output = ()>>>;
type Job = Box<dyn FnOnce(Rc<Remote>) -> LocalJob + Send>;

/// The HTTP side's handle on the remoting thread.
#[derive(Clone)]
pub struct Bridge {
    jobs: flume::Sender<Job>,
}

impl Bridge {
    /// Starts the remoting thread; it stops when every `Bridge` clone is dropped.
    pub fn start(config: RemoteConfig) -> Result<(Bridge, ExecutorJoinHandle<()>), ConsoleError> {
        let (jobs, queue) = flume::bounded::<Job>(JOB_QUEUE_MAX);
        let handle = LocalExecutorBuilder::new(Placement::Unbound)
            .name("console-remoting")
            .io_memory(EXECUTOR_IO_MEMORY_BYTES)
            .spawn(move || async move {
                let remote = match Remote::new(config) {
                    Ok(remote) => Rc::new(remote),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start the remoting client");
                        return;
                    }
                };
                let sampler = glommio::spawn_local(crate::sampler::run(remote.clone()));
                while let Ok(job) = queue.recv_async().await {
                    glommio::spawn_local(job(remote.clone())).detach();
                }
                drop(sampler);
                remote.shutdown();
            })
            .map_err(|e| ConsoleError::Start(e.to_string()))?;
        Ok((Bridge { jobs }, handle))
    }

    /// Runs `f` on the remoting thread and returns what its future yields.
    pub async fn call<T, F, Fut>(&self, f: F) -> Result<T, ConsoleError>
    where
        T: Send + 'static,
        F: FnOnce(Rc<Remote>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |remote| {
            Box::pin(async move {
                let _ = tx.send(f(remote).await);
            })
        });
        self.jobs
            .send_async(job)
            .await
            .map_err(|_| ConsoleError::RemotingStopped)?;
        rx.await.map_err(|_| ConsoleError::RemotingStopped)
    }
}
