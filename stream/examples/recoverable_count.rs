//! Counts records and writes each batch's ids to `<out>/batch-<time>.txt`,
//! recoverably: run it, kill any of its processes, and it goes on.
//!
//! `cargo run --release -p tidemark-stream --example recoverable_count -- --source tcp://HOST:PORT
//!  --checkpoint URL --out DIR [--wal DIR] [--level NAME] [--batch-ms 1000] [--executors 2] [--supervise N]`
//!
//! See `tidemark_stream::recoverable_count` for the file format and the printed lines.

use std::process::ExitCode;

use tidemark_stream::StreamConf;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let result = StreamConf::from_env_and_args().and_then(tidemark_stream::recoverable_count::run);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("recoverable_count: {e}");
            ExitCode::FAILURE
        }
    }
}
