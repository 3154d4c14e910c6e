//! Sequence records: checkpoint manifests and writer-generation claims, and their on-store format.
//!
//! # Format
//!
//! Every record is one object in the store, written once with put-if-absent and never changed.
//! Every version shares the first line and the last:
//!
//! ```text
//! TIDEMARK-MANIFEST <version>\n      header: magic, a space, the decimal format version
//! ...                                version-specific (below), ending with a newline
//! crc32c <8 lowercase hex digits>\n  CRC32C (Castagnoli) of every byte before this line
//! ```
//!
//! A reader checks the magic, then the checksum, then the version (an unknown newer version is
//! [`CheckpointError::UnsupportedFormat`], never a guess), then decodes the rest with the decoder
//! of that version. Every older version stays readable. Because the frame is shared, a build that
//! only knows older versions reports a newer record as an unsupported format, not as damage.
//!
//! * **Version 1** (tidemark 0.1 pre-release): `<body>\n` between header and trailer, a checkpoint
//!   manifest only. `{"epoch", "writer_id", "generation", "created_unix_ms", "parts": [{"name",
//!   "path", "size", "crc32c"}]}`; parts are stored uncompressed, so the stored size and checksum
//!   equal the logical ones, and every part belongs to the manifest's own epoch.
//! * **Version 2**: `<body>\n` between header and trailer. `{"kind": "checkpoint" | "claim",
//!   "epoch", "writer_id", "generation", "created_unix_ms", "parts": [...]}` where each part is
//!   `{"name", "path", "size", "crc32c", "stored_size", "stored_crc32c", "compression": "none" |
//!   "zstd", "origin_epoch"}`. `size` and `crc32c` describe the part's logical bytes, `stored_*`
//!   the object as stored (after compression). `origin_epoch` is the epoch whose writer wrote the
//!   object: an incremental checkpoint references parts of older epochs. A `claim` record has no
//!   parts and records the start of a new writer generation.
//! * **Version 3** (current): small parts travel inside the record, so a small checkpoint commits
//!   with one write.
//!
//!   ```text
//!   TIDEMARK-MANIFEST 3\n
//!   body <B> crc32c <8 hex> blob <N>\n   frame line: body length and CRC32C, blob length (decimal)
//!   <body>\n                             B bytes of JSON, then a newline
//!   <blob>\n                             N bytes: the stored bytes of the inline parts, then a newline
//!   crc32c <8 hex>\n                     CRC32C of every byte before this line (blob included)
//!   ```
//!
//!   The body is the version 2 body; a part may add `"storage": {"inline": {"offset": O}}`: its
//!   `stored_size` stored bytes are at offset `O` of the blob, and its `path` is the record's own
//!   path (`manifests/<epoch>.manifest`, the object that holds its bytes). Inline parts belong to
//!   the record's epoch (`origin_epoch` is the record's epoch) and tile the blob: in part order,
//!   each starts where the previous one ended, and together they fill it. Parts without
//!   `storage` are objects at `path`, as in version 2. Claims and manifests without inline parts
//!   have an empty blob.
//!
//!   The frame line lets a reader that only needs the body (listing, retention, garbage
//!   collection) read a prefix of the object: the body checksum vouches for the body, and the
//!   object's size must equal the size the frame line implies, just as a part object's size must
//!   match its manifest. Reading a checkpoint reads the record whole and checks the trailer.
//!
//! Part paths are relative to the checkpoint root, so a checkpoint directory can be moved.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{CheckpointError, Epoch, error::Result, layout};

/// Magic at the start of every record.
const MAGIC: &str = "TIDEMARK-MANIFEST";
/// The format this build writes.
pub const CURRENT_FORMAT: u32 = 3;
/// Length of the `crc32c <8 hex>\n` trailer.
pub(crate) const TRAILER_LEN: usize = "crc32c 00000000\n".len();
/// A frame line longer than this is damage, not a record.
const MAX_FRAME_LINE: usize = 128;

/// How a part's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Stored as written.
    #[default]
    None,
    /// Compressed with zstd (one frame per part).
    Zstd,
}

/// Where a part's stored bytes live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum PartStorage {
    /// In an object of its own at [`PartInfo::path`].
    #[default]
    Object,
    /// Inside the manifest record (format 3): `stored_size` bytes at `offset` of its blob.
    Inline {
        /// Offset in the record's blob.
        offset: u64,
    },
}

impl PartStorage {
    fn is_object(&self) -> bool {
        matches!(self, PartStorage::Object)
    }
}

