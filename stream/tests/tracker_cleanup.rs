//! Cleanup: it returns exactly the dropped batches' blocks, retires metadata-WAL
//! segments by the truncation rule, and a reopened tracker has the same state.

mod tracker_common;

use std::sync::Arc;

use bytes::Bytes;
use tidemark_blockstore::{BlockManager, BlockStoreConfig, StorageLevel};
use tidemark_stream::handler::{
    DEFAULT_STORE_TIMEOUT, ReceivedBlockHandler, WalBlockHandler, receiver_wal_dir,
};
use tidemark_stream::tracker::{Allocation, ReceivedBlockTracker, TrackerOptions};
use tidemark_stream::{BatchTime, ReceivedBlockInfo, StreamBlockId, StreamError};
use tracker_common::{block, live_segments, open};

/// Adds `count` blocks spread over the streams, ids from `first`.
fn add_blocks(tracker: &ReceivedBlockTracker, first: u64, count: u64) {
    for u in first..first + count {
        tracker.add_block(block(u as u32 % 3, u)).expect("add");
    }
}

#[test]
fn cleanup_returns_exactly_the_blocks_of_the_batches_before_the_threshold() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tracker = open(tmp.path());
    tracker.add_block(block(1, 1)).expect("add");
    tracker.add_block(block(0, 2)).expect("add");
    tracker
        .allocate_blocks_to_batch(BatchTime(1_000))
        .expect("allocate");
    tracker.add_block(block(2, 3)).expect("add");
    tracker
        .allocate_blocks_to_batch(BatchTime(2_000))
        .expect("allocate");
    tracker.add_block(block(0, 4)).expect("add");
    tracker.add_block(block(0, 5)).expect("add");
    tracker
        .allocate_blocks_to_batch(BatchTime(3_000))
        .expect("allocate");
    tracker.add_block(block(1, 6)).expect("add (stays waiting)");

    // Batch 1000 only; within a batch, by stream.
    let dropped = tracker
        .cleanup_old_batches(BatchTime(2_000))
        .expect("cleanup");
    assert_eq!(dropped, vec![block(0, 2), block(1, 1)]);
    assert!(tracker.blocks_of_batch(BatchTime(1_000)).is_empty());
    assert_eq!(
        tracker.blocks_of_batch_and_stream(BatchTime(2_000), 2),
        vec![block(2, 3)]
    );
    assert!(
        tracker
            .cleanup_old_batches(BatchTime(2_000))
            .expect("again")
            .is_empty()
    );

    let before = tracker.snapshot();
    drop(tracker);
    let tracker = open(tmp.path());
    assert_eq!(tracker.snapshot(), before);
    let rest = tracker
        .cleanup_old_batches(BatchTime(3_001))
        .expect("cleanup the rest");
    assert_eq!(rest, vec![block(2, 3), block(0, 4), block(0, 5)]);
    assert_eq!(tracker.unallocated_blocks(1), vec![block(1, 6)]);
    assert_eq!(tracker.last_allocated_batch(), Some(BatchTime(3_000)));
}

/// Twenty batches of 40 blocks fill many 8 KiB segments (an event is a frame of
/// 48 to 72 bytes); cleaning all but the last two batches retires most of them.
#[test]
fn cleanup_retires_segments_and_a_reopen_rebuilds_the_same_state() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tracker = open(tmp.path());
    for batch in 0..20u64 {
        add_blocks(&tracker, batch * 40, 40);
        tracker
            .allocate_blocks_to_batch(BatchTime(batch * 100))
            .expect("allocate");
    }
    add_blocks(&tracker, 800, 5);
    let segments_before = live_segments(tmp.path());
    assert!(
        segments_before >= 6,
        "only {segments_before} segments: no rotation"
    );
    let (first_before, _) = tracker.wal_span().expect("span");
    let mut expected: Vec<ReceivedBlockInfo> = Vec::new();
    for batch in 0..18u64 {
        let blocks = tracker.blocks_of_batch(BatchTime(batch * 100));
        expected.extend(blocks.into_values().flatten());
    }

    let dropped = tracker
        .cleanup_old_batches(BatchTime(1_800))
        .expect("cleanup");
    assert_eq!(dropped, expected);
    assert_eq!(dropped.len(), 18 * 40);
    let segments_after = live_segments(tmp.path());
    let (first_after, _) = tracker.wal_span().expect("span");
    assert!(
        segments_after <= 2 && segments_after < segments_before,
        "{segments_before} live segments became {segments_after}"
    );
    assert!(first_after > first_before);

    let before = tracker.snapshot();
    assert_eq!(before.batches.len(), 2);
    assert_eq!(before.unallocated.values().flatten().count(), 5);
    drop(tracker);
    let reopened = open(tmp.path());
    assert_eq!(reopened.snapshot(), before);
    assert_eq!(reopened.wal_span().map(|s| s.0), Some(first_after));
}

