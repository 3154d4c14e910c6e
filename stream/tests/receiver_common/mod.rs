//! Helpers shared by the receiver tests: a real block manager on a temp dir,
//! a reporter that records what it hears and lets tests wait on it.
#![allow(dead_code)] // Each test file uses its own subset.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};
use tidemark_blockstore::{BlockManager, BlockStoreConfig};
use tidemark_stream::handler::read_block;
use tidemark_stream::receiver::{BlockReporter, ReceiverEvent};
use tidemark_stream::{ReceivedBlockInfo, StreamError};

/// How long a test waits for something that should happen at once: generous,
/// so a loaded machine never fails a test; only a bug makes it run out.
pub const WAIT: Duration = Duration::from_secs(30);

pub fn block_manager(dir: &Path) -> Arc<BlockManager> {
    let config = BlockStoreConfig {
        dir: dir.join("blocks"),
        ..BlockStoreConfig::default()
    };
    Arc::new(BlockManager::start(config).expect("block manager"))
}

/// Everything a [`Recorder`] heard, in order.
#[derive(Clone, Debug, Default)]
pub struct Heard {
    pub blocks: Vec<ReceivedBlockInfo>,
    pub events: Vec<ReceiverEvent>,
}

impl Heard {
    /// Records in all reported blocks.
    pub fn records(&self) -> u64 {
        self.blocks.iter().filter_map(|b| b.num_records).sum()
    }

    pub fn errors(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ReceiverEvent::Error { message } => Some(message.as_str()),
                _ => None,
            })
            .collect()
    }

    pub fn restarts(&self) -> Vec<(&str, Duration)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ReceiverEvent::Restarting { reason, delay } => Some((reason.as_str(), *delay)),
                _ => None,
            })
            .collect()
    }

    pub fn starts(&self) -> Vec<u64> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ReceiverEvent::Started { generation, .. } => Some(*generation),
                _ => None,
            })
            .collect()
    }
}

/// A reporter that records every block and event; it can be told to fail
/// the next few `block_stored` calls.
#[derive(Default)]
pub struct Recorder {
    heard: Mutex<Heard>,
    changed: Condvar,
    fail_reports: AtomicU32,
}

impl Recorder {
    pub fn new() -> Arc<Recorder> {
        Arc::new(Recorder::default())
    }

    pub fn fail_next_reports(&self, n: u32) {
        self.fail_reports.store(n, Ordering::SeqCst);
    }

    pub fn heard(&self) -> Heard {
        self.heard.lock().clone()
    }

    /// Waits up to [`WAIT`] for `ready`; panics with what was heard if it never holds.
    pub fn wait(&self, what: &str, ready: impl Fn(&Heard) -> bool) -> Heard {
        let deadline = Instant::now() + WAIT;
        let mut heard = self.heard.lock();
        while !ready(&heard) {
            if self.changed.wait_until(&mut heard, deadline).timed_out() && !ready(&heard) {
                panic!("timed out waiting for {what}; heard {heard:#?}");
            }
        }
        heard.clone()
    }
}

impl BlockReporter for Recorder {
    fn block_stored(&self, info: &ReceivedBlockInfo) -> Result<(), StreamError> {
        let failing = self
            .fail_reports
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(StreamError::Io {
                what: format!("report {} to the driver", info.block),
                source: std::io::Error::other("injected report failure"),
            });
        }
        self.heard.lock().blocks.push(info.clone());
        self.changed.notify_all();
        Ok(())
    }

    fn receiver_event(&self, _stream_id: u32, event: &ReceiverEvent) {
        self.heard.lock().events.push(event.clone());
        self.changed.notify_all();
    }
}

/// The records of `blocks`, read back from the block store, in report order.
pub fn read_all(bm: &BlockManager, blocks: &[ReceivedBlockInfo]) -> Vec<Bytes> {
    blocks
        .iter()
        .flat_map(|info| read_block(bm, info, None).expect("read a reported block"))
        .collect()
}

pub fn text(records: &[Bytes]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(r).into_owned())
        .collect()
}
