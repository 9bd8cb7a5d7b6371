//! A host: the machine one simulated node runs on. It owns the node's drifting clock, its
//! current life (a real [`quorate_core::Node`] with its gate handle and manual clock), what
//! the process is doing (running, paused, down), and its disk.
//!
//! The disk is the node's data directory: the promises its lives recorded
//! ([`quorate_core::Promises`]). It survives crashes; each life starts with
//! [`Memory::Durable`] holding what the disk says. A write the core asks for
//! ([`quorate_core::Node::poll_persist`]) lands on the disk after the scenario's write delay;
//! only then is the core told ([`quorate_core::Node::handle_persisted`]). A crash before a
//! write lands loses it, so the core must never rely on a write it was not told of.
//!
//! The disk also keeps the definition the node adopted while running (its index in the
//! model and its version, [`Host::disk_roster`]), written before the core is handed it, as
//! the runtime does: a later life starts from it instead of its file's version 0, and a
//! node whose recorded definition does not list it (it was removed) does not start again.

use std::collections::{BTreeMap, VecDeque};

use quorate_core::{Adopted, Config, CoreConfigError, Memory, Node, PeerDefinitions, Promises};
use quorate_gate::{Clock, ManualClock, QuorumGate};
use quorate_proto::{Incarnation, Instant, NodeId, Roster, VoteTable};

use crate::clock::{SimClock, MS};
use crate::setup::{Preset, Setup};
use crate::versions::Running;
use crate::wire::Carry;

/// Datagrams a paused process's socket buffers before dropping new arrivals (a Linux UDP
/// receive buffer of a few MB holds tens of thousands of small datagrams).
pub const BACKLOG_MAX: usize = 65_536;

/// Replaced presets a host keeps on record ([`Host::replaced`]); the checkers need only
/// those replaced within the longest lease, and switches come seconds apart.
const REPLACED_MAX: usize = 8;

/// Wall-clock milliseconds at real time zero; incarnations are wall-clock milliseconds at
/// start, as in the runtime.
const WALL_START_MS: u64 = 1_700_000_000_000;

/// Whether a host's process runs: what a crash, a restart, a pause or a resume changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessState {
    /// Crashed, shut down, or not started.
    Down,
    /// Alive but not running (SIGSTOP).
    Paused,
    /// Running.
    Running,
}

/// One life of a node.
#[derive(Debug)]
pub struct Life {
    /// The sans-IO core.
    pub node: Node,
    /// A handle on its gate, as a storage engine would hold.
    pub gate: QuorumGate,
    /// The hand on the clock the gate handle reads.
    hand: ManualClock,
    /// This life's incarnation.
    pub incarnation: Incarnation,
    /// Real time this life started.
    pub started: u64,
    /// Whether `Node::shutdown` was called.
    pub shut_down: bool,
    /// A write to the disk under way (at most one at a time, as a driver would do it).
    pub writing: Option<Promises>,
    /// A write that landed while the process was paused: the core is told when it runs.
    pub landed: Option<Promises>,
}

/// One simulated machine.
#[derive(Debug)]
pub struct Host {
    /// Index `0..n`; the node id is `index + 1`.
    pub index: usize,
    /// Its local monotonic clock.
    pub clock: SimClock,
    /// What it runs (its current life, or its next one while down).
    pub setup: Setup,
    /// The version of the definition it runs (0: its file's).
    pub version: u64,
    /// The definition its configuration file gives (an index into the model's
    /// definitions): what a life starts from when the disk records none.
    pub file: usize,
    /// Whether the node has been started at all (slots for members added while the
    /// cluster runs wait, down, until then).
    pub commissioned: bool,
    /// Its wall clock's error, ms (incarnations come from the wall clock).
    wall_offset_ms: u64,
    /// The current life, `None` while down.
    pub life: Option<Life>,
    /// Since when the process is paused.
    pub paused_since: Option<u64>,
    /// Datagrams that arrived while paused: (sender index, bytes).
    pub backlog: VecDeque<(usize, Vec<u8>, Carry)>,
    /// The armed timer: (real time, generation); stale generations are ignored.
    pub timer: Option<(u64, u64)>,
    /// Generation counter for timers.
    pub timer_gen: u64,
    /// A definition this node is to switch to online, which arrived while it was paused:
    /// taken at resume.
    pub adopt_on_resume: Option<usize>,
    /// The definition the data directory records as adopted while running, at its
    /// version; `None` until the node adopts one (a life then starts from its file).
    pub disk_roster: Option<Running>,
    /// The vote table of the version before [`Host::disk_roster`]'s (its `Roster::parent`),
    /// kept with it as the runtime's definition file keeps it.
    pub disk_parent: Option<VoteTable>,
    /// The timing preset [`Host::disk_roster`]'s definition names (`Roster::timing`), kept
    /// with it: a later life starts on that preset.
    pub disk_timing: Option<String>,
    /// The presets this node ran before its current one, each with the real time it was
    /// replaced online (oldest first, a few at most): leases lent under one outlive it.
    pub replaced: Vec<(u64, Preset)>,
    /// The last incarnation used (0 before the first start).
    last_incarnation: u64,
    /// Real time the host has been live (not down), ns, excluding the current stretch.
    live_ns: u64,
    /// Since when the current live stretch runs.
    live_since: Option<u64>,
    /// The data directory: what the node's lives recorded of their promises. Survives
    /// crashes; all zero before the first start.
    pub disk: Promises,
    /// The data directory's record of the definitions the node's peers were last heard
    /// running. Written at once when the core asks (a crash never loses it); with
    /// `forget`, a new life starts without it like without its promises.
    pub disk_definitions: PeerDefinitions,
    /// Datagrams handed to the network.
    pub sent_msgs: u64,
    /// Payload bytes handed to the network.
    pub sent_bytes: u64,
}

