//! The direct Kafka stream against a real broker: planning offset ranges
//! (earliest, latest, rate-limited, new partitions), reading exactly a range's
//! records, continuing across a restart from checkpointed ranges, and the
//! errors for ranges the log no longer (or does not yet) hold.

mod kafka_support;

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_support::{
    Produced, TIMEOUT, add_partitions, by_place, client, delete_records_before, produce, records,
    topic, wait_for,
};
use tidemark_stream::StreamError;
use tidemark_stream::kafka::{
    BrokerBounds, DirectConf, DirectPlanner, LogBounds, OffsetRange, RangeReader, StartingOffsets,
    decode_offset_ranges, encode_offset_ranges,
};

fn bounds() -> BrokerBounds {
    BrokerBounds::connect(&client(), TIMEOUT).expect("offset client")
}

fn reader() -> RangeReader {
    RangeReader::connect(&client(), TIMEOUT).expect("range reader")
}

fn conf(topic: &str, starting: StartingOffsets, rate: u64) -> DirectConf {
    DirectConf {
        topic: topic.to_string(),
        starting,
        max_rate_per_partition: rate,
        batch_interval: Duration::from_secs(2),
    }
}

/// (partition, from, until) of each range.
fn spans(ranges: &[OffsetRange]) -> Vec<(i32, i64, i64)> {
    ranges
        .iter()
        .map(|r| (r.partition(), r.from_offset(), r.until_offset()))
        .collect()
}

/// Reads `ranges` and checks every record against what was produced there;
/// returns the records read, by (partition, offset).
fn read_and_check(
    reader: &mut RangeReader,
    ranges: &[OffsetRange],
    produced: &BTreeMap<(i32, i64), Produced>,
) -> Vec<(i32, i64)> {
    let mut places = Vec::new();
    for range in ranges {
        let read = reader.read(range).expect("read range");
        assert_eq!(
            (read.malformed.len(), read.missing_offsets),
            (0, 0),
            "{range}"
        );
        assert_eq!(read.records.len() as u64, range.count(), "{range}");
        for (record, offset) in read.records.iter().zip(range.from_offset()..) {
            let want = &produced[&(range.partition(), offset)];
            assert!(
                want.matches(record),
                "{range}: read {record:?}, produced {want:?}"
            );
            places.push((record.partition, record.offset));
        }
    }
    places
}

#[test]
fn planning_from_earliest_takes_the_whole_log_and_from_latest_only_what_comes_after() {
    let topic = topic("direct-start", 2);
    produce(&topic, &records("before", 2, 10));
    let log = bounds();
    let mut earliest =
        DirectPlanner::start(conf(&topic, StartingOffsets::Earliest, 0), &log).expect("start");
    let mut latest =
        DirectPlanner::start(conf(&topic, StartingOffsets::Latest, 0), &log).expect("start");
    assert_eq!(
        spans(&earliest.plan_next(&log).expect("plan")),
        vec![(0, 0, 10), (1, 0, 10)]
    );
    assert_eq!(
        spans(&latest.plan_next(&log).expect("plan")),
        vec![(0, 10, 10), (1, 10, 10)]
    );

    produce(&topic, &records("after", 2, 5));
    let want = vec![(0, 10, 15), (1, 10, 15)];
    assert_eq!(spans(&earliest.plan_next(&log).expect("plan")), want);
    assert_eq!(spans(&latest.plan_next(&log).expect("plan")), want);
    assert_eq!(earliest.next_offsets(), &BTreeMap::from([(0, 15), (1, 15)]));
}

#[test]
fn a_rate_limit_caps_every_range() {
    let topic = topic("direct-rate", 3);
    produce(&topic, &records("r", 3, 50));
    let log = bounds();
    // 10 records/s for a 2 s batch: 20 records per partition per batch.
    let mut planner =
        DirectPlanner::start(conf(&topic, StartingOffsets::Earliest, 10), &log).expect("start");
    let mut planned = Vec::new();
    for _ in 0..4 {
        planned.push(spans(&planner.plan_next(&log).expect("plan")));
    }
    let each = |from, until| vec![(0, from, until), (1, from, until), (2, from, until)];
    assert_eq!(
        planned,
        vec![each(0, 20), each(20, 40), each(40, 50), each(50, 50)]
    );
}

