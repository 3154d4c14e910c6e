//! Writing one checkpoint: parts first, then the manifest that makes them visible.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart, path::Path};

use crate::{
    Checkpoint, CheckpointError, Epoch, checksum,
    error::Result,
    layout, local_fs,
    manifest::{CURRENT_FORMAT, Compression, PartInfo, PartStorage, Record, RecordKind},
    part_check::{self, PartProblem},
    part_writer::{PartSlot, PartWriter},
    record_draft::RecordDraft,
    sequence::{self, CreateOutcome},
    store::{Shared, TailHint, now_unix_ms, random_id},
};

/// Existence checks of part objects `commit()` keeps in flight at once.
const PART_CHECKS_IN_FLIGHT: usize = 8;

/// Per-part settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartOptions {
    /// Compression; `None` uses the store's default.
    pub compression: Option<Compression>,
}

impl PartOptions {
    /// Store the part zstd-compressed.
    pub fn zstd() -> Self {
        Self {
            compression: Some(Compression::Zstd),
        }
    }

    /// Store the part as written.
    pub fn uncompressed() -> Self {
        Self {
            compression: Some(Compression::None),
        }
    }
}

/// A part of this checkpoint, finished or still streaming.
enum PartState {
    /// A stored (or referenced) part object.
    Done(PartInfo),
    /// Stored bytes that travel inside the manifest; `true` while their CRC32C (logical and
    /// stored: the part is uncompressed) is still to be computed by `commit()`.
    Inline(PartInfo, Bytes, bool),
    /// A referenced inline part's bytes that `commit()` uploads to `Path` first.
    Deferred(PartInfo, Bytes, Path),
    Streaming(String, Arc<Mutex<PartSlot>>),
}

/// Writes one checkpoint at the epoch [`crate::CheckpointStore::begin`] gave it.
///
/// Parts are stored under this writer's own directory as they are written; nothing is visible
/// to readers until [`commit`](Self::commit) creates the manifest. A writer dropped without a
/// successful commit leaves no checkpoint behind: like a crashed writer, its parts are orphans
/// that [`crate::CheckpointStore::collect_garbage`] removes after its grace period
/// ([`abort`](Self::abort) deletes them at once).
pub struct CheckpointWriter {
    shared: Arc<Shared>,
    epoch: Epoch,
    generation: u64,
    writer_id: String,
    parts: Vec<PartState>,
    names: HashSet<String>,
    /// Objects this writer stored (deleted if it never commits).
    written: Arc<Mutex<Vec<Path>>>,
    committed: bool,
    tail_hint: TailHint,
    /// Stored bytes of the inline parts so far.
    inline_used: u64,
}

impl std::fmt::Debug for CheckpointWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointWriter")
            .field("epoch", &self.epoch)
            .field("generation", &self.generation)
            .field("writer_id", &self.writer_id)
            .field("parts", &self.names)
            .finish()
    }
}

impl CheckpointWriter {
    pub(crate) fn new(
        shared: Arc<Shared>,
        epoch: Epoch,
        generation: u64,
        tail_hint: TailHint,
    ) -> Self {
        Self {
            shared,
            epoch,
            generation,
            writer_id: random_id(),
            parts: Vec::new(),
            names: HashSet::new(),
            written: Arc::default(),
            committed: false,
            tail_hint,
            inline_used: 0,
        }
    }

    /// The epoch this writer will commit.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// This writer's generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// This writer's unique id (recorded in its manifest).
    pub fn writer_id(&self) -> &str {
        &self.writer_id
    }

    fn claim_name(&mut self, name: &str) -> Result<()> {
        if self.committed {
            return Err(CheckpointError::InvalidArgument(format!(
                "checkpoint {} is already committed",
                self.epoch
            )));
        }
        if !self.names.insert(name.to_string()) {
            return Err(CheckpointError::DuplicatePart {
                name: name.to_string(),
            });
        }
        Ok(())
    }

    fn part_path(&self, name: &str) -> Result<(String, Path)> {
        let rel = layout::part_rel_path(self.epoch, self.generation, &self.writer_id, name)?;
        let path = layout::resolve(&self.shared.root, &rel)?;
        Ok((rel, path))
    }

    fn compression(&self, options: PartOptions) -> Compression {
        options
            .compression
            .unwrap_or(self.shared.options.compression)
    }

