//! Helpers shared by the tracker's integration tests.
#![allow(dead_code)]

use std::path::Path;

use tidemark_stream::tracker::{ReceivedBlockTracker, TrackerOptions, TrackerSnapshot};
use tidemark_stream::{ReceivedBlockInfo, StreamBlockId, WalHandle};

/// The streams most tests track.
pub const STREAMS: [u32; 3] = [0, 1, 2];

/// The smallest segments the WAL accepts: a few hundred events rotate them often.
pub fn small_segments() -> TrackerOptions {
    TrackerOptions {
        segment_size: tidemark_wal::MIN_SEGMENT_SIZE,
        ..TrackerOptions::default()
    }
}

/// Opens a tracker of [`STREAMS`] on the WAL in `dir`, with small segments.
pub fn open(dir: &Path) -> ReceivedBlockTracker {
    ReceivedBlockTracker::open(Some(dir), &STREAMS, small_segments()).expect("open the tracker")
}

/// A block as a WAL-backed receiver reports it; every field depends on the id.
pub fn block(stream_id: u32, unique_id: u64) -> ReceivedBlockInfo {
    ReceivedBlockInfo {
        block: StreamBlockId {
            stream_id,
            unique_id,
        },
        num_records: (!unique_id.is_multiple_of(3)).then_some(unique_id * 10),
        wal: unique_id.is_multiple_of(2).then_some(WalHandle {
            stream_id,
            lsn: unique_id + 1,
        }),
    }
}

/// Every block the snapshot holds, waiting or in a batch, in one list.
pub fn all_blocks(snapshot: &TrackerSnapshot) -> Vec<StreamBlockId> {
    let waiting = snapshot.unallocated.values().flatten();
    let batched = snapshot.batches.values().flat_map(|b| b.values().flatten());
    waiting.chain(batched).map(|i| i.block).collect()
}

/// The live segments of the WAL in `dir`.
pub fn live_segments(dir: &Path) -> usize {
    tidemark_wal::list_log_dir(dir)
        .expect("list the WAL directory")
        .segments
        .iter()
        .filter(|s| matches!(s.kind, tidemark_wal::SegmentFileKind::Live(_)))
        .count()
}
