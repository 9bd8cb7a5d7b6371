//! Operator tools on top of the naming scheme in `certs.rs`: issue one more node certificate
//! from an existing CA, and read back what a certificate binds and until when.
//!
//! ```text
//!   ca.pem + ca.key ──issue_node_certificate(cluster, node, days)──► node-<id>.pem / .key
//!   any PEM bundle  ──read_certificates──► [CertificateInfo { names, node, not_after, .. }]
//! ```
//!
//! Both speak the scheme [`node_dns_name`] defines (`node-<id>.<cluster>.quorate`, one DNS
//! subject alternative name), which is also what cert-manager or any other CA must put into
//! a certificate for quorate to accept it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;

use crate::certs::{validate_cluster_name, NodeCredentials};
use crate::names::node_dns_name;
use crate::tls::{PemField, PkiError};
use quorate_proto::NodeId;

/// Longest validity [`issue_node_certificate`] grants, in days (about 27 years): a bound
/// that keeps the arithmetic far from overflow and a typo from issuing forever.
pub const ISSUE_DAYS_MAX: u32 = 10_000;

/// How far before "now" an issued certificate starts to be valid, so that a peer whose
/// clock runs a little behind accepts it at once.
pub const ISSUE_BACKDATE: Duration = Duration::from_secs(3600);

/// Certificates one [`read_certificates`] call parses at most (a bound on the work a bundle
/// handed to it can cause).
pub const READ_CERTIFICATES_MAX: usize = 64;

/// What one certificate binds, read back from its DER encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The subject's distinguished name, as text (`CN=node-3.prod-eu.quorate`).
    pub subject: String,
    /// The issuer's distinguished name, as text.
    pub issuer: String,
    /// Every DNS subject alternative name.
    pub dns_names: Vec<String>,
    /// Whether the certificate is a CA (basic constraints).
    pub is_ca: bool,
    /// Start of validity, seconds since the Unix epoch.
    pub not_before_unix: i64,
    /// End of validity, seconds since the Unix epoch.
    pub not_after_unix: i64,
    /// The node and cluster the certificate names, when exactly one of its DNS names
    /// follows the scheme `node-<id>.<cluster>.quorate`; `None` otherwise (a CA, or a
    /// certificate quorate would not accept as a node's).
    pub node: Option<(NodeId, String)>,
}

impl CertificateInfo {
    /// Seconds until the certificate expires at `now_unix` (negative once it has).
    pub fn seconds_left(&self, now_unix: i64) -> i64 {
        self.not_after_unix.saturating_sub(now_unix)
    }
}

/// Reads the node and cluster out of a DNS name of the scheme `node-<id>.<cluster>.quorate`;
/// `None` for any other name (including a cluster name [`validate_cluster_name`] refuses,
/// and `node-0`, which is not a valid node id).
pub fn parse_node_dns_name(name: &str) -> Option<(NodeId, String)> {
    let rest = name.strip_prefix("node-")?.strip_suffix(".quorate")?;
    let (id, cluster) = rest.split_once('.')?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) || (id.len() > 1 && id.starts_with('0')) {
        return None;
    }
    let id: u64 = id.parse().ok().filter(|id| *id > 0)?;
    validate_cluster_name(cluster).ok()?;
    Some((NodeId(id), cluster.to_owned()))
}

/// Parses every `CERTIFICATE` block in `pem` (at most [`READ_CERTIFICATES_MAX`]); `origin`
/// names the input in errors (a path, or "PEM string").
pub fn read_certificates(pem: &[u8], origin: &str) -> Result<Vec<CertificateInfo>, PkiError> {
    let bad =
        |reason: String| PkiError::BadPem { field: PemField::NodeCert, origin: origin.to_owned(), reason };
    let mut out = Vec::new();
    for (i, der) in CertificateDer::pem_slice_iter(pem).enumerate() {
        if i == READ_CERTIFICATES_MAX {
            return Err(bad(format!("more than {READ_CERTIFICATES_MAX} certificates")));
        }
        let der = der.map_err(|e| bad(format!("not PEM: {e}")))?;
        out.push(describe(&der).map_err(|e| bad(format!("certificate {} cannot be read: {e}", i + 1)))?);
    }
    if out.is_empty() {
        return Err(bad("no \"-----BEGIN CERTIFICATE-----\" block found".to_owned()));
    }
    Ok(out)
}

fn describe(der: &CertificateDer<'_>) -> Result<CertificateInfo, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let dns_names: Vec<String> = match cert.subject_alternative_name().map_err(|e| e.to_string())? {
        Some(san) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(name) => Some((*name).to_owned()),
                _ => None,
            })
            .collect(),
        None => Vec::new(),
    };
    let mut nodes = dns_names.iter().filter_map(|n| parse_node_dns_name(n));
    let node = match (nodes.next(), nodes.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    };
    Ok(CertificateInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        dns_names,
        is_ca: cert.is_ca(),
        not_before_unix: cert.validity().not_before.timestamp(),
        not_after_unix: cert.validity().not_after.timestamp(),
        node,
    })
}

