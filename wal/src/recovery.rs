//! Recovery: what `open()` does with the segments it finds.
//!
//! Every frame of every live segment is verified (CRC32C bound to the segment
//! incarnation, LSN density, batch completeness). The first frame that does not
//! verify is a *break*, classified as:
//! - a **clean end**: no frame of this segment incarnation starts there (zeros,
//!   or stale bytes of a recycled segment), and nothing valid follows it;
//! - a **torn tail**: something was half written, and no valid frame written
//!   later shows that the broken record had been durable;
//! - **corruption**: a valid frame written later carries a durable LSN at or
//!   past the broken record, so the broken record had been made durable and has
//!   since been damaged.
//!
//! One break is none of these: a segment whose frames all verify and that ends,
//! without its seal, exactly where the next live segment's header says the log
//! continues. Its seal was written at rotation but never reached the disk (a
//! power cut after the rotation, with a build that did not sync the seal, or
//! before the next sync): no record is missing, since the next segment's
//! verified header names the LSN the old one ended at. Recovery restores the
//! seal (when writable) and counts it in [`RecoveryReport::seals_restored`];
//! every mode accepts it, because no record is damaged.
//!
//! The [`RecoveryMode`] then decides: truncate (by writing a seal at the break
//! and retiring later segments; files are never shrunk), skip to the next valid
//! frame, or refuse with an error naming segment, offset and LSN.
//!
//! Sealed segments are verified on all cores before the ordered walk (see
//! [`crate::parallel_verify`]); a segment that verified clean is taken as is,
//! every other one is walked here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Result, WalError};
use crate::format::{
    FRAME_ALIGN, FRAME_HEADER_LEN, FrameHeader, KIND_RECORD, KIND_SEAL, SEAL_FRAME_LEN,
    SEGMENT_HEADER_LEN, SegmentFileClass, classify_segment_file, frame_slot_is_blank,
};
use crate::fs_util::sync_dir;
use crate::options::RecoveryMode;
use crate::parallel_verify::{CleanSeal, verify_sealed};
use crate::segment::{Segment, Spare, map_existing, parse_segment_file_name};
use crate::{FORMAT_VERSION, Lsn};

/// What kind of damage recovery found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DamageKind {
    /// A record that was never durable was partly written (a crash mid-write).
    TornTail,
    /// A record that had been durable does not verify, or records are missing.
    Corruption,
}

/// One place where recovery found damage, and what it did there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Torn tail or corruption.
    pub kind: DamageKind,
    /// The segment file.
    pub segment: PathBuf,
    /// Byte offset of the first bad frame.
    pub offset: u64,
    /// The LSN the log expected there.
    pub lsn: Lsn,
    /// What did not verify.
    pub reason: String,
}

/// What `open()` found and did. Read-only opens report what a writable open would do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Live segments after recovery.
    pub segments: usize,
    /// Records that verified and are readable.
    pub records: u64,
    /// Bytes of live frames (headers and padding included).
    pub bytes: u64,
    /// First readable LSN.
    pub first_lsn: Option<Lsn>,
    /// Last readable LSN.
    pub last_lsn: Option<Lsn>,
    /// Bytes of frames dropped behind a truncation point.
    pub bytes_truncated: u64,
    /// Records skipped (SkipCorrupted) or missing.
    pub records_skipped: u64,
    /// Every damaged place found, in log order.
    pub damage: Vec<Damage>,
    /// Prepared or recycled segment files holding no live records.
    pub spare_segments: usize,
    /// Segments whose seal never reached the disk although the next segment
    /// shows where they ended: nothing was lost, and a writable open wrote
    /// the seal again.
    pub seals_restored: Vec<PathBuf>,
    /// True if recovery wrote a truncation seal or retired segments (never for read-only opens).
    pub repaired: bool,
}

/// The state of a log directory after recovery.
pub(crate) struct Recovered {
    pub(crate) segments: Vec<Arc<Segment>>,
    pub(crate) retired: Vec<Segment>,
    pub(crate) spares: Vec<Spare>,
    pub(crate) next_lsn: u64,
    /// Where appends continue in the last segment, or `None` if a new one is needed.
    pub(crate) append_at: Option<u64>,
    pub(crate) max_seq: u64,
    pub(crate) log_id: Option<u64>,
    pub(crate) report: RecoveryReport,
}

