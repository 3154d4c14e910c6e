//! `tidemark <COMMAND>`: see `tidemark --help`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tidemark_tools::bench::{BenchArgs, run};
use tidemark_tools::outcome::{Health, finish};

/// tidemark operator commands.
#[derive(Debug, Parser)]
#[command(name = "tidemark", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Benchmark the storage backends on this machine against its own limits.
    Bench(BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let Command::Bench(args) = cli.command;
    let result = run(&args, &mut out).map(|()| Health::Healthy);
    finish("tidemark", result, &mut out)
}
