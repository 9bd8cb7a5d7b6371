//! The service inside one node: who is active, the takeover, and the append loop.
//!
//! ```text
//!   gate.subscribe() ──► PeerFenced{peer, at} / PeerDown{peer} ──► Trigger ──┐
//!                                                                          ▼
//!   controller thread: every claims_poll: read the latest claim (remember when each was first seen)
//!                      trigger about the holder ──► take over: claim-<gen+1>, exclusive
//!                      no claim at all          ──► claim-1 (the first active node)
//!                      without the gate, every monitor interval: latest claim not mine ──► standby
//!   writer thread:     if active: permit() ─► new epoch? re-claim claim-<gen+1> (lost: standby)
//!                      ─► the request's work (pace) ─► check() ─► append {node, gen, epoch, seq,
//!                      checked_us} ─► fdatasync ─► check() ─► ack
//!                      (without the gate: role ─► work ─► append ─► fdatasync ─► ack)
//! ```
//!
//! One lock guards the role. Only the controller turns a standby active (start, takeover);
//! only the writer and, without the gate, the monitor turn an active node standby. So the
//! writer's decision to append rests on a role that no other thread can take back from
//! under it with the gate on; without the gate it can, which is the naive design's point.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use quorate::clock::monotonic_us;
use quorate::{Instant, QuorumGate};

use crate::shared::{Ack, Claim, How, LogWriter, Record, SharedDir, SharedError};

/// Triggers queued for the controller at most; more are dropped and counted.
pub const TRIGGERS_MAX: usize = 1_024;

/// Whether the node takes over on `PeerFenced` and writes under the gate, or does what
/// naive failover scripts do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every append holds a permit checked before the write and after `fdatasync`; a standby
    /// takes over only after `PeerFenced` about the holder.
    Gated,
    /// `--unsafe-no-gate`: no permit; a standby takes over when it considers the holder down
    /// (a heartbeat timeout), and the active node steps down only when its monitor, every
    /// `monitor`, finds a newer claim. Splits the brain; the negative control.
    Naive {
        /// How often the active node checks that the latest claim is still its own.
        monitor: Duration,
    },
}

/// How the node behaves.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// This node's id.
    pub node: u64,
    /// With or without the gate.
    pub mode: Mode,
    /// The work of one request, between the decision to write (the permit, or the role
    /// without the gate) and the commit; also the pause of a node with nothing to do.
    /// Default 10 ms.
    pub pace: Duration,
    /// How often the controller reads the latest claim. Default 100 ms.
    pub claims_poll: Duration,
}

/// What the controller reacts to, forwarded from the node's quorum events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `PeerFenced { peer, at }` (the gate clock's instant the fence check concluded).
    Fenced {
        /// The peer.
        peer: u64,
        /// When.
        at: Instant,
    },
    /// `PeerDown { peer }`: this node's heartbeat timeout for the peer expired.
    Down {
        /// The peer.
        peer: u64,
    },
}

/// The node's part in the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Does not write.
    Standby,
    /// Appends under claim `gen`.
    Active {
        /// The generation it holds.
        gen: u64,
        /// The epoch (0 without the gate) under which it last verified that `gen` is the
        /// latest claim; `None` after a restart. A different epoch means a new stretch of
        /// quorum, in which someone may have taken over: it re-claims before it writes.
        verified: Option<u64>,
    },
}

/// What the node did, for its exit summary.
#[derive(Debug, Default)]
pub struct Counters {
    /// Records appended (durable).
    pub appended: AtomicU64,
    /// Of them acknowledged (the permit still held after `fdatasync`).
    pub acked: AtomicU64,
    /// Appended but not acknowledged: the permit's second check failed.
    pub unconfirmed: AtomicU64,
    /// Appends not attempted: no permit.
    pub refused_not_quorate: AtomicU64,
    /// Appends not attempted: the permit's check before the write failed.
    pub refused_at_check: AtomicU64,
    /// Claims won by taking over.
    pub takeovers: AtomicU64,
    /// Claims won for a new stretch of quorum.
    pub reclaims: AtomicU64,
    /// Times this node went from active to standby.
    pub stepped_down: AtomicU64,
    /// Triggers refused: the holder's claim was not known before the event.
    pub triggers_refused: AtomicU64,
    /// Triggers dropped because the controller's queue was full.
    pub triggers_dropped: AtomicU64,
    /// Failed reads or writes of the shared or local directory.
    pub storage_errors: AtomicU64,
}

