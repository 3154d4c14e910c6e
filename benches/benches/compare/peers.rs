//! okaywal 0.3 and raft-engine 0.4 behind the few calls the comparison needs,
//! each in its fastest honest configuration (what a user who read the crate's
//! documentation would set for the job, nothing that skips durability work).
//!
//! **okaywal** (`Configuration` for durable writes, [`OkayWal::open_durable`]):
//! one entry per record (`begin_entry`, `write_chunk`, `commit`); `commit`
//! always syncs (its group commit lets one `fdatasync` cover every writer
//! queued behind the active file), so okaywal has no buffered mode and sits out
//! scenario (a). Segments are preallocated by writing zeros (okaywal's own
//! method) at 64 MiB, checkpointed at 48 MiB (tidemark's segment size; fewer
//! checkpoint renames and directory syncs than the 1 MiB default), 16 KiB
//! write buffer (default); the `LogManager`'s checkpoint is a no-op, so
//! checkpointed segments are recycled at once.
//!
//! **raft-engine** (`Config`, [`RaftEngine::open`]): compression off
//! (`batch_compression_threshold` = 0; the default 8 KiB would LZ4 every
//! batch), log recycling on (default) with `prefill_for_recycle` (files of
//! zeros prepared at open, like tidemark's zero-filled spares), 64 MiB files
//! (tidemark's segment size), `purge_threshold` 128 MiB so that purging after
//! each sample recycles files. Writers use their own raft group each (region
//! `writer + 1`, dense indexes), as Multi-Raft does; appends of one record are
//! one `LogBatch` each, `write(batch, sync)` (its write group merges concurrent
//! batches under one `fdatasync`); bulk appends put 1000 entries in a batch.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use okaywal::{
    Configuration, Entry, EntryId, LogManager, ReadChunkResult, SegmentReader, WriteAheadLog,
};
use raft_engine::{Config, Engine, LogBatch, ReadableSize};

use crate::raft_entry::{BenchEntry, BenchMessages};

/// Where a peer failed and how.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("okaywal in {dir}: {op}: {source}")]
    OkayWal {
        dir: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("raft-engine in {dir}: {op}: {source}")]
    RaftEngine {
        dir: PathBuf,
        op: &'static str,
        #[source]
        source: raft_engine::Error,
    },
    #[error("{peer} in {dir}: {what}")]
    Unexpected {
        peer: &'static str,
        dir: PathBuf,
        what: String,
    },
}

pub type Result<T> = std::result::Result<T, PeerError>;

fn okw<'a>(dir: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> PeerError + 'a {
    move |source| PeerError::OkayWal {
        dir: dir.to_path_buf(),
        op,
        source,
    }
}

fn raft<'a>(dir: &'a Path, op: &'static str) -> impl FnOnce(raft_engine::Error) -> PeerError + 'a {
    move |source| PeerError::RaftEngine {
        dir: dir.to_path_buf(),
        op,
        source,
    }
}

/// What a replay or a verifying open saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    pub records: u64,
    pub bytes: u64,
}

// ---------------------------------------------------------------- okaywal

/// An okaywal log in one directory.
pub struct OkayWal {
    wal: WriteAheadLog,
    dir: PathBuf,
}

/// Checkpoints nothing (the records are applied elsewhere) and recovers
/// nothing: what a durable-append benchmark needs.
#[derive(Debug)]
struct NoCheckpoint;

impl LogManager for NoCheckpoint {
    fn recover(&mut self, _entry: &mut Entry<'_>) -> io::Result<()> {
        Ok(())
    }

    fn checkpoint_to(
        &mut self,
        _last: EntryId,
        _entries: &mut SegmentReader,
        _wal: &WriteAheadLog,
    ) -> io::Result<()> {
        Ok(())
    }
}

/// Recovery that reads every chunk of every entry back, checks its CRC32C,
/// and counts it: okaywal's replay path (it has no scan of a live log).
#[derive(Debug)]
struct ReplayAll {
    records: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

impl LogManager for ReplayAll {
    fn recover(&mut self, entry: &mut Entry<'_>) -> io::Result<()> {
        loop {
            let mut chunk = match entry.read_chunk()? {
                ReadChunkResult::Chunk(chunk) => chunk,
                ReadChunkResult::EndOfEntry => return Ok(()),
                ReadChunkResult::AbortedEntry => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "aborted entry in a fully committed log",
                    ));
                }
            };
            let data = chunk.read_all()?;
            if !chunk.check_crc()? {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "chunk CRC mismatch",
                ));
            }
            self.records.fetch_add(1, Ordering::Relaxed);
            self.bytes
                .fetch_add(std::hint::black_box(data).len() as u64, Ordering::Relaxed);
        }
    }

    fn checkpoint_to(
        &mut self,
        _last: EntryId,
        _entries: &mut SegmentReader,
        _wal: &WriteAheadLog,
    ) -> io::Result<()> {
        Ok(())
    }
}