    /// Stores a whole part with the store's default options.
    pub async fn put_part(&mut self, name: &str, data: impl Into<Bytes>) -> Result<()> {
        self.put_part_with(name, data, PartOptions::default()).await
    }

    /// Stores a whole part.
    ///
    /// A part whose stored bytes fit in what is left of
    /// [`CheckpointOptions::inline_limit`](crate::CheckpointOptions::inline_limit) is kept in
    /// memory and travels inside the manifest, so a small checkpoint commits with a single
    /// write. Any other part is uploaded now: one put, or a multipart upload with parallel part
    /// uploads from the multipart threshold on.
    pub async fn put_part_with(
        &mut self,
        name: &str,
        data: impl Into<Bytes>,
        options: PartOptions,
    ) -> Result<()> {
        let (rel, path) = self.part_path(name)?;
        self.claim_name(name)?;
        let result = self
            .store_part(name, rel, &path, data.into(), options)
            .await;
        match result {
            Ok(state) => {
                self.push(state);
                Ok(())
            }
            Err(e) => {
                self.names.remove(name);
                Err(e)
            }
        }
    }

    /// Bytes of inline parts this checkpoint can still take.
    fn inline_budget(&self) -> u64 {
        (self.shared.options.inline_limit as u64).saturating_sub(self.inline_used)
    }

    /// Adds a part, giving an inline part the next offset of the manifest's blob.
    fn push(&mut self, mut state: PartState) {
        if let PartState::Inline(info, _, _) = &mut state {
            info.storage = PartStorage::Inline {
                offset: self.inline_used,
            };
            self.inline_used += info.stored_size;
        }
        self.parts.push(state);
    }

    /// The entry of a part this writer stores as an object at `rel`.
    fn object_info(
        &self,
        name: &str,
        rel: String,
        logical: (u64, u32),
        stored: (u64, u32),
        compression: Compression,
    ) -> PartInfo {
        PartInfo {
            name: name.to_string(),
            path: rel,
            size: logical.0,
            crc32c: logical.1,
            stored_size: stored.0,
            stored_crc32c: stored.1,
            compression,
            origin_epoch: self.epoch,
            storage: PartStorage::Object,
        }
    }

    /// Turns an entry into that of an inline part of this checkpoint (offset set by `push`);
    /// `crc_pending`: its checksums are left to `commit()`.
    fn inline(&self, mut info: PartInfo, stored: Bytes, crc_pending: bool) -> PartState {
        info.path = layout::manifest_rel_path(self.epoch);
        info.origin_epoch = self.epoch;
        info.storage = PartStorage::Inline { offset: 0 };
        PartState::Inline(info, stored, crc_pending)
    }

    /// Stores a part inline if it fits, else as an object now.
    async fn store_part(
        &self,
        name: &str,
        rel: String,
        path: &Path,
        data: Bytes,
        options: PartOptions,
    ) -> Result<PartState> {
        let size = data.len() as u64;
        match self.compression(options) {
            Compression::None if size <= self.inline_budget() => {
                // The checksum is left to commit(): it is computed where the manifest is written
                // (see `RecordDraft`).
                let info = self.object_info(name, rel, (size, 0), (size, 0), Compression::None);
                Ok(self.inline(info, data, true))
            }
            Compression::None => self.upload_plain(name, rel, path, data).await,
            Compression::Zstd => self.store_zstd(name, rel, path, data).await,
        }
    }

    /// Uploads an uncompressed part object.
    async fn upload_plain(
        &self,
        name: &str,
        rel: String,
        path: &Path,
        data: Bytes,
    ) -> Result<PartState> {
        let size = data.len() as u64;
        let crc = self.upload_checksummed(path, data).await?;
        let info = self.object_info(name, rel, (size, crc), (size, crc), Compression::None);
        Ok(PartState::Done(info))
    }

    /// Compresses a part, then keeps it inline if the compressed bytes fit, else uploads them.
    async fn store_zstd(
        &self,
        name: &str,
        rel: String,
        path: &Path,
        data: Bytes,
    ) -> Result<PartState> {
        let size = data.len() as u64;
        let (crc, stored) = self.compress(name, data).await?;
        let logical = (size, crc);
        let stored_size = stored.len() as u64;
        if stored_size <= self.inline_budget() {
            let stored_crc = checksum::crc32c_async(stored.clone()).await;
            let info = self.object_info(
                name,
                rel,
                logical,
                (stored_size, stored_crc),
                Compression::Zstd,
            );
            return Ok(self.inline(info, stored, false));
        }
        let stored_crc = self.upload_checksummed(path, stored).await?;
        let info = self.object_info(
            name,
            rel,
            logical,
            (stored_size, stored_crc),
            Compression::Zstd,
        );
        Ok(PartState::Done(info))
    }

