//! Definitions changed while the nodes run ([`Fault::Adopt`]): the steps of an online
//! membership change, each node taking a step at its own moment (as a change spreads),
//! raced by partitions and pauses.
//!
//! | name | cluster | what changes |
//! |---|---|---|
//! | `grow-online-5` | n1-n3 on {n1,n2,n3}; n4 on four, n5 on five members (strict majority throughout) | n1-n3 adopt four members, then n1-n4 five, then n2-n5 drop n1 (which is not told); a random partition or pause races each step |
//!
//! Each step is a safe successor of the one before (`quorate_proto::succession`): strict
//! majority throughout, one voter added or removed per step. Every checker judges each node
//! under the definition it runs at that step.
//!
//! This scenario showed the fencing bound's ground truth too strict: a node may be writable
//! on leases that voters lent it at different moments (one before a partition, one that
//! adopted the same definition after it), which a cut measured by the voters reached at one
//! instant calls a violation. The cut now counts from the last instant at which the voters
//! in contact since then formed a quorum ([`crate::reach`]); the lease argument of G2 is
//! exactly that.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::episodes::{at, ms_between, push};
use super::scenario::{Scenario, ScenarioError};
use crate::clock::SEC;
use crate::faults::Fault;
use crate::seed::{stream, SCENARIO};
use crate::setup::{Definition, Preset, Setup, Tie};

/// The names this module builds.
pub const ONLINE: &[&str] = &["grow-online-5"];

/// The scenario `name` for `seed`, or `None` if `name` is not one of [`ONLINE`].
pub(super) fn named(
    name: &str,
    seed: u64,
    nodes: Option<usize>,
    duration: Option<u64>,
) -> Option<Result<Scenario, ScenarioError>> {
    if name != "grow-online-5" {
        return None;
    }
    let n = match ScenarioError::check_size(name, nodes, 5, 5, 5) {
        Ok(n) => n,
        Err(e) => return Some(Err(e)),
    };
    let mut rng = stream(seed, SCENARIO);
    let mut s = Scenario::plain(name, n, n, duration.unwrap_or(26 * SEC));
    s.defaults = (5, 26 * SEC);
    grow(&mut s, &mut rng);
    Some(Ok(s))
}

/// 3 -> 4 -> 5 members, then n1 removed, each step taken by the nodes in random order
/// within half a second, with a partition or a pause racing it.
fn grow(s: &mut Scenario, rng: &mut ChaCha8Rng) {
    s.definitions = vec![
        Definition::voters(&[0, 1, 2], Tie::None),
        Definition::voters(&[0, 1, 2, 3], Tie::None),
        Definition::voters(&[0, 1, 2, 3, 4], Tie::None),
        Definition::voters(&[1, 2, 3, 4], Tie::None),
    ];
    let on = |definition| Setup { preset: Preset::Lan, definition };
    s.setups = vec![on(0), on(0), on(0), on(1), on(2)];
    let steps: [(usize, &[usize]); 3] = [(1, &[0, 1, 2]), (2, &[0, 1, 2, 3]), (3, &[1, 2, 3, 4])];
    let mut t = at(3_000);
    for (definition, nodes) in steps {
        let mut order = nodes.to_vec();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        for node in order {
            push(&mut s.faults, t + ms_between(rng, 0, 500), Fault::Adopt { node, definition });
        }
        // A fault racing the step: a partition of a random side, or a pause.
        let race = t + ms_between(rng, 0, 600);
        if rng.random_bool(0.5) {
            let mut side: Vec<usize> = (0..5).filter(|_| rng.random_bool(0.5)).collect();
            if side.is_empty() || side.len() == 5 {
                side = vec![rng.random_range(0..5)];
            }
            let rest: Vec<usize> = (0..5).filter(|i| !side.contains(i)).collect();
            push(&mut s.faults, race, Fault::Partition { groups: vec![side, rest] });
            push(&mut s.faults, race + ms_between(rng, 500, 2_500), Fault::Heal);
        } else {
            let node = rng.random_range(0..5);
            push(&mut s.faults, race, Fault::Pause { node });
            push(&mut s.faults, race + ms_between(rng, 300, 2_000), Fault::Resume { node });
        }
        t += at(7_000);
    }
}
