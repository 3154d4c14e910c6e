//! Early writeback for logs that sync rarely (`Buffered`, `Interval`).
//!
//! Without it, every byte appended since the last sync is still only in the
//! page cache when `sync()` comes, and the sync pays for writing all of it. As
//! RocksDB's `wal_bytes_per_sync` does, each [`WRITEBACK_STEP`] of a segment is
//! handed to the disk once appends have moved past it, so writes overlap
//! appends and a later sync has little left to do. The appender whose
//! reservation crosses a step boundary only queues the step *before* the one it
//! just finished; one background thread starts the writes, so appenders never
//! wait for them. It changes no durability guarantee: a record is durable only
//! once a sync covering it returns.
//!
//! Writeback lags one whole step behind the newest reservation, so the pages it
//! starts are, in practice, no longer being copied into by concurrent writers
//! (a straggler is still correct: its page is dirtied again and written by the
//! next sync). See [`Segment::start_writeback`] for how the pages are handed to
//! the kernel. The thread holds segments only weakly, so it never keeps a
//! retired segment from being recycled.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::segment::Segment;

/// Bytes of a segment between two writeback starts.
pub(crate) const WRITEBACK_STEP: u64 = 4 << 20;

/// The range of a segment whose writeback a reservation of `off..end` should
/// start: for every step boundary it crossed, the whole step one behind the
/// step that boundary ends (`None` if it crossed none, or only the first).
pub(crate) fn due(off: u64, end: u64) -> Option<(u64, u64)> {
    let from = (off / WRITEBACK_STEP).saturating_sub(1) * WRITEBACK_STEP;
    let to = (end / WRITEBACK_STEP).saturating_sub(1) * WRITEBACK_STEP;
    (to > from).then_some((from, to))
}

/// One step of one segment to write back.
struct Job {
    seg: Weak<Segment>,
    from: u64,
    to: u64,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    shutdown: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

/// The background thread that starts queued writebacks, in queue order.
pub(crate) struct Writeback {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

impl Writeback {
    /// Starts the thread. Without one (spawning failed), writebacks start on
    /// the appender that queues them.
    pub(crate) fn start() -> Writeback {
        let shared = Arc::new(Shared::default());
        let worker = Arc::clone(&shared);
        let worker = std::thread::Builder::new()
            .name("tidemark-wal-writeback".into())
            .spawn(move || worker.run())
            .map_err(|e| tracing::warn!("no writeback thread, appenders start writebacks: {e}"))
            .ok();
        Writeback { shared, worker }
    }

    /// Queues the writeback a reservation of `off..end` in `seg` made due, if any.
    pub(crate) fn on_reserved(&self, seg: &Arc<Segment>, off: u64, end: u64) {
        let Some((from, to)) = due(off, end) else {
            return;
        };
        if self.worker.is_none() {
            start(seg, from, to);
            return;
        }
        let seg = Arc::downgrade(seg);
        self.shared
            .state
            .lock()
            .jobs
            .push_back(Job { seg, from, to });
        self.shared.wake.notify_one();
    }
}

impl Drop for Writeback {
    /// Stops the thread; writebacks still queued are dropped (the next sync, or
    /// the kernel, writes those pages).
    fn drop(&mut self) {
        self.shared.state.lock().shutdown = true;
        self.shared.wake.notify_all();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

impl Shared {
    fn run(&self) {
        let mut st = self.state.lock();
        while !st.shutdown {
            match st.jobs.pop_front() {
                Some(job) => MutexGuard::unlocked(&mut st, || {
                    if let Some(seg) = job.seg.upgrade() {
                        start(&seg, job.from, job.to);
                    }
                }),
                None => self.wake.wait(&mut st),
            }
        }
    }
}

/// Best effort: a failure here surfaces, if it is real, at the next sync, which
/// is fatal for the instance.
fn start(seg: &Segment, from: u64, to: u64) {
    if let Err(e) = seg.start_writeback(from, to) {
        tracing::debug!(path = %seg.path.display(), from, to, error = %e, "early writeback not started");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = WRITEBACK_STEP;

    #[test]
    fn nothing_is_due_until_a_reservation_crosses_a_step_boundary() {
        assert_eq!(due(0, 100), None);
        assert_eq!(due(S - 200, S - 100), None);
        assert_eq!(due(S + 10, 2 * S - 1), None);
        // Crossing the first boundary: the step before it is the one being finished.
        assert_eq!(due(S - 10, S + 10), None);
    }

    #[test]
    fn crossing_a_boundary_starts_the_step_one_behind_it() {
        assert_eq!(due(2 * S - 10, 2 * S + 10), Some((0, S)));
        assert_eq!(due(2 * S - 10, 2 * S), Some((0, S)));
        assert_eq!(due(5 * S - 1, 5 * S + 7), Some((3 * S, 4 * S)));
    }

    #[test]
    fn a_reservation_crossing_several_boundaries_starts_every_step_behind_them() {
        assert_eq!(due(S + 5, 6 * S + 1), Some((0, 5 * S)));
        assert_eq!(due(3 * S, 5 * S), Some((2 * S, 4 * S)));
        assert_eq!(due(10, 3 * S), Some((0, 2 * S)));
    }

    #[test]
    fn every_step_is_started_once_by_a_run_of_small_reservations() {
        let mut started = Vec::new();
        // Appends until the one that crosses 16 steps: steps 0 through 14 are started.
        let mut off = 64;
        while off < 16 * S {
            let end = off + 136;
            started.extend(due(off, end));
            off = end;
        }
        let want: Vec<(u64, u64)> = (0..15).map(|k| (k * S, (k + 1) * S)).collect();
        assert_eq!(started, want);
    }
}
