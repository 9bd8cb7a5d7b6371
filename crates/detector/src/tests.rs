//! The detector's behaviour over time: floors, stalls, leaves and events.

use super::*;
use proptest::prelude::*;

const A: NodeId = NodeId(1);
const B: NodeId = NodeId(2);
const C: NodeId = NodeId(3);

fn ms(n: u64) -> Instant {
    Instant::from_nanos(n * 1_000_000)
}

/// Every detector in these tests starts at 10 s, so time can also run backwards.
const START_MS: u64 = 10_000;

fn drain(d: &mut Detector) -> Vec<DetectorEvent> {
    core::iter::from_fn(|| d.poll_event()).collect()
}

fn event(peer: NodeId, from: PeerState, to: PeerState, at: Instant) -> DetectorEvent {
    DetectorEvent { peer, from, to, at }
}

/// Drives `d` as a runtime would, from `now` to `end`: it wakes at the earlier of the
/// next heartbeat in `heartbeats` (sorted) and `poll_timeout()`. Returns all events.
fn drive(
    d: &mut Detector,
    now: Instant,
    end: Instant,
    heartbeats: &[(Instant, NodeId)],
) -> Vec<DetectorEvent> {
    let mut events = Vec::new();
    let mut next_hb = heartbeats.iter().filter(|(t, _)| *t >= now).peekable();
    loop {
        let timer = d.poll_timeout().unwrap_or(Instant::MAX);
        match next_hb.peek() {
            Some(&&(t, from)) if t <= timer && t <= end => {
                d.handle_heartbeat(t, from);
                next_hb.next();
            }
            _ if timer <= end => d.handle_timeout(timer),
            _ => break,
        }
        events.extend(drain(d));
    }
    events
}

/// Heartbeats from `peer` every `every_ms` from `from_ms` (inclusive) to `to_ms`
/// (exclusive), with a deterministic jitter of up to `jitter_ms` either way.
fn beats(peer: NodeId, from_ms: u64, to_ms: u64, every_ms: u64, jitter_ms: u64) -> Vec<(Instant, NodeId)> {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    (from_ms..to_ms)
        .step_by(every_ms as usize)
        .map(|t| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let jitter = if jitter_ms == 0 { 0 } else { (seed >> 33) % (2 * jitter_ms + 1) };
            (ms(t + jitter).saturating_sub(Duration::from_millis(jitter_ms)), peer)
        })
        .collect()
}

fn merged(mut a: Vec<(Instant, NodeId)>, b: Vec<(Instant, NodeId)>) -> Vec<(Instant, NodeId)> {
    a.extend(b);
    a.sort();
    a
}

/// Phi thresholds so low that phi alone would convict a peer within a heartbeat.
fn trigger_happy() -> DetectorConfig {
    DetectorConfig { suspect_phi: 0.1, down_phi: 0.2, ..DetectorConfig::default() }
}

#[test]
fn an_outage_does_not_slow_the_next_detection() -> Result<(), DetectorConfigError> {
    let mut d = Detector::new(DetectorConfig::default().check()?, ms(START_MS), [A])?;
    // Regular, then a 10 s outage, then regular again for 2 s, then silent for good.
    let beats = merged(beats(A, 10_000, 12_000, 100, 5), beats(A, 22_000, 24_000, 100, 5));
    let events = drive(&mut d, ms(START_MS), ms(30_000), &beats);
    let downs: Vec<Instant> =
        events.iter().filter(|e| e.to == PeerState::Unreachable).map(|e| e.at).collect();
    assert_eq!(downs.len(), 2, "{events:?}");
    let last = d.last_heard(A).unwrap_or(Instant::MAX);
    // Without the outage in the window, phi crosses the threshold within the floor.
    assert_eq!(downs[1], last + d.config().down_after_min, "second detection {:?} after", downs[1] - last);
    Ok(())
}

#[test]
fn a_floor_raised_after_the_last_heartbeat_still_holds() -> Result<(), DetectorConfigError> {
    let mut d = Detector::new(trigger_happy().check()?, ms(START_MS), [A])?;
    let mut events = drive(&mut d, ms(START_MS), ms(11_000), &beats(A, 10_000, 11_000, 100, 0));
    // The peer is reachable and silent from 10.9 s; its terms arrive with its last beat.
    assert!(d.raise_floor(A, Duration::from_secs(2)));
    events.extend(drive(&mut d, ms(11_000), ms(15_000), &[]));
    let down = events.iter().find(|e| e.to == PeerState::Unreachable).map(|e| e.at);
    assert_eq!(down, Some(ms(10_900 + 2_000)));
    Ok(())
}

