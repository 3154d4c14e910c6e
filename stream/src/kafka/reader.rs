//! The executor side of a direct stream (Spark's `KafkaRDD`): reading exactly
//! the records of one offset range.
//!
//! The reader assigns itself the range's partition at `from_offset` (it names
//! a consumer group, as librdkafka requires for assignment, but never joins it
//! or commits) and fetches until it has passed `until_offset - 1`; records
//! past the range are dropped. A range read twice
//! gives the same records as long as the log still holds them, which is what
//! makes a direct stream's receipt exactly-once: a recovered batch reads its
//! checkpointed ranges again. Records of aborted transactions are read too
//! (`isolation.level=read_uncommitted`, matching planning at the high watermark).

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::client::KafkaClientConf;
use super::offset_range::OffsetRange;
use super::record::{Fetched, KafkaRecord, MalformedRecord};
use crate::error::StreamError;

/// How long a range read may wait for its records (Spark's
/// `spark.streaming.kafka.consumer.poll.ms`, which defaults to `spark.network.timeout`).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(120);

/// The longest single poll, so progress and the deadline are looked at often.
const POLL_STEP: Duration = Duration::from_millis(200);

/// The group a range reader names when the user names none (it never joins it).
pub const READER_GROUP: &str = "tidemark-range-reader";

/// Properties a range reader sets unless the user does.
const READER_DEFAULTS: &[(&str, &str)] = &[
    // Once a range is read the client goes on fetching at the log's end, and
    // the broker holds that fetch up to this long; the next range's fetch
    // waits behind it. librdkafka's 500 ms made every read after the first
    // take ~500 ms on the test broker; 50 ms makes it ~60 ms, at the cost of
    // a fetch every 50 ms while a read waits for records not yet produced.
    ("fetch.wait.max.ms", "50"),
];

/// Properties a range reader relies on; they override the user's.
const READER_PROPERTIES: &[(&str, &str)] = &[
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    // A range no longer in the log is an error, never a silent jump elsewhere.
    ("auto.offset.reset", "error"),
    ("isolation.level", "read_uncommitted"),
    ("enable.partition.eof", "false"),
];

/// What reading a range gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeRead {
    /// The range read.
    pub range: OffsetRange,
    /// Its records with a value, in offset order.
    pub records: Vec<KafkaRecord>,
    /// Its records that cannot be used (no value), in offset order.
    pub malformed: Vec<MalformedRecord>,
    /// Offsets of the range that held no record (compaction, transaction markers).
    pub missing_offsets: u64,
}

/// Reads offset ranges; one at a time (each read takes `&mut self`).
pub struct RangeReader {
    consumer: BaseConsumer,
    timeout: Duration,
}

impl RangeReader {
    /// A reader for the brokers in `conf`; each range must be read within `timeout`.
    pub fn connect(conf: &KafkaClientConf, timeout: Duration) -> Result<RangeReader, StreamError> {
        // librdkafka assigns partitions only to a consumer with a group; this
        // one never joins it (no subscription) and never commits.
        let mut conf = conf.clone();
        conf.properties
            .entry("group.id".to_string())
            .or_insert_with(|| READER_GROUP.to_string());
        let consumer = conf.consumer("range reader", READER_DEFAULTS, READER_PROPERTIES)?;
        Ok(RangeReader { consumer, timeout })
    }

    /// Reads exactly the records of `range`.
    ///
    /// Errors: [`StreamError::KafkaRangeGone`] when retention removed some of
    /// its records; [`StreamError::KafkaOffsets`] when it ends past the log's
    /// end; [`StreamError::KafkaTimeout`] when the broker did not deliver it
    /// within the reader's timeout; [`StreamError::Kafka`] for other failures.
    pub fn read(&mut self, range: &OffsetRange) -> Result<RangeRead, StreamError> {
        let mut read = RangeRead {
            range: range.clone(),
            records: Vec::new(),
            malformed: Vec::new(),
            missing_offsets: 0,
        };
        if range.is_empty() {
            return Ok(read);
        }
        self.assign(range)?;
        let fetched = self.fetch(range, &mut read);
        if let Err(e) = self.consumer.unassign() {
            tracing::warn!(%range, error = %e, "unassign after reading a range");
        }
        fetched?;
        if !read.malformed.is_empty() {
            tracing::warn!(%range, malformed = read.malformed.len(), "records without a value");
        }
        Ok(read)
    }

    fn assign(&self, range: &OffsetRange) -> Result<(), StreamError> {
        let kafka = |source| StreamError::Kafka {
            what: format!("assign offset range {range}"),
            source,
        };
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(
            range.topic(),
            range.partition(),
            Offset::Offset(range.from_offset()),
        )
        .map_err(kafka)?;
        self.consumer.assign(&list).map_err(kafka)
    }

