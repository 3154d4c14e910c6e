//! The block manager: one node's blocks, its transfer service, and its link to the master.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::block_id::BlockId;
use crate::codec::{Codec, TypedValues};
use crate::config::{BlockStoreConfig, ShortfallPolicy};
use crate::disk::DiskStore;
use crate::error::BlockError;
use crate::executor::Executor;
use crate::level::StorageLevel;
use crate::local::{BlockStatus, Found, LocalStore, Payload, StoredBytes, compress, decompress};
use crate::master::BlockManagerMaster;
use crate::policy::order_peers;
use crate::protocol::{Message, NodeInfo, TransferError};
use crate::transfer::{Transport, TransportConfig, serve};

/// Where this node's master is.
enum MasterLink {
    /// In this process, also served to other nodes on this node's listener.
    Local(Arc<BlockManagerMaster>),
    /// Another node's process.
    Remote(SocketAddr),
}

/// A request to tell the master a block's current status; `done` fires once it was sent.
struct Report {
    id: BlockId,
    done: Option<oneshot::Sender<()>>,
}

/// State shared by the public handle, the transfer service and background tasks.
struct Inner {
    config: BlockStoreConfig,
    node: NodeInfo,
    local: Mutex<LocalStore>,
    master: MasterLink,
    transport: Arc<Transport>,
    reports: mpsc::UnboundedSender<Report>,
    peers_cache: Mutex<Option<(Instant, Vec<NodeInfo>)>>,
}

/// One node's block manager, Spark's `BlockManager`.
///
/// Blocks are stored locally at their [`StorageLevel`] (memory store with LRU eviction and
/// spill, disk store), reported to the master, and for levels with replication > 1 pushed to
/// peers chosen by the replication policy before `put_*` returns. Reads try the local copy,
/// then the holders the master knows of. The API is synchronous; a private tokio runtime runs
/// the transfer service (listening on [`BlockStoreConfig::listen_addr`]), the heartbeat and
/// the master link. Dropping the manager stops them and deletes its disk blocks; the master
/// learns of the departure through missed heartbeats.
pub struct BlockManager {
    inner: Arc<Inner>,
    executor: Executor,
}

fn transfer(peer: impl ToString) -> impl FnOnce(TransferError) -> BlockError {
    move |source| BlockError::Transfer {
        peer: peer.to_string(),
        source,
    }
}

