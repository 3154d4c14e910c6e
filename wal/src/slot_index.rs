//! The per-segment index from LSN to byte offset, readable without locks.
//!
//! Slot `i` holds the offset of the record with LSN `base + i`, or 0 while that
//! record is not (yet) readable. A writer publishes a slot only after its frame
//! is completely copied (release); a reader that sees a non-zero slot (acquire)
//! sees the whole frame. Chunks are allocated on first use, so a segment of
//! small records costs memory in proportion to what it holds.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

const CHUNK_SLOTS: usize = 4096;

/// A fixed-capacity, append-mostly map from slot number to frame offset.
pub(crate) struct SlotIndex {
    chunks: Box<[OnceLock<Box<[AtomicU32]>>]>,
}

impl SlotIndex {
    /// An index able to hold `capacity` slots.
    pub(crate) fn with_capacity(capacity: usize) -> SlotIndex {
        let n = capacity.div_ceil(CHUNK_SLOTS).max(1);
        SlotIndex {
            chunks: (0..n).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Makes slot `slot` point at `offset` (non-zero). Slots beyond capacity are ignored.
    pub(crate) fn publish(&self, slot: u64, offset: u32) {
        let Some(chunk) = self.chunks.get(slot as usize / CHUNK_SLOTS) else {
            return;
        };
        let chunk = chunk.get_or_init(|| (0..CHUNK_SLOTS).map(|_| AtomicU32::new(0)).collect());
        chunk[slot as usize % CHUNK_SLOTS].store(offset, Ordering::Release);
    }

    /// The offset published for `slot`, if any.
    pub(crate) fn get(&self, slot: u64) -> Option<u32> {
        let chunk = self.chunks.get(slot as usize / CHUNK_SLOTS)?.get()?;
        match chunk[slot as usize % CHUNK_SLOTS].load(Ordering::Acquire) {
            0 => None,
            off => Some(off),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_and_reads_across_chunks() {
        let idx = SlotIndex::with_capacity(10_000);
        assert_eq!(idx.get(0), None);
        idx.publish(0, 64);
        idx.publish(9_999, 128);
        idx.publish(20_000, 1); // beyond capacity: ignored, not a panic
        assert_eq!(idx.get(0), Some(64));
        assert_eq!(idx.get(9_999), Some(128));
        assert_eq!(idx.get(5_000), None);
        assert_eq!(idx.get(20_000), None);
    }
}
