//! Real nodes over real QUIC on 127.0.0.1: convergence, a stopped node, a cut-off node, a
//! garbage flood, a foreign certificate, graceful leave, a paused node and a restarted one.

use std::net::UdpSocket;
use std::path::PathBuf;
use std::time::Duration;

use quorate::transport::generate_dev_pki;
use quorate::{
    Config, DataDirError, MemberAddr, Node, NodeId, QuorumEvent, QuorumGate, StartError, TlsSource,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// One data directory per node under the system temp dir, all removed on drop (after the
/// nodes: declare it before them).
struct DataDirs(PathBuf);

impl DataDirs {
    fn new(tag: &str) -> DataDirs {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        DataDirs(std::env::temp_dir().join(format!("quorate-loopback-{tag}-{}-{n}", std::process::id())))
    }

    fn node(&self, id: NodeId) -> PathBuf {
        self.0.join(format!("node-{}", id.0))
    }
}

impl Drop for DataDirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A LAN config for `id` with its data directory in `dirs`.
fn config(id: NodeId, members: &[MemberAddr], tls: TlsSource, dirs: &DataDirs) -> Config {
    let mut config = Config::lan("loopback", id, members.to_vec(), tls);
    config.data_dir = Some(dirs.node(id));
    config
}

/// Starts `n` nodes on OS-assigned loopback ports with a generated PKI. The nodes' data
/// directories go when the returned [`DataDirs`] drops.
async fn cluster(n: u64) -> Result<(DataDirs, Vec<Node>), Box<dyn std::error::Error>> {
    let (dirs, configs, sockets) = configs(n)?;
    let mut nodes = Vec::new();
    for (config, socket) in configs.into_iter().zip(sockets) {
        nodes.push(Node::start_on(config, socket).await?);
    }
    Ok((dirs, nodes))
}

/// The configs of `n` nodes on OS-assigned loopback ports with a generated PKI, their data
/// directories, and the bound sockets they are to use.
type Configs = (DataDirs, Vec<Config>, Vec<UdpSocket>);
fn configs(n: u64) -> Result<Configs, Box<dyn std::error::Error>> {
    let dirs = DataDirs::new("cluster");
    let ids: Vec<NodeId> = (1..=n).map(NodeId).collect();
    let pki = generate_dev_pki("loopback", &ids)?;
    let sockets: Vec<UdpSocket> =
        ids.iter().map(|_| UdpSocket::bind("127.0.0.1:0")).collect::<Result<_, _>>()?;
    let members: Vec<MemberAddr> = ids
        .iter()
        .zip(&sockets)
        .map(|(id, s)| Ok(MemberAddr { id: *id, addr: s.local_addr()?, votes: 1 }))
        .collect::<Result<_, std::io::Error>>()?;
    let mut configs = Vec::new();
    for id in &ids {
        let tls = TlsSource::Identity(std::sync::Arc::new(pki.identity(*id)?));
        configs.push(config(*id, &members, tls, &dirs));
    }
    Ok((dirs, configs, sockets))
}

async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if done() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_and_five_nodes_converge_to_all_writable_within_a_second() -> TestResult {
    for n in [3, 5] {
        let (_dirs, nodes) = cluster(n).await?;
        let gates: Vec<_> = nodes.iter().map(Node::gate).collect();
        let took = wait_until(Duration::from_secs(3), || gates.iter().all(|g| g.can_write())).await;
        println!("{n} nodes: all writable after {took:?}");
        assert!(took.is_some_and(|t| t < Duration::from_secs(1)), "{n} nodes: {took:?}");
        let status = nodes[0].status();
        assert!(status.writable && status.peers.iter().all(|p| p.connected && p.state == "reachable"), "{status:?}");
        for node in nodes {
            node.shutdown().await;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_node_is_marked_down_after_the_floor_and_the_rest_stay_writable() -> TestResult {
    let (_dirs, mut nodes) = cluster(3).await?;
    let gates: Vec<_> = nodes.iter().map(Node::gate).collect();
    wait_until(Duration::from_secs(3), || gates.iter().all(|g| g.can_write())).await.ok_or("no quorum")?;
    let mut events = gates[0].subscribe();
    // Dropped, not shut down: no leave is sent, as in a crash.
    let stopped = nodes.remove(2);
    let stopped_at = std::time::Instant::now();
    drop(stopped);
    let down = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(QuorumEvent::PeerDown { peer, .. }) = events.recv().await {
                if peer == NodeId(3) {
                    return stopped_at.elapsed();
                }
            }
        }
    })
    .await?;
    let peer3 = nodes[0].status().peers.into_iter().find(|p| p.id == 3).ok_or("no peer 3")?;
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
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_off_node_fences_within_lease_times_drift() -> TestResult {
    let (_dirs, nodes) = cluster(3).await?;
    let gates: Vec<_> = nodes.iter().map(Node::gate).collect();
    wait_until(Duration::from_secs(3), || gates.iter().all(|g| g.can_write())).await.ok_or("no quorum")?;
    let cut = gates[0].clock().now();
    for peer in [2, 3] {
        nodes[0].set_link_blocked(NodeId(peer), true, true)?;
        nodes[(peer - 1) as usize].set_link_blocked(NodeId(1), true, true)?;
    }
    let fenced = wait_until(Duration::from_secs(3), || !gates[0].can_write()).await.ok_or("never fenced")?;
    let fence = gates[0].clock().now() - cut;
    println!("cut-off node fenced after {fence:?} (polled {fenced:?})");
    // lease 900 ms x (1 + 1%) plus 50 ms for the polling loop and scheduling.
    assert!(fence <= Duration::from_millis(909 + 50), "{fence:?}");
    assert!(gates[1].can_write() && gates[2].can_write(), "the majority must stay writable");
    let err = gates[0].permit().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.starts_with("not quorate: holding 1 of 3 votes, 2 needed"), "{err}");
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_udp_flood_does_not_disturb_an_established_cluster() -> TestResult {
    let (_dirs, nodes) = cluster(3).await?;
    let gates: Vec<_> = nodes.iter().map(Node::gate).collect();
    wait_until(Duration::from_secs(3), || gates.iter().all(|g| g.can_write())).await.ok_or("no quorum")?;
    let epoch = gates[0].epoch();
    let target = nodes[0].local_addr();
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
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_with_a_certificate_from_another_ca_is_refused_and_changes_no_quorum() -> TestResult {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let pki = generate_dev_pki("loopback", &ids)?;
    let rogue_pki = generate_dev_pki("loopback", &ids)?; // same names, another CA
    let sockets: Vec<UdpSocket> =
        ids.iter().map(|_| UdpSocket::bind("127.0.0.1:0")).collect::<Result<_, _>>()?;
    let members: Vec<MemberAddr> = ids
        .iter()
        .zip(&sockets)
        .map(|(id, s)| Ok(MemberAddr { id: *id, addr: s.local_addr()?, votes: 1 }))
        .collect::<Result<_, std::io::Error>>()?;
    let dirs = DataDirs::new("rogue");
    let mut nodes = Vec::new();
    for (id, socket) in ids.iter().zip(sockets) {
        let source = if *id == NodeId(3) { &rogue_pki } else { &pki };
        let tls = TlsSource::Identity(std::sync::Arc::new(source.identity(*id)?));
        nodes.push(Node::start_on(config(*id, &members, tls, &dirs), socket).await?);
    }
    let gates: Vec<_> = nodes.iter().map(Node::gate).collect();
    wait_until(Duration::from_secs(3), || gates[0].can_write() && gates[1].can_write())
        .await
        .ok_or("no quorum")?;
    let epochs = (gates[0].epoch(), gates[1].epoch());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!((gates[0].epoch(), gates[1].epoch()), epochs, "quorum changed");
    assert!(gates[0].can_write() && gates[1].can_write());
    assert!(!gates[2].can_write(), "the rogue node must never hold a quorum");
    for node in &nodes[..2] {
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
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_fences_first_and_peers_let_the_node_go_at_once() -> TestResult {
    let (_dirs, mut nodes) = cluster(3).await?;
    let gates: Vec<_> = nodes.iter().map(Node::gate).collect();
    wait_until(Duration::from_secs(3), || gates.iter().all(|g| g.can_write())).await.ok_or("no quorum")?;
    let mut events = gates[0].subscribe();
    let leaving = nodes.remove(2);
    let started = std::time::Instant::now();
    leaving.shutdown().await;
    assert!(!gates[2].can_write());
    let why = gates[2].permit().err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(why, "not quorate: the node is shut down");
    let left = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if let Ok(QuorumEvent::PeerLeft { peer, .. }) = events.recv().await {
                if peer == NodeId(3) {
                    return started.elapsed();
                }
            }
        }
    })
    .await?;
    println!("peers let the leaving node go after {left:?}");
    assert!(left < Duration::from_millis(500), "{left:?}");
    assert!(gates[0].can_write() && gates[1].can_write());
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}

/// Starts node `index` of `configs` as a [`Solo`] and the others as ordinary nodes, and
/// waits until all are writable.
async fn start_with_solo(
    configs: &mut Vec<Config>,
    sockets: &mut Vec<UdpSocket>,
    index: usize,
) -> Result<(Solo, Vec<Node>), Box<dyn std::error::Error>> {
    let solo = Solo::start(configs.remove(index), sockets.remove(index))?;
    let mut nodes = Vec::new();
    for (config, socket) in configs.drain(..).zip(sockets.drain(..)) {
        nodes.push(Node::start_on(config, socket).await?);
    }
    let gates: Vec<QuorumGate> = nodes.iter().map(Node::gate).chain([solo.gate.clone()]).collect();
    wait_until(Duration::from_secs(3), || gates.iter().all(QuorumGate::can_write))
        .await
        .ok_or("no quorum")?;
    Ok((solo, nodes))
}

/// Longest a [`Solo`] node stays frozen if the test never thaws it.
const FREEZE_MAX: Duration = Duration::from_secs(10);

/// The fence bound over QUIC: `lease x (1 + drift)` (909 ms) plus 50 ms for the polling
/// loop and scheduling, as in `cut_off_node_fences_within_lease_times_drift`.
const FENCE_BOUND: Duration = Duration::from_millis(909 + 50);

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
fn drain(events: &mut quorate::EventStream) -> Vec<QuorumEvent> {
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
    let (_dirs, mut configs, mut sockets) = configs(3)?;
    let (paused, nodes) = start_with_solo(&mut configs, &mut sockets, 2).await?;
    let others: Vec<QuorumGate> = nodes.iter().map(Node::gate).collect();
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
    assert!(fence <= FENCE_BOUND, "fenced {fence:?} after the pause began, bound {FENCE_BOUND:?}");
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
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_node_restarts_fenced_on_its_address_and_rejoins_with_a_higher_epoch() -> TestResult {
    let (_dirs, mut configs, mut sockets) = configs(3)?;
    let config = configs[1].clone();
    let addr = sockets[1].local_addr()?;
    let (crashing, nodes) = start_with_solo(&mut configs, &mut sockets, 1).await?;
    let others: Vec<QuorumGate> = nodes.iter().map(Node::gate).collect();
    let old = crashing.gate.clone();
    let epoch_before = old.epoch();

    crashing.end(Command::Crash).await?;
    assert!(!old.can_write(), "the crashed life still answers writable");
    // Past the down floor: the survivors consider it down, and keep their quorum.
    let fenced_while_down = fenced_polls(&others, Duration::from_millis(1_500)).await;
    assert_eq!(fenced_while_down, 0, "a survivor was fenced while node 2 was down");
    for node in &nodes {
        let peer = node.status().peers.into_iter().find(|p| p.id == 2).ok_or("no peer 2")?;
        assert_eq!(peer.state, "down", "node {} sees the crashed node as {}", node.id().0, peer.state);
    }

    // Same address, same identity, a new life.
    let restarted = Node::start_on(config, UdpSocket::bind(addr)?).await?;
    let gate = restarted.gate();
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
    wait_until(Duration::from_secs(1), || nodes.iter().all(back))
        .await
        .ok_or("survivors do not see node 2 back")?;
    restarted.shutdown().await;
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_node_takes_a_larger_incarnation_from_its_data_dir_and_rejoins_with_a_higher_epoch(
) -> TestResult {
    let (dirs, configs, sockets) = configs(3)?;
    let node3 = configs[2].clone();
    let addr3 = sockets[2].local_addr()?;
    let mut nodes = Vec::new();
    for (config, socket) in configs.into_iter().zip(sockets) {
        nodes.push(Node::start_on(config, socket).await?);
    }
    let gates: Vec<_> = nodes.iter().map(Node::gate).collect();
    wait_until(Duration::from_secs(3), || gates.iter().all(|g| g.can_write())).await.ok_or("no quorum")?;

    // A second process (here: a second node) on node 3's data directory is refused.
    let twin = Node::start_on(node3.clone(), UdpSocket::bind("127.0.0.1:0")?).await;
    match twin {
        Err(StartError::DataDir(DataDirError::Locked { holder, .. })) => {
            assert_eq!(holder, Some(std::process::id()))
        }
        other => panic!("expected the data directory to be locked, got {other:?}"),
    }

    let (first_incarnation, first_epoch) = (nodes[2].incarnation(), gates[2].epoch());
    let leaving = nodes.remove(2);
    leaving.shutdown().await;
    // The old endpoint's socket closes when its last task ends, shortly after shutdown.
    let mut socket = UdpSocket::bind(addr3);
    for _ in 0..300 {
        if socket.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        socket = UdpSocket::bind(addr3);
    }
    let socket = socket?;
    let again = Node::start_on(node3, socket).await?;
    let gate = again.gate();
    wait_until(Duration::from_secs(3), || gate.can_write()).await.ok_or("restarted node never writable")?;
    assert!(again.incarnation() > first_incarnation, "{} <= {first_incarnation}", again.incarnation());
    assert!(gate.epoch() > first_epoch, "{:?} <= {first_epoch:?}", gate.epoch());
    let stored = std::fs::read(dirs.node(NodeId(3)).join(quorate::data_dir::STATE_FILE))?;
    let stored = quorate::Durable::decode(&stored)?;
    assert_eq!(stored.incarnation, again.incarnation(), "the running life's incarnation is on disk");
    // And the promises the core asked to keep: its fence hold, and the floor its peers'
    // 900 ms leases need (900 ms x 1.01 / 0.99), written before it acked them.
    assert_eq!(stored.ack_hold, Duration::from_millis(400), "{stored:?}");
    assert_eq!(stored.floor, Duration::from_micros(918_182), "{stored:?}");
    // And the definition each peer was heard running: both on this node's, one table.
    let peers = std::fs::read(dirs.node(NodeId(3)).join(quorate::peers_file::PEERS_FILE))?;
    let peers = quorate::peers_file::decode(&peers)?;
    assert_eq!(peers.peers.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![NodeId(1), NodeId(2)]);
    assert_eq!(peers.tables.len(), 1, "{peers:?}");
    again.shutdown().await;
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_without_a_data_dir_is_refused_and_an_observer_runs_without() -> TestResult {
    let ids = [NodeId(1), NodeId(2)];
    let pki = generate_dev_pki("loopback", &ids)?;
    let sockets: Vec<UdpSocket> =
        ids.iter().map(|_| UdpSocket::bind("127.0.0.1:0")).collect::<Result<_, _>>()?;
    let members: Vec<MemberAddr> = ids
        .iter()
        .zip(&sockets)
        .map(|(id, s)| {
            Ok(MemberAddr { id: *id, addr: s.local_addr()?, votes: if id.0 == 1 { 1 } else { 0 } })
        })
        .collect::<Result<_, std::io::Error>>()?;
    let mut sockets = sockets.into_iter();
    let voter = Config::lan(
        "loopback",
        NodeId(1),
        members.clone(),
        TlsSource::Identity(std::sync::Arc::new(pki.identity(NodeId(1))?)),
    );
    match Node::start_on(voter, sockets.next().ok_or("socket")?).await {
        Err(e @ StartError::Config(_)) => {
            let text = e.to_string();
            assert!(text.contains("node.data_dir") && text.contains("--data-dir"), "{text}");
        }
        other => panic!("expected a config error naming node.data_dir, got {other:?}"),
    }
    let observer = Config::lan(
        "loopback",
        NodeId(2),
        members,
        TlsSource::Identity(std::sync::Arc::new(pki.identity(NodeId(2))?)),
    );
    let node = Node::start_on(observer, sockets.next().ok_or("socket")?).await?;
    assert!(node.data_dir().is_none() && node.incarnation() > 0);
    node.shutdown().await;
    Ok(())
}