/// One part of a checkpoint as recorded in its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PartInfo {
    /// The name the writer gave the part.
    pub name: String,
    /// Path, relative to the checkpoint root, of the object holding the stored bytes: the part's
    /// own object, or for an inline part the manifest record.
    pub path: String,
    /// Logical (uncompressed) size in bytes.
    pub size: u64,
    /// CRC32C of the logical bytes.
    pub crc32c: u32,
    /// Size of the stored bytes.
    pub stored_size: u64,
    /// CRC32C of the stored bytes.
    pub stored_crc32c: u32,
    /// Compression of the stored bytes.
    pub compression: Compression,
    /// The epoch whose writer stored the bytes (older than the manifest's epoch for a part object
    /// shared by an incremental checkpoint).
    pub origin_epoch: Epoch,
    /// Whether the stored bytes are an object of their own or inside the manifest.
    #[serde(default, skip_serializing_if = "PartStorage::is_object")]
    pub storage: PartStorage,
}

impl PartInfo {
    /// True when the part's bytes are stored inside its manifest record.
    pub fn is_inline(&self) -> bool {
        !self.storage.is_object()
    }
}

/// What a record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RecordKind {
    /// A committed checkpoint.
    Checkpoint,
    /// The start of a writer generation.
    Claim,
}

/// A decoded sequence record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub kind: RecordKind,
    /// Position in the sequence (the checkpoint's epoch).
    pub epoch: Epoch,
    /// Unique id of the writer (for a claim: of the store instance) that created the record.
    pub writer_id: String,
    /// Writer generation: the sequence position of the generation's claim record.
    pub generation: u64,
    /// Wall-clock creation time, milliseconds since the Unix epoch.
    pub created_unix_ms: u64,
    /// The checkpoint's parts (empty for a claim).
    pub parts: Vec<PartInfo>,
    /// The format version the record was read from (not serialized).
    #[serde(skip, default = "current_format")]
    pub format_version: u32,
    /// The stored bytes of the inline parts, when the record was read whole (its trailer
    /// checked); `None` when only its body was read. Not serialized.
    #[serde(skip)]
    pub blob: Option<Bytes>,
}

fn current_format() -> u32 {
    CURRENT_FORMAT
}

/// Version 1 body: checkpoint manifests only, uncompressed parts of the manifest's own epoch.
#[derive(Deserialize)]
struct RecordV1 {
    epoch: Epoch,
    writer_id: String,
    generation: u64,
    created_unix_ms: u64,
    parts: Vec<PartV1>,
}

#[derive(Deserialize)]
struct PartV1 {
    name: String,
    path: String,
    size: u64,
    crc32c: u32,
}

impl RecordV1 {
    fn upgrade(self) -> Record {
        let epoch = self.epoch;
        Record {
            kind: RecordKind::Checkpoint,
            epoch,
            writer_id: self.writer_id,
            generation: self.generation,
            created_unix_ms: self.created_unix_ms,
            parts: self
                .parts
                .into_iter()
                .map(|p| PartInfo {
                    name: p.name,
                    path: p.path,
                    size: p.size,
                    crc32c: p.crc32c,
                    stored_size: p.size,
                    stored_crc32c: p.crc32c,
                    compression: Compression::None,
                    origin_epoch: epoch,
                    storage: PartStorage::Object,
                })
                .collect(),
            format_version: 1,
            blob: Some(Bytes::new()),
        }
    }
}

/// The version 3 frame line and where the sections start.
#[derive(Debug, Clone, Copy)]
struct Frame {
    body_start: usize,
    body_end: usize,
    body_crc: u32,
    /// The object size the frame implies.
    total_len: u64,
}

/// Result of decoding from a prefix of a record.
#[derive(Debug)]
pub(crate) enum Head {
    /// The record, with its body verified; `blob` is `None` unless the prefix was the whole
    /// object.
    Record(Box<Record>),
    /// The prefix is too short: read at least this many bytes (up to the whole object).
    NeedPrefix(u64),
}

impl Record {
    /// Encodes a record whose blob (if any) it holds, as one buffer.
    #[cfg(test)]
    pub fn encode(&self) -> Result<Vec<u8>> {
        let blob: Vec<Bytes> = self.blob.iter().cloned().collect();
        Ok(self.encode_chunks(&blob)?.concat())
    }

