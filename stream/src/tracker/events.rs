//! The tracker's events and their binary codec: what the metadata WAL holds.
//!
//! One event per WAL record. Format version 1, all integers little-endian:
//!
//! ```text
//! event      = version:u8 (= 1) kind:u8 body
//! kind 1     BlockAdded      body = block
//! kind 2     BatchAllocated  body = time:u64 streams:u32 { stream_id:u32 count:u32 block* }*
//! kind 3     BatchesCleaned  body = threshold:u64
//! block      = stream_id:u32 unique_id:u64 flags:u8 [num_records:u64] [wal_stream:u32 wal_lsn:u64]
//!              flags bit 0: num_records present; bit 1: WAL handle present; other bits 0
//! ```
//!
//! In `BatchAllocated`, stream ids strictly increase and every block belongs to
//! the stream it is listed under. The decoder checks every tag, count, flag and
//! ordering rule and refuses trailing bytes, so every input it accepts is the
//! unique encoding of its event: `encode(decode(b)) == b`. It carries no checksum
//! of its own: each WAL frame's CRC32C covers the whole record, so a flipped bit on
//! disk is the WAL's error before it is ours. Decoding never panics, and a count
//! never allocates more than the record's remaining bytes could hold.

use std::collections::BTreeMap;

use crate::block::{BatchTime, ReceivedBlockInfo, StreamBlockId, WalHandle};
use crate::error::StreamError;
use crate::wire::{DecodeError, Decoder};

/// The format version this build writes and reads.
pub const EVENT_FORMAT_VERSION: u8 = 1;

const KIND_BLOCK_ADDED: u8 = 1;
const KIND_BATCH_ALLOCATED: u8 = 2;
const KIND_BATCHES_CLEANED: u8 = 3;

const FLAG_NUM_RECORDS: u8 = 1;
const FLAG_WAL: u8 = 2;
/// The fewest bytes an encoded block takes (no optional fields).
const MIN_BLOCK_LEN: usize = 4 + 8 + 1;
/// The fewest bytes a stream entry of a batch takes (no blocks).
const MIN_STREAM_LEN: usize = 4 + 4;

/// Something that changed the tracker's state, in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrackerEvent {
    /// A receiver reported a stored block; it waits to be allocated.
    BlockAdded(ReceivedBlockInfo),
    /// Every block waiting at that moment went to batch `time`, per stream
    /// (every tracked stream has an entry, empty or not).
    BatchAllocated {
        /// The batch.
        time: BatchTime,
        /// Its blocks by stream id, in the order they were added.
        blocks: BTreeMap<u32, Vec<ReceivedBlockInfo>>,
    },
    /// Every batch with a time before `threshold` was dropped.
    BatchesCleaned {
        /// The oldest batch time kept.
        threshold: BatchTime,
    },
}

impl TrackerEvent {
    /// The event's record bytes (format [`EVENT_FORMAT_VERSION`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![EVENT_FORMAT_VERSION];
        match self {
            TrackerEvent::BlockAdded(info) => {
                out.push(KIND_BLOCK_ADDED);
                put_block(&mut out, info);
            }
            TrackerEvent::BatchAllocated { time, blocks } => {
                out.push(KIND_BATCH_ALLOCATED);
                out.extend_from_slice(&time.0.to_le_bytes());
                put_len(&mut out, blocks.len());
                for (stream_id, list) in blocks {
                    out.extend_from_slice(&stream_id.to_le_bytes());
                    put_len(&mut out, list.len());
                    list.iter().for_each(|info| put_block(&mut out, info));
                }
            }
            TrackerEvent::BatchesCleaned { threshold } => {
                out.push(KIND_BATCHES_CLEANED);
                out.extend_from_slice(&threshold.0.to_le_bytes());
            }
        }
        out
    }

    /// Decodes the record at `lsn`. Damage, a newer format or trailing bytes give
    /// [`StreamError::BadRecord`] naming the LSN, never a panic.
    pub fn decode(bytes: &[u8], lsn: u64) -> Result<TrackerEvent, StreamError> {
        decode_event(&mut Decoder::new(bytes)).map_err(|DecodeError(reason)| {
            StreamError::BadRecord {
                what: "tracker",
                lsn,
                reason,
            }
        })
    }
}

/// Counts are `u32`; a tracker never holds 4 billion streams or blocks per batch.
fn put_len(out: &mut Vec<u8>, len: usize) {
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
}

