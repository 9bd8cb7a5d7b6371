//! The service over real HTTP and a real 3-node quorate cluster on loopback: the write
//! path, bad input, and a node cut off by the link filter.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quorate::testing::{wait_until, LocalCluster};
use quorate::NodeId;
use quorate_kv::client::{send_raw, Client, Reply};
use quorate_kv::input::{KEY_BYTES_MAX, VALUE_BYTES_MAX};
use quorate_kv::{http, Durability, GateMode, Guard, Service, Store, StoreError};
use tokio::sync::watch;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TIMEOUT: Duration = Duration::from_secs(5);
/// Startup, fencing and healing all happen within a few seconds on loopback.
const WAIT_MAX: Duration = Duration::from_secs(10);

/// A cluster of `quorate` nodes in this process; node 1 also runs the HTTP service, with
/// its database in the cluster's directory.
struct Rig {
    cluster: LocalCluster,
    service: Service,
    http: SocketAddr,
    stop: watch::Sender<bool>,
}

impl Rig {
    async fn start(nodes: u64) -> Result<Rig, Box<dyn std::error::Error>> {
        let cluster = LocalCluster::builder("kvtest", nodes).start().await?;
        let store = Store::open(&cluster.dir().join("kv.redb"), Durability::Immediate)?;
        let gate = cluster.gate(NodeId(1)).ok_or("no node 1")?;
        let events = gate.subscribe();
        let service =
            Service::new(NodeId(1), gate, Arc::new(store), Durability::Immediate, GateMode::Enforce);
        tokio::spawn(service.clone().watch_events(events));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let http = listener.local_addr()?;
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(http::serve(listener, http::router(service.clone()), stop_rx));
        cluster.wait_writable(&[NodeId(1)], WAIT_MAX).await?;
        // The service's read-only switch follows the gate's events, so it may lag the gate
        // by the time the event takes to reach it (by design: it only ever lags): wait for it
        // too, or the first write could be refused as read-only.
        let writable = || matches!(service.mode(), quorate_kv::Mode::Writable { .. });
        wait_until(WAIT_MAX, writable).await.ok_or("the service never saw the quorum")?;
        Ok(Rig { cluster, service, http, stop })
    }

    /// Node 1's gate.
    fn gate(&self) -> Result<quorate::QuorumGate, String> {
        self.cluster.gate(NodeId(1)).ok_or_else(|| "node 1 is not running".to_owned())
    }

    async fn wait(&self, what: &str, done: impl FnMut() -> bool) -> Result<(), String> {
        match wait_until(WAIT_MAX, done).await {
            Some(_) => Ok(()),
            None => Err(format!("timed out waiting until {what}")),
        }
    }

    fn client(&self) -> Client {
        Client::new(self.http, TIMEOUT)
    }

    /// Cuts node 1 off from every other node (both directions), or heals it.
    fn cut_node_1(&mut self, cut: bool) -> TestResult {
        if cut {
            let others: Vec<NodeId> = self.cluster.ids().into_iter().filter(|id| *id != NodeId(1)).collect();
            self.cluster.cut(&[NodeId(1)], &others)?;
        } else {
            self.cluster.heal()?;
        }
        Ok(())
    }

    async fn stop(self) -> TestResult {
        let _ = self.stop.send(true);
        self.cluster.shutdown().await?;
        drop(self.service);
        Ok(())
    }
}

/// Runs blocking client code on a multi-threaded test runtime.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn reason(reply: &Reply) -> String {
    reply.json()["reason"].as_str().unwrap_or_default().to_owned()
}

