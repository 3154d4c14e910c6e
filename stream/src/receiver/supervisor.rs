//! The receiver supervisor (Spark's `ReceiverSupervisor`): runs one receiver
//! with its block generator, stores its blocks and reports them, restarts it
//! when asked or when storing fails, and stops it gracefully.
//!
//! Guarantees:
//! - A block is reported only after the handler stored it; `store_block`
//!   returns only after both (see [`crate::receiver::ReceiverContext::store_block`]).
//! - Block ids are unique within the stream across restarts and, given
//!   distinct epochs, across launches ([`crate::receiver::ids`]).
//! - A failed store or report is reported as an error event and restarts the
//!   receiver; it never panics. The records of a failed generator block are
//!   lost (the unreliable path); a failed `store_block` tells its caller.
//! - `stop()` is graceful: every record `store()` accepted is pushed (stored
//!   and reported, or reported as failed) before `on_stop` and before `stop()`
//!   returns. A pending restart delay is cut short by `stop()`.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

use crate::error::StreamError;
use crate::handler::ReceivedBlockHandler;
use crate::receiver::clock::{Clock, SystemClock};
use crate::receiver::context::{Receiver, SupervisorShared};
use crate::receiver::control::Control;
use crate::receiver::generator::{BlockGenerator, BlockGeneratorConfig, GeneratorStats};
use crate::receiver::ids::BlockIds;
use crate::receiver::lifecycle::Lifecycle;
use crate::receiver::reporter::BlockReporter;
use crate::receiver::sink::BlockSink;

/// Spark's default wait between stopping and starting a receiver again
/// (`spark.streaming.receiverRestartDelay`).
pub const DEFAULT_RESTART_DELAY: Duration = Duration::from_secs(2);

/// How a supervisor runs its receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupervisorConfig {
    /// The input stream the receiver feeds.
    pub stream_id: u32,
    /// This launch's epoch: distinct for every launch of the stream (see
    /// [`crate::receiver::ids`]).
    pub epoch: u32,
    /// The wait before a restart after a failure the supervisor met.
    pub restart_delay: Duration,
    /// Block cutting and pacing.
    pub generator: BlockGeneratorConfig,
}

impl SupervisorConfig {
    /// Spark's defaults for `stream_id` in launch `epoch`.
    pub fn new(stream_id: u32, epoch: u32) -> SupervisorConfig {
        SupervisorConfig {
            stream_id,
            epoch,
            restart_delay: DEFAULT_RESTART_DELAY,
            generator: BlockGeneratorConfig::default(),
        }
    }
}

/// Runs one receiver; see the module docs. Dropping it stops it gracefully.
pub struct ReceiverSupervisor {
    shared: Arc<SupervisorShared>,
    control: Mutex<Option<JoinHandle<()>>>,
}

impl ReceiverSupervisor {
    /// Starts the block generator and the control thread, which calls
    /// `on_start` (asynchronously; the reporter hears `Started`).
    pub fn start(
        receiver: impl Receiver,
        config: SupervisorConfig,
        handler: Arc<dyn ReceivedBlockHandler>,
        reporter: Arc<dyn BlockReporter>,
    ) -> Result<ReceiverSupervisor, StreamError> {
        let clock = Arc::new(SystemClock::new());
        Self::start_with_clock(receiver, config, handler, reporter, clock)
    }

    /// [`ReceiverSupervisor::start`] with the block generator on `clock`.
    pub fn start_with_clock(
        receiver: impl Receiver,
        config: SupervisorConfig,
        handler: Arc<dyn ReceivedBlockHandler>,
        reporter: Arc<dyn BlockReporter>,
        clock: Arc<dyn Clock>,
    ) -> Result<ReceiverSupervisor, StreamError> {
        let ids = BlockIds::new(config.stream_id, config.epoch)?;
        let (lifecycle, inbox) = Lifecycle::new(config.stream_id, reporter, config.restart_delay);
        let sink = Arc::new(BlockSink::new(ids, handler, lifecycle.clone()));
        let generator = BlockGenerator::start(config.generator, clock, {
            let sink = sink.clone();
            move |records| sink.push(records)
        })?;
        let shared = Arc::new(SupervisorShared {
            lifecycle,
            sink,
            generator,
        });
        let control = Control::new(Box::new(receiver), shared.clone(), inbox);
        let name = format!("tidemark-receiver-{}", config.stream_id);
        let handle = std::thread::Builder::new()
            .name(name)
            .spawn(move || control.run())
            .map_err(StreamError::io("start a receiver's control thread"))?;
        Ok(ReceiverSupervisor {
            shared,
            control: Mutex::new(Some(handle)),
        })
    }

    /// The input stream.
    pub fn stream_id(&self) -> u32 {
        self.shared.lifecycle.stream_id()
    }

    /// Restarts the live start of the receiver after `delay` (no-op while a
    /// restart is pending or after stop).
    pub fn restart(&self, reason: &str, delay: Duration) {
        self.shared
            .lifecycle
            .restart_live(reason.to_string(), delay);
    }

    /// The block generator's counters.
    pub fn generator_stats(&self) -> GeneratorStats {
        self.shared.generator.stats()
    }

    /// Stops gracefully (see the module docs) and returns once stopped.
    /// Idempotent. Must not be called from the receiver's callbacks or from
    /// threads `on_stop` waits for (it waits for `on_stop`).
    pub fn stop(&self) {
        let mut control = self.control.lock();
        let Some(handle) = control.take() else {
            return;
        };
        self.shared.lifecycle.stop();
        if handle.join().is_err() {
            tracing::error!(
                stream = self.stream_id(),
                "the receiver control thread panicked"
            );
            self.shared.generator.stop();
        }
    }
}

impl Drop for ReceiverSupervisor {
    fn drop(&mut self) {
        self.stop();
    }
}
