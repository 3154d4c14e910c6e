//! The checkpoint store: begin writers, find the latest checkpoint, list, retain, collect garbage.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, path::Path};

use crate::{
    Checkpoint, CheckpointError, CheckpointInfo, CheckpointState, CheckpointWriter, Epoch,
    backend::{self, CheckpointOptions},
    checkpoint::SkippedCheckpoint,
    error::Result,
    layout::{self, Entry},
    manifest::{Record, RecordKind},
    sequence,
};

/// Records read at once when listing.
const READ_CONCURRENCY: usize = 8;

/// What every handle of one store shares.
pub(crate) struct Shared {
    pub store: Arc<dyn ObjectStore>,
    pub root: Path,
    pub options: CheckpointOptions,
    /// `put_part` uses a multipart upload from this many stored bytes on.
    pub multipart_threshold: usize,
}

pub(crate) fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A fresh 128-bit random id in hex.
pub(crate) fn random_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A checkpoint directory on some object store.
///
/// Each `CheckpointStore` value (and its clones) is one *instance*: its first
/// [`begin`](Self::begin) claims a new writer generation, which fences every instance that
/// claimed before it. A restarted driver therefore opens a new instance and takes over; the old
/// one, if still alive, gets [`CheckpointError::Fenced`] from its next `begin()` or `commit()`.
/// Reading (`open`, [`latest`](Self::latest), [`list`](Self::list)) never claims and never fences.
#[derive(Clone)]
pub struct CheckpointStore {
    inner: Arc<Instance>,
}

struct Instance {
    shared: Arc<Shared>,
    location: String,
    instance_id: String,
    /// This instance's generation once claimed.
    generation: tokio::sync::Mutex<Option<u64>>,
    /// The newest sequence position seen and its generation (narrows tail look-ups); writers
    /// update it when they commit.
    tail_hint: TailHint,
}

impl std::fmt::Debug for CheckpointStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointStore")
            .field("location", &self.inner.location)
            .field("instance", &self.inner.instance_id)
            .finish()
    }
}

/// The newest sequence position an instance knows of, and its generation.
#[derive(Clone, Default)]
pub(crate) struct TailHint(Arc<Mutex<Option<(Epoch, u64)>>>);

impl TailHint {
    pub fn get(&self) -> Option<(Epoch, u64)> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves the hint forward (never back).
    pub fn advance(&self, tail: (Epoch, u64)) {
        let mut hint = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if hint.is_none_or(|(seq, _)| seq < tail.0) {
            *hint = Some(tail);
        }
    }
}

/// What [`CheckpointStore::retain_last`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionReport {
    /// Checkpoints kept, newest first.
    pub kept: Vec<Epoch>,
    /// Sequence records deleted (older checkpoints, their claims, damaged manifests).
    pub deleted_records: Vec<Epoch>,
    /// Part objects deleted.
    pub deleted_parts: usize,
}

/// What [`CheckpointStore::collect_garbage`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcReport {
    /// Root-relative paths of orphaned parts deleted.
    pub deleted: Vec<String>,
    /// Orphaned parts spared because they are younger than the grace period.
    pub spared_young: usize,
}

impl CheckpointStore {
    /// Opens the checkpoint directory a URL names (`file://`, `memory://`, `s3://`, `hdfs://`)
    /// with default options. Opening reads nothing and claims nothing.
    pub async fn open(url: &str) -> Result<CheckpointStore> {
        Self::open_with(url, CheckpointOptions::default()).await
    }

    /// Opens with explicit options.
    pub async fn open_with(url: &str, options: CheckpointOptions) -> Result<CheckpointStore> {
        let backend = backend::open(url, &options)?;
        Ok(Self::from_backend(url.to_string(), backend, options))
    }

    /// Uses an existing object store; `root` is the checkpoint directory inside it.
    pub fn from_object_store(
        store: Arc<dyn ObjectStore>,
        root: Path,
        options: CheckpointOptions,
    ) -> Self {
        let location = format!("{store}/{root}");
        let backend = backend::from_store(store, root, &options);
        Self::from_backend(location, backend, options)
    }