fn put_block(out: &mut Vec<u8>, info: &ReceivedBlockInfo) {
    out.extend_from_slice(&info.block.stream_id.to_le_bytes());
    out.extend_from_slice(&info.block.unique_id.to_le_bytes());
    let mut flags = 0;
    if info.num_records.is_some() {
        flags |= FLAG_NUM_RECORDS;
    }
    if info.wal.is_some() {
        flags |= FLAG_WAL;
    }
    out.push(flags);
    if let Some(n) = info.num_records {
        out.extend_from_slice(&n.to_le_bytes());
    }
    if let Some(w) = info.wal {
        out.extend_from_slice(&w.stream_id.to_le_bytes());
        out.extend_from_slice(&w.lsn.to_le_bytes());
    }
}

fn decode_event(r: &mut Decoder<'_>) -> Result<TrackerEvent, DecodeError> {
    let version = r.u8("the format version")?;
    if version != EVENT_FORMAT_VERSION {
        return Err(DecodeError(format!(
            "format version {version} is not one this build reads (it reads {EVENT_FORMAT_VERSION})"
        )));
    }
    let event = match r.u8("the event kind")? {
        KIND_BLOCK_ADDED => TrackerEvent::BlockAdded(get_block(r)?),
        KIND_BATCH_ALLOCATED => get_allocation(r)?,
        KIND_BATCHES_CLEANED => TrackerEvent::BatchesCleaned {
            threshold: BatchTime(r.u64("the cleanup threshold")?),
        },
        kind => return Err(DecodeError(format!("unknown event kind {kind}"))),
    };
    if r.remaining() != 0 {
        return Err(DecodeError(format!(
            "{} trailing bytes after the event at byte {}",
            r.remaining(),
            r.position()
        )));
    }
    Ok(event)
}

fn get_allocation(r: &mut Decoder<'_>) -> Result<TrackerEvent, DecodeError> {
    let time = BatchTime(r.u64("the batch time")?);
    let streams = r.count("the stream count", MIN_STREAM_LEN)?;
    let mut blocks = BTreeMap::new();
    let mut previous: Option<u32> = None;
    for _ in 0..streams {
        let stream_id = r.u32("a stream id")?;
        if previous.is_some_and(|p| p >= stream_id) {
            return Err(DecodeError(format!(
                "stream {stream_id} at byte {} does not follow stream {} in order",
                r.position() - 4,
                previous.unwrap_or_default()
            )));
        }
        previous = Some(stream_id);
        let count = r.count("a block count", MIN_BLOCK_LEN)?;
        let mut list = Vec::with_capacity(count);
        for _ in 0..count {
            let info = get_block(r)?;
            if info.block.stream_id != stream_id {
                return Err(DecodeError(format!(
                    "block {} is listed under stream {stream_id}",
                    info.block
                )));
            }
            list.push(info);
        }
        blocks.insert(stream_id, list);
    }
    Ok(TrackerEvent::BatchAllocated { time, blocks })
}

