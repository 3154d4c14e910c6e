//! This node's blocks: the memory store, the disk store, and the rules that move blocks
//! between them.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::block_id::BlockId;
use crate::codec::ErasedValues;
use crate::disk::DiskStore;
use crate::error::BlockError;
use crate::level::StorageLevel;
use crate::memory::{MemoryEntry, MemoryStore, MemoryValue};

/// Where one node holds a block, as reported by [`crate::BlockManager::status`] and to the master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockStatus {
    /// The level the block was stored at.
    pub level: StorageLevel,
    /// The block is in this node's memory store.
    pub in_memory: bool,
    /// The block has a file in this node's disk store.
    pub on_disk: bool,
    /// The block's size in bytes: its byte length for bytes, the codec's estimate for values.
    pub size: u64,
    /// Bytes charged to the memory budget (0 when not in memory).
    pub memory_size: u64,
    /// Bytes of its disk file (0 when not on disk).
    pub disk_size: u64,
}

/// A block's bytes as kept on disk and sent between nodes: zstd-compressed when `compressed`.
#[derive(Clone)]
pub(crate) struct StoredBytes {
    pub(crate) data: Bytes,
    pub(crate) compressed: bool,
}

/// What a put hands to the local store.
pub(crate) enum Payload {
    Bytes(StoredBytes),
    Values {
        values: Arc<dyn ErasedValues>,
        estimate: u64,
    },
}

/// A block found locally.
pub(crate) enum Found {
    Bytes(StoredBytes),
    Values(Arc<dyn ErasedValues>),
}

struct BlockInfo {
    level: StorageLevel,
    size: u64,
    disk_size: Option<u64>,
}

/// The node's blocks. Invariant: a block is in `blocks` iff it is in memory or on disk (or
/// both), and the memory store never exceeds its budget.
pub(crate) struct LocalStore {
    memory: MemoryStore,
    disk: DiskStore,
    blocks: HashMap<BlockId, BlockInfo>,
    compress: bool,
}

pub(crate) fn compress(id: &BlockId, data: &[u8]) -> Result<Bytes, BlockError> {
    zstd::bulk::compress(data, 1)
        .map(Bytes::from)
        .map_err(|source| BlockError::Compression {
            id: id.clone(),
            source,
        })
}

/// Largest decompressed block accepted (guards against a corrupt or hostile frame header).
const MAX_DECOMPRESSED: u64 = 4 << 30;

/// Decompresses a block. The output size is taken from the zstd frame header (always written
/// by [`compress`]) and must not exceed 4 GiB; larger or missing sizes are refused.
pub(crate) fn decompress(id: &BlockId, data: &[u8]) -> Result<Bytes, BlockError> {
    let error = |message: &str| BlockError::Compression {
        id: id.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_string()),
    };
    let size = match zstd::zstd_safe::get_frame_content_size(data) {
        Ok(Some(size)) if size <= MAX_DECOMPRESSED => size,
        Ok(Some(_)) => return Err(error("decompressed size exceeds 4 GiB")),
        _ => return Err(error("zstd frame has no valid content size")),
    };
    zstd::bulk::decompress(data, size as usize)
        .map(Bytes::from)
        .map_err(|source| BlockError::Compression {
            id: id.clone(),
            source,
        })
}

impl LocalStore {
    pub(crate) fn new(memory_capacity: u64, disk: DiskStore, compress: bool) -> Self {
        LocalStore {
            memory: MemoryStore::new(memory_capacity),
            disk,
            blocks: HashMap::new(),
            compress,
        }
    }

    pub(crate) fn memory_used(&self) -> u64 {
        self.memory.used()
    }

    pub(crate) fn memory_capacity(&self) -> u64 {
        self.memory.capacity()
    }

    /// Stores `id` at `level`, replacing any existing copy. Memory levels go to memory when the
    /// block fits in the budget (evicting least-recently-used blocks, which are spilled to disk
    /// if their level allows it, else dropped); a block larger than the budget goes to disk if
    /// the level allows, else fails. Returns the other blocks whose status changed.
    pub(crate) fn put(
        &mut self,
        id: &BlockId,
        payload: Payload,
        level: StorageLevel,
        size: u64,
    ) -> Result<Vec<BlockId>, BlockError> {
        level.validate()?;
        self.remove(id)?;
        let memory_size = match &payload {
            Payload::Bytes(b) => b.data.len() as u64,
            Payload::Values { estimate, .. } => *estimate,
        };
        let info = |disk_size| BlockInfo {
            level,
            size,
            disk_size,
        };
        if level.use_memory && memory_size <= self.memory.capacity() {
            let value = match payload {
                Payload::Bytes(b) => MemoryValue::Bytes {
                    data: b.data,
                    compressed: b.compressed,
                },
                Payload::Values { values, .. } => MemoryValue::Values(values),
            };
            let evicted = self
                .memory
                .put(id.clone(), value, memory_size, level)
                .map_err(|()| self.too_large(id, memory_size, level))?;
            self.blocks.insert(id.clone(), info(None));
            return Ok(self.spill_or_drop(evicted));
        }
        if !level.use_disk {
            return Err(self.too_large(id, memory_size, level));
        }
        let stored = match payload {
            Payload::Bytes(b) => b,
            Payload::Values { values, .. } => self.serialize(id, &values)?,
        };
        let disk_size = self.disk.put(id, &stored.data, stored.compressed)?;
        self.blocks.insert(id.clone(), info(Some(disk_size)));
        Ok(Vec::new())
    }

