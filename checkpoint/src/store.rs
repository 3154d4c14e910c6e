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
    local_fs,
    manifest::{Record, RecordKind},
    part_check, redact, sequence,
};

/// Records read at once when listing.
const READ_CONCURRENCY: usize = 8;

/// What every handle of one store shares.
pub(crate) struct Shared {
    pub store: Arc<dyn ObjectStore>,
    pub root: Path,
    /// `store` itself when it is a local directory (see `backend::Backend::local`).
    pub local: Option<Arc<object_store::local::LocalFileSystem>>,
    pub options: CheckpointOptions,
    /// `put_part` uses a multipart upload from this many stored bytes on.
    pub multipart_threshold: usize,
}

impl Shared {
    /// The size of the object at `path`, `None` if there is none: a HEAD, or a `stat` on the
    /// calling thread for a local directory (see `local_fs`).
    pub(crate) async fn object_size(&self, path: &Path) -> Result<Option<u64>> {
        let size = match &self.local {
            Some(local) => local_fs::object_size(local, path),
            None => match self.store.head(path).await {
                Ok(meta) => Ok(Some(meta.size)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            },
        };
        size.map_err(|e| CheckpointError::store("head", path, e))
    }
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

/// What [`CheckpointStore::retain_last`] would delete now: see [`CheckpointStore::plan_cleanup`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionPlan {
    /// Complete checkpoints kept, newest first.
    pub kept: Vec<Epoch>,
    /// Sequence records to delete (older checkpoints, their claims, damaged manifests), ascending.
    pub records: Vec<Epoch>,
    /// Root-relative paths of the part objects to delete, sorted.
    pub parts: Vec<String>,
    /// Bytes those part objects hold, as listed (parts already missing count nothing).
    pub part_bytes: u64,
}

/// A part object that no manifest references, as [`CheckpointStore::plan_cleanup`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OrphanPart {
    /// Root-relative path.
    pub path: String,
    /// The epoch its writer was given.
    pub epoch: Epoch,
    /// Its writer's generation.
    pub generation: u64,
    /// Its writer's id.
    pub writer_id: String,
    /// Stored size.
    pub bytes: u64,
    /// Last modification time reported by the store (whole seconds on S3 and HDFS).
    pub modified: SystemTime,
    location: Path,
}

/// What [`CheckpointStore::collect_garbage`] would do now: see [`CheckpointStore::plan_cleanup`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcPlan {
    /// Orphans older than the grace period: deleted.
    pub delete: Vec<OrphanPart>,
    /// Orphans younger than the grace period (a writer may still commit them): spared.
    pub spared_young: Vec<OrphanPart>,
    /// Orphans at the epoch of a damaged manifest (they may be its parts): spared.
    pub spared_damaged: Vec<OrphanPart>,
}