enum Break {
    CleanEnd,
    Torn,
    Corrupt(String),
}

enum SegmentEnd {
    Sealed,
    Broken(u64),
}

/// Recovers the log in `dir`. Writable recovery repairs and syncs; read-only
/// recovery changes nothing on disk.
pub(crate) fn recover(dir: &Path, mode: RecoveryMode, writable: bool) -> Result<Recovered> {
    let found = list_segments(dir, writable)?;
    let mut rec = Recovered {
        segments: Vec::new(),
        retired: Vec::new(),
        spares: found.spares,
        next_lsn: 1,
        append_at: None,
        max_seq: found.max_seq,
        log_id: found.live.first().map(|s| s.header.log_id),
        report: RecoveryReport::default(),
    };
    rec.report.damage = found.damage;
    set_aside_broken(&mut rec, &found.broken, mode, writable)?;
    let mut live = found.live.into_iter().map(Arc::new).collect::<Vec<_>>();
    if let Some(first) = live.first() {
        rec.next_lsn = first.header.base_lsn;
    }
    // Every segment but the last is normally sealed: check those on all cores first.
    let clean = verify_sealed(&live[..live.len().saturating_sub(1)]);
    let mut i = 0;
    while i < live.len() {
        if !check_continuity(&mut rec, &live[i], mode)? {
            break;
        }
        let starts_here = rec.next_lsn == live[i].header.base_lsn;
        if let Some(seal) = clean.get(i).copied().flatten().filter(|_| starts_here) {
            accept_clean(&mut rec, &live[i], seal);
            i += 1;
            continue;
        }
        match scan_segment(&live[i], &mut rec, mode, &live[i + 1..], writable)? {
            SegmentEnd::Sealed => i += 1,
            SegmentEnd::Broken(off) => {
                finish_at_break(&mut rec, &live[i], off, writable);
                i += 1;
                break;
            }
        }
    }
    let later = live.split_off(i.min(live.len()));
    rec.segments = live;
    retire_later(&mut rec, later);
    summarize(&mut rec, writable)?;
    Ok(rec)
}

struct Listing {
    broken: Vec<PathBuf>,
    live: Vec<Segment>,
    spares: Vec<Spare>,
    damage: Vec<Damage>,
    max_seq: u64,
}

fn list_segments(dir: &Path, writable: bool) -> Result<Listing> {
    let mut names = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| WalError::io("list log directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| WalError::io("list log directory", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".wal.tmp") && writable {
            let _ = std::fs::remove_file(entry.path());
        } else if let Some(seq) = parse_segment_file_name(&name) {
            names.push((seq, entry.path()));
        }
    }
    names.sort();
    let mut l = Listing {
        broken: Vec::new(),
        live: Vec::new(),
        spares: Vec::new(),
        damage: Vec::new(),
        max_seq: names.last().map_or(0, |n| n.0),
    };
    for (seq, path) in names {
        classify_file(&mut l, seq, path, writable)?;
    }
    l.live.sort_by_key(|s| s.header.base_lsn);
    if let Some(first) = l.live.first() {
        let id = first.header.log_id;
        if let Some(foreign) = l.live.iter().find(|s| s.header.log_id != id) {
            return Err(corruption(
                &foreign.path,
                0,
                foreign.header.base_lsn,
                "segment belongs to another log",
            ));
        }
    }
    Ok(l)
}

fn classify_file(l: &mut Listing, seq: u64, path: PathBuf, writable: bool) -> Result<()> {
    let (file, map) = map_existing(&path, writable)?;
    let mut raw = [0u8; SEGMENT_HEADER_LEN as usize];
    // SAFETY: `map_existing` checked the file is longer than a header; recovery
    // holds the file alone, so nothing writes it while we read.
    let n = raw.len();
    raw.copy_from_slice(unsafe { std::slice::from_raw_parts(map.as_ptr(), n) });
    match classify_segment_file(&raw, seq) {
        SegmentFileClass::Live(h) => {
            let (file, map) = if writable && (map.len() as u64) < h.segment_len {
                drop((file, map));
                restore_length(&path, h.segment_len)?
            } else {
                (file, map)
            };
            l.live.push(Segment::recovered(path, file, map, h));
        }
        SegmentFileClass::Spare => l.spares.push(Spare {
            path,
            file,
            map,
            seq,
        }),
        SegmentFileClass::NotAWal => {
            return Err(WalError::NotAWal {
                path,
                reason: "bad magic bytes".into(),
            });
        }
        SegmentFileClass::Unsupported(found) => {
            return Err(WalError::UnsupportedVersion {
                path,
                found,
                supported: FORMAT_VERSION,
            });
        }
        SegmentFileClass::Damaged => {
            l.damage.push(Damage {
                kind: DamageKind::Corruption,
                segment: path.clone(),
                offset: 0,
                lsn: Lsn(0),
                reason: "segment header checksum mismatch".into(),
            });
            l.broken.push(path);
        }
    }
    Ok(())
}

