//! Torn and corrupt files: cut the last segment at many offsets, zero its tail,
//! flip bits in headers and payloads; every recovery mode must do exactly what
//! it promises, and nothing may panic.

mod common;

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use common::{RawFrame, copy_dir, frames, payload, small_opts};
use tidemark_wal::{DamageKind, Durability, Lsn, RecoveryMode, Wal, WalError, WalOptions};

const RECORDS: u64 = 400;

fn opts(mode: RecoveryMode) -> WalOptions {
    WalOptions {
        recovery: mode,
        ..small_opts(Durability::PerWrite)
    }
}

const MODES: [RecoveryMode; 4] = [
    RecoveryMode::TolerateCorruptedTail,
    RecoveryMode::AbsoluteConsistency,
    RecoveryMode::PointInTime,
    RecoveryMode::SkipCorrupted,
];

/// A pristine log of RECORDS records over several segments, one batch among them.
fn pristine() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), opts(RecoveryMode::TolerateCorruptedTail)).expect("open");
    let mut s = 0;
    while s < RECORDS {
        if s % 50 == 10 {
            wal.append_batch([payload(0, s), payload(0, s + 1), payload(0, s + 2)])
                .expect("batch");
            s += 3;
        } else {
            wal.append(&payload(0, s)).expect("append");
            s += 1;
        }
    }
    dir
}

fn damaged_copy(template: &Path, damage: impl FnOnce(&Path)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(template, dir.path());
    damage(dir.path());
    dir
}

/// Checks that exactly LSNs 1..=last are readable, except `missing`, with their payloads.
fn assert_holds(wal: &Wal, last: u64, missing: &[u64]) {
    let got: Vec<u64> = wal
        .iter_from(Lsn(1))
        .map(|r| r.expect("replay").lsn.0)
        .collect();
    let want: Vec<u64> = (1..=last).filter(|l| !missing.contains(l)).collect();
    assert_eq!(got, want);
    for lsn in want {
        assert_eq!(wal.read(Lsn(lsn)).expect("read").data, payload(0, lsn - 1));
    }
    for &m in missing {
        assert!(matches!(wal.read(Lsn(m)), Err(WalError::NotFound { .. })));
    }
}

fn last_records(dir: &Path, n: usize) -> Vec<RawFrame> {
    let recs: Vec<RawFrame> = frames(dir).into_iter().filter(|f| f.kind == 1).collect();
    assert_eq!(recs.last().map(|f| f.lsn), Some(RECORDS));
    recs[recs.len() - n..].to_vec()
}

/// Records wholly before byte `cut` of the last segment survive; the rest is torn.
fn survivors(tail: &[RawFrame], cut: u64) -> u64 {
    let first = tail[0].lsn - 1;
    tail.iter()
        .filter(|f| f.payload_end() <= cut)
        .map(|f| f.lsn)
        .max()
        .unwrap_or(first)
}

fn check_torn(template: &Path, cut: u64, tail: &[RawFrame], damage: &dyn Fn(&Path)) {
    let last = survivors(tail, cut);
    let at_boundary =
        tail.iter().any(|f| f.offset == cut) || cut >= tail[tail.len() - 1].payload_end();
    for mode in MODES {
        let dir = damaged_copy(template, damage);
        match (Wal::open(dir.path(), opts(mode)), mode) {
            (Err(WalError::TornTail { lsn, .. }), RecoveryMode::AbsoluteConsistency)
                if !at_boundary =>
            {
                assert_eq!(lsn.0, last + 1);
            }
            (Ok(wal), _) => {
                assert!(
                    at_boundary || mode != RecoveryMode::AbsoluteConsistency,
                    "cut {cut}: torn tail accepted"
                );
                assert_holds(&wal, last, &[]);
                let torn = wal
                    .recovery_report()
                    .damage
                    .iter()
                    .filter(|d| d.kind == DamageKind::TornTail)
                    .count();
                assert_eq!(
                    torn,
                    usize::from(!at_boundary),
                    "cut {cut} {mode:?}: {:?}",
                    wal.recovery_report()
                );
                // The log goes on after the repair, and the repair holds across a reopen.
                assert_eq!(
                    wal.append(&payload(0, last)).expect("append after repair"),
                    Lsn(last + 1)
                );
                drop(wal);
                let wal = Wal::open(dir.path(), opts(mode)).expect("reopen after repair");
                assert_holds(&wal, last + 1, &[]);
            }
            (other, _) => panic!("cut {cut} {mode:?}: unexpected {:?}", other.map(|_| ())),
        }
    }
}

