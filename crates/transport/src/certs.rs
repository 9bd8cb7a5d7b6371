//! Certificates: the naming scheme that binds a node id, and a development PKI generator.
//!
//! # Naming scheme
//!
//! A node's certificate carries exactly one DNS subject alternative name,
//!
//! ```text
//! node-<id>.<cluster name>.quorate        e.g. node-3.prod-eu.quorate
//! ```
//!
//! where `<id>` is the decimal [`NodeId`]. Clients check the server's certificate against the
//! name of the node they meant to dial; servers find the client's node id by testing the
//! client certificate against the name of every configured member (see
//! `tls.rs`). The cluster name is part of the name, so a certificate issued for another
//! cluster by the same CA does not authenticate here. Every certificate is usable as both a
//! TLS server and a TLS client certificate (both extended key usages), because each node
//! both listens and dials.
//!
//! Production clusters can issue such certificates with any CA; [`generate_dev_pki`] makes a
//! throwaway CA and node certificates for tests, demos and first deployments.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

use crate::names::node_dns_name;
use crate::tls::{PkiError, TlsIdentity};
use quorate_proto::NodeId;

/// Longest cluster name accepted, in bytes. Keeps `node-<u64>.<cluster>.quorate` within the
/// 253-byte limit of a DNS name (25 bytes for the node label, 8 for `.quorate`).
pub const CLUSTER_NAME_BYTES_MAX: usize = 200;

/// Largest number of nodes [`generate_dev_pki`] issues certificates for in one call; a bound
/// on the work (one ECDSA key generation per node) a single call can do.
pub const DEV_PKI_NODES_MAX: usize = 1024;

/// Checks that `name` can be embedded in certificate names: one or more dot-separated labels
/// of 1..=63 lowercase ASCII letters, digits or `-` (not at either end of a label), at most
/// [`CLUSTER_NAME_BYTES_MAX`] bytes in all.
///
/// Uppercase is refused rather than folded so that two spellings never name one cluster.
pub fn validate_cluster_name(name: &str) -> Result<(), PkiError> {
    let fail = |reason: &'static str| Err(PkiError::InvalidClusterName { name: name.to_owned(), reason });
    if name.is_empty() {
        return fail("it is empty");
    }
    if name.len() > CLUSTER_NAME_BYTES_MAX {
        return fail("it is longer than 200 bytes");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return fail("it has an empty label (leading, trailing or doubled '.')");
        }
        if label.len() > 63 {
            return fail("a label between dots is longer than 63 bytes");
        }
        if !label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return fail("only lowercase ASCII letters, digits, '-' and '.' are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return fail("a label starts or ends with '-'");
        }
    }
    Ok(())
}

/// A development PKI: one cluster CA and a certificate and key per node, all as PEM.
///
/// Keys are generated in memory with ECDSA P-256. The CA key is included so more nodes can be
/// issued later by an operator tool; treat it, and every node key, as a secret.
#[derive(Clone)]
pub struct DevPki {
    /// The cluster name the node certificates are bound to.
    pub cluster_name: String,
    /// The CA certificate every node trusts (PEM, `CERTIFICATE`).
    pub ca_cert_pem: String,
    /// The CA's private key (PEM, PKCS#8). Secret.
    pub ca_key_pem: String,
    /// One entry per requested node, in the order given.
    pub nodes: Vec<NodeCredentials>,
}

/// One node's certificate and private key, as PEM.
#[derive(Clone)]
pub struct NodeCredentials {
    /// The node the certificate names.
    pub node: NodeId,
    /// The node certificate (PEM, `CERTIFICATE`), signed by the cluster CA.
    pub cert_pem: String,
    /// The node's private key (PEM, PKCS#8). Secret.
    pub key_pem: String,
}

impl DevPki {
    /// The credentials issued for `node`, if any.
    pub fn node(&self, node: NodeId) -> Option<&NodeCredentials> {
        self.nodes.iter().find(|n| n.node == node)
    }

    /// The [`TlsIdentity`] for `node`: the cluster CA plus the node's certificate and key.
    pub fn identity(&self, node: NodeId) -> Result<TlsIdentity, PkiError> {
        let creds = self.node(node).ok_or(PkiError::UnknownNode { node })?;
        TlsIdentity::from_pem(&self.ca_cert_pem, &creds.cert_pem, &creds.key_pem)
    }
}

