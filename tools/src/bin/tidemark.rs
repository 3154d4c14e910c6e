//! `tidemark <COMMAND>`: see `tidemark --help`.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tidemark_tools::bench::{BenchArgs, run};

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
    let result = run(&args, &mut out).and_then(|()| Ok(out.flush()?));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = out.flush();
            let code = e.exit_code();
            if code != 0 {
                eprintln!("tidemark: error: {e}");
            }
            ExitCode::from(code)
        }
    }
}