fn keys_stored(client: &mut Client) -> Result<u64, Box<dyn std::error::Error>> {
    let status = client.status()?.json();
    status["store"]["keys"].as_u64().ok_or_else(|| format!("no store.keys in {status}").into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_commits_with_its_epoch_and_reads_return_it() -> TestResult {
    let rig = Rig::start(3).await?;
    let epoch = rig.gate()?.epoch().0;
    let mut client = rig.client();
    let put = blocking(|| client.put("user/42 é", "hello wörld".as_bytes()))?;
    assert_eq!(put.status, 200, "{}", String::from_utf8_lossy(&put.body));
    let ack = put.json();
    assert_eq!(ack["epoch"].as_u64(), Some(epoch));
    assert_eq!(ack["seq"].as_u64(), Some(1));
    let checked = ack["checked_mono_us"].as_u64().unwrap_or(0);
    let committed = ack["committed_mono_us"].as_u64().unwrap_or(0);
    assert!(checked > 0 && checked <= committed, "{ack}");

    let got = blocking(|| client.get("user/42 é"))?;
    assert_eq!(got.status, 200);
    let got = got.json();
    assert_eq!(got["value"], "hello wörld");
    assert_eq!(got["epoch"].as_u64(), Some(epoch));
    assert_eq!(got["writable"], true);
    assert_eq!(blocking(|| client.get("missing"))?.status, 404);

    let status = blocking(|| client.status())?.json();
    assert_eq!(status["mode"], "writable", "{status}");
    assert_eq!(status["gate"]["enforced"], true);
    assert_eq!(status["writes"]["acked"].as_u64(), Some(1));
    assert_eq!(status["store"]["last_seq"].as_u64(), Some(1));
    assert_eq!(status["store"]["max_epoch"].as_u64(), Some(epoch));
    rig.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_4xx_with_a_reason_and_writes_nothing() -> TestResult {
    let rig = Rig::start(3).await?;
    let addr = rig.http;
    let mut client = rig.client();
    let long_key = "k".repeat(KEY_BYTES_MAX + 1);
    let big_value = vec![b'v'; VALUE_BYTES_MAX + 1];
    let truncated = b"PUT /kv/trunc HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly 22 bytes of value";
    let chunked = chunked_body(VALUE_BYTES_MAX + 10);
    type Request<'a> = Box<dyn FnOnce(&mut Client) -> Result<Reply, quorate_kv::client::ClientError> + 'a>;
    let requests: Vec<(&str, Request<'_>, u16, &str)> = vec![
        ("oversized key", Box::new(|c| c.put(&long_key, b"v")), 414, "key_too_long"),
        ("oversized value", Box::new(|c| c.put("big", &big_value)), 413, "value_too_large"),
        ("key not UTF-8", Box::new(|c| c.request("PUT", "/kv/ab%FFcd", Some(b"v"))), 400, "key_not_utf8"),
        ("bad percent", Box::new(|c| c.request("PUT", "/kv/a%zz", Some(b"v"))), 400, "bad_percent_encoding"),
        (
            "control char",
            Box::new(|c| c.request("PUT", "/kv/a%00b", Some(b"v"))),
            400,
            "key_control_character",
        ),
        ("value not UTF-8", Box::new(|c| c.put("bin", &[0x66, 0x6f, 0xff, 0xfe])), 400, "value_not_utf8"),
        ("empty key", Box::new(|c| c.request("PUT", "/kv/", Some(b"v"))), 400, "empty_key"),
        ("no route", Box::new(|c| c.request("PUT", "/other", Some(b"v"))), 404, "no_route"),
        ("wrong method", Box::new(|c| c.request("DELETE", "/kv/x", None)), 405, "method_not_allowed"),
        ("truncated body", Box::new(|_| send_raw(addr, truncated, TIMEOUT)), 400, "body_truncated"),
        (
            "chunked body over the limit",
            Box::new(|_| send_raw(addr, &chunked, TIMEOUT)),
            413,
            "value_too_large",
        ),
    ];
    let mut cases = Vec::new();
    for (what, request, status, why) in requests {
        let reply = blocking(|| request(&mut client)).map_err(|e| format!("{what}: {e}"))?;
        cases.push((what, reply, status, why));
    }
    for (what, reply, status, why) in &cases {
        assert_eq!(reply.status, *status, "{what}: {}", String::from_utf8_lossy(&reply.body));
        assert_eq!(reason(reply), *why, "{what}");
        assert!(reply.json()["error"].as_str().is_some_and(|e| !e.is_empty()), "{what}: no error text");
    }
    let mut client = rig.client();
    assert_eq!(blocking(|| keys_stored(&mut client))?, 0, "a refused request wrote something");
    for key in ["big", "bin", "trunc", "chunked"] {
        assert_eq!(blocking(|| client.get(key))?.status, 404, "{key} was written");
    }
    let status = blocking(|| client.status())?.json();
    assert_eq!(status["writes"]["refused_bad_input"].as_u64(), Some(cases.len() as u64 - 3));
    // A good request on the same service still works.
    assert_eq!(blocking(|| client.put("fine", b"v"))?.status, 200);
    rig.stop().await?;
    Ok(())
}

/// A `PUT /kv/chunked` whose chunked body is `len` bytes.
fn chunked_body(len: usize) -> Vec<u8> {
    let mut raw = b"PUT /kv/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let chunk = vec![b'c'; 4096];
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len());
        raw.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        raw.extend_from_slice(&chunk[..n]);
        raw.extend_from_slice(b"\r\n");
        left -= n;
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    raw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_node_refuses_writes_with_the_reason_and_still_serves_reads() -> TestResult {
    let mut rig = Rig::start(3).await?;
    let mut client = rig.client();
    assert_eq!(blocking(|| client.put("before", b"1"))?.status, 200);
    let first_epoch = rig.gate()?.epoch().0;

    rig.cut_node_1(true)?;
    let cut = Instant::now();
    let mut attempt: u64 = 0;
    let refused = loop {
        attempt += 1;
        let reply = blocking(|| client.put(&format!("during-{attempt}"), b"2"))?;
        if reply.status != 200 {
            break reply;
        }
        if cut.elapsed() > WAIT_MAX {
            return Err("node 1 kept accepting writes after being cut off".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(refused.status, 503, "{}", String::from_utf8_lossy(&refused.body));
    let text = refused.json()["error"].as_str().unwrap_or_default().to_owned();
    assert!(text.starts_with("not quorate: holding 1 of 3 votes, 2 needed"), "{text}");
    // Fenced within the lease (900 ms) plus drift and slack for a loaded machine.
    assert!(cut.elapsed() < Duration::from_secs(3), "fenced only after {:?}", cut.elapsed());

    rig.wait("read-only mode", || matches!(rig.service.mode(), quorate_kv::Mode::ReadOnly { .. })).await?;
    let refused = blocking(|| client.put("during", b"3"))?;
    let refused_key = format!("during-{attempt}");
    assert_eq!((refused.status, reason(&refused).as_str()), (503, "read_only"));
    let status = blocking(|| client.status())?.json();
    assert_eq!(status["mode"], "read-only", "{status}");
    assert!(status["mode_reason"].as_str().is_some_and(|r| r.starts_with("not quorate: holding 1 of 3")));
    // Reads stay available on the fenced node, and say it is fenced.
    let read = blocking(|| client.get("before"))?;
    assert_eq!(read.status, 200);
    assert_eq!((read.json()["value"].clone(), read.json()["writable"].clone()), ("1".into(), false.into()));

    rig.cut_node_1(false)?;
    rig.wait("writable mode", || matches!(rig.service.mode(), quorate_kv::Mode::Writable { .. })).await?;
    let put = blocking(|| client.put("after", b"4"))?;
    assert_eq!(put.status, 200, "{}", String::from_utf8_lossy(&put.body));
    assert!(put.json()["epoch"].as_u64() > Some(first_epoch), "the regained quorum has a new epoch");
    for key in [refused_key.as_str(), "during"] {
        assert_eq!(blocking(|| client.get(key))?.status, 404, "refused write {key} was stored");
    }
    let status = blocking(|| client.status())?.json();
    let kinds: Vec<&str> =
        status["events"].as_array().into_iter().flatten().filter_map(|e| e["event"].as_str()).collect();
    assert!(kinds.contains(&"quorum_lost") && kinds.contains(&"quorum_gained"), "{kinds:?}");
    // "before", the writes accepted while the lease still ran, and "after".
    assert_eq!(status["writes"]["acked"].as_u64(), Some(attempt + 1));
    rig.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permit_that_outlived_its_quorum_is_rolled_back_at_commit() -> TestResult {
    let mut rig = Rig::start(3).await?;
    let dir = rig.cluster.dir().join("direct");
    std::fs::create_dir_all(&dir)?;
    let store = Store::open(&dir.join("kv.redb"), Durability::Immediate)?;
    let gate = rig.gate()?;
    let old = gate.permit()?;

    rig.cut_node_1(true)?;
    rig.wait("node 1 fenced", || !gate.can_write()).await?;
    match store.put("k", "under an expired lease", Guard::Permit(&old)) {
        Err(StoreError::Fenced(why)) => assert!(why.to_string().starts_with("not quorate"), "{why}"),
        other => return Err(format!("expected Fenced, got {other:?}").into()),
    }
    assert_eq!(store.get("k")?, None);

    rig.cut_node_1(false)?;
    rig.wait("node 1 writable again", || gate.can_write()).await?;
    let new = gate.permit()?;
    assert!(new.epoch() > old.epoch());
    // The old permit now fails its re-check on the epoch alone...
    assert!(old.check().is_err());
    assert_eq!(store.put("k", "fresh", Guard::Permit(&new))?.epoch, new.epoch().0);
    // ...and the store refuses it before even asking, because a newer epoch is stored.
    match store.put("k", "stale", Guard::Permit(&old)) {
        Err(StoreError::StaleEpoch { permit, stored }) => {
            assert_eq!((permit, stored), (old.epoch().0, new.epoch().0));
        }
        other => return Err(format!("expected StaleEpoch, got {other:?}").into()),
    }
    assert_eq!(store.get("k")?.map(|r| r.value), Some("fresh".to_owned()));
    assert_eq!(store.stats()?.last_seq, 1, "rolled-back writes took no sequence number");
    drop(store);
    rig.stop().await?;
    Ok(())
}