    fn too_large(&self, id: &BlockId, size: u64, level: StorageLevel) -> BlockError {
        BlockError::TooLargeForMemory {
            id: id.clone(),
            size,
            capacity: self.memory.capacity(),
            level,
        }
    }

    /// Typed values in their stored byte form (encoded, compressed if configured).
    fn serialize(
        &self,
        id: &BlockId,
        values: &Arc<dyn ErasedValues>,
    ) -> Result<StoredBytes, BlockError> {
        let encoded = values.encode();
        if self.compress {
            Ok(StoredBytes {
                data: compress(id, &encoded)?,
                compressed: true,
            })
        } else {
            Ok(StoredBytes {
                data: Bytes::from(encoded),
                compressed: false,
            })
        }
    }

    fn spill_or_drop(&mut self, evicted: Vec<(BlockId, MemoryEntry)>) -> Vec<BlockId> {
        let mut changed = Vec::with_capacity(evicted.len());
        for (id, entry) in evicted {
            let on_disk = self.blocks.get(&id).is_some_and(|i| i.disk_size.is_some());
            if entry.level.use_disk && !on_disk {
                match self.spill(&id, entry.value) {
                    Ok(disk_size) => {
                        if let Some(info) = self.blocks.get_mut(&id) {
                            info.disk_size = Some(disk_size);
                        }
                        tracing::debug!(block = %id, "evicted from memory, spilled to disk");
                    }
                    Err(e) => {
                        tracing::error!(block = %id, error = %e, "spill to disk failed; block dropped");
                        self.blocks.remove(&id);
                    }
                }
            } else if !on_disk {
                tracing::debug!(block = %id, "evicted from memory and dropped");
                self.blocks.remove(&id);
            }
            changed.push(id);
        }
        changed
    }

    fn spill(&self, id: &BlockId, value: MemoryValue) -> Result<u64, BlockError> {
        let stored = match value {
            MemoryValue::Bytes { data, compressed } => StoredBytes { data, compressed },
            MemoryValue::Values(values) => self.serialize(id, &values)?,
        };
        self.disk.put(id, &stored.data, stored.compressed)
    }

    /// The block as held locally (memory first, marking it recently used; then disk), with its
    /// logical size and level.
    ///
    /// A block of a memory level read from disk is cached in memory again when it fits in the
    /// budget (evicting least-recently-used blocks as a put would), keeping its disk copy, as
    /// Spark's `maybeCacheDiskBytesInMemory` does. Blocks whose status this changed, the read
    /// block included, are appended to `changed`.
    pub(crate) fn get(
        &mut self,
        id: &BlockId,
        changed: &mut Vec<BlockId>,
    ) -> Result<Option<(Found, u64, StorageLevel)>, BlockError> {
        let Some(info) = self.blocks.get(id) else {
            return Ok(None);
        };
        let (size, level, on_disk) = (info.size, info.level, info.disk_size.is_some());
        if let Some(value) = self.memory.get(id) {
            let found = match value {
                MemoryValue::Bytes { data, compressed } => {
                    Found::Bytes(StoredBytes { data, compressed })
                }
                MemoryValue::Values(v) => Found::Values(v),
            };
            return Ok(Some((found, size, level)));
        }
        if !on_disk {
            return Ok(None);
        }
        let Some(block) = self.disk.get(id)? else {
            return Ok(None);
        };
        let stored = StoredBytes {
            data: block.data,
            compressed: block.compressed,
        };
        let len = stored.data.len() as u64;
        if level.use_memory && len <= self.memory.capacity() {
            let value = MemoryValue::Bytes {
                data: stored.data.clone(),
                compressed: stored.compressed,
            };
            if let Ok(evicted) = self.memory.put(id.clone(), value, len, level) {
                changed.extend(self.spill_or_drop(evicted));
                changed.push(id.clone());
            }
        }
        Ok(Some((Found::Bytes(stored), size, level)))
    }

    /// The block in its stored byte form, for sending to a peer.
    pub(crate) fn get_stored(
        &mut self,
        id: &BlockId,
        changed: &mut Vec<BlockId>,
    ) -> Result<Option<(StoredBytes, u64, StorageLevel)>, BlockError> {
        match self.get(id, changed)? {
            None => Ok(None),
            Some((Found::Bytes(b), size, level)) => Ok(Some((b, size, level))),
            Some((Found::Values(v), size, level)) => {
                Ok(Some((self.serialize(id, &v)?, size, level)))
            }
        }
    }

    /// Removes the block from memory and disk; `false` if it was not here.
    pub(crate) fn remove(&mut self, id: &BlockId) -> Result<bool, BlockError> {
        let Some(info) = self.blocks.remove(id) else {
            return Ok(false);
        };
        self.memory.remove(id);
        if info.disk_size.is_some() {
            self.disk.remove(id)?;
        }
        Ok(true)
    }

    pub(crate) fn status(&self, id: &BlockId) -> Option<BlockStatus> {
        let info = self.blocks.get(id)?;
        let memory_size = self.memory.size_of(id);
        Some(BlockStatus {
            level: info.level,
            in_memory: memory_size.is_some(),
            on_disk: info.disk_size.is_some(),
            size: info.size,
            memory_size: memory_size.unwrap_or(0),
            disk_size: info.disk_size.unwrap_or(0),
        })
    }

    /// Every block's id and status, for re-registering with a master.
    pub(crate) fn statuses(&self) -> Vec<(BlockId, BlockStatus)> {
        self.blocks
            .keys()
            .filter_map(|id| self.status(id).map(|s| (id.clone(), s)))
            .collect()
    }
}
