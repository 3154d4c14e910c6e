//! Typed errors of the checkpoint store.

use std::time::Duration;

use crate::Epoch;

/// Everything that can go wrong while writing, reading or maintaining checkpoints.
///
/// Each variant names where (a URL, an object path, an epoch) and what failed, so an operator can
/// act on the message alone.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The checkpoint URL could not be parsed or names a scheme this build does not support.
    #[error("invalid checkpoint location {url:?}: {reason}")]
    InvalidLocation {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A part name or argument is not acceptable.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A newer writer generation (or another writer of this epoch) owns the checkpoint sequence:
    /// this writer must stop. Its checkpoint never becomes visible.
    #[error("fenced: writer generation {generation} cannot commit epoch {epoch}: {reason}")]
    Fenced {
        /// The epoch this writer tried to begin or commit.
        epoch: Epoch,
        /// This writer's generation.
        generation: u64,
        /// Who holds the sequence now.
        reason: String,
    },

    /// A remote call did not finish within the configured timeout.
    #[error("{operation} on {path} timed out after {timeout:?}")]
    Timeout {
        /// The object store call.
        operation: &'static str,
        /// The object it addressed.
        path: String,
        /// The configured limit.
        timeout: Duration,
    },

    /// The object store reported an error.
    #[error("object store {operation} on {path} failed: {source}")]
    Store {
        /// The object store call.
        operation: &'static str,
        /// The object it addressed.
        path: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },

    /// A manifest or part failed its size or checksum check, or could not be decoded.
    #[error("corrupt {what} at {path}: {reason}")]
    Corrupt {
        /// "manifest" or "part NAME".
        what: String,
        /// The object path.
        path: String,
        /// What did not match.
        reason: String,
    },

    /// A manifest was written by a newer tidemark with a format this build cannot read.
    #[error(
        "manifest {path} has format version {found}, this build reads versions up to {supported}: upgrade tidemark"
    )]
    UnsupportedFormat {
        /// The manifest path.
        path: String,
        /// Its format version.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },

    /// The checkpoint has no part with this name.
    #[error("checkpoint epoch {epoch} has no part named {name:?}")]
    NoSuchPart {
        /// The checkpoint.
        epoch: Epoch,
        /// The part asked for.
        name: String,
    },

    /// A part object a checkpoint needs was gone when `commit()` checked for it, so no
    /// manifest was written: a checkpoint naming it could never be restored.
    #[error("part {name:?} at {path} is gone: {reason}")]
    PartMissing {
        /// The part name.
        name: String,
        /// The object path.
        path: String,
        /// What most likely deleted it.
        reason: String,
    },

    /// A part name was used twice in one checkpoint.
    #[error("part {name:?} was already written to this checkpoint")]
    DuplicatePart {
        /// The part name.
        name: String,
    },

    /// `commit()` was called while a streamed part had not been shut down (or its upload failed).
    #[error("part {name:?} was not finished: {reason}")]
    PartNotFinished {
        /// The part name.
        name: String,
        /// Why it is not usable.
        reason: String,
    },

    /// An operation kept losing races or getting ambiguous answers and gave up.
    #[error("gave up {what}: the checkpoint sequence is contended or the store keeps failing")]
    Contended {
        /// What was attempted.
        what: String,
    },

    /// Local I/O (compression, the local runtime) failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Result alias for this crate.
pub type Result<T, E = CheckpointError> = std::result::Result<T, E>;

impl CheckpointError {
    /// Wraps an object store error with the operation and path it came from. Timeouts raised by
    /// the timeout layer keep their own variant.
    pub(crate) fn store(
        operation: &'static str,
        path: impl ToString,
        source: object_store::Error,
    ) -> Self {
        if let object_store::Error::Generic { source: inner, .. } = &source
            && let Some(t) = inner.downcast_ref::<crate::timeout::TimedOut>()
        {
            return CheckpointError::Timeout {
                operation: t.operation,
                path: t.path.clone(),
                timeout: t.timeout,
            };
        }
        CheckpointError::Store {
            operation,
            path: path.to_string(),
            source,
        }
    }

    pub(crate) fn corrupt(
        what: impl Into<String>,
        path: impl ToString,
        reason: impl Into<String>,
    ) -> Self {
        CheckpointError::Corrupt {
            what: what.into(),
            path: path.to_string(),
            reason: reason.into(),
        }
    }

    /// True when the error says the object does not exist.
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(
            self,
            CheckpointError::Store {
                source: object_store::Error::NotFound { .. },
                ..
            }
        )
    }
}
