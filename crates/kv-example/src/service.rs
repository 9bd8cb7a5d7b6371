//! [`Service`]: the key-value service behind the HTTP API: the gate, the store, the
//! read-only switch driven by quorum events, and counters.
//!
//! ```text
//!   QuorumGate::subscribe() ──► watch_events task ──► mode: Writable / ReadOnly(why)
//!                                     └──────────────► recent events (bounded), log lines
//!   put(key, value)
//!     mode ReadOnly?            ──► WriteError::ReadOnly (503, the QuorumLost reason)
//!     gate.permit()             ──► WriteError::NotQuorate (503, "not quorate: ...")
//!     blocking thread: Store::put(key, value, Guard::Permit)  (stores the epoch, re-checks)
//!                               ──► Written, or Fenced / StaleEpoch (503), Storage (500)
//! ```
//!
//! The mode flag follows the events and refuses early with the event's reason; the permit
//! is the authority. The flag can only lag the gate: after a `QuorumLost` it flips at once
//! (the gate fenced itself by the clock, possibly earlier), and after a `QuorumGained` the
//! gate is writable a moment before the flag flips back. Either way no write slips past the
//! permit, and the lag only costs a few refused writes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use quorate::clock::monotonic_us;
use quorate::events::event_json;
use quorate::{EventStream, NodeId, NotQuorate, QuorumEvent, QuorumGate, RecvError};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::store::{Durability, Guard, Record, Stats, Store, StoreError, Written};

/// Quorum events kept for `/status`.
pub const EVENTS_KEPT: usize = 32;
/// Writes handed to blocking threads at once; more wait for a slot.
pub const WRITES_IN_FLIGHT_MAX: usize = 64;
/// How long a write waits for a slot before it is refused as busy.
pub const WRITE_QUEUE_WAIT: Duration = Duration::from_secs(5);

/// Whether writes go through the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateMode {
    /// Every write takes a permit and re-checks it before commit. The default.
    Enforce,
    /// Writes skip the gate entirely (epoch 0, no check): only for measuring the gate's
    /// cost. No split-brain protection.
    Bypass,
}

/// Why a write was refused or failed. Nothing was written in any case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The service is read-only since it saw `QuorumLost`.
    #[error("{0}")]
    ReadOnly(String),
    /// The gate refused a permit.
    #[error(transparent)]
    NotQuorate(NotQuorate),
    /// The store refused or failed (re-check before commit, stale epoch, disk).
    #[error(transparent)]
    Store(StoreError),
    /// Every write slot stayed taken for [`WRITE_QUEUE_WAIT`].
    #[error("busy: {WRITES_IN_FLIGHT_MAX} writes in flight for longer than {} s", WRITE_QUEUE_WAIT.as_secs())]
    Busy,
}

impl WriteError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            WriteError::Store(StoreError::Storage(_)) => 500,
            _ => 503,
        }
    }

    /// A short machine-readable name for the JSON answer.
    pub fn kind(&self) -> &'static str {
        match self {
            WriteError::ReadOnly(_) => "read_only",
            WriteError::NotQuorate(_) => "not_quorate",
            WriteError::Store(StoreError::Fenced(_)) => "fenced_before_commit",
            WriteError::Store(StoreError::StaleEpoch { .. }) => "stale_epoch",
            WriteError::Store(_) => "storage",
            WriteError::Busy => "busy",
        }
    }
}

/// Read-only or writable, as the quorum events last said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Writes are attempted (the permit still decides).
    Writable {
        /// The epoch of the last `QuorumGained`.
        epoch: u64,
        /// `CLOCK_MONOTONIC` microseconds when the service flipped.
        since_mono_us: u64,
    },
    /// Writes are refused with `why`.
    ReadOnly {
        /// `not quorate: ...`, from the `QuorumLost` event or the gate's status.
        why: String,
        /// `CLOCK_MONOTONIC` microseconds when the service flipped.
        since_mono_us: u64,
    },
}

/// The service: cheap to clone, shared by every request handler.
#[derive(Debug, Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    node: NodeId,
    gate: QuorumGate,
    store: Arc<Store>,
    gate_mode: GateMode,
    durability: Durability,
    mode: Mutex<Mode>,
    events: Mutex<VecDeque<Value>>,
    slots: Semaphore,
    counters: Counters,
}

