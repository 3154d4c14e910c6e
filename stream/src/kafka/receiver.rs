//! The reliable Kafka receiver (Spark's `ReliableKafkaReceiver`): a consumer
//! group member that stores each fetched block with `store_block` and commits
//! the group's offsets only after it returned, that is after the block was
//! stored (in the receiver WAL too, when it is on) and the driver logged it.
//!
//! So a record is either committed and stored, or not committed and fetched
//! again by whichever member owns its partition next: at-least-once receipt,
//! with duplicates after a failure, and no loss when the WAL is on. A failed
//! fetch, store or commit restarts the receiver (a new consumer resumes from
//! the committed offsets). Records without a value are reported and skipped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::StreamError;
use crate::kafka::{KafkaBlock, KafkaBlockSource, KafkaClientConf, SourceConf};
use crate::receiver::{Receiver, ReceiverContext};

/// Records fetched into one block at most.
const MAX_BLOCK_RECORDS: usize = 10_000;
/// How long one fetch waits for records (about a block interval).
const FETCH_WAIT: Duration = Duration::from_millis(200);

/// A reliable receiver of one topic for one consumer group.
pub struct KafkaReceiver {
    client: KafkaClientConf,
    source: SourceConf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl KafkaReceiver {
    /// A receiver of `source.topic` as a member of `source.group_id`.
    pub fn new(client: KafkaClientConf, source: SourceConf) -> KafkaReceiver {
        KafkaReceiver {
            client,
            source,
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        }
    }
}

impl Receiver for KafkaReceiver {
    fn name(&self) -> &str {
        "kafka"
    }

    fn on_start(&mut self, ctx: ReceiverContext) -> Result<(), StreamError> {
        self.stop = Arc::new(AtomicBool::new(false));
        let (client, source, stop) = (self.client.clone(), self.source.clone(), self.stop.clone());
        let thread = std::thread::Builder::new()
            .name(format!("tidemark-kafka-{}", ctx.stream_id()))
            .spawn(move || {
                if let Err(e) = receive(&ctx, &client, source, &stop) {
                    ctx.restart(&e.to_string(), ctx.default_restart_delay());
                }
            })
            .map_err(StreamError::io("start the Kafka receiver thread"))?;
        self.thread = Some(thread);
        Ok(())
    }

    fn on_stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Fetches, stores and commits blocks until stopped; an error ends this start.
fn receive(
    ctx: &ReceiverContext,
    client: &KafkaClientConf,
    source: SourceConf,
    stop: &AtomicBool,
) -> Result<(), StreamError> {
    let mut source = KafkaBlockSource::subscribe(client, source)?;
    while !stop.load(Ordering::Acquire) && !ctx.is_stopped() {
        let block = source.next_block(MAX_BLOCK_RECORDS, FETCH_WAIT)?;
        report_malformed(ctx, &block);
        if !block.records.is_empty() {
            ctx.store_block(&block.values())?;
        }
        if !block.is_empty() {
            source.commit(&block)?;
        }
    }
    Ok(())
}

fn report_malformed(ctx: &ReceiverContext, block: &KafkaBlock) {
    for m in &block.malformed {
        ctx.report_error(&format!(
            "skipped record at partition {} offset {}: {}",
            m.partition, m.offset, m.reason
        ));
    }
}