fn bind(executor: &Executor, listen: SocketAddr) -> Result<(TcpListener, SocketAddr), BlockError> {
    let listener = executor
        .run(async move { TcpListener::bind(listen).await })?
        .map_err(|e| BlockError::Startup(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| BlockError::Startup(format!("listener address: {e}")))?;
    Ok((listener, addr))
}

/// The configured remote master, or a new in-process one whose expiry and re-replication
/// loop ticks at half the heartbeat interval.
fn master_link(
    config: &BlockStoreConfig,
    transport: &Arc<Transport>,
    executor: &Executor,
) -> MasterLink {
    if let Some(addr) = config.master_addr {
        return MasterLink::Remote(addr);
    }
    let master = Arc::new(BlockManagerMaster::new(
        config.heartbeat_timeout,
        transport.clone(),
    ));
    let tick = (config.heartbeat_interval / 2).max(std::time::Duration::from_millis(10));
    executor.handle().spawn(master.clone().run(tick));
    MasterLink::Local(master)
}

impl BlockManager {
    /// Starts a node: creates its block directory under `config.dir`, binds the transfer
    /// service, starts or joins the master, registers and begins heartbeating.
    pub fn start(config: BlockStoreConfig) -> Result<BlockManager, BlockError> {
        let executor = Executor::new("tidemark-blockstore", 2)?;
        let node_id: u64 = rand::random();
        let disk_root = config.dir.join(format!("blockmgr-{node_id:016x}"));
        let disk = DiskStore::open(disk_root, config.memory_map_threshold)?;
        let local = LocalStore::new(config.memory_capacity, disk, config.compress);
        let (listener, addr) = bind(&executor, config.listen_addr)?;
        let node = NodeInfo {
            id: node_id,
            addr,
            host: config.host.clone(),
            accepts_replicas: config.accept_replicas,
        };
        let transport_config = TransportConfig {
            secret: config.secret.as_ref().map(|s| Arc::from(s.as_bytes())),
            max_frame: config.max_frame_size,
            io_timeout: config.io_timeout,
        };
        let transport = Arc::new(Transport::new(transport_config.clone()));
        let master = master_link(&config, &transport, &executor);
        let (reports, report_rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            config,
            node,
            local: Mutex::new(local),
            master,
            transport,
            reports,
            peers_cache: Mutex::new(None),
        });
        let service = inner.clone();
        let handler = move |msg| service.clone().handle(msg);
        executor
            .handle()
            .spawn(serve(listener, transport_config, handler));
        executor.run(inner.clone().register())??;
        executor
            .handle()
            .spawn(inner.clone().report_loop(report_rx));
        executor.handle().spawn(inner.clone().heartbeat_loop());
        tracing::info!(node = inner.node.id, %addr, "block manager started");
        Ok(BlockManager { inner, executor })
    }

    /// This node's id, transfer-service address and host.
    pub fn node(&self) -> &NodeInfo {
        &self.inner.node
    }

    /// The address the transfer service listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.node.addr
    }

    /// The master hosted in this process, if this node hosts it.
    pub fn master(&self) -> Option<&BlockManagerMaster> {
        match &self.inner.master {
            MasterLink::Local(m) => Some(m),
            MasterLink::Remote(_) => None,
        }
    }

    /// Stores `data` under `id` at `level`, replacing any copy this node holds, then pushes
    /// `level.replication - 1` copies to peers and waits for their acknowledgements. A shortfall
    /// of copies is logged, or returned as [`BlockError::ReplicationShortfall`] under
    /// [`ShortfallPolicy::Error`] (the copies made are kept either way).
    pub fn put_bytes(
        &self,
        id: BlockId,
        data: Bytes,
        level: StorageLevel,
    ) -> Result<(), BlockError> {
        level.validate()?;
        let size = data.len() as u64;
        let stored = self.inner.to_stored(&id, data)?;
        self.inner
            .store_local(&id, Payload::Bytes(stored.clone()), level, size)?;
        if level.replication == 1 && self.inner.report_to_local_master(&id) {
            return Ok(());
        }
        let inner = self.inner.clone();
        self.executor
            .run(async move { inner.finish_put(id, level, size, Some(stored)).await })?
    }

    /// Stores typed values. Deserialized memory levels keep the values themselves in memory,
    /// charged at the codec's size estimate; other levels store their encoding as bytes.
    pub fn put_values<C: Codec>(
        &self,
        id: BlockId,
        values: Vec<C::Value>,
        level: StorageLevel,
        codec: &C,
    ) -> Result<(), BlockError> {
        if !(level.deserialized && level.use_memory) {
            let mut out = Vec::new();
            codec.encode(&values, &mut out);
            return self.put_bytes(id, Bytes::from(out), level);
        }
        level.validate()?;
        let estimate = codec.estimate_size(&values);
        let values = Arc::new(TypedValues {
            codec: codec.clone(),
            values: Arc::new(values),
        });
        let replica = if level.replication > 1 {
            Some(self.inner.to_stored(
                &id,
                Bytes::from(crate::codec::ErasedValues::encode(&*values)),
            )?)
        } else {
            None
        };
        self.inner
            .store_local(&id, Payload::Values { values, estimate }, level, estimate)?;
        let inner = self.inner.clone();
        self.executor
            .run(async move { inner.finish_put(id, level, estimate, replica).await })?
    }

    /// The block's bytes: this node's copy if it has one, else a copy fetched from a holder the
    /// master knows of; `None` if no live node has it.
    pub fn get_bytes(&self, id: &BlockId) -> Result<Option<Bytes>, BlockError> {
        let local_error = match self.inner.get_local(id) {
            Ok(Some((Found::Bytes(b), _))) => return self.inner.unpack(id, b).map(Some),
            Ok(Some((Found::Values(v), _))) => return Ok(Some(Bytes::from(v.encode()))),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(block = %id, error = %e, "local copy unreadable; trying peers");
                Some(e)
            }
        };
        let inner = self.inner.clone();
        let remote_id = id.clone();
        match (
            self.executor
                .run(async move { inner.get_remote(&remote_id).await })??,
            local_error,
        ) {
            (Some(bytes), _) => Ok(Some(bytes)),
            (None, Some(e)) => Err(e),
            (None, None) => Ok(None),
        }
    }

    /// The block's values, decoded with `codec` unless this node holds them as values.
    pub fn get_values<C: Codec>(
        &self,
        id: &BlockId,
        codec: &C,
    ) -> Result<Option<Arc<Vec<C::Value>>>, BlockError> {
        if let Ok(Some((Found::Values(v), _))) = self.inner.get_local(id) {
            return v
                .values()
                .downcast::<Vec<C::Value>>()
                .map(Some)
                .map_err(|_| BlockError::TypeMismatch { id: id.clone() });
        }
        let Some(bytes) = self.get_bytes(id)? else {
            return Ok(None);
        };
        codec
            .decode(&bytes)
            .map(|v| Some(Arc::new(v)))
            .map_err(|message| BlockError::Codec {
                id: id.clone(),
                message,
            })
    }

    /// Where this node holds the block, if it does.
    pub fn status(&self, id: &BlockId) -> Option<BlockStatus> {
        self.inner.local.lock().status(id)
    }

    /// Removes the block from this node and, through the master, from every node holding it.
    pub fn remove(&self, id: &BlockId) -> Result<(), BlockError> {
        let removed = self.inner.local.lock().remove(id)?;
        let inner = self.inner.clone();
        let id = id.clone();
        self.executor.run(async move {
            if removed {
                inner.report(&id).await;
            }
            inner
                .master_request(Message::RemoveEverywhere { id })
                .await
                .map(|_| ())
        })?
    }

    /// The live nodes holding `id`, according to the master.
    pub fn locations(&self, id: &BlockId) -> Result<Vec<NodeInfo>, BlockError> {
        let inner = self.inner.clone();
        let msg = Message::GetLocations { id: id.clone() };
        match self
            .executor
            .run(async move { inner.master_request(msg).await })??
        {
            Message::Nodes(nodes) => Ok(nodes),
            _ => Err(transfer("master")(TransferError::Unexpected(
                "GetLocations",
            ))),
        }
    }

    /// Bytes the memory store currently holds.
    pub fn memory_used(&self) -> u64 {
        self.inner.local.lock().memory_used()
    }

    /// The memory store's budget.
    pub fn memory_capacity(&self) -> u64 {
        self.inner.local.lock().memory_capacity()
    }
}

