//! tidemark-wal: an mmap-segmented, CRC32C-framed, group-committed write-ahead log.
//!
//! ```
//! use tidemark_wal::{Durability, Lsn, Wal, WalOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let opts = WalOptions { segment_size: 1 << 20, durability: Durability::PerWrite, ..WalOptions::default() };
//! let wal = Wal::open(dir.path(), opts.clone())?;
//! let first = wal.append(b"block input-0-42 stored")?;
//! let batch = wal.append_batch([b"batch 7 allocated".as_slice(), b"batch 6 cleaned"])?;
//! assert_eq!((first, *batch.end()), (Lsn(1), Lsn(3)));
//! drop(wal); // like a crash: nothing is flushed on drop
//!
//! let wal = Wal::open(dir.path(), opts)?;
//! let replayed: Vec<_> = wal.iter_from(Lsn(1)).collect::<Result<_, _>>()?;
//! assert_eq!(replayed.len(), 3);
//! assert_eq!(&replayed[2].data[..], b"batch 6 cleaned");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Start reading at [`Wal`] (`wal.rs`), then `format.rs` (the on-disk format),
//! `write_barrier.rs` (group commit) and `recovery.rs` (what `open` does).

mod error;
mod format;
mod fs_util;
mod group_pacer;
mod inspect;
mod lsn;
mod options;
mod parallel_verify;
mod reader;
mod recovery;
mod segment;
mod segment_pool;
mod slot_index;
mod ticker;
mod wal;
mod write_barrier;
mod writeback;

pub use error::{Result, WalError};
pub use format::FORMAT_VERSION;
pub use inspect::{
    FrameInfo, FrameKind, FrameRun, LogDirListing, RunEnd, SegmentFile, SegmentFileKind,
    SegmentHeaderFacts, SegmentImage, content_len, decode_payload, list_log_dir,
};
pub use lsn::Lsn;
pub use options::{
    Compression, Durability, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE, RecoveryMode, SegmentInit,
    SegmentOptions, WalOptions,
};
pub use reader::{Record, WalIter};
pub use recovery::{Damage, DamageKind, RecoveryReport};
pub use wal::Wal;
