//! `gc [--dry-run]`: retention, then orphan collection.

use std::io::Write;
use std::time::{Duration, SystemTime};

use serde_json::json;
use tidemark_checkpoint::blocking::{CleanupPlan, Epoch, GcReport, OrphanPart, RetentionReport};

use super::session::{Session, short_id, unix_ms, utc};
use super::write_json;
use crate::outcome::{Health, ToolError};
use crate::table::{Table, human_bytes};

/// What to keep.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    /// Complete checkpoints retention keeps.
    pub keep: u64,
    /// Orphaned parts younger than this are spared.
    pub grace: Duration,
}

/// With `dry_run`, shows what `retain_last(keep)` then `collect_garbage(grace)`
/// would delete now (the library's `plan_cleanup`) and deletes nothing;
/// otherwise runs them. Exit code 0 whenever it ran: judging damage is
/// `verify`'s job.
pub(crate) fn run(
    s: &Session,
    policy: Policy,
    dry_run: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<Health, ToolError> {
    let keep = usize::try_from(policy.keep).unwrap_or(usize::MAX);
    if dry_run {
        let plan = s
            .store
            .plan_cleanup(keep, policy.grace)
            .map_err(|e| s.loc.error(&e))?;
        if json {
            write_json(out, &plan_json(s, policy, &plan))?;
        } else {
            write_plan(s, policy, &plan, out)?;
        }
        return Ok(Health::Healthy);
    }
    let retained = s.store.retain_last(keep).map_err(|e| s.loc.error(&e))?;
    let collected = s
        .store
        .collect_garbage(policy.grace)
        .map_err(|e| s.loc.error(&e))?;
    if json {
        write_json(out, &done_json(s, policy, &retained, &collected))?;
    } else {
        write_done(s, policy, &retained, &collected, out)?;
    }
    Ok(Health::Healthy)
}

fn epochs(list: &[Epoch]) -> Vec<u64> {
    list.iter().map(|e| e.0).collect()
}

fn joined(list: &[Epoch]) -> String {
    if list.is_empty() {
        return "none".into();
    }
    let shown: Vec<String> = list.iter().map(Epoch::to_string).collect();
    shown.join(", ")
}

/// Retention's records split into committed checkpoints and other records
/// (writer-generation claims).
fn split_records(s: &Session, records: &[Epoch]) -> (Vec<Epoch>, Vec<Epoch>) {
    records
        .iter()
        .partition(|e| s.committed().any(|i| i.epoch == **e))
}

fn orphan_json(o: &OrphanPart) -> serde_json::Value {
    json!({
        "path": o.path, "epoch": o.epoch.0, "generation": o.generation,
        "writer_id": o.writer_id, "bytes": o.bytes,
        "modified": utc(o.modified), "modified_unix_ms": unix_ms(o.modified),
    })
}

fn plan_json(s: &Session, policy: Policy, plan: &CleanupPlan) -> serde_json::Value {
    let r = &plan.retention;
    let (checkpoints, others) = split_records(s, &r.records);
    let g = &plan.garbage;
    let list = |v: &[OrphanPart]| v.iter().map(orphan_json).collect::<Vec<_>>();
    json!({
        "location": s.loc.shown,
        "dry_run": true,
        "keep": policy.keep,
        "grace_secs": policy.grace.as_secs(),
        "retention": {
            "kept": epochs(&r.kept),
            "delete_records": epochs(&r.records),
            "delete_checkpoints": epochs(&checkpoints),
            "delete_other_records": epochs(&others),
            "delete_parts": r.parts,
            "delete_part_bytes": r.part_bytes,
        },
        "orphans": {
            "delete": list(&g.delete),
            "delete_bytes": g.delete.iter().map(|o| o.bytes).sum::<u64>(),
            "spared_young": list(&g.spared_young),
            "spared_damaged": list(&g.spared_damaged),
        },
    })
}

fn write_plan(
    s: &Session,
    policy: Policy,
    plan: &CleanupPlan,
    out: &mut dyn Write,
) -> Result<(), ToolError> {
    let r = &plan.retention;
    let (checkpoints, others) = split_records(s, &r.records);
    writeln!(
        out,
        "gc --dry-run at {}: keep {} complete checkpoint(s), collect orphans older than {}",
        s.loc.shown,
        policy.keep,
        age(policy.grace)
    )?;
    writeln!(
        out,
        "retention keeps epochs {} (newest first)",
        joined(&r.kept)
    )?;
    writeln!(
        out,
        "retention would delete {} record(s) (checkpoints: {}; claims and other records: {}) and {} part object(s) ({})",
        r.records.len(),
        joined(&checkpoints),
        joined(&others),
        r.parts.len(),
        human_bytes(r.part_bytes)
    )?;
    for p in &r.parts {
        writeln!(out, "  {p}")?;
    }
    let g = &plan.garbage;
    writeln!(
        out,
        "orphan collection would delete {} part object(s) ({}); spares {} younger than {} and {} at the epoch of a damaged manifest",
        g.delete.len(),
        human_bytes(g.delete.iter().map(|o| o.bytes).sum()),
        g.spared_young.len(),
        age(policy.grace),
        g.spared_damaged.len()
    )?;
    let rows = [
        ("delete", &g.delete),
        ("spare (young)", &g.spared_young),
        ("spare (damaged manifest)", &g.spared_damaged),
    ];
    if rows.iter().any(|(_, v)| !v.is_empty()) {
        let mut t = Table::new(&[
            "action", ">epoch", ">gen", "writer", ">size", ">age", "object",
        ]);
        for (action, list) in rows {
            for o in list.iter() {
                t.row(vec![
                    action.to_string(),
                    o.epoch.to_string(),
                    o.generation.to_string(),
                    short_id(&o.writer_id).to_string(),
                    human_bytes(o.bytes),
                    age(SystemTime::now()
                        .duration_since(o.modified)
                        .unwrap_or_default()),
                    o.path.clone(),
                ]);
            }
        }
        t.write(out)?;
    }
    writeln!(out, "nothing was deleted (--dry-run)")?;
    Ok(())
}

fn done_json(s: &Session, policy: Policy, r: &RetentionReport, g: &GcReport) -> serde_json::Value {
    json!({
        "location": s.loc.shown,
        "dry_run": false,
        "keep": policy.keep,
        "grace_secs": policy.grace.as_secs(),
        "retention": {
            "kept": epochs(&r.kept),
            "deleted_records": epochs(&r.deleted_records),
            "deleted_parts": r.deleted_parts,
        },
        "orphans": { "deleted": g.deleted, "spared_young": g.spared_young },
    })
}

fn write_done(
    s: &Session,
    policy: Policy,
    r: &RetentionReport,
    g: &GcReport,
    out: &mut dyn Write,
) -> Result<(), ToolError> {
    writeln!(out, "gc at {}", s.loc.shown)?;
    writeln!(
        out,
        "retention kept epochs {}; deleted {} record(s) ({}) and {} part object(s)",
        joined(&r.kept),
        r.deleted_records.len(),
        joined(&r.deleted_records),
        r.deleted_parts
    )?;
    writeln!(
        out,
        "orphan collection deleted {} part object(s); spared {} younger than {}",
        g.deleted.len(),
        g.spared_young,
        age(policy.grace)
    )?;
    for p in &g.deleted {
        writeln!(out, "  {p}")?;
    }
    Ok(())
}

/// `45s`, `12m`, `3h`, `2d` (rounded down).
fn age(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}
