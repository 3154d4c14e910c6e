//! rdkafka against the real single-node Kafka broker: produce, fetch by partition and offset
//! range, consumer-group offset commit and fetch, partition metadata and watermarks.

use std::{
    collections::BTreeMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use rdkafka::{
    ClientConfig, ClientContext, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, CommitMode, Consumer},
    producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext},
};
use tidemark_test_servers::{kafka, unique_name};

const RECORDS: usize = 1_000;
const PARTITIONS: i32 = 3;
const TIMEOUT: Duration = Duration::from_secs(30);

/// Where the broker put one record: (partition, offset).
type Placement = (i32, i64);

/// A record as read back: key and payload.
type Stored = (String, String);

fn key(i: usize) -> String {
    format!("key-{i:04}")
}

fn payload(i: usize) -> String {
    format!("value-{i}-{}", "x".repeat(i % 97))
}

/// Collects each record's delivery report, indexed by the record's number.
struct Deliveries(Mutex<Vec<Option<Result<Placement, String>>>>);

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        let outcome = match result {
            Ok(m) => Ok((m.partition(), m.offset())),
            Err((e, _)) => Err(e.to_string()),
        };
        self.0.lock().unwrap_or_else(|p| p.into_inner())[index] = Some(outcome);
    }
}

fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    config
}