impl Counters {
    /// One line: `appended 412, acked 410, ...`.
    pub fn summary(&self) -> String {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "appended {}, acked {}, unconfirmed {}, refused (not quorate {}, at check {}), takeovers {}, \
             reclaims {}, stepped down {}, triggers refused {}, dropped {}, storage errors {}",
            n(&self.appended),
            n(&self.acked),
            n(&self.unconfirmed),
            n(&self.refused_not_quorate),
            n(&self.refused_at_check),
            n(&self.takeovers),
            n(&self.reclaims),
            n(&self.stepped_down),
            n(&self.triggers_refused),
            n(&self.triggers_dropped),
            n(&self.storage_errors),
        )
    }
}

/// The latest claim and the gate-clock instant this node first read it.
#[derive(Debug, Clone)]
struct Known {
    claim: Claim,
    seen_at: Instant,
}

/// A takeover decided but not yet claimed: of generation `gen`, held by `from`.
#[derive(Debug, Clone, Copy)]
struct Pending {
    from: u64,
    gen: u64,
}

#[derive(Debug)]
struct State {
    role: Role,
    known: Option<Known>,
    pending: Option<Pending>,
}

#[derive(Debug)]
struct Inner {
    settings: Settings,
    gate: QuorumGate,
    shared: SharedDir,
    state: Mutex<State>,
    counters: Counters,
    stop: AtomicBool,
}

/// A running engine: its two threads and the controller's queue.
#[derive(Debug)]
pub struct Engine {
    inner: Arc<Inner>,
    triggers: Triggers,
    threads: Vec<JoinHandle<()>>,
}

/// Where the node's event task hands triggers to the controller. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Triggers {
    tx: SyncSender<Trigger>,
    inner: Arc<Inner>,
}