    /// Polls until every offset of `range` was passed, filling `read`.
    fn fetch(&self, range: &OffsetRange, read: &mut RangeRead) -> Result<(), StreamError> {
        let deadline = Instant::now() + self.timeout;
        let mut next = range.from_offset();
        let mut last_error: Option<KafkaError> = None;
        while next < range.until_offset() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timed_out(range, next, last_error));
            }
            match self.consumer.poll(left.min(POLL_STEP)) {
                // Only a position this read moved is trusted: before its first
                // record the client may still report an earlier read's.
                None if next > range.from_offset() => next = self.skip_gap(range, next, read),
                None => {}
                Some(Ok(message)) => {
                    let fetched = Fetched::from_message(&message);
                    next = take(range, next, fetched, read);
                }
                Some(Err(e)) if is_transient(&e) => {
                    tracing::debug!(%range, error = %e, "transient fetch error; still waiting");
                    last_error = Some(e);
                }
                Some(Err(e)) => return Err(self.fetch_failed(range, next, e)),
            }
        }
        Ok(())
    }

    /// Moves `next` to the partition's position when the client passed
    /// offsets that hold no record (compaction, transaction markers) without
    /// delivering anything; returns the new `next`.
    fn skip_gap(&self, range: &OffsetRange, next: i64, read: &mut RangeRead) -> i64 {
        let Some(position) = self.position(range) else {
            return next;
        };
        let to = position.min(range.until_offset());
        if to <= next {
            return next;
        }
        read.missing_offsets += (to - next) as u64;
        to
    }

    /// The partition's position (the offset after the last one the client
    /// passed, records or not), if the client knows it.
    fn position(&self, range: &OffsetRange) -> Option<i64> {
        let list = self.consumer.position().ok()?;
        let element = list.find_partition(range.topic(), range.partition())?;
        match element.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        }
    }

    /// Explains a failed fetch: a range out of the log is named as such.
    fn fetch_failed(&self, range: &OffsetRange, next: i64, source: KafkaError) -> StreamError {
        let out_of_range = matches!(
            source.rdkafka_error_code(),
            Some(RDKafkaErrorCode::AutoOffsetReset | RDKafkaErrorCode::OffsetOutOfRange)
        );
        if out_of_range && let Ok((log_start, log_end)) = self.watermarks(range) {
            if next < log_start {
                return StreamError::KafkaRangeGone {
                    range: range.clone(),
                    log_start,
                };
            }
            if range.until_offset() > log_end {
                return StreamError::KafkaOffsets {
                    topic: range.topic().to_string(),
                    partition: range.partition(),
                    reason: format!("offset range {range} ends past the log's end {log_end}"),
                };
            }
        }
        StreamError::Kafka {
            what: format!("read offset range {range} at offset {next}"),
            source,
        }
    }

    fn timed_out(&self, range: &OffsetRange, next: i64, last: Option<KafkaError>) -> StreamError {
        let log = match self.watermarks(range) {
            Ok((start, end)) => format!("the log holds [{start}, {end})"),
            Err(e) => format!("watermarks unknown: {e}"),
        };
        let last = last.map_or_else(|| "none".to_string(), |e| e.to_string());
        StreamError::KafkaTimeout {
            what: format!("read offset range {range}"),
            after: self.timeout,
            detail: format!("stuck at offset {next}; {log}; last client error: {last}"),
        }
    }

    fn watermarks(&self, range: &OffsetRange) -> Result<(i64, i64), KafkaError> {
        let limit = self.timeout.min(Duration::from_secs(10));
        self.consumer
            .fetch_watermarks(range.topic(), range.partition(), limit)
    }
}

/// Files one fetched message into `read`; returns the next offset wanted.
fn take(range: &OffsetRange, next: i64, fetched: Fetched, read: &mut RangeRead) -> i64 {
    let offset = fetched.offset();
    if offset < next {
        return next; // already passed: a message from before a seek
    }
    let until = range.until_offset();
    read.missing_offsets += (offset.min(until) - next) as u64;
    if offset >= until {
        return until;
    }
    match fetched {
        Fetched::Record(r) => read.records.push(r),
        Fetched::Malformed(m) => read.malformed.push(m),
    }
    offset + 1
}

/// Errors librdkafka recovers from by itself (it reconnects and retries):
/// the read waits on, up to its deadline.
pub(crate) fn is_transient(error: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        error.rdkafka_error_code(),
        Some(
            C::BrokerTransportFailure
                | C::AllBrokersDown
                | C::Resolve
                | C::OperationTimedOut
                | C::RequestTimedOut
                | C::NotLeaderForPartition
                | C::LeaderNotAvailable
                | C::NetworkException
                | C::CoordinatorLoadInProgress
                | C::NotCoordinator
        )
    )
}
