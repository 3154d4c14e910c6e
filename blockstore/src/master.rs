//! The master: live nodes by heartbeat, each block's holders, and proactive re-replication.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::block_id::BlockId;
use crate::level::StorageLevel;
use crate::local::BlockStatus;
use crate::policy::order_peers;
use crate::protocol::{Message, NodeInfo};
use crate::transfer::Transport;

struct NodeEntry {
    info: NodeInfo,
    last_seen: Instant,
    blocks: HashSet<BlockId>,
}

struct BlockEntry {
    /// The level with the highest replication any holder reported.
    level: StorageLevel,
    holders: HashMap<u64, BlockStatus>,
}

/// Invariants: a block's holders are all live nodes and each lists the block in its `blocks`;
/// a block with no holder is forgotten.
#[derive(Default)]
struct MasterState {
    nodes: HashMap<u64, NodeEntry>,
    blocks: HashMap<BlockId, BlockEntry>,
    /// Blocks that lost a copy with a node and may need re-replication.
    under_replicated: HashSet<BlockId>,
    /// Blocks with a re-replication request outstanding.
    in_flight: HashSet<BlockId>,
}

/// A re-replication request: `source` pushes its copy of `id` to `targets`.
struct ReplicationTask {
    id: BlockId,
    source: NodeInfo,
    targets: Vec<NodeInfo>,
}

/// Spark's `BlockManagerMasterEndpoint`: it knows the live nodes (removing one that misses
/// heartbeats for `heartbeat_timeout`) and where every block's copies are. When a node is
/// removed, each block it held that still has a copy is brought back to its level's
/// replication by asking a surviving holder to push copies to other nodes; attempts repeat
/// every tick until the count is reached or no candidate node is left. Blocks whose last copy
/// was on the removed node are forgotten (lost).
///
/// The master lives in one process (the driver's, or the first node's); nodes reach it over
/// the transfer service, the hosting node by direct calls.
pub struct BlockManagerMaster {
    state: Mutex<MasterState>,
    heartbeat_timeout: Duration,
    transport: Arc<Transport>,
}

impl BlockManagerMaster {
    pub(crate) fn new(heartbeat_timeout: Duration, transport: Arc<Transport>) -> Self {
        BlockManagerMaster {
            state: Mutex::new(MasterState::default()),
            heartbeat_timeout,
            transport,
        }
    }

