//! Mutual TLS: loading a node's identity, building the rustls configs, and naming the peer.
//!
//! Both directions authenticate against the cluster CA only:
//!
//! * as a server, a node requires a client certificate that chains to the CA
//!   ([`WebPkiClientVerifier`]); after the handshake, [`identify_client`] finds which member
//!   the certificate names (see `certs.rs` for the naming scheme);
//! * as a client, a node verifies the server's certificate against the CA and against the
//!   name of the node it meant to dial ([`WebPkiServerVerifier`]).
//!
//! The crypto provider (ring) is passed explicitly to every builder, so nothing depends on a
//! process-wide default provider having been installed. TLS 1.3 only (QUIC requires it);
//! session resumption is off, so every connection presents and checks full certificates.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{AlertDescription, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::names::node_dns_name;
use quorate_proto::NodeId;

/// ALPN protocol id of quorate's transport, version 1. A peer speaking anything else fails the
/// handshake instead of exchanging bytes it would misread.
pub const ALPN: &[u8] = b"quorate/1";

/// Largest PEM input read from a file, in bytes; a certificate bundle is a few KiB.
pub const PEM_FILE_BYTES_MAX: u64 = 1024 * 1024;

/// Errors from generating, loading or using certificates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// The cluster name cannot appear inside a DNS name.
    #[error(
        "cluster name {name:?} cannot be used in certificate names: {reason}; use lowercase \
         letters, digits, '-' and '.', e.g. \"prod-eu\""
    )]
    InvalidClusterName {
        /// The name given.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A node id was listed twice.
    #[error("{node} is listed twice; list each node once")]
    DuplicateNode {
        /// The repeated id.
        node: NodeId,
    },
    /// More nodes than one call may issue certificates for.
    #[error("{count} nodes requested, at most {max} per call; issue the rest in another call")]
    TooManyNodes {
        /// Nodes requested.
        count: usize,
        /// The limit, [`DEV_PKI_NODES_MAX`](super::DEV_PKI_NODES_MAX).
        max: usize,
    },
    /// rcgen failed to generate a key or certificate.
    #[error("generating the {what} failed: {source}")]
    Generate {
        /// What was being generated.
        what: String,
        /// The underlying error.
        #[source]
        source: rcgen::Error,
    },
    /// The dev PKI holds no credentials for this node.
    #[error("the dev PKI has no credentials for {node}; include it in generate_dev_pki's node list")]
    UnknownNode {
        /// The node asked for.
        node: NodeId,
    },
    /// A PEM file could not be read.
    #[error("cannot read the {field} file {path}: {source}; check the path and its permissions")]
    ReadFile {
        /// Which input.
        field: PemField,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A PEM file is larger than [`PEM_FILE_BYTES_MAX`].
    #[error("the {field} file {path} is {len} bytes, more than the {max} a PEM bundle may be")]
    FileTooLarge {
        /// Which input.
        field: PemField,
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        len: u64,
        /// The limit, [`PEM_FILE_BYTES_MAX`].
        max: u64,
    },
    /// The input is not valid PEM, or holds no block of the expected kind.
    #[error("the {field} ({origin}) is unusable: {reason}")]
    BadPem {
        /// Which input.
        field: PemField,
        /// Where it came from: a file path or "PEM string".
        origin: String,
        /// What is wrong, and the expected PEM block.
        reason: String,
    },
    /// The CA certificate could not be used as a trust anchor.
    #[error("the CA certificate ({origin}) cannot be a trust anchor: {source}")]
    BadCaCertificate {
        /// Where it came from.
        origin: String,
        /// rustls' reason.
        #[source]
        source: rustls::Error,
    },
    /// The node certificate and key do not belong together, or the key is of an unsupported
    /// kind.
    #[error(
        "the node certificate ({cert_origin}) and private key ({key_origin}) are unusable \
         together: {source}; check that the key is the one the certificate was issued for"
    )]
    KeyMismatch {
        /// Where the certificate came from.
        cert_origin: String,
        /// Where the key came from.
        key_origin: String,
        /// rustls' reason.
        #[source]
        source: rustls::Error,
    },
    /// The node certificate does not name the node that tries to use it.
    #[error(
        "the node certificate does not name {node} of cluster {cluster_name:?}: it must carry \
         the DNS name {expected:?}"
    )]
    NotThisNode {
        /// The node starting the transport.
        node: NodeId,
        /// The configured cluster name.
        cluster_name: String,
        /// The name the certificate must carry.
        expected: String,
    },
    /// Building a rustls or quinn configuration failed.
    #[error("building the TLS configuration failed: {reason}")]
    Config {
        /// What failed.
        reason: String,
    },
}