#[test]
fn cut_last_segment_at_many_offsets() {
    let template = pristine();
    let tail = last_records(template.path(), 3);
    let file = tail[0].file.clone();
    let name = file.file_name().expect("name").to_owned();
    for cut in (tail[0].offset..tail[2].payload_end() + 8).step_by(37) {
        let damage = |d: &Path| {
            let f = OpenOptions::new()
                .write(true)
                .open(d.join(&name))
                .expect("open segment");
            f.set_len(cut).expect("cut");
        };
        check_torn(template.path(), cut, &tail, &damage);
    }
}

#[test]
fn zero_the_tail_of_the_last_segment_at_many_offsets() {
    let template = pristine();
    let tail = last_records(template.path(), 3);
    let name = tail[0].file.file_name().expect("name").to_owned();
    let end = tail[2].payload_end().div_ceil(8) * 8;
    for cut in (tail[0].offset..end).step_by(29) {
        let damage = |d: &Path| {
            let mut f = OpenOptions::new()
                .write(true)
                .open(d.join(&name))
                .expect("open segment");
            f.seek(SeekFrom::Start(cut)).expect("seek");
            f.write_all(&vec![0; (end - cut) as usize]).expect("zero");
        };
        check_torn(template.path(), cut, &tail, &damage);
    }
}

fn flip_bit(path: &Path, at: u64, bit: u8) {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open");
    let mut b = [0u8];
    f.seek(SeekFrom::Start(at)).expect("seek");
    f.read_exact(&mut b).expect("read");
    b[0] ^= 1 << bit;
    f.seek(SeekFrom::Start(at)).expect("seek");
    f.write_all(&b).expect("write");
}

/// Every record of the batch containing `lsn` (batches start at seq % 50 == 10, 3 records).
fn batch_of(lsn: u64) -> Vec<u64> {
    let s = lsn - 1;
    match s % 50 {
        10..=12 => {
            let start = s - (s % 50 - 10);
            (start + 1..=start + 3).collect()
        }
        _ => vec![lsn],
    }
}

#[test]
fn bit_flips_in_the_middle_are_corruption_and_each_mode_keeps_its_promise() {
    let template = pristine();
    let recs: Vec<RawFrame> = frames(template.path())
        .into_iter()
        .filter(|f| f.kind == 1)
        .collect();
    let mut x = 0x9E37_79B9u64;
    for round in 0..60 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let victim = &recs[(x % (recs.len() as u64 - 1)) as usize];
        let at = victim.offset + (x >> 20) % (32 + victim.len);
        let bit = ((x >> 40) % 8) as u8;
        let lost = batch_of(victim.lsn);
        for mode in MODES {
            let dir = damaged_copy(template.path(), |d| {
                flip_bit(&d.join(victim.file.file_name().unwrap()), at, bit)
            });
            let ctx = format!(
                "round {round}: LSN {} byte {at} bit {bit} {mode:?}",
                victim.lsn
            );
            match (mode, Wal::open(dir.path(), opts(mode))) {
                (
                    RecoveryMode::TolerateCorruptedTail | RecoveryMode::AbsoluteConsistency,
                    Err(e),
                ) => {
                    let WalError::Corruption {
                        lsn,
                        segment,
                        offset,
                        ..
                    } = e
                    else {
                        panic!("{ctx}: {e}")
                    };
                    assert_eq!(
                        (lsn.0, offset),
                        (lost[0], frames_offset(&recs, lost[0])),
                        "{ctx}"
                    );
                    assert_eq!(segment.file_name(), victim.file.file_name(), "{ctx}");
                }
                (RecoveryMode::PointInTime, Ok(wal)) => assert_holds(&wal, lost[0] - 1, &[]),
                (RecoveryMode::SkipCorrupted, Ok(wal)) => {
                    assert_eq!(
                        wal.recovery_report().records_skipped,
                        lost.len() as u64,
                        "{ctx}"
                    );
                    assert_holds(&wal, RECORDS, &lost);
                    let next = wal.append(b"after skip").expect("append after skip");
                    assert_eq!(next, Lsn(RECORDS + 1), "{ctx}");
                }
                (_, other) => panic!("{ctx}: unexpected {:?}", other.map(|_| ())),
            }
        }
    }
}

