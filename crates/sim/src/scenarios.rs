//! Scenarios: a cluster, a network and a fault schedule, all derived from one seed.
//!
//! Named scenarios reproduce the partitions people worry about; [`Scenario::random`]
//! composes random episodes of every fault kind. Every episode ends healed (network healed,
//! crashed nodes restarted, paused nodes resumed) and is followed by a quiet stretch, so the
//! heal invariant gets checked after each one.
//!
//! Cluster shape: up to [`ALL_VOTERS_MAX`] nodes all vote; larger clusters have
//! [`LARGE_CLUSTER_VOTERS`] voters and the rest observers. Observers heartbeat only voters
//! and voters heartbeat everyone, so an observer's load stays constant as the cluster grows
//! while each voter's grows linearly; five voters survive two failures at a fifth of the
//! cost per voter-pair that every-node-votes would have.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::clock::{MS, SEC};
use crate::faults::{Bug, Cue, Fault, Scheduled, Signal};
use crate::net::NetParams;
use crate::setup::{Definition, Setup};

/// The named scenarios, as accepted by `--scenario`. `loss-XXpct-N` also accepts any loss
/// percentage and voter count; `random-mixed` gives random scenarios of mixed
/// configurations ([`crate::mixed`]).
pub const NAMED: &[&str] = &[
    "clean-split-5",
    "asymmetric-5",
    "bridge-5",
    "flapping-3",
    "pause-leader",
    "rolling-restart-7",
    "loss-30pct-5",
    "restart-during-fence-check",
    "rolling-wan-5",
    "rollout-3-to-5",
    "tie-breakers-4",
    "votes-3",
];

/// Clusters up to this size make every node a voter.
pub const ALL_VOTERS_MAX: usize = 7;

/// Voters in clusters larger than [`ALL_VOTERS_MAX`]; the other nodes are observers.
pub const LARGE_CLUSTER_VOTERS: usize = 5;

/// Largest cluster the simulator builds (the detector tracks at most 4096 peers).
pub const NODES_MAX: usize = 4096;

/// Most voters: the checkers keep voter sets in 64-bit masks.
pub const VOTERS_MAX: usize = 64;

/// Most episodes a random scenario composes, whatever its duration.
const EPISODES_MAX: usize = 256;

/// Why a scenario could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScenarioError {
    /// Not one of [`NAMED`] nor `loss-XXpct-N`.
    Unknown(String),
    /// The cluster is too small or too large for the scenario.
    BadSize {
        /// The scenario.
        scenario: String,
        /// Nodes asked for.
        nodes: usize,
        /// Smallest size it supports.
        min: usize,
        /// Largest size it supports.
        max: usize,
    },
}

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScenarioError::Unknown(name) => {
                write!(f, "unknown scenario {name:?}; known: {} (and loss-XXpct-N)", NAMED.join(", "))
            }
            ScenarioError::BadSize { scenario, nodes, min, max } => {
                write!(f, "scenario {scenario} needs {min} to {max} nodes, not {nodes}")
            }
        }
    }
}

impl std::error::Error for ScenarioError {}

/// A cluster, its network and its fault schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// `random` or one of [`NAMED`].
    pub name: String,
    /// Cluster size; node ids are `1..=nodes`.
    pub nodes: usize,
    /// Nodes `1..=voters` have one vote each in the standard definition; the others are
    /// observers.
    pub voters: usize,
    /// The quorum definitions nodes run; scenarios of one definition have just
    /// [`Definition::standard`].
    pub definitions: Vec<Definition>,
    /// What each node runs when it starts (index = node index); a
    /// [`Fault::RestartAs`] changes it.
    pub setups: Vec<Setup>,
    /// Simulated real time, ns.
    pub duration: u64,
    /// Delay, loss, duplication and reordering.
    pub net: NetParams,
    /// Faults in time order.
    pub faults: Vec<Scheduled>,
    /// Faults timed from protocol messages rather than the clock.
    pub cues: Vec<Cue>,
    /// Multiplies every node's clock rate error. 1.0 (always, outside tests) keeps clocks
    /// within `max_clock_drift`; tests raise it to show the checkers catch a broken clock.
    pub drift_scale: f64,
    /// Gossip of reachability rows and fence checks on (the default) or off.
    pub gossip: bool,
    /// Longest time a write to a node's disk takes to land, ns; each write takes a random
    /// time up to this (0: writes land at once). A crash before a write lands loses it.
    pub disk_delay_max: u64,
    /// Every restart is given an empty record instead of what its disk says, as if the data
    /// directory were lost: the earlier lives' promises (fence holds, floors) are forgotten.
    /// Always false outside tests, which set it to show the checkers catch what that breaks.
    pub forget_promises: bool,
    /// Every heartbeat reaches its receiver carrying the receiver's own terms (lease, drift,
    /// definition digest) instead of the sender's, as if nodes had only local rules: no
    /// floor raised for a longer lease, no definition mismatch noticed. Always false outside
    /// tests, which set it to show the checkers catch what the cross-node rules prevent.
    pub local_only_terms: bool,
    /// Bugs planted in nodes on purpose ([`Bug`]). Always empty outside tests, which plant
    /// one to show the checker aimed at it reports the run.
    pub bugs: Vec<Bug>,
    /// The default size and duration, to print a replay command that omits them.
    pub defaults: (usize, u64),
}

