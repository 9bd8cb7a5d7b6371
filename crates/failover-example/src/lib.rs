//! quorate-failover: the split brain quorate prevents, shown on active/passive failover
//! over shared storage.
//!
//! N nodes share one directory (on one machine a real shared file system; in production
//! NFS or a shared volume). Exactly one node, the active one, appends records to a log in
//! it. The others stand by and take over when the active node fails. This is the classic
//! setting of split brain (Pacemaker with a shared disk, a cluster singleton, a leader that
//! owns a bucket): the standby takes over while the old active node is only cut off or
//! paused, not dead, and both write.
//!
//! ```text
//!   shared/claims/claim-<gen>   who holds generation <gen> of the active role (exclusive create)
//!   shared/log.jsonl            {"node","gen","epoch","seq","checked_us"}, one line per append
//!   local-N/acks.jsonl          the appends node N acknowledged (its clients' answers)
//! ```
//!
//! **With the gate (the default).**
//! * *Append:* `permit()`; if the permit's epoch is not the one under which the node last
//!   verified its claim (a new stretch of quorum, or a restart), it first claims the next
//!   generation and steps down if anyone claimed since; then `check()`, one `write(2)` of
//!   the record (with the epoch and generation), `fdatasync`, `check()` again, and only then
//!   the acknowledgement.
//! * *Takeover:* a standby becomes active only after `PeerFenced { peer }` about the holder
//!   of the latest claim, and only if it had read that claim *before* the event (a claim
//!   made after it could belong to a new stretch of quorum of the same peer). It claims the
//!   next generation by exclusive create, so of two standbys that both saw the event one
//!   wins; it writes under its own permits.
//!
//! **Without the gate (`--unsafe-no-gate`)**, the negative control, the same binary does
//! what naive failover scripts do: a standby takes over when its heartbeat timeout for the
//! holder expires (`PeerDown`), and the active node appends without asking anyone,
//! stepping down only when its monitor, once a second, finds a newer claim. The claims
//! still keep two *standbys* from both winning; nothing keeps the old active node from
//! writing.
//!
//! **What is guaranteed with the gate.** Assumptions: those of G1 and G7 in
//! `docs/guarantees.md` (clock rates within `max_clock_drift`, the lease rule, members
//! follow the protocol), and a shared directory whose `link(2)` is an exclusive create.
//! 1. *Every acknowledged record was appended and made durable inside one unbroken stretch
//!    of quorum of its writer*: the permit's epoch was the same and unexpired at the check
//!    before the write and at the check after `fdatasync` (an epoch never resumes once it
//!    ended).
//! 2. *Every acknowledged record of a node precedes, in real time and in the file, every
//!    record of the node that took over from it.* The takeover follows `PeerFenced`, at
//!    whose instant the holder is not writable (G7): the holder's stretch of quorum ended
//!    before it, so did its acknowledged appends, and the new holder's first record is
//!    written after its claim, after the event. If the old holder regains quorum, it is a
//!    new epoch: it must claim the next generation first, and the exclusive create gives
//!    that generation to exactly one of them.
//! 3. *No two nodes write under the same generation*, and generations in the file only go up
//!    among acknowledged records.
//!
//! **What is not guaranteed: the window between the check and the write.** A plain file
//! cannot refuse a write, so a writer stopped (SIGSTOP, a VM pause, a long GC) after its
//! pre-write `check()` passed and before its `write(2)` reached the file can append one
//! record *after* the takeover. That record is never acknowledged (its post-write check
//! fails: the stretch ended), and it carries the old generation, lower than the one before
//! it in the file, so a reader that treats generations as fencing tokens drops it
//! ([`check::readable`]: keep a record only if its generation is at least the highest seen
//! so far). The window is the few instructions between the check and the system call; the
//! checker counts such records separately ("interleaved unacknowledged"), and none has
//! been seen in the test runs. Storage that enforces the token itself (a conditional
//! write on the generation, SCSI persistent reservations) closes it. Without the gate,
//! nothing like this holds: see the figures below.
//!
//! **Liveness.** A takeover needs the holder fenced by a quorum: the peers' down floor
//! (`down_after_min`, 1 s with LAN timing, which is longer than the holder's lease), a gossip
//! round and one fence check; a standby that is not quorate itself retries at each claim
//! poll. A `PeerFenced` missed by a lagging event stream, or a holder's claim first read
//! after the event, delays a takeover until the next event; it never causes one. A holder
//! cut off only in the direction *towards* it (it is heard, it hears nobody) fences itself
//! but is never called down: the service has no writer until the cut heals.
//!
//! **On NFS.** Exclusive create by `link` is atomic on the server; directory listings may be
//! cached, which can only make a claim attempt fail (it always names the next generation
//! after one that existed). `O_APPEND` is not atomic across NFS clients, so concurrent
//! appends without the gate would overwrite each other; the checker reports torn lines.
//!
//! **Measured** (`docs/benchmarks.md`): in 15 episodes on real processes (cut, one-way cut,
//! SIGSTOP of the active node, 5 each), one writer at every moment in 15 of 15 with the gate,
//! takeover 1.03-1.22 s after the fault; two writers at once in 15 of 15 without it (57-896
//! ms after a cut; after a pause the woken node's in-flight appends land 1.5 s into its
//! successor's tenure, which is how the checker's "two writers at once" counts a tenure
//! that spans a pause: from a writer's first to its last decision to write).
//!
//! Modules: [`shared`] (claims, log, ack logs), [`engine`] (roles, takeover, the append
//! loop), [`check`] (the checker), [`cli`] (`quorate-failover run` / `check`). The
//! real-process proof is the netns suite's `failover-*` scenarios
//! (`cargo test -p quorate-e2e --test netns -- failover`); the README's section on this
//! example shows how to run them and what they print.

pub mod check;
pub mod cli;
pub mod engine;
pub mod shared;

pub use check::{analyse, readable, Analysis};
pub use engine::{Engine, Mode, Role, Settings, Trigger};
pub use shared::{Ack, Claim, How, Record, SharedDir, SharedError};
