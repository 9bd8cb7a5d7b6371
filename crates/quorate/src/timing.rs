//! Timing presets changed while the cluster runs (`quorate config set timing.preset=wan`).
//!
//! ```text
//!   admin POST /config timing.preset ──► core.propose_timing(name) ──► persist ──► adopt ──┐
//!   a peer runs a later definition   ──► poll_adopt ──► persist ──► adopt ─────────────────┤
//!                                                    names another preset than before? ◄───┘
//!                                                    └─► core.set_timing(preset's parts)
//!   start: the kept definition names a preset ──► the file's [timing] is set aside for it
//! ```
//!
//! What wins: a preset named online replaces the file's `[timing] preset` and every
//! explicit `[timing]` field (logged once, at the switch and at each start), because the
//! point of an online preset is that every node runs the same terms. The drift bound
//! (`timing.max_clock_drift`) stays the file's: it describes this host's clock, and the
//! core refuses to change it while running. The `[gossip]` section stays the file's.

use std::time::Duration;

use quorate_core::GossipConfig;
use quorate_detector::DetectorConfig;
use quorate_gate::GateConfig;
use quorate_proto::{Instant, Roster};

use crate::config::Config;

/// The presets a definition may name.
pub const TIMING_PRESETS: [&str; 2] = ["lan", "wan"];

/// The heartbeat and detector settings and the lease of preset `name`; `None` for a name
/// this build does not know.
pub(crate) fn preset(name: &str) -> Option<(DetectorConfig, Duration)> {
    match name {
        "lan" => Some((DetectorConfig::lan(), GateConfig::default().lease)),
        "wan" => Some((DetectorConfig::wan(), Duration::from_millis(2_500))),
        _ => None,
    }
}

/// `config` with preset `name`'s timing in place of the file's (see the module docs).
/// Unknown names leave it as it is (a definition names only presets its proposer knew,
/// and that proposer's build checked the name).
pub(crate) fn with_preset(mut config: Config, name: &str) -> Config {
    if let Some((detector, lease)) = preset(name) {
        config.detector = detector;
        config.gate.lease = lease;
    }
    config
}

/// The node's own settings a preset does not replace: the gate's (drift bound,
/// tie-breaker, `wait_for_all`) and gossip's.
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    pub(crate) gate: GateConfig,
    pub(crate) gossip: GossipConfig,
}

/// After `core` adopted `roster`: if it names another preset than `before`, the core runs
/// that preset's timing from `now`. Logged either way.
pub(crate) fn follow(
    core: &mut quorate_core::Node,
    kept: &Kept,
    before: Option<&str>,
    roster: &Roster,
    now: Instant,
) {
    let Some(name) = roster.timing.as_deref().filter(|name| Some(*name) != before) else { return };
    let Some((detector, lease)) = preset(name) else {
        tracing::warn!(
            version = roster.version,
            preset = name,
            "definition names a timing preset this build \
            does not know; the timing in force stays"
        );
        return;
    };
    let gate = GateConfig { lease, ..kept.gate.clone() };
    match core.set_timing(now, detector, gate, kept.gossip.clone()) {
        Ok(()) => {
            let t = core.timing();
            tracing::info!(version = roster.version, preset = name, lease = ?t.lease,
                heartbeat_interval = ?t.heartbeat_interval, down_after_min = ?t.down_after_min,
                "timing preset in force from this definition; the configuration file's [timing] settings \
                 are set aside (its max_clock_drift stays)");
        }
        Err(e) => tracing::warn!(version = roster.version, preset = name, error = %e,
            "the timing preset cannot run with this node's settings; the timing in force stays"),
    }
}
