//! Property test: random append / append_batch / sync / reopen / truncate_before
//! sequences against a simple in-memory model of the log.

use std::collections::BTreeMap;

use proptest::prelude::*;
use tidemark_wal::{Compression, Durability, Lsn, SegmentOptions, Wal, WalOptions};

#[derive(Clone, Debug)]
enum Op {
    Append(Vec<u8>),
    Batch(Vec<Vec<u8>>),
    Sync,
    Reopen,
    TruncateBefore(u8),
}

fn record() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        (1usize..3000, any::<u8>()).prop_map(|(n, b)| vec![b; n]), // compressible
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => record().prop_map(Op::Append),
        2 => proptest::collection::vec(record(), 1..6).prop_map(Op::Batch),
        1 => Just(Op::Sync),
        1 => Just(Op::Reopen),
        1 => any::<u8>().prop_map(Op::TruncateBefore),
    ]
}

fn check(wal: &Wal, model: &BTreeMap<u64, Vec<u8>>, floor: u64) -> Result<(), TestCaseError> {
    let last = model.keys().next_back().copied();
    prop_assert_eq!(wal.last_lsn().map(|l| l.0), last);
    let first = wal.first_lsn().map(|l| l.0);
    prop_assert_eq!(first.is_some(), last.is_some());
    if let Some(first) = first {
        prop_assert!(
            first >= floor,
            "first LSN went backwards: {} < {}",
            first,
            floor
        );
        let scanned: Vec<_> = wal.iter_from(Lsn(0)).map(|r| r.expect("scan")).collect();
        let want: Vec<_> = model.range(first..).collect();
        prop_assert_eq!(scanned.len(), want.len());
        for (rec, (lsn, data)) in scanned.iter().zip(want) {
            prop_assert_eq!(rec.lsn.0, *lsn);
            prop_assert_eq!(&rec.data[..], &data[..]);
            prop_assert_eq!(&wal.read(rec.lsn).expect("read").data[..], &data[..]);
        }
    }
    Ok(())
}

fn run(ops: Vec<Op>, compress: bool) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = WalOptions {
        segment_size: 16 << 10,
        durability: Durability::Buffered,
        compression: if compress {
            Compression::Zstd {
                level: 1,
                min_size: 64,
            }
        } else {
            Compression::None
        },
        ..WalOptions::default()
    };
    let seg = SegmentOptions {
        recycle: 1,
        ..SegmentOptions::default()
    };
    let mut wal = Wal::open_with(dir.path(), opts.clone(), seg).expect("open");
    let mut model = BTreeMap::new();
    let mut floor = 0;
    for op in ops {
        match op {
            Op::Append(data) => {
                let lsn = wal.append(&data).expect("append");
                prop_assert_eq!(lsn.0, model.len() as u64 + 1);
                model.insert(lsn.0, data);
            }
            Op::Batch(items) => {
                let range = wal.append_batch(&items).expect("append_batch");
                prop_assert_eq!(range.end().0 - range.start().0 + 1, items.len() as u64);
                for (i, data) in items.into_iter().enumerate() {
                    model.insert(range.start().0 + i as u64, data);
                }
            }
            Op::Sync => {
                let durable = wal.sync().expect("sync");
                prop_assert_eq!(durable.0, model.len() as u64);
            }
            Op::Reopen => {
                drop(wal);
                wal = Wal::open_with(dir.path(), opts.clone(), seg).expect("reopen");
                prop_assert!(
                    wal.recovery_report().damage.is_empty(),
                    "{:?}",
                    wal.recovery_report()
                );
            }
            Op::TruncateBefore(frac) => {
                let to = model.len() as u64 * u64::from(frac) / 255;
                wal.truncate_before(Lsn(to)).expect("truncate_before");
                if let Some(first) = wal.first_lsn() {
                    prop_assert!(first.0 <= to.max(1) || first.0 <= floor.max(1));
                    floor = first.0;
                }
            }
        }
        check(&wal, &model, floor)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_log_behaves_like_its_model(ops in proptest::collection::vec(op(), 1..60), compress in any::<bool>()) {
        run(ops, compress)?;
    }
}
