//! tidemark-tools: operator tools for tidemark's storage.
//!
//! - `wal-inspect <DIR>` ([`wal_inspect`]): summary, verify, dump, tail, stats
//!   and copy-first repair of a write-ahead-log directory.
//! - `checkpoint-dump <LOCATION>` ([`checkpoint_dump`]): list, show, verify, cat,
//!   diff and clean up (`gc`) the checkpoints of a store on any backend.
//! - `tidemark bench` ([`bench`]): the storage benchmark, against the machine's
//!   own measured limits.
//!
//! Every tool follows the same contract ([`outcome`]): human tables on stdout by
//! default, `--json` for scripts, progress on stderr only when it is a terminal,
//! and exit codes 0 (healthy), 1 (damage found), 2 (usage or I/O error), with
//! one line naming any problem and where it is. Nothing is modified unless a
//! command says it modifies.

pub mod bench;
pub mod checkpoint_dump;
pub mod outcome;
pub mod progress;
pub mod table;
pub mod time_fmt;
pub mod wal_inspect;
