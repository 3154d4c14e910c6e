//! `show <EPOCH|latest>`: one checkpoint's manifest, decoded.

use std::io::Write;

use serde_json::json;
use tidemark_checkpoint::blocking::{Checkpoint, CheckpointState, PartInfo};

use super::session::{Loaded, Session, state_name, unix_ms, utc};
use super::{EpochArg, write_json};
use crate::outcome::{Health, ToolError};
use crate::table::{Table, human_bytes};

/// Shows the checkpoint `which` names. A damaged manifest, a checkpoint whose
/// parts are missing or of the wrong size, and (for `latest`) damaged newer
/// checkpoints passed over are damage (exit 1).
pub(crate) fn run(
    s: &Session,
    which: EpochArg,
    json: bool,
    out: &mut dyn Write,
) -> Result<Health, ToolError> {
    let cp = match s.load(which)? {
        Loaded::Found(cp) => cp,
        Loaded::Damaged { epoch, reason } => {
            if json {
                let v = json!({
                    "location": s.loc.shown, "epoch": epoch, "state": "corrupt", "detail": reason,
                });
                write_json(out, &v)?;
            } else {
                let what = epoch.map_or_else(|| which.to_string(), |e| format!("epoch {e}"));
                writeln!(
                    out,
                    "checkpoint {what} at {}: DAMAGED: {reason}",
                    s.loc.shown
                )?;
            }
            return Ok(Health::Damaged);
        }
    };
    let info = s.info_of(&cp);
    let state = info.map_or(CheckpointState::Complete, |i| i.state);
    let detail = info.and_then(|i| i.detail.clone());
    let health =
        Health::from_damage(state != CheckpointState::Complete || !cp.skipped().is_empty());
    let skipped: Vec<(u64, String)> = cp
        .skipped()
        .iter()
        .map(|k| (k.epoch.0, s.loc.scrub(&k.reason)))
        .collect();
    let a = cp.as_async();
    if json {
        let v = json!({
            "location": s.loc.shown,
            "epoch": cp.epoch().0,
            "state": state_name(state),
            "detail": detail,
            "generation": a.generation(),
            "writer_id": a.writer_id(),
            "created": utc(a.created()),
            "created_unix_ms": unix_ms(a.created()),
            "format_version": a.format_version(),
            "skipped_newer": skipped.iter().map(|(e, r)| json!({"epoch": e, "reason": r})).collect::<Vec<_>>(),
            "manifest": a.manifest_json(),
        });
        write_json(out, &v)?;
        return Ok(health);
    }
    writeln!(out, "checkpoint epoch {} at {}", cp.epoch(), s.loc.shown)?;
    let state_text = match &detail {
        Some(d) if state != CheckpointState::Complete => format!("{} ({d})", state_name(state)),
        _ => state_name(state).to_string(),
    };
    writeln!(out, "  state       {state_text}")?;
    writeln!(out, "  generation  {}", a.generation())?;
    writeln!(out, "  writer      {}", a.writer_id())?;
    writeln!(out, "  created     {}", utc(a.created()))?;
    writeln!(out, "  format      v{}", a.format_version())?;
    let stored: u64 = cp.parts().iter().map(|p| p.stored_size).sum();
    let logical: u64 = cp.parts().iter().map(|p| p.size).sum();
    writeln!(
        out,
        "  parts       {} ({} stored, {} decompressed)",
        cp.parts().len(),
        human_bytes(stored),
        human_bytes(logical)
    )?;
    for (epoch, reason) in &skipped {
        writeln!(out, "  passed over newer epoch {epoch}: {reason}")?;
    }
    writeln!(out)?;
    parts_table(&cp).write(out)?;
    Ok(health)
}

fn parts_table(cp: &Checkpoint) -> Table {
    let mut t = Table::new(&[
        "part",
        ">size",
        ">stored",
        "compression",
        "crc32c",
        "origin",
        "stored in",
    ]);
    for p in cp.parts() {
        t.row(vec![
            p.name.clone(),
            p.size.to_string(),
            p.stored_size.to_string(),
            compression(p),
            format!("{:08x}", p.crc32c),
            origin(cp, p),
            stored_in(p),
        ]);
    }
    t
}

/// The object holding the part's bytes; an inline part says so and names its manifest.
fn stored_in(p: &PartInfo) -> String {
    if p.is_inline() {
        format!("inline in {}", p.path)
    } else {
        p.path.clone()
    }
}

/// `none`, `zstd`, ...
pub(crate) fn compression(p: &PartInfo) -> String {
    format!("{:?}", p.compression).to_lowercase()
}

/// Whether the part was written by this checkpoint or shared from an older one.
fn origin(cp: &Checkpoint, p: &PartInfo) -> String {
    if p.origin_epoch == cp.epoch() {
        "this".to_string()
    } else {
        format!("shared from epoch {}", p.origin_epoch)
    }
}
