//! Refusals: invalid configurations, overwriting certificates, unreachable nodes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{free_tcp_ports, quorate, run_bounded, TempDir};

const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn a_lease_that_breaks_the_drift_rule_exits_2_and_names_timing_lease() {
    let dir = TempDir::new("badcfg");
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        r#"
[node]
cluster = "test"
id = 1

[[members]]
id = 1
addr = "127.0.0.1:47001"
[[members]]
id = 2
addr = "127.0.0.1:47002"
[[members]]
id = 3
addr = "127.0.0.1:47003"

[tls]
dir = "certs"

[timing]
down_after_min = "1s"
lease = "990ms"
"#,
    )
    .unwrap();
    let mut cmd = quorate();
    cmd.arg("run").arg("--config").arg(&file);
    let done = run_bounded(cmd, LIMIT);
    assert_eq!(done.code(), Some(2), "stderr: {}", done.stderr);
    assert!(done.stderr.contains("timing.lease"), "stderr: {}", done.stderr);
    assert!(done.stderr.contains("990ms"), "stderr: {}", done.stderr);
}

/// A one-voter config; `extra` goes into `[node]`, `tail` at the end.
fn one_node_config(extra: &str, tail: &str) -> String {
    format!(
        "[node]\ncluster = \"test\"\nid = 1\n{extra}\n[[members]]\nid = 1\naddr = \"127.0.0.1:47011\"\n\n[tls]\ndir = \"certs\"\n{tail}"
    )
}

#[test]
fn a_huge_gossip_interval_exits_2_naming_the_field_instead_of_panicking() {
    let dir = TempDir::new("hugecfg");
    let file = dir.path().join("huge.toml");
    std::fs::write(&file, one_node_config("", "\n[gossip]\ninterval = \"500000000000y\"\n")).unwrap();
    let mut cmd = quorate();
    cmd.arg("run").arg("--config").arg(&file);
    let done = run_bounded(cmd, LIMIT);
    assert_eq!(done.code(), Some(2), "stderr: {}", done.stderr);
    assert!(
        done.stderr.contains("invalid gossip.interval = \"500000000000y\": must be at most 1h"),
        "stderr: {}",
        done.stderr
    );
}

#[test]
fn a_voter_without_a_data_dir_exits_2_naming_node_data_dir() {
    let dir = TempDir::new("nodatadir");
    let file = dir.path().join("node.toml");
    std::fs::write(&file, one_node_config("", "")).unwrap();
    let mut cmd = quorate();
    cmd.arg("run").arg("--config").arg(&file);
    let done = run_bounded(cmd, LIMIT);
    assert_eq!(done.code(), Some(2), "stderr: {}", done.stderr);
    assert!(
        done.stderr.contains("node.data_dir") && done.stderr.contains("--data-dir"),
        "stderr: {}",
        done.stderr
    );
}

#[test]
fn a_corrupt_state_file_exits_1_and_is_left_as_it_was() {
    let dir = TempDir::new("corrupt");
    let certs = dir.path().join("certs");
    let mut init = quorate();
    init.args(["certs", "init", "--nodes", "1", "--cluster", "test", "--dir"]).arg(&certs);
    assert_eq!(run_bounded(init, LIMIT).code(), Some(0));
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // A state file cut short, as a crash of a careless copy could leave it.
    let state = data.join("quorate.state");
    std::fs::write(&state, b"qrstate\n\x01\x00\x00\x00\x2c\x00\x00\x00\x07").unwrap();
    let file = dir.path().join("node.toml");
    std::fs::write(&file, one_node_config("data_dir = \"data\"", "")).unwrap();
    let mut cmd = quorate();
    cmd.arg("run").arg("--config").arg(&file);
    let done = run_bounded(cmd, LIMIT);
    assert_eq!(done.code(), Some(1), "stderr: {}", done.stderr);
    assert!(
        done.stderr.contains("quorate.state is corrupt: it is 17 bytes long")
            && done.stderr.contains("Recovering a data directory"),
        "stderr: {}",
        done.stderr
    );
    assert_eq!(std::fs::read(&state).unwrap().len(), 17, "a refused start rewrote the state file");
}

#[test]
fn run_without_config_names_the_missing_flags_and_exits_2() {
    let mut cmd = quorate();
    cmd.args(["run", "--id", "1"]);
    let done = run_bounded(cmd, LIMIT);
    assert_eq!(done.code(), Some(2), "stderr: {}", done.stderr);
    assert!(
        done.stderr.contains("--peer")
            && done.stderr.contains("--tls-dir")
            && done.stderr.contains("--data-dir"),
        "{}",
        done.stderr
    );
}

