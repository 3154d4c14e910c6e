//! An executor process: a block-store node, the driver's orders, receivers
//! and tasks (Spark's `Executor` with its `ReceiverSupervisorImpl`s).
//!
//! It registers with the driver, starts and stops receivers on the driver's
//! orders (each stores blocks through its stream's handler, then reports them
//! to the driver and waits for the answer), and runs tasks on threads through
//! a [`TaskRunner`]. It lives as long as its driver connection: when the
//! driver is gone, it stops its receivers and returns, and its supervisor
//! starts another one for the next driver.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tidemark_blockstore::{BlockManager, StorageLevel};

use crate::block::ReceivedBlockInfo;
use crate::error::StreamError;
use crate::graph::{InputKind, StreamGraph};
use crate::handler::{
    BlockStoreHandler, DEFAULT_STORE_TIMEOUT, ReceivedBlockHandler, WalBlockHandler,
    level_with_wal, receiver_wal_dir,
};
use crate::kafka::{KafkaClientConf, KafkaReceiver, SourceConf, StartingOffsets};
use crate::receiver::{
    BlockReporter, ReceiverEvent, ReceiverSupervisor, SupervisorConfig, TcpLineConfig,
    TcpLineReceiver,
};
use crate::rpc::{DriverClient, ExecutorHandler, ReceiverStatus, TaskOutcome};
use crate::scheduler::AttemptId;
use crate::task_runner::TaskRunner;

/// How long a receiver's block report may wait for the driver's answer.
const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where an executor keeps received blocks.
#[derive(Clone, Debug)]
pub struct BlockPolicy {
    /// The streams' storage level (Spark's default for receivers: `MEMORY_AND_DISK_SER_2`).
    pub level: StorageLevel,
    /// The receiver WALs' root, when the WAL is on.
    pub wal_root: Option<PathBuf>,
    /// With the WAL on, keep the level's replication instead of dropping it to 1.
    pub keep_replication: bool,
    /// How a block is cut and paced.
    pub generator: crate::receiver::BlockGeneratorConfig,
}

/// The executor's side of the driver connection.
pub struct ExecutorRuntime {
    graph: Arc<StreamGraph>,
    blocks: Arc<BlockManager>,
    policy: BlockPolicy,
    runner: Arc<TaskRunner>,
    client: OnceLock<Arc<DriverClient>>,
    receivers: Mutex<HashMap<u32, ReceiverSupervisor>>,
    tasks: Mutex<HashMap<AttemptId, Arc<AtomicBool>>>,
    shutdown: AtomicBool,
}

impl ExecutorRuntime {
    /// A runtime for `graph` over a started block manager.
    pub fn new(
        graph: Arc<StreamGraph>,
        blocks: Arc<BlockManager>,
        policy: BlockPolicy,
        runner: TaskRunner,
    ) -> Arc<ExecutorRuntime> {
        Arc::new(ExecutorRuntime {
            graph,
            blocks,
            policy,
            runner: Arc::new(runner),
            client: OnceLock::new(),
            receivers: Mutex::new(HashMap::new()),
            tasks: Mutex::new(HashMap::new()),
            shutdown: AtomicBool::new(false),
        })
    }

    /// Serves the driver over `client` until the connection ends; then stops
    /// every receiver gracefully.
    pub fn serve(&self, client: Arc<DriverClient>) {
        let _ = self.client.set(client.clone());
        let why = client.wait_closed();
        tracing::info!(%why, "the driver connection ended; stopping");
        self.stop_receivers();
    }

    fn handler_for(&self, stream_id: u32) -> Result<Arc<dyn ReceivedBlockHandler>, StreamError> {
        match &self.policy.wal_root {
            None => Ok(Arc::new(BlockStoreHandler::new(
                self.blocks.clone(),
                self.policy.level,
            ))),
            Some(root) => {
                let level = level_with_wal(self.policy.level, self.policy.keep_replication);
                let dir = receiver_wal_dir(root, stream_id);
                Ok(Arc::new(WalBlockHandler::open(
                    stream_id,
                    &dir,
                    self.blocks.clone(),
                    level,
                    DEFAULT_STORE_TIMEOUT,
                )?))
            }
        }
    }

