//! The on-disk format of a segment. All integers are little-endian.
//!
//! ```text
//! segment file (fixed size, fully allocated before use)
//! +----------------------+---------+---------+-----+-------+---------------------+
//! | segment header (64)  | frame 1 | frame 2 | ... | seal  | zeros or stale data |
//! +----------------------+---------+---------+-----+-------+---------------------+
//!
//! segment header                      record frame (8-byte aligned)
//!  0  magic      "TDMKWAL\0"           0  crc        u32  CRC32C, see below
//!  8  version    u32 (1)               4  len        u32  stored payload bytes
//! 12  tag        u32 random, != 0      8  lsn        u64
//! 16  log_id     u64 random           16  tag        u32  = segment header's tag
//! 24  seq        u64 = file name's    20  hint_delta u32  lsn - durable LSN when written
//! 32  base_lsn   u64                  24  batch_left u32  records left in batch, this one included
//! 40  created    u64 unix nanos       28  kind       u8   1 record, 2 seal
//! 48  seg_len    u64                  29  flags      u8   bit 0: zstd
//! 56  reserved   u32 (0)              30  reserved   u16 (0)
//! 60  crc        u32 CRC32C of 0..60  32  payload, then zero padding to 8 bytes
//! ```
//!
//! A frame's CRC32C starts from the segment's *salt* (the CRC32C of its log id,
//! seq, base LSN and tag), then covers header bytes 4..32, then the payload. A
//! frame therefore verifies only in the segment incarnation that wrote it: a
//! record of another log, or a stale record left in a recycled segment, never
//! passes for a live one. The `tag` lets a scanner skip stale frames cheaply.
//!
//! A *seal* frame (kind 2, 8-byte payload: seal time in unix nanos) ends a
//! segment on purpose; its `lsn` is the first LSN of the next segment. A segment
//! without a seal ends at its first frame that does not verify. The seal is
//! durable before any record of the next segment is; should it still be missing
//! (a log of an earlier build cut off by a power loss), the next segment's
//! header, whose `base_lsn` is where this one ended, shows that nothing else is.
//!
//! `hint_delta` records how far the durable LSN lagged when the frame was
//! written (saturating). It lets recovery tell a torn tail from corruption: a bad
//! record followed by a valid record whose durable LSN covers it was durable,
//! so it is corruption, not a torn write.

/// Magic bytes that open every segment.
pub const SEGMENT_MAGIC: [u8; 8] = *b"TDMKWAL\0";
/// The format version this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes of the segment header; the first frame starts here.
pub const SEGMENT_HEADER_LEN: u64 = 64;
/// Bytes of a frame header.
pub const FRAME_HEADER_LEN: usize = 32;
/// Frames start at multiples of this.
pub const FRAME_ALIGN: u64 = 8;
/// Bytes a seal frame takes.
pub const SEAL_FRAME_LEN: u64 = frame_len(8);

/// Frame kind of a record.
pub const KIND_RECORD: u8 = 1;
/// Frame kind of a seal.
pub const KIND_SEAL: u8 = 2;
/// Flag bit: the payload is a zstd frame.
pub const FLAG_ZSTD: u8 = 1;

/// Bytes a frame with a payload of `payload_len` bytes takes, padding included.
pub const fn frame_len(payload_len: u64) -> u64 {
    (FRAME_HEADER_LEN as u64 + payload_len).div_ceil(FRAME_ALIGN) * FRAME_ALIGN
}

/// The decoded segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Format version.
    pub version: u32,
    /// Random tag of this incarnation of the segment.
    pub tag: u32,
    /// Random id of the log, shared by all its segments.
    pub log_id: u64,
    /// Sequence number, equal to the one in the file name while the segment is live.
    pub seq: u64,
    /// LSN of the first record in this segment.
    pub base_lsn: u64,
    /// When the segment was activated, unix nanoseconds.
    pub created_unix_nanos: u64,
    /// Length of the segment file.
    pub segment_len: u64,
}

/// Why a segment header did not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderProblem {
    /// All zero: a prepared segment never activated.
    Blank,
    /// Not our magic bytes.
    BadMagic,
    /// A version newer than [`FORMAT_VERSION`].
    Unsupported(u32),
    /// The header's checksum does not match.
    BadChecksum,
}