impl Scenario {
    /// The named scenario for `seed`, with `nodes` and `duration` (ns) overriding its
    /// defaults.
    pub fn named(
        name: &str,
        seed: u64,
        nodes: Option<usize>,
        duration: Option<u64>,
    ) -> Result<Scenario, ScenarioError> {
        if let Some(mixed) = crate::mixed::named(name, seed, nodes, duration) {
            return mixed;
        }
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
        let mut rng = stream(seed, 1);
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

    /// A random scenario for `seed`: random network behaviour and random fault episodes.
    /// `nodes` defaults to 5, `duration` to 30 s.
    pub fn random(seed: u64, nodes: Option<usize>, duration: Option<u64>) -> Result<Scenario, ScenarioError> {
        let nodes = nodes.unwrap_or(5);
        if !(2..=NODES_MAX).contains(&nodes) {
            return Err(ScenarioError::BadSize { scenario: "random".into(), nodes, min: 2, max: NODES_MAX });
        }
        let voters = if nodes <= ALL_VOTERS_MAX { nodes } else { LARGE_CLUSTER_VOTERS };
        let duration = duration.unwrap_or(30 * SEC);
        let mut rng = stream(seed, 1);
        let net = random_net(&mut rng);
        let faults = random_faults(Shape { nodes, voters }, duration, &mut rng);
        // Half the runs write to disk at once, the others take up to 20 ms per write.
        let disk_delay_max = if rng.random_bool(0.5) { 0 } else { ms_between(&mut rng, 1, 20) };
        let mut s = Scenario::plain("random", nodes, voters, duration);
        s.net = net;
        s.faults = faults;
        s.disk_delay_max = disk_delay_max;
        s.defaults = (5, 30 * SEC);
        Ok(s)
    }

    /// `nodes` nodes of which `voters` vote, all on the standard definition and the lan
    /// preset, a default network, disks that write at once, no faults; `duration` ns.
    pub(crate) fn plain(name: &str, nodes: usize, voters: usize, duration: u64) -> Scenario {
        Scenario {
            name: name.to_string(),
            nodes,
            voters,
            definitions: vec![Definition::standard(nodes, voters)],
            setups: vec![Setup::STANDARD; nodes],
            duration,
            net: NetParams::default(),
            faults: Vec::new(),
            cues: Vec::new(),
            drift_scale: 1.0,
            gossip: true,
            disk_delay_max: 0,
            forget_promises: false,
            local_only_terms: false,
            bugs: Vec::new(),
            defaults: (nodes, duration),
        }
    }

    /// The command that replays this scenario for `seed`.
    pub fn replay_command(&self, seed: u64) -> String {
        let mut cmd = format!("cargo run -p quorate-sim --release -- --replay {seed}");
        if self.name != "random" {
            cmd.push_str(&format!(" --scenario {}", self.name));
        }
        if self.nodes != self.defaults.0 {
            cmd.push_str(&format!(" --nodes {}", self.nodes));
        }
        if self.duration != self.defaults.1 {
            cmd.push_str(&format!(" --duration {}", fmt_secs(self.duration)));
        }
        if self.forget_promises {
            cmd.push_str(" --forget-promises");
        }
        if self.local_only_terms {
            cmd.push_str(" --local-only-terms");
        }
        if self.drift_scale != 1.0 {
            cmd.push_str(&format!(" --drift-scale {}", self.drift_scale));
        }
        for bug in &self.bugs {
            cmd.push_str(&format!(" --bug {bug}"));
        }
        cmd
    }
}

/// Formats ns as seconds for the command line (`--duration` takes decimals).
fn fmt_secs(ns: u64) -> String {
    if ns % SEC == 0 {
        format!("{}", ns / SEC)
    } else {
        format!("{}.{:09}", ns / SEC, ns % SEC).trim_end_matches('0').to_string()
    }
}

/// An independent random stream of the run's seed: scenario choices, network choices and
/// node seeds never disturb each other, so changing one fault does not reshuffle the rest.
pub fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// `loss-XXpct-N` -> (XX / 100, N).
fn parse_loss(name: &str) -> Option<(f64, usize)> {
    let rest = name.strip_prefix("loss-")?;
    let (pct, voters) = rest.split_once("pct-")?;
    let pct: u32 = pct.parse().ok()?;
    let voters: usize = voters.parse().ok()?;
    (pct <= 100 && (2..=VOTERS_MAX).contains(&voters)).then_some((f64::from(pct) / 100.0, voters))
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub(crate) nodes: usize,
    pub(crate) voters: usize,
}

impl Shape {
    fn observers(&self) -> std::ops::Range<usize> {
        self.voters..self.nodes
    }
}

pub(crate) fn at(ms: u64) -> u64 {
    ms * MS
}

pub(crate) fn ms_between(rng: &mut ChaCha8Rng, lo: u64, hi: u64) -> u64 {
    rng.random_range(lo..=hi) * MS
}

pub(crate) fn push(faults: &mut Vec<Scheduled>, at: u64, fault: Fault) {
    faults.push(Scheduled { at, fault });
}

/// Puts `chosen` voters and every observer `o` with `(o - voters) % of < per` on side one.
fn split(shape: Shape, chosen: &[usize], per: usize, of: usize) -> Vec<Vec<usize>> {
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

fn pick_voters(rng: &mut ChaCha8Rng, voters: usize, k: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..voters).collect();
    let mut out = Vec::new();
    for _ in 0..k.min(voters) {
        let i = rng.random_range(0..all.len());
        out.push(all.swap_remove(i));
    }
    out.sort_unstable();
    out
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

pub(crate) fn random_net(rng: &mut ChaCha8Rng) -> NetParams {
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
fn random_faults(shape: Shape, duration: u64, rng: &mut ChaCha8Rng) -> Vec<Scheduled> {
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
pub(crate) fn random_episode(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_scenario_builds_at_default_and_large_sizes() {
        for name in NAMED {
            let s = Scenario::named(name, 7, None, None).unwrap_or_else(|e| panic!("{e}"));
            assert!(s.faults.iter().all(|f| f.fault.max_node().is_none_or(|n| n < s.nodes)), "{name}");
            if crate::mixed::MIXED.contains(name) {
                // Their definitions name every node: a fixed size (see `mixed`).
                continue;
            }
            let big = Scenario::named(name, 7, Some(200), None).unwrap_or_else(|e| panic!("{e}"));
            assert!(big.voters <= ALL_VOTERS_MAX && big.nodes == 200, "{name}");
        }
    }

    #[test]
    fn same_seed_gives_the_same_random_scenario_and_seeds_differ() {
        let a = Scenario::random(11, None, None);
        assert_eq!(a, Scenario::random(11, None, None));
        assert_ne!(a, Scenario::random(12, None, None));
        let a = a.unwrap_or_else(|e| panic!("{e}"));
        assert!(a.faults.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(a.faults.iter().all(|f| f.at + 4 * SEC <= a.duration + 4 * SEC));
    }

    #[test]
    fn loss_names_parse_and_unknown_names_are_refused() {
        let s = Scenario::named("loss-45pct-3", 1, None, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((s.nodes, s.voters), (3, 3));
        assert!((s.net.base_loss - 0.45).abs() < 1e-12);
        assert!(matches!(Scenario::named("nope", 1, None, None), Err(ScenarioError::Unknown(_))));
        assert!(matches!(Scenario::named("bridge-5", 1, Some(3), None), Err(ScenarioError::BadSize { .. })));
    }

    #[test]
    fn replay_command_names_only_what_differs_from_the_defaults() {
        let s = Scenario::named("bridge-5", 3, Some(50), Some(2_500 * MS)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.replay_command(3),
            "cargo run -p quorate-sim --release -- --replay 3 --scenario bridge-5 --nodes 50 --duration 2.5"
        );
    }
}
