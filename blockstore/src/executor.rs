//! A private tokio runtime behind a synchronous API.

use std::future::Future;

use tokio::runtime::{Builder, Handle, Runtime};

use crate::error::BlockError;

/// Owns a multi-threaded runtime and runs futures on it from synchronous code. Futures are
/// spawned and awaited through a channel, so callers may be plain threads or (at the cost of
/// blocking a worker) tasks of another runtime; shutdown does not wait for running tasks.
pub(crate) struct Executor {
    runtime: Option<Runtime>,
    handle: Handle,
}

impl Executor {
    pub(crate) fn new(name: &str, threads: usize) -> Result<Self, BlockError> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(name)
            .enable_all()
            .build()
            .map_err(|e| BlockError::Startup(format!("tokio runtime: {e}")))?;
        let handle = runtime.handle().clone();
        Ok(Executor {
            runtime: Some(runtime),
            handle,
        })
    }

    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs `fut` to completion on the runtime and returns its output.
    pub(crate) fn run<F>(&self, fut: F) -> Result<F::Output, BlockError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| BlockError::Internal("a block-manager task ended without a result".into()))
    }
}

impl Executor {
    /// Stops the runtime. From a plain thread this waits (up to a second) for its tasks and
    /// blocking work to finish, so state they hold is released on return; inside another
    /// runtime it cannot block and stops in the background.
    pub(crate) fn shutdown(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            if Handle::try_current().is_ok() {
                runtime.shutdown_background();
            } else {
                runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            }
        }
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        self.shutdown();
    }
}
