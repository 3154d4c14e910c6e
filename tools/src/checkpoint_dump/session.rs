//! An opened checkpoint store and what every command needs from it: the
//! listing, checkpoints named on the command line, and which errors are damage.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tidemark_checkpoint::blocking::{
    Checkpoint, CheckpointError, CheckpointInfo, CheckpointState, CheckpointStore, Epoch,
};

use super::cli::EpochArg;
use super::location::Location;
use crate::outcome::ToolError;
use crate::time_fmt;

/// A store opened for one command, with its listing.
pub(crate) struct Session {
    pub loc: Location,
    pub store: CheckpointStore,
    /// Every checkpoint and uncommitted attempt, by epoch (`CheckpointStore::list`).
    pub infos: Vec<CheckpointInfo>,
}

/// A checkpoint named on the command line.
pub(crate) enum Loaded {
    /// Its manifest verified.
    Found(Checkpoint),
    /// Its manifest is damaged (or, for `latest`, every committed checkpoint is).
    Damaged {
        /// The epoch, when one was named.
        epoch: Option<u64>,
        /// What is wrong.
        reason: String,
    },
}

impl Session {
    /// Opens the store and lists it; a location holding no checkpoint at all is
    /// a usage error naming what is there instead.
    pub fn open(loc: Location, timeout: Duration) -> Result<Session, ToolError> {
        let store = loc.open(timeout)?;
        let infos = store.list().map_err(|e| loc.error(&e))?;
        if infos.is_empty() {
            return Err(ToolError::Usage(format!(
                "{}: no checkpoints: {}",
                loc.shown,
                what_is_there(&loc)
            )));
        }
        Ok(Session { loc, store, infos })
    }

    /// The checkpoint `which` names.
    pub fn load(&self, which: EpochArg) -> Result<Loaded, ToolError> {
        match which {
            EpochArg::Latest => self.load_latest(),
            EpochArg::Epoch(e) => match self.store.checkpoint(Epoch(e)) {
                Ok(Some(cp)) => Ok(Loaded::Found(cp)),
                Ok(None) => Err(ToolError::Usage(self.not_committed(e))),
                Err(err) => match damage(&err) {
                    Some(reason) => Ok(Loaded::Damaged {
                        epoch: Some(e),
                        reason: self.loc.scrub(&reason),
                    }),
                    None => Err(self.loc.error(&err)),
                },
            },
        }
    }

    fn load_latest(&self) -> Result<Loaded, ToolError> {
        if let Some(cp) = self.store.latest().map_err(|e| self.loc.error(&e))? {
            return Ok(Loaded::Found(cp));
        }
        let corrupt = self.committed().count();
        if corrupt == 0 {
            return Err(ToolError::Usage(format!(
                "{}: no committed checkpoint yet ({} uncommitted writer attempt(s))",
                self.loc.shown,
                self.infos.len()
            )));
        }
        Ok(Loaded::Damaged {
            epoch: None,
            reason: format!(
                "no checkpoint to resume from: all {corrupt} committed checkpoint(s) are damaged"
            ),
        })
    }

    /// Entries for committed checkpoints (complete or corrupt), by epoch.
    pub fn committed(&self) -> impl Iterator<Item = &CheckpointInfo> {
        self.infos.iter().filter(|i| {
            matches!(
                i.state,
                CheckpointState::Complete | CheckpointState::Corrupt
            )
        })
    }

    /// The listing's entry for the committed checkpoint `cp`.
    pub fn info_of(&self, cp: &Checkpoint) -> Option<&CheckpointInfo> {
        let writer = cp.as_async().writer_id();
        self.committed()
            .find(|i| i.epoch == cp.epoch() && i.writer_id.as_deref() == Some(writer))
    }

    /// Why there is no committed checkpoint at `epoch`.
    fn not_committed(&self, epoch: u64) -> String {
        let attempt = self.infos.iter().find(|i| i.epoch.0 == epoch);
        if let Some(i) = attempt {
            return format!(
                "{}: epoch {epoch} has no committed checkpoint: {} attempt by writer {}: {}",
                self.loc.shown,
                state_name(i.state),
                i.writer_id.as_deref().unwrap_or("?"),
                i.detail.as_deref().unwrap_or("")
            );
        }
        let epochs: Vec<String> = self.committed().map(|i| i.epoch.to_string()).collect();
        format!(
            "{}: no checkpoint at epoch {epoch} (committed epochs: {})",
            self.loc.shown,
            if epochs.is_empty() {
                "none".to_string()
            } else {
                epochs.join(", ")
            }
        )
    }
}

/// What an empty listing means at this location.
fn what_is_there(loc: &Location) -> String {
    let Some(dir) = loc.local_dir() else {
        return "nothing under this location is a tidemark checkpoint or writer attempt \
                (empty, only writer-generation claims, or not a checkpoint location)"
            .into();
    };
    let names = entry_names(&dir);
    if names.is_empty() {
        return "the directory is empty".into();
    }
    if names.iter().any(|n| n == "manifests") && !entry_names(&dir.join("manifests")).is_empty() {
        return "only writer-generation claims, no checkpoint committed or attempted yet".into();
    }
    let shown: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
    format!(
        "not a checkpoint directory ({} entr{} such as {}, none a manifest or part)",
        names.len(),
        if names.len() == 1 { "y" } else { "ies" },
        shown.join(", ")
    )
}

fn entry_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The damage an error reports, if it is damage (a checksum or size mismatch, an
/// undecodable manifest, a missing object) rather than a failure to look.
pub(crate) fn damage(e: &CheckpointError) -> Option<String> {
    match e {
        CheckpointError::Corrupt { .. } => Some(e.to_string()),
        CheckpointError::Store {
            source: object_store::Error::NotFound { .. },
            path,
            ..
        } => Some(format!("object {path} is missing")),
        _ => None,
    }
}

/// The lower-case name of a state.
pub(crate) fn state_name(state: CheckpointState) -> &'static str {
    match state {
        CheckpointState::Complete => "complete",
        CheckpointState::Incomplete => "incomplete",
        CheckpointState::Corrupt => "corrupt",
        CheckpointState::Fenced => "fenced",
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A time as UTC text.
pub(crate) fn utc(t: SystemTime) -> String {
    time_fmt::utc(unix_ms(t).saturating_mul(1_000_000))
}

/// The first 12 characters of a writer id (128 random bits in hex).
pub(crate) fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}
