//! Where a supervisor tells the driver what its receiver did (Spark's
//! `AddBlock`, `RegisterReceiver`, `ReportError`, `DeregisterReceiver`
//! messages to the receiver tracker).

use std::time::Duration;

use crate::block::ReceivedBlockInfo;
use crate::error::StreamError;

/// Something that happened to a receiver, besides a stored block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReceiverEvent {
    /// `on_start` returned `Ok`. Generations count starts from 1.
    Started {
        /// The receiver's name.
        name: String,
        /// Which start this is.
        generation: u64,
    },
    /// The receiver is being restarted: `on_stop`, then `delay`, then `on_start`.
    Restarting {
        /// Why.
        reason: String,
        /// The wait before it starts again.
        delay: Duration,
    },
    /// An error the receiver reported, or that the supervisor met (a failed
    /// store, report or start).
    Error {
        /// What happened.
        message: String,
    },
    /// The supervisor stopped: every block was pushed and `on_stop` returned.
    Stopped,
}

/// Reports a receiver's blocks and events. Called from the supervisor's
/// threads and from receiver threads calling `store_block`, so concurrently.
pub trait BlockReporter: Send + Sync {
    /// A block is stored (the handler returned it). Called before the receiver
    /// hears that its block is stored, so a reliable receiver acknowledges its
    /// source only after the driver was told. An error makes the supervisor
    /// report it and restart the receiver; the block stays stored.
    fn block_stored(&self, info: &ReceivedBlockInfo) -> Result<(), StreamError>;

    /// An event of the receiver of `stream_id`. Best effort: must not block
    /// for long, and cannot fail the receiver.
    fn receiver_event(&self, stream_id: u32, event: &ReceiverEvent);
}
