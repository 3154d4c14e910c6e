//! `wal-inspect <DIR>`: look into a write-ahead-log directory, safely.
//!
//! Every command but `repair` (without `--dry-run`) is read-only: files are read
//! with plain reads or through [`tidemark_wal::Wal::open_read_only`], no lock is
//! taken, and nothing on disk changes, so a live log can be inspected while its
//! writer runs.

mod cli;
pub(crate) mod dump;
mod repair;
mod scan;
mod stats;
mod summary;
mod tail;
mod verify;

use std::io::Write;

pub use cli::{Cli, Command, DumpFormat, ModeArg};

use crate::outcome::{Health, ToolError};

/// Runs the command `cli` asks for, writing its report to `out`.
pub fn run(cli: &Cli, out: &mut dyn Write) -> Result<Health, ToolError> {
    let dir = cli.dir.as_path();
    check_dir(dir)?;
    let json = cli.json;
    match cli.command.clone().unwrap_or(Command::Summary) {
        Command::Summary => summary::run(dir, json, out),
        Command::Verify => verify::run(dir, json, out),
        Command::Dump {
            from,
            to,
            limit,
            format,
        } => dump::run(dir, dump::Range { from, to, limit }, format, json, out),
        Command::Tail {
            from,
            limit,
            poll_ms,
        } => tail::run(
            dir,
            tail::Follow {
                from,
                limit,
                poll_ms,
            },
            json,
            out,
        ),
        Command::Stats => stats::run(dir, json, out),
        Command::Repair { mode, dry_run } => repair::run(dir, mode.into(), dry_run, json, out),
    }
}

/// The argument must be an existing directory.
fn check_dir(dir: &std::path::Path) -> Result<(), ToolError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(ToolError::Usage(format!(
            "{} is a file, not a log directory (pass the directory that holds seg-*.wal files)",
            dir.display()
        ))),
        Err(e) => Err(ToolError::io("open log directory", dir, e)),
    }
}
