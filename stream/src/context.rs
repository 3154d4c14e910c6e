//! What a user's `main` calls: [`StreamingContext::get_or_create`] builds the
//! graph, [`StreamingContext::run_until_signal`] runs this process's role.
//!
//! The program started by the user is the supervisor: it starts the driver
//! and the executors as processes of the same program, with the same
//! arguments. The driver resumes from the newest checkpoint (re-running the
//! batches it owes) and runs batches until SIGTERM, then stops gracefully:
//! receivers stop, everything they stored is processed, a final checkpoint is
//! written, and the run ends. Each executor serves its driver until the
//! driver is gone.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tidemark_blockstore::{BlockManager, BlockStoreConfig};

use crate::block::BatchTime;
use crate::checkpoint::{
    CheckpointerConfig, GraphSignature, InputKind as CkptInput, RecoverOptions, Recovery, Settings,
    SourceOffsets, StreamCheckpointer, StreamSetup, get_or_create,
};
use crate::conf::StreamConf;
use crate::driver::{BatchListener, BatchReport, Driver, DriverConf, DriverEvents, now_ms};
use crate::error::StreamError;
use crate::executor::{BlockPolicy, ExecutorRuntime};
use crate::graph::{GraphBuilder, InputKind, StreamGraph};
use crate::rpc::{DriverClient, ExecutorHub, Registration};
use crate::scheduler::SchedulerConf;
use crate::supervisor::{Role, SuperviseConf, Supervisor};
use crate::task_runner::TaskRunner;
use crate::tracker::{ReceivedBlockTracker, TrackerOptions, metadata_wal_dir};

/// A built stream, ready to run in this process's role.
pub struct StreamingContext {
    conf: StreamConf,
    graph: Arc<StreamGraph>,
    role: Option<Role>,
}

/// Where the driver can be reached, written by the driver to `<run dir>/driver.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DriverInfo {
    /// The driver's executor hub.
    pub rpc: SocketAddr,
    /// The driver's block manager (the block store's master).
    pub blocks: SocketAddr,
    /// The driver's process id.
    pub pid: u32,
}

impl StreamingContext {
    /// Builds the graph with `build` (the same in every process and after every restart).
    pub fn get_or_create(
        conf: StreamConf,
        build: impl FnOnce(&GraphBuilder) -> Result<(), StreamError>,
    ) -> Result<StreamingContext, StreamError> {
        let builder = GraphBuilder::new();
        build(&builder)?;
        Ok(StreamingContext {
            conf,
            graph: Arc::new(builder.build()?),
            role: Role::from_env(),
        })
    }

    /// Runs this process's role until the run ends (SIGTERM stops it gracefully).
    pub fn run_until_signal(self) -> Result<(), StreamError> {
        self.run_with(|r| {
            tracing::info!(time = r.time.0, records = r.records, delay = ?r.scheduling_delay, took = ?r.processing_time, "batch");
            Ok(())
        })
    }

    /// Like [`StreamingContext::run_until_signal`]; the driver calls
    /// `on_batch` after each batch completed and was checkpointed.
    pub fn run_with(
        self,
        on_batch: impl FnMut(&BatchReport) -> Result<(), StreamError>,
    ) -> Result<(), StreamError> {
        match self.role {
            None => self.supervise(),
            Some(Role::Driver) => self.drive(on_batch),
            Some(Role::Executor(id)) => self.execute(id),
        }
    }

    fn supervise(self) -> Result<(), StreamError> {
        let conf = SuperviseConf {
            executors: self.conf.executors,
            max_attempts: self.conf.max_driver_starts,
            ..SuperviseConf::default()
        };
        let supervisor = Supervisor::for_current_exe(self.conf.run_dir(), conf)?;
        supervisor.stop_on_signals()?;
        let outcome = supervisor.run()?;
        tracing::info!(?outcome, "run finished");
        Ok(())
    }

