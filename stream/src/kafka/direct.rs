//! The driver side of a direct Kafka stream (Spark's `DirectKafkaInputDStream`):
//! no receiver; each batch is a set of offset ranges the driver plans and
//! executors read.
//!
//! The planner's whole state is each partition's next offset. Its `until`
//! offsets are what a checkpoint records (as the batch's ranges), and
//! [`DirectPlanner::resume`] from them continues exactly where the last
//! planned batch ended: no gap, no overlap. Re-planning a batch is only
//! deterministic for the same log bounds, so a recovered driver must re-run a
//! pending batch from the ranges its checkpoint holds, not plan it again (as
//! Spark does).

use std::collections::BTreeMap;
use std::time::Duration;

use super::log_bounds::LogBounds;
use super::offset_range::{OffsetRange, check_topic};
use super::plan::{StartingOffsets, max_records_per_partition, plan_ranges, starting_offsets};
use crate::error::StreamError;

/// What a direct stream reads and how fast.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectConf {
    /// The topic.
    pub topic: String,
    /// Where a stream with no recorded offsets starts.
    pub starting: StartingOffsets,
    /// Records per second per partition at most (Spark's
    /// `spark.streaming.kafka.maxRatePerPartition`); 0 = no limit.
    pub max_rate_per_partition: u64,
    /// The batch interval, which turns the rate into records per batch.
    pub batch_interval: Duration,
}

/// Plans a direct stream's batches.
#[derive(Clone, Debug)]
pub struct DirectPlanner {
    conf: DirectConf,
    next: BTreeMap<i32, i64>,
}

impl DirectPlanner {
    /// A stream with no recorded offsets: each partition starts where
    /// `conf.starting` says, as the broker reports the logs now.
    pub fn start(conf: DirectConf, log: &impl LogBounds) -> Result<DirectPlanner, StreamError> {
        check_conf(&conf)?;
        let next = starting_offsets(conf.starting, &log.partition_bounds(&conf.topic)?);
        tracing::info!(topic = conf.topic, starting = ?conf.starting, ?next, "direct stream starts");
        Ok(DirectPlanner { conf, next })
    }

    /// A stream that continues from `next_offsets` (from a checkpoint: the
    /// `until` offsets of its last batch, see [`OffsetRange::next_offsets`]).
    /// Partitions not in it are new, and start at their log start.
    pub fn resume(
        conf: DirectConf,
        next_offsets: BTreeMap<i32, i64>,
    ) -> Result<DirectPlanner, StreamError> {
        check_conf(&conf)?;
        if let Some((&partition, &offset)) = next_offsets.iter().find(|&(&p, &o)| p < 0 || o < 0) {
            return Err(StreamError::KafkaOffsets {
                topic: conf.topic,
                partition,
                reason: format!("a recorded offset {offset} cannot be resumed from"),
            });
        }
        Ok(DirectPlanner {
            conf,
            next: next_offsets,
        })
    }

    /// Plans the next batch from the log's bounds now, and moves on past it.
    /// On error nothing moves.
    pub fn plan_next(&mut self, log: &impl LogBounds) -> Result<Vec<OffsetRange>, StreamError> {
        let bounds = log.partition_bounds(&self.conf.topic)?;
        let limit =
            max_records_per_partition(self.conf.max_rate_per_partition, self.conf.batch_interval);
        let plan = plan_ranges(&self.conf.topic, &self.next, &bounds, limit)?;
        tracing::debug!(ranges = ?plan.ranges, "planned a batch");
        self.next = plan.next_offsets;
        Ok(plan.ranges)
    }

    /// Each partition's next offset: where the next batch starts.
    pub fn next_offsets(&self) -> &BTreeMap<i32, i64> {
        &self.next
    }

    /// The settings.
    pub fn conf(&self) -> &DirectConf {
        &self.conf
    }
}

fn check_conf(conf: &DirectConf) -> Result<(), StreamError> {
    check_topic(&conf.topic).map_err(|e| StreamError::InvalidSetting {
        name: "topic",
        reason: e.to_string(),
    })?;
    if conf.max_rate_per_partition > 0 && conf.batch_interval.is_zero() {
        return Err(StreamError::InvalidSetting {
            name: "batch_interval",
            reason: "zero, with a rate limit that needs it".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::log_bounds::PartitionBounds;
    use std::cell::RefCell;

    /// Log bounds a test sets by hand.
    struct FakeLog(RefCell<BTreeMap<i32, PartitionBounds>>);

    impl LogBounds for FakeLog {
        fn partition_bounds(&self, _: &str) -> Result<BTreeMap<i32, PartitionBounds>, StreamError> {
            Ok(self.0.borrow().clone())
        }
    }

    fn conf(starting: StartingOffsets, rate: u64) -> DirectConf {
        DirectConf {
            topic: "t".into(),
            starting,
            max_rate_per_partition: rate,
            batch_interval: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_resumed_planner_continues_where_the_first_stopped() {
        let log = FakeLog(RefCell::new(BTreeMap::from([(
            0,
            PartitionBounds {
                log_start: 0,
                log_end: 25,
            },
        )])));
        let mut first =
            DirectPlanner::start(conf(StartingOffsets::Earliest, 10), &log).expect("start");
        let a = first.plan_next(&log).expect("plan");
        let mut resumed = DirectPlanner::resume(
            conf(StartingOffsets::Latest, 10),
            OffsetRange::next_offsets(&a),
        )
        .expect("resume");
        let b = resumed.plan_next(&log).expect("plan");
        let c = resumed.plan_next(&log).expect("plan");
        let spans: Vec<_> = [a, b, c]
            .iter()
            .map(|r| (r[0].from_offset(), r[0].until_offset()))
            .collect();
        assert_eq!(spans, vec![(0, 10), (10, 20), (20, 25)]);
    }

    #[test]
    fn a_failed_plan_moves_nothing() {
        let log = FakeLog(RefCell::new(BTreeMap::from([(
            0,
            PartitionBounds {
                log_start: 0,
                log_end: 5,
            },
        )])));
        let mut planner =
            DirectPlanner::resume(conf(StartingOffsets::Earliest, 0), BTreeMap::from([(0, 9)]))
                .expect("resume");
        assert!(planner.plan_next(&log).is_err());
        assert_eq!(planner.next_offsets(), &BTreeMap::from([(0, 9)]));
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut c = conf(StartingOffsets::Earliest, 5);
        c.batch_interval = Duration::ZERO;
        assert!(DirectPlanner::resume(c, BTreeMap::new()).is_err());
        let mut c = conf(StartingOffsets::Earliest, 0);
        c.topic = "no spaces".into();
        assert!(DirectPlanner::resume(c, BTreeMap::new()).is_err());
        let negative = BTreeMap::from([(0, -1)]);
        assert!(DirectPlanner::resume(conf(StartingOffsets::Earliest, 0), negative).is_err());
    }
}
