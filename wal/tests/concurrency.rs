//! Many writers at once: LSNs unique and dense, every record byte-identical.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use common::{check_payload, payload, small_opts};
use tidemark_wal::{Durability, Lsn, Wal, WalOptions};

fn hammer(opts: WalOptions, threads: u64, per_thread: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Arc::new(Wal::open(dir.path(), opts.clone()).expect("open"));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (wal, stop) = (wal.clone(), stop.clone());
        thread::spawn(move || {
            let mut scans = 0;
            while !stop.load(Ordering::Relaxed) {
                let mut prev = 0;
                for rec in wal.iter_from(Lsn(1)) {
                    let rec = rec.expect("concurrent scan reads only whole records");
                    assert_eq!(rec.lsn.0, prev + 1, "scan is dense");
                    assert!(
                        check_payload(&rec.data).is_some(),
                        "scan sees a torn record at {}",
                        rec.lsn
                    );
                    prev = rec.lsn.0;
                }
                scans += 1;
            }
            scans
        })
    };
    let writers: Vec<_> = (0..threads)
        .map(|t| {
            let wal = wal.clone();
            thread::spawn(move || {
                (0..per_thread)
                    .map(|s| (wal.append(&payload(t, s)).expect("append"), t, s))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<_> = writers
        .into_iter()
        .flat_map(|w| w.join().expect("writer"))
        .collect();
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().expect("reader") > 0);
    all.sort();
    let n = threads * per_thread;
    assert_eq!(all.len() as u64, n);
    for (i, (lsn, t, s)) in all.iter().enumerate() {
        assert_eq!(lsn.0, i as u64 + 1, "LSNs are unique and dense");
        assert_eq!(wal.read(*lsn).expect("read").data, payload(*t, *s));
    }
    assert_eq!(wal.last_lsn(), Some(Lsn(n)));
    drop(wal);
    let wal = Wal::open(dir.path(), opts).expect("reopen");
    let back: Vec<_> = wal.iter_from(Lsn(1)).map(|r| r.expect("replay")).collect();
    assert_eq!(back.len() as u64, n);
    for (rec, (lsn, t, s)) in back.iter().zip(&all) {
        assert_eq!((rec.lsn, &rec.data[..]), (*lsn, &payload(*t, *s)[..]));
    }
}

#[test]
fn eight_threads_group_commit_ten_thousand_appends_each() {
    let opts = WalOptions {
        segment_size: 4 << 20,
        ..small_opts(Durability::Group {
            max_delay: Duration::from_micros(200),
        })
    };
    hammer(opts, 8, 10_000);
}

#[test]
fn eight_threads_buffered_across_many_small_segments() {
    hammer(small_opts(Durability::Buffered), 8, 10_000);
}

/// Large segments: appenders cross many early-writeback steps (4 MiB), whose
/// pages are unmapped and handed to the kernel while other writers copy and a
/// reader scans through borrowed slices of the same mapping.
#[test]
fn eight_threads_buffered_in_large_segments_with_early_writeback() {
    let opts = WalOptions {
        segment_size: 32 << 20,
        ..small_opts(Durability::Buffered)
    };
    hammer(opts, 8, 5_000);
}

#[test]
fn interval_durability_syncs_in_the_background() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(
        dir.path(),
        small_opts(Durability::Interval(Duration::from_millis(5))),
    )
    .expect("open");
    let lsn = wal.append(b"tick").expect("append");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while wal.durable_lsn() < lsn {
        assert!(
            std::time::Instant::now() < deadline,
            "the interval syncer never synced"
        );
        thread::sleep(Duration::from_millis(1));
    }
}
