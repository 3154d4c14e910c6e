//! The same store without `async`, for code that has no runtime.
//!
//! [`CheckpointStore`] owns a small multi-threaded Tokio runtime shared by every writer and
//! checkpoint it hands out; each call blocks on it. Do not call these from inside an async
//! context (Tokio forbids blocking a runtime thread): use the async API there.

use std::{io, sync::Arc, time::Duration};

use bytes::Bytes;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    runtime::Runtime,
};

pub use crate::{
    CheckpointError, CheckpointInfo, CheckpointOptions, CheckpointState, CleanupPlan, Compression,
    Epoch, GcPlan, GcReport, OrphanPart, PartInfo, PartOptions, Result, RetentionPlan,
    RetentionReport, SkippedCheckpoint,
};

/// Worker threads of the owned runtime: enough for parallel part uploads.
const RUNTIME_THREADS: usize = 2;

fn runtime() -> Result<Arc<Runtime>> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(RUNTIME_THREADS)
        .thread_name("tidemark-checkpoint")
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(|e| CheckpointError::Io {
            context: "starting the checkpoint runtime".into(),
            source: e,
        })
}

/// Blocking [`crate::CheckpointStore`].
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    inner: crate::CheckpointStore,
    rt: Arc<Runtime>,
}

impl CheckpointStore {
    /// See [`crate::CheckpointStore::open`].
    pub fn open(url: &str) -> Result<Self> {
        Self::open_with(url, CheckpointOptions::default())
    }

    /// See [`crate::CheckpointStore::open_with`].
    pub fn open_with(url: &str, options: CheckpointOptions) -> Result<Self> {
        let rt = runtime()?;
        let inner = rt.block_on(crate::CheckpointStore::open_with(url, options))?;
        Ok(Self { inner, rt })
    }

    /// The async store this wraps.
    pub fn as_async(&self) -> &crate::CheckpointStore {
        &self.inner
    }

    /// See [`crate::CheckpointStore::begin`].
    pub fn begin(&self) -> Result<CheckpointWriter> {
        let inner = self.rt.block_on(self.inner.begin())?;
        Ok(CheckpointWriter {
            inner,
            rt: Arc::clone(&self.rt),
        })
    }

    /// See [`crate::CheckpointStore::latest`].
    pub fn latest(&self) -> Result<Option<Checkpoint>> {
        let latest = self.rt.block_on(self.inner.latest())?;
        Ok(latest.map(|inner| Checkpoint {
            inner,
            rt: Arc::clone(&self.rt),
        }))
    }

    /// See [`crate::CheckpointStore::list`].
    pub fn list(&self) -> Result<Vec<CheckpointInfo>> {
        self.rt.block_on(self.inner.list())
    }

    /// See [`crate::CheckpointStore::checkpoint`].
    pub fn checkpoint(&self, epoch: Epoch) -> Result<Option<Checkpoint>> {
        let found = self.rt.block_on(self.inner.checkpoint(epoch))?;
        Ok(found.map(|inner| Checkpoint {
            inner,
            rt: Arc::clone(&self.rt),
        }))
    }

    /// See [`crate::CheckpointStore::plan_cleanup`].
    pub fn plan_cleanup(&self, keep: usize, grace: Duration) -> Result<CleanupPlan> {
        self.rt.block_on(self.inner.plan_cleanup(keep, grace))
    }

    /// See [`crate::CheckpointStore::retain_last`].
    pub fn retain_last(&self, keep: usize) -> Result<RetentionReport> {
        self.rt.block_on(self.inner.retain_last(keep))
    }

    /// See [`crate::CheckpointStore::collect_garbage`].
    pub fn collect_garbage(&self, grace: Duration) -> Result<GcReport> {
        self.rt.block_on(self.inner.collect_garbage(grace))
    }
}

/// Blocking [`crate::CheckpointWriter`].
#[derive(Debug)]
pub struct CheckpointWriter {
    inner: crate::CheckpointWriter,
    rt: Arc<Runtime>,
}

impl CheckpointWriter {
    /// The epoch this writer will commit.
    pub fn epoch(&self) -> Epoch {
        self.inner.epoch()
    }

