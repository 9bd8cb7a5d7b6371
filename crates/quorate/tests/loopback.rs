//! Real nodes over real QUIC on 127.0.0.1: convergence, a stopped node, a cut-off node, a
//! garbage flood, a foreign certificate, graceful leave, a paused node and a restarted one.

use std::net::UdpSocket;
use std::time::Duration;

use quorate::testing::{wait_until, LocalCluster};
use quorate::transport::generate_dev_pki;
use quorate::{
    Config, DataDirError, EventStream, Node, NodeId, QuorumEvent, QuorumGate, StartError, TlsSource,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Starts `n` nodes of the cluster "loopback" (LAN defaults) and waits (at most 3 s) until
/// every one is writable.
async fn cluster(n: u64) -> Result<LocalCluster, Box<dyn std::error::Error>> {
    let cluster = LocalCluster::builder("loopback", n).start().await?;
    cluster.wait_all_writable(Duration::from_secs(3)).await?;
    // Writable needs a quorum of acks, not every peer: wait until every node also hears
    // every peer, or a test that stops a node could stop one its peers never heard (and so
    // can never call down).
    let everyone_heard = || {
        (1..=n).all(|id| {
            cluster
                .node(NodeId(id))
                .is_some_and(|node| node.status().peers.iter().all(|p| p.connected && p.state == "reachable"))
        })
    };
    wait_until(Duration::from_secs(2), everyone_heard).await.ok_or("not every node heard every peer")?;
    Ok(cluster)
}

/// Waits (at most `limit`) for the first event on `events` that `wanted` accepts; how long
/// after `since` it came.
async fn first_event(
    events: &mut EventStream,
    limit: Duration,
    since: std::time::Instant,
    wanted: impl Fn(&QuorumEvent) -> bool,
) -> Result<Duration, tokio::time::error::Elapsed> {
    tokio::time::timeout(limit, async {
        loop {
            if let Ok(event) = events.recv().await {
                if wanted(&event) {
                    return since.elapsed();
                }
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_and_five_nodes_converge_to_all_writable_within_a_second() -> TestResult {
    for n in [3, 5] {
        let cluster = LocalCluster::builder("loopback", n).start().await?;
        let took = cluster.wait_all_writable(Duration::from_secs(3)).await;
        println!("{n} nodes: all writable after {took:?}");
        assert!(took.as_ref().is_ok_and(|t| *t < Duration::from_secs(1)), "{n} nodes: {took:?}");
        // Writable needs a quorum of acks, not every peer: a peer may still be unheard for a
        // heartbeat interval. Within a second, node 1 hears and is connected to all of them.
        let node = cluster.node(NodeId(1)).ok_or("no node 1")?;
        let all_heard = || {
            let status = node.status();
            status.writable && status.peers.iter().all(|p| p.connected && p.state == "reachable")
        };
        let heard = wait_until(Duration::from_secs(1), all_heard).await;
        assert!(heard.is_some(), "{n} nodes: {:?}", node.status());
        cluster.shutdown().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_node_is_marked_down_after_the_floor_and_the_rest_stay_writable() -> TestResult {
    let mut cluster = cluster(3).await?;
    let gates = cluster.gates();
    let mut events = gates[0].subscribe();
    // Dropped, not shut down: no leave is sent, as in a crash.
    let stopped = cluster.take(NodeId(3));
    let stopped_at = std::time::Instant::now();
    drop(stopped);
    let down = first_event(&mut events, Duration::from_secs(5), stopped_at, |e| {
        matches!(e, QuorumEvent::PeerDown { peer: NodeId(3), .. })
    })
    .await?;
    let status = cluster.node(NodeId(1)).ok_or("no node 1")?.status();
    let peer3 = status.peers.into_iter().find(|p| p.id == 3).ok_or("no peer 3")?;
    println!(
        "stopped node declared down {down:?} after stop, {:?} ms after last heard",
        peer3.last_heard_ms_ago
    );
    // The floor counts from the last heartbeat heard, which is up to one interval before
    // the stop.
    assert!(peer3.last_heard_ms_ago.is_some_and(|ms| ms >= 1_000.0), "{peer3:?}");
    assert!(down < Duration::from_millis(1_500), "detection took {down:?}");
    assert!(gates[0].can_write() && gates[1].can_write());
    assert_eq!(peer3.state, "down");
    cluster.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_off_node_fences_within_lease_times_drift() -> TestResult {
    let mut cluster = cluster(3).await?;
    let gates = cluster.gates();
    let cut = gates[0].clock().now();
    cluster.cut(&[NodeId(1)], &[NodeId(2), NodeId(3)])?;
    let fenced = wait_until(Duration::from_secs(3), || !gates[0].can_write()).await.ok_or("never fenced")?;
    let fence = gates[0].clock().now() - cut;
    println!("cut-off node fenced after {fence:?} (polled {fenced:?})");
    // lease 900 ms x (1 + 1%) plus 50 ms for the polling loop and scheduling.
    assert_eq!(cluster.fence_bound(), Duration::from_millis(909 + 50));
    assert!(fence <= cluster.fence_bound(), "{fence:?}");
    assert!(gates[1].can_write() && gates[2].can_write(), "the majority must stay writable");
    let err = gates[0].permit().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.starts_with("not quorate: holding 1 of 3 votes, 2 needed"), "{err}");
    cluster.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_udp_flood_does_not_disturb_an_established_cluster() -> TestResult {
    let cluster = cluster(3).await?;
    let gates = cluster.gates();
    let epoch = gates[0].epoch();
    let target = cluster.node(NodeId(1)).ok_or("no node 1")?.local_addr();
    let attacker = UdpSocket::bind("127.0.0.1:0")?;
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut sent, mut fenced_checks) = (0u64, 0u64);
    let started = std::time::Instant::now();
    // Bounded: 200 bursts of 500 packets, at most 5 s.
    for _ in 0..200 {
        if started.elapsed() > Duration::from_secs(5) {
            break;
        }
        for _ in 0..500 {
            let len = (next() % 1_400) as usize + 1;
            let mut packet: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Half of them look like QUIC long-header packets (Initial) to reach deeper.
            if next() % 2 == 0 {
                packet[0] = 0xc0 | (packet[0] & 0x0f);
            }
            if attacker.send_to(&packet, target).is_ok() {
                sent += 1;
            }
        }
        if !gates.iter().all(|g| g.can_write()) {
            fenced_checks += 1;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    println!("flooded node 1 with {sent} garbage packets in {:?}", started.elapsed());
    assert!(sent >= 10_000, "flood too small to mean anything: {sent}");
    assert_eq!(fenced_checks, 0, "a gate was fenced during the flood");
    assert_eq!(gates[0].epoch(), epoch, "quorum was lost and regained during the flood");
    cluster.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_with_a_certificate_from_another_ca_is_refused_and_changes_no_quorum() -> TestResult {
    // Same names, another CA: node 3 presents a certificate the others do not trust.
    let rogue_pki = generate_dev_pki("loopback", &[NodeId(3)])?;
    let rogue = TlsSource::Identity(std::sync::Arc::new(rogue_pki.identity(NodeId(3))?));
    let cluster = LocalCluster::builder("loopback", 3)
        .configure(|config| {
            if config.id == NodeId(3) {
                config.tls = rogue.clone();
            }
        })
        .start()
        .await?;
    cluster.wait_writable(&[NodeId(1), NodeId(2)], Duration::from_secs(3)).await?;
    let gates = cluster.gates();
    let epochs = (gates[0].epoch(), gates[1].epoch());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!((gates[0].epoch(), gates[1].epoch()), epochs, "quorum changed");
    assert!(gates[0].can_write() && gates[1].can_write());
    assert!(!gates[2].can_write(), "the rogue node must never hold a quorum");
    for node in cluster.nodes().take(2) {
        let status = node.status();
        let rogue = status.peers.iter().find(|p| p.id == 3).ok_or("no peer 3")?;
        assert!(!rogue.connected && rogue.state != "reachable" && rogue.lease_left_ms.is_none(), "{rogue:?}");
        let refused: u64 =
            status.transport.iter().filter(|(k, _)| k.starts_with("refused_")).map(|(_, v)| v).sum();
        let dial_failures = status.transport.get("dial_failures").copied().unwrap_or(0);
        assert!(
            refused + dial_failures > 0,
            "the rogue's connections were not refused: {:?}",
            status.transport
        );
    }
    cluster.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_fences_first_and_peers_let_the_node_go_at_once() -> TestResult {
    let mut cluster = cluster(3).await?;
    let gates = cluster.gates();
    let mut events = gates[0].subscribe();
    let leaving = cluster.take(NodeId(3)).ok_or("no node 3")?;
    let started = std::time::Instant::now();
    leaving.shutdown().await;
    assert!(!gates[2].can_write());
    let why = gates[2].permit().err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(why, "not quorate: the node is shut down");
    let left = first_event(&mut events, Duration::from_secs(2), started, |e| {
        matches!(e, QuorumEvent::PeerLeft { peer: NodeId(3), .. })
    })
    .await?;
    println!("peers let the leaving node go after {left:?}");
    assert!(left < Duration::from_millis(500), "{left:?}");
    assert!(gates[0].can_write() && gates[1].can_write());
    cluster.shutdown().await?;
    Ok(())
}

/// Starts 3 nodes, `solo` as a [`Solo`] and the others in the cluster, and waits until all
/// are writable.
async fn start_with_solo(solo: NodeId) -> Result<(Solo, LocalCluster), Box<dyn std::error::Error>> {
    let mut prepared = LocalCluster::builder("loopback", 3).prepare()?;
    let (config, socket) = prepared.take(solo)?;
    let solo = Solo::start(config, socket)?;
    let cluster = prepared.start().await?;
    let gates: Vec<QuorumGate> = cluster.gates().into_iter().chain([solo.gate.clone()]).collect();
    wait_until(Duration::from_secs(3), || gates.iter().all(QuorumGate::can_write))
        .await
        .ok_or("no quorum")?;
    Ok((solo, cluster))
}

/// Longest a [`Solo`] node stays frozen if the test never thaws it.
const FREEZE_MAX: Duration = Duration::from_secs(10);

/// How long a woken or restarted node may take to be writable again: a heartbeat round
/// trip, plus QUIC's loss recovery (a peer's probes to it backed off while it was silent)
/// or a new connection's handshake; the real-process suite allows the same.
const REJOIN_BOUND: Duration = Duration::from_secs(3);

/// What the test tells a [`Solo`] node's thread.
enum Command {
    /// Block the thread until the sender is dropped or sends (at most [`FREEZE_MAX`]).
    Freeze(std::sync::mpsc::Receiver<()>),
    /// End the runtime with the node on it, sending nothing.
    Crash,
    /// Leave gracefully, then end.
    Shutdown,
}

/// A node on a tokio runtime of its own, driven by one thread. Freezing that thread stops
/// every task of the node (no packet read, no timer fired, the core untouched), as SIGSTOP
/// stops a process; crashing it drops the runtime and everything on it, socket included,
/// with no chance to say goodbye, as SIGKILL does. The gate handle stays usable from the
/// test: it only reads the clock and the published deadline.
struct Solo {
    gate: QuorumGate,
    commands: tokio::sync::mpsc::Sender<Command>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Solo {
    fn start(config: Config, socket: UdpSocket) -> Result<Solo, Box<dyn std::error::Error>> {
        let (commands, mut inbox) = tokio::sync::mpsc::channel::<Command>(4);
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let node = match Node::start_on(config, socket).await {
                    Ok(node) => node,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(node.gate()));
                loop {
                    match inbox.recv().await {
                        // Blocking inside the runtime's only thread: nothing else of the
                        // node runs until this returns.
                        Some(Command::Freeze(thaw)) => {
                            let _ = thaw.recv_timeout(FREEZE_MAX);
                        }
                        Some(Command::Shutdown) => return node.shutdown().await,
                        // Returning ends `block_on` before any other task runs again; the
                        // runtime is dropped below with the node's tasks unpolled.
                        Some(Command::Crash) | None => return drop(node),
                    }
                }
            });
            drop(runtime);
        });
        let gate = ready_rx.recv_timeout(Duration::from_secs(10))??;
        Ok(Solo { gate, commands, thread: Some(thread) })
    }

    /// Freezes the node until the returned sender sends or is dropped.
    async fn freeze(&self) -> Result<std::sync::mpsc::SyncSender<()>, Box<dyn std::error::Error>> {
        let (thaw, frozen) = std::sync::mpsc::sync_channel(1);
        self.commands.send(Command::Freeze(frozen)).await.map_err(|_| "node thread gone")?;
        Ok(thaw)
    }

    /// Sends `command` and waits (off the test's runtime) until the thread is gone.
    async fn end(mut self, command: Command) -> TestResult {
        self.commands.send(command).await.map_err(|_| "node thread gone")?;
        let thread = self.thread.take().ok_or("already ended")?;
        tokio::task::spawn_blocking(move || thread.join()).await?.map_err(|_| "node thread panicked")?;
        Ok(())
    }
}

/// Polls every 5 ms for `span`; returns how many polls found a gate of `gates` fenced.
async fn fenced_polls(gates: &[QuorumGate], span: Duration) -> u64 {
    let start = std::time::Instant::now();
    let mut fenced = 0;
    while start.elapsed() < span {
        fenced += u64::from(!gates.iter().all(QuorumGate::can_write));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    fenced
}

/// Every event already queued on `events`.
fn drain(events: &mut EventStream) -> Vec<QuorumEvent> {
    let mut out = Vec::new();
    // Bounded by the stream's capacity: try_recv ends when it is empty.
    while let Ok(Some(e)) = events.try_recv() {
        out.push(e);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_node_wakes_fenced_by_its_clock_rejoins_with_a_higher_epoch_and_convicts_nobody() -> TestResult
{
    let (paused, cluster) = start_with_solo(NodeId(3)).await?;
    let others = cluster.gates();
    let gate = paused.gate.clone();
    let epoch_before = gate.epoch();
    let mut own_events = gate.subscribe();
    let mut peer_events = others[0].subscribe();

    let thaw = paused.freeze().await?;
    let frozen_at = gate.clock().now();
    // G3: fenced by the clock alone, while nothing of the node runs.
    wait_until(Duration::from_secs(2), || !gate.can_write()).await.ok_or("still writable while paused")?;
    let fence = gate.clock().now() - frozen_at;
    let fenced_while_paused = fenced_polls(&others, Duration::from_millis(1_600)).await;
    let silent = drain(&mut own_events);
    let peer_saw_down = drain(&mut peer_events)
        .iter()
        .any(|e| matches!(e, QuorumEvent::PeerDown { peer, .. } if *peer == NodeId(3)));
    thaw.send(())?;
    let woke_at = gate.clock().now();
    println!("paused node fenced {fence:?} into its pause; woke after {:?}", woke_at - frozen_at);
    let bound = cluster.fence_bound();
    assert!(fence <= bound, "fenced {fence:?} after the pause began, bound {bound:?}");
    assert!(silent.is_empty(), "the paused node's core ran during the pause: {silent:?}");
    assert!(peer_saw_down, "node 1 never considered the paused node down: the pause was not felt");
    assert_eq!(fenced_while_paused, 0, "a live node was fenced during the pause");

    // G4: writable again with a new epoch; G6: the woken node blames nobody for its stall.
    let rejoined =
        wait_until(REJOIN_BOUND, || gate.can_write()).await.ok_or("never writable after waking")?;
    assert!(gate.epoch() > epoch_before, "epoch {:?} not above {epoch_before:?}", gate.epoch());
    let fenced_after = fenced_polls(&others, Duration::from_millis(1_200)).await;
    let woken = drain(&mut own_events);
    println!("woken node writable {rejoined:?} after the wake; its events: {woken:?}");
    let lost_at = woken.iter().find_map(|e| match e {
        QuorumEvent::QuorumLost { at, .. } => Some(*at),
        _ => None,
    });
    assert!(lost_at.is_some_and(|at| at < woke_at), "quorum_lost not stamped inside the pause: {lost_at:?}");
    let convicted: Vec<_> = woken.iter().filter(|e| matches!(e, QuorumEvent::PeerDown { .. })).collect();
    assert!(convicted.is_empty(), "the woken node declared live peers down: {convicted:?}");
    assert_eq!(fenced_after, 0, "a live node was fenced after the wake");
    assert!(gate.can_write(), "the woken node lost quorum again");
    paused.end(Command::Shutdown).await?;
    cluster.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_node_restarts_fenced_on_its_address_and_rejoins_with_a_higher_epoch() -> TestResult {
    let (crashing, mut cluster) = start_with_solo(NodeId(2)).await?;
    let others = cluster.gates();
    let old = crashing.gate.clone();
    let epoch_before = old.epoch();

    crashing.end(Command::Crash).await?;
    assert!(!old.can_write(), "the crashed life still answers writable");
    // Past the down floor: the survivors consider it down, and keep their quorum.
    let fenced_while_down = fenced_polls(&others, Duration::from_millis(1_500)).await;
    assert_eq!(fenced_while_down, 0, "a survivor was fenced while node 2 was down");
    for node in cluster.nodes() {
        let peer = node.status().peers.into_iter().find(|p| p.id == 2).ok_or("no peer 2")?;
        assert_eq!(peer.state, "down", "node {} sees the crashed node as {}", node.id().0, peer.state);
    }

    // Same address, same identity, a new life.
    let gate = cluster.start_node(NodeId(2)).await?.gate();
    assert!(!gate.can_write(), "a new life must start fenced");
    let rejoined =
        wait_until(REJOIN_BOUND, || gate.can_write()).await.ok_or("restarted node never writable")?;
    println!("restarted node writable {rejoined:?} after its start");
    assert!(
        gate.epoch() > epoch_before,
        "epoch {:?} not above the old life's {epoch_before:?}",
        gate.epoch()
    );
    assert_eq!(
        fenced_polls(&others, Duration::from_millis(300)).await,
        0,
        "a survivor was fenced at the rejoin"
    );
    let back =
        |node: &Node| node.status().peers.iter().any(|p| p.id == 2 && p.state == "reachable" && p.connected);
    let survivors = [NodeId(1), NodeId(3)];
    wait_until(Duration::from_secs(1), || survivors.iter().filter_map(|id| cluster.node(*id)).all(back))
        .await
        .ok_or("survivors do not see node 2 back")?;
    cluster.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_node_takes_a_larger_incarnation_from_its_data_dir_and_rejoins_with_a_higher_epoch(
) -> TestResult {
    let mut cluster = cluster(3).await?;
    let node3 = cluster.config(NodeId(3)).ok_or("no node 3")?.clone();
    let data_dir = node3.data_dir.clone().ok_or("node 3 has no data directory")?;

    // A second process (here: a second node) on node 3's data directory is refused.
    let twin = Node::start_on(node3.clone(), UdpSocket::bind("127.0.0.1:0")?).await;
    match twin {
        Err(StartError::DataDir(DataDirError::Locked { holder, .. })) => {
            assert_eq!(holder, Some(std::process::id()))
        }
        other => panic!("expected the data directory to be locked, got {other:?}"),
    }

    let leaving = cluster.take(NodeId(3)).ok_or("no node 3")?;
    let (first_incarnation, first_epoch) = (leaving.incarnation(), leaving.gate().epoch());
    leaving.shutdown().await;
    // On the same address, which the old endpoint releases shortly after its shutdown.
    let again = cluster.start_node(NodeId(3)).await?;
    let (incarnation, gate) = (again.incarnation(), again.gate());
    wait_until(Duration::from_secs(3), || gate.can_write()).await.ok_or("restarted node never writable")?;
    assert!(incarnation > first_incarnation, "{incarnation} <= {first_incarnation}");
    assert!(gate.epoch() > first_epoch, "{:?} <= {first_epoch:?}", gate.epoch());
    let stored = std::fs::read(data_dir.join(quorate::state_file::STATE_FILE))?;
    let stored = quorate::Durable::decode(&stored)?;
    assert_eq!(stored.incarnation, incarnation, "the running life's incarnation is on disk");
    // And the promises the core asked to keep: its fence hold, and the floor its peers'
    // 900 ms leases need (900 ms x 1.01 / 0.99), written before it acked them.
    assert_eq!(stored.ack_hold, Duration::from_millis(400), "{stored:?}");
    assert_eq!(stored.floor, Duration::from_micros(918_182), "{stored:?}");
    // And the definition each peer was heard running: both on this node's, one table.
    let peers = std::fs::read(data_dir.join(quorate::peers_file::PEERS_FILE))?;
    let peers = quorate::peers_file::decode(&peers)?;
    assert_eq!(peers.peers.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![NodeId(1), NodeId(2)]);
    assert_eq!(peers.tables.len(), 1, "{peers:?}");
    cluster.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_without_a_data_dir_is_refused_and_an_observer_runs_without() -> TestResult {
    // Node 2 is an observer; neither has a data directory.
    let mut prepared = LocalCluster::builder("loopback", 2)
        .configure(|config| {
            config.members[1].votes = 0;
            config.data_dir = None;
        })
        .prepare()?;
    let (voter, socket) = prepared.take(NodeId(1))?;
    match Node::start_on(voter, socket).await {
        Err(e @ StartError::Config(_)) => {
            let text = e.to_string();
            assert!(text.contains("node.data_dir") && text.contains("--data-dir"), "{text}");
        }
        other => panic!("expected a config error naming node.data_dir, got {other:?}"),
    }
    let (observer, socket) = prepared.take(NodeId(2))?;
    let node = Node::start_on(observer, socket).await?;
    assert!(node.data_dir().is_none() && node.incarnation() > 0);
    node.shutdown().await;
    Ok(())
}
