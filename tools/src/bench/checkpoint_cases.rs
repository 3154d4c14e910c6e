//! Checkpoint cases: commit a one-part checkpoint, and read the latest one back,
//! through tidemark-checkpoint's blocking API, on local disk and in memory.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tidemark_checkpoint::blocking::{CheckpointOptions, CheckpointStore};

use super::measure::CaseResult;
use crate::outcome::ToolError;
use tidemark_checkpoint::redact::url as redact;

/// Incompressible bytes, so no backend gains from the content.
fn noise(len: usize) -> Bytes {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

fn size_label(size: usize) -> String {
    if size >= 1 << 20 {
        format!("{}MiB", size >> 20)
    } else {
        format!("{}KiB", size >> 10)
    }
}

/// For `duration` (at least once each): `begin` + `put_part` of `size` bytes +
/// `commit`, then `latest` + `read_part` (which verifies size and CRC32C).
/// Only the last two checkpoints are kept between commits (retention is not timed).
pub fn write_and_read(
    url: &str,
    backend: &str,
    size: usize,
    duration: Duration,
    request_timeout: Duration,
) -> Result<(CaseResult, CaseResult), ToolError> {
    let remote = |e: tidemark_checkpoint::CheckpointError| remote_error(backend, url, &e);
    let store = open(url, backend, request_timeout)?;
    bench_store(&store, url, size, duration)
        .map_err(|e| match e {
            ToolError::Checkpoint(e) => remote(e),
            other => other,
        })
        .map(|(w, r)| (w.named(backend, size), r.named(backend, size)))
}

/// Opens the store at `url` and lists it once, so a wrong URL or a dead
/// endpoint fails here, in one line, before any benchmark runs.
pub fn open(
    url: &str,
    backend: &str,
    request_timeout: Duration,
) -> Result<CheckpointStore, ToolError> {
    let options = CheckpointOptions::default().with_request_timeout(request_timeout);
    let store =
        CheckpointStore::open_with(url, options).map_err(|e| remote_error(backend, url, &e))?;
    store.list().map_err(|e| remote_error(backend, url, &e))?;
    Ok(store)
}

fn remote_error(backend: &str, url: &str, e: &tidemark_checkpoint::CheckpointError) -> ToolError {
    let shown = redact(url);
    let msg = e.to_string().replace(url, &shown);
    ToolError::Usage(format!("checkpoint backend {backend} at {shown}: {msg}"))
}

fn bench_store(
    store: &CheckpointStore,
    url: &str,
    size: usize,
    duration: Duration,
) -> Result<(Timings, Timings), ToolError> {
    let data = noise(size);
    let mut write_lat = Vec::new();
    let start = Instant::now();
    let mut busy = Duration::ZERO;
    while write_lat.is_empty() || start.elapsed() < duration {
        let t = Instant::now();
        let mut w = store.begin()?;
        w.put_part("state", data.clone())?;
        w.commit()?;
        let took = t.elapsed();
        busy += took;
        write_lat.push(took.as_nanos() as u64);
        store.retain_last(2)?;
    }
    let write = Timings("checkpoint_write", write_lat, busy);
    let latest = store
        .latest()?
        .ok_or_else(|| ToolError::Usage(format!("no checkpoint in {url} after committing one")))?;
    let mut read_lat = Vec::new();
    let start = Instant::now();
    let mut busy = Duration::ZERO;
    while read_lat.is_empty() || start.elapsed() < duration {
        let t = Instant::now();
        let got = latest.read_part("state")?;
        let took = t.elapsed();
        if got.len() != size {
            return Err(ToolError::Usage(format!(
                "read {} bytes of a {size}-byte part",
                got.len()
            )));
        }
        busy += took;
        read_lat.push(took.as_nanos() as u64);
    }
    let read = Timings("checkpoint_read", read_lat, busy);
    Ok((write, read))
}

/// Latencies of one kind of call, and the time spent in them.
struct Timings(&'static str, Vec<u64>, Duration);

impl Timings {
    fn named(self, backend: &str, size: usize) -> CaseResult {
        let Timings(group, mut lat, busy) = self;
        lat.sort_unstable();
        CaseResult {
            group,
            name: format!("{backend}/{}", size_label(size)),
            threads: 1,
            ops: lat.len() as u64,
            bytes: (lat.len() * size) as u64,
            elapsed: busy,
            latencies_ns: lat,
            limit: None,
        }
    }
}
