//! `quorate certs init | issue | show`: a PKI on disk, one more node from it, and what a
//! certificate binds.
//!
//! `init` writes the layout that `[tls] dir = ...` and `quorate run --tls-dir` read:
//! `ca.pem`, `ca.key`, and `node-<id>.pem` / `node-<id>.key` per node; `issue` adds one
//! node's pair from the `ca.pem` and `ca.key` already there. Private keys are created with
//! mode 0600. Nothing is written unless every target is free (or `--force` is given), so a
//! refused run leaves the directory as it was. `show` (in `certs_show.rs`) reads
//! certificates back.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use quorate::transport::{generate_dev_pki, issue_node_certificate, node_dns_name, ISSUE_DAYS_MAX};
use quorate::NodeId;

use crate::certs_show::{self, read_small, ShowArgs, SHOW_AFTER_HELP};
use crate::Failure;

/// Nodes one `certs init` issues at most; matches the PKI generator's own limit order of
/// magnitude while keeping a typo (`--nodes 1,2,30000`) from writing thousands of files.
const NODES_MAX: usize = 256;

/// `quorate certs ...`
#[derive(Debug, Subcommand)]
pub(crate) enum CertsCommand {
    /// Create a cluster CA and a certificate and key for each node.
    #[command(after_help = INIT_AFTER_HELP)]
    Init(InitArgs),
    /// Add one node's certificate and key, signed by the CA in DIR (ca.pem, ca.key).
    #[command(after_help = ISSUE_AFTER_HELP)]
    Issue(IssueArgs),
    /// Print what certificates bind (node id, cluster, names) and when they expire.
    #[command(after_help = SHOW_AFTER_HELP)]
    Show(ShowArgs),
}

const ISSUE_AFTER_HELP: &str = "\
Reads DIR/ca.pem and DIR/ca.key and writes, into --out (default DIR):
  node-<id>.pem     node certificate, naming node-<id>.<cluster>.quorate, valid --days
  node-<id>.key     node private key, mode 0600

The CA may be the one `quorate certs init` made or any other whose certificate and PKCS#8
key you hold. The certificate carries exactly one DNS name, node-<id>.<cluster>.quorate,
and both TLS usages (server and client): the stable format every quorate node checks.

Exit codes:
  0  files written
  1  a file exists already (use --force), the CA cannot be read, or the directory cannot
     be written
  2  usage error (bad --id, --cluster or --days)";

const INIT_AFTER_HELP: &str = "\
Files written into DIR:
  ca.pem            cluster CA certificate (every node trusts it)
  ca.key            cluster CA private key, mode 0600 (keep it off the nodes)
  node-<id>.pem     node certificate, naming node-<id>.<cluster>.quorate
  node-<id>.key     node private key, mode 0600

Nodes only accept peers whose certificate names the same cluster, so pass the same
--cluster to `quorate run` (or [node] cluster in the config file).
These are development certificates (long validity); issue production ones from your own CA
with the same names.

Exit codes:
  0  files written
  1  a file exists already (use --force), or the directory cannot be written
  2  usage error (bad --nodes or --cluster)";

/// Flags of `quorate certs init`.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Directory to write into; created if missing.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// Node ids to issue certificates for, comma separated (e.g. 1,2,3).
    #[arg(long, value_name = "IDS", value_delimiter = ',', required = true)]
    nodes: Vec<u64>,
    /// Cluster name bound into every certificate: lowercase letters, digits, '-' and '.'.
    #[arg(long, value_name = "NAME", default_value = "quorate")]
    cluster: String,
    /// Overwrite existing files instead of refusing.
    #[arg(long)]
    force: bool,
}

/// Flags of `quorate certs issue`.
#[derive(Debug, Args)]
pub(crate) struct IssueArgs {
    /// Directory holding the CA: ca.pem and ca.key.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The node id to issue for.
    #[arg(long, value_name = "N")]
    id: u64,
    /// Cluster name bound into the certificate (as given to `certs init`).
    #[arg(long, value_name = "NAME", default_value = "quorate")]
    cluster: String,
    /// Days the certificate is valid from now (it starts an hour earlier, for clock skew).
    #[arg(long, value_name = "DAYS", default_value_t = 365)]
    days: u32,
    /// Where to write node-<id>.pem and node-<id>.key; default DIR.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Overwrite existing files instead of refusing.
    #[arg(long)]
    force: bool,
}

/// Runs a `certs` subcommand.
pub(crate) fn run(command: CertsCommand) -> Result<(), Failure> {
    match command {
        CertsCommand::Init(args) => init(&args),
        CertsCommand::Issue(args) => issue(&args),
        CertsCommand::Show(args) => certs_show::show(&args),
    }
}

