//! The driver's block bookkeeping (Spark's `ReceivedBlockTracker`).
//!
//! Receivers report stored blocks ([`ReceivedBlockTracker::add_block`]); the
//! job generator gives every waiting block to the next batch
//! ([`ReceivedBlockTracker::allocate_blocks_to_batch`]), reads a batch's blocks,
//! and drops old batches once they are done and checkpointed
//! ([`ReceivedBlockTracker::cleanup_old_batches`]).
//!
//! With a metadata WAL, every change is an event ([`events::TrackerEvent`])
//! appended to the WAL *before* the in-memory state changes, and a call returns
//! only once its event is durable (group commit). A failed append changes
//! nothing and returns the error. Opening replays every event in LSN order, so
//! a driver that crashed (process kill or power loss) reopens with the effect of
//! every call that had returned, and of none that was never made; a call in
//! flight at the crash is there whole or not at all.
//! Without a WAL (`None`) the state lives in memory only, like Spark with the
//! WAL off.
//!
//! Blocks recovered by replay may be gone from the block store (it died with the
//! executors); read them through [`crate::handler::read_block`], which falls back
//! to the receiver WAL.
//!
//! # WAL truncation
//!
//! The events still needed are: the `BlockAdded` of every block not yet
//! allocated, the `BatchAllocated` of every batch not yet cleaned, and the
//! `BatchAllocated` of the last allocated batch, which alone remembers the last
//! allocated time once that batch is cleaned (without it a recovered driver
//! would allocate a re-run batch time again). After each cleanup the WAL is
//! truncated before the smallest LSN still needed, or before the last LSN when
//! none is; the WAL retires whole segments only, so it may keep older events
//! too. Replaying any suffix that starts at or before that LSN rebuilds the same
//! state (see `state.rs`): every event after a replayed one is replayed, so what
//! an older, dropped event put in the state is either still needed or was taken
//! out again by an event that is replayed.

pub mod events;
mod log;
mod options;
mod state;

use std::path::{Path, PathBuf};

use parking_lot::{Mutex, RwLock};
use tidemark_wal::Lsn;

use crate::block::{BatchTime, ReceivedBlockInfo};
use crate::error::StreamError;
use events::TrackerEvent;
use log::MetadataLog;
pub use options::TrackerOptions;
use state::TrackerState;
pub use state::{BlocksByStream, TrackerSnapshot};

/// The metadata WAL's directory under a checkpoint root (Spark's `receivedBlockMetadata`).
pub fn metadata_wal_dir(checkpoint_root: &Path) -> PathBuf {
    checkpoint_root.join("receivedBlockMetadata")
}

/// What [`ReceivedBlockTracker::allocate_blocks_to_batch`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocation {
    /// The batch got every waiting block (possibly none).
    Allocated,
    /// The time is at or before the last allocated batch: nothing changed (a
    /// recovered driver re-running batch times).
    AlreadyAllocated,
}

/// The driver's record of received blocks and their batches. `Send + Sync`:
/// receiver-report threads and the job generator call it at once.
///
/// Ordering: each stream's waiting blocks are kept in the order their events
/// were logged. An allocation takes exactly the blocks whose `add_block` had
/// logged its event before the allocation did: it first waits for the adds in
/// flight, and adds arriving meanwhile wait for its one sync. WAL truncation
/// waits the same way, so it never retires an add that is logged but not yet
/// applied.
pub struct ReceivedBlockTracker {
    log: MetadataLog,
    state: Mutex<TrackerState>,
    /// Serializes the job generator's operations (allocation, cleanup, truncation).
    jobs: Mutex<()>,
    /// Held shared by an add from before its append until its block is queued;
    /// held exclusively by an allocation (so it lists every block logged before
    /// it) and by truncation (so it never retires an event not yet applied).
    adds: RwLock<()>,
}

impl ReceivedBlockTracker {
    /// Opens a tracker of `stream_ids`. With `wal_dir`, opens (or creates) the
    /// metadata WAL there and replays it; a record that does not decode is
    /// [`StreamError::BadRecord`], a damaged WAL the WAL's error. Streams the
    /// log names that are not in `stream_ids` are tracked too, with a warning.
    pub fn open(
        wal_dir: Option<&Path>,
        stream_ids: &[u32],
        opts: TrackerOptions,
    ) -> Result<ReceivedBlockTracker, StreamError> {
        let log = MetadataLog::open(wal_dir, &opts)?;
        let mut state = TrackerState::new(stream_ids.iter().copied());
        let replayed = log.replay(|lsn, event| {
            for stream in state.unknown_streams(&event) {
                tracing::warn!(
                    stream,
                    lsn,
                    "metadata WAL names an untracked stream; tracking it"
                );
            }
            state.apply(&event, lsn);
        })?;
        tracing::info!(
            replayed,
            last_allocated = ?state.last_allocated(),
            "received block tracker opened"
        );
        Ok(ReceivedBlockTracker {
            log,
            state: Mutex::new(state),
            jobs: Mutex::new(()),
            adds: RwLock::new(()),
        })
    }

