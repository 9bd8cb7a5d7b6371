//! The shared directory every node of the service mounts: the claims that say who is
//! active, and the log the active node appends to. Also each node's local ack log.
//!
//! ```text
//!   SHARED/claims/claim-1        {"gen":1,"node":2,"epoch":..,"at_us":..,"from":null,"how":"start"}
//!   SHARED/claims/claim-2        {"gen":2,"node":3,...,"from":2,"how":"takeover"}
//!   SHARED/claims/.tmp-...       a claim being written (ignored by readers)
//!   SHARED/log.jsonl             {"node":2,"gen":1,"epoch":..,"seq":1,"checked_us":..}  one line per append
//!   LOCAL/acks.jsonl             {"node":2,"gen":1,"epoch":..,"seq":1,"checked_us":..,"durable_us":..}
//! ```
//!
//! **Claims are created atomically and exclusively.** A claim is written completely to a
//! temporary file, flushed, then hard-linked to `claim-<gen>`: `link(2)` fails if the name
//! exists, so of several nodes that claim the same generation exactly one wins, and a
//! reader never sees a half-written claim. (`link` is the exclusive create that also works
//! on NFS, where lock files have long been made this way.) Claims are only ever added,
//! always as the next generation after the latest one the claimer saw, so generations have
//! no gaps and "the latest claim" only moves forward.
//!
//! **Appends are one `write(2)` on a file opened with `O_APPEND`**, then `fdatasync`. On a
//! local file system the kernel positions and writes each such call as a unit, so lines of
//! concurrent writers never tear; their order in the file is the order of the writes. (On
//! NFS, `O_APPEND` from two clients is not atomic: concurrent appends can overwrite each
//! other. A split brain there loses data outright; the checker counts torn lines.)
//!
//! Every read is bounded: claims in the directory ([`CLAIMS_MAX`]), bytes of a claim
//! ([`CLAIM_BYTES_MAX`]), bytes of the log ([`LOG_BYTES_MAX`]).

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The claims directory inside the shared directory.
pub const CLAIMS_DIR: &str = "claims";
/// The shared log inside the shared directory.
pub const LOG_FILE: &str = "log.jsonl";
/// The ack log inside a node's local directory.
pub const ACKS_FILE: &str = "acks.jsonl";
/// A claim's file name is this prefix and the generation in decimal.
pub const CLAIM_PREFIX: &str = "claim-";
/// Entries of the claims directory read at most; more is an error (a run makes a handful).
pub const CLAIMS_MAX: usize = 100_000;
/// Bytes of one claim file read at most.
pub const CLAIM_BYTES_MAX: u64 = 4 * 1024;
/// Bytes of the shared log or an ack log read at most (far more than any run writes).
pub const LOG_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// Who holds a generation of the active role, and how it got it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The generation: 1 for the first active node, +1 for every later claim.
    pub gen: u64,
    /// The node that holds it.
    pub node: u64,
    /// The claimer's fencing epoch when it claimed (0 without the gate).
    pub epoch: u64,
    /// `CLOCK_MONOTONIC` microseconds just before the claim was made.
    pub at_us: u64,
    /// The holder of the previous generation, if any.
    pub from: Option<u64>,
    /// Why the claim was made.
    pub how: How,
}

/// Why a claim was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum How {
    /// The first claim of an empty directory.
    Start,
    /// A standby took over from the holder (after `PeerFenced`, or a timeout without the gate).
    Takeover,
    /// The holder claimed the next generation for a new stretch of quorum.
    Reclaim,
}

/// One line of the shared log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The writer.
    pub node: u64,
    /// The generation of the claim the writer held.
    pub gen: u64,
    /// The writer's fencing epoch (0 without the gate).
    pub epoch: u64,
    /// The writer's sequence number, from 1 in each generation.
    pub seq: u64,
    /// `CLOCK_MONOTONIC` microseconds read just before the writer's last check before the
    /// write (the permit's re-check; without the gate, the role check).
    pub checked_us: u64,
}

/// One line of a node's ack log: an append that was durable and confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The record as appended.
    #[serde(flatten)]
    pub record: Record,
    /// `CLOCK_MONOTONIC` microseconds after `fdatasync` returned (and, with the gate, the
    /// permit's second check passed).
    pub durable_us: u64,
}

/// What went wrong with the shared or local directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SharedError {
    /// A file system call failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// The operation.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A claim file is not what this program writes.
    #[error("claim {}: {why}", path.display())]
    BadClaim {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A directory or file is larger than this program ever makes it.
    #[error("{}: more than {limit} {what}", path.display())]
    TooLarge {
        /// The file or directory.
        path: PathBuf,
        /// What was counted.
        what: &'static str,
        /// The bound.
        limit: u64,
    },
    /// `write` took only part of a record.
    #[error("short write to {}: {written} of {len} bytes", path.display())]
    ShortWrite {
        /// The log.
        path: PathBuf,
        /// Bytes written.
        written: usize,
        /// Bytes of the line.
        len: usize,
    },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SharedError + 'a {
    move |source| SharedError::Io { what, path: path.to_owned(), source }
}

