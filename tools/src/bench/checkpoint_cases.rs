//! Checkpoint cases: commit a one-part checkpoint, and read the latest one back,
//! through tidemark-checkpoint's blocking API, on local disk and in memory.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tidemark_checkpoint::blocking::CheckpointStore;

use super::measure::CaseResult;
use crate::outcome::ToolError;

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
) -> Result<(CaseResult, CaseResult), ToolError> {
    let store = CheckpointStore::open(url)?;
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
    let write = result("checkpoint_write", backend, size, write_lat, busy);
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
    let read = result("checkpoint_read", backend, size, read_lat, busy);
    Ok((write, read))
}

fn result(
    group: &'static str,
    backend: &str,
    size: usize,
    mut lat: Vec<u64>,
    busy: Duration,
) -> CaseResult {
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
