//! Errors of the stream layer: each names where it happened and what failed.

use std::time::Duration;

use crate::block::StreamBlockId;

/// An error of the stream layer.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The metadata or receiver WAL failed (a failed sync is fatal for that log).
    #[error("{what}: {source}")]
    Wal {
        /// What was being done.
        what: &'static str,
        /// The WAL's error.
        #[source]
        source: tidemark_wal::WalError,
    },
    /// The block store failed.
    #[error("{what}: {source}")]
    BlockStore {
        /// What was being done.
        what: String,
        /// The block store's error.
        #[source]
        source: tidemark_blockstore::BlockError,
    },
    /// A WAL record the stream layer wrote does not decode: damage, or a newer format.
    #[error("bad {what} record at LSN {lsn}: {reason}")]
    BadRecord {
        /// Which log's records.
        what: &'static str,
        /// Where.
        lsn: u64,
        /// Why it does not decode.
        reason: String,
    },
    /// Storing a block took longer than allowed.
    #[error("storing block {block} timed out after {after:?}")]
    StoreTimeout {
        /// The block.
        block: StreamBlockId,
        /// The limit.
        after: Duration,
    },
    /// A block is in neither the block store nor a receiver WAL: its level did
    /// not survive what happened, and the WAL was off.
    #[error("block {0} is lost: no copy in the block store, and no receiver WAL holds it")]
    BlockLost(StreamBlockId),
    /// The receiver, block generator or tracker was stopped.
    #[error("{0} is stopped")]
    Stopped(&'static str),
    /// A setting is invalid.
    #[error("invalid setting {name}: {reason}")]
    InvalidSetting {
        /// The setting's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Input from a source that cannot be used (malformed, oversize).
    #[error("bad input from {source_name}: {reason}")]
    BadInput {
        /// The source.
        source_name: String,
        /// What is wrong.
        reason: String,
    },
    /// An I/O error outside the storage crates (sockets, files).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A receiver launch handed out every block id its epoch allows.
    #[error(
        "block ids of stream {stream_id} in epoch {epoch} are used up; relaunch with a new epoch"
    )]
    BlockIdsExhausted {
        /// The stream.
        stream_id: u32,
        /// The launch epoch.
        epoch: u32,
    },
}

impl StreamError {
    pub(crate) fn wal(what: &'static str) -> impl FnOnce(tidemark_wal::WalError) -> StreamError {
        move |source| StreamError::Wal { what, source }
    }

    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StreamError {
        let what = what.into();
        move |source| StreamError::Io { what, source }
    }
}