impl Triggers {
    /// Hands a trigger to the controller; a full queue drops it (counted).
    pub fn send(&self, trigger: Trigger) {
        match self.tx.try_send(trigger) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.inner.counters.triggers_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Engine {
    /// Opens the shared log and the ack log at `acks`, reads the latest claim (a node that
    /// holds it after a restart re-claims before it writes) and starts both threads.
    pub fn start(
        settings: Settings,
        gate: QuorumGate,
        shared: SharedDir,
        acks: &std::path::Path,
    ) -> Result<Engine, SharedError> {
        let log = shared.open_log()?;
        // The ack log stands for the clients' answers: it is written after the append is
        // durable, and is not flushed itself (a crash of the node loses no client's answer).
        let acks = LogWriter::open(acks, false)?;
        let latest = shared.latest()?;
        let role = match &latest {
            Some(c) if c.node == settings.node => Role::Active { gen: c.gen, verified: None },
            _ => Role::Standby,
        };
        let known = latest.map(|claim| Known { claim, seen_at: gate.clock().now() });
        let inner = Arc::new(Inner {
            settings,
            gate,
            shared,
            state: Mutex::new(State { role, known, pending: None }),
            counters: Counters::default(),
            stop: AtomicBool::new(false),
        });
        let (tx, rx) = sync_channel(TRIGGERS_MAX);
        let controller = {
            let inner = inner.clone();
            std::thread::Builder::new().name("controller".into()).spawn(move || inner.control(&rx))
        };
        let writer = {
            let inner = inner.clone();
            std::thread::Builder::new().name("writer".into()).spawn(move || inner.write(log, acks))
        };
        let spawn_err = |e: std::io::Error| SharedError::Io {
            what: "spawn a thread for",
            path: inner.shared.root().to_owned(),
            source: e,
        };
        let threads = vec![controller.map_err(spawn_err)?, writer.map_err(spawn_err)?];
        let triggers = Triggers { tx, inner: inner.clone() };
        Ok(Engine { inner, triggers, threads })
    }

    /// The controller's queue, for the task that follows the node's events.
    pub fn triggers(&self) -> Triggers {
        self.triggers.clone()
    }

    /// The current role.
    pub fn role(&self) -> Role {
        self.inner.state.lock().role
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// Stops both threads after their current step and waits for them. Returns false if a
    /// thread panicked.
    pub fn stop(mut self) -> bool {
        self.inner.stop.store(true, Ordering::Release);
        // Join every thread, also after one that panicked.
        let joined: Vec<bool> =
            std::mem::take(&mut self.threads).into_iter().map(|t| t.join().is_ok()).collect();
        joined.into_iter().all(|ok| ok)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Release);
    }
}

impl Inner {
    fn me(&self) -> u64 {
        self.settings.node
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn storage_error(&self, what: &str, e: &SharedError) {
        self.counters.storage_errors.fetch_add(1, Ordering::Relaxed);
        tracing::error!(node = self.me(), "{what}: {e}");
    }

    // ---- controller ------------------------------------------------------------------

    fn control(&self, rx: &Receiver<Trigger>) {
        let poll = self.settings.claims_poll;
        let mut next_poll = std::time::Instant::now();
        let mut next_monitor = next_poll;
        while !self.stopped() {
            let wait = next_poll.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(wait) {
                Ok(trigger) => self.on_trigger(trigger),
                Err(RecvTimeoutError::Timeout) => {}
                // The engine handle is gone: nothing will trigger again; keep polling until stopped.
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
            }
            let now = std::time::Instant::now();
            if now >= next_poll {
                next_poll = now + poll;
                self.poll();
            }
            if let Mode::Naive { monitor } = self.settings.mode {
                if now >= next_monitor {
                    next_monitor = now + monitor;
                    self.monitor();
                }
            }
        }
    }

    /// Reads the latest claim; takes the first claim when there is none; retries a pending
    /// takeover.
    fn poll(&self) {
        let latest = match self.shared.latest() {
            Ok(l) => l,
            Err(e) => return self.storage_error("read the claims", &e),
        };
        let now = self.gate.clock().now();
        let mut state = self.state.lock();
        match latest {
            // The instant a claim was first seen is what a takeover compares with the
            // event's, so it is kept while the latest claim stays the same.
            Some(claim) if state.known.as_ref().is_none_or(|k| k.claim.gen != claim.gen) => {
                tracing::info!(node = self.me(), gen = claim.gen, holder = claim.node, "latest claim");
                state.known = Some(Known { claim, seen_at: now });
            }
            Some(_) => {}
            None => {
                if state.role == Role::Standby {
                    self.claim_first(&mut state);
                }
            }
        }
        self.try_pending(&mut state);
    }

    /// Claims generation 1 of an empty directory (with the gate: only while quorate).
    fn claim_first(&self, state: &mut State) {
        let epoch = match self.current_epoch() {
            Some(e) => e,
            None => return,
        };
        let claim =
            Claim { gen: 1, node: self.me(), epoch, at_us: monotonic_us(), from: None, how: How::Start };
        self.claim(state, claim);
    }

    /// The epoch writes would carry now: the permit's with the gate (`None` when fenced),
    /// 0 without.
    fn current_epoch(&self) -> Option<u64> {
        match self.settings.mode {
            Mode::Gated => self.gate.permit().ok().map(|p| p.epoch().0),
            Mode::Naive { .. } => Some(0),
        }
    }

    /// Tries to create `claim`; on success this node is active under it.
    fn claim(&self, state: &mut State, claim: Claim) -> bool {
        match self.shared.try_claim(&claim) {
            Ok(true) => {
                tracing::warn!(node = self.me(), gen = claim.gen, how = ?claim.how, "active");
                state.role = Role::Active { gen: claim.gen, verified: Some(claim.epoch) };
                state.known = Some(Known { claim, seen_at: self.gate.clock().now() });
                true
            }
            Ok(false) => {
                tracing::info!(node = self.me(), gen = claim.gen, "claim taken by another node");
                false
            }
            Err(e) => {
                self.storage_error("claim", &e);
                false
            }
        }
    }

    fn on_trigger(&self, trigger: Trigger) {
        let (peer, event_at) = match (trigger, self.settings.mode) {
            (Trigger::Fenced { peer, at }, Mode::Gated) => (peer, Some(at)),
            (Trigger::Down { peer }, Mode::Naive { .. }) => (peer, None),
            _ => return,
        };
        let mut state = self.state.lock();
        if state.role != Role::Standby {
            return;
        }
        let Some(known) = state.known.as_ref().filter(|k| k.claim.node == peer) else { return };
        // With the gate, take over only a claim this node read before the event: a claim
        // made after it may belong to a new stretch of quorum of the same peer, about which
        // the event says nothing.
        if event_at.is_some_and(|at| known.seen_at >= at) {
            self.counters.triggers_refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(node = self.me(), peer, "holder's claim first read after the event: no takeover");
            return;
        }
        let gen = known.claim.gen;
        tracing::warn!(node = self.me(), peer, gen, ?trigger, "taking over");
        state.pending = Some(Pending { from: peer, gen });
        self.try_pending(&mut state);
    }

    /// Claims generation `gen + 1` of a pending takeover if `gen` is still the latest claim
    /// (and, with the gate, while this node holds quorum; otherwise it retries at the next
    /// poll). Two standbys that both decided to take over race on the exclusive create.
    fn try_pending(&self, state: &mut State) {
        let Some(p) = state.pending else { return };
        if state.role != Role::Standby {
            state.pending = None;
            return;
        }
        match self.shared.latest() {
            Ok(Some(latest)) if latest.gen == p.gen => {}
            Ok(latest) => {
                tracing::info!(node = self.me(), ?latest, "the role moved on before the takeover");
                state.pending = None;
                return;
            }
            Err(e) => return self.storage_error("read the claims", &e),
        }
        let Some(epoch) = self.current_epoch() else { return };
        let claim = Claim {
            gen: p.gen + 1,
            node: self.me(),
            epoch,
            at_us: monotonic_us(),
            from: Some(p.from),
            how: How::Takeover,
        };
        if self.claim(state, claim) {
            self.counters.takeovers.fetch_add(1, Ordering::Relaxed);
        }
        state.pending = None;
    }

    /// Without the gate: the active node steps down once the latest claim is not its own.
    fn monitor(&self) {
        let Role::Active { gen, .. } = self.state.lock().role else { return };
        let latest = match self.shared.latest() {
            Ok(l) => l,
            Err(e) => return self.storage_error("read the claims", &e),
        };
        if latest.as_ref().is_some_and(|c| c.gen != gen) {
            self.step_down(gen, latest.as_ref());
        }
    }

    fn step_down(&self, gen: u64, latest: Option<&Claim>) {
        let mut state = self.state.lock();
        if state.role != Role::Standby {
            state.role = Role::Standby;
            self.counters.stepped_down.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(node = self.me(), gen, ?latest, "standby: another node holds a newer claim");
        }
    }

    // ---- writer ----------------------------------------------------------------------

    fn write(&self, mut log: LogWriter, mut acks: LogWriter) {
        let mut seq = (0, 0); // (gen, last seq used in it)
        let pace = self.settings.pace;
        while !self.stopped() {
            let Role::Active { gen, verified } = self.state.lock().role else {
                std::thread::sleep(pace);
                continue;
            };
            // The decision to write: with the gate a permit, without it the role alone.
            let permit = match self.settings.mode {
                Mode::Gated => match self.gate.permit() {
                    Ok(p) => Some(p),
                    Err(_) => {
                        self.counters.refused_not_quorate.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(pace);
                        continue;
                    }
                },
                Mode::Naive { .. } => None,
            };
            let epoch = permit.as_ref().map_or(0, |p| p.epoch().0);
            if verified != Some(epoch) {
                self.reclaim(gen, epoch);
                std::thread::sleep(pace);
                continue;
            }
            // The request's work between the decision and the commit (a real service parses,
            // computes, waits for a lock). A pause that lands here is what the check before
            // the write is for: without it, the node writes on what it decided before.
            std::thread::sleep(pace);
            if self.stopped() {
                break;
            }
            if seq.0 != gen {
                seq = (gen, 0);
            }
            // The number is used up even if the append fails midway: it may be in the file.
            seq.1 += 1;
            let checked_us = monotonic_us();
            if permit.as_ref().is_some_and(|p| p.check().is_err()) {
                self.counters.refused_at_check.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let record = Record { node: self.me(), gen, epoch, seq: seq.1, checked_us };
            if let Err(e) = log.append(&record) {
                self.storage_error("append", &e);
                continue;
            }
            self.counters.appended.fetch_add(1, Ordering::Relaxed);
            // With the gate, the write and the flush both happened inside one unbroken
            // stretch of quorum only if the permit still holds now.
            if permit.as_ref().is_some_and(|p| p.check().is_err()) {
                self.counters.unconfirmed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    node = self.me(),
                    gen,
                    seq = seq.1,
                    "appended, but fenced before it was durable: not acknowledged"
                );
                continue;
            }
            match acks.append(&Ack { record, durable_us: monotonic_us() }) {
                Ok(()) => {
                    self.counters.acked.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => self.storage_error("acknowledge", &e),
            }
        }
    }

    /// A new stretch of quorum (or a restart): claim `gen + 1` before writing again. If
    /// anyone claimed since `gen`, step down.
    fn reclaim(&self, gen: u64, epoch: u64) {
        let latest = match self.shared.latest() {
            Ok(l) => l,
            Err(e) => return self.storage_error("read the claims", &e),
        };
        if latest.as_ref().is_some_and(|c| c.gen != gen) {
            return self.step_down(gen, latest.as_ref());
        }
        let claim = Claim {
            gen: gen + 1,
            node: self.me(),
            epoch,
            at_us: monotonic_us(),
            from: Some(self.me()),
            how: How::Reclaim,
        };
        let mut state = self.state.lock();
        if self.claim(&mut state, claim) {
            self.counters.reclaims.fetch_add(1, Ordering::Relaxed);
        } else {
            drop(state);
            self.step_down(gen, None);
        }
    }
}
