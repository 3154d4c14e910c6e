//! tidemark-wal side by side with okaywal 0.3, raft-engine 0.4 and the
//! machine's own limits (issue #6), in one process and one criterion run. Each
//! scenario is one criterion group. Scenarios (a) to (c) alternate between
//! implementations: each is measured once per round, in turn, for [`rounds`]
//! rounds (ids `group/implementation/<record size>~r<round>`), so the slow
//! drift of a shared disk falls on all of them alike; `scripts/bench-report.py`
//! folds the rounds into one row each and takes every ratio round by round.
//!
//! Groups (ids are `group/implementation/record size`):
//! - `compare_a_buffered`: 1,000,000 appends of 100 B without per-record sync,
//!   one sync at the end (one element = one record): tidemark `Buffered`, one
//!   record per `append`; raft-engine with 1000-entry batches
//!   (`raft_engine_batch1000`); `bufwriter`, the plain `BufWriter` ceiling of
//!   the same bytes to a fresh file, flushed and `fdatasync`ed at the end.
//!   okaywal sits out: its `commit` always syncs.
//! - `compare_b_durable_1w`: 1 KiB records durable per write, one writer:
//!   tidemark `PerWrite`, okaywal (commit per entry), raft-engine
//!   (`write(batch, true)`), and `floor_pwrite_fdatasync` over a preallocated
//!   zero-filled file.
//! - `compare_c_durable_8w`, `compare_c_durable_32w`: the same with 8 and 32
//!   writer threads (a persistent pool; `iter_custom`): tidemark `Group`,
//!   okaywal's group commit, raft-engine's write group, and
//!   `floor_group_commit` (leader/follower `pwrite` + one `fdatasync` for all
//!   waiting writers over the same kind of file).
//! - `compare_d_replay`: reading every record of a ~1 GiB log (4 KiB records)
//!   back from the page cache: tidemark `iter_from` (its log written one
//!   record per `append`), raft-engine `fetch_entries_to` over a log written
//!   in batches of 1000 entries (`raft_engine_batch1000`, its best case, used
//!   for the bars) and over one written one entry per batch
//!   (`raft_engine_batch1`, like tidemark's), okaywal recovery reading every
//!   chunk (CRC checked), and `plain_read`, a buffered read of tidemark's
//!   segment files.
//! - `compare_d_reopen`: reopening those logs with recovery: tidemark verifies
//!   every record's CRC32C; raft-engine verifies each batch's footer checksum
//!   (entry payloads are checked only when fetched, so its reopen cost follows
//!   the number of batches). okaywal sits out: its open verifies nothing
//!   unless the application reads every chunk, which is exactly its replay.
//!   `floor_crc_all_cores` bounds any reopen that checksums every byte: it
//!   reads tidemark's segment files from the page cache and runs CRC32C over
//!   them on all cores, parsing nothing. `floor_memory_read` bounds any reopen
//!   that reads every byte at all: the same number of bytes, already resident
//!   in process memory, summed on all cores (no faults, no copy, no checksum);
//!   `floor_crc_resident` checksums those resident bytes on all cores (no
//!   faults, no copy): the least any reopen that verifies every byte can cost.
//!
//! Before the durable scenarios each log writes two segments' worth of data in
//! large batches and retires it, so every implementation runs in its steady
//! state (recycled, already-written files). Retention between samples is
//! untimed: tidemark `truncate_before`, raft-engine `compact_to` +
//! `purge_expired_files`, okaywal its own checkpointing. Peer configurations:
//! `peers.rs`. Records are pseudo-random bytes (nothing compresses them).
//! Every implementation starts on a quiet disk ([`settle`]: `sync(2)` and a
//! pause), so none pays for the writeback, or the discards of deleted files on
//! this `-o discard` mount, that the one before it left behind.
//!
//! Run: `cargo bench -p tidemark-benches --bench compare`, then
//! `python3 scripts/bench-report.py`. `--test` (or `TIDEMARK_BENCH_QUICK=1`)
//! shrinks every data set to smoke-test size.

mod peers;
mod raft_entry;

use std::hint::black_box;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main, measurement::WallTime,
};
use tidemark_benches::floors::GroupCommitFloor;
use tidemark_benches::pool::{Task, TaskError, WriterPool};
use tidemark_benches::{
    PlainBufWriter, PwriteFdatasync, ResidentBytes, crc_dir_all_cores, plain_read_dir, quick,
    round_id, round_order, rounds, settle,
};
use tidemark_wal::{Durability, Lsn, SegmentOptions, Wal, WalOptions};

