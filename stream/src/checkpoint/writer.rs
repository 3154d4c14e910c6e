//! The driver's checkpoint writer (Spark's `CheckpointWriter`, with the
//! bookkeeping of `JobGenerator` that decides what a checkpoint holds).
//!
//! **Ordering.** The driver calls [`StreamCheckpointer::batch_allocated`] when
//! it allocates a batch time, and [`StreamCheckpointer::mark_completed`] only
//! after every output operation of that batch succeeded. A batch whose output
//! failed is never marked completed: it stays pending, is re-run after a
//! restart, and blocks the completion of every later batch (batches complete in
//! order, as with Spark's one concurrent job). So a checkpoint never claims
//! output that did not happen; output may happen twice (at-least-once), which
//! is why sinks must be idempotent per batch time.
//!
//! **Writing.** Every `every_n_batches` completed batches, `mark_completed`
//! writes a checkpoint before it returns: the metadata (settings, graph,
//! interval, last completed batch, pending batches, offsets) and each
//! operator's state as its own streamed part. A failed write is retried with
//! exponential backoff; after the last attempt the error is returned and the
//! writer refuses every later batch: the caller must stop the stream rather
//! than run on without checkpoints. After each checkpoint the store keeps the
//! last `keep_last` (a failed clean-up is only a warning: it loses nothing).
//!
//! **Fencing.** The first checkpoint through a store handle claims a new
//! writer generation; an older driver still writing to the same directory is
//! fenced (its next write fails and is not retried).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufWriter, Write};

use tidemark_checkpoint::Epoch;
use tidemark_checkpoint::blocking::{CheckpointStore, CheckpointWriter};

use crate::block::BatchTime;
use crate::error::StreamError;

use super::format::{META_FORMAT, META_PART, Meta, StatePartRef, encode_meta};
use super::offsets::SourceOffsets;
use super::recover::{Recovery, StreamSetup};
use super::retry::{RetryPolicy, with_retries};
use super::state::StateMap;
use super::state_codec::encode_state;

/// How often and how carefully checkpoints are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointerConfig {
    /// A checkpoint is written after every this many completed batches (at least 1).
    pub every_n_batches: u32,
    /// Checkpoints kept in the store (at least 1; Spark keeps 10).
    pub keep_last: usize,
    /// Retries of a failed write.
    pub retry: RetryPolicy,
}

impl Default for CheckpointerConfig {
    fn default() -> Self {
        CheckpointerConfig {
            every_n_batches: 1,
            keep_last: 10,
            retry: RetryPolicy::default(),
        }
    }
}

/// A checkpoint written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    /// Its epoch in the store.
    pub epoch: Epoch,
    /// The last completed batch it holds.
    pub batch: BatchTime,
    /// Attempts it took.
    pub attempts: u32,
}

/// Called with the failed attempt's number and error before each retry.
pub type RetryHook = Box<dyn FnMut(u32, &StreamError) + Send>;

/// Writes a stream's checkpoints as its batches complete.
pub struct StreamCheckpointer {
    store: CheckpointStore,
    setup: StreamSetup,
    interval_ms: u64,
    config: CheckpointerConfig,
    last_completed: Option<BatchTime>,
    pending: BTreeSet<BatchTime>,
    /// Batches completed since the last checkpoint.
    unwritten: u32,
    failed_at: Option<BatchTime>,
    on_retry: Option<RetryHook>,
}

impl std::fmt::Debug for StreamCheckpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamCheckpointer")
            .field("store", &self.store)
            .field("last_completed", &self.last_completed)
            .field("pending", &self.pending)
            .field("failed_at", &self.failed_at)
            .finish()
    }
}

impl StreamCheckpointer {
    /// A writer for the stream `setup` describes, continuing from `recovery`:
    /// after a resume, every batch to re-run counts as allocated.
    pub fn new(
        store: CheckpointStore,
        setup: StreamSetup,
        config: CheckpointerConfig,
        recovery: &Recovery,
    ) -> Result<StreamCheckpointer, StreamError> {
        let interval_ms = setup.interval_ms()?;
        check_config(&config)?;
        let (last_completed, pending) = match recovery {
            Recovery::Fresh => (None, BTreeSet::new()),
            Recovery::Resume(r) => (Some(r.last_completed), r.rerun.iter().copied().collect()),
        };
        Ok(StreamCheckpointer {
            store,
            setup,
            interval_ms,
            config,
            last_completed,
            pending,
            unwritten: 0,
            failed_at: None,
            on_retry: None,
        })
    }

    /// Calls `hook` before each retry of a failed write (for metrics and alerts).
    pub fn on_retry(&mut self, hook: impl FnMut(u32, &StreamError) + Send + 'static) {
        self.on_retry = Some(Box::new(hook));
    }

    /// The last batch marked completed.
    pub fn last_completed(&self) -> Option<BatchTime> {
        self.last_completed
    }

    /// Batches allocated and not completed, in order.
    pub fn pending(&self) -> Vec<BatchTime> {
        self.pending.iter().copied().collect()
    }

