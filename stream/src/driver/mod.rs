//! The driver: places receivers on executors, logs what they store, and runs
//! one batch per batch interval (Spark's `ReceiverTracker`, `JobGenerator` and
//! `JobScheduler` in one place).
//!
//! Per batch time `t` (a multiple of the batch interval), in order:
//! 1. the tracker allocates every block logged so far to `t` (a no-op if `t`
//!    was allocated before, as after a restart);
//! 2. each output runs as one task on an executor, reading its stream's
//!    blocks of `t` ([`crate::scheduler::run_task_set`]: retries, speculation);
//! 3. once every output succeeded, the [`BatchListener`] hears of it (the
//!    checkpointer records the batch as completed), and only then are batches
//!    older than `remember` batches cleaned: the tracker forgets them and their
//!    blocks are removed from every executor (through the block store's
//!    master, hosted here).
//!
//! A batch whose output failed for good stops the driver with the error:
//! nothing after it runs, so outputs never run ahead of a failed batch.

mod placement;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tidemark_blockstore::BlockManager;

use crate::block::{BatchTime, ReceivedBlockInfo};
use crate::error::StreamError;
use crate::graph::{StreamGraph, TaskInput, TaskSpec};
use crate::rpc::{DriverHandler, ExecutorHub, ReceiverStatus, ToExecutor};
use crate::scheduler::{ExecutorId, SchedulerConf, run_task_set};
use crate::tracker::ReceivedBlockTracker;
pub use placement::Placement;

/// How the driver runs batches.
#[derive(Clone, Debug)]
pub struct DriverConf {
    /// The batch interval (Spark's batchDuration), a whole number of milliseconds.
    pub batch_interval: Duration,
    /// How a batch's tasks are run.
    pub scheduler: SchedulerConf,
    /// Batches kept before their blocks are cleaned.
    pub remember_batches: u32,
}

impl Default for DriverConf {
    fn default() -> Self {
        DriverConf {
            batch_interval: Duration::from_secs(1),
            scheduler: SchedulerConf::default(),
            remember_batches: 2,
        }
    }
}

/// What one batch did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchReport {
    /// The batch time.
    pub time: BatchTime,
    /// Records its outputs read (summed over outputs).
    pub records: u64,
    /// From the batch time to the start of its processing.
    pub scheduling_delay: Duration,
    /// From the start of its processing to its end.
    pub processing_time: Duration,
}

/// Hears of each batch: when it is allocated, and when its outputs all
/// succeeded. An error from either stops the driver (a checkpoint that cannot
/// be written must not be run past).
pub trait BatchListener {
    /// Batch `time` has its blocks; its outputs are about to run.
    fn allocated(&mut self, time: BatchTime) -> Result<(), StreamError>;
    /// Every output of the batch succeeded.
    fn completed(&mut self, report: &BatchReport) -> Result<(), StreamError>;
}

/// A listener that only logs each batch.
pub struct LogBatches;

impl BatchListener for LogBatches {
    fn allocated(&mut self, _time: BatchTime) -> Result<(), StreamError> {
        Ok(())
    }

    fn completed(&mut self, r: &BatchReport) -> Result<(), StreamError> {
        tracing::info!(time = r.time.0, records = r.records, "batch done");
        Ok(())
    }
}

/// The driver's answers to executors: block reports to the tracker, receivers to executors.
pub struct DriverEvents {
    tracker: Arc<ReceivedBlockTracker>,
    placement: Placement,
}

impl DriverEvents {
    /// Events for a graph's receivers, logged by `tracker`. New receiver
    /// epochs start above every epoch of a block the tracker still holds.
    pub fn new(graph: &StreamGraph, tracker: Arc<ReceivedBlockTracker>) -> Arc<DriverEvents> {
        let streams = graph
            .inputs()
            .iter()
            .filter(|i| i.kind.has_receiver())
            .map(|i| i.id)
            .collect();
        let floor = highest_tracked_epoch(&tracker);
        Arc::new(DriverEvents {
            tracker,
            placement: Placement::new(streams, floor),
        })
    }

