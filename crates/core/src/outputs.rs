//! What a node hands its driver: messages to send, and when its status is worth
//! publishing again.

use std::collections::VecDeque;

use std::time::Duration;

use quorate_proto::{Instant, NodeId};

/// Datagrams waiting for the driver before the oldest is dropped. A heartbeat round queues
/// one per peer; a driver that polls after every call never comes near this.
pub const TRANSMIT_QUEUE_MAX: usize = 65_536;

/// A message for the driver to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The peer to send it to.
    pub to: NodeId,
    /// The encoded message.
    pub payload: Vec<u8>,
    /// How to send it.
    pub delivery: Delivery,
}

/// How the driver sends a [`Transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// As an unreliable datagram; dropped rather than queued if it cannot go now.
    Datagram,
    /// As a request on a reliable stream with a short deadline: a direct poll of a
    /// suspect peer, a gossip exchange or a fence query. The peer answers through
    /// `Node::handle_request`; hand its reply to `Node::handle_reply`. No reply by the
    /// deadline: do nothing.
    Request,
}

/// The queue of [`Transmit`]s: when full, the oldest goes (the driver is not draining, and
/// the oldest message is the least useful).
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    queue: VecDeque<Transmit>,
}

impl Outbox {
    pub(crate) fn push(&mut self, t: Transmit) {
        if self.queue.len() >= TRANSMIT_QUEUE_MAX {
            self.queue.pop_front();
        }
        self.queue.push_back(t);
    }

    pub(crate) fn request(&mut self, to: NodeId, payload: Vec<u8>) {
        self.push(Transmit { to, payload, delivery: Delivery::Request });
    }

    pub(crate) fn pop(&mut self) -> Option<Transmit> {
        self.queue.pop_front()
    }
}

/// When the status is worth publishing again.
#[derive(Debug)]
pub(crate) struct StatusClock {
    every: Duration,
    dirty: bool,
    published: Option<Instant>,
    /// The gossiper's count of partition-view changes last seen.
    view_changes: u64,
}

impl StatusClock {
    pub(crate) fn new(every: Duration) -> Self {
        StatusClock { every, dirty: true, published: None, view_changes: 0 }
    }

    /// Publishes at least every `every` from now on (the heartbeat interval changed).
    pub(crate) fn set_every(&mut self, every: Duration) {
        self.every = every;
        self.dirty = true;
    }

    /// Something material changed.
    pub(crate) fn touch(&mut self) {
        self.dirty = true;
    }

    /// Gossip's partition view has changed `view_changes` times so far.
    pub(crate) fn saw_view_changes(&mut self, view_changes: u64) {
        if self.view_changes != view_changes {
            self.view_changes = view_changes;
            self.dirty = true;
        }
    }

    /// Whether to publish at `now` (and, if so, counts it as published).
    pub(crate) fn due(&mut self, now: Instant) -> bool {
        let due = self.dirty || self.published.is_none_or(|at| now >= at + self.every);
        if due {
            self.dirty = false;
            self.published = Some(now);
        }
        due
    }
}
