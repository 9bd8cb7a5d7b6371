//! The `quorate-kv` binary's start-up failures: exit codes and messages that name the fault.

use std::process::Command;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn kv() -> Command {
    Command::new(env!("CARGO_BIN_EXE_quorate-kv"))
}

fn temp_dir(name: &str) -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("quorate-kv-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[test]
fn an_invalid_config_exits_2_naming_the_field_and_creates_no_database() -> TestResult {
    let dir = temp_dir("badconfig")?;
    let config = dir.join("node.toml");
    std::fs::write(
        &config,
        "[node]\ncluster = \"kv\"\nid = 1\n[[members]]\nid = 1\naddr = \"127.0.0.1:7001\"\n\
         [tls]\ndir = \"certs\"\n[timing]\nlease = \"5s\"\n",
    )?;
    let out = kv()
        .arg("--config")
        .arg(&config)
        .arg("--data")
        .arg(dir.join("data"))
        .args(["--http", "127.0.0.1:0"])
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("timing.lease"), "{stderr}");
    assert!(!dir.join("data").exists(), "a database was created for a node that cannot start");
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

#[test]
fn missing_flags_and_a_missing_config_file_exit_2() -> TestResult {
    let out = kv().args(["--http", "127.0.0.1:0"]).output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config"));
    let out = kv()
        .args(["--config", "/nonexistent/node.toml", "--data", "/nonexistent", "--http", "127.0.0.1:0"])
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/node.toml"));
    let out = kv().arg("--help").output()?;
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("PUT /kv/{key}"));
    Ok(())
}
