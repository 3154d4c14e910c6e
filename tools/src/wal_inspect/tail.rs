//! `tail`: follow a live log as another process appends to it.
//!
//! No lock is taken and nothing is mapped: the segment being appended to is
//! re-read from the last verified frame on every poll, with plain reads. A frame
//! still being written does not verify yet and is picked up on a later poll;
//! a seal moves the follower to the segment that starts at the sealed LSN.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tidemark_wal::{
    FrameKind, Lsn, RunEnd, SegmentFileKind, SegmentImage, decode_payload, list_log_dir,
};

use super::DumpFormat;
use super::dump::write_record;
use super::scan::require_segments;
use crate::outcome::{Health, ToolError};

/// Where and how long to follow.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Follow {
    pub from: Option<u64>,
    pub limit: Option<u64>,
    pub poll_ms: u64,
}

/// The frame the follower reads next.
struct Position {
    path: PathBuf,
    base: Lsn,
    offset: u64,
    expect: u64,
}

const FIRST_CHUNK: u64 = 1 << 20;

/// Follows the log in `dir`, printing records from `follow.from` (default:
/// the first record appended after the start) until `follow.limit` records
/// were printed, or forever.
pub(crate) fn run(
    dir: &Path,
    follow: Follow,
    json: bool,
    out: &mut dyn Write,
) -> Result<Health, ToolError> {
    require_segments(dir)?;
    let format = if json {
        DumpFormat::Json
    } else {
        DumpFormat::Text
    };
    let from = match follow.from {
        Some(lsn) => lsn,
        None => end_of_log(dir)?,
    };
    let poll = Duration::from_millis(follow.poll_ms.max(1));
    let mut pos = locate(dir, from)?;
    let mut printed = 0u64;
    let mut chunk = FIRST_CHUNK;
    loop {
        if follow.limit.is_some_and(|n| printed >= n) {
            return Ok(Health::Healthy);
        }
        let image = match SegmentImage::read_range(&pos.path, pos.offset, chunk) {
            Ok(i) if i.base_lsn() == pos.base => i,
            _ => {
                // Retired, recycled or renamed under us: find the LSN again.
                std::thread::sleep(poll);
                pos = locate(dir, pos.expect)?;
                continue;
            }
        };
        let mut run = image.frames_from(pos.offset, Lsn(pos.expect));
        let mut progressed = false;
        for (info, payload) in run.by_ref() {
            progressed = true;
            if info.kind != FrameKind::Record || info.lsn.0 < from {
                continue;
            }
            if follow.limit.is_some_and(|n| printed >= n) {
                break;
            }
            let data = decode_payload(&info, payload)
                .map_err(|e| ToolError::io("decompress record of", &pos.path, e))?;
            write_record(out, format, info.lsn.0, &data)?;
            printed += 1;
        }
        out.flush()?;
        pos.offset = run.offset();
        pos.expect = run.next_lsn().0;
        match run.end() {
            Some(RunEnd::Sealed { next_lsn, .. }) => match next_segment(dir, next_lsn)? {
                Some(next) => pos = next,
                None => std::thread::sleep(poll),
            },
            Some(RunEnd::Unverified { .. }) if !progressed => {
                // Perhaps a frame larger than what was read: read more next time.
                chunk = chunk.saturating_mul(2);
                std::thread::sleep(poll);
            }
            _ if !progressed => std::thread::sleep(poll),
            _ => chunk = FIRST_CHUNK,
        }
    }
}

/// Live segments of `dir` as (base LSN, path), in LSN order.
fn live_segments(dir: &Path) -> Result<Vec<(Lsn, PathBuf)>, ToolError> {
    let mut segs: Vec<(Lsn, PathBuf)> = list_log_dir(dir)?
        .segments
        .into_iter()
        .filter_map(|s| match s.kind {
            SegmentFileKind::Live(h) => Some((h.base_lsn, s.path)),
            _ => None,
        })
        .collect();
    segs.sort();
    Ok(segs)
}

/// The position of the segment holding `lsn` (or the first one, if `lsn` was
/// already dropped), from its first frame.
fn locate(dir: &Path, lsn: u64) -> Result<Position, ToolError> {
    let segs = live_segments(dir)?;
    let chosen = segs
        .iter()
        .rev()
        .find(|(base, _)| base.0 <= lsn)
        .or(segs.first())
        .ok_or_else(|| ToolError::Usage(format!("{} holds no live segment", dir.display())))?;
    Ok(Position {
        path: chosen.1.clone(),
        base: chosen.0,
        offset: 64,
        expect: chosen.0.0,
    })
}

/// The segment that starts exactly at `lsn`, once its header is written.
fn next_segment(dir: &Path, lsn: Lsn) -> Result<Option<Position>, ToolError> {
    Ok(live_segments(dir)?
        .into_iter()
        .find(|(base, _)| *base == lsn)
        .map(|(base, path)| Position {
            path,
            base,
            offset: 64,
            expect: base.0,
        }))
}

/// The LSN the next appended record will get, judged from the last live segment.
fn end_of_log(dir: &Path) -> Result<u64, ToolError> {
    let segs = live_segments(dir)?;
    let Some((_, path)) = segs.last() else {
        return Ok(1);
    };
    let image = SegmentImage::read(path)?;
    let mut run = image.frames();
    run.by_ref().for_each(drop);
    Ok(match run.end() {
        Some(RunEnd::Sealed { next_lsn, .. }) => next_lsn.0,
        _ => run.next_lsn().0,
    })
}
