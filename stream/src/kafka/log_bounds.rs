//! Where each partition's log starts and ends, as the broker reports it now.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

use super::client::KafkaClientConf;
use crate::error::StreamError;

/// One partition's log: offsets `log_start..log_end` are in it now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionBounds {
    /// The first offset still in the log (the low watermark; retention moves it).
    pub log_start: i64,
    /// The offset the next record will get (the high watermark).
    pub log_end: i64,
}

/// Reports every partition of a topic with its bounds. The planner asks
/// through this trait so that its logic runs without a broker in unit tests.
pub trait LogBounds {
    /// Every partition of `topic`, with its bounds.
    fn partition_bounds(&self, topic: &str) -> Result<BTreeMap<i32, PartitionBounds>, StreamError>;
}

/// Asks the brokers: metadata for the partitions, then each one's watermarks.
pub struct BrokerBounds {
    consumer: BaseConsumer,
    timeout: Duration,
}

impl BrokerBounds {
    /// A client for the brokers in `conf`; each request may take `timeout`.
    pub fn connect(conf: &KafkaClientConf, timeout: Duration) -> Result<BrokerBounds, StreamError> {
        // No group: this client only asks for metadata and watermarks.
        let consumer = conf.consumer("offset client", &[], &[("enable.auto.commit", "false")])?;
        Ok(BrokerBounds { consumer, timeout })
    }

    fn partitions(&self, topic: &str) -> Result<Vec<i32>, StreamError> {
        let metadata = self
            .consumer
            .fetch_metadata(Some(topic), self.timeout)
            .map_err(|source| StreamError::Kafka {
                what: format!("fetch the metadata of topic {topic}"),
                source,
            })?;
        let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
            return Err(missing_topic(
                topic,
                "absent from the broker's metadata".into(),
            ));
        };
        if let Some(error) = found.error() {
            let code = rdkafka::types::RDKafkaErrorCode::from(error);
            return Err(missing_topic(topic, code.to_string()));
        }
        Ok(found.partitions().iter().map(|p| p.id()).collect())
    }
}

impl LogBounds for BrokerBounds {
    fn partition_bounds(&self, topic: &str) -> Result<BTreeMap<i32, PartitionBounds>, StreamError> {
        let mut bounds = BTreeMap::new();
        for partition in self.partitions(topic)? {
            let (log_start, log_end) = self
                .consumer
                .fetch_watermarks(topic, partition, self.timeout)
                .map_err(|source| StreamError::Kafka {
                    what: format!("fetch the watermarks of {topic}-{partition}"),
                    source,
                })?;
            bounds.insert(partition, PartitionBounds { log_start, log_end });
        }
        tracing::debug!(topic, ?bounds, "partition bounds");
        Ok(bounds)
    }
}

fn missing_topic(topic: &str, reason: String) -> StreamError {
    StreamError::KafkaTopic {
        topic: topic.to_string(),
        reason,
    }
}
