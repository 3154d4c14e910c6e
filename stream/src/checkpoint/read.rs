//! Reading the newest stream checkpoint that decodes, falling back past damaged ones.
//!
//! The store's `latest()` already passes over checkpoints whose manifest is
//! damaged or whose parts are missing. A part can still be damaged inside
//! (its bytes fail their checksum when read) or fail to decode; such a
//! checkpoint is passed over too, for the next older complete one. Everything
//! passed over is logged as a warning and reported. A checkpoint written in a
//! newer format, a checkpoint that is not a stream checkpoint, and a store
//! that cannot be read are errors, never passed over; so is a store whose
//! checkpoints are all damaged: starting fresh would silently drop the offsets
//! and state they held.

use std::collections::BTreeMap;
use std::io::{self, BufReader};
use std::time::Duration;

use tidemark_checkpoint::blocking::{Checkpoint, CheckpointStore};
use tidemark_checkpoint::{CheckpointError, CheckpointInfo, CheckpointState, Epoch};

use crate::block::BatchTime;
use crate::error::StreamError;

use super::format::{META_PART, MetaError, StatePartRef, decode_meta};
use super::graph::GraphSignature;
use super::offsets::SourceOffsets;
use super::settings::Settings;
use super::state::StateMap;
use super::state_codec::{STATE_FORMAT, StateDecodeError, decode_state};

/// A decoded stream checkpoint.
#[derive(Clone, Debug)]
pub(crate) struct StreamCheckpoint {
    pub epoch: Epoch,
    pub batch_interval: Duration,
    pub last_completed: BatchTime,
    pub pending: Vec<BatchTime>,
    pub settings: Settings,
    pub graph: GraphSignature,
    pub offsets: SourceOffsets,
    pub states: BTreeMap<String, StateMap>,
}

/// A newer checkpoint passed over on the way to the one resumed from, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedCheckpoint {
    /// Its epoch.
    pub epoch: Epoch,
    /// What is wrong with it.
    pub reason: String,
}

/// The checkpoint to resume from, and what was passed over to reach it.
pub(crate) struct Loaded {
    pub checkpoint: StreamCheckpoint,
    pub skipped: Vec<SkippedCheckpoint>,
}

/// Why a checkpoint was not decoded.
enum Failure {
    /// Damaged: fall back to an older one.
    Damaged(String),
    /// Stop: newer format, foreign data, an unreadable store.
    Fatal(StreamError),
}

/// The newest checkpoint that decodes; `None` when the store holds no checkpoint at all.
pub(crate) fn load_latest(store: &CheckpointStore) -> Result<Option<Loaded>, StreamError> {
    let location = store.as_async().location().to_string();
    let latest = store.latest().map_err(StreamError::checkpoint(format!(
        "find the latest checkpoint in {location}"
    )))?;
    let Some(cp) = latest else {
        return no_checkpoint(store, &location);
    };
    let mut skipped: Vec<SkippedCheckpoint> = cp
        .skipped()
        .iter()
        .map(|s| SkippedCheckpoint {
            epoch: s.epoch,
            reason: s.reason.clone(),
        })
        .collect();
    match decode(&cp) {
        Ok(checkpoint) => Ok(Some(loaded(checkpoint, skipped))),
        Err(Failure::Fatal(e)) => Err(e),
        Err(Failure::Damaged(reason)) => {
            skipped.push(SkippedCheckpoint {
                epoch: cp.epoch(),
                reason,
            });
            fall_back(store, &location, cp.epoch(), skipped).map(Some)
        }
    }
}

fn loaded(checkpoint: StreamCheckpoint, skipped: Vec<SkippedCheckpoint>) -> Loaded {
    for s in &skipped {
        tracing::warn!(
            skipped = %s.epoch,
            reason = %s.reason,
            resuming_from = %checkpoint.epoch,
            "passed over a damaged checkpoint"
        );
    }
    Loaded {
        checkpoint,
        skipped,
    }
}

/// No checkpoint came back from `latest()`: a fresh store, or one whose checkpoints are all damaged.
fn no_checkpoint(store: &CheckpointStore, location: &str) -> Result<Option<Loaded>, StreamError> {
    let infos = store.list().map_err(StreamError::checkpoint(format!(
        "list the checkpoints in {location}"
    )))?;
    let damaged: Vec<String> = infos
        .iter()
        .filter(|i| i.state == CheckpointState::Corrupt)
        .map(|i| format!("{}: {}", i.epoch, i.detail.as_deref().unwrap_or("damaged")))
        .collect();
    if damaged.is_empty() {
        return Ok(None);
    }
    Err(no_readable_checkpoint(location, damaged))
}

fn no_readable_checkpoint(location: &str, damaged: Vec<String>) -> StreamError {
    StreamError::NoReadableCheckpoint {
        location: location.to_string(),
        damaged,
    }
}

