//! Sequence records: checkpoint manifests and writer-generation claims, and their on-store format.
//!
//! # Format
//!
//! Every record is one object in the store, written once with put-if-absent and never changed:
//!
//! ```text
//! TIDEMARK-MANIFEST <version>\n      header: magic, a space, the decimal format version
//! <body>\n                           one UTF-8 JSON object (layout per version, below)
//! crc32c <8 lowercase hex digits>\n  CRC32C (Castagnoli) of every byte before this line
//! ```
//!
//! A reader checks the magic, then the version (an unknown newer version is
//! [`CheckpointError::UnsupportedFormat`], never a guess), then the checksum, then decodes the body
//! with the decoder of that version. Every older version stays readable.
//!
//! * **Version 1** (tidemark 0.1 pre-release): a checkpoint manifest only.
//!   `{"epoch", "writer_id", "generation", "created_unix_ms", "parts": [{"name", "path", "size",
//!   "crc32c"}]}`; parts are stored uncompressed, so the stored size and checksum equal the logical
//!   ones, and every part belongs to the manifest's own epoch.
//! * **Version 2** (current): `{"kind": "checkpoint" | "claim", "epoch", "writer_id", "generation",
//!   "created_unix_ms", "parts": [...]}` where each part is `{"name", "path", "size", "crc32c",
//!   "stored_size", "stored_crc32c", "compression": "none" | "zstd", "origin_epoch"}`. `size` and
//!   `crc32c` describe the part's logical bytes, `stored_*` the object as stored (after
//!   compression). `origin_epoch` is the epoch whose writer wrote the object: an incremental
//!   checkpoint references parts of older epochs. A `claim` record has no parts and records the
//!   start of a new writer generation.
//!
//! Part paths are relative to the checkpoint root, so a checkpoint directory can be moved.

use serde::{Deserialize, Serialize};

use crate::{CheckpointError, Epoch, error::Result};

/// Magic at the start of every record.
const MAGIC: &str = "TIDEMARK-MANIFEST";
/// The format this build writes.
pub const CURRENT_FORMAT: u32 = 2;

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

/// One part of a checkpoint as recorded in its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PartInfo {
    /// The name the writer gave the part.
    pub name: String,
    /// Object path relative to the checkpoint root.
    pub path: String,
    /// Logical (uncompressed) size in bytes.
    pub size: u64,
    /// CRC32C of the logical bytes.
    pub crc32c: u32,
    /// Size of the stored object.
    pub stored_size: u64,
    /// CRC32C of the stored object's bytes.
    pub stored_crc32c: u32,
    /// Compression of the stored object.
    pub compression: Compression,
    /// The epoch whose writer stored the object (older than the manifest's epoch for a part
    /// shared by an incremental checkpoint).
    pub origin_epoch: Epoch,
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
                })
                .collect(),
            format_version: 1,
        }
    }
}

impl Record {
    /// Encodes the record in the current format.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let body = serde_json::to_vec(self).map_err(|e| CheckpointError::Io {
            context: format!("encoding manifest for epoch {}", self.epoch),
            source: e.into(),
        })?;
        let mut out = Vec::with_capacity(body.len() + 64);
        out.extend_from_slice(format!("{MAGIC} {CURRENT_FORMAT}\n").as_bytes());
        out.extend_from_slice(&body);
        out.push(b'\n');
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(format!("crc32c {crc:08x}\n").as_bytes());
        Ok(out)
    }

    /// Decodes a record of any supported format; `path` is only used in errors.
    pub fn decode(bytes: &[u8], path: &str) -> Result<Record> {
        let corrupt = |reason: String| CheckpointError::corrupt("manifest", path, reason);
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
        // The frame (magic, version line, checksum trailer) is the same in every version, so a
        // damaged record is reported as corrupt before its version is judged.
        let body = verify_trailer(bytes, &corrupt)?;
        if version > CURRENT_FORMAT || version == 0 {
            return Err(CheckpointError::UnsupportedFormat {
                path: path.to_string(),
                found: version,
                supported: CURRENT_FORMAT,
            });
        }
        let body = &body[header_end + 1..];
        let record = match version {
            1 => serde_json::from_slice::<RecordV1>(body).map(RecordV1::upgrade),
            _ => serde_json::from_slice::<Record>(body).map(|mut r| {
                r.format_version = version;
                r
            }),
        }
        .map_err(|e| corrupt(format!("body does not decode: {e}")))?;
        Ok(record)
    }
}

/// Checks the `crc32c` trailer and returns the bytes it covers (header and body with its newline).
fn verify_trailer<'a>(
    bytes: &'a [u8],
    corrupt: &dyn Fn(String) -> CheckpointError,
) -> Result<&'a [u8]> {
    const TRAILER_LEN: usize = "crc32c 00000000\n".len();
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
    let actual = crc32c::crc32c(covered);
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
mod tests {
    use super::*;

    fn sample() -> Record {
        Record {
            kind: RecordKind::Checkpoint,
            epoch: Epoch(7),
            writer_id: "w1".into(),
            generation: 3,
            created_unix_ms: 1_700_000_000_000,
            parts: vec![PartInfo {
                name: "metadata".into(),
                path: "parts/00000000000000000007/3-w1/metadata".into(),
                size: 10,
                crc32c: 1,
                stored_size: 8,
                stored_crc32c: 2,
                compression: Compression::Zstd,
                origin_epoch: Epoch(7),
            }],
            format_version: CURRENT_FORMAT,
        }
    }

    #[test]
    fn round_trips() {
        let r = sample();
        let bytes = r.encode().unwrap();
        assert_eq!(Record::decode(&bytes, "m").unwrap(), r);
    }

    #[test]
    fn any_flipped_byte_is_detected() {
        let bytes = sample().encode().unwrap();
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x01;
            assert!(
                Record::decode(&damaged, "m").is_err(),
                "flip at {i} went unnoticed"
            );
        }
    }

    #[test]
    fn truncation_is_detected() {
        let bytes = sample().encode().unwrap();
        for len in 0..bytes.len() {
            assert!(Record::decode(&bytes[..len], "m").is_err());
        }
    }

    #[test]
    fn newer_format_is_a_clear_error() {
        let bytes = sample().encode().unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let covered = text.rsplit_once("crc32c ").unwrap().0.replacen(
            &format!("{MAGIC} {CURRENT_FORMAT}"),
            &format!("{MAGIC} 99"),
            1,
        );
        let reframed = format!(
            "{covered}crc32c {:08x}\n",
            crc32c::crc32c(covered.as_bytes())
        );
        match Record::decode(reframed.as_bytes(), "m") {
            Err(CheckpointError::UnsupportedFormat { found: 99, .. }) => {}
            other => panic!("expected UnsupportedFormat, got {other:?}"),
        }
    }
}