/// The shared directory.
#[derive(Debug, Clone)]
pub struct SharedDir {
    root: PathBuf,
}

impl SharedDir {
    /// Opens (creating if needed) the shared directory at `root` and its claims directory.
    pub fn open(root: &Path) -> Result<SharedDir, SharedError> {
        let claims = root.join(CLAIMS_DIR);
        std::fs::create_dir_all(&claims).map_err(io("create", &claims))?;
        Ok(SharedDir { root: root.to_owned() })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The shared log's path.
    pub fn log_path(&self) -> PathBuf {
        self.root.join(LOG_FILE)
    }

    fn claims_dir(&self) -> PathBuf {
        self.root.join(CLAIMS_DIR)
    }

    fn claim_path(&self, gen: u64) -> PathBuf {
        self.claims_dir().join(format!("{CLAIM_PREFIX}{gen}"))
    }

    /// The generations present in the claims directory, unsorted.
    fn generations(&self) -> Result<Vec<u64>, SharedError> {
        let dir = self.claims_dir();
        let mut gens = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io("read", &dir))? {
            let entry = entry.map_err(io("read", &dir))?;
            if gens.len() == CLAIMS_MAX {
                return Err(SharedError::TooLarge { path: dir, what: "claims", limit: CLAIMS_MAX as u64 });
            }
            let name = entry.file_name();
            if let Some(gen) =
                name.to_str().and_then(|n| n.strip_prefix(CLAIM_PREFIX)).and_then(|g| g.parse().ok())
            {
                gens.push(gen);
            }
        }
        Ok(gens)
    }

    /// Reads claim `gen`.
    pub fn claim(&self, gen: u64) -> Result<Claim, SharedError> {
        let path = self.claim_path(gen);
        let text = read_bounded(&path, CLAIM_BYTES_MAX)?;
        let claim: Claim = serde_json::from_slice(&text)
            .map_err(|e| SharedError::BadClaim { path: path.clone(), why: e.to_string() })?;
        if claim.gen != gen {
            return Err(SharedError::BadClaim { path, why: format!("names generation {}", claim.gen) });
        }
        Ok(claim)
    }

    /// The claim with the highest generation, `None` when nobody claimed yet.
    pub fn latest(&self) -> Result<Option<Claim>, SharedError> {
        match self.generations()?.into_iter().max() {
            None => Ok(None),
            Some(gen) => self.claim(gen).map(Some),
        }
    }

    /// Every claim, by generation.
    pub fn claims(&self) -> Result<Vec<Claim>, SharedError> {
        let mut gens = self.generations()?;
        gens.sort_unstable();
        gens.into_iter().map(|g| self.claim(g)).collect()
    }

    /// Creates `claim-<claim.gen>` exclusively. `Ok(true)`: this call created it; `Ok(false)`:
    /// it existed (someone else holds that generation). The claim is durable (file and
    /// directory flushed) before this returns `true`.
    pub fn try_claim(&self, claim: &Claim) -> Result<bool, SharedError> {
        let dir = self.claims_dir();
        let tmp = dir.join(format!(".tmp-{}-{}-{}", claim.gen, claim.node, std::process::id()));
        let body = serde_json::to_vec(claim)
            .map_err(|e| SharedError::BadClaim { path: tmp.clone(), why: format!("cannot encode: {e}") })?;
        let written = File::create(&tmp)
            .and_then(|mut f| {
                f.write_all(&body)?;
                f.sync_all()
            })
            .map_err(io("write", &tmp));
        let target = self.claim_path(claim.gen);
        let linked = written.and_then(|()| match std::fs::hard_link(&tmp, &target) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io("link", &target)(e)),
        });
        // The temporary name is never read; a failure to remove it leaves a dot-file behind.
        let _ = std::fs::remove_file(&tmp);
        let won = linked?;
        if won {
            File::open(&dir).and_then(|d| d.sync_all()).map_err(io("sync", &dir))?;
        }
        Ok(won)
    }

    /// Opens the shared log for appending.
    pub fn open_log(&self) -> Result<LogWriter, SharedError> {
        LogWriter::open(&self.log_path(), true)
    }

    /// Reads the shared log: records in file order, and the lines that are not records.
    pub fn read_log(&self) -> Result<Lines<Record>, SharedError> {
        read_lines(&self.log_path())
    }
}

/// An append-only JSON-lines file: the shared log, or a node's ack log.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: File,
    sync: bool,
}

