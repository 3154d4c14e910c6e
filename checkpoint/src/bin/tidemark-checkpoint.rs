//! `tidemark-checkpoint`: inspect and maintain a checkpoint directory.
//!
//! `list`, `latest` and `verify` only read: they never claim a writer generation, so running
//! them next to a live driver fences no one. `retain` and `gc` delete.

use std::{process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use tidemark_checkpoint::{CheckpointError, CheckpointStore};

#[derive(Parser)]
#[command(
    version,
    about = "Inspect and maintain a tidemark checkpoint directory"
)]
struct Cli {
    /// Checkpoint location: file:///dir, s3://bucket/prefix?endpoint=..., hdfs://host:port/path
    location: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every checkpoint and uncommitted attempt with its state.
    List,
    /// The checkpoint a restarted driver would resume from.
    Latest,
    /// Read every part of the latest checkpoint and check sizes and CRC32C.
    Verify,
    /// Keep the newest N complete checkpoints, delete older ones.
    Retain {
        /// How many to keep.
        #[arg(long, default_value_t = 10)]
        keep: usize,
    },
    /// Delete orphaned parts older than the grace period.
    Gc {
        /// Grace period in seconds.
        #[arg(long, default_value_t = 3600)]
        grace_secs: u64,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), CheckpointError> {
    let store = CheckpointStore::open(&cli.location).await?;
    match cli.command {
        Command::List => {
            for info in store.list().await? {
                println!(
                    "{:>8}  {:<10}  parts={:<3} bytes={:<12} {}",
                    info.epoch.0,
                    format!("{:?}", info.state),
                    info.parts,
                    info.bytes,
                    info.detail.unwrap_or_default()
                );
            }
        }
        Command::Latest | Command::Verify => {
            let Some(cp) = store.latest().await? else {
                println!("no complete checkpoint");
                return Ok(());
            };
            for s in cp.skipped() {
                println!("skipped epoch {}: {}", s.epoch, s.reason);
            }
            println!("epoch {} (generation {})", cp.epoch(), cp.generation());
            for part in cp.parts() {
                println!(
                    "  {:<24} {:>12} bytes  crc32c {:08x}  {:?}",
                    part.name, part.size, part.crc32c, part.compression
                );
            }
            if matches!(cli.command, Command::Verify) {
                cp.verify().await?;
                println!("verified");
            }
        }
        Command::Retain { keep } => {
            let report = store.retain_last(keep).await?;
            println!(
                "kept {:?}; deleted {} records and {} parts",
                report.kept.iter().map(|e| e.0).collect::<Vec<_>>(),
                report.deleted_records.len(),
                report.deleted_parts
            );
        }
        Command::Gc { grace_secs } => {
            let report = store
                .collect_garbage(Duration::from_secs(grace_secs))
                .await?;
            println!(
                "deleted {} orphaned parts; spared {} younger than the grace period",
                report.deleted.len(),
                report.spared_young
            );
        }
    }
    Ok(())
}
