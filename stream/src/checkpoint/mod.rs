//! Stream checkpoints: what a restarted driver resumes from (Spark's
//! `Checkpoint`, `CheckpointWriter` and `StreamingContext.getOrCreate`), on
//! tidemark's checkpoint store (local disk, S3, HDFS).
//!
//! A stream checkpoint holds:
//! - the settings the driver ran with ([`Settings`]; compared, never restored),
//! - the stream graph's signature ([`GraphSignature`]: inputs by name and kind,
//!   outputs and stateful operators by name) and the batch interval,
//! - the last batch whose output completed, and the batches allocated but not
//!   completed (pending),
//! - per direct stream, the next offset of each topic partition as of the last
//!   completed batch ([`SourceOffsets`]),
//! - the keyed state of each stateful operator ([`StateMap`]), each as its own
//!   streamed part.
//!
//! A driver starts with [`get_or_create`] (or [`recover`] on an open store):
//! [`Recovery::Fresh`] when the store holds no checkpoint, else
//! [`Recovery::Resume`] with the batches to re-run, the offsets and the state.
//! It then hands the store to a [`StreamCheckpointer`], tells it of each batch
//! it allocates, and marks each batch completed **after** the batch's output
//! succeeded; a checkpoint is written then (see [`StreamCheckpointer`] for the
//! ordering and what a failed write does).
//!
//! Guarantees: a checkpoint never records a batch as completed before its
//! output succeeded; a resumed driver re-runs every batch after the last one
//! completed (at-least-once output, exactly-once offsets for direct streams);
//! a checkpoint that cannot be written stops the stream, never silently; a
//! damaged newest checkpoint falls back to the previous one, with a warning;
//! a checkpoint of a newer format is an error, never misread.

mod format;
mod graph;
mod offsets;
mod read;
mod recover;
mod retry;
mod schedule;
mod settings;
mod state;
mod state_codec;
mod writer;

pub use graph::{GraphDifference, GraphSignature, InputKind};
pub use offsets::{SourceOffsets, TopicPartition};
pub use read::SkippedCheckpoint;
pub use recover::{
    BATCH_INTERVAL_SETTING, Drain, RecoverOptions, Recovery, Resumed, StreamSetup, get_or_create,
    open_store, recover,
};
pub use retry::RetryPolicy;
pub use schedule::DroppedReruns;
pub use settings::{SettingChange, Settings};
pub use state::{StateMap, StateUpdate};
pub use writer::{CheckpointerConfig, CommitInfo, RetryHook, StreamCheckpointer};

/// Epochs of the checkpoint store, as [`Resumed`] and [`CommitInfo`] name checkpoints.
pub use tidemark_checkpoint::Epoch;
/// The blocking checkpoint store this module writes through.
pub use tidemark_checkpoint::blocking::CheckpointStore;
