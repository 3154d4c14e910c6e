//! tidemark-stream: Spark Streaming's micro-batch layer on tidemark's storage crates.
//!
//! Receivers cut their input into blocks ([`receiver`]); block handlers store
//! each block in the block store and, with the WAL on, in a receiver WAL
//! ([`handler`]); the driver's tracker logs every block it hears of, every batch
//! it allocates and every batch it cleans to a metadata WAL before it changes
//! its state ([`tracker`]), so a restarted driver replays to where it was.
//!
//! Start reading at [`receiver`], then [`tracker`].

pub mod block;
pub mod checkpoint;
pub mod conf;
pub mod context;
pub mod driver;
mod error;
pub mod executor;
pub mod graph;
pub mod handler;
pub mod kafka;
pub mod receiver;
pub mod records;
pub mod recoverable_count;
pub mod rpc;
pub mod scheduler;
pub mod supervisor;
pub mod task_runner;
pub mod tracker;
pub mod wire;

pub use block::{BatchTime, ReceivedBlockInfo, StreamBlockId, WalHandle};
pub use conf::StreamConf;
pub use context::StreamingContext;
pub use error::StreamError;

/// The README's code blocks, compiled and run as doc tests (here, the crate
/// that depends on every crate they use).
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
