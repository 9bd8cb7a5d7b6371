//! The state of a simulated cluster at one instant: every host, the network, who can reach
//! a quorum, the model the cores are held to, the timeline and the ack ledger. The event
//! loop ([`crate::sim`]) changes it one step at a time; the checkers ([`crate::invariants`])
//! only read it.

use crate::acks::AckLedger;
use crate::host::Host;
use crate::model::{Model, Quorum};
use crate::net::Net;
use crate::reach::{NodeReach, Reach};
use crate::setup::Preset;
use crate::timeline::Timeline;
use crate::versions::Running;

/// The state every checker may read.
#[derive(Debug)]
pub struct World {
    /// Real time, ns since the start of the run.
    pub now: u64,
    /// One host per node, index = node id - 1.
    pub hosts: Vec<Host>,
    /// The network.
    pub net: Net,
    /// Who can exchange with a quorum, since when.
    pub reach: Reach,
    /// Timing, quorum arithmetic and bounds.
    pub model: Model,
    /// Everything that happened.
    pub timeline: Timeline,
    /// Which heartbeats were sent and acked, as the wire saw them.
    pub acks: AckLedger,
    /// Events dispatched so far: orders steps that share an instant.
    pub step: u64,
}

impl World {
    /// The quorum arithmetic of the definition node `i` runs.
    pub fn quorum_of(&self, i: usize) -> &Quorum {
        self.model.quorum(self.hosts[i].setup.definition)
    }

    /// Every node with what the network allows it, for the liveness checkers (no false
    /// fence, heal): in runs where every node runs one definition throughout, and none in
    /// others, where nodes on different definitions deliberately refuse each other's votes.
    pub fn reach_for_liveness(&self) -> impl Iterator<Item = (usize, &NodeReach)> {
        let judged = if self.model.uniform { self.hosts.len() } else { 0 };
        (0..judged).map(|i| (i, self.reach.node(i)))
    }

    /// The definition node `i` runs, at its version.
    pub fn running(&self, i: usize) -> Running {
        self.hosts[i].running()
    }

    /// Fencing deadline of node `i` after a cut at real time `c`: the model's bound
    /// ([`Model::fence_deadline`]) for the preset it runs, or for a preset it replaced
    /// online if that one's is later. A vote lent under a replaced preset lasts its lease
    /// from a heartbeat sent before the switch and before the cut: from `min(c, switch)`.
    pub fn fence_deadline(&self, i: usize, c: u64) -> u64 {
        let host = &self.hosts[i];
        let own = self.model.fence_deadline(host.setup.preset, c);
        let before = host.replaced.iter().map(|&(until, p)| self.model.fence_deadline(p, c.min(until)));
        before.fold(own, u64::max)
    }

    /// The timing preset node `i` runs.
    pub fn preset_of(&self, i: usize) -> Preset {
        self.hosts[i].setup.preset
    }
}