#[derive(Debug, Default)]
struct Counters {
    acked: AtomicU64,
    refused_read_only: AtomicU64,
    refused_not_quorate: AtomicU64,
    refused_at_commit: AtomicU64,
    refused_stale_epoch: AtomicU64,
    refused_busy: AtomicU64,
    refused_input: AtomicU64,
    storage_errors: AtomicU64,
}

impl Service {
    /// A service for node `node` over `store`, gated by `gate`. Call
    /// [`Service::watch_events`] (spawned) to keep the read-only switch current.
    pub fn new(
        node: NodeId,
        gate: QuorumGate,
        store: Arc<Store>,
        durability: Durability,
        gate_mode: GateMode,
    ) -> Self {
        let mode = mode_from_gate(&gate);
        Service {
            inner: Arc::new(Inner {
                node,
                gate,
                store,
                gate_mode,
                durability,
                mode: Mutex::new(mode),
                events: Mutex::new(VecDeque::with_capacity(EVENTS_KEPT)),
                slots: Semaphore::new(WRITES_IN_FLIGHT_MAX),
                counters: Counters::default(),
            }),
        }
    }

    /// This node's id.
    pub fn node(&self) -> NodeId {
        self.inner.node
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.inner.mode.lock().clone()
    }

    /// Follows the gate's events until the node stops: logs each, keeps the last
    /// [`EVENTS_KEPT`] for `/status`, flips the mode. Subscribe (`gate.subscribe()`) before
    /// the service starts taking writes so that no event is missed; a stream that lags
    /// re-reads the gate's status instead.
    pub async fn watch_events(self, mut events: EventStream) {
        // Events between `Service::new` and the subscription are covered by this resync.
        self.resync("subscribed");
        loop {
            match events.recv().await {
                Ok(event) => self.on_event(&event),
                Err(RecvError::Lagged { missed }) => self.resync(&format!("missed {missed} events")),
                Err(_) => break,
            }
        }
        self.set_mode(Mode::ReadOnly {
            why: "not quorate: the node is shut down".into(),
            since_mono_us: monotonic_us(),
        });
    }

    fn on_event(&self, event: &QuorumEvent) {
        let line = event_json(self.inner.node, event);
        {
            let mut kept = self.inner.events.lock();
            if kept.len() == EVENTS_KEPT {
                kept.pop_front();
            }
            kept.push_back(line.clone());
        }
        match event {
            QuorumEvent::QuorumLost { why, .. } => {
                let why = NotQuorate::new(why.clone()).to_string();
                tracing::warn!(node = self.inner.node.0, %why, "read-only");
                self.set_mode(Mode::ReadOnly { why, since_mono_us: monotonic_us() });
            }
            QuorumEvent::QuorumGained { epoch, .. } => {
                tracing::info!(node = self.inner.node.0, epoch = epoch.0, "writable");
                self.set_mode(Mode::Writable { epoch: epoch.0, since_mono_us: monotonic_us() });
            }
            _ => tracing::info!(node = self.inner.node.0, event = %line, "quorum event"),
        }
    }

    fn resync(&self, what: &str) {
        let mode = mode_from_gate(&self.inner.gate);
        tracing::info!(node = self.inner.node.0, ?mode, "{what}: mode from the gate's status");
        self.set_mode(mode);
    }

    fn set_mode(&self, mode: Mode) {
        *self.inner.mode.lock() = mode;
    }

