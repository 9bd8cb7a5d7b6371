//! `quorate run`: one node, from a config file, flags, or both (flags win).
//!
//! ```text
//!   --config file ──► Config::load (parsed) ─────┐
//!                                                ├─► apply flag overrides ─► Node::start (checks once)
//!   no --config ───► Config::lan(from flags) ────┘                                       │
//!        SIGINT / SIGTERM, or removed from the cluster ──► node.shutdown() ──► exit 0  ◄──┘
//!        members refuse it as a non-member (removed while down) ──► node.shutdown() ──► exit 3
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use quorate::{
    Config, EventsOut, MemberAddr, MemberAddress, Node, NodeId, QuorumEvent, RecvError, Removal, TlsSource,
};

use crate::Failure;

/// `--help` epilogue of `quorate run`.
pub(crate) const AFTER_HELP: &str = r#"Examples:
  quorate run --config node1.toml
  quorate run --id 1 --tls-dir certs --data-dir data-1 --admin 127.0.0.1:9001 \
      --peer 1=127.0.0.1:7001 --peer 2=127.0.0.1:7002 --peer 3=127.0.0.1:7003

A config file (flags override it):
  [node]
  cluster = "prod-eu"              # must match the certificates
  id = 1
  admin = "127.0.0.1:9001"         # optional: /status and /metrics
  data_dir = "/var/lib/quorate"    # required for voters; keeps the incarnation across restarts
  [[members]]                      # one per node, this one included
  id = 1
  addr = "10.0.0.1:7001"           # or HOST:PORT, looked up before every dial
  votes = 1                        # default 1; 0 makes an observer
  [tls]
  dir = "certs"                    # ca.pem, node-<id>.pem, node-<id>.key
  [timing]
  preset = "lan"                   # or "wan"; then heartbeat_interval, down_after_min, lease...

The node starts fenced (not writable) and becomes writable once it holds leases on a
majority of the votes. SIGINT or SIGTERM fences it and leaves cleanly.
The data directory holds quorate.state (the last incarnation: each start takes
max(wall clock ms, last + 1), so epochs never go backwards) and quorate.lock (one process
per directory). A corrupt quorate.state stops the node; see docs/operations.md.
Logs go to stderr (filter with RUST_LOG, default info); quorum changes are printed there too.

Exit codes:
  0  stopped by SIGINT/SIGTERM, or removed from the cluster by an online change
  1  could not start (address in use, certificates unreadable or not for this node/cluster,
     data directory unwritable, in use by another process, or its state file corrupt), or
     removed from the cluster by an online change (the data directory says at which version)
  2  invalid configuration or flags; the message names the field, e.g. timing.lease
     or node.data_dir
  3  members carrying a quorum of the votes refuse this node as a non-member: it was removed
     from the cluster while it was down and never received the definition that removed it.
     It fenced itself and left; nothing is recorded in the data directory, so a restart
     stops the same way (systemd: RestartPreventExitStatus=3)"#;

/// Flags of `quorate run`. Flags override the config file's values.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// TOML config file (layout below). Without it, --id, --peer, --tls-dir and --data-dir
    /// are required.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// This node's id; must be one of the members.
    #[arg(long, value_name = "N")]
    id: Option<u64>,
    /// This node's id from a StatefulSet pod name: `<name>-<ordinal>` is node ordinal + 1
    /// (`quorate-0` is node 1). In Kubernetes: `--id-from-pod-name $(POD_NAME)`.
    #[arg(long, value_name = "POD", conflicts_with = "id", value_parser = parse_pod_name)]
    id_from_pod_name: Option<u64>,
    /// Address to bind for QUIC. Default: this node's member address (0.0.0.0 and its port
    /// when it is a name).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// A member as ID=ADDR, ADDR being IP:PORT or HOST:PORT (repeat for each; include this
    /// node). Replaces the config file's member list; each member gets 1 vote.
    #[arg(long = "peer", value_name = "ID=ADDR", value_parser = parse_peer)]
    peers: Vec<MemberAddr>,
    /// Directory with ca.pem, node-<id>.pem and node-<id>.key (from `quorate certs init`).
    #[arg(long, value_name = "DIR")]
    tls_dir: Option<PathBuf>,
    /// The node's data directory (created if missing): its incarnation across restarts and
    /// a lock. Required for voters; overrides `[node] data_dir`.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Serve GET /status (JSON) and GET /metrics (Prometheus) on this address.
    #[arg(long, value_name = "ADDR")]
    admin: Option<SocketAddr>,
    /// Append events as JSON lines to FILE, or "-" for stdout.
    #[arg(long, value_name = "FILE|-")]
    events_out: Option<String>,
    /// Cluster name; must match the certificates. Default "quorate" without --config.
    #[arg(long, value_name = "NAME")]
    cluster: Option<String>,
}