fn frames_offset(recs: &[RawFrame], lsn: u64) -> u64 {
    recs.iter()
        .find(|f| f.lsn == lsn)
        .map(|f| f.offset)
        .expect("frame")
}

#[test]
fn a_flip_in_the_very_last_record_is_a_torn_tail() {
    let template = pristine();
    let tail = last_records(template.path(), 1);
    let name = tail[0].file.file_name().expect("name").to_owned();
    for mode in MODES {
        let dir = damaged_copy(template.path(), |d| {
            flip_bit(&d.join(&name), tail[0].offset + 40, 3)
        });
        match (mode, Wal::open(dir.path(), opts(mode))) {
            (RecoveryMode::AbsoluteConsistency, Err(WalError::TornTail { lsn, .. })) => {
                assert_eq!(lsn, Lsn(RECORDS))
            }
            (RecoveryMode::AbsoluteConsistency, other) => {
                panic!("unexpected {:?}", other.map(|_| ()))
            }
            (_, Ok(wal)) => assert_holds(&wal, RECORDS - 1, &[]),
            (_, Err(e)) => panic!("{mode:?}: {e}"),
        }
    }
}

#[test]
fn a_damaged_segment_header_fails_or_is_set_aside() {
    let template = pristine();
    let segs = common::segment_files(template.path());
    assert!(segs.len() >= 3, "the pristine log spans several segments");
    let (base, path) = segs[1].clone();
    let name = path.file_name().expect("name").to_owned();
    for mode in MODES {
        let dir = damaged_copy(template.path(), |d| flip_bit(&d.join(&name), 33, 0));
        match (mode, Wal::open(dir.path(), opts(mode))) {
            (
                RecoveryMode::TolerateCorruptedTail | RecoveryMode::AbsoluteConsistency,
                Err(WalError::Corruption { .. }),
            ) => {}
            (RecoveryMode::PointInTime, Ok(wal)) => assert_holds(&wal, base - 1, &[]),
            (RecoveryMode::SkipCorrupted, Ok(wal)) => {
                let missing: Vec<u64> = (base..segs[2].0).collect();
                assert_holds(&wal, RECORDS, &missing);
            }
            (_, other) => panic!("{mode:?}: unexpected {:?}", other.map(|_| ())),
        }
    }
}

#[test]
fn foreign_files_and_empty_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency))
        .expect("empty dir opens as a new log");
    assert_eq!((wal.first_lsn(), wal.last_lsn()), (None, None));
    drop(wal);
    let other = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        other.path().join("seg-00000000000000000001.wal"),
        vec![0x41u8; 100_000],
    )
    .expect("write");
    match Wal::open(other.path(), opts(RecoveryMode::SkipCorrupted)) {
        Err(WalError::NotAWal { path, .. }) => {
            assert!(path.ends_with("seg-00000000000000000001.wal"))
        }
        other => panic!("a foreign file must be refused: {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_read_only_open_reports_the_repair_and_changes_nothing() {
    let template = pristine();
    let tail = last_records(template.path(), 2);
    let name = tail[1].file.file_name().expect("name").to_owned();
    let dir = damaged_copy(template.path(), |d| {
        flip_bit(&d.join(&name), tail[1].offset + 40, 1)
    });
    let snapshot = |d: &Path| -> Vec<(std::ffi::OsString, Vec<u8>)> {
        let mut files: Vec<_> = std::fs::read_dir(d)
            .expect("ls")
            .map(|e| {
                let p = e.expect("entry").path();
                (
                    p.file_name().expect("name").to_owned(),
                    std::fs::read(&p).expect("read"),
                )
            })
            .collect();
        files.sort();
        files
    };
    let before = snapshot(dir.path());
    let ro = Wal::open_read_only(dir.path(), opts(RecoveryMode::TolerateCorruptedTail))
        .expect("read-only open");
    let report = ro.recovery_report();
    assert_eq!(report.damage.len(), 1);
    assert_eq!(report.damage[0].kind, DamageKind::TornTail);
    assert!(!report.repaired, "a read-only open repairs nothing");
    assert_holds(&ro, RECORDS - 1, &[]);
    drop(ro);
    assert!(
        before == snapshot(dir.path()),
        "a read-only open must not change a byte"
    );
}