/// Gives a segment file that damage cut short its reserved length back (the
/// missing bytes read as zeros, i.e. a torn tail), so the normal repair applies.
fn restore_length(path: &Path, len: u64) -> Result<(std::fs::File, memmap2::MmapRaw)> {
    tracing::warn!(path = %path.display(), len, "segment file was cut short; restoring its length");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| WalError::io("open segment", path, e))?;
    crate::fs_util::reserve_blocks(&file, len)
        .map_err(|e| WalError::io("restore segment length", path, e))?;
    file.sync_all()
        .map_err(|e| WalError::io("sync segment", path, e))?;
    map_existing(path, true)
}

/// Segments whose header does not verify: an error unless the mode drops or
/// skips damage, in which case they are renamed `*.broken` (kept for forensics).
fn set_aside_broken(
    rec: &mut Recovered,
    broken: &[PathBuf],
    mode: RecoveryMode,
    writable: bool,
) -> Result<()> {
    let Some(first) = broken.first() else {
        return Ok(());
    };
    if matches!(
        mode,
        RecoveryMode::TolerateCorruptedTail | RecoveryMode::AbsoluteConsistency
    ) {
        return Err(corruption(first, 0, 0, "segment header checksum mismatch"));
    }
    if writable {
        for path in broken {
            let to = path.with_extension("wal.broken");
            std::fs::rename(path, &to)
                .map_err(|e| WalError::io("set aside broken segment", path, e))?;
        }
        // The renames are durable before the log moves on: a crash cannot bring a set-aside
        // segment back under its live name.
        if let Some(dir) = first.parent() {
            sync_dir(dir)?;
        }
        rec.report.repaired = true;
    }
    Ok(())
}

/// Checks that `seg` starts where the log left off. Returns false when recovery stops here.
fn check_continuity(rec: &mut Recovered, seg: &Segment, mode: RecoveryMode) -> Result<bool> {
    let base = seg.header.base_lsn;
    if base == rec.next_lsn {
        return Ok(true);
    }
    let reason = format!(
        "segment starts at LSN {base} but the log continues at {}",
        rec.next_lsn
    );
    let damage = Damage {
        kind: DamageKind::Corruption,
        segment: seg.path.clone(),
        offset: 0,
        lsn: Lsn(rec.next_lsn),
        reason: reason.clone(),
    };
    if base > rec.next_lsn && mode == RecoveryMode::SkipCorrupted {
        rec.report.records_skipped += base - rec.next_lsn;
        rec.next_lsn = base;
        rec.report.damage.push(damage);
        return Ok(true);
    }
    if mode == RecoveryMode::PointInTime || mode == RecoveryMode::SkipCorrupted {
        rec.report.damage.push(damage);
        return Ok(false);
    }
    Err(corruption(&seg.path, 0, rec.next_lsn, &reason))
}

/// Takes a segment that [`verify_sealed`] found clean, as walking it would:
/// its frames are indexed already, and it ends at its seal.
fn accept_clean(rec: &mut Recovered, seg: &Segment, seal: CleanSeal) {
    rec.report.records += seal.next_lsn - seg.header.base_lsn;
    rec.next_lsn = seal.next_lsn;
    seg.mark_sealed(seal.end, seal.next_lsn, seal.sealed_at);
}