/// Which of the three PEM inputs an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PemField {
    /// The cluster CA certificate(s).
    CaCert,
    /// The node's certificate chain.
    NodeCert,
    /// The node's private key.
    NodeKey,
}

impl core::fmt::Display for PemField {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            PemField::CaCert => "CA certificate",
            PemField::NodeCert => "node certificate",
            PemField::NodeKey => "node private key",
        })
    }
}

/// What a node presents and trusts: the cluster CA certificate(s), its own certificate chain
/// and its private key.
///
/// Load with [`TlsIdentity::from_pem`] or [`TlsIdentity::from_pem_files`], or get one from
/// [`DevPki::identity`](super::DevPki::identity). Loading checks that the key matches the certificate, so a
/// mismatch is reported at start with the file names rather than as failed handshakes.
pub struct TlsIdentity {
    ca_certs: Vec<CertificateDer<'static>>,
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl TlsIdentity {
    /// Parses PEM strings: `ca_pem` holds one or more `CERTIFICATE` blocks (the trust
    /// anchors), `cert_pem` the node certificate first and any intermediates after it,
    /// `key_pem` one private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let origin = || "PEM string".to_owned();
        Self::parse(
            [ca_pem.as_bytes(), cert_pem.as_bytes(), key_pem.as_bytes()],
            [origin(), origin(), origin()],
        )
    }

    /// Reads and parses three PEM files; see [`TlsIdentity::from_pem`]. Errors name the file.
    pub fn from_pem_files(
        ca_path: impl AsRef<Path>,
        cert_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
    ) -> Result<Self, PkiError> {
        let paths = [ca_path.as_ref(), cert_path.as_ref(), key_path.as_ref()];
        let ca = read_bounded(PemField::CaCert, paths[0])?;
        let cert = read_bounded(PemField::NodeCert, paths[1])?;
        let key = read_bounded(PemField::NodeKey, paths[2])?;
        let origins = paths.map(|p| p.display().to_string());
        Self::parse([&ca, &cert, &key], origins)
    }

    fn parse(pem: [&[u8]; 3], origins: [String; 3]) -> Result<Self, PkiError> {
        let [ca_origin, cert_origin, key_origin] = origins;
        let ca_certs = parse_certs(PemField::CaCert, pem[0], &ca_origin)?;
        let cert_chain = parse_certs(PemField::NodeCert, pem[1], &cert_origin)?;
        let key = PrivateKeyDer::from_pem_slice(pem[2]).map_err(|e| PkiError::BadPem {
            field: PemField::NodeKey,
            origin: key_origin.clone(),
            reason: pem_reason(&e, "PRIVATE KEY"),
        })?;

        let mut roots = RootCertStore::empty();
        for ca in &ca_certs {
            roots
                .add(ca.clone())
                .map_err(|source| PkiError::BadCaCertificate { origin: ca_origin.clone(), source })?;
        }
        CertifiedKey::from_der(cert_chain.clone(), key.clone_key(), &provider())
            .map_err(|source| PkiError::KeyMismatch { cert_origin, key_origin, source })?;
        Ok(TlsIdentity { ca_certs, cert_chain, key })
    }

    /// Whether the node certificate carries `name` (a DNS name) as a subject alternative name.
    pub(crate) fn names(&self, name: &str) -> bool {
        let Ok(server_name) = ServerName::try_from(name.to_owned()) else { return false };
        let Some(leaf) = self.cert_chain.first() else { return false };
        webpki::EndEntityCert::try_from(leaf)
            .is_ok_and(|ee| ee.verify_is_valid_for_subject_name(&server_name).is_ok())
    }

    /// The secret the stateless-reset and connection-id keys are derived from: the private
    /// key's DER bytes. Stable across restarts of the same node, which is the point (see
    /// `endpoint.rs`).
    pub(crate) fn key_secret(&self) -> &[u8] {
        self.key.secret_der()
    }

    fn roots(&self) -> Result<Arc<RootCertStore>, PkiError> {
        let mut roots = RootCertStore::empty();
        for ca in &self.ca_certs {
            roots.add(ca.clone()).map_err(|source| PkiError::BadCaCertificate {
                origin: "loaded identity".to_owned(),
                source,
            })?;
        }
        Ok(Arc::new(roots))
    }
}