    /// zstd-compresses a part off the async threads, checksumming the input meanwhile; returns
    /// the input's CRC32C and the compressed bytes.
    async fn compress(&self, name: &str, data: Bytes) -> Result<(u32, Bytes)> {
        let crc = checksum::crc32c_async(data.clone());
        let level = self.shared.options.zstd_level;
        let compress = tokio::task::spawn_blocking(move || zstd::bulk::compress(&data, level));
        let (crc, compressed) = tokio::join!(crc, compress);
        let compressed = compressed
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(|e| CheckpointError::Io {
                context: format!("compressing part {name:?}"),
                source: e,
            })?;
        Ok((crc, Bytes::from(compressed)))
    }

    /// Uploads a whole part's stored bytes and returns their CRC32C, computed on the way: by the
    /// write itself on local disk (`local_fs`), else on one thread beside the upload (on fast
    /// storage a checksum after it would add its whole cost to the checkpoint; the upload needs
    /// the other cores).
    async fn upload_checksummed(&self, path: &Path, data: Bytes) -> Result<u32> {
        self.record_written(path.clone());
        if let Some(local) = &self.shared.local {
            match local_fs::create_checksummed(local, path, data.clone()).await {
                Ok(crc) => return Ok(crc),
                Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {}
                Err(e) => {
                    return Err(CheckpointError::Io {
                        context: format!("writing part {path}"),
                        source: e,
                    });
                }
            }
        }
        let crc = checksum::crc32c_beside_io(data.clone());
        let (crc, uploaded) = tokio::join!(crc, self.upload(path, data));
        uploaded?;
        Ok(crc)
    }

    /// Uploads a whole part: one put, or a multipart upload from the configured threshold on.
    async fn upload(&self, path: &Path, data: Bytes) -> Result<()> {
        if data.len() >= self.shared.multipart_threshold {
            return self.upload_multipart(path, data).await;
        }
        self.shared
            .store
            .put(path, PutPayload::from(data))
            .await
            .map_err(|e| CheckpointError::store("put", path, e))?;
        Ok(())
    }

    async fn upload_multipart(&self, path: &Path, data: Bytes) -> Result<()> {
        let options = &self.shared.options;
        let upload = self
            .shared
            .store
            .put_multipart(path)
            .await
            .map_err(|e| CheckpointError::store("start multipart upload", path, e))?;
        let chunk = options.upload_chunk_size.max(5 * 1024 * 1024);
        let mut writer = WriteMultipart::new_with_chunk_size(upload, chunk);
        let mut offset = 0;
        while offset < data.len() {
            let end = (offset + chunk).min(data.len());
            if let Err(e) = writer
                .wait_for_capacity(options.upload_concurrency.max(1))
                .await
            {
                let _ = writer.abort().await;
                return Err(CheckpointError::store("upload part", path, e));
            }
            writer.put(data.slice(offset..end));
            offset = end;
        }
        writer
            .finish()
            .await
            .map_err(|e| CheckpointError::store("complete multipart upload", path, e))?;
        Ok(())
    }

    fn record_written(&self, path: Path) {
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(path);
    }

    /// Opens a streamed part (a Tokio `AsyncWrite`) with the store's default options. Memory is
    /// bounded by the upload chunk size times the upload concurrency. The part counts only once
    /// the sink is shut down (`AsyncWriteExt::shutdown`) successfully.
    pub async fn part_writer(&mut self, name: &str) -> Result<PartWriter> {
        self.part_writer_with(name, PartOptions::default()).await
    }

