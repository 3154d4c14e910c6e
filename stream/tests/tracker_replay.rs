//! The tracker on a real metadata WAL: reopening replays to the same state,
//! allocation is idempotent across reopens, concurrent callers lose nothing.

mod tracker_common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use tidemark_stream::tracker::{Allocation, ReceivedBlockTracker, TrackerOptions};
use tidemark_stream::{BatchTime, StreamError};
use tracker_common::{STREAMS, all_blocks, block, open};

#[test]
fn reopening_replays_blocks_batches_the_queue_and_the_last_time() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tracker = open(tmp.path());
    for u in 0..6 {
        tracker.add_block(block(u as u32 % 3, u)).expect("add");
    }
    tracker
        .allocate_blocks_to_batch(BatchTime(1_000))
        .expect("allocate");
    tracker
        .allocate_blocks_to_batch(BatchTime(2_000))
        .expect("allocate an empty batch");
    for u in 6..9 {
        tracker.add_block(block(1, u)).expect("add");
    }
    tracker
        .allocate_blocks_to_batch(BatchTime(3_000))
        .expect("allocate");
    tracker.add_block(block(2, 9)).expect("add");
    tracker.add_block(block(0, 10)).expect("add");
    let before = tracker.snapshot();
    assert_eq!(before.batches.len(), 3);
    assert_eq!(
        before.batches[&BatchTime(2_000)].values().flatten().count(),
        0
    );
    assert_eq!(before.unallocated[&2], vec![block(2, 9)]);
    drop(tracker);

    for round in 0..2 {
        let reopened = open(tmp.path());
        assert_eq!(reopened.snapshot(), before, "round {round}");
        assert!(reopened.has_unallocated_blocks());
        assert_eq!(reopened.last_allocated_batch(), Some(BatchTime(3_000)));
        assert_eq!(
            reopened.blocks_of_batch_and_stream(BatchTime(3_000), 1),
            vec![block(1, 6), block(1, 7), block(1, 8)]
        );
        assert_eq!(reopened.unallocated_blocks(0), vec![block(0, 10)]);
        assert_eq!(reopened.stream_ids(), STREAMS.to_vec());
    }
}

#[test]
fn allocating_a_time_at_or_before_the_last_is_a_no_op_across_a_reopen() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tracker = open(tmp.path());
    tracker.add_block(block(0, 1)).expect("add");
    let first = tracker.allocate_blocks_to_batch(BatchTime(2_000));
    assert_eq!(first.expect("allocate"), Allocation::Allocated);
    let batch = tracker.blocks_of_batch(BatchTime(2_000));
    drop(tracker);

    let tracker = open(tmp.path());
    tracker
        .add_block(block(1, 2))
        .expect("add after the reopen");
    for time in [2_000, 1_000, 0] {
        let again = tracker.allocate_blocks_to_batch(BatchTime(time));
        assert_eq!(
            again.expect("re-run"),
            Allocation::AlreadyAllocated,
            "time {time}"
        );
    }
    assert_eq!(tracker.blocks_of_batch(BatchTime(2_000)), batch);
    assert!(tracker.blocks_of_batch(BatchTime(1_000)).is_empty());
    assert_eq!(tracker.unallocated_blocks(1), vec![block(1, 2)]);
    let span = tracker.wal_span();
    drop(tracker);

    let tracker = open(tmp.path());
    assert_eq!(tracker.wal_span(), span, "a no-op logs nothing");
    let next = tracker.allocate_blocks_to_batch(BatchTime(3_000));
    assert_eq!(next.expect("allocate"), Allocation::Allocated);
    assert_eq!(
        tracker.blocks_of_batch_and_stream(BatchTime(3_000), 1),
        vec![block(1, 2)]
    );
}

#[test]
fn without_a_wal_the_same_rules_hold_in_memory_and_nothing_survives() {
    let tracker = ReceivedBlockTracker::open(None, &STREAMS, TrackerOptions::default())
        .expect("open without a WAL");
    tracker.add_block(block(0, 1)).expect("add");
    tracker.add_block(block(0, 2)).expect("add");
    let allocated = tracker.allocate_blocks_to_batch(BatchTime(10));
    assert_eq!(allocated.expect("allocate"), Allocation::Allocated);
    let again = tracker.allocate_blocks_to_batch(BatchTime(10));
    assert_eq!(again.expect("re-run"), Allocation::AlreadyAllocated);
    assert_eq!(
        tracker.blocks_of_batch_and_stream(BatchTime(10), 0),
        vec![block(0, 1), block(0, 2)]
    );
    assert!(!tracker.has_unallocated_blocks());
    let dropped = tracker.cleanup_old_batches(BatchTime(11)).expect("cleanup");
    assert_eq!(dropped, vec![block(0, 1), block(0, 2)]);
    assert_eq!(tracker.wal_span(), None);
    tracker
        .truncate_wal()
        .expect("truncating no WAL does nothing");
    drop(tracker);
    let fresh =
        ReceivedBlockTracker::open(None, &STREAMS, TrackerOptions::default()).expect("open again");
    assert_eq!(fresh.last_allocated_batch(), None);
}