/// Produces records `0..RECORDS` keyed by [`key`]; returns where each landed.
fn produce(bootstrap: &str, topic: &str) -> Vec<Placement> {
    let producer: BaseProducer<Deliveries> = client_config(bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        // The Java client's partitioner, so keys land where Java producers would put them.
        .set("partitioner", "murmur2_random")
        .create_with_context(Deliveries(Mutex::new(vec![None; RECORDS])))
        .expect("create producer");
    for i in 0..RECORDS {
        let (k, v) = (key(i), payload(i));
        let record = BaseRecord::with_opaque_to(topic, i).key(&k).payload(&v);
        if let Err((e, _)) = producer.send(record) {
            panic!("queueing record {i}: {e}");
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(TIMEOUT).expect("flush the producer");
    let reports = std::mem::take(&mut *producer.context().0.lock().expect("deliveries lock"));
    reports
        .into_iter()
        .enumerate()
        .map(|(i, r)| match r {
            Some(Ok(placement)) => placement,
            Some(Err(e)) => panic!("record {i} was not delivered: {e}"),
            None => panic!("no delivery report for record {i}"),
        })
        .collect()
}

fn consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    client_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .create()
        .expect("create consumer")
}

/// Reads offsets `start..end` of each `(partition, start, end)`, by assignment (no group
/// membership); returns every record read, by (partition, offset).
fn read_ranges(
    bootstrap: &str,
    topic: &str,
    ranges: &[(i32, i64, i64)],
) -> BTreeMap<Placement, Stored> {
    let consumer = consumer(bootstrap, &unique_name("reader"));
    let mut assignment = TopicPartitionList::new();
    for &(partition, start, _) in ranges {
        assignment
            .add_partition_offset(topic, partition, Offset::Offset(start))
            .expect("add partition");
    }
    consumer.assign(&assignment).expect("assign partitions");
    let wanted: i64 = ranges.iter().map(|(_, start, end)| end - start).sum();
    let in_range = |p: i32, o: i64| {
        ranges
            .iter()
            .any(|&(q, s, e)| q == p && (s..e).contains(&o))
    };
    let mut read = BTreeMap::new();
    let deadline = Instant::now() + TIMEOUT;
    while (read.len() as i64) < wanted {
        assert!(
            Instant::now() < deadline,
            "read {} of {wanted} records of {ranges:?} within {TIMEOUT:?}",
            read.len()
        );
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = message.expect("fetch");
        if in_range(m.partition(), m.offset()) {
            let text = |b: Option<&[u8]>| String::from_utf8(b.unwrap_or_default().to_vec());
            let stored = (
                text(m.key()).expect("utf-8 key"),
                text(m.payload()).expect("utf-8"),
            );
            read.insert((m.partition(), m.offset()), stored);
        }
    }
    read
}

/// Checks that the topic has [`PARTITIONS`] partitions, each led by node 1, and that each
/// partition's watermarks are `0` and the number of records produced to it.
fn check_metadata_and_watermarks(bootstrap: &str, topic: &str, placements: &[Placement]) {
    let consumer = consumer(bootstrap, &unique_name("metadata"));
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .expect("fetch metadata");
    let described = &metadata.topics()[0];
    assert_eq!(described.name(), topic);
    assert_eq!(described.error(), None, "topic error");
    assert_eq!(described.partitions().len(), PARTITIONS as usize);
    for p in described.partitions() {
        assert_eq!((p.leader(), p.error()), (1, None), "partition {}", p.id());
    }
    let mut total = 0;
    for partition in 0..PARTITIONS {
        let count = placements.iter().filter(|(p, _)| *p == partition).count() as i64;
        let watermarks = consumer
            .fetch_watermarks(topic, partition, TIMEOUT)
            .expect("fetch watermarks");
        assert_eq!(
            watermarks,
            (0, count),
            "watermarks of partition {partition}"
        );
        assert!(count > 0, "no record was keyed to partition {partition}");
        total += count;
    }
    assert_eq!(total, RECORDS as i64);
}

/// Reads every partition whole and a middle range of partition 0, checking each record is the one
/// produced to that (partition, offset).
fn check_reads(bootstrap: &str, topic: &str, placements: &[Placement]) {
    let expected: BTreeMap<Placement, Stored> = placements
        .iter()
        .enumerate()
        .map(|(i, &placement)| (placement, (key(i), payload(i))))
        .collect();
    assert_eq!(
        expected.len(),
        RECORDS,
        "two records share a (partition, offset)"
    );
    let high = |p: i32| placements.iter().filter(|(q, _)| *q == p).count() as i64;
    let whole: Vec<_> = (0..PARTITIONS).map(|p| (p, 0, high(p))).collect();
    assert_eq!(read_ranges(bootstrap, topic, &whole), expected);

    let (start, end) = (high(0) / 4, high(0) / 2);
    let middle = read_ranges(bootstrap, topic, &[(0, start, end)]);
    let want: BTreeMap<_, _> = expected
        .range((0, start)..(0, end))
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    assert_eq!(middle.len() as i64, end - start);
    assert_eq!(middle, want);
}

/// Commits offsets for a consumer group and reads them back through a second client.
fn check_group_commit(bootstrap: &str, topic: &str) {
    let group = unique_name("smoke-group");
    let mut offsets = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        let offset = Offset::Offset(10 * i64::from(partition) + 7);
        offsets
            .add_partition_offset(topic, partition, offset)
            .expect("add partition");
    }
    consumer(bootstrap, &group)
        .commit(&offsets, CommitMode::Sync)
        .expect("commit the group's offsets");

    let mut query = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        query.add_partition(topic, partition);
    }
    let committed = consumer(bootstrap, &group)
        .committed_offsets(query, TIMEOUT)
        .expect("fetch the group's committed offsets");
    for partition in 0..PARTITIONS {
        let element = committed
            .find_partition(topic, partition)
            .expect("committed partition");
        assert_eq!(element.error(), Ok(()), "partition {partition}");
        assert_eq!(
            element.offset(),
            Offset::Offset(10 * i64::from(partition) + 7)
        );
    }
}

#[test]
fn rdkafka_produces_fetches_commits_and_reads_watermarks() {
    let started = Instant::now();
    let broker = kafka();
    eprintln!("broker ready after {:?}", started.elapsed());
    let bootstrap = broker.bootstrap();
    let topic = unique_name("smoke");
    broker
        .create_topic(&topic, PARTITIONS as u32)
        .expect("create the topic");
    let err = broker.create_topic(&topic, PARTITIONS as u32).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists, "{err}");

    let phase = Instant::now();
    let placements = produce(&bootstrap, &topic);
    eprintln!("produced {RECORDS} records in {:?}", phase.elapsed());
    check_metadata_and_watermarks(&bootstrap, &topic, &placements);
    let phase = Instant::now();
    check_reads(&bootstrap, &topic, &placements);
    eprintln!("read them back in {:?}", phase.elapsed());
    let phase = Instant::now();
    check_group_commit(&bootstrap, &topic);
    eprintln!(
        "committed and fetched group offsets in {:?}",
        phase.elapsed()
    );
    eprintln!("whole test {:?}", started.elapsed());
}
