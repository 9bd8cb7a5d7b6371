//! Cost of the succession check (`disjoint_quorums`) and of the route search (`safe_path`):
//! the common shapes (equal votes, which the search groups into a few classes) and the worst
//! case (24 voters whose votes all differ, so every one of the 2^24 splits is visited).
//!
//! Run: `cargo bench -p quorate-proto --bench succession`

#![allow(missing_docs)] // criterion_group! generates undocumented items.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use quorate_proto::{disjoint_quorums, safe_path, NodeId, TieBreaker, VoteTable};

fn table(votes: &[(u64, u32)], tb: TieBreaker) -> VoteTable {
    VoteTable::new(votes.iter().map(|(id, v)| (NodeId(*id), *v)), tb).unwrap_or_else(|e| panic!("{e}"))
}

/// Nodes 1..=n, one vote each.
fn equal(n: u64, tb: TieBreaker) -> VoteTable {
    table(&(1..=n).map(|id| (id, 1)).collect::<Vec<_>>(), tb)
}

/// Nodes 1..=24, node i with i votes: no two voters alike.
fn all_distinct() -> VoteTable {
    table(&(1..=24u64).map(|id| (id, id as u32)).collect::<Vec<_>>(), TieBreaker::None)
}

fn check(c: &mut Criterion) {
    let mut g = c.benchmark_group("disjoint_quorums");
    let (three, four) = (equal(3, TieBreaker::LowestId), equal(4, TieBreaker::LowestId));
    g.bench_function("3 -> 4 voters, lowest-id (refused)", |b| {
        b.iter(|| disjoint_quorums(black_box(&three), black_box(&four)))
    });
    let (five, five_strict) = (equal(5, TieBreaker::LowestId), equal(5, TieBreaker::None));
    g.bench_function("5 voters, tie-breaker dropped (safe)", |b| {
        b.iter(|| disjoint_quorums(black_box(&five), black_box(&five_strict)))
    });
    let (big, smaller) = (equal(24, TieBreaker::None), equal(23, TieBreaker::None));
    g.bench_function("24 -> 23 equal voters (safe)", |b| {
        b.iter(|| disjoint_quorums(black_box(&big), black_box(&smaller)))
    });
    let worst = all_distinct();
    g.sample_size(10);
    g.bench_function("24 voters alike to none, 2^24 splits (safe)", |b| {
        b.iter(|| disjoint_quorums(black_box(&worst), black_box(&worst)))
    });
    g.finish();
}

fn route(c: &mut Criterion) {
    let mut g = c.benchmark_group("safe_path");
    let (three, five) = (equal(3, TieBreaker::LowestId), equal(5, TieBreaker::LowestId));
    g.bench_function("3 -> 5 voters, lowest-id", |b| {
        b.iter(|| safe_path(black_box(&three), black_box(&five)))
    });
    let (nine, twelve) = (equal(9, TieBreaker::LowestId), equal(12, TieBreaker::LowestId));
    g.bench_function("9 -> 12 voters, lowest-id", |b| {
        b.iter(|| safe_path(black_box(&nine), black_box(&twelve)))
    });
    let worst = all_distinct();
    let lighter = table(&(1..=24u64).map(|id| (id, id as u32 % 24)).collect::<Vec<_>>(), TieBreaker::None);
    g.sample_size(10);
    g.bench_function("24 voters alike to none, one loses its votes", |b| {
        b.iter(|| safe_path(black_box(&worst), black_box(&lighter)))
    });
    g.finish();
}

criterion_group!(benches, check, route);
criterion_main!(benches);