impl Drop for BlockManager {
    /// Stops the runtime first, so the last reference to the node's state (and its disk
    /// directory) goes with this handle.
    fn drop(&mut self) {
        self.executor.shutdown();
    }
}

impl Inner {
    /// `data` in stored form: zstd-compressed when the config says so.
    fn to_stored(&self, id: &BlockId, data: Bytes) -> Result<StoredBytes, BlockError> {
        if self.config.compress {
            Ok(StoredBytes {
                data: compress(id, &data)?,
                compressed: true,
            })
        } else {
            Ok(StoredBytes {
                data,
                compressed: false,
            })
        }
    }

    fn unpack(&self, id: &BlockId, stored: StoredBytes) -> Result<Bytes, BlockError> {
        if stored.compressed {
            decompress(id, &stored.data)
        } else {
            Ok(stored.data)
        }
    }

    /// Stores locally and queues status reports for blocks the put evicted.
    fn store_local(
        &self,
        id: &BlockId,
        payload: Payload,
        level: StorageLevel,
        size: u64,
    ) -> Result<(), BlockError> {
        let changed = self.local.lock().put(id, payload, level, size)?;
        self.report_changed(changed);
        Ok(())
    }

    /// With an in-process master, tells it the block's status right away and returns `true`.
    /// The status is read and recorded under the local-store lock, so the master sees every
    /// block's changes in the order they happened.
    fn report_to_local_master(&self, id: &BlockId) -> bool {
        let MasterLink::Local(master) = &self.master else {
            return false;
        };
        let local = self.local.lock();
        master.update_block(self.node.id, id.clone(), local.status(id));
        true
    }