    fn from_backend(
        location: String,
        backend: backend::Backend,
        options: CheckpointOptions,
    ) -> Self {
        CheckpointStore {
            inner: Arc::new(Instance {
                shared: Arc::new(Shared {
                    store: backend.store,
                    root: backend.root,
                    options,
                    multipart_threshold: backend.multipart_threshold,
                }),
                location,
                instance_id: random_id(),
                generation: tokio::sync::Mutex::new(None),
                tail_hint: TailHint::default(),
            }),
        }
    }

    /// The object store behind this checkpoint store (with the request deadline applied), for
    /// tools and tests that need raw access.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner.shared.store
    }

    /// The checkpoint root inside [`object_store`](Self::object_store).
    pub fn root(&self) -> &Path {
        &self.inner.shared.root
    }

    /// The path of the manifest (or claim) record at a sequence position.
    pub fn manifest_path(&self, epoch: Epoch) -> Path {
        layout::manifest_path(&self.inner.shared.root, epoch)
    }

    /// The full object path of a root-relative part path from a manifest.
    pub fn part_path(&self, part: &crate::PartInfo) -> Result<Path> {
        layout::resolve(&self.inner.shared.root, &part.path)
    }

    /// The location this store was opened with.
    pub fn location(&self) -> &str {
        &self.inner.location
    }

    /// This instance's writer generation, once its first `begin()` claimed one.
    pub async fn generation(&self) -> Option<u64> {
        *self.inner.generation.lock().await
    }

    fn hint(&self) -> Option<(Epoch, u64)> {
        self.inner.tail_hint.get()
    }

    fn set_hint(&self, tail: (Epoch, u64)) {
        self.inner.tail_hint.advance(tail);
    }

    /// Starts a checkpoint at the next epoch. The instance's first call claims a new writer
    /// generation (its writer gets the position right after the claim). Later calls fail with
    /// [`CheckpointError::Fenced`] once a newer generation has started.
    pub async fn begin(&self) -> Result<CheckpointWriter> {
        let shared = &self.inner.shared;
        let (generation, claimed_now) = {
            let mut slot = self.inner.generation.lock().await;
            match *slot {
                Some(generation) => (generation, None),
                None => {
                    let claimed =
                        sequence::claim_generation(shared, &self.inner.instance_id).await?;
                    *slot = Some(claimed.0);
                    (claimed.0, Some(claimed))
                }
            }
        };
        // Right after a claim the claim record is the tail as far as this writer is concerned:
        // if another driver claims concurrently, it takes the next position and this writer's
        // commit finds its epoch taken.
        let (tail, tail_generation) = match claimed_now {
            Some(claimed) => (claimed, claimed.0),
            None => sequence::tail(shared, self.hint()).await?.ok_or_else(|| {
                CheckpointError::corrupt(
                    "sequence",
                    layout::manifests_dir(&shared.root),
                    "claim record vanished",
                )
            })?,
        };
        self.set_hint((tail, tail_generation));
        let epoch = tail.next();
        if tail_generation > generation {
            return Err(CheckpointError::Fenced {
                epoch,
                generation,
                reason: format!("writer generation {tail_generation} has started"),
            });
        }
        Ok(CheckpointWriter::new(
            Arc::clone(shared),
            epoch,
            generation,
            self.inner.tail_hint.clone(),
        ))
    }

    /// The newest committed checkpoint whose manifest verifies and whose parts all exist.
    /// Damaged newer checkpoints are passed over (see [`Checkpoint::skipped`]); a read error
    /// or a manifest of an unknown newer format is returned, never skipped.
    pub async fn latest(&self) -> Result<Option<Checkpoint>> {
        let shared = &self.inner.shared;
        let mut skipped = Vec::new();
        for seq in sequence::positions(shared, None).await?.into_iter().rev() {
            let reason = match sequence::read_record(shared, seq).await {
                Ok(Some(record)) if record.kind == RecordKind::Claim => continue,
                Ok(Some(record)) => match missing_parts(shared, &record).await? {
                    None => {
                        for s in &skipped {
                            tracing::warn!(?s, fallback = %seq, "latest() skipped a damaged checkpoint");
                        }
                        return Ok(Some(Checkpoint::new(Arc::clone(shared), record, skipped)));
                    }
                    Some(reason) => reason,
                },
                Ok(None) => continue,
                Err(CheckpointError::Corrupt { reason, .. }) => format!("manifest: {reason}"),
                Err(e) => return Err(e),
            };
            skipped.push(SkippedCheckpoint { epoch: seq, reason });
        }
        for s in &skipped {
            tracing::warn!(
                ?s,
                "latest() skipped a damaged checkpoint and found no older one"
            );
        }
        Ok(None)
    }

    /// Every checkpoint and every uncommitted writer attempt, by epoch.
    pub async fn list(&self) -> Result<Vec<CheckpointInfo>> {
        Ok(Inventory::load(&self.inner.shared).await?.infos())
    }

    /// Keeps the newest `keep` complete checkpoints and deletes older ones: their manifests
    /// first (so readers never see a checkpoint with missing parts), then every part they
    /// named that no remaining manifest references. Parts of uncommitted writers are left to
    /// [`collect_garbage`](Self::collect_garbage).
    ///
    /// Only a prefix of the sequence is ever deleted (every record older than the oldest kept
    /// checkpoint, claims included), never the newest record; `commit()` relies on this to
    /// refuse stale writers whose epoch was taken and then retired.
    pub async fn retain_last(&self, keep: usize) -> Result<RetentionReport> {
        if keep == 0 {
            return Err(CheckpointError::InvalidArgument(
                "retain_last(0) would delete every checkpoint; keep at least one".into(),
            ));
        }
        let shared = &self.inner.shared;
        let inventory = Inventory::load(shared).await?;
        let complete: Vec<Epoch> = inventory
            .complete_epochs()
            .into_iter()
            .rev()
            .take(keep)
            .collect();
        let Some(&oldest_kept) = complete.last() else {
            return Ok(RetentionReport::default());
        };
        let (doomed, remaining): (Vec<_>, Vec<_>) = inventory
            .records
            .iter()
            .partition(|(seq, _)| **seq < oldest_kept);
        let referenced: HashSet<&str> = remaining
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok())
            .flat_map(|r| r.parts.iter().map(|p| p.path.as_str()))
            .collect();
        let doomed_parts: HashSet<&str> = doomed
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok())
            .flat_map(|r| r.parts.iter().map(|p| p.path.as_str()))
            .filter(|p| !referenced.contains(p))
            .collect();
        let records: Vec<Path> = doomed
            .iter()
            .map(|(seq, _)| layout::manifest_path(&shared.root, **seq))
            .collect();
        delete_all(shared, records).await?;
        let parts = doomed_parts
            .iter()
            .map(|rel| layout::resolve(&shared.root, rel))
            .collect::<Result<Vec<_>>>()?;
        let deleted_parts = parts.len();
        delete_all(shared, parts).await?;
        let report = RetentionReport {
            kept: complete,
            deleted_records: doomed.iter().map(|(seq, _)| **seq).collect(),
            deleted_parts,
        };
        tracing::info!(?report, "retention done");
        Ok(report)
    }

    /// Deletes orphaned parts: parts no manifest references (writers that died, were fenced or
    /// were dropped, and parts of deleted checkpoints) whose objects are older than `grace`.
    /// Parts of a writer that may still be committing are younger than any sane grace period,
    /// so they are spared. Parts at the epoch of a damaged manifest are always spared.
    pub async fn collect_garbage(&self, grace: Duration) -> Result<GcReport> {
        let shared = &self.inner.shared;
        let inventory = Inventory::load(shared).await?;
        let referenced: HashSet<&str> = inventory
            .readable()
            .flat_map(|r| r.parts.iter().map(|p| p.path.as_str()))
            .collect();
        let damaged: HashSet<Epoch> = inventory
            .records
            .iter()
            .filter(|(_, r)| r.is_err())
            .map(|(seq, _)| *seq)
            .collect();
        let cutoff = SystemTime::now().checked_sub(grace).map_or(0, |t| {
            t.duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64)
        });
        let mut report = GcReport::default();
        let mut doomed = Vec::new();
        for part in &inventory.parts {
            if referenced.contains(part.rel.as_str()) || damaged.contains(&part.epoch) {
                continue;
            }
            if part.meta.last_modified.timestamp_millis() > cutoff {
                report.spared_young += 1;
                continue;
            }
            doomed.push(part.meta.location.clone());
            report.deleted.push(part.rel.clone());
        }
        delete_all(shared, doomed).await?;
        tracing::info!(
            deleted = report.deleted.len(),
            spared = report.spared_young,
            "garbage collected"
        );
        Ok(report)
    }
}

