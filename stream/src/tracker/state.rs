//! The tracker's in-memory state, changed only by applying events.
//!
//! The live tracker and replay share [`TrackerState::apply`]: the state after
//! replaying a log is the state the live tracker reached by applying the same
//! events, and the truncation rule ([`TrackerState::min_needed_key`]) is stated
//! on this one function.
//!
//! Each applied event carries a *key*: its LSN in the metadata WAL (or, without
//! a WAL, a counter in the same order). A waiting block is filed under the key
//! of its `BlockAdded` event, so each stream's queue is in log order whatever
//! order concurrent adds finished in.

use std::collections::{BTreeMap, BTreeSet};

use crate::block::{BatchTime, ReceivedBlockInfo};
use crate::tracker::events::TrackerEvent;

/// Blocks by stream id, as a batch holds them.
pub type BlocksByStream = BTreeMap<u32, Vec<ReceivedBlockInfo>>;

/// What the tracker knows, as plain values: what tests compare and callers inspect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrackerSnapshot {
    /// Blocks waiting for a batch, per tracked stream (every stream has an entry), oldest first.
    pub unallocated: BTreeMap<u32, Vec<ReceivedBlockInfo>>,
    /// Batches allocated and not cleaned, with their blocks per stream.
    pub batches: BTreeMap<BatchTime, BlocksByStream>,
    /// The latest batch time ever allocated (it survives the cleanup of that batch).
    pub last_allocated: Option<BatchTime>,
}

/// A batch and the key of the event that allocated it.
#[derive(Debug)]
struct Batch {
    key: u64,
    blocks: BlocksByStream,
}

/// The state: waiting blocks, allocated batches, the last allocation.
#[derive(Debug, Default)]
pub(crate) struct TrackerState {
    streams: BTreeSet<u32>,
    /// Per stream: key of the `BlockAdded` event -> the block.
    unallocated: BTreeMap<u32, BTreeMap<u64, ReceivedBlockInfo>>,
    batches: BTreeMap<BatchTime, Batch>,
    /// The latest allocation: its time and its event's key.
    last_allocated: Option<(BatchTime, u64)>,
}

impl TrackerState {
    /// An empty state tracking `streams`.
    pub(crate) fn new(streams: impl IntoIterator<Item = u32>) -> TrackerState {
        let streams: BTreeSet<u32> = streams.into_iter().collect();
        let unallocated = streams.iter().map(|&s| (s, BTreeMap::new())).collect();
        TrackerState {
            streams,
            unallocated,
            ..TrackerState::default()
        }
    }

    /// Whether blocks of `stream_id` are tracked.
    pub(crate) fn tracks(&self, stream_id: u32) -> bool {
        self.streams.contains(&stream_id)
    }

    /// Streams an event names that this state does not track (replay adopts them).
    pub(crate) fn unknown_streams(&self, event: &TrackerEvent) -> Vec<u32> {
        let named: Vec<u32> = match event {
            TrackerEvent::BlockAdded(info) => vec![info.block.stream_id],
            TrackerEvent::BatchAllocated { blocks, .. } => blocks.keys().copied().collect(),
            TrackerEvent::BatchesCleaned { .. } => Vec::new(),
        };
        named.into_iter().filter(|s| !self.tracks(*s)).collect()
    }

    /// Applies `event`, logged under `key`; returns the blocks of the batches it
    /// dropped (a `BatchesCleaned`), oldest batch first, else nothing.
    ///
    /// - `BlockAdded` files the block under `key` in its stream's queue.
    /// - `BatchAllocated` removes each listed block from its queue (one equal
    ///   entry per listing, the oldest first), records the batch and makes it the
    ///   last allocation. Blocks added meanwhile and not listed stay queued.
    /// - `BatchesCleaned` drops every batch before the threshold.
    pub(crate) fn apply(&mut self, event: &TrackerEvent, key: u64) -> Vec<ReceivedBlockInfo> {
        match event {
            TrackerEvent::BlockAdded(info) => {
                let stream = info.block.stream_id;
                self.adopt(stream);
                self.unallocated
                    .entry(stream)
                    .or_default()
                    .insert(key, info.clone());
                Vec::new()
            }
            TrackerEvent::BatchAllocated { time, blocks } => {
                self.allocate(*time, blocks.clone(), key);
                Vec::new()
            }
            TrackerEvent::BatchesCleaned { threshold } => self.clean(*threshold),
        }
    }