    /// Opens a streamed part with explicit options.
    pub async fn part_writer_with(
        &mut self,
        name: &str,
        options: PartOptions,
    ) -> Result<PartWriter> {
        let (rel, path) = self.part_path(name)?;
        self.claim_name(name)?;
        let slot = Arc::new(Mutex::new(PartSlot::Open));
        self.record_written(path.clone());
        let writer = PartWriter::new(
            Arc::clone(&self.shared),
            path,
            PartInfo {
                name: name.to_string(),
                path: rel,
                size: 0,
                crc32c: 0,
                stored_size: 0,
                stored_crc32c: 0,
                compression: self.compression(options),
                origin_epoch: self.epoch,
                storage: PartStorage::Object,
            },
            Arc::clone(&slot),
        )?;
        self.parts
            .push(PartState::Streaming(name.to_string(), slot));
        Ok(writer)
    }

    /// Makes part `name` of this checkpoint the already stored part `from_name` of `from`
    /// (incremental checkpoints). A part object is not copied: the new manifest references the
    /// same object, path and checksums, and retention keeps the object while any kept manifest
    /// names it. An inline part lives in `from`'s manifest, which retention may delete, so its
    /// bytes are copied: inline into this checkpoint's manifest while they fit in what is left
    /// of the inline limit, otherwise into an object of this checkpoint that `commit()` uploads.
    pub fn reference_part(&mut self, name: &str, from: &Checkpoint, from_name: &str) -> Result<()> {
        let source = from
            .part(from_name)
            .ok_or_else(|| CheckpointError::NoSuchPart {
                epoch: from.epoch(),
                name: from_name.to_string(),
            })?;
        let mut info = source.clone();
        info.name = name.to_string();
        let state = if source.is_inline() {
            let stored = from.inline_stored(source)?;
            let (rel, path) = self.part_path(name)?;
            if info.stored_size <= self.inline_budget() {
                self.inline(info, stored, false)
            } else {
                let info = PartInfo {
                    path: rel,
                    origin_epoch: self.epoch,
                    storage: PartStorage::Object,
                    ..info
                };
                PartState::Deferred(info, stored, path)
            }
        } else {
            PartState::Done(info)
        };
        self.claim_name(name)?;
        self.push(state);
        Ok(())
    }

    /// Uploads the copies of referenced inline parts that did not fit inline.
    async fn upload_deferred(&mut self) -> Result<()> {
        for i in 0..self.parts.len() {
            let PartState::Deferred(info, stored, path) = &self.parts[i] else {
                continue;
            };
            let (info, stored, path) = (info.clone(), stored.clone(), path.clone());
            self.record_written(path.clone());
            self.upload(&path, stored).await?;
            self.parts[i] = PartState::Done(info);
        }
        Ok(())
    }

    /// Commits: creates the manifest at this writer's epoch with put-if-absent. Either every
    /// part becomes visible at once, or none does. `Ok` means committed and `Fenced` means not
    /// committed; a store error means the outcome is unknown to this call (a response lost and
    /// not readable back, or a failed check after the create), as with any lost response, and
    /// `latest()` tells.
    ///
    /// Fails with [`CheckpointError::Fenced`] if the epoch was taken by another writer or a newer
    /// generation started; with [`CheckpointError::PartNotFinished`] if a streamed part was not
    /// shut down successfully. A conditional put whose response was lost is settled by reading
    /// the manifest back and comparing writer ids.
    pub async fn commit(&mut self) -> Result<Epoch> {
        if self.committed {
            return Err(CheckpointError::InvalidArgument(format!(
                "checkpoint {} is already committed",
                self.epoch
            )));
        }
        // Fails early if a streamed part is not finished.
        self.check_references(&self.finished_parts()?).await?;
        self.upload_deferred().await?;
        let mut draft = self.manifest()?;
        if self.shared.local.is_some() {
            // The part checks are stats; the inline parts' checksums are computed by the thread
            // that writes the manifest, right before it copies the same bytes (`RecordDraft`).
            self.check_own_parts().await?;
        } else {
            // The checksums are computed while the store answers the part checks.
            let (own, ()) = tokio::join!(self.check_own_parts(), draft.checksum_async());
            own?;
        }
        // The retirement check runs beside the create instead of before it: one round trip
        // less per commit. A create that landed in a retired slot is taken back below.
        let (outcome, retired) = tokio::join!(
            sequence::create(&self.shared, self.epoch, draft),
            self.check_not_retired()
        );
        let outcome = outcome?;
        if matches!(outcome, CreateOutcome::Created) {
            self.confirm_not_retired(retired).await?;
        }
        self.settle(outcome)
    }