    fn get_local(&self, id: &BlockId) -> Result<Option<(Found, u64)>, BlockError> {
        let mut changed = Vec::new();
        let found = self.local.lock().get(id, &mut changed);
        self.report_changed(changed);
        Ok(found?.map(|(found, size, _)| (found, size)))
    }

    /// The block in stored form, for a peer.
    fn get_stored(
        &self,
        id: &BlockId,
    ) -> Result<Option<(StoredBytes, u64, StorageLevel)>, BlockError> {
        let mut changed = Vec::new();
        let found = self.local.lock().get_stored(id, &mut changed);
        self.report_changed(changed);
        found
    }

    /// Reports status changes without waiting (ordered per master, see `report`).
    fn report_changed(&self, changed: Vec<BlockId>) {
        for id in changed {
            if !self.report_to_local_master(&id) {
                let _ = self.reports.send(Report { id, done: None });
            }
        }
    }

    /// Reports the put block to the master, then replicates it as its level asks.
    async fn finish_put(
        &self,
        id: BlockId,
        level: StorageLevel,
        size: u64,
        replica: Option<StoredBytes>,
    ) -> Result<(), BlockError> {
        self.report(&id).await;
        let (Some(stored), true) = (replica, level.replication > 1) else {
            return Ok(());
        };
        let copies = 1 + self.replicate(&id, level, size, stored).await;
        if copies >= level.replication {
            return Ok(());
        }
        tracing::warn!(block = %id, %level, copies, "replication shortfall");
        match self.config.shortfall {
            ShortfallPolicy::Warn => Ok(()),
            ShortfallPolicy::Error => Err(BlockError::ReplicationShortfall {
                id,
                level,
                achieved: copies,
                required: level.replication,
            }),
        }
    }

    /// Pushes `level.replication - 1` copies to peers in policy order, one at a time, giving up
    /// after more than `max_replication_failures` failed peers. Returns the copies made.
    async fn replicate(
        &self,
        id: &BlockId,
        level: StorageLevel,
        size: u64,
        stored: StoredBytes,
    ) -> u32 {
        let needed = level.replication.saturating_sub(1);
        let peers = match self.peers().await {
            Ok(peers) => order_peers(peers, &self.config.host),
            Err(e) => {
                tracing::warn!(block = %id, error = %e, "cannot get peers from master");
                return 0;
            }
        };
        let msg = Message::PutBlock {
            id: id.clone(),
            level,
            size,
            replicate: false,
            stored,
        };
        self.push_copies(id, &msg, peers, needed).await
    }

    async fn push_copies(
        &self,
        id: &BlockId,
        msg: &Message,
        targets: Vec<NodeInfo>,
        needed: u32,
    ) -> u32 {
        let (mut copies, mut failures) = (0, 0);
        for peer in targets {
            if copies >= needed || failures > self.config.max_replication_failures {
                break;
            }
            match self.transport.request(peer.addr, msg).await {
                Ok(Message::Ok) => copies += 1,
                other => {
                    let error = other
                        .err()
                        .map_or_else(|| "unexpected reply".to_string(), |e| e.to_string());
                    tracing::warn!(block = %id, peer = %peer.addr, %error, "replica push failed");
                    failures += 1;
                    *self.peers_cache.lock() = None;
                }
            }
        }
        copies
    }

