//! The linear sequence of create-if-absent records that orders claims and commits.
//!
//! Position `n` of the sequence is the object `manifests/<n>.manifest`. It is written exactly
//! once, with a conditional put that fails if the object exists (`If-None-Match: *` on S3, a hard
//! link on local disk, a rename without overwrite on HDFS), so at most one writer ever owns a
//! position. Two kinds of records take positions:
//!
//! * a **claim**: the first `begin()` of a store instance appends one; its position becomes the
//!   instance's writer *generation*;
//! * a **checkpoint manifest**: `commit()` writes it at the epoch the writer was given by
//!   `begin()`; the position is the checkpoint's epoch.
//!
//! Every record carries its writer's generation, and a record can only be appended after every
//! record before it exists, so the newest record names the newest generation. A writer whose
//! generation is older than that is fenced: `begin()` refuses it, and its `commit()` finds its
//! position taken (by the newer claim or a later commit) and fails.

use futures::TryStreamExt;
use object_store::{GetOptions, GetRange, PutMode, PutOptions, PutPayload, local::LocalFileSystem};

use crate::{
    CheckpointError, Epoch,
    error::Result,
    fetch,
    layout::{self, Entry},
    local_fs,
    manifest::{Head, Record, RecordKind, TRAILER_LEN},
    record_draft::RecordDraft,
    store::Shared,
};

/// How a conditional create ended.
#[derive(Debug)]
pub(crate) enum CreateOutcome {
    /// The record is ours (created now, or found to be ours after a lost response).
    Created,
    /// Someone else owns the position; their record if it could be read.
    Taken(Option<Box<Record>>),
}

/// Attempts at a conditional put whose outcome was unknown (timeouts, connection errors).
const AMBIGUOUS_RETRIES: usize = 3;
/// Claim attempts before giving up under extreme contention.
const CLAIM_ATTEMPTS: usize = 64;
/// Records up to this size are read whole when only their body is needed; larger ones (with
/// inline parts) are read by prefix. Covers the body of a manifest of a few hundred parts.
const HEAD_PROBE: u64 = 64 * 1024;

/// Reads and decodes the record at `seq`; `None` if there is none.
pub(crate) async fn read_record(shared: &Shared, seq: Epoch) -> Result<Option<Record>> {
    let path = layout::manifest_path(&shared.root, seq);
    let fetched = match fetch::fetch(shared, &path, TRAILER_LEN).await {
        Ok(f) => f,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    Record::decode_checksummed(&fetched.bytes, Some(fetched.crc), path.as_ref()).map(Some)
}

/// Reads and decodes the record at `seq` without its inline parts' bytes (see
/// [`Record::decode_head`]); `listed_size` is its size from a listing, if known. `None` if
/// there is no record.
pub(crate) async fn read_record_head(
    shared: &Shared,
    seq: Epoch,
    listed_size: Option<u64>,
) -> Result<Option<Record>> {
    if listed_size.is_some_and(|size| size <= HEAD_PROBE) {
        return read_record(shared, seq).await;
    }
    let path = layout::manifest_path(&shared.root, seq);
    let mut want = HEAD_PROBE;
    loop {
        let options = GetOptions {
            range: Some(GetRange::Bounded(0..want)),
            ..GetOptions::default()
        };
        let result = match shared.store.get_opts(&path, options).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            // An empty object rejects any range (as may one replaced since it was listed): read
            // it whole, which reports what is wrong with it.
            Err(_) => return read_record(shared, seq).await,
        };
        let object_len = result.meta.size;
        let prefix = result
            .bytes()
            .await
            .map_err(|e| CheckpointError::store("read", &path, e))?;
        match Record::decode_head(&prefix, object_len, path.as_ref())? {
            Head::Record(record) => return Ok(Some(*record)),
            Head::NeedPrefix(n) if n > prefix.len() as u64 => want = n,
            Head::NeedPrefix(n) => {
                return Err(CheckpointError::corrupt(
                    "manifest",
                    &path,
                    format!(
                        "needs {n} bytes to decode, got {} of {object_len}",
                        prefix.len()
                    ),
                ));
            }
        }
    }
}

