//! `checkpoint-dump <LOCATION>`: look into a checkpoint store on any backend of
//! tidemark-checkpoint, safely.
//!
//! Every command but `gc` (without `--dry-run`) only reads, through the
//! library's read API (`list`, `latest`, `checkpoint`, part reads,
//! `plan_cleanup`): nothing is written and no writer generation is claimed, so a
//! live driver is never fenced. `gc` deletes through `retain_last` and
//! `collect_garbage`, which claim nothing either.

mod cat;
mod cli;
mod diff;
mod gc;
mod list;
mod location;
mod session;
mod show;
mod verify;

use std::io::Write;

pub use cli::{Cli, Command, EpochArg, parse_duration};

use crate::outcome::{Health, ToolError};
use location::Location;
use session::Session;

/// Runs the command `cli` asks for, writing its report to `out`.
pub fn run(cli: &Cli, out: &mut dyn Write) -> Result<Health, ToolError> {
    let location = Location::parse(cli)?;
    let session = Session::open(location, cli.timeout)?;
    let json = cli.json;
    match cli.command.clone().unwrap_or(Command::List) {
        Command::List => list::run(&session, json, out),
        Command::Show { epoch } => show::run(&session, epoch, json, out),
        Command::Verify { epoch } => verify::run(&session, epoch, json, out),
        Command::Cat { epoch, part } => cat::run(&session, epoch, &part, json, out),
        Command::Diff { a, b } => diff::run(&session, a, b, json, out),
        Command::Gc {
            dry_run,
            keep,
            grace,
        } => gc::run(&session, gc::Policy { keep, grace }, dry_run, json, out),
    }
}

/// Writes `v` as pretty JSON and a newline.
fn write_json(out: &mut dyn Write, v: &serde_json::Value) -> Result<(), ToolError> {
    let text =
        serde_json::to_string_pretty(v).map_err(|e| ToolError::Output(std::io::Error::other(e)))?;
    writeln!(out, "{text}")?;
    Ok(())
}
