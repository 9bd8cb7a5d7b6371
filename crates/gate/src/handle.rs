//! [`QuorumGate`]: the handle a storage engine asks "may I write?", and [`WritePermit`].
//!
//! The hot path is two loads and a clock read: the core publishes the instant until which
//! its vote leases form a quorum in an atomic, and `can_write()` compares it with the
//! clock. No lock, no syscall (the clock is read through the vDSO). Because the check is
//! against the clock and not against a flag the core flips, it stays right when the core
//! has not run for a while: a process that was paused past its leases wakes fenced.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quorate_proto::{Instant, NodeId};
use tokio::sync::{broadcast, watch};

use crate::clock::Clock;
use crate::events::{EventStream, QuorumEvent};
use crate::status::{Epoch, NotQuorate, QuorumStatus, Why};

/// How often a reader retries when the core publishes a new epoch at the same moment.
/// Each retry means a concurrent publication finished, so more than a few never happen in
/// practice; past this bound the reader reports "not writable", which is always safe.
const SNAPSHOT_RETRIES_MAX: usize = 64;

/// State shared by a node's core (writer) and all gate handles (readers).
#[derive(Debug)]
pub(crate) struct Published {
    pub(crate) clock: Clock,
    /// Nanoseconds of `clock` until which the node may write; 0 when fenced.
    deadline: AtomicU64,
    /// The current epoch. Written before the deadline of its first quorum (see `publish`).
    epoch: AtomicU64,
    stopped: AtomicBool,
    /// This node's own votes under its definition (it changes with the definition).
    own_votes: AtomicU64,
    status: watch::Sender<QuorumStatus>,
    events: broadcast::WeakSender<QuorumEvent>,
}

impl Published {
    /// The shared state of a new gate, and the publisher that owns its event channel
    /// (subscribers see `Closed` once every publisher is gone).
    pub(crate) fn new(
        clock: Clock,
        epoch: Epoch,
        own_votes: u64,
        me: NodeId,
        event_capacity: NonZeroUsize,
    ) -> (Arc<Published>, Publisher) {
        let (events, _) = broadcast::channel(event_capacity.get());
        let shared = Arc::new(Published {
            clock,
            deadline: AtomicU64::new(0),
            epoch: AtomicU64::new(epoch.0),
            stopped: AtomicBool::new(false),
            own_votes: AtomicU64::new(own_votes),
            status: watch::Sender::new(QuorumStatus::empty(me)),
            events: events.downgrade(),
        });
        let publisher = Publisher { shared: shared.clone(), events };
        (shared, publisher)
    }

    /// This node's own votes from now on (its definition changed).
    pub(crate) fn set_own_votes(&self, votes: u64) {
        self.own_votes.store(votes, Ordering::Relaxed);
    }

    /// Publishes `deadline` under `epoch`.
    ///
    /// Ordering argument: a new epoch is only published while the deadline is in the past
    /// (the gate was fenced). The epoch is stored before the deadline, both with Release;
    /// a reader loads epoch, deadline, epoch with Acquire. If it sees a deadline of a newer
    /// epoch, the second epoch load sees that epoch too and the reader retries, so a reader
    /// never pairs a live deadline with an epoch it does not belong to.
    pub(crate) fn publish(&self, epoch: Epoch, deadline: Instant) {
        if self.epoch.load(Ordering::Relaxed) != epoch.0 {
            self.epoch.store(epoch.0, Ordering::Release);
        }
        self.deadline.store(deadline.as_nanos(), Ordering::Release);
    }

    pub(crate) fn fence(&self) {
        self.deadline.store(0, Ordering::Release);
    }

    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.fence();
    }

    /// A consistent (epoch, deadline) pair.
    fn snapshot(&self) -> (Epoch, Instant) {
        let mut epoch = self.epoch.load(Ordering::Acquire);
        for _ in 0..SNAPSHOT_RETRIES_MAX {
            let deadline = self.deadline.load(Ordering::Acquire);
            let again = self.epoch.load(Ordering::Acquire);
            if again == epoch {
                return (Epoch(epoch), Instant::from_nanos(deadline));
            }
            epoch = again;
        }
        (Epoch(epoch), Instant::ZERO)
    }
}

/// The writer side of a gate's status snapshots and events. The node's core decides both
/// and hands them out through its `poll_*` calls; the driver passes them on here, to every
/// [`QuorumGate::watch`] and [`QuorumGate::subscribe`] reader. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Publisher {
    shared: Arc<Published>,
    events: broadcast::Sender<QuorumEvent>,
}

impl Publisher {
    /// Sends `event` to every subscriber (none is fine; a full subscriber lags).
    pub fn event(&self, event: &QuorumEvent) {
        // No subscribers is not an error.
        let _ = self.events.send(event.clone());
    }

    /// Replaces the status snapshot readers see.
    pub fn status(&self, status: QuorumStatus) {
        self.shared.status.send_replace(status);
    }
}