impl Host {
    /// A machine that has not started its node yet.
    pub fn new(index: usize, clock: SimClock, wall_offset_ms: u64, setup: Setup) -> Self {
        Host {
            index,
            clock,
            setup,
            version: 0,
            file: setup.definition,
            commissioned: false,
            wall_offset_ms,
            life: None,
            paused_since: None,
            backlog: VecDeque::new(),
            timer: None,
            timer_gen: 0,
            adopt_on_resume: None,
            disk_roster: None,
            disk_parent: None,
            disk_timing: None,
            replaced: Vec::new(),
            last_incarnation: 0,
            live_ns: 0,
            live_since: None,
            disk: Promises::default(),
            disk_definitions: PeerDefinitions::default(),
            sent_msgs: 0,
            sent_bytes: 0,
        }
    }

    /// The node id.
    pub fn id(&self) -> NodeId {
        NodeId(self.index as u64 + 1)
    }

    /// Starts a new life at real time `now`: a fresh core with an incarnation above every
    /// earlier one (wall-clock milliseconds, bumped if the wall clock has not moved on),
    /// given what the disk recorded. `config` is this node's configuration on the
    /// definition it runs ([`Host::setup`], at [`Host::version`]). With `forget` it is given an empty record instead, as a
    /// node that lost its data directory (or never kept one) would be: tests use it to show
    /// what the checkers see when a restart breaks its earlier life's promises. With
    /// `reuse_incarnation` a restart takes its previous life's incarnation again (a planted
    /// bug, [`crate::Bug::ReusedIncarnation`]).
    pub fn start(
        &mut self,
        mut config: Config,
        now: u64,
        seed: u64,
        forget: bool,
        reuse_incarnation: bool,
    ) -> Result<(), CoreConfigError> {
        let wall = WALL_START_MS + self.wall_offset_ms + now / MS;
        let incarnation = if reuse_incarnation && self.last_incarnation > 0 {
            Incarnation(self.last_incarnation)
        } else {
            Incarnation(wall.max(self.last_incarnation + 1))
        };
        config.me = self.id();
        let local = self.local(now);
        let (clock, hand) = Clock::manual(local);
        let prior = if forget { Promises::default() } else { self.disk };
        let mut valid = config.check()?;
        if self.version > 0 {
            let votes = valid.votes().clone();
            let parent = self.disk_parent.clone();
            valid = valid.with_roster(Roster {
                version: self.version,
                votes,
                addresses: BTreeMap::new(),
                parent,
                timing: self.disk_timing.clone(),
            })?;
        }
        let (mut node, gate) =
            Node::with_memory(valid, incarnation, Memory::Durable { prior }, clock, local, seed)?;
        if !forget {
            node.remember_definitions(local, &self.disk_definitions);
        }
        self.last_incarnation = incarnation.0;
        self.commissioned = true;
        self.life = Some(Life {
            node,
            gate,
            hand,
            incarnation,
            started: now,
            shut_down: false,
            writing: None,
            landed: None,
        });
        self.paused_since = None;
        self.backlog.clear();
        self.live_since = Some(now);
        Ok(())
    }