impl OkayWal {
    /// For durable appends: zero-written segments of `segment` bytes (64 MiB
    /// in a full run), checkpointed at 3/4 of that.
    pub fn open_durable(dir: &Path, segment: u32) -> Result<Self> {
        let wal = Configuration::default_for(dir)
            .preallocate_bytes(segment)
            .checkpoint_after_bytes(u64::from(segment) / 4 * 3)
            .open(NoCheckpoint)
            .map_err(okw(dir, "open"))?;
        Ok(OkayWal {
            wal,
            dir: dir.to_path_buf(),
        })
    }

    /// For a replay log: never checkpoints, so every entry stays readable.
    fn replay_config(dir: &Path) -> Configuration {
        Configuration::default_for(dir).checkpoint_after_bytes(u64::MAX)
    }

    /// Opens a log for building a replay data set.
    pub fn open_for_replay(dir: &Path) -> Result<Self> {
        let wal = Self::replay_config(dir)
            .open(NoCheckpoint)
            .map_err(okw(dir, "open"))?;
        Ok(OkayWal {
            wal,
            dir: dir.to_path_buf(),
        })
    }

    /// One record as one entry, durable when this returns.
    pub fn append(&self, record: &[u8]) -> Result<()> {
        let mut entry = self
            .wal
            .begin_entry()
            .map_err(okw(&self.dir, "begin_entry"))?;
        entry
            .write_chunk(record)
            .map_err(okw(&self.dir, "write_chunk"))?;
        entry.commit().map_err(okw(&self.dir, "commit"))?;
        Ok(())
    }

    /// Several records as the chunks of one entry, durable when this returns.
    pub fn append_entry<'a>(&self, records: impl IntoIterator<Item = &'a [u8]>) -> Result<()> {
        let mut entry = self
            .wal
            .begin_entry()
            .map_err(okw(&self.dir, "begin_entry"))?;
        for record in records {
            entry
                .write_chunk(record)
                .map_err(okw(&self.dir, "write_chunk"))?;
        }
        entry.commit().map_err(okw(&self.dir, "commit"))?;
        Ok(())
    }

    /// Waits for the checkpoint thread and closes the log.
    pub fn shutdown(self) -> Result<()> {
        self.wal.shutdown().map_err(okw(&self.dir, "shutdown"))
    }

    /// Opens the log at `dir` (written by [`OkayWal::open_for_replay`]),
    /// reading every record back with its CRC checked, and closes it again.
    pub fn replay(dir: &Path) -> Result<Replayed> {
        let records = Arc::new(AtomicU64::new(0));
        let bytes = Arc::new(AtomicU64::new(0));
        let manager = ReplayAll {
            records: Arc::clone(&records),
            bytes: Arc::clone(&bytes),
        };
        let wal = Self::replay_config(dir)
            .open(manager)
            .map_err(okw(dir, "open (replay)"))?;
        wal.shutdown().map_err(okw(dir, "shutdown"))?;
        Ok(Replayed {
            records: records.load(Ordering::Relaxed),
            bytes: bytes.load(Ordering::Relaxed),
        })
    }
}

// ------------------------------------------------------------ raft-engine

/// Entries per `LogBatch` for bulk appends (the 1000-record batches).
pub const RAFT_BULK_BATCH: usize = 1000;

/// One writer's raft group: its next index and reusable buffers.
struct Region {
    id: u64,
    next_index: u64,
    batch: LogBatch,
    entries: Vec<BenchEntry>,
}

/// A raft-engine instance with one raft group per writer.
pub struct RaftEngine {
    engine: Engine,
    dir: PathBuf,
    regions: Vec<Mutex<Region>>,
}

impl RaftEngine {
    /// The configuration described in the module documentation, with files
    /// of `file_size` bytes (64 MiB in a full run); `prefill` bytes' worth
    /// (times 1.5, raft-engine's rule) of zero-filled files are prepared for
    /// recycling at open.
    pub fn config(dir: &Path, file_size: u64, prefill: u64) -> Config {
        Config {
            dir: dir.to_string_lossy().into_owned(),
            batch_compression_threshold: ReadableSize(0),
            target_file_size: ReadableSize(file_size),
            purge_threshold: ReadableSize(2 * file_size),
            enable_log_recycle: true,
            prefill_for_recycle: prefill > 0,
            prefill_limit: (prefill > 0).then_some(ReadableSize(prefill)),
            ..Config::default()
        }
    }

