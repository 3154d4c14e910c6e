//! What can stop a power-cut round before it reaches a verdict.

use std::path::PathBuf;

/// Why the harness could not build, boot or read a guest.
#[derive(Debug, thiserror::Error)]
pub enum PowercutError {
    /// A host tool or file the harness needs is missing (`scripts/setup-test-servers.sh` installs them).
    #[error("{what} is missing ({hint})")]
    Missing {
        /// The tool or file.
        what: String,
        /// How to get it.
        hint: &'static str,
    },
    /// A host command failed.
    #[error("{command} failed: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status and error output.
        detail: String,
    },
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The guest did not print what it should have in time.
    #[error("guest: {0}")]
    Guest(String),
}

impl PowercutError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> PowercutError {
        let path = path.into();
        move |source| PowercutError::Io { op, path, source }
    }
}
