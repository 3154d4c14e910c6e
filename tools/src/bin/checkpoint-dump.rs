//! `checkpoint-dump <LOCATION> [COMMAND]`: see `checkpoint-dump --help`.

use std::process::ExitCode;

use clap::Parser;
use tidemark_tools::checkpoint_dump::{Cli, run};
use tidemark_tools::outcome::finish;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = run(&cli, &mut out);
    finish("checkpoint-dump", result, &mut out)
}
