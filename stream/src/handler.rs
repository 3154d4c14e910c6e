//! Block handlers (Spark's `ReceivedBlockHandler`): where a receiver's block is
//! stored before the driver hears of it, and where a task finds it again.
//!
//! - [`BlockStoreHandler`] stores the block in the block store at the stream's
//!   level. It survives what the level survives: with `_2` levels the loss of
//!   one node; with `MEMORY_ONLY`, nothing.
//! - [`WalBlockHandler`] appends the block to the stream's receiver WAL and puts
//!   it in the block store at the same time, and returns once both are done
//!   (or fails after the timeout, 30 s by default). The block is then durable
//!   on the WAL's disk whatever happens to executors; the block store copy is
//!   the fast path for tasks. With the WAL on, one block-store copy is enough:
//!   [`level_with_wal`] drops the replication to 1 unless the user keeps it.
//!
//! Where a receiver WAL lives decides what it survives: a local directory
//! survives the crash of any process on its machine, and a power cut (the WAL
//! syncs before `store_block` returns), but not the loss of the machine.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use tidemark_blockstore::{BlockManager, StorageLevel};
use tidemark_wal::{Lsn, Wal, WalOptions};

use crate::block::{ReceivedBlockInfo, StreamBlockId, WalHandle};
use crate::error::StreamError;
use crate::records::{decode_records, encode_records};

/// How long [`WalBlockHandler`] waits for both copies of a block (Spark's default).
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(30);

/// Stores received blocks, and drops them once the driver is done with them.
pub trait ReceivedBlockHandler: Send + Sync {
    /// Stores `records` as block `id`. Returns only once the block is stored as
    /// this handler promises; a reliable receiver acknowledges its source after.
    fn store_block(
        &self,
        id: StreamBlockId,
        records: &[Bytes],
    ) -> Result<ReceivedBlockInfo, StreamError>;

    /// Removes `blocks`, whose batches are done and checkpointed.
    fn remove_blocks(&self, blocks: &[ReceivedBlockInfo]) -> Result<(), StreamError>;
}

/// Stores blocks in the block store only.
pub struct BlockStoreHandler {
    blocks: Arc<BlockManager>,
    level: StorageLevel,
}

impl BlockStoreHandler {
    /// A handler storing at `level` through `blocks`.
    pub fn new(blocks: Arc<BlockManager>, level: StorageLevel) -> BlockStoreHandler {
        BlockStoreHandler { blocks, level }
    }
}

impl ReceivedBlockHandler for BlockStoreHandler {
    fn store_block(
        &self,
        id: StreamBlockId,
        records: &[Bytes],
    ) -> Result<ReceivedBlockInfo, StreamError> {
        put_block(&self.blocks, id, encode_records(records), self.level)?;
        Ok(ReceivedBlockInfo {
            block: id,
            num_records: Some(records.len() as u64),
            wal: None,
        })
    }

    fn remove_blocks(&self, blocks: &[ReceivedBlockInfo]) -> Result<(), StreamError> {
        remove_from_store(&self.blocks, blocks)
    }
}

/// The level to store at when the receiver WAL is on: `level` with one copy,
/// unless `keep_replication` (the WAL already makes the block durable).
pub fn level_with_wal(level: StorageLevel, keep_replication: bool) -> StorageLevel {
    if keep_replication {
        level
    } else {
        level.with_replication(1)
    }
}

/// Stores blocks in the stream's receiver WAL and the block store, in parallel.
pub struct WalBlockHandler {
    stream_id: u32,
    blocks: Arc<BlockManager>,
    level: StorageLevel,
    wal: Wal,
    timeout: Duration,
    /// LSNs of blocks stored and not yet removed: the WAL keeps everything from the lowest on.
    live: Mutex<BTreeSet<u64>>,
}

impl WalBlockHandler {
    /// Opens (or creates) the receiver WAL of `stream_id` in `dir`. `level` is
    /// used as given: pass it through [`level_with_wal`] for Spark's default.
    pub fn open(
        stream_id: u32,
        dir: &Path,
        blocks: Arc<BlockManager>,
        level: StorageLevel,
        timeout: Duration,
    ) -> Result<WalBlockHandler, StreamError> {
        let wal = Wal::open(dir, receiver_wal_options())
            .map_err(StreamError::wal("open the receiver WAL"))?;
        Ok(WalBlockHandler {
            stream_id,
            blocks,
            level,
            wal,
            timeout,
            live: Mutex::new(BTreeSet::new()),
        })
    }

