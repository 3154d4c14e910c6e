//! What a reliable Kafka receiver builds on (Spark's `ReliableKafkaReceiver`):
//! a consumer-group member that hands out records in blocks and commits the
//! group's offsets for a block only once the caller says the block is stored.
//!
//! Guarantees, for one topic and one group:
//! - **Nothing committed was unstored.** [`KafkaBlockSource::commit`] commits
//!   offsets only up to the end of the block given, and refuses a block while
//!   an older non-empty block is uncommitted, so a block that failed to store
//!   holds every later commit back. Call `commit` only after the block handler
//!   returned `Ok`.
//! - **At-least-once.** Records fetched but not committed (not stored yet, or
//!   stored and the process died before the commit) are delivered again to the
//!   group's next member for their partition, from the last committed offset:
//!   duplicates are possible, losses are not. A block that cannot be stored
//!   must not be skipped: drop the source and open a new one, which re-reads
//!   from the committed offsets (exactly what happens after a crash).
//! - A partition revoked by a rebalance is not committed by the block that
//!   still holds its records; its new owner reads them again (duplicates).
//! - Records without a value are reported in [`KafkaBlock::malformed`]; their
//!   offsets are committed with the block, so they are skipped, not retried.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::client::KafkaClientConf;
use super::offset_range::check_topic;
use super::plan::StartingOffsets;
use super::reader::is_transient;
use super::record::{Fetched, KafkaRecord, MalformedRecord};
use crate::error::StreamError;

/// The longest single poll, so the block's deadline is looked at often.
const POLL_STEP: Duration = Duration::from_millis(200);

/// What a reliable source consumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceConf {
    /// The topic.
    pub topic: String,
    /// The consumer group whose committed offsets record what is stored.
    pub group_id: String,
    /// Where a group with no committed offset for a partition starts.
    pub starting: StartingOffsets,
}

/// Records handed out together, to be stored as one block and then committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaBlock {
    seq: u64,
    /// The records with a value, per partition in offset order.
    pub records: Vec<KafkaRecord>,
    /// The records without one; committed with the block.
    pub malformed: Vec<MalformedRecord>,
    next_offsets: BTreeMap<i32, i64>,
}

impl KafkaBlock {
    /// The block's number in its source (empty blocks share the next one's).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// True when nothing was fetched.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.malformed.is_empty()
    }

    /// The offsets its commit records: per partition, the offset after its last record.
    pub fn next_offsets(&self) -> &BTreeMap<i32, i64> {
        &self.next_offsets
    }

    /// The records' values, in order (what a block handler stores).
    pub fn values(&self) -> Vec<Bytes> {
        self.records.iter().map(|r| r.value.clone()).collect()
    }

    fn push(&mut self, fetched: Fetched) {
        let (partition, offset) = match &fetched {
            Fetched::Record(r) => (r.partition, r.offset),
            Fetched::Malformed(m) => (m.partition, m.offset),
        };
        let next = self.next_offsets.entry(partition).or_insert(offset + 1);
        *next = (*next).max(offset + 1);
        match fetched {
            Fetched::Record(r) => self.records.push(r),
            Fetched::Malformed(m) => self.malformed.push(m),
        }
    }
}

/// A consumer-group member handing out blocks; see the module's guarantees.
pub struct KafkaBlockSource {
    consumer: BaseConsumer,
    conf: SourceConf,
    next_seq: u64,
    /// Non-empty blocks handed out and not committed, oldest first.
    uncommitted: VecDeque<u64>,
    /// What this source committed, per partition.
    committed: BTreeMap<i32, i64>,
}

impl KafkaBlockSource {
    /// Joins `conf.group_id` and subscribes to `conf.topic`. Auto-commit is
    /// off whatever `client` says; the group is joined on the first
    /// [`next_block`](Self::next_block).
    pub fn subscribe(
        client: &KafkaClientConf,
        conf: SourceConf,
    ) -> Result<KafkaBlockSource, StreamError> {
        check_topic(&conf.topic).map_err(|e| StreamError::InvalidSetting {
            name: "topic",
            reason: e.to_string(),
        })?;
        let reset = match conf.starting {
            StartingOffsets::Earliest => "earliest",
            StartingOffsets::Latest => "latest",
        };
        let forced = [
            ("group.id", conf.group_id.as_str()),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", reset),
            ("enable.partition.eof", "false"),
        ];
        let consumer = client.consumer("block source", &[], &forced)?;
        consumer
            .subscribe(&[conf.topic.as_str()])
            .map_err(|source| StreamError::Kafka {
                what: format!("subscribe group {} to topic {}", conf.group_id, conf.topic),
                source,
            })?;
        Ok(KafkaBlockSource {
            consumer,
            conf,
            next_seq: 0,
            uncommitted: VecDeque::new(),
            committed: BTreeMap::new(),
        })
    }

