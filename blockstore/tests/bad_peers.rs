//! Hostile or broken peers against a real `tidemark-node` process: garbage, huge lengths,
//! wrong or missing secrets, unauthenticated requests, hang-ups and stalls mid-frame. After
//! each, the node is still running, still holds every block, and still serves requests.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{NodeProcess, block_data};
use tidemark_blockstore::{BlockError, BlockId, NodeClient, StorageLevel, TransferError};

const SECRET: &str = "bad-peer-test-secret";

/// A node process holding 10 blocks at various levels, and a good client for it.
struct Fixture {
    node: NodeProcess,
    client: NodeClient,
    blocks: Vec<(BlockId, Bytes)>,
}

fn fixture(secret: Option<&str>, extra: &[&str]) -> Fixture {
    let node = NodeProcess::spawn(None, secret, extra);
    let client = NodeClient::new(node.addr, secret, Duration::from_secs(5)).unwrap();
    let levels = [
        StorageLevel::MEMORY_AND_DISK_SER,
        StorageLevel::DISK_ONLY,
        StorageLevel::MEMORY_ONLY_SER,
    ];
    let blocks: Vec<(BlockId, Bytes)> = (0..10)
        .map(|i| {
            (
                BlockId::stream(9, i),
                block_data(i, 10_000 + 100_003 * i as usize),
            )
        })
        .collect();
    for (i, (id, data)) in blocks.iter().enumerate() {
        client
            .put_bytes(id.clone(), data.clone(), levels[i % levels.len()])
            .unwrap();
    }
    Fixture {
        node,
        client,
        blocks,
    }
}

impl Fixture {
    /// The node is alive, lost nothing, and still stores and serves new blocks.
    fn assert_intact(&mut self) {
        assert!(self.node.is_running(), "node process died");
        for (id, data) in &self.blocks {
            assert_eq!(
                self.client.get_local_bytes(id).unwrap().as_ref(),
                Some(data),
                "{id}"
            );
        }
        let id = BlockId::test("after-bad-peer").unwrap();
        self.client
            .put_bytes(
                id.clone(),
                block_data(77, 5000),
                StorageLevel::MEMORY_ONLY_SER,
            )
            .unwrap();
        assert_eq!(
            self.client.get_local_bytes(&id).unwrap(),
            Some(block_data(77, 5000))
        );
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Reads until the node closes the connection (panics if it does not within the timeout).
fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("node did not close the connection: {e}"),
        }
    }
}

/// A frame as the protocol defines it: length, payload, CRC32C of the payload.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out
}

/// A hand-encoded PutBlock request (tag 10) storing `data` under `name` at MEMORY_ONLY_SER.
fn put_block_payload(name: &str, data: &[u8]) -> Vec<u8> {
    let mut p = vec![10u8];
    p.extend_from_slice(&(name.len() as u32).to_le_bytes());
    p.extend_from_slice(name.as_bytes());
    p.extend_from_slice(&[0b010, 1]); // memory, serialized, 1 copy
    p.extend_from_slice(&(data.len() as u64).to_le_bytes());
    p.extend_from_slice(&[0, 0]); // replicate = false, compressed = false
    p.extend_from_slice(&(data.len() as u32).to_le_bytes());
    p.extend_from_slice(data);
    p
}

#[test]
fn garbage_gets_the_connection_closed_and_nothing_else() {
    let mut f = fixture(Some(SECRET), &[]);
    for seed in 0..5 {
        let mut stream = connect(f.node.addr);
        let _ = stream.write_all(&block_data(seed, 64 * 1024));
        read_until_closed(&mut stream);
    }
    // Garbage inside a well-formed frame with a valid checksum, after the hello.
    let mut stream = connect(f.node.addr);
    let _ = stream.write_all(&frame(&block_data(99, 500)));
    read_until_closed(&mut stream);
    f.assert_intact();
}

