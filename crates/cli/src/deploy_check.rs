//! Checks on `deploy/` and the `Dockerfile`: the pieces that must agree with each other and
//! with this crate (ports, paths, the certificate name format, probe paths, the flags of
//! `quorate run`) are read from the files and compared. Tests only.

use std::path::{Path, PathBuf};

use quorate::transport::node_dns_name;
use quorate::NodeId;
use serde_norway::Value;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn documents(file: &str) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(repo().join("deploy/kubernetes").join(file))?;
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(&text) {
        out.push(<Value as serde::Deserialize>::deserialize(doc)?);
    }
    Ok(out)
}

fn kind<'a>(docs: &'a [Value], kind: &str, name: &str) -> Result<&'a Value, String> {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
        .ok_or_else(|| format!("no {kind} {name}"))
}

fn str_of<'a>(v: &'a Value, what: &str) -> Result<&'a str, String> {
    v.as_str().ok_or_else(|| format!("{what} is not a string: {v:?}"))
}

fn port_of(addr: &str) -> Result<u64, String> {
    addr.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).ok_or_else(|| format!("no port in {addr:?}"))
}

#[test]
fn the_statefulset_config_service_probes_and_certificates_agree() -> TestResult {
    let docs = documents("quorate.yaml")?;
    let certs = documents("certificates.yaml")?;
    let sts = kind(&docs, "StatefulSet", "quorate")?;
    let svc = kind(&docs, "Service", "quorate")?;
    let pdb = kind(&docs, "PodDisruptionBudget", "quorate")?;
    let config_map = kind(&docs, "ConfigMap", "quorate-config")?;
    let config: toml::Table = toml::from_str(str_of(&config_map["data"]["quorate.toml"], "quorate.toml")?)?;
    let node = config.get("node").ok_or("no [node]")?;
    let cluster = node.get("cluster").and_then(|v| v.as_str()).ok_or("no node.cluster")?;

    // Replicas: 3 or 5, and the disruption budget leaves a quorum.
    let replicas = sts["spec"]["replicas"].as_u64().ok_or("no replicas")?;
    assert!(replicas == 3 || replicas == 5, "{replicas} replicas");
    let unavailable = pdb["spec"]["maxUnavailable"].as_u64().ok_or("no maxUnavailable")?;
    assert!(replicas - unavailable > replicas / 2, "a drain may leave no quorum");

    // Members: ids 1..=replicas at the pods' stable names through the headless Service.
    assert_eq!(svc["spec"]["clusterIP"].as_str(), Some("None"), "the Service must be headless");
    assert_eq!(sts["spec"]["serviceName"], svc["metadata"]["name"]);
    let members = config.get("members").and_then(|m| m.as_array()).ok_or("no [[members]]")?;
    assert_eq!(members.len() as u64, replicas);
    let listen_port = port_of(node.get("listen").and_then(|v| v.as_str()).ok_or("no node.listen")?)?;
    for (ordinal, m) in members.iter().enumerate() {
        assert_eq!(m.get("id").and_then(|v| v.as_integer()), Some(ordinal as i64 + 1), "ids follow ordinals");
        let addr = m.get("addr").and_then(|v| v.as_str()).ok_or("member without addr")?;
        assert_eq!(
            addr,
            format!("quorate-{ordinal}.{}:{listen_port}", str_of(&svc["metadata"]["name"], "svc")?)
        );
    }

    // The config loads through the node's own parser and passes its checks as every pod's
    // node, with the members by name.
    let toml_text = str_of(&config_map["data"]["quorate.toml"], "quorate.toml")?;
    for id in 1..=replicas {
        let mut parsed = quorate::Config::from_toml_str(toml_text)?;
        parsed.id = NodeId(id);
        parsed.check()?;
        assert_eq!(parsed.listen.port() as u64, listen_port);
        let names: Vec<String> = parsed.members.iter().map(|m| m.addr.to_string()).collect();
        for (ordinal, (m, name)) in parsed.members.iter().zip(&names).enumerate() {
            assert_eq!(m.addr.host_name(), Some(format!("quorate-{ordinal}.quorate").as_str()), "{name}");
        }
    }

    // Ports: the config's, the container's and the Service's agree.
    let container = &sts["spec"]["template"]["spec"]["containers"][0];
    let container_port = |name: &str| {
        let ports = container["ports"].as_sequence().cloned().unwrap_or_default();
        ports.iter().find(|p| p["name"].as_str() == Some(name)).and_then(|p| p["containerPort"].as_u64())
    };
    let admin_port = port_of(node.get("admin").and_then(|v| v.as_str()).ok_or("no node.admin")?)?;
    assert_eq!(container_port("quic"), Some(listen_port));
    assert_eq!(container_port("admin"), Some(admin_port));
    let svc_ports = svc["spec"]["ports"].as_sequence().cloned().unwrap_or_default();
    for (name, port) in [("quic", listen_port), ("admin", admin_port)] {
        assert!(svc_ports
            .iter()
            .any(|p| p["name"].as_str() == Some(name) && p["port"].as_u64() == Some(port)));
    }

    // Probes hit paths the admin endpoint serves, on its port.
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        assert_eq!(container[probe]["httpGet"]["path"].as_str(), Some(path), "{probe}");
        assert_eq!(container[probe]["httpGet"]["port"].as_str(), Some("admin"), "{probe}");
    }

    // The container's arguments are flags `quorate run` accepts, and give node ordinal + 1.
    let args: Vec<String> = container["args"]
        .as_sequence()
        .ok_or("no args")?
        .iter()
        .map(|a| str_of(a, "arg").map(|a| a.replace("$(POD_NAME)", "quorate-2")))
        .collect::<Result<_, _>>()?;
    let parsed =
        <crate::Cli as clap::Parser>::try_parse_from(std::iter::once("quorate".to_owned()).chain(args))?;
    assert_eq!(crate::run_id(&parsed), Some(3), "quorate-2 is node 3");

    // Paths: data directory on the claim, config and certificates where the config says.
    let mounts = container["volumeMounts"].as_sequence().cloned().unwrap_or_default();
    let mount = |name: &str| {
        mounts
            .iter()
            .find(|m| m["name"].as_str() == Some(name))
            .and_then(|m| m["mountPath"].as_str().map(str::to_owned))
    };
    assert_eq!(mount("data").as_deref(), node.get("data_dir").and_then(|v| v.as_str()));
    assert_eq!(sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"].as_str(), Some("data"));
    let tls_dir = config.get("tls").and_then(|t| t.get("dir")).and_then(|v| v.as_str());
    assert_eq!(mount("tls").as_deref(), tls_dir);

    // Certificates: every node's secret lands as node-<id>.pem/.key (and one ca.pem), and
    // cert-manager issues it for exactly node-<id>.<cluster>.quorate.
    let volumes = sts["spec"]["template"]["spec"]["volumes"].as_sequence().cloned().unwrap_or_default();
    let tls = volumes.iter().find(|v| v["name"].as_str() == Some("tls")).ok_or("no tls volume")?;
    let sources = tls["projected"]["sources"].as_sequence().cloned().unwrap_or_default();
    let mut paths = Vec::new();
    for id in 1..=replicas {
        let secret = format!("quorate-node-{id}");
        let source =
            sources.iter().find(|s| s["secret"]["name"].as_str() == Some(&secret)).ok_or("secret")?;
        for item in source["secret"]["items"].as_sequence().cloned().unwrap_or_default() {
            paths.push(format!("{}<-{}", str_of(&item["path"], "path")?, str_of(&item["key"], "key")?));
        }
        let cert = kind(&certs, "Certificate", &secret)?;
        assert_eq!(cert["spec"]["secretName"].as_str(), Some(secret.as_str()));
        let name = node_dns_name(cluster, NodeId(id));
        let names: Vec<&str> = cert["spec"]["dnsNames"]
            .as_sequence()
            .ok_or("dnsNames")?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(names, [name.as_str()], "exactly the quorate name");
        let usages: Vec<&str> =
            cert["spec"]["usages"].as_sequence().ok_or("usages")?.iter().filter_map(Value::as_str).collect();
        assert!(usages.contains(&"server auth") && usages.contains(&"client auth"), "{usages:?}");
        assert_eq!(cert["spec"]["issuerRef"]["name"].as_str(), Some("quorate-ca"));
        assert_eq!(quorate::transport::parse_node_dns_name(&name), Some((NodeId(id), cluster.to_owned())));
    }
    for id in 1..=replicas {
        assert!(
            paths.contains(&format!("node-{id}.pem<-tls.crt"))
                && paths.contains(&format!("node-{id}.key<-tls.key"))
        );
    }
    assert_eq!(paths.iter().filter(|p| *p == "ca.pem<-ca.crt").count(), 1, "{paths:?}");
    let ca = kind(&certs, "Certificate", "quorate-ca")?;
    assert_eq!(ca["spec"]["isCA"].as_bool(), Some(true));
    Ok(())
}