#[test]
fn a_partition_added_to_the_topic_is_read_from_its_start() {
    let topic = topic("direct-grow", 1);
    let first = produce(&topic, &records("one", 1, 8));
    let log = bounds();
    let mut planner =
        DirectPlanner::start(conf(&topic, StartingOffsets::Latest, 0), &log).expect("start");
    assert_eq!(
        spans(&planner.plan_next(&log).expect("plan")),
        vec![(0, 8, 8)]
    );

    add_partitions(&topic, 2);
    wait_for("the new partition in the metadata", || {
        let now = log.partition_bounds(&topic).expect("bounds");
        (now.len() == 2).then_some(())
    });
    let more = produce(&topic, &records("two", 2, 6));
    let ranges = planner.plan_next(&log).expect("plan");
    // The new partition starts at its log start, not at "latest".
    assert_eq!(spans(&ranges), vec![(0, 8, 14), (1, 0, 6)]);
    let produced = by_place(&[first, more].concat());
    let read = read_and_check(&mut reader(), &ranges, &produced);
    assert_eq!(read.len(), 12);
}

#[test]
fn reading_a_range_returns_exactly_its_records_in_order() {
    let topic = topic("direct-read", 3);
    let mut batch = records("read", 3, 120);
    // Partition 1 gets two records without a value (tombstones) at known places.
    for i in [10, 11] {
        batch[i * 3 + 1].value = None;
    }
    let produced = produce(&topic, &batch);
    let by = by_place(&produced);
    let mut reader = reader();
    for partition in 0..3 {
        let whole = OffsetRange::new(&topic, partition, 0, 120).expect("range");
        let read = reader.read(&whole).expect("read whole partition");
        let want: Vec<&Produced> = by
            .range((partition, 0)..(partition, 120))
            .map(|(_, p)| p)
            .collect();
        let with_value: Vec<_> = want.iter().filter(|p| p.value.is_some()).collect();
        assert_eq!(
            read.records.len(),
            with_value.len(),
            "partition {partition}"
        );
        for (record, want) in read.records.iter().zip(&with_value) {
            assert!(want.matches(record), "read {record:?}, produced {want:?}");
        }
        let malformed: Vec<_> = read.malformed.iter().map(|m| m.offset).collect();
        let expect_malformed = if partition == 1 { vec![10, 11] } else { vec![] };
        assert_eq!(malformed, expect_malformed, "partition {partition}");
        assert_eq!(read.missing_offsets, 0);
    }
    // Middle ranges, and one of a single record; each exactly its records.
    for (partition, from, until) in [(0, 37, 38), (2, 50, 99), (0, 0, 1), (2, 119, 120)] {
        let range = OffsetRange::new(&topic, partition, from, until).expect("range");
        let got = read_and_check(&mut reader, std::slice::from_ref(&range), &by);
        assert_eq!(
            got,
            (from..until).map(|o| (partition, o)).collect::<Vec<_>>()
        );
    }
    let empty = OffsetRange::new(&topic, 0, 5, 5).expect("range");
    assert!(reader.read(&empty).expect("empty range").records.is_empty());
    // A range read again (as a recovered batch does), by another reader too,
    // gives the same records.
    let range = OffsetRange::new(&topic, 1, 5, 40).expect("range");
    let once = reader.read(&range).expect("read");
    assert_eq!(reader.read(&range).expect("read again"), once);
    assert_eq!(self::reader().read(&range).expect("read elsewhere"), once);
    assert_eq!((once.records.len(), once.malformed.len()), (33, 2));
}

