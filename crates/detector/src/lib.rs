//! Phi accrual failure detection and per-peer reachability for quorate, sans-IO.
//!
//! The [`Detector`] decides which peers this node can currently reach. The quorum gate
//! counts the Reachable ones; leases elsewhere rely on one promise made here, the **floor**:
//! no peer is declared [`PeerState::Unreachable`] sooner than
//! [`DetectorConfig::down_after_min`] after it was last heard, nor sooner than that after
//! the detector started.
//!
//! The flow, driven by the runtime (which owns the clock and the sockets):
//!
//! ```text
//!   heartbeat from peer ──▶ handle_heartbeat(now, from)  ─┐
//!   timer fires         ──▶ handle_timeout(now)           ├─▶ poll_event()   → DetectorEvent*
//!                                                          └─▶ poll_timeout() → next timer
//! ```
//!
//! * [`Detector::handle_heartbeat`] marks the peer Reachable and feeds its inter-arrival
//!   window ([`phi::ArrivalWindow`]).
//! * [`Detector::handle_timeout`] first checks whether *this* node was stalled (a gap
//!   between ticks longer than [`DetectorConfig::stall_threshold`]); if so every peer gets a
//!   fresh grace period instead of being convicted for our own silence. It then applies the
//!   transitions due at `now` ([`reachability`] explains the instants).
//! * [`Detector::poll_event`] hands out one [`DetectorEvent`] per transition, in order.
//! * [`Detector::poll_timeout`] says when to call `handle_timeout` next.
//!
//! Nothing here reads a clock, spawns a thread or does I/O: time is always the `now`
//! parameter, an [`Instant`] of this node's monotonic clock. A `now` earlier than one seen
//! before is treated as "no time passed".

pub mod config;
pub mod phi;
pub mod reachability;

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use quorate_proto::{Instant, NodeId, Valid};

pub use config::{DetectorConfig, DetectorConfigError};
pub use reachability::PeerState;

use reachability::{PeerTracker, Timing};

/// Most events held for [`Detector::poll_event`]; when full, the oldest is dropped and
/// counted in [`Detector::events_dropped`]. A runtime draining events after every call never
/// comes close: one call produces at most one event per peer.
pub const EVENTS_MAX: usize = 4096;

/// Most peers one detector tracks.
pub const PEERS_MAX: usize = 4096;

/// A change of one peer's [`PeerState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetectorEvent {
    /// The peer whose state changed.
    pub peer: NodeId,
    /// Its state before.
    pub from: PeerState,
    /// Its state now.
    pub to: PeerState,
    /// The `now` of the call that made the change.
    pub at: Instant,
}

/// A snapshot of what the detector knows about one peer, for status pages and debugging.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeerView {
    /// Current state.
    pub state: PeerState,
    /// When the last heartbeat arrived; `None` if never in this detector's life.
    pub last_heard: Option<Instant>,
    /// Mean inter-arrival time in the window (seeded with the first-heartbeat estimate).
    pub mean: Duration,
    /// Measured standard deviation of inter-arrival times, before `min_std_dev` is applied.
    pub std_dev: Duration,
    /// When the peer turns Suspect if not heard before; `None` unless Reachable.
    pub suspect_at: Option<Instant>,
    /// When the peer turns Unreachable if not heard before; `None` once Unreachable.
    pub down_at: Option<Instant>,
}

/// The partition detector: heartbeats in, reachability events out. See the crate docs.
#[derive(Debug, Clone)]
pub struct Detector {
    config: Valid<DetectorConfig>,
    timing: Timing,
    /// Ordered so iteration, and hence event order, is deterministic for the simulator.
    peers: BTreeMap<NodeId, PeerTracker>,
    events: EventQueue,
    stalls: u64,
    /// The `now` of the last tick (or stall check), for stall detection.
    last_tick: Instant,
    /// The latest `now` seen by any call; earlier ones are raised to it.
    clock: Instant,
}

impl Detector {
    /// A detector started at `now` that watches `peers` (duplicates are ignored; do not
    /// include this node). Every peer starts [`PeerState::Unknown`].
    ///
    /// `config` passed its rules ([`DetectorConfig::check`]); fails only when more than
    /// [`PEERS_MAX`] distinct peers are given.
    pub fn new(
        config: Valid<DetectorConfig>,
        now: Instant,
        peers: impl IntoIterator<Item = NodeId>,
    ) -> Result<Self, DetectorConfigError> {
        let timing = Timing::new(&config, now);
        let mut map = BTreeMap::new();
        for peer in peers {
            map.entry(peer).or_insert_with(|| PeerTracker::new(&timing, now));
            if map.len() > PEERS_MAX {
                return Err(DetectorConfigError::TooManyPeers { max: PEERS_MAX });
            }
        }
        Ok(Detector {
            config,
            timing,
            peers: map,
            events: EventQueue::new(EVENTS_MAX),
            stalls: 0,
            last_tick: now,
            clock: now,
        })
    }