/// Why a checkpoint's parts are not all there, if they are not.
async fn missing_parts(shared: &Shared, record: &Record) -> Result<Option<String>> {
    let checks = record.parts.iter().map(|part| async move {
        let path = layout::resolve(&shared.root, &part.path)?;
        match shared.store.head(&path).await {
            Ok(meta) if meta.size == part.stored_size => Ok(None),
            Ok(meta) => Ok(Some(format!(
                "part {:?} is {} bytes, manifest says {}",
                part.name, meta.size, part.stored_size
            ))),
            Err(object_store::Error::NotFound { .. }) => {
                Ok(Some(format!("part {:?} is missing", part.name)))
            }
            Err(e) => Err(CheckpointError::store("head", &path, e)),
        }
    });
    let problems: Vec<Option<String>> = futures::stream::iter(checks)
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(problems.into_iter().flatten().next())
}

async fn delete_all(shared: &Shared, paths: Vec<Path>) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let stream = futures::stream::iter(paths.into_iter().map(Ok)).boxed();
    let results: Vec<_> = shared.store.delete_stream(stream).collect().await;
    for result in results {
        match result {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(CheckpointError::store("delete", &shared.root, e)),
        }
    }
    Ok(())
}

/// A part object found by listing.
struct PartObject {
    epoch: Epoch,
    generation: u64,
    writer_id: String,
    rel: String,
    meta: ObjectMeta,
}