#[test]
fn batches_continue_across_restarts_with_no_gap_and_no_overlap() {
    let topic = topic("direct-restart", 2);
    let mut produced = Vec::new();
    let mut read_places = Vec::new();
    let mut checkpoint: Option<bytes::Bytes> = None;
    let log = bounds();
    let mut reader = reader();
    for batch in 0..6 {
        produced.extend(produce(&topic, &records(&format!("b{batch}"), 2, 20)));
        // Every batch runs in a "new driver": a planner resumed from the checkpoint.
        let c = conf(&topic, StartingOffsets::Earliest, 8);
        let mut planner = match &checkpoint {
            None => DirectPlanner::start(c, &log).expect("start"),
            Some(bytes) => {
                let last: Vec<OffsetRange> = decode_offset_ranges(bytes).expect("checkpoint");
                DirectPlanner::resume(c, OffsetRange::next_offsets(&last)).expect("resume")
            }
        };
        let ranges = planner.plan_next(&log).expect("plan");
        assert!(
            ranges.iter().all(|r| r.count() == 16),
            "capped at 8/s x 2 s: {ranges:?}"
        );
        read_places.extend(read_and_check(&mut reader, &ranges, &by_place(&produced)));
        checkpoint = Some(encode_offset_ranges(&ranges));
    }
    // 20 produced and 16 read per partition per batch: each batch starts
    // exactly where the one before ended, and every offset is read once, in order.
    for partition in 0..2 {
        let offsets: Vec<i64> = read_places
            .iter()
            .filter(|(p, _)| *p == partition)
            .map(|(_, o)| *o)
            .collect();
        let all: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(offsets, all, "partition {partition}: a gap or an overlap");
    }
    assert_eq!(read_places.len(), 2 * 6 * 16);
}

#[test]
fn a_range_removed_by_retention_is_an_error_naming_it() {
    let topic = topic("direct-gone", 1);
    let produced = by_place(&produce(&topic, &records("gone", 1, 20)));
    delete_records_before(&topic, 0, 10);
    let mut reader = reader();
    let range = OffsetRange::new(&topic, 0, 0, 20).expect("range");
    match reader.read(&range) {
        Err(StreamError::KafkaRangeGone {
            range: gone,
            log_start,
        }) => {
            assert_eq!((gone, log_start), (range.clone(), 10));
        }
        other => panic!("expected KafkaRangeGone, got {other:?}"),
    }
    let err = reader.read(&range).expect_err("still gone").to_string();
    assert!(err.contains(&format!("{topic}-0 [0, 20)")), "{err}");
    // The reader is still usable, and what is left reads back.
    let left = OffsetRange::new(&topic, 0, 10, 20).expect("range");
    assert_eq!(read_and_check(&mut reader, &[left], &produced).len(), 10);
}

#[test]
fn a_range_the_log_does_not_hold_yet_times_out_or_is_refused() {
    let topic = topic("direct-ahead", 1);
    produce(&topic, &records("ahead", 1, 20));
    let mut short = RangeReader::connect(&client(), Duration::from_secs(3)).expect("reader");
    // Starts at the log's end: the broker waits for records that never come.
    let waiting = OffsetRange::new(&topic, 0, 18, 25).expect("range");
    match short.read(&waiting) {
        Err(StreamError::KafkaTimeout { detail, .. }) => {
            assert!(detail.contains("stuck at offset 20"), "{detail}");
            assert!(detail.contains("[0, 20)"), "{detail}");
        }
        other => panic!("expected KafkaTimeout, got {other:?}"),
    }
    // Starts past the log's end: the broker refuses the fetch.
    let past = OffsetRange::new(&topic, 0, 25, 30).expect("range");
    match short.read(&past) {
        Err(StreamError::KafkaOffsets { reason, .. }) => {
            assert!(reason.contains("past the log's end 20"), "{reason}")
        }
        other => panic!("expected KafkaOffsets, got {other:?}"),
    }
}

#[test]
fn planning_a_topic_that_does_not_exist_is_an_error() {
    let log = bounds();
    let missing = tidemark_test_servers::unique_name("direct-missing");
    let c = conf(&missing, StartingOffsets::Earliest, 0);
    match DirectPlanner::start(c, &log) {
        Err(StreamError::KafkaTopic { topic, .. }) => assert_eq!(topic, missing),
        other => panic!("expected KafkaTopic, got {other:?}"),
    }
    // A planner resumed for a topic whose partition vanished refuses to plan.
    let topic = topic("direct-shrunk", 1);
    let c = conf(&topic, StartingOffsets::Earliest, 0);
    let mut planner = DirectPlanner::resume(c, BTreeMap::from([(0, 0), (3, 5)])).expect("resume");
    match planner.plan_next(&log) {
        Err(StreamError::KafkaOffsets { partition: 3, .. }) => {}
        other => panic!("expected KafkaOffsets for partition 3, got {other:?}"),
    }
}