impl Clone for TlsIdentity {
    fn clone(&self) -> Self {
        TlsIdentity {
            ca_certs: self.ca_certs.clone(),
            cert_chain: self.cert_chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl core::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The key never reaches a log.
        f.debug_struct("TlsIdentity")
            .field("ca_certs", &self.ca_certs.len())
            .field("cert_chain", &self.cert_chain.len())
            .finish_non_exhaustive()
    }
}

/// The ring crypto provider, passed explicitly to every rustls builder.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls server config: requires a client certificate chaining to the cluster CA.
pub(crate) fn server_config(id: &TlsIdentity) -> Result<rustls::ServerConfig, PkiError> {
    let provider = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(id.roots()?, provider.clone())
        .build()
        .map_err(|e| PkiError::Config { reason: format!("client certificate verifier: {e}") })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| PkiError::Config { reason: format!("TLS 1.3 with ring: {e}") })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(id.cert_chain.clone(), id.key.clone_key())
        .map_err(|e| PkiError::Config { reason: format!("server certificate: {e}") })?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// The rustls client config: presents the node certificate, verifies servers against the CA.
/// The expected server name is given per connection.
pub(crate) fn client_config(id: &TlsIdentity) -> Result<rustls::ClientConfig, PkiError> {
    let provider = provider();
    let verifier = WebPkiServerVerifier::builder_with_provider(id.roots()?, provider.clone())
        .build()
        .map_err(|e| PkiError::Config { reason: format!("server certificate verifier: {e}") })?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| PkiError::Config { reason: format!("TLS 1.3 with ring: {e}") })?
        .with_webpki_verifier(verifier)
        .with_client_auth_cert(id.cert_chain.clone(), id.key.clone_key())
        .map_err(|e| PkiError::Config { reason: format!("client certificate: {e}") })?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.resumption = Resumption::disabled();
    config.enable_early_data = false;
    Ok(config)
}

/// The names a client certificate is tested against, one per configured member.
#[derive(Debug)]
pub(crate) struct MemberNames {
    names: Vec<(NodeId, ServerName<'static>)>,
}

impl MemberNames {
    /// Names for `members` of `cluster_name`; fails if a name is not a valid DNS name (which
    /// `validate_cluster_name` rules out beforehand).
    pub(crate) fn new(cluster_name: &str, members: impl Iterator<Item = NodeId>) -> Result<Self, PkiError> {
        let mut names = Vec::new();
        for node in members {
            let name = node_dns_name(cluster_name, node);
            let server_name = ServerName::try_from(name.clone())
                .map_err(|e| PkiError::Config { reason: format!("{name:?} is not a DNS name: {e}") })?;
            names.push((node, server_name));
        }
        Ok(MemberNames { names })
    }
}

/// Why the certificate side of an inbound connection was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CertRefusal {
    /// No certificate was presented.
    NoClientCert,
    /// The certificate could not be parsed (its chain was already checked by rustls).
    BadChain,
    /// The certificate names no configured member, several, or this node itself.
    UnknownNode,
}

/// Which member a verified client certificate chain names. `chain` is what quinn's
/// `peer_identity()` returns for rustls sessions: `Vec<CertificateDer<'static>>`, leaf first.
///
/// Exactly one member other than `me` must match; a certificate naming several members is
/// ambiguous and refused, one naming `me` is an impostor or a loop.
pub(crate) fn identify_client(
    chain: Option<Box<dyn core::any::Any>>,
    members: &MemberNames,
    me: NodeId,
) -> Result<NodeId, CertRefusal> {
    let chain = chain
        .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
        .ok_or(CertRefusal::NoClientCert)?;
    let leaf = chain.first().ok_or(CertRefusal::NoClientCert)?;
    let ee = webpki::EndEntityCert::try_from(leaf).map_err(|_| CertRefusal::BadChain)?;
    let mut found = None;
    for (node, name) in &members.names {
        if ee.verify_is_valid_for_subject_name(name).is_ok() {
            if found.is_some() {
                return Err(CertRefusal::UnknownNode);
            }
            found = Some(*node);
        }
    }
    match found {
        Some(node) if node != me => Ok(node),
        _ => Err(CertRefusal::UnknownNode),
    }
}

/// How a failed TLS handshake is counted, from the alert this side raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandshakeFailure {
    /// This side required a certificate and got none.
    NoCert,
    /// This side rejected the peer's certificate (unknown CA, expired, bad signature, wrong
    /// name or usage).
    BadChain,
    /// Anything else: timeouts, the peer aborting, protocol errors.
    Other,
}

