//! Spare segments, prepared ahead of need by a background thread and reused
//! after retirement.
//!
//! Rotation takes a ready spare when there is one. When there is none (the
//! preparer fell behind, or failed) rotation creates a reserve-only segment on
//! the spot: cheaper to create, somewhat dearer to sync, and never a stall
//! behind a zero-fill. Retired segments whose blocks are already written are
//! renamed and kept, up to the recycle limit, because a sync over written
//! blocks is the cheapest there is.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use crate::error::Result;
use crate::fs_util::sync_dir;
use crate::options::SegmentInit;
use crate::segment::{Segment, Spare};

struct PoolState {
    ready: VecDeque<Spare>,
    next_seq: u64,
    shutdown: bool,
    preparing: bool,
}

struct PoolShared {
    dir: PathBuf,
    segment_len: u64,
    init: SegmentInit,
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
        recycle_limit: usize,
        next_seq: u64,
        spares: Vec<Spare>,
    ) -> SegmentPool {
        let shared = Arc::new(PoolShared {
            dir: dir.to_path_buf(),
            segment_len,
            init,
            recycle_limit,
            state: Mutex::new(PoolState {
                ready: spares.into(),
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

    /// A spare for the first segment of an open: a ready one, or one prepared
    /// now as configured (open may take the time a rotation may not).
    pub(crate) fn take_prepared(&self) -> Result<Spare> {
        let seq = {
            let mut st = self.shared.state.lock();
            if let Some(spare) = st.ready.pop_front() {
                self.shared.wake.notify_one();
                return Ok(spare);
            }
            st.next_seq += 1;
            st.next_seq - 1
        };
        Spare::create(
            &self.shared.dir,
            seq,
            self.shared.segment_len,
            self.shared.init,
        )
    }

    /// A spare for the next segment: a ready one, or a reserve-only one made now.
    pub(crate) fn take(&self) -> Result<Spare> {
        let seq = {
            let mut st = self.shared.state.lock();
            if let Some(spare) = st.ready.pop_front() {
                self.shared.wake.notify_one();
                return Ok(spare);
            }
            st.next_seq += 1;
            st.next_seq - 1
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
    /// it has the current size, else deleted. Syncs the directory.
    pub(crate) fn retire(&self, segment: Segment) -> Result<()> {
        let path = segment.path.clone();
        let seq = {
            let mut st = self.shared.state.lock();
            let keep = st.ready.len() < self.shared.recycle_limit
                && segment.len() == self.shared.segment_len;
            keep.then(|| {
                st.next_seq += 1;
                st.next_seq - 1
            })
        };
        match seq {
            Some(seq) => {
                let spare = segment.into_spare().renumber(&self.shared.dir, seq)?;
                self.shared.state.lock().ready.push_back(spare);
            }
            None => {
                drop(segment);
                std::fs::remove_file(&path)
                    .map_err(|e| crate::WalError::io("remove segment", &path, e))?;
            }
        }
        sync_dir(&self.shared.dir)
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
    /// Keeps one spare ready ahead of need until shutdown.
    fn run(&self) {
        let mut st = self.state.lock();
        loop {
            if st.shutdown {
                return;
            }
            if !st.ready.is_empty() || st.preparing {
                self.wake.wait(&mut st);
                continue;
            }
            let seq = st.next_seq;
            st.next_seq += 1;
            st.preparing = true;
            let made = parking_lot::MutexGuard::unlocked(&mut st, || {
                Spare::create(&self.dir, seq, self.segment_len, self.init)
            });
            st.preparing = false;
            match made {
                Ok(spare) => st.ready.push_back(spare),
                Err(e) => {
                    tracing::warn!(error = %e, "preparing a spare segment failed; rotation will create one when needed");
                    // Do not spin on a full disk: wait until someone takes or retires a segment.
                    self.wake.wait(&mut st);
                }
            }
        }
    }
}
