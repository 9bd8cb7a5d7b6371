//! Real-process partition tests: several `quorate run` processes in a private network
//! namespace, faults injected by the kernel (nftables) and by signals, and a checker that
//! reads the nodes' own event logs, the way Jepsen tests real databases.
//!
//! ```text
//!   harness ── ip netns add qe2e-<pid>-<scenario> ──► namespace with only `lo`
//!      │          quorate run --config node-N.toml   (127.0.0.1:700N QUIC, :900N admin)
//!      │          nft -f -   (table inet qe2e, input hook: drop by udp sport/dport, numgen)
//!      │          SIGSTOP / SIGCONT / SIGKILL / SIGTERM, restart
//!      ▼
//!   events-N.jsonl (at_us: CLOCK_MONOTONIC µs) + harness marks ──► checker ──► report
//! ```
//!
//! Run it with `cargo test -p quorate-e2e --test netns` (one scenario:
//! `... --test netns -- clean-split-5`; `-- --list` lists them). It needs root, `ip`
//! (iproute2) and `nft` (nftables); without them every scenario is reported SKIPPED with
//! the reason under a warning banner, and the run exits 0 with `0 passed, 0 failed, K
//! skipped`, unless `QUORATE_E2E_REQUIRED=1` (CI sets it): then every scenario that cannot
//! run is a failure and the run exits 1. `tc netem` is not used. `QE2E_KEEP=1` keeps the configs, event logs and node stderr under
//! `$TMPDIR/qe2e-<pid>/`; `QE2E_SEED=N` replays the flapping scenario.
//!
//! **The binary under test** is the `quorate` command (`quorate_cli::main`, called from
//! `tests/bin/node.rs`) as this package's `quorate-e2e-node` target, found through
//! `CARGO_BIN_EXE_*`: cargo builds it, in the test's profile, whenever the sources changed,
//! so the suite never runs a missing or stale binary of another package. The
//! `kv-writes-split-5` scenario runs the example key-value service instead (`quorate-kv`,
//! `quorate_kv::cli::main` called from `tests/bin/kv.rs`, as the `quorate-e2e-kv` target,
//! found the same way), drives writes against it from threads
//! that enter the namespace, and checks the answers against every node's database
//! ([`kv`]). The `failover-*` scenarios run the failover example (`quorate-failover` from
//! `crates/failover-example/src/main.rs`, as `quorate-e2e-failover`): three nodes on one
//! shared directory, the active one cut off or paused, with the gate and without; the
//! no-gate scenarios pass only if the checker finds the split brain ([`failover`]).
//!
//! **Members by name.** `moved-peer` puts each node in a namespace of its own on a bridge
//! ([`bridge`]), the members named in per-namespace hosts files, and moves a stopped node to
//! a new namespace and address under the same name: it must be writable again within
//! [`timing::MOVED_REJOIN_BOUND`] while the others never fence.
//!
//! **Online membership changes.** `grow-3-to-5-flapping`, `replace-killed-node-kv` and
//! `refused-unsafe-change` make changes the way an operator does: `quorate members ...` and
//! `quorate config set ...` run inside the namespace against a member's admin endpoint
//! ([`cluster::Operator`]; changes are accepted from loopback only), each new node started
//! on a file that lists the members after its change ([`spec::Spec::file_of`]). A change
//! refused as `pending` or `behind` is retried for a bounded time; anything else that does
//! not exit 0 fails the scenario. The flapping link is cut and reopened by a thread of its
//! own while the changes run.
//!
//! **Bad input.** In `clean-split-5` a thread inside the namespace floods nodes 1 and 3's
//! QUIC ports with garbage, forged QUIC Initials and short-header packets from before the
//! cut until after the heal ([`flood`]); every decision must be the one of a quiet run.
//!
//! **Clean exit.** At the end of every scenario each running node gets SIGTERM and must
//! exit 0 within [`cluster::EXIT_WAIT_MAX`]; anything else fails the scenario.
//!
//! **Bounds.** Fencing: `lease x (1 + max_clock_drift)` (909 ms with the LAN defaults)
//! plus [`timing::SCHEDULING_MARGIN`] (150 ms) for the real processes and `nft` commands.
//! Heal: [`timing::HEAL_BOUND`]. Restart to writable: [`timing::REJOIN_BOUND`].
//!
//! **Isolation.** Each scenario gets its own namespace; nodes bind only `127.0.0.1` inside
//! it, so no datagram can leave it. Dropping a [`cluster::Cluster`] kills its processes and
//! deletes its namespace, also when a scenario fails or panics; namespaces left by a killed
//! harness are removed at the next start.

pub mod bridge;
pub mod checker;
pub mod cluster;
pub mod cost;
pub mod dial_race;
pub mod events;
pub mod failover;
pub mod faults;
pub mod flood;
pub mod kv;
pub mod netns;
pub mod runner;
pub mod scenarios;
pub mod spec;
pub mod timing;
