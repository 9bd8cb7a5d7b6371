//! `quorate certs show FILE...`: what each certificate binds and when it expires.
//!
//! ```text
//! certs/node-3.pem
//!   subject    CN=node-3.prod-eu.quorate
//!   issuer     CN=quorate cluster CA prod-eu
//!   names      node-3.prod-eu.quorate
//!   binds      node 3 of cluster "prod-eu"
//!   valid      2026-01-01T00:00:00Z to 2027-01-01T00:00:00Z (365 days left)
//! ```

use std::fmt::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use quorate::transport::{read_certificates, CertificateInfo};

use crate::Failure;

/// Files one `certs show` reads at most.
const FILES_MAX: usize = 64;

/// `--help` epilogue of `quorate certs show`.
pub(crate) const SHOW_AFTER_HELP: &str = "\
Every CERTIFICATE block of each file is shown. \"binds\" says which node of which cluster
the certificate names (node-<id>.<cluster>.quorate); a certificate without exactly one such
name is not accepted as a node's.

Exit codes:
  0  printed
  1  a file cannot be read or holds no readable certificate
  2  usage error";

/// Flags of `quorate certs show`.
#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// PEM files (certificates, bundles, CA files).
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
}

/// Prints every certificate in `args.files`.
pub(crate) fn show(args: &ShowArgs) -> Result<(), Failure> {
    if args.files.len() > FILES_MAX {
        return Err(Failure::Usage(format!("{} files given; at most {FILES_MAX}", args.files.len())));
    }
    let now = SystemTime::now();
    for path in &args.files {
        let origin = path.display().to_string();
        let pem = read_small(path).map_err(|e| Failure::Runtime(format!("cannot read {origin}: {e}")))?;
        let infos =
            read_certificates(pem.as_bytes(), &origin).map_err(|e| Failure::Runtime(e.to_string()))?;
        for info in &infos {
            print!("{origin}\n{}", describe(info, now));
        }
    }
    Ok(())
}

/// The indented lines for one certificate, read at `now`.
pub(crate) fn describe(c: &CertificateInfo, now: SystemTime) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "  subject    {}", c.subject);
    let _ = writeln!(out, "  issuer     {}", c.issuer);
    let names = if c.dns_names.is_empty() { "(none)".to_owned() } else { c.dns_names.join(", ") };
    let _ = writeln!(out, "  names      {names}");
    let binds = match (&c.node, c.is_ca) {
        (Some((node, cluster)), _) => format!("node {} of cluster {cluster:?}", node.0),
        (None, true) => "nothing: a CA certificate (trusted by nodes, names no node)".to_owned(),
        (None, false) => "nothing quorate accepts: no single node-<id>.<cluster>.quorate name".to_owned(),
    };
    let _ = writeln!(out, "  binds      {binds}");
    let now_unix =
        now.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let left = c.seconds_left(now_unix) / 86_400;
    let state = if c.seconds_left(now_unix) < 0 {
        format!("EXPIRED {} days ago", -left)
    } else if now_unix < c.not_before_unix {
        "NOT YET VALID".to_owned()
    } else {
        format!("{left} days left")
    };
    let _ = writeln!(out, "  valid      {} to {} ({state})", date(c.not_before_unix), date(c.not_after_unix));
    out
}

fn date(unix: i64) -> String {
    match u64::try_from(unix) {
        Ok(secs) => humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string(),
        Err(_) => format!("{unix} (Unix seconds)"),
    }
}

/// Reads a PEM file of at most [`quorate::transport::PEM_FILE_BYTES_MAX`] bytes.
pub(crate) fn read_small(path: &std::path::Path) -> std::io::Result<String> {
    let len = std::fs::metadata(path)?.len();
    if len > quorate::transport::PEM_FILE_BYTES_MAX {
        return Err(std::io::Error::other(format!(
            "{len} bytes, more than the {} a PEM file may be",
            quorate::transport::PEM_FILE_BYTES_MAX
        )));
    }
    std::fs::read_to_string(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorate::transport::{generate_dev_pki, issue_node_certificate};
    use quorate::NodeId;

    #[test]
    fn a_node_certificate_says_which_node_it_binds_and_its_days_left(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let pki = generate_dev_pki("prod-eu", &[NodeId(1)])?;
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let node = issue_node_certificate(&pki.ca_cert_pem, &pki.ca_key_pem, "prod-eu", NodeId(3), 365, now)?;
        let info = &read_certificates(node.cert_pem.as_bytes(), "t")?[0];
        let text = describe(info, now);
        assert!(text.contains("  names      node-3.prod-eu.quorate\n"), "{text}");
        assert!(text.contains("  binds      node 3 of cluster \"prod-eu\"\n"), "{text}");
        assert!(text.contains("to 2028-01-15T08:00:00Z (365 days left)"), "{text}");
        let later = now + Duration::from_secs(400 * 86_400);
        assert!(describe(info, later).contains("(EXPIRED 35 days ago)"));
        let ca = &read_certificates(pki.ca_cert_pem.as_bytes(), "t")?[0];
        assert!(describe(ca, now).contains("binds      nothing: a CA certificate"));
        Ok(())
    }
}