/// Sequence positions present in the store, ascending; with `after`, only those past it.
pub(crate) async fn positions(shared: &Shared, after: Option<Epoch>) -> Result<Vec<Epoch>> {
    let dir = layout::manifests_dir(&shared.root);
    let stream = match after {
        Some(seq) => shared
            .store
            .list_with_offset(Some(&dir), &layout::manifest_path(&shared.root, seq)),
        None => shared.store.list(Some(&dir)),
    };
    let metas: Vec<_> = stream
        .try_collect()
        .await
        .map_err(|e| CheckpointError::store("list", &dir, e))?;
    let mut seqs: Vec<Epoch> = metas
        .iter()
        .filter_map(|m| match layout::classify(&shared.root, &m.location) {
            Entry::Manifest(seq) => Some(seq),
            _ => None,
        })
        .collect();
    seqs.sort_unstable();
    Ok(seqs)
}

/// The newest position and the generation it was written by (walking back past damaged
/// records). `hint` is a position known to exist, which narrows the listing.
pub(crate) async fn tail(
    shared: &Shared,
    hint: Option<(Epoch, u64)>,
) -> Result<Option<(Epoch, u64)>> {
    if let Some((seq, generation)) = hint {
        // Positions are only ever created right after the previous one exists, so if the
        // position after the hint is free, the hint is the tail: one HEAD instead of a listing.
        let next = layout::manifest_path(&shared.root, seq.next());
        if shared.object_size(&next).await?.is_none() {
            return Ok(Some((seq, generation)));
        }
    }
    let newer = positions(shared, hint.map(|(seq, _)| seq)).await?;
    if newer.is_empty() {
        if hint.is_some() {
            return Ok(hint);
        }
        return Ok(None);
    }
    for &seq in newer.iter().rev() {
        match read_record_head(shared, seq, None).await {
            Ok(Some(record)) => return Ok(Some((newer[newer.len() - 1], record.generation))),
            Ok(None) => continue,
            Err(CheckpointError::Corrupt { path, reason, .. }) => {
                tracing::warn!(%path, %reason, "skipping damaged sequence record while finding the tail");
            }
            Err(e) => return Err(e),
        }
    }
    // Only damaged records past the hint: the hint's generation is the newest readable one.
    let generation = match hint {
        Some((_, generation)) => generation,
        None => 0,
    };
    Ok(Some((newer[newer.len() - 1], generation)))
}

/// Creates the record at `seq` unless the position is taken; the draft carries the stored
/// bytes of its inline parts (one write carries them). A put whose response was lost is
/// resolved by reading the position back and comparing writer ids.
pub(crate) async fn create(
    shared: &Shared,
    seq: Epoch,
    draft: RecordDraft,
) -> Result<CreateOutcome> {
    let path = layout::manifest_path(&shared.root, seq);
    let writer_id = draft.writer_id().to_string();
    let draft = match &shared.local {
        Some(local) => match create_local(shared, local, seq, draft).await? {
            Ok(outcome) => return Ok(outcome),
            Err(draft) => draft,
        },
        None => draft,
    };
    let payload: PutPayload = draft.encode()?.into_iter().collect();
    let mut last_error = None;
    for _ in 0..AMBIGUOUS_RETRIES {
        let put = shared
            .store
            .put_opts(&path, payload.clone(), PutOptions::from(PutMode::Create))
            .await;
        let already_exists = match put {
            Ok(_) => return Ok(CreateOutcome::Created),
            Err(object_store::Error::AlreadyExists { .. }) => true,
            Err(e) => {
                tracing::warn!(%path, error = %e, "conditional put failed; reading the position back");
                last_error = Some(CheckpointError::store("put-if-absent", &path, e));
                false
            }
        };
        match read_record(shared, seq).await {
            Ok(Some(found)) if found.writer_id == writer_id => {
                return Ok(CreateOutcome::Created);
            }
            Ok(Some(found)) => return Ok(CreateOutcome::Taken(Some(Box::new(found)))),
            Ok(None) if already_exists => {
                // Taken, then removed (retention of a very old position): still not ours.
                return Ok(CreateOutcome::Taken(None));
            }
            Ok(None) => continue,
            Err(CheckpointError::Corrupt { .. }) => return Ok(CreateOutcome::Taken(None)),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| CheckpointError::Contended {
        what: format!("conditional put of {path} ({AMBIGUOUS_RETRIES} attempts)"),
    }))
}

