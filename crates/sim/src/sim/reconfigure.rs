//! The hosts as drivers of online reconfiguration, as the runtime drives its core:
//!
//! ```text
//!   Fault::Propose ──► a running member ──► Node::propose(change) ──► refused (counted)
//!                       (1 in 20: Node::propose_timing(the other preset))
//!                                                             └──► Roster v+1
//!   after every step ──► Node::poll_adopt() ──► Roster (a later version a peer runs)
//!   Roster ──► disk (definition index + version + preset name) ──► Node::adopt ──► Running:
//!                                                         the model and the ground truth follow
//!                        names another preset than the node runs? ──► Node::set_timing
//!                                                          └──► Removed: the process exits,
//!                                                               and never starts again
//!   a change that adds a member ──► its host starts soon after, on a file listing the
//!                                   members of that change (version 0)
//! ```
//!
//! The roster is written to the disk before the core is handed it, in the same step: a
//! crash lands between steps, so a life either never saw the definition or finds it on
//! its disk at its next start.

use quorate_core::{AdoptError, Adopted, Config, ProposeError};
use quorate_proto::{check_successor, Change, NodeId, Roster, TieBreaker};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::queue::Ev;
use super::Sim;
use crate::faults::{Bug, Fault, Scheduled};
use crate::host::ProcessState;
use crate::invariants::{StepKind, Violation};
use crate::setup::{Definition, Preset, Setup};
use crate::timeline::What;
use crate::versions::{definition_of, Running};

/// Definitions one step may make a node adopt in a row (each is a later version than the
/// one before, so a handful is plenty; the bound keeps a confused core from looping).
const FOLLOW_MAX: usize = 4;

/// One proposal in this many (not in the bursts of adds) switches the timing preset.
const TIMING_ONE_IN: u64 = 20;

/// The longest wait between a change that adds a member and the start of its host, ms.
const ADDED_START_MS_MAX: u64 = 1_500;

impl Sim {
    /// After node `i`'s step: the driver adopts any later definition a peer runs.
    pub(super) fn follow(&mut self, i: usize) {
        if self.following {
            return;
        }
        self.following = true;
        for _ in 0..FOLLOW_MAX {
            let roster = match self.world.hosts[i].life.as_ref() {
                Some(life) if self.world.hosts[i].process_state() == ProcessState::Running => {
                    life.node.poll_adopt()
                }
                _ => None,
            };
            let Some(roster) = roster else { break };
            self.adopt_roster(i, roster, "follows a peer to");
            if self.violation.is_some() {
                break;
            }
        }
        self.following = false;
    }

    /// Node `i` persists `roster` and adopts it; the model, the ground truth and the
    /// checkers follow. `how` says why, for the timeline.
    pub(super) fn adopt_roster(&mut self, i: usize, roster: Roster, how: &str) {
        let now = self.world.now;
        let definition = definition_of(&roster);
        let shown = show(&definition);
        let index = self.world.model.intern(definition);
        let running = Running { definition: index, version: roster.version };
        let before = self.world.hosts[i].running();
        let preset = self.world.hosts[i].setup.preset;
        // A definition that names another preset than the node runs switches its timing.
        let switch = roster.timing.as_deref().and_then(Preset::from_name).filter(|p| *p != preset);
        let member = self.world.model.definitions[index].contains(i);
        if member && self.config_for(i, Setup { preset, definition: index }).is_none() {
            return;
        }
        if let Some(p) = switch.filter(|_| member) {
            if self.config_for(i, Setup { preset: p, definition: index }).is_none() {
                return;
            }
        }
        let Some(result) = self.world.hosts[i].adopt(roster, running, now) else { return };
        let version = running.version;
        match result {
            Ok(Adopted::Running) => {
                let step = version == before.version + 1 && self.world.model.meets(before.definition, index);
                self.stats.changes.adopted += 1;
                self.stats.changes.fresh_starts += u64::from(!step);
                let fresh = if step { "" } else { " (as a fresh start)" };
                let text = format!("{how} version {version} {shown}{fresh}");
                self.world.timeline.record(now, What::Member { node: i, text }, &[]);
                if let Some(p) = switch {
                    self.switch_timing(i, p, index);
                }
                self.after_fault();
                self.after_step(i, StepKind::Timer);
            }
            Ok(Adopted::Removed) => {
                self.stats.changes.removed += 1;
                let text = format!("{how} version {version} {shown}, which removes it: it leaves");
                self.world.timeline.record(now, What::Member { node: i, text }, &[]);
                self.after_step(i, StepKind::Timer);
                self.world.hosts[i].crash(now);
                self.after_fault();
            }
            Err(AdoptError::Stale { .. }) => {}
            Err(e) => {
                let detail = format!("n{} could not adopt version {version}: {e}", i + 1);
                self.violation = Some(Violation { invariant: "adopt", at: now, detail });
            }
        }
    }

