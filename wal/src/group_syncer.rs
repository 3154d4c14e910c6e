//! The dedicated syncing thread behind `Durability::Group`.
//!
//! Appenders publish their records, ask for a sync through the last of their
//! LSNs, and wait on the write barrier without leading. This thread runs the
//! syncs back to back as long as anyone waits: it leads through the same
//! barrier (so it never overlaps a `sync()` call), and the next round starts
//! as soon as the last one ends instead of after an election among woken
//! followers. One sync covers everything copied by the time it starts.

use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

#[derive(Default)]
struct Requests {
    /// Highest LSN someone waits to see durable.
    wanted: u64,
    /// Highest LSN this thread has taken up (and is syncing or has synced).
    taken: u64,
    stop: bool,
}

/// Handle to the syncing thread; dropping it stops the thread.
pub(crate) struct GroupSyncer {
    requests: Arc<(Mutex<Requests>, Condvar)>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl GroupSyncer {
    /// Starts the thread. `sync_through(lsn)` makes `lsn` durable and returns
    /// false when the log can no longer sync (the thread then ends).
    pub(crate) fn start(
        mut sync_through: impl FnMut(u64) -> bool + Send + 'static,
    ) -> Option<GroupSyncer> {
        let requests = Arc::new((Mutex::new(Requests::default()), Condvar::new()));
        let shared = requests.clone();
        let spawned = std::thread::Builder::new()
            .name("tidemark-wal-sync".into())
            .spawn(move || {
                loop {
                    let target = {
                        let mut r = shared.0.lock();
                        while r.wanted <= r.taken && !r.stop {
                            shared.1.wait(&mut r);
                        }
                        if r.stop {
                            return;
                        }
                        r.taken = r.wanted;
                        r.wanted
                    };
                    if !sync_through(target) {
                        return;
                    }
                }
            });
        match spawned {
            Ok(handle) => Some(GroupSyncer {
                requests,
                handle: Mutex::new(Some(handle)),
            }),
            Err(e) => {
                tracing::warn!("no group sync thread ({e}); appenders will lead their own syncs");
                None
            }
        }
    }

    /// Asks for `lsn` to be made durable.
    pub(crate) fn request(&self, lsn: u64) {
        let mut r = self.requests.0.lock();
        if lsn > r.wanted {
            let idle = r.wanted <= r.taken;
            r.wanted = lsn;
            if idle {
                self.requests.1.notify_one();
            }
        }
    }
}

impl GroupSyncer {
    /// Stops the thread and waits for it to end (it finishes a sync under way).
    pub(crate) fn stop(&self) {
        self.requests.0.lock().stop = true;
        self.requests.1.notify_all();
        let handle = self.handle.lock().take();
        if let Some(handle) = handle
            && handle.thread().id() != std::thread::current().id()
        {
            let _ = handle.join();
        }
    }
}

impl Drop for GroupSyncer {
    fn drop(&mut self) {
        self.stop();
    }
}