#[test]
fn phi_shifts_by_the_acceptable_pause() -> Result<(), DetectorConfigError> {
    let pause = Duration::from_millis(500);
    let mut plain = Detector::new(DetectorConfig::default().check()?, ms(START_MS), [A])?;
    let mut paused = Detector::new(
        DetectorConfig { acceptable_pause: pause, ..DetectorConfig::default() }.check()?,
        ms(START_MS),
        [A],
    )?;
    let beats = beats(A, 10_000, 12_000, 100, 5);
    drive(&mut plain, ms(START_MS), ms(12_000), &beats);
    drive(&mut paused, ms(START_MS), ms(12_000), &beats);
    let last = plain.last_heard(A).unwrap_or(Instant::MAX);
    let at = |d: u64| last + Duration::from_millis(d);
    let (p, q) = (plain.phi(A, at(250)).unwrap_or(0.0), paused.phi(A, at(750)).unwrap_or(0.0));
    assert!((p - q).abs() < 1e-9, "phi {p} at 250 ms plain, {q} at 750 ms with a 500 ms pause");
    assert!(paused.phi(A, at(250)).unwrap_or(f64::MAX) < p);
    Ok(())
}

#[test]
fn a_raised_floor_holds_a_peer_up_for_its_own_lease() -> Result<(), DetectorConfigError> {
    let mut d = Detector::new(trigger_happy().check()?, ms(START_MS), [A, B])?;
    // A's lease needs 2.6 s of silence before A may be called down; B keeps the 1 s floor.
    assert!(d.raise_floor(A, Duration::from_millis(2_600)));
    assert!(!d.raise_floor(C, Duration::from_secs(9)));
    let beats = merged(beats(A, 10_000, 11_000, 100, 0), beats(B, 10_000, 11_000, 100, 0));
    let events = drive(&mut d, ms(START_MS), ms(14_000), &beats);
    let down_at = |p| events.iter().find(|e| e.peer == p && e.to == PeerState::Unreachable).map(|e| e.at);
    assert_eq!(down_at(B), Some(ms(10_900 + 1_000)));
    assert_eq!(down_at(A), Some(ms(10_900 + 2_600)));
    // Lowering is ignored: the floor only grows.
    d.raise_floor(A, Duration::from_millis(10));
    assert_eq!(d.floor(A), Some(Duration::from_millis(2_600)));
    Ok(())
}

#[test]
fn a_raised_start_floor_keeps_never_heard_peers_from_being_declared_down() -> Result<(), DetectorConfigError>
{
    let mut d = Detector::new(trigger_happy().check()?, ms(START_MS), [A])?;
    d.raise_start_floor(Duration::from_secs(3));
    d.raise_start_floor(Duration::from_secs(2));
    assert_eq!(d.start_floor(), Duration::from_secs(3));
    let events = drive(&mut d, ms(START_MS), ms(20_000), &[]);
    let down: Vec<_> = events.iter().filter(|e| e.to == PeerState::Unreachable).map(|e| e.at).collect();
    assert_eq!(down, vec![ms(START_MS + 3_000)]);
    Ok(())
}

#[test]
fn peer_is_never_declared_down_before_the_floor_after_last_heard() -> Result<(), DetectorConfigError> {
    let mut d = Detector::new(trigger_happy().check()?, ms(START_MS), [A])?;
    let mut events = drive(&mut d, ms(START_MS), ms(13_000), &beats(A, 10_000, 12_000, 100, 0));
    // Tick every millisecond around the floor, much finer than poll_timeout asks for.
    for t in 12_000..13_500 {
        d.handle_timeout(ms(t));
        events.extend(drain(&mut d));
    }
    let heard = d.last_heard(A).unwrap_or(Instant::MAX);
    assert_eq!(heard, ms(11_900));
    let down: Vec<_> = events.iter().filter(|e| e.to == PeerState::Unreachable).collect();
    assert_eq!(down.len(), 1);
    assert_eq!(down[0].at, heard + d.config().down_after_min);
    Ok(())
}