/// Verifies and indexes the frames of `seg`, resolving breaks by `mode`.
fn scan_segment(
    seg: &Segment,
    rec: &mut Recovered,
    mode: RecoveryMode,
    later: &[Arc<Segment>],
    writable: bool,
) -> Result<SegmentEnd> {
    let mut off = SEGMENT_HEADER_LEN;
    // Frames below this offset belong to a batch `batch_end` has verified whole.
    let mut verified_below = 0u64;
    loop {
        let expected = rec.next_lsn;
        let frame = if off < verified_below {
            seg.frame_at(off).map(|(h, _, payload)| (h, payload))
        } else {
            seg.valid_frame_at(off)
        };
        match frame {
            Some((h, payload))
                if h.kind == KIND_SEAL && h.lsn == expected && payload.len() == 8 =>
            {
                let at = u64::from_le_bytes(payload.try_into().unwrap_or([0; 8]));
                seg.mark_sealed(off + SEAL_FRAME_LEN, expected, at);
                return Ok(SegmentEnd::Sealed);
            }
            Some((h, _)) if h.kind == KIND_RECORD && h.lsn == expected => {
                if h.batch_left > 1 && off >= verified_below {
                    match batch_end(seg, off, &h) {
                        Some(end) => verified_below = end,
                        None => {
                            if let Some(next) =
                                resolve_break(seg, off, rec, mode, later, "incomplete batch")?
                            {
                                off = next;
                                continue;
                            }
                            return Ok(SegmentEnd::Broken(off));
                        }
                    }
                }
                seg.index
                    .publish(expected - seg.header.base_lsn, off as u32);
                rec.report.records += 1;
                rec.next_lsn += 1;
                off += h.frame_len();
            }
            _ if seal_not_written_back(seg, off, rec.next_lsn, later) => {
                restore_seal(seg, off, rec, later, writable);
                return Ok(SegmentEnd::Sealed);
            }
            _ => match resolve_break(seg, off, rec, mode, later, "frame does not verify")? {
                Some(next) => off = next,
                None => return Ok(SegmentEnd::Broken(off)),
            },
        }
    }
}

/// True when `seg` ends at `off` only for want of its seal: the next live
/// segment's verified header starts the log at `lsn`, exactly the LSN this
/// segment would continue at, and no frame of this incarnation lies at or after
/// `off` (zeros, stale bytes, or a torn seal). Every record before `lsn` has
/// verified, so nothing is missing. A damaged record can never pass: the next
/// segment would then start past `lsn`, or valid frames would follow it here.
fn seal_not_written_back(seg: &Segment, off: u64, lsn: u64, later: &[Arc<Segment>]) -> bool {
    later
        .first()
        .is_some_and(|next| next.header.base_lsn == lsn)
        && valid_frames(seg, off).next().is_none()
}

/// Ends `seg` at `off` as its lost seal did, and writes that seal again when
/// writable (made durable with every live segment in [`summarize`]). The seal
/// time is the next segment's activation time: rotation stamps both alike.
fn restore_seal(
    seg: &Segment,
    off: u64,
    rec: &mut Recovered,
    later: &[Arc<Segment>],
    writable: bool,
) {
    let at = later.first().map_or(0, |n| n.header.created_unix_nanos);
    tracing::warn!(
        segment = %seg.path.display(), offset = off, next_lsn = rec.next_lsn,
        "segment seal never reached the disk; the next segment shows where it ended"
    );
    if writable && off + SEAL_FRAME_LEN <= seg.len() {
        seg.seal(off, rec.next_lsn, rec.next_lsn - 1, at);
        rec.report.repaired = true;
    } else {
        // What a writable open would do, as far as the report can tell.
        seg.mark_sealed((off + SEAL_FRAME_LEN).min(seg.len()), rec.next_lsn, at);
    }
    rec.report.seals_restored.push(seg.path.clone());
}

/// The byte offset past a batch whose first record, already verified, sits at
/// `off`, if every later record of it verifies too. The walk then takes those
/// frames without checking them again: each batched frame is checksummed once.
fn batch_end(seg: &Segment, mut off: u64, first: &FrameHeader) -> Option<u64> {
    let mut want = *first;
    off += first.frame_len();
    want.lsn += 1;
    want.batch_left -= 1;
    loop {
        let (h, _) = seg.valid_frame_at(off)?;
        if h.kind != KIND_RECORD || h.lsn != want.lsn || h.batch_left != want.batch_left {
            return None;
        }
        off += h.frame_len();
        if h.batch_left == 1 {
            return Some(off);
        }
        want.lsn += 1;
        want.batch_left -= 1;
    }
}

