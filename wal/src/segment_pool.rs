//! Spare segments, prepared ahead of need by a background thread and reused
//! after retirement.
//!
//! Rotation takes a ready spare when there is one. When there is none (the
//! preparer fell behind, or failed) rotation creates a reserve-only segment on
//! the spot: cheaper to create, somewhat dearer to sync, and never a stall
//! behind a zero-fill. Retired segments whose blocks are already written are
//! renamed and kept, up to the recycle limit, because a sync over written
//! blocks is the cheapest there is. Where appends run ahead of syncs, the
//! preparer prefaults every spare writable before readying it, so appends take
//! no page fault per page.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::error::{Result, WalError};
use crate::fs_util::sync_dir;
use crate::options::SegmentInit;
use crate::segment::{Segment, Spare};

struct PoolState {
    /// Prefaulted spares, oldest first.
    ready: VecDeque<Spare>,
    /// Recycled or recovered spares the preparer has not prefaulted yet.
    unprimed: Vec<Spare>,
    next_seq: u64,
    shutdown: bool,
    preparing: bool,
}

impl PoolState {
    /// A ready spare, else one not yet prefaulted.
    fn take_any(&mut self) -> Option<Spare> {
        self.ready.pop_front().or_else(|| self.unprimed.pop())
    }

    fn claim_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq - 1
    }
}

struct PoolShared {
    dir: PathBuf,
    segment_len: u64,
    init: SegmentInit,
    /// Whether spares are faulted in writable before they are readied.
    prefault: bool,
    recycle_limit: usize,
    state: Mutex<PoolState>,
    wake: Condvar,
}

/// The spare segments of one log, and the thread that prepares them.
pub(crate) struct SegmentPool {
    shared: Arc<PoolShared>,
    preparer: Option<JoinHandle<()>>,
}

impl SegmentPool {
    /// A pool that names new segments from `next_seq` on and starts with `spares`.
    pub(crate) fn start(
        dir: &Path,
        segment_len: u64,
        init: SegmentInit,
        prefault: bool,
        recycle_limit: usize,
        next_seq: u64,
        spares: Vec<Spare>,
    ) -> SegmentPool {
        let shared = Arc::new(PoolShared {
            dir: dir.to_path_buf(),
            segment_len,
            init,
            prefault,
            recycle_limit,
            state: Mutex::new(PoolState {
                ready: VecDeque::new(),
                unprimed: spares,
                next_seq,
                shutdown: false,
                preparing: false,
            }),
            wake: Condvar::new(),
        });
        let worker = shared.clone();
        let preparer = std::thread::Builder::new()
            .name("tidemark-wal-prepare".into())
            .spawn(move || worker.run())
            .map_err(|e| tracing::warn!("no segment preparer thread: {e}"))
            .ok();
        SegmentPool { shared, preparer }
    }

    /// A spare for the first segment of an open: a pooled one, or one prepared
    /// now as configured (an open may take the time a rotation may not).
    pub(crate) fn take_prepared(&self) -> Result<Spare> {
        let seq = {
            let mut st = self.shared.state.lock();
            if let Some(spare) = st.take_any() {
                self.shared.wake.notify_one();
                self.shared.prime(&spare);
                return Ok(spare);
            }
            st.claim_seq()
        };
        let spare = Spare::create(
            &self.shared.dir,
            seq,
            self.shared.segment_len,
            self.shared.init,
        )?;
        self.shared.prime(&spare);
        Ok(spare)
    }

    /// A spare for the next segment: a pooled one, or a reserve-only one made now.
    pub(crate) fn take(&self) -> Result<Spare> {
        let seq = {
            let mut st = self.shared.state.lock();
            if let Some(spare) = st.take_any() {
                self.shared.wake.notify_one();
                return Ok(spare);
            }
            st.claim_seq()
        };
        self.shared.wake.notify_one();
        Spare::create(
            &self.shared.dir,
            seq,
            self.shared.segment_len,
            SegmentInit::Reserve,
        )
    }