/// Classifies a quinn handshake error. Only errors raised locally by rustls carry our alert
/// (`ConnectionError::TransportError` with a crypto code); a peer's abort arrives as
/// `ConnectionClosed` and counts as [`HandshakeFailure::Other`].
pub(crate) fn classify_handshake_error(err: &quinn::ConnectionError) -> HandshakeFailure {
    let quinn::ConnectionError::TransportError(e) = err else { return HandshakeFailure::Other };
    let alert = |a: AlertDescription| quinn::TransportErrorCode::crypto(u8::from(a));
    if e.code == alert(AlertDescription::CertificateRequired) {
        return HandshakeFailure::NoCert;
    }
    let cert_alerts = [
        AlertDescription::BadCertificate,
        AlertDescription::UnsupportedCertificate,
        AlertDescription::CertificateRevoked,
        AlertDescription::CertificateExpired,
        AlertDescription::CertificateUnknown,
        AlertDescription::UnknownCA,
        AlertDescription::AccessDenied,
        AlertDescription::DecryptError,
    ];
    if cert_alerts.into_iter().any(|a| e.code == alert(a)) {
        HandshakeFailure::BadChain
    } else {
        HandshakeFailure::Other
    }
}

fn parse_certs(field: PemField, pem: &[u8], origin: &str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs = CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>().map_err(|e| {
        PkiError::BadPem { field, origin: origin.to_owned(), reason: pem_reason(&e, "CERTIFICATE") }
    })?;
    if certs.is_empty() {
        return Err(PkiError::BadPem {
            field,
            origin: origin.to_owned(),
            reason: "no \"-----BEGIN CERTIFICATE-----\" block found".to_owned(),
        });
    }
    Ok(certs)
}

fn pem_reason(e: &rustls_pki_types::pem::Error, expected: &str) -> String {
    match e {
        rustls_pki_types::pem::Error::NoItemsFound => {
            format!("no \"-----BEGIN {expected}-----\" block found")
        }
        other => format!("malformed PEM: {other}"),
    }
}

fn read_bounded(field: PemField, path: &Path) -> Result<Vec<u8>, PkiError> {
    let read_err = |source| PkiError::ReadFile { field, path: path.to_owned(), source };
    let len = std::fs::metadata(path).map_err(read_err)?.len();
    if len > PEM_FILE_BYTES_MAX {
        return Err(PkiError::FileTooLarge { field, path: path.to_owned(), len, max: PEM_FILE_BYTES_MAX });
    }
    std::fs::read(path).map_err(read_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::generate_dev_pki;

    fn pki() -> crate::certs::DevPki {
        match generate_dev_pki("unit", &[NodeId(1), NodeId(2)]) {
            Ok(p) => p,
            Err(e) => panic!("dev pki: {e}"),
        }
    }

    #[test]
    fn garbage_pem_names_the_field() {
        let pki = pki();
        let Some(n1) = pki.node(NodeId(1)) else { panic!("node 1 missing") };
        let err = TlsIdentity::from_pem("not pem", &n1.cert_pem, &n1.key_pem);
        assert!(matches!(err, Err(PkiError::BadPem { field: PemField::CaCert, .. })), "{err:?}");
        let err = TlsIdentity::from_pem(&pki.ca_cert_pem, &n1.cert_pem, "");
        assert!(matches!(err, Err(PkiError::BadPem { field: PemField::NodeKey, .. })), "{err:?}");
    }

    #[test]
    fn a_key_from_another_node_is_a_mismatch() {
        let pki = pki();
        let (Some(n1), Some(n2)) = (pki.node(NodeId(1)), pki.node(NodeId(2))) else {
            panic!("nodes missing")
        };
        let err = TlsIdentity::from_pem(&pki.ca_cert_pem, &n1.cert_pem, &n2.key_pem);
        assert!(matches!(err, Err(PkiError::KeyMismatch { .. })), "{err:?}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = TlsIdentity::from_pem_files("/nonexistent/ca.pem", "/nonexistent/c", "/nonexistent/k");
        let Err(e) = err else { panic!("expected an error") };
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn identity_names_its_own_node_only() {
        let pki = pki();
        let Ok(id) = pki.identity(NodeId(1)) else { panic!("identity") };
        assert!(id.names("node-1.unit.quorate"));
        assert!(!id.names("node-2.unit.quorate"));
    }
}