    /// Right after node `i` adopted a definition (index `definition`) that names `preset`,
    /// its driver switches the running core to that preset's timing, as the runtime does
    /// (`Node::set_timing`; the drift bound stays). The disk already keeps the name with
    /// the definition; the checkers judge the node by `preset` from now on, and by the
    /// preset it replaced for as long as votes lent under that one may last.
    fn switch_timing(&mut self, i: usize, preset: Preset, definition: usize) {
        let now = self.world.now;
        let Some(config) = self.config_for(i, Setup { preset, definition }) else { return };
        let judged = !self.scenario.bugs.contains(&Bug::StalePreset { node: i });
        match self.world.hosts[i].set_timing(preset, &config, now, judged) {
            Some(Ok(())) => {
                self.stats.changes.timing_switches += 1;
                let text = format!("runs the {} timing preset from now on", preset.name());
                self.world.timeline.record(now, What::Member { node: i, text }, &[]);
            }
            Some(Err(e)) => {
                let detail = format!("n{} could not switch to the {} preset: {e}", i + 1, preset.name());
                self.violation = Some(Violation { invariant: "adopt", at: now, detail });
            }
            None => {}
        }
    }

    /// The vote table of the scenario's definition `definition` (as any member of it
    /// resolves it).
    pub(super) fn table_of(&self, definition: usize) -> Option<quorate_proto::VoteTable> {
        let d = self.world.model.definitions.get(definition)?;
        let member = (0..self.world.hosts.len()).find(|&i| d.contains(i))?;
        let config = d.config(self.cluster, member, crate::Preset::Lan, self.scenario.gossip);
        config.check().ok().map(|v| v.votes().clone())
    }

    /// Node `i`'s configuration on `setup` (made and checked the first time a definition
    /// that appeared during the run is needed); `None` after reporting a refusal.
    pub(super) fn config_for(&mut self, i: usize, setup: Setup) -> Option<Config> {
        if let Some(c) = self.configs.get(&setup) {
            return Some(c.clone());
        }
        let definition = self.world.model.definitions.get(setup.definition)?;
        let config = definition.config(self.cluster, i, setup.preset, self.scenario.gossip);
        if let Err(e) = config.clone().check() {
            let detail = format!("n{} on {}: {e}", i + 1, show(definition));
            self.violation = Some(Violation { invariant: "adopt", at: self.world.now, detail });
            return None;
        }
        self.configs.insert(setup, config.clone());
        Some(config)
    }

