//! The certificate name scheme: a node's certificate carries the DNS name
//! `node-<id>.<cluster name>.quorate` (see the crate docs, "Certificate names").

use quorate_proto::NodeId;

/// The DNS name a node's certificate must carry: `node-<id>.<cluster_name>.quorate`.
///
/// Does not validate `cluster_name`; [`crate::validate_cluster_name`] does.
pub fn node_dns_name(cluster_name: &str, node: NodeId) -> String {
    format!("node-{}.{}.quorate", node.0, cluster_name)
}
