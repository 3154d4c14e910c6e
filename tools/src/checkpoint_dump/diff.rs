//! `diff <A> <B>`: how two checkpoints' parts differ.

use std::io::Write;

use serde_json::json;
use tidemark_checkpoint::blocking::{Checkpoint, PartInfo};

use super::session::{Loaded, Session};
use super::{EpochArg, write_json};
use crate::outcome::{Health, ToolError};
use crate::table::Table;

/// How a part name fares from A to B.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    /// Only in B.
    Added,
    /// Only in A.
    Removed,
    /// In both, different bytes.
    Changed,
    /// In both, the same bytes stored as a new object.
    Unchanged,
    /// In both, the very same object (an incremental checkpoint's reference).
    Shared,
}

impl Change {
    const ALL: [Change; 5] = [
        Change::Added,
        Change::Removed,
        Change::Changed,
        Change::Unchanged,
        Change::Shared,
    ];

    fn name(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
            Change::Unchanged => "unchanged",
            Change::Shared => "shared",
        }
    }
}

/// One part name in A, B or both.
struct Row<'a> {
    change: Change,
    name: &'a str,
    a: Option<&'a PartInfo>,
    b: Option<&'a PartInfo>,
}

/// Compares the manifests of A and B (nothing is read but the manifests).
/// Exit code 1 only if a manifest is damaged.
pub(crate) fn run(
    s: &Session,
    a: EpochArg,
    b: EpochArg,
    json: bool,
    out: &mut dyn Write,
) -> Result<Health, ToolError> {
    let (cp_a, cp_b) = match (s.load(a)?, s.load(b)?) {
        (Loaded::Found(x), Loaded::Found(y)) => (x, y),
        (Loaded::Damaged { reason, .. }, _) | (_, Loaded::Damaged { reason, .. }) => {
            if json {
                write_json(out, &json!({"location": s.loc.shown, "damage": reason}))?;
            } else {
                writeln!(out, "cannot compare: DAMAGED: {reason}")?;
            }
            return Ok(Health::Damaged);
        }
    };
    let rows = compare(&cp_a, &cp_b);
    if json {
        let mut v = json!({
            "location": s.loc.shown, "a": cp_a.epoch().0, "b": cp_b.epoch().0,
        });
        for change in Change::ALL {
            v[change.name()] = rows
                .iter()
                .filter(|r| r.change == change)
                .map(|r| json!({"name": r.name, "a": r.a.map(part_json), "b": r.b.map(part_json)}))
                .collect();
        }
        write_json(out, &v)?;
        return Ok(Health::Healthy);
    }
    writeln!(
        out,
        "epoch {} -> epoch {} at {}",
        cp_a.epoch(),
        cp_b.epoch(),
        s.loc.shown
    )?;
    let mut t = Table::new(&["change", "part", ">size A", ">size B", "detail"]);
    for r in &rows {
        t.row(vec![
            r.change.name().to_string(),
            r.name.to_string(),
            r.a.map(|p| p.size.to_string()).unwrap_or_default(),
            r.b.map(|p| p.size.to_string()).unwrap_or_default(),
            detail(r),
        ]);
    }
    t.write(out)?;
    let counts: Vec<String> = Change::ALL
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                rows.iter().filter(|r| r.change == *c).count(),
                c.name()
            )
        })
        .collect();
    writeln!(out, "{}", counts.join(", "))?;
    Ok(Health::Healthy)
}

/// Every part name of A then the new ones of B, with how it changed.
fn compare<'a>(a: &'a Checkpoint, b: &'a Checkpoint) -> Vec<Row<'a>> {
    let find = |cp: &'a Checkpoint, name: &str| cp.parts().iter().find(|p| p.name == name);
    let mut rows: Vec<Row<'a>> = a
        .parts()
        .iter()
        .map(|pa| {
            let pb = find(b, &pa.name);
            let change = match pb {
                None => Change::Removed,
                Some(pb) if !pa.path.is_empty() && pa.path == pb.path => Change::Shared,
                Some(pb) if pa.size == pb.size && pa.crc32c == pb.crc32c => Change::Unchanged,
                Some(_) => Change::Changed,
            };
            Row {
                change,
                name: &pa.name,
                a: Some(pa),
                b: pb,
            }
        })
        .collect();
    rows.extend(
        b.parts()
            .iter()
            .filter(|pb| find(a, &pb.name).is_none())
            .map(|pb| Row {
                change: Change::Added,
                name: &pb.name,
                a: None,
                b: Some(pb),
            }),
    );
    rows
}

fn detail(r: &Row<'_>) -> String {
    match (r.change, r.a, r.b) {
        (Change::Shared, _, Some(b)) => format!("same object, written at epoch {}", b.origin_epoch),
        (Change::Unchanged, _, Some(b)) => {
            format!("same bytes (crc32c {:08x}) stored again", b.crc32c)
        }
        (Change::Changed, Some(a), Some(b)) => {
            format!("crc32c {:08x} -> {:08x}", a.crc32c, b.crc32c)
        }
        _ => String::new(),
    }
}

fn part_json(p: &PartInfo) -> serde_json::Value {
    json!({
        "size": p.size, "crc32c": format!("{:08x}", p.crc32c), "stored_size": p.stored_size,
        "path": p.path, "origin_epoch": p.origin_epoch.0,
    })
}
