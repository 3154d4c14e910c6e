//! Command-line arguments of `checkpoint-dump`.

use std::time::Duration;

use clap::{Parser, Subcommand};

/// Inspect, verify, compare and clean up a tidemark checkpoint store.
///
/// LOCATION is a directory, `file:///dir`, `s3://bucket/prefix` (settings from
/// the usual AWS_* variables, the URL's query, `--endpoint`, `--region` and
/// `--option`), `hdfs://host:port/path` or `memory://name` (in-process only).
///
/// Exit codes: 0 healthy, 1 damage found, 2 usage or I/O error. Nothing is
/// modified except by `gc` without `--dry-run`, and no command claims a writer
/// generation, so a live driver is never fenced.
#[derive(Debug, Parser)]
#[command(name = "checkpoint-dump", version)]
pub struct Cli {
    /// The checkpoint location (directory or URL).
    pub location: String,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// S3 endpoint, e.g. http://127.0.0.1:8333 (plain http is then allowed).
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint: Option<String>,
    /// S3 region.
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// A backend setting (an S3 config key, or a Hadoop key for HDFS); repeatable.
    #[arg(long = "option", short = 'o', global = true, value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// Deadline for each remote call (one request, one listed page, one chunk).
    #[arg(long, global = true, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// What to do (default: list).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Every checkpoint and uncommitted writer attempt: epoch, generation,
    /// writer, time, size and state (complete, incomplete, corrupt, fenced).
    List,
    /// One checkpoint's manifest, decoded (`--json`: the manifest's structure).
    Show {
        /// An epoch, or `latest` (what a restarted driver resumes from).
        epoch: EpochArg,
    },
    /// Read every part of every committed checkpoint (or of one) and check its
    /// sizes and CRC32C, stored and decompressed. Exit 1 on any damage.
    Verify {
        /// Only this checkpoint (an epoch or `latest`).
        epoch: Option<EpochArg>,
    },
    /// Write one part's bytes, decompressed, to stdout. They are checked at the
    /// end: a damaged part gets a damage line on stderr and exit code 1.
    Cat {
        /// An epoch, or `latest`.
        epoch: EpochArg,
        /// The part's name.
        part: String,
    },
    /// Parts added, removed, changed, unchanged and shared by reference between
    /// two checkpoints.
    Diff {
        /// The older checkpoint (an epoch or `latest`).
        a: EpochArg,
        /// The newer checkpoint (an epoch or `latest`).
        b: EpochArg,
    },
    /// Retention (keep the newest N complete checkpoints) then orphan collection
    /// (parts no manifest references, older than the grace period). Deletes
    /// unless `--dry-run`.
    Gc {
        /// Only show what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// Complete checkpoints to keep.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
        keep: u64,
        /// Orphaned parts younger than this are spared (a writer may still commit them).
        #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
        grace: Duration,
    },
}

/// A checkpoint named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpochArg {
    /// The newest checkpoint that verifies, as `latest()` finds it.
    Latest,
    /// This epoch.
    Epoch(u64),
}

impl std::str::FromStr for EpochArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("latest") {
            return Ok(EpochArg::Latest);
        }
        s.parse()
            .map(EpochArg::Epoch)
            .map_err(|_| format!("{s:?} is neither an epoch number nor `latest`"))
    }
}

impl std::fmt::Display for EpochArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EpochArg::Latest => f.write_str("latest"),
            EpochArg::Epoch(e) => write!(f, "{e}"),
        }
    }
}

/// `90`, `90s`, `15m`, `1h`, `2d` (plain numbers are seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (like 30s, 15m, 1h, 2d)"))?;
    let unit_secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?} in {s:?} (use s, m, h or d)")),
    };
    n.checked_mul(unit_secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_and_epochs() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("h").is_err());
        assert_eq!("latest".parse(), Ok(EpochArg::Latest));
        assert_eq!("42".parse(), Ok(EpochArg::Epoch(42)));
        assert!("-1".parse::<EpochArg>().is_err());
    }
}
