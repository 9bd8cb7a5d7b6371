//! `quorate demo` end to end: five nodes over real QUIC on loopback, one partition.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{quorate, run_bounded};
use serde_json::Value;

#[test]
fn demo_fences_the_minority_within_the_lease_and_keeps_the_majority_writable() {
    let mut cmd = quorate();
    cmd.args(["demo", "--json", "--nodes", "5"]);
    let done = run_bounded(cmd, Duration::from_secs(60));
    assert_eq!(done.code(), Some(0), "stdout:\n{}\nstderr:\n{}", done.stdout, done.stderr);

    // Every line is JSON; the last one is the summary.
    let lines: Vec<Value> = done
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let summary = lines.last().expect("no output");
    assert_eq!(summary["summary"], "demo", "{summary}");
    assert_eq!(summary["nodes"], 5);
    assert_eq!(summary["lease_ms"], 900.0);
    assert_eq!(summary["minority"], serde_json::json!([1, 2]));
    assert_eq!(summary["majority_fenced"], false, "{summary}");
    assert_eq!(summary["ok"], true, "{summary}");
    let fence_ms = summary["fence_ms"].as_f64().expect("fence_ms missing");
    assert!(fence_ms > 0.0 && fence_ms <= 1_000.0, "fence_ms {fence_ms}: {summary}");
    assert!(summary["detect_ms"].as_f64().is_some(), "{summary}");
    assert!(summary["heal_ms"].as_f64().is_some(), "{summary}");

    // The minority's QuorumLost events were reported as they happened.
    let lost: Vec<u64> = lines
        .iter()
        .filter(|l| l["event"] == "quorum_lost" && l["t_ms"].as_f64().is_some_and(|t| t >= 0.0))
        .filter_map(|l| l["node"].as_u64())
        .collect();
    assert!(lost.contains(&1) && lost.contains(&2), "minority QuorumLost events missing: {lost:?}");
    assert!(!lost.iter().any(|n| *n > 2), "a majority node lost quorum: {lost:?}");
}

#[test]
fn demo_rejects_too_small_clusters_as_a_usage_error() {
    let mut cmd = quorate();
    cmd.args(["demo", "--nodes", "2"]);
    let done = run_bounded(cmd, Duration::from_secs(10));
    assert_eq!(done.code(), Some(2), "{}", done.stderr);
}