/// Everything under a checkpoint root: every record (decoded or why not) and every part.
struct Inventory {
    records: BTreeMap<Epoch, Result<Record>>,
    parts: Vec<PartObject>,
    sizes: HashMap<String, u64>,
}

impl Inventory {
    async fn load(shared: &Shared) -> Result<Inventory> {
        let root = &shared.root;
        let metas: Vec<ObjectMeta> = shared
            .store
            .list(Some(root))
            .try_collect()
            .await
            .map_err(|e| CheckpointError::store("list", root, e))?;
        let mut seqs = Vec::new();
        let mut parts = Vec::new();
        for meta in metas {
            match layout::classify(root, &meta.location) {
                Entry::Manifest(seq) => seqs.push(seq),
                Entry::Part {
                    epoch,
                    generation,
                    writer_id,
                    rel,
                } => parts.push(PartObject {
                    epoch,
                    generation,
                    writer_id,
                    rel,
                    meta,
                }),
                Entry::Other => {}
            }
        }
        let reads = seqs.into_iter().map(|seq| async move {
            match sequence::read_record(shared, seq).await {
                Ok(Some(record)) => Ok(Some((seq, Ok(record)))),
                Ok(None) => Ok(None),
                Err(
                    e @ (CheckpointError::Corrupt { .. }
                    | CheckpointError::UnsupportedFormat { .. }),
                ) => Ok(Some((seq, Err(e)))),
                Err(e) => Err(e),
            }
        });
        let records: BTreeMap<Epoch, Result<Record>> = futures::stream::iter(reads)
            .buffer_unordered(READ_CONCURRENCY)
            .try_filter_map(|x| async move { Ok(x) })
            .try_collect()
            .await?;
        let sizes = parts.iter().map(|p| (p.rel.clone(), p.meta.size)).collect();
        Ok(Inventory {
            records,
            parts,
            sizes,
        })
    }

    fn readable(&self) -> impl Iterator<Item = &Record> {
        self.records.values().filter_map(|r| r.as_ref().ok())
    }