    /// Opens (or recovers) an engine with `writers` raft groups (regions 1..=writers).
    pub fn open(cfg: Config, writers: usize) -> Result<Self> {
        let dir = PathBuf::from(&cfg.dir);
        let engine = Engine::open(cfg).map_err(raft(&dir, "open"))?;
        let regions = (1..=writers as u64)
            .map(|id| {
                let next_index = engine.last_index(id).map_or(1, |i| i + 1);
                Mutex::new(Region {
                    id,
                    next_index,
                    batch: LogBatch::with_capacity(RAFT_BULK_BATCH),
                    entries: Vec::new(),
                })
            })
            .collect();
        Ok(RaftEngine {
            engine,
            dir,
            regions,
        })
    }

    fn region(&self, writer: usize) -> Result<std::sync::MutexGuard<'_, Region>> {
        let region = self
            .regions
            .get(writer)
            .ok_or_else(|| PeerError::Unexpected {
                peer: "raft-engine",
                dir: self.dir.clone(),
                what: format!("no raft group for writer {writer}"),
            })?;
        Ok(region.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Appends `records` to `writer`'s raft group as one `LogBatch` (with
    /// `fdatasync` before returning if `sync`). Entry buffers are reused, so
    /// the timed work is encoding into the batch and writing it.
    pub fn append(&self, writer: usize, records: &[&[u8]], sync: bool) -> Result<()> {
        let mut guard = self.region(writer)?;
        let region = &mut *guard;
        region
            .entries
            .resize_with(records.len(), BenchEntry::default);
        for (i, (entry, record)) in region.entries.iter_mut().zip(records).enumerate() {
            entry.index = region.next_index + i as u64;
            entry.data.clear();
            entry.data.extend_from_slice(record);
        }
        region
            .batch
            .add_entries::<BenchMessages>(region.id, &region.entries)
            .map_err(raft(&self.dir, "add_entries"))?;
        self.engine
            .write(&mut region.batch, sync)
            .map_err(raft(&self.dir, "write"))?;
        region.next_index += records.len() as u64;
        Ok(())
    }

    /// Appends `count` copies of `record` to writer 0's raft group in batches
    /// of `per_batch` entries, without syncing.
    pub fn append_copies(&self, record: &[u8], count: u64, per_batch: usize) -> Result<()> {
        let batch: Vec<&[u8]> = vec![record; per_batch];
        let mut left = count;
        while left > 0 {
            let k = left.min(per_batch as u64) as usize;
            self.append(0, &batch[..k], false)?;
            left -= k as u64;
        }
        Ok(())
    }

    /// Makes everything written so far durable.
    pub fn sync(&self) -> Result<()> {
        self.engine.sync().map_err(raft(&self.dir, "sync"))
    }

    /// Retention between samples: compacts every raft group up to its last
    /// entry and purges (recycles) the files that frees.
    pub fn retire_all(&self) -> Result<()> {
        for region in &self.regions {
            let id = region.lock().unwrap_or_else(PoisonError::into_inner).id;
            if let Some(last) = self.engine.last_index(id) {
                self.engine.compact_to(id, last + 1);
            }
        }
        self.engine
            .purge_expired_files()
            .map_err(raft(&self.dir, "purge_expired_files"))?;
        Ok(())
    }

    /// Reads every entry of raft group 1 back (`fetch_entries_to` in runs of
    /// [`RAFT_BULK_BATCH`], each block read once and its checksum verified).
    pub fn replay(&self) -> Result<Replayed> {
        let region = 1;
        let (Some(first), Some(last)) = (
            self.engine.first_index(region),
            self.engine.last_index(region),
        ) else {
            return Ok(Replayed::default());
        };
        let mut seen = Replayed::default();
        let mut buf = Vec::with_capacity(RAFT_BULK_BATCH);
        let mut begin = first;
        while begin <= last {
            let end = (begin + RAFT_BULK_BATCH as u64).min(last + 1);
            buf.clear();
            let n = self
                .engine
                .fetch_entries_to::<BenchMessages>(region, begin, end, None, &mut buf)
                .map_err(raft(&self.dir, "fetch_entries_to"))?;
            if n as u64 != end - begin {
                return Err(PeerError::Unexpected {
                    peer: "raft-engine",
                    dir: self.dir.clone(),
                    what: format!("fetched {n} entries of [{begin}, {end})"),
                });
            }
            for e in &buf {
                seen.records += 1;
                seen.bytes += std::hint::black_box(&e.data).len() as u64;
            }
            begin = end;
        }
        Ok(seen)
    }

    /// Entries in raft group 1 (for checking a reopen recovered them all).
    pub fn entries(&self) -> u64 {
        match (self.engine.first_index(1), self.engine.last_index(1)) {
            (Some(first), Some(last)) => last + 1 - first,
            _ => 0,
        }
    }
}