    /// See [`crate::CheckpointWriter::put_part`].
    pub fn put_part(&mut self, name: &str, data: impl Into<Bytes>) -> Result<()> {
        self.rt.block_on(self.inner.put_part(name, data))
    }

    /// See [`crate::CheckpointWriter::put_part_with`].
    pub fn put_part_with(
        &mut self,
        name: &str,
        data: impl Into<Bytes>,
        options: PartOptions,
    ) -> Result<()> {
        self.rt
            .block_on(self.inner.put_part_with(name, data, options))
    }

    /// A streamed part as a `std::io::Write`; call [`PartWriter::finish`] before `commit()`.
    pub fn part_writer(&mut self, name: &str) -> Result<PartWriter> {
        self.part_writer_with(name, PartOptions::default())
    }

    /// See [`crate::CheckpointWriter::part_writer_with`].
    pub fn part_writer_with(&mut self, name: &str, options: PartOptions) -> Result<PartWriter> {
        let inner = self
            .rt
            .block_on(self.inner.part_writer_with(name, options))?;
        Ok(PartWriter {
            inner,
            rt: Arc::clone(&self.rt),
        })
    }

    /// See [`crate::CheckpointWriter::reference_part`].
    pub fn reference_part(&mut self, name: &str, from: &Checkpoint, from_name: &str) -> Result<()> {
        self.inner.reference_part(name, &from.inner, from_name)
    }

    /// See [`crate::CheckpointWriter::commit`].
    pub fn commit(&mut self) -> Result<Epoch> {
        self.rt.block_on(self.inner.commit())
    }

    /// See [`crate::CheckpointWriter::abort`].
    pub fn abort(self) -> Result<()> {
        self.rt.block_on(self.inner.abort())
    }
}

/// Blocking [`crate::PartWriter`]: a `std::io::Write`.
#[derive(Debug)]
pub struct PartWriter {
    inner: crate::PartWriter,
    rt: Arc<Runtime>,
}

impl PartWriter {
    /// Completes the upload; the part counts for `commit()` only after this returned `Ok`.
    pub fn finish(mut self) -> io::Result<()> {
        self.rt.block_on(self.inner.shutdown())
    }
}

impl io::Write for PartWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.rt.block_on(self.inner.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.rt.block_on(self.inner.flush())
    }
}

/// Blocking [`crate::Checkpoint`].
#[derive(Debug, Clone)]
pub struct Checkpoint {
    inner: crate::Checkpoint,
    rt: Arc<Runtime>,
}

impl Checkpoint {
    /// See [`crate::Checkpoint::epoch`].
    pub fn epoch(&self) -> Epoch {
        self.inner.epoch()
    }

    /// See [`crate::Checkpoint::part_names`].
    pub fn part_names(&self) -> Vec<String> {
        self.inner.part_names()
    }

    /// See [`crate::Checkpoint::parts`].
    pub fn parts(&self) -> &[PartInfo] {
        self.inner.parts()
    }

    /// See [`crate::Checkpoint::skipped`].
    pub fn skipped(&self) -> &[SkippedCheckpoint] {
        self.inner.skipped()
    }

    /// See [`crate::Checkpoint::read_part`].
    pub fn read_part(&self, name: &str) -> Result<Bytes> {
        self.rt.block_on(self.inner.read_part(name))
    }

    /// A streamed part as a `std::io::Read`; see [`crate::Checkpoint::part_reader`].
    pub fn part_reader(&self, name: &str) -> Result<PartReader> {
        let inner = self.rt.block_on(self.inner.part_reader(name))?;
        Ok(PartReader {
            inner,
            rt: Arc::clone(&self.rt),
        })
    }

    /// See [`crate::Checkpoint::verify`].
    pub fn verify(&self) -> Result<()> {
        self.rt.block_on(self.inner.verify())
    }

    /// The async checkpoint this wraps.
    pub fn as_async(&self) -> &crate::Checkpoint {
        &self.inner
    }
}

/// Blocking [`crate::PartReader`]: a `std::io::Read` that fails with `InvalidData` at the end if
/// the part is damaged.
#[derive(Debug)]
pub struct PartReader {
    inner: crate::PartReader,
    rt: Arc<Runtime>,
}

impl io::Read for PartReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.rt.block_on(self.inner.read(buf))
    }
}
