//! A seal that never reached the disk: the state a power cut left behind when a
//! rotation's seal frame was written into the mapping but not yet synced (issue
//! #16). Every sealed segment then ends in zeros (or a torn seal) where its seal
//! was, while the next segment's header, and its records stamped durable past
//! the missing seal, are on disk. Nothing acknowledged is missing, so the log
//! must open whole in every mode; damage to a record must still be refused.

mod common;

use std::path::{Path, PathBuf};

use common::{RawFrame, copy_dir, frames, payload, small_opts};
use tidemark_wal::{Durability, Lsn, RecoveryMode, Wal, WalError, WalOptions};

const RECORDS: u64 = 400;

const MODES: [RecoveryMode; 4] = [
    RecoveryMode::TolerateCorruptedTail,
    RecoveryMode::AbsoluteConsistency,
    RecoveryMode::PointInTime,
    RecoveryMode::SkipCorrupted,
];

fn opts(mode: RecoveryMode) -> WalOptions {
    WalOptions {
        recovery: mode,
        ..small_opts(Durability::PerWrite)
    }
}

/// A PerWrite log of RECORDS records over several 64 KiB segments.
fn pristine() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), opts(RecoveryMode::TolerateCorruptedTail)).expect("open");
    for s in 0..RECORDS {
        wal.append(&payload(0, s)).expect("append");
    }
    dir
}

fn seals(dir: &Path) -> Vec<RawFrame> {
    let seals: Vec<RawFrame> = frames(dir).into_iter().filter(|f| f.kind == 2).collect();
    assert!(
        seals.len() >= 3,
        "want several rotations, saw {}",
        seals.len()
    );
    seals
}

fn records(dir: &Path) -> Vec<RawFrame> {
    frames(dir).into_iter().filter(|f| f.kind == 1).collect()
}

/// Overwrites `len` bytes at `at` of `path` with `byte`.
fn overwrite(path: &Path, at: u64, len: usize, byte: u8) {
    let mut bytes = std::fs::read(path).expect("read segment");
    bytes[at as usize..at as usize + len].fill(byte);
    std::fs::write(path, bytes).expect("write segment");
}

/// Zeroes every seal frame: what a power cut leaves when no seal was synced.
fn zero_every_seal(dir: &Path) -> Vec<PathBuf> {
    let seals = seals(dir);
    for s in &seals {
        overwrite(&s.file, s.offset, 40, 0);
    }
    seals.into_iter().map(|s| s.file).collect()
}

fn copy_of(template: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(template, dir.path());
    dir
}

fn names(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| {
            p.file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// Exactly LSNs 1..=last, each with its payload.
fn assert_whole(wal: &Wal, last: u64) {
    let got: Vec<u64> = wal
        .iter_from(Lsn(1))
        .map(|r| {
            let r = r.expect("replay");
            assert_eq!(r.data, payload(0, r.lsn.0 - 1), "LSN {}", r.lsn.0);
            r.lsn.0
        })
        .collect();
    assert_eq!(got, (1..=last).collect::<Vec<_>>());
}

#[test]
fn a_log_whose_seals_never_reached_the_disk_opens_whole_in_every_mode() {
    let template = pristine();
    let lost = zero_every_seal(template.path());
    for mode in MODES {
        let dir = copy_of(template.path());
        let wal = Wal::open(dir.path(), opts(mode))
            .unwrap_or_else(|e| panic!("{mode:?}: a log missing only its seals must open: {e}"));
        assert_whole(&wal, RECORDS);
        let report = wal.recovery_report();
        assert_eq!(names(&report.seals_restored), names(&lost), "{mode:?}");
        assert!(report.damage.is_empty(), "{mode:?}: {:?}", report.damage);
        assert!(report.repaired, "{mode:?}: the seals were written again");
        // The log goes on, and the restored seals hold across a reopen.
        assert_eq!(
            wal.append(&payload(0, RECORDS)).expect("append"),
            Lsn(RECORDS + 1)
        );
        drop(wal);
        let wal = Wal::open(dir.path(), opts(mode)).expect("reopen");
        assert!(wal.recovery_report().seals_restored.is_empty());
        assert_whole(&wal, RECORDS + 1);
    }
}

#[test]
fn a_torn_seal_is_restored_like_a_missing_one() {
    let template = pristine();
    let seal = seals(template.path()).remove(1);
    // The seal's first 24 bytes reached the disk as garbage, the rest as zeros.
    overwrite(&seal.file, seal.offset, 24, 0xA5);
    overwrite(&seal.file, seal.offset + 24, 16, 0);
    let wal = Wal::open(template.path(), opts(RecoveryMode::TolerateCorruptedTail))
        .expect("a torn seal loses no record");
    assert_whole(&wal, RECORDS);
    assert_eq!(wal.recovery_report().seals_restored, vec![seal.file]);
}

#[test]
fn a_read_only_open_reports_the_lost_seal_and_changes_nothing() {
    let template = pristine();
    let lost = zero_every_seal(template.path());
    let before = segment_bytes(template.path());
    let wal = Wal::open_read_only(template.path(), opts(RecoveryMode::TolerateCorruptedTail))
        .expect("read-only open");
    assert_whole(&wal, RECORDS);
    assert_eq!(wal.recovery_report().seals_restored, lost);
    assert!(!wal.recovery_report().repaired);
    drop(wal);
    assert_eq!(
        segment_bytes(template.path()),
        before,
        "a read-only open wrote"
    );
}

/// The bytes of every segment file, in name order.
fn segment_bytes(dir: &Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect()
}

#[test]
fn a_lost_seal_never_hides_a_damaged_record() {
    let template = pristine();
    zero_every_seal(template.path());
    let recs = records(template.path());
    let first_seg: Vec<&RawFrame> = recs.iter().filter(|f| f.file == recs[0].file).collect();
    let middle = first_seg[first_seg.len() / 2];
    let last = first_seg[first_seg.len() - 1];

    // A bit flip in the middle of the segment: valid frames follow it.
    let dir = copy_of(template.path());
    overwrite(&in_copy(dir.path(), middle), middle.offset + 40, 1, 0xFF);
    expect_corruption(dir.path(), middle.lsn);

    // The segment's last record gone with its seal: the next segment starts past it,
    // and its records were stamped durable past it.
    let dir = copy_of(template.path());
    let len = (last.payload_end() - last.offset) as usize;
    overwrite(&in_copy(dir.path(), last), last.offset, len, 0);
    expect_corruption(dir.path(), last.lsn);
}

/// The path of `frame`'s segment file in the copy `dir`.
fn in_copy(dir: &Path, frame: &RawFrame) -> PathBuf {
    dir.join(frame.file.file_name().expect("a segment file name"))
}

fn expect_corruption(dir: &Path, lsn: u64) {
    match Wal::open(dir, opts(RecoveryMode::TolerateCorruptedTail)) {
        Err(WalError::Corruption { lsn: at, .. }) => assert_eq!(at.0, lsn),
        Err(e) => panic!("expected corruption at LSN {lsn}, got {e}"),
        Ok(_) => panic!("damage to durable LSN {lsn} was accepted"),
    }
}
