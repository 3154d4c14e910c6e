//! The memory store: a byte budget with least-recently-used eviction.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;

use crate::block_id::BlockId;
use crate::codec::ErasedValues;
use crate::level::StorageLevel;

/// What the memory store keeps for a block.
#[derive(Clone)]
pub(crate) enum MemoryValue {
    /// Serialized bytes, zstd-compressed when `compressed`.
    Bytes { data: Bytes, compressed: bool },
    /// Typed values of a deserialized level.
    Values(Arc<dyn ErasedValues>),
}

/// One block in memory.
pub(crate) struct MemoryEntry {
    pub(crate) value: MemoryValue,
    /// Bytes charged against the budget.
    pub(crate) size: u64,
    pub(crate) level: StorageLevel,
    /// Position in the LRU order (larger = more recently used).
    tick: u64,
}

/// Blocks held in memory under a fixed byte budget.
///
/// Invariant: `used` is the sum of the entries' sizes and never exceeds `capacity`; `lru` maps
/// each entry's tick to its id, so its first element is the least recently used block.
pub(crate) struct MemoryStore {
    capacity: u64,
    used: u64,
    entries: HashMap<BlockId, MemoryEntry>,
    lru: BTreeMap<u64, BlockId>,
    next_tick: u64,
}

impl MemoryStore {
    pub(crate) fn new(capacity: u64) -> Self {
        MemoryStore {
            capacity,
            used: 0,
            entries: HashMap::new(),
            lru: BTreeMap::new(),
            next_tick: 0,
        }
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    pub(crate) fn used(&self) -> u64 {
        self.used
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, id: &BlockId) -> bool {
        self.entries.contains_key(id)
    }

    pub(crate) fn size_of(&self, id: &BlockId) -> Option<u64> {
        self.entries.get(id).map(|e| e.size)
    }

    /// The block's value, marking it most recently used.
    pub(crate) fn get(&mut self, id: &BlockId) -> Option<MemoryValue> {
        let tick = self.bump_tick();
        let entry = self.entries.get_mut(id)?;
        self.lru.remove(&entry.tick);
        entry.tick = tick;
        self.lru.insert(tick, id.clone());
        Some(entry.value.clone())
    }

    pub(crate) fn remove(&mut self, id: &BlockId) -> Option<MemoryEntry> {
        let entry = self.entries.remove(id)?;
        self.lru.remove(&entry.tick);
        self.used -= entry.size;
        Some(entry)
    }

    /// Stores a block that is not yet in the store, first evicting least-recently-used blocks
    /// until it fits. Returns the evicted blocks, oldest first, for the caller to spill or drop.
    /// A block larger than the whole budget is refused (`Err`) and nothing is evicted.
    pub(crate) fn put(
        &mut self,
        id: BlockId,
        value: MemoryValue,
        size: u64,
        level: StorageLevel,
    ) -> Result<Vec<(BlockId, MemoryEntry)>, ()> {
        if size > self.capacity {
            return Err(());
        }
        debug_assert!(
            !self.entries.contains_key(&id),
            "caller removes the old copy"
        );
        let mut evicted = Vec::new();
        while self.used + size > self.capacity {
            let Some((_, victim)) = self.lru.pop_first() else {
                break;
            };
            if let Some(entry) = self.entries.remove(&victim) {
                self.used -= entry.size;
                evicted.push((victim, entry));
            }
        }
        let tick = self.bump_tick();
        self.lru.insert(tick, id.clone());
        self.used += size;
        self.entries.insert(
            id,
            MemoryEntry {
                value,
                size,
                level,
                tick,
            },
        );
        Ok(evicted)
    }

    fn bump_tick(&mut self) -> u64 {
        self.next_tick += 1;
        self.next_tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize) -> MemoryValue {
        MemoryValue::Bytes {
            data: Bytes::from(vec![0u8; n]),
            compressed: false,
        }
    }

    fn put(store: &mut MemoryStore, i: u64, n: u64) -> Vec<BlockId> {
        let evicted = store
            .put(
                BlockId::stream(0, i),
                bytes(n as usize),
                n,
                StorageLevel::MEMORY_ONLY_SER,
            )
            .unwrap();
        evicted.into_iter().map(|(id, _)| id).collect()
    }

    #[test]
    fn evicts_least_recently_used_first_and_stays_in_budget() {
        let mut store = MemoryStore::new(100);
        assert!(put(&mut store, 1, 40).is_empty());
        assert!(put(&mut store, 2, 40).is_empty());
        // Touch 1, so 2 is now the least recently used.
        assert!(store.get(&BlockId::stream(0, 1)).is_some());
        assert_eq!(put(&mut store, 3, 40), vec![BlockId::stream(0, 2)]);
        assert_eq!(store.used(), 80);
        assert_eq!(
            put(&mut store, 4, 100),
            vec![BlockId::stream(0, 1), BlockId::stream(0, 3)]
        );
        assert_eq!(store.used(), 100);
        assert!(store.used() <= store.capacity());
    }

    #[test]
    fn larger_than_budget_is_refused_without_evicting() {
        let mut store = MemoryStore::new(100);
        put(&mut store, 1, 60);
        assert!(
            store
                .put(
                    BlockId::stream(0, 2),
                    bytes(101),
                    101,
                    StorageLevel::MEMORY_ONLY
                )
                .is_err()
        );
        assert!(store.contains(&BlockId::stream(0, 1)));
        assert_eq!(
            store.remove(&BlockId::stream(0, 1)).map(|e| e.size),
            Some(60)
        );
        assert_eq!(store.used(), 0);
    }
}