    /// Settles the retirement check that ran beside a create that succeeded.
    ///
    /// The record before this epoch being gone means one of two things. Either retention ran
    /// after the manifest landed (it kept this checkpoint, or a newer one, and deleted older
    /// records): the commit stands. Or this epoch was taken by another writer and retired
    /// before the manifest landed, and the create filled a freed slot. Retention never deletes
    /// the newest checkpoint, so in the second case records after this epoch exist; in the
    /// first, only if they were appended after this manifest, within the moment this check
    /// took. If any exist, the manifest is deleted again and the commit fails with
    /// [`CheckpointError::Fenced`] (never acknowledged, so nothing acknowledged is lost).
    async fn confirm_not_retired(&self, retired: Result<()>) -> Result<()> {
        let fenced = match retired {
            Ok(()) => return Ok(()),
            Err(e @ CheckpointError::Fenced { .. }) => e,
            // Could not tell: ask again, now that the manifest exists. An error here leaves
            // the outcome unknown to the caller, as a lost response would.
            Err(_) => match self.check_not_retired().await {
                Ok(()) => return Ok(()),
                Err(e @ CheckpointError::Fenced { .. }) => e,
                Err(e) => return Err(e),
            },
        };
        if sequence::positions(&self.shared, Some(self.epoch))
            .await?
            .is_empty()
        {
            return Ok(());
        }
        let path = layout::manifest_path(&self.shared.root, self.epoch);
        tracing::warn!(epoch = %self.epoch, %path, "manifest landed in a retired slot; deleting it");
        match self.shared.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            // Left for retention, which deletes it with the records before the newer ones.
            Err(e) => {
                tracing::warn!(%path, error = %e, "could not delete the manifest in a retired slot")
            }
        }
        Err(fenced)
    }

    /// This checkpoint's manifest record with the stored bytes of its inline parts, whose
    /// checksums `put_part` left to commit still pending.
    fn manifest(&self) -> Result<RecordDraft> {
        let record = Record {
            kind: RecordKind::Checkpoint,
            epoch: self.epoch,
            writer_id: self.writer_id.clone(),
            generation: self.generation,
            created_unix_ms: now_unix_ms(),
            parts: self.finished_parts()?,
            format_version: CURRENT_FORMAT,
            blob: None,
        };
        let (blob, pending) = self
            .parts
            .iter()
            .filter_map(|p| match p {
                PartState::Inline(_, stored, pending) => Some((stored.clone(), *pending)),
                _ => None,
            })
            .unzip();
        Ok(RecordDraft::new(record, blob, pending))
    }

    /// Turns the outcome of the manifest's conditional create into `commit()`'s result.
    fn settle(&mut self, outcome: CreateOutcome) -> Result<Epoch> {
        match outcome {
            CreateOutcome::Created => {
                self.committed = true;
                self.tail_hint.advance((self.epoch, self.generation));
                tracing::debug!(epoch = %self.epoch, generation = self.generation, "checkpoint committed");
                Ok(self.epoch)
            }
            CreateOutcome::Taken(found) => {
                if let Some(r) = &found {
                    self.tail_hint.advance((self.epoch, r.generation));
                }
                let reason = match found {
                    Some(r) if r.generation > self.generation => {
                        format!("writer generation {} has started", r.generation)
                    }
                    Some(r) => format!(
                        "epoch {} was committed by writer {}",
                        self.epoch, r.writer_id
                    ),
                    None => format!("epoch {} is taken by an unreadable record", self.epoch),
                };
                Err(CheckpointError::Fenced {
                    epoch: self.epoch,
                    generation: self.generation,
                    reason,
                })
            }
        }
    }

    fn finished_parts(&self) -> Result<Vec<PartInfo>> {
        self.parts
            .iter()
            .map(|part| match part {
                PartState::Done(info)
                | PartState::Inline(info, _, _)
                | PartState::Deferred(info, _, _) => Ok(info.clone()),
                PartState::Streaming(name, slot) => {
                    match &*slot.lock().unwrap_or_else(|p| p.into_inner()) {
                        PartSlot::Done(info) => Ok(info.clone()),
                        PartSlot::Open => Err(CheckpointError::PartNotFinished {
                            name: name.clone(),
                            reason: "the part writer was not shut down".into(),
                        }),
                        PartSlot::Failed(reason) => Err(CheckpointError::PartNotFinished {
                            name: name.clone(),
                            reason: reason.clone(),
                        }),
                    }
                }
            })
            .collect()
    }

    /// The record before this writer's epoch existed at `begin()`. Retention only ever deletes a
    /// prefix of the sequence, so if that record is gone, this writer's position may have been
    /// filled by someone else and retired since: committing into the freed slot would give the
    /// epoch a second owner ([`confirm_not_retired`](Self::confirm_not_retired) decides).
    async fn check_not_retired(&self) -> Result<()> {
        let Some(previous) = self.epoch.0.checked_sub(1).map(Epoch) else {
            return Ok(());
        };
        let path = layout::manifest_path(&self.shared.root, previous);
        match self.shared.object_size(&path).await? {
            Some(_) => Ok(()),
            None => Err(CheckpointError::Fenced {
                epoch: self.epoch,
                generation: self.generation,
                reason: format!(
                    "position {previous} was retired by retention since begin(): the epoch was taken"
                ),
            }),
        }
    }

    /// Referenced parts of older checkpoints must still exist when the manifest is created.
    async fn check_references(&self, parts: &[PartInfo]) -> Result<()> {
        let older = |p: &&PartInfo| !p.is_inline() && p.origin_epoch != self.epoch;
        let lost =
            "a referenced part of an older checkpoint was deleted (by retention, or by hand)";
        check_exist(
            &self.shared,
            parts.iter().filter(older).cloned().collect(),
            lost,
        )
        .await
    }

    /// This writer's own part objects must still exist when the manifest is created. A
    /// `collect_garbage` run elsewhere with a grace period shorter than this checkpoint has
    /// taken so far sees them as orphans and deletes them; committing anyway would publish a
    /// checkpoint that cannot be restored, after which a driver may already have dropped the
    /// data it replaces. Checked after the last upload, as close to the manifest as possible.
    async fn check_own_parts(&self) -> Result<()> {
        let own = |p: &PartInfo| !p.is_inline() && p.origin_epoch == self.epoch;
        let parts = self.finished_parts()?.into_iter().filter(own).collect();
        let lost = "deleted while this checkpoint was being written; was collect_garbage run \
                    with a grace period shorter than a checkpoint takes?";
        check_exist(&self.shared, parts, lost).await
    }

    /// Gives up this checkpoint and deletes the parts it stored.
    pub async fn abort(mut self) -> Result<()> {
        let paths = std::mem::take(&mut *self.written.lock().unwrap_or_else(|p| p.into_inner()));
        self.committed = true; // nothing left for Drop to do
        delete_paths(&self.shared, paths).await
    }
}

