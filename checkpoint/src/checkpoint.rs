//! Reading a committed checkpoint, and what `list()` reports about each checkpoint.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;

use crate::{
    CheckpointError, Epoch, checksum,
    error::Result,
    fetch, layout,
    manifest::{Compression, PartInfo, Record},
    reader::{self, PartReader},
    sequence,
    store::Shared,
};

/// Parts verified at once by [`Checkpoint::verify`].
const VERIFY_CONCURRENCY: usize = 4;

/// A committed checkpoint whose manifest verified when it was loaded.
#[derive(Clone)]
pub struct Checkpoint {
    shared: Arc<Shared>,
    record: Record,
    skipped: Vec<SkippedCheckpoint>,
}

/// A newer checkpoint that [`crate::CheckpointStore::latest`] passed over, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SkippedCheckpoint {
    /// Its epoch.
    pub epoch: Epoch,
    /// What was wrong with it.
    pub reason: String,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("epoch", &self.record.epoch)
            .field("generation", &self.record.generation)
            .field("parts", &self.part_names())
            .field("skipped", &self.skipped)
            .finish()
    }
}

impl Checkpoint {
    pub(crate) fn new(
        shared: Arc<Shared>,
        record: Record,
        skipped: Vec<SkippedCheckpoint>,
    ) -> Self {
        Self {
            shared,
            record,
            skipped,
        }
    }

    /// The checkpoint's epoch.
    pub fn epoch(&self) -> Epoch {
        self.record.epoch
    }

    /// Names of its parts, in the order they were written.
    pub fn part_names(&self) -> Vec<String> {
        self.record.parts.iter().map(|p| p.name.clone()).collect()
    }

    /// The manifest entries of its parts.
    pub fn parts(&self) -> &[PartInfo] {
        &self.record.parts
    }

    /// The manifest entry of one part.
    pub fn part(&self, name: &str) -> Option<&PartInfo> {
        self.record.parts.iter().find(|p| p.name == name)
    }

    /// The generation of the writer that committed it.
    pub fn generation(&self) -> u64 {
        self.record.generation
    }

    /// The id of the writer that committed it.
    pub fn writer_id(&self) -> &str {
        &self.record.writer_id
    }

