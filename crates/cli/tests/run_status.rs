//! Three `quorate run` processes started from flags find each other over QUIC, and
//! `quorate status` reads their view.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::File;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use common::{logs, loopback_cluster, quorate, run_bounded, Children, TempDir};
use serde_json::Value;

/// Reads a node's status as JSON; `None` while it is not answering yet.
fn status(admin: &str) -> Option<Value> {
    let mut cmd = quorate();
    cmd.args(["status", "--json", "--admin", admin]);
    let done = run_bounded(cmd, Duration::from_secs(10));
    if done.code() != Some(0) {
        return None;
    }
    Some(serde_json::from_str(&done.stdout).unwrap_or_else(|e| panic!("bad JSON ({e}): {}", done.stdout)))
}

#[test]
fn three_nodes_from_flags_become_writable_and_status_shows_it() {
    let dir = TempDir::new("run");
    let certs = dir.path().join("certs");
    let mut init = quorate();
    init.args(["certs", "init", "--nodes", "1,2", "--dir"]).arg(&certs);
    let done = run_bounded(init, Duration::from_secs(20));
    assert_eq!(done.code(), Some(0), "{}", done.stderr);
    // Node 3's certificate comes from the same CA later, as when a node is added.
    let mut issue = quorate();
    issue.args(["certs", "issue", "--id", "3", "--days", "30", "--dir"]).arg(&certs);
    let done = run_bounded(issue, Duration::from_secs(20));
    assert_eq!(done.code(), Some(0), "{}", done.stderr);

    let (admin, peers) = loopback_cluster(3);

    let mut children = Children::default();
    for id in 1..=3 {
        let log = File::create(dir.path().join(format!("node-{id}.log"))).unwrap();
        let mut cmd = quorate();
        cmd.arg("run")
            .args(["--id", &id.to_string(), "--admin", &admin[id - 1]])
            .arg("--tls-dir")
            .arg(&certs)
            .arg("--data-dir")
            .arg(dir.path().join(format!("data-{id}")));
        for p in &peers {
            cmd.args(["--peer", p]);
        }
        cmd.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
        children.0.push(cmd.spawn().unwrap());
    }

    let deadline = Instant::now() + Duration::from_secs(10);
    let last = loop {
        let now: Vec<Option<Value>> = admin.iter().map(|a| status(a)).collect();
        let all_writable = now.iter().all(|s| s.as_ref().is_some_and(|s| s["writable"] == true));
        let node1_sees_all = now[0].as_ref().is_some_and(|s| {
            s["peers"].as_array().is_some_and(|p| p.len() == 2 && p.iter().all(|p| p["state"] == "reachable"))
        });
        if all_writable && node1_sees_all {
            break now;
        }
        assert!(Instant::now() < deadline, "not all writable within 10 s: {now:?}\n{}", logs(dir.path()));
        thread::sleep(Duration::from_millis(200));
    };
    let node1 = last[0].as_ref().unwrap();
    assert_eq!(node1["node"], 1);
    assert_eq!(node1["total_votes"], 3);
    let node3 = last[2].as_ref().unwrap();
    let own = &node3["certificates"][0];
    assert_eq!(own["role"], "node", "{node3}");
    assert_eq!(own["dns_names"][0], "node-3.quorate.quorate", "{node3}");
    assert!(own["days_left"].as_f64().is_some_and(|d| d > 29.9 && d <= 30.0), "{own}");

    // The table form names the node and says writable.
    let mut table = quorate();
    table.args(["status", "--admin", &admin[0]]);
    let shown = run_bounded(table, Duration::from_secs(10));
    assert_eq!(shown.code(), Some(0), "{}", shown.stderr);
    assert!(
        shown.stdout.starts_with("node 1  cluster quorate") && shown.stdout.contains("writable yes"),
        "{}",
        shown.stdout
    );
    assert!(shown.stdout.contains("certificate node node-1.quorate.quorate expires in "), "{}", shown.stdout);

    // SIGTERM stops a node cleanly with exit 0.
    let pid = children.0[2].id().to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(status) = children.0[2].try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "node 3 ignored SIGTERM\n{}", logs(dir.path()));
        thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(exit.code(), Some(0), "{}", logs(dir.path()));
}