    /// Records that `batch` was allocated (it is pending until completed).
    /// Allocating a pending batch again does nothing; batches are allocated in order.
    pub fn batch_allocated(&mut self, batch: BatchTime) -> Result<(), StreamError> {
        self.check_running()?;
        if self.pending.contains(&batch) {
            return Ok(());
        }
        let newest = self.pending.last().copied().or(self.last_completed);
        match newest {
            Some(newest) if batch <= newest => Err(StreamError::BatchOutOfOrder {
                what: "allocate a batch",
                batch,
                reason: format!("batch {newest} was allocated already"),
            }),
            _ => {
                self.pending.insert(batch);
                Ok(())
            }
        }
    }

    /// Records that every output of `batch` succeeded, with the direct streams'
    /// next offsets and every stateful operator's state after it, and writes a
    /// checkpoint when one is due (returned). Call only after the output: see
    /// the module docs. Fails, changing nothing, on a batch out of order or
    /// input that does not match the graph; a failed write fails this and
    /// every later call.
    pub fn mark_completed(
        &mut self,
        batch: BatchTime,
        offsets: &SourceOffsets,
        states: &[(&str, &StateMap)],
    ) -> Result<Option<CommitInfo>, StreamError> {
        self.check_running()?;
        self.check_completion_order(batch)?;
        let states = self.check_input(batch, offsets, states)?;
        self.pending.remove(&batch);
        self.last_completed = Some(batch);
        self.unwritten += 1;
        if self.unwritten < self.config.every_n_batches {
            return Ok(None);
        }
        self.write(batch, offsets, &states).map(Some)
    }

    /// Writes a checkpoint now if batches completed since the last one (at an
    /// orderly stop with `every_n_batches` above 1). `offsets` and `states` are
    /// as of the last completed batch.
    pub fn flush(
        &mut self,
        offsets: &SourceOffsets,
        states: &[(&str, &StateMap)],
    ) -> Result<Option<CommitInfo>, StreamError> {
        self.check_running()?;
        let Some(batch) = self.last_completed.filter(|_| self.unwritten > 0) else {
            return Ok(None);
        };
        let states = self.check_input(batch, offsets, states)?;
        self.write(batch, offsets, &states).map(Some)
    }

    fn check_running(&self) -> Result<(), StreamError> {
        match self.failed_at {
            Some(failed_at) => Err(StreamError::CheckpointerFailed { failed_at }),
            None => Ok(()),
        }
    }

    fn check_completion_order(&self, batch: BatchTime) -> Result<(), StreamError> {
        let out_of_order = |reason: String| StreamError::BatchOutOfOrder {
            what: "mark a batch completed",
            batch,
            reason,
        };
        if let Some(last) = self.last_completed.filter(|last| batch <= *last) {
            return Err(out_of_order(format!("batch {last} completed already")));
        }
        match self.pending.first() {
            Some(oldest) if *oldest < batch => Err(out_of_order(format!(
                "batch {oldest} is still pending: batches complete in order"
            ))),
            _ => Ok(()),
        }
    }

