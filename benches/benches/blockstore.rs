//! Block store benchmarks.
//!
//! - `blockstore_put_get/<level>/<size>`: one `put_bytes` then one `get_bytes` of the same
//!   block on a standalone node, for every single-copy level and 4 KiB, 1 MiB and 16 MiB blocks.
//! - `blockstore_replicated_put/<level>/<size>`: `put_bytes` at a two-copy level from this
//!   process (which hosts the master) to a peer node running in a child process (this bench
//!   binary re-executed in node mode), over loopback TCP without a secret.
//! - `loopback_tcp/raw_send/<size>`: the same bytes sent over a plain loopback TCP connection
//!   to a reader thread that acknowledges each message with one byte: the bandwidth baseline
//!   for the replicated put, measured in the same run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput};
use tidemark_blockstore::{BlockId, BlockManager, BlockStoreConfig, StorageLevel};

const SIZES: [(usize, &str); 3] = [(4 << 10, "4KiB"), (1 << 20, "1MiB"), (16 << 20, "16MiB")];
/// When set (to the master's address), this binary runs as a peer node instead of benchmarking.
const NODE_MODE_ENV: &str = "TIDEMARK_BENCH_BLOCKSTORE_NODE_MASTER";

fn block(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect::<Vec<u8>>()
        .into()
}

fn put_get(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let bm = BlockManager::start(BlockStoreConfig {
        dir: dir.path().to_path_buf(),
        memory_capacity: 256 << 20,
        ..Default::default()
    })
    .expect("start block manager");
    let mut group = c.benchmark_group("blockstore_put_get");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    let levels = StorageLevel::PREDEFINED
        .iter()
        .filter(|(_, l)| l.replication == 1 && l.validate().is_ok());
    for (name, level) in levels {
        for (len, label) in SIZES {
            let data = block(len);
            let id = BlockId::stream(0, len as u64);
            group.throughput(Throughput::Bytes(len as u64));
            group.bench_with_input(BenchmarkId::new(*name, label), &data, |b, data| {
                b.iter(|| {
                    bm.put_bytes(id.clone(), data.clone(), *level).expect("put");
                    bm.get_bytes(&id).expect("get").expect("present")
                })
            });
        }
    }
    group.finish();
}

/// A peer node in a child process; SIGKILLed and reaped on drop.
struct PeerProcess(Child);

impl PeerProcess {
    fn spawn(master: SocketAddr) -> PeerProcess {
        let exe = std::env::current_exe().expect("current exe");
        let mut child = Command::new(exe)
            .env(NODE_MODE_ENV, master.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn peer node");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("peer announcement");
        let peer = PeerProcess(child);
        assert!(
            line.starts_with("listening "),
            "peer node failed to start: {line:?}"
        );
        peer
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Node mode: a peer that accepts replicas until stdin closes.
fn run_peer_node(master: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let bm = BlockManager::start(BlockStoreConfig {
        dir: dir.path().to_path_buf(),
        memory_capacity: 256 << 20,
        master_addr: Some(master.parse().expect("master address")),
        ..Default::default()
    })
    .expect("start peer node");
    println!("listening {}", bm.local_addr());
    let _ = std::io::stdout().flush();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

fn replicated_put(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let bm = BlockManager::start(BlockStoreConfig {
        dir: dir.path().to_path_buf(),
        memory_capacity: 256 << 20,
        accept_replicas: false,
        ..Default::default()
    })
    .expect("start block manager");
    let _peer = PeerProcess::spawn(bm.local_addr());
    let mut group = c.benchmark_group("blockstore_replicated_put");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    let levels = [
        StorageLevel::MEMORY_AND_DISK_SER_2,
        StorageLevel::MEMORY_ONLY_SER_2,
        StorageLevel::DISK_ONLY_2,
    ];
    for level in levels {
        for (len, label) in SIZES {
            let data = block(len);
            let id = BlockId::stream(1, len as u64);
            bm.put_bytes(id.clone(), data.clone(), level).expect("put");
            assert_eq!(
                bm.locations(&id).expect("locations").len(),
                2,
                "replica not stored"
            );
            group.throughput(Throughput::Bytes(len as u64));
            group.bench_with_input(
                BenchmarkId::new(level.to_string(), label),
                &data,
                |b, data| b.iter(|| bm.put_bytes(id.clone(), data.clone(), level).expect("put")),
            );
        }
    }
    group.finish();
}

/// Reads `[len u64][len bytes]` messages and answers each with one byte.
fn tcp_sink(listener: TcpListener) {
    let Ok((mut stream, _)) = listener.accept() else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 16 << 20];
    loop {
        let mut len = [0u8; 8];
        if stream.read_exact(&mut len).is_err() {
            return;
        }
        let len = u64::from_le_bytes(len) as usize;
        if len > buf.len()
            || stream.read_exact(&mut buf[..len]).is_err()
            || stream.write_all(&[1]).is_err()
        {
            return;
        }
    }
}

fn loopback_tcp(c: &mut Criterion) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let sink = std::thread::spawn(move || tcp_sink(listener));
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut group = c.benchmark_group("loopback_tcp");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    for (len, label) in SIZES {
        let data = block(len);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new("raw_send", label), &data, |b, data| {
            b.iter(|| {
                stream
                    .write_all(&(data.len() as u64).to_le_bytes())
                    .expect("send length");
                stream.write_all(data).expect("send");
                let mut ack = [0u8; 1];
                stream.read_exact(&mut ack).expect("ack");
            })
        });
    }
    group.finish();
    drop(stream);
    let _ = sink.join();
}

fn main() {
    if let Ok(master) = std::env::var(NODE_MODE_ENV) {
        run_peer_node(&master);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    put_get(&mut c);
    loopback_tcp(&mut c);
    replicated_put(&mut c);
    c.final_summary();
}