    fn adopt(&mut self, stream: u32) {
        if self.streams.insert(stream) {
            self.unallocated.entry(stream).or_default();
        }
    }

    fn allocate(&mut self, time: BatchTime, blocks: BlocksByStream, key: u64) {
        for (&stream, listed) in &blocks {
            self.adopt(stream);
            let queue = self.unallocated.entry(stream).or_default();
            for info in listed {
                let found = queue.iter().find(|(_, q)| *q == info).map(|(k, _)| *k);
                if let Some(k) = found {
                    queue.remove(&k);
                }
            }
        }
        self.batches.insert(time, Batch { key, blocks });
        self.last_allocated = Some((time, key));
    }

    fn clean(&mut self, threshold: BatchTime) -> Vec<ReceivedBlockInfo> {
        let kept = self.batches.split_off(&threshold);
        let dropped = std::mem::replace(&mut self.batches, kept);
        dropped
            .into_values()
            .flat_map(|b| b.blocks.into_values().flatten())
            .collect()
    }

    /// Whether `time` is at or before the last allocated batch time (allocating it is a no-op).
    pub(crate) fn allocated_through(&self, time: BatchTime) -> bool {
        self.last_allocated.is_some_and(|(last, _)| time <= last)
    }

    /// The event allocating every waiting block to `time`: one entry per tracked
    /// stream, each stream's blocks in log order.
    pub(crate) fn allocation(&self, time: BatchTime) -> TrackerEvent {
        let blocks = self.streams.iter().map(|&s| (s, self.queued(s))).collect();
        TrackerEvent::BatchAllocated { time, blocks }
    }

    /// Whether any batch is older than `threshold`.
    pub(crate) fn has_batches_before(&self, threshold: BatchTime) -> bool {
        self.batches
            .first_key_value()
            .is_some_and(|(t, _)| *t < threshold)
    }

    /// The smallest key whose event is still needed to rebuild this state, or
    /// `None` when no event is: the `BlockAdded` of every waiting block, the
    /// `BatchAllocated` of every batch not cleaned, and the `BatchAllocated` of
    /// the last allocation (it alone remembers the last allocated time once that
    /// batch is cleaned).
    ///
    /// Replaying every event from any key at or below this one rebuilds this
    /// state exactly: an event after a replayed one is replayed too, so a
    /// replayed allocation's later cleanup is replayed, a replayed block's later
    /// allocation is, and what an earlier, skipped event would have added is
    /// either still needed (so not skipped) or was removed by a later event.
    pub(crate) fn min_needed_key(&self) -> Option<u64> {
        let waiting = self.unallocated.values().filter_map(|q| q.keys().next());
        let batches = self.batches.values().map(|b| &b.key);
        let last = self.last_allocated.as_ref().map(|(_, k)| k);
        waiting.chain(batches).chain(last).min().copied()
    }

