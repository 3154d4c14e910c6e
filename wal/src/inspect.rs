//! Read-only introspection of a log directory, for operator tools.
//!
//! Nothing here takes the directory lock, maps a file or writes a byte: files
//! are read with plain `read` calls, so a log may be inspected while another
//! process appends to it (a frame caught mid-write simply does not verify yet).
//!
//! This module reports raw per-segment facts: headers, the in-order run of
//! verified frames of each segment, and where that run stops. What recovery
//! would *do* with those facts is [`crate::Wal::open_read_only`]'s business
//! (its [`crate::RecoveryReport`]); the two are meant to be shown side by side.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::Lsn;
use crate::error::{Result, WalError};
use crate::format::{
    FLAG_ZSTD, FRAME_HEADER_LEN, FrameHeader, KIND_RECORD, KIND_SEAL, SEGMENT_HEADER_LEN,
    SegmentFileClass, SegmentHeader, classify_segment_file, frame_slot_is_blank,
};
use crate::segment::parse_segment_file_name;

/// The files of a log directory: segment files (by name) and everything else.
#[derive(Clone, Debug, Default)]
pub struct LogDirListing {
    /// Files named `seg-<seq>.wal`: live segments first, in LSN order (base
    /// LSN), then the others by sequence number. Sequence numbers of live
    /// segments need not follow LSN order: spares are numbered when prepared.
    pub segments: Vec<SegmentFile>,
    /// Every other entry (`*.wal.broken`, `*.wal.tmp`, the lock file, strangers).
    pub other_files: Vec<PathBuf>,
}

/// One file named like a segment, and what its header says.
#[derive(Clone, Debug)]
pub struct SegmentFile {
    /// Path of the file.
    pub path: PathBuf,
    /// Sequence number from the file name.
    pub seq: u64,
    /// Length of the file in bytes.
    pub file_size: u64,
    /// What the header says the file is.
    pub kind: SegmentFileKind,
}

/// What a segment-named file is, judged by its header alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SegmentFileKind {
    /// A live segment whose header verifies and names this file's sequence number.
    Live(SegmentHeaderFacts),
    /// A prepared or recycled file holding no live records (blank header, or the
    /// header of an earlier incarnation under another sequence number).
    Spare,
    /// Not a segment of this format (bad magic bytes, too short).
    Foreign(String),
    /// Written by a newer format version than this build reads.
    Unsupported(u32),
    /// The header's checksum does not match: the header is damaged.
    DamagedHeader,
    /// The file could not be read.
    Unreadable(String),
}

/// The decoded header of a live segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeaderFacts {
    /// Format version that wrote it.
    pub version: u32,
    /// Random id of the log; all live segments of one log share it.
    pub log_id: u64,
    /// LSN of the first record of the segment.
    pub base_lsn: Lsn,
    /// When the segment was activated, unix nanoseconds.
    pub created_unix_nanos: u64,
    /// Length the segment was created with.
    pub segment_len: u64,
}

/// What kind of frame a [`FrameInfo`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// A record.
    Record,
    /// The seal that ends a segment on purpose.
    Seal,
}

/// One verified frame, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    /// Byte offset of the frame in its segment file.
    pub offset: u64,
    /// LSN of the record (for a seal: the first LSN of the next segment).
    pub lsn: Lsn,
    /// Record or seal.
    pub kind: FrameKind,
    /// Stored payload bytes (compressed size when compressed).
    pub stored_len: u32,
    /// Bytes the whole frame takes on disk, header and padding included.
    pub frame_len: u64,
    /// True when the payload is a zstd frame.
    pub compressed: bool,
    /// Records left in the batch, this one included (1 for a lone record).
    pub batch_left: u32,
    /// The log was durable through this LSN when the frame was written.
    pub durable_hint: Lsn,
}

