//! `wal-inspect <DIR> [COMMAND]`: see `wal-inspect --help`.

use std::process::ExitCode;

use clap::Parser;
use tidemark_tools::outcome::finish;
use tidemark_tools::wal_inspect::{Cli, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = run(&cli, &mut out);
    finish("wal-inspect", result, &mut out)
}
