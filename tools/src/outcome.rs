//! How a tool run ends: an exit code scripts can rely on, and one-line errors.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use tidemark_wal::WalError;

/// How a command that ran to the end judged what it looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// Nothing wrong found: exit code 0.
    Healthy,
    /// Damage found (and reported): exit code 1.
    Damaged,
}

impl Health {
    /// The process exit code for this verdict.
    pub fn exit_code(self) -> u8 {
        match self {
            Health::Healthy => 0,
            Health::Damaged => 1,
        }
    }

    /// `Damaged` if `damaged`, else `Healthy`.
    pub fn from_damage(damaged: bool) -> Health {
        if damaged {
            Health::Damaged
        } else {
            Health::Healthy
        }
    }
}

/// Why a command could not run to the end. Displayed as one line.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The arguments or the input make no sense (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// An I/O call failed (exit code 2).
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// To which file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The log refused to open or read: damage (exit code 1) or I/O (exit code 2).
    #[error(transparent)]
    Wal(#[from] WalError),
    /// A file of the input cannot be read, so it cannot be judged (exit code 2).
    #[error("{0}")]
    Unreadable(String),
    /// The checkpoint store failed (exit code 2).
    #[error(transparent)]
    Checkpoint(#[from] tidemark_checkpoint::CheckpointError),
    /// The block store failed (exit code 2).
    #[error(transparent)]
    BlockStore(#[from] tidemark_blockstore::BlockError),
    /// stdout went away (a closed pipe): the run ends quietly.
    #[error("output closed")]
    OutputClosed,
    /// Writing the report failed.
    #[error("cannot write output: {0}")]
    Output(io::Error),
}

impl ToolError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            ToolError::Wal(e) if is_damage(e) => 1,
            ToolError::OutputClosed => 0,
            _ => 2,
        }
    }

    /// Wraps an I/O error with what was done and where.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> ToolError {
        ToolError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// True for log errors that mean the data is damaged or foreign, not that the
/// tool could not do its job.
pub fn is_damage(e: &WalError) -> bool {
    matches!(
        e,
        WalError::Corruption { .. }
            | WalError::TornTail { .. }
            | WalError::NotAWal { .. }
            | WalError::UnsupportedVersion { .. }
    )
}

impl From<io::Error> for ToolError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            ToolError::OutputClosed
        } else {
            ToolError::Output(e)
        }
    }
}

/// Ends a tool's run: flushes `out`, prints an error as one line
/// `TOOL: error: ...` on stderr, and gives the exit code of the verdict or error.
pub fn finish(tool: &str, result: Result<Health, ToolError>, out: &mut dyn Write) -> ExitCode {
    let result = result.and_then(|health| {
        out.flush()?;
        Ok(health)
    });
    match result {
        Ok(health) => ExitCode::from(health.exit_code()),
        Err(e) => {
            let _ = out.flush();
            let code = e.exit_code();
            if code != 0 {
                eprintln!("{tool}: error: {e}");
            }
            ExitCode::from(code)
        }
    }
}