    /// Fetches up to `max_records` records, waiting at most `max_wait` for
    /// them; the block may be empty. An error after some records were fetched
    /// ends the block early (the records are handed out, the error is logged
    /// and comes back on the next call if it lasts), so no fetched record is
    /// ever dropped.
    pub fn next_block(
        &mut self,
        max_records: usize,
        max_wait: Duration,
    ) -> Result<KafkaBlock, StreamError> {
        let deadline = Instant::now() + max_wait;
        let mut block = KafkaBlock {
            seq: self.next_seq,
            records: Vec::new(),
            malformed: Vec::new(),
            next_offsets: BTreeMap::new(),
        };
        while block.records.len() + block.malformed.len() < max_records {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.consumer.poll(left.min(POLL_STEP)) {
                None => {}
                Some(Ok(message)) => block.push(Fetched::from_message(&message)),
                Some(Err(e)) if is_transient(&e) => {
                    tracing::debug!(topic = self.conf.topic, error = %e, "transient consumer error");
                }
                Some(Err(e)) if !block.is_empty() => {
                    tracing::warn!(topic = self.conf.topic, error = %e, "block ended early by an error");
                    break;
                }
                Some(Err(source)) => {
                    return Err(StreamError::Kafka {
                        what: format!(
                            "poll group {} on topic {}",
                            self.conf.group_id, self.conf.topic
                        ),
                        source,
                    });
                }
            }
        }
        if !block.is_empty() {
            self.uncommitted.push_back(block.seq);
            self.next_seq += 1;
        }
        Ok(block)
    }

    /// Commits the group's offsets past `block`, synchronously; call it only
    /// once the block is stored. Blocks must be committed in the order they
    /// were handed out ([`StreamError::KafkaCommitOrder`] otherwise); an empty
    /// block or one already committed is a no-op. On error the block stays
    /// uncommitted and the commit may be retried.
    pub fn commit(&mut self, block: &KafkaBlock) -> Result<(), StreamError> {
        match self.uncommitted.front() {
            _ if block.is_empty() => return Ok(()),
            Some(&oldest) if oldest == block.seq => {}
            Some(&oldest) if block.seq > oldest => {
                return Err(StreamError::KafkaCommitOrder {
                    block: block.seq,
                    oldest,
                });
            }
            _ => return Ok(()), // committed before
        }
        let offsets = self.offsets_to_commit(block)?;
        if offsets.count() > 0 {
            self.consumer
                .commit(&offsets, CommitMode::Sync)
                .map_err(|source| StreamError::Kafka {
                    what: format!(
                        "commit block {} of group {} on topic {}",
                        block.seq, self.conf.group_id, self.conf.topic
                    ),
                    source,
                })?;
        }
        for element in offsets.elements() {
            if let Offset::Offset(o) = element.offset() {
                self.committed.insert(element.partition(), o);
            }
        }
        self.uncommitted.pop_front();
        tracing::debug!(block = block.seq, offsets = ?block.next_offsets, "committed");
        Ok(())
    }

    /// The offsets this source committed, per partition.
    pub fn committed(&self) -> &BTreeMap<i32, i64> {
        &self.committed
    }

    /// The block's offsets, for partitions still assigned here and past what
    /// this source committed before.
    fn offsets_to_commit(&self, block: &KafkaBlock) -> Result<TopicPartitionList, StreamError> {
        let topic = self.conf.topic.as_str();
        let kafka = |what: &str| {
            let what = format!("{what} for block {} on topic {topic}", block.seq);
            move |source| StreamError::Kafka { what, source }
        };
        let assigned = self
            .consumer
            .assignment()
            .map_err(kafka("read the assignment"))?;
        let mut list = TopicPartitionList::new();
        for (&partition, &next) in &block.next_offsets {
            if assigned.find_partition(topic, partition).is_none() {
                tracing::info!(
                    topic,
                    partition,
                    "revoked before its commit; its new owner re-reads it"
                );
                continue;
            }
            if self.committed.get(&partition).is_some_and(|&c| c >= next) {
                continue;
            }
            list.add_partition_offset(topic, partition, Offset::Offset(next))
                .map_err(kafka("list offsets"))?;
        }
        Ok(list)
    }
}