/// Checks that every part in `parts` exists with its stored size, a few at a time; a missing
/// one is [`CheckpointError::PartMissing`] with `lost` as the likely cause.
async fn check_exist(shared: &Shared, parts: Vec<PartInfo>, lost: &'static str) -> Result<()> {
    futures::stream::iter(parts)
        .map(|part| check_exists(shared, part, lost))
        .buffer_unordered(PART_CHECKS_IN_FLIGHT)
        .try_collect()
        .await
}

async fn check_exists(shared: &Shared, part: PartInfo, lost: &'static str) -> Result<()> {
    match part_check::part_problem(shared, &part).await? {
        None => Ok(()),
        Some(PartProblem::Missing) => Err(CheckpointError::PartMissing {
            path: layout::resolve(&shared.root, &part.path)?.to_string(),
            name: part.name,
            reason: lost.to_string(),
        }),
        Some(PartProblem::WrongSize(size)) => Err(CheckpointError::corrupt(
            format!("part {}", part.name),
            layout::resolve(&shared.root, &part.path)?,
            format!("size {size}, manifest says {}", part.stored_size),
        )),
    }
}

async fn delete_paths(shared: &Shared, paths: Vec<Path>) -> Result<()> {
    for path in paths {
        match shared.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(CheckpointError::store("delete", &path, e)),
        }
    }
    Ok(())
}

impl Drop for CheckpointWriter {
    fn drop(&mut self) {
        if !self.committed {
            // Like a crash: the parts stay (listed as an incomplete or fenced attempt) until
            // collect_garbage() removes them after its grace period, or abort() is used instead.
            tracing::debug!(epoch = %self.epoch, writer = %self.writer_id, "checkpoint writer dropped without commit");
        }
    }
}