#[test]
fn huge_lengths_are_refused_before_reading_the_payload() {
    // Authenticated limit: a node without a secret and a 1 MiB frame limit.
    let mut f = fixture(None, &["--max-frame-size", "1048576"]);
    for len in [u32::MAX, 512 << 20, (1 << 20) + 1] {
        let mut stream = connect(f.node.addr);
        let start = Instant::now();
        stream.write_all(&len.to_le_bytes()).unwrap();
        // The node hangs up without waiting for the announced payload.
        read_until_closed(&mut stream);
        assert!(start.elapsed() < Duration::from_secs(5));
    }
    // A legitimate request larger than the limit fails cleanly too.
    let big = block_data(5, 2 << 20);
    let err = f
        .client
        .put_bytes(BlockId::stream(9, 100), big, StorageLevel::MEMORY_ONLY_SER)
        .unwrap_err();
    assert!(matches!(err, BlockError::Transfer { .. }), "{err}");
    f.assert_intact();

    // Before authentication the limit is 1 KiB, whatever the configured maximum.
    let mut f = fixture(Some(SECRET), &[]);
    let mut stream = connect(f.node.addr);
    stream.write_all(&frame(&vec![2u8; 2000])).unwrap();
    read_until_closed(&mut stream);
    f.assert_intact();
}

#[test]
fn wrong_or_missing_secret_gets_nothing_and_stores_nothing() {
    let mut f = fixture(Some(SECRET), &[]);
    let (id, data) = f.blocks[0].clone();
    let stolen = BlockId::stream(9, 500);
    for secret in [Some("wrong-secret"), None] {
        let intruder = NodeClient::new(f.node.addr, secret, Duration::from_secs(5)).unwrap();
        let err = intruder.get_local_bytes(&id).unwrap_err();
        assert!(
            matches!(
                err,
                BlockError::Transfer {
                    source: TransferError::Auth(_),
                    ..
                }
            ),
            "{secret:?}: {err}"
        );
        let err = intruder
            .put_bytes(stolen.clone(), data.clone(), StorageLevel::MEMORY_ONLY_SER)
            .unwrap_err();
        assert!(matches!(err, BlockError::Transfer { .. }), "{err}");
    }
    // A raw client that skips the handshake and sends a valid PutBlock frame.
    let mut stream = connect(f.node.addr);
    let _ = stream.write_all(&frame(&put_block_payload(&stolen.to_string(), b"sneaky")));
    read_until_closed(&mut stream);
    assert_eq!(
        f.client.get_local_bytes(&stolen).unwrap(),
        None,
        "unauthenticated put stored data"
    );
    f.assert_intact();
}

#[test]
fn unauthenticated_raw_put_works_only_when_no_secret_is_configured() {
    // Confirms the hand-encoded frame above is a valid request, so the refusal is the auth's doing.
    let mut f = fixture(None, &[]);
    let id = BlockId::stream(9, 600);
    let mut stream = connect(f.node.addr);
    stream
        .write_all(&frame(&put_block_payload(&id.to_string(), b"plain")))
        .unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let reply = read_until_closed(&mut stream);
    assert!(reply.len() > 8, "expected hello and reply, got {reply:?}");
    assert_eq!(
        f.client.get_local_bytes(&id).unwrap().as_deref(),
        Some(&b"plain"[..])
    );
    f.assert_intact();
}

#[test]
fn hanging_up_or_stalling_mid_frame_loses_nothing() {
    let mut f = fixture(Some(SECRET), &["--io-timeout-ms", "500"]);
    // Hang up mid-frame.
    for cut in [3usize, 8, 20] {
        let mut stream = connect(f.node.addr);
        let full = frame(&put_block_payload("input-9-700", &[7u8; 100]));
        stream.write_all(&full[..cut]).unwrap();
        drop(stream);
    }
    // Stall mid-frame: the node drops the connection after its I/O timeout.
    let mut stream = connect(f.node.addr);
    stream.write_all(&200u32.to_le_bytes()).unwrap();
    let start = Instant::now();
    read_until_closed(&mut stream);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // Many half-open connections at once do not block others.
    let idle: Vec<TcpStream> = (0..50).map(|_| connect(f.node.addr)).collect();
    f.assert_intact();
    drop(idle);
    assert_eq!(
        f.client.get_local_bytes(&BlockId::stream(9, 700)).unwrap(),
        None
    );
}
