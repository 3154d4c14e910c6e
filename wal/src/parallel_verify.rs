//! Verification of sealed segments on every core, ahead of recovery's ordered walk.
//!
//! Recovery checks every frame of every live segment (CRC32C bound to the
//! segment incarnation, LSN density, batch completeness), and on a large log
//! that check is the whole cost of `open()`. All segments but the last are
//! normally sealed, and each names its base LSN in its header, so they can be
//! checked independently: [`verify_sealed`] checks them on all cores first.
//!
//! A check either comes back [`CleanSeal`] (every frame verifies, LSNs run
//! densely from the base, every batch is whole, and a seal ends the segment)
//! or not at all. The ordered walk accepts a clean check for a segment that
//! starts where the log left off, which yields exactly what walking it would
//! have found; any other segment is walked frame by frame as before, with the
//! full classification of the break. So the shortcut never changes what
//! recovery decides, only how soon it knows.
//!
//! A check publishes the index slots of the frames it verified. Should its
//! segment then be walked anyway, the walk publishes the same slots again
//! (same base LSN, same frames); should it be retired, its index goes with it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::format::{KIND_RECORD, KIND_SEAL, SEAL_FRAME_LEN, SEGMENT_HEADER_LEN};
use crate::segment::Segment;

/// A sealed segment whose every frame verified, from its base LSN to its seal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CleanSeal {
    /// Byte offset just past the seal frame.
    pub(crate) end: u64,
    /// The LSN the next segment starts at (the seal's LSN).
    pub(crate) next_lsn: u64,
    /// When the segment was sealed (unix nanos), from the seal frame.
    pub(crate) sealed_at: u64,
}

/// Checks `segments` on up to `available_parallelism` threads; slot `i` of the
/// result is `Some` when `segments[i]` is a clean sealed segment.
pub(crate) fn verify_sealed(segments: &[Arc<Segment>]) -> Vec<Option<CleanSeal>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(segments.len());
    let next = AtomicUsize::new(0);
    let mut found = vec![None; segments.len()];
    if threads <= 1 {
        for (i, clean) in claim_and_check(segments, &next) {
            found[i] = clean;
        }
        return found;
    }
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| claim_and_check(segments, &next)))
            .collect();
        for worker in workers {
            // A worker only panics on a bug; its segments are then walked in order.
            for (i, clean) in worker.join().unwrap_or_default() {
                found[i] = clean;
            }
        }
    });
    found
}

/// Checks segments claimed one at a time from `next` until none are left,
/// each mapped whole first (one populate call instead of a fault per few pages).
fn claim_and_check(
    segments: &[Arc<Segment>],
    next: &AtomicUsize,
) -> Vec<(usize, Option<CleanSeal>)> {
    let mut done = Vec::new();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(seg) = segments.get(i) else {
            return done;
        };
        seg.populate_for_scan();
        done.push((i, check_sealed(seg)));
    }
}