/// Runs a node until SIGINT or SIGTERM.
pub(crate) async fn run(args: RunArgs) -> Result<(), Failure> {
    let config = build_config(&args)?;
    let id = config.id;
    let summary = describe(&config);

    let node = Node::start(config).await.map_err(|e| match e {
        // A broken rule, named as the file writes it; nothing was bound or written.
        quorate::StartError::Config(e) => Failure::Usage(e.to_string()),
        other => Failure::Runtime(format!("cannot start node {}: {other}", id.0)),
    })?;
    eprintln!("{summary}; incarnation {}", node.incarnation());
    if let Some(admin) = node.admin_addr() {
        eprintln!("admin: http://{admin}/status  http://{admin}/metrics");
    }

    let watcher = tokio::spawn(report_quorum_changes(node.gate().subscribe()));
    let mut outcome = Ok(());
    tokio::select! {
        signal = quorate::shutdown_signal() => eprintln!("{signal}: fencing and leaving"),
        removal = node.wait_removal() => match removal {
            Removal::ByDefinition { version } => eprintln!(
                "removed from the cluster by definition version {version}: fenced for good, leaving \
                 (the data directory keeps that definition; this node does not start again with it)"
            ),
            other => {
                outcome = Err(Failure::NotAMember(format!(
                    "node {}: {other}. Fenced for good, leaving. Nothing is recorded in the data \
                     directory: started again, it stops again while the members refuse it. To bring \
                     this host back, add it again from a running member, then start it with a file \
                     listing the current members and a new, empty data directory",
                    id.0
                )));
            }
        },
    }
    node.shutdown().await;
    watcher.abort();
    outcome
}

impl RunArgs {
    /// The node id the flags give, from `--id` or `--id-from-pod-name`.
    pub(crate) fn id(&self) -> Option<u64> {
        self.id.or(self.id_from_pod_name)
    }
}

/// The node id for a StatefulSet pod name `<name>-<ordinal>`: ordinal + 1.
fn parse_pod_name(pod: &str) -> Result<u64, String> {
    let ordinal = pod.rsplit_once('-').map(|(_, n)| n).unwrap_or_default();
    let ordinal: u64 = ordinal
        .parse()
        .map_err(|_| format!("pod name {pod:?} does not end in -<ordinal> (as StatefulSet pods do)"))?;
    ordinal.checked_add(1).ok_or_else(|| format!("pod ordinal {ordinal} is too large"))
}