    /// The waiting blocks of `stream`, oldest first.
    pub(crate) fn queued(&self, stream: u32) -> Vec<ReceivedBlockInfo> {
        self.unallocated
            .get(&stream)
            .map(|q| q.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether any block waits for a batch.
    pub(crate) fn has_unallocated(&self) -> bool {
        self.unallocated.values().any(|q| !q.is_empty())
    }

    /// The blocks of batch `time` (empty if it is not allocated or was cleaned).
    pub(crate) fn batch(&self, time: BatchTime) -> BlocksByStream {
        self.batches
            .get(&time)
            .map(|b| b.blocks.clone())
            .unwrap_or_default()
    }

    /// The latest allocated batch time.
    pub(crate) fn last_allocated(&self) -> Option<BatchTime> {
        self.last_allocated.map(|(t, _)| t)
    }

    /// The tracked streams.
    pub(crate) fn streams(&self) -> Vec<u32> {
        self.streams.iter().copied().collect()
    }

    /// The state as plain values.
    pub(crate) fn snapshot(&self) -> TrackerSnapshot {
        TrackerSnapshot {
            unallocated: self.streams.iter().map(|&s| (s, self.queued(s))).collect(),
            batches: self
                .batches
                .iter()
                .map(|(t, b)| (*t, b.blocks.clone()))
                .collect(),
            last_allocated: self.last_allocated(),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::block::StreamBlockId;

    const STREAMS: [u32; 2] = [0, 1];

    #[derive(Clone, Debug)]
    enum Op {
        Add { stream: u32, unique: u64 },
        Allocate(u64),
        Clean(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            5 => (0..STREAMS.len() as u32, 0u64..8).prop_map(|(stream, unique)| Op::Add { stream, unique }),
            2 => (0u64..40).prop_map(Op::Allocate),
            1 => (0u64..45).prop_map(Op::Clean),
        ]
    }

    fn block(stream: u32, unique: u64) -> ReceivedBlockInfo {
        ReceivedBlockInfo {
            block: StreamBlockId {
                stream_id: stream,
                unique_id: unique,
            },
            num_records: Some(unique),
            wal: None,
        }
    }

    /// Runs `ops` the way the live tracker does; returns the log (key = index + 1).
    fn live_log(ops: &[Op]) -> (TrackerState, Vec<TrackerEvent>) {
        let mut state = TrackerState::new(STREAMS);
        let mut log = Vec::new();
        for op in ops {
            let event = match *op {
                Op::Add { stream, unique } => TrackerEvent::BlockAdded(block(stream, unique)),
                Op::Allocate(t) if state.allocated_through(BatchTime(t)) => continue,
                Op::Allocate(t) => state.allocation(BatchTime(t)),
                Op::Clean(t) if !state.has_batches_before(BatchTime(t)) => continue,
                Op::Clean(t) => TrackerEvent::BatchesCleaned {
                    threshold: BatchTime(t),
                },
            };
            log.push(event.clone());
            state.apply(&event, log.len() as u64);
        }
        (state, log)
    }

    fn replay(log: &[TrackerEvent], from_key: u64) -> TrackerState {
        let mut state = TrackerState::new(STREAMS);
        for (i, event) in log.iter().enumerate().skip(from_key as usize - 1) {
            state.apply(event, i as u64 + 1);
        }
        state
    }

    proptest! {
        /// The truncation rule: replaying the log from any key at or below the
        /// minimum needed one rebuilds the live state (snapshot and the minimum
        /// itself); starting one event later does not: every event the rule
        /// keeps is needed.
        #[test]
        fn replaying_from_the_minimum_needed_key_or_earlier_rebuilds_the_state(
            ops in proptest::collection::vec(op(), 0..60)
        ) {
            let (live, log) = live_log(&ops);
            let want = live.snapshot();
            let Some(min) = live.min_needed_key() else {
                prop_assert_eq!(&want, &TrackerState::new(STREAMS).snapshot());
                return Ok(());
            };
            for from in 1..=min {
                let replayed = replay(&log, from);
                prop_assert_eq!(replayed.snapshot(), want.clone(), "replay from {}", from);
                prop_assert_eq!(replayed.min_needed_key(), Some(min));
            }
            prop_assert_ne!(replay(&log, min + 1).snapshot(), want);
        }
    }

    #[test]
    fn the_last_allocation_is_kept_after_its_batch_is_cleaned() {
        let ops = [
            Op::Add {
                stream: 0,
                unique: 1,
            },
            Op::Allocate(10),
            Op::Add {
                stream: 1,
                unique: 2,
            },
            Op::Allocate(20),
            Op::Clean(30),
        ];
        let (live, log) = live_log(&ops);
        assert!(live.snapshot().batches.is_empty());
        assert_eq!(live.last_allocated(), Some(BatchTime(20)));
        assert_eq!(live.min_needed_key(), Some(4));
        assert_eq!(replay(&log, 4).last_allocated(), Some(BatchTime(20)));
    }

    #[test]
    fn an_allocation_leaves_blocks_it_does_not_list_queued() {
        let mut state = TrackerState::new(STREAMS);
        let allocation = state.allocation(BatchTime(5));
        state.apply(&TrackerEvent::BlockAdded(block(0, 1)), 1);
        state.apply(&allocation, 2);
        assert_eq!(state.queued(0), vec![block(0, 1)]);
        assert_eq!(state.batch(BatchTime(5)).get(&0), Some(&Vec::new()));
    }
}