    /// Watches exactly `peers` from `now` on (the member list changed while running;
    /// duplicates are ignored; do not include this node). A peer already watched keeps its
    /// state and history; a new one starts [`PeerState::Unknown`], its silence counted from
    /// `now`, so it is not called down within the floor of being added; a peer no longer
    /// listed is forgotten without an event. Fails, changing nothing, when more than
    /// [`PEERS_MAX`] distinct peers are given.
    pub fn set_peers(
        &mut self,
        now: Instant,
        peers: impl IntoIterator<Item = NodeId>,
    ) -> Result<(), DetectorConfigError> {
        let now = self.observe(now);
        let wanted: std::collections::BTreeSet<NodeId> = peers.into_iter().collect();
        if wanted.len() > PEERS_MAX {
            return Err(DetectorConfigError::TooManyPeers { max: PEERS_MAX });
        }
        self.peers.retain(|id, _| wanted.contains(id));
        let timing = &self.timing;
        for peer in wanted {
            self.peers.entry(peer).or_insert_with(|| PeerTracker::new(timing, now));
        }
        Ok(())
    }

    /// Runs `config` from `now` on (the node's timing changed while it runs). Every peer
    /// keeps its state, history and the floor its lease needs; windows longer than the new
    /// `window_len` drop their oldest samples; pending verdicts are recomputed with the
    /// new thresholds and `down_after_min`. A lower `down_after_min` lowers no floor a
    /// peer's terms raised ([`Detector::raise_floor`]) nor the start floor, so every
    /// lease a peer may hold on this node's acks stays covered; a peer already
    /// Unreachable stays so until heard.
    pub fn set_config(&mut self, now: Instant, config: Valid<DetectorConfig>) {
        self.observe(now);
        let mut timing = Timing::new(&config, self.timing.started);
        timing.start_floor = self.timing.start_floor;
        self.timing = timing;
        self.config = config;
        let timing = &self.timing;
        for peer in self.peers.values_mut() {
            peer.on_timing(timing);
        }
    }

    /// The validated configuration.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// A heartbeat from `from` arrived at `now`: fresh contact, so the peer becomes
    /// Reachable (with an event if it was not) and the interval since its previous
    /// heartbeat becomes a sample, unless that interval spans a stall of this node.
    ///
    /// Returns `false`, changing nothing, when `from` is not one of the peers. If this node
    /// was stalled since the last tick, the stall is detected here first, as in
    /// [`Detector::handle_timeout`].
    pub fn handle_heartbeat(&mut self, now: Instant, from: NodeId) -> bool {
        if !self.peers.contains_key(&from) {
            return false;
        }
        let now = self.observe(now);
        self.detect_stall(now);
        let Some(peer) = self.peers.get_mut(&from) else {
            return false;
        };
        if let Some(previous) = peer.on_heartbeat(now, &self.timing) {
            self.events.push(DetectorEvent { peer: from, from: previous, to: PeerState::Reachable, at: now });
        }
        true
    }

    /// `from` announced at `now` that it leaves (its gate is already fenced): it is gone at
    /// once, with an event. Returns `false`, changing nothing, for an unknown peer.
    pub fn handle_leave(&mut self, now: Instant, from: NodeId) -> bool {
        if !self.peers.contains_key(&from) {
            return false;
        }
        let now = self.observe(now);
        let Some(peer) = self.peers.get_mut(&from) else {
            return false;
        };
        if let Some(previous) = peer.on_leave() {
            self.events.push(DetectorEvent { peer: from, from: previous, to: PeerState::Left, at: now });
        }
        true
    }

    /// Raises the floor for `peer`: from now on it is never declared down sooner than
    /// `floor` after it was last heard (or after a stall of this node). The node calls this
    /// with what the peer's own lease needs (its lease scaled by drift), before it acks the
    /// peer, so a peer with a longer lease than this node's `down_after_min` is still safe.
    /// Never lowers a floor. Returns `false` for an unknown peer.
    pub fn raise_floor(&mut self, peer: NodeId, floor: Duration) -> bool {
        let timing = &self.timing;
        match self.peers.get_mut(&peer) {
            Some(p) => {
                p.raise_floor(floor, timing);
                true
            }
            None => false,
        }
    }

    /// The floor currently applied to `peer` after last contact.
    pub fn floor(&self, peer: NodeId) -> Option<Duration> {
        self.peers.get(&peer).map(|p| p.floor().max(self.timing.floor))
    }

    /// Raises the start floor: no peer is declared down sooner than `floor` after this
    /// detector started. A restarted node sets it to what its previous life may have owed
    /// any peer (that life's leases on this node's acks can outlive the new life's start
    /// by up to that long). Never lowers it.
    pub fn raise_start_floor(&mut self, floor: Duration) {
        if floor <= self.timing.start_floor {
            return;
        }
        self.timing.start_floor = floor;
        let timing = &self.timing;
        for peer in self.peers.values_mut() {
            peer.on_timing(timing);
        }
    }

