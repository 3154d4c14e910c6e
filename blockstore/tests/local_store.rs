//! Single-process behaviour: where each level puts a block, eviction and spill, the memory
//! budget, the disk format, typed values and compression.

use std::sync::Arc;

use bytes::Bytes;
use rand::{Rng, SeedableRng, rngs::StdRng};
use tidemark_blockstore::{
    BlockError, BlockId, BlockManager, BlockStoreConfig, Codec, ShortfallPolicy, StorageLevel,
};

const KIB: usize = 1024;

fn start(dir: &tempfile::TempDir, memory_capacity: u64) -> BlockManager {
    BlockManager::start(BlockStoreConfig {
        dir: dir.path().to_path_buf(),
        memory_capacity,
        ..Default::default()
    })
    .unwrap()
}

fn data(seed: u64, len: usize) -> Bytes {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut v = vec![0u8; len];
    rng.fill(&mut v[..]);
    Bytes::from(v)
}

#[test]
fn contract_example_from_the_issue() {
    let dir = tempfile::tempdir().unwrap();
    let level: StorageLevel = "MEMORY_AND_DISK_SER_2".parse().unwrap();
    assert_eq!(level.to_string(), "MEMORY_AND_DISK_SER_2");
    assert_eq!(level, StorageLevel::MEMORY_AND_DISK_SER_2);
    let id = BlockId::stream(0, 42);
    assert_eq!(id.to_string(), "input-0-42");
    let bm = BlockManager::start(BlockStoreConfig {
        dir: dir.path().to_path_buf(),
        memory_capacity: 64 << 20,
        ..Default::default()
    })
    .unwrap();
    bm.put_bytes(
        id.clone(),
        Bytes::from_static(b"..."),
        StorageLevel::MEMORY_AND_DISK_SER,
    )
    .unwrap();
    let got: Option<Bytes> = bm.get_bytes(&id).unwrap();
    assert_eq!(got.as_deref(), Some(&b"..."[..]));
    let st = bm.status(&id).unwrap();
    assert!(st.in_memory && !st.on_disk);
    assert_eq!(st.size, 3);
    bm.remove(&id).unwrap();
    assert!(bm.status(&id).is_none());
    assert_eq!(bm.get_bytes(&id).unwrap(), None);
}

#[test]
fn each_level_places_the_block_where_spark_does() {
    let dir = tempfile::tempdir().unwrap();
    let bm = start(&dir, 1 << 20);
    for (i, (name, level)) in StorageLevel::PREDEFINED.iter().enumerate() {
        let id = BlockId::stream(1, i as u64);
        let block = data(i as u64, 4 * KIB);
        if *level == StorageLevel::NONE {
            let err = bm.put_bytes(id.clone(), block, *level).unwrap_err();
            assert!(
                matches!(err, BlockError::InvalidStorageLevel { .. }),
                "{err}"
            );
            assert!(bm.status(&id).is_none());
            continue;
        }
        bm.put_bytes(id.clone(), block.clone(), *level).unwrap();
        let st = bm.status(&id).unwrap();
        assert_eq!(st.in_memory, level.use_memory, "{name}");
        assert_eq!(
            st.on_disk, !level.use_memory,
            "{name}: memory levels write disk only on eviction"
        );
        assert_eq!((st.size, st.level), (block.len() as u64, *level), "{name}");
        assert_eq!(bm.get_bytes(&id).unwrap(), Some(block), "{name}");
        assert_eq!(
            bm.locations(&id).unwrap(),
            vec![bm.node().clone()],
            "{name}"
        );
        bm.remove(&id).unwrap();
        assert!(bm.status(&id).is_none(), "{name}");
        assert!(bm.locations(&id).unwrap().is_empty(), "{name}");
        assert_eq!(bm.get_bytes(&id).unwrap(), None, "{name}");
    }
    assert_eq!(bm.memory_used(), 0);
}