/// Where the in-order run of verified frames of a segment stops.
///
/// After a read of limited length ([`SegmentImage::read_range`]), a frame that
/// runs past the bytes read ends the run as `Unverified`: read more to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunEnd {
    /// A seal frame ends the segment; it was written at this unix-nanosecond time.
    Sealed {
        /// Seal time, unix nanoseconds.
        at_unix_nanos: u64,
        /// First LSN of the next segment.
        next_lsn: Lsn,
    },
    /// Nothing of this segment incarnation was begun here (zeros or stale bytes):
    /// the segment is still open for appends, or a writer stopped cleanly.
    Blank {
        /// Byte offset where appends would continue.
        offset: u64,
    },
    /// A frame was begun here and does not verify (torn, corrupt, or still being
    /// written by a live writer).
    Unverified {
        /// Byte offset of the frame that does not verify.
        offset: u64,
    },
}

/// The whole content of a live segment file (or its part from some offset on),
/// read into memory with plain reads.
pub struct SegmentImage {
    path: PathBuf,
    header: SegmentHeader,
    salt: u32,
    /// File offset of `bytes[0]`.
    start: u64,
    bytes: Vec<u8>,
    /// True when the file goes on past `bytes` (a read of limited length).
    cut_short: bool,
}

/// Lists the log directory `dir` and reads every segment file's header
/// (see [`LogDirListing::segments`] for the order).
pub fn list_log_dir(dir: &Path) -> Result<LogDirListing> {
    let entries = std::fs::read_dir(dir).map_err(|e| WalError::io("list log directory", dir, e))?;
    let mut listing = LogDirListing::default();
    for entry in entries {
        let entry = entry.map_err(|e| WalError::io("list log directory", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        match parse_segment_file_name(&name) {
            Some(seq) => listing.segments.push(read_segment_file(entry.path(), seq)),
            None => listing.other_files.push(entry.path()),
        }
    }
    listing.segments.sort_by_key(|s| match s.kind {
        SegmentFileKind::Live(h) => (0, h.base_lsn.0, s.seq),
        _ => (1, s.seq, s.seq),
    });
    listing.other_files.sort();
    Ok(listing)
}

fn read_segment_file(path: PathBuf, seq: u64) -> SegmentFile {
    let (file_size, kind) = match read_header(&path) {
        Ok((size, raw)) => (size, classify_header(size, raw.as_ref(), seq)),
        Err(e) => (0, SegmentFileKind::Unreadable(e.to_string())),
    };
    SegmentFile {
        path,
        seq,
        file_size,
        kind,
    }
}

/// The file's length and its first 64 bytes (`None` if it is shorter).
fn read_header(path: &Path) -> std::io::Result<(u64, Option<[u8; SEGMENT_HEADER_LEN as usize]>)> {
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    if size < SEGMENT_HEADER_LEN {
        return Ok((size, None));
    }
    let mut raw = [0u8; SEGMENT_HEADER_LEN as usize];
    file.read_exact(&mut raw)?;
    Ok((size, Some(raw)))
}

fn classify_header(size: u64, raw: Option<&[u8; 64]>, seq: u64) -> SegmentFileKind {
    let Some(raw) = raw else {
        return SegmentFileKind::Foreign(format!("{size} bytes is too short for a segment"));
    };
    match classify_segment_file(raw, seq) {
        SegmentFileClass::Live(h) => SegmentFileKind::Live(SegmentHeaderFacts {
            version: h.version,
            log_id: h.log_id,
            base_lsn: Lsn(h.base_lsn),
            created_unix_nanos: h.created_unix_nanos,
            segment_len: h.segment_len,
        }),
        SegmentFileClass::Spare => SegmentFileKind::Spare,
        SegmentFileClass::NotAWal => SegmentFileKind::Foreign("bad magic bytes".into()),
        SegmentFileClass::Unsupported(v) => SegmentFileKind::Unsupported(v),
        SegmentFileClass::Damaged => SegmentFileKind::DamagedHeader,
    }
}

impl SegmentImage {
    /// Reads the live segment at `path` whole.
    pub fn read(path: &Path) -> Result<SegmentImage> {
        SegmentImage::read_from(path, SEGMENT_HEADER_LEN)
    }

    /// Reads the header of the live segment at `path`, and its bytes from `offset`
    /// on (at least the header length). Used to follow a segment being appended to.
    pub fn read_from(path: &Path, offset: u64) -> Result<SegmentImage> {
        SegmentImage::read_range(path, offset, u64::MAX)
    }

    /// Like [`SegmentImage::read_from`], reading at most `max_len` bytes from
    /// `offset`: a frame that runs past them does not verify.
    pub fn read_range(path: &Path, offset: u64, max_len: u64) -> Result<SegmentImage> {
        let io = |e| WalError::io("read segment", path, e);
        let file = File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        let not_live = |reason: &str| WalError::NotAWal {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let mut raw = [0u8; SEGMENT_HEADER_LEN as usize];
        if size < SEGMENT_HEADER_LEN {
            return Err(not_live("too short for a segment header"));
        }
        file.read_exact_at(&mut raw, 0).map_err(io)?;
        let header = SegmentHeader::decode(&raw)
            .map_err(|p| not_live(&format!("header does not verify ({p:?})")))?;
        // Bytes past the length the (checksummed) header gives are not the segment's.
        let end = size.min(header.segment_len);
        let start = offset.max(SEGMENT_HEADER_LEN).min(end);
        let mut bytes = vec![0u8; (end - start).min(max_len) as usize];
        file.read_exact_at(&mut bytes, start).map_err(io)?;
        Ok(SegmentImage {
            path: path.to_path_buf(),
            salt: header.salt(),
            header,
            start,
            cut_short: start + (bytes.len() as u64) < end,
            bytes,
        })
    }

    /// Path of the segment file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// LSN of the segment's first record.
    pub fn base_lsn(&self) -> Lsn {
        Lsn(self.header.base_lsn)
    }

    /// File offset of the first byte read.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// The frame at `offset` if it verifies as a frame of this segment
    /// incarnation (tag and CRC32C), with its stored payload.
    pub fn verified_frame_at(&self, offset: u64) -> Option<(FrameInfo, &[u8])> {
        let at = usize::try_from(offset.checked_sub(self.start)?).ok()?;
        let raw: &[u8; FRAME_HEADER_LEN] =
            self.bytes.get(at..at + FRAME_HEADER_LEN)?.try_into().ok()?;
        let h = FrameHeader::decode(raw);
        let payload_at = at + FRAME_HEADER_LEN;
        let payload = self.bytes.get(payload_at..payload_at + h.len as usize)?;
        let kind = match h.kind {
            KIND_RECORD => FrameKind::Record,
            KIND_SEAL => FrameKind::Seal,
            _ => return None,
        };
        if h.tag != self.header.tag || !h.verify(self.salt, raw, payload) {
            return None;
        }
        let info = FrameInfo {
            offset,
            lsn: Lsn(h.lsn),
            kind,
            stored_len: h.len,
            frame_len: h.frame_len(),
            compressed: h.flags & FLAG_ZSTD != 0,
            batch_left: h.batch_left,
            durable_hint: Lsn(h.durable_hint()),
        };
        Some((info, payload))
    }

    /// The in-order run of verified frames from `offset`, expecting `lsn` first.
    pub fn frames_from(&self, offset: u64, lsn: Lsn) -> FrameRun<'_> {
        FrameRun {
            image: self,
            offset,
            next_lsn: lsn.0,
            end: None,
        }
    }

    /// The in-order run of verified frames of the whole segment (read with [`SegmentImage::read`]).
    pub fn frames(&self) -> FrameRun<'_> {
        self.frames_from(SEGMENT_HEADER_LEN, self.base_lsn())
    }

    /// True when nothing of this incarnation was begun at `offset`. A frame
    /// header cut by the end of a limited read is not blank: it is unknown.
    fn is_blank_at(&self, offset: u64) -> bool {
        match offset
            .checked_sub(self.start)
            .and_then(|at| self.bytes.get(at as usize..at as usize + FRAME_HEADER_LEN))
            .and_then(|raw| <&[u8; FRAME_HEADER_LEN]>::try_from(raw).ok())
        {
            Some(raw) => frame_slot_is_blank(raw, self.header.tag),
            None => !self.cut_short,
        }
    }
}

/// Verified frames of one segment in LSN order; stops at the seal or the first
/// frame that does not verify or breaks LSN order. [`FrameRun::end`] says which.
pub struct FrameRun<'a> {
    image: &'a SegmentImage,
    offset: u64,
    next_lsn: u64,
    end: Option<RunEnd>,
}