/// Classifies the break at `off` and applies `mode`: `Ok(Some(next))` resumes
/// scanning at `next` (SkipCorrupted), `Ok(None)` ends the log here.
fn resolve_break(
    seg: &Segment,
    off: u64,
    rec: &mut Recovered,
    mode: RecoveryMode,
    later: &[Arc<Segment>],
    what: &str,
) -> Result<Option<u64>> {
    let lsn = rec.next_lsn;
    let kind = classify_break(seg, off, lsn, later, what);
    let (damage_kind, reason) = match kind {
        Break::CleanEnd => return Ok(None),
        Break::Torn => (
            DamageKind::TornTail,
            format!("{what}: torn write at the tail"),
        ),
        Break::Corrupt(reason) => (DamageKind::Corruption, reason),
    };
    match (damage_kind, mode) {
        (DamageKind::TornTail, RecoveryMode::AbsoluteConsistency) => {
            return Err(WalError::TornTail {
                segment: seg.path.clone(),
                offset: off,
                lsn: Lsn(lsn),
            });
        }
        (
            DamageKind::Corruption,
            RecoveryMode::AbsoluteConsistency | RecoveryMode::TolerateCorruptedTail,
        ) => {
            return Err(corruption(&seg.path, off, lsn, &reason));
        }
        _ => {}
    }
    rec.report.damage.push(Damage {
        kind: damage_kind,
        segment: seg.path.clone(),
        offset: off,
        lsn: Lsn(lsn),
        reason,
    });
    if mode != RecoveryMode::SkipCorrupted {
        return Ok(None);
    }
    Ok(
        next_valid_frame(seg, off + FRAME_ALIGN, lsn).map(|(next_off, h)| {
            rec.report.records_skipped += h.lsn - lsn;
            rec.next_lsn = h.lsn;
            next_off
        }),
    )
}

fn classify_break(seg: &Segment, off: u64, lsn: u64, later: &[Arc<Segment>], what: &str) -> Break {
    let blank = is_blank(seg, off);
    let mut witness = None::<(u64, u64)>;
    let mut seen_any = false;
    let later_frames = later
        .iter()
        .flat_map(|s| valid_frames(s, SEGMENT_HEADER_LEN).map(|(_, h)| h));
    for h in valid_frames(seg, off + FRAME_ALIGN)
        .map(|(_, h)| h)
        .chain(later_frames)
    {
        seen_any = true;
        if h.durable_hint() >= lsn {
            witness = Some((h.lsn, h.durable_hint()));
            break;
        }
    }
    match witness {
        Some((w, hint)) => Break::Corrupt(format!(
            "{what}, yet the frame of LSN {w}, written later, shows the log durable through LSN {hint}"
        )),
        None if blank && !seen_any => Break::CleanEnd,
        None => Break::Torn,
    }
}

/// True when no frame of this segment incarnation was begun at `off`: all
/// zeros, or stale bytes of a recycled segment (a non-zero tag of another
/// incarnation). A zero tag under non-zero bytes is a header torn mid-write.
fn is_blank(seg: &Segment, off: u64) -> bool {
    match seg
        .bytes(off, FRAME_HEADER_LEN as u64)
        .and_then(|raw| <&[u8; FRAME_HEADER_LEN]>::try_from(raw).ok())
    {
        Some(raw) => frame_slot_is_blank(raw, seg.header.tag),
        None => true,
    }
}

/// Valid frames of `seg` at 8-byte-aligned offsets from `from` on.
fn valid_frames(seg: &Segment, from: u64) -> impl Iterator<Item = (u64, FrameHeader)> + '_ {
    let first = from.div_ceil(FRAME_ALIGN) * FRAME_ALIGN;
    let last = seg.len().saturating_sub(FRAME_HEADER_LEN as u64);
    tag_matches(seg, first, last, seg.header.tag).filter_map(move |off| {
        let (h, _) = seg.valid_frame_at(off)?;
        (h.kind == KIND_RECORD || h.kind == KIND_SEAL).then_some((off, h))
    })
}

/// Where a frame header keeps its incarnation tag (little-endian `u32`).
const TAG_FIELD: u64 = 16;
/// Candidate offsets tested together, without a branch per offset.
const TAG_BLOCK: usize = 64;

