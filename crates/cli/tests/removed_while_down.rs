//! A `quorate run` node removed while it was down (SIGKILL, `quorate members remove` on a
//! member), restarted on its old data directory, on 127.0.0.1: its members refuse it as a
//! non-member, it says why and exits 3.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{cli, logs, loopback_cluster, quorate, run_bounded, start, status, wait, Children};

#[test]
fn a_node_removed_while_down_exits_3_saying_why_when_restarted() {
    let dir = common::TempDir::new("removed-down");
    let mut init = quorate();
    init.args(["certs", "init", "--nodes", "1,2,3", "--dir"]).arg(dir.path().join("certs"));
    assert_eq!(run_bounded(init, Duration::from_secs(20)).code(), Some(0));

    let (admin, peers) = loopback_cluster(3);
    let mut children = Children::default();
    for id in 1..=3 {
        children.0.push(start(dir.path(), id, &admin[id - 1], &peers));
    }
    let writable =
        |ids: &[usize]| ids.iter().all(|&i| status(&admin[i - 1]).is_some_and(|s| s["writable"] == true));
    wait(dir.path(), "nodes 1-3 writable", || writable(&[1, 2, 3]));
    // Strict majority first, so that removing one of three is a single safe step.
    let none = cli(&["config", "set", "quorum.tie_breaker=none", "--admin", &admin[1], "--timeout", "20s"]);
    assert_eq!(none.code(), Some(0), "{}{}\n{}", none.stdout, none.stderr, logs(dir.path()));

    // Node 3 is killed, then removed from node 1.
    children.0[2].kill().unwrap();
    children.0[2].wait().unwrap();
    let removed = cli(&["members", "remove", "--id", "3", "--admin", &admin[0], "--timeout", "20s"]);
    assert_eq!(removed.code(), Some(0), "{}{}\n{}", removed.stdout, removed.stderr, logs(dir.path()));
    wait(dir.path(), "node 2 runs version 2", || {
        status(&admin[1]).is_some_and(|s| s["definition_version"] == 2)
    });
    // Past the members' grace (3 s) for a removed node.
    thread::sleep(Duration::from_millis(3_500));

    // Restarted on its old data directory, it is told by both members and exits 3.
    let started = Instant::now();
    children.0[2] = start(dir.path(), 3, &admin[2], &peers);
    let mut exit = None;
    wait(dir.path(), "node 3 exits", || {
        exit = children.0[2].try_wait().unwrap();
        exit.is_some()
    });
    eprintln!("node 3 exited {:?} after its restart", started.elapsed());
    assert_eq!(exit.and_then(|e| e.code()), Some(3), "{}", logs(dir.path()));
    let text = logs(dir.path());
    assert!(
        text.contains("node 3: members 1, 2 refuse it as a non-member: it was removed from the cluster while it was down"),
        "{text}"
    );
    assert!(text.contains("Nothing is recorded in the data directory"), "{text}");
    wait(dir.path(), "nodes 1 and 2 writable", || writable(&[1, 2]));
}
