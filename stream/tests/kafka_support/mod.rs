//! Shared by the Kafka tests: the broker, producing records whose placement is
//! known, and admin requests (adding partitions, deleting records).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};
use tidemark_stream::kafka::{KafkaClientConf, KafkaRecord};

/// How long the tests wait on the broker for anything (generous: the machine is shared).
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A record to produce: its partition, key and value (`None` = a null payload).
#[derive(Clone, Debug)]
pub struct Produce {
    pub partition: i32,
    pub key: Option<String>,
    pub value: Option<String>,
}

/// A record as produced, with where it landed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Produced {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: Option<String>,
}

impl Produced {
    /// True when `read` is this record (place, key and value).
    pub fn matches(&self, read: &KafkaRecord) -> bool {
        let text = |b: &bytes::Bytes| String::from_utf8_lossy(b).into_owned();
        (
            self.partition,
            self.offset,
            self.key.clone(),
            self.value.clone(),
        ) == (
            read.partition,
            read.offset,
            read.key.as_ref().map(text),
            Some(text(&read.value)),
        )
    }
}

/// The broker's bootstrap address, starting it on first use.
pub fn bootstrap() -> String {
    tidemark_test_servers::kafka().bootstrap()
}

/// A fresh topic of `partitions` partitions, named after `tag`.
pub fn topic(tag: &str, partitions: u32) -> String {
    let name = tidemark_test_servers::unique_name(tag);
    tidemark_test_servers::kafka()
        .create_topic(&name, partitions)
        .expect("create topic");
    name
}

/// Client settings for the test broker.
pub fn client() -> KafkaClientConf {
    KafkaClientConf::new(bootstrap())
}

/// `count` records per partition of `0..partitions`, values naming their
/// batch `tag`; every 7th has no key.
pub fn records(tag: &str, partitions: i32, count: usize) -> Vec<Produce> {
    (0..count)
        .flat_map(|i| {
            (0..partitions).map(move |p| Produce {
                partition: p,
                key: (i % 7 != 0).then(|| format!("k-{p}-{i}")),
                value: Some(format!("{tag}-p{p}-{i}-{}", "v".repeat(i % 13))),
            })
        })
        .collect()
}

/// Where the broker put a record, or why it did not.
type Delivery = Result<(i32, i64), String>;

/// Collects each record's delivery report, by its index.
struct Deliveries(Mutex<Vec<Option<Delivery>>>);

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

/// Produces `records` to `topic` (idempotent, acks=all, in order per
/// partition); returns each as it landed, in the order given.
pub fn produce(topic: &str, records: &[Produce]) -> Vec<Produced> {
    let producer: BaseProducer<Deliveries> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create_with_context(Deliveries(Mutex::new(vec![None; records.len()])))
        .expect("create producer");
    for (i, r) in records.iter().enumerate() {
        let mut record =
            BaseRecord::<str, str, usize>::with_opaque_to(topic, i).partition(r.partition);
        if let Some(k) = &r.key {
            record = record.key(k.as_str());
        }
        if let Some(v) = &r.value {
            record = record.payload(v.as_str());
        }
        if let Err((e, _)) = producer.send(record) {
            panic!("queueing record {i}: {e}");
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(TIMEOUT).expect("flush the producer");
    let reports = std::mem::take(&mut *producer.context().0.lock().expect("deliveries"));
    reports
        .into_iter()
        .zip(records)
        .enumerate()
        .map(|(i, (report, r))| match report {
            Some(Ok((partition, offset))) => Produced {
                partition,
                offset,
                key: r.key.clone(),
                value: r.value.clone(),
            },
            Some(Err(e)) => panic!("record {i} was not delivered: {e}"),
            None => panic!("no delivery report for record {i}"),
        })
        .collect()
}

/// The records of `produced` by (partition, offset).
pub fn by_place(produced: &[Produced]) -> BTreeMap<(i32, i64), Produced> {
    produced
        .iter()
        .map(|p| ((p.partition, p.offset), p.clone()))
        .collect()
}

fn admin() -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("create admin client")
}

fn admin_options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(TIMEOUT))
}

/// Grows `topic` to `partitions` partitions.
pub fn add_partitions(topic: &str, partitions: usize) {
    let admin = admin();
    let grow = NewPartitions::new(topic, partitions);
    let results = futures::executor::block_on(admin.create_partitions([&grow], &admin_options()))
        .expect("create partitions");
    for result in results {
        result.unwrap_or_else(|(t, e)| panic!("adding partitions to {t}: {e}"));
    }
}

/// Deletes the records of `topic`'s `partition` below `before` (as retention would).
pub fn delete_records_before(topic: &str, partition: i32, before: i64) {
    let admin = admin();
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, partition, Offset::Offset(before))
        .expect("add partition");
    let result = futures::executor::block_on(admin.delete_records(&list, &admin_options()))
        .expect("delete records");
    for element in result.elements() {
        element.error().expect("deleting records of a partition");
    }
}

/// Polls `check` until it returns `Some`, for at most [`TIMEOUT`].
pub fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < deadline, "{what}: not within {TIMEOUT:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