#[test]
fn a_block_of_an_untracked_stream_is_refused_and_logs_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tracker = open(tmp.path());
    match tracker.add_block(block(9, 1)) {
        Err(StreamError::UnknownStream { stream_id: 9 }) => {}
        other => panic!("expected UnknownStream, got {other:?}"),
    }
    assert_eq!(tracker.wal_span(), None);
    assert!(!tracker.has_unallocated_blocks());
}

#[test]
fn a_stream_the_log_names_is_tracked_even_when_not_passed_at_open() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tracker = ReceivedBlockTracker::open(Some(tmp.path()), &[0, 5], TrackerOptions::default())
        .expect("open");
    tracker.add_block(block(5, 1)).expect("add");
    drop(tracker);
    let tracker = ReceivedBlockTracker::open(Some(tmp.path()), &[0], TrackerOptions::default())
        .expect("reopen with fewer streams");
    assert_eq!(tracker.stream_ids(), vec![0, 5]);
    tracker
        .allocate_blocks_to_batch(BatchTime(1))
        .expect("allocate");
    assert_eq!(
        tracker.blocks_of_batch_and_stream(BatchTime(1), 5),
        vec![block(5, 1)]
    );
}

/// One adder thread per stream, each adding its blocks in order, while the job
/// generator allocates and cleans. Afterwards every block is in exactly one
/// place, each stream's blocks run in the order they were added across batches
/// and the queue (an allocation takes exactly what was logged before it), and a
/// reopened tracker has the same state.
#[test]
fn concurrent_adds_allocations_and_cleanups_lose_nothing_and_replay_the_same() {
    const PER_STREAM: u64 = 150;
    let tmp = tempfile::tempdir().expect("tempdir");
    let tracker = Arc::new(open(tmp.path()));
    let done = Arc::new(AtomicBool::new(false));
    let adders: Vec<_> = STREAMS
        .iter()
        .map(|&stream| {
            let tracker = tracker.clone();
            thread::spawn(move || {
                for u in 0..PER_STREAM {
                    tracker.add_block(block(stream, u)).expect("add");
                }
            })
        })
        .collect();
    let jobs = {
        let (tracker, done) = (tracker.clone(), done.clone());
        thread::spawn(move || job_generator(&tracker, &done))
    };
    for adder in adders {
        adder.join().expect("adder");
    }
    done.store(true, Ordering::Release);
    let dropped = jobs.join().expect("job generator");

    let before = tracker.snapshot();
    let mut seen: Vec<_> = all_blocks(&before);
    seen.extend(dropped.iter().map(|i| i.block));
    let unique: BTreeSet<_> = seen.iter().copied().collect();
    assert_eq!(seen.len(), unique.len(), "a block is in two places");
    assert_eq!(unique.len() as u64, PER_STREAM * STREAMS.len() as u64);
    for stream in STREAMS {
        let in_batches = before.batches.values().flat_map(|b| b[&stream].iter());
        let order: Vec<u64> = dropped
            .iter()
            .filter(|i| i.block.stream_id == stream)
            .chain(in_batches)
            .chain(&before.unallocated[&stream])
            .map(|i| i.block.unique_id)
            .collect();
        assert_eq!(
            order,
            (0..PER_STREAM).collect::<Vec<_>>(),
            "stream {stream}"
        );
    }
    drop(tracker);
    assert_eq!(open(tmp.path()).snapshot(), before);
}

/// Allocates a batch per round and cleans all but the last two every fourth;
/// returns the blocks cleanups dropped, in order.
fn job_generator(
    tracker: &ReceivedBlockTracker,
    done: &AtomicBool,
) -> Vec<tidemark_stream::ReceivedBlockInfo> {
    let mut dropped = Vec::new();
    let mut time = 0;
    while !done.load(Ordering::Acquire) {
        time += 1;
        tracker
            .allocate_blocks_to_batch(BatchTime(time))
            .expect("allocate");
        if time.is_multiple_of(4) {
            dropped.extend(
                tracker
                    .cleanup_old_batches(BatchTime(time - 1))
                    .expect("cleanup"),
            );
        }
    }
    dropped
}
