//! `<run dir>/pids.json`: the live processes of a supervised run, their pids
//! and roles, rewritten whole (temporary file, then rename) after every change,
//! so a reader (an operator, `tidemark chaos`) always sees one complete version.
//!
//! ```json
//! {"supervisor": 4100, "updated_unix_ms": 1765000000000,
//!  "processes": [{"role": "driver", "pid": 4101, "attempt": 1},
//!                {"role": "executor", "id": 0, "pid": 4102}]}
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::StreamError;

/// One live process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum ProcessEntry {
    /// The driver, in its `attempt`-th start (from 1).
    Driver {
        /// Its pid.
        pid: u32,
        /// Which start this is.
        attempt: u32,
    },
    /// An executor.
    Executor {
        /// Its executor id (a replacement gets a new one).
        id: u32,
        /// Its pid.
        pid: u32,
    },
}

/// The whole file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidsFile {
    /// The supervisor's own pid.
    pub supervisor: u32,
    /// When this version was written.
    pub updated_unix_ms: u64,
    /// Every live process it started.
    pub processes: Vec<ProcessEntry>,
}

impl PidsFile {
    /// The pid of the live driver, if any.
    pub fn driver(&self) -> Option<u32> {
        self.processes.iter().find_map(|p| match p {
            ProcessEntry::Driver { pid, .. } => Some(*pid),
            ProcessEntry::Executor { .. } => None,
        })
    }

    /// `(executor id, pid)` of every live executor, by id.
    pub fn executors(&self) -> Vec<(u32, u32)> {
        let mut out: Vec<(u32, u32)> = self
            .processes
            .iter()
            .filter_map(|p| match p {
                ProcessEntry::Executor { id, pid } => Some((*id, *pid)),
                ProcessEntry::Driver { .. } => None,
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// Reads `<run_dir>/pids.json`.
    pub fn read(run_dir: &Path) -> Result<PidsFile, StreamError> {
        let path = run_dir.join("pids.json");
        let text =
            std::fs::read(&path).map_err(StreamError::io(format!("read {}", path.display())))?;
        serde_json::from_slice(&text).map_err(|e| StreamError::BadInput {
            source_name: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// Replaces `<run_dir>/pids.json` with this version (write, then rename).
    pub(crate) fn write(&self, run_dir: &Path) -> Result<(), StreamError> {
        let path = run_dir.join("pids.json");
        let tmp = run_dir.join("pids.json.tmp");
        let text = serde_json::to_vec_pretty(self).map_err(|e| StreamError::BadInput {
            source_name: "pids.json".into(),
            reason: e.to_string(),
        })?;
        std::fs::write(&tmp, text).map_err(StreamError::io(format!("write {}", tmp.display())))?;
        std::fs::rename(&tmp, &path)
            .map_err(StreamError::io(format!("rename to {}", path.display())))
    }
}