fn get_block(r: &mut Decoder<'_>) -> Result<ReceivedBlockInfo, DecodeError> {
    let block = StreamBlockId {
        stream_id: r.u32("a block's stream id")?,
        unique_id: r.u64("a block's unique id")?,
    };
    let flags = r.u8("a block's flags")?;
    if flags & !(FLAG_NUM_RECORDS | FLAG_WAL) != 0 {
        return Err(DecodeError(format!(
            "block {block} has unknown flags {flags:#04x} at byte {}",
            r.position() - 1
        )));
    }
    let num_records = if flags & FLAG_NUM_RECORDS != 0 {
        Some(r.u64("a block's record count")?)
    } else {
        None
    };
    let wal = if flags & FLAG_WAL != 0 {
        Some(WalHandle {
            stream_id: r.u32("a block's receiver WAL stream")?,
            lsn: r.u64("a block's receiver WAL LSN")?,
        })
    } else {
        None
    };
    Ok(ReceivedBlockInfo {
        block,
        num_records,
        wal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(
        stream_id: u32,
        unique_id: u64,
        num: Option<u64>,
        wal: Option<u64>,
    ) -> ReceivedBlockInfo {
        ReceivedBlockInfo {
            block: StreamBlockId {
                stream_id,
                unique_id,
            },
            num_records: num,
            wal: wal.map(|lsn| WalHandle { stream_id, lsn }),
        }
    }

    /// One event of each kind, covering every combination of optional fields.
    fn samples() -> Vec<TrackerEvent> {
        let mut blocks = BTreeMap::new();
        blocks.insert(
            0,
            vec![info(0, 1, Some(10), None), info(0, 2, None, Some(7))],
        );
        blocks.insert(3, vec![]);
        blocks.insert(
            u32::MAX,
            vec![info(u32::MAX, u64::MAX, Some(0), Some(u64::MAX))],
        );
        vec![
            TrackerEvent::BlockAdded(info(2, 99, None, None)),
            TrackerEvent::BlockAdded(info(2, 100, Some(5), Some(42))),
            TrackerEvent::BatchAllocated {
                time: BatchTime(2_000),
                blocks,
            },
            TrackerEvent::BatchAllocated {
                time: BatchTime(0),
                blocks: BTreeMap::new(),
            },
            TrackerEvent::BatchesCleaned {
                threshold: BatchTime(1_000),
            },
        ]
    }

    fn reason_of(result: Result<TrackerEvent, StreamError>, lsn: u64) -> String {
        match result {
            Err(StreamError::BadRecord {
                what: "tracker",
                lsn: at,
                reason,
            }) if at == lsn => reason,
            other => panic!("expected a tracker BadRecord at LSN {lsn}, got {other:?}"),
        }
    }

    #[test]
    fn every_event_round_trips() {
        for event in samples() {
            let bytes = event.encode();
            assert_eq!(bytes[0], EVENT_FORMAT_VERSION);
            assert_eq!(TrackerEvent::decode(&bytes, 1).expect("decode"), event);
        }
    }

    #[test]
    fn every_truncation_is_a_bad_record() {
        for event in samples() {
            let bytes = event.encode();
            for cut in 0..bytes.len() {
                let reason = reason_of(TrackerEvent::decode(&bytes[..cut], 9), 9);
                assert!(!reason.is_empty(), "cut {cut} of {event:?}");
            }
        }
    }

    #[test]
    fn a_flipped_byte_is_refused_or_is_the_unique_encoding_of_another_event() {
        for event in samples() {
            let bytes = event.encode();
            for at in 0..bytes.len() {
                for bit in 0..8 {
                    let mut flipped = bytes.clone();
                    flipped[at] ^= 1 << bit;
                    match TrackerEvent::decode(&flipped, 3) {
                        Err(StreamError::BadRecord { lsn: 3, .. }) => {}
                        Err(other) => panic!("wrong error {other:?}"),
                        Ok(decoded) => {
                            assert_ne!(decoded, event, "byte {at} bit {bit} went unnoticed");
                            assert_eq!(decoded.encode(), flipped, "decoding is not canonical");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn structural_damage_is_detected() {
        let added = TrackerEvent::BlockAdded(info(1, 2, None, None)).encode();
        // Kind byte, then an unknown flag bit of the block.
        let mut bad_kind = added.clone();
        bad_kind[1] = 9;
        assert!(reason_of(TrackerEvent::decode(&bad_kind, 1), 1).contains("unknown event kind 9"));
        let mut bad_flags = added.clone();
        bad_flags[2 + 12] |= 0x80;
        assert!(reason_of(TrackerEvent::decode(&bad_flags, 1), 1).contains("unknown flags"));
        let mut trailing = added;
        trailing.push(0);
        assert!(reason_of(TrackerEvent::decode(&trailing, 1), 1).contains("trailing"));
    }

    #[test]
    fn lying_counts_and_misfiled_blocks_are_refused() {
        let mut blocks = BTreeMap::new();
        blocks.insert(4, vec![info(4, 1, None, None)]);
        blocks.insert(5, vec![]);
        let bytes = TrackerEvent::BatchAllocated {
            time: BatchTime(10),
            blocks,
        }
        .encode();
        // version, kind, time (8), stream count at 10..14, stream 4 at 14..18, its count at 18..22.
        let mut huge = bytes.clone();
        huge[10..14].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(reason_of(TrackerEvent::decode(&huge, 2), 2).contains("claims"));
        let mut huge_blocks = bytes.clone();
        huge_blocks[18..22].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(reason_of(TrackerEvent::decode(&huge_blocks, 2), 2).contains("claims"));
        let mut misfiled = bytes.clone();
        misfiled[22..26].copy_from_slice(&7u32.to_le_bytes());
        assert!(reason_of(TrackerEvent::decode(&misfiled, 2), 2).contains("listed under"));
        let mut unordered = bytes;
        let second_stream = 22 + MIN_BLOCK_LEN;
        unordered[second_stream..second_stream + 4].copy_from_slice(&4u32.to_le_bytes());
        assert!(reason_of(TrackerEvent::decode(&unordered, 2), 2).contains("in order"));
    }

    #[test]
    fn an_unknown_version_is_refused_by_name() {
        let bytes = TrackerEvent::BatchesCleaned {
            threshold: BatchTime(5),
        }
        .encode();
        for version in (0..=u8::MAX).filter(|&v| v != EVENT_FORMAT_VERSION) {
            let mut other = bytes.clone();
            other[0] = version;
            let reason = reason_of(TrackerEvent::decode(&other, 77), 77);
            assert!(
                reason.contains(&format!("format version {version}")),
                "{reason}"
            );
        }
        assert!(reason_of(TrackerEvent::decode(&[], 1), 1).contains("format version"));
    }
}