    /// The live nodes.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.state
            .lock()
            .nodes
            .values()
            .map(|n| n.info.clone())
            .collect()
    }

    /// The live nodes holding `id`.
    pub fn locations(&self, id: &BlockId) -> Vec<NodeInfo> {
        let state = self.state.lock();
        let Some(block) = state.blocks.get(id) else {
            return Vec::new();
        };
        block
            .holders
            .keys()
            .filter_map(|n| state.nodes.get(n).map(|e| e.info.clone()))
            .collect()
    }

    /// Removes a node as if it had missed its heartbeats, scheduling re-replication of its blocks.
    pub fn remove_node(&self, node: u64) -> bool {
        let removed = remove_node_locked(&mut self.state.lock(), node);
        if let Some(info) = &removed {
            self.transport.forget(info.addr);
        }
        removed.is_some()
    }

    fn register(&self, node: NodeInfo) {
        let mut state = self.state.lock();
        let stale: Vec<u64> = state
            .nodes
            .values()
            .filter(|n| n.info.addr == node.addr && n.info.id != node.id)
            .map(|n| n.info.id)
            .collect();
        for id in stale {
            remove_node_locked(&mut state, id);
        }
        tracing::info!(node = node.id, addr = %node.addr, host = %node.host, "node registered");
        let entry = state.nodes.entry(node.id).or_insert_with(|| NodeEntry {
            info: node.clone(),
            last_seen: Instant::now(),
            blocks: HashSet::new(),
        });
        entry.info = node;
        entry.last_seen = Instant::now();
    }

    fn heartbeat(&self, node: u64) -> bool {
        match self.state.lock().nodes.get_mut(&node) {
            Some(entry) => {
                entry.last_seen = Instant::now();
                true
            }
            None => false,
        }
    }

    /// Records where `node` holds `id`; `None` (or neither memory nor disk) means it no longer
    /// does. Returns `false` for an unknown node.
    pub(crate) fn update_block(&self, node: u64, id: BlockId, status: Option<BlockStatus>) -> bool {
        let mut state = self.state.lock();
        let MasterState { nodes, blocks, .. } = &mut *state;
        let Some(entry) = nodes.get_mut(&node) else {
            return false;
        };
        match status.filter(|s| s.in_memory || s.on_disk) {
            Some(status) => {
                entry.blocks.insert(id.clone());
                let block = blocks.entry(id).or_insert_with(|| BlockEntry {
                    level: status.level,
                    holders: HashMap::new(),
                });
                if status.level.replication > block.level.replication {
                    block.level = status.level;
                }
                block.holders.insert(node, status);
            }
            None => {
                entry.blocks.remove(&id);
                if let Some(block) = blocks.get_mut(&id) {
                    block.holders.remove(&node);
                    if block.holders.is_empty() {
                        blocks.remove(&id);
                    }
                }
            }
        }
        true
    }

    fn peers(&self, node: u64) -> Vec<NodeInfo> {
        self.state
            .lock()
            .nodes
            .values()
            .filter(|n| n.info.id != node && n.info.accepts_replicas)
            .map(|n| n.info.clone())
            .collect()
    }

    /// Forgets `id` and tells every holder to delete it.
    async fn remove_everywhere(&self, id: BlockId) {
        let holders = {
            let mut state = self.state.lock();
            let holders = self.locations_locked(&state, &id);
            state.blocks.remove(&id);
            state.under_replicated.remove(&id);
            for node in state.nodes.values_mut() {
                node.blocks.remove(&id);
            }
            holders
        };
        for node in holders {
            let msg = Message::RemoveBlock { id: id.clone() };
            if let Err(e) = self.transport.request(node.addr, &msg).await {
                tracing::warn!(block = %id, node = node.id, error = %e, "remove on holder failed");
            }
        }
    }

    fn locations_locked(&self, state: &MasterState, id: &BlockId) -> Vec<NodeInfo> {
        state.blocks.get(id).map_or_else(Vec::new, |b| {
            b.holders
                .keys()
                .filter_map(|n| state.nodes.get(n).map(|e| e.info.clone()))
                .collect()
        })
    }

    /// Serves a master request; `None` if `msg` is not one.
    pub(crate) async fn handle(&self, msg: Message) -> Option<Message> {
        let reply = match msg {
            Message::RegisterNode { node } => {
                self.register(node);
                Message::Ok
            }
            Message::Heartbeat { node } => Message::HeartbeatAck {
                known: self.heartbeat(node),
            },
            Message::UpdateBlock { node, id, status } => {
                match self.update_block(node, id, status) {
                    true => Message::Ok,
                    false => Message::NotFound,
                }
            }
            Message::GetPeers { node } => Message::Nodes(self.peers(node)),
            Message::GetLocations { id } => Message::Nodes(self.locations(&id)),
            Message::RemoveEverywhere { id } => {
                self.remove_everywhere(id).await;
                Message::Ok
            }
            _ => return None,
        };
        Some(reply)
    }

    /// Expires silent nodes and drives re-replication, every `interval`, forever.
    pub(crate) async fn run(self: Arc<Self>, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            self.expire_silent_nodes();
            for task in self.plan_re_replication() {
                tokio::spawn(self.clone().re_replicate(task));
            }
        }
    }

    fn expire_silent_nodes(&self) {
        let now = Instant::now();
        let silent: Vec<u64> = self
            .state
            .lock()
            .nodes
            .values()
            .filter(|n| now.duration_since(n.last_seen) > self.heartbeat_timeout)
            .map(|n| n.info.id)
            .collect();
        for node in silent {
            tracing::warn!(node, "node missed heartbeats; removing it");
            self.remove_node(node);
        }
    }

    fn plan_re_replication(&self) -> Vec<ReplicationTask> {
        let mut state = self.state.lock();
        let mut tasks = Vec::new();
        let pending: Vec<BlockId> = state.under_replicated.iter().cloned().collect();
        for id in pending {
            if state.in_flight.contains(&id) {
                continue;
            }
            let Some(block) = state.blocks.get(&id) else {
                state.under_replicated.remove(&id);
                continue;
            };
            let needed = (block.level.replication as usize).saturating_sub(block.holders.len());
            if needed == 0 {
                state.under_replicated.remove(&id);
                continue;
            }
            let holders: Vec<&NodeEntry> = block
                .holders
                .keys()
                .filter_map(|n| state.nodes.get(n))
                .collect();
            let candidates: Vec<NodeInfo> = state
                .nodes
                .values()
                .filter(|n| n.info.accepts_replicas && !block.holders.contains_key(&n.info.id))
                .map(|n| n.info.clone())
                .collect();
            let Some(source) = holders.get(rand::random_range(0..holders.len().max(1))) else {
                continue;
            };
            if candidates.is_empty() {
                continue;
            }
            let source = source.info.clone();
            let mut targets = order_peers(candidates, &source.host);
            targets.truncate(needed);
            state.in_flight.insert(id.clone());
            tasks.push(ReplicationTask {
                id,
                source,
                targets,
            });
        }
        tasks
    }

    async fn re_replicate(self: Arc<Self>, task: ReplicationTask) {
        let ReplicationTask {
            id,
            source,
            targets,
        } = task;
        let wanted = targets.len();
        let msg = Message::ReplicateBlock {
            id: id.clone(),
            targets,
        };
        match self.transport.request(source.addr, &msg).await {
            Ok(Message::Replicated { copies }) => {
                tracing::info!(block = %id, from = source.id, copies, wanted, "re-replicated block");
            }
            Ok(_) => tracing::warn!(block = %id, "unexpected reply to re-replication"),
            Err(e) => {
                tracing::warn!(block = %id, from = source.id, error = %e, "re-replication failed")
            }
        }
        self.state.lock().in_flight.remove(&id);
    }
}

fn remove_node_locked(state: &mut MasterState, node: u64) -> Option<NodeInfo> {
    let entry = state.nodes.remove(&node)?;
    for id in entry.blocks {
        let Some(block) = state.blocks.get_mut(&id) else {
            continue;
        };
        block.holders.remove(&node);
        if block.holders.is_empty() {
            tracing::warn!(block = %id, node, "last copy of block lost with its node");
            state.blocks.remove(&id);
        } else if (block.holders.len() as u32) < block.level.replication {
            state.under_replicated.insert(id);
        }
    }
    tracing::info!(node, addr = %entry.info.addr, "node removed");
    Some(entry.info)
}
