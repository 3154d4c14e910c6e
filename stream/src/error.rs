//! Errors of the stream layer: each names where it happened and what failed.

use std::time::Duration;

use crate::block::{BatchTime, StreamBlockId};
use crate::checkpoint::GraphDifference;

/// An error of the stream layer.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The metadata or receiver WAL failed (a failed sync is fatal for that log).
    #[error("{what}: {source}")]
    Wal {
        /// What was being done.
        what: &'static str,
        /// The WAL's error.
        #[source]
        source: tidemark_wal::WalError,
    },
    /// The block store failed.
    #[error("{what}: {source}")]
    BlockStore {
        /// What was being done.
        what: String,
        /// The block store's error.
        #[source]
        source: tidemark_blockstore::BlockError,
    },
    /// A WAL record the stream layer wrote does not decode: damage, or a newer format.
    #[error("bad {what} record at LSN {lsn}: {reason}")]
    BadRecord {
        /// Which log's records.
        what: &'static str,
        /// Where.
        lsn: u64,
        /// Why it does not decode.
        reason: String,
    },
    /// Storing a block took longer than allowed.
    #[error("storing block {block} timed out after {after:?}")]
    StoreTimeout {
        /// The block.
        block: StreamBlockId,
        /// The limit.
        after: Duration,
    },
    /// A task failed as often as allowed; its batch fails.
    #[error("task {task} failed {failures} times; last: {last_error}")]
    TaskFailed {
        /// The task's index in its set.
        task: usize,
        /// How often it failed.
        failures: u32,
        /// The last failure's reason.
        last_error: String,
    },
    /// The supervised driver failed and was not (or no longer) restarted.
    #[error("the driver failed after {starts} start(s); last exit: {last_status}")]
    DriverFailed {
        /// Driver starts, the first included.
        starts: u32,
        /// How the last one ended.
        last_status: String,
    },
    /// The connection to the driver is gone (the driver died or closed it).
    #[error("the driver is gone: {0}")]
    DriverGone(String),
    /// The driver could not take a block report (its metadata WAL failed, say).
    #[error("the driver refused block {block}: {reason}")]
    BlockRefused {
        /// The block.
        block: StreamBlockId,
        /// The driver's reason.
        reason: String,
    },
    /// The stream graph the user built cannot run.
    #[error("invalid stream graph: {0}")]
    InvalidGraph(String),
    /// The executor is not connected (it died, or never registered).
    #[error("executor {0} is not connected")]
    ExecutorGone(u32),
    /// No executor was alive to run tasks for this long.
    #[error("no executor alive for {waited:?}")]
    NoExecutors {
        /// How long the scheduler waited.
        waited: Duration,
    },
    /// A block is in neither the block store nor a receiver WAL: its level did
    /// not survive what happened, and the WAL was off.
    #[error("block {0} is lost: no copy in the block store, and no receiver WAL holds it")]
    BlockLost(StreamBlockId),
    /// The receiver, block generator or tracker was stopped.
    #[error("{0} is stopped")]
    Stopped(&'static str),
    /// A setting is invalid.
    #[error("invalid setting {name}: {reason}")]
    InvalidSetting {
        /// The setting's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Input from a source that cannot be used (malformed, oversize).
    #[error("bad input from {source_name}: {reason}")]
    BadInput {
        /// The source.
        source_name: String,
        /// What is wrong.
        reason: String,
    },
    /// An I/O error outside the storage crates (sockets, files).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A block of a stream the tracker was not opened with.
    #[error("block of stream {stream_id}: the tracker does not track that stream")]
    UnknownStream {
        /// The stream.
        stream_id: u32,
    },
    /// The checkpoint store failed (open, begin, a part, commit, a read).
    #[error("{what}: {source}")]
    Checkpoint {
        /// What was being done, and where.
        what: String,
        /// The store's error (boxed: it is large).
        #[source]
        source: Box<tidemark_checkpoint::CheckpointError>,
    },
    /// Every attempt to write a batch's checkpoint failed: the stream must stop,
    /// for it would otherwise run on without checkpoints (SPARK-22429).
    #[error(
        "checkpoint of batch {batch} failed after {attempts} attempt(s); stop the stream: {last}"
    )]
    CheckpointWrite {
        /// The batch whose checkpoint was being written.
        batch: BatchTime,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        last: Box<StreamError>,
    },
    /// An earlier checkpoint write failed; the checkpoint writer takes no more batches.
    #[error(
        "the checkpoint writer failed at batch {failed_at} and takes no more batches; stop the stream"
    )]
    CheckpointerFailed {
        /// The batch whose checkpoint could not be written.
        failed_at: BatchTime,
    },
    /// A stream checkpoint part was written in a newer format than this build reads.
    #[error(
        "checkpoint {epoch}, part {part:?}, has format {found}; this build reads formats up to {supported}: upgrade tidemark"
    )]
    CheckpointFormat {
        /// The checkpoint's epoch.
        epoch: u64,
        /// The part.
        part: String,
        /// Its format.
        found: u32,
        /// The newest format this build reads.
        supported: u32,
    },
    /// A stream checkpoint part does not decode: damage, or not written by tidemark-stream.
    #[error("checkpoint {epoch}, part {part:?}, is damaged: {reason}")]
    CheckpointDamaged {
        /// The checkpoint's epoch.
        epoch: u64,
        /// The part.
        part: String,
        /// What does not decode.
        reason: String,
    },
    /// The stream graph of the code differs from the checkpoint's.
    #[error(
        "the stream graph differs from the checkpoint's: {}; set start_from_changed_graph to start from the checkpoint anyway",
        list(.differences)
    )]
    GraphChanged {
        /// Every difference.
        differences: Vec<GraphDifference>,
    },
    /// The batch interval changed while batches of the old interval are pending.
    #[error(
        "setting batch_interval changed from {old:?} to {new:?} while {} batch(es) are pending ({}): set drain_first to run them under the old interval first",
        pending.len(),
        list(pending)
    )]
    BatchIntervalChanged {
        /// The checkpoint's interval.
        old: Duration,
        /// The code's interval.
        new: Duration,
        /// The pending batches.
        pending: Vec<BatchTime>,
    },
    /// A batch was allocated, completed or applied out of batch order.
    #[error("{what}: batch {batch} is out of order: {reason}")]
    BatchOutOfOrder {
        /// What was being done.
        what: &'static str,
        /// The batch.
        batch: BatchTime,
        /// Which order it breaks.
        reason: String,
    },
    /// What the caller handed in for a batch's checkpoint does not match the stream graph.
    #[error("checkpoint input of batch {batch} does not match the stream graph: {reason}")]
    CheckpointInput {
        /// The batch.
        batch: BatchTime,
        /// What does not match.
        reason: String,
    },
    /// The store holds checkpoints, and none of them can be read. Starting
    /// fresh would drop their offsets and state: remove the directory to do so.
    #[error(
        "no checkpoint in {location} can be read ({}); remove the checkpoint directory to start fresh",
        list(damaged)
    )]
    NoReadableCheckpoint {
        /// The store (credentials masked).
        location: String,
        /// Each damaged checkpoint: its epoch and why.
        damaged: Vec<String>,
    },
    /// The Kafka client failed (metadata, watermarks, fetch, commit).
    #[error("{what}: {source}")]
    Kafka {
        /// What was being done, naming the topic and partition when there is one.
        what: String,
        /// The client's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// Kafka did not deliver what was asked within the limit.
    #[error("{what}: not done within {after:?} ({detail})")]
    KafkaTimeout {
        /// What was being done.
        what: String,
        /// The limit.
        after: Duration,
        /// What was known when time ran out (progress, watermarks, last client error).
        detail: String,
    },
    /// Records of an offset range are no longer in the log: retention (or a
    /// delete-records request) removed them before the range was read.
    #[error("offset range {range} is gone from the log, which now starts at offset {log_start}")]
    KafkaRangeGone {
        /// The range that cannot be read.
        range: crate::kafka::OffsetRange,
        /// The partition's first offset now (its low watermark).
        log_start: i64,
    },
    /// A topic cannot be read: it does not exist, or the broker refuses it.
    #[error("topic {topic} cannot be used: {reason}")]
    KafkaTopic {
        /// The topic.
        topic: String,
        /// The broker's reason.
        reason: String,
    },
    /// What the broker reports contradicts the offsets the stream holds: a
    /// partition vanished, or the stream is past the log's end (the topic was
    /// recreated, or the log truncated).
    #[error("topic {topic} partition {partition}: {reason}")]
    KafkaOffsets {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// What does not fit.
        reason: String,
    },
    /// A reliable Kafka source was asked to commit a block before an older,
    /// uncommitted block: committing it would acknowledge records that may not
    /// be stored.
    #[error("block {block} committed before block {oldest}, which is not committed yet")]
    KafkaCommitOrder {
        /// The block the caller tried to commit.
        block: u64,
        /// The oldest block not committed yet.
        oldest: u64,
    },
    /// A receiver launch handed out every block id its epoch allows.
    #[error(
        "block ids of stream {stream_id} in epoch {epoch} are used up; relaunch with a new epoch"
    )]
    BlockIdsExhausted {
        /// The stream.
        stream_id: u32,
        /// The launch epoch.
        epoch: u32,
    },
}

/// `a; b; c` for error messages.
fn list<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl StreamError {
    pub(crate) fn wal(what: &'static str) -> impl FnOnce(tidemark_wal::WalError) -> StreamError {
        move |source| StreamError::Wal { what, source }
    }

    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StreamError {
        let what = what.into();
        move |source| StreamError::Io { what, source }
    }

    pub(crate) fn checkpoint(
        what: impl Into<String>,
    ) -> impl FnOnce(tidemark_checkpoint::CheckpointError) -> StreamError {
        let what = what.into();
        move |source| StreamError::Checkpoint {
            what,
            source: Box::new(source),
        }
    }
}