#[test]
fn peer_is_never_declared_down_within_floor_after_start() -> Result<(), DetectorConfigError> {
    let mut d = Detector::new(trigger_happy().check()?, ms(START_MS), [A, B])?;
    d.handle_heartbeat(ms(START_MS), A);
    let mut events = drain(&mut d);
    for t in START_MS..START_MS + 1_500 {
        d.handle_timeout(ms(t));
        events.extend(drain(&mut d));
    }
    let floor_end = ms(START_MS) + d.config().down_after_min;
    assert!(events.iter().filter(|e| e.to == PeerState::Unreachable).all(|e| e.at >= floor_end));
    assert!(events.contains(&event(B, PeerState::Unknown, PeerState::Unreachable, floor_end)));
    assert!(events.contains(&event(A, PeerState::Suspect, PeerState::Unreachable, floor_end)));
    Ok(())
}

#[test]
fn steady_heartbeats_keep_peer_reachable() -> Result<(), DetectorConfigError> {
    let mut d = Detector::new(DetectorConfig::default().check()?, ms(START_MS), [A])?;
    let events = drive(&mut d, ms(START_MS), ms(70_000), &beats(A, 10_050, 70_000, 100, 15));
    let only: Vec<_> = events.iter().map(|e| (e.peer, e.from, e.to)).collect();
    assert_eq!(only, vec![(A, PeerState::Unknown, PeerState::Reachable)]);
    assert_eq!(d.stalls(), 0);
    let phi = d.phi(A, ms(70_000)).unwrap_or(f64::INFINITY);
    assert!(phi < d.config().suspect_phi, "phi {phi}");
    Ok(())
}

#[test]
fn silent_peer_goes_suspect_then_unreachable_then_back_to_reachable_on_heartbeat(
) -> Result<(), DetectorConfigError> {
    let mut d = Detector::new(DetectorConfig::default().check()?, ms(START_MS), [A])?;
    let mut events = drive(&mut d, ms(START_MS), ms(20_000), &beats(A, 10_000, 15_000, 100, 0));
    let heard = ms(14_900);
    assert_eq!(d.last_heard(A), Some(heard));
    assert_eq!(d.state(A), Some(PeerState::Unreachable));
    d.handle_heartbeat(ms(20_000), A);
    events.extend(drain(&mut d));
    let steps: Vec<_> = events.iter().map(|e| (e.from, e.to)).collect();
    use PeerState::*;
    assert_eq!(
        steps,
        vec![(Unknown, Reachable), (Reachable, Suspect), (Suspect, Unreachable), (Unreachable, Reachable)]
    );
    // Regular 100 ms arrivals, std dev floored at 20 ms: phi 5 at about 4.26 sd.
    let suspect_after = events[1].at - heard;
    assert!(suspect_after > Duration::from_millis(150) && suspect_after < Duration::from_millis(200));
    // Phi 8 is reached within ~215 ms; the 1 s floor decides.
    assert_eq!(events[2].at, heard + Duration::from_secs(1));
    assert_eq!(events[3].at, ms(20_000));
    Ok(())
}

#[test]
fn stalled_detector_does_not_convict_peers_for_its_own_stall() -> Result<(), DetectorConfigError> {
    let mut d = Detector::new(DetectorConfig::default().check()?, ms(START_MS), [A, C])?;
    let before = merged(beats(A, 10_000, 15_000, 100, 0), beats(C, 10_000, 15_000, 100, 0));
    drive(&mut d, ms(START_MS), ms(15_000), &before);
    // This node stalls from 15 s to 20 s: no call at all. Then its timer fires.
    d.handle_timeout(ms(20_000));
    assert_eq!(d.stalls(), 1);
    assert_eq!(drain(&mut d), vec![]);
    assert_eq!((d.state(A), d.state(C)), (Some(PeerState::Reachable), Some(PeerState::Reachable)));
    // A resumes; C really is gone, and is convicted a full floor after our wake-up.
    let events = drive(&mut d, ms(20_000), ms(25_000), &beats(A, 20_020, 25_000, 100, 0));
    assert_eq!(d.stalls(), 1);
    assert!(events.iter().all(|e| e.peer == C));
    let down = events.iter().find(|e| e.to == PeerState::Unreachable).map(|e| e.at);
    assert_eq!(down, Some(ms(21_000)));
    Ok(())
}

