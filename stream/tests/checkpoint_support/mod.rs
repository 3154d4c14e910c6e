//! What the stream checkpoint tests share: a small word-count stream over a
//! real checkpoint store, and ways to damage a local store's files.

#![allow(dead_code)] // each test binary uses its own subset

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

use tidemark_stream::BatchTime;
use tidemark_stream::checkpoint::{
    CheckpointStore, CheckpointerConfig, GraphSignature, InputKind, RecoverOptions, Recovery,
    Resumed, RetryPolicy, Settings, SourceOffsets, StateMap, StreamCheckpointer, StreamSetup,
    TopicPartition, get_or_create, open_store, recover,
};

/// The batch interval of the test stream, in milliseconds.
pub const INTERVAL_MS: u64 = 1000;

/// `file://` URL of a local directory.
pub fn local_url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

/// Word count: one socket stream, two direct Kafka streams, one output, one stateful operator.
pub fn graph() -> GraphSignature {
    GraphSignature::new()
        .input("lines", InputKind::Socket("127.0.0.1:9999".into()))
        .input("clicks", InputKind::DirectKafka("clicks".into()))
        .input("views", InputKind::DirectKafka("views".into()))
        .output("save-counts")
        .stateful("counts")
}

pub fn settings() -> Settings {
    Settings::new()
        .set("spark.streaming.receiver.writeAheadLog.enable", "true")
        .set("spark.streaming.blockInterval", "200ms")
}

pub fn setup() -> StreamSetup {
    StreamSetup {
        graph: graph(),
        settings: settings(),
        batch_interval: Duration::from_millis(INTERVAL_MS),
    }
}

/// Retries that do not make tests slow.
pub fn fast_config() -> CheckpointerConfig {
    CheckpointerConfig {
        retry: RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
        },
        ..CheckpointerConfig::default()
    }
}

/// The words of batch `t` (deterministic, overlapping from batch to batch).
pub fn words_of(t: BatchTime) -> Vec<(Vec<u8>, Vec<u8>)> {
    let n = t.0 / INTERVAL_MS;
    (0..4)
        .map(|i| {
            let word = format!("w{}", (n + i) % 5);
            (word.into_bytes(), 1u64.to_le_bytes().to_vec())
        })
        .collect()
}

/// Adds a batch's counts to `state` (updateStateByKey: sum; a count of 0 is removed).
pub fn count(state: &mut StateMap, t: BatchTime) {
    state
        .update_state_by_key(t, words_of(t), |_, new, old| {
            let sum = new.iter().map(|v| decode_u64(v)).sum::<u64>() + old.map_or(0, decode_u64);
            (sum > 0).then(|| sum.to_le_bytes().to_vec())
        })
        .expect("batches are applied in order");
}

pub fn decode_u64(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(buf)
}

/// The direct streams' next offsets after batch `t`.
pub fn offsets_after(t: BatchTime) -> SourceOffsets {
    let n = t.0 / INTERVAL_MS;
    let mut offsets = SourceOffsets::new();
    for p in 0..3u32 {
        offsets.set(
            "clicks",
            TopicPartition::new("clicks", p),
            n * 10 + u64::from(p),
        );
    }
    offsets.set("views", TopicPartition::new("views", 0), n * 7);
    offsets
}

/// A driver of the test stream: its checkpointer and its state.
pub struct Driver {
    pub checkpointer: StreamCheckpointer,
    pub state: StateMap,
}

impl Driver {
    /// Starts (fresh or resumed) on the store at `url`.
    pub fn start(url: &str, now_ms: u64) -> (Driver, Recovery) {
        let (store, recovery) =
            get_or_create(url, &setup(), now_ms, &RecoverOptions::default()).expect("recover");
        (Driver::with(store, &recovery, fast_config()), recovery)
    }

    /// A driver on an open store, from a recovery decision.
    pub fn with(store: CheckpointStore, recovery: &Recovery, config: CheckpointerConfig) -> Driver {
        let state = match recovery {
            Recovery::Fresh => StateMap::new(),
            Recovery::Resume(r) => r.states.get("counts").cloned().unwrap_or_default(),
        };
        let checkpointer =
            StreamCheckpointer::new(store, setup(), config, recovery).expect("checkpointer");
        Driver {
            checkpointer,
            state,
        }
    }

    /// Runs batch `t` whose output succeeds, and marks it completed.
    pub fn run(&mut self, t: BatchTime) -> Option<tidemark_stream::checkpoint::CommitInfo> {
        self.checkpointer.batch_allocated(t).expect("allocate");
        count(&mut self.state, t);
        self.checkpointer
            .mark_completed(t, &offsets_after(t), &[("counts", &self.state)])
            .expect("checkpoint")
    }
}

/// Recovery with default options, expected to resume.
pub fn resume(url: &str, now_ms: u64) -> Resumed {
    let store = open_store(url).expect("open");
    match recover(&store, &setup(), now_ms, &RecoverOptions::default()).expect("recover") {
        Recovery::Resume(r) => *r,
        Recovery::Fresh => panic!("expected a checkpoint to resume from"),
    }
}

pub fn t(seconds: u64) -> BatchTime {
    BatchTime(seconds * INTERVAL_MS)
}

/// The manifest file of checkpoint `epoch` in a local store.
pub fn manifest_file(root: &Path, epoch: u64) -> PathBuf {
    root.join("manifests").join(format!("{epoch:020}.manifest"))
}

/// The object file of part `name` of checkpoint `epoch` in a local store.
pub fn part_file(root: &Path, epoch: u64, name: &str) -> PathBuf {
    let prefix = format!("{epoch:020}-");
    let suffix = format!("-{name}");
    let dir = root.join("parts");
    let found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("list parts")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            n.starts_with(&prefix) && n.ends_with(&suffix)
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "part {name} of {epoch} in {}: {found:?}",
        dir.display()
    );
    found.into_iter().next().expect("one part file")
}

/// Flips one bit in the middle of a file.
pub fn flip_byte(file: &Path) {
    let mut bytes = std::fs::read(file).expect("read file to damage");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(file, bytes).expect("write damaged file");
}

thread_local! {
    /// The log lines of the test running on this thread, while it captures.
    static CAPTURED: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// Log lines this thread wrote while `f` ran. One subscriber serves the whole
/// test binary (a scoped one races with other tests over tracing's global
/// level filter); it writes each event into the emitting thread's capture.
pub fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(|| ThreadSink)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("one subscriber per test binary");
    });
    CAPTURED.with(|c| *c.borrow_mut() = Some(Vec::new()));
    let out = f();
    let logs = CAPTURED.with(|c| c.borrow_mut().take()).unwrap_or_default();
    (out, String::from_utf8_lossy(&logs).into_owned())
}

struct ThreadSink;

impl std::io::Write for ThreadSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURED.with(|c| {
            if let Some(captured) = c.borrow_mut().as_mut() {
                captured.extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