    /// Appends the block to the WAL while another thread puts it in the block
    /// store; both must succeed within the timeout.
    fn store_both(&self, id: StreamBlockId, bytes: Bytes) -> Result<Lsn, StreamError> {
        let started = Instant::now();
        let (done, put_result) = mpsc::channel();
        let (blocks, level, copy) = (self.blocks.clone(), self.level, bytes.clone());
        std::thread::Builder::new()
            .name("tidemark-block-put".into())
            .spawn(move || {
                let _ = done.send(put_block(&blocks, id, copy, level));
            })
            .map_err(StreamError::io("start a block-store put"))?;
        let lsn = self
            .wal
            .append(&bytes)
            .map_err(StreamError::wal("append a block to the receiver WAL"))?;
        let left = self.timeout.saturating_sub(started.elapsed());
        match put_result.recv_timeout(left) {
            Ok(put) => put?,
            Err(_) => {
                return Err(StreamError::StoreTimeout {
                    block: id,
                    after: self.timeout,
                });
            }
        }
        if started.elapsed() > self.timeout {
            return Err(StreamError::StoreTimeout {
                block: id,
                after: self.timeout,
            });
        }
        Ok(lsn)
    }
}

impl ReceivedBlockHandler for WalBlockHandler {
    fn store_block(
        &self,
        id: StreamBlockId,
        records: &[Bytes],
    ) -> Result<ReceivedBlockInfo, StreamError> {
        let lsn = self.store_both(id, encode_records(records))?;
        self.live.lock().insert(lsn.0);
        Ok(ReceivedBlockInfo {
            block: id,
            num_records: Some(records.len() as u64),
            wal: Some(WalHandle {
                stream_id: self.stream_id,
                lsn: lsn.0,
            }),
        })
    }

    fn remove_blocks(&self, blocks: &[ReceivedBlockInfo]) -> Result<(), StreamError> {
        remove_from_store(&self.blocks, blocks)?;
        let keep_from = {
            let mut live = self.live.lock();
            for lsn in blocks.iter().filter_map(|b| b.wal.map(|w| w.lsn)) {
                live.remove(&lsn);
            }
            live.first().copied()
        };
        // Nothing live: keep the last record, so the log never needs a new segment to say where it is.
        let keep_from = keep_from.or_else(|| self.wal.last_lsn().map(|l| l.0));
        match keep_from {
            Some(lsn) => self
                .wal
                .truncate_before(Lsn(lsn))
                .map_err(StreamError::wal("drop old blocks from the receiver WAL")),
            None => Ok(()),
        }
    }
}

/// The receiver WAL's options: group commit, so parallel receivers share syncs.
fn receiver_wal_options() -> WalOptions {
    WalOptions::default()
}

/// The receiver WAL directory of `stream_id` under `root`.
pub fn receiver_wal_dir(root: &Path, stream_id: u32) -> PathBuf {
    root.join(format!("receiver-{stream_id}"))
}

fn put_block(
    blocks: &BlockManager,
    id: StreamBlockId,
    bytes: Bytes,
    level: StorageLevel,
) -> Result<(), StreamError> {
    blocks
        .put_bytes(id.block_id(), bytes, level)
        .map_err(|source| StreamError::BlockStore {
            what: format!("store block {id}"),
            source,
        })
}

fn remove_from_store(
    blocks: &BlockManager,
    infos: &[ReceivedBlockInfo],
) -> Result<(), StreamError> {
    for info in infos {
        blocks
            .remove(&info.block.block_id())
            .map_err(|source| StreamError::BlockStore {
                what: format!("remove block {}", info.block),
                source,
            })?;
    }
    Ok(())
}

/// Reads a block's records: from the block store, or, when the block store
/// lost it, from the receiver WAL under `wal_root` (a read-only open, so the
/// receiver may still be writing that log).
pub fn read_block(
    blocks: &BlockManager,
    info: &ReceivedBlockInfo,
    wal_root: Option<&Path>,
) -> Result<Vec<Bytes>, StreamError> {
    let stored =
        blocks
            .get_bytes(&info.block.block_id())
            .map_err(|source| StreamError::BlockStore {
                what: format!("read block {}", info.block),
                source,
            })?;
    if let Some(bytes) = stored {
        return decode_records(&bytes, &info.block.to_string());
    }
    let (Some(handle), Some(root)) = (info.wal, wal_root) else {
        return Err(StreamError::BlockLost(info.block));
    };
    tracing::info!(block = %info.block, lsn = handle.lsn, "block store lost the block; reading it from the receiver WAL");
    let dir = receiver_wal_dir(root, handle.stream_id);
    let wal = Wal::open_read_only(&dir, receiver_wal_options()).map_err(StreamError::wal(
        "open the receiver WAL to read a lost block",
    ))?;
    let record = wal
        .read(Lsn(handle.lsn))
        .map_err(StreamError::wal("read a lost block from the receiver WAL"))?;
    decode_records(&record.data, &info.block.to_string())
}