    /// Encodes the record in the current format as chunks to upload back to back; `blob` are the
    /// stored bytes of the inline parts in offset order. The trailer CRC32C is combined from the
    /// header's and the parts' own `stored_crc32c`, so the blob is not read again.
    pub fn encode_chunks(&self, blob: &[Bytes]) -> Result<Vec<Bytes>> {
        let inline_len = self.check_blob_matches(blob)?;
        let body = serde_json::to_vec(self).map_err(|e| CheckpointError::Io {
            context: format!("encoding manifest for epoch {}", self.epoch),
            source: e.into(),
        })?;
        let mut head = format!(
            "{MAGIC} {CURRENT_FORMAT}\nbody {} crc32c {:08x} blob {inline_len}\n",
            body.len(),
            crc32c::crc32c(&body)
        )
        .into_bytes();
        head.extend_from_slice(&body);
        head.push(b'\n');
        let mut crc = crc32c::crc32c(&head);
        for part in self.parts.iter().filter(|p| p.is_inline()) {
            let len = usize::try_from(part.stored_size).map_err(|_| too_big(self.epoch))?;
            crc = crate::checksum::combine(crc, part.stored_crc32c, len);
        }
        crc = crc32c::crc32c_append(crc, b"\n");
        let tail = format!("\ncrc32c {crc:08x}\n");
        let mut chunks = Vec::with_capacity(blob.len() + 2);
        chunks.push(Bytes::from(head));
        chunks.extend(blob.iter().cloned());
        chunks.push(Bytes::from(tail));
        Ok(chunks)
    }

    /// The blob is exactly the inline parts' stored bytes, in order; returns its length.
    fn check_blob_matches(&self, blob: &[Bytes]) -> Result<u64> {
        let blob_len: u64 = blob.iter().map(|c| c.len() as u64).sum();
        let mut next = 0u64;
        for part in &self.parts {
            if let PartStorage::Inline { offset } = part.storage {
                if offset != next {
                    return Err(CheckpointError::InvalidArgument(format!(
                        "inline part {:?} of epoch {} is at offset {offset}, expected {next}",
                        part.name, self.epoch
                    )));
                }
                next += part.stored_size;
            }
        }
        if next != blob_len {
            return Err(CheckpointError::InvalidArgument(format!(
                "inline parts of epoch {} hold {next} bytes, the blob {blob_len}",
                self.epoch
            )));
        }
        Ok(blob_len)
    }

    /// Decodes a whole record of any supported format; `path` is only used in errors.
    pub fn decode(bytes: &Bytes, path: &str) -> Result<Record> {
        Self::decode_checksummed(bytes, None, path)
    }

    /// [`decode`](Self::decode) of a record whose CRC32C up to its trailer (every byte but the
    /// last [`TRAILER_LEN`]) was computed while it was read, if it was.
    pub fn decode_checksummed(
        bytes: &Bytes,
        covered_crc: Option<u32>,
        path: &str,
    ) -> Result<Record> {
        let corrupt = |reason: String| CheckpointError::corrupt("manifest", path, reason);
        let (version, header_end) = parse_header(bytes, &corrupt)?;
        // The frame (magic, version line, checksum trailer) is the same in every version, so a
        // damaged record is reported as corrupt before its version is judged.
        let covered = verify_trailer(bytes, covered_crc, &corrupt)?;
        check_version(version, path)?;
        let record = match version {
            1 => serde_json::from_slice::<RecordV1>(&covered[header_end..])
                .map(RecordV1::upgrade)
                .map_err(|e| corrupt(format!("body does not decode: {e}")))?,
            2 => {
                let mut r = decode_body(&covered[header_end..], &corrupt)?;
                r.format_version = 2;
                r.blob = Some(Bytes::new());
                r
            }
            _ => decode_v3_whole(bytes, header_end, covered.len(), &corrupt)?,
        };
        record.check_parts(&corrupt)?;
        Ok(record)
    }