#[test]
fn eviction_is_lru_spills_disk_levels_and_drops_memory_only_ones() {
    let dir = tempfile::tempdir().unwrap();
    let bm = start(&dir, 100 * KIB as u64);
    let (a, b, c, d) = (
        BlockId::stream(0, 1),
        BlockId::stream(0, 2),
        BlockId::stream(0, 3),
        BlockId::stream(0, 4),
    );
    let blocks: Vec<Bytes> = (0..4).map(|i| data(i, 40 * KIB)).collect();
    bm.put_bytes(
        a.clone(),
        blocks[0].clone(),
        StorageLevel::MEMORY_AND_DISK_SER,
    )
    .unwrap();
    bm.put_bytes(b.clone(), blocks[1].clone(), StorageLevel::MEMORY_ONLY_SER)
        .unwrap();
    // Reading `a` makes `b` the least recently used block.
    assert_eq!(bm.get_bytes(&a).unwrap().as_ref(), Some(&blocks[0]));
    bm.put_bytes(c.clone(), blocks[2].clone(), StorageLevel::MEMORY_AND_DISK)
        .unwrap();
    assert!(
        bm.status(&b).is_none(),
        "memory-only block is dropped on eviction"
    );
    assert_eq!(bm.get_bytes(&b).unwrap(), None);
    assert!(
        bm.locations(&b).unwrap().is_empty(),
        "the master learns of the drop"
    );
    let st = bm.status(&a).unwrap();
    assert!(st.in_memory && !st.on_disk);
    bm.put_bytes(d.clone(), blocks[3].clone(), StorageLevel::MEMORY_ONLY)
        .unwrap();
    let st = bm.status(&a).unwrap();
    assert!(
        !st.in_memory && st.on_disk,
        "disk level is spilled on eviction: {st:?}"
    );
    assert_eq!(bm.locations(&a).unwrap(), vec![bm.node().clone()]);
    // Reading a spilled block caches it in memory again (evicting the least recently used
    // block, `c`, which spills) and keeps its disk copy: it now lives in both places.
    assert_eq!(bm.get_bytes(&a).unwrap().as_ref(), Some(&blocks[0]));
    let st = bm.status(&a).unwrap();
    assert!(st.in_memory && st.on_disk, "{st:?}");
    let st = bm.status(&c).unwrap();
    assert!(!st.in_memory && st.on_disk, "{st:?}");
    assert!(bm.status(&d).unwrap().in_memory);
    assert_eq!(bm.memory_used(), 80 * KIB as u64);
    // `d` is now the least recently used: a memory-only block, dropped.
    bm.put_bytes(b.clone(), blocks[1].clone(), StorageLevel::MEMORY_ONLY_SER)
        .unwrap();
    assert!(bm.status(&d).is_none());
    // Then `a`: already on disk, so eviction only drops its memory copy.
    let e = BlockId::stream(0, 5);
    bm.put_bytes(e.clone(), blocks[3].clone(), StorageLevel::MEMORY_ONLY_SER)
        .unwrap();
    let st = bm.status(&a).unwrap();
    assert!(!st.in_memory && st.on_disk, "{st:?}");
    assert!(bm.status(&b).unwrap().in_memory && bm.status(&e).unwrap().in_memory);
}

