//! The admin endpoint of real nodes on 127.0.0.1: what `/status`, `/metrics`, `/healthz`
//! and `/readyz` answer before and after a node is cut off, and the limits that protect it
//! (head size, methods, idle clients, connections at once).

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use quorate::testing::wait_until;
use quorate::transport::{generate_dev_pki, issue_node_certificate};
use quorate::{Config, MemberAddr, Node, NodeId, TlsSource};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT_MAX: Duration = Duration::from_secs(10);

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Three nodes with certificate files in `dir` (node 3's issued from the CA for 30 days)
/// and an admin endpoint each on an OS-assigned loopback port.
async fn three_nodes(dir: &Path) -> Result<Vec<Node>, Box<dyn std::error::Error>> {
    let pki = generate_dev_pki("admin", &[NodeId(1), NodeId(2)])?;
    let third =
        issue_node_certificate(&pki.ca_cert_pem, &pki.ca_key_pem, "admin", NodeId(3), 30, SystemTime::now())?;
    std::fs::write(dir.join("ca.pem"), &pki.ca_cert_pem)?;
    for creds in pki.nodes.iter().chain([&third]) {
        std::fs::write(dir.join(format!("node-{}.pem", creds.node.0)), &creds.cert_pem)?;
        std::fs::write(dir.join(format!("node-{}.key", creds.node.0)), &creds.key_pem)?;
    }
    let sockets: Vec<UdpSocket> = (0..3).map(|_| UdpSocket::bind("127.0.0.1:0")).collect::<Result<_, _>>()?;
    let members: Vec<MemberAddr> = sockets
        .iter()
        .enumerate()
        .map(|(i, s)| Ok(MemberAddr { id: NodeId(i as u64 + 1), addr: s.local_addr()?.into(), votes: 1 }))
        .collect::<Result<_, std::io::Error>>()?;
    let mut nodes = Vec::new();
    for (i, socket) in sockets.into_iter().enumerate() {
        let id = NodeId(i as u64 + 1);
        let mut config = Config::lan("admin", id, members.clone(), TlsSource::Dir(dir.to_owned()));
        config.admin = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.data_dir = Some(dir.join(format!("data-{}", id.0)));
        nodes.push(Node::start_on(config, socket).await?);
    }
    Ok(nodes)
}

/// `GET path` through hyper's client: status and body.
async fn get(addr: SocketAddr, path: &str) -> Result<(u16, String), Box<dyn std::error::Error>> {
    let stream = TcpStream::connect(addr).await?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let request = hyper::Request::get(path).header("host", addr.to_string()).body(Empty::<Bytes>::new())?;
    let response = send.send_request(request).await?;
    let code = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((code, String::from_utf8_lossy(&body).into_owned()))
}

/// Sends `raw` and reads until the server closes (at most 10 s): what came back.
async fn raw(addr: SocketAddr, raw: &[u8]) -> Result<String, Box<dyn std::error::Error>> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(raw).await?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await??;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The value of the first sample line of `metrics` that starts with `series`.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find(|l| l.starts_with(series))?.rsplit(' ').next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_metrics_and_probes_follow_the_gate_through_a_cut() -> TestResult {
    let dir = Dir(std::env::temp_dir().join(format!("quorate-admin-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0)?;
    let nodes = three_nodes(&dir.0).await?;
    let admin: Vec<SocketAddr> =
        nodes.iter().map(|n| n.admin_addr().ok_or("no admin")).collect::<Result<_, _>>()?;
    let writable = || nodes.iter().all(|n| n.gate().can_write());
    wait_until(WAIT_MAX, writable).await.ok_or("not all writable")?;
    // Let at least one RTT sample (every second) land.
    tokio::time::sleep(Duration::from_millis(1_200)).await;

    assert_eq!(get(admin[0], "/healthz").await?, (200, "ok\n".to_owned()));
    let (code, body) = get(admin[0], "/readyz").await?;
    assert!(code == 200 && body.starts_with("writable, epoch "), "{code} {body}");
    let (code, body) = get(admin[2], "/status").await?;
    assert_eq!(code, 200);
    let status: quorate::NodeStatus = serde_json::from_str(&body)?;
    assert!(status.writable && status.node == 3);
    let own = status.certificates.iter().find(|c| c.role == "node").ok_or("no node certificate")?;
    assert_eq!(own.dns_names, ["node-3.admin.quorate"]);
    assert!(own.days_left > 29.9 && own.days_left < 30.1, "{own:?}");

    let (code, metrics) = get(admin[0], "/metrics").await?;
    assert_eq!(code, 200);
    assert!(metrics.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    assert_eq!(sample(&metrics, "quorate_writable{node=\"1\"}"), Some(1.0), "{metrics}");
    assert_eq!(sample(&metrics, "quorate_votes_needed{node=\"1\"}"), Some(2.0));
    assert_eq!(sample(&metrics, "quorate_dropped_total{node=\"1\",reason=\"replayed\"}"), Some(0.0));
    let rtt_samples = sample(&metrics, "quorate_peer_rtt_observed_seconds_count{node=\"1\",peer=\"2\"}");
    assert!(rtt_samples.is_some_and(|n| n >= 1.0), "{metrics}");
    assert!(metrics
        .contains("quorate_transport_dropped_total{node=\"1\",kind=\"datagram\",reason=\"too_large\"} 0"));
    assert!(metrics.contains("quorate_connections_refused_total{node=\"1\",reason=\"bad_chain\"} 0"));
    let days = sample(&metrics, "quorate_certificate_days_left{node=\"1\",role=\"node\"");
    assert!(days.is_some_and(|d| d > 365.0), "the dev certificate lasts long: {metrics}");

    // Cut node 1 off: it fences itself, the others confirm it.
    for peer in [NodeId(2), NodeId(3)] {
        nodes[0].set_link_blocked(peer, true, true)?;
    }
    wait_until(WAIT_MAX, || !nodes[0].gate().can_write()).await.ok_or("node 1 still writable")?;
    let (code, body) = get(admin[0], "/readyz").await?;
    assert!(code == 503 && body.starts_with("not writable: "), "{code} {body}");
    assert_eq!(get(admin[0], "/healthz").await?.0, 200, "fenced is not unhealthy");
    let lease = Config::lan("x", NodeId(1), Vec::new(), TlsSource::Dir(PathBuf::new())).gate.lease;
    let metrics = get(admin[0], "/metrics").await?.1;
    assert_eq!(sample(&metrics, "quorate_writable{node=\"1\"}"), Some(0.0));
    assert_eq!(sample(&metrics, "quorate_cut_to_fence_seconds_count{node=\"1\"}"), Some(1.0), "{metrics}");
    let cut_to_fence = sample(&metrics, "quorate_cut_to_fence_seconds_sum{node=\"1\"}").unwrap_or(-1.0);
    assert!(cut_to_fence > 0.0 && cut_to_fence <= lease.as_secs_f64() * 1.02, "{cut_to_fence} vs {lease:?}");

    let fence_checks = || async {
        let mut n = 0.0;
        for a in &admin[1..] {
            let m = get(*a, "/metrics").await.map(|r| r.1).unwrap_or_default();
            n += sample(&m, "quorate_fence_check_seconds_count{").unwrap_or(0.0);
        }
        n
    };
    let deadline = std::time::Instant::now() + WAIT_MAX;
    while fence_checks().await < 1.0 {
        assert!(std::time::Instant::now() < deadline, "no fence check observed on node 2 or 3");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_endpoint_keeps_its_limits() -> TestResult {
    let dir = Dir(std::env::temp_dir().join(format!("quorate-admin-limits-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0)?;
    let mut nodes = three_nodes(&dir.0).await?;
    nodes.truncate(1);
    let addr = nodes[0].admin_addr().ok_or("no admin")?;

    let answer = raw(addr, b"POST /status HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").await?;
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    let answer = raw(addr, b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n").await?;
    assert!(answer.starts_with("HTTP/1.1 404") && answer.contains("try /status"), "{answer}");
    // Changes: JSON only, bounded, typed refusals (the peer here is loopback).
    let post = |path: &str, kind: &str, body: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let answer =
        raw(addr, post("/members", "text/plain", r#"{"action":"remove","id":2}"#).as_bytes()).await?;
    assert!(answer.starts_with("HTTP/1.1 415"), "a form post is not a change: {answer}");
    let big = format!(r#"{{"action":"add","id":4,"addr":"{}:7001"}}"#, "a".repeat(quorate::CHANGE_BYTES_MAX));
    let answer = raw(addr, post("/members", "application/json", &big).as_bytes()).await?;
    assert!(answer.starts_with("HTTP/1.1 413") && answer.contains(r#""error": "too_large""#), "{answer}");
    let answer =
        raw(addr, post("/members", "application/json", r#"{"action":"evict","id":2}"#).as_bytes()).await?;
    assert!(answer.starts_with("HTTP/1.1 400") && answer.contains(r#""error": "bad_request""#), "{answer}");
    let answer = raw(
        addr,
        post("/config", "application/json", r#"{"key":"timing.preset","value":"gigabit"}"#).as_bytes(),
    )
    .await?;
    assert!(answer.starts_with("HTTP/1.1 400") && answer.contains("the presets are lan, wan"), "{answer}");
    let answer =
        raw(addr, post("/config", "application/json", r#"{"key":"timing.lease","value":"2s"}"#).as_bytes())
            .await?;
    assert!(answer.starts_with("HTTP/1.1 400") && answer.contains("timing.preset can"), "{answer}");
    let huge = format!("GET /status HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n", "a".repeat(16 * 1024));
    let answer = raw(addr, huge.as_bytes()).await?;
    assert!(answer.starts_with("HTTP/1.1 431"), "a head over 8 KiB: {answer}");
    let answer =
        raw(addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await?;
    assert_eq!(answer.matches("HTTP/1.1 200").count(), 1, "one request per connection: {answer}");

    // Sixteen clients that send nothing hold every slot: a seventeenth waits in the accept
    // queue until the idle ones are cut off after the request timeout (5 s), then is served.
    let mut idle = Vec::new();
    for _ in 0..16 {
        idle.push(TcpStream::connect(addr).await?);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let waiting = tokio::spawn(async move { get(addr, "/healthz").await.map_err(|e| e.to_string()) });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiting.is_finished(), "served although every slot was taken");
    let served = tokio::time::timeout(Duration::from_secs(10), waiting).await??;
    assert_eq!(served?.0, 200);
    assert!(started.elapsed() >= Duration::from_secs(3), "served only once idle clients were cut off");
    for mut stream in idle {
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await?;
        assert!(matches!(n, Ok(0) | Err(_)), "an idle client is disconnected, not answered: {n:?}");
    }
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}
