//! One read-only pass over a log directory: every segment file's header and
//! frames, and what recovery would do, side by side.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tidemark_wal::{
    Damage, DamageKind, FrameKind, Lsn, RecoveryMode, RecoveryReport, RunEnd, SegmentFile,
    SegmentFileKind, SegmentHeaderFacts, SegmentImage, Wal, WalError, WalOptions, content_len,
    list_log_dir,
};

use crate::outcome::ToolError;
use crate::progress::bytes_bar;
use crate::time_fmt::utc;

/// Buckets of the record-size histogram: bucket `i` holds sizes in `[2^(i-1), 2^i)`
/// (bucket 0: empty records).
pub(crate) const SIZE_BUCKETS: usize = 33;

/// What the frames of one live segment hold.
#[derive(Clone, Debug)]
pub(crate) struct LiveFacts {
    pub header: SegmentHeaderFacts,
    pub records: u64,
    pub first_lsn: Option<Lsn>,
    pub last_lsn: Option<Lsn>,
    /// Bytes from the start of the file to the end of the last in-order frame.
    pub used_bytes: u64,
    pub end: RunEnd,
    pub compressed_records: u64,
    /// Stored payload bytes (after compression).
    pub stored_bytes: u64,
    /// Payload bytes as appended (before compression).
    pub content_bytes: u64,
    /// Record sizes as appended, by power-of-two bucket.
    pub size_hist: [u64; SIZE_BUCKETS],
}

/// One segment-named file and, when live, what its frames hold.
#[derive(Clone, Debug)]
pub(crate) struct SegmentScan {
    pub file: SegmentFile,
    pub live: Option<Result<LiveFacts, String>>,
}

/// The state of a log directory as far as reading can tell.
pub(crate) struct LogScan {
    pub dir: PathBuf,
    pub segments: Vec<SegmentScan>,
    pub other_files: Vec<PathBuf>,
    /// What a writable open with the default mode (TolerateCorruptedTail) would do.
    pub default_open: Result<RecoveryReport, WalError>,
    /// Recovery with SkipCorrupted: every damaged place, in log order.
    pub skip_open: Result<RecoveryReport, WalError>,
}

impl LogScan {
    /// Lists and reads every segment of `dir`, and runs read-only recovery twice.
    pub(crate) fn load(dir: &Path) -> Result<LogScan, ToolError> {
        let listing = list_log_dir(dir)?;
        if listing.segments.is_empty() {
            return Err(no_segments(dir, &listing.other_files));
        }
        let total = listing.segments.iter().map(|s| s.file_size).sum();
        let bar = bytes_bar(total, "scanning segments");
        let mut segments = Vec::with_capacity(listing.segments.len());
        for file in listing.segments {
            let live = match &file.kind {
                SegmentFileKind::Live(h) => Some(scan_live(&file.path, *h)),
                _ => None,
            };
            bar.inc(file.file_size);
            segments.push(SegmentScan { file, live });
        }
        bar.finish_and_clear();
        if let Some(s) = segments.iter().find_map(unreadable) {
            return Err(s);
        }
        let skip_open = open_read_only(dir, RecoveryMode::SkipCorrupted);
        // Without damage, the default mode would recover exactly the same: spare
        // a second pass over a large log.
        let default_open = match &skip_open {
            Ok(r) if r.damage.is_empty() => Ok(r.clone()),
            _ => open_read_only(dir, RecoveryMode::TolerateCorruptedTail),
        };
        for r in [&skip_open, &default_open] {
            if let Err(e @ WalError::Io { .. }) = r {
                return Err(ToolError::Unreadable(e.to_string()));
            }
        }
        Ok(LogScan {
            dir: dir.to_path_buf(),
            segments,
            other_files: listing.other_files,
            default_open,
            skip_open,
        })
    }

    /// True when anything is wrong: a bad file, or damage recovery would see.
    pub(crate) fn damaged(&self) -> bool {
        let bad_file = self.segments.iter().any(|s| {
            !matches!(
                s.file.kind,
                SegmentFileKind::Live(_) | SegmentFileKind::Spare
            ) || matches!(s.live, Some(Err(_)))
        });
        bad_file
            || self.default_open.is_err()
            || self
                .skip_open
                .as_ref()
                .map_or(true, |r| !r.damage.is_empty())
    }

    /// Live segments whose frames could be read.
    pub(crate) fn live(&self) -> impl Iterator<Item = (&SegmentScan, &LiveFacts)> {
        self.segments.iter().filter_map(|s| match &s.live {
            Some(Ok(f)) => Some((s, f)),
            _ => None,
        })
    }

    /// Every damaged place known: bad files first, then recovery's findings.
    pub(crate) fn problems(&self) -> Vec<Problem> {
        let mut out: Vec<Problem> = self.segments.iter().filter_map(file_problem).collect();
        match &self.skip_open {
            Ok(r) => out.extend(r.damage.iter().map(Problem::from_damage)),
            Err(e) => out.push(Problem::from_error(e)),
        }
        if let (Err(e), Ok(_)) = (&self.default_open, &self.skip_open) {
            out.push(Problem::from_error(e));
        }
        out.dedup_by(|a, b| a.segment == b.segment && a.offset == b.offset && a.kind == b.kind);
        out
    }
}