#[test]
fn memory_budget_is_never_exceeded_and_disk_levels_never_lose_data() {
    let dir = tempfile::tempdir().unwrap();
    let capacity = 256 * KIB as u64;
    let bm = start(&dir, capacity);
    let mut rng = StdRng::seed_from_u64(7);
    let levels: Vec<StorageLevel> = StorageLevel::PREDEFINED[1..]
        .iter()
        .map(|(_, l)| *l)
        .collect();
    let mut expected: Vec<(BlockId, StorageLevel, Bytes)> = Vec::new();
    for i in 0..300u64 {
        let level = levels[rng.random_range(0..levels.len())];
        let len = rng.random_range(1..=64 * KIB);
        let block = data(i, len);
        let id = BlockId::stream(2, i);
        bm.put_bytes(id.clone(), block.clone(), level).unwrap();
        assert!(
            bm.memory_used() <= capacity,
            "{} > {capacity}",
            bm.memory_used()
        );
        if !expected.is_empty() && rng.random_bool(0.3) {
            let (old_id, old_level, old_block) = &expected[rng.random_range(0..expected.len())];
            match bm.get_bytes(old_id).unwrap() {
                Some(got) => assert!(got == old_block, "{old_id} read back different bytes"),
                None => assert!(!old_level.use_disk, "{old_id} at {old_level} was lost"),
            }
        }
        expected.push((id, level, block));
    }
    // Reads cache disk blocks back in memory, so account first, then read.
    let statuses: Vec<_> = expected.iter().map(|(id, _, _)| bm.status(id)).collect();
    let used: u64 = statuses.iter().flatten().map(|st| st.memory_size).sum();
    assert_eq!(used, bm.memory_used());
    for ((id, level, block), status) in expected.iter().zip(statuses) {
        if let Some(st) = status {
            assert!(st.in_memory || st.on_disk);
        }
        // Earlier reads may have evicted (and so dropped) a memory-only block.
        match bm.get_bytes(id).unwrap() {
            Some(got) => assert!(got == block, "{id} read back different bytes"),
            None => assert!(!level.use_disk, "{id} at {level} was lost"),
        }
        assert!(bm.memory_used() <= capacity);
    }
}

#[test]
fn block_larger_than_budget_goes_to_disk_or_fails_by_level() {
    let dir = tempfile::tempdir().unwrap();
    let bm = start(&dir, 64 * KIB as u64);
    let small = BlockId::stream(3, 0);
    bm.put_bytes(small.clone(), data(0, 16 * KIB), StorageLevel::MEMORY_ONLY)
        .unwrap();
    let big = data(1, 65 * KIB);
    let err = bm
        .put_bytes(
            BlockId::stream(3, 1),
            big.clone(),
            StorageLevel::MEMORY_ONLY_SER,
        )
        .unwrap_err();
    assert!(
        matches!(err, BlockError::TooLargeForMemory { size, capacity, .. } if size == 65 * KIB as u64 && capacity == 64 * KIB as u64),
        "{err}"
    );
    assert!(bm.status(&BlockId::stream(3, 1)).is_none());
    assert!(
        bm.status(&small).unwrap().in_memory,
        "a refused block evicts nothing"
    );
    bm.put_bytes(
        BlockId::stream(3, 2),
        big.clone(),
        StorageLevel::MEMORY_AND_DISK_SER,
    )
    .unwrap();
    let st = bm.status(&BlockId::stream(3, 2)).unwrap();
    assert!(!st.in_memory && st.on_disk);
    assert_eq!(bm.get_bytes(&BlockId::stream(3, 2)).unwrap(), Some(big));
    assert!(bm.status(&small).unwrap().in_memory);
}

#[test]
fn put_replaces_an_existing_copy() {
    let dir = tempfile::tempdir().unwrap();
    let bm = start(&dir, 1 << 20);
    let id = BlockId::rdd(1, 2);
    bm.put_bytes(id.clone(), data(1, 1000), StorageLevel::DISK_ONLY)
        .unwrap();
    bm.put_bytes(id.clone(), data(2, 500), StorageLevel::MEMORY_ONLY_SER)
        .unwrap();
    let st = bm.status(&id).unwrap();
    assert!(st.in_memory && !st.on_disk && st.size == 500);
    assert_eq!(bm.get_bytes(&id).unwrap(), Some(data(2, 500)));
    assert_eq!(bm.memory_used(), 500);
}