fn issue(args: &IssueArgs) -> Result<(), Failure> {
    let node = node_ids(&[args.id])?.remove(0);
    quorate::transport::validate_cluster_name(&args.cluster).map_err(|e| Failure::Usage(e.to_string()))?;
    if args.days == 0 || args.days > ISSUE_DAYS_MAX {
        return Err(Failure::Usage(format!("--days {}: 1 to {ISSUE_DAYS_MAX} are allowed", args.days)));
    }
    let read = |name: &str| {
        let path = args.dir.join(name);
        read_small(&path).map_err(|e| Failure::Runtime(format!("cannot read {}: {e}", path.display())))
    };
    let (ca_cert, ca_key) = (read("ca.pem")?, read("ca.key")?);
    let creds = issue_node_certificate(
        &ca_cert,
        &ca_key,
        &args.cluster,
        node,
        args.days,
        std::time::SystemTime::now(),
    )
    .map_err(|e| Failure::Runtime(format!("cannot issue from the CA in {}: {e}", args.dir.display())))?;
    let out = args.out.as_ref().unwrap_or(&args.dir);
    let id = node.0;
    let outputs = [
        Output {
            path: out.join(format!("node-{id}.pem")),
            contents: creds.cert_pem,
            secret: false,
            what: format!(
                "certificate of node {id} ({}), {} days",
                node_dns_name(&args.cluster, node),
                args.days
            ),
        },
        Output {
            path: out.join(format!("node-{id}.key")),
            contents: creds.key_pem,
            secret: true,
            what: format!("private key of node {id} (secret)"),
        },
    ];
    write_all(&outputs, out, args.force)
}

/// One file to write: where, what, and whether it is a secret.
struct Output {
    path: PathBuf,
    contents: String,
    secret: bool,
    what: String,
}

fn init(args: &InitArgs) -> Result<(), Failure> {
    let nodes = node_ids(&args.nodes)?;
    let pki = generate_dev_pki(&args.cluster, &nodes).map_err(|e| Failure::Usage(format!("{e}")))?;

    let mut outputs = vec![
        Output {
            path: args.dir.join("ca.pem"),
            contents: pki.ca_cert_pem.clone(),
            secret: false,
            what: format!("cluster CA certificate ({})", args.cluster),
        },
        Output {
            path: args.dir.join("ca.key"),
            contents: pki.ca_key_pem.clone(),
            secret: true,
            what: "cluster CA private key (secret; not needed on the nodes)".to_owned(),
        },
    ];
    for creds in &pki.nodes {
        let id = creds.node.0;
        outputs.push(Output {
            path: args.dir.join(format!("node-{id}.pem")),
            contents: creds.cert_pem.clone(),
            secret: false,
            what: format!("certificate of node {id} (node-{id}.{}.quorate)", args.cluster),
        });
        outputs.push(Output {
            path: args.dir.join(format!("node-{id}.key")),
            contents: creds.key_pem.clone(),
            secret: true,
            what: format!("private key of node {id} (secret)"),
        });
    }

    write_all(&outputs, &args.dir, args.force)?;
    println!(
        "use with: quorate run --cluster {} --tls-dir {} --id <ID> --peer <ID>=<ADDR> ...",
        args.cluster,
        args.dir.display()
    );
    Ok(())
}

/// Writes `outputs` into `dir` (created if missing), refusing before writing anything if a
/// target exists and `force` is not given.
fn write_all(outputs: &[Output], dir: &Path, force: bool) -> Result<(), Failure> {
    if !force {
        let existing: Vec<String> =
            outputs.iter().filter(|o| o.path.exists()).map(|o| o.path.display().to_string()).collect();
        if !existing.is_empty() {
            return Err(Failure::Runtime(format!(
                "refusing to overwrite {}; nothing was written (pass --force to replace them)",
                existing.join(", ")
            )));
        }
    }
    fs::create_dir_all(dir)
        .map_err(|e| Failure::Runtime(format!("cannot create directory {}: {e}", dir.display())))?;
    for output in outputs {
        write_file(&output.path, &output.contents, output.secret, force)?;
        println!("wrote {}  {}", output.path.display(), output.what);
    }
    Ok(())
}

/// Checks the requested ids: at least one, none zero, no duplicates, a sane count.
fn node_ids(ids: &[u64]) -> Result<Vec<NodeId>, Failure> {
    if ids.is_empty() {
        return Err(Failure::Usage("--nodes needs at least one node id".to_owned()));
    }
    if ids.len() > NODES_MAX {
        return Err(Failure::Usage(format!("--nodes lists {} ids; at most {NODES_MAX} per run", ids.len())));
    }
    let mut out = Vec::with_capacity(ids.len());
    for &id in ids {
        if id == 0 {
            return Err(Failure::Usage("--nodes: node id 0 is not allowed; start at 1".to_owned()));
        }
        if out.contains(&NodeId(id)) {
            return Err(Failure::Usage(format!("--nodes lists node {id} twice")));
        }
        out.push(NodeId(id));
    }
    Ok(out)
}

/// Writes `contents` to `path`; secrets get mode 0600 from creation on (never readable by
/// others, not even for a moment). Without `overwrite`, an existing file is an error even if
/// it appeared after the check above.
fn write_file(path: &Path, contents: &str, secret: bool, overwrite: bool) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Failure::Runtime(format!("cannot write {}: {e}", path.display()));
    let mut options = fs::OpenOptions::new();
    options.write(true);
    if overwrite {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    let mut file = options.open(path).map_err(fail)?;
    #[cfg(unix)]
    if secret {
        // `mode` applies only when the file is created; an overwritten key keeps its old
        // mode unless we set it.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600)).map_err(fail)?;
    }
    let _ = secret;
    file.write_all(contents.as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_refuse_zero_duplicates_and_empty_lists() {
        assert!(node_ids(&[]).is_err());
        assert!(node_ids(&[0]).is_err());
        assert!(node_ids(&[1, 2, 1]).is_err());
        assert!(matches!(node_ids(&[3, 1]), Ok(v) if v == vec![NodeId(3), NodeId(1)]));
    }
}
