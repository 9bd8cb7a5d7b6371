//! A bridged network for scenarios whose nodes must have addresses of their own: each node
//! in its own namespace, joined to a Linux bridge in the cluster's namespace (the hub) by a
//! veth pair, and the members named in per-namespace hosts files.
//!
//! ```text
//!   hub namespace qe2e-<pid>-<scenario>:   br0 ── v1l0 ── v2l0 ── v3l0 ── (v3l1 after a move)
//!                                                  │       │       │
//!   node namespaces  ...-n1l0  ...-n2l0  ...-n3l0: eth0 10.77.0.1, .2, .3 (/24)
//!   /etc/netns/<node namespace>/hosts:    10.77.0.1  quorate-1.qe2e.internal  (one per member)
//! ```
//!
//! `ip netns exec NAME` bind-mounts `/etc/netns/NAME/hosts` over `/etc/hosts` for the
//! program it runs, so each node resolves the members' names through its own hosts file with
//! the system resolver, as it would through DNS. [`Bridge::move_node`] gives a (stopped) node
//! a new namespace and address, `10.77.0.(id + 10 x life)`, and rewrites every hosts file to
//! the new address, as a DNS record would change. The hosts files are rewritten in place with
//! lines of fixed width (the bind mount holds the file, not its name, so a new file would not
//! be seen), so a node never reads a shorter or empty file.
//!
//! The private range 10.77.0.0/24 exists only inside these namespaces: the hub has no other
//! link and no route out. Every namespace and hosts directory is deleted when the bridge is
//! dropped (also while a panic unwinds); a harness killed before that leaves namespaces
//! named `qe2e-<pid>-...`, which the next run's stale sweep deletes with their hosts
//! directories.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::Command;

use crate::netns::{run, Namespace, Tools};

/// The bridge in the hub namespace.
const BRIDGE: &str = "br0";
/// Most lives a node may have (moves + 1): keeps addresses inside the /24.
pub const LIVES_MAX: u64 = 20;

/// The DNS name of node `id` in every hosts file.
pub fn host_name(id: u64) -> String {
    format!("quorate-{id}.qe2e.internal")
}

/// Node `id`'s address in its `life` (0 first, then one more per move).
pub fn address(id: u64, life: u64) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, u8::try_from(id + 10 * life).unwrap_or(u8::MAX))
}

/// One node's current namespace.
#[derive(Debug)]
struct NodeNet {
    ns: Namespace,
    life: u64,
}

/// The hub's bridge and the nodes' namespaces; see the module docs.
#[derive(Debug)]
pub struct Bridge {
    tools: Tools,
    hub: String,
    nodes: BTreeMap<u64, NodeNet>,
}

impl Bridge {
    /// Creates the bridge in namespace `hub` and one namespace per node of `ids`, each with
    /// its first address, and writes every hosts file.
    pub fn create(tools: &Tools, hub: &Namespace, ids: &[u64]) -> Result<Bridge, String> {
        let ip = |args: &[&str]| run(Command::new(&tools.ip).args(args));
        ip(&["-n", hub.name(), "link", "add", BRIDGE, "type", "bridge"])?;
        ip(&["-n", hub.name(), "link", "set", BRIDGE, "up"])?;
        let mut bridge = Bridge { tools: tools.clone(), hub: hub.name().to_owned(), nodes: BTreeMap::new() };
        for &id in ids {
            bridge.attach(id, 0)?;
        }
        bridge.write_hosts()?;
        Ok(bridge)
    }

    /// Node `id`'s namespace now.
    pub fn namespace(&self, id: u64) -> Option<&Namespace> {
        self.nodes.get(&id).map(|n| &n.ns)
    }

    /// Node `id`'s address now.
    pub fn address_of(&self, id: u64) -> Option<Ipv4Addr> {
        self.nodes.get(&id).map(|n| address(id, n.life))
    }

    /// Moves node `id` (which must not run: its namespace is deleted with anything inside)
    /// to a new namespace with its next address, and points its name there in every hosts
    /// file. Returns the new address.
    pub fn move_node(&mut self, id: u64) -> Result<Ipv4Addr, String> {
        let old = self.nodes.remove(&id).ok_or_else(|| format!("node {id} has no namespace"))?;
        let life = old.life + 1;
        if life >= LIVES_MAX {
            return Err(format!("node {id} moved {life} times, at most {} allowed", LIVES_MAX - 1));
        }
        drop(old);
        self.attach(id, life)?;
        self.write_hosts()?;
        Ok(address(id, life))
    }

    /// A namespace for node `id`'s `life`, its veth pair on the bridge and its address.
    fn attach(&mut self, id: u64, life: u64) -> Result<(), String> {
        let name = format!("{}-n{id}l{life}", self.hub);
        let ns = Namespace::create(&self.tools, &name)?;
        let veth = format!("v{id}l{life}");
        let addr = format!("{}/24", address(id, life));
        let ip = |args: &[&str]| run(Command::new(&self.tools.ip).args(args));
        ip(&["-n", &self.hub, "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &name])?;
        ip(&["-n", &self.hub, "link", "set", &veth, "master", BRIDGE, "up"])?;
        ip(&["-n", &name, "addr", "add", &addr, "dev", "eth0"])?;
        ip(&["-n", &name, "link", "set", "eth0", "up"])?;
        self.nodes.insert(id, NodeNet { ns, life });
        Ok(())
    }

    /// Every member's current address, one fixed-width line each.
    fn hosts(&self) -> String {
        let mut text = format!("{:<15} localhost\n", "127.0.0.1");
        for (&id, node) in &self.nodes {
            text.push_str(&format!("{:<15} {}\n", address(id, node.life).to_string(), host_name(id)));
        }
        text
    }

    /// Writes the hosts file of every node namespace, in place.
    fn write_hosts(&self) -> Result<(), String> {
        let text = self.hosts();
        for node in self.nodes.values() {
            let dir = crate::netns::etc_dir(node.ns.name());
            std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
            let path = dir.join("hosts");
            let write = || -> std::io::Result<()> {
                let mut file =
                    std::fs::OpenOptions::new().create(true).write(true).truncate(false).open(&path)?;
                file.write_all(text.as_bytes())?;
                file.set_len(text.len() as u64)
            };
            write().map_err(|e| format!("write {}: {e}", path.display()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_stay_in_the_private_range_and_differ_per_life() {
        assert_eq!(address(3, 0), Ipv4Addr::new(10, 77, 0, 3));
        assert_eq!(address(3, 1), Ipv4Addr::new(10, 77, 0, 13));
        let all: std::collections::BTreeSet<Ipv4Addr> =
            (1..=5).flat_map(|id| (0..LIVES_MAX).map(move |l| address(id, l))).collect();
        assert_eq!(all.len(), 5 * LIVES_MAX as usize, "no two lives share an address");
        assert!(all.iter().all(|a| a.octets()[..3] == [10, 77, 0] && a.octets()[3] > 0));
    }

    #[test]
    fn every_hosts_line_has_the_same_width() {
        let lines =
            [address(1, 0), address(1, 19)].map(|a| format!("{:<15} {}\n", a.to_string(), host_name(1)));
        assert_eq!(lines[0].len(), lines[1].len());
    }
}