    fn drive(
        self,
        on_batch: impl FnMut(&BatchReport) -> Result<(), StreamError>,
    ) -> Result<(), StreamError> {
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(sig, stop.clone())
                .map_err(StreamError::io("register a signal handler"))?;
        }
        let conf = &self.conf;
        let run_dir = conf.run_dir();
        std::fs::create_dir_all(&run_dir)
            .map_err(StreamError::io(format!("create {}", run_dir.display())))?;
        let blocks = Arc::new(start_blocks(&run_dir.join("blocks").join("driver"), None)?);
        let receivers: Vec<u32> = self
            .graph
            .inputs()
            .iter()
            .filter(|i| i.kind.has_receiver())
            .map(|i| i.id)
            .collect();
        let metadata = conf.wal_root.as_deref().map(metadata_wal_dir);
        let tracker = Arc::new(ReceivedBlockTracker::open(
            metadata.as_deref(),
            &receivers,
            TrackerOptions::default(),
        )?);
        let events = DriverEvents::new(&self.graph, tracker.clone());
        let hub = Arc::new(ExecutorHub::start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            events.clone(),
        )?);
        let info = DriverInfo {
            rpc: hub.local_addr(),
            blocks: blocks.local_addr(),
            pid: std::process::id(),
        };
        write_driver_info(&run_dir, &info)?;
        let driver_conf = DriverConf {
            batch_interval: conf.batch_interval,
            scheduler: SchedulerConf {
                speculation: conf.speculation.then(Default::default),
                ..SchedulerConf::default()
            },
            ..DriverConf::default()
        };
        let driver = Driver::new(
            self.graph.clone(),
            hub,
            events,
            tracker,
            blocks,
            driver_conf,
        )?;
        let mut listener = CheckpointListener::open(conf, &self.graph, on_batch)?;
        let (reruns, first) = listener.owed();
        driver.run_times(&reruns, &mut listener)?;
        driver.run(&stop, first, &mut listener)?;
        listener.finish()
    }

    fn execute(self, id: u32) -> Result<(), StreamError> {
        let conf = &self.conf;
        let run_dir = conf.run_dir();
        let info = wait_for_driver_info(&run_dir, Duration::from_secs(60))?;
        let blocks = Arc::new(start_blocks(
            &run_dir.join("blocks").join(format!("executor-{id}")),
            Some(info.blocks),
        )?);
        let runner = TaskRunner::new(
            self.graph.clone(),
            blocks.clone(),
            conf.wal_root.clone(),
            None,
        );
        let generator = crate::receiver::BlockGeneratorConfig {
            block_interval: conf.block_interval,
            max_rate: conf.max_rate,
            ..Default::default()
        };
        let policy = BlockPolicy {
            level: conf.level,
            wal_root: conf.wal_root.clone(),
            keep_replication: conf.keep_replication,
            generator,
        };
        let runtime = ExecutorRuntime::new(self.graph.clone(), blocks.clone(), policy, runner);
        let me = Registration {
            executor: id,
            slots: 2,
            block_node: blocks.local_addr().to_string(),
        };
        let client = DriverClient::connect(info.rpc, &me, runtime.clone())?;
        runtime.serve(client);
        Ok(())
    }
}

fn start_blocks(dir: &Path, master: Option<SocketAddr>) -> Result<BlockManager, StreamError> {
    let config = BlockStoreConfig {
        dir: dir.to_path_buf(),
        master_addr: master,
        ..BlockStoreConfig::default()
    };
    BlockManager::start(config).map_err(|source| StreamError::BlockStore {
        what: "start the block manager".into(),
        source,
    })
}

fn write_driver_info(run_dir: &Path, info: &DriverInfo) -> Result<(), StreamError> {
    let tmp = run_dir.join("driver.json.tmp");
    let text = serde_json::to_vec(info).map_err(|e| StreamError::BadInput {
        source_name: "driver.json".into(),
        reason: e.to_string(),
    })?;
    std::fs::write(&tmp, text).map_err(StreamError::io(format!("write {}", tmp.display())))?;
    std::fs::rename(&tmp, run_dir.join("driver.json"))
        .map_err(StreamError::io("publish driver.json"))
}