/// Opens the log read-only under `mode`: recovery runs in memory, nothing changes.
pub(crate) fn open_read_only(dir: &Path, mode: RecoveryMode) -> Result<RecoveryReport, WalError> {
    let opts = WalOptions {
        recovery: mode,
        ..WalOptions::default()
    };
    Wal::open_read_only(dir, opts).map(|w| w.recovery_report().clone())
}

/// Fails with one clear line unless `dir` holds at least one segment file.
pub(crate) fn require_segments(dir: &Path) -> Result<(), ToolError> {
    let listing = list_log_dir(dir)?;
    if listing.segments.is_empty() {
        return Err(no_segments(dir, &listing.other_files));
    }
    Ok(())
}

fn no_segments(dir: &Path, others: &[PathBuf]) -> ToolError {
    let what = match others.first() {
        None => "it is empty".to_string(),
        Some(p) => format!(
            "it holds {} other file(s), e.g. {}",
            others.len(),
            p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned()
            )
        ),
    };
    ToolError::Usage(format!(
        "{} is not a tidemark WAL directory: no segment files (seg-*.wal); {what}",
        dir.display()
    ))
}

/// An I/O failure reading a segment file: the tool cannot judge the log (exit 2).
fn unreadable(s: &SegmentScan) -> Option<ToolError> {
    match (&s.file.kind, &s.live) {
        (SegmentFileKind::Unreadable(why), _) => Some(ToolError::Unreadable(format!(
            "cannot read segment file {}: {why}",
            s.file.path.display()
        ))),
        (_, Some(Err(why))) => Some(ToolError::Unreadable(why.clone())),
        _ => None,
    }
}

fn scan_live(path: &Path, header: SegmentHeaderFacts) -> Result<LiveFacts, String> {
    let image = SegmentImage::read(path).map_err(|e| e.to_string())?;
    let mut f = LiveFacts {
        header,
        records: 0,
        first_lsn: None,
        last_lsn: None,
        used_bytes: 64,
        end: RunEnd::Blank { offset: 64 },
        compressed_records: 0,
        stored_bytes: 0,
        content_bytes: 0,
        size_hist: [0; SIZE_BUCKETS],
    };
    let mut run = image.frames();
    for (info, payload) in run.by_ref() {
        f.used_bytes = info.offset + info.frame_len;
        if info.kind != FrameKind::Record {
            continue;
        }
        f.records += 1;
        f.first_lsn.get_or_insert(info.lsn);
        f.last_lsn = Some(info.lsn);
        f.compressed_records += u64::from(info.compressed);
        f.stored_bytes += u64::from(info.stored_len);
        let len = content_len(&info, payload).unwrap_or(u64::from(info.stored_len));
        f.content_bytes += len;
        f.size_hist[size_bucket(len)] += 1;
    }
    if let Some(end) = run.end() {
        f.end = end;
    }
    Ok(f)
}

/// The histogram bucket of a record of `len` bytes.
pub(crate) fn size_bucket(len: u64) -> usize {
    ((u64::BITS - len.leading_zeros()) as usize).min(SIZE_BUCKETS - 1)
}

/// One damaged place, from a file's header or from recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    pub kind: &'static str,
    pub segment: Option<PathBuf>,
    pub offset: Option<u64>,
    pub lsn: Option<u64>,
    pub reason: String,
}

impl Problem {
    pub(crate) fn from_damage(d: &Damage) -> Problem {
        Problem {
            kind: match d.kind {
                DamageKind::TornTail => "torn-tail",
                DamageKind::Corruption => "corruption",
            },
            segment: Some(d.segment.clone()),
            offset: Some(d.offset),
            lsn: (d.lsn.0 > 0).then_some(d.lsn.0),
            reason: d.reason.clone(),
        }
    }

    pub(crate) fn from_error(e: &WalError) -> Problem {
        let (kind, segment, offset, lsn) = match e {
            WalError::Corruption {
                segment,
                offset,
                lsn,
                ..
            } => (
                "corruption",
                Some(segment.clone()),
                Some(*offset),
                Some(lsn.0),
            ),
            WalError::TornTail {
                segment,
                offset,
                lsn,
            } => (
                "torn-tail",
                Some(segment.clone()),
                Some(*offset),
                Some(lsn.0),
            ),
            WalError::NotAWal { path, .. } => ("foreign-file", Some(path.clone()), None, None),
            WalError::UnsupportedVersion { path, .. } => {
                ("unsupported-version", Some(path.clone()), None, None)
            }
            _ => ("error", None, None, None),
        };
        Problem {
            kind,
            segment,
            offset,
            lsn,
            reason: e.to_string(),
        }
    }

