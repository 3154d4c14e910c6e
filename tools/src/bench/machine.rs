//! The machine's own limits, measured in the same scratch directory as the
//! storage cases: plain `write` + `fdatasync` loops, appending and overwriting
//! (the ceiling for durable appends), and plain sequential writes and reads
//! (the ceiling for buffered appends and replay).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::measure::CaseResult;
use crate::outcome::ToolError;

/// `record`-byte writes, each followed by `fdatasync`, for `duration`.
///
/// With `overwrite`, the writes go in place over a file whose blocks were
/// written and synced beforehand (wrapping at `prefill` bytes), so a sync
/// carries no block allocation or size change: the bound for a log that
/// reuses written segments. Without it, each write appends and extends the file.
pub fn fdatasync_loop(
    dir: &Path,
    record: usize,
    duration: Duration,
    overwrite: Option<u64>,
) -> Result<CaseResult, ToolError> {
    let path = dir.join("machine-fdatasync.dat");
    let mut file = create(&path)?;
    if let Some(len) = overwrite {
        prefill(&mut file, &path, len)?;
    }
    let buf = vec![0x5Au8; record];
    let mut lat = Vec::new();
    let mut at = 0u64;
    let start = Instant::now();
    while start.elapsed() < duration {
        let t = Instant::now();
        match overwrite {
            Some(len) => {
                if at + record as u64 > len {
                    at = 0;
                }
                file.write_all_at(&buf, at)
                    .map_err(|e| ToolError::io("pwrite", &path, e))?;
                at += record as u64;
            }
            None => file
                .write_all(&buf)
                .map_err(|e| ToolError::io("write", &path, e))?,
        }
        file.sync_data()
            .map_err(|e| ToolError::io("fdatasync", &path, e))?;
        lat.push(t.elapsed().as_nanos() as u64);
    }
    let elapsed = start.elapsed();
    drop(file);
    let _ = std::fs::remove_file(&path);
    lat.sort_unstable();
    Ok(CaseResult {
        group: "machine",
        name: if overwrite.is_some() {
            "pwrite+fdatasync (overwrite)"
        } else {
            "write+fdatasync (append)"
        }
        .into(),
        threads: 1,
        ops: lat.len() as u64,
        bytes: (lat.len() * record) as u64,
        elapsed,
        latencies_ns: lat,
        limit: None,
    })
}

/// Writes `len` zero bytes into `file` and syncs them.
fn prefill(file: &mut File, path: &Path, len: u64) -> Result<(), ToolError> {
    let chunk = vec![0u8; 1 << 20];
    let mut done = 0u64;
    while done < len {
        let n = chunk.len().min((len - done) as usize);
        file.write_all(&chunk[..n])
            .map_err(|e| ToolError::io("prefill", path, e))?;
        done += n as u64;
    }
    file.sync_all().map_err(|e| ToolError::io("sync", path, e))
}

/// `total` bytes written sequentially in 1 MiB `write`s, then (with `sync`)
/// one `fdatasync`. Without it, the page-cache write bandwidth: the like-for-like
/// bound for writers that do not sync.
pub fn sequential_write(dir: &Path, total: u64, sync: bool) -> Result<CaseResult, ToolError> {
    let path = dir.join("machine-seqwrite.dat");
    let mut file = create(&path)?;
    let chunk = vec![0xA5u8; 1 << 20];
    let start = Instant::now();
    let mut written = 0u64;
    while written < total {
        file.write_all(&chunk)
            .map_err(|e| ToolError::io("write", &path, e))?;
        written += chunk.len() as u64;
    }
    if sync {
        file.sync_data()
            .map_err(|e| ToolError::io("fdatasync", &path, e))?;
    }
    let elapsed = start.elapsed();
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok(CaseResult {
        group: "machine",
        name: if sync {
            "sequential write+fdatasync"
        } else {
            "sequential write (buffered)"
        }
        .into(),
        threads: 1,
        ops: written >> 20,
        bytes: written,
        elapsed,
        latencies_ns: Vec::new(),
        limit: None,
    })
}

/// Every file of `dir` read whole, in 1 MiB `read`s (warm page cache, like the
/// replay it is compared with).
pub fn sequential_read(dir: &Path) -> Result<CaseResult, ToolError> {
    let mut buf = vec![0u8; 1 << 20];
    let start = Instant::now();
    let mut read = 0u64;
    let entries = std::fs::read_dir(dir).map_err(|e| ToolError::io("list", dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| ToolError::io("list", dir, e))?.path();
        let mut file = File::open(&path).map_err(|e| ToolError::io("open", &path, e))?;
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| ToolError::io("read", &path, e))?;
            if n == 0 {
                break;
            }
            read += n as u64;
        }
    }
    Ok(CaseResult {
        group: "machine",
        name: "sequential read".into(),
        threads: 1,
        ops: read >> 20,
        bytes: read,
        elapsed: start.elapsed(),
        latencies_ns: Vec::new(),
        limit: None,
    })
}

fn create(path: &Path) -> Result<File, ToolError> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| ToolError::io("create", path, e))
}

/// The file system type of `path` (`ext4`, `xfs`, `tmpfs`, ...), from /proc/mounts.
pub fn fs_type(path: &Path) -> String {
    let Ok(path) = path.canonicalize() else {
        return "unknown".into();
    };
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (_, mnt, fs) = (it.next()?, it.next()?, it.next()?);
            path.starts_with(mnt).then(|| (mnt.len(), fs.to_string()))
        })
        .max()
        .map_or_else(|| "unknown".into(), |(_, fs)| fs)
}
