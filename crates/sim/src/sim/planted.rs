//! The bugs tests plant at a node's edge ([`crate::Bug`]), so a test can show the checker
//! aimed at each one reports the run: acks forged or withheld on the way into the core,
//! and a phantom fence announcement added to what the node announces.

use quorate_gate::QuorumEvent;
use quorate_proto::{Ack, Heartbeat, NodeId};

use super::Sim;
use crate::faults::Bug;
use crate::host::ProcessState;
use crate::invariants::StepKind;
use crate::timeline::What;
use crate::wire::{encode_heartbeat, Carry};

impl Sim {
    /// The heartbeat `hb` from `from` as node `to`'s planted bug hands it to the core
    /// ([`Bug::ForgedAck`], [`Bug::DeafToAcks`]), re-encoded; `None` to hand it as it came.
    pub(super) fn plant_ack_bug(
        &self,
        to: usize,
        from: usize,
        mut hb: Heartbeat,
        carry: Carry,
    ) -> Option<Vec<u8>> {
        let now = self.world.now;
        let bug = self.scenario.bugs.iter().find(|b| {
            matches!(**b, Bug::ForgedAck { node, since } | Bug::DeafToAcks { node, since } if node == to && now >= since)
        })?;
        match bug {
            Bug::ForgedAck { .. } => {
                let life = self.world.hosts[to].life.as_ref()?;
                let last = self.world.acks.last_sent(to, from)?;
                hb.ack = Some(Ack { incarnation: life.incarnation, seq: last.seq });
            }
            _ => hb.ack = None,
        }
        encode_heartbeat(hb, carry, self.cluster)
    }

    /// Sets off a planted [`Bug::PhantomFence`]: voter `from` is sending `to` an ack that
    /// will give it a live lease while it cannot write.
    pub(super) fn arm_phantom(&mut self, from: usize, to: usize, hb: &Heartbeat) {
        let now = self.world.now;
        let Some((node, since)) = self.scenario.bugs.iter().find_map(|b| match *b {
            Bug::PhantomFence { node, peer, since } if peer == to => Some((node, since)),
            _ => None,
        }) else {
            return;
        };
        let host = &self.world.hosts[to];
        let fresh = self.world.acks.lookup(to, from, hb).is_some_and(|s| s.local + s.lease > host.local(now));
        if now >= since && fresh && self.world.quorum_of(to).is_voter(from) && !host.can_write_at(now) {
            self.phantom_done = true;
            self.phantom = Some((node, to));
        }
    }

    /// Node `node` announces `peer` fenced although no fence check ran and nobody holds
    /// acks back ([`Bug::PhantomFence`]): the event is added to the node's stream as if its
    /// core had emitted it, and the checkers see it as one more step of the node.
    pub(super) fn announce_phantom(&mut self, node: usize, peer: usize) {
        let now = self.world.now;
        let host = &self.world.hosts[node];
        if host.process_state() != ProcessState::Running {
            return;
        }
        let at = host.set_clock(now);
        let event = QuorumEvent::PeerFenced {
            peer: NodeId(peer as u64 + 1),
            confirmed_by: Vec::new(),
            at,
            check_started: at,
        };
        self.world.timeline.record(now, What::Fenced { node, peer }, &[]);
        self.check_step(node, StepKind::Timer, vec![event]);
    }
}