impl SegmentHeader {
    /// Encodes the header into its 64 bytes.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN as usize] {
        let mut b = [0u8; SEGMENT_HEADER_LEN as usize];
        b[0..8].copy_from_slice(&SEGMENT_MAGIC);
        b[8..12].copy_from_slice(&self.version.to_le_bytes());
        b[12..16].copy_from_slice(&self.tag.to_le_bytes());
        b[16..24].copy_from_slice(&self.log_id.to_le_bytes());
        b[24..32].copy_from_slice(&self.seq.to_le_bytes());
        b[32..40].copy_from_slice(&self.base_lsn.to_le_bytes());
        b[40..48].copy_from_slice(&self.created_unix_nanos.to_le_bytes());
        b[48..56].copy_from_slice(&self.segment_len.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a header, checking magic, version and checksum.
    pub fn decode(b: &[u8; SEGMENT_HEADER_LEN as usize]) -> Result<SegmentHeader, HeaderProblem> {
        if b.iter().all(|&x| x == 0) {
            return Err(HeaderProblem::Blank);
        }
        if b[0..8] != SEGMENT_MAGIC {
            return Err(HeaderProblem::BadMagic);
        }
        let version = le_u32(b, 8);
        if version > FORMAT_VERSION || version == 0 {
            return Err(HeaderProblem::Unsupported(version));
        }
        if crc32c::crc32c(&b[0..60]) != le_u32(b, 60) {
            return Err(HeaderProblem::BadChecksum);
        }
        Ok(SegmentHeader {
            version,
            tag: le_u32(b, 12),
            log_id: le_u64(b, 16),
            seq: le_u64(b, 24),
            base_lsn: le_u64(b, 32),
            created_unix_nanos: le_u64(b, 40),
            segment_len: le_u64(b, 48),
        })
    }

    /// The CRC seed that binds frames to this segment incarnation.
    pub fn salt(&self) -> u32 {
        let mut b = [0u8; 28];
        b[0..8].copy_from_slice(&self.log_id.to_le_bytes());
        b[8..16].copy_from_slice(&self.seq.to_le_bytes());
        b[16..24].copy_from_slice(&self.base_lsn.to_le_bytes());
        b[24..28].copy_from_slice(&self.tag.to_le_bytes());
        crc32c::crc32c(&b)
    }
}

/// What a segment file is, by its first 64 bytes and the sequence number in its
/// name. Recovery and inspection both classify files with this one function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentFileClass {
    /// A live segment: the header verifies and carries the file's own number.
    Live(SegmentHeader),
    /// A spare: never activated (blank), or a retired segment renamed for reuse
    /// (its header carries an older number).
    Spare,
    /// A header whose checksum fails: damage, not something to reuse.
    Damaged,
    /// Not a tidemark segment.
    NotAWal,
    /// A segment of a newer format version.
    Unsupported(u32),
}

/// Classifies a segment file named with sequence number `seq` by its header bytes.
pub fn classify_segment_file(
    raw: &[u8; SEGMENT_HEADER_LEN as usize],
    seq: u64,
) -> SegmentFileClass {
    match SegmentHeader::decode(raw) {
        Ok(h) if h.seq == seq => SegmentFileClass::Live(h),
        Ok(_) | Err(HeaderProblem::Blank) => SegmentFileClass::Spare,
        Err(HeaderProblem::BadMagic) => SegmentFileClass::NotAWal,
        Err(HeaderProblem::Unsupported(v)) => SegmentFileClass::Unsupported(v),
        Err(HeaderProblem::BadChecksum) => SegmentFileClass::Damaged,
    }
}

/// True when nothing of the segment incarnation `tag` was begun in the frame
/// slot whose header bytes are `raw`: all zeros, or stale bytes of a recycled
/// segment (a non-zero tag of another incarnation). A zero tag over non-zero
/// bytes is a header torn mid-write, so not blank.
pub fn frame_slot_is_blank(raw: &[u8; FRAME_HEADER_LEN], tag: u32) -> bool {
    match u32::from_le_bytes([raw[16], raw[17], raw[18], raw[19]]) {
        0 => raw.iter().all(|&b| b == 0),
        t => t != tag,
    }
}

/// A decoded frame header. It says nothing about validity until [`FrameHeader::verify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Stored CRC32C.
    pub crc: u32,
    /// Stored payload length.
    pub len: u32,
    /// LSN of the record (for a seal, the next segment's first LSN).
    pub lsn: u64,
    /// The segment tag it was written under.
    pub tag: u32,
    /// `lsn - durable LSN` at write time, saturating.
    pub hint_delta: u32,
    /// Records left in this record's batch, itself included (1 for a lone record).
    pub batch_left: u32,
    /// [`KIND_RECORD`] or [`KIND_SEAL`].
    pub kind: u8,
    /// Flag bits ([`FLAG_ZSTD`]).
    pub flags: u8,
}