use peers::{OkayWal, RAFT_BULK_BATCH, RaftEngine, Replayed};

/// Data-set sizes: the in a full run, smoke-test sizes in quick mode.
struct Sizes {
    /// Records per scenario (a) iteration.
    buffered_records: u64,
    /// Segment / file size of the peers, and half the warm-up volume.
    segment: u64,
    /// Payload bytes of the replay log.
    replay_bytes: u64,
    /// Size of the floors' preallocated files.
    floor_file: u64,
}

fn sizes() -> Sizes {
    if quick() {
        Sizes {
            buffered_records: 10_000,
            segment: 4 << 20,
            replay_bytes: 16 << 20,
            floor_file: 16 << 20,
        }
    } else {
        Sizes {
            buffered_records: 1_000_000,
            segment: 64 << 20,
            replay_bytes: 1 << 30,
            floor_file: 256 << 20,
        }
    }
}

fn size_label(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{}GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{}MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{}KiB", b >> 10),
        b => format!("{b}B"),
    }
}

/// `len` pseudo-random bytes (xorshift64*), different per `seed`.
fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir (same file system as the other benches)")
}

fn tidemark_options(durability: Durability) -> WalOptions {
    WalOptions {
        durability,
        ..WalOptions::default()
    }
}

/// Retires everything `wal` holds (whole segments; they are recycled).
fn tidemark_retire(wal: &Wal) -> Result<(), TaskError> {
    if let Some(last) = wal.last_lsn() {
        wal.truncate_before(Lsn(last.0))?;
    }
    Ok(())
}

// ------------------------------------------------------ (a) buffered appends

/// Times `iters` runs of one scenario (a) implementation; untimed work (retention,
/// setup) is the implementation's own business.
type BufferedRun<'a> = Box<dyn FnMut(u64) -> Duration + 'a>;

fn compare_a_buffered(c: &mut Criterion) {
    let sz = sizes();
    let n = sz.buffered_records;
    let record = payload(100, 0xA);
    let mut g = c.benchmark_group("compare_a_buffered");
    g.throughput(Throughput::Elements(n))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat);
    if !quick() {
        g.measurement_time(Duration::from_secs(5));
    }

    let tidemark_dir = tempdir();
    // Each sample writes about 2.1 segments before retention: keep 4 for reuse (default 2),
    // as raft-engine's purge threshold is set so that its files are recycled.
    let recycle_all = SegmentOptions {
        recycle: 4,
        ..SegmentOptions::default()
    };
    let wal = Wal::open_with(
        tidemark_dir.path(),
        tidemark_options(Durability::Buffered),
        recycle_all,
    )
    .expect("open");
    let raft_dir = tempdir();
    let engine = RaftEngine::open(
        RaftEngine::config(raft_dir.path(), sz.segment, 2 * sz.segment),
        1,
    )
    .expect("open raft-engine");
    let ceiling_dir = tempdir();
    let ceiling = ceiling_dir.path().join("ceiling");
    let mut runs: Vec<(&str, BufferedRun<'_>)> = vec![
        (
            "tidemark",
            Box::new(|iters| tidemark_buffered(&wal, &record, n, iters)),
        ),
        (
            "raft_engine_batch1000",
            Box::new(|iters| raft_buffered(&engine, &record, n, iters)),
        ),
        (
            "bufwriter",
            Box::new(|iters| bufwriter_buffered(&ceiling, &record, n, iters)),
        ),
    ];
    for round in 0..rounds() {
        for i in round_order(runs.len(), round) {
            let (name, run) = &mut runs[i];
            settle();
            g.bench_function(round_id(name, "100B", round), |b| b.iter_custom(&mut *run));
        }
    }
    g.finish();
}

fn tidemark_buffered(wal: &Wal, record: &[u8], n: u64, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        for _ in 0..n {
            black_box(wal.append(record).expect("append"));
        }
        wal.sync().expect("sync");
        total += start.elapsed();
        tidemark_retire(wal).expect("truncate");
    }
    total
}

fn raft_buffered(engine: &RaftEngine, record: &[u8], n: u64, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        engine
            .append_copies(record, n, RAFT_BULK_BATCH)
            .expect("append");
        engine.sync().expect("sync");
        total += start.elapsed();
        engine.retire_all().expect("retire");
    }
    total
}