/// Builds the configuration from the file (if any) and the flags.
fn build_config(args: &RunArgs) -> Result<Config, Failure> {
    let mut config = match &args.config {
        Some(path) => Config::load(path).map_err(|e| Failure::Usage(e.to_string()))?,
        None => {
            let missing: Vec<&str> = [
                ("--id", args.id().is_none()),
                ("--peer", args.peers.is_empty()),
                ("--tls-dir", args.tls_dir.is_none()),
                // Every --peer has one vote, so this node is a voter.
                ("--data-dir", args.data_dir.is_none()),
            ]
            .into_iter()
            .filter_map(|(flag, missing)| missing.then_some(flag))
            .collect();
            if !missing.is_empty() {
                return Err(Failure::Usage(format!(
                    "without --config, {} must be given",
                    missing.join(", ")
                )));
            }
            let id = NodeId(args.id().unwrap_or_default());
            let tls = TlsSource::Dir(args.tls_dir.clone().unwrap_or_default());
            let cluster = args.cluster.clone().unwrap_or_else(|| "quorate".to_owned());
            Config::lan(cluster, id, args.peers.clone(), tls)
        }
    };
    let id_changed = args.id().is_some_and(|id| id != config.id.0);
    if let Some(id) = args.id() {
        config.id = NodeId(id);
    }
    if !args.peers.is_empty() {
        config.members = args.peers.clone();
    }
    if let Some(dir) = &args.tls_dir {
        config.tls = TlsSource::Dir(dir.clone());
    }
    if let Some(dir) = &args.data_dir {
        config.data_dir = Some(dir.clone());
    }
    if let Some(cluster) = &args.cluster {
        config.cluster = cluster.clone();
    }
    if let Some(admin) = args.admin {
        config.admin = Some(admin);
    }
    if let Some(out) = &args.events_out {
        config.events_out =
            Some(if out == "-" { EventsOut::Stdout } else { EventsOut::File(PathBuf::from(out)) });
    }
    config.listen = match args.listen {
        Some(listen) => listen,
        None => {
            // A file's explicit listen address (e.g. 0.0.0.0:7001) survives a new member list;
            // it follows the member address only when it no longer fits this node.
            let own =
                config.members.iter().find(|m| m.id == config.id).map(|m| quorate::default_listen(&m.addr));
            match own {
                Some(own) if id_changed || args.config.is_none() || own.port() != config.listen.port() => own,
                _ => config.listen,
            }
        }
    };
    Ok(config)
}

/// `ID=ADDR`, e.g. `2=10.0.0.2:7001` or `2=quorate-1.quorate:7001`.
fn parse_peer(text: &str) -> Result<MemberAddr, String> {
    let (id, addr) = text.split_once('=').ok_or_else(|| format!("expected ID=ADDR, got {text:?}"))?;
    let id: u64 = id.trim().parse().map_err(|_| format!("node id {id:?} is not a positive integer"))?;
    if id == 0 {
        return Err("node id 0 is not allowed; start at 1".to_owned());
    }
    let addr: MemberAddress = addr.trim().parse().map_err(|e| format!("{addr:?}: {e}"))?;
    Ok(MemberAddr { id: NodeId(id), addr, votes: 1 })
}

/// One line saying what is about to run.
fn describe(config: &Config) -> String {
    let members: Vec<String> = config
        .members
        .iter()
        .map(|m| {
            let votes = if m.votes == 1 { String::new() } else { format!(" ({} votes)", m.votes) };
            format!("{}={}{votes}", m.id.0, m.addr)
        })
        .collect();
    format!(
        "quorate node {} of cluster {:?} on {}; members {}; heartbeat {}, lease {}, down after {}; data dir {}",
        config.id.0,
        config.cluster,
        config.listen,
        members.join(" "),
        humantime::format_duration(config.detector.heartbeat_interval),
        humantime::format_duration(config.gate.lease),
        humantime::format_duration(config.detector.down_after_min),
        config.data_dir.as_ref().map_or_else(|| "none (observer)".to_owned(), |d| d.display().to_string()),
    )
}

