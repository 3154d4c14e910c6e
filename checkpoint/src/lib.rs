//! Atomic, fenced, verifiable checkpoints on local disk, in memory, on S3 and on HDFS.
//!
//! A streaming driver writes its metadata and state as named *parts* of a checkpoint and
//! commits; a restarted driver resumes from [`CheckpointStore::latest`].
//!
//! * **Atomic without rename.** Parts are stored under names unique to their writer; the commit
//!   creates the checkpoint's manifest with put-if-absent. A checkpoint without its manifest
//!   does not exist for readers, so a writer that dies mid-way leaves the previous checkpoint as
//!   the latest. Small parts travel inside the manifest (up to
//!   [`CheckpointOptions::inline_limit`] per checkpoint), so a small checkpoint is one write.
//! * **Fenced.** Claims of writer generations and manifests share one linear sequence of
//!   create-if-absent records (see the `sequence` module docs): at most one writer owns an epoch,
//!   and a writer of an older generation cannot commit once a newer one has started.
//! * **Verifiable.** The manifest records each part's size and CRC32C and has its own checksum;
//!   reads verify, [`Checkpoint::verify`] checks everything, and `latest()` falls back past
//!   damaged checkpoints.
//! * **Versioned.** Manifests are self-describing; every older format stays readable and an
//!   unknown newer one is a clear error.
//! * **Incremental and bounded.** A checkpoint can reference parts of an earlier one;
//!   retention counts references; orphaned parts are collected after a grace period. Large parts
//!   stream through multipart uploads with bounded memory.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tidemark_checkpoint::CheckpointError> {
//! use tidemark_checkpoint::CheckpointStore;
//! use tokio::io::AsyncWriteExt;
//!
//! let store = CheckpointStore::open("file:///var/lib/app/ckpt").await?;
//! let mut w = store.begin().await?;
//! w.put_part("metadata", &b"offsets"[..]).await?;
//! let mut state = w.part_writer("state").await?;
//! state.write_all(b"lots of state").await.expect("write");
//! state.shutdown().await.expect("upload");
//! let epoch = w.commit().await?;
//!
//! let cp = store.latest().await?.expect("just committed");
//! assert_eq!(cp.epoch(), epoch);
//! let meta = cp.read_part("metadata").await?;
//! # let _ = meta;
//! store.retain_last(10).await?;
//! # Ok(()) }
//! ```

mod backend;
pub mod blocking;
mod checkpoint;
mod checksum;
mod epoch;
mod error;
mod fetch;
mod layout;
mod local_fs;
mod manifest;
mod part_check;
mod part_writer;
mod reader;
mod record_draft;
pub mod redact;
mod sequence;
mod store;
mod timeout;
mod writer;

pub use backend::CheckpointOptions;
pub use checkpoint::{Checkpoint, CheckpointInfo, CheckpointState, SkippedCheckpoint};
pub use epoch::Epoch;
pub use error::{CheckpointError, Result};
pub use manifest::{CURRENT_FORMAT, Compression, PartInfo, PartStorage};
pub use part_writer::PartWriter;
pub use reader::PartReader;
pub use store::{
    CheckpointStore, CleanupPlan, GcPlan, GcReport, OrphanPart, RetentionPlan, RetentionReport,
};
pub use timeout::{TimedOut, TimeoutStore};
pub use writer::{CheckpointWriter, PartOptions};
