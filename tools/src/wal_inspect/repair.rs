//! `repair --mode <MODE> [--dry-run]`: apply a recovery mode for real, copy-first.
//!
//! Plan: a read-only open under the chosen mode says what a writable open would
//! do. Apply: every live segment file from the first damaged one on is first
//! copied to `<name>.broken` (synced), then the log is opened writable under the
//! mode, which seals the log at the break and retires what lies past it.
//! Segments whose header is damaged are renamed `*.wal.broken` by the log itself.
//! Finally a read-only open under the default mode confirms the result.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;
use tidemark_wal::{
    MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE, RecoveryMode, RecoveryReport, SegmentFileKind, SegmentInit,
    SegmentOptions, Wal, WalOptions, list_log_dir,
};

use super::scan::{Problem, open_read_only, report_json, require_segments};
use crate::outcome::{Health, ToolError};

/// Repairs (or with `dry_run`, plans the repair of) the log in `dir` under `mode`.
pub(crate) fn run(
    dir: &Path,
    mode: RecoveryMode,
    dry_run: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<Health, ToolError> {
    require_segments(dir)?;
    let plan = open_read_only(dir, mode)?;
    let needed = !plan.damage.is_empty() || plan.bytes_truncated > 0;
    let copies = if needed {
        affected_segments(dir, &plan)?
    } else {
        Vec::new()
    };
    if dry_run || !needed {
        write_plan(out, json, mode, &plan, &copies, needed)?;
        return Ok(Health::from_damage(needed));
    }
    for (from, to) in &copies {
        keep_copy(from, to)?;
    }
    let opts = WalOptions {
        recovery: mode,
        segment_size: log_segment_size(dir)?,
        ..WalOptions::default()
    };
    let segments = SegmentOptions {
        init: SegmentInit::Reserve,
        recycle: 0,
    };
    let done = match Wal::open_with(dir, opts, segments) {
        Ok(wal) => wal.recovery_report().clone(),
        Err(e) => {
            // Nothing was repaired (a live writer holds the lock, or the mode
            // refused after all): the copies are not needed.
            for (_, copy) in &copies {
                let _ = std::fs::remove_file(copy);
            }
            return Err(e.into());
        }
    };
    let after = open_read_only(dir, RecoveryMode::TolerateCorruptedTail);
    let healthy = after.as_ref().is_ok_and(|r| r.damage.is_empty());
    if json {
        let v = json!({
            "mode": mode_name(mode),
            "dry_run": false,
            "repaired": done.repaired,
            "report": report_json(&done),
            "kept_copies": copies.iter().map(|(a, b)| json!({"segment": a.display().to_string(), "copy": b.display().to_string()})).collect::<Vec<_>>(),
            "healthy_after": healthy,
        });
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        )?;
    } else {
        writeln!(out, "repaired {} with {}", dir.display(), mode_name(mode))?;
        write_effects(out, &done, false)?;
        for (a, b) in &copies {
            writeln!(out, "kept damaged copy: {} -> {}", a.display(), b.display())?;
        }
        match &after {
            Ok(r) if r.damage.is_empty() => writeln!(out, "verdict: healthy after repair")?,
            Ok(_) => writeln!(out, "verdict: damage remains after repair")?,
            Err(e) => writeln!(out, "verdict: a default open still refuses: {e}")?,
        }
    }
    Ok(Health::from_damage(!healthy))
}

fn write_plan(
    out: &mut dyn Write,
    json: bool,
    mode: RecoveryMode,
    plan: &RecoveryReport,
    copies: &[(PathBuf, PathBuf)],
    needed: bool,
) -> Result<(), ToolError> {
    if json {
        let v = json!({
            "mode": mode_name(mode),
            "dry_run": true,
            "needed": needed,
            "plan": report_json(plan),
            "would_keep_copies": copies.iter().map(|(a, b)| json!({"segment": a.display().to_string(), "copy": b.display().to_string()})).collect::<Vec<_>>(),
        });
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        )?;
        return Ok(());
    }
    if !needed {
        writeln!(
            out,
            "nothing to repair: {} opens cleanly with {}",
            mode_name(mode),
            mode_name(mode)
        )?;
        return Ok(());
    }
    writeln!(out, "dry run: repair with {} would", mode_name(mode))?;
    write_effects(out, plan, true)?;
    for (a, b) in copies {
        writeln!(out, "  keep a copy of {} as {}", a.display(), b.display())?;
    }
    writeln!(out, "nothing was changed")?;
    Ok(())
}

fn write_effects(out: &mut dyn Write, r: &RecoveryReport, plan: bool) -> std::io::Result<()> {
    let lead = if plan { "  " } else { "" };
    for d in &r.damage {
        writeln!(out, "{lead}handle {}", Problem::from_damage(d).line())?;
    }
    writeln!(
        out,
        "{lead}drop {} bytes, skip {} records",
        r.bytes_truncated, r.records_skipped
    )?;
    match (r.first_lsn, r.last_lsn) {
        (Some(a), Some(b)) => writeln!(out, "{lead}leave {} records, LSN {a}..{b}", r.records),
        _ => writeln!(out, "{lead}leave an empty log"),
    }
}

/// Live segment files from the first damaged one on, each with the name of its
/// `.broken` copy (never overwriting an earlier copy).
fn affected_segments(
    dir: &Path,
    plan: &RecoveryReport,
) -> Result<Vec<(PathBuf, PathBuf)>, ToolError> {
    let listing = list_log_dir(dir)?;
    let live: Vec<_> = listing
        .segments
        .iter()
        .filter(|s| matches!(s.kind, SegmentFileKind::Live(_)))
        .collect();
    // `live` is in LSN order: copy from the first damaged segment to the end.
    let Some(first) = live
        .iter()
        .position(|s| plan.damage.iter().any(|d| d.segment == s.path))
    else {
        return Ok(Vec::new());
    };
    Ok(live[first..]
        .iter()
        .map(|s| (s.path.clone(), broken_name(&s.path)))
        .collect())
}

fn broken_name(path: &Path) -> PathBuf {
    let base = path.with_extension("wal.broken");
    (1..)
        .map(|i| match i {
            1 => base.clone(),
            n => path.with_extension(format!("wal.broken.{n}")),
        })
        .find(|p| !p.exists())
        .unwrap_or(base)
}

/// The segment size the log was written with (its newest live segment's), so
/// that segments the repairing open prepares match the log's own.
fn log_segment_size(dir: &Path) -> Result<u64, ToolError> {
    let size = list_log_dir(dir)?
        .segments
        .iter()
        .filter_map(|s| match s.kind {
            SegmentFileKind::Live(h) => Some(h.segment_len),
            _ => None,
        })
        .next_back()
        .filter(|&n| (MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&n) && n.is_multiple_of(4096));
    Ok(size.unwrap_or(WalOptions::default().segment_size))
}

/// Copies `from` to `to` and makes the copy durable before anything is repaired.
fn keep_copy(from: &Path, to: &Path) -> Result<(), ToolError> {
    std::fs::copy(from, to).map_err(|e| ToolError::io("copy damaged segment", from, e))?;
    std::fs::File::open(to)
        .and_then(|f| f.sync_all())
        .map_err(|e| ToolError::io("sync copy", to, e))
}

fn mode_name(mode: RecoveryMode) -> &'static str {
    match mode {
        RecoveryMode::TolerateCorruptedTail => "tolerate-corrupted-tail",
        RecoveryMode::AbsoluteConsistency => "absolute-consistency",
        RecoveryMode::PointInTime => "point-in-time",
        RecoveryMode::SkipCorrupted => "skip-corrupted",
    }
}