/// The clean seal of `seg`, if every frame from its header to its seal verifies
/// with the LSNs its header promises and every batch in it is whole.
pub(crate) fn check_sealed(seg: &Segment) -> Option<CleanSeal> {
    let base = seg.header.base_lsn;
    let mut off = SEGMENT_HEADER_LEN;
    let mut lsn = base;
    // LSN just past the batch being read; frames below it must count down to it.
    let mut batch_until = 0u64;
    loop {
        let (h, payload) = seg.valid_frame_at(off)?;
        if h.lsn != lsn {
            return None;
        }
        match h.kind {
            KIND_SEAL if payload.len() == 8 && lsn >= batch_until => {
                let at = u64::from_le_bytes(payload.try_into().ok()?);
                return Some(CleanSeal {
                    end: off + SEAL_FRAME_LEN,
                    next_lsn: lsn,
                    sealed_at: at,
                });
            }
            KIND_RECORD => {
                if lsn < batch_until {
                    if u64::from(h.batch_left) != batch_until - lsn {
                        return None;
                    }
                } else if h.batch_left > 1 {
                    batch_until = lsn + u64::from(h.batch_left);
                }
                seg.index.publish(lsn - base, u32::try_from(off).ok()?);
                lsn += 1;
                off += h.frame_len();
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::format::{SegmentFileClass, classify_segment_file};
    use crate::segment::{map_existing, parse_segment_file_name};
    use crate::{Durability, Wal, WalOptions};

    /// A log of several 64 KiB segments with a batch of three every 20 records.
    fn write_log(dir: &Path) -> u64 {
        let opts = WalOptions {
            segment_size: 64 << 10,
            durability: Durability::Buffered,
            ..WalOptions::default()
        };
        let wal = Wal::open(dir, opts).expect("open");
        for i in 0..400u32 {
            let rec = vec![i as u8; 600 + (i as usize % 7) * 50];
            if i % 20 == 5 {
                wal.append_batch([&rec[..], &rec[1..], &rec[2..]])
                    .expect("batch");
            } else {
                wal.append(&rec).expect("append");
            }
        }
        wal.sync().expect("sync").0
    }

    /// The live segments of `dir` in LSN order (file numbers need not follow it), mapped read-only.
    fn segments(dir: &Path) -> Vec<Arc<Segment>> {
        let mut found: Vec<_> = std::fs::read_dir(dir)
            .expect("list")
            .filter_map(|e| {
                let path = e.expect("entry").path();
                let seq = parse_segment_file_name(path.file_name()?.to_str()?)?;
                Some((seq, path))
            })
            .collect();
        found.sort();
        let mut live: Vec<_> = found
            .into_iter()
            .filter_map(|(seq, path)| {
                let bytes = std::fs::read(&path).expect("read segment");
                let raw = bytes[..SEGMENT_HEADER_LEN as usize]
                    .try_into()
                    .expect("header");
                let SegmentFileClass::Live(h) = classify_segment_file(raw, seq) else {
                    return None;
                };
                let (file, map) = map_existing(&path, false).expect("map");
                Some(Arc::new(Segment::recovered(path, file, map, h)))
            })
            .collect();
        live.sort_by_key(|s| s.header.base_lsn);
        live
    }

    #[test]
    fn every_sealed_segment_of_a_pristine_log_is_clean_and_the_seals_chain() {
        let dir = tempfile::tempdir().expect("tempdir");
        let last = write_log(dir.path());
        let segs = segments(dir.path());
        assert!(segs.len() >= 4, "want several segments, got {}", segs.len());
        let sealed = &segs[..segs.len() - 1];
        let found = verify_sealed(sealed);
        for (i, clean) in found.iter().enumerate() {
            let clean = clean.unwrap_or_else(|| panic!("segment {i} not clean"));
            assert_eq!(clean.next_lsn, segs[i + 1].header.base_lsn);
            assert!(clean.end <= segs[i].len());
            let base = segs[i].header.base_lsn;
            for lsn in base..clean.next_lsn {
                assert!(
                    segs[i].index.get(lsn - base).is_some(),
                    "LSN {lsn} not indexed"
                );
            }
        }
        assert!(segs[segs.len() - 1].header.base_lsn <= last);
        assert_eq!(
            check_sealed(&segs[segs.len() - 1]),
            None,
            "the open segment has no seal"
        );
    }

    #[test]
    fn a_flipped_bit_makes_only_that_segment_unclean() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_log(dir.path());
        let victim = segments(dir.path())[1].path.clone();
        let mut bytes = std::fs::read(&victim).expect("read");
        bytes[SEGMENT_HEADER_LEN as usize + 300] ^= 0x10;
        std::fs::write(&victim, &bytes).expect("write");
        let segs = segments(dir.path());
        let found = verify_sealed(&segs[..segs.len() - 1]);
        assert_eq!(found[1], None);
        assert!(found.iter().enumerate().all(|(i, c)| i == 1 || c.is_some()));
        assert_eq!(
            found,
            segs[..segs.len() - 1]
                .iter()
                .map(|s| check_sealed(s))
                .collect::<Vec<_>>()
        );
    }
}
