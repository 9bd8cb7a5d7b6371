//! What the quorum gate costs a write: writes per second with the gate and with it
//! bypassed, on the same redb database, at three depths of the same write path:
//!
//! * `store`:   `Store::put` with `Guard::Permit(&gate.permit()?)` vs `Guard::Bypass`
//! * `service`: `Service::put` (input already parsed) with `GateMode::Enforce` vs `Bypass`
//! * `http`:    `PUT /kv/{key}` over loopback, one keep-alive client, `Enforce` vs `Bypass`
//!
//! each with durable commits (fsync) and with `Durability::None` (no flush), where the
//! write path without the disk is what remains. The gate's permit comes from node 1 of a
//! real 3-node cluster running in this process on loopback, so its leases are being renewed
//! while the writes run. Within a round the two modes alternate write by write on the same
//! database, so that drift (the file growing, caches, other processes) hits both alike; the
//! figures are medians over rounds. Also measured: `permit()` + `check()` alone, in a tight
//! loop, and its share of one write's time.
//!
//! Run: `cargo bench -p quorate-kv --bench gate_cost` (about a minute). `-- --quick` runs
//! fewer, shorter rounds (a smoke test, not figures).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quorate::testing::LocalCluster;
use quorate::{NodeId, QuorumGate};
use quorate_kv::client::Client;
use quorate_kv::{http, Durability, GateMode, Guard, Service, Store};
use tokio::runtime::Runtime;
use tokio::sync::watch;

type Error = Box<dyn std::error::Error>;

/// Rounds per measurement (each runs both modes); the median is reported.
const ROUNDS: usize = 21;
/// Writes per mode per round, durable / not flushed.
const WRITES_DURABLE: u64 = 300;
const WRITES_NO_FLUSH: u64 = 1_500;
/// Iterations of the bare `permit()` + `check()` loop.
const GATE_OPS: u64 = 2_000_000;
/// The value written every time (a small record: the gate's share is largest there).
const VALUE: &str = "a small value of about sixty bytes, like a typical row update";

#[derive(Clone, Copy, PartialEq)]
enum Depth {
    Store,
    Service,
    Http,
}

impl Depth {
    fn name(self) -> &'static str {
        match self {
            Depth::Store => "store",
            Depth::Service => "service",
            Depth::Http => "http",
        }
    }
}

fn main() -> Result<(), Error> {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, scale) = if quick { (2, 10) } else { (ROUNDS, 1) };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // A 3-node cluster on loopback; the databases go into its directory, removed with it.
    let cluster = rt.block_on(async {
        let cluster = LocalCluster::builder("kvbench", 3).start().await?;
        cluster.wait_writable(&[NodeId(1)], Duration::from_secs(10)).await?;
        Ok::<_, quorate::testing::ClusterError>(cluster)
    })?;
    let gate = cluster.gate(NodeId(1)).ok_or("no node 1")?;
    let result = run(&rt, &gate, cluster.dir(), rounds, scale);
    rt.block_on(cluster.shutdown())?;
    result
}

fn run(rt: &Runtime, gate: &QuorumGate, dir: &Path, rounds: usize, scale: u64) -> Result<(), Error> {
    println!("gate_cost: {} cores, {rounds} rounds per figure, medians over rounds", cores());
    let gate_ns = gate_ns(gate, GATE_OPS / scale)?;
    println!("permit() + check(): {gate_ns:.1} ns per write (tight loop, {} iterations)", GATE_OPS / scale);
    println!();
    println!(
        "| durability | depth | writes/round/mode | gated writes/s | bypassed writes/s | gated slower by | \
         rounds where gated was slower | median latency gated / bypassed | permit+check share of a write |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---|---:|");
    for (durability, writes) in [(Durability::Immediate, WRITES_DURABLE), (Durability::None, WRITES_NO_FLUSH)]
    {
        let writes = (writes / scale).max(10);
        let path = dir.join(format!("{}.redb", name(durability)));
        let store = Arc::new(Store::open(&path, durability)?);
        for depth in [Depth::Store, Depth::Service, Depth::Http] {
            let mut bench = Bench::new(rt, gate, store.clone(), durability, depth)?;
            // A warm-up round, not counted.
            bench.round(writes)?;
            bench.latencies = [Vec::new(), Vec::new()];
            let (mut gated, mut bypassed, mut slower) = (Vec::new(), Vec::new(), 0);
            for _ in 0..rounds {
                let (g, b) = bench.round(writes)?;
                slower += usize::from(g < b);
                gated.push(g);
                bypassed.push(b);
            }
            let [mut lat_g, mut lat_b] = std::mem::take(&mut bench.latencies);
            bench.stop();
            let (g, b) = (median(&mut gated), median(&mut bypassed));
            println!(
                "| {} | {} | {writes} | {g:.0} | {b:.0} | {:+.2}% | {slower} of {rounds} | {:.1} / {:.1} µs | {:.3}% |",
                name(durability),
                depth.name(),
                (b - g) / b * 100.0,
                median(&mut lat_g),
                median(&mut lat_b),
                gate_ns * b / 1e9 * 100.0,
            );
        }
    }
    Ok(())
}

