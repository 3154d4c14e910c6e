//! Typed errors, each naming the block, path or peer involved.

use std::io;
use std::path::PathBuf;

use crate::block_id::BlockId;
use crate::level::StorageLevel;
use crate::protocol::TransferError;

/// Everything a block-store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// A storage level name that is not one of Spark's predefined levels.
    #[error("unknown storage level {name:?}; valid levels are: {valid}")]
    UnknownStorageLevel {
        /// The name given.
        name: String,
        /// The valid names, comma-separated.
        valid: String,
    },
    /// A level that cannot store anything (e.g. `NONE`).
    #[error("storage level {level} cannot store a block: {reason}")]
    InvalidStorageLevel {
        /// The level given.
        level: StorageLevel,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A block name that cannot be parsed or is unsafe as a file name.
    #[error("invalid block id {name:?}: {reason}")]
    InvalidBlockId {
        /// The (possibly shortened) name given.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A memory-only block larger than the whole memory budget.
    #[error(
        "block {id} needs {size} bytes, more than the whole memory budget of {capacity} bytes, and its level {level} does not allow disk"
    )]
    TooLargeForMemory {
        /// The block.
        id: BlockId,
        /// Bytes it needs in memory.
        size: u64,
        /// The memory budget.
        capacity: u64,
        /// Its level.
        level: StorageLevel,
    },
    /// An I/O error in the disk store.
    #[error("disk store I/O on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A block file whose header, length or checksum is wrong.
    #[error("block file {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// zstd failed to compress or decompress a block.
    #[error("compression of block {id}: {source}")]
    Compression {
        /// The block.
        id: BlockId,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The caller's codec could not decode a block's bytes.
    #[error("codec failed to decode block {id}: {message}")]
    Codec {
        /// The block.
        id: BlockId,
        /// The codec's message.
        message: String,
    },
    /// `get_values` asked for another value type than the block holds.
    #[error("block {id} holds values of a different type than requested")]
    TypeMismatch {
        /// The block.
        id: BlockId,
    },
    /// Fewer copies than the level asks for could be stored (only when the config says to fail).
    #[error("block {id} at {level}: stored {achieved} of {required} copies")]
    ReplicationShortfall {
        /// The block.
        id: BlockId,
        /// Its level.
        level: StorageLevel,
        /// Copies stored, this node's included.
        achieved: u32,
        /// Copies required.
        required: u32,
    },
    /// A request to a peer or the master failed.
    #[error("request to {peer} failed: {source}")]
    Transfer {
        /// The peer's address.
        peer: String,
        /// What went wrong.
        #[source]
        source: TransferError,
    },
    /// An internal task failed (a bug; the message says which).
    #[error("internal error: {0}")]
    Internal(String),
    /// The block manager could not start.
    #[error("block manager failed to start: {0}")]
    Startup(String),
}