/// The 8-byte-aligned offsets in `first..=last` whose frame tag field holds `tag`,
/// ascending: the only places a frame of this incarnation can start. Blocks of
/// candidates without a match (blank or stale space, the common case after the
/// end of a log) are passed over at memory speed.
fn tag_matches(seg: &Segment, first: u64, last: u64, tag: u32) -> impl Iterator<Item = u64> + '_ {
    // Every candidate's whole 8-byte word lies inside the segment: `last` leaves a
    // frame header's length before the end, and the tag field is 16 bytes into it.
    let region = (first <= last)
        .then(|| seg.bytes(first + TAG_FIELD, last - first + FRAME_ALIGN))
        .flatten()
        .unwrap_or_default();
    let block_bytes = TAG_BLOCK * FRAME_ALIGN as usize;
    region
        .chunks(block_bytes)
        .enumerate()
        .filter(move |(_, block)| block_has_tag(block, tag))
        .flat_map(move |(b, block)| {
            let base = first + (b * block_bytes) as u64;
            block
                .chunks_exact(FRAME_ALIGN as usize)
                .enumerate()
                .filter(move |(_, word)| word_tag(word) == tag)
                .map(move |(i, _)| base + i as u64 * FRAME_ALIGN)
        })
}

/// Whether any 8-byte word of `block` starts with `tag`; branch-free so it vectorizes.
fn block_has_tag(block: &[u8], tag: u32) -> bool {
    block
        .chunks_exact(FRAME_ALIGN as usize)
        .fold(false, |hit, word| hit | (word_tag(word) == tag))
}

fn word_tag(word: &[u8]) -> u32 {
    u32::from_le_bytes([word[0], word[1], word[2], word[3]])
}

/// The first valid frame at or after `from` whose LSN is at least `lsn`.
fn next_valid_frame(seg: &Segment, from: u64, lsn: u64) -> Option<(u64, FrameHeader)> {
    valid_frames(seg, from).find(|(_, h)| h.lsn >= lsn)
}

/// Ends the log at byte `off` of `seg`: writes a seal there when writable, so the
/// torn bytes after it are never read again, and counts what was dropped.
fn finish_at_break(rec: &mut Recovered, seg: &Segment, off: u64, writable: bool) {
    let tail_damaged = rec
        .report
        .damage
        .last()
        .is_some_and(|d| d.segment == seg.path && d.offset >= off);
    if !tail_damaged {
        // Append where the log ends, unless damage cut the file short.
        if seg.is_whole() {
            rec.append_at = Some(off);
        } else {
            seg.mark_sealed(off, rec.next_lsn, crate::wal::unix_nanos());
        }
        return;
    }
    rec.report.bytes_truncated += dropped_bytes(seg, off);
    let now = crate::wal::unix_nanos();
    if writable && off + SEAL_FRAME_LEN <= seg.len() {
        seg.seal(off, rec.next_lsn, rec.next_lsn - 1, now);
        rec.report.repaired = true;
    } else {
        seg.mark_sealed(off, rec.next_lsn, now);
    }
}

/// Bytes from `off` to the end of the furthest frame of this incarnation.
fn dropped_bytes(seg: &Segment, off: u64) -> u64 {
    let claimed = seg.frame_at(off).map_or(0, |(h, _, _)| h.frame_len());
    let furthest = valid_frames(seg, off + FRAME_ALIGN)
        .map(|(o, h)| o + h.frame_len())
        .last();
    furthest
        .unwrap_or(off + claimed.max(FRAME_HEADER_LEN as u64))
        .min(seg.len())
        - off
}

/// Segments after the end of the log hold nothing live: they are retired.
fn retire_later(rec: &mut Recovered, later: Vec<Arc<Segment>>) {
    for seg in later {
        let used: u64 = valid_frames(&seg, SEGMENT_HEADER_LEN)
            .map(|(_, h)| h.frame_len())
            .sum();
        rec.report.bytes_truncated += used;
        rec.report.repaired |= used > 0;
        match Arc::try_unwrap(seg) {
            Ok(seg) => rec.retired.push(seg),
            Err(_) => tracing::error!("a later segment is still shared during recovery"),
        }
    }
}