    /// Stores `value` under `key` through the gate (see the module docs).
    pub async fn put(&self, key: String, value: String) -> Result<Written, WriteError> {
        let c = &self.inner.counters;
        let permit = match self.inner.gate_mode {
            GateMode::Bypass => None,
            GateMode::Enforce => {
                if let Mode::ReadOnly { why, .. } = self.mode() {
                    c.refused_read_only.fetch_add(1, Ordering::Relaxed);
                    return Err(WriteError::ReadOnly(why));
                }
                match self.inner.gate.permit() {
                    Ok(p) => Some(p),
                    Err(e) => {
                        c.refused_not_quorate.fetch_add(1, Ordering::Relaxed);
                        return Err(WriteError::NotQuorate(e));
                    }
                }
            }
        };
        let slot = match tokio::time::timeout(WRITE_QUEUE_WAIT, self.inner.slots.acquire()).await {
            Ok(Ok(slot)) => slot,
            _ => {
                c.refused_busy.fetch_add(1, Ordering::Relaxed);
                return Err(WriteError::Busy);
            }
        };
        let store = self.inner.store.clone();
        let done = tokio::task::spawn_blocking(move || {
            let guard = permit.as_ref().map_or(Guard::Bypass, Guard::Permit);
            store.put(&key, &value, guard)
        })
        .await;
        drop(slot);
        let result = match done {
            Ok(result) => result,
            // The blocking task panicked or was cancelled at shutdown: redb rolled back.
            Err(e) => Err(StoreError::Storage(format!("write task failed: {e}"))),
        };
        match result {
            Ok(written) => {
                c.acked.fetch_add(1, Ordering::Relaxed);
                Ok(written)
            }
            Err(e) => {
                let counter = match &e {
                    StoreError::Fenced(_) => &c.refused_at_commit,
                    StoreError::StaleEpoch { .. } => &c.refused_stale_epoch,
                    _ => &c.storage_errors,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                Err(WriteError::Store(e))
            }
        }
    }

    /// Reads `key` from the local database, whatever the quorum (see the crate docs on
    /// staleness).
    pub async fn get(&self, key: String) -> Result<Option<Record>, StoreError> {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || store.get(&key))
            .await
            .unwrap_or_else(|e| Err(StoreError::Storage(format!("read task failed: {e}"))))
    }

    /// Counts a request refused for bad input (for `/status`).
    pub fn count_bad_input(&self) {
        self.inner.counters.refused_input.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the gate says writable now (and `true` when it is bypassed).
    pub fn writable(&self) -> bool {
        self.inner.gate_mode == GateMode::Bypass || self.inner.gate.can_write()
    }

    /// The `/status` document.
    pub async fn status(&self) -> Value {
        let store = self.inner.store.clone();
        let stats = tokio::task::spawn_blocking(move || store.stats())
            .await
            .unwrap_or_else(|e| Err(StoreError::Storage(format!("stats task failed: {e}"))));
        let gate = self.inner.gate.status();
        let (mode, reason, since) = match self.mode() {
            Mode::Writable { epoch, since_mono_us } => ("writable", format!("epoch {epoch}"), since_mono_us),
            Mode::ReadOnly { why, since_mono_us } => ("read-only", why, since_mono_us),
        };
        let c = &self.inner.counters;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let store = match stats {
            Ok(Stats { keys, last_seq, max_epoch }) => json!({
                "keys": keys, "last_seq": last_seq, "max_epoch": max_epoch,
                "durability": durability_name(self.inner.durability),
            }),
            Err(e) => json!({ "error": e.to_string() }),
        };
        let events: Vec<Value> = self.inner.events.lock().iter().cloned().collect();
        json!({
            "node": self.inner.node.0,
            "mono_us": monotonic_us(),
            "mode": mode,
            "mode_reason": reason,
            "mode_since_mono_us": since,
            "gate": {
                "enforced": self.inner.gate_mode == GateMode::Enforce,
                "writable": gate.writable,
                "epoch": gate.epoch.0,
                "held_votes": gate.held_votes,
                "needed_votes": gate.needed_votes,
                "total_votes": gate.total_votes,
                "why_not": gate.why_not().map(|w| NotQuorate::new(w).to_string()),
            },
            "store": store,
            "writes": {
                "acked": n(&c.acked),
                "refused_read_only": n(&c.refused_read_only),
                "refused_not_quorate": n(&c.refused_not_quorate),
                "refused_at_commit": n(&c.refused_at_commit),
                "refused_stale_epoch": n(&c.refused_stale_epoch),
                "refused_busy": n(&c.refused_busy),
                "refused_bad_input": n(&c.refused_input),
                "storage_errors": n(&c.storage_errors),
            },
            "events": events,
        })
    }
}

/// The mode the gate's current status implies.
fn mode_from_gate(gate: &QuorumGate) -> Mode {
    let status = gate.status();
    let since_mono_us = monotonic_us();
    match status.why_not() {
        None => Mode::Writable { epoch: status.epoch.0, since_mono_us },
        Some(why) => Mode::ReadOnly { why: NotQuorate::new(why).to_string(), since_mono_us },
    }
}

/// `immediate` or `none`.
pub fn durability_name(d: Durability) -> &'static str {
    match d {
        Durability::Immediate => "immediate",
        Durability::None => "none",
    }
}
