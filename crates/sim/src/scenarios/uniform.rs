//! Named scenarios in which every node runs the same configuration (one definition, the lan
//! preset): the partitions people worry about.
//!
//! | name | what happens |
//! |---|---|
//! | `clean-split-5` | a minority cut off, healed; another; then a three-way split with no quorum anywhere |
//! | `asymmetric-5` | a voter that hears nobody, a voter nobody hears, a chain of one-way cuts |
//! | `bridge-5` | two sides joined only through one bridge voter, twice |
//! | `flapping-3` | one link flaps for ten seconds, then a voter's inbound links flap |
//! | `pause-leader` | the tie-breaking voter paused longer than a lease, then shorter, then with another voter |
//! | `rolling-restart-7` | every voter in turn crashes or shuts down and restarts |
//! | `restart-during-fence-check` | a voter crashes right after it says yes in a fence check, and restarts |
//! | `loss-XXpct-N` | N voters, every link losing XX% of datagrams, no other fault |

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::episodes::{at, ms_between, pick_voters, push, split, Shape, EPISODES_MAX};
use super::scenario::{Scenario, ScenarioError, NODES_MAX, VOTERS_MAX};
use crate::clock::SEC;
use crate::faults::{Cue, Fault, Scheduled, Signal};
use crate::net::NetParams;
use crate::seed::{stream, SCENARIO};

/// The one-configuration scenario `name` for `seed`, with `nodes` and `duration` (ns)
/// overriding its defaults.
pub(super) fn named(
    name: &str,
    seed: u64,
    nodes: Option<usize>,
    duration: Option<u64>,
) -> Result<Scenario, ScenarioError> {
    let (default_nodes, default_secs, min) = match name {
        "clean-split-5" => (5, 22, 5),
        "asymmetric-5" => (5, 20, 3),
        "bridge-5" => (5, 18, 5),
        "flapping-3" => (3, 24, 2),
        "pause-leader" => (5, 22, 3),
        "rolling-restart-7" => (7, 23, 3),
        "restart-during-fence-check" => (3, 8, 3),
        _ => match parse_loss(name) {
            Some((_, voters)) => (voters, 30, 2),
            None => return Err(ScenarioError::Unknown(name.to_string())),
        },
    };
    let nodes = nodes.unwrap_or(default_nodes);
    if nodes < min || nodes > NODES_MAX {
        return Err(ScenarioError::BadSize { scenario: name.to_string(), nodes, min, max: NODES_MAX });
    }
    let voters = nodes.min(default_nodes);
    let duration = duration.unwrap_or(default_secs * SEC);
    let mut rng = stream(seed, SCENARIO);
    let mut net = NetParams::default();
    let shape = Shape { nodes, voters };
    let mut cues = Vec::new();
    let faults = match name {
        "restart-during-fence-check" => {
            cues = restart_during_fence_check_cues();
            restart_during_fence_check(&mut rng)
        }
        "clean-split-5" => clean_split(shape, &mut rng),
        "asymmetric-5" => asymmetric(shape, &mut rng),
        "bridge-5" => bridge(shape, &mut rng),
        "flapping-3" => flapping(shape, &mut rng),
        "pause-leader" => pause_leader(shape, &mut rng),
        "rolling-restart-7" => rolling_restart(shape, &mut rng),
        _ => {
            net.base_loss = parse_loss(name).map_or(0.0, |(loss, _)| loss);
            Vec::new()
        }
    };
    let mut s = Scenario::plain(name, nodes, voters, duration);
    s.net = net;
    s.faults = faults;
    s.cues = cues;
    s.defaults = (default_nodes, default_secs * SEC);
    Ok(s)
}

/// `loss-XXpct-N` -> (XX / 100, N).
fn parse_loss(name: &str) -> Option<(f64, usize)> {
    let rest = name.strip_prefix("loss-")?;
    let (pct, voters) = rest.split_once("pct-")?;
    let pct: u32 = pct.parse().ok()?;
    let voters: usize = voters.parse().ok()?;
    (pct <= 100 && (2..=VOTERS_MAX).contains(&voters)).then_some((f64::from(pct) / 100.0, voters))
}