/// Prints quorum changes to stderr, so an operator watching the terminal sees the gate
/// open and close. Peer events stay in the event log (`--events-out`).
async fn report_quorum_changes(mut events: quorate::EventStream) {
    loop {
        match events.recv().await {
            Ok(QuorumEvent::QuorumGained { epoch, held_votes, needed_votes, .. }) => {
                eprintln!("writable: epoch {epoch}, holding {held_votes} votes ({needed_votes} needed)");
            }
            Ok(QuorumEvent::QuorumLost { epoch, why, .. }) => {
                eprintln!("read-only: epoch {epoch} ended; {why}");
            }
            Ok(_) => {}
            Err(RecvError::Lagged { missed }) => eprintln!("(missed {missed} events)"),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(flags: &[&str]) -> RunArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            run: RunArgs,
        }
        let argv = std::iter::once("run").chain(flags.iter().copied());
        match Wrap::try_parse_from(argv) {
            Ok(w) => w.run,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_statefulset_pod_name_gives_ordinal_plus_one() {
        assert_eq!(parse_pod_name("quorate-0"), Ok(1));
        assert_eq!(parse_pod_name("my-db-quorate-12"), Ok(13));
        assert!(parse_pod_name("quorate").is_err());
        assert!(parse_pod_name("quorate-x").is_err());
        assert!(parse_pod_name("quorate-18446744073709551615").is_err());
        assert_eq!(args(&["--id-from-pod-name", "quorate-2"]).id(), Some(3));
    }

    #[test]
    fn the_config_example_in_the_help_is_a_valid_config() {
        let example: String = AFTER_HELP
            .lines()
            .skip_while(|l| !l.starts_with("A config file"))
            .skip(1)
            .take_while(|l| !l.is_empty())
            .map(|l| format!("{}\n", l.trim_start()))
            .collect();
        assert!(example.contains("[[members]]"), "{example}");
        if let Err(e) = Config::from_toml_str(&example) {
            panic!("{e}\n{example}");
        }
    }

    #[test]
    fn peers_parse_as_id_equals_address_with_one_vote() {
        let m = parse_peer("2=127.0.0.1:7002");
        assert!(matches!(m, Ok(MemberAddr { id: NodeId(2), votes: 1, .. })), "{m:?}");
        assert!(parse_peer("127.0.0.1:7002").is_err());
        assert!(parse_peer("x=127.0.0.1:7002").is_err());
        assert!(parse_peer("0=127.0.0.1:7002").is_err());
        assert!(parse_peer("2=localhost").is_err_and(|e| e.contains("no port")));
        let named = parse_peer("3=quorate-2.quorate:7000").map(|m| m.addr.to_string());
        assert_eq!(named.as_deref(), Ok("quorate-2.quorate:7000"));
    }

    #[test]
    fn flags_alone_build_a_lan_config_listening_on_the_own_member_address() {
        let a = args(&[
            "--id",
            "2",
            "--tls-dir",
            "c",
            "--data-dir",
            "d",
            "--peer",
            "1=127.0.0.1:7001",
            "--peer",
            "2=127.0.0.1:7002",
        ]);
        let c = match build_config(&a) {
            Ok(c) => c,
            Err(e) => panic!("{e:?}"),
        };
        assert_eq!(c.id, NodeId(2));
        assert_eq!(c.cluster, "quorate");
        assert_eq!(c.listen.port(), 7002);
        assert_eq!(c.members.len(), 2);
        assert_eq!(c.data_dir, Some(PathBuf::from("d")));
    }

    #[test]
    fn data_dir_flag_overrides_the_config_file() {
        let dir = std::env::temp_dir().join(format!("quorate-run-flag-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("node.toml");
        let text = "[node]\ncluster = \"c\"\nid = 1\ndata_dir = \"from-file\"\n[[members]]\nid = 1\naddr = \"127.0.0.1:7001\"\n[tls]\ndir = \"certs\"\n";
        let written = std::fs::write(&file, text);
        let from_file = build_config(&args(&["--config", &file.display().to_string()]));
        let from_flag =
            build_config(&args(&["--config", &file.display().to_string(), "--data-dir", "/srv/q"]));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(written.is_ok());
        assert!(matches!(&from_file, Ok(c) if c.data_dir == Some(dir.join("from-file"))), "{from_file:?}");
        assert!(matches!(&from_flag, Ok(c) if c.data_dir == Some(PathBuf::from("/srv/q"))), "{from_flag:?}");
    }

    #[test]
    fn without_config_the_missing_flags_are_named() {
        let a = args(&["--id", "1"]);
        match build_config(&a) {
            Err(Failure::Usage(msg)) => {
                assert!(
                    msg.contains("--peer") && msg.contains("--tls-dir") && msg.contains("--data-dir"),
                    "{msg}"
                )
            }
            other => panic!("expected a usage error, got {other:?}"),
        }
    }
}
