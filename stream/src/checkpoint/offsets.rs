//! Where each direct (offset-based) stream goes on reading: per stream, the
//! next offset of each topic partition, as of the last completed batch.
//!
//! Spark's direct Kafka stream keeps its batches' offset ranges in the
//! checkpoint; a restarted driver reads on from them, which is what makes
//! receipt exactly-once. Here the checkpoint keeps the end of the last
//! completed batch's ranges: the next batch starts there.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A topic partition.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
}

impl TopicPartition {
    /// `topic`'s `partition`.
    pub fn new(topic: impl Into<String>, partition: u32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Next offsets per direct stream (by the stream's name in the graph) and
/// topic partition. Offsets are the next to read, never negative.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceOffsets(BTreeMap<String, BTreeMap<TopicPartition, u64>>);

impl SourceOffsets {
    /// No offsets.
    pub fn new() -> SourceOffsets {
        SourceOffsets::default()
    }

    /// Sets the next offset of `partition` of `stream`.
    pub fn set(&mut self, stream: &str, partition: TopicPartition, next: u64) {
        self.0
            .entry(stream.to_string())
            .or_default()
            .insert(partition, next);
    }

    /// The next offset of `partition` of `stream`.
    pub fn get(&self, stream: &str, partition: &TopicPartition) -> Option<u64> {
        self.0.get(stream)?.get(partition).copied()
    }

    /// The next offsets of one stream.
    pub fn stream(&self, stream: &str) -> Option<&BTreeMap<TopicPartition, u64>> {
        self.0.get(stream)
    }

    /// The streams that have offsets.
    pub fn streams(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Drops a stream's offsets, returning whether it had any.
    pub fn remove_stream(&mut self, stream: &str) -> bool {
        self.0.remove(stream).is_some()
    }

    /// The encoded form: per stream, a list sorted by topic and partition.
    pub(crate) fn to_wire(&self) -> BTreeMap<String, Vec<WireOffset>> {
        self.0
            .iter()
            .map(|(stream, parts)| {
                let list = parts
                    .iter()
                    .map(|(tp, next)| WireOffset {
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        next: *next,
                    })
                    .collect();
                (stream.clone(), list)
            })
            .collect()
    }

    /// Back from the encoded form; a partition listed twice is an error.
    pub(crate) fn from_wire(
        wire: BTreeMap<String, Vec<WireOffset>>,
    ) -> Result<SourceOffsets, String> {
        let mut out = SourceOffsets::new();
        for (stream, list) in wire {
            for o in list {
                let tp = TopicPartition::new(o.topic, o.partition);
                if out.get(&stream, &tp).is_some() {
                    return Err(format!("stream {stream:?} lists partition {tp} twice"));
                }
                out.set(&stream, tp, o.next);
            }
        }
        Ok(out)
    }
}

/// One offset as encoded in the checkpoint's metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WireOffset {
    pub topic: String,
    pub partition: u32,
    pub next: u64,
}
