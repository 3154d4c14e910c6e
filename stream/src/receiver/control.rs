//! The supervisor's control thread: the one thread that starts, stops and
//! restarts the receiver, so those never race each other.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::receiver::context::{Receiver, ReceiverContext, SupervisorShared};
use crate::receiver::lifecycle::Command;
use crate::receiver::reporter::ReceiverEvent;

/// The control thread's state: the receiver is owned here alone.
pub(crate) struct Control {
    receiver: Box<dyn Receiver>,
    shared: Arc<SupervisorShared>,
    inbox: mpsc::Receiver<Command>,
    generation: u64,
    /// `on_start` was called and `on_stop` not yet.
    started: bool,
}

impl Control {
    pub(crate) fn new(
        receiver: Box<dyn Receiver>,
        shared: Arc<SupervisorShared>,
        inbox: mpsc::Receiver<Command>,
    ) -> Control {
        Control {
            receiver,
            shared,
            inbox,
            generation: 0,
            started: false,
        }
    }

    /// Starts the receiver, serves restarts until told to stop, then stops.
    pub(crate) fn run(mut self) {
        self.start_receiver();
        self.serve();
        self.shutdown();
    }

    fn serve(&mut self) {
        loop {
            match self.inbox.recv() {
                Ok(Command::Restart { reason, delay }) => {
                    if !self.restart(reason, delay) {
                        return;
                    }
                }
                Ok(Command::Stop) | Err(_) => return,
            }
        }
    }

    /// `on_stop`, the delay, `on_start`. False when a stop came during the delay.
    fn restart(&mut self, reason: String, delay: Duration) -> bool {
        let lifecycle = &self.shared.lifecycle;
        lifecycle.report(ReceiverEvent::Restarting { reason, delay });
        self.stop_receiver();
        if !self.wait(delay) {
            return false;
        }
        self.start_receiver();
        true
    }

    /// Waits `delay`; false when a stop arrives first.
    fn wait(&self, delay: Duration) -> bool {
        let deadline = Instant::now() + delay;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.inbox.recv_timeout(left) {
                Err(mpsc::RecvTimeoutError::Timeout) => return true,
                Ok(Command::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return false,
                // A request for a generation that already ended lost its race.
                Ok(Command::Restart { .. }) => {}
            }
        }
    }

    /// Begins the next generation and calls `on_start` (unless stopped).
    fn start_receiver(&mut self) {
        self.generation += 1;
        let generation = self.generation;
        let lifecycle = self.shared.lifecycle.clone();
        if !lifecycle.begin(generation) {
            return;
        }
        let name = self.receiver.name().to_string();
        lifecycle.report(ReceiverEvent::Started {
            name: name.clone(),
            generation,
        });
        self.started = true;
        let ctx = ReceiverContext::new(self.shared.clone(), generation);
        let receiver = &mut self.receiver;
        let failure = match catch_unwind(AssertUnwindSafe(|| receiver.on_start(ctx))) {
            Ok(Ok(())) => return,
            Ok(Err(e)) => format!("starting receiver {name} failed: {e}"),
            Err(_) => format!("receiver {name} panicked in on_start"),
        };
        lifecycle.report_error(failure.clone());
        lifecycle.request_restart(generation, failure, lifecycle.restart_delay());
    }

    /// Calls `on_stop` once for the last `on_start`.
    fn stop_receiver(&mut self) {
        if !std::mem::take(&mut self.started) {
            return;
        }
        let receiver = &mut self.receiver;
        if catch_unwind(AssertUnwindSafe(|| receiver.on_stop())).is_err() {
            let name = self.receiver.name().to_string();
            let lifecycle = &self.shared.lifecycle;
            lifecycle.report_error(format!("receiver {name} panicked in on_stop"));
        }
    }

    /// The graceful stop: push every block, then `on_stop`, then report.
    fn shutdown(&mut self) {
        self.shared.lifecycle.stop();
        self.shared.generator.stop();
        self.stop_receiver();
        self.shared.lifecycle.report(ReceiverEvent::Stopped);
    }
}
