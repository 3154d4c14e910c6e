//! An offset range: the records of one Kafka partition a batch takes (Spark's
//! `OffsetRange`). The driver plans ranges; executors read exactly them; the
//! checkpoint keeps them, so a recovered batch reads the same records again.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::StreamError;

/// Kafka's limit on a topic name's length.
pub const MAX_TOPIC_LEN: usize = 249;

/// Offsets `from_offset` (inclusive) to `until_offset` (exclusive) of one
/// partition of one topic.
///
/// Always valid: a legal Kafka topic name, a partition and offsets that are not
/// negative, and `from_offset <= until_offset` (equal means no records).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OffsetRange {
    topic: String,
    partition: i32,
    from_offset: i64,
    until_offset: i64,
}

impl OffsetRange {
    /// A range, checked: see the type's invariants.
    pub fn new(
        topic: impl Into<String>,
        partition: i32,
        from_offset: i64,
        until_offset: i64,
    ) -> Result<OffsetRange, StreamError> {
        let topic = topic.into();
        check_topic(&topic)?;
        if partition < 0 {
            return Err(invalid(format!("partition {partition} is negative")));
        }
        if from_offset < 0 || until_offset < from_offset {
            return Err(invalid(format!(
                "offsets [{from_offset}, {until_offset}) of {topic}-{partition} are not a range"
            )));
        }
        Ok(OffsetRange {
            topic,
            partition,
            from_offset,
            until_offset,
        })
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The first offset of the range.
    pub fn from_offset(&self) -> i64 {
        self.from_offset
    }

    /// The offset after the range's last one: where the next batch starts.
    pub fn until_offset(&self) -> i64 {
        self.until_offset
    }

    /// Offsets in the range (records, unless the log has gaps: compaction,
    /// transaction markers).
    pub fn count(&self) -> u64 {
        self.until_offset.abs_diff(self.from_offset)
    }

    /// True when the range holds no offsets.
    pub fn is_empty(&self) -> bool {
        self.from_offset == self.until_offset
    }

    /// Where a planner continues after `ranges`: each partition's `until_offset`
    /// (the largest, should a partition appear twice).
    pub fn next_offsets(ranges: &[OffsetRange]) -> BTreeMap<i32, i64> {
        let mut next = BTreeMap::new();
        for r in ranges {
            let at = next.entry(r.partition).or_insert(r.until_offset);
            *at = (*at).max(r.until_offset);
        }
        next
    }
}

impl fmt::Display for OffsetRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{} [{}, {})",
            self.topic, self.partition, self.from_offset, self.until_offset
        )
    }
}

/// Checks a topic name as Kafka does: 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub(crate) fn check_topic(topic: &str) -> Result<(), StreamError> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if topic.is_empty() || topic.len() > MAX_TOPIC_LEN {
        return Err(invalid(format!(
            "topic name of {} bytes (1 to {MAX_TOPIC_LEN} allowed)",
            topic.len()
        )));
    }
    if !topic.chars().all(legal) || topic == "." || topic == ".." {
        return Err(invalid(format!("illegal topic name {topic:?}")));
    }
    Ok(())
}

fn invalid(reason: String) -> StreamError {
    StreamError::BadInput {
        source_name: "offset range".to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_ranges_are_refused() {
        assert!(OffsetRange::new("t", 0, 5, 5).is_ok());
        assert!(OffsetRange::new("t", -1, 0, 1).is_err());
        assert!(OffsetRange::new("t", 0, -1, 1).is_err());
        assert!(OffsetRange::new("t", 0, 6, 5).is_err());
        assert!(OffsetRange::new("", 0, 0, 1).is_err());
        assert!(OffsetRange::new("a b", 0, 0, 1).is_err());
        assert!(OffsetRange::new("..", 0, 0, 1).is_err());
        assert!(OffsetRange::new("x".repeat(250), 0, 0, 1).is_err());
        assert!(OffsetRange::new("x".repeat(249), 0, 0, 1).is_ok());
    }

    #[test]
    fn next_offsets_are_the_ranges_ends() {
        let ranges = [
            OffsetRange::new("t", 1, 0, 7).expect("range"),
            OffsetRange::new("t", 0, 3, 3).expect("range"),
        ];
        let next = OffsetRange::next_offsets(&ranges);
        assert_eq!(next, BTreeMap::from([(0, 3), (1, 7)]));
        assert_eq!(ranges[0].to_string(), "t-1 [0, 7)");
        assert_eq!((ranges[0].count(), ranges[1].is_empty()), (7, true));
    }
}
