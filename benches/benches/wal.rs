//! tidemark-wal against the machine's own limits, in one criterion run.
//!
//! Groups (ids are `group/function/parameter`; the append and limit benchmarks
//! run in alternating rounds, ids `<size>~r<round>`, see [`rounds`]):
//! - `machine_limits`: `pwrite_fdatasync` (durable floor, zero-filled file),
//!   `bufwriter` (buffered ceiling: appends to fresh files, deleted every
//!   64 MiB like a log with retention) and `bufwriter_overwrite` (rewrites one
//!   cached file: a page-cache copy bound) for each record size;
//! - `wal_append`: Buffered / PerWrite / Group with 1, 8 and 32 writers, for
//!   100 B, 1 KiB and 64 KiB records; one element = one append;
//! - `wal_replay`: a full CRC-verified scan of a 1 GiB log of 4 KiB records from
//!   the page cache, a plain buffered read of the same files, and reopen time;
//! - `wal_segment_init`: PerWrite 1 KiB appends into zero-filled vs reserve-only
//!   segments (why new segments are zero-filled through their mapping);
//! - `wal_rotation`: PerWrite and Group (8 writers) 256 B appends into 1 MiB
//!   segments, a rotation every ~3,600 appends (each syncs the old segment's
//!   seal too), beside `pwrite_fdatasync` of 256 B in the same rounds.
//!
//! Run: `cargo bench -p tidemark-benches --bench wal`, then
//! `python3 scripts/bench-report.py` to regenerate BENCHMARKS.md.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tidemark_benches::{PlainBufWriter, PwriteFdatasync, plain_read_dir, quick, round_id, rounds};
use tidemark_wal::{Durability, Lsn, SegmentInit, SegmentOptions, Wal, WalOptions};

const SIZES: [(usize, &str); 3] = [(100, "100B"), (1024, "1KiB"), (64 << 10, "64KiB")];

fn group_commit() -> Durability {
    Durability::Group {
        max_delay: Duration::from_micros(500),
    }
}

/// The configuration every append benchmark runs: default options (retention
/// by `truncate_before` after each sample; default `SegmentOptions` recycle up
/// to 2 segments).
fn steady_state(durability: Durability) -> WalOptions {
    WalOptions {
        durability,
        ..WalOptions::default()
    }
}

fn modes() -> Vec<(&'static str, Durability, usize)> {
    vec![
        ("buffered_1w", Durability::Buffered, 1),
        ("buffered_8w", Durability::Buffered, 8),
        ("perwrite_1w", Durability::PerWrite, 1),
        ("group_1w", group_commit(), 1),
        ("group_8w", group_commit(), 8),
        ("group_32w", group_commit(), 32),
    ]
}

/// The machine's limits for one record size; their files live across rounds.
struct Limits {
    floor: PwriteFdatasync,
    unwritten: PwriteFdatasync,
    ceiling: PlainBufWriter,
    cached: PlainBufWriter,
}

impl Limits {
    fn new(dir: &std::path::Path, label: &str) -> Limits {
        let at = |name: &str| dir.join(format!("{name}-{label}"));
        Limits {
            floor: PwriteFdatasync::new(&at("floor"), 256 << 20).expect("floor file"),
            unwritten: PwriteFdatasync::new_unwritten(&at("unwritten"), 64 << 20)
                .expect("unwritten file"),
            ceiling: PlainBufWriter::new(&at("ceiling"), 64 << 20).expect("ceiling file"),
            cached: PlainBufWriter::overwriting(&at("cached"), 64 << 20).expect("cached file"),
        }
    }

    fn bench(&mut self, c: &mut Criterion, record: &[u8], label: &str, round: usize) {
        let mut g = c.benchmark_group("machine_limits");
        g.throughput(Throughput::Elements(1));
        let floor = &mut self.floor;
        g.bench_function(round_id("pwrite_fdatasync", label, round), |b| {
            b.iter(|| floor.write(black_box(record)).expect("pwrite+fdatasync"))
        });
        let unwritten = &mut self.unwritten;
        g.bench_function(round_id("pwrite_fdatasync_unwritten", label, round), |b| {
            b.iter(|| {
                unwritten
                    .write(black_box(record))
                    .expect("pwrite+fdatasync")
            })
        });
        let ceiling = &mut self.ceiling;
        g.bench_function(round_id("bufwriter", label, round), |b| {
            b.iter(|| ceiling.write(black_box(record)).expect("write"))
        });
        let cached = &mut self.cached;
        g.bench_function(round_id("bufwriter_overwrite", label, round), |b| {
            b.iter(|| cached.write(black_box(record)).expect("write"))
        });
        g.finish();
    }
}

/// The append suite: per record size, the machine's limits and then every WAL
/// mode (each on a fresh log, brought to its steady state by criterion's
/// warm-up), once per round ([`rounds`]), so each #2 ratio pairs figures
/// measured minutes apart at most.
fn appends_and_limits(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut limits: Vec<Limits> = SIZES
        .iter()
        .map(|(_, label)| Limits::new(dir.path(), label))
        .collect();
    for round in 0..rounds() {
        for ((size, label), limits) in SIZES.iter().zip(&mut limits) {
            let record = vec![0x5Au8; *size];
            // Alternate which side of the ratios goes first.
            if round % 2 == 0 {
                limits.bench(c, &record, label, round);
                wal_append(c, &record, label, round);
            } else {
                wal_append(c, &record, label, round);
                limits.bench(c, &record, label, round);
            }
        }
    }
}

