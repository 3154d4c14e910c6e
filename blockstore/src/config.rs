//! Block manager configuration.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// What `put` does when fewer copies than the level's replication could be stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ShortfallPolicy {
    /// Log a warning and succeed (Spark's behaviour).
    #[default]
    Warn,
    /// Fail the put with [`crate::BlockError::ReplicationShortfall`]; the local copy stays.
    Error,
}

/// Configuration of one node's [`crate::BlockManager`].
///
/// The default runs standalone: an in-process master, a transfer service on `127.0.0.1:0`, no
/// secret, no peers.
#[derive(Clone, Debug)]
pub struct BlockStoreConfig {
    /// Directory of the disk store. Each manager keeps its block files in its own
    /// `dir/blockmgr-<node id>/` (as Spark does), so managers may share `dir`; that
    /// subdirectory is deleted when the manager is dropped.
    pub dir: PathBuf,
    /// Memory store budget in bytes; the store never holds more.
    pub memory_capacity: u64,
    /// zstd-compress serialized block bytes in memory, on disk and on the wire (like
    /// `spark.rdd.compress`).
    pub compress: bool,
    /// Address the transfer service listens on (port 0 picks a free port).
    pub listen_addr: SocketAddr,
    /// Host name reported to the master; replication prefers peers on another host.
    pub host: String,
    /// The master's address. `None` runs a master inside this process, served on this node's
    /// listener so other nodes can join it.
    pub master_addr: Option<SocketAddr>,
    /// Shared secret. When set, every connection in either direction must pass an HMAC-SHA256
    /// challenge-response before any request is served (like `spark.authenticate`).
    pub secret: Option<String>,
    /// Whether this node offers itself to peers as a replication target.
    pub accept_replicas: bool,
    /// How often this node heartbeats the master.
    pub heartbeat_interval: Duration,
    /// The master removes a node it has not heard from for this long.
    pub heartbeat_timeout: Duration,
    /// Largest frame accepted from an authenticated peer; longer frames are refused before any
    /// allocation. Blocks larger than this cannot be replicated.
    pub max_frame_size: u32,
    /// Connect and per-request timeout, and how long a connection may sit idle mid-frame.
    pub io_timeout: Duration,
    /// What a put does on a replication shortfall.
    pub shortfall: ShortfallPolicy,
    /// Failed peers tolerated per put before giving up on further copies
    /// (`spark.storage.maxReplicationFailures`).
    pub max_replication_failures: u32,
    /// Disk reads at least this large go through a memory map
    /// (`spark.storage.memoryMapThreshold`).
    pub memory_map_threshold: u64,
}

impl Default for BlockStoreConfig {
    fn default() -> Self {
        BlockStoreConfig {
            dir: std::env::temp_dir().join("tidemark-blocks"),
            memory_capacity: 256 << 20,
            compress: false,
            listen_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            host: "localhost".to_string(),
            master_addr: None,
            secret: None,
            accept_replicas: true,
            heartbeat_interval: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(120),
            max_frame_size: 256 << 20,
            io_timeout: Duration::from_secs(120),
            shortfall: ShortfallPolicy::Warn,
            max_replication_failures: 1,
            memory_map_threshold: 2 << 20,
        }
    }
}