/// What `retain_last(keep)` followed by `collect_garbage(grace)` would delete if run now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CleanupPlan {
    /// Retention's part.
    pub retention: RetentionPlan,
    /// Orphan collection's part, judged as it would be after retention.
    pub garbage: GcPlan,
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
        Ok(Self::from_backend(redact::url(url), backend, options))
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
                    local: backend.local,
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

    /// The location this store was opened with, credentials masked (safe to log).
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
    /// refuse stale writers whose epoch was taken and then retired (and to tell that case
    /// from retention that ran right after its own manifest landed).
    pub async fn retain_last(&self, keep: usize) -> Result<RetentionReport> {
        check_keep(keep)?;
        let shared = &self.inner.shared;
        let plan = Inventory::load(shared).await?.retention_plan(keep);
        let records: Vec<Path> = plan
            .records
            .iter()
            .map(|seq| layout::manifest_path(&shared.root, *seq))
            .collect();
        delete_all(shared, records).await?;
        let parts = plan
            .parts
            .iter()
            .map(|rel| layout::resolve(&shared.root, rel))
            .collect::<Result<Vec<_>>>()?;
        delete_all(shared, parts).await?;
        let report = RetentionReport {
            kept: plan.kept,
            deleted_records: plan.records,
            deleted_parts: plan.parts.len(),
        };
        tracing::info!(?report, "retention done");
        Ok(report)
    }

    /// Deletes orphaned parts: parts no manifest references (writers that died, were fenced or
    /// were dropped, and parts of deleted checkpoints) whose objects are older than `grace`.
    /// Choose `grace` longer than any checkpoint takes to write: a writer still uploading when
    /// its earlier parts pass the grace period loses them here, and its `commit()` then fails
    /// with [`CheckpointError::PartMissing`] rather than publish a checkpoint that cannot be
    /// restored. Parts at the epoch of a damaged manifest are always spared.
    pub async fn collect_garbage(&self, grace: Duration) -> Result<GcReport> {
        let shared = &self.inner.shared;
        let plan = Inventory::load(shared).await?.gc_plan(grace);
        let doomed = plan.delete.iter().map(|o| o.location.clone()).collect();
        delete_all(shared, doomed).await?;
        let report = GcReport {
            deleted: plan.delete.into_iter().map(|o| o.path).collect(),
            spared_young: plan.spared_young.len(),
        };
        tracing::info!(
            deleted = report.deleted.len(),
            spared = report.spared_young,
            "garbage collected"
        );
        Ok(report)
    }

    /// What [`retain_last(keep)`](Self::retain_last) followed by
    /// [`collect_garbage(grace)`](Self::collect_garbage) would delete if run now. Only reads:
    /// deletes nothing and fences no one. Orphan collection is judged on the store as retention
    /// would leave it (records it deletes no longer protect or reference anything).
    pub async fn plan_cleanup(&self, keep: usize, grace: Duration) -> Result<CleanupPlan> {
        check_keep(keep)?;
        let mut inventory = Inventory::load(&self.inner.shared).await?;
        let retention = inventory.retention_plan(keep);
        inventory.forget(&retention);
        let garbage = inventory.gc_plan(grace);
        Ok(CleanupPlan { retention, garbage })
    }

    /// The committed checkpoint at `epoch`, its manifest verified, whether or not it is the
    /// latest; `None` if no checkpoint manifest is at that position (never written, deleted by
    /// retention, or a writer-generation claim). Only reads. Its parts are not checked here:
    /// [`Checkpoint::verify`] and the reads do that. A damaged manifest is
    /// [`CheckpointError::Corrupt`].
    pub async fn checkpoint(&self, epoch: Epoch) -> Result<Option<Checkpoint>> {
        let shared = &self.inner.shared;
        Ok(sequence::read_record(shared, epoch)
            .await?
            .filter(|record| record.kind == RecordKind::Checkpoint)
            .map(|record| Checkpoint::new(Arc::clone(shared), record, Vec::new())))
    }
}

fn check_keep(keep: usize) -> Result<()> {
    if keep == 0 {
        return Err(CheckpointError::InvalidArgument(
            "retain_last(0) would delete every checkpoint; keep at least one".into(),
        ));
    }
    Ok(())
}

/// Modification times at or before this (milliseconds since the Unix epoch) are older than
/// `grace`.
fn cutoff_ms(grace: Duration) -> i64 {
    SystemTime::now().checked_sub(grace).map_or(0, |t| {
        t.duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    })
}

