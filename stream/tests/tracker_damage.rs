//! A damaged metadata WAL: a record that does not decode is the tracker's typed
//! `BadRecord` naming its LSN; a damaged durable frame is the WAL's corruption
//! error, or a skipped record under `SkipCorrupted`. Nothing panics.

mod tracker_common;

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tidemark_stream::tracker::{ReceivedBlockTracker, TrackerOptions};
use tidemark_stream::{BatchTime, StreamError};
use tidemark_wal::{
    Durability, Lsn, RecoveryMode, SegmentFileKind, Wal, WalError, WalOptions, list_log_dir,
};
use tracker_common::{STREAMS, block, open, small_segments};

/// The WAL options the test trackers use, for writing behind their back.
fn raw_wal(dir: &Path) -> Wal {
    let opts = WalOptions {
        segment_size: small_segments().segment_size,
        durability: Durability::Group {
            max_delay: Duration::from_micros(500),
        },
        ..WalOptions::default()
    };
    Wal::open(dir, opts).expect("open the metadata WAL directly")
}

fn expect_bad_record(dir: &Path, lsn: u64, reason_has: &str) {
    match ReceivedBlockTracker::open(Some(dir), &STREAMS, small_segments()) {
        Err(StreamError::BadRecord {
            what: "tracker",
            lsn: at,
            reason,
        }) => {
            assert_eq!(at, lsn, "{reason}");
            assert!(reason.contains(reason_has), "{reason}");
        }
        Err(other) => panic!("expected BadRecord at LSN {lsn}, got {other}"),
        Ok(_) => panic!("a log with a bad record at LSN {lsn} opened"),
    }
}

/// A tracker log of three blocks and a batch, with `record` appended after.
fn log_then(record: &[u8]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tracker = open(tmp.path());
    for u in 0..3 {
        tracker.add_block(block(u as u32, u)).expect("add");
    }
    tracker
        .allocate_blocks_to_batch(BatchTime(7))
        .expect("allocate");
    drop(tracker);
    let wal = raw_wal(tmp.path());
    assert_eq!(wal.append(record).expect("append"), Lsn(5));
    tmp
}

#[test]
fn a_record_of_a_newer_format_is_a_bad_record_naming_its_lsn() {
    let tmp = log_then(&[2, 1, 0, 0, 0]);
    expect_bad_record(tmp.path(), 5, "format version 2");
}

#[test]
fn a_cut_or_garbled_record_is_a_bad_record_naming_its_lsn() {
    let cut = block_event_bytes();
    let tmp = log_then(&cut[..cut.len() - 3]);
    expect_bad_record(tmp.path(), 5, "cut off");
    let tmp = log_then(&[1, 200]);
    expect_bad_record(tmp.path(), 5, "unknown event kind 200");
    let tmp = log_then(&[]);
    expect_bad_record(tmp.path(), 5, "format version");
}

/// A block-added record, as the tracker writes it (LSN 1 of a fresh log).
fn block_event_bytes() -> Vec<u8> {
    let tmp = tempfile::tempdir().expect("tempdir");
    open(tmp.path()).add_block(block(1, 4)).expect("add");
    let wal = raw_wal(tmp.path());
    let record = wal.read(Lsn(1)).expect("read");
    record.data.to_vec()
}

/// The segment file holding LSN 1.
fn first_segment(dir: &Path) -> PathBuf {
    let listing = list_log_dir(dir).expect("list");
    listing
        .segments
        .into_iter()
        .find(|s| matches!(s.kind, SegmentFileKind::Live(h) if h.base_lsn == Lsn(1)))
        .expect("a live segment starting at LSN 1")
        .path
}

/// Flips one bit inside the payload of LSN 1 (segment header 64 bytes, frame header 32).
fn flip_first_payload(dir: &Path) {
    let path = first_segment(dir);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .expect("open the segment");
    let at = 64 + 32 + 3;
    let mut byte = [0u8];
    file.seek(SeekFrom::Start(at)).expect("seek");
    file.read_exact(&mut byte).expect("read");
    byte[0] ^= 0x10;
    file.seek(SeekFrom::Start(at)).expect("seek");
    file.write_all(&byte).expect("write");
    file.sync_all().expect("sync");
}

/// Ten durable block events, then LSN 1 damaged on disk.
fn damaged_log() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tracker = open(tmp.path());
    for u in 0..10 {
        tracker.add_block(block(0, u)).expect("add");
    }
    drop(tracker);
    flip_first_payload(tmp.path());
    tmp
}

#[test]
fn a_damaged_durable_record_is_the_wals_corruption_error() {
    let tmp = damaged_log();
    match ReceivedBlockTracker::open(Some(tmp.path()), &STREAMS, small_segments()) {
        Err(StreamError::Wal {
            source: WalError::Corruption { lsn, .. },
            ..
        }) => assert_eq!(lsn, Lsn(1)),
        Err(other) => panic!("expected the WAL's corruption error, got {other}"),
        Ok(_) => panic!("a corrupted log opened"),
    }
}

#[test]
fn skip_corrupted_recovery_loses_exactly_the_damaged_event() {
    let tmp = damaged_log();
    let opts = TrackerOptions {
        recovery: RecoveryMode::SkipCorrupted,
        ..small_segments()
    };
    let tracker =
        ReceivedBlockTracker::open(Some(tmp.path()), &STREAMS, opts).expect("open, skipping");
    let want: Vec<_> = (1..10).map(|u| block(0, u)).collect();
    assert_eq!(tracker.unallocated_blocks(0), want);
}
