//! The get-or-create decision of a starting driver (Spark's
//! `StreamingContext.getOrCreate` and `JobGenerator.restart`).
//!
//! No checkpoint: start fresh. A checkpoint: resume from it, after comparing
//! it with the code's graph and this run's settings:
//! - **graph**: any stream or output added, removed, renamed or changed, and
//!   any stateful operator added or removed, is refused, naming each
//!   difference, unless [`RecoverOptions::start_from_changed_graph`]; then the
//!   offsets of streams still present (same name, same kind) and the state of
//!   operators still present are kept, and the rest is dropped with a warning;
//! - **settings**: this run's apply; each difference is logged and returned;
//! - **batch interval**: may change only when no batch is pending, or with
//!   [`RecoverOptions::drain_first`], which returns a [`Drain`]: the pending
//!   batches run first, under the old interval;
//! - **batches**: the pending batches, then every batch time from the
//!   checkpoint's last completed batch up to now rounded down to the interval,
//!   are returned in order to be re-run, the down-time ones capped at
//!   [`RecoverOptions::max_rerun_batches`] (a cap says so, in the result and
//!   in a warning).

use std::collections::BTreeMap;
use std::time::Duration;

use tidemark_checkpoint::Epoch;
use tidemark_checkpoint::blocking::CheckpointStore;

use crate::block::BatchTime;
use crate::error::StreamError;

use super::graph::{GraphDifference, GraphSignature};
use super::offsets::SourceOffsets;
use super::read::{SkippedCheckpoint, StreamCheckpoint, load_latest};
use super::schedule::{DroppedReruns, plan_reruns};
use super::settings::{SettingChange, Settings};
use super::state::StateMap;

/// The name the batch interval is reported under in [`SettingChange`]s (in milliseconds).
pub const BATCH_INTERVAL_SETTING: &str = "batch_interval";

/// What this run of the driver is: its code's graph, its settings, its batch interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSetup {
    /// The code's stream graph.
    pub graph: GraphSignature,
    /// This run's settings.
    pub settings: Settings,
    /// This run's batch interval: whole milliseconds, at least 1 ms.
    pub batch_interval: Duration,
}

impl StreamSetup {
    /// The batch interval in milliseconds, checked.
    pub(crate) fn interval_ms(&self) -> Result<u64, StreamError> {
        let ms = u64::try_from(self.batch_interval.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 || !self.batch_interval.subsec_nanos().is_multiple_of(1_000_000) {
            return Err(StreamError::InvalidSetting {
                name: BATCH_INTERVAL_SETTING,
                reason: format!(
                    "{:?} is not a whole number of milliseconds of at least 1",
                    self.batch_interval
                ),
            });
        }
        Ok(ms)
    }
}

/// How a driver may resume from a checkpoint that differs from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoverOptions {
    /// Resume although the graph changed: keep what still matches, drop the rest.
    pub start_from_changed_graph: bool,
    /// Accept a new batch interval although batches are pending: they are
    /// drained under the old interval first (see [`Drain`]).
    pub drain_first: bool,
    /// At most this many down-time batches are re-run (pending batches always are).
    pub max_rerun_batches: usize,
}

impl Default for RecoverOptions {
    fn default() -> Self {
        RecoverOptions {
            start_from_changed_graph: false,
            drain_first: false,
            max_rerun_batches: 10_000,
        }
    }
}

/// The decision: start fresh, or resume.
#[derive(Clone, Debug)]
pub enum Recovery {
    /// The store holds no checkpoint.
    Fresh,
    /// Resume from a checkpoint.
    Resume(Box<Resumed>),
}

/// Run these batches under the checkpoint's interval before anything else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drain {
    /// The checkpoint's (old) batch interval.
    pub interval: Duration,
    /// The pending batches, in order: the first entries of [`Resumed::rerun`].
    pub batches: Vec<BatchTime>,
}

/// Where a restarted driver resumes.
#[derive(Clone, Debug)]
pub struct Resumed {
    /// The checkpoint resumed from.
    pub epoch: Epoch,
    /// The last batch whose output completed before the checkpoint.
    pub last_completed: BatchTime,
    /// Batches allocated but not completed when the checkpoint was written.
    pub pending: Vec<BatchTime>,
    /// Every batch to run now, in order: the pending ones, then the down-time ones.
    pub rerun: Vec<BatchTime>,
    /// Down-time batches left out by [`RecoverOptions::max_rerun_batches`].
    pub rerun_dropped: Option<DroppedReruns>,
    /// The first batch of the timer, after every re-run batch.
    pub next_batch: BatchTime,
    /// Set when the pending batches must run under the old interval first.
    pub drain: Option<Drain>,
    /// Next offsets of the direct streams still in the graph.
    pub offsets: SourceOffsets,
    /// State of the stateful operators still in the graph, as of `last_completed`.
    pub states: BTreeMap<String, StateMap>,
    /// Settings (and the batch interval) that differ from the checkpoint's; this run's apply.
    pub setting_changes: Vec<SettingChange>,
    /// Graph differences accepted with `start_from_changed_graph`.
    pub graph_changes: Vec<GraphDifference>,
    /// Streams whose checkpointed offsets were dropped (gone or changed).
    pub dropped_offsets: Vec<String>,
    /// Stateful operators whose checkpointed state was dropped (gone).
    pub dropped_states: Vec<String>,
    /// Newer checkpoints passed over as damaged.
    pub skipped: Vec<SkippedCheckpoint>,
}