fn bufwriter_buffered(path: &Path, record: &[u8], n: u64, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let mut out = PlainBufWriter::new(path, u64::MAX).expect("create");
        let start = Instant::now();
        for _ in 0..n {
            out.write(black_box(record)).expect("write");
        }
        out.sync().expect("sync");
        total += start.elapsed();
        drop(out);
        std::fs::remove_file(path).expect("remove");
    }
    total
}

// ------------------------------------------------------ (b), (c) durable appends

/// One implementation in a durable-append scenario.
trait Contender: Send + Sync {
    /// One durable append of `record` by writer `writer`.
    fn append(&self, writer: usize, record: &[u8]) -> Result<(), TaskError>;
    /// Writes about `bytes` in large batches, durably, then retires it.
    fn warm_up(&self, record: &[u8], bytes: u64) -> Result<(), TaskError>;
    /// Untimed retention after each sample.
    fn retire(&self) -> Result<(), TaskError>;
}

struct Tidemark(Wal);

impl Contender for Tidemark {
    fn append(&self, _writer: usize, record: &[u8]) -> Result<(), TaskError> {
        self.0.append(record)?;
        Ok(())
    }

    fn warm_up(&self, record: &[u8], bytes: u64) -> Result<(), TaskError> {
        let per_batch = (1 << 20) / record.len();
        for _ in 0..bytes.div_ceil(1 << 20) {
            self.0
                .append_batch(std::iter::repeat_n(record, per_batch))?;
        }
        self.0.sync()?;
        self.retire()
    }

    fn retire(&self) -> Result<(), TaskError> {
        tidemark_retire(&self.0)
    }
}

impl Contender for OkayWal {
    fn append(&self, _writer: usize, record: &[u8]) -> Result<(), TaskError> {
        Ok(OkayWal::append(self, record)?)
    }

    fn warm_up(&self, record: &[u8], bytes: u64) -> Result<(), TaskError> {
        let per_entry = (1 << 20) / record.len();
        for _ in 0..bytes.div_ceil(1 << 20) {
            self.append_entry(std::iter::repeat_n(record, per_entry))?;
        }
        Ok(())
    }

    fn retire(&self) -> Result<(), TaskError> {
        Ok(())
    }
}

impl Contender for RaftEngine {
    fn append(&self, writer: usize, record: &[u8]) -> Result<(), TaskError> {
        Ok(RaftEngine::append(self, writer, &[record], true)?)
    }

    fn warm_up(&self, record: &[u8], bytes: u64) -> Result<(), TaskError> {
        let batch: Vec<&[u8]> = vec![record; RAFT_BULK_BATCH];
        for _ in 0..bytes.div_ceil((record.len() * RAFT_BULK_BATCH) as u64) {
            RaftEngine::append(self, 0, &batch, false)?;
        }
        self.sync()?;
        self.retire()
    }

    fn retire(&self) -> Result<(), TaskError> {
        Ok(self.retire_all()?)
    }
}

/// The single-writer floor: `pwrite` + `fdatasync` (the lock is uncontended).
struct SingleFloor(Mutex<PwriteFdatasync>);

impl Contender for SingleFloor {
    fn append(&self, _writer: usize, record: &[u8]) -> Result<(), TaskError> {
        let mut floor = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(floor.write(record)?)
    }

    fn warm_up(&self, _record: &[u8], _bytes: u64) -> Result<(), TaskError> {
        Ok(()) // its file was zero-filled and synced when it was made
    }

    fn retire(&self) -> Result<(), TaskError> {
        Ok(())
    }
}

impl Contender for GroupCommitFloor {
    fn append(&self, _writer: usize, record: &[u8]) -> Result<(), TaskError> {
        Ok(self.write(record)?)
    }

    fn warm_up(&self, _record: &[u8], _bytes: u64) -> Result<(), TaskError> {
        Ok(())
    }

    fn retire(&self) -> Result<(), TaskError> {
        Ok(())
    }
}

/// Measures one round of `contender`, the pool's writers sharing each sample's appends.
fn bench_round(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    pool: &WriterPool,
    contender: &Arc<dyn Contender>,
    record: &Arc<[u8]>,
) {
    let task: Task = {
        let (contender, record) = (Arc::clone(contender), Arc::clone(record));
        Arc::new(move |writer| contender.append(writer, &record))
    };
    settle();
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let elapsed = pool.run(iters, &task).expect("durable appends");
            contender.retire().expect("retire");
            elapsed
        })
    });
}