/// Why a checkpoint's parts are not all there, if they are not.
async fn missing_parts(shared: &Shared, record: &Record) -> Result<Option<String>> {
    let checks = record.object_parts().map(|part| async move {
        let problem = part_check::part_problem(shared, part).await?;
        Ok::<_, CheckpointError>(problem.map(|p| p.describe(part)))
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
                Entry::Manifest(seq) => seqs.push((seq, meta.size)),
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
        let reads = seqs.into_iter().map(|(seq, size)| async move {
            match sequence::read_record_head(shared, seq, Some(size)).await {
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
        // Listing order is the backend's (a local directory's is its hash order): reports and
        // plans list parts by epoch, then path.
        parts.sort_by(|a, b| (a.epoch, &a.rel).cmp(&(b.epoch, &b.rel)));
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
            .object_parts()
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

    /// Part paths named by readable records (for `retention`: by those at or after `from`).
    fn referenced(&self, from: Epoch) -> HashSet<&str> {
        self.records
            .range(from..)
            .filter_map(|(_, r)| r.as_ref().ok())
            .flat_map(|r| r.object_parts().map(|p| p.path.as_str()))
            .collect()
    }

    /// Retention keeps the newest `keep` complete checkpoints and deletes every record older
    /// than the oldest kept one, and the parts those records name that no remaining record does.
    fn retention_plan(&self, keep: usize) -> RetentionPlan {
        let kept: Vec<Epoch> = self
            .complete_epochs()
            .into_iter()
            .rev()
            .take(keep)
            .collect();
        let Some(&oldest_kept) = kept.last() else {
            return RetentionPlan::default();
        };
        let referenced = self.referenced(oldest_kept);
        let doomed: HashSet<&str> = self
            .records
            .range(..oldest_kept)
            .filter_map(|(_, r)| r.as_ref().ok())
            .flat_map(|r| r.object_parts().map(|p| p.path.as_str()))
            .filter(|p| !referenced.contains(p))
            .collect();
        let mut parts: Vec<String> = doomed.into_iter().map(str::to_string).collect();
        parts.sort_unstable();
        RetentionPlan {
            part_bytes: parts.iter().filter_map(|p| self.sizes.get(p)).sum(),
            records: self
                .records
                .range(..oldest_kept)
                .map(|(seq, _)| *seq)
                .collect(),
            kept,
            parts,
        }
    }

    /// The inventory as `plan` would leave it.
    fn forget(&mut self, plan: &RetentionPlan) {
        for seq in &plan.records {
            self.records.remove(seq);
        }
        let gone: HashSet<&str> = plan.parts.iter().map(String::as_str).collect();
        self.parts.retain(|p| !gone.contains(p.rel.as_str()));
        self.sizes.retain(|rel, _| !gone.contains(rel.as_str()));
    }

    /// Orphans (parts no readable record names) sorted by what collection does with them.
    fn gc_plan(&self, grace: Duration) -> GcPlan {
        let referenced = self.referenced(Epoch(0));
        let damaged: HashSet<Epoch> = self
            .records
            .iter()
            .filter(|(_, r)| r.is_err())
            .map(|(seq, _)| *seq)
            .collect();
        let cutoff = cutoff_ms(grace);
        let mut plan = GcPlan::default();
        for part in &self.parts {
            if referenced.contains(part.rel.as_str()) {
                continue;
            }
            let orphan = OrphanPart {
                path: part.rel.clone(),
                epoch: part.epoch,
                generation: part.generation,
                writer_id: part.writer_id.clone(),
                bytes: part.meta.size,
                modified: SystemTime::from(part.meta.last_modified),
                location: part.meta.location.clone(),
            };
            if damaged.contains(&part.epoch) {
                plan.spared_damaged.push(orphan);
            } else if part.meta.last_modified.timestamp_millis() > cutoff {
                plan.spared_young.push(orphan);
            } else {
                plan.delete.push(orphan);
            }
        }
        plan
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
            .flat_map(|r| r.object_parts().map(|p| p.path.as_str()))
            .collect();
        // Parts of an epoch whose record is damaged belong to that (corrupt) entry: without the
        // record nobody can tell whose they are, and GC spares them for the same reason.
        let damaged = |epoch: &Epoch| self.records.get(epoch).is_some_and(|r| r.is_err());
        let orphans = self.parts.iter().filter(|p| {
            !committed.contains(p.writer_id.as_str())
                && !referenced.contains(p.rel.as_str())
                && !damaged(&p.epoch)
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

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use object_store::{ObjectStoreExt, PutPayload};

    use super::*;

    async fn commit(store: &CheckpointStore, base: Option<&Checkpoint>, delta: &str) -> Epoch {
        let mut w = store.begin().await.unwrap();
        match base {
            Some(cp) => w.reference_part("base", cp, "base").unwrap(),
            None => w
                .put_part("base", Bytes::from_static(b"base"))
                .await
                .unwrap(),
        }
        w.put_part("delta", Bytes::from(delta.to_string()))
            .await
            .unwrap();
        w.commit().await.unwrap()
    }

    /// A store whose parts are all objects (no inline parts): these tests count part objects.
    async fn open_objects_only(url: &str) -> CheckpointStore {
        let options = CheckpointOptions::default().with_inline_limit(0);
        CheckpointStore::open_with(url, options).await.unwrap()
    }

    async fn object_count(store: &CheckpointStore) -> usize {
        let all: Vec<_> = store
            .object_store()
            .list(Some(store.root()))
            .try_collect()
            .await
            .unwrap();
        all.len()
    }

    #[tokio::test]
    async fn checkpoint_loads_any_committed_epoch_without_fencing() {
        let url = format!("memory://{}", random_id());
        let driver = CheckpointStore::open(&url).await.unwrap();
        let first = commit(&driver, None, "one").await;
        let second = commit(&driver, None, "two").await;

        let reader = CheckpointStore::open(&url).await.unwrap();
        let cp = reader.checkpoint(first).await.unwrap().expect("first");
        assert_eq!(cp.epoch(), first);
        assert_eq!(cp.read_part("delta").await.unwrap(), Bytes::from("one"));
        let json = cp.manifest_json();
        assert_eq!(json["epoch"], first.0);
        assert_eq!(json["parts"][1]["name"], "delta");
        assert!(reader.checkpoint(second).await.unwrap().is_some());
        // Position 0 is the driver's claim, not a checkpoint; 99 was never written.
        assert!(reader.checkpoint(Epoch(0)).await.unwrap().is_none());
        assert!(reader.checkpoint(Epoch(99)).await.unwrap().is_none());
        assert_eq!(reader.generation().await, None);
        // Reading fenced no one.
        assert!(commit(&driver, None, "three").await > second);

        driver
            .object_store()
            .put(
                &driver.manifest_path(first),
                PutPayload::from_static(b"junk"),
            )
            .await
            .unwrap();
        assert!(matches!(
            reader.checkpoint(first).await,
            Err(CheckpointError::Corrupt { .. })
        ));
    }

    #[tokio::test]
    async fn plan_cleanup_predicts_retention_and_collection_and_deletes_nothing() {
        let url = format!("memory://{}", random_id());
        let store = open_objects_only(&url).await;
        let mut epochs = vec![commit(&store, None, "d0").await];
        for i in 1..4 {
            let latest = store.latest().await.unwrap().unwrap();
            epochs.push(commit(&store, Some(&latest), &format!("d{i}")).await);
        }
        let mut orphan = store.begin().await.unwrap();
        orphan
            .put_part("state", Bytes::from_static(b"never committed"))
            .await
            .unwrap();
        drop(orphan);
        let objects = object_count(&store).await;

        let young = store
            .plan_cleanup(2, Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(young.retention.kept, vec![epochs[3], epochs[2]]);
        assert_eq!(
            young.retention.records,
            (0..epochs[2].0).map(Epoch).collect::<Vec<_>>()
        );
        // Two old deltas go; the shared base stays referenced by the kept checkpoints.
        assert_eq!(young.retention.parts.len(), 2, "{young:?}");
        assert!(young.retention.parts.iter().all(|p| !p.ends_with("/base")));
        assert_eq!(young.retention.part_bytes, 4);
        assert!(young.garbage.delete.is_empty());
        assert_eq!(young.garbage.spared_young.len(), 1);
        assert_eq!(
            object_count(&store).await,
            objects,
            "planning deleted something"
        );

        let plan = store.plan_cleanup(2, Duration::ZERO).await.unwrap();
        assert_eq!(plan.retention, young.retention);
        assert_eq!(plan.garbage.delete.len(), 1);
        assert_eq!(plan.garbage.delete[0].bytes, 15);
        let retained = store.retain_last(2).await.unwrap();
        assert_eq!(retained.kept, plan.retention.kept);
        assert_eq!(retained.deleted_records, plan.retention.records);
        assert_eq!(retained.deleted_parts, plan.retention.parts.len());
        let collected = store.collect_garbage(Duration::ZERO).await.unwrap();
        let planned: Vec<String> = plan.garbage.delete.iter().map(|o| o.path.clone()).collect();
        assert_eq!(collected.deleted, planned);
        assert_eq!(
            object_count(&store).await,
            objects - 2 - 1 - plan.retention.records.len()
        );
        assert!(matches!(
            store.plan_cleanup(0, Duration::ZERO).await,
            Err(CheckpointError::InvalidArgument(_))
        ));
    }

    #[tokio::test]
    async fn parts_at_a_damaged_manifest_are_spared() {
        let url = format!("memory://{}", random_id());
        let store = open_objects_only(&url).await;
        commit(&store, None, "kept").await;
        let damaged = commit(&store, None, "damaged").await;
        store
            .object_store()
            .put(
                &store.manifest_path(damaged),
                PutPayload::from_static(b"junk"),
            )
            .await
            .unwrap();
        let plan = store.plan_cleanup(10, Duration::ZERO).await.unwrap();
        assert!(plan.garbage.delete.is_empty(), "{plan:?}");
        assert_eq!(plan.garbage.spared_damaged.len(), 2);
        assert!(
            plan.garbage
                .spared_damaged
                .iter()
                .all(|o| o.epoch == damaged)
        );
    }
}
