//! A Kafka record as the stream layer keeps it: owned bytes, its place in the
//! log, and, for records the stream cannot use, why.

use bytes::Bytes;
use rdkafka::Message;
use rdkafka::message::BorrowedMessage;

/// A record read from a partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaRecord {
    /// Its partition.
    pub partition: i32,
    /// Its offset in that partition.
    pub offset: i64,
    /// Its key, when it has one.
    pub key: Option<Bytes>,
    /// Its value.
    pub value: Bytes,
    /// Its timestamp (ms since the Unix epoch), when the broker has one.
    pub timestamp_ms: Option<i64>,
}

/// A record that was read but cannot be used; its offset still counts as consumed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MalformedRecord {
    /// Its partition.
    pub partition: i32,
    /// Its offset in that partition.
    pub offset: i64,
    /// Why it cannot be used.
    pub reason: &'static str,
}

/// A fetched message, sorted into a usable record or a malformed one.
pub(crate) enum Fetched {
    Record(KafkaRecord),
    Malformed(MalformedRecord),
}

impl Fetched {
    /// Copies `message` out of the client's buffers.
    pub(crate) fn from_message(message: &BorrowedMessage<'_>) -> Fetched {
        let (partition, offset) = (message.partition(), message.offset());
        match message.payload() {
            Some(value) => Fetched::Record(KafkaRecord {
                partition,
                offset,
                key: message.key().map(Bytes::copy_from_slice),
                value: Bytes::copy_from_slice(value),
                timestamp_ms: message.timestamp().to_millis(),
            }),
            None => Fetched::Malformed(MalformedRecord {
                partition,
                offset,
                reason: "no value (a null payload, e.g. a tombstone)",
            }),
        }
    }

    /// The fetched message's offset.
    pub(crate) fn offset(&self) -> i64 {
        match self {
            Fetched::Record(r) => r.offset,
            Fetched::Malformed(m) => m.offset,
        }
    }
}
