//! Unique block ids for one run of a receiver supervisor.
//!
//! A block's `unique_id` is `epoch << 40 | sequence`:
//! - `epoch` (24 bits) is given by whoever launches the supervisor and must
//!   differ for every launch of the same stream, on any executor (the driver
//!   hands out launch numbers and must not reuse one, e.g. after its own
//!   restart it continues from what its log recorded);
//! - `sequence` (40 bits) counts the blocks of that launch from 0 and is never
//!   reset, so restarts of the receiver inside one supervisor keep it going.
//!
//! So ids are unique within a stream across receiver restarts and executors
//! as long as epochs are. Within a launch, ids grow in the order they are
//! handed out (not necessarily the order blocks finish storing).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::block::StreamBlockId;
use crate::error::StreamError;

/// Bits of `unique_id` below the epoch.
pub const SEQUENCE_BITS: u32 = 40;
/// Bits of `unique_id` holding the epoch.
pub const EPOCH_BITS: u32 = 64 - SEQUENCE_BITS;
/// The largest epoch.
pub const MAX_EPOCH: u32 = (1 << EPOCH_BITS) - 1;

/// Hands out the block ids of one launch of a stream's receiver.
#[derive(Debug)]
pub struct BlockIds {
    stream_id: u32,
    epoch: u32,
    next: AtomicU64,
}

impl BlockIds {
    /// Ids for `stream_id` in launch `epoch` (at most [`MAX_EPOCH`]).
    pub fn new(stream_id: u32, epoch: u32) -> Result<BlockIds, StreamError> {
        if epoch > MAX_EPOCH {
            return Err(StreamError::InvalidSetting {
                name: "epoch",
                reason: format!("{epoch} does not fit in {EPOCH_BITS} bits"),
            });
        }
        Ok(BlockIds {
            stream_id,
            epoch,
            next: AtomicU64::new(0),
        })
    }

    /// The next id; an error once the launch's 2^40 ids are used up.
    pub fn next_id(&self) -> Result<StreamBlockId, StreamError> {
        let sequence = self.next.fetch_add(1, Ordering::Relaxed);
        if sequence >> SEQUENCE_BITS != 0 {
            self.next.store(1 << SEQUENCE_BITS, Ordering::Relaxed);
            return Err(StreamError::BlockIdsExhausted {
                stream_id: self.stream_id,
                epoch: self.epoch,
            });
        }
        Ok(StreamBlockId {
            stream_id: self.stream_id,
            unique_id: u64::from(self.epoch) << SEQUENCE_BITS | sequence,
        })
    }

    /// The launch epoch of a block id made by this scheme.
    pub fn epoch_of(id: StreamBlockId) -> u32 {
        // The shift leaves EPOCH_BITS (24) bits, which fit in a u32.
        (id.unique_id >> SEQUENCE_BITS) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_the_epoch_above_a_sequence_from_zero() {
        let ids = BlockIds::new(3, 5).expect("ids");
        let a = ids.next_id().expect("a");
        let b = ids.next_id().expect("b");
        assert_eq!(a.stream_id, 3);
        assert_eq!(a.unique_id, 5 << 40);
        assert_eq!(b.unique_id, (5 << 40) + 1);
        assert_eq!(BlockIds::epoch_of(b), 5);
        let top = BlockIds::new(3, MAX_EPOCH).expect("top epoch");
        assert_eq!(BlockIds::epoch_of(top.next_id().expect("id")), MAX_EPOCH);
    }

    #[test]
    fn an_epoch_too_large_and_a_used_up_sequence_are_errors() {
        assert!(matches!(
            BlockIds::new(0, MAX_EPOCH + 1),
            Err(StreamError::InvalidSetting { name: "epoch", .. })
        ));
        let ids = BlockIds::new(0, 1).expect("ids");
        ids.next.store((1 << SEQUENCE_BITS) - 1, Ordering::Relaxed);
        assert_eq!(ids.next_id().expect("last").unique_id, (2 << 40) - 1);
        for _ in 0..3 {
            assert!(matches!(
                ids.next_id(),
                Err(StreamError::BlockIdsExhausted {
                    stream_id: 0,
                    epoch: 1
                })
            ));
        }
    }
}