    /// The floor counted from this detector's start.
    pub fn start_floor(&self) -> Duration {
        self.timing.start_floor
    }

    /// The timer fired at `now`: detect a stall of this node, then apply every transition
    /// due at `now`, one event per transition (Reachable may go straight to Unreachable).
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.observe(now);
        self.detect_stall(now);
        self.last_tick = now;
        for (&id, peer) in &mut self.peers {
            if let Some((from, to)) = peer.advance(now, &self.timing) {
                self.events.push(DetectorEvent { peer: id, from, to, at: now });
            }
        }
    }

    /// When to call [`Detector::handle_timeout`] next: the earliest pending transition, but
    /// no later than one `heartbeat_interval` after the last tick. The regular tick is what
    /// lets the detector tell its own stalls from its peers' silence (a runtime that sleeps
    /// until the next transition would look stalled). `None` only without peers.
    ///
    /// Right after `handle_timeout(now)` the result is always later than `now`. An instant
    /// in the past (possible after heartbeats with a later `now`) means "call it now".
    /// A runtime that ticks less often than `stall_threshold` makes every tick look like a
    /// stall, and peers then never get convicted: safe, but blind.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let transitions = self.peers.values().filter_map(PeerTracker::deadline).min();
        if self.peers.is_empty() {
            return None;
        }
        let tick = self.last_tick.saturating_add(self.config.heartbeat_interval);
        Some(transitions.map_or(tick, |t| t.min(tick)))
    }

    /// The next state change, oldest first.
    pub fn poll_event(&mut self) -> Option<DetectorEvent> {
        self.events.pop()
    }

    /// The state of `peer`, or `None` if it is not one of the peers.
    pub fn state(&self, peer: NodeId) -> Option<PeerState> {
        self.peers.get(&peer).map(PeerTracker::state)
    }

    /// Phi of `peer` at `now` (`None` if not one of the peers). Silence counts from the
    /// later of its last heartbeat (the start, if never heard) and this node's last stall,
    /// so the value agrees with the state transitions; `acceptable_pause` and `min_std_dev`
    /// are applied.
    pub fn phi(&self, peer: NodeId, now: Instant) -> Option<f64> {
        self.peers.get(&peer).map(|p| p.phi_at(now, &self.timing))
    }

    /// When the last heartbeat from `peer` arrived; `None` if never, or not a peer.
    pub fn last_heard(&self, peer: NodeId) -> Option<Instant> {
        self.peers.get(&peer).and_then(PeerTracker::last_heard)
    }

    /// A snapshot of every peer, in `NodeId` order.
    pub fn peers(&self) -> impl Iterator<Item = (NodeId, PeerView)> + '_ {
        self.peers.iter().map(|(&id, p)| {
            let view = PeerView {
                state: p.state(),
                last_heard: p.last_heard(),
                mean: micros_to_duration(p.window().mean_us()),
                std_dev: micros_to_duration(p.window().std_dev_us()),
                suspect_at: p.suspect_at(),
                down_at: p.down_at(),
            };
            (id, view)
        })
    }

    /// How many stalls of this node were detected since start.
    pub fn stalls(&self) -> u64 {
        self.stalls
    }

    /// How many events were dropped because [`EVENTS_MAX`] were already queued.
    pub fn events_dropped(&self) -> u64 {
        self.events.dropped
    }

    /// Raises `now` to the latest instant seen, so time never runs backwards inside.
    fn observe(&mut self, now: Instant) -> Instant {
        self.clock = self.clock.max(now);
        self.clock
    }

    /// If more than `stall_threshold` passed since the last tick, this node was stalled:
    /// count it and give every peer that is not Unreachable a fresh grace period from `now`.
    fn detect_stall(&mut self, now: Instant) {
        if now - self.last_tick <= self.config.stall_threshold {
            return;
        }
        self.stalls = self.stalls.saturating_add(1);
        self.last_tick = now;
        for peer in self.peers.values_mut() {
            peer.on_stall(now, &self.timing);
        }
    }
}

/// A microsecond count from the window as a [`Duration`] (windows hold at most 60 s values).
fn micros_to_duration(us: f64) -> Duration {
    // `as` saturates: NaN and negatives become 0.
    Duration::from_nanos((us * 1e3) as u64)
}

/// A bounded FIFO of events that drops (and counts) the oldest when full.
#[derive(Debug, Clone)]
struct EventQueue {
    queue: VecDeque<DetectorEvent>,
    capacity: usize,
    dropped: u64,
}

impl EventQueue {
    fn new(capacity: usize) -> Self {
        EventQueue { queue: VecDeque::new(), capacity, dropped: 0 }
    }

    fn push(&mut self, event: DetectorEvent) {
        if self.queue.len() >= self.capacity && self.queue.pop_front().is_some() {
            self.dropped = self.dropped.saturating_add(1);
        }
        self.queue.push_back(event);
    }

    fn pop(&mut self) -> Option<DetectorEvent> {
        self.queue.pop_front()
    }
}

#[cfg(test)]
mod tests;