#[test]
fn stall_interval_is_not_recorded_as_a_sample() -> Result<(), DetectorConfigError> {
    for timer_first in [false, true] {
        let mut d = Detector::new(DetectorConfig::default().check()?, ms(START_MS), [A])?;
        drive(&mut d, ms(START_MS), ms(15_000), &beats(A, 10_000, 15_000, 100, 0));
        let view = |d: &Detector| d.peers().map(|(_, v)| (v.mean, v.std_dev)).next();
        let stats = view(&d);
        if timer_first {
            d.handle_timeout(ms(20_000));
        }
        // The first heartbeat after the stall: 5.1 s since the previous one.
        d.handle_heartbeat(ms(20_000), A);
        assert_eq!(d.stalls(), 1);
        assert_eq!(view(&d), stats, "timer_first = {timer_first}");
        d.handle_heartbeat(ms(20_100), A);
        assert_eq!(view(&d).map(|(mean, _)| mean), Some(Duration::from_millis(100)));
    }
    Ok(())
}

#[test]
fn heartbeats_from_unknown_peers_are_ignored() -> Result<(), DetectorConfigError> {
    let mut d = Detector::new(DetectorConfig::default().check()?, ms(START_MS), [A])?;
    assert!(!d.handle_heartbeat(ms(10_100), B));
    assert_eq!(d.poll_event(), None);
    assert_eq!((d.state(B), d.phi(B, ms(10_100)), d.last_heard(B)), (None, None, None));
    assert_eq!(d.peers().count(), 1);
    assert!(d.handle_heartbeat(ms(10_100), A));
    Ok(())
}

#[test]
fn time_going_backwards_counts_as_no_time_passing() -> Result<(), DetectorConfigError> {
    let mut d = Detector::new(DetectorConfig::default().check()?, ms(START_MS), [A])?;
    d.handle_heartbeat(ms(10_100), A);
    d.handle_timeout(ms(10_150));
    d.handle_timeout(ms(1));
    d.handle_heartbeat(ms(2), A);
    d.handle_timeout(Instant::ZERO);
    assert_eq!(d.last_heard(A), Some(ms(10_150)));
    assert_eq!(d.stalls(), 0);
    let events: Vec<_> = drain(&mut d).into_iter().map(|e| e.to).collect();
    assert_eq!(events, vec![PeerState::Reachable]);
    Ok(())
}

#[test]
fn poll_timeout_asks_for_a_tick_every_heartbeat_interval() -> Result<(), DetectorConfigError> {
    let mut d = Detector::new(DetectorConfig::default().check()?, ms(START_MS), [A])?;
    assert_eq!(d.poll_timeout(), Some(ms(10_100)));
    d.handle_timeout(ms(10_100));
    assert_eq!(d.poll_timeout(), Some(ms(10_200)));
    // Even with every peer Unreachable, ticks continue so a stall is still told apart.
    for t in (10_200..=11_000).step_by(100) {
        d.handle_timeout(ms(t));
    }
    assert_eq!(d.state(A), Some(PeerState::Unreachable));
    assert_eq!(d.poll_timeout(), Some(ms(11_100)));
    let empty = Detector::new(DetectorConfig::default().check()?, ms(START_MS), [])?;
    assert_eq!(empty.poll_timeout(), None);
    Ok(())
}

#[test]
fn phi_rises_with_silence_and_resets_on_heartbeat() -> Result<(), DetectorConfigError> {
    let mut d = Detector::new(DetectorConfig::default().check()?, ms(START_MS), [A])?;
    drive(&mut d, ms(START_MS), ms(12_000), &beats(A, 10_000, 12_000, 100, 0));
    let at = |d: &Detector, t| d.phi(A, ms(t)).unwrap_or(f64::NAN);
    assert!(at(&d, 11_950) < at(&d, 12_000) && at(&d, 12_000) < at(&d, 12_100));
    d.handle_heartbeat(ms(12_100), A);
    assert_eq!(at(&d, 12_100), 0.0);
    Ok(())
}

#[test]
fn new_refuses_too_many_peers_and_ignores_duplicates() -> Result<(), DetectorConfigError> {
    let many = (0..=PEERS_MAX as u64).map(NodeId);
    assert!(matches!(
        Detector::new(DetectorConfig::default().check()?, ms(START_MS), many),
        Err(DetectorConfigError::TooManyPeers { max: PEERS_MAX })
    ));
    let dup = Detector::new(DetectorConfig::default().check()?, ms(START_MS), [A, A, B]);
    assert_eq!(dup.map(|d| d.peers().count()).ok(), Some(2));
    Ok(())
}

