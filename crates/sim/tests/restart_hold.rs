//! The restart hold, end to end: `restart-during-fence-check` replays the trace in which a
//! node answers "yes, down" to a fence check, crashes, and restarts. Its new life must keep
//! the old life's promise (it reads it from its disk) or the asker announces a peer fenced
//! while that peer can write.

use quorate_sim::{run, RunReport, Scenario};

const SEEDS: u64 = 12;

fn trace(seed: u64, forget: bool) -> RunReport {
    let mut s =
        Scenario::named("restart-during-fence-check", seed, None, None).unwrap_or_else(|e| panic!("{e}"));
    s.forget_promises = forget;
    run(s, seed).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_restarted_node_keeps_its_earlier_lives_fence_hold_and_every_announcement_is_sound() {
    let mut fired = Vec::new();
    for seed in 0..SEEDS {
        let report = trace(seed, false);
        if let Some(f) = &report.failure {
            panic!("{f}");
        }
        // A run without an announcement would prove nothing about the hold.
        assert!(report.stats.peer_fenced >= 1, "seed {seed}: no PeerFenced");
        fired.push(report.stats.cues_fired);
    }
    // Both cues (n1 asks, n2 says yes) fired in most seeds: the trace really ran.
    let full = fired.iter().filter(|&&c| c == 2).count() as u64;
    assert!(full >= SEEDS * 3 / 4, "cues fired per seed: {fired:?}");
}

/// A node that forgot the hold its earlier life promised acks n3 at once; n1, resuming,
/// announces n3 fenced while n3 holds {n2, n3} and can write. The `fenced-sound` checker
/// must catch it in most seeds (the trace depends on n2 answering yes to n1's first check).
#[test]
fn fenced_sound_catches_a_restart_that_forgot_its_fence_hold() {
    let mut caught = Vec::new();
    for seed in 0..SEEDS {
        let report = trace(seed, true);
        let Some(f) = report.failure else { continue };
        assert_eq!(f.violation.invariant, "fenced-sound", "seed {seed}:\n{f}");
        assert!(f.violation.detail.contains("announced n3 fenced"), "{f}");
        let text = f.to_string();
        assert!(text.contains("--replay") && text.contains("--forget-promises"), "{text}");
        caught.push(seed);
    }
    assert!(caught.len() as u64 >= SEEDS * 3 / 4, "caught in seeds {caught:?} only");
}