impl LogWriter {
    /// Opens (creating) `path` for appending; with `sync`, every append is flushed to disk
    /// (`fdatasync`) before it returns.
    pub fn open(path: &Path, sync: bool) -> Result<LogWriter, SharedError> {
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(io("open", path))?;
        Ok(LogWriter { path: path.to_owned(), file, sync })
    }

    /// Appends `item` as one line with a single `write(2)`.
    pub fn append<T: Serialize>(&mut self, item: &T) -> Result<(), SharedError> {
        let mut line = serde_json::to_vec(item).map_err(|e| {
            io("encode", &self.path)(std::io::Error::new(ErrorKind::InvalidData, e.to_string()))
        })?;
        line.push(b'\n');
        let written = self.file.write(&line).map_err(io("append to", &self.path))?;
        if written != line.len() {
            return Err(SharedError::ShortWrite { path: self.path.clone(), written, len: line.len() });
        }
        if self.sync {
            self.file.sync_data().map_err(io("fdatasync", &self.path))?;
        }
        Ok(())
    }
}

/// The parsed lines of a JSON-lines file.
#[derive(Debug, Clone, PartialEq)]
pub struct Lines<T> {
    /// The lines that parsed, in file order.
    pub items: Vec<T>,
    /// Those that did not (line number and text), for example a torn write.
    pub bad: Vec<String>,
}

/// Reads a node's ack log at `path`; a missing file is empty.
pub fn read_acks(path: &Path) -> Result<Lines<Ack>, SharedError> {
    read_lines(path)
}

fn read_lines<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Lines<T>, SharedError> {
    let text = match read_bounded(path, LOG_BYTES_MAX) {
        Ok(t) => t,
        Err(SharedError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut out = Lines { items: Vec::new(), bad: Vec::new() };
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice(line) {
            Ok(item) => out.items.push(item),
            Err(e) => out.bad.push(format!("line {}: {e}: {}", i + 1, String::from_utf8_lossy(line))),
        }
    }
    Ok(out)
}

fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, SharedError> {
    let file = File::open(path).map_err(io("open", path))?;
    let mut buf = Vec::new();
    file.take(limit + 1).read_to_end(&mut buf).map_err(io("read", path))?;
    if buf.len() as u64 > limit {
        return Err(SharedError::TooLarge { path: path.to_owned(), what: "bytes", limit });
    }
    Ok(buf)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("quorate-failover-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn claim(gen: u64, node: u64) -> Claim {
        Claim { gen, node, epoch: 7, at_us: 100, from: None, how: How::Start }
    }

    #[test]
    fn only_one_of_two_claims_of_a_generation_wins_and_latest_moves_forward() {
        let root = temp("claims");
        let dir = SharedDir::open(&root).unwrap();
        assert_eq!(dir.latest().unwrap(), None);
        assert!(dir.try_claim(&claim(1, 2)).unwrap());
        assert!(!dir.try_claim(&claim(1, 3)).unwrap(), "the second claim of generation 1 must lose");
        assert_eq!(dir.latest().unwrap(), Some(claim(1, 2)));
        assert!(dir.try_claim(&claim(2, 3)).unwrap());
        assert_eq!(dir.latest().unwrap().map(|c| c.node), Some(3));
        assert_eq!(dir.claims().unwrap().len(), 2);
        let names: Vec<_> = std::fs::read_dir(root.join(CLAIMS_DIR)).unwrap().collect();
        assert_eq!(names.len(), 2, "no temporary file is left behind");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_claim_that_names_another_generation_is_refused() {
        let root = temp("bad-claim");
        let dir = SharedDir::open(&root).unwrap();
        std::fs::write(root.join(CLAIMS_DIR).join("claim-4"), serde_json::to_vec(&claim(3, 1)).unwrap())
            .unwrap();
        assert!(matches!(dir.latest(), Err(SharedError::BadClaim { .. })));
        std::fs::write(root.join(CLAIMS_DIR).join("claim-4"), b"{\"gen\":").unwrap();
        assert!(matches!(dir.latest(), Err(SharedError::BadClaim { .. })));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn appended_records_read_back_in_order_and_torn_lines_are_reported() {
        let root = temp("log");
        let dir = SharedDir::open(&root).unwrap();
        let mut log = dir.open_log().unwrap();
        let r = |seq| Record { node: 1, gen: 1, epoch: 9, seq, checked_us: seq * 10 };
        log.append(&r(1)).unwrap();
        log.append(&r(2)).unwrap();
        let mut raw = OpenOptions::new().append(true).open(dir.log_path()).unwrap();
        raw.write_all(b"{\"node\":1,\"gen\"\n").unwrap();
        let lines = dir.read_log().unwrap();
        assert_eq!(lines.items, vec![r(1), r(2)]);
        assert_eq!(lines.bad.len(), 1);
        assert!(lines.bad[0].starts_with("line 3:"));
        assert_eq!(read_acks(&root.join("missing")).unwrap().items, Vec::<Ack>::new());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
