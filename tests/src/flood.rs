//! Bad input at real processes (guarantee G5): a thread inside the scenario's namespace
//! sends datagrams that no member would send at nodes' QUIC ports while the scenario runs.
//!
//! ```text
//!   flood thread ── setns ──► 127.0.0.1:FLOOD_PORT ──► 127.0.0.1:700N (node N's QUIC socket)
//!     random bytes, QUIC v1 Initials with garbage crypto, short-header packets for unknown
//!     connections; replies (version negotiation, stateless resets) are read and counted
//! ```
//!
//! Whether the datagrams arrived is measured outside the nodes, which drop them before
//! anything is counted (they never form an authenticated connection, so they never reach
//! the core's per-reason drop counters): an nftables counter per target in a table of its
//! own (`inet qe2e_flood`, untouched by the fault rules, which replace theirs wholesale),
//! and the namespace's UDP receive-buffer errors (`/proc/net/snmp`), which say how many
//! datagrams the kernel could not hand to a socket. Replies from the nodes show that their
//! QUIC endpoints read and answered the garbage.
//!
//! The load is bounded: bursts of [`BURST`] every [`BURST_EVERY`], at most [`PACKETS_MAX`]
//! datagrams and [`RUN_MAX`] of time.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::faults::quic_port;

/// The flood's source port, outside the nodes' 7001-7099 so that no fault rule touches it.
pub const FLOOD_PORT: u16 = 6999;
/// Datagrams per burst.
const BURST: u64 = 16;
/// Pause between bursts: ~4000 datagrams a second, enough to be felt, not a DoS on a
/// 2-core machine (volume attacks are not what G5 is about).
const BURST_EVERY: Duration = Duration::from_millis(4);
/// Fewest datagrams for a flood to count as one (~1 s of it).
pub const SENT_MIN: u64 = 4_000;
/// Most datagrams one flood sends.
const PACKETS_MAX: u64 = 60_000;
/// Longest a flood runs, should nobody stop it.
const RUN_MAX: Duration = Duration::from_secs(15);
/// Most replies read after one burst.
const REPLIES_READ_MAX: u64 = 1_024;
/// Size of a QUIC Initial: servers ignore smaller ones (RFC 9000, 14.1), so a forged
/// Initial must be this large to be examined at all.
const INITIAL_BYTES: usize = 1_200;
/// Largest random datagram.
const RANDOM_BYTES_MAX: u64 = 1_400;

/// What a flood sent and what came back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FloodStats {
    /// Datagrams sent, per target node.
    pub sent: Vec<(u64, u64)>,
    /// Datagrams the nodes sent back (version negotiation, stateless resets).
    pub replies: u64,
    /// The namespace's UDP `RcvbufErrors` during the flood: datagrams (the flood's or
    /// anyone's) the kernel dropped because a socket's buffer was full.
    pub rcvbuf_errors: u64,
}

impl FloodStats {
    /// All datagrams sent.
    pub fn total(&self) -> u64 {
        self.sent.iter().map(|(_, n)| n).sum()
    }
}

/// The flood was real: at least [`SENT_MIN`] datagrams sent, every one of them counted
/// on its way into the namespace's input hook (`counted`, per node, from
/// [`crate::cluster::Cluster::counted_from`]), and at most a tenth lost to full socket
/// buffers, so that the nodes' sockets received at least 90% of it.
pub fn arrived(stats: &FloodStats, counted: &[(u64, u64)]) -> Result<String, String> {
    if stats.total() < SENT_MIN {
        return Err(format!("only {} bad datagrams sent, fewer than {SENT_MIN}", stats.total()));
    }
    let mut parts = Vec::new();
    for &(node, sent) in &stats.sent {
        let seen = counted.iter().find(|(n, _)| *n == node).map_or(0, |(_, c)| *c);
        if seen < sent {
            return Err(format!("{sent} bad datagrams sent at node {node}, only {seen} arrived"));
        }
        parts.push(format!("{sent} at node {node}"));
    }
    if stats.rcvbuf_errors * 10 > stats.total() {
        return Err(format!(
            "{} of {} datagrams dropped for full socket buffers: the nodes did not read the flood",
            stats.rcvbuf_errors,
            stats.total()
        ));
    }
    Ok(format!(
        "{} sent and arrived ({}); {} dropped for full socket buffers; {} replies from the nodes",
        stats.total(),
        parts.join(", "),
        stats.rcvbuf_errors,
        stats.replies
    ))
}

/// A running flood; see the module docs.
#[derive(Debug)]
pub struct Flood {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<FloodStats, String>>>,
}

impl Flood {
    /// Starts flooding the QUIC ports of `targets` from a thread that enters the network
    /// namespace at `netns`, round-robin over targets and datagram kinds.
    pub fn start(netns: &Path, targets: &[u64]) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let (netns, targets, flag) = (netns.to_owned(), targets.to_vec(), stop.clone());
        let thread = std::thread::spawn(move || flood_loop(&netns, &targets, &flag));
        Flood { stop, thread: Some(thread) }
    }

    /// Stops the flood and returns what it sent.
    pub fn finish(mut self) -> Result<FloodStats, String> {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().ok_or("the flood was already finished")?;
        thread.join().map_err(|_| "the flood thread panicked".to_owned())?
    }
}