/// Fills in the report and, when writable, syncs every live segment.
fn summarize(rec: &mut Recovered, writable: bool) -> Result<()> {
    let r = &mut rec.report;
    r.segments = rec.segments.len();
    r.spare_segments = rec.spares.len();
    r.last_lsn = (r.records > 0).then(|| Lsn(rec.next_lsn - 1));
    r.first_lsn = first_readable(&rec.segments, rec.next_lsn);
    for seg in &rec.segments {
        let end = seg
            .sealed_end()
            .or(rec.append_at)
            .unwrap_or(SEGMENT_HEADER_LEN);
        r.bytes += end.saturating_sub(SEGMENT_HEADER_LEN);
        if writable {
            seg.sync_to(end)?;
        }
    }
    Ok(())
}

fn first_readable(segments: &[Arc<Segment>], next_lsn: u64) -> Option<Lsn> {
    segments.iter().find_map(|s| {
        let base = s.header.base_lsn;
        (base..s.end_lsn().min(next_lsn))
            .find(|&lsn| s.index.get(lsn - base).is_some())
            .map(Lsn)
    })
}

fn corruption(path: &Path, offset: u64, lsn: u64, reason: &str) -> WalError {
    WalError::Corruption {
        segment: path.to_path_buf(),
        offset,
        lsn: Lsn(lsn),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{SegmentFileClass, classify_segment_file};
    use crate::{Durability, Wal, WalOptions};

    /// A one-segment log of a few records, its file then filled past them with
    /// pseudo-random bytes and copies of the tag at chosen offsets.
    fn planted_segment(dir: &Path, plant: &[u64]) -> Segment {
        let opts = WalOptions {
            segment_size: 64 << 10,
            durability: Durability::Buffered,
            ..WalOptions::default()
        };
        let wal = Wal::open(dir, opts).expect("open");
        for i in 0..5u8 {
            wal.append(&[i; 300]).expect("append");
        }
        wal.sync().expect("sync");
        drop(wal);
        // The live segment: usually number 1, but the pool's preparer may have claimed that
        // number for a spare before the open took its first segment.
        let (path, mut bytes, h) = std::fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").path())
            .find_map(|p| {
                let name = p.file_name()?.to_str()?;
                let seq = crate::segment::parse_segment_file_name(name)?;
                let bytes = std::fs::read(&p).expect("read");
                let raw = bytes.get(..SEGMENT_HEADER_LEN as usize)?.try_into().ok()?;
                match classify_segment_file(raw, seq) {
                    SegmentFileClass::Live(h) => Some((p, bytes, h)),
                    _ => None,
                }
            })
            .expect("a live segment");
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for b in &mut bytes[8192..] {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        for &off in plant {
            let at = (off + TAG_FIELD) as usize;
            bytes[at..at + 4].copy_from_slice(&h.tag.to_le_bytes());
        }
        std::fs::write(&path, &bytes).expect("write");
        let (file, map) = map_existing(&path, false).expect("map");
        Segment::recovered(path, file, map, h)
    }

    fn naive_matches(seg: &Segment, first: u64, last: u64) -> Vec<u64> {
        let tag = seg.header.tag.to_le_bytes();
        (first..=last)
            .step_by(FRAME_ALIGN as usize)
            .filter(|&off| seg.bytes(off + TAG_FIELD, 4) == Some(&tag[..]))
            .collect()
    }

    #[test]
    fn the_tag_scan_finds_exactly_the_offsets_a_word_by_word_scan_finds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let len = 64u64 << 10;
        let last = len - FRAME_HEADER_LEN as u64;
        let plant = [8192, 8200, 8704, 9000, 20_480, 40_000, last - 8, last];
        let seg = planted_segment(dir.path(), &plant);
        let tag = seg.header.tag;
        for first in [SEGMENT_HEADER_LEN, 8192, 8200, 8208, 9000, last - 8, last] {
            let found: Vec<u64> = tag_matches(&seg, first, last, tag).collect();
            assert_eq!(found, naive_matches(&seg, first, last), "from {first}");
            assert!(found.len() >= plant.iter().filter(|&&p| p >= first).count());
        }
        assert_eq!(tag_matches(&seg, last + 8, last, tag).count(), 0);
        // The records before the planted area are found through their tags as well.
        let frames: Vec<u64> = valid_frames(&seg, SEGMENT_HEADER_LEN)
            .map(|(o, _)| o)
            .collect();
        assert_eq!(
            frames.len(),
            5,
            "the five records, and no planted tag passes as a frame"
        );
    }
}