    /// Decodes a record from a prefix of it (`object_len` is the whole object's size): for
    /// version 3 the body alone is verified and decoded, so listing never reads blobs. Older
    /// versions, unknown versions and short objects need the whole object.
    pub fn decode_head(prefix: &Bytes, object_len: u64, path: &str) -> Result<Head> {
        if prefix.len() as u64 >= object_len {
            return Record::decode(prefix, path).map(|r| Head::Record(Box::new(r)));
        }
        let corrupt = |reason: String| CheckpointError::corrupt("manifest", path, reason);
        let Some(header_end) = prefix.iter().position(|b| *b == b'\n').map(|i| i + 1) else {
            return Ok(Head::NeedPrefix(object_len));
        };
        let (version, _) = parse_header(&prefix[..header_end], &corrupt)?;
        if version != 3 {
            return Ok(Head::NeedPrefix(object_len));
        }
        let Some(frame) = parse_frame(prefix, header_end, &corrupt)? else {
            return Ok(Head::NeedPrefix(object_len));
        };
        if frame.total_len != object_len {
            return Err(corrupt(format!(
                "record is {object_len} bytes, its frame line says {}",
                frame.total_len
            )));
        }
        if prefix.len() <= frame.body_end {
            return Ok(Head::NeedPrefix(frame.body_end as u64 + 1));
        }
        let mut record = decode_v3_body(prefix, &frame, &corrupt)?;
        record.blob = None;
        record.check_parts(&corrupt)?;
        Ok(Head::Record(Box::new(record)))
    }

    /// The parts stored as objects of their own (what retention and collection count).
    pub fn object_parts(&self) -> impl Iterator<Item = &PartInfo> {
        self.parts.iter().filter(|p| !p.is_inline())
    }

    /// The stored bytes of an inline part of a record read whole.
    pub fn inline_bytes(&self, part: &PartInfo) -> Option<Bytes> {
        let PartStorage::Inline { offset } = part.storage else {
            return None;
        };
        let blob = self.blob.as_ref()?;
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(part.stored_size).ok()?)?;
        (end <= blob.len()).then(|| blob.slice(start..end))
    }

    /// Inline parts must be the record's own, in the older formats there are none, and in
    /// format 3 they tile the blob (see the module docs).
    fn check_parts(&self, corrupt: &dyn Fn(String) -> CheckpointError) -> Result<()> {
        let own_path = layout::manifest_rel_path(self.epoch);
        let mut next = 0u64;
        for part in &self.parts {
            let PartStorage::Inline { offset } = part.storage else {
                continue;
            };
            let problem = if self.format_version < 3 {
                Some("an inline part in a format without inline parts".to_string())
            } else if part.origin_epoch != self.epoch || part.path != own_path {
                Some(format!(
                    "inline part of epoch {} at {:?}",
                    part.origin_epoch, part.path
                ))
            } else if offset != next {
                Some(format!("at offset {offset}, expected {next}"))
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(corrupt(format!("part {:?}: {problem}", part.name)));
            }
            next = next.saturating_add(part.stored_size);
        }
        let blob_len = self.blob.as_ref().map(|b| b.len() as u64);
        if blob_len.is_some_and(|len| len != next) {
            return Err(corrupt(format!(
                "inline parts hold {next} bytes, the blob {}",
                blob_len.unwrap_or_default()
            )));
        }
        Ok(())
    }
}

fn too_big(epoch: Epoch) -> CheckpointError {
    CheckpointError::InvalidArgument(format!("an inline part of epoch {epoch} is too large"))
}

fn check_version(version: u32, path: &str) -> Result<()> {
    if version > CURRENT_FORMAT || version == 0 {
        return Err(CheckpointError::UnsupportedFormat {
            path: path.to_string(),
            found: version,
            supported: CURRENT_FORMAT,
        });
    }
    Ok(())
}

/// The format version and the offset just past the header line.
fn parse_header(bytes: &[u8], corrupt: &dyn Fn(String) -> CheckpointError) -> Result<(u32, usize)> {
    let header_end = bytes
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(|| corrupt("no header line".into()))?;
    let header = std::str::from_utf8(&bytes[..header_end])
        .map_err(|_| corrupt("header is not UTF-8".into()))?;
    let version = header
        .strip_prefix(MAGIC)
        .and_then(|v| v.strip_prefix(' '))
        .ok_or_else(|| corrupt(format!("bad magic in header {header:?}")))?
        .parse::<u32>()
        .map_err(|_| corrupt(format!("bad version in header {header:?}")))?;
    Ok((version, header_end + 1))
}

