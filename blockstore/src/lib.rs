//! A Spark-style block store: storage levels, an LRU memory store that spills to a
//! checksummed disk store, a master that tracks nodes by heartbeat and re-replicates the
//! blocks of lost nodes, and replication between node processes over an authenticated,
//! checksummed TCP protocol.
//!
//! ```no_run
//! use tidemark_blockstore::{BlockId, BlockManager, BlockStoreConfig, StorageLevel};
//! # fn main() -> Result<(), tidemark_blockstore::BlockError> {
//! let bm = BlockManager::start(BlockStoreConfig { dir: "/tmp/blocks".into(), ..Default::default() })?;
//! let id = BlockId::stream(0, 42);
//! bm.put_bytes(id.clone(), bytes::Bytes::from_static(b"records"), StorageLevel::MEMORY_AND_DISK_SER)?;
//! assert_eq!(bm.get_bytes(&id)?.as_deref(), Some(&b"records"[..]));
//! # Ok(()) }
//! ```

mod auth;
mod block_id;
mod client;
mod codec;
mod config;
mod disk;
mod error;
mod executor;
mod level;
mod local;
mod manager;
mod master;
mod memory;
mod policy;
mod protocol;
mod transfer;

pub use block_id::BlockId;
pub use client::NodeClient;
pub use codec::Codec;
pub use config::{BlockStoreConfig, ShortfallPolicy};
pub use error::BlockError;
pub use level::StorageLevel;
pub use local::BlockStatus;
pub use manager::BlockManager;
pub use master::BlockManagerMaster;
pub use protocol::{NodeInfo, TransferError};
