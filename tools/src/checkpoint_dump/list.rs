//! `list`: every checkpoint and uncommitted writer attempt, and what a restart
//! would resume from.

use std::io::Write;

use serde_json::json;
use tidemark_checkpoint::blocking::{CheckpointInfo, CheckpointState};

use super::session::{Loaded, Session, short_id, state_name, unix_ms, utc};
use super::{EpochArg, write_json};
use crate::outcome::{Health, ToolError};
use crate::table::{Table, human_bytes};

/// Lists the store. Corrupt checkpoints are damage (exit 1); incomplete and
/// fenced attempts are what crashed or fenced writers leave for `gc`.
pub(crate) fn run(s: &Session, json: bool, out: &mut dyn Write) -> Result<Health, ToolError> {
    let resume = match s.committed().next() {
        None => None,
        Some(_) => Some(s.load(EpochArg::Latest)?),
    };
    let (latest, skipped, no_resume) = match &resume {
        Some(Loaded::Found(cp)) => (Some(cp.epoch().0), cp.skipped().to_vec(), None),
        Some(Loaded::Damaged { reason, .. }) => (None, Vec::new(), Some(reason.clone())),
        None => (None, Vec::new(), None),
    };
    let corrupt = count(s, CheckpointState::Corrupt);
    let health = Health::from_damage(corrupt > 0);
    if json {
        let v = json!({
            "location": s.loc.shown,
            "healthy": health == Health::Healthy,
            "checkpoints": s.infos.iter().map(info_json).collect::<Vec<_>>(),
            "latest": latest,
            "skipped_by_latest": skipped.iter().map(|k| json!({"epoch": k.epoch.0, "reason": s.loc.scrub(&k.reason)})).collect::<Vec<_>>(),
        });
        write_json(out, &v)?;
        return Ok(health);
    }
    writeln!(out, "checkpoints at {}", s.loc.shown)?;
    let mut t = Table::new(&[
        ">epoch",
        "state",
        ">gen",
        "writer",
        "created (UTC)",
        ">parts",
        ">size",
        "detail",
    ]);
    for i in &s.infos {
        t.row(vec![
            i.epoch.to_string(),
            state_name(i.state).to_string(),
            i.generation.map(|g| g.to_string()).unwrap_or_default(),
            i.writer_id
                .as_deref()
                .map(short_id)
                .unwrap_or("")
                .to_string(),
            i.created.map(utc).unwrap_or_default(),
            i.parts.to_string(),
            human_bytes(i.bytes),
            s.loc.scrub(i.detail.as_deref().unwrap_or("")),
        ]);
    }
    t.write(out)?;
    writeln!(
        out,
        "{} entries: {} complete, {corrupt} corrupt, {} incomplete, {} fenced",
        s.infos.len(),
        count(s, CheckpointState::Complete),
        count(s, CheckpointState::Incomplete),
        count(s, CheckpointState::Fenced)
    )?;
    for k in &skipped {
        writeln!(
            out,
            "latest() passes over epoch {}: {}",
            k.epoch,
            s.loc.scrub(&k.reason)
        )?;
    }
    match (latest, no_resume) {
        (Some(e), _) => writeln!(out, "a restarted driver resumes from epoch {e}")?,
        (None, Some(reason)) => writeln!(out, "DAMAGE: {reason}")?,
        (None, None) => writeln!(
            out,
            "no committed checkpoint yet: a restarted driver starts afresh"
        )?,
    }
    Ok(health)
}

fn count(s: &Session, state: CheckpointState) -> usize {
    s.infos.iter().filter(|i| i.state == state).count()
}

fn info_json(i: &CheckpointInfo) -> serde_json::Value {
    json!({
        "epoch": i.epoch.0,
        "state": state_name(i.state),
        "generation": i.generation,
        "writer_id": i.writer_id,
        "created": i.created.map(utc),
        "created_unix_ms": i.created.map(unix_ms),
        "parts": i.parts,
        "bytes": i.bytes,
        "detail": i.detail,
    })
}