impl FrameRun<'_> {
    /// Where the run stopped; `None` until the iterator returned `None`.
    pub fn end(&self) -> Option<RunEnd> {
        self.end
    }

    /// Byte offset of the next frame to read.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// LSN the next record must carry.
    pub fn next_lsn(&self) -> Lsn {
        Lsn(self.next_lsn)
    }
}

impl<'a> Iterator for FrameRun<'a> {
    type Item = (FrameInfo, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.end.is_some() {
            return None;
        }
        let found = self.image.verified_frame_at(self.offset);
        match found {
            Some((info, payload)) if info.lsn.0 == self.next_lsn => {
                if info.kind == FrameKind::Seal {
                    let at = payload.try_into().map_or(0, u64::from_le_bytes);
                    self.end = Some(RunEnd::Sealed {
                        at_unix_nanos: at,
                        next_lsn: info.lsn,
                    });
                } else {
                    self.next_lsn += 1;
                }
                self.offset += info.frame_len;
                Some((info, payload))
            }
            _ => {
                self.end = Some(if self.image.is_blank_at(self.offset) {
                    RunEnd::Blank {
                        offset: self.offset,
                    }
                } else {
                    RunEnd::Unverified {
                        offset: self.offset,
                    }
                });
                None
            }
        }
    }
}

