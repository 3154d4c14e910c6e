//! `verify [EPOCH]`: read every part back and check sizes and CRC32C.

use std::collections::HashMap;
use std::io::{Read, Write};

use indicatif::ProgressBar;
use serde_json::json;
use tidemark_checkpoint::blocking::{Checkpoint, PartInfo};

use super::session::{Loaded, Session, damage};
use super::{EpochArg, write_json};
use crate::outcome::{Health, ToolError};
use crate::progress::bytes_bar;
use crate::table::{Table, human_bytes};

/// Read size while verifying.
const CHUNK: usize = 1 << 20;

/// One part's verdict.
#[derive(Clone)]
struct PartCheck {
    name: String,
    path: String,
    size: u64,
    /// The same object was already read for an earlier checkpoint.
    shared: bool,
    problem: Option<String>,
}

/// One checkpoint's verdict.
struct CheckpointCheck {
    epoch: Option<u64>,
    parts: Vec<PartCheck>,
    /// Damage outside the parts (manifest, checkpoints `latest` passed over).
    problems: Vec<String>,
}

impl CheckpointCheck {
    fn damaged(&self) -> bool {
        !self.problems.is_empty() || self.parts.iter().any(|p| p.problem.is_some())
    }

    fn problem_lines(&self) -> Vec<String> {
        let parts = self.parts.iter().filter_map(|p| p.problem.clone());
        self.problems.iter().cloned().chain(parts).collect()
    }
}

/// Verifies one checkpoint, or every committed one. Each part object is read
/// once (parts shared by reference are not read again), through the library's
/// streaming reader, which checks stored and decompressed sizes and CRC32C.
pub(crate) fn run(
    s: &Session,
    which: Option<EpochArg>,
    json: bool,
    out: &mut dyn Write,
) -> Result<Health, ToolError> {
    let loaded: Vec<Loaded> = match which {
        Some(w) => vec![s.load(w)?],
        None => s
            .committed()
            .map(|i| s.load(EpochArg::Epoch(i.epoch.0)))
            .collect::<Result<_, _>>()?,
    };
    let total = unique_bytes(&loaded);
    let bar = bytes_bar(total, "verifying parts");
    let mut seen: HashMap<StoredKey, Option<String>> = HashMap::new();
    let mut checks = Vec::new();
    for l in &loaded {
        checks.push(check(s, l, &mut seen, &bar)?);
    }
    bar.finish_and_clear();
    let latest = match which {
        None if !loaded.is_empty() => match s.load(EpochArg::Latest)? {
            Loaded::Found(cp) => Some(cp.epoch().0),
            Loaded::Damaged { .. } => None,
        },
        _ => None,
    };
    let health = Health::from_damage(checks.iter().any(CheckpointCheck::damaged));
    let attempts = s.infos.len() - s.committed().count();
    if json {
        write_json(out, &report_json(s, &checks, latest, attempts, health))?;
    } else {
        write_human(s, &checks, latest, attempts, out)?;
    }
    Ok(health)
}

/// What identifies stored bytes: the object holding them (a part's own object,
/// or the manifest for parts stored inline), their size and CRC32C.
type StoredKey = (String, u64, u32);

fn stored_key(p: &PartInfo) -> StoredKey {
    (p.path.clone(), p.stored_size, p.stored_crc32c)
}

/// Bytes of the distinct stored parts the checkpoints name (for the progress bar).
fn unique_bytes(loaded: &[Loaded]) -> u64 {
    let mut keys = std::collections::HashSet::new();
    loaded
        .iter()
        .filter_map(|l| match l {
            Loaded::Found(cp) => Some(cp.parts()),
            Loaded::Damaged { .. } => None,
        })
        .flatten()
        .filter(|p| keys.insert(stored_key(p)))
        .map(|p| p.size)
        .sum()
}

fn check(
    s: &Session,
    l: &Loaded,
    seen: &mut HashMap<StoredKey, Option<String>>,
    bar: &ProgressBar,
) -> Result<CheckpointCheck, ToolError> {
    let cp = match l {
        Loaded::Found(cp) => cp,
        Loaded::Damaged { epoch, reason } => {
            return Ok(CheckpointCheck {
                epoch: *epoch,
                parts: Vec::new(),
                problems: vec![reason.clone()],
            });
        }
    };
    let problems = cp
        .skipped()
        .iter()
        .map(|k| {
            format!(
                "newer epoch {} passed over: {}",
                k.epoch,
                s.loc.scrub(&k.reason)
            )
        })
        .collect();
    let mut parts = Vec::new();
    for p in cp.parts() {
        let (shared, problem) = match seen.get(&stored_key(p)) {
            Some(problem) => (true, problem.clone()),
            None => {
                let problem = read_part(s, cp, &p.name, bar)?;
                seen.insert(stored_key(p), problem.clone());
                (false, problem)
            }
        };
        parts.push(PartCheck {
            name: p.name.clone(),
            path: p.path.clone(),
            size: p.size,
            shared,
            problem,
        });
    }
    Ok(CheckpointCheck {
        epoch: Some(cp.epoch().0),
        parts,
        problems,
    })
}

