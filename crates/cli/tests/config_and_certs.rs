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

#[test]
fn run_without_config_names_the_missing_flags_and_exits_2() {
    let mut cmd = quorate();
    cmd.args(["run", "--id", "1"]);
    let done = run_bounded(cmd, LIMIT);
    assert_eq!(done.code(), Some(2), "stderr: {}", done.stderr);
    assert!(done.stderr.contains("--peer") && done.stderr.contains("--tls-dir"), "{}", done.stderr);
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
    for sub in [&["--help"][..], &["run", "--help"], &["demo", "--help"], &["certs", "init", "--help"]] {
        let mut cmd = quorate();
        cmd.args(sub);
        let done = run_bounded(cmd, LIMIT);
        assert_eq!(done.code(), Some(0), "{sub:?}: {}", done.stderr);
        assert!(done.stdout.contains("Exit codes:"), "{sub:?}:\n{}", done.stdout);
    }
}