fn durable_scenario(c: &mut Criterion, group: &str, writers: usize) {
    let sz = sizes();
    let record: Arc<[u8]> = payload(1024, writers as u64).into();
    let pool = WriterPool::new(writers).expect("writer pool");
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(1));
    if !quick() {
        g.measurement_time(Duration::from_secs(2));
    }

    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempdir()).collect();
    let durability = if writers == 1 {
        Durability::PerWrite
    } else {
        Durability::Group {
            max_delay: Duration::from_micros(500),
        }
    };
    let wal = Wal::open(dirs[0].path(), tidemark_options(durability)).expect("open tidemark");
    let segment = u32::try_from(sz.segment).expect("segment size fits okaywal's u32");
    let okaywal = Arc::new(OkayWal::open_durable(dirs[1].path(), segment).expect("open okaywal"));
    let cfg = RaftEngine::config(dirs[2].path(), sz.segment, 2 * sz.segment);
    let engine = RaftEngine::open(cfg, writers).expect("open raft-engine");
    let path = dirs[3].path().join("floor");
    let (floor_name, floor): (&str, Arc<dyn Contender>) = if writers == 1 {
        let floor = PwriteFdatasync::new(&path, sz.floor_file).expect("floor file");
        let floor = SingleFloor(Mutex::new(floor));
        ("floor_pwrite_fdatasync", Arc::new(floor))
    } else {
        let floor =
            GroupCommitFloor::new(&path, sz.floor_file, record.len() as u64).expect("floor file");
        ("floor_group_commit", Arc::new(floor))
    };
    let contenders: Vec<(&str, Arc<dyn Contender>)> = vec![
        ("tidemark", Arc::new(Tidemark(wal))),
        ("okaywal", okaywal.clone()),
        ("raft_engine", Arc::new(engine)),
        (floor_name, floor),
    ];
    for (_, contender) in &contenders {
        settle();
        contender.warm_up(&record, 2 * sz.segment).expect("warm-up");
    }
    let size = size_label(record.len() as u64);
    for round in 0..rounds() {
        for i in round_order(contenders.len(), round) {
            let (name, contender) = &contenders[i];
            bench_round(
                &mut g,
                round_id(name, &size, round),
                &pool,
                contender,
                &record,
            );
        }
    }
    g.finish();
    drop(contenders);
    if let Ok(okaywal) = Arc::try_unwrap(okaywal) {
        okaywal.shutdown().expect("okaywal shutdown");
    }
}

fn compare_b_durable_1w(c: &mut Criterion) {
    durable_scenario(c, "compare_b_durable_1w", 1);
}

fn compare_c_durable_8w(c: &mut Criterion) {
    durable_scenario(c, "compare_c_durable_8w", 8);
}

fn compare_c_durable_32w(c: &mut Criterion) {
    durable_scenario(c, "compare_c_durable_32w", 32);
}

// ------------------------------------------------------ (d) replay and reopen

const REPLAY_RECORD: usize = 4096;

/// The replay logs, built once per run (setup, untimed). raft-engine's twice:
/// in batches of 1000 entries and of one.
struct ReplayLogs {
    records: u64,
    tidemark: tempfile::TempDir,
    raft_batched: tempfile::TempDir,
    raft_single: tempfile::TempDir,
    okaywal: tempfile::TempDir,
}

/// A raft-engine log of `records` copies of `record`, `per_batch` entries per `LogBatch`.
fn build_raft_log(dir: &Path, record: &[u8], records: u64, per_batch: usize) {
    let engine = RaftEngine::open(raft_replay_config(dir), 1).expect("open raft");
    engine
        .append_copies(record, records, per_batch)
        .expect("raft append");
    engine.sync().expect("raft sync");
}