#[test]
fn event_queue_drops_the_oldest_when_full_and_counts_it() {
    let mut q = EventQueue::new(2);
    for t in 0..3 {
        q.push(event(A, PeerState::Unknown, PeerState::Reachable, ms(t)));
    }
    assert_eq!(q.dropped, 1);
    assert_eq!(q.pop().map(|e| e.at), Some(ms(1)));
    assert_eq!(q.pop().map(|e| e.at), Some(ms(2)));
    assert_eq!(q.pop(), None);
}

#[derive(Debug, Clone)]
enum Op {
    /// Heartbeat from peer index (3 = not a peer) after a step in ms (may be negative).
    Heartbeat(u64, i64),
    /// Timer after a step in ms (may be negative).
    Timeout(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1u64..5, -50i64..300).prop_map(|(p, dt)| Op::Heartbeat(p, dt)),
        3 => (-50i64..1_200).prop_map(Op::Timeout),
    ]
}

proptest! {
    #[test]
    fn random_schedules_respect_the_floor_and_poll_timeout_stays_ahead(
        floor_ms in 200u64..3_000,
        down_phi in 0.05f64..12.0,
        suspect_frac in 0.1f64..=1.0,
        ops in proptest::collection::vec(op(), 1..300),
    ) {
        let config = DetectorConfig {
            down_after_min: Duration::from_millis(floor_ms),
            suspect_phi: down_phi * suspect_frac,
            down_phi,
            ..DetectorConfig::default()
        };
        let floor = config.down_after_min;
        let started = ms(START_MS);
        let config = config.check().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut d = Detector::new(config, started, [A, B, C])
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut now = started;
        let mut latest = started;
        for op in ops {
            let heard: Vec<_> = [A, B, C].iter().map(|&p| (p, d.last_heard(p))).collect();
            let step = |now: Instant, dt: i64| if dt >= 0 {
                now + Duration::from_millis(dt.unsigned_abs())
            } else {
                now - Duration::from_millis(dt.unsigned_abs())
            };
            // An ignored heartbeat (not a peer) changes nothing, not even the clock.
            let accepted = match op {
                Op::Heartbeat(p, dt) => { now = step(now, dt); d.handle_heartbeat(now, NodeId(p)) }
                Op::Timeout(dt) => { now = step(now, dt); d.handle_timeout(now); true }
            };
            if accepted {
                latest = latest.max(now);
            }
            for e in drain(&mut d) {
                prop_assert_eq!(e.at, latest);
                prop_assert_eq!(d.state(e.peer), Some(e.to));
                if e.to == PeerState::Unreachable {
                    prop_assert!(e.at >= started + floor, "down within floor after start");
                    let last = heard.iter().find(|(p, _)| *p == e.peer).and_then(|(_, h)| *h);
                    prop_assert!(last.is_none_or(|h| e.at >= h + floor), "down within floor after heard");
                }
            }
            if matches!(op, Op::Timeout(_)) {
                prop_assert!(d.poll_timeout().is_some_and(|t| t > latest), "poll_timeout in the past");
            }
        }
    }
}

#[test]
fn left_peer_is_gone_at_once_and_only_a_heartbeat_brings_it_back() -> Result<(), DetectorConfigError> {
    let ms = |v: u64| Instant::from_nanos(v * 1_000_000);
    let mut d = Detector::new(DetectorConfig::default().check()?, ms(0), [NodeId(2)])?;
    d.handle_heartbeat(ms(100), NodeId(2));
    assert!(d.handle_leave(ms(150), NodeId(2)));
    assert!(!d.handle_leave(ms(150), NodeId(9)));
    assert_eq!(d.state(NodeId(2)), Some(PeerState::Left));
    d.handle_timeout(ms(5_000));
    assert_eq!(d.state(NodeId(2)), Some(PeerState::Left), "no timer moves a left peer");
    d.handle_heartbeat(ms(5_100), NodeId(2));
    assert_eq!(d.state(NodeId(2)), Some(PeerState::Reachable));
    let events: Vec<_> = std::iter::from_fn(|| d.poll_event()).map(|e| (e.from, e.to)).collect();
    assert!(events.contains(&(PeerState::Reachable, PeerState::Left)), "{events:?}");
    Ok(())
}