    /// Retires `segment`: kept for reuse under a new number if there is room and
    /// it has the current size, else deleted. Syncs the directory, and a kept
    /// segment joins the pool only after that sync: records acknowledged in it
    /// later must not rest on a rename a power cut could undo (its new header
    /// under its old name reads as a spare, and the records would be lost).
    pub(crate) fn retire(&self, segment: Segment) -> Result<()> {
        let path = segment.path.clone();
        let seq = {
            let mut st = self.shared.state.lock();
            let spares = st.ready.len() + st.unprimed.len();
            let keep =
                spares < self.shared.recycle_limit && segment.len() == self.shared.segment_len;
            keep.then(|| st.claim_seq())
        };
        match seq {
            Some(seq) => {
                let spare = segment.into_spare().renumber(&self.shared.dir, seq)?;
                sync_dir(&self.shared.dir)?;
                self.shared.state.lock().unprimed.push(spare);
                self.shared.wake.notify_one();
                Ok(())
            }
            None => {
                drop(segment);
                std::fs::remove_file(&path)
                    .map_err(|e| WalError::io("remove segment", &path, e))?;
                sync_dir(&self.shared.dir)
            }
        }
    }
}

impl Drop for SegmentPool {
    fn drop(&mut self) {
        self.shared.state.lock().shutdown = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.preparer.take() {
            let _ = t.join();
        }
    }
}

impl PoolShared {
    /// Readies a spare for appends: prefaults it if this pool does.
    fn prime(&self, spare: &Spare) {
        if self.prefault {
            spare.prefault();
        }
    }

    /// Prefaults pooled spares and keeps one new spare ready ahead of need, until shutdown.
    fn run(&self) {
        let mut st = self.state.lock();
        while !st.shutdown {
            if let Some(spare) = st.unprimed.pop() {
                let spare = MutexGuard::unlocked(&mut st, || {
                    self.prime(&spare);
                    spare
                });
                st.ready.push_back(spare);
            } else if !st.ready.is_empty() || st.preparing {
                self.wake.wait(&mut st);
            } else {
                self.prepare_one(&mut st);
            }
        }
    }

    /// Creates, zero-fills (per the options) and prefaults one spare, without the lock.
    fn prepare_one(&self, st: &mut MutexGuard<'_, PoolState>) {
        let seq = st.claim_seq();
        st.preparing = true;
        let made = MutexGuard::unlocked(st, || {
            let spare = Spare::create(&self.dir, seq, self.segment_len, self.init)?;
            self.prime(&spare);
            Ok::<_, WalError>(spare)
        });
        st.preparing = false;
        match made {
            Ok(spare) => st.ready.push_back(spare),
            Err(e) => {
                tracing::warn!(error = %e, "preparing a spare segment failed; rotation will create one when needed");
                // Do not spin on a full disk: wait until someone takes or retires a segment.
                // Shutdown may have been signalled while the lock was released above; its
                // wakeup is gone, so waiting now would block the pool's drop for ever.
                if !st.shutdown {
                    self.wake.wait(st);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool whose preparer cannot create segments (its directory is gone) is
    /// dropped at every point of the preparer's failing attempt, including
    /// while it holds no lock; each drop must return (it once waited for ever
    /// when shutdown was signalled during a failed preparation).
    #[test]
    fn a_pool_whose_preparation_fails_drops_promptly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gone = dir.path().join("removed");
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for i in 0..300u32 {
                let pool = SegmentPool::start(
                    &gone,
                    1 << 20,
                    SegmentInit::Reserve,
                    false,
                    0,
                    1,
                    Vec::new(),
                );
                std::thread::sleep(std::time::Duration::from_micros(u64::from(i % 50) * 5));
                drop(pool);
            }
            let _ = done_tx.send(());
        });
        assert!(
            done_rx
                .recv_timeout(std::time::Duration::from_secs(30))
                .is_ok(),
            "dropping a pool whose preparation failed hung"
        );
    }
}