fn build_replay_logs(bytes: u64) -> ReplayLogs {
    let records = bytes / REPLAY_RECORD as u64;
    let record = payload(REPLAY_RECORD, 0xD);
    let logs = ReplayLogs {
        records,
        tidemark: tempdir(),
        raft_batched: tempdir(),
        raft_single: tempdir(),
        okaywal: tempdir(),
    };
    let wal = Wal::open(logs.tidemark.path(), tidemark_options(Durability::Buffered))
        .expect("open tidemark");
    for _ in 0..records {
        wal.append(&record).expect("append");
    }
    wal.sync().expect("sync");
    drop(wal);

    build_raft_log(logs.raft_batched.path(), &record, records, RAFT_BULK_BATCH);
    build_raft_log(logs.raft_single.path(), &record, records, 1);

    let okaywal = OkayWal::open_for_replay(logs.okaywal.path()).expect("open okaywal");
    let mut left = records;
    while left > 0 {
        let k = left.min(RAFT_BULK_BATCH as u64) as usize;
        okaywal
            .append_entry(std::iter::repeat_n(record.as_slice(), k))
            .expect("okaywal append");
        left -= k as u64;
    }
    okaywal.shutdown().expect("okaywal shutdown");
    logs
}

fn raft_replay_config(dir: &Path) -> raft_engine::Config {
    RaftEngine::config(dir, sizes().segment, 0)
}

fn compare_d(c: &mut Criterion) {
    let sz = sizes();
    let logs = build_replay_logs(sz.replay_bytes);
    let payload_bytes = logs.records * REPLAY_RECORD as u64;
    let expect = Replayed {
        records: logs.records,
        bytes: payload_bytes,
    };
    let label = size_label(sz.replay_bytes);
    let opts = tidemark_options(Durability::Buffered);

    let mut g = c.benchmark_group("compare_d_replay");
    g.throughput(Throughput::Bytes(payload_bytes))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat);
    let wal = Wal::open_read_only(logs.tidemark.path(), opts.clone()).expect("open read-only");
    g.bench_function(BenchmarkId::new("tidemark", &label), |b| {
        b.iter(|| {
            let mut seen = Replayed::default();
            for rec in wal.iter_from(Lsn(1)) {
                seen.records += 1;
                seen.bytes += black_box(rec.expect("record").data.len()) as u64;
            }
            assert_eq!(seen, expect);
        })
    });
    drop(wal);
    for (name, dir) in raft_logs(&logs) {
        let engine = RaftEngine::open(raft_replay_config(dir), 1).expect("open raft");
        g.bench_function(BenchmarkId::new(name, &label), |b| {
            b.iter(|| assert_eq!(engine.replay().expect("raft replay"), expect))
        });
    }
    g.bench_function(BenchmarkId::new("okaywal", &label), |b| {
        b.iter(|| {
            assert_eq!(
                OkayWal::replay(logs.okaywal.path()).expect("replay"),
                expect
            )
        })
    });
    g.bench_function(BenchmarkId::new("plain_read", &label), |b| {
        b.iter(|| black_box(plain_read_dir(logs.tidemark.path()).expect("read")))
    });
    g.finish();

    let mut g = c.benchmark_group("compare_d_reopen");
    g.throughput(Throughput::Bytes(payload_bytes))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat);
    g.bench_function(BenchmarkId::new("tidemark", &label), |b| {
        b.iter(|| {
            let wal = Wal::open(logs.tidemark.path(), opts.clone()).expect("reopen");
            assert_eq!(wal.recovery_report().records, logs.records);
        })
    });
    g.bench_function(BenchmarkId::new("floor_crc_all_cores", &label), |b| {
        b.iter(|| black_box(crc_dir_all_cores(logs.tidemark.path()).expect("crc")))
    });
    let resident = ResidentBytes::new(sz.replay_bytes);
    g.bench_function(BenchmarkId::new("floor_memory_read", &label), |b| {
        b.iter(|| black_box(resident.read_all_cores()))
    });
    g.bench_function(BenchmarkId::new("floor_crc_resident", &label), |b| {
        b.iter(|| black_box(resident.crc_all_cores()))
    });
    drop(resident);
    for (name, dir) in raft_logs(&logs) {
        g.bench_function(BenchmarkId::new(name, &label), |b| {
            b.iter(|| {
                let engine = RaftEngine::open(raft_replay_config(dir), 1).expect("reopen raft");
                assert_eq!(engine.entries(), logs.records);
            })
        });
    }
    g.finish();
}

fn raft_logs(logs: &ReplayLogs) -> [(&'static str, &Path); 2] {
    [
        ("raft_engine_batch1000", logs.raft_batched.path()),
        ("raft_engine_batch1", logs.raft_single.path()),
    ]
}

criterion_group! {
    name = benches;
    config = tidemark_benches::criterion_config();
    targets = compare_a_buffered, compare_b_durable_1w, compare_c_durable_8w,
        compare_c_durable_32w, compare_d
}
criterion_main!(benches);