#[test]
fn waiting_blocks_keep_their_events_through_truncation() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tracker = open(tmp.path());
    add_blocks(&tracker, 0, 400);
    let segments = live_segments(tmp.path());
    assert!(segments >= 3, "only {segments} segments");
    assert!(
        tracker
            .cleanup_old_batches(BatchTime(u64::MAX))
            .expect("cleanup")
            .is_empty()
    );
    tracker.truncate_wal().expect("truncate");
    assert_eq!(live_segments(tmp.path()), segments);
    assert_eq!(tracker.wal_span().map(|s| s.0.0), Some(1));
    let before = tracker.snapshot();
    drop(tracker);
    assert_eq!(open(tmp.path()).snapshot(), before);
}

/// Every batch cleaned, one cleanup each: the cleanup events after the last
/// allocation fill segments of their own, and with no batch left only that
/// allocation's event (kept by the truncation rule) remembers the last time.
#[test]
fn the_last_allocated_time_survives_cleaning_every_batch() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tracker = open(tmp.path());
    for batch in 1..=300u64 {
        tracker.add_block(block(0, batch)).expect("add");
        tracker
            .allocate_blocks_to_batch(BatchTime(batch))
            .expect("allocate");
    }
    let (_, last_allocation) = tracker.wal_span().expect("span");
    let mut dropped = Vec::new();
    for batch in 1..=300u64 {
        dropped.extend(
            tracker
                .cleanup_old_batches(BatchTime(batch + 1))
                .expect("clean"),
        );
    }
    assert_eq!(dropped, (1..=300).map(|u| block(0, u)).collect::<Vec<_>>());
    let (first, last) = tracker.wal_span().expect("span");
    assert!(last.0 - last_allocation.0 > 200, "too few cleanup events");
    assert!(first.0 > 1, "nothing was retired");
    assert!(first <= last_allocation, "the last allocation was retired");
    drop(tracker);

    let tracker = open(tmp.path());
    assert_eq!(tracker.snapshot().batches.len(), 0);
    assert_eq!(tracker.last_allocated_batch(), Some(BatchTime(300)));
    let rerun = tracker
        .allocate_blocks_to_batch(BatchTime(300))
        .expect("re-run");
    assert_eq!(rerun, Allocation::AlreadyAllocated);
}

/// A batch whose allocation event does not fit in one segment cannot be
/// logged: the append fails, and the tracker is as it was, live and reopened.
#[test]
fn a_failed_allocation_changes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tracker = open(tmp.path());
    tracker.add_block(block(0, 1)).expect("add");
    tracker
        .allocate_blocks_to_batch(BatchTime(5))
        .expect("allocate");
    add_blocks(&tracker, 1_000, 400); // about 12 KiB of blocks for one 8 KiB segment
    let before = tracker.snapshot();
    match tracker.allocate_blocks_to_batch(BatchTime(10)) {
        Err(StreamError::Wal {
            source: tidemark_wal::WalError::RecordTooLarge { .. },
            ..
        }) => {}
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
    assert_eq!(tracker.snapshot(), before);
    assert_eq!(tracker.last_allocated_batch(), Some(BatchTime(5)));
    drop(tracker);
    assert_eq!(open(tmp.path()).snapshot(), before);
}

/// The loop Spark runs: blocks stored through a receiver-WAL handler, reported,
/// allocated, cleaned, and removed through the handler with what cleanup returned.
#[test]
fn cleaned_blocks_are_removed_through_the_block_handler() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = BlockStoreConfig {
        dir: tmp.path().join("blocks"),
        ..BlockStoreConfig::default()
    };
    let bm = Arc::new(BlockManager::start(config).expect("block manager"));
    let handler = WalBlockHandler::open(
        0,
        &receiver_wal_dir(&tmp.path().join("receivers"), 0),
        bm.clone(),
        StorageLevel::MEMORY_AND_DISK_SER,
        DEFAULT_STORE_TIMEOUT,
    )
    .expect("handler");
    let tracker = ReceivedBlockTracker::open(
        Some(&tmp.path().join("metadata")),
        &[0],
        TrackerOptions::default(),
    )
    .expect("tracker");
    for (batch, unique) in [(1u64, 1u64), (1, 2), (2, 3)] {
        let id = StreamBlockId {
            stream_id: 0,
            unique_id: unique,
        };
        let info = handler
            .store_block(id, &[Bytes::from(format!("record {unique}"))])
            .expect("store");
        tracker.add_block(info).expect("report");
        if unique != 1 {
            tracker
                .allocate_blocks_to_batch(BatchTime(batch))
                .expect("allocate");
        }
    }
    let dropped = tracker.cleanup_old_batches(BatchTime(2)).expect("cleanup");
    let ids: Vec<u64> = dropped.iter().map(|i| i.block.unique_id).collect();
    assert_eq!(ids, vec![1, 2]);
    handler.remove_blocks(&dropped).expect("remove");
    for (unique, kept) in [(1, false), (2, false), (3, true)] {
        let id = StreamBlockId {
            stream_id: 0,
            unique_id: unique,
        };
        let stored = bm.get_bytes(&id.block_id()).expect("read the block store");
        assert_eq!(stored.is_some(), kept, "block {unique}");
    }
}
