//! quorate-kv: an example storage engine that embeds the quorum gate.
//!
//! A replicated-nothing key-value service: every node has its own [redb] database (one
//! file, ACID, fsync on commit) and an HTTP API. Nothing is copied between nodes; what the
//! example shows is the part quorate is for: during a network partition only the side
//! holding a quorum of votes accepts writes, and every acknowledged write is in the
//! database that acknowledged it, stamped with the fencing epoch it was written under.
//!
//! ```text
//!   PUT /kv/{key} ──► input checks (key ≤ 256 B, value ≤ 64 KiB, UTF-8; else 4xx, nothing written)
//!                 ──► read-only? (flipped by QuorumLost / QuorumGained events)   503 + reason
//!                 ──► gate.permit()                                              503 "not quorate: ..."
//!                 ──► redb write transaction:
//!                        epoch below the highest stored?                         503 stale_epoch (rolled back)
//!                        insert key -> (permit.epoch(), seq, value)
//!                        permit.check()  (the re-check right before commit)      503 fenced_before_commit (rolled back)
//!                        commit (fsync)
//!                 ──► 200 {"epoch","seq","checked_mono_us","committed_mono_us"}
//!   GET /kv/{key} ──► the local database, on either side of a partition (may be stale)
//!   GET /status   ──► mode, gate, store, counters, the last 32 quorum events
//! ```
//!
//! **Reads are local and can be stale.** A node answers reads from its own database
//! whether or not it holds quorum. In this replicated-nothing example a node's database
//! holds exactly the writes that node acknowledged, so a read returns the last value *this
//! node* accepted; on a fenced node that is the value as of its fence, and it does not see
//! anything written elsewhere. The answer says `"writable": false` on a fenced node so a
//! client can tell. A replicated engine would need a quorum read (or a read lease) to
//! promise more.
//!
//! **What the re-check covers.** `WritePermit::check` runs inside the transaction after
//! the inserts and before the commit, so a write that waited for redb's writer lock past
//! the end of its quorum is rolled back, not committed. The commit (an fsync, typically
//! milliseconds) still completes after the check: a write can become durable up to one
//! commit's duration after the node's leases ran out. That is why the epoch is stored with
//! every value: anything downstream can order writes by epoch and reject older ones.
//!
//! Modules: [`store`] (redb and the fenced write path), [`service`] (gate, read-only
//! switch, events), [`http`] (the API), [`input`] (limits and decoding), [`client`] (a
//! small blocking client for tests and benchmarks), [`cli`] (the `quorate-kv` command).
//! `docs/kv-example.md` explains the design; the README has a three-node run with curl.
//!
//! [redb]: https://docs.rs/redb

pub mod cli;
pub mod client;
pub mod http;
pub mod input;
pub mod service;
pub mod store;

pub use service::{GateMode, Mode, Service, WriteError};
pub use store::{Durability, Guard, Record, Stats, Store, StoreError, Written};