/// One depth of the write path, ready to run rounds in either mode.
struct Bench<'a> {
    rt: &'a Runtime,
    gate: QuorumGate,
    store: Arc<Store>,
    depth: Depth,
    services: [Service; 2],
    /// One keep-alive client per mode (`Depth::Http`).
    clients: Option<[Client; 2]>,
    stop: watch::Sender<bool>,
    next_key: u64,
    /// Per-write latencies in µs: gated, bypassed.
    latencies: [Vec<f64>; 2],
}

impl<'a> Bench<'a> {
    fn new(
        rt: &'a Runtime,
        gate: &QuorumGate,
        store: Arc<Store>,
        durability: Durability,
        depth: Depth,
    ) -> Result<Self, Error> {
        let service = |mode| Service::new(NodeId(1), gate.clone(), store.clone(), durability, mode);
        let services = [service(GateMode::Enforce), service(GateMode::Bypass)];
        for s in &services {
            rt.spawn(s.clone().watch_events(gate.subscribe()));
        }
        let (stop, _) = watch::channel(false);
        let clients = if depth == Depth::Http {
            let mut clients = Vec::new();
            for s in &services {
                let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
                clients.push(Client::new(listener.local_addr()?, Duration::from_secs(5)));
                rt.spawn(http::serve(listener, http::router(s.clone()), stop.subscribe()));
            }
            let [a, b]: [Client; 2] = clients.try_into().map_err(|_| "two clients")?;
            Some([a, b])
        } else {
            None
        };
        let latencies = [Vec::new(), Vec::new()];
        Ok(Bench { rt, gate: gate.clone(), store, depth, services, clients, stop, next_key: 0, latencies })
    }

    /// Writes `n` fresh keys in each mode, alternating write by write (and which mode goes
    /// first in each pair), so that drift (file growth, caches, the other processes of the
    /// machine) hits both modes alike. Returns writes per second (gated, bypassed).
    fn round(&mut self, n: u64) -> Result<(f64, f64), Error> {
        let mut spent = [Duration::ZERO; 2];
        for pair in 0..n {
            let order = if pair % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                let took = self.write(i)?;
                spent[i] += took;
                self.latencies[i].push(took.as_secs_f64() * 1e6);
            }
        }
        let rate = |d: Duration| n as f64 / d.as_secs_f64();
        Ok((rate(spent[0]), rate(spent[1])))
    }

    /// One write through mode `i` (0 gated, 1 bypassed); its duration.
    fn write(&mut self, i: usize) -> Result<Duration, Error> {
        self.next_key += 1;
        let key = format!("k{}", self.next_key);
        let started = Instant::now();
        match (self.depth, i) {
            (Depth::Store, 0) => {
                let permit = self.gate.permit()?;
                self.store.put(&key, VALUE, Guard::Permit(&permit))?;
            }
            (Depth::Store, _) => {
                self.store.put(&key, VALUE, Guard::Bypass)?;
            }
            (Depth::Service, _) => {
                self.rt.block_on(self.services[i].put(key, VALUE.to_owned()))?;
            }
            (Depth::Http, _) => {
                let client = self.clients.as_mut().map(|c| &mut c[i]).ok_or("no client")?;
                let reply = client.put(&key, VALUE.as_bytes())?;
                if reply.status != 200 {
                    let body = String::from_utf8_lossy(&reply.body).into_owned();
                    return Err(format!("PUT answered {}: {body}", reply.status).into());
                }
            }
        }
        Ok(started.elapsed())
    }

    fn stop(self) {
        let _ = self.stop.send(true);
    }
}

/// Nanoseconds per `permit()` + `check()`.
fn gate_ns(gate: &QuorumGate, ops: u64) -> Result<f64, Error> {
    let started = Instant::now();
    for _ in 0..ops {
        let permit = gate.permit()?;
        permit.check()?;
        std::hint::black_box(&permit);
    }
    Ok(started.elapsed().as_nanos() as f64 / ops as f64)
}

/// Sorts `v` and returns its median.
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn name(d: Durability) -> &'static str {
    quorate_kv::service::durability_name(d)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