/// Minority of two voters (and 40% of the observers) cut off, healed; another random
/// minority; then a three-way split in which no side has a quorum.
fn clean_split(shape: Shape, rng: &mut ChaCha8Rng) -> Vec<Scheduled> {
    let mut f = Vec::new();
    let minority = (shape.voters - 1) / 2;
    let mut t = at(2_000) + ms_between(rng, 0, 1_000);
    let first: Vec<usize> = (0..minority).collect();
    push(&mut f, t, Fault::Partition { groups: split(shape, &first, 2, 5) });
    t += ms_between(rng, 3_000, 5_000);
    push(&mut f, t, Fault::Heal);
    t += at(3_000);
    let second = pick_voters(rng, shape.voters, minority);
    push(&mut f, t, Fault::Partition { groups: split(shape, &second, 2, 5) });
    t += ms_between(rng, 2_000, 4_000);
    push(&mut f, t, Fault::Heal);
    t += at(3_000);
    let mut three = vec![Vec::new(), Vec::new(), Vec::new()];
    for node in 0..shape.nodes {
        three[node % 3].push(node);
    }
    push(&mut f, t, Fault::Partition { groups: three });
    t += ms_between(rng, 1_500, 2_500);
    push(&mut f, t, Fault::Heal);
    f
}

/// A voter that hears nobody, a voter nobody hears, then a chain of one-way cuts.
fn asymmetric(shape: Shape, rng: &mut ChaCha8Rng) -> Vec<Scheduled> {
    let mut f = Vec::new();
    let mut t = at(2_000) + ms_between(rng, 0, 1_000);
    let deaf = rng.random_range(0..shape.voters);
    for x in (0..shape.nodes).filter(|x| *x != deaf) {
        push(&mut f, t, Fault::CutOneWay { from: x, to: deaf });
    }
    t += ms_between(rng, 2_000, 3_000);
    push(&mut f, t, Fault::Heal);
    t += at(3_000);
    let mute = rng.random_range(0..shape.voters);
    for x in (0..shape.nodes).filter(|x| *x != mute) {
        push(&mut f, t, Fault::CutOneWay { from: mute, to: x });
    }
    t += ms_between(rng, 2_000, 3_000);
    push(&mut f, t, Fault::Heal);
    t += at(3_000);
    let chain = pick_voters(rng, shape.voters, 3);
    for pair in chain.windows(2) {
        push(&mut f, t, Fault::CutOneWay { from: pair[0], to: pair[1] });
    }
    t += ms_between(rng, 2_000, 3_000);
    push(&mut f, t, Fault::Heal);
    f
}

/// Two sides joined only through one bridge voter, so both sides hold a quorum that
/// contains the bridge; healed; then another bridge.
fn bridge(shape: Shape, rng: &mut ChaCha8Rng) -> Vec<Scheduled> {
    let mut f = Vec::new();
    let mut t = at(2_000) + ms_between(rng, 0, 1_000);
    for round in 0..2 {
        let middle = if round == 0 { shape.voters / 2 } else { rng.random_range(0..shape.voters) };
        let others: Vec<usize> = (0..shape.voters).filter(|v| *v != middle).collect();
        let half = others.len() / 2;
        let mut sides = split(shape, &others[..half], 1, 2);
        // `split` put the middle voter with side zero; it bridges both.
        sides[0].retain(|n| *n != middle);
        sides[0].push(middle);
        push(&mut f, t, Fault::Partition { groups: sides });
        push(&mut f, t, Fault::Bridge { node: middle });
        t += ms_between(rng, 3_000, 6_000);
        push(&mut f, t, Fault::Heal);
        t += at(3_000);
    }
    f
}

/// The link between voters 1 and 2 flaps (both ways or one way) for ten seconds; then
/// voter 3's inbound links flap.
fn flapping(shape: Shape, rng: &mut ChaCha8Rng) -> Vec<Scheduled> {
    let mut f = Vec::new();
    let mut t = at(2_000);
    let end = at(12_000);
    let (a, b) = (0, 1.min(shape.voters - 1));
    for _ in 0..EPISODES_MAX {
        if t >= end {
            break;
        }
        push(&mut f, t, Fault::CutOneWay { from: a, to: b });
        if rng.random_bool(0.7) {
            push(&mut f, t, Fault::CutOneWay { from: b, to: a });
        }
        t += ms_between(rng, 50, 1_500);
        push(&mut f, t, Fault::Heal);
        t += ms_between(rng, 50, 1_500);
    }
    t = t.max(end) + at(2_000);
    let victim = shape.voters - 1;
    let end = t + at(6_000);
    for _ in 0..EPISODES_MAX {
        if t >= end {
            break;
        }
        for x in (0..shape.nodes).filter(|x| *x != victim) {
            push(&mut f, t, Fault::CutOneWay { from: x, to: victim });
        }
        t += ms_between(rng, 50, 1_500);
        push(&mut f, t, Fault::Heal);
        t += ms_between(rng, 50, 1_500);
    }
    f
}