/// Parses the version 3 frame line starting at `at`; `None` if `bytes` ends before it does.
fn parse_frame(
    bytes: &[u8],
    at: usize,
    corrupt: &dyn Fn(String) -> CheckpointError,
) -> Result<Option<Frame>> {
    let rest = &bytes[at.min(bytes.len())..];
    let Some(len) = rest.iter().take(MAX_FRAME_LINE).position(|b| *b == b'\n') else {
        if rest.len() >= MAX_FRAME_LINE {
            return Err(corrupt("no frame line".into()));
        }
        return Ok(None);
    };
    let line = std::str::from_utf8(&rest[..len]).map_err(|_| corrupt("bad frame line".into()))?;
    let bad = || corrupt(format!("bad frame line {line:?}"));
    let fields: Vec<&str> = line.split(' ').collect();
    let ["body", body_len, "crc32c", crc, "blob", blob_len] = fields[..] else {
        return Err(bad());
    };
    let body_len = body_len.parse::<usize>().map_err(|_| bad())?;
    if crc.len() != 8 {
        return Err(bad());
    }
    let body_crc = u32::from_str_radix(crc, 16).map_err(|_| bad())?;
    let blob_len = blob_len.parse::<u64>().map_err(|_| bad())?;
    let body_start = at + len + 1;
    let body_end = body_start.checked_add(body_len).ok_or_else(bad)?;
    let total_len = (body_end as u64)
        .checked_add(blob_len)
        .and_then(|n| n.checked_add(2 + TRAILER_LEN as u64))
        .ok_or_else(bad)?;
    Ok(Some(Frame {
        body_start,
        body_end,
        body_crc,
        total_len,
    }))
}

/// Decodes a whole version 3 record whose trailer verified; `covered_len` is the length of
/// everything before the trailer's preceding newline.
fn decode_v3_whole(
    bytes: &Bytes,
    header_end: usize,
    covered_len: usize,
    corrupt: &dyn Fn(String) -> CheckpointError,
) -> Result<Record> {
    let frame =
        parse_frame(bytes, header_end, corrupt)?.ok_or_else(|| corrupt("no frame line".into()))?;
    if frame.total_len != bytes.len() as u64 {
        return Err(corrupt(format!(
            "record is {} bytes, its frame line says {}",
            bytes.len(),
            frame.total_len
        )));
    }
    let mut record = decode_v3_body(bytes, &frame, corrupt)?;
    let blob_start = frame.body_end + 1;
    record.blob = Some(bytes.slice(blob_start..covered_len));
    Ok(record)
}

/// Verifies and decodes the body a version 3 frame describes (`bytes` reaches past it).
fn decode_v3_body(
    bytes: &[u8],
    frame: &Frame,
    corrupt: &dyn Fn(String) -> CheckpointError,
) -> Result<Record> {
    let body = &bytes[frame.body_start..frame.body_end];
    if bytes.get(frame.body_end) != Some(&b'\n') {
        return Err(corrupt("body is not newline-terminated".into()));
    }
    let crc = crc32c::crc32c(body);
    if crc != frame.body_crc {
        return Err(corrupt(format!(
            "body checksum {crc:08x} does not match recorded {:08x}",
            frame.body_crc
        )));
    }
    let mut record = decode_body(body, corrupt)?;
    record.format_version = 3;
    Ok(record)
}

fn decode_body(body: &[u8], corrupt: &dyn Fn(String) -> CheckpointError) -> Result<Record> {
    serde_json::from_slice::<Record>(body)
        .map_err(|e| corrupt(format!("body does not decode: {e}")))
}

/// Checks the `crc32c` trailer and returns the bytes it covers, without their final newline;
/// `covered_crc` is their checksum if the caller computed it already.
fn verify_trailer<'a>(
    bytes: &'a [u8],
    covered_crc: Option<u32>,
    corrupt: &dyn Fn(String) -> CheckpointError,
) -> Result<&'a [u8]> {
    if bytes.len() < TRAILER_LEN {
        return Err(corrupt("too short for a checksum trailer".into()));
    }
    let (covered, trailer) = bytes.split_at(bytes.len() - TRAILER_LEN);
    let hex = std::str::from_utf8(trailer)
        .ok()
        .and_then(|t| t.strip_prefix("crc32c "))
        .and_then(|t| t.strip_suffix('\n'))
        .ok_or_else(|| corrupt("missing checksum trailer".into()))?;
    let stored =
        u32::from_str_radix(hex, 16).map_err(|_| corrupt(format!("bad checksum {hex:?}")))?;
    let actual = covered_crc.unwrap_or_else(|| crate::checksum::crc32c(covered));
    if stored != actual {
        return Err(corrupt(format!(
            "checksum {actual:08x} does not match recorded {stored:08x}"
        )));
    }
    if covered.last() != Some(&b'\n') {
        return Err(corrupt("body is not newline-terminated".into()));
    }
    Ok(&covered[..covered.len() - 1])
}

#[cfg(test)]
mod tests;
