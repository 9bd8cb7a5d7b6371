//! Online changes between real `quorate run` processes on 127.0.0.1, made with `quorate
//! members` and `quorate config set`: an unsafe growth refused with its route, the route
//! taken, a fourth node added while it runs, a member removed that learns it, exits 0 and
//! refuses to start again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{cli, logs, loopback_cluster, quorate, run_bounded, start, status, wait, Children, TempDir};

#[test]
fn a_cluster_grows_online_and_a_removed_node_exits_and_stays_out() {
    let dir = TempDir::new("members");
    let mut init = quorate();
    init.args(["certs", "init", "--nodes", "1,2,3,4", "--dir"]).arg(dir.path().join("certs"));
    assert_eq!(run_bounded(init, Duration::from_secs(20)).code(), Some(0));

    let (admin, peers) = loopback_cluster(4);
    let mut children = Children::default();
    for id in 1..=3 {
        children.0.push(start(dir.path(), id, &admin[id - 1], &peers[..3]));
    }
    let writable =
        |ids: &[usize]| ids.iter().all(|&i| status(&admin[i - 1]).is_some_and(|s| s["writable"] == true));
    wait(dir.path(), "nodes 1-3 writable", || writable(&[1, 2, 3]));

    // Node 4's QUIC address, from its `--peer 4=ADDR`.
    let four = peers[3].split_once('=').map(|(_, addr)| addr.to_owned()).unwrap();
    // Under the default tie-breaker (lowest id) a fourth voter is unsafe: refused, with the route.
    let add = ["members", "add", "--id", "4", "--addr", &four, "--admin", &admin[0], "--timeout", "20s"];
    let refused = cli(&add);
    assert_eq!(refused.code(), Some(1), "{}{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("refused (unsafe): "), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("  1. set the tie-breaker to none (strict majority)"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("  2. add node 4 with 1 vote"), "{}", refused.stderr);
    assert_eq!(status(&admin[1]).unwrap()["definition_version"], 0, "a refusal changes nothing");

    // A preset this build does not know is refused with the list.
    let fast = cli(&["config", "set", "timing.preset=fast", "--admin", &admin[0]]);
    assert_eq!(fast.code(), Some(1));
    assert!(fast.stderr.contains("the presets are lan, wan"), "{}", fast.stderr);

    // Step 1 of the route, from node 2.
    let none = cli(&["config", "set", "quorum.tie_breaker=none", "--admin", &admin[1], "--timeout", "20s"]);
    assert_eq!(none.code(), Some(0), "{}{}\n{}", none.stdout, none.stderr, logs(dir.path()));
    assert!(none.stdout.contains("in effect on every voter: definition version 1"), "{}", none.stdout);

    // Step 2: node 4 runs on flags listing four; it is added from node 1.
    children.0.push(start(dir.path(), 4, &admin[3], &peers));
    let added = cli(&add);
    assert_eq!(added.code(), Some(0), "{}{}\n{}", added.stdout, added.stderr, logs(dir.path()));
    eprintln!("{}{}", refused.stderr, added.stdout);
    assert!(added.stdout.contains("accepted: definition version 2"), "{}", added.stdout);
    assert!(added.stdout.contains("in effect on every voter: definition version 2"), "{}", added.stdout);
    wait(dir.path(), "all four writable", || writable(&[1, 2, 3, 4]));
    let one = status(&admin[0]).unwrap();
    assert_eq!((one["definition_version"].as_u64(), one["total_votes"].as_u64()), (Some(2), Some(4)));
    let mut table = quorate();
    table.args(["status", "--admin", &admin[0]]);
    let shown = run_bounded(table, Duration::from_secs(10));
    assert!(shown.stdout.lines().next().unwrap_or_default().contains("definition v2"), "{}", shown.stdout);

    // Node 4 removed from node 3: it learns it and exits 0; it does not start again.
    let removed = cli(&["members", "remove", "--id", "4", "--admin", &admin[2], "--timeout", "20s"]);
    assert_eq!(removed.code(), Some(0), "{}{}\n{}", removed.stdout, removed.stderr, logs(dir.path()));
    assert!(removed.stdout.contains("definition version 3"), "{}", removed.stdout);
    let mut exit = None;
    wait(dir.path(), "node 4 exits", || {
        exit = children.0[3].try_wait().unwrap();
        exit.is_some()
    });
    assert_eq!(exit.and_then(|e| e.code()), Some(0), "{}", logs(dir.path()));
    assert!(
        logs(dir.path()).contains("removed from the cluster by definition version 3"),
        "{}",
        logs(dir.path())
    );
    let again = run_bounded(
        {
            let mut cmd = quorate();
            cmd.arg("run")
                .args(["--id", "4", "--admin", &admin[3], "--tls-dir"])
                .arg(dir.path().join("certs"))
                .arg("--data-dir")
                .arg(dir.path().join("data-4"));
            for p in &peers {
                cmd.args(["--peer", p]);
            }
            cmd
        },
        Duration::from_secs(20),
    );
    assert_eq!(again.code(), Some(1), "{}", again.stderr);
    assert!(
        again.stderr.contains("node 4 was removed from the cluster by definition version 3"),
        "{}",
        again.stderr
    );
    wait(dir.path(), "nodes 1-3 writable on version 3", || {
        writable(&[1, 2, 3]) && status(&admin[0]).is_some_and(|s| s["definition_version"] == 3)
    });

    // WAN timing online, from node 2: every node runs it without a restart.
    let wan = cli(&["config", "set", "timing.preset=wan", "--admin", &admin[1], "--timeout", "20s"]);
    assert_eq!(wan.code(), Some(0), "{}{}\n{}", wan.stdout, wan.stderr, logs(dir.path()));
    assert!(wan.stdout.contains("in effect on every voter: definition version 4"), "{}", wan.stdout);
    for a in &admin[..3] {
        let timing = status(a).map(|s| s["timing"].clone()).unwrap_or_default();
        assert_eq!(
            (timing["preset"].as_str(), timing["lease_ms"].as_u64()),
            (Some("wan"), Some(2_500)),
            "{a}"
        );
    }
    assert!(writable(&[1, 2, 3]), "{}", logs(dir.path()));
    let again = cli(&["config", "set", "timing.preset=wan", "--admin", &admin[0]]);
    assert!(again.stderr.contains("the wan timing preset is already in force"), "{}", again.stderr);
    let mut table = quorate();
    table.args(["status", "--admin", &admin[0]]);
    let shown = run_bounded(table, Duration::from_secs(10));
    assert!(shown.stdout.contains("timing wan (lease 2500 ms, heartbeats every 250 ms"), "{}", shown.stdout);
}
