//! Which start of a receiver is live, and the requests that change it.
//!
//! Every start of a receiver is a *generation* (1, 2, ...). Exactly one
//! generation is live at a time, or none while a restart is pending, or none
//! for good once stopped. Contexts carry their generation, so a context whose
//! start has ended sees itself stopped and cannot restart the next start.
//! Transitions are compare-and-swaps on one atomic: of many restart requests
//! for the same generation, exactly one wins; the supervisor's control thread
//! carries out the winner's request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::receiver::reporter::{BlockReporter, ReceiverEvent};

/// `live` between two starts.
const IDLE: u64 = 0;
/// `live` after stop, for good.
const STOPPED: u64 = u64::MAX;

/// What the control thread is asked to do.
#[derive(Debug)]
pub(crate) enum Command {
    /// Stop the live generation (already ended in `live`), wait, start the next.
    Restart { reason: String, delay: Duration },
    /// Stop everything.
    Stop,
}

/// The live generation, the command channel, and event reporting.
pub(crate) struct Lifecycle {
    stream_id: u32,
    live: AtomicU64,
    commands: mpsc::Sender<Command>,
    reporter: Arc<dyn BlockReporter>,
    restart_delay: Duration,
}

impl Lifecycle {
    /// A lifecycle with no generation live yet, and the end its commands arrive at.
    pub(crate) fn new(
        stream_id: u32,
        reporter: Arc<dyn BlockReporter>,
        restart_delay: Duration,
    ) -> (Arc<Lifecycle>, mpsc::Receiver<Command>) {
        let (commands, inbox) = mpsc::channel();
        let lifecycle = Lifecycle {
            stream_id,
            live: AtomicU64::new(IDLE),
            commands,
            reporter,
            restart_delay,
        };
        (Arc::new(lifecycle), inbox)
    }

    pub(crate) fn stream_id(&self) -> u32 {
        self.stream_id
    }

    pub(crate) fn reporter(&self) -> &dyn BlockReporter {
        self.reporter.as_ref()
    }

    pub(crate) fn restart_delay(&self) -> Duration {
        self.restart_delay
    }

    /// Whether `generation` is the live one.
    pub(crate) fn is_live(&self, generation: u64) -> bool {
        self.live.load(Ordering::Acquire) == generation
    }

    /// Makes `generation` live; false once stopped.
    pub(crate) fn begin(&self, generation: u64) -> bool {
        self.live
            .compare_exchange(IDLE, generation, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Ends `generation` and asks for a restart, if it is still live. Returns
    /// whether this request won (later ones for the same generation are no-ops).
    pub(crate) fn request_restart(&self, generation: u64, reason: String, delay: Duration) -> bool {
        let won = self
            .live
            .compare_exchange(generation, IDLE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if won {
            tracing::warn!(stream = self.stream_id, generation, %reason, ?delay, "receiver restart requested");
            let _ = self.commands.send(Command::Restart { reason, delay });
        }
        won
    }

    /// Restarts whichever generation is live (none: a restart or stop is under way).
    pub(crate) fn restart_live(&self, reason: String, delay: Duration) {
        let live = self.live.load(Ordering::Acquire);
        if live != IDLE && live != STOPPED {
            self.request_restart(live, reason, delay);
        }
    }

    /// Ends every generation for good and tells the control thread.
    pub(crate) fn stop(&self) {
        if self.live.swap(STOPPED, Ordering::AcqRel) != STOPPED {
            let _ = self.commands.send(Command::Stop);
        }
    }

    /// Reports an event to the reporter, and logs it.
    pub(crate) fn report(&self, event: ReceiverEvent) {
        match &event {
            ReceiverEvent::Error { message } => {
                tracing::error!(stream = self.stream_id, %message, "receiver error");
            }
            other => tracing::info!(stream = self.stream_id, event = ?other, "receiver event"),
        }
        self.reporter.receiver_event(self.stream_id, &event);
    }

    /// Reports an error event.
    pub(crate) fn report_error(&self, message: String) {
        self.report(ReceiverEvent::Error { message });
    }
}
