//! Block handlers against a real block manager and a real receiver WAL: a
//! block is found again after the block store lost it only when the WAL held it.

use std::sync::Arc;

use bytes::Bytes;
use tidemark_blockstore::{BlockManager, BlockStoreConfig, StorageLevel};
use tidemark_stream::handler::{
    BlockStoreHandler, DEFAULT_STORE_TIMEOUT, ReceivedBlockHandler, WalBlockHandler,
    level_with_wal, read_block, receiver_wal_dir,
};
use tidemark_stream::{StreamBlockId, StreamError};

fn block_manager(dir: &std::path::Path) -> Arc<BlockManager> {
    let config = BlockStoreConfig {
        dir: dir.join("blocks"),
        ..BlockStoreConfig::default()
    };
    Arc::new(BlockManager::start(config).expect("block manager"))
}

fn records(n: usize, tag: &str) -> Vec<Bytes> {
    (0..n)
        .map(|i| Bytes::from(format!("{tag}-{i} payload")))
        .collect()
}

#[test]
fn a_block_store_block_reads_back_and_is_lost_with_its_only_copy() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bm = block_manager(tmp.path());
    let handler = BlockStoreHandler::new(bm.clone(), StorageLevel::MEMORY_ONLY);
    let id = StreamBlockId {
        stream_id: 0,
        unique_id: 1,
    };
    let recs = records(100, "a");
    let info = handler.store_block(id, &recs).expect("store");
    assert_eq!((info.num_records, info.wal), (Some(100), None));
    assert_eq!(read_block(&bm, &info, None).expect("read"), recs);
    // The only copy goes (an executor died with it): the block is lost, and says so.
    bm.remove(&id.block_id()).expect("remove");
    match read_block(&bm, &info, Some(tmp.path())) {
        Err(StreamError::BlockLost(lost)) => assert_eq!(lost, id),
        other => panic!("expected BlockLost, got {other:?}"),
    }
}

#[test]
fn a_wal_block_survives_the_loss_of_its_block_store_copy_and_of_its_writer() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bm = block_manager(tmp.path());
    let wal_root = tmp.path().join("wal");
    let level = level_with_wal(StorageLevel::MEMORY_AND_DISK_SER_2, false);
    assert_eq!(level, StorageLevel::MEMORY_AND_DISK_SER);
    let handler = WalBlockHandler::open(
        7,
        &receiver_wal_dir(&wal_root, 7),
        bm.clone(),
        level,
        DEFAULT_STORE_TIMEOUT,
    )
    .expect("open handler");
    let infos: Vec<_> = (0..5u64)
        .map(|i| {
            let id = StreamBlockId {
                stream_id: 7,
                unique_id: i,
            };
            let info = handler
                .store_block(id, &records(50, &format!("b{i}")))
                .expect("store");
            assert_eq!(info.wal.map(|w| w.stream_id), Some(7));
            info
        })
        .collect();
    for info in &infos {
        bm.remove(&info.block.block_id())
            .expect("lose the block store copy");
    }
    // Read from the WAL while the handler still writes it (a read-only open)...
    let got = read_block(&bm, &infos[2], Some(&wal_root)).expect("read from WAL");
    assert_eq!(got, records(50, "b2"));
    // ...and after the writer is gone.
    drop(handler);
    let got = read_block(&bm, &infos[4], Some(&wal_root)).expect("read from WAL");
    assert_eq!(got, records(50, "b4"));
}

#[test]
fn removing_blocks_lets_the_receiver_wal_drop_what_no_batch_needs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bm = block_manager(tmp.path());
    let dir = receiver_wal_dir(&tmp.path().join("wal"), 1);
    let handler = WalBlockHandler::open(
        1,
        &dir,
        bm.clone(),
        StorageLevel::MEMORY_ONLY,
        DEFAULT_STORE_TIMEOUT,
    )
    .expect("open handler");
    // 64 MiB segments: 400 blocks of 400 KiB fill three.
    let big: Vec<Bytes> = (0..100).map(|_| Bytes::from(vec![7u8; 4096])).collect();
    let infos: Vec<_> = (0..400u64)
        .map(|i| {
            handler
                .store_block(
                    StreamBlockId {
                        stream_id: 1,
                        unique_id: i,
                    },
                    &big,
                )
                .expect("store")
        })
        .collect();
    handler.remove_blocks(&infos[..390]).expect("remove");
    assert!(
        bm.get_bytes(&infos[0].block.block_id())
            .expect("get")
            .is_none()
    );
    drop(handler);
    // What is still live reads back from the WAL; what was removed is gone from it.
    for info in &infos[390..] {
        bm.remove(&info.block.block_id()).expect("lose copy");
        assert_eq!(
            read_block(&bm, info, Some(&tmp.path().join("wal")))
                .expect("live block")
                .len(),
            100
        );
    }
    let wal =
        tidemark_wal::Wal::open_read_only(&dir, tidemark_wal::WalOptions::default()).expect("open");
    let first = wal.first_lsn().expect("records left").0;
    assert!(
        first > infos[0].wal.expect("wal").lsn,
        "the oldest blocks' segments were retired (first LSN {first})"
    );
}