    /// Live peers accepting replicas, cached for one heartbeat interval.
    async fn peers(&self) -> Result<Vec<NodeInfo>, BlockError> {
        if let Some((at, peers)) = &*self.peers_cache.lock()
            && at.elapsed() < self.config.heartbeat_interval
        {
            return Ok(peers.clone());
        }
        match self
            .master_request(Message::GetPeers { node: self.node.id })
            .await?
        {
            Message::Nodes(peers) => {
                *self.peers_cache.lock() = Some((Instant::now(), peers.clone()));
                Ok(peers)
            }
            _ => Err(transfer("master")(TransferError::Unexpected("GetPeers"))),
        }
    }

    /// Fetches the block from the holders the master lists, same host first.
    async fn get_remote(&self, id: &BlockId) -> Result<Option<Bytes>, BlockError> {
        let Message::Nodes(holders) = self
            .master_request(Message::GetLocations { id: id.clone() })
            .await?
        else {
            return Err(transfer("master")(TransferError::Unexpected(
                "GetLocations",
            )));
        };
        let mut holders: Vec<NodeInfo> = holders
            .into_iter()
            .filter(|n| n.id != self.node.id)
            .collect();
        holders.sort_by_key(|n| n.host != self.config.host);
        for holder in holders {
            match self
                .transport
                .request(holder.addr, &Message::GetBlock { id: id.clone() })
                .await
            {
                Ok(Message::Block { stored, .. }) => return self.unpack(id, stored).map(Some),
                Ok(_) => {
                    tracing::debug!(block = %id, peer = %holder.addr, "holder no longer has block")
                }
                Err(e) => {
                    tracing::warn!(block = %id, peer = %holder.addr, error = %e, "remote fetch failed")
                }
            }
        }
        Ok(None)
    }

    async fn master_request(&self, msg: Message) -> Result<Message, BlockError> {
        match &self.master {
            MasterLink::Local(master) => match master.handle(msg).await {
                Some(Message::Error { message }) => {
                    Err(transfer("master")(TransferError::Remote(message)))
                }
                Some(reply) => Ok(reply),
                None => Err(transfer("master")(TransferError::Unexpected(
                    "a non-master request",
                ))),
            },
            MasterLink::Remote(addr) => self
                .transport
                .request(*addr, &msg)
                .await
                .map_err(transfer(addr)),
        }
    }

    /// Registers with the master and reports every block held.
    async fn register(self: Arc<Self>) -> Result<(), BlockError> {
        self.master_request(Message::RegisterNode {
            node: self.node.clone(),
        })
        .await?;
        let statuses = self.local.lock().statuses();
        for (id, status) in statuses {
            let msg = Message::UpdateBlock {
                node: self.node.id,
                id,
                status: Some(status),
            };
            self.master_request(msg).await?;
        }
        Ok(())
    }

    /// Reports `id`'s status to the master: directly to an in-process one, else through the
    /// ordered report queue, waiting until it was sent.
    async fn report(&self, id: &BlockId) {
        if self.report_to_local_master(id) {
            return;
        }
        let (tx, rx) = oneshot::channel();
        if self
            .reports
            .send(Report {
                id: id.clone(),
                done: Some(tx),
            })
            .is_ok()
        {
            let _ = rx.await;
        }
    }

    /// Sends queued status reports in order, each with the block's status at sending time.
    async fn report_loop(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Report>) {
        while let Some(report) = rx.recv().await {
            let status = self.local.lock().status(&report.id);
            let msg = Message::UpdateBlock {
                node: self.node.id,
                id: report.id.clone(),
                status,
            };
            match self.master_request(msg).await {
                Ok(Message::Ok) => {}
                Ok(_) => tracing::info!(
                    "master does not know this node; re-registration follows the next heartbeat"
                ),
                Err(e) => {
                    tracing::warn!(block = %report.id, error = %e, "status report to master failed")
                }
            }
            if let Some(done) = report.done {
                let _ = done.send(());
            }
        }
    }