    /// When it was committed (the writer's clock).
    pub fn created(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.record.created_unix_ms)
    }

    /// The manifest format version it was read from.
    pub fn format_version(&self) -> u32 {
        self.record.format_version
    }

    /// Newer checkpoints that were damaged and passed over to reach this one.
    pub fn skipped(&self) -> &[SkippedCheckpoint] {
        &self.skipped
    }

    /// The decoded manifest as JSON, in the layout of the current format (a manifest read from
    /// an older format is shown upgraded; [`format_version`](Self::format_version) tells which
    /// format it was stored in). For tools that print the raw structure.
    pub fn manifest_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.record).unwrap_or_else(|e| {
            // Serializing plain data to a JSON value cannot fail; say so rather than panic.
            serde_json::json!({ "error": format!("manifest does not serialize: {e}") })
        })
    }

    fn part_or_err(&self, name: &str) -> Result<&PartInfo> {
        self.part(name).ok_or_else(|| CheckpointError::NoSuchPart {
            epoch: self.epoch(),
            name: name.to_string(),
        })
    }

    /// Reads a whole part, checking the stored size and CRC32C and, after decompression, the
    /// logical size and CRC32C. An inline part comes from the manifest read when this checkpoint
    /// was loaded, whose checksum covered its bytes.
    pub async fn read_part(&self, name: &str) -> Result<Bytes> {
        let part = self.part_or_err(name)?;
        let path = layout::resolve(&self.shared.root, &part.path)?;
        let what = format!("part {name}");
        let stored = self.stored_bytes(part, &what, &path).await?;
        let data = match part.compression {
            Compression::None => stored,
            Compression::Zstd => {
                let capacity = usize::try_from(part.size).map_err(|_| {
                    CheckpointError::corrupt(&what, &path, "size does not fit in memory")
                })?;
                let decoded =
                    tokio::task::spawn_blocking(move || zstd::bulk::decompress(&stored, capacity))
                        .await
                        .map_err(|e| CheckpointError::Io {
                            context: format!("decompressing {path}"),
                            source: std::io::Error::other(e),
                        })?
                        .map_err(|e| {
                            CheckpointError::corrupt(&what, &path, format!("zstd: {e}"))
                        })?;
                Bytes::from(decoded)
            }
        };
        if part.compression != Compression::None {
            let crc = checksum::crc32c_async(data.clone()).await;
            check(&what, &path, data.len() as u64, crc, part.size, part.crc32c)?;
        }
        Ok(data)
    }

    /// A part's stored bytes: its object, read and checked against the manifest, or its slice
    /// of the manifest's blob.
    async fn stored_bytes(&self, part: &PartInfo, what: &str, path: &Path) -> Result<Bytes> {
        if part.is_inline() {
            return self.inline_stored(part);
        }
        let (stored, stored_crc) = self.fetch_with_crc(path).await?;
        check(
            what,
            path,
            stored.len() as u64,
            stored_crc,
            part.stored_size,
            part.stored_crc32c,
        )?;
        Ok(stored)
    }

    /// The stored bytes of an inline part of this checkpoint.
    pub(crate) fn inline_stored(&self, part: &PartInfo) -> Result<Bytes> {
        self.record.inline_bytes(part).ok_or_else(|| {
            CheckpointError::corrupt(
                format!("part {}", part.name),
                &part.path,
                "inline bytes are not in the loaded manifest",
            )
        })
    }

    /// Reads a whole object and its CRC32C, checksummed while it is read.
    async fn fetch_with_crc(&self, path: &Path) -> Result<(Bytes, u32)> {
        let fetched = fetch::fetch(&self.shared, path, 0).await?;
        Ok((fetched.bytes, fetched.crc))
    }

    /// Reads every part (streaming, a few at a time) and checks each one's stored size and
    /// CRC32C against the manifest. Inline parts are checked in a fresh read of the manifest,
    /// which must still be the one this checkpoint was loaded from.
    pub async fn verify(&self) -> Result<()> {
        let objects = self.record.parts.iter().filter(|p| !p.is_inline());
        let objects = futures::stream::iter(objects.map(|p| self.verify_part(p)))
            .buffer_unordered(VERIFY_CONCURRENCY)
            .try_collect::<Vec<()>>();
        futures::try_join!(objects, self.verify_inline())?;
        Ok(())
    }

    async fn verify_inline(&self) -> Result<()> {
        if !self.record.parts.iter().any(|p| p.is_inline()) {
            return Ok(());
        }
        let epoch = self.record.epoch;
        let path = layout::manifest_path(&self.shared.root, epoch);
        let stored = sequence::read_record(&self.shared, epoch)
            .await?
            .ok_or_else(|| CheckpointError::corrupt("manifest", &path, "it is gone"))?;
        if stored.writer_id != self.record.writer_id || stored.parts != self.record.parts {
            return Err(CheckpointError::corrupt(
                "manifest",
                &path,
                "it is not the manifest this checkpoint was loaded from",
            ));
        }
        for part in stored.parts.iter().filter(|p| p.is_inline()) {
            let bytes = stored.inline_bytes(part).unwrap_or_default();
            check(
                &format!("part {}", part.name),
                &path,
                bytes.len() as u64,
                checksum::append(0, &bytes),
                part.stored_size,
                part.stored_crc32c,
            )?;
        }
        Ok(())
    }

    async fn verify_part(&self, part: &PartInfo) -> Result<()> {
        let path = layout::resolve(&self.shared.root, &part.path)?;
        let mut chunks = reader::object_chunks(&self.shared, &path).await?;
        let (mut crc, mut size) = (0u32, 0u64);
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| CheckpointError::store("read", &path, e))?;
            crc = crate::checksum::append(crc, &chunk);
            size += chunk.len() as u64;
        }
        check(
            &format!("part {}", part.name),
            &path,
            size,
            crc,
            part.stored_size,
            part.stored_crc32c,
        )
    }

    /// Opens a part for streaming reads (a Tokio `AsyncRead`), decompressing on the fly with
    /// bounded memory. Sizes and checksums are checked when the end is reached; a damaged part
    /// fails the final read with `InvalidData`.
    pub async fn part_reader(&self, name: &str) -> Result<PartReader> {
        let part = self.part_or_err(name)?;
        let path = layout::resolve(&self.shared.root, &part.path)?;
        if part.is_inline() {
            let stored = self.inline_stored(part)?;
            return PartReader::from_stored(stored, &path, part.clone());
        }
        PartReader::open(&self.shared, &path, part.clone()).await
    }
}

fn check(
    what: &str,
    path: &Path,
    size: u64,
    crc: u32,
    want_size: u64,
    want_crc: u32,
) -> Result<()> {
    if size != want_size {
        return Err(CheckpointError::corrupt(
            what,
            path,
            format!("size {size}, manifest says {want_size}"),
        ));
    }
    if crc != want_crc {
        return Err(CheckpointError::corrupt(
            what,
            path,
            format!("crc32c {crc:08x}, manifest says {want_crc:08x}"),
        ));
    }
    Ok(())
}

/// What [`crate::CheckpointStore::list`] found about one checkpoint (or one writer's attempt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckpointState {
    /// Committed; its manifest verifies and every part it names exists with the recorded size.
    Complete,
    /// Parts without a manifest from a writer that may still commit (or died before it could).
    Incomplete,
    /// A manifest that does not verify, or names parts that are missing or of the wrong size.
    Corrupt,
    /// Parts of a writer that can never commit: its epoch went to another writer, or a newer
    /// generation started.
    Fenced,
}

/// One entry of [`crate::CheckpointStore::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckpointInfo {
    /// The epoch (for an attempt without a manifest: the epoch its writer was given).
    pub epoch: Epoch,
    /// Its state.
    pub state: CheckpointState,
    /// The writer's id, when known.
    pub writer_id: Option<String>,
    /// The writer's generation, when known.
    pub generation: Option<u64>,
    /// Commit time from the manifest, when readable.
    pub created: Option<SystemTime>,
    /// Number of parts (named by the manifest, or found for an attempt).
    pub parts: usize,
    /// Bytes stored by those parts.
    pub bytes: u64,
    /// Why it is corrupt, fenced or incomplete.
    pub detail: Option<String>,
}
