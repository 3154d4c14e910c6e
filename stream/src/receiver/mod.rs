//! Receivers: sources that push records into the stream layer (Spark's
//! receiver side of Spark Streaming).
//!
//! A user implements [`Receiver`] for a source. A [`ReceiverSupervisor`] runs
//! it: it calls `on_start` with a [`ReceiverContext`], through which the
//! receiver's threads
//! - `store()` records one at a time: the [`BlockGenerator`] cuts them into a
//!   block every block interval (200 ms), with a bounded queue of cut blocks
//!   that pushes back on `store()` and an optional records/s limit. Unreliable:
//!   `store()` returns before the block is stored.
//! - `store_block()` a whole block: returns only once the block handler stored
//!   it and the [`BlockReporter`] was told, so a reliable receiver acknowledges
//!   its source afterwards.
//! - `restart()` after a delay, `report_error()`, and check `is_stopped()`.
//!
//! Each block gets a [`crate::StreamBlockId`] unique within its stream across
//! restarts and launches ([`ids`]), is stored through a
//! [`crate::handler::ReceivedBlockHandler`], then reported. A failed store or
//! report is reported and restarts the receiver. `stop()` is graceful: every
//! record stored before it is pushed first.
//!
//! [`TcpLineReceiver`] is Spark's `socketTextStream`.
//!
//! Modules: [`context`] (the receiver's contract), [`supervisor`] (running it;
//! its control thread in `control.rs`, the live start in `lifecycle.rs`, block
//! storing in `sink.rs`), [`generator`] (cutting blocks; the token bucket in
//! `rate.rs`), [`clock`] (real and driven time), [`ids`], [`reporter`],
//! [`tcp`] (line splitting in `lines.rs`).

pub mod clock;
pub mod context;
mod control;
pub mod generator;
pub mod ids;
mod lifecycle;
mod lines;
mod rate;
pub mod reporter;
mod sink;
pub mod supervisor;
pub mod tcp;

pub use clock::{Clock, ManualClock, Signal, SystemClock};
pub use context::{Receiver, ReceiverContext};
pub use generator::{BlockGenerator, BlockGeneratorConfig, GeneratorStats};
pub use ids::BlockIds;
pub use reporter::{BlockReporter, ReceiverEvent};
pub use supervisor::{DEFAULT_RESTART_DELAY, ReceiverSupervisor, SupervisorConfig};
pub use tcp::{TcpLineConfig, TcpLineCounters, TcpLineReceiver};
