//! Errors: each says what went wrong and where.

use std::io;
use std::path::PathBuf;

use crate::Lsn;

/// Result alias of this crate.
pub type Result<T, E = WalError> = std::result::Result<T, E>;

/// Everything that can go wrong with a log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An operating-system call failed.
    #[error("I/O error while trying to {op} {path}: {source}")]
    Io {
        /// What was being done ("sync", "create segment", ...).
        op: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The error from the operating system.
        #[source]
        source: io::Error,
    },
    /// A record that had been made durable does not verify, or the log is
    /// inconsistent (a missing segment, a foreign segment).
    #[error("corruption in {} at byte {offset} (LSN {lsn}): {reason}", segment.display())]
    Corruption {
        /// The segment file.
        segment: PathBuf,
        /// Byte offset of the bad record or header in that file.
        offset: u64,
        /// The LSN the log expected at that place.
        lsn: Lsn,
        /// What did not verify.
        reason: String,
    },
    /// A torn (partly written, never durable) tail, refused by
    /// [`crate::RecoveryMode::AbsoluteConsistency`].
    #[error("torn write at the tail of {} at byte {offset} (LSN {lsn}); AbsoluteConsistency refuses to drop it", segment.display())]
    TornTail {
        /// The segment file.
        segment: PathBuf,
        /// Byte offset where the torn record starts.
        offset: u64,
        /// The LSN the torn record would have had.
        lsn: Lsn,
    },
    /// A file in the log directory is not a segment of this format.
    #[error("{} is not a tidemark WAL segment: {reason}", path.display())]
    NotAWal {
        /// The file.
        path: PathBuf,
        /// Why it was rejected.
        reason: String,
    },
    /// A segment was written by a newer format than this build reads.
    #[error("{}: segment format version {found} is newer than this build reads (up to {supported})", path.display())]
    UnsupportedVersion {
        /// The segment file.
        path: PathBuf,
        /// The version found in its header.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// Another process holds the directory's writer lock.
    #[error("log directory {} is locked by another writer", dir.display())]
    Locked {
        /// The log directory.
        dir: PathBuf,
    },
    /// A record or batch cannot fit in one segment.
    #[error("{len} bytes of records do not fit in one segment (at most {max} bytes)")]
    RecordTooLarge {
        /// Bytes the record or batch needs, framed.
        len: u64,
        /// Bytes a segment offers.
        max: u64,
    },
    /// `append_batch` was given no records.
    #[error("append_batch needs at least one record")]
    EmptyBatch,
    /// No record with this LSN is in the log (truncated, skipped, or not yet written).
    #[error("LSN {lsn} is not in the log")]
    NotFound {
        /// The LSN asked for.
        lsn: Lsn,
    },
    /// The log was opened read-only.
    #[error("the log was opened read-only")]
    ReadOnly,
    /// A sync failed earlier; this instance accepts nothing more. Reopen the log
    /// to recover what is durable.
    #[error("this log instance failed to sync earlier ({cause}); reopen the log to recover")]
    Poisoned {
        /// The error of the failed sync.
        cause: String,
    },
    /// The options cannot work.
    #[error("invalid options: {0}")]
    InvalidOptions(String),
}

impl WalError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> WalError {
        WalError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