    /// One line: kind, where, why.
    pub(crate) fn line(&self) -> String {
        let mut s = self.kind.to_string();
        if let Some(p) = &self.segment {
            s.push_str(&format!(" in {}", p.display()));
        }
        if let Some(o) = self.offset {
            s.push_str(&format!(" at byte {o}"));
        }
        if let Some(l) = self.lsn {
            s.push_str(&format!(" (LSN {l})"));
        }
        format!("{s}: {}", self.reason)
    }

    pub(crate) fn json(&self) -> Value {
        json!({
            "kind": self.kind,
            "segment": self.segment.as_ref().map(|p| p.display().to_string()),
            "offset": self.offset,
            "lsn": self.lsn,
            "reason": self.reason,
        })
    }
}

fn file_problem(s: &SegmentScan) -> Option<Problem> {
    let (kind, reason) = match (&s.file.kind, &s.live) {
        (SegmentFileKind::Foreign(why), _) => {
            ("foreign-file", format!("not a tidemark WAL segment: {why}"))
        }
        (SegmentFileKind::Unsupported(v), _) => (
            "unsupported-version",
            format!(
                "format version {v} is newer than this build reads ({})",
                tidemark_wal::FORMAT_VERSION
            ),
        ),
        (SegmentFileKind::DamagedHeader, _) => {
            ("corruption", "segment header checksum mismatch".into())
        }
        (SegmentFileKind::Unreadable(why), _) => ("unreadable", why.clone()),
        (_, Some(Err(why))) => ("unreadable", why.clone()),
        _ => return None,
    };
    Some(Problem {
        kind,
        segment: Some(s.file.path.clone()),
        offset: matches!(s.file.kind, SegmentFileKind::DamagedHeader).then_some(0),
        lsn: None,
        reason,
    })
}

/// What a segment file is, in one word.
pub(crate) fn state_word(s: &SegmentScan) -> String {
    match (&s.file.kind, &s.live) {
        (SegmentFileKind::Live(_), Some(Ok(f))) => match f.end {
            RunEnd::Sealed { .. } => "sealed".into(),
            RunEnd::Blank { .. } => "open".into(),
            RunEnd::Unverified { offset } => format!("break@{offset}"),
        },
        (SegmentFileKind::Live(_), _) => "unreadable".into(),
        (SegmentFileKind::Spare, _) => "spare".into(),
        (SegmentFileKind::Foreign(_), _) => "foreign".into(),
        (SegmentFileKind::Unsupported(v), _) => format!("version-{v}"),
        (SegmentFileKind::DamagedHeader, _) => "bad-header".into(),
        (SegmentFileKind::Unreadable(_), _) => "unreadable".into(),
    }
}

/// The recovery report as JSON.
pub(crate) fn report_json(r: &RecoveryReport) -> Value {
    json!({
        "segments": r.segments,
        "records": r.records,
        "bytes": r.bytes,
        "first_lsn": r.first_lsn.map(|l| l.0),
        "last_lsn": r.last_lsn.map(|l| l.0),
        "bytes_truncated": r.bytes_truncated,
        "records_skipped": r.records_skipped,
        "spare_segments": r.spare_segments,
        "damage": r.damage.iter().map(|d| Problem::from_damage(d).json()).collect::<Vec<_>>(),
        "seals_restored": r.seals_restored.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
    })
}

/// A segment's facts as JSON.
pub(crate) fn segment_json(s: &SegmentScan) -> Value {
    let mut v = json!({
        "file": s.file.path.display().to_string(),
        "seq": s.file.seq,
        "file_size": s.file.file_size,
        "state": state_word(s),
    });
    if let (SegmentFileKind::Live(h), Some(Ok(f))) = (&s.file.kind, &s.live) {
        let (sealed, break_offset) = match f.end {
            RunEnd::Sealed { at_unix_nanos, .. } => (Some(at_unix_nanos), None),
            RunEnd::Blank { .. } => (None, None),
            RunEnd::Unverified { offset } => (None, Some(offset)),
        };
        v["version"] = json!(h.version);
        v["log_id"] = json!(format!("{:016x}", h.log_id));
        v["base_lsn"] = json!(h.base_lsn.0);
        v["first_lsn"] = json!(f.first_lsn.map(|l| l.0));
        v["last_lsn"] = json!(f.last_lsn.map(|l| l.0));
        v["records"] = json!(f.records);
        v["used_bytes"] = json!(f.used_bytes);
        v["fill"] = json!(fill(f.used_bytes, s.file.file_size));
        v["created"] = json!(utc(h.created_unix_nanos));
        v["sealed"] = json!(sealed.map(utc));
        v["break_offset"] = json!(break_offset);
    }
    v
}

/// Used bytes as a fraction of the file, 0..=1.
pub(crate) fn fill(used: u64, size: u64) -> f64 {
    if size == 0 {
        0.0
    } else {
        used as f64 / size as f64
    }
}
