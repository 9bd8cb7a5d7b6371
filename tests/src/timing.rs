//! The nodes' timing, the bounds the checker holds them to, and the shared clock.
//!
//! Every scenario runs the nodes with the LAN defaults, written explicitly into each node's
//! config file from [`Timing::LAN`], so that the bounds below and the nodes read the same
//! numbers.

use std::time::Duration;

/// Slack added to every real-time bound, because the processes and the nftables commands
/// are real: the harness reads the clock just before it starts `nft`, and the rule is in
/// force a few milliseconds later (one `ip netns exec nft` takes 3-20 ms, more on a loaded
/// 2-core machine). The nodes stamp their own events with their gate clock, so their
/// scheduling delays do not count here; this margin covers the harness's side.
pub const SCHEDULING_MARGIN: Duration = Duration::from_millis(150);

/// How long a healed node may take to be writable again, counted from the heal. After a
/// heal a fenced node needs one heartbeat out (up to one interval, 100 ms) and the peer's
/// acknowledgement back (carried by the peer's next heartbeat, up to another interval),
/// plus QUIC's loss recovery on a connection that lost packets during the cut: its next
/// probe, backed off exponentially while the link was down, may be a few hundred
/// milliseconds away. Measured: 0.04-0.13 s. Partitions here stay shorter than QUIC's idle
/// timeout (10 s), so no connection has to be re-established.
pub const HEAL_BOUND: Duration = Duration::from_secs(1);

/// How long a restarted process may take to be writable, counted from the moment the
/// harness starts it: process start, certificate loading, QUIC handshakes with every peer
/// (a peer still holding the dead connection of the previous life learns of the restart by
/// a stateless reset at its next packet, at the latest after one 1 s keep-alive), then one
/// heartbeat round trip. Measured: 0.1-0.2 s.
pub const REJOIN_BOUND: Duration = Duration::from_secs(3);

/// How long a node that came back at a new address under the same name may take to be
/// writable, counted from the moment the harness starts it:
///
/// ```text
///   MOVED_REJOIN_BOUND = REJOIN_BOUND + RECONNECT_BACKOFF_MAX = 3 s + 2 s = 5 s
/// ```
///
/// [`REJOIN_BOUND`] covers what any restart takes (process start, handshakes, a heartbeat
/// round trip). A peer that still holds the connection to the old address (it dialed it and
/// has the lower id; after a crash nothing closes it before QUIC's 10 s idle timeout) refuses
/// the new life's first dial as a duplicate, looks the name up again on that refusal, closes
/// the stale connection and dials the new address at once; if that chance is missed, the new
/// life's next dial comes within one `RECONNECT_BACKOFF_MAX` (2 s). The detection and the
/// lease do not add to it: the peers declared the node down while it was stopped, and a
/// node is writable as soon as a majority acknowledges its heartbeats. A transport that did
/// not look names up again would wait for the idle timeout: writable at the earliest
/// `10 s - downtime` after the start, past this bound for any downtime under 5 s.
pub const MOVED_REJOIN_BOUND: Duration = Duration::from_secs(5);

/// Heartbeat, failure detection and lease timing of every node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// How often each node heartbeats each peer.
    pub heartbeat_interval: Duration,
    /// A peer is never declared down sooner than this after it was last heard.
    pub down_after_min: Duration,
    /// How long an acknowledged heartbeat lends the peer's vote, from its send time.
    pub lease: Duration,
    /// Bound on clock rate error (rho), as a fraction: 0.01 is 1%.
    pub max_clock_drift: f64,
}

impl Timing {
    /// The LAN defaults of `quorate run`: heartbeat 100 ms, down floor 1 s, lease 900 ms,
    /// drift 1%.
    pub const LAN: Timing = Timing {
        heartbeat_interval: Duration::from_millis(100),
        down_after_min: Duration::from_secs(1),
        lease: Duration::from_millis(900),
        max_clock_drift: 0.01,
    };

    /// `preset = "wan"` of `quorate run`: heartbeat 250 ms, down floor 3 s, lease 2.5 s,
    /// drift 1%.
    pub const WAN: Timing = Timing {
        heartbeat_interval: Duration::from_millis(250),
        down_after_min: Duration::from_secs(3),
        lease: Duration::from_millis(2_500),
        max_clock_drift: 0.01,
    };

    /// The promised fencing delay, `lease x (1 + drift)` (guarantee G2), without margin.
    pub fn fence_promise(&self) -> Duration {
        quorate::fence_promise(self.lease, self.max_clock_drift)
    }

    /// What the checker accepts as fencing delay: the promise plus [`SCHEDULING_MARGIN`].
    pub fn fence_bound(&self) -> Duration {
        self.fence_promise() + SCHEDULING_MARGIN
    }

    /// The `[timing]` table of a node's config file.
    pub fn toml(&self) -> String {
        format!(
            "[timing]\nheartbeat_interval = \"{}ms\"\ndown_after_min = \"{}ms\"\nlease = \"{}ms\"\nmax_clock_drift = {}\n",
            self.heartbeat_interval.as_millis(),
            self.down_after_min.as_millis(),
            self.lease.as_millis(),
            self.max_clock_drift,
        )
    }
}

/// Microseconds of `CLOCK_MONOTONIC` now: the time base of the nodes' `at_us` stamps (the
/// nodes' own function), shared by every process on the machine (namespaces do not change it).
pub use quorate::clock::monotonic_us;

/// Microseconds as `Duration`.
pub fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// A span of microseconds in seconds with three decimals, e.g. `0.803 s`.
pub fn secs(span_us: i64) -> String {
    // i64 microseconds to f64 seconds: exact for any span a test can produce.
    format!("{:.3} s", span_us as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lan_fence_bound_is_lease_times_drift_plus_margin() {
        assert_eq!(Timing::LAN.fence_promise(), Duration::from_millis(909));
        assert_eq!(Timing::LAN.fence_bound(), Duration::from_millis(1_059));
    }

    #[test]
    fn timing_table_names_every_field_with_units() {
        let t = Timing::LAN.toml();
        assert!(t.contains("heartbeat_interval = \"100ms\""));
        assert!(t.contains("down_after_min = \"1000ms\""));
        assert!(t.contains("lease = \"900ms\""));
        assert!(t.contains("max_clock_drift = 0.01"));
    }
}