/// `iters` appends of `record` shared by `writers` threads; returns the elapsed time.
fn timed_appends(wal: &Arc<Wal>, record: &[u8], writers: usize, iters: u64) -> Duration {
    let per = iters.div_ceil(writers as u64);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..writers {
            s.spawn(|| {
                for _ in 0..per {
                    black_box(wal.append(record).expect("append"));
                }
            });
        }
    });
    let elapsed = start.elapsed();
    // Keep the disk footprint bounded: retire what this sample wrote (segments are recycled).
    if let Some(last) = wal.last_lsn() {
        wal.truncate_before(Lsn(last.0)).expect("truncate");
    }
    elapsed
}

fn wal_append(c: &mut Criterion, record: &[u8], label: &str, round: usize) {
    let mut g = c.benchmark_group("wal_append");
    g.throughput(Throughput::Elements(1));
    for (name, durability, writers) in modes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal = Arc::new(Wal::open(dir.path(), steady_state(durability)).expect("open"));
        g.bench_function(round_id(name, label, round), |b| {
            b.iter_custom(|iters| timed_appends(&wal, record, writers, iters))
        });
    }
    g.finish();
}

fn wal_replay(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let total: u64 = if quick() { 64 << 20 } else { 1 << 30 };
    let record = vec![0x3Cu8; 4096];
    {
        let wal = Wal::open(
            dir.path(),
            WalOptions {
                durability: Durability::Buffered,
                ..WalOptions::default()
            },
        )
        .expect("open");
        for _ in 0..total / record.len() as u64 {
            wal.append(&record).expect("append");
        }
        wal.sync().expect("sync");
    }
    let opts = WalOptions {
        durability: Durability::Buffered,
        ..WalOptions::default()
    };
    let mut g = c.benchmark_group("wal_replay");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(total));
    let label = if quick() { "64MiB" } else { "1GiB" };
    let wal = Wal::open_read_only(dir.path(), opts.clone()).expect("open read-only");
    g.bench_function(BenchmarkId::new("tidemark_iter", label), |b| {
        b.iter(|| {
            let mut bytes = 0u64;
            for rec in wal.iter_from(Lsn(1)) {
                bytes += black_box(rec.expect("record").data.len()) as u64;
            }
            assert_eq!(bytes, total);
        })
    });
    drop(wal);
    g.bench_function(BenchmarkId::new("plain_read", label), |b| {
        b.iter(|| black_box(plain_read_dir(dir.path()).expect("read")))
    });
    g.bench_function(BenchmarkId::new("reopen_verify", label), |b| {
        b.iter(|| {
            let wal = Wal::open(dir.path(), opts.clone()).expect("reopen");
            assert_eq!(wal.recovery_report().records, total / 4096);
        })
    });
    g.finish();
}

fn wal_segment_init(c: &mut Criterion) {
    let mut g = c.benchmark_group("wal_segment_init");
    g.throughput(Throughput::Elements(1));
    let record = vec![0x77u8; 1024];
    for (name, init) in [
        ("zero_fill", SegmentInit::ZeroFill),
        ("reserve_only", SegmentInit::Reserve),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = WalOptions {
            segment_size: 1 << 20,
            durability: Durability::PerWrite,
            ..WalOptions::default()
        };
        let seg = SegmentOptions { init, recycle: 0 };
        let wal = Arc::new(Wal::open_with(dir.path(), opts, seg).expect("open"));
        g.bench_function(BenchmarkId::new(name, "1KiB"), |b| {
            b.iter_custom(|iters| timed_appends(&wal, &record, 1, iters))
        });
    }
    g.finish();
}

/// Small segments, so rotation is part of the steady state (the case of issue
/// #16, whose fix syncs each rotated segment's seal): PerWrite and Group
/// appends of 256 B into 1 MiB segments, and the durable floor for 256 B, in
/// alternating order per round.
fn wal_rotation(c: &mut Criterion) {
    let record = vec![0x5Au8; 256];
    let dir = tempfile::tempdir().expect("tempdir");
    let mut floor =
        PwriteFdatasync::new(&dir.path().join("floor-256B"), 256 << 20).expect("floor file");
    let logs: Vec<(&str, Arc<Wal>, usize)> = [
        ("perwrite_1w", Durability::PerWrite, 1),
        ("group_8w", group_commit(), 8),
    ]
    .into_iter()
    .map(|(name, durability, writers)| {
        let opts = WalOptions {
            segment_size: 1 << 20,
            durability,
            ..WalOptions::default()
        };
        let wal = Wal::open(dir.path().join(name), opts).expect("open");
        (name, Arc::new(wal), writers)
    })
    .collect();
    for round in 0..rounds() {
        let mut g = c.benchmark_group("wal_rotation");
        g.throughput(Throughput::Elements(1));
        for i in tidemark_benches::round_order(logs.len() + 1, round) {
            let Some((name, wal, writers)) = logs.get(i) else {
                g.bench_function(round_id("pwrite_fdatasync", "256B", round), |b| {
                    b.iter(|| floor.write(black_box(&record)).expect("pwrite+fdatasync"))
                });
                continue;
            };
            g.bench_function(round_id(name, "256B_1MiB_segments", round), |b| {
                b.iter_custom(|iters| timed_appends(wal, &record, *writers, iters))
            });
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = tidemark_benches::criterion_config();
    targets = appends_and_limits, wal_replay, wal_segment_init, wal_rotation
}
criterion_main!(benches);