/// [`create`] in a local directory (`local_fs`): the draft is encoded (its pending checksums
/// computed) by the thread that writes the file. Gives the draft back (`Ok(Err(draft))`) where
/// that is unsupported.
async fn create_local(
    shared: &Shared,
    local: &LocalFileSystem,
    seq: Epoch,
    draft: RecordDraft,
) -> Result<std::result::Result<CreateOutcome, RecordDraft>> {
    let path = layout::manifest_path(&shared.root, seq);
    let writer_id = draft.writer_id().to_string();
    // Kept for the fallback: the draft is cheap to clone (its blob is reference-counted).
    let fallback = draft.clone();
    match local_fs::create_with(local, &path, move || draft.encode()).await? {
        Ok(()) => Ok(Ok(CreateOutcome::Created)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            found_taken(shared, seq, &writer_id).await.map(Ok)
        }
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => Ok(Err(fallback)),
        // A local error is no lost response: nothing to read back. A failed sync is not
        // retried (see `local_fs`).
        Err(e) => Err(CheckpointError::Io {
            context: format!("creating {path}"),
            source: e,
        }),
    }
}

/// Who owns position `seq`, which a local create found taken: writer `writer_id` (its earlier
/// attempt landed) or someone else.
async fn found_taken(shared: &Shared, seq: Epoch, writer_id: &str) -> Result<CreateOutcome> {
    match read_record(shared, seq).await {
        Ok(Some(found)) if found.writer_id == writer_id => Ok(CreateOutcome::Created),
        Ok(Some(found)) => Ok(CreateOutcome::Taken(Some(Box::new(found)))),
        // Taken, then removed; or taken by a damaged record: not ours either way.
        Ok(None) | Err(CheckpointError::Corrupt { .. }) => Ok(CreateOutcome::Taken(None)),
        Err(e) => Err(e),
    }
}

/// Appends a claim record for a new writer generation and returns its position.
pub(crate) async fn claim_generation(shared: &Shared, instance_id: &str) -> Result<Epoch> {
    let mut hint = None;
    for attempt in 0..CLAIM_ATTEMPTS {
        let tail = tail(shared, hint).await?;
        let seq = tail.map_or(Epoch(0), |(seq, _)| seq.next());
        let claim = Record {
            kind: RecordKind::Claim,
            epoch: seq,
            writer_id: instance_id.to_string(),
            generation: seq.0,
            created_unix_ms: crate::store::now_unix_ms(),
            parts: Vec::new(),
            format_version: crate::manifest::CURRENT_FORMAT,
            blob: None,
        };
        match create(shared, seq, RecordDraft::without_blob(claim)).await? {
            CreateOutcome::Created => {
                tracing::info!(
                    generation = seq.0,
                    instance = instance_id,
                    "claimed writer generation"
                );
                return Ok(seq);
            }
            CreateOutcome::Taken(found) => {
                hint = found.map(|r| (seq, r.generation));
                let backoff = rand::random_range(1..=(5 * (attempt as u64 + 1)).min(100));
                tokio::time::sleep(std::time::Duration::from_millis(backoff)).await;
            }
        }
    }
    Err(CheckpointError::Contended {
        what: format!("claiming a writer generation ({CLAIM_ATTEMPTS} attempts)"),
    })
}
