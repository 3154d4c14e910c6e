//! A sequence record about to be written, whose inline parts' checksums may still be missing.
//!
//! `put_part` keeps a small part in memory without checksumming it; the checksum goes into the
//! manifest's body, which is written before the part's bytes. Computing it on whatever thread
//! then writes the record puts the checksum right before the copy of the same bytes: on local
//! disk both run on the thread that writes the file, which reads the bytes from memory once
//! (the checksum loads them into its cache) instead of twice.

use bytes::Bytes;

use crate::{checksum, error::Result, manifest::Record};

/// A record with the stored bytes of its inline parts; see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct RecordDraft {
    record: Record,
    /// The inline parts' stored bytes, in part order (the record's blob).
    blob: Vec<Bytes>,
    /// Per blob element: its part's checksums are still to be computed (an uncompressed part,
    /// whose stored and logical checksums are one).
    pending: Vec<bool>,
}

impl RecordDraft {
    /// A draft of `record` with `blob` (one element per inline part, in part order); `pending`
    /// marks the elements whose part checksums are still to be computed.
    pub fn new(record: Record, blob: Vec<Bytes>, pending: Vec<bool>) -> Self {
        Self {
            record,
            blob,
            pending,
        }
    }

    /// A record with no inline parts (a claim, or a checkpoint of part objects only).
    pub fn without_blob(record: Record) -> Self {
        Self::new(record, Vec::new(), Vec::new())
    }

    /// The id of the writer that drafted the record.
    pub fn writer_id(&self) -> &str {
        &self.record.writer_id
    }

    /// Computes the pending checksums off the async threads where they are large (see
    /// `checksum::crc32c_async`).
    pub async fn checksum_async(&mut self) {
        for k in self.pending_indices() {
            let crc = checksum::crc32c_async(self.blob[k].clone()).await;
            self.fill(k, crc);
        }
    }

    /// Computes the pending checksums on this thread, then encodes the record (see
    /// [`Record::encode_chunks`]). Blocks for large blobs: call it from a blocking context, or
    /// after [`checksum_async`](Self::checksum_async).
    pub fn encode(mut self) -> Result<Vec<Bytes>> {
        for k in self.pending_indices() {
            let crc = checksum::crc32c(&self.blob[k]);
            self.fill(k, crc);
        }
        self.record.encode_chunks(&self.blob)
    }

    fn pending_indices(&self) -> Vec<usize> {
        (0..self.blob.len())
            .filter(|&k| self.pending.get(k).copied().unwrap_or(false))
            .collect()
    }

    /// Records `crc` as the checksum of the `k`th inline part.
    fn fill(&mut self, k: usize, crc: u32) {
        let part = self
            .record
            .parts
            .iter_mut()
            .filter(|p| p.is_inline())
            .nth(k);
        if let Some(part) = part {
            (part.crc32c, part.stored_crc32c) = (crc, crc);
        }
        if let Some(pending) = self.pending.get_mut(k) {
            *pending = false;
        }
    }
}
