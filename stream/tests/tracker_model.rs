//! Property test: random add / burst / allocate / cleanup / truncate / reopen
//! sequences against a plain in-memory model of Spark's tracker. The tracker
//! runs on a real metadata WAL with 8 KiB segments, so bursts rotate segments
//! and cleanups retire them; every reopen must give back the model's state.

mod tracker_common;

use std::collections::BTreeMap;

use proptest::prelude::*;
use tidemark_stream::tracker::{Allocation, ReceivedBlockTracker, TrackerSnapshot};
use tidemark_stream::{BatchTime, ReceivedBlockInfo, StreamError};
use tidemark_wal::WalError;
use tracker_common::{STREAMS, block, open};

#[derive(Clone, Debug)]
enum Op {
    /// One block; ids repeat sometimes, as a receiver retrying a report would.
    Add {
        stream: u32,
        unique: u64,
    },
    /// Many blocks of one stream: enough events to fill segments.
    Burst {
        stream: u32,
        count: u64,
    },
    /// Allocates the last allocated time plus this (re-runs when not positive).
    Allocate(i64),
    /// Cleans batches more than this many time units older than the last allocated.
    Clean(u64),
    Truncate,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let stream = 0..STREAMS.len() as u32;
    prop_oneof![
        6 => (stream.clone(), 0u64..24).prop_map(|(stream, unique)| Op::Add { stream, unique }),
        2 => (stream, 10u64..100).prop_map(|(stream, count)| Op::Burst { stream, count }),
        4 => (-2i64..5).prop_map(Op::Allocate),
        2 => (0u64..6).prop_map(Op::Clean),
        1 => Just(Op::Truncate),
        2 => Just(Op::Reopen),
    ]
}

/// Spark's tracker, with nothing but maps.
#[derive(Default)]
struct Model {
    unallocated: BTreeMap<u32, Vec<ReceivedBlockInfo>>,
    batches: BTreeMap<BatchTime, BTreeMap<u32, Vec<ReceivedBlockInfo>>>,
    last: Option<BatchTime>,
}

impl Model {
    fn new() -> Model {
        Model {
            unallocated: STREAMS.iter().map(|&s| (s, Vec::new())).collect(),
            ..Model::default()
        }
    }

    fn add(&mut self, info: ReceivedBlockInfo) {
        self.unallocated
            .entry(info.block.stream_id)
            .or_default()
            .push(info);
    }

    fn allocate(&mut self, time: BatchTime) -> Allocation {
        if self.last.is_some_and(|last| time <= last) {
            return Allocation::AlreadyAllocated;
        }
        let blocks = self
            .unallocated
            .iter_mut()
            .map(|(&s, q)| (s, std::mem::take(q)))
            .collect();
        self.batches.insert(time, blocks);
        self.last = Some(time);
        Allocation::Allocated
    }

    fn clean(&mut self, threshold: BatchTime) -> Vec<ReceivedBlockInfo> {
        let kept = self.batches.split_off(&threshold);
        let dropped = std::mem::replace(&mut self.batches, kept);
        dropped
            .into_values()
            .flat_map(|b| b.into_values().flatten())
            .collect()
    }

    fn snapshot(&self) -> TrackerSnapshot {
        TrackerSnapshot {
            unallocated: self.unallocated.clone(),
            batches: self.batches.clone(),
            last_allocated: self.last,
        }
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut tracker = open(tmp.path());
    let mut model = Model::new();
    let mut next_unique = 1_000;
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Add { stream, unique } => {
                tracker.add_block(block(stream, unique)).expect("add");
                model.add(block(stream, unique));
            }
            Op::Burst { stream, count } => {
                for _ in 0..count {
                    next_unique += 1;
                    tracker.add_block(block(stream, next_unique)).expect("add");
                    model.add(block(stream, next_unique));
                }
            }
            Op::Allocate(delta) => {
                let time = model.last.map_or(0, |l| l.0).saturating_add_signed(delta);
                allocate(&tracker, &mut model, BatchTime(time), step)?;
            }
            Op::Clean(lag) => {
                let threshold = BatchTime(model.last.map_or(0, |l| l.0 + 1).saturating_sub(lag));
                let got = tracker.cleanup_old_batches(threshold).expect("cleanup");
                prop_assert_eq!(got, model.clean(threshold), "step {}", step);
            }
            Op::Truncate => tracker.truncate_wal().expect("truncate"),
            Op::Reopen => {
                drop(tracker);
                tracker = open(tmp.path());
            }
        }
        prop_assert_eq!(tracker.snapshot(), model.snapshot(), "step {}", step);
        prop_assert_eq!(
            tracker.has_unallocated_blocks(),
            model.unallocated.values().any(|q| !q.is_empty())
        );
    }
    drop(tracker);
    let tracker =
        ReceivedBlockTracker::open(Some(tmp.path()), &STREAMS, tracker_common::small_segments())
            .expect("final reopen");
    prop_assert_eq!(
        tracker.snapshot(),
        model.snapshot(),
        "after the final reopen"
    );
    Ok(())
}

/// Allocates in both. An allocation of many blocks may not fit in one 8 KiB
/// segment: then the WAL refuses it and neither the tracker nor the model changes.
fn allocate(
    tracker: &ReceivedBlockTracker,
    model: &mut Model,
    time: BatchTime,
    step: usize,
) -> Result<(), TestCaseError> {
    let waiting: usize = model.unallocated.values().map(Vec::len).sum();
    match tracker.allocate_blocks_to_batch(time) {
        Ok(got) => prop_assert_eq!(got, model.allocate(time), "step {}", step),
        Err(StreamError::Wal {
            source: WalError::RecordTooLarge { .. },
            ..
        }) => prop_assert!(
            waiting > SURELY_FITS,
            "step {}: {} blocks should fit in a segment",
            step,
            waiting
        ),
        Err(other) => return Err(TestCaseError::fail(format!("step {step}: {other}"))),
    }
    Ok(())
}

/// Blocks whose allocation surely fits an 8 KiB segment (at most 33 bytes each).
const SURELY_FITS: usize = 200;

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn the_tracker_matches_the_model_across_reopens(ops in proptest::collection::vec(op(), 1..100)) {
        run(ops)?;
    }
}
