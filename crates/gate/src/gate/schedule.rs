//! Which lease an ack gives: the one in force when the acked heartbeat was sent.
//!
//! A peer raises its floor for this node to what the lease in a heartbeat's terms needs
//! before it acks that heartbeat, so an ack vouches for the lease the acked heartbeat
//! carried, not for whatever lease this node runs when the ack arrives. After the lease
//! grows online (`lan` -> `wan`), an ack of a heartbeat sent before the switch still
//! gives the old, shorter lease: the peer may have acked it without having seen the longer
//! terms. After it shrinks, an ack of an earlier heartbeat gives the old, longer one, which
//! the peer's floor covers (floors only grow within its life). A heartbeat sent at the very
//! instant of a switch may carry either terms, so it gives the shorter of the two.
//!
//! ```text
//!   since:  0 ────────── t1 ─────────── t2 ──────────►
//!   lease:      900 ms   │   2.5 s      │   900 ms
//!   an ack of a heartbeat sent at t1 exactly: min(900 ms, 2.5 s)
//! ```

use std::time::Duration;

use quorate_proto::Instant;

/// Switches remembered; beyond it the two oldest merge into the shorter of their leases
/// (an ack that old can only ever get less than it might have, never more).
pub(crate) const SCHEDULE_MAX: usize = 16;

/// The leases in force since given instants, oldest first; never empty.
#[derive(Debug, Clone)]
pub(crate) struct LeaseSchedule {
    entries: Vec<(Instant, Duration)>,
}

impl LeaseSchedule {
    /// `lease` for every heartbeat sent so far.
    pub(crate) fn new(lease: Duration) -> Self {
        LeaseSchedule { entries: vec![(Instant::ZERO, lease)] }
    }

    /// The lease in force now, for heartbeats sent from now on.
    pub(crate) fn current(&self) -> Duration {
        self.entries.last().map_or(Duration::ZERO, |e| e.1)
    }

    /// Heartbeats sent from `now` on carry `lease`.
    pub(crate) fn switch(&mut self, now: Instant, lease: Duration) {
        if self.current() == lease {
            return;
        }
        // Several switches at one instant stay separate entries: a heartbeat sent at that
        // instant may carry any of them, and `lease_for` takes the shortest.
        self.entries.push((now, lease));
        if self.entries.len() > SCHEDULE_MAX {
            let merged = self.entries[0].1.min(self.entries[1].1);
            self.entries.remove(1);
            self.entries[0].1 = merged;
        }
    }

    /// The lease an ack of a heartbeat sent at `sent_at` gives.
    pub(crate) fn lease_for(&self, sent_at: Instant) -> Duration {
        let mut lease = self.entries[0].1;
        for &(since, l) in &self.entries[1..] {
            if since < sent_at {
                lease = l;
            } else if since == sent_at {
                lease = lease.min(l);
            } else {
                break;
            }
        }
        lease
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    const LAN: Duration = Duration::from_millis(900);
    const WAN: Duration = Duration::from_millis(2_500);

    #[test]
    fn an_ack_gives_the_lease_its_heartbeat_was_sent_under_and_the_shorter_at_a_switch() {
        let mut s = LeaseSchedule::new(LAN);
        s.switch(at(1_000), WAN);
        s.switch(at(5_000), LAN);
        assert_eq!(s.current(), LAN);
        assert_eq!(s.lease_for(at(999)), LAN);
        assert_eq!(s.lease_for(at(1_000)), LAN, "sent at the switch: the shorter");
        assert_eq!(s.lease_for(at(1_001)), WAN);
        assert_eq!(s.lease_for(at(4_999)), WAN);
        assert_eq!(s.lease_for(at(5_000)), LAN);
        assert_eq!(s.lease_for(at(9_000)), LAN);
        s.switch(at(9_000), LAN);
        assert_eq!(s.entries.len(), 3, "no switch to the lease in force");
    }

    #[test]
    fn switches_at_one_instant_give_the_shortest_and_the_schedule_stays_bounded() {
        let mut s = LeaseSchedule::new(LAN);
        s.switch(at(10), Duration::from_millis(500));
        s.switch(at(10), Duration::from_secs(2));
        assert_eq!(s.lease_for(at(10)), Duration::from_millis(500));
        assert_eq!(s.lease_for(at(11)), Duration::from_secs(2));
        let mut s = LeaseSchedule::new(WAN);
        s.switch(Instant::ZERO, LAN);
        assert_eq!((s.lease_for(Instant::ZERO), s.lease_for(at(1))), (LAN, LAN));
        let mut s = LeaseSchedule::new(WAN);
        for i in 1..100u64 {
            s.switch(at(i * 10), if i % 2 == 0 { WAN } else { LAN });
        }
        assert!(s.entries.len() <= SCHEDULE_MAX);
        assert_eq!(s.lease_for(at(5)), LAN, "merged into the shorter");
        assert_eq!(s.lease_for(at(991)), LAN);
        assert_eq!(s.lease_for(at(985)), WAN);
    }
}
