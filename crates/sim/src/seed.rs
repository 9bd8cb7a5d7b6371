//! One seed derives every random choice of a run, through independent streams: scenario
//! choices, network choices, node seeds and clocks, and disk write delays never disturb
//! each other, so changing one fault does not reshuffle the rest.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The scenario: its network, fault schedule and setups.
pub const SCENARIO: u64 = 1;

/// The network: loss, duplication, delay and reordering of each message.
pub const NETWORK: u64 = 2;

/// The hosts: clock offsets and rates, wall clocks, link seeds, each life's core seed.
pub const NODES: u64 = 3;

/// How long each write to a node's disk takes to land.
pub const DISKS: u64 = 4;

/// The random stream number `stream` of `seed`.
pub fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}