/// Opens the store at `url` and decides: see [`recover`]. The store is
/// returned for [`super::StreamCheckpointer::new`]: this driver's first
/// checkpoint through it fences any older driver still writing.
pub fn get_or_create(
    url: &str,
    setup: &StreamSetup,
    now_ms: u64,
    options: &RecoverOptions,
) -> Result<(CheckpointStore, Recovery), StreamError> {
    let store = open_store(url)?;
    let recovery = recover(&store, setup, now_ms, options)?;
    Ok((store, recovery))
}

/// Opens a checkpoint store by URL (`file://`, `s3://`, `hdfs://`, `memory://`).
pub fn open_store(url: &str) -> Result<CheckpointStore, StreamError> {
    CheckpointStore::open(url).map_err(StreamError::checkpoint("open the checkpoint store"))
}

/// Decides how this driver starts, given the time `now_ms` (milliseconds since
/// the Unix epoch). Only reads the store: fences no one.
pub fn recover(
    store: &CheckpointStore,
    setup: &StreamSetup,
    now_ms: u64,
    options: &RecoverOptions,
) -> Result<Recovery, StreamError> {
    let interval_ms = setup.interval_ms()?;
    let Some(loaded) = load_latest(store)? else {
        tracing::info!(
            location = store.as_async().location(),
            "no checkpoint: starting fresh"
        );
        return Ok(Recovery::Fresh);
    };
    let cp = loaded.checkpoint;
    let graph_changes = check_graph(&cp.graph, &setup.graph, options)?;
    let setting_changes = setting_changes(&cp, setup);
    let drain = check_interval(&cp, setup, options)?;
    let (offsets, dropped_offsets) = kept_offsets(&cp.offsets, &cp.graph, &setup.graph);
    let (states, dropped_states) = kept_states(cp.states, &setup.graph);
    let plan = plan_reruns(
        cp.last_completed,
        &cp.pending,
        interval_ms,
        now_ms,
        options.max_rerun_batches,
    );
    if let Some(d) = &plan.dropped {
        tracing::warn!(count = d.count, first = %d.first, last = %d.last,
            "more down-time batches than max_rerun_batches: these are not re-run");
    }
    tracing::info!(epoch = %cp.epoch, last_completed = %cp.last_completed,
        rerun = plan.rerun.len(), next = %plan.next_batch, "resuming from a checkpoint");
    Ok(Recovery::Resume(Box::new(Resumed {
        epoch: cp.epoch,
        last_completed: cp.last_completed,
        pending: cp.pending,
        rerun: plan.rerun,
        rerun_dropped: plan.dropped,
        next_batch: plan.next_batch,
        drain,
        offsets,
        states,
        setting_changes,
        graph_changes,
        dropped_offsets,
        dropped_states,
        skipped: loaded.skipped,
    })))
}

fn check_graph(
    old: &GraphSignature,
    new: &GraphSignature,
    options: &RecoverOptions,
) -> Result<Vec<GraphDifference>, StreamError> {
    let differences = new.differences(old);
    if differences.is_empty() {
        return Ok(differences);
    }
    if !options.start_from_changed_graph {
        return Err(StreamError::GraphChanged { differences });
    }
    for d in &differences {
        tracing::warn!(difference = %d, "starting from a checkpoint of a changed graph");
    }
    Ok(differences)
}

fn setting_changes(cp: &StreamCheckpoint, setup: &StreamSetup) -> Vec<SettingChange> {
    let mut changes = setup.settings.changes_from(&cp.settings);
    if cp.batch_interval != setup.batch_interval {
        changes.push(SettingChange {
            name: BATCH_INTERVAL_SETTING.into(),
            old: Some(cp.batch_interval.as_millis().to_string()),
            new: Some(setup.batch_interval.as_millis().to_string()),
        });
    }
    for c in &changes {
        tracing::info!(change = %c, "setting differs from the checkpoint's; this run's applies");
    }
    changes
}

fn check_interval(
    cp: &StreamCheckpoint,
    setup: &StreamSetup,
    options: &RecoverOptions,
) -> Result<Option<Drain>, StreamError> {
    if cp.batch_interval == setup.batch_interval || cp.pending.is_empty() {
        return Ok(None);
    }
    if !options.drain_first {
        return Err(StreamError::BatchIntervalChanged {
            old: cp.batch_interval,
            new: setup.batch_interval,
            pending: cp.pending.clone(),
        });
    }
    tracing::info!(old = ?cp.batch_interval, pending = cp.pending.len(),
        "draining the pending batches under the old batch interval first");
    Ok(Some(Drain {
        interval: cp.batch_interval,
        batches: cp.pending.clone(),
    }))
}

/// The offsets of streams the new graph still has, under the same name and of
/// the same kind; the names of the others.
fn kept_offsets(
    offsets: &SourceOffsets,
    old: &GraphSignature,
    new: &GraphSignature,
) -> (SourceOffsets, Vec<String>) {
    let mut kept = offsets.clone();
    let mut dropped = Vec::new();
    for stream in offsets.streams() {
        let now = new.inputs().get(stream);
        if now.is_some() && now == old.inputs().get(stream) {
            continue;
        }
        kept.remove_stream(stream);
        tracing::warn!(
            stream,
            "dropping the checkpointed offsets of a stream the graph no longer has, or that reads another source now"
        );
        dropped.push(stream.to_string());
    }
    (kept, dropped)
}

/// The states of operators the graph still has; the names of the others.
fn kept_states(
    states: BTreeMap<String, StateMap>,
    graph: &GraphSignature,
) -> (BTreeMap<String, StateMap>, Vec<String>) {
    let (kept, gone): (BTreeMap<_, _>, BTreeMap<_, _>) = states
        .into_iter()
        .partition(|(name, _)| graph.stateful_operators().contains(name));
    for name in gone.keys() {
        tracing::warn!(operator = %name, "dropping the checkpointed state of an operator the graph no longer has");
    }
    (kept, gone.into_keys().collect())
}