    /// Where receivers run, and the orders to send.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }
}

impl DriverHandler for DriverEvents {
    fn executor_registered(&self, executor: ExecutorId, block_node: &str) {
        tracing::info!(executor, block_node, "executor joined");
        self.placement.executor_joined(executor);
    }

    fn add_block(&self, _executor: ExecutorId, info: ReceivedBlockInfo) -> Result<(), String> {
        self.tracker.add_block(info).map_err(|e| e.to_string())
    }

    fn receiver_status(&self, executor: ExecutorId, stream_id: u32, status: ReceiverStatus) {
        tracing::info!(executor, stream_id, ?status, "receiver");
        if status == ReceiverStatus::Stopped {
            self.placement.receiver_stopped(stream_id);
        }
    }

    fn executor_lost(&self, executor: ExecutorId, reason: &str) {
        tracing::warn!(executor, reason, "executor lost; its receivers move");
        self.placement.executor_left(executor);
    }
}

/// A running driver.
pub struct Driver {
    graph: Arc<StreamGraph>,
    hub: Arc<ExecutorHub>,
    events: Arc<DriverEvents>,
    tracker: Arc<ReceivedBlockTracker>,
    blocks: Arc<BlockManager>,
    conf: DriverConf,
}

impl Driver {
    /// A driver over a started hub (whose handler is `events`) and block manager (the master).
    pub fn new(
        graph: Arc<StreamGraph>,
        hub: Arc<ExecutorHub>,
        events: Arc<DriverEvents>,
        tracker: Arc<ReceivedBlockTracker>,
        blocks: Arc<BlockManager>,
        conf: DriverConf,
    ) -> Result<Driver, StreamError> {
        let ms = conf.batch_interval.as_millis();
        if ms == 0 || conf.batch_interval != Duration::from_millis(ms as u64) {
            return Err(StreamError::InvalidSetting {
                name: "batch interval",
                reason: format!(
                    "{:?} is not a positive whole number of milliseconds",
                    conf.batch_interval
                ),
            });
        }
        Ok(Driver {
            graph,
            hub,
            events,
            tracker,
            blocks,
            conf,
        })
    }

    fn interval_ms(&self) -> u64 {
        self.conf.batch_interval.as_millis() as u64
    }

    /// Runs batches from `first` (default: the first batch time after now)
    /// until `stop` is set, then stops gracefully (see [`Driver::drain`]).
    pub fn run(
        &self,
        stop: &AtomicBool,
        first: Option<BatchTime>,
        listener: &mut dyn BatchListener,
    ) -> Result<(), StreamError> {
        let mut next = first.map_or_else(|| next_batch_time(now_ms(), self.interval_ms()), |t| t.0);
        loop {
            self.send_receiver_orders();
            if wait_until(next, stop) {
                return self.drain(listener);
            }
            self.run_batch(BatchTime(next), listener)?;
            next += self.interval_ms();
        }
    }

    /// Re-runs `times` in order (batches a restarted driver owes), then returns.
    pub fn run_times(
        &self,
        times: &[BatchTime],
        listener: &mut dyn BatchListener,
    ) -> Result<(), StreamError> {
        for &t in times {
            self.send_receiver_orders();
            self.run_batch(t, listener)?;
        }
        Ok(())
    }

