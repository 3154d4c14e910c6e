//! Checkpoint write and read cost against a plain object_store put/get of the same bytes, on the
//! same store instance, in the same run.
//!
//! * `checkpoint_write/<backend>/tidemark/<size>`: `begin()`, `put_part` of one part, `commit()`
//!   (part upload, CRC32C, manifest put-if-absent).
//! * `checkpoint_write/<backend>/plain_put/<size>`: one `put` of the same bytes.
//! * `checkpoint_read/<backend>/tidemark/<size>`: `latest()` then `read_part` (listing, manifest
//!   read and verification, part existence check, CRC32C of the part).
//! * `checkpoint_read/<backend>/tidemark_by_epoch/<size>`: `checkpoint(epoch)` then `read_part`:
//!   the same read of a checkpoint whose epoch the reader already knows, as the plain get knows
//!   its key (no listing: manifest read and verification, CRC32C of the part).
//! * `checkpoint_read/<backend>/plain_get/<size>`: one `get` of the same bytes.
//!
//! The variants of one size on one backend alternate in rounds (order rotated each round; ids
//! `<size>~r<round>`), and `scripts/bench-report.py` pairs their ratios round by round. A full run
//! has nine short rounds, three for S3 writes of 1 GiB ([`alternation_rounds`]).
//!
//! Backends: `local` (LocalFileSystem, fsync on, for both sides), `memory` (InMemory) and `s3` (a
//! SeaweedFS server on 127.0.0.1 started by tidemark-test-servers). 1 GiB runs on local and
//! memory; on S3 only when `TIDEMARK_BENCH_S3_1GIB=1` (each iteration uploads 1 GiB through one
//! loopback server on 2 cores, which alone would take several minutes). Run those cases on their own
//! (`TIDEMARK_BENCH_S3_1GIB=1 cargo bench -p tidemark-benches --bench checkpoint -- 's3/.*/1GiB'`):
//! SeaweedFS reclaims deleted objects' space only when its volumes are vacuumed, so a whole run
//! writes some 70 GiB into it and, on the development machine's 62 GB of free disk, its uploads
//! start failing with `500 InternalError`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, path::Path};
use tidemark_benches::{quick, round_id, round_order, rounds};
use tidemark_checkpoint::{CheckpointOptions, CheckpointStore};
use tokio::runtime::Runtime;

const MIB: usize = 1024 * 1024;

struct Size {
    label: &'static str,
    bytes: usize,
}

const SIZES: [Size; 3] = [
    Size {
        label: "1MiB",
        bytes: MIB,
    },
    Size {
        label: "64MiB",
        bytes: 64 * MIB,
    },
    Size {
        label: "1GiB",
        bytes: 1024 * MIB,
    },
];