/// The uncompressed size of a stored payload (its own length when not compressed).
pub fn content_len(info: &FrameInfo, payload: &[u8]) -> Option<u64> {
    if !info.compressed {
        return Some(payload.len() as u64);
    }
    zstd::zstd_safe::get_frame_content_size(payload)
        .ok()
        .flatten()
}

/// The payload as it was appended: decompressed when stored compressed.
pub fn decode_payload(info: &FrameInfo, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    if !info.compressed {
        return Ok(payload.to_vec());
    }
    let size = content_len(info, payload)
        .filter(|&n| n <= u64::from(u32::MAX))
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "no usable content size")
        })?;
    zstd::bulk::decompress(payload, size as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Compression, Durability, Wal, WalOptions};

    fn opts() -> WalOptions {
        WalOptions {
            segment_size: 64 << 10,
            durability: Durability::PerWrite,
            compression: Compression::Zstd {
                level: 1,
                min_size: 64,
            },
            ..WalOptions::default()
        }
    }

    /// Incompressible bytes, different for every `seed`.
    fn noise(seed: u32, len: usize) -> Vec<u8> {
        let mut x = u64::from(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn live(listing: &LogDirListing) -> Vec<&SegmentFile> {
        listing
            .segments
            .iter()
            .filter(|s| matches!(s.kind, SegmentFileKind::Live(_)))
            .collect()
    }

    #[test]
    fn walks_every_record_of_every_segment_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal = Wal::open(dir.path(), opts()).expect("open");
        for i in 0..300u32 {
            let rec = if i.is_multiple_of(2) {
                vec![b'a'; 500]
            } else {
                noise(i, 600)
            };
            wal.append(&rec).expect("append");
        }
        let listing = list_log_dir(dir.path()).expect("list");
        let segs = live(&listing);
        assert!(segs.len() > 1, "records should span segments");
        let mut next = 1u64;
        let mut compressed = 0;
        for (i, seg) in segs.iter().enumerate() {
            let image = SegmentImage::read(&seg.path).expect("read");
            assert_eq!(image.base_lsn(), Lsn(next));
            let mut run = image.frames();
            for (info, payload) in run.by_ref() {
                if info.kind == FrameKind::Record {
                    assert_eq!(info.lsn, Lsn(next));
                    let data = decode_payload(&info, payload).expect("decode");
                    let i = (next - 1) as u32;
                    let want = if i.is_multiple_of(2) {
                        vec![b'a'; 500]
                    } else {
                        noise(i, 600)
                    };
                    assert_eq!(data, want);
                    compressed += usize::from(info.compressed);
                    next += 1;
                }
            }
            let sealed =
                matches!(run.end(), Some(RunEnd::Sealed { next_lsn, .. }) if next_lsn == Lsn(next));
            assert_eq!(sealed, i + 1 < segs.len(), "only the last segment is open");
        }
        assert_eq!(next, 301);
        assert_eq!(compressed, 150);
        assert!(listing.other_files.iter().all(|p| p.exists()));
    }

    #[test]
    fn a_flipped_byte_stops_the_run_where_it_is_and_headers_are_classified() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal = Wal::open(dir.path(), opts()).expect("open");
        for _ in 0..10 {
            wal.append(b"0123456789").expect("append");
        }
        drop(wal);
        let listing = list_log_dir(dir.path()).expect("list");
        let path = live(&listing)[0].path.clone();
        let image = SegmentImage::read(&path).expect("read");
        let frames: Vec<FrameInfo> = image.frames().map(|(f, _)| f).collect();
        let victim = frames[4];
        let mut bytes = std::fs::read(&path).expect("read file");
        bytes[victim.offset as usize + FRAME_HEADER_LEN + 3] ^= 0x10;
        std::fs::write(&path, &bytes).expect("write");
        let image = SegmentImage::read(&path).expect("read");
        let mut run = image.frames();
        assert_eq!(run.by_ref().count(), 4);
        assert_eq!(
            run.end(),
            Some(RunEnd::Unverified {
                offset: victim.offset
            })
        );

        // A partial read ends at the frame it cuts; a later read continues there.
        let cut = frames[2].offset + 8;
        let head = SegmentImage::read_range(&path, SEGMENT_HEADER_LEN, cut - SEGMENT_HEADER_LEN)
            .expect("read head");
        let mut run = head.frames();
        assert_eq!(run.by_ref().count(), 2);
        assert_eq!(
            run.end(),
            Some(RunEnd::Unverified {
                offset: frames[2].offset
            })
        );
        let rest = SegmentImage::read_from(&path, run.offset()).expect("read rest");
        let lsns: Vec<u64> = rest
            .frames_from(run.offset(), run.next_lsn())
            .map(|(f, _)| f.lsn.0)
            .collect();
        assert_eq!(lsns, [3, 4]);

        std::fs::write(dir.path().join("seg-00000000000000000099.wal"), [7u8; 200])
            .expect("write foreign");
        std::fs::write(dir.path().join("seg-00000000000000000098.wal"), [0u8; 200])
            .expect("write blank");
        bytes[33] ^= 1;
        std::fs::write(&path, &bytes).expect("write");
        let listing = list_log_dir(dir.path()).expect("list");
        let kinds: Vec<&SegmentFileKind> = listing.segments.iter().map(|s| &s.kind).collect();
        assert!(kinds.contains(&&SegmentFileKind::DamagedHeader));
        assert!(kinds.contains(&&SegmentFileKind::Spare));
        assert!(kinds.contains(&&SegmentFileKind::Foreign("bad magic bytes".into())));
    }
}