    /// Graceful stop: stops every receiver (each pushes what it buffered), then
    /// runs batches until every logged block was processed.
    pub fn drain(&self, listener: &mut dyn BatchListener) -> Result<(), StreamError> {
        for (executor, stream_id) in self.events.placement.running() {
            let _ = self
                .hub
                .send(executor, &ToExecutor::StopReceiver { stream_id });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.events.placement.all_stopped() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut t = next_batch_time(now_ms(), self.interval_ms());
        loop {
            wait_until(t, &AtomicBool::new(false));
            self.run_batch(BatchTime(t), listener)?;
            if !self.tracker.has_unallocated_blocks() {
                return Ok(());
            }
            t += self.interval_ms();
        }
    }

    fn send_receiver_orders(&self) {
        for order in self.events.placement.take_orders() {
            let msg = ToExecutor::StartReceiver {
                stream_id: order.stream_id,
                epoch: order.epoch,
            };
            if let Err(e) = self.hub.send(order.executor, &msg) {
                tracing::warn!(error = %e, stream = order.stream_id, "cannot start a receiver; it will be placed again");
                self.events.placement.executor_left(order.executor);
            }
        }
    }

    /// Runs batch `time` (see the module docs).
    pub fn run_batch(
        &self,
        time: BatchTime,
        listener: &mut dyn BatchListener,
    ) -> Result<BatchReport, StreamError> {
        let started = Instant::now();
        let scheduling_delay = Duration::from_millis(now_ms().saturating_sub(time.0));
        self.tracker.allocate_blocks_to_batch(time)?;
        listener.allocated(time)?;
        let mut records = 0u64;
        for output in self.graph.outputs() {
            let blocks = self.tracker.blocks_of_batch_and_stream(time, output.input);
            tracing::debug!(time = time.0, output = %output.name, blocks = blocks.len(), "running an output");
            let spec = TaskSpec {
                output: output.name.clone(),
                batch: time,
                input: TaskInput::Blocks(blocks),
            };
            let outs = run_task_set(&*self.hub, vec![spec.encode()], &self.conf.scheduler)?;
            records += outs.iter().map(count_of).sum::<u64>();
        }
        let report = BatchReport {
            time,
            records,
            scheduling_delay,
            processing_time: started.elapsed(),
        };
        listener.completed(&report)?;
        self.clean_before(time)?;
        Ok(report)
    }

    fn clean_before(&self, time: BatchTime) -> Result<(), StreamError> {
        let keep = self.interval_ms() * u64::from(self.conf.remember_batches);
        let threshold = BatchTime(time.0.saturating_sub(keep));
        for info in self.tracker.cleanup_old_batches(threshold)? {
            if let Err(e) = self.blocks.remove(&info.block.block_id()) {
                tracing::warn!(block = %info.block, error = %e, "cannot remove an old block");
            }
        }
        Ok(())
    }
}

/// The highest receiver epoch among the blocks `tracker` holds (0 if none).
fn highest_tracked_epoch(tracker: &ReceivedBlockTracker) -> u32 {
    let snap = tracker.snapshot();
    let waiting = snap.unallocated.values().flatten();
    let allocated = snap.batches.values().flat_map(|b| b.values().flatten());
    waiting
        .chain(allocated)
        .map(|info| crate::receiver::ids::BlockIds::epoch_of(info.block))
        .max()
        .unwrap_or(0)
}

/// A task's output is its record count in decimal.
fn count_of(out: &Bytes) -> u64 {
    std::str::from_utf8(out)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The first multiple of `interval_ms` after `now`.
pub fn next_batch_time(now: u64, interval_ms: u64) -> u64 {
    (now / interval_ms + 1) * interval_ms
}

/// Sleeps until `at_ms`; true if `stop` was set first.
fn wait_until(at_ms: u64, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Acquire) {
            return true;
        }
        let now = now_ms();
        if now >= at_ms {
            return false;
        }
        std::thread::sleep(Duration::from_millis((at_ms - now).min(10)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_times_are_the_next_multiple_of_the_interval() {
        assert_eq!(next_batch_time(0, 1000), 1000);
        assert_eq!(next_batch_time(999, 1000), 1000);
        assert_eq!(next_batch_time(1000, 1000), 2000);
        assert_eq!(next_batch_time(1_765_000_123_456, 200), 1_765_000_123_600);
    }
}
