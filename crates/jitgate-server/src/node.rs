//! This server node's identity among several on one database (docs/cluster.md): held in the
//! state, named in gateway links, leases and `/readyz`.

use jitgate_core::Timestamp;

/// This node.
#[derive(Debug, Clone)]
pub struct Node {
    /// `[cluster] node_id`, unique in the cluster.
    pub id: String,
    /// The URL operators and gateways reach it at.
    pub url: String,
    pub started_at: Timestamp,
}