    /// Heartbeats the master; re-registers (reporting all blocks) when the master forgot us.
    async fn heartbeat_loop(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(self.config.heartbeat_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match self
                .master_request(Message::Heartbeat { node: self.node.id })
                .await
            {
                Ok(Message::HeartbeatAck { known: true }) => {}
                Ok(_) => {
                    tracing::warn!(
                        node = self.node.id,
                        "master forgot this node; re-registering"
                    );
                    if let Err(e) = self.clone().register().await {
                        tracing::warn!(error = %e, "re-registration failed");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "heartbeat to master failed"),
            }
        }
    }

    /// Serves one request from a peer.
    async fn handle(self: Arc<Self>, msg: Message) -> Message {
        let result = match msg {
            Message::PutBlock {
                id,
                level,
                size,
                replicate,
                stored,
            } => self.serve_put(id, level, size, replicate, stored).await,
            Message::GetBlock { id } => self.serve_get(id).await,
            Message::RemoveBlock { id } => self.serve_remove(id).await,
            Message::ReplicateBlock { id, targets } => self.serve_replicate(id, targets).await,
            other => match &self.master {
                MasterLink::Local(master) => {
                    Ok(master
                        .handle(other)
                        .await
                        .unwrap_or_else(|| Message::Error {
                            message: "not a request".into(),
                        }))
                }
                MasterLink::Remote(_) => Err(BlockError::Internal(
                    "this node does not host the master".into(),
                )),
            },
        };
        result.unwrap_or_else(|e| Message::Error {
            message: e.to_string(),
        })
    }

    /// Runs local-store work (memory and disk I/O) off the async workers.
    async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Inner) -> Result<T, BlockError> + Send + 'static,
    ) -> Result<T, BlockError> {
        let inner = self.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| BlockError::Internal(format!("local store task: {e}")))?
    }

    async fn serve_put(
        self: Arc<Self>,
        id: BlockId,
        level: StorageLevel,
        size: u64,
        replicate: bool,
        stored: StoredBytes,
    ) -> Result<Message, BlockError> {
        level.validate()?;
        let (put_id, copy) = (id.clone(), stored.clone());
        self.blocking(move |inner| inner.store_local(&put_id, Payload::Bytes(copy), level, size))
            .await?;
        // A replica push (`replicate == false`) only stores and reports; a client's put
        // (`replicate == true`) also pushes the level's further copies.
        self.finish_put(id, level, size, replicate.then_some(stored))
            .await?;
        Ok(Message::Ok)
    }

    async fn serve_get(self: Arc<Self>, id: BlockId) -> Result<Message, BlockError> {
        let found = self.blocking(move |inner| inner.get_stored(&id)).await?;
        Ok(match found {
            Some((stored, size, level)) => Message::Block {
                size,
                level,
                stored,
            },
            None => Message::NotFound,
        })
    }

    async fn serve_remove(self: Arc<Self>, id: BlockId) -> Result<Message, BlockError> {
        let removed_id = id.clone();
        let removed = self
            .blocking(move |inner| inner.local.lock().remove(&removed_id))
            .await?;
        if removed {
            self.report(&id).await;
        }
        Ok(Message::Ok)
    }

    async fn serve_replicate(
        self: Arc<Self>,
        id: BlockId,
        targets: Vec<NodeInfo>,
    ) -> Result<Message, BlockError> {
        let lookup = id.clone();
        let Some((stored, size, level)) = self
            .blocking(move |inner| inner.get_stored(&lookup))
            .await?
        else {
            return Ok(Message::Replicated { copies: 0 });
        };
        let wanted = targets.len() as u32;
        let msg = Message::PutBlock {
            id: id.clone(),
            level,
            size,
            replicate: false,
            stored,
        };
        let copies = self.push_copies(&id, &msg, targets, wanted).await;
        Ok(Message::Replicated { copies })
    }
}
