//! Reading records back: single reads and ordered scans.
//!
//! Uncompressed payloads are handed out zero-copy: the returned `Bytes` points
//! into the segment's mapping and keeps the segment alive, so a segment retired
//! while a reader holds one of its records is unlinked, never reused.

use std::sync::Arc;

use bytes::Bytes;

use crate::Lsn;
use crate::error::{Result, WalError};
use crate::format::{FLAG_ZSTD, FRAME_HEADER_LEN, KIND_RECORD};
use crate::segment::Segment;
use crate::wal::Inner;

/// One record of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its LSN.
    pub lsn: Lsn,
    /// Its payload as appended (decompressed if it was stored compressed).
    pub data: Bytes,
}

/// The payload of a frame, borrowed from the mapping of its segment.
struct MappedPayload {
    segment: Arc<Segment>,
    offset: u64,
    len: u64,
}

impl AsRef<[u8]> for MappedPayload {
    fn as_ref(&self) -> &[u8] {
        // A published frame is immutable while its segment lives, and the range
        // was bounds-checked when the record was read.
        self.segment.bytes(self.offset, self.len).unwrap_or(&[])
    }
}

/// Reads and verifies the record `lsn` whose frame starts at `offset` of `seg`.
pub(crate) fn read_record(seg: &Arc<Segment>, offset: u32, lsn: u64) -> Result<Record> {
    let offset = u64::from(offset);
    let bad = |reason: &str| WalError::Corruption {
        segment: seg.path.clone(),
        offset,
        lsn: Lsn(lsn),
        reason: reason.to_string(),
    };
    let (h, raw, payload) = seg
        .frame_at(offset)
        .ok_or_else(|| bad("frame runs past the segment end"))?;
    if h.tag != seg.header.tag
        || h.lsn != lsn
        || h.kind != KIND_RECORD
        || !h.verify(seg.salt, raw, payload)
    {
        return Err(bad("record no longer verifies (CRC32C)"));
    }
    let data = if h.flags & FLAG_ZSTD != 0 {
        decompress(payload).map_err(|e| bad(&format!("zstd payload does not decompress: {e}")))?
    } else {
        Bytes::from_owner(MappedPayload {
            segment: seg.clone(),
            offset: offset + FRAME_HEADER_LEN as u64,
            len: u64::from(h.len),
        })
    };
    Ok(Record {
        lsn: Lsn(lsn),
        data,
    })
}

fn decompress(payload: &[u8]) -> std::io::Result<Bytes> {
    let size = zstd::zstd_safe::get_frame_content_size(payload)
        .ok()
        .flatten()
        .filter(|&n| n <= u64::from(u32::MAX))
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "no usable content size")
        })?;
    zstd::bulk::decompress(payload, size as usize).map(Bytes::from)
}

/// An ordered scan of the log from an LSN on; see [`crate::Wal::iter_from`].
///
/// It yields every readable record in LSN order, passes over LSNs that recovery
/// skipped, and ends at the first LSN not yet written. After an error it ends.
pub struct WalIter {
    inner: Arc<Inner>,
    next: u64,
    segment: Option<Arc<Segment>>,
    done: bool,
}

impl WalIter {
    pub(crate) fn new(inner: Arc<Inner>, from: Lsn) -> WalIter {
        let first = inner.first_lsn().map_or(from.0, |f| f.0.max(from.0));
        WalIter {
            inner,
            next: first,
            segment: None,
            done: false,
        }
    }

    /// The segment holding `lsn`, from the cache or the map.
    fn segment_for(&mut self, lsn: u64) -> Option<Arc<Segment>> {
        if let Some(s) = &self.segment
            && lsn >= s.header.base_lsn
            && lsn < s.end_lsn()
        {
            return Some(s.clone());
        }
        self.segment = self.inner.segment_of(lsn);
        self.segment.clone()
    }
}

impl Iterator for WalIter {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let lsn = self.next;
            let Some(seg) = self.segment_for(lsn) else {
                // A gap that spans whole segments (skipped by recovery), or the end.
                match self.inner.next_segment_base(lsn) {
                    Some(base) if lsn <= self.inner.recovered_last => self.next = base,
                    _ => self.done = true,
                }
                continue;
            };
            match seg.index.get(lsn - seg.header.base_lsn) {
                Some(off) => {
                    self.next += 1;
                    let rec = read_record(&seg, off, lsn);
                    self.done = rec.is_err();
                    return Some(rec);
                }
                None if lsn <= self.inner.recovered_last => self.next += 1,
                None => self.done = true,
            }
        }
        None
    }
}