impl Drop for Flood {
    /// A scenario that fails midway drops its flood: it stops at its next burst.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn flood_loop(netns: &Path, targets: &[u64], stop: &AtomicBool) -> Result<FloodStats, String> {
    crate::kv::enter_namespace(netns)?;
    let socket = UdpSocket::bind(("127.0.0.1", FLOOD_PORT)).map_err(|e| format!("bind flood socket: {e}"))?;
    socket.set_nonblocking(true).map_err(|e| format!("flood socket: {e}"))?;
    let addrs: Vec<(u64, SocketAddr)> = targets
        .iter()
        .map(|&id| {
            let port = u16::try_from(quic_port(id)).map_err(|e| format!("port of node {id}: {e}"))?;
            Ok((id, SocketAddr::from(([127, 0, 0, 1], port))))
        })
        .collect::<Result<_, String>>()?;
    if addrs.is_empty() {
        return Err("a flood needs a target".into());
    }
    let errors_before = rcvbuf_errors()?;
    let mut stats = FloodStats { sent: targets.iter().map(|&id| (id, 0)).collect(), ..FloodStats::default() };
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let started = Instant::now();
    let mut buf = [0u8; 2_048];
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) && n < PACKETS_MAX && started.elapsed() < RUN_MAX {
        for _ in 0..BURST {
            let i = (n % addrs.len() as u64) as usize;
            let packet = match (n / addrs.len() as u64) % 3 {
                0 => random_datagram(&mut rng),
                1 => forged_initial(&mut rng),
                _ => short_header(&mut rng),
            };
            n += 1;
            // A full send buffer loses a datagram of ours, not a decision: count only sends.
            if socket.send_to(&packet, addrs[i].1).is_ok() {
                stats.sent[i].1 += 1;
            }
        }
        stats.replies += read_replies(&socket, &mut buf);
        std::thread::sleep(BURST_EVERY);
    }
    stats.replies += read_replies(&socket, &mut buf);
    stats.rcvbuf_errors = rcvbuf_errors()?.saturating_sub(errors_before);
    Ok(stats)
}

/// Reads what the nodes sent back, without blocking: at most [`REPLIES_READ_MAX`] a call
/// (more stay queued or are dropped by the kernel, and are not counted).
fn read_replies(socket: &UdpSocket, buf: &mut [u8]) -> u64 {
    let mut n = 0;
    while n < REPLIES_READ_MAX && socket.recv_from(buf).is_ok() {
        n += 1;
    }
    n
}

/// Random bytes of random length: mostly nothing QUIC can parse.
fn random_datagram(rng: &mut XorShift) -> Vec<u8> {
    let len = (rng.next() % RANDOM_BYTES_MAX) as usize + 1;
    (0..len).map(|_| rng.next() as u8).collect()
}

/// A QUIC v1 Initial for a connection nobody asked for, with a random destination
/// connection id and a payload of garbage where the encrypted handshake belongs: the
/// endpoint derives the Initial keys and fails to remove the protection.
fn forged_initial(rng: &mut XorShift) -> Vec<u8> {
    let mut p = Vec::with_capacity(INITIAL_BYTES);
    p.push(0xc0 | (rng.next() as u8 & 0x03)); // long header, type Initial, pn length
    p.extend_from_slice(&1u32.to_be_bytes()); // version 1
    p.push(8);
    p.extend((0..8).map(|_| rng.next() as u8)); // destination connection id
    p.push(8);
    p.extend((0..8).map(|_| rng.next() as u8)); // source connection id
    p.push(0); // no token
    let rest = INITIAL_BYTES - p.len() - 2;
    p.extend_from_slice(&(0x4000u16 | rest as u16).to_be_bytes()); // length, 2-byte varint
    p.extend((0..rest).map(|_| rng.next() as u8));
    p
}

/// A 1-RTT (short header) packet for an unknown connection: at most answered with a
/// stateless reset.
fn short_header(rng: &mut XorShift) -> Vec<u8> {
    let len = 40 + (rng.next() % 200) as usize;
    let mut p: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
    p[0] = 0x40 | (p[0] & 0x3f);
    p
}

/// The `RcvbufErrors` figure of the `Udp:` lines of the calling thread's network namespace.
fn rcvbuf_errors() -> Result<u64, String> {
    let path = "/proc/thread-self/net/snmp";
    let text = std::fs::read_to_string(path).map_err(|e| format!("read {path}: {e}"))?;
    let mut udp = text.lines().filter(|l| l.starts_with("Udp: "));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return Err(format!("no Udp lines in {path}"));
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| format!("no RcvbufErrors in {path}"))
}

/// Xorshift64: garbage needs no better generator, and a fixed seed replays it.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_counts_only_if_it_was_sent_and_arrived() {
        let stats = FloodStats { sent: vec![(1, 5_000), (3, 5_000)], replies: 0, rcvbuf_errors: 0 };
        assert!(arrived(&stats, &[(1, 5_000), (3, 5_001)]).is_ok());
        assert!(arrived(&stats, &[(1, 5_000)]).is_err(), "nothing arrived at node 3");
        assert!(arrived(&stats, &[(1, 10), (3, 5_000)]).is_err());
        let lost = FloodStats { rcvbuf_errors: 2_000, ..stats.clone() };
        assert!(arrived(&lost, &[(1, 5_000), (3, 5_000)]).is_err());
        let small = FloodStats { sent: vec![(1, 10)], ..stats };
        assert!(arrived(&small, &[(1, 10)]).is_err());
    }

    #[test]
    fn forged_initials_have_the_size_and_header_an_endpoint_examines() {
        let mut rng = XorShift(1);
        for _ in 0..100 {
            let p = forged_initial(&mut rng);
            assert_eq!(p.len(), INITIAL_BYTES);
            assert_eq!(p[0] & 0xf0, 0xc0);
            assert_eq!(&p[1..5], &[0, 0, 0, 1]);
            let declared = usize::from(u16::from_be_bytes([p[24], p[25]]) & 0x3fff);
            assert_eq!(declared, INITIAL_BYTES - 26);
            let short = short_header(&mut rng);
            assert_eq!(short[0] & 0xc0, 0x40);
            assert!(!random_datagram(&mut rng).is_empty());
        }
    }
}
