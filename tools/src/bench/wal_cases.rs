//! WAL cases: appends in each durability mode with 1 and N writers, and replay.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tidemark_wal::{Durability, Lsn, Wal, WalOptions};

use super::measure::CaseResult;
use crate::outcome::ToolError;

/// The durability modes benchmarked, with their names in reports.
pub fn modes() -> [(&'static str, Durability); 4] {
    [
        ("buffered", Durability::Buffered),
        ("per_write", Durability::PerWrite),
        (
            "group",
            Durability::Group {
                max_delay: Duration::from_micros(500),
            },
        ),
        (
            "interval_10ms",
            Durability::Interval(Duration::from_millis(10)),
        ),
    ]
}

fn opts(durability: Durability, segment_size: u64) -> WalOptions {
    WalOptions {
        segment_size,
        durability,
        ..WalOptions::default()
    }
}

/// `writers` threads append `record`-byte records to a fresh log in `dir`:
/// first for `warmup` (not measured: the log prepares its first spare segments
/// then), then for `duration`, recording every append's latency.
pub fn append(
    dir: &Path,
    name: &'static str,
    durability: Durability,
    writers: usize,
    record: usize,
    (warmup, duration): (Duration, Duration),
    segment_size: u64,
) -> Result<CaseResult, ToolError> {
    let wal = Arc::new(Wal::open(dir, opts(durability, segment_size))?);
    let measure_from = Instant::now() + warmup;
    let end = measure_from + duration;
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let wal = wal.clone();
            std::thread::spawn(move || -> Result<Vec<u64>, tidemark_wal::WalError> {
                let data = vec![w as u8; record];
                let mut lat = Vec::new();
                loop {
                    let t = Instant::now();
                    if t >= end {
                        break;
                    }
                    wal.append(&data)?;
                    if t >= measure_from {
                        lat.push(t.elapsed().as_nanos() as u64);
                    }
                }
                Ok(lat)
            })
        })
        .collect();
    let mut lat = Vec::new();
    for h in handles {
        let part = h
            .join()
            .map_err(|_| ToolError::Usage("a benchmark writer thread panicked".into()))??;
        lat.extend(part);
    }
    let elapsed = measure_from.elapsed();
    lat.sort_unstable();
    Ok(CaseResult {
        group: "wal_append",
        name: name.to_string(),
        threads: writers,
        ops: lat.len() as u64,
        bytes: (lat.len() * record) as u64,
        elapsed,
        latencies_ns: lat,
        limit: None,
    })
}

/// Writes `records` records (buffered, one sync at the end), then measures a
/// fresh open (recovery verifies every frame) plus a full scan.
pub fn replay(
    dir: &Path,
    records: u64,
    record: usize,
    segment_size: u64,
) -> Result<CaseResult, ToolError> {
    {
        let wal = Wal::open(dir, opts(Durability::Buffered, segment_size))?;
        let data = vec![0x42u8; record];
        for _ in 0..records {
            wal.append(&data)?;
        }
        wal.sync()?;
    }
    let start = Instant::now();
    let wal = Wal::open_read_only(dir, opts(Durability::Buffered, segment_size))?;
    let (mut n, mut bytes) = (0u64, 0u64);
    for rec in wal.iter_from(Lsn(1)) {
        let rec = rec?;
        n += 1;
        bytes += rec.data.len() as u64;
    }
    let elapsed = start.elapsed();
    if n != records {
        return Err(ToolError::Usage(format!(
            "replay read {n} records, {records} were written"
        )));
    }
    Ok(CaseResult {
        group: "wal_replay",
        name: "open+scan".into(),
        threads: 1,
        ops: n,
        bytes,
        elapsed,
        latencies_ns: Vec::new(),
        limit: None,
    })
}