/// Reads part `name` to its end; `Some(problem)` if it is damaged or missing.
fn read_part(
    s: &Session,
    cp: &Checkpoint,
    name: &str,
    bar: &ProgressBar,
) -> Result<Option<String>, ToolError> {
    let mut reader = match cp.part_reader(name) {
        Ok(r) => r,
        Err(e) => {
            return match damage(&e) {
                Some(d) => Ok(Some(s.loc.scrub(&format!("part {name:?}: {d}")))),
                None => Err(s.loc.error(&e)),
            };
        }
    };
    let mut buf = vec![0u8; CHUNK];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(None),
            Ok(n) => bar.inc(n as u64),
            Err(e) => return read_failure(s, name, &e),
        }
    }
}

/// A failed read is damage unless the store itself failed (timeouts, refused
/// connections, permissions): those end the run with exit code 2.
pub(crate) fn read_failure(
    s: &Session,
    name: &str,
    e: &std::io::Error,
) -> Result<Option<String>, ToolError> {
    let store_error = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<object_store::Error>());
    match store_error {
        Some(object_store::Error::NotFound { path, .. }) => Ok(Some(
            s.loc
                .scrub(&format!("part {name:?}: object {path} is missing")),
        )),
        Some(other) => Err(ToolError::Usage(
            s.loc
                .scrub(&format!("{}: reading part {name:?}: {other}", s.loc.shown)),
        )),
        None => Ok(Some(s.loc.scrub(&format!("part {name:?}: {e}")))),
    }
}

fn report_json(
    s: &Session,
    checks: &[CheckpointCheck],
    latest: Option<u64>,
    attempts: usize,
    health: Health,
) -> serde_json::Value {
    let cps: Vec<_> = checks
        .iter()
        .map(|c| {
            json!({
                "epoch": c.epoch,
                "ok": !c.damaged(),
                "problems": c.problem_lines(),
                "parts": c.parts.iter().map(|p| json!({
                    "name": p.name, "path": p.path, "size": p.size,
                    "ok": p.problem.is_none(), "problem": p.problem,
                    "already_read_for_an_earlier_checkpoint": p.shared,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let read: Vec<&PartCheck> = checks
        .iter()
        .flat_map(|c| &c.parts)
        .filter(|p| !p.shared)
        .collect();
    json!({
        "location": s.loc.shown,
        "healthy": health == Health::Healthy,
        "checkpoints": cps,
        "part_objects_read": read.len(),
        "bytes_read": read.iter().map(|p| p.size).sum::<u64>(),
        "uncommitted_attempts_not_verified": attempts,
        "latest": latest,
    })
}

fn write_human(
    s: &Session,
    checks: &[CheckpointCheck],
    latest: Option<u64>,
    attempts: usize,
    out: &mut dyn Write,
) -> Result<(), ToolError> {
    writeln!(
        out,
        "verifying {} checkpoint(s) at {}",
        checks.len(),
        s.loc.shown
    )?;
    let mut t = Table::new(&[">epoch", "verdict", ">parts", ">size", "problem"]);
    for c in checks {
        let lines = c.problem_lines();
        let size: u64 = c.parts.iter().map(|p| p.size).sum();
        t.row(vec![
            c.epoch
                .map(|e| e.to_string())
                .unwrap_or_else(|| "latest".into()),
            if c.damaged() { "DAMAGED" } else { "ok" }.to_string(),
            c.parts.len().to_string(),
            human_bytes(size),
            lines.first().cloned().unwrap_or_default(),
        ]);
        for more in lines.iter().skip(1) {
            t.row(vec![
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                more.clone(),
            ]);
        }
    }
    t.write(out)?;
    let read: Vec<&PartCheck> = checks
        .iter()
        .flat_map(|c| &c.parts)
        .filter(|p| !p.shared)
        .collect();
    writeln!(
        out,
        "read {} part object(s), {} decompressed",
        read.len(),
        human_bytes(read.iter().map(|p| p.size).sum())
    )?;
    if attempts > 0 {
        writeln!(
            out,
            "{attempts} uncommitted writer attempt(s) not verified (see list)"
        )?;
    }
    let damaged = checks.iter().filter(|c| c.damaged()).count();
    let verdict = if damaged == 0 {
        "verdict: healthy".to_string()
    } else {
        format!("verdict: DAMAGE FOUND in {damaged} checkpoint(s)")
    };
    match latest {
        Some(e) => writeln!(out, "{verdict}; a restarted driver resumes from epoch {e}")?,
        None => writeln!(out, "{verdict}")?,
    }
    Ok(())
}