#[test]
fn lone_node_stores_one_copy_and_reports_the_shortfall() {
    let dir = tempfile::tempdir().unwrap();
    let bm = start(&dir, 1 << 20);
    let id = BlockId::stream(4, 0);
    bm.put_bytes(
        id.clone(),
        data(0, 100),
        StorageLevel::MEMORY_AND_DISK_SER_2,
    )
    .unwrap();
    assert_eq!(bm.locations(&id).unwrap().len(), 1);

    let dir = tempfile::tempdir().unwrap();
    let strict = BlockManager::start(BlockStoreConfig {
        dir: dir.path().to_path_buf(),
        shortfall: ShortfallPolicy::Error,
        ..Default::default()
    })
    .unwrap();
    let err = strict
        .put_bytes(id.clone(), data(0, 100), StorageLevel::DISK_ONLY_3)
        .unwrap_err();
    assert!(
        matches!(
            err,
            BlockError::ReplicationShortfall {
                achieved: 1,
                required: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        strict.status(&id).unwrap().on_disk,
        "the local copy is kept"
    );
}

#[test]
fn disk_files_live_in_hashed_subdirectories_and_are_checksummed() {
    let dir = tempfile::tempdir().unwrap();
    let bm = start(&dir, 1 << 20);
    let id = BlockId::stream(5, 9);
    bm.put_bytes(id.clone(), data(9, 10_000), StorageLevel::DISK_ONLY)
        .unwrap();
    let files: Vec<_> = walk(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let path = &files[0];
    assert_eq!(path.file_name().unwrap(), "input-5-9");
    let sub = path
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(sub.len(), 2, "hashed subdirectory name: {sub}");
    let own = path.parent().unwrap().parent().unwrap();
    assert_eq!(own.parent().unwrap(), dir.path());
    let own_name = own.file_name().unwrap().to_str().unwrap();
    assert!(own_name.starts_with("blockmgr-"), "{own_name}");
    let mut raw = std::fs::read(path).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 0x55;
    std::fs::write(path, &raw).unwrap();
    let err = bm.get_bytes(&id).unwrap_err();
    assert!(matches!(err, BlockError::Corrupt { .. }), "{err}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn compressed_blocks_round_trip_in_memory_and_through_mapped_disk_reads() {
    let dir = tempfile::tempdir().unwrap();
    let bm = BlockManager::start(BlockStoreConfig {
        dir: dir.path().to_path_buf(),
        memory_capacity: 8 << 20,
        compress: true,
        memory_map_threshold: 4096,
        ..Default::default()
    })
    .unwrap();
    let text: Bytes = "streaming records compress well. ".repeat(100_000).into();
    let (m, d) = (BlockId::stream(6, 1), BlockId::stream(6, 2));
    bm.put_bytes(m.clone(), text.clone(), StorageLevel::MEMORY_ONLY_SER)
        .unwrap();
    bm.put_bytes(d.clone(), text.clone(), StorageLevel::DISK_ONLY)
        .unwrap();
    let st = bm.status(&m).unwrap();
    assert_eq!(st.size, text.len() as u64);
    assert!(st.memory_size < st.size / 10, "{st:?}");
    assert!(bm.status(&d).unwrap().disk_size < st.size / 10);
    assert_eq!(bm.get_bytes(&m).unwrap(), Some(text.clone()));
    assert_eq!(bm.get_bytes(&d).unwrap(), Some(text));
}

/// A codec for `u64` values, eight bytes each.
#[derive(Clone)]
struct U64Codec;

impl Codec for U64Codec {
    type Value = u64;
    fn encode(&self, values: &[u64], out: &mut Vec<u8>) {
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    fn decode(&self, bytes: &[u8]) -> Result<Vec<u64>, String> {
        if !bytes.len().is_multiple_of(8) {
            return Err(format!("{} bytes is not a multiple of 8", bytes.len()));
        }
        Ok(bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect())
    }
    fn estimate_size(&self, values: &[u64]) -> u64 {
        24 + 8 * values.len() as u64
    }
}

#[derive(Clone)]
struct StringCodec;

impl Codec for StringCodec {
    type Value = String;
    fn encode(&self, values: &[String], out: &mut Vec<u8>) {
        out.extend_from_slice(values.join("\n").as_bytes());
    }
    fn decode(&self, bytes: &[u8]) -> Result<Vec<String>, String> {
        let s = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
        Ok(s.split('\n').map(str::to_string).collect())
    }
    fn estimate_size(&self, values: &[String]) -> u64 {
        values.iter().map(|s| 24 + s.len() as u64).sum()
    }
}

#[test]
fn deserialized_levels_keep_typed_values_and_spill_their_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let bm = start(&dir, 64 * KIB as u64);
    let values: Vec<u64> = (0..1000).collect();
    let id = BlockId::stream(7, 0);
    bm.put_values(
        id.clone(),
        values.clone(),
        StorageLevel::MEMORY_AND_DISK,
        &U64Codec,
    )
    .unwrap();
    let st = bm.status(&id).unwrap();
    assert!(st.in_memory && !st.on_disk);
    assert_eq!(
        (st.size, st.memory_size),
        (8024, 8024),
        "charged at the codec's estimate"
    );
    let first = bm.get_values(&id, &U64Codec).unwrap().unwrap();
    let second = bm.get_values(&id, &U64Codec).unwrap().unwrap();
    assert!(
        Arc::ptr_eq(&first, &second),
        "values are served from memory, not decoded"
    );
    assert_eq!(*first, values);
    assert!(matches!(
        bm.get_values(&id, &StringCodec),
        Err(BlockError::TypeMismatch { .. })
    ));
    let bytes = bm.get_bytes(&id).unwrap().unwrap();
    assert_eq!(U64Codec.decode(&bytes).unwrap(), values);

    // Fill memory so the values block is evicted and spilled as its encoding.
    bm.put_bytes(
        BlockId::stream(7, 1),
        data(1, 60 * KIB),
        StorageLevel::MEMORY_ONLY_SER,
    )
    .unwrap();
    let st = bm.status(&id).unwrap();
    assert!(!st.in_memory && st.on_disk);
    assert_eq!(*bm.get_values(&id, &U64Codec).unwrap().unwrap(), values);

    // Serialized levels store the encoding as bytes.
    let ser = BlockId::stream(7, 2);
    bm.put_values(
        ser.clone(),
        vec!["a".to_string(), "b".to_string()],
        StorageLevel::MEMORY_ONLY_SER,
        &StringCodec,
    )
    .unwrap();
    assert_eq!(bm.status(&ser).unwrap().size, 3);
    assert_eq!(bm.get_bytes(&ser).unwrap().as_deref(), Some(&b"a\nb"[..]));
    assert_eq!(
        *bm.get_values(&ser, &StringCodec).unwrap().unwrap(),
        vec!["a", "b"]
    );
}

#[test]
fn managers_sharing_a_directory_keep_separate_blocks_and_clean_up() {
    let dir = tempfile::tempdir().unwrap();
    let a = start(&dir, 1 << 20);
    let b = start(&dir, 1 << 20);
    let id = BlockId::stream(8, 1);
    a.put_bytes(id.clone(), data(1, 100), StorageLevel::DISK_ONLY)
        .unwrap();
    b.put_bytes(id.clone(), data(2, 100), StorageLevel::DISK_ONLY)
        .unwrap();
    assert_eq!(a.get_bytes(&id).unwrap(), Some(data(1, 100)));
    assert_eq!(b.get_bytes(&id).unwrap(), Some(data(2, 100)));
    drop(a);
    assert_eq!(b.get_bytes(&id).unwrap(), Some(data(2, 100)));
    drop(b);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "block directories are deleted"
    );
}

#[test]
fn concurrent_puts_and_gets_stay_in_budget_and_read_back_whole_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let capacity = 200 * KIB as u64;
    let bm = Arc::new(start(&dir, capacity));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let bm = bm.clone();
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(t);
                for i in 0..100u64 {
                    let id = BlockId::stream(t as u32, i % 10);
                    let block = data(t * 1000 + i, rng.random_range(1..=48 * KIB));
                    bm.put_bytes(id.clone(), block.clone(), StorageLevel::MEMORY_AND_DISK_SER)
                        .unwrap();
                    assert!(bm.memory_used() <= capacity);
                    // Only this thread writes this id, so it reads back what it just wrote.
                    assert_eq!(bm.get_bytes(&id).unwrap(), Some(block));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(bm.memory_used() <= capacity);
}