    /// The process dies at `now`: state lost, timers gone, queued datagrams gone, a write
    /// under way lost (the disk keeps what it had).
    pub fn crash(&mut self, now: u64) {
        self.life = None;
        self.paused_since = None;
        // A switch it had not taken yet dies with the process.
        self.adopt_on_resume = None;
        self.backlog.clear();
        self.timer = None;
        if let Some(since) = self.live_since.take() {
            self.live_ns += now.saturating_sub(since);
        }
    }

    /// Graceful shutdown at `now`: the core fences itself for good; the process then exits.
    pub fn shutdown(&mut self, now: u64) {
        if let Some(life) = self.life.as_mut() {
            if self.paused_since.is_none() {
                let local = self.clock.local(now);
                life.hand.set(local);
                life.node.shutdown(local);
                life.shut_down = true;
            }
        }
    }

    /// The running core switches to `roster`, which is `running` in the model's terms, at
    /// real time `now`: the driver persists it first (a crash after this step starts the
    /// next life from it), then hands it to the core (`Node::adopt`). `None` while the
    /// process does not run (nothing is written).
    pub fn adopt(
        &mut self,
        roster: Roster,
        running: Running,
        now: u64,
    ) -> Option<Result<Adopted, quorate_core::AdoptError>> {
        let local = self.clock.local(now);
        let life = self.life.as_mut()?;
        self.disk_roster = Some(running);
        self.disk_parent = roster.parent.clone();
        self.disk_timing = roster.timing.clone();
        life.hand.set(local);
        let result = life.node.adopt(local, roster);
        if matches!(result, Ok(Adopted::Running)) {
            self.setup.definition = running.definition;
            self.version = running.version;
        }
        Some(result)
    }

    /// The running core switches to `preset`'s timing at real time `now`
    /// (`Node::set_timing` with `config`'s detector, gate and gossip settings, its drift
    /// bound unchanged). With `judged`, the checkers judge the node by `preset` from now
    /// on, keeping the one it replaces on record ([`Host::replaced`]); without, they keep
    /// judging it by the old one (a planted bug, [`crate::Bug::StalePreset`]).
    pub fn set_timing(
        &mut self,
        preset: Preset,
        config: &Config,
        now: u64,
        judged: bool,
    ) -> Option<Result<(), CoreConfigError>> {
        let local = self.clock.local(now);
        let life = self.life.as_mut()?;
        life.hand.set(local);
        let c = config.clone();
        if let Err(e) = life.node.set_timing(local, c.detector, c.gate, c.gossip) {
            return Some(Err(e));
        }
        if judged && preset != self.setup.preset {
            if self.replaced.len() >= REPLACED_MAX {
                self.replaced.remove(0);
            }
            self.replaced.push((now, self.setup.preset));
            self.setup.preset = preset;
        }
        Some(Ok(()))
    }

    /// What this node runs.
    pub fn running(&self) -> Running {
        Running { definition: self.setup.definition, version: self.version }
    }

    /// Whether the process is running, paused or down.
    pub fn process_state(&self) -> ProcessState {
        match (&self.life, self.paused_since) {
            (None, _) => ProcessState::Down,
            (Some(_), Some(_)) => ProcessState::Paused,
            (Some(_), None) => ProcessState::Running,
        }
    }

    /// Whether the current life was shut down gracefully (it is fenced for good and about
    /// to exit; the liveness invariants do not apply to it).
    pub fn is_shut_down(&self) -> bool {
        self.life.as_ref().is_some_and(|l| l.shut_down)
    }

    /// The local clock reading at real time `real`.
    pub fn local(&self, real: u64) -> Instant {
        self.clock.local(real)
    }

    /// Sets the gate's manual clock to the local reading at `real` and returns it. Real
    /// time only moves forward, so neither does the manual clock.
    pub fn set_clock(&self, real: u64) -> Instant {
        let local = self.clock.local(real);
        if let Some(life) = &self.life {
            life.hand.set(local);
        }
        local
    }

    /// What a storage engine's `can_write()` answers at real time `real`: the gate handle,
    /// read with the manual clock set to the node's local time at that instant.
    pub fn can_write_at(&self, real: u64) -> bool {
        self.set_clock(real);
        self.life.as_ref().is_some_and(|l| l.gate.can_write())
    }

    /// Real time this host has been live up to `now`, ns.
    pub fn live_ns(&self, now: u64) -> u64 {
        self.live_ns + self.live_since.map_or(0, |s| now.saturating_sub(s))
    }
}