    /// The generation of the newest readable record.
    fn newest_generation(&self) -> u64 {
        self.records
            .values()
            .rev()
            .find_map(|r| r.as_ref().ok().map(|r| r.generation))
            .unwrap_or(0)
    }

    /// Why a checkpoint record is not complete, if it is not.
    fn problem(&self, record: &Record) -> Option<String> {
        record
            .parts
            .iter()
            .find_map(|p| match self.sizes.get(&p.path) {
                None => Some(format!("part {:?} is missing", p.name)),
                Some(&size) if size != p.stored_size => Some(format!(
                    "part {:?} is {size} bytes, manifest says {}",
                    p.name, p.stored_size
                )),
                Some(_) => None,
            })
    }

    fn complete_epochs(&self) -> Vec<Epoch> {
        self.readable()
            .filter(|r| r.kind == RecordKind::Checkpoint && self.problem(r).is_none())
            .map(|r| r.epoch)
            .collect()
    }

    fn infos(&self) -> Vec<CheckpointInfo> {
        let mut infos = Vec::new();
        let mut committed_writers = HashSet::new();
        for (seq, record) in &self.records {
            match record {
                Ok(r) if r.kind == RecordKind::Claim => {}
                Ok(r) => {
                    committed_writers.insert(r.writer_id.as_str());
                    let problem = self.problem(r);
                    infos.push(CheckpointInfo {
                        epoch: *seq,
                        state: if problem.is_some() {
                            CheckpointState::Corrupt
                        } else {
                            CheckpointState::Complete
                        },
                        writer_id: Some(r.writer_id.clone()),
                        generation: Some(r.generation),
                        created: Some(UNIX_EPOCH + Duration::from_millis(r.created_unix_ms)),
                        parts: r.parts.len(),
                        bytes: r.parts.iter().map(|p| p.stored_size).sum(),
                        detail: problem,
                    });
                }
                Err(e) => infos.push(CheckpointInfo {
                    epoch: *seq,
                    state: CheckpointState::Corrupt,
                    writer_id: None,
                    generation: None,
                    created: None,
                    parts: 0,
                    bytes: 0,
                    detail: Some(e.to_string()),
                }),
            }
        }
        infos.extend(self.attempts(&committed_writers));
        infos.sort_by_key(|i| (i.epoch, i.state != CheckpointState::Complete));
        infos
    }

    /// Writer directories no manifest commits: fenced or incomplete attempts.
    fn attempts(&self, committed: &HashSet<&str>) -> Vec<CheckpointInfo> {
        let newest_generation = self.newest_generation();
        let mut attempts: BTreeMap<(Epoch, u64, &str), (usize, u64)> = BTreeMap::new();
        let referenced: HashSet<&str> = self
            .readable()
            .flat_map(|r| r.parts.iter().map(|p| p.path.as_str()))
            .collect();
        let orphans = self.parts.iter().filter(|p| {
            !committed.contains(p.writer_id.as_str()) && !referenced.contains(p.rel.as_str())
        });
        for part in orphans {
            let entry = attempts
                .entry((part.epoch, part.generation, part.writer_id.as_str()))
                .or_default();
            entry.0 += 1;
            entry.1 += part.meta.size;
        }
        attempts
            .into_iter()
            .map(|((epoch, generation, writer_id), (parts, bytes))| {
                let taken_by = self.records.get(&epoch).and_then(|r| r.as_ref().ok());
                let (state, detail) = match taken_by {
                    Some(r) => (
                        CheckpointState::Fenced,
                        format!(
                            "epoch {epoch} was taken by writer {} (generation {})",
                            r.writer_id, r.generation
                        ),
                    ),
                    None if newest_generation > generation => (
                        CheckpointState::Fenced,
                        format!("writer generation {newest_generation} has started"),
                    ),
                    None => (
                        CheckpointState::Incomplete,
                        "parts written, no manifest".to_string(),
                    ),
                };
                CheckpointInfo {
                    epoch,
                    state,
                    writer_id: Some(writer_id.to_string()),
                    generation: Some(generation),
                    created: None,
                    parts,
                    bytes,
                    detail: Some(detail),
                }
            })
            .collect()
    }
}