/// The write fence of one node. Cheap to clone, `Send + Sync`; every clone sees the same
/// gate.
///
/// ```
/// # use quorate_gate::{Clock, Gate, GateConfig, TieBreaker, VoteTable};
/// # use quorate_detector::DetectorConfig;
/// # use quorate_proto::{Incarnation, NodeId};
/// # let votes = VoteTable::new([(NodeId(1), 1)], TieBreaker::None)?;
/// # let clock = Clock::system();
/// # let now = clock.now();
/// // A single-voter cluster holds quorum on its own; real nodes get the gate from the node.
/// let config = GateConfig::default().check(&DetectorConfig::default().check()?)?;
/// let (_core, gate) = Gate::new(config, votes, NodeId(1), Incarnation(1), clock, now);
/// let mut store = std::collections::BTreeMap::new();
/// if gate.can_write() {
///     let permit = gate.permit()?;           // Err(NotQuorate { why }) when fenced
///     store.insert("k", ("v", permit.epoch())); // the fencing epoch travels with the write
///     permit.check()?;                       // still the same stretch of quorum at commit?
/// }
/// assert_eq!(store.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct QuorumGate {
    shared: Arc<Published>,
}

impl QuorumGate {
    pub(crate) fn new(shared: Arc<Published>) -> Self {
        QuorumGate { shared }
    }

    /// Whether this node may write now: its own vote and the vote leases it holds form a
    /// quorum at this instant of the gate's clock. Lock-free; one clock read.
    #[inline]
    pub fn can_write(&self) -> bool {
        self.shared.clock.now().as_nanos() < self.shared.deadline.load(Ordering::Acquire)
    }

    /// A permit to write under the current epoch, or why not.
    pub fn permit(&self) -> Result<WritePermit, NotQuorate> {
        let (epoch, deadline) = self.shared.snapshot();
        if self.shared.clock.now() < deadline {
            Ok(WritePermit { epoch, valid_until: deadline, gate: self.clone() })
        } else {
            Err(self.not_quorate())
        }
    }

    /// The current fencing epoch (the last one if the node is fenced now).
    pub fn epoch(&self) -> Epoch {
        self.shared.snapshot().0
    }

    /// The latest status, with writability and held votes re-evaluated at this instant.
    pub fn status(&self) -> QuorumStatus {
        let (epoch, deadline) = self.shared.snapshot();
        let now = self.shared.clock.now();
        let snapshot = self.shared.status.borrow().clone();
        snapshot.refreshed(now, deadline, epoch, self.shared.own_votes.load(Ordering::Relaxed))
    }

    /// A receiver of status snapshots, updated when the quorum or a peer's state changes
    /// and at most once per heartbeat interval otherwise. Its time-dependent fields are as
    /// of publication; [`QuorumGate::status`] re-evaluates them.
    pub fn watch(&self) -> watch::Receiver<QuorumStatus> {
        self.shared.status.subscribe()
    }

    /// A bounded stream of [`QuorumEvent`]s from now on. A subscriber that falls behind
    /// sees `Lagged` and can catch up from [`QuorumGate::status`].
    pub fn subscribe(&self) -> EventStream {
        match self.shared.events.upgrade() {
            Some(tx) => EventStream::new(tx.subscribe()),
            // The node's core is gone: a stream that reports Closed at once.
            None => EventStream::new(broadcast::channel(1).1),
        }
    }

    /// The clock this gate checks leases against (the node's clock).
    pub fn clock(&self) -> &Clock {
        &self.shared.clock
    }

    fn not_quorate(&self) -> NotQuorate {
        if self.shared.stopped.load(Ordering::Acquire) {
            return NotQuorate::new(Why::Stopped);
        }
        NotQuorate::new(self.status().fence_reason())
    }
}

/// Leave to write under one fencing epoch. Store [`WritePermit::epoch`] with the write and
/// call [`WritePermit::check`] just before committing it.
#[derive(Debug, Clone)]
pub struct WritePermit {
    epoch: Epoch,
    valid_until: Instant,
    gate: QuorumGate,
}

impl WritePermit {
    /// The fencing epoch the write belongs to.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The lease deadline when the permit was issued. The permit stays good past it if the
    /// leases were renewed in the meantime without a break; [`WritePermit::check`] decides.
    pub fn valid_until(&self) -> Instant {
        self.valid_until
    }

    /// Time left until [`WritePermit::valid_until`], zero once past.
    pub fn remaining(&self) -> Duration {
        self.valid_until - self.gate.shared.clock.now()
    }

    /// Ok if the node is still writable under the permit's epoch: quorum has held without
    /// a break since the permit was issued.
    pub fn check(&self) -> Result<(), NotQuorate> {
        let (epoch, deadline) = self.gate.shared.snapshot();
        if epoch != self.epoch {
            return Err(NotQuorate::new(Why::EpochChanged { permit: self.epoch, current: epoch }));
        }
        if self.gate.shared.clock.now() < deadline {
            Ok(())
        } else {
            Err(self.gate.not_quorate())
        }
    }
}
