//! Block-store cases: put and get of blocks on one node (no replication), per
//! single-copy storage level, through tidemark-blockstore's `BlockManager`.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tidemark_blockstore::{BlockId, BlockManager, BlockStoreConfig, StorageLevel};

use super::measure::CaseResult;
use crate::outcome::ToolError;

/// Blocks kept stored at once: older ones are removed (untimed) as new ones
/// arrive, so memory levels never evict and disk use stays bounded.
const WINDOW: u64 = 16;

/// The levels measured, with their Spark names.
pub fn levels() -> [(&'static str, StorageLevel); 3] {
    [
        ("MEMORY_ONLY_SER", StorageLevel::MEMORY_ONLY_SER),
        ("MEMORY_AND_DISK_SER", StorageLevel::MEMORY_AND_DISK_SER),
        ("DISK_ONLY", StorageLevel::DISK_ONLY),
    ]
}

/// For `duration` each (at least once): `put_bytes` of `size`-byte blocks at
/// `level`, then `get_bytes` of the blocks still stored, round robin.
pub fn put_and_get(
    dir: &Path,
    name: &str,
    level: StorageLevel,
    size: usize,
    duration: Duration,
) -> Result<(CaseResult, CaseResult), ToolError> {
    let config = BlockStoreConfig {
        dir: dir.to_path_buf(),
        memory_capacity: (size as u64) * (WINDOW + 4),
        ..BlockStoreConfig::default()
    };
    let bm = BlockManager::start(config)?;
    let data = Bytes::from(vec![0x6Bu8; size]);
    let (mut lat, mut busy, mut next) = (Vec::new(), Duration::ZERO, 0u64);
    let start = Instant::now();
    while lat.is_empty() || start.elapsed() < duration {
        let t = Instant::now();
        bm.put_bytes(BlockId::stream(0, next), data.clone(), level)?;
        let took = t.elapsed();
        busy += took;
        lat.push(took.as_nanos() as u64);
        if next >= WINDOW {
            bm.remove(&BlockId::stream(0, next - WINDOW))?;
        }
        next += 1;
    }
    let put = result("blockstore_put", name, size, lat, busy);
    let first = next.saturating_sub(WINDOW);
    let (mut lat, mut busy, mut i) = (Vec::new(), Duration::ZERO, 0u64);
    let start = Instant::now();
    while lat.is_empty() || start.elapsed() < duration {
        let id = BlockId::stream(0, first + i % (next - first));
        let t = Instant::now();
        let got = bm.get_bytes(&id)?;
        let took = t.elapsed();
        if got.as_ref().map(|b| b.len()) != Some(size) {
            return Err(ToolError::Usage(format!(
                "block {id:?} at {name} was not read back whole"
            )));
        }
        busy += took;
        lat.push(took.as_nanos() as u64);
        i += 1;
    }
    let get = result("blockstore_get", name, size, lat, busy);
    Ok((put, get))
}

fn result(
    group: &'static str,
    name: &str,
    size: usize,
    mut lat: Vec<u64>,
    busy: Duration,
) -> CaseResult {
    lat.sort_unstable();
    CaseResult {
        group,
        name: format!("{name}/{}KiB", size >> 10),
        threads: 1,
        ops: lat.len() as u64,
        bytes: (lat.len() * size) as u64,
        elapsed: busy,
        latencies_ns: lat,
        limit: None,
    }
}
