//! Rotation across many segments, truncate_before, clean_older_than, locking;
//! the log is reopened after each step.

mod common;

use std::time::{Duration, SystemTime};

use common::{payload, segment_files, small_opts};
use tidemark_wal::{Durability, Lsn, Wal, WalError, WalOptions};

fn opts() -> WalOptions {
    WalOptions {
        segment_size: 16 << 10,
        ..small_opts(Durability::Buffered)
    }
}

fn fill(wal: &Wal, from: u64, to: u64) {
    for s in from..to {
        assert_eq!(wal.append(&payload(0, s)).expect("append"), Lsn(s + 1));
    }
}

fn assert_range(wal: &Wal, first: u64, last: u64) {
    assert_eq!(wal.first_lsn(), Some(Lsn(first)));
    assert_eq!(wal.last_lsn(), Some(Lsn(last)));
    let got: Vec<u64> = wal
        .iter_from(Lsn(0))
        .map(|r| r.expect("scan").lsn.0)
        .collect();
    assert_eq!(got, (first..=last).collect::<Vec<_>>());
    for lsn in [first, (first + last) / 2, last] {
        assert_eq!(wal.read(Lsn(lsn)).expect("read").data, payload(0, lsn - 1));
    }
}

#[test]
fn rotation_and_truncate_before_across_reopens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), opts()).expect("open");
    fill(&wal, 0, 2_000);
    let segments = segment_files(dir.path());
    assert!(
        segments.len() > 20,
        "2000 records should span many 16 KiB segments, got {}",
        segments.len()
    );
    drop(wal);

    let mut first = 1;
    for cut in [1u64, 300, 301, 999, 1_500, 2_000, 5_000] {
        let wal = Wal::open(dir.path(), opts()).expect("reopen");
        assert_range(&wal, first, 2_000);
        wal.truncate_before(Lsn(cut)).expect("truncate");
        let f = wal
            .first_lsn()
            .expect("never empty: the active segment stays")
            .0;
        assert!(f <= cut.min(2_000) && f >= first, "cut {cut}: first {f}");
        let dropped_whole = segment_files(dir.path()).iter().all(|(base, _)| *base >= f);
        assert!(dropped_whole, "cut {cut}: only whole segments go");
        first = f;
        assert!(matches!(wal.read(Lsn(first - 1)), Err(WalError::NotFound { .. })) || first == 1);
        drop(wal);
    }
    let wal = Wal::open(dir.path(), opts()).expect("reopen");
    assert_range(&wal, first, 2_000);
    fill(&wal, 2_000, 2_100);
    assert_range(&wal, first, 2_100);
    let files = std::fs::read_dir(dir.path()).expect("ls").count();
    assert!(
        files < 12,
        "retired segments are recycled or deleted, {files} files remain"
    );
}

#[test]
fn clean_older_than_drops_only_segments_sealed_before_the_threshold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), opts()).expect("open");
    fill(&wal, 0, 500);
    let before_second_half = SystemTime::now();
    std::thread::sleep(Duration::from_millis(20));
    fill(&wal, 500, 1_000);
    wal.clean_older_than(SystemTime::UNIX_EPOCH)
        .expect("clean nothing");
    assert_eq!(wal.first_lsn(), Some(Lsn(1)));
    wal.clean_older_than(before_second_half)
        .expect("clean first half");
    let first = wal.first_lsn().expect("first").0;
    assert!(
        first > 1 && first <= 501,
        "segments sealed before the threshold go, first is {first}"
    );
    drop(wal);
    let wal = Wal::open(dir.path(), opts()).expect("reopen");
    assert_range(&wal, first, 1_000);
    wal.clean_older_than(SystemTime::now() + Duration::from_secs(1))
        .expect("clean all sealed");
    let first = wal.first_lsn().expect("the active segment stays").0;
    assert!(first > 500);
    drop(wal);
    let wal = Wal::open(dir.path(), opts()).expect("reopen");
    assert_range(&wal, first, 1_000);
}

#[test]
fn one_writer_per_directory_and_read_only_without_the_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), opts()).expect("open");
    fill(&wal, 0, 100);
    match Wal::open(dir.path(), opts()) {
        Err(WalError::Locked { dir: d }) => assert_eq!(d, dir.path()),
        other => panic!(
            "a second writer must be refused, got {:?}",
            other.map(|_| ())
        ),
    }
    let ro = Wal::open_read_only(dir.path(), opts()).expect("read-only open beside the writer");
    assert_range(&ro, 1, 100);
    assert!(matches!(ro.append(b"x"), Err(WalError::ReadOnly)));
    assert!(matches!(
        ro.truncate_before(Lsn(50)),
        Err(WalError::ReadOnly)
    ));
    drop(wal);
    let wal = Wal::open(dir.path(), opts()).expect("the lock goes with the writer");
    assert_range(&wal, 1, 100);
}

#[test]
fn records_read_before_truncation_stay_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), opts()).expect("open");
    fill(&wal, 0, 1_000);
    let held = wal.read(Lsn(2)).expect("read");
    wal.truncate_before(Lsn(900)).expect("truncate");
    fill(&wal, 1_000, 3_000); // reuses recycled segments: never the one `held` points into
    assert_eq!(held.data, payload(0, 1));
}

#[test]
fn oversized_and_empty_appends_are_refused_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), opts()).expect("open");
    assert!(matches!(
        wal.append(&vec![7u8; 20 << 10]),
        Err(WalError::RecordTooLarge { .. })
    ));
    let empty: [&[u8]; 0] = [];
    assert!(matches!(wal.append_batch(empty), Err(WalError::EmptyBatch)));
    assert!(matches!(
        Wal::open(
            dir.path().join("x"),
            WalOptions {
                segment_size: 1000,
                ..opts()
            }
        ),
        Err(WalError::InvalidOptions(_))
    ));
    assert_eq!(wal.append(b"still fine").expect("append"), Lsn(1));
    assert!(wal.append(b"").is_ok(), "an empty record is a record");
}

#[test]
fn sync_after_truncating_unsynced_buffered_segments_returns() {
    // Regression: the written watermark pointed into retired segments and sync spun forever.
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), opts()).expect("open");
    fill(&wal, 0, 1_000);
    wal.truncate_before(Lsn(900)).expect("truncate");
    assert_eq!(wal.sync().expect("sync"), Lsn(1_000));
    assert_eq!(wal.durable_lsn(), Lsn(1_000));
}
