//! Each simulated host has a disk that survives crashes: every life starts from what its
//! earlier lives recorded, a write lands only after the disk's delay, and a crash loses a
//! write that has not landed. The core must never lean on a write it was not told of.

use std::time::Duration;

use quorate_core::Promises;
use quorate_proto::NodeId;
use quorate_sim::clock::MS;
use quorate_sim::{Fault, Scenario, Scheduled, Sim};

/// What a node of the default configuration owes once it heard a peer of the same: the
/// 400 ms fence hold, and a floor of 900 ms x 1.01 / 0.99 = 918.182 ms (rounded up to
/// the microsecond).
const LAN: Promises =
    Promises { ack_hold: Duration::from_millis(400), floor: Duration::from_micros(918_182) };

fn sim(s: Scenario, seed: u64) -> Sim {
    Sim::new(s, seed).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_disk_records_the_promises_and_outlives_a_crash() {
    let s = Scenario::named("rolling-restart-7", 3, None, None).unwrap_or_else(|e| panic!("{e}"));
    let first_crash = s.faults.first().map_or(0, |f| f.at);
    assert!(matches!(s.faults.first().map(|f| &f.fault), Some(Fault::Crash { node: 0 })));
    let mut sim = sim(s, 3);
    assert_eq!(sim.run_until(first_crash - MS), None);
    assert!(sim.world.hosts.iter().all(|h| h.disk == LAN), "every node recorded its promises");
    assert_eq!(sim.run_until(first_crash + MS), None);
    let n1 = &sim.world.hosts[0];
    assert!(n1.life.is_none(), "n1 is down");
    assert_eq!(n1.disk, LAN, "the disk survives the crash");
}

/// Writes take up to half a second; n1 crashes 1 ms into the run and restarts at 100 ms.
/// Its first write is lost; and no node's vote is held by a peer while its disk does not
/// yet record the floor it owes that peer.
#[test]
fn a_write_that_has_not_landed_is_lost_and_nothing_leans_on_it() {
    for seed in 0..8 {
        let mut s =
            Scenario::named("clean-split-5", seed, None, Some(1_500 * MS)).unwrap_or_else(|e| panic!("{e}"));
        s.faults = vec![
            Scheduled { at: MS, fault: Fault::Crash { node: 0 } },
            Scheduled { at: 100 * MS, fault: Fault::Restart { node: 0 } },
        ];
        s.disk_delay_max = 500 * MS;
        let mut sim = sim(s, seed);
        assert_eq!(sim.run_until(MS), None);
        assert_eq!(sim.world.hosts[0].disk, Promises::default(), "seed {seed}: the write under way was lost");
        let mut lent = 0;
        for ms in 2..1_500 {
            assert_eq!(sim.run_until(ms * MS), None);
            let w = &sim.world;
            for (a, b) in (0..5).flat_map(|a| (0..5).map(move |b| (a, b))).filter(|(a, b)| a != b) {
                let holder = &w.hosts[b];
                let until = holder.life.as_ref().and_then(|l| l.node.lease_until(NodeId(a as u64 + 1)));
                if until.is_some_and(|u| u > holder.local(w.now)) {
                    lent += 1;
                    assert!(
                        w.hosts[a].disk.floor >= LAN.floor,
                        "seed {seed}: n{} holds n{}'s vote at {ms} ms while n{}'s disk records {:?}",
                        b + 1,
                        a + 1,
                        a + 1,
                        w.hosts[a].disk
                    );
                }
            }
        }
        assert!(lent > 0, "seed {seed}: votes are lent once the writes landed");
    }
}