/// Issues a certificate and key for `node` of `cluster`, signed by an existing CA (its
/// certificate and private key as PEM), valid from [`ISSUE_BACKDATE`] before `now` for
/// `days`. The certificate is shaped like the ones [`generate_dev_pki`](super::generate_dev_pki)
/// makes: one DNS name `node-<id>.<cluster>.quorate`, usable as TLS server and client.
pub fn issue_node_certificate(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    cluster: &str,
    node: NodeId,
    days: u32,
    now: SystemTime,
) -> Result<NodeCredentials, PkiError> {
    validate_cluster_name(cluster)?;
    let bad_ca =
        |reason: String| PkiError::BadPem { field: PemField::CaCert, origin: "CA".to_owned(), reason };
    if node.0 == 0 {
        return Err(bad_ca("node id 0 is not a valid node id".to_owned()));
    }
    if days == 0 || days > ISSUE_DAYS_MAX {
        return Err(bad_ca(format!("validity of {days} days; 1 to {ISSUE_DAYS_MAX} are allowed")));
    }
    let gen_err = |what: &str| {
        let what = what.to_owned();
        move |source| PkiError::Generate { what, source }
    };
    let ca_key = KeyPair::from_pem(ca_key_pem).map_err(gen_err("CA key (reading ca.key)"))?;
    let issuer = Issuer::from_ca_cert_pem(ca_cert_pem, ca_key).map_err(gen_err("CA (reading ca.pem)"))?;

    let name = node_dns_name(cluster, node);
    let key = KeyPair::generate().map_err(gen_err("node key"))?;
    let mut params = CertificateParams::new(vec![name.clone()]).map_err(gen_err("node name"))?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages =
        vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    let start = unix_seconds(now).saturating_sub(ISSUE_BACKDATE.as_secs());
    let end = start + ISSUE_BACKDATE.as_secs() + u64::from(days) * 86_400;
    params.not_before = datetime(start).map_err(bad_ca)?;
    params.not_after = datetime(end).map_err(bad_ca)?;
    let cert = params.signed_by(&key, &issuer).map_err(gen_err("node certificate"))?;
    Ok(NodeCredentials { node, cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn datetime(unix: u64) -> Result<time::OffsetDateTime, String> {
    let secs = i64::try_from(unix).map_err(|_| format!("time {unix} out of range"))?;
    time::OffsetDateTime::from_unix_timestamp(secs).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate_dev_pki;

    #[test]
    fn node_names_read_back_into_id_and_cluster() {
        assert_eq!(parse_node_dns_name("node-3.prod-eu.quorate"), Some((NodeId(3), "prod-eu".to_owned())));
        assert_eq!(parse_node_dns_name("node-12.a.b.quorate"), Some((NodeId(12), "a.b".to_owned())));
        for bad in [
            "node-0.x.quorate",
            "node-03.x.quorate",
            "node-.x.quorate",
            "node-3.quorate",
            "node-3.X.quorate",
            "node-3.x.example",
            "nodes-3.x.quorate",
            "node-99999999999999999999.x.quorate",
        ] {
            assert_eq!(parse_node_dns_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_dev_certificate_reads_back_as_its_node_and_cluster() -> Result<(), PkiError> {
        let pki = generate_dev_pki("prod-eu", &[NodeId(2)])?;
        let node = &read_certificates(pki.nodes[0].cert_pem.as_bytes(), "test")?[0];
        assert_eq!(node.dns_names, vec!["node-2.prod-eu.quorate".to_owned()]);
        assert_eq!(node.node, Some((NodeId(2), "prod-eu".to_owned())));
        assert!(!node.is_ca);
        let ca = &read_certificates(pki.ca_cert_pem.as_bytes(), "test")?[0];
        assert!(ca.is_ca && ca.node.is_none());
        assert_eq!(node.issuer, ca.subject);
        Ok(())
    }

    #[test]
    fn an_issued_certificate_names_its_node_and_lasts_the_days_asked() -> Result<(), PkiError> {
        let pki = generate_dev_pki("prod-eu", &[NodeId(1)])?;
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let creds = issue_node_certificate(&pki.ca_cert_pem, &pki.ca_key_pem, "prod-eu", NodeId(7), 90, now)?;
        let info = &read_certificates(creds.cert_pem.as_bytes(), "test")?[0];
        assert_eq!(info.node, Some((NodeId(7), "prod-eu".to_owned())));
        assert_eq!(info.not_before_unix, 1_800_000_000 - 3600);
        assert_eq!(info.seconds_left(1_800_000_000), 90 * 86_400);
        let ca = &read_certificates(pki.ca_cert_pem.as_bytes(), "test")?[0];
        assert_eq!(info.issuer, ca.subject, "signed by the existing CA");
        // Loadable as a node identity: the key matches the certificate.
        crate::TlsIdentity::from_pem(&pki.ca_cert_pem, &creds.cert_pem, &creds.key_pem)?;
        Ok(())
    }

    #[test]
    fn issuing_refuses_bad_input_with_a_reason() -> Result<(), PkiError> {
        let pki = generate_dev_pki("c", &[NodeId(1)])?;
        let now = SystemTime::now();
        let issue = |ca: &str, key: &str, cluster: &str, node: u64, days: u32| {
            issue_node_certificate(ca, key, cluster, NodeId(node), days, now)
        };
        assert!(issue(&pki.ca_cert_pem, &pki.ca_key_pem, "C", 1, 30).is_err(), "cluster name");
        assert!(issue(&pki.ca_cert_pem, &pki.ca_key_pem, "c", 0, 30).is_err(), "node 0");
        assert!(issue(&pki.ca_cert_pem, &pki.ca_key_pem, "c", 1, 0).is_err(), "zero days");
        assert!(issue(&pki.ca_cert_pem, &pki.ca_key_pem, "c", 1, ISSUE_DAYS_MAX + 1).is_err());
        assert!(issue(&pki.ca_cert_pem, "not a key", "c", 1, 30).is_err(), "CA key");
        assert!(issue("not a cert", &pki.ca_key_pem, "c", 1, 30).is_err(), "CA certificate");
        Ok(())
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(read_certificates(b"", "x").is_err());
        assert!(read_certificates(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "x")
            .is_err());
    }
}
