//! Proof that tidemark's Kafka client, `rdkafka` (librdkafka built from source), works against the
//! real Apache Kafka broker that `tidemark_test_servers::kafka()` starts.
//!
//! The crate has no code of its own: its integration test (`tests/smoke.rs`) creates a topic,
//! produces keyed records, reads them back by partition and offset range, commits a consumer
//! group's offsets and reads them back, and checks partition metadata and high watermarks.