/// Reads `<run dir>/driver.json` once it names a live driver (a newer one than a dead predecessor's).
fn wait_for_driver_info(run_dir: &Path, limit: Duration) -> Result<DriverInfo, StreamError> {
    let path: PathBuf = run_dir.join("driver.json");
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(text) = std::fs::read(&path)
            && let Ok(info) = serde_json::from_slice::<DriverInfo>(&text)
            && std::net::TcpStream::connect_timeout(&info.rpc, Duration::from_secs(1)).is_ok()
        {
            return Ok(info);
        }
        if Instant::now() > deadline {
            return Err(StreamError::DriverGone(format!(
                "no live driver in {} after {limit:?}",
                path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The graph's shape in the checkpoint's terms.
fn signature(graph: &StreamGraph) -> GraphSignature {
    let mut sig = GraphSignature::new();
    for input in graph.inputs() {
        let kind = match &input.kind {
            InputKind::Socket { addr } => CkptInput::Socket(addr.clone()),
            InputKind::KafkaReceiver { topic, .. } => CkptInput::Kafka(topic.clone()),
            InputKind::DirectKafka { topic, .. } => CkptInput::DirectKafka(topic.clone()),
        };
        sig = sig.input(input.kind.stable_name(), kind);
    }
    for output in graph.outputs() {
        sig = sig.output(output.name.clone());
    }
    sig
}

/// Records batches in the checkpoint (when one is configured) before the user hears of them.
struct CheckpointListener<F> {
    checkpointer: Option<StreamCheckpointer>,
    recovery: Option<Recovery>,
    on_batch: F,
}

impl<F: FnMut(&BatchReport) -> Result<(), StreamError>> CheckpointListener<F> {
    fn open(conf: &StreamConf, graph: &StreamGraph, on_batch: F) -> Result<Self, StreamError> {
        let Some(url) = &conf.checkpoint else {
            return Ok(CheckpointListener {
                checkpointer: None,
                recovery: None,
                on_batch,
            });
        };
        let settings: Settings = conf.settings().into_iter().collect();
        let setup = StreamSetup {
            graph: signature(graph),
            settings,
            batch_interval: conf.batch_interval,
        };
        let (store, recovery) = get_or_create(url, &setup, now_ms(), &RecoverOptions::default())?;
        let checkpointer =
            StreamCheckpointer::new(store, setup, CheckpointerConfig::default(), &recovery)?;
        Ok(CheckpointListener {
            checkpointer: Some(checkpointer),
            recovery: Some(recovery),
            on_batch,
        })
    }

    /// The batches a resumed driver must re-run, and where its timer starts.
    fn owed(&self) -> (Vec<BatchTime>, Option<BatchTime>) {
        match &self.recovery {
            Some(Recovery::Resume(r)) => {
                tracing::info!(
                    rerun = r.rerun.len(),
                    next = r.next_batch.0,
                    "resuming from a checkpoint"
                );
                (r.rerun.clone(), Some(r.next_batch))
            }
            _ => (Vec::new(), None),
        }
    }

    fn finish(&mut self) -> Result<(), StreamError> {
        if let Some(c) = &mut self.checkpointer {
            c.flush(&SourceOffsets::default(), &[])?;
        }
        Ok(())
    }
}

impl<F: FnMut(&BatchReport) -> Result<(), StreamError>> BatchListener for CheckpointListener<F> {
    fn allocated(&mut self, time: BatchTime) -> Result<(), StreamError> {
        match &mut self.checkpointer {
            Some(c) => c.batch_allocated(time),
            None => Ok(()),
        }
    }

    fn completed(&mut self, report: &BatchReport) -> Result<(), StreamError> {
        if let Some(c) = &mut self.checkpointer {
            c.mark_completed(report.time, &SourceOffsets::default(), &[])?;
        }
        (self.on_batch)(report)
    }
}