/// The lowest-id voter (the tie-breaker) paused longer than a lease, then shorter; then
/// another voter and the leader paused together.
fn pause_leader(shape: Shape, rng: &mut ChaCha8Rng) -> Vec<Scheduled> {
    let mut f = Vec::new();
    let mut t = at(2_000) + ms_between(rng, 0, 1_000);
    push(&mut f, t, Fault::Pause { node: 0 });
    t += ms_between(rng, 1_500, 4_000);
    push(&mut f, t, Fault::Resume { node: 0 });
    t += at(3_000);
    push(&mut f, t, Fault::Pause { node: 0 });
    t += ms_between(rng, 200, 900);
    push(&mut f, t, Fault::Resume { node: 0 });
    t += at(3_000);
    let other = rng.random_range(1..shape.voters);
    push(&mut f, t, Fault::Pause { node: other });
    push(&mut f, t + at(500), Fault::Pause { node: 0 });
    t += ms_between(rng, 1_000, 3_000) + at(500);
    push(&mut f, t, Fault::Resume { node: other });
    push(&mut f, t + ms_between(rng, 0, 300), Fault::Resume { node: 0 });
    f
}

/// Every voter in turn crashes (even turns) or shuts down (odd turns) and restarts.
fn rolling_restart(shape: Shape, rng: &mut ChaCha8Rng) -> Vec<Scheduled> {
    let mut f = Vec::new();
    let mut t = at(2_000);
    for node in 0..shape.voters {
        let stop = if node % 2 == 0 { Fault::Crash { node } } else { Fault::Shutdown { node } };
        push(&mut f, t, stop);
        push(&mut f, t + ms_between(rng, 100, 600), Fault::Restart { node });
        t += at(2_500);
    }
    f
}

/// The trace of the restart hold (with the default configuration: heartbeats every
/// 100 ms, lease 900 ms, floor 1 s, gossip every 250 ms, fence checks time out after
/// 300 ms, a yes holds acks for 400 ms). Three voters split {n1,n2} | {n3}; once n1 and n2
/// call n3 down (1 s after they last heard it) and their rows meet (within a gossip
/// round), n1 starts a fence check and asks n2; the cues do the rest (see
/// [`restart_during_fence_check_cues`]). If no check runs, the network heals at 7 s.
fn restart_during_fence_check(rng: &mut ChaCha8Rng) -> Vec<Scheduled> {
    let mut f = Vec::new();
    let cut = at(2_000) + ms_between(rng, 0, 500);
    push(&mut f, cut, Fault::Partition { groups: vec![vec![0, 1], vec![2]] });
    push(&mut f, at(7_000), Fault::Heal);
    f
}

/// n1 pauses the moment it asks n2 about n3 and resumes 250 ms later; n2 crashes the
/// moment it says yes (its answer is already on the wire, queued for the paused n1), the
/// network heals and n2 restarts 2 ms later.
///
/// Why 250 ms: n1 must conclude after n2's new life could ack n3 and before its check
/// ends. A new life that forgot its earlier life's hold acks n3 within two heartbeat
/// intervals of the heal (n3's next heartbeat reaches it within one, its own next heartbeat
/// carries the ack within another): about 200 ms, so n3 holds {n2, n3} and is writable by
/// then. The check is still open at 250 ms (it times out at 300 ms), and 250 ms x 1.01 is
/// within n2's promised 400 ms x 0.99, so n1 concludes on n2's yes and announces n3 fenced.
/// A new life that kept the promise withholds every ack until 400 ms after its start, and
/// n3 stays fenced past the announcement.
fn restart_during_fence_check_cues() -> Vec<Cue> {
    vec![
        Cue {
            on: Signal::FenceQuery { from: 0, about: 2 },
            then: vec![(0, Fault::Pause { node: 0 }), (at(250), Fault::Resume { node: 0 })],
        },
        Cue {
            on: Signal::FenceYes { from: 1, about: 2 },
            then: vec![
                (0, Fault::Crash { node: 1 }),
                (at(1), Fault::Heal),
                (at(2), Fault::Restart { node: 1 }),
            ],
        },
    ]
}
