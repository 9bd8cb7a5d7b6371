//! The certificates a node runs with, read once at start so that `/status` and `/metrics`
//! can say how many days each has left.
//!
//! Only certificates loaded from files are reported (`TlsSource::Dir` or `Files`); an
//! identity handed over in memory has no file to name. A certificate that cannot be read
//! here was already loaded by the transport, so a failure is only logged.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use quorate_transport::{read_certificates, CertificateInfo, PEM_FILE_BYTES_MAX};

use crate::config::{Config, TlsSource};
use crate::status::CertificateReport;

/// One certificate and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    role: &'static str,
    file: PathBuf,
    info: CertificateInfo,
}

/// Reads the CA and node certificate files `config` names; empty for an in-memory identity.
pub(crate) fn load(config: &Config) -> Vec<Loaded> {
    let (ca, cert) = match &config.tls {
        TlsSource::Identity(_) => return Vec::new(),
        TlsSource::Files { ca, cert, .. } => (ca.clone(), cert.clone()),
        TlsSource::Dir(dir) => (dir.join("ca.pem"), dir.join(format!("node-{}.pem", config.id.0))),
    };
    let mut out = Vec::new();
    for (i, info) in read(&cert).into_iter().enumerate() {
        out.push(Loaded { role: if i == 0 { "node" } else { "chain" }, file: cert.clone(), info });
    }
    for info in read(&ca) {
        out.push(Loaded { role: "ca", file: ca.clone(), info });
    }
    out
}

fn read(path: &Path) -> Vec<CertificateInfo> {
    let bytes = match std::fs::metadata(path) {
        Ok(m) if m.len() <= PEM_FILE_BYTES_MAX => std::fs::read(path),
        Ok(m) => Err(std::io::Error::other(format!("{} bytes, more than {PEM_FILE_BYTES_MAX}", m.len()))),
        Err(e) => Err(e),
    };
    let parsed = bytes
        .map_err(|e| e.to_string())
        .and_then(|b| read_certificates(&b, &path.display().to_string()).map_err(|e| e.to_string()));
    match parsed {
        Ok(infos) => infos,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read certificate expiry");
            Vec::new()
        }
    }
}

/// The reports for `loaded` at wall-clock time `now`.
pub(crate) fn report(loaded: &[Loaded], now: SystemTime) -> Vec<CertificateReport> {
    let now_unix =
        now.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    loaded
        .iter()
        .map(|l| CertificateReport {
            role: l.role.to_owned(),
            file: l.file.display().to_string(),
            subject: l.info.subject.clone(),
            dns_names: l.info.dns_names.clone(),
            not_after_unix: l.info.not_after_unix,
            days_left: l.info.seconds_left(now_unix) as f64 / 86_400.0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorate_proto::NodeId;
    use quorate_transport::{generate_dev_pki, issue_node_certificate};
    use std::time::Duration;

    #[test]
    fn the_node_certificate_and_the_ca_are_reported_with_their_days_left(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("quorate-certs-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let pki = generate_dev_pki("c", &[NodeId(1)])?;
        let now = SystemTime::now();
        let node = issue_node_certificate(&pki.ca_cert_pem, &pki.ca_key_pem, "c", NodeId(2), 30, now)?;
        std::fs::write(dir.join("ca.pem"), &pki.ca_cert_pem)?;
        std::fs::write(dir.join("node-2.pem"), &node.cert_pem)?;
        let members = vec![crate::MemberAddr {
            id: NodeId(2),
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 1)).into(),
            votes: 1,
        }];
        let config = Config::lan("c", NodeId(2), members, TlsSource::Dir(dir.clone()));
        let loaded = load(&config);
        let reports = report(&loaded, now + Duration::from_secs(86_400));
        std::fs::remove_dir_all(&dir)?;
        let roles: Vec<&str> = reports.iter().map(|r| r.role.as_str()).collect();
        assert_eq!(roles, ["node", "ca"]);
        assert_eq!(reports[0].dns_names, ["node-2.c.quorate"]);
        // Issued for 30 days from now (valid from an hour before), read a day later.
        let left = reports[0].days_left;
        assert!((left - 29.0).abs() < 0.001, "{left}");
        assert!(reports[1].days_left > 365.0 * 100.0, "the dev CA lasts until 4096");
        Ok(())
    }

    #[test]
    fn a_missing_file_reports_nothing_instead_of_failing() {
        let members = vec![crate::MemberAddr {
            id: NodeId(1),
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 1)).into(),
            votes: 1,
        }];
        let config = Config::lan("c", NodeId(1), members, TlsSource::Dir("/nonexistent/quorate".into()));
        assert!(load(&config).is_empty());
    }
}
