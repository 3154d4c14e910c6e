//! Command-line arguments of `wal-inspect`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use tidemark_wal::RecoveryMode;

/// Inspect, verify, dump, follow and repair a tidemark write-ahead log.
///
/// Exit codes: 0 healthy, 1 damage found, 2 usage or I/O error. Nothing is
/// modified except by `repair` without `--dry-run`.
#[derive(Debug, Parser)]
#[command(name = "wal-inspect", version)]
pub struct Cli {
    /// The log directory (holding seg-*.wal files).
    pub dir: PathBuf,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do (default: summary).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Segments with LSN ranges, sizes, fill, record counts, times, format
    /// version, and what recovery would do (the default).
    Summary,
    /// Read and check every record; report each damaged place with segment,
    /// byte offset and LSN. Exit 1 if any is found.
    Verify,
    /// Print records, decompressed.
    Dump {
        /// First LSN to print.
        #[arg(long)]
        from: Option<u64>,
        /// Last LSN to print (inclusive).
        #[arg(long)]
        to: Option<u64>,
        /// Print at most this many records.
        #[arg(long)]
        limit: Option<u64>,
        /// How to print each record (`--json` implies json).
        #[arg(long, value_enum, default_value_t = DumpFormat::Text)]
        format: DumpFormat,
    },
    /// Follow a live log as another process appends, without taking its lock.
    Tail {
        /// Start at this LSN (default: after the last record now in the log).
        #[arg(long)]
        from: Option<u64>,
        /// Stop after printing this many records.
        #[arg(long)]
        limit: Option<u64>,
        /// How often to look for new records, in milliseconds.
        #[arg(long, default_value_t = 100)]
        poll_ms: u64,
    },
    /// Record-size histogram, compression ratio, records per segment.
    Stats,
    /// Apply a recovery mode for real, keeping each segment it changes as a
    /// `*.broken` copy beside the repaired one.
    Repair {
        /// The recovery mode to apply.
        #[arg(long, value_enum)]
        mode: ModeArg,
        /// Only report what the repair would do.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Output format of `dump`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DumpFormat {
    /// One line per record: LSN, length, printable payload.
    Text,
    /// LSN and length, then a hex dump of the payload.
    Hex,
    /// One JSON object per line.
    Json,
}

/// Recovery modes, as RocksDB names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Drop a torn tail; refuse corruption of durable records.
    TolerateCorruptedTail,
    /// Refuse any bad record, torn tail included.
    AbsoluteConsistency,
    /// Stop at the first bad record and drop everything after it.
    PointInTime,
    /// Skip bad records, keep every valid one.
    SkipCorrupted,
}

impl From<ModeArg> for RecoveryMode {
    fn from(m: ModeArg) -> RecoveryMode {
        match m {
            ModeArg::TolerateCorruptedTail => RecoveryMode::TolerateCorruptedTail,
            ModeArg::AbsoluteConsistency => RecoveryMode::AbsoluteConsistency,
            ModeArg::PointInTime => RecoveryMode::PointInTime,
            ModeArg::SkipCorrupted => RecoveryMode::SkipCorrupted,
        }
    }
}