impl FrameHeader {
    /// Encodes the header with its CRC computed over the header and `payload`.
    pub fn encode(&self, salt: u32, payload: &[u8]) -> [u8; FRAME_HEADER_LEN] {
        let mut b = [0u8; FRAME_HEADER_LEN];
        b[4..8].copy_from_slice(&self.len.to_le_bytes());
        b[8..16].copy_from_slice(&self.lsn.to_le_bytes());
        b[16..20].copy_from_slice(&self.tag.to_le_bytes());
        b[20..24].copy_from_slice(&self.hint_delta.to_le_bytes());
        b[24..28].copy_from_slice(&self.batch_left.to_le_bytes());
        b[28] = self.kind;
        b[29] = self.flags;
        let crc = frame_crc(salt, &b, payload);
        b[0..4].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes the fields without checking anything.
    pub fn decode(b: &[u8; FRAME_HEADER_LEN]) -> FrameHeader {
        FrameHeader {
            crc: le_u32(b, 0),
            len: le_u32(b, 4),
            lsn: le_u64(b, 8),
            tag: le_u32(b, 16),
            hint_delta: le_u32(b, 20),
            batch_left: le_u32(b, 24),
            kind: b[28],
            flags: b[29],
        }
    }

    /// The durable LSN at the time this frame was written (a lower bound).
    pub fn durable_hint(&self) -> u64 {
        self.lsn.saturating_sub(u64::from(self.hint_delta))
    }

    /// Bytes the whole frame takes.
    pub fn frame_len(&self) -> u64 {
        frame_len(u64::from(self.len))
    }

    /// True if `raw` (this header's bytes) and `payload` match the stored CRC under `salt`.
    pub fn verify(&self, salt: u32, raw: &[u8; FRAME_HEADER_LEN], payload: &[u8]) -> bool {
        frame_crc(salt, raw, payload) == self.crc
    }
}

fn frame_crc(salt: u32, header: &[u8; FRAME_HEADER_LEN], payload: &[u8]) -> u32 {
    crc32c_append(crc32c_append(salt, &header[4..]), payload)
}

/// CRC32C of `data` continued from `crc`: exactly `crc32c::crc32c_append`
/// (same polynomial, same values, so the format is unchanged), computed with
/// crc-fast, whose AVX-512 VPCLMULQDQ kernel runs about twice as fast as the
/// SSE4.2 one of the crc32c crate on this machine (BENCHMARKS.md). It picks
/// the best kernel the CPU has at run time.
pub(crate) fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    use crc_fast::{CrcAlgorithm, Digest};
    let mut digest = Digest::new_with_init_state(CrcAlgorithm::Crc32Iscsi, u64::from(!crc));
    digest.update(data);
    digest.finalize() as u32
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_crc_continues_exactly_as_the_crc32c_crate() {
        let data: Vec<u8> = (0..70_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for seed in [0u32, 1, 0xFFFF_FFFF, 0x9E37_79B9] {
            for len in (0..=300).chain([511, 512, 1023, 4096, 4097, 65_536, 70_000]) {
                for start in [0usize, 1, 7] {
                    let part = &data[start..(start + len).min(data.len())];
                    assert_eq!(
                        crc32c_append(seed, part),
                        crc32c::crc32c_append(seed, part),
                        "seed {seed:#x} len {len} start {start}"
                    );
                }
            }
        }
        assert_eq!(crc32c_append(0, b"123456789"), 0xE306_9283);
    }

    fn header() -> SegmentHeader {
        SegmentHeader {
            version: FORMAT_VERSION,
            tag: 7,
            log_id: 42,
            seq: 3,
            base_lsn: 100,
            created_unix_nanos: 1,
            segment_len: 1 << 20,
        }
    }

    #[test]
    fn segment_header_round_trips_and_rejects_damage() {
        let h = header();
        let mut b = h.encode();
        assert_eq!(SegmentHeader::decode(&b), Ok(h));
        b[33] ^= 1;
        assert_eq!(SegmentHeader::decode(&b), Err(HeaderProblem::BadChecksum));
        assert_eq!(SegmentHeader::decode(&[0; 64]), Err(HeaderProblem::Blank));
        let mut v2 = h.encode();
        v2[8] = 2;
        assert_eq!(
            SegmentHeader::decode(&v2),
            Err(HeaderProblem::Unsupported(2))
        );
    }

    #[test]
    fn frame_crc_binds_payload_header_and_segment() {
        let h = header();
        let f = FrameHeader {
            crc: 0,
            len: 3,
            lsn: 100,
            tag: 7,
            hint_delta: 1,
            batch_left: 1,
            kind: KIND_RECORD,
            flags: 0,
        };
        let raw = f.encode(h.salt(), b"abc");
        let d = FrameHeader::decode(&raw);
        assert!(d.verify(h.salt(), &raw, b"abc"));
        assert!(!d.verify(h.salt(), &raw, b"abd"));
        let other = SegmentHeader { seq: 4, ..h };
        assert!(!d.verify(other.salt(), &raw, b"abc"));
        assert_eq!(d.frame_len(), 40);
        assert_eq!(d.durable_hint(), 99);
    }
}