/// The newest complete checkpoint older than `below` that decodes.
fn fall_back(
    store: &CheckpointStore,
    location: &str,
    below: Epoch,
    mut skipped: Vec<SkippedCheckpoint>,
) -> Result<Loaded, StreamError> {
    let infos = store.list().map_err(StreamError::checkpoint(format!(
        "list the checkpoints in {location}"
    )))?;
    let mut older: Vec<&CheckpointInfo> = infos
        .iter()
        .filter(|i| i.epoch < below)
        .filter(|i| {
            matches!(
                i.state,
                CheckpointState::Complete | CheckpointState::Corrupt
            )
        })
        .collect();
    older.sort_unstable_by_key(|info| std::cmp::Reverse(info.epoch));
    for info in older {
        let epoch = info.epoch;
        let reason = match info.state {
            CheckpointState::Corrupt => info.detail.clone().unwrap_or_else(|| "damaged".into()),
            _ => match try_checkpoint(store, location, epoch)? {
                Ok(checkpoint) => return Ok(loaded(checkpoint, skipped)),
                Err(reason) => reason,
            },
        };
        skipped.push(SkippedCheckpoint { epoch, reason });
    }
    let damaged = skipped
        .iter()
        .map(|s| format!("{}: {}", s.epoch, s.reason))
        .collect();
    Err(no_readable_checkpoint(location, damaged))
}

/// Reads and decodes the checkpoint at `epoch`: `Err(reason)` if it is damaged.
fn try_checkpoint(
    store: &CheckpointStore,
    location: &str,
    epoch: Epoch,
) -> Result<Result<StreamCheckpoint, String>, StreamError> {
    match store.checkpoint(epoch) {
        Ok(Some(cp)) => match decode(&cp) {
            Ok(checkpoint) => Ok(Ok(checkpoint)),
            Err(Failure::Fatal(e)) => Err(e),
            Err(Failure::Damaged(reason)) => Ok(Err(reason)),
        },
        Ok(None) => Ok(Err("gone (deleted by retention?)".into())),
        Err(CheckpointError::Corrupt { reason, .. }) => Ok(Err(format!("manifest: {reason}"))),
        Err(e) => Err(StreamError::checkpoint(format!(
            "read checkpoint {epoch} in {location}"
        ))(e)),
    }
}

/// Decodes one checkpoint: its metadata, then each operator's state.
fn decode(cp: &Checkpoint) -> Result<StreamCheckpoint, Failure> {
    let epoch = cp.epoch();
    let bytes = cp
        .read_part(META_PART)
        .map_err(|e| part_failure(epoch, META_PART, e))?;
    let meta = decode_meta(&bytes).map_err(|e| match e {
        MetaError::Newer(found) => Failure::Fatal(StreamError::CheckpointFormat {
            epoch: epoch.0,
            part: META_PART.into(),
            found,
            supported: super::format::META_FORMAT,
        }),
        MetaError::Damaged(reason) => Failure::Damaged(format!("part {META_PART}: {reason}")),
    })?;
    let mut states = BTreeMap::new();
    for (name, part) in &meta.states {
        states.insert(name.clone(), read_state(cp, part)?);
    }
    let offsets = SourceOffsets::from_wire(meta.offsets)
        .map_err(|reason| Failure::Damaged(format!("part {META_PART}: {reason}")))?;
    Ok(StreamCheckpoint {
        epoch,
        batch_interval: Duration::from_millis(meta.batch_interval_ms),
        last_completed: BatchTime(meta.last_completed_ms),
        pending: meta.pending_ms.into_iter().map(BatchTime).collect(),
        settings: meta.settings,
        graph: meta.graph,
        offsets,
        states,
    })
}

fn read_state(cp: &Checkpoint, part: &StatePartRef) -> Result<StateMap, Failure> {
    let epoch = cp.epoch();
    let reader = cp
        .part_reader(&part.part)
        .map_err(|e| part_failure(epoch, &part.part, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    let state =
        decode_state(&mut reader, part.last_batch_ms.map(BatchTime)).map_err(|e| match e {
            StateDecodeError::NewerFormat(found) => Failure::Fatal(StreamError::CheckpointFormat {
                epoch: epoch.0,
                part: part.part.clone(),
                found: u32::from(found),
                supported: u32::from(STATE_FORMAT),
            }),
            StateDecodeError::Damaged(reason) => {
                Failure::Damaged(format!("part {}: {reason}", part.part))
            }
            StateDecodeError::Io(e) => io_failure(epoch, &part.part, e),
        })?;
    if state.len() as u64 != part.entries {
        return Err(Failure::Damaged(format!(
            "part {}: {} entries, the metadata says {}",
            part.part,
            state.len(),
            part.entries
        )));
    }
    Ok(state)
}

/// A failed part read: damage falls back, a part the metadata names but the
/// checkpoint lacks falls back, a missing metadata part is foreign data, the rest is fatal.
fn part_failure(epoch: Epoch, part: &str, e: CheckpointError) -> Failure {
    match e {
        CheckpointError::Corrupt { reason, .. } => {
            Failure::Damaged(format!("part {part}: {reason}"))
        }
        CheckpointError::NoSuchPart { .. } if part != META_PART => {
            Failure::Damaged(format!("part {part} is named by the metadata but missing"))
        }
        CheckpointError::NoSuchPart { .. } => Failure::Fatal(StreamError::CheckpointDamaged {
            epoch: epoch.0,
            part: META_PART.into(),
            reason: "missing: this is not a stream checkpoint (wrong checkpoint directory?)".into(),
        }),
        other => Failure::Fatal(StreamError::checkpoint(format!(
            "read part {part} of checkpoint {epoch}"
        ))(other)),
    }
}

/// A streamed read failed: `InvalidData` is the store's checksum verdict (damage).
fn io_failure(epoch: Epoch, part: &str, e: io::Error) -> Failure {
    if e.kind() == io::ErrorKind::InvalidData {
        return Failure::Damaged(format!("part {part}: {e}"));
    }
    Failure::Fatal(StreamError::Io {
        what: format!("read part {part} of checkpoint {epoch}"),
        source: e,
    })
}
