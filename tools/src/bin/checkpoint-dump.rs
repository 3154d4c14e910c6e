//! `checkpoint-dump <LOCATION> [COMMAND]`: see `checkpoint-dump --help`.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use tidemark_tools::checkpoint_dump::{Cli, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = run(&cli, &mut out).and_then(|h| {
        out.flush()?;
        Ok(h)
    });
    match result {
        Ok(health) => ExitCode::from(health.exit_code()),
        Err(e) => {
            let _ = out.flush();
            let code = e.exit_code();
            if code != 0 {
                eprintln!("checkpoint-dump: error: {e}");
            }
            ExitCode::from(code)
        }
    }
}