    /// An operator's random change (see [`Fault::Propose`]).
    pub(super) fn propose(&mut self, node: Option<usize>, pick: u64, grow: bool) {
        let now = self.world.now;
        let mut rng = ChaCha8Rng::seed_from_u64(pick);
        let mut running: Vec<usize> = (0..self.world.hosts.len())
            .filter(|&i| self.world.hosts[i].process_state() == ProcessState::Running)
            .collect();
        if let Some(x) = node.filter(|x| !running.contains(x)) {
            running.retain(|&k| self.world.net.link_up(x, k) && self.world.net.link_up(k, x));
        }
        let named = node.filter(|x| running.contains(x));
        let Some(i) = named.or_else(|| running.get(rng.random_range(0..running.len().max(1))).copied())
        else {
            return;
        };
        let host = &self.world.hosts[i];
        let Some(life) = host.life.as_ref() else { return };
        let current = life.node.roster().clone();
        let spare = (0..self.world.hosts.len()).find(|&k| !self.world.hosts[k].commissioned);
        let change = match spare.filter(|_| grow) {
            Some(k) => Change::AddMember { id: NodeId(k as u64 + 1), votes: 1 },
            None => draw(&current, spare, &mut rng),
        };
        self.stats.changes.proposed += 1;
        // A few proposals switch the timing preset instead (the other one than in force);
        // decided from the pick itself, so the other proposals of a seed stay as they were.
        let timing = (!grow && pick % TIMING_ONE_IN == 0).then(|| {
            let running = current.timing.as_deref().and_then(Preset::from_name).unwrap_or(host.setup.preset);
            running.flipped()
        });
        let shown = match timing {
            Some(p) => format!("timing.preset={}", p.name()),
            None => change.to_string(),
        };
        let result = if let Some(p) = timing {
            self.stats.changes.timing_proposed += 1;
            life.node.propose_timing(p.name())
        } else if self.scenario.bugs.contains(&Bug::HastyProposer { node: i }) {
            hasty(&current, &change)
        } else {
            life.node.propose(&change, None)
        };
        let roster = match result {
            Ok(r) => r,
            Err(e) => {
                let c = &mut self.stats.changes;
                match e {
                    ProposeError::Pending { .. } => c.refused_pending += 1,
                    ProposeError::Unsafe(_) => c.refused_unsafe += 1,
                    ProposeError::Behind { .. } => c.refused_behind += 1,
                    _ => c.refused_change += 1,
                }
                let text = format!("refuses \"{shown}\": {e}");
                self.world.timeline.record(now, What::Member { node: i, text }, &[]);
                return;
            }
        };
        self.stats.changes.accepted += 1;
        self.stats.changes.timing_accepted += u64::from(timing.is_some());
        let text = format!("accepts \"{shown}\" as version {}", roster.version);
        self.world.timeline.record(now, What::Member { node: i, text }, &[]);
        let added = match change {
            Change::AddMember { id, .. } if timing.is_none() => Some(index_of(id)),
            _ => None,
        };
        let file = definition_of(&roster);
        self.adopt_roster(i, roster, "adopts its own change:");
        if let Some(k) = added.filter(|k| *k < self.world.hosts.len()) {
            // The operator starts the new member on a file listing the change's members.
            let definition = self.world.model.intern(file);
            let host = &mut self.world.hosts[k];
            host.commissioned = true;
            host.file = definition;
            host.setup.definition = definition;
            self.stats.changes.members_started += 1;
            let at = now + rng.random_range(0..=ADDED_START_MS_MAX) * crate::clock::MS;
            self.scenario.faults.push(Scheduled { at, fault: Fault::Restart { node: k } });
            self.queue.push(at, Ev::Fault(self.scenario.faults.len() - 1));
        }
    }
}

/// A random single change to `current`: add `spare` (when there is one), remove a member
/// (alone, or dropping the tie-breaker with it), change a member's votes, or change the
/// tie-breaker. Many are refused by the core (the
/// last voter, the tie-breaker removed, an unsafe step): that is part of the test.
fn draw(current: &Roster, spare: Option<usize>, rng: &mut ChaCha8Rng) -> Change {
    let members: Vec<NodeId> = current.votes.members().map(|(id, _)| id).collect();
    let member = members.get(rng.random_range(0..members.len().max(1))).copied().unwrap_or(NodeId(1));
    match (rng.random_range(0..20), spare) {
        (0..=5, Some(k)) => {
            Change::AddMember { id: NodeId(k as u64 + 1), votes: u32::from(rng.random_bool(0.8)) }
        }
        (6..=8, _) => Change::RemoveMember { id: member },
        (9..=10, _) => Change::RemoveMemberSetTieBreaker { id: member, tie_breaker: TieBreaker::None },
        (11..=15, _) | (0..=5, None) => Change::SetVotes { id: member, votes: rng.random_range(0..=2) },
        _ => Change::SetTieBreaker(match rng.random_range(0..3) {
            0 => TieBreaker::None,
            1 => TieBreaker::LowestId,
            _ => TieBreaker::Node(member),
        }),
    }
}

/// What a driver that skips the one-change-at-a-time rule would make of `change`
/// ([`Bug::HastyProposer`]): the next version, checked only for succession, without
/// waiting for the current one to spread or be committed, and naming no parent (so no
/// node keeps the previous version in force while it spreads: the rule skipped whole).
fn hasty(current: &Roster, change: &Change) -> Result<Roster, ProposeError> {
    let next = current.next(change, None)?;
    check_successor(&current.votes, &next.votes)?;
    Ok(Roster { parent: None, ..next })
}

fn index_of(id: NodeId) -> usize {
    usize::try_from(id.0.saturating_sub(1)).unwrap_or(usize::MAX)
}

/// `{n1,n2:2,n3:0} tie n1`.
fn show(d: &Definition) -> String {
    let members: Vec<String> = d
        .members
        .iter()
        .map(|&(i, v)| if v == 1 { format!("n{}", i + 1) } else { format!("n{}:{v}", i + 1) })
        .collect();
    let tie = d.resolved_tie().map_or("none".to_string(), |t| format!("n{}", t + 1));
    format!("{{{}}} tie {tie}", members.join(","))
}
