//! The reliable Kafka source against a real broker: blocks are committed only
//! after they are stored, in order; a new group member (as after a crash)
//! resumes at the committed offsets, so records fetched but not committed come
//! again and nothing committed is lost or repeated.

mod kafka_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kafka_support::{TIMEOUT, by_place, client, produce, records, topic};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tidemark_stream::StreamError;
use tidemark_stream::kafka::{KafkaBlock, KafkaBlockSource, SourceConf, StartingOffsets};

fn source(topic: &str, group: &str) -> KafkaBlockSource {
    let conf = SourceConf {
        topic: topic.to_string(),
        group_id: group.to_string(),
        starting: StartingOffsets::Earliest,
    };
    KafkaBlockSource::subscribe(&client(), conf).expect("subscribe")
}

/// The next non-empty block of at most `max` records (the first one waits for
/// the group join).
fn next_records(source: &mut KafkaBlockSource, max: usize) -> KafkaBlock {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let block = source
            .next_block(max, Duration::from_millis(500))
            .expect("next block");
        if !block.is_empty() {
            return block;
        }
        assert!(Instant::now() < deadline, "no records within {TIMEOUT:?}");
    }
}

/// The group's committed offsets for `partitions` partitions, as a new client reads them.
fn group_offsets(topic: &str, group: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka_support::bootstrap())
        .set("group.id", group)
        .create()
        .expect("create consumer");
    let mut query = TopicPartitionList::new();
    for p in 0..partitions {
        query.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(query, TIMEOUT)
        .expect("committed offsets");
    committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

fn places(block: &KafkaBlock) -> BTreeSet<(i32, i64)> {
    block
        .records
        .iter()
        .map(|r| (r.partition, r.offset))
        .collect()
}

#[test]
fn records_fetched_but_not_committed_are_delivered_again_after_a_crash() {
    let topic = topic("reliable-crash", 2);
    let group = tidemark_test_servers::unique_name("reliable-crash-group");
    let produced = by_place(&produce(&topic, &records("c", 2, 100)));
    let mut stored = Vec::new();

    let mut first = source(&topic, &group);
    let a = next_records(&mut first, 40);
    stored.extend(a.records.clone()); // "stored" ...
    first.commit(&a).expect("commit the stored block"); // ... then committed
    let b = next_records(&mut first, 40); // fetched, never stored or committed
    assert!(places(&a).is_disjoint(&places(&b)));
    assert_eq!(group_offsets(&topic, &group, 2), a.next_offsets().clone());
    // The crash. Dropping the source closes its consumer, which leaves the
    // group at once; a killed process would leave it only when its session
    // times out. Either way the group keeps only what was committed.
    drop(first);

    let mut second = source(&topic, &group);
    let mut again = Vec::new();
    let everything: usize = 200;
    while stored.len() + again.len() < everything {
        let block = next_records(&mut second, 64);
        again.extend(block.records.clone());
        second.commit(&block).expect("commit");
    }
    // The new member starts exactly at the committed offsets: nothing
    // committed comes twice, every uncommitted record (b's) comes again.
    let again_places: BTreeSet<_> = again.iter().map(|r| (r.partition, r.offset)).collect();
    assert_eq!(
        again_places.len(),
        again.len(),
        "a record delivered twice to one member"
    );
    assert!(
        again_places.is_disjoint(&places(&a)),
        "a committed record came again"
    );
    assert!(
        places(&b).is_subset(&again_places),
        "an uncommitted record was lost"
    );
    // Together: every record produced, each once, as produced.
    let all: Vec<_> = stored.iter().chain(&again).collect();
    assert_eq!(all.len(), everything);
    for record in all {
        let want = &produced[&(record.partition, record.offset)];
        assert!(want.matches(record), "read {record:?}, produced {want:?}");
    }
    assert_eq!(
        group_offsets(&topic, &group, 2),
        BTreeMap::from([(0, 100), (1, 100)])
    );
    assert_eq!(second.committed(), &BTreeMap::from([(0, 100), (1, 100)]));
}

#[test]
fn blocks_are_committed_only_in_order_and_tombstones_are_reported() {
    let topic = topic("reliable-order", 1);
    let group = tidemark_test_servers::unique_name("reliable-order-group");
    let mut batch = records("o", 1, 30);
    batch[3].value = None;
    produce(&topic, &batch);
    let mut source = source(&topic, &group);
    let first = next_records(&mut source, 10);
    let second = next_records(&mut source, 10);
    assert_eq!(second.seq(), first.seq() + 1);

    // Committing the second block first would acknowledge the first's records.
    match source.commit(&second) {
        Err(StreamError::KafkaCommitOrder { block, oldest }) => {
            assert_eq!((block, oldest), (second.seq(), first.seq()));
        }
        other => panic!("expected KafkaCommitOrder, got {other:?}"),
    }
    assert!(
        group_offsets(&topic, &group, 1).is_empty(),
        "nothing may be committed yet"
    );

    source.commit(&first).expect("commit first");
    assert_eq!(
        group_offsets(&topic, &group, 1),
        first.next_offsets().clone()
    );
    source.commit(&second).expect("commit second");
    source.commit(&first).expect("committing again is a no-op");
    assert_eq!(
        group_offsets(&topic, &group, 1),
        second.next_offsets().clone()
    );

    // Offset 3 has no value: reported, not handed out, and committed past.
    let malformed: Vec<i64> = first.malformed.iter().map(|m| m.offset).collect();
    let offsets: Vec<i64> = first.records.iter().map(|r| r.offset).collect();
    assert_eq!(malformed, vec![3]);
    assert_eq!(offsets, vec![0, 1, 2, 4, 5, 6, 7, 8, 9]);
    assert_eq!(first.values().len(), 9);
    assert_eq!(first.next_offsets(), &BTreeMap::from([(0, 10)]));
}
