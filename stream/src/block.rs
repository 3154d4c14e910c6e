//! What is known of a received block, from the receiver to the driver.
//!
//! A receiver cuts its input into blocks; each block is stored (block store,
//! and the receiver WAL when it is on) before the driver hears of it. The
//! driver then allocates blocks to batches by time. These are the names both
//! sides use.

use std::fmt;

use tidemark_blockstore::BlockId;

/// A batch's time: milliseconds since the Unix epoch, a multiple of the batch
/// interval (Spark's `Time`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BatchTime(pub u64);

impl fmt::Display for BatchTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ms", self.0)
    }
}

/// A received block: `input-<stream>-<unique>` as in Spark (`StreamBlockId`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamBlockId {
    /// The input stream that received it.
    pub stream_id: u32,
    /// Unique within the stream across receiver restarts.
    pub unique_id: u64,
}

impl StreamBlockId {
    /// The id the block store keeps it under.
    pub fn block_id(&self) -> BlockId {
        BlockId::stream(self.stream_id, self.unique_id)
    }
}

impl fmt::Display for StreamBlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "input-{}-{}", self.stream_id, self.unique_id)
    }
}

/// Where a block's bytes are kept in a receiver WAL, when the WAL is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WalHandle {
    /// The receiver WAL of this stream (one per stream).
    pub stream_id: u32,
    /// The record holding the block.
    pub lsn: u64,
}

/// A block that is stored, as the driver learns of it (`ReceivedBlockInfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedBlockInfo {
    /// The block.
    pub block: StreamBlockId,
    /// Records in it, when the receiver counted them.
    pub num_records: Option<u64>,
    /// Its copy in the receiver WAL, when the WAL is on.
    pub wal: Option<WalHandle>,
}
