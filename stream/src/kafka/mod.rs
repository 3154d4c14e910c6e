//! Kafka sources, in Spark Streaming's two ways.
//!
//! **Direct** (Spark's `DirectKafkaInputDStream` and `KafkaRDD`): no receiver.
//! For each batch the driver's [`DirectPlanner`] asks the brokers where each
//! partition's log ends and plans one [`OffsetRange`] per partition (capped by
//! `max_rate_per_partition`); executors read exactly those ranges with a
//! [`RangeReader`]. The ranges travel and rest in a compact binary form
//! ([`encode_offset_ranges`]). Receipt is **exactly-once** when the ranges of
//! every pending batch are in the driver's checkpoint: a recovered driver
//! resumes from their `until` offsets and re-reads the same ranges, which hold
//! the same records as long as retention keeps them (otherwise reading fails
//! with [`StreamError::KafkaRangeGone`](crate::StreamError::KafkaRangeGone)).
//! Outputs remain at-least-once unless written idempotently or transactionally.
//!
//! **Reliable receiver** (Spark's `ReliableKafkaReceiver`): a consumer group's
//! member, [`KafkaBlockSource`], hands out blocks and commits the group's
//! offsets only after the caller stored the block: **at-least-once**, with
//! duplicates after a crash between store and commit.
//!
//! Every client here is a blocking librdkafka consumer (no async runtime).

mod block_source;
mod client;
mod direct;
mod encoding;
mod log_bounds;
mod offset_range;
mod plan;
mod reader;
mod receiver;
mod record;

pub use block_source::{KafkaBlock, KafkaBlockSource, SourceConf};
pub use client::KafkaClientConf;
pub use direct::{DirectConf, DirectPlanner};
pub use encoding::{
    OFFSET_RANGE_FORMAT, decode_offset_range, decode_offset_ranges, encode_offset_range,
    encode_offset_ranges,
};
pub use log_bounds::{BrokerBounds, LogBounds, PartitionBounds};
pub use offset_range::{MAX_TOPIC_LEN, OffsetRange};
pub use plan::{
    BatchPlan, StartingOffsets, max_records_per_partition, plan_ranges, starting_offsets,
};
pub use reader::{DEFAULT_READ_TIMEOUT, READER_GROUP, RangeRead, RangeReader};
pub use receiver::KafkaReceiver;
pub use record::{KafkaRecord, MalformedRecord};
