//! Replication policy: which peers receive a block's copies.

use rand::seq::SliceRandom;

use crate::protocol::NodeInfo;

/// Orders `candidates` for receiving copies of a block stored on a node of host `local_host`:
/// a random order, with nodes on other hosts before nodes on the same host (so copies survive
/// the loss of a host when the cluster has several). Each node appears at most once; callers
/// take from the front and fall back to later entries when a peer fails.
pub(crate) fn order_peers(mut candidates: Vec<NodeInfo>, local_host: &str) -> Vec<NodeInfo> {
    candidates.sort_by_key(|n| n.id);
    candidates.dedup_by_key(|n| n.id);
    candidates.shuffle(&mut rand::rng());
    // Stable sort keeps the random order within each group.
    candidates.sort_by_key(|n| n.host == local_host);
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u64, host: &str) -> NodeInfo {
        NodeInfo {
            id,
            addr: format!("127.0.0.1:{}", 1000 + id).parse().unwrap(),
            host: host.into(),
            accepts_replicas: true,
        }
    }

    #[test]
    fn other_hosts_first_and_no_duplicates() {
        for _ in 0..20 {
            let ordered = order_peers(
                vec![
                    node(1, "a"),
                    node(2, "b"),
                    node(3, "a"),
                    node(2, "b"),
                    node(4, "c"),
                ],
                "a",
            );
            let ids: Vec<u64> = ordered.iter().map(|n| n.id).collect();
            assert_eq!(ids.len(), 4);
            assert!(ordered[..2].iter().all(|n| n.host != "a"), "{ids:?}");
            assert!(ordered[2..].iter().all(|n| n.host == "a"), "{ids:?}");
        }
    }

    #[test]
    fn order_is_random() {
        let nodes: Vec<NodeInfo> = (0..8).map(|i| node(i, "x")).collect();
        let firsts: std::collections::HashSet<u64> = (0..50)
            .map(|_| order_peers(nodes.clone(), "y")[0].id)
            .collect();
        assert!(firsts.len() > 1);
    }
}
