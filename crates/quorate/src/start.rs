//! What a node does before its transport starts: open and lock the data directory, take the
//! new life's incarnation, pick the definition to start from (the configuration file's,
//! version 0, or a later one the data directory kept), open the event log.
//!
//! ```text
//!   DataDir::open ─► load_roster: not listed?  ─► refuse: removed at version N
//!                  ─► begin_life (incarnation stored)
//!   ValidConfig (file, version 0) ─► with_roster(kept) when the kept version is later
//!                                 ─► transport members and passive peers from that roster
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use quorate_core::{Memory, Promises, ValidConfig};
use quorate_proto::{Incarnation, NodeId, Roster};
use quorate_transport::MemberAddress;

use crate::config::{Config, EventsOut};
use crate::data_dir::DataDir;
use crate::node::StartError;
use crate::reconfigure::passive_of;

/// What the data directory gave a new life.
pub(crate) struct Life {
    pub(crate) dir: Option<DataDir>,
    pub(crate) incarnation: Incarnation,
    pub(crate) memory: Memory,
    /// The definition the data directory kept, if it keeps one.
    pub(crate) roster: Option<Roster>,
}

/// Opens and locks the data directory, if the node has one, refuses to start a node that
/// a kept definition no longer lists, and stores the new life's incarnation. Without a
/// data directory (an observer) the incarnation is the wall clock.
pub(crate) fn begin_life(config: &Config) -> Result<Life, StartError> {
    let wall = wall_clock_ms();
    let Some(path) = &config.data_dir else {
        return Ok(Life {
            dir: None,
            incarnation: Incarnation(wall.max(1)),
            memory: Memory::Volatile,
            roster: None,
        });
    };
    let dir = DataDir::open(path)?;
    let roster = dir.load_roster()?;
    if let Some(r) = &roster {
        if !r.votes.is_member(config.id) {
            // Nothing written: the directory stays as the removal left it.
            return Err(StartError::Removed { id: config.id, version: r.version, dir: path.clone() });
        }
    }
    let life = dir.begin_life(wall)?;
    let incarnation = life.current.incarnation;
    match life.previous {
        Some(previous) if wall <= previous.incarnation => tracing::warn!(
            node = config.id.0,
            wall_clock_ms = wall,
            previous = previous.incarnation,
            incarnation,
            "the wall clock is not past the previous life's incarnation (clock set back, or not \
             yet synced?); continuing from the stored one so that epochs keep growing"
        ),
        Some(previous) => {
            tracing::info!(node = config.id.0, previous = previous.incarnation, incarnation, "new life")
        }
        None => tracing::info!(node = config.id.0, dir = %path.display(), incarnation, "first life"),
    }
    // What the earlier lives may have promised peers, honoured by this one (zero at first).
    let prior = Promises { ack_hold: life.current.ack_hold, floor: life.current.floor };
    Ok(Life {
        dir: Some(dir),
        incarnation: Incarnation(incarnation),
        memory: Memory::Durable { prior },
        roster,
    })
}

/// The configuration the core starts from: the file's (version 0), or the definition the
/// data directory kept when that is later. A kept definition whose members differ from the
/// file's is logged: the kept one wins (it is what the cluster ran last).
pub(crate) fn with_kept(
    config: &Config,
    core: ValidConfig,
    kept: Option<Roster>,
) -> Result<ValidConfig, StartError> {
    let Some(kept) = kept else { return Ok(core) };
    if kept.version <= core.roster().version {
        return Ok(core);
    }
    if kept.votes != core.roster().votes {
        tracing::warn!(
            node = config.id.0,
            version = kept.version,
            "the configuration file's members, votes or tie-breaker differ from definition version {} kept \
             in the data directory (changed online); the kept definition wins. Update the file to match \
             (`quorate status` shows it) to silence this",
            kept.version
        );
    } else {
        tracing::info!(
            node = config.id.0,
            version = kept.version,
            "starting from the definition kept in the data directory"
        );
    }
    core.with_roster(kept).map_err(|e| StartError::Config(e.into()))
}

/// The configuration and its checked core part, with the timing preset a later kept
/// definition names in place of the file's `[timing]` (see `timing.rs`).
pub(crate) fn with_kept_timing(
    config: Config,
    core: ValidConfig,
    kept: Option<&Roster>,
) -> Result<(Config, ValidConfig), StartError> {
    let Some((name, version)) = kept
        .filter(|k| k.version > core.roster().version)
        .and_then(|k| k.timing.as_deref().map(|name| (name.to_owned(), k.version)))
    else {
        return Ok((config, core));
    };
    tracing::info!(
        node = config.id.0,
        preset = %name,
        version,
        "timing preset named by the kept definition (changed online); the configuration file's [timing] \
         settings are set aside (its max_clock_drift stays)"
    );
    let config = crate::timing::with_preset(config, &name);
    let core = config.check()?;
    Ok((config, core))
}

/// The transport's members and passive peers for the definition the node starts from:
/// the configuration file's own list at version 0; at a later version the addresses that
/// definition gives (a member without a usable one falls back to the file's address for
/// the same id, or is left out with a warning).
pub(crate) fn transport_members(
    config: &Config,
    roster: &Roster,
) -> (Vec<(NodeId, MemberAddress)>, Vec<NodeId>) {
    if roster.version == 0 {
        let members = config.members.iter().map(|m| (m.id, m.addr.clone())).collect();
        return (members, silent_peers(config));
    }
    let mut members = Vec::new();
    for (id, _) in roster.votes.members() {
        let parsed = roster.address(id).and_then(|a| a.parse::<MemberAddress>().ok());
        let from_file = || config.members.iter().find(|m| m.id == id).map(|m| m.addr.clone());
        match parsed.or_else(from_file) {
            Some(addr) => members.push((id, addr)),
            None if id == config.id => {}
            None => tracing::warn!(
                peer = id.0,
                version = roster.version,
                "member without a usable address in the \
                kept definition; it is not dialed or accepted"
            ),
        }
    }
    (members, passive_of(roster, config.id))
}

/// Members this node has nothing to send: for an observer, the other observers (it
/// heartbeats, polls and gossips with voters only, as `VoteTable::peers_of` says). Its
/// transport does not dial them, so two observers hold no idle connection between them
/// (one that counts itself a voter under another definition still dials, and is accepted).
fn silent_peers(config: &Config) -> Vec<NodeId> {
    if config.own_votes() > 0 {
        return Vec::new();
    }
    config.members.iter().filter(|m| m.votes == 0 && m.id != config.id).map(|m| m.id).collect()
}

pub(crate) fn open_event_log(
    out: &Option<EventsOut>,
) -> Result<Option<Box<dyn std::io::Write + Send>>, StartError> {
    match out {
        None => Ok(None),
        Some(EventsOut::Stdout) => Ok(Some(Box::new(std::io::stdout()))),
        Some(EventsOut::File(path)) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map(|f| Some(Box::new(std::io::BufWriter::new(f)) as Box<dyn std::io::Write + Send>))
            .map_err(|source| StartError::EventLog { path: path.display().to_string(), source }),
    }
}

/// Milliseconds since the Unix epoch; 0 for a clock before 1970.
fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
