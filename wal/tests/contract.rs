//! The public API exactly as the WAL issue states it: if this stops compiling,
//! the contract broke.

use tidemark_wal::{Compression, Durability, Lsn, Record, RecoveryMode, Wal, WalError, WalOptions};

#[test]
fn the_api_block_of_the_issue_compiles_and_runs() -> Result<(), WalError> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let wal = Wal::open(dir, WalOptions::default())?;
    let lsn: Lsn = wal.append(b"payload")?;
    let range: std::ops::RangeInclusive<Lsn> = wal.append_batch([b"a".as_slice(), b"b"])?;
    let durable: Lsn = wal.sync()?;
    let rec: Record = wal.read(lsn)?;
    assert_eq!((rec.lsn, &rec.data[..]), (Lsn(1), &b"payload"[..]));
    let mut seen = 0;
    for rec in wal.iter_from(lsn) {
        let rec = rec?;
        seen += rec.data.len();
    }
    assert_eq!(seen, 9);
    assert_eq!((range, durable), (Lsn(2)..=Lsn(3), Lsn(3)));
    wal.truncate_before(lsn)?;
    wal.clean_older_than(std::time::SystemTime::now())?;
    assert_eq!(
        (wal.first_lsn(), wal.last_lsn()),
        (Some(Lsn(1)), Some(Lsn(3)))
    );
    let report = wal.recovery_report();
    assert_eq!(
        (
            report.segments,
            report.records,
            report.bytes_truncated,
            report.records_skipped
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(format!("{}", Lsn(7)), "7");
    Ok(())
}

#[test]
fn options_are_exactly_the_four_contract_fields() {
    let opts = WalOptions {
        segment_size: 1 << 20,
        durability: Durability::Interval(std::time::Duration::from_millis(10)),
        compression: Compression::Zstd {
            level: 3,
            min_size: 512,
        },
        recovery: RecoveryMode::SkipCorrupted,
    };
    for d in [
        Durability::Buffered,
        Durability::PerWrite,
        Durability::Group {
            max_delay: std::time::Duration::ZERO,
        },
    ] {
        let _ = WalOptions {
            durability: d,
            ..opts.clone()
        };
    }
    let _ = [
        RecoveryMode::TolerateCorruptedTail,
        RecoveryMode::AbsoluteConsistency,
        RecoveryMode::PointInTime,
    ];
    let _ = Compression::None;
    let d = WalOptions::default();
    assert_eq!(d.segment_size, 64 << 20);
    assert!(matches!(d.durability, Durability::Group { .. }));
    assert_eq!(
        (d.compression, d.recovery),
        (Compression::None, RecoveryMode::TolerateCorruptedTail)
    );
}