#[test]
fn certs_init_refuses_to_overwrite_without_force() {
    let dir = TempDir::new("certs");
    let certs = dir.path().join("certs");
    let init = |force: bool| {
        let mut cmd = quorate();
        cmd.args(["certs", "init", "--nodes", "1,2,3", "--cluster", "test", "--dir"]).arg(&certs);
        if force {
            cmd.arg("--force");
        }
        run_bounded(cmd, LIMIT)
    };

    let first = init(false);
    assert_eq!(first.code(), Some(0), "{}", first.stderr);
    for name in ["ca.pem", "ca.key", "node-1.pem", "node-1.key", "node-3.pem", "node-3.key"] {
        assert!(certs.join(name).is_file(), "{name} missing; stdout: {}", first.stdout);
        assert!(first.stdout.contains(name), "{name} not reported: {}", first.stdout);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for key in ["ca.key", "node-2.key"] {
            let mode = std::fs::metadata(certs.join(key)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{key} has mode {mode:o}");
        }
    }
    let before = std::fs::read(certs.join("ca.pem")).unwrap();

    let again = init(false);
    assert_eq!(again.code(), Some(1), "{}", again.stderr);
    assert!(
        again.stderr.contains("refusing to overwrite") && again.stderr.contains("--force"),
        "{}",
        again.stderr
    );
    assert_eq!(std::fs::read(certs.join("ca.pem")).unwrap(), before, "a refused run changed ca.pem");

    let forced = init(true);
    assert_eq!(forced.code(), Some(0), "{}", forced.stderr);
    assert_ne!(std::fs::read(certs.join("ca.pem")).unwrap(), before, "--force did not replace ca.pem");
}

#[test]
fn certs_issue_adds_one_node_from_the_ca_and_show_prints_what_it_binds() {
    let dir = TempDir::new("issue");
    let certs = dir.path().join("certs");
    let mut init = quorate();
    init.args(["certs", "init", "--nodes", "1", "--cluster", "test", "--dir"]).arg(&certs);
    assert_eq!(run_bounded(init, LIMIT).code(), Some(0));
    let issue = |id: &str, days: &str| {
        let mut cmd = quorate();
        cmd.args(["certs", "issue", "--id", id, "--cluster", "test", "--days", days, "--dir"]).arg(&certs);
        run_bounded(cmd, LIMIT)
    };
    let done = issue("4", "30");
    assert_eq!(done.code(), Some(0), "{}", done.stderr);
    assert!(done.stdout.contains("node-4.test.quorate"), "{}", done.stdout);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(certs.join("node-4.key")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "node-4.key has mode {mode:o}");
    }
    let again = issue("4", "30");
    assert_eq!(again.code(), Some(1), "refuses to overwrite: {}", again.stderr);
    assert!(again.stderr.contains("refusing to overwrite"), "{}", again.stderr);
    assert_eq!(issue("0", "30").code(), Some(2), "node 0 is a usage error");
    assert_eq!(issue("5", "0").code(), Some(2), "zero days is a usage error");

    let mut show = quorate();
    show.args(["certs", "show"]).arg(certs.join("node-4.pem")).arg(certs.join("ca.pem"));
    let shown = run_bounded(show, LIMIT);
    assert_eq!(shown.code(), Some(0), "{}", shown.stderr);
    assert!(shown.stdout.contains("binds      node 4 of cluster \"test\""), "{}", shown.stdout);
    // Whole days left, rounded down: 30 when shown within the second it was issued in, 29
    // once that second has passed.
    let fresh = ["(30 days left)", "(29 days left)"];
    assert!(fresh.iter().any(|d| shown.stdout.contains(d)), "{}", shown.stdout);
    assert!(shown.stdout.contains("a CA certificate"), "{}", shown.stdout);

    let mut show = quorate();
    show.args(["certs", "show"]).arg(certs.join("node-4.key"));
    let refused = run_bounded(show, LIMIT);
    assert_eq!(refused.code(), Some(1), "a key is no certificate: {}", refused.stdout);
}

#[test]
fn status_of_an_unreachable_node_exits_1() {
    let port = free_tcp_ports(1)[0];
    let mut cmd = quorate();
    cmd.args(["status", "--admin", &format!("127.0.0.1:{port}")]);
    let done = run_bounded(cmd, LIMIT);
    assert_eq!(done.code(), Some(1), "{}", done.stderr);
    assert!(done.stderr.contains("unreachable"), "{}", done.stderr);
}

#[test]
fn help_documents_the_exit_codes() {
    for sub in [
        &["--help"][..],
        &["run", "--help"],
        &["demo", "--help"],
        &["certs", "init", "--help"],
        &["certs", "issue", "--help"],
        &["certs", "show", "--help"],
    ] {
        let mut cmd = quorate();
        cmd.args(sub);
        let done = run_bounded(cmd, LIMIT);
        assert_eq!(done.code(), Some(0), "{sub:?}: {}", done.stderr);
        assert!(done.stdout.contains("Exit codes:"), "{sub:?}:\n{}", done.stdout);
    }
}