#[test]
fn peers_added_while_running_get_the_floor_from_being_added_and_removed_ones_vanish(
) -> Result<(), DetectorConfigError> {
    let mut d = Detector::new(DetectorConfig::default().check()?, ms(START_MS), [A, B])?;
    let floor = d.config().down_after_min;
    let mut events = drive(&mut d, ms(START_MS), ms(15_000), &beats(A, 10_000, 15_000, 100, 0));
    // B was never heard: down one floor after the start.
    assert!(events.contains(&event(B, PeerState::Unknown, PeerState::Unreachable, ms(START_MS) + floor)));
    // C joins at 15 s, B leaves the members; A keeps its history.
    let heard = d.last_heard(A);
    d.set_peers(ms(15_000), [A, C])?;
    assert_eq!(d.state(B), None, "a removed peer is forgotten");
    assert_eq!(d.state(C), Some(PeerState::Unknown));
    assert_eq!(d.last_heard(A), heard);
    events = drive(&mut d, ms(15_000), ms(20_000), &beats(A, 15_000, 20_000, 100, 0));
    // C, never heard, goes down one floor after it was added, not at once.
    let c_down: Vec<Instant> =
        events.iter().filter(|e| e.peer == C && e.to == PeerState::Unreachable).map(|e| e.at).collect();
    assert_eq!(c_down, vec![ms(15_000) + floor], "{events:?}");
    assert!(events.iter().all(|e| e.peer != B), "no event about a removed peer");
    // Too many peers: refused, nothing changed.
    let many = (100..100 + PEERS_MAX as u64 + 1).map(NodeId);
    assert!(d.set_peers(ms(20_000), many).is_err());
    assert_eq!(d.peers().count(), 2);
    Ok(())
}

#[test]
fn a_timing_change_keeps_the_floors_leases_need_and_moves_the_rest() -> Result<(), DetectorConfigError> {
    let wan = DetectorConfig { window_len: std::num::NonZeroUsize::MIN.saturating_add(3), ..trigger_happy() };
    let wan = DetectorConfig { down_after_min: Duration::from_secs(3), ..wan };
    let mut d = Detector::new(wan.check()?, ms(START_MS), [A, B])?;
    // A's terms asked for 2.6 s; B's for nothing beyond the floor.
    assert!(d.raise_floor(A, Duration::from_millis(2_600)));
    let both = merged(beats(A, 10_000, 14_000, 100, 0), beats(B, 10_000, 14_000, 100, 0));
    let mut events = drive(&mut d, ms(START_MS), ms(14_000), &both);
    assert_eq!(d.floor(B), Some(Duration::from_secs(3)));
    // Back to a 1 s down floor: B's follows it, A's stays what its lease needs (the start
    // floor keeps what it was: it may cover an earlier life's leases).
    d.set_config(ms(14_000), trigger_happy().check()?);
    assert_eq!((d.floor(A), d.floor(B)), (Some(Duration::from_millis(2_600)), Some(Duration::from_secs(1))));
    assert!(d.peers().all(|(_, p)| p.last_heard == Some(ms(13_900))), "history kept");
    events.extend(drive(&mut d, ms(14_000), ms(18_000), &[]));
    let down_at = |p| events.iter().find(|e| e.peer == p && e.to == PeerState::Unreachable).map(|e| e.at);
    assert_eq!(down_at(B), Some(ms(13_900 + 1_000)));
    assert_eq!(down_at(A), Some(ms(13_900 + 2_600)));
    // A longer floor from now on delays a verdict still pending.
    let mut d = Detector::new(trigger_happy().check()?, ms(START_MS), [A])?;
    let mut events = drive(&mut d, ms(START_MS), ms(11_000), &beats(A, 10_000, 11_000, 100, 0));
    d.set_config(
        ms(11_000),
        DetectorConfig { down_after_min: Duration::from_secs(3), ..trigger_happy() }.check()?,
    );
    events.extend(drive(&mut d, ms(11_000), ms(15_000), &[]));
    let down = events.iter().find(|e| e.to == PeerState::Unreachable).map(|e| e.at);
    assert_eq!(down, Some(ms(10_900 + 3_000)));
    Ok(())
}