    fn start(&self, stream_id: u32, epoch: u32) -> Result<ReceiverSupervisor, StreamError> {
        let client = self
            .client
            .get()
            .cloned()
            .ok_or(StreamError::Stopped("executor"))?;
        let input = self
            .graph
            .inputs()
            .iter()
            .find(|i| i.id == stream_id)
            .ok_or_else(|| StreamError::InvalidGraph(format!("no input stream {stream_id}")))?;
        let reporter: Arc<dyn BlockReporter> = Arc::new(DriverReporter { client });
        let mut config = SupervisorConfig::new(stream_id, epoch);
        config.generator = self.policy.generator.clone();
        let handler = self.handler_for(stream_id)?;
        match &input.kind {
            InputKind::Socket { addr } => {
                let receiver = TcpLineReceiver::new(TcpLineConfig::new(addr.clone()));
                ReceiverSupervisor::start(receiver, config, handler, reporter)
            }
            InputKind::KafkaReceiver { bootstrap, topic } => ReceiverSupervisor::start(
                kafka_receiver(bootstrap, topic),
                config,
                handler,
                reporter,
            ),
            other => Err(StreamError::InvalidGraph(format!(
                "{} has no receiver in this build",
                other.stable_name()
            ))),
        }
    }

    fn stop_receivers(&self) {
        let all: Vec<ReceiverSupervisor> = self.receivers.lock().drain().map(|(_, r)| r).collect();
        for r in all {
            r.stop();
        }
    }

    /// Whether the driver asked this executor to shut down.
    pub fn shutdown_requested(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }
}

impl ExecutorHandler for ExecutorRuntime {
    fn start_receiver(&self, stream_id: u32, epoch: u32) {
        if let Some(old) = self.receivers.lock().remove(&stream_id) {
            old.stop();
        }
        match self.start(stream_id, epoch) {
            Ok(r) => {
                self.receivers.lock().insert(stream_id, r);
            }
            Err(e) => {
                tracing::error!(stream_id, error = %e, "cannot start a receiver");
                if let Some(c) = self.client.get() {
                    let _ = c.receiver_status(stream_id, ReceiverStatus::Error(e.to_string()));
                }
            }
        }
    }

    fn stop_receiver(&self, stream_id: u32) {
        let removed = self.receivers.lock().remove(&stream_id);
        if let Some(r) = removed {
            // Graceful: pushes every buffered block, then reports Stopped.
            std::thread::spawn(move || r.stop());
        }
    }

    fn run_task(&self, attempt: AttemptId, task: Bytes) {
        let cancelled = Arc::new(AtomicBool::new(false));
        self.tasks.lock().insert(attempt, cancelled.clone());
        let (runner, client) = (self.runner.clone(), self.client.get().cloned());
        std::thread::spawn(move || {
            let result = runner.run(&task);
            let outcome = match result {
                _ if cancelled.load(Ordering::Acquire) => TaskOutcome::Cancelled,
                Ok(out) => TaskOutcome::Done(out),
                Err(why) => TaskOutcome::Failed(why),
            };
            if let Some(c) = client
                && let Err(e) = c.task_done(attempt, outcome)
            {
                tracing::warn!(error = %e, ?attempt, "cannot report a task");
            }
        });
    }

    fn cancel_task(&self, attempt: AttemptId) {
        if let Some(flag) = self.tasks.lock().remove(&attempt) {
            flag.store(true, Ordering::Release);
        }
    }

    fn shutdown(&self) {
        self.shutdown.store(true, Ordering::Release);
        self.stop_receivers();
    }
}

/// The reliable receiver of `topic`, in group `tidemark-<topic>`, from the
/// earliest offset when the group has none. A short session, so that the
/// partitions of a member whose executor died move within seconds.
fn kafka_receiver(bootstrap: &str, topic: &str) -> KafkaReceiver {
    let mut client = KafkaClientConf::new(bootstrap);
    client
        .properties
        .insert("session.timeout.ms".into(), "6000".into());
    client
        .properties
        .insert("heartbeat.interval.ms".into(), "1000".into());
    let source = SourceConf {
        topic: topic.to_string(),
        group_id: format!("tidemark-{topic}"),
        starting: StartingOffsets::Earliest,
    };
    KafkaReceiver::new(client, source)
}

/// Reports a receiver's blocks and events to the driver.
struct DriverReporter {
    client: Arc<DriverClient>,
}

impl BlockReporter for DriverReporter {
    fn block_stored(&self, info: &ReceivedBlockInfo) -> Result<(), StreamError> {
        self.client.add_block(info.clone(), REPORT_TIMEOUT)
    }

    fn receiver_event(&self, stream_id: u32, event: &ReceiverEvent) {
        let status = match event {
            ReceiverEvent::Started { .. } => ReceiverStatus::Started,
            ReceiverEvent::Restarting { reason, .. } => ReceiverStatus::Restarting(reason.clone()),
            ReceiverEvent::Error { message } => ReceiverStatus::Error(message.clone()),
            ReceiverEvent::Stopped => ReceiverStatus::Stopped,
        };
        if let Err(e) = self.client.receiver_status(stream_id, status) {
            tracing::debug!(error = %e, stream_id, "cannot report a receiver event");
        }
    }
}
