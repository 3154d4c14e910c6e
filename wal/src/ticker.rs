//! The background thread behind `Durability::Interval`.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// Runs a job every `every` until stopped. Stopping wakes the thread at once.
pub(crate) struct Ticker {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Starts the thread; `job` returns false to end it.
    pub(crate) fn start(
        name: &str,
        every: Duration,
        mut job: impl FnMut() -> bool + Send + 'static,
    ) -> Ticker {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = stop.clone();
        let spawned = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                loop {
                    {
                        let mut stopped = flag.0.lock();
                        if !*stopped {
                            flag.1.wait_for(&mut stopped, every);
                        }
                        if *stopped {
                            return;
                        }
                    }
                    if !job() {
                        return;
                    }
                }
            });
        let handle = spawned
            .map_err(|e| tracing::error!("cannot start thread {name}: {e}"))
            .ok();
        Ticker { stop, handle }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        *self.stop.0.lock() = true;
        self.stop.1.notify_all();
        if let Some(handle) = self.handle.take()
            && handle.thread().id() != std::thread::current().id()
        {
            let _ = handle.join();
        }
    }
}
