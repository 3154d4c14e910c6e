//! An output task on an executor: blocks from a real block manager, one lost
//! and read back from the receiver WAL, the records in allocation order.

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tidemark_blockstore::{BlockManager, BlockStoreConfig, StorageLevel};
use tidemark_stream::graph::{GraphBuilder, TaskInput, TaskSpec};
use tidemark_stream::handler::{
    BlockStoreHandler, DEFAULT_STORE_TIMEOUT, ReceivedBlockHandler, WalBlockHandler,
    receiver_wal_dir,
};
use tidemark_stream::task_runner::TaskRunner;
use tidemark_stream::{BatchTime, StreamBlockId};

#[test]
fn a_task_reads_its_blocks_in_order_from_the_store_or_the_wal_and_runs_its_output() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = BlockStoreConfig {
        dir: tmp.path().join("blocks"),
        ..BlockStoreConfig::default()
    };
    let bm = Arc::new(BlockManager::start(config).expect("block manager"));
    let wal_root = tmp.path().join("wal");
    let wal = WalBlockHandler::open(
        0,
        &receiver_wal_dir(&wal_root, 0),
        bm.clone(),
        StorageLevel::MEMORY_ONLY,
        DEFAULT_STORE_TIMEOUT,
    )
    .expect("wal handler");
    let plain = BlockStoreHandler::new(bm.clone(), StorageLevel::MEMORY_ONLY);
    let lines = |from: u32| -> Vec<Bytes> {
        (from..from + 3)
            .map(|i| Bytes::from(format!("{i} x")))
            .collect()
    };
    let first = wal
        .store_block(
            StreamBlockId {
                stream_id: 0,
                unique_id: 1,
            },
            &lines(0),
        )
        .expect("store");
    let second = plain
        .store_block(
            StreamBlockId {
                stream_id: 0,
                unique_id: 2,
            },
            &lines(3),
        )
        .expect("store");
    // The first block's block-store copy is lost with its executor; the WAL still has it.
    bm.remove(&first.block.block_id()).expect("lose it");

    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let g = GraphBuilder::new();
    g.socket_text_stream("127.0.0.1:1")
        .map(|l: String| l.split_whitespace().next().unwrap_or("").to_string())
        .foreach_batch("ids", move |b| {
            sink.lock().push((b.time(), b.into_records()));
            Ok(())
        });
    let runner = TaskRunner::new(
        Arc::new(g.build().expect("graph")),
        bm,
        Some(wal_root),
        None,
    );
    let task = TaskSpec {
        output: "ids".into(),
        batch: BatchTime(2000),
        input: TaskInput::Blocks(vec![first, second]),
    };
    assert_eq!(
        runner.run(&task.encode()).expect("run"),
        Bytes::from_static(b"6")
    );
    let ids: Vec<String> = (0..6).map(|i| i.to_string()).collect();
    assert_eq!(*seen.lock(), vec![(BatchTime(2000), ids)]);

    let unknown = TaskSpec {
        output: "nope".into(),
        ..task
    };
    assert!(
        runner
            .run(&unknown.encode())
            .expect_err("unknown output")
            .contains("nope")
    );
    assert!(
        runner
            .run(b"\x07garbage")
            .expect_err("bad task")
            .contains("bad task")
    );
}
