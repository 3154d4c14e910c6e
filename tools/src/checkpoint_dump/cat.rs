//! `cat <EPOCH> <PART>`: one part's bytes, decompressed, to stdout.

use std::io::{Read, Write};

use serde_json::json;
use tidemark_checkpoint::blocking::Checkpoint;

use super::session::{Loaded, Session, damage};
use super::verify::read_failure;
use super::{EpochArg, write_json};
use crate::outcome::{Health, ToolError};
use crate::wal_inspect::dump::hex;

/// Read size while copying.
const CHUNK: usize = 1 << 20;

/// Streams the part to `out` with bounded memory. Its sizes and CRC32C are
/// checked when the end is reached (like `zcat`): a damaged part gets one
/// damage line on stderr and exit code 1 after the bytes already written. With
/// `--json` the whole part is read and verified first, then printed as one JSON
/// object (text when it is UTF-8, and hex).
pub(crate) fn run(
    s: &Session,
    which: EpochArg,
    part: &str,
    json: bool,
    out: &mut dyn Write,
) -> Result<Health, ToolError> {
    let cp = match s.load(which)? {
        Loaded::Found(cp) => cp,
        Loaded::Damaged { reason, .. } => return Ok(damaged(&reason)),
    };
    if cp.as_async().part(part).is_none() {
        return Err(ToolError::Usage(format!(
            "{}: checkpoint epoch {} has no part named {part:?} (its parts: {})",
            s.loc.shown,
            cp.epoch(),
            cp.part_names().join(", ")
        )));
    }
    if json {
        return whole(s, &cp, part, out);
    }
    let mut reader = match cp.part_reader(part) {
        Ok(r) => r,
        Err(e) => return failed(s, &e, part),
    };
    let mut buf = vec![0u8; CHUNK];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(Health::Healthy),
            Ok(n) => out.write_all(&buf[..n])?,
            Err(e) => {
                return match read_failure(s, part, &e)? {
                    Some(problem) => {
                        out.flush()?;
                        Ok(damaged(&format!(
                            "{problem} (the bytes written before this are not verified)"
                        )))
                    }
                    None => Ok(Health::Healthy),
                };
            }
        }
    }
}

fn whole(
    s: &Session,
    cp: &Checkpoint,
    part: &str,
    out: &mut dyn Write,
) -> Result<Health, ToolError> {
    let data = match cp.read_part(part) {
        Ok(d) => d,
        Err(e) => return failed(s, &e, part),
    };
    let v = json!({
        "location": s.loc.shown,
        "epoch": cp.epoch().0,
        "part": part,
        "size": data.len(),
        "verified": true,
        "text": std::str::from_utf8(&data).ok(),
        "hex": hex(&data),
    });
    write_json(out, &v)?;
    Ok(Health::Healthy)
}

/// A failed open or read: damage (exit 1) or the store's failure (exit 2).
fn failed(
    s: &Session,
    e: &tidemark_checkpoint::blocking::CheckpointError,
    part: &str,
) -> Result<Health, ToolError> {
    match damage(e) {
        Some(d) => Ok(damaged(&s.loc.scrub(&format!("part {part:?}: {d}")))),
        None => Err(s.loc.error(e)),
    }
}

fn damaged(problem: &str) -> Health {
    eprintln!("checkpoint-dump: damage: {problem}");
    Health::Damaged
}
