//! What a receiver implements ([`Receiver`]) and what it is given to store
//! data and ask for help ([`ReceiverContext`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::block::ReceivedBlockInfo;
use crate::error::StreamError;
use crate::receiver::generator::BlockGenerator;
use crate::receiver::lifecycle::Lifecycle;
use crate::receiver::sink::BlockSink;

/// A source of records (Spark's `Receiver`), run by a
/// [`crate::receiver::ReceiverSupervisor`].
///
/// The supervisor calls `on_start` and `on_stop` from one thread, alternately:
/// every `on_start` is followed by exactly one `on_stop` (also when `on_start`
/// failed, so `on_stop` must cope with a half-started receiver) before the next
/// `on_start`. The receiver object lives across restarts, so it may keep state
/// (e.g. a retry count) from one start to the next.
pub trait Receiver: Send + 'static {
    /// A short name for logs and reports.
    fn name(&self) -> &str;

    /// Starts receiving: must return quickly, doing the work on threads of its
    /// own that store through `ctx` and end once `ctx.is_stopped()`. An error
    /// is reported and the receiver restarted after the default delay.
    fn on_start(&mut self, ctx: ReceiverContext) -> Result<(), StreamError>;

    /// Stops receiving: by the time it returns, the threads `on_start` began
    /// should be gone (their context already reports itself stopped).
    fn on_stop(&mut self);
}

/// What the supervisor shares with every context.
pub(crate) struct SupervisorShared {
    pub(crate) lifecycle: Arc<Lifecycle>,
    pub(crate) sink: Arc<BlockSink>,
    pub(crate) generator: BlockGenerator,
}

/// A receiver's handle to its supervisor, for one start (generation) of the
/// receiver. Cheap to clone; use it from any thread.
///
/// Once this start ends (a restart or stop began), [`ReceiverContext::is_stopped`]
/// is true for good, `store` and `store_block` refuse with
/// [`StreamError::Stopped`], and `restart` does nothing: the next start gets a
/// new context.
#[derive(Clone)]
pub struct ReceiverContext {
    shared: Arc<SupervisorShared>,
    generation: u64,
}

impl ReceiverContext {
    pub(crate) fn new(shared: Arc<SupervisorShared>, generation: u64) -> ReceiverContext {
        ReceiverContext { shared, generation }
    }

    /// The input stream this receiver feeds.
    pub fn stream_id(&self) -> u32 {
        self.shared.lifecycle.stream_id()
    }

    /// Which start of the receiver this context belongs to (from 1).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether this start has ended: the receiver's threads should finish.
    pub fn is_stopped(&self) -> bool {
        !self.shared.lifecycle.is_live(self.generation)
    }

    /// Buffers one record into the block being filled (unreliable: returns
    /// before the block is stored, so a crash may lose it). May block for a
    /// rate token or while the queue of cut blocks is full (back-pressure).
    /// Records of one thread keep their order in the blocks.
    pub fn store(&self, record: Bytes) -> Result<(), StreamError> {
        self.check_live()?;
        self.shared.generator.store(record)
    }

    /// Stores `records` as one block of their own and reports it; returns only
    /// after the block handler stored it (readable through
    /// [`crate::handler::read_block`]) and the reporter was told, so a reliable
    /// receiver acknowledges its source after this returns. A failure is
    /// reported and restarts the receiver, and is returned: do not acknowledge.
    pub fn store_block(&self, records: &[Bytes]) -> Result<ReceivedBlockInfo, StreamError> {
        self.check_live()?;
        let sink = &self.shared.sink;
        sink.store(records).inspect_err(|e| {
            let what = format!("storing a block of {} records failed", records.len());
            sink.fail(&what, e, Some(self.generation));
        })
    }

    /// Asks for a restart: the supervisor calls `on_stop`, waits `delay`, then
    /// `on_start` with a new context. Returns at once; does nothing if this
    /// start already ended (only the first request of a start counts).
    pub fn restart(&self, reason: &str, delay: Duration) {
        let lifecycle = &self.shared.lifecycle;
        lifecycle.request_restart(self.generation, reason.to_string(), delay);
    }

    /// The supervisor's configured restart delay (Spark's default is 2 s).
    pub fn default_restart_delay(&self) -> Duration {
        self.shared.lifecycle.restart_delay()
    }

    /// Reports an error to the driver without stopping anything.
    pub fn report_error(&self, message: &str) {
        self.shared.lifecycle.report_error(message.to_string());
    }

    fn check_live(&self) -> Result<(), StreamError> {
        if self.is_stopped() {
            return Err(StreamError::Stopped("receiver"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_context_is_clone_send_and_sync() {
        fn shareable<T: Clone + Send + Sync + 'static>() {}
        shareable::<super::ReceiverContext>();
    }
}