fn noise(len: usize) -> Bytes {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

struct Backend {
    name: &'static str,
    store: CheckpointStore,
    raw: Arc<dyn ObjectStore>,
    /// Where plain puts go (outside the checkpoint root).
    plain: Path,
    _dir: Option<tempfile::TempDir>,
}

fn backends(rt: &Runtime) -> Vec<Backend> {
    let open = |url: &str| {
        rt.block_on(CheckpointStore::open_with(
            url,
            CheckpointOptions::default(),
        ))
        .expect("open")
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let local_url = format!("file://{}", dir.path().display());
    let local = open(&format!("{local_url}/ckpt"));
    let local_raw = rt
        .block_on(CheckpointStore::open(&local_url))
        .expect("open")
        .object_store()
        .clone();
    let memory = open("memory://bench/ckpt");
    let server = tidemark_test_servers::seaweedfs();
    let s3 = open(&server.url(&tidemark_test_servers::unique_name("bench-ckpt")));
    vec![
        Backend {
            name: "local",
            raw: local_raw,
            store: local,
            plain: Path::from("plain"),
            _dir: Some(dir),
        },
        Backend {
            name: "memory",
            raw: memory.object_store().clone(),
            store: memory,
            plain: Path::from("plain"),
            _dir: None,
        },
        Backend {
            name: "s3",
            raw: s3.object_store().clone(),
            store: s3,
            plain: Path::from(tidemark_test_servers::unique_name("bench-plain")),
            _dir: None,
        },
    ]
}

/// `cargo bench` passes `--bench`; `cargo test --all-targets` runs each benchmark once without
/// it, as a smoke test, where only the smallest size is worth the time.
fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn include(backend: &Backend, size: &Size) -> bool {
    if !bench_mode() {
        return size.bytes == MIB;
    }
    size.bytes < 1024 * MIB
        || backend.name != "s3"
        || std::env::var("TIDEMARK_BENCH_S3_1GIB").is_ok_and(|v| v == "1")
}

fn configure(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    size: &Size,
) {
    group.throughput(Throughput::Bytes(size.bytes as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    // The measurement time is shared by the rounds (criterion still takes its 10 samples).
    let total_ms: u64 = if size.bytes >= 1024 * MIB {
        10_000
    } else {
        3_000
    };
    group.measurement_time(Duration::from_millis(
        (total_ms / FULL_ROUNDS as u64).max(1_000),
    ));
    group.sampling_mode(SamplingMode::Flat);
}

/// Rounds of the alternation: nine in a full run, except for S3 writes of 1 GiB (three; one
/// in quick mode).
///
/// A server's speed drifts by some ±15% over seconds (SeaweedFS serving the same 1 MiB object:
/// 1.8-2.5 ms per get from one second to the next; the same 1 GiB object: 1.3-3.6 s), so a
/// ratio of two measurements taken seconds apart carries that drift. Nine short rounds put the
/// paired measurements closer together and take the median of nine ratios instead of three. An
/// S3 write of 1 GiB takes seconds and leaves 1 GiB behind in the server (see the module docs):
/// nine rounds of them would take the better part of an hour and more disk than the machine has.
fn alternation_rounds(backend: &Backend, size: &Size, writes: bool) -> usize {
    let costly = writes && backend.name == "s3" && size.bytes >= 1024 * MIB;
    if quick() || costly {
        rounds()
    } else {
        FULL_ROUNDS
    }
}

/// Rounds of a full run's alternation (see [`alternation_rounds`]).
const FULL_ROUNDS: usize = 9;

type Bench<'a> = criterion::Bencher<'a, criterion::measurement::WallTime>;

/// Benchmarks `variants` of one size on one backend in `rounds` alternating rounds (order
/// rotated each round), ids
/// `<backend>/<variant>/<size>~r<round>`; `run(i, bencher)` measures variant `i`.
fn alternate(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    backend: &Backend,
    size: &Size,
    rounds: usize,
    variants: &[&str],
    mut run: impl FnMut(usize, &mut Bench<'_>),
) {
    for round in 0..rounds {
        for i in round_order(variants.len(), round) {
            let name = format!("{}/{}", backend.name, variants[i]);
            group.bench_function(round_id(&name, size.label, round), |b| run(i, b));
        }
    }
}

fn bench_write(c: &mut Criterion, rt: &Runtime, backends: &[Backend]) {
    let mut group = c.benchmark_group("checkpoint_write");
    for size in &SIZES {
        if !backends.iter().any(|b| include(b, size)) {
            continue;
        }
        configure(&mut group, size);
        let data = noise(size.bytes);
        for backend in backends.iter().filter(|b| include(b, size)) {
            alternate(
                &mut group,
                backend,
                size,
                alternation_rounds(backend, size, true),
                &["tidemark", "plain_put"],
                |i, b| match i {
                    0 => b.iter_custom(|iters| tidemark_writes(rt, backend, &data, iters)),
                    _ => b.iter_custom(|iters| plain_puts(rt, backend, &data, iters)),
                },
            );
        }
    }
    group.finish();
}

/// `iters` checkpoints of one part; retention after each is untimed.
fn tidemark_writes(rt: &Runtime, backend: &Backend, data: &Bytes, iters: u64) -> Duration {
    let mut spent = Duration::ZERO;
    for _ in 0..iters {
        let started = Instant::now();
        rt.block_on(async {
            let mut w = backend.store.begin().await.expect("begin");
            w.put_part("state", data.clone()).await.expect("put_part");
            w.commit().await.expect("commit");
        });
        spent += started.elapsed();
        rt.block_on(backend.store.retain_last(1))
            .expect("retention");
    }
    spent
}

/// `iters` plain puts of the same bytes; the delete after each is untimed.
fn plain_puts(rt: &Runtime, backend: &Backend, data: &Bytes, iters: u64) -> Duration {
    let mut spent = Duration::ZERO;
    for _ in 0..iters {
        let started = Instant::now();
        rt.block_on(
            backend
                .raw
                .put(&backend.plain, PutPayload::from(data.clone())),
        )
        .expect("put");
        spent += started.elapsed();
        rt.block_on(backend.raw.delete(&backend.plain))
            .expect("delete");
    }
    spent
}

fn bench_read(c: &mut Criterion, rt: &Runtime, backends: &[Backend]) {
    let mut group = c.benchmark_group("checkpoint_read");
    for size in &SIZES {
        if !backends.iter().any(|b| include(b, size)) {
            continue;
        }
        configure(&mut group, size);
        let data = noise(size.bytes);
        for backend in backends.iter().filter(|b| include(b, size)) {
            let epoch = rt.block_on(async {
                let mut w = backend.store.begin().await.expect("begin");
                w.put_part("state", data.clone()).await.expect("put_part");
                let epoch = w.commit().await.expect("commit");
                backend.store.retain_last(1).await.expect("retention");
                backend
                    .raw
                    .put(&backend.plain, PutPayload::from(data.clone()))
                    .await
                    .expect("put");
                epoch
            });
            let variants = ["tidemark", "tidemark_by_epoch", "plain_get"];
            let rounds = alternation_rounds(backend, size, false);
            alternate(&mut group, backend, size, rounds, &variants, |i, b| {
                b.iter(|| {
                    let len = rt.block_on(async {
                        match i {
                            0 => read_latest(backend).await,
                            1 => read_epoch(backend, epoch).await,
                            _ => plain_get(backend).await,
                        }
                    });
                    assert_eq!(len, size.bytes);
                })
            });
            rt.block_on(backend.raw.delete(&backend.plain))
                .expect("delete");
        }
    }
    group.finish();
}

/// `latest()` then `read_part`; returns the bytes read.
async fn read_latest(backend: &Backend) -> usize {
    let cp = backend
        .store
        .latest()
        .await
        .expect("latest")
        .expect("a checkpoint");
    cp.read_part("state").await.expect("read_part").len()
}

/// `checkpoint(epoch)` then `read_part`; returns the bytes read.
async fn read_epoch(backend: &Backend, epoch: tidemark_checkpoint::Epoch) -> usize {
    let cp = backend
        .store
        .checkpoint(epoch)
        .await
        .expect("checkpoint")
        .expect("the checkpoint");
    cp.read_part("state").await.expect("read_part").len()
}

/// One plain `get` of the same bytes; returns the bytes read.
async fn plain_get(backend: &Backend) -> usize {
    let result = backend.raw.get(&backend.plain).await.expect("get");
    result.bytes().await.expect("bytes").len()
}

fn checkpoint(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let backends = backends(&rt);
    bench_write(c, &rt, &backends);
    bench_read(c, &rt, &backends);
}

criterion_group!(benches, checkpoint);
criterion_main!(benches);