impl core::fmt::Debug for DevPki {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Keys stay out of logs.
        f.debug_struct("DevPki")
            .field("cluster_name", &self.cluster_name)
            .field("nodes", &self.nodes.iter().map(|n| n.node).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl core::fmt::Debug for NodeCredentials {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NodeCredentials").field("node", &self.node).finish_non_exhaustive()
    }
}

/// Generates a cluster CA and one certificate per node in `nodes`, each naming
/// `node-<id>.<cluster_name>.quorate` (see the module docs).
///
/// Certificates use rcgen's default validity (1975 to 4096): this is a development PKI; a
/// production CA should issue shorter-lived certificates with the same names.
pub fn generate_dev_pki(cluster_name: &str, nodes: &[NodeId]) -> Result<DevPki, PkiError> {
    generate(cluster_name, nodes, &[])
}

/// Like [`generate_dev_pki`], but the certificates of the nodes in `expired` were valid only
/// during the year 2000. For tests that check expired certificates are refused.
#[doc(hidden)]
pub fn generate_dev_pki_with_expired(
    cluster_name: &str,
    nodes: &[NodeId],
    expired: &[NodeId],
) -> Result<DevPki, PkiError> {
    generate(cluster_name, nodes, expired)
}

fn generate(cluster_name: &str, nodes: &[NodeId], expired: &[NodeId]) -> Result<DevPki, PkiError> {
    validate_cluster_name(cluster_name)?;
    if nodes.len() > DEV_PKI_NODES_MAX {
        return Err(PkiError::TooManyNodes { count: nodes.len(), max: DEV_PKI_NODES_MAX });
    }
    for (i, node) in nodes.iter().enumerate() {
        if nodes[..i].contains(node) {
            return Err(PkiError::DuplicateNode { node: *node });
        }
    }

    let gen_err = |what: String| move |source| PkiError::Generate { what, source };
    let ca_key = KeyPair::generate().map_err(gen_err("CA key".into()))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err("CA".into()))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, format!("quorate cluster CA {cluster_name}"));
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_key_pem = ca_key.serialize_pem();
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(gen_err("CA certificate".into()))?;

    let mut issued = Vec::with_capacity(nodes.len());
    for &node in nodes {
        let name = node_dns_name(cluster_name, node);
        let key = KeyPair::generate().map_err(gen_err(format!("key for {node}")))?;
        let mut params =
            CertificateParams::new(vec![name.clone()]).map_err(gen_err(format!("name {name:?}")))?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages =
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        if expired.contains(&node) {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let cert = params.signed_by(&key, &ca).map_err(gen_err(format!("certificate for {node}")))?;
        issued.push(NodeCredentials { node, cert_pem: cert.pem(), key_pem: key.serialize_pem() });
    }

    Ok(DevPki { cluster_name: cluster_name.to_owned(), ca_cert_pem: ca.pem(), ca_key_pem, nodes: issued })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_follow_the_documented_scheme() {
        assert_eq!(node_dns_name("prod-eu", NodeId(3)), "node-3.prod-eu.quorate");
    }

    #[test]
    fn cluster_names_that_cannot_be_dns_labels_are_refused() {
        for bad in ["", "Prod", "a..b", ".a", "a.", "-a", "a-", "a_b", "a b", &"x".repeat(64)] {
            assert!(validate_cluster_name(bad).is_err(), "{bad:?} should be refused");
        }
        for good in ["a", "prod-eu", "prod.eu-1", "0"] {
            assert!(validate_cluster_name(good).is_ok(), "{good:?} should be accepted");
        }
    }

    #[test]
    fn dev_pki_issues_one_loadable_identity_per_node() {
        let pki = generate_dev_pki("test", &[NodeId(1), NodeId(2)]);
        let pki = match pki {
            Ok(p) => p,
            Err(e) => panic!("generation failed: {e}"),
        };
        assert_eq!(pki.nodes.len(), 2);
        assert!(pki.identity(NodeId(1)).is_ok());
        assert!(matches!(pki.identity(NodeId(9)), Err(PkiError::UnknownNode { .. })));
    }

    #[test]
    fn duplicate_nodes_are_refused() {
        let res = generate_dev_pki("test", &[NodeId(1), NodeId(1)]);
        assert!(matches!(res, Err(PkiError::DuplicateNode { node: NodeId(1) })));
    }
}