#[test]
fn the_dockerfile_builds_the_documented_way_and_runs_as_non_root() -> TestResult {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile"))?;
    let docs = std::fs::read_to_string(repo().join("docs/deploy.md"))?;
    let build = dockerfile.lines().find(|l| l.starts_with("RUN cargo build")).ok_or("no cargo build step")?;
    let command = build.trim_start_matches("RUN ");
    assert!(docs.contains(command), "docs/deploy.md does not show `{command}`");
    assert!(dockerfile.contains("--locked") && dockerfile.contains("-p quorate-cli"));
    let user = dockerfile.lines().rfind(|l| l.starts_with("USER ")).ok_or("no USER")?;
    assert!(!user.contains("root") && !user.ends_with(" 0") && !user.contains(" 0:"), "{user}");
    let sts_image = documents("quorate.yaml")?
        .iter()
        .find_map(|d| d["spec"]["template"]["spec"]["containers"][0]["image"].as_str().map(str::to_owned))
        .ok_or("no image")?;
    assert!(
        docs.contains(&format!("docker build -t {sts_image} .")),
        "docs build the image the manifest runs"
    );
    Ok(())
}

#[test]
fn the_systemd_units_pass_systemd_analyze_verify() -> TestResult {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    if !analyze.exists() {
        eprintln!("systemd-analyze not installed; units not verified");
        return Ok(());
    }
    let dir = std::env::temp_dir().join(format!("quorate-units-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut failures = Vec::new();
    for (file, as_name) in
        [("quorate.service", "quorate.service"), ("quorate-sidecar@.service", "quorate-sidecar@db.service")]
    {
        let unit = std::fs::read_to_string(repo().join("deploy/systemd").join(file))?;
        assert!(unit.contains("ExecStart=/usr/local/bin/quorate run --config /etc/quorate/"), "{file}");
        // verify also checks the binary exists: point it at one that does.
        let path = dir.join(as_name);
        std::fs::write(&path, unit.replace("/usr/local/bin/quorate", "/bin/true"))?;
        let out = std::process::Command::new(analyze).arg("verify").arg(&path).output()?;
        let said = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() || !said.trim().is_empty() {
            failures.push(format!("{file}: {said}"));
        }
    }
    std::fs::remove_dir_all(&dir)?;
    assert!(failures.is_empty(), "{failures:?}");
    Ok(())
}
