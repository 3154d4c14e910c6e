//! `summary`: the segments, and what recovery would do with them.

use std::io::Write;
use std::path::Path;

use serde_json::json;
use tidemark_wal::{RecoveryReport, RunEnd, SegmentFileKind, WalError};

use super::scan::{LogScan, fill, report_json, segment_json, state_word};
use crate::outcome::{Health, ToolError};
use crate::table::{Table, human_bytes};
use crate::time_fmt::utc;

/// Prints the summary of the log in `dir`.
pub(crate) fn run(dir: &Path, json: bool, out: &mut dyn Write) -> Result<Health, ToolError> {
    let scan = LogScan::load(dir)?;
    let health = Health::from_damage(scan.damaged());
    if json {
        write_json(&scan, health, out)?;
    } else {
        write_human(&scan, health, out)?;
    }
    Ok(health)
}

fn write_json(scan: &LogScan, health: Health, out: &mut dyn Write) -> Result<(), ToolError> {
    let v = json!({
        "dir": scan.dir.display().to_string(),
        "healthy": health == Health::Healthy,
        "records_readable": scan.skip_open.as_ref().ok().map(|r| r.records),
        "records_lost": scan.skip_open.as_ref().ok().map(|r| r.records_skipped),
        "segments": scan.segments.iter().map(segment_json).collect::<Vec<_>>(),
        "other_files": scan.other_files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "recovery": recovery_json(&scan.default_open),
        "problems": scan.problems().iter().map(|p| p.json()).collect::<Vec<_>>(),
    });
    writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(&v).unwrap_or_default()
    )?;
    Ok(())
}

/// What a default-mode open would do, as JSON.
pub(crate) fn recovery_json(r: &Result<RecoveryReport, WalError>) -> serde_json::Value {
    match r {
        Ok(rep) => json!({
            "mode": "tolerate-corrupted-tail",
            "opens": true,
            "action": action(rep),
            "report": report_json(rep),
        }),
        Err(e) => json!({
            "mode": "tolerate-corrupted-tail",
            "opens": false,
            "action": format!("refuses to open: {e}"),
        }),
    }
}

/// What a writable open would do, in one sentence.
fn action(r: &RecoveryReport) -> String {
    if r.damage.is_empty() && r.bytes_truncated == 0 {
        return "opens cleanly; nothing to repair".into();
    }
    let mut s = String::from("would repair:");
    if r.bytes_truncated > 0 {
        s.push_str(&format!(" drop {} bytes", r.bytes_truncated));
    }
    if let Some(d) = r.damage.first() {
        s.push_str(&format!(
            " from {} byte {} (LSN {})",
            d.segment.display(),
            d.offset,
            d.lsn
        ));
    }
    if r.records_skipped > 0 {
        s.push_str(&format!("; skip {} records", r.records_skipped));
    }
    s
}

fn write_human(scan: &LogScan, health: Health, out: &mut dyn Write) -> Result<(), ToolError> {
    writeln!(out, "log directory  {}", scan.dir.display())?;
    let live: Vec<_> = scan.live().collect();
    if let Some((_, f)) = live.first() {
        writeln!(out, "log id         {:016x}", f.header.log_id)?;
    }
    writeln!(out, "records        {}", records_line(scan))?;
    if let Some(((_, a), (_, b))) = live.first().zip(live.last()) {
        let end = match b.end {
            RunEnd::Sealed { at_unix_nanos, .. } => utc(at_unix_nanos),
            _ => "open".into(),
        };
        writeln!(
            out,
            "time range     {} .. {end}",
            utc(a.header.created_unix_nanos)
        )?;
    }
    let used: u64 = live.iter().map(|(_, f)| f.used_bytes).sum();
    let size: u64 = scan.segments.iter().map(|s| s.file.file_size).sum();
    writeln!(
        out,
        "disk           {} used of {} in {} segment file(s)",
        human_bytes(used),
        human_bytes(size),
        scan.segments.len()
    )?;
    writeln!(out)?;
    segment_table(scan).write(out)?;
    if !scan.other_files.is_empty() {
        writeln!(out, "\nother files: {}", scan.other_files.len())?;
        for p in &scan.other_files {
            writeln!(out, "  {}", p.display())?;
        }
    }
    writeln!(out)?;
    match &scan.default_open {
        Ok(r) => writeln!(out, "recovery (tolerate-corrupted-tail): {}", action(r))?,
        Err(e) => writeln!(
            out,
            "recovery (tolerate-corrupted-tail): refuses to open: {e}"
        )?,
    }
    for p in scan.problems() {
        writeln!(out, "damage: {}", p.line())?;
    }
    let verdict = match health {
        Health::Healthy => "healthy",
        Health::Damaged => "DAMAGE FOUND",
    };
    writeln!(out, "verdict: {verdict}")?;
    Ok(())
}

/// Readable records as recovery sees them (damage skipped), else the
/// in-order runs of the segments.
fn records_line(scan: &LogScan) -> String {
    if let Ok(r) = &scan.skip_open {
        let lost = match r.records_skipped {
            0 => String::new(),
            n => format!(", {n} lost to damage"),
        };
        return match (r.first_lsn, r.last_lsn) {
            (Some(a), Some(b)) => format!("{} (LSN {a}..{b}){lost}", r.records),
            _ => format!("0{lost}"),
        };
    }
    let records: u64 = scan.live().map(|(_, f)| f.records).sum();
    format!("{records} in unbroken runs (recovery cannot open the log)")
}

fn segment_table(scan: &LogScan) -> Table {
    let mut t = Table::new(&[
        ">seq",
        "file",
        "state",
        ">first lsn",
        ">last lsn",
        ">records",
        ">used",
        ">size",
        ">fill",
        "created",
        "sealed",
        ">ver",
    ]);
    for s in &scan.segments {
        let name = s
            .file
            .path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let mut row = vec![s.file.seq.to_string(), name, state_word(s)];
        if let (SegmentFileKind::Live(h), Some(Ok(f))) = (&s.file.kind, &s.live) {
            let sealed = match f.end {
                RunEnd::Sealed { at_unix_nanos, .. } => utc(at_unix_nanos),
                _ => "-".into(),
            };
            row.extend([
                f.first_lsn.map_or("-".into(), |l| l.to_string()),
                f.last_lsn.map_or("-".into(), |l| l.to_string()),
                f.records.to_string(),
                human_bytes(f.used_bytes),
                human_bytes(s.file.file_size),
                format!("{:.1}%", 100.0 * fill(f.used_bytes, s.file.file_size)),
                utc(h.created_unix_nanos),
                sealed,
                h.version.to_string(),
            ]);
        } else {
            row.extend(["-", "-", "-", "-"].map(String::from));
            row.push(human_bytes(s.file.file_size));
        }
        t.row(row);
    }
    t
}
