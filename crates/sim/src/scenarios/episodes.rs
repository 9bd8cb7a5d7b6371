//! The building blocks of fault schedules: the cluster's shape, times in milliseconds,
//! splits that put voters and a share of the observers on one side, random networks, and
//! random fault episodes (each healed, then followed by quiet).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::clock::MS;
use crate::faults::{Fault, Scheduled};
use crate::net::NetParams;

/// Most episodes a random scenario composes, whatever its duration (also the most flaps
/// of one flapping link).
pub(super) const EPISODES_MAX: usize = 256;

/// How many nodes, and how many of them (the lowest indices) vote.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shape {
    pub(super) nodes: usize,
    pub(super) voters: usize,
}

impl Shape {
    fn observers(&self) -> std::ops::Range<usize> {
        self.voters..self.nodes
    }
}

/// `ms` milliseconds, in ns.
pub(super) fn at(ms: u64) -> u64 {
    ms * MS
}

/// A random whole number of milliseconds from `lo` to `hi`, in ns.
pub(super) fn ms_between(rng: &mut ChaCha8Rng, lo: u64, hi: u64) -> u64 {
    rng.random_range(lo..=hi) * MS
}

/// Adds `fault` at real time `at`.
pub(super) fn push(faults: &mut Vec<Scheduled>, at: u64, fault: Fault) {
    faults.push(Scheduled { at, fault });
}

/// Puts `chosen` voters and every observer `o` with `(o - voters) % of < per` on side one.
pub(super) fn split(shape: Shape, chosen: &[usize], per: usize, of: usize) -> Vec<Vec<usize>> {
    let mut one: Vec<usize> = chosen.to_vec();
    let mut zero: Vec<usize> = (0..shape.voters).filter(|v| !chosen.contains(v)).collect();
    for o in shape.observers() {
        if (o - shape.voters) % of < per {
            one.push(o);
        } else {
            zero.push(o);
        }
    }
    vec![zero, one]
}

/// `k` distinct voters of `0..voters`, drawn at random, in order.
pub(super) fn pick_voters(rng: &mut ChaCha8Rng, voters: usize, k: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..voters).collect();
    let mut out = Vec::new();
    for _ in 0..k.min(voters) {
        let i = rng.random_range(0..all.len());
        out.push(all.swap_remove(i));
    }
    out.sort_unstable();
    out
}

/// Random delay, loss, duplication and reordering.
pub(super) fn random_net(rng: &mut ChaCha8Rng) -> NetParams {
    let base_loss = match rng.random_range(0..10) {
        0..=4 => 0.0,
        5..=7 => rng.random_range(0.0..0.05),
        _ => rng.random_range(0.05..0.15),
    };
    NetParams {
        base_loss,
        dup: rng.random_range(0.0..0.05),
        reorder: rng.random_range(0.0..0.1),
        delay_min: MS / 10,
        delay_base_max: ms_between(rng, 1, 5),
        jitter_max: rng.random_range(0..=5 * MS),
        // One run in ten holds some datagrams for up to 2 s: far longer than a lease.
        reorder_max: if rng.random_bool(0.1) {
            rng.random_range(0..=2_000 * MS)
        } else {
            rng.random_range(0..=50 * MS)
        },
        unmodelled_loss: 0.0,
    }
}

/// Random episodes until `duration - 4 s`: each applies one or two faults, holds them for
/// 0.2 to 4 s, heals everything, and leaves 2.5 to 4 s of quiet.
pub(super) fn random_faults(shape: Shape, duration: u64, rng: &mut ChaCha8Rng) -> Vec<Scheduled> {
    let mut f = Vec::new();
    let mut t = at(1_500) + ms_between(rng, 0, 1_000);
    for _ in 0..EPISODES_MAX {
        let hold = ms_between(rng, 200, 4_000);
        if t + hold + at(4_000) > duration {
            break;
        }
        let kinds = if rng.random_bool(0.3) { 2 } else { 1 };
        for _ in 0..kinds {
            random_episode(shape, t, hold, true, rng, &mut f);
        }
        push(&mut f, t + hold, Fault::Heal);
        t += hold + ms_between(rng, 2_500, 4_000);
    }
    f.sort_by_key(|s| s.at);
    f
}

/// One random fault episode starting at `t`, held for `hold`. With `restarts` false a
/// crash or shutdown episode becomes a pause of the same node.
pub(super) fn random_episode(
    shape: Shape,
    t: u64,
    hold: u64,
    restarts: bool,
    rng: &mut ChaCha8Rng,
    f: &mut Vec<Scheduled>,
) {
    let node = rng.random_range(0..shape.nodes);
    let voter = rng.random_range(0..shape.voters);
    match rng.random_range(0..9) {
        5 if !restarts => {
            push(f, t, Fault::Pause { node });
            push(f, t + hold, Fault::Resume { node });
        }
        0 => {
            let k = rng.random_range(2..=3);
            let mut groups = vec![Vec::new(); k];
            for n in 0..shape.nodes {
                groups[rng.random_range(0..k)].push(n);
            }
            push(f, t, Fault::Partition { groups });
        }
        1 => {
            for _ in 0..rng.random_range(1..=4) {
                let from = rng.random_range(0..shape.nodes);
                let to = rng.random_range(0..shape.nodes);
                if from != to {
                    push(f, t, Fault::CutOneWay { from, to });
                }
            }
        }
        2 => {
            let inbound = rng.random_bool(0.5);
            for x in (0..shape.nodes).filter(|x| *x != voter) {
                let (from, to) = if inbound { (x, voter) } else { (voter, x) };
                push(f, t, Fault::CutOneWay { from, to });
            }
        }
        3 => {
            let mut groups = vec![Vec::new(), Vec::new()];
            for n in (0..shape.nodes).filter(|n| *n != voter) {
                groups[rng.random_range(0..2)].push(n);
            }
            groups[0].push(voter);
            push(f, t, Fault::Partition { groups });
            push(f, t, Fault::Bridge { node: voter });
        }
        4 => {
            let other = rng.random_range(0..shape.nodes);
            let mut s = t;
            for _ in 0..EPISODES_MAX {
                if s >= t + hold || other == voter {
                    break;
                }
                push(f, s, Fault::CutOneWay { from: voter, to: other });
                push(f, s, Fault::CutOneWay { from: other, to: voter });
                s += ms_between(rng, 30, 800);
                push(f, s.min(t + hold), Fault::RestoreOneWay { from: voter, to: other });
                push(f, s.min(t + hold), Fault::RestoreOneWay { from: other, to: voter });
                s += ms_between(rng, 30, 800);
            }
        }
        5 => {
            let graceful = rng.random_bool(0.3);
            push(f, t, if graceful { Fault::Shutdown { node } } else { Fault::Crash { node } });
            push(f, t + rng.random_range(MS..=hold), Fault::Restart { node });
        }
        6 => {
            push(f, t, Fault::Pause { node });
            push(f, t + hold, Fault::Resume { node });
        }
        7 => {
            let loss = rng.random_range(0.2..0.9);
            if rng.random_bool(0.5) {
                push(f, t, Fault::NodeLoss { node, loss });
            } else {
                push(f, t, Fault::BurstLoss { loss });
            }
        }
        _ => {
            let minority: Vec<usize> = pick_voters(rng, shape.voters, (shape.voters - 1) / 2);
            push(f, t, Fault::Partition { groups: split(shape, &minority, 2, 5) });
        }
    }
}
