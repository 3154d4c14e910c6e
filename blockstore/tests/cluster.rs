//! Replication between nodes: real `tidemark-node` processes on loopback, SIGKILL, and
//! proactive re-replication; plus in-process nodes for replica placement and removal.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{HEARTBEAT_MS, HEARTBEAT_TIMEOUT_MS, NodeProcess, block_data, wait_until};
use tidemark_blockstore::{
    BlockError, BlockId, BlockManager, BlockStoreConfig, NodeClient, ShortfallPolicy, StorageLevel,
    TransferError,
};

const SECRET: &str = "cluster-test-secret";

/// A config with test heartbeats; `master` None hosts the master here.
fn config(
    dir: &tempfile::TempDir,
    master: Option<std::net::SocketAddr>,
    secret: Option<&str>,
) -> BlockStoreConfig {
    BlockStoreConfig {
        dir: dir.path().to_path_buf(),
        memory_capacity: 64 << 20,
        master_addr: master,
        secret: secret.map(str::to_string),
        heartbeat_interval: Duration::from_millis(HEARTBEAT_MS),
        heartbeat_timeout: Duration::from_millis(HEARTBEAT_TIMEOUT_MS),
        io_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

/// A driver hosting the master and holding no replicas, like Spark's driver.
fn driver(dir: &tempfile::TempDir, secret: Option<&str>) -> BlockManager {
    BlockManager::start(BlockStoreConfig {
        accept_replicas: false,
        ..config(dir, None, secret)
    })
    .unwrap()
}

#[test]
fn sigkill_of_a_holder_keeps_blocks_readable_and_re_replication_restores_two_copies() {
    let dir = tempfile::tempdir().unwrap();
    let driver = driver(&dir, Some(SECRET));
    let mut nodes: Vec<NodeProcess> = (0..3)
        .map(|_| NodeProcess::spawn(Some(driver.local_addr()), Some(SECRET), &[]))
        .collect();
    let master = driver.master().unwrap();
    assert_eq!(master.nodes().len(), 4);

    let client = NodeClient::new(nodes[0].addr, Some(SECRET), Duration::from_secs(5)).unwrap();
    let blocks: Vec<(BlockId, bytes::Bytes)> = (0..20)
        .map(|i| {
            (
                BlockId::stream(0, i),
                block_data(i, 1000 + 517 * i as usize),
            )
        })
        .collect();
    for (id, data) in &blocks {
        client
            .put_bytes(
                id.clone(),
                data.clone(),
                StorageLevel::MEMORY_AND_DISK_SER_2,
            )
            .unwrap();
        let holders: HashSet<u64> = driver.locations(id).unwrap().iter().map(|n| n.id).collect();
        assert_eq!(holders.len(), 2, "{id}: {holders:?}");
        assert!(holders.contains(&nodes[0].id), "the put node keeps a copy");
        assert!(
            !holders.contains(&driver.node().id),
            "the driver accepts no replicas"
        );
    }

    let dead = nodes[0].id;
    nodes[0].kill();
    // Before the master notices, reads skip the dead holder and use the survivor.
    for (id, data) in &blocks {
        assert_eq!(driver.get_bytes(id).unwrap().as_ref(), Some(data), "{id}");
    }

    let live: HashSet<u64> = nodes[1..].iter().map(|n| n.id).collect();
    let restored = wait_until(Duration::from_secs(15), || {
        blocks.iter().all(|(id, _)| {
            let holders: HashSet<u64> =
                driver.locations(id).unwrap().iter().map(|n| n.id).collect();
            holders.len() == 2 && holders.is_subset(&live)
        })
    });
    assert!(restored, "re-replication did not restore two live copies");
    assert!(!master.nodes().iter().any(|n| n.id == dead));
    for (id, data) in &blocks {
        for holder in driver.locations(id).unwrap() {
            let peer = NodeClient::new(holder.addr, Some(SECRET), Duration::from_secs(5)).unwrap();
            assert_eq!(
                peer.get_local_bytes(id).unwrap().as_ref(),
                Some(data),
                "{id} on {}",
                holder.addr
            );
        }
    }
}

#[test]
fn replicas_land_on_peers_and_remove_deletes_every_copy() {
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let driver = driver(&dirs[0], None);
    let nodes: Vec<BlockManager> = dirs[1..]
        .iter()
        .map(|d| BlockManager::start(config(d, Some(driver.local_addr()), None)).unwrap())
        .collect();
    let copies = |id: &BlockId| nodes.iter().filter(|n| n.status(id).is_some()).count();

    let id = BlockId::stream(1, 1);
    let data = block_data(1, 300_000);
    nodes[0]
        .put_bytes(id.clone(), data.clone(), StorageLevel::MEMORY_ONLY_SER_2)
        .unwrap();
    assert_eq!(copies(&id), 2);
    for node in nodes.iter().filter(|n| n.status(&id).is_some()) {
        let st = node.status(&id).unwrap();
        assert!(st.in_memory && !st.on_disk && st.size == 300_000, "{st:?}");
    }
    assert_eq!(
        driver.get_bytes(&id).unwrap(),
        Some(data.clone()),
        "remote read"
    );

    let disk = BlockId::stream(1, 2);
    nodes[1]
        .put_bytes(disk.clone(), data.clone(), StorageLevel::DISK_ONLY_3)
        .unwrap();
    assert_eq!(copies(&disk), 3);
    assert!(
        nodes
            .iter()
            .all(|n| n.status(&disk).is_some_and(|s| s.on_disk && !s.in_memory))
    );

    nodes[2].remove(&id).unwrap();
    nodes[2].remove(&disk).unwrap();
    assert_eq!((copies(&id), copies(&disk)), (0, 0));
    assert_eq!(driver.get_bytes(&id).unwrap(), None);
    assert!(driver.locations(&disk).unwrap().is_empty());
}

#[test]
fn compressed_replicas_travel_and_stay_compressed() {
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = BlockManager::start(BlockStoreConfig {
        compress: true,
        ..config(&dirs[0], None, None)
    })
    .unwrap();
    let b = BlockManager::start(config(&dirs[1], Some(a.local_addr()), None)).unwrap();
    let id = BlockId::rdd(4, 0);
    let text: bytes::Bytes = "abcabcabc".repeat(10_000).into();
    a.put_bytes(id.clone(), text.clone(), StorageLevel::MEMORY_AND_DISK_2)
        .unwrap();
    let st = b.status(&id).unwrap();
    assert_eq!(st.size, text.len() as u64);
    assert!(
        st.memory_size < st.size / 10,
        "replica travels and stays compressed: {st:?}"
    );
    assert_eq!(b.get_bytes(&id).unwrap(), Some(text));
}

#[test]
fn shortfall_is_an_error_when_configured() {
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = BlockManager::start(BlockStoreConfig {
        shortfall: ShortfallPolicy::Error,
        ..config(&dirs[0], None, None)
    })
    .unwrap();
    let _b = BlockManager::start(config(&dirs[1], Some(a.local_addr()), None)).unwrap();
    let id = BlockId::stream(2, 0);
    a.put_bytes(
        id.clone(),
        block_data(2, 10),
        StorageLevel::MEMORY_ONLY_SER_2,
    )
    .unwrap();
    let err = a
        .put_bytes(id.clone(), block_data(2, 10), StorageLevel::DISK_ONLY_3)
        .unwrap_err();
    assert!(
        matches!(
            err,
            BlockError::ReplicationShortfall {
                achieved: 2,
                required: 3,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        a.locations(&id).unwrap().len(),
        2,
        "the copies made are kept"
    );
}

#[test]
fn joining_requires_the_shared_secret() {
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let driver = driver(&dirs[0], Some(SECRET));
    for secret in [Some("wrong"), None] {
        let Err(err) = BlockManager::start(config(&dirs[1], Some(driver.local_addr()), secret))
        else {
            panic!("joined with secret {secret:?}");
        };
        assert!(
            matches!(
                err,
                BlockError::Transfer {
                    source: TransferError::Auth(_) | TransferError::Remote(_),
                    ..
                }
            ),
            "{err}"
        );
    }
    assert_eq!(driver.master().unwrap().nodes().len(), 1);
    let _ok =
        BlockManager::start(config(&dirs[2], Some(driver.local_addr()), Some(SECRET))).unwrap();
    assert_eq!(driver.master().unwrap().nodes().len(), 2);
}

#[test]
fn a_node_the_master_forgot_re_registers_with_its_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let driver = driver(&dir, None);
    let node = NodeProcess::spawn(Some(driver.local_addr()), None, &[]);
    let client = NodeClient::new(node.addr, None, Duration::from_secs(5)).unwrap();
    let id = BlockId::stream(3, 3);
    client
        .put_bytes(id.clone(), block_data(3, 64), StorageLevel::DISK_ONLY)
        .unwrap();
    let master = driver.master().unwrap();
    assert!(master.remove_node(node.id));
    assert!(driver.locations(&id).unwrap().is_empty());
    let back = wait_until(Duration::from_secs(5), || {
        driver
            .locations(&id)
            .unwrap()
            .iter()
            .any(|n| n.id == node.id)
    });
    assert!(back, "node did not re-register with its blocks");
    assert_eq!(driver.get_bytes(&id).unwrap(), Some(block_data(3, 64)));
}

#[test]
fn replicas_prefer_another_host_and_never_repeat_a_node() {
    let dirs: Vec<tempfile::TempDir> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let driver = driver(&dirs[0], None);
    let on_host = |d: &tempfile::TempDir, host: &str| {
        BlockManager::start(BlockStoreConfig {
            host: host.to_string(),
            ..config(d, Some(driver.local_addr()), None)
        })
        .unwrap()
    };
    let a = on_host(&dirs[1], "rack-a");
    let a2 = on_host(&dirs[2], "rack-a");
    let b = on_host(&dirs[3], "rack-b");
    for i in 0..10 {
        let id = BlockId::stream(5, i);
        a.put_bytes(
            id.clone(),
            block_data(i, 100),
            StorageLevel::MEMORY_ONLY_SER_2,
        )
        .unwrap();
        assert!(
            b.status(&id).is_some(),
            "copy {i} did not go to the other host"
        );
        assert!(a2.status(&id).is_none());
    }
    // With three copies the same-host node is used as well, each node once.
    let id = BlockId::stream(5, 100);
    a.put_bytes(id.clone(), block_data(100, 100), StorageLevel::DISK_ONLY_3)
        .unwrap();
    let holders: Vec<u64> = driver
        .locations(&id)
        .unwrap()
        .iter()
        .map(|n| n.id)
        .collect();
    let unique: HashSet<u64> = holders.iter().copied().collect();
    assert_eq!((holders.len(), unique.len()), (3, 3), "{holders:?}");
}
