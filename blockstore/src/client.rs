//! A client for one node's transfer service, for processes that are not nodes themselves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::block_id::BlockId;
use crate::error::BlockError;
use crate::executor::Executor;
use crate::level::StorageLevel;
use crate::local::{StoredBytes, decompress};
use crate::protocol::{Message, TransferError};
use crate::transfer::{Transport, TransportConfig};

/// Talks to one node over its transfer service (authenticating with `secret` when given),
/// e.g. a receiver handing blocks to a nearby node, or tests driving node processes.
pub struct NodeClient {
    addr: SocketAddr,
    transport: Arc<Transport>,
    executor: Executor,
}

impl NodeClient {
    /// A client for the node at `addr`; connections are opened on first use.
    pub fn new(
        addr: SocketAddr,
        secret: Option<&str>,
        io_timeout: Duration,
    ) -> Result<Self, BlockError> {
        let transport = Transport::new(TransportConfig {
            secret: secret.map(|s| Arc::from(s.as_bytes())),
            max_frame: u32::MAX,
            io_timeout,
        });
        Ok(NodeClient {
            addr,
            transport: Arc::new(transport),
            executor: Executor::new("tidemark-node-client", 1)?,
        })
    }

    fn request(&self, msg: Message) -> Result<Message, BlockError> {
        let (transport, addr) = (self.transport.clone(), self.addr);
        self.executor
            .run(async move { transport.request(addr, &msg).await })?
            .map_err(|source| BlockError::Transfer {
                peer: addr.to_string(),
                source,
            })
    }

    /// Has the node store the block at `level`, including pushing the level's replicas to its
    /// peers; returns once the node's put returned.
    pub fn put_bytes(
        &self,
        id: BlockId,
        data: Bytes,
        level: StorageLevel,
    ) -> Result<(), BlockError> {
        let size = data.len() as u64;
        let stored = StoredBytes {
            data,
            compressed: false,
        };
        match self.request(Message::PutBlock {
            id,
            level,
            size,
            replicate: true,
            stored,
        })? {
            Message::Ok => Ok(()),
            _ => Err(self.unexpected("PutBlock")),
        }
    }

    /// The node's own copy of the block (no remote lookup), or `None`.
    pub fn get_local_bytes(&self, id: &BlockId) -> Result<Option<Bytes>, BlockError> {
        match self.request(Message::GetBlock { id: id.clone() })? {
            Message::NotFound => Ok(None),
            Message::Block { stored, .. } if stored.compressed => {
                decompress(id, &stored.data).map(Some)
            }
            Message::Block { stored, .. } => Ok(Some(stored.data)),
            _ => Err(self.unexpected("GetBlock")),
        }
    }

    fn unexpected(&self, what: &'static str) -> BlockError {
        BlockError::Transfer {
            peer: self.addr.to_string(),
            source: TransferError::Unexpected(what),
        }
    }
}
