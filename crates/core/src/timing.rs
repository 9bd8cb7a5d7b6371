//! A node's timing changed while it runs (`quorate config set timing.preset=wan`):
//! heartbeat interval, detector, lease and gossip switch at one instant, and nothing the
//! node promised before is shortened. `docs/reconfiguration.md` ("Timing changes") gives
//! the argument; in short:
//!
//! ```text
//!   set_timing(now, detector, gate, gossip)   checked together, as Config::check does
//!     terms (lease) in heartbeats sent from now ──► peers raise their floor before acking
//!     gate: an ack gives the lease its heartbeat was sent under (the shorter at `now`)
//!     detector: floors peers' terms raised stay; down_after_min, phi, window move
//!     fencer: new checks use the new hold; the ledger keeps the longer hold on record
//!             until every yes given under it has expired
//!     links: send-time logs sized for the longer lease and the shorter interval
//! ```

use std::time::Duration;

use quorate_detector::DetectorConfig;
use quorate_gate::GateConfig;
use quorate_gossip::GossipConfig;
use quorate_proto::Instant;

use crate::config::CoreConfigError;
use crate::node::{sent_log_len, Node};

/// The timing a node runs now, for status pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunningTiming {
    /// Between two heartbeats to a peer.
    pub heartbeat_interval: Duration,
    /// What this node's heartbeats ask of their acks (its terms).
    pub lease: Duration,
    /// Its own floor: no peer called down sooner after it was last heard (a peer whose
    /// lease needs more gets more).
    pub down_after_min: Duration,
    /// What a fence-check yes promises (zero when gossip is off).
    pub fence_hold: Duration,
}

impl Node {
    /// The timing in force.
    pub fn timing(&self) -> RunningTiming {
        RunningTiming {
            heartbeat_interval: self.interval,
            lease: self.gate.lease(),
            down_after_min: self.detector.config().down_after_min,
            fence_hold: self.gossip.as_ref().map_or(Duration::ZERO, |s| s.fencer.promised_hold()),
        }
    }

    /// Runs new timing from `now` on, without a restart: `detector` (heartbeat interval,
    /// down floor, phi thresholds, window), `gate.lease` and `gossip` (interval,
    /// `fresh_for`, fence timeout and hold). They are checked together as
    /// [`crate::Config::check`] checks them, and nothing changes when a rule is broken.
    ///
    /// Not changed here: the gate's tie-breaker, `wait_for_all` and event capacity (the
    /// definition and the start decide those), whether gossip is on (as the node
    /// started), and `gate.max_clock_drift`, which describes the clocks rather than a
    /// choice of timing: a different value is refused ([`CoreConfigError::DriftChanged`]).
    ///
    /// Leases held keep their end; an ack gives the lease that was in force when the
    /// heartbeat it acks was sent (a longer lease only once the peer has seen the terms
    /// that carry it). Floors the peers' terms raised stay; a fence hold already promised
    /// stays on record until it expires. A stopped node ignores the call.
    pub fn set_timing(
        &mut self,
        now: Instant,
        detector: DetectorConfig,
        gate: GateConfig,
        gossip: GossipConfig,
    ) -> Result<(), CoreConfigError> {
        let now = self.advance(now);
        if gate.max_clock_drift != self.drift {
            return Err(CoreConfigError::DriftChanged { running: self.drift, asked: gate.max_clock_drift });
        }
        let enabled = self.gossip.is_some();
        let detector = detector.check()?;
        let gate = gate.check(&detector)?;
        let gossip = GossipConfig { enabled, ..gossip }.check(self.drift)?;
        if self.stopped {
            return Ok(());
        }
        let (old_lease, old_interval) = (self.gate.lease(), self.interval);
        let interval = detector.heartbeat_interval;
        // Heartbeats from now carry the new terms, and acks of them give the new lease.
        self.terms.lease_us = u32::try_from(gate.lease.as_micros()).unwrap_or(u32::MAX);
        self.gate.set_lease(now, gate.lease);
        self.detector.set_config(now, detector);
        if let Some(s) = self.gossip.as_mut() {
            s.fencer.set_config(&gossip, self.drift);
            self.ledger.set_own_hold(now, gossip.fence_hold);
            s.gossiper.set_config(now, gossip);
        }
        // An ack may still name a heartbeat sent under the old lease and interval.
        let log_len = sent_log_len(old_lease.max(gate.lease), old_interval.min(interval));
        for link in self.links.values_mut().chain(self.former_links.values_mut()) {
            link.resize_sent_log(log_len);
        }
        self.interval = interval;
        self.next_heartbeat = self.next_heartbeat.min(now.saturating_add(interval));
        self.announce.set_interval(interval);
        self.status_clock.set_every(interval);
        self.counters.timing_changes += 1;
        self.apply_detector_events(now);
        self.settle(now);
        Ok(())
    }
}
