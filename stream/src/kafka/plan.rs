//! Planning a batch's offset ranges from where the stream is and where each
//! log ends: a pure function of its inputs, so the same offsets and the same
//! log bounds always give the same ranges.

use std::collections::BTreeMap;
use std::time::Duration;

use super::log_bounds::PartitionBounds;
use super::offset_range::OffsetRange;
use crate::error::StreamError;

/// Where a stream with no recorded offsets starts (Spark's `auto.offset.reset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartingOffsets {
    /// At each partition's first offset still in the log.
    Earliest,
    /// At each partition's end: only records produced from now on.
    Latest,
}

/// A batch's ranges, and where the batch after it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchPlan {
    /// One range per partition, by partition (empty ranges included).
    pub ranges: Vec<OffsetRange>,
    /// Each partition's `until_offset`.
    pub next_offsets: BTreeMap<i32, i64>,
}

/// The most records a batch takes from one partition: `max_rate_per_partition`
/// records/s times the batch interval, rounded down but at least 1 (Spark's
/// `minRatePerPartition`), or `None` (no limit) when the rate is 0.
pub fn max_records_per_partition(
    max_rate_per_partition: u64,
    batch_interval: Duration,
) -> Option<u64> {
    if max_rate_per_partition == 0 {
        return None;
    }
    let per_batch = u128::from(max_rate_per_partition) * batch_interval.as_millis() / 1000;
    Some(u64::try_from(per_batch).unwrap_or(u64::MAX).max(1))
}

/// Each partition's starting offset for a stream with none recorded.
pub fn starting_offsets(
    starting: StartingOffsets,
    bounds: &BTreeMap<i32, PartitionBounds>,
) -> BTreeMap<i32, i64> {
    bounds
        .iter()
        .map(|(&p, b)| match starting {
            StartingOffsets::Earliest => (p, b.log_start),
            StartingOffsets::Latest => (p, b.log_end),
        })
        .collect()
}

/// Plans the next batch of `topic`: every partition in `bounds` gets a range
/// from its next offset (or, for a partition not in `next`, a new one, from its
/// log start) to its log end, at most `max_records` long.
///
/// Errors when a partition in `next` is not in `bounds`, or `next` is past a
/// log's end: the topic was recreated or its log truncated, and going on would
/// skip or repeat records silently.
pub fn plan_ranges(
    topic: &str,
    next: &BTreeMap<i32, i64>,
    bounds: &BTreeMap<i32, PartitionBounds>,
    max_records: Option<u64>,
) -> Result<BatchPlan, StreamError> {
    if let Some((&partition, _)) = next.iter().find(|(p, _)| !bounds.contains_key(p)) {
        return Err(offsets_error(
            topic,
            partition,
            "the partition is gone from the topic".into(),
        ));
    }
    let mut ranges = Vec::with_capacity(bounds.len());
    for (&partition, b) in bounds {
        let from = match next.get(&partition) {
            Some(&at) => at,
            None => {
                tracing::info!(topic, partition, from = b.log_start, "new partition");
                b.log_start
            }
        };
        ranges.push(plan_one(topic, partition, from, b, max_records)?);
    }
    let next_offsets = OffsetRange::next_offsets(&ranges);
    Ok(BatchPlan {
        ranges,
        next_offsets,
    })
}

fn plan_one(
    topic: &str,
    partition: i32,
    from: i64,
    bounds: &PartitionBounds,
    max_records: Option<u64>,
) -> Result<OffsetRange, StreamError> {
    if from > bounds.log_end {
        return Err(offsets_error(
            topic,
            partition,
            format!(
                "the stream is at offset {from}, past the log's end {} (topic recreated or log truncated)",
                bounds.log_end
            ),
        ));
    }
    let until = match max_records {
        Some(max) => bounds
            .log_end
            .min(from.saturating_add(i64::try_from(max).unwrap_or(i64::MAX))),
        None => bounds.log_end,
    };
    OffsetRange::new(topic, partition, from, until)
}

fn offsets_error(topic: &str, partition: i32, reason: String) -> StreamError {
    StreamError::KafkaOffsets {
        topic: topic.to_string(),
        partition,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(list: &[(i32, i64, i64)]) -> BTreeMap<i32, PartitionBounds> {
        list.iter()
            .map(|&(p, log_start, log_end)| (p, PartitionBounds { log_start, log_end }))
            .collect()
    }

    fn spans(plan: &BatchPlan) -> Vec<(i32, i64, i64)> {
        plan.ranges
            .iter()
            .map(|r| (r.partition(), r.from_offset(), r.until_offset()))
            .collect()
    }

    #[test]
    fn rate_limit_is_rate_times_interval_at_least_one() {
        let limit = max_records_per_partition;
        assert_eq!(limit(0, Duration::from_secs(5)), None);
        assert_eq!(limit(100, Duration::from_secs(2)), Some(200));
        assert_eq!(limit(10, Duration::from_millis(250)), Some(2));
        assert_eq!(limit(1, Duration::from_millis(200)), Some(1));
        assert_eq!(limit(u64::MAX, Duration::from_secs(1_000)), Some(u64::MAX));
    }

    #[test]
    fn starting_offsets_follow_the_reset_policy() {
        let b = bounds(&[(0, 5, 10), (1, 0, 3)]);
        let earliest = starting_offsets(StartingOffsets::Earliest, &b);
        assert_eq!(earliest, BTreeMap::from([(0, 5), (1, 0)]));
        let latest = starting_offsets(StartingOffsets::Latest, &b);
        assert_eq!(latest, BTreeMap::from([(0, 10), (1, 3)]));
    }

    #[test]
    fn ranges_run_from_next_to_the_log_end_capped_by_the_limit() {
        let b = bounds(&[(0, 0, 100), (1, 0, 7), (2, 40, 50)]);
        let next = BTreeMap::from([(0, 10), (1, 7)]);
        let plan = plan_ranges("t", &next, &b, Some(30)).expect("plan");
        // Partition 2 is new: it starts at its log start.
        assert_eq!(spans(&plan), vec![(0, 10, 40), (1, 7, 7), (2, 40, 50)]);
        assert_eq!(
            plan.next_offsets,
            BTreeMap::from([(0, 40), (1, 7), (2, 50)])
        );
        let unlimited = plan_ranges("t", &next, &b, None).expect("plan");
        assert_eq!(
            spans(&unlimited),
            vec![(0, 10, 100), (1, 7, 7), (2, 40, 50)]
        );
        // The same inputs give the same plan.
        assert_eq!(plan_ranges("t", &next, &b, Some(30)).expect("again"), plan);
    }

    #[test]
    fn a_vanished_partition_or_offsets_past_the_end_are_errors() {
        let b = bounds(&[(0, 0, 10)]);
        let gone = plan_ranges("t", &BTreeMap::from([(0, 1), (1, 0)]), &b, None);
        assert!(matches!(
            gone,
            Err(StreamError::KafkaOffsets { partition: 1, .. })
        ));
        let past = plan_ranges("t", &BTreeMap::from([(0, 11)]), &b, None);
        let err = past.expect_err("past the end");
        assert!(err.to_string().contains("past the log's end 10"), "{err}");
    }
}
