//! Errors of the stream layer: each names where it happened and what failed.

use std::time::Duration;

use crate::block::StreamBlockId;

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
}

impl StreamError {
    pub(crate) fn wal(what: &'static str) -> impl FnOnce(tidemark_wal::WalError) -> StreamError {
        move |source| StreamError::Wal { what, source }
    }

    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StreamError {
        let what = what.into();
        move |source| StreamError::Io { what, source }
    }
}