    /// Records a stored block as waiting for a batch. Returns once its event is
    /// durable; on error the tracker did not change. A block of a stream the
    /// tracker does not track is [`StreamError::UnknownStream`].
    pub fn add_block(&self, info: ReceivedBlockInfo) -> Result<(), StreamError> {
        let stream_id = info.block.stream_id;
        if !self.state.lock().tracks(stream_id) {
            return Err(StreamError::UnknownStream { stream_id });
        }
        let _adding = self.adds.read();
        let event = TrackerEvent::BlockAdded(info);
        let key = self.log.append(&event, "log a block addition")?;
        self.state.lock().apply(&event, key);
        tracing::trace!(key, "block added");
        Ok(())
    }

    /// Gives every waiting block to batch `time`. A time at or before the last
    /// allocated one changes nothing and returns [`Allocation::AlreadyAllocated`].
    /// Returns once the allocation is durable; on error nothing changed (an
    /// allocation whose event does not fit in one WAL segment fails with the
    /// WAL's `RecordTooLarge`; see [`TrackerOptions::segment_size`]).
    pub fn allocate_blocks_to_batch(&self, time: BatchTime) -> Result<Allocation, StreamError> {
        let _jobs = self.jobs.lock();
        let _no_adds = self.adds.write();
        let event = {
            let state = self.state.lock();
            if state.allocated_through(time) {
                tracing::info!(%time, "batch already allocated (a re-run after recovery?)");
                return Ok(Allocation::AlreadyAllocated);
            }
            state.allocation(time)
        };
        let key = self.log.append(&event, "log a batch allocation")?;
        self.state.lock().apply(&event, key);
        tracing::debug!(%time, key, "batch allocated");
        Ok(Allocation::Allocated)
    }

    /// Drops every batch before `threshold`; returns their blocks (oldest batch
    /// first, then by stream) for the caller to remove through
    /// [`crate::handler::ReceivedBlockHandler::remove_blocks`]. Returns once the
    /// cleanup is durable; on error nothing changed. Then truncates the WAL (see
    /// the module docs); a failed truncation is logged and retried by the next
    /// cleanup, and [`ReceivedBlockTracker::truncate_wal`] reports it.
    pub fn cleanup_old_batches(
        &self,
        threshold: BatchTime,
    ) -> Result<Vec<ReceivedBlockInfo>, StreamError> {
        let _jobs = self.jobs.lock();
        let mut dropped = Vec::new();
        if self.state.lock().has_batches_before(threshold) {
            let event = TrackerEvent::BatchesCleaned { threshold };
            let key = self.log.append(&event, "log a batch cleanup")?;
            dropped = self.state.lock().apply(&event, key);
            tracing::debug!(%threshold, blocks = dropped.len(), "old batches cleaned");
        }
        if let Err(error) = self.truncate_locked() {
            tracing::warn!(%error, "metadata WAL truncation failed; the next cleanup retries");
        }
        Ok(dropped)
    }

    /// Truncates the metadata WAL of every event no longer needed (see the
    /// module docs). Cleanup does this by itself; this reports its error.
    pub fn truncate_wal(&self) -> Result<(), StreamError> {
        let _jobs = self.jobs.lock();
        self.truncate_locked()
    }

    fn truncate_locked(&self) -> Result<(), StreamError> {
        let _no_adds = self.adds.write();
        let keep_from = self.state.lock().min_needed_key();
        self.log.truncate(keep_from)
    }

    /// The blocks of batch `time` by stream (empty if not allocated or cleaned).
    pub fn blocks_of_batch(&self, time: BatchTime) -> BlocksByStream {
        self.state.lock().batch(time)
    }

    /// The blocks of batch `time` from `stream_id` (empty if none).
    pub fn blocks_of_batch_and_stream(
        &self,
        time: BatchTime,
        stream_id: u32,
    ) -> Vec<ReceivedBlockInfo> {
        self.state
            .lock()
            .batch(time)
            .remove(&stream_id)
            .unwrap_or_default()
    }

    /// Whether any block waits for a batch.
    pub fn has_unallocated_blocks(&self) -> bool {
        self.state.lock().has_unallocated()
    }

    /// The blocks of `stream_id` waiting for a batch, oldest first.
    pub fn unallocated_blocks(&self, stream_id: u32) -> Vec<ReceivedBlockInfo> {
        self.state.lock().queued(stream_id)
    }

    /// The latest batch time allocated (kept after that batch is cleaned).
    pub fn last_allocated_batch(&self) -> Option<BatchTime> {
        self.state.lock().last_allocated()
    }

    /// The tracked stream ids.
    pub fn stream_ids(&self) -> Vec<u32> {
        self.state.lock().streams()
    }

    /// The whole state as plain values (a consistent copy).
    pub fn snapshot(&self) -> TrackerSnapshot {
        self.state.lock().snapshot()
    }

    /// The first and last LSN the metadata WAL holds; `None` without a WAL or
    /// before the first event. Shows what truncation retired.
    pub fn wal_span(&self) -> Option<(Lsn, Lsn)> {
        self.log.span()
    }
}

/// The tracker is shared across receiver-report threads and the job generator.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<ReceivedBlockTracker>();
};