    /// The states by name, checked against the graph; offsets only for its streams.
    fn check_input<'a>(
        &self,
        batch: BatchTime,
        offsets: &SourceOffsets,
        states: &[(&'a str, &'a StateMap)],
    ) -> Result<BTreeMap<&'a str, &'a StateMap>, StreamError> {
        let bad = |reason: String| StreamError::CheckpointInput { batch, reason };
        let graph = &self.setup.graph;
        if let Some(stream) = offsets.streams().find(|s| !graph.inputs().contains_key(*s)) {
            return Err(bad(format!(
                "offsets of stream {stream:?}, which the graph does not have"
            )));
        }
        let mut by_name = BTreeMap::new();
        for (name, state) in states {
            if by_name.insert(*name, *state).is_some() {
                return Err(bad(format!("state of {name:?} given twice")));
            }
            if let Some(last) = state.last_batch().filter(|last| *last > batch) {
                return Err(bad(format!(
                    "state of {name:?} already holds later batch {last}"
                )));
            }
        }
        let given: Vec<&str> = by_name.keys().copied().collect();
        let declared: Vec<&str> = graph
            .stateful_operators()
            .iter()
            .map(String::as_str)
            .collect();
        if given != declared {
            return Err(bad(format!(
                "states of {given:?} given, the graph's stateful operators are {declared:?}"
            )));
        }
        Ok(by_name)
    }

    /// Writes a checkpoint of `batch`, with retries; a final failure stops this writer.
    fn write(
        &mut self,
        batch: BatchTime,
        offsets: &SourceOffsets,
        states: &BTreeMap<&str, &StateMap>,
    ) -> Result<CommitInfo, StreamError> {
        let (meta, parts) = self.meta(batch, offsets, states);
        let meta = encode_meta(&meta).map_err(|e| StreamError::CheckpointInput {
            batch,
            reason: format!("metadata does not encode: {e}"),
        })?;
        let store = &self.store;
        let mut hook = self.on_retry.take();
        let result = with_retries(
            &self.config.retry,
            || write_once(store, &meta, &parts),
            |n, e| {
                if let Some(hook) = hook.as_mut() {
                    hook(n, e);
                }
            },
        );
        self.on_retry = hook;
        match result {
            Ok((epoch, attempts)) => Ok(self.committed(epoch, batch, attempts)),
            Err((last, attempts)) => {
                self.failed_at = Some(batch);
                tracing::error!(%batch, attempts, error = %last, "checkpoint write failed; the stream must stop");
                Err(StreamError::CheckpointWrite {
                    batch,
                    attempts,
                    last: Box::new(last),
                })
            }
        }
    }

    fn committed(&mut self, epoch: Epoch, batch: BatchTime, attempts: u32) -> CommitInfo {
        self.unwritten = 0;
        tracing::info!(%epoch, %batch, attempts, "checkpoint written");
        if let Err(e) = self.store.retain_last(self.config.keep_last) {
            tracing::warn!(error = %e, keep = self.config.keep_last, "deleting old checkpoints failed; the next checkpoint tries again");
        }
        CommitInfo {
            epoch,
            batch,
            attempts,
        }
    }

    /// The metadata of a checkpoint of `batch`, and the state parts it names.
    fn meta<'a>(
        &self,
        batch: BatchTime,
        offsets: &SourceOffsets,
        states: &BTreeMap<&str, &'a StateMap>,
    ) -> (Meta, Vec<(String, &'a StateMap)>) {
        let mut refs = BTreeMap::new();
        let mut parts = Vec::new();
        for (i, (name, state)) in states.iter().enumerate() {
            let part = format!("state-{i}");
            refs.insert(
                (*name).to_string(),
                StatePartRef {
                    part: part.clone(),
                    last_batch_ms: state.last_batch().map(|b| b.0),
                    entries: state.len() as u64,
                },
            );
            parts.push((part, *state));
        }
        let meta = Meta {
            format: META_FORMAT,
            batch_interval_ms: self.interval_ms,
            last_completed_ms: batch.0,
            pending_ms: self.pending.iter().map(|b| b.0).collect(),
            settings: self.setup.settings.clone(),
            graph: self.setup.graph.clone(),
            offsets: offsets.to_wire(),
            states: refs,
        };
        (meta, parts)
    }
}

fn check_config(config: &CheckpointerConfig) -> Result<(), StreamError> {
    let invalid = |name, reason: &str| StreamError::InvalidSetting {
        name,
        reason: reason.into(),
    };
    if config.every_n_batches == 0 {
        return Err(invalid("every_n_batches", "must be at least 1"));
    }
    if config.keep_last == 0 {
        return Err(invalid(
            "keep_last",
            "must be at least 1: 0 would delete every checkpoint",
        ));
    }
    if config.retry.attempts == 0 {
        return Err(invalid("retry.attempts", "must be at least 1"));
    }
    Ok(())
}

/// One attempt: a new checkpoint with every state part, then the metadata, then the commit.
fn write_once(
    store: &CheckpointStore,
    meta: &[u8],
    parts: &[(String, &StateMap)],
) -> Result<Epoch, StreamError> {
    let mut writer = store
        .begin()
        .map_err(StreamError::checkpoint("begin a checkpoint"))?;
    if let Err(e) = put_parts(&mut writer, meta, parts) {
        // Nothing was committed: the parts written so far can go now.
        if let Err(abort) = writer.abort() {
            tracing::debug!(error = %abort, "could not delete the parts of a failed checkpoint; garbage collection will");
        }
        return Err(e);
    }
    // A failed commit's outcome may be unknown: keep its parts (garbage collection takes them).
    writer
        .commit()
        .map_err(StreamError::checkpoint("commit a checkpoint"))
}

fn put_parts(
    writer: &mut CheckpointWriter,
    meta: &[u8],
    parts: &[(String, &StateMap)],
) -> Result<(), StreamError> {
    for (part, state) in parts {
        write_state_part(writer, part, state)?;
    }
    writer
        .put_part(META_PART, meta.to_vec())
        .map_err(StreamError::checkpoint("write the checkpoint metadata"))
}

/// Streams one state into its part.
fn write_state_part(
    writer: &mut CheckpointWriter,
    part: &str,
    state: &StateMap,
) -> Result<(), StreamError> {
    let what = format!("write checkpoint part {part}");
    let sink = writer
        .part_writer(part)
        .map_err(StreamError::checkpoint(what.clone()))?;
    let mut buffered = BufWriter::with_capacity(1 << 20, sink);
    encode_state(state, &mut buffered).map_err(StreamError::io(what.clone()))?;
    buffered.flush().map_err(StreamError::io(what.clone()))?;
    let sink = buffered
        .into_inner()
        .map_err(|e| StreamError::io(what.clone())(e.into_error()))?;
    sink.finish().map_err(StreamError::io(what))
}
