//! Hot-path cost of the gate: `can_write()` and `permit()` + `check()`, on one thread and
//! with a second thread hammering the same gate. Uses the real system clock
//! (`CLOCK_BOOTTIME` through the vDSO), as a storage engine would.
//!
//! Run: `cargo bench -p quorate-gate --bench gate`

#![allow(missing_docs)] // criterion_group! generates undocumented items.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use criterion::{criterion_group, criterion_main, Criterion};
use quorate_detector::DetectorConfig;
use quorate_gate::{Clock, Gate, GateConfig, QuorumGate, TieBreaker, VoteTable};
use quorate_proto::{Incarnation, NodeId};

/// A writable gate: a single-voter cluster holds quorum forever, so every call takes the
/// full "yes" path (clock read, atomic loads, comparison).
fn writable_gate() -> (Gate, QuorumGate) {
    let clock = Clock::system();
    let votes = match VoteTable::new([(NodeId(1), 1)], TieBreaker::None) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    };
    let now = clock.now();
    let detector = DetectorConfig::default().check().unwrap_or_else(|e| panic!("{e}"));
    let config = GateConfig::default().check(&detector).unwrap_or_else(|e| panic!("{e}"));
    Gate::new(config, votes, NodeId(1), Incarnation(1), clock, now)
}

/// Runs `op` `iters` times on this thread while `threads - 1` other threads run it in a
/// loop on the same gate; returns this thread's elapsed time.
fn contended(gate: &QuorumGate, threads: usize, iters: u64, op: fn(&QuorumGate) -> bool) -> Duration {
    let stop = Arc::new(AtomicBool::new(false));
    let helpers: Vec<_> = (1..threads)
        .map(|_| {
            let (gate, stop) = (gate.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    black_box(op(&gate));
                }
            })
        })
        .collect();
    let start = StdInstant::now();
    for _ in 0..iters {
        black_box(op(black_box(gate)));
    }
    let took = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    for h in helpers {
        let _ = h.join();
    }
    took
}

fn can_write(g: &QuorumGate) -> bool {
    g.can_write()
}

fn permit_and_check(g: &QuorumGate) -> bool {
    match g.permit() {
        Ok(p) => p.check().is_ok(),
        Err(_) => false,
    }
}

fn permit_only(g: &QuorumGate) -> bool {
    g.permit().is_ok()
}

fn bench(c: &mut Criterion) {
    let (_gate, handle) = writable_gate();
    assert!(handle.can_write());
    let mut group = c.benchmark_group("gate");
    for threads in [1usize, 2] {
        group.bench_function(format!("can_write/{threads}t"), |b| {
            b.iter_custom(|iters| contended(&handle, threads, iters, can_write))
        });
        group.bench_function(format!("permit/{threads}t"), |b| {
            b.iter_custom(|iters| contended(&handle, threads, iters, permit_only))
        });
        group.bench_function(format!("permit+check/{threads}t"), |b| {
            b.iter_custom(|iters| contended(&handle, threads, iters, permit_and_check))
        });
    }
    // Reference points: what the clock read alone costs, and the platform's other clocks.
    group.bench_function("clock/boottime", |b| {
        let clock = Clock::system();
        b.iter(|| black_box(clock.now()))
    });
    group.bench_function("clock/std_instant_monotonic", |b| b.iter(|| black_box(StdInstant::now())));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
