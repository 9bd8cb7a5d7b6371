//! The node's data directory: what must outlive a process, so that identities that must only
//! grow keep growing whatever the wall clock does.
//!
//! ```text
//!   Node::start ─► DataDir::open(dir)     create the directory if missing; flock quorate.lock
//!               │                         (a second process on the same directory is refused)
//!               ├► load()                 quorate.state: None on a first start, Err if corrupt
//!               ├► incarnation = max(wall clock ms, last + 1)
//!               ├► store()                quorate.state.tmp, fsync, rename, fsync the directory
//!               └► only then the transport starts and the first datagram leaves
//! ```
//!
//! The epoch of a node's `n`-th quorum in a life is `incarnation * 2^20 + n`, so a strictly
//! growing incarnation is enough for epochs that never go backwards across restarts, even
//! when a host boots with its clock behind (before NTP synced) or before 1970. Without it a
//! restarted node whose clock went back is refused by every peer as a stale incarnation,
//! and with equal incarnations an ack left over from a previous life could match a
//! heartbeat of the new one.
//!
//! Each file is replaced atomically (write a temporary file, fsync it, rename it over the
//! old one, fsync the directory), so a crash leaves either the old or the new file. The
//! state file's layout is in `state_file`, the peers file's in `peers_file`; a damaged one
//! stops the node with [`DataDirError::Corrupt`], whose text says how an operator recovers.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use quorate_core::PeerDefinitions;
use quorate_gate::Epoch;

pub use crate::integrity::Corruption;
use crate::peers_file::{self, PEERS_FILE, PEERS_READ_MAX, PEERS_TMP_FILE};
use crate::roster_file::{self, ROSTER_FILE, ROSTER_READ_MAX, ROSTER_TMP_FILE};
use crate::state_file::{Durable, STATE_BYTES, STATE_FILE, STATE_TMP_FILE};
use quorate_proto::Roster;

/// The lock file: held (`flock`, exclusive) while a node runs; holds its process id.
pub const LOCK_FILE: &str = "quorate.lock";
/// The largest incarnation: `incarnation * 2^20 + n` must fit an epoch (`u64`). In wall-clock
/// milliseconds this is the year 2527.
pub const INCARNATION_MAX: u64 = u64::MAX >> Epoch::GAIN_BITS;

/// Reading stops here: a state file is tiny, anything longer is corrupt anyway.
const STATE_READ_MAX: u64 = 4096;

/// Why the data directory cannot be used. Nothing was sent when `Node::start` returns one
/// of these: the node stops before its transport starts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataDirError {
    /// The directory does not exist and cannot be created, or cannot be examined.
    #[error("cannot create data directory {path}: {source}; create it or fix the path and its permissions")]
    Create {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The path exists and is not a directory.
    #[error("data directory {path} exists and is not a directory; point node.data_dir (--data-dir) at a directory")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// The lock file cannot be created, locked or written: typically the directory is not
    /// writable by this user.
    #[error("cannot lock data directory with {path}: {source}; the directory must be writable by this user")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another process holds the directory's lock.
    #[error(
        "data directory {path} is in use by another process{}; each node needs its own data \
         directory: stop that process, or give this node another node.data_dir (--data-dir)",
        holder_text(.holder)
    )]
    Locked {
        /// The directory.
        path: PathBuf,
        /// The process id the lock file names, if it could be read.
        holder: Option<u32>,
    },
    /// The state file exists and cannot be read.
    #[error("cannot read {path}: {source}; check its permissions")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The state file cannot be written, synced or renamed into place. The previous state
    /// file, if any, is unchanged.
    #[error("cannot write {path}: {source}; check free space and permissions (the previous state file is unchanged)")]
    Write {
        /// The file or directory at fault.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The state file is damaged. Starting afresh could reuse epochs of an earlier life.
    #[error(
        "{path} is corrupt: {problem}. The node does not start: starting afresh could reuse \
         fencing epochs of an earlier life. To recover, follow \"Recovering a data directory\" \
         in docs/operations.md"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: Corruption,
    },
    /// The next incarnation would not fit an epoch.
    #[error(
        "the next incarnation ({incarnation}) exceeds the largest possible ({max}, the year 2527 in \
         milliseconds): the wall clock or the state file is far in the future; fix the clock, \
         then follow \"Recovering a data directory\" in docs/operations.md"
    )]
    IncarnationTooLarge {
        /// The incarnation that was computed (saturated at `u64::MAX`).
        incarnation: u64,
        /// [`INCARNATION_MAX`].
        max: u64,
    },
}

fn holder_text(holder: &Option<u32>) -> String {
    holder.map_or_else(String::new, |pid| format!(" (pid {pid})"))
}

/// A locked data directory. The lock is held until this value is dropped (or the process
/// ends, however it ends: the kernel releases an `flock` with the last open descriptor).
#[derive(Debug)]
pub struct DataDir {
    dir: PathBuf,
    /// Holds the exclusive `flock` for as long as it is open.
    _lock: File,
}

/// A new life's durable state and what the previous life left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewLife {
    /// What the state file held before this start; `None` on a first start.
    pub previous: Option<Durable>,
    /// What is stored now: the new incarnation, `ack_hold` and `floor` carried over.
    pub current: Durable,
}

impl DataDir {
    /// Creates the directory if it is missing and takes its lock. Fails with
    /// [`DataDirError::Locked`] if another process (or another `DataDir` in this process)
    /// holds it.
    pub fn open(path: impl AsRef<Path>) -> Result<DataDir, DataDirError> {
        let dir = path.as_ref().to_owned();
        match std::fs::metadata(&dir) {
            Ok(meta) if !meta.is_dir() => return Err(DataDirError::NotADirectory { path: dir }),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // The new directory's own entry must survive a power loss too, or the next
                // start would find no state and fall back to the wall clock.
                let parent = match dir.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                std::fs::create_dir_all(&dir)
                    .and_then(|()| File::open(parent))
                    .and_then(|p| p.sync_all())
                    .map_err(|source| DataDirError::Create { path: dir.clone(), source })?;
                tracing::info!(dir = %dir.display(), "created data directory");
            }
            Err(source) => return Err(DataDirError::Create { path: dir, source }),
        }
        let lock_path = dir.join(LOCK_FILE);
        let lock_err = |source| DataDirError::Lock { path: lock_path.clone(), source };
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(lock_err)?;
        match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let holder = read_pid(&mut lock);
                return Err(DataDirError::Locked { path: dir, holder });
            }
            Err(e) => return Err(lock_err(e.into())),
        }
        // The pid is for the operator reading an error; the lock itself is the flock.
        lock.set_len(0)
            .and_then(|()| lock.write_all(format!("{}\n", std::process::id()).as_bytes()))
            .map_err(lock_err)?;
        Ok(DataDir { dir, _lock: lock })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Reads the state file: `None` if there is none yet (a first start).
    pub fn load(&self) -> Result<Option<Durable>, DataDirError> {
        let path = self.dir.join(STATE_FILE);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(DataDirError::Read { path, source }),
        };
        let mut bytes = Vec::with_capacity(STATE_BYTES);
        if let Err(source) = file.take(STATE_READ_MAX).read_to_end(&mut bytes) {
            return Err(DataDirError::Read { path, source });
        }
        Durable::decode(&bytes).map(Some).map_err(|problem| DataDirError::Corrupt { path, problem })
    }

    /// Replaces the state file atomically and durably: written to [`STATE_TMP_FILE`],
    /// fsynced, renamed over [`STATE_FILE`], then the directory fsynced so that the rename
    /// itself survives a power loss.
    pub fn store(&self, durable: &Durable) -> Result<(), DataDirError> {
        self.replace(STATE_FILE, STATE_TMP_FILE, &durable.encode())
    }

    /// Reads the peers file ([`crate::peers_file`]): the definitions the earlier lives
    /// heard their peers run. Empty when there is none yet; an error when it is damaged.
    pub fn load_peers(&self) -> Result<PeerDefinitions, DataDirError> {
        let path = self.dir.join(PEERS_FILE);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PeerDefinitions::default()),
            Err(source) => return Err(DataDirError::Read { path, source }),
        };
        let mut bytes = Vec::new();
        if let Err(source) = file.take(PEERS_READ_MAX).read_to_end(&mut bytes) {
            return Err(DataDirError::Read { path, source });
        }
        peers_file::decode(&bytes).map_err(|problem| DataDirError::Corrupt { path, problem })
    }

    /// Replaces the peers file atomically and durably, like [`DataDir::store`].
    pub fn store_peers(&self, peers: &PeerDefinitions) -> Result<(), DataDirError> {
        self.replace(PEERS_FILE, PEERS_TMP_FILE, &peers_file::encode(peers))
    }

    /// Reads the definition file ([`crate::roster_file`]): the latest definition this
    /// node ran. `None` when there is none yet (the node never changed its definition
    /// online); an error when it is damaged.
    pub fn load_roster(&self) -> Result<Option<Roster>, DataDirError> {
        let path = self.dir.join(ROSTER_FILE);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(DataDirError::Read { path, source }),
        };
        let mut bytes = Vec::new();
        if let Err(source) = file.take(ROSTER_READ_MAX).read_to_end(&mut bytes) {
            return Err(DataDirError::Read { path, source });
        }
        roster_file::decode(&bytes).map(Some).map_err(|problem| DataDirError::Corrupt { path, problem })
    }

    /// Replaces the definition file atomically and durably, like [`DataDir::store`]: done
    /// before the node runs (and so announces) the definition.
    pub fn store_roster(&self, roster: &Roster) -> Result<(), DataDirError> {
        self.replace(ROSTER_FILE, ROSTER_TMP_FILE, &roster_file::encode(roster))
    }

    /// Writes `bytes` to `tmp_name`, fsyncs it, renames it over `name`, fsyncs the directory.
    fn replace(&self, name: &str, tmp_name: &str, bytes: &[u8]) -> Result<(), DataDirError> {
        let tmp = self.dir.join(tmp_name);
        let path = self.dir.join(name);
        let written = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()));
        written.map_err(|source| DataDirError::Write { path: tmp.clone(), source })?;
        std::fs::rename(&tmp, &path).map_err(|source| DataDirError::Write { path: path.clone(), source })?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| DataDirError::Write { path: self.dir.clone(), source })
    }

    /// Starts a new life: loads the state, takes `max(wall_clock_ms, last + 1)` as the
    /// incarnation (see [`next_incarnation`]), carries `ack_hold` and `floor` over, and
    /// stores the result before returning it.
    pub fn begin_life(&self, wall_clock_ms: u64) -> Result<NewLife, DataDirError> {
        let previous = self.load()?;
        let incarnation = next_incarnation(wall_clock_ms, previous.map(|p| p.incarnation))?;
        let current = Durable { incarnation, ..previous.unwrap_or_default() };
        self.store(&current)?;
        Ok(NewLife { previous, current })
    }
}

/// The incarnation of a new life: `max(wall_clock_ms, last + 1)`, at least 1, at most
/// [`INCARNATION_MAX`]. Wall-clock milliseconds keep incarnations meaningful to people
/// (they read as start times) and distinct across nodes that lost their directory; `last +
/// 1` makes them grow when the clock went back.
pub fn next_incarnation(wall_clock_ms: u64, last: Option<u64>) -> Result<u64, DataDirError> {
    let after_last = last.map_or(1, |l| l.saturating_add(1));
    let incarnation = wall_clock_ms.max(after_last);
    if incarnation > INCARNATION_MAX {
        return Err(DataDirError::IncarnationTooLarge { incarnation, max: INCARNATION_MAX });
    }
    Ok(incarnation)
}

/// The pid a lock file names, if it names one.
fn read_pid(lock: &mut File) -> Option<u32> {
    let mut text = String::new();
    lock.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A fresh directory under the system temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            use std::sync::atomic::{AtomicU64, Ordering};
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("quorate-datadir-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            Scratch(path)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A record an earlier life could have left.
    fn earlier() -> Durable {
        Durable {
            incarnation: 1_795_000_000_123,
            ack_hold: Duration::from_millis(400),
            floor: Duration::from_secs(3),
        }
    }

    #[test]
    fn incarnation_is_the_wall_clock_or_one_past_the_last_whichever_is_larger() -> Result<(), DataDirError> {
        assert_eq!(next_incarnation(5_000, None)?, 5_000);
        assert_eq!(next_incarnation(5_000, Some(4_000))?, 5_000);
        // The clock went back an hour: one past the last life.
        assert_eq!(next_incarnation(5_000, Some(3_605_000))?, 3_605_001);
        // Before 1970 the wall clock reads 0: every life still gets a larger incarnation.
        assert_eq!(next_incarnation(0, None)?, 1);
        assert_eq!(next_incarnation(0, Some(1))?, 2);
        assert!(matches!(
            next_incarnation(0, Some(INCARNATION_MAX)),
            Err(DataDirError::IncarnationTooLarge { .. })
        ));
        assert!(matches!(next_incarnation(u64::MAX, None), Err(DataDirError::IncarnationTooLarge { .. })));
        Ok(())
    }

    #[test]
    fn lives_grow_across_reopens_whatever_the_wall_clock_says() -> Result<(), DataDirError> {
        let scratch = Scratch::new("lives");
        let wall = [1_795_000_000_000, 1_794_999_000_000, 0, 1_795_000_000_500];
        let mut last = 0;
        for (i, ms) in wall.into_iter().enumerate() {
            let dir = DataDir::open(&scratch.0)?;
            let life = dir.begin_life(ms)?;
            assert!(life.current.incarnation > last, "life {i}: {life:?}");
            assert_eq!(life.previous.map(|p| p.incarnation), (i > 0).then_some(last));
            assert_eq!(dir.load()?, Some(life.current));
            last = life.current.incarnation;
        }
        // Once the clock is ahead again, the incarnation is the wall clock.
        assert_eq!(last, 1_795_000_000_500);
        Ok(())
    }

    #[test]
    fn ack_hold_and_floor_are_kept_across_a_new_life() -> Result<(), DataDirError> {
        let scratch = Scratch::new("keep");
        let dir = DataDir::open(&scratch.0)?;
        dir.store(&earlier())?;
        let life = dir.begin_life(0)?;
        assert_eq!(life.current, Durable { incarnation: earlier().incarnation + 1, ..earlier() });
        Ok(())
    }

    #[test]
    fn a_corrupt_state_file_is_an_error_naming_the_file_and_is_left_alone() -> Result<(), DataDirError> {
        let scratch = Scratch::new("corrupt");
        let dir = DataDir::open(&scratch.0)?;
        dir.store(&earlier())?;
        let path = scratch.0.join(STATE_FILE);
        let mut bytes =
            std::fs::read(&path).map_err(|source| DataDirError::Read { path: path.clone(), source })?;
        bytes[20] ^= 0x40;
        std::fs::write(&path, &bytes).map_err(|source| DataDirError::Write { path: path.clone(), source })?;
        let err = dir.begin_life(1_795_000_000_000).map(|l| l.current);
        match &err {
            Err(e @ DataDirError::Corrupt { problem: Corruption::Checksum { .. }, .. }) => {
                let text = e.to_string();
                assert!(text.contains(STATE_FILE) && text.contains("checksum mismatch"), "{text}");
                assert!(text.contains("Recovering a data directory"), "{text}");
            }
            other => panic!("expected a checksum error, got {other:?}"),
        }
        let after =
            std::fs::read(&path).map_err(|source| DataDirError::Read { path: path.clone(), source })?;
        assert_eq!(after, bytes, "a refused start must not rewrite the file");
        Ok(())
    }

    #[test]
    fn a_truncated_state_file_is_an_error() -> Result<(), DataDirError> {
        let scratch = Scratch::new("short");
        let dir = DataDir::open(&scratch.0)?;
        let path = scratch.0.join(STATE_FILE);
        std::fs::write(&path, &earlier().encode()[..20])
            .map_err(|source| DataDirError::Write { path, source })?;
        let err = dir.load();
        assert!(
            matches!(
                err,
                Err(DataDirError::Corrupt { problem: Corruption::Length { len: 20, expected: 44 }, .. })
            ),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn a_second_opener_is_refused_with_the_holders_pid_until_the_first_closes() -> Result<(), DataDirError> {
        let scratch = Scratch::new("lock");
        let first = DataDir::open(&scratch.0)?;
        match DataDir::open(&scratch.0) {
            Err(e @ DataDirError::Locked { holder, .. }) => {
                assert_eq!(holder, Some(std::process::id()));
                assert!(e.to_string().contains("in use by another process"), "{e}");
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        DataDir::open(&scratch.0).map(drop)
    }

    #[test]
    fn the_definition_file_is_absent_until_stored_and_a_damaged_one_is_an_error() -> Result<(), DataDirError>
    {
        use quorate_proto::{NodeId, TieBreaker, VoteTable};
        let scratch = Scratch::new("roster");
        let dir = DataDir::open(&scratch.0)?;
        assert_eq!(dir.load_roster()?, None);
        let votes = VoteTable::new((1..=3).map(|i| (NodeId(i), 1)), TieBreaker::None)
            .unwrap_or_else(|e| panic!("{e}"));
        let roster = Roster {
            version: 4,
            votes,
            addresses: [(NodeId(2), "n2:7001".to_owned())].into(),
            parent: None,
            timing: None,
        };
        dir.store_roster(&roster)?;
        assert_eq!(dir.load_roster()?, Some(roster));
        let path = scratch.0.join(ROSTER_FILE);
        let mut bytes = std::fs::read(&path).unwrap_or_default();
        bytes[20] ^= 0x40;
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(dir.load_roster(), Err(DataDirError::Corrupt { .. })));
        Ok(())
    }

    #[test]
    fn a_path_that_cannot_be_a_directory_is_named() -> Result<(), DataDirError> {
        let scratch = Scratch::new("file");
        let dir = DataDir::open(&scratch.0)?;
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").map_err(|source| DataDirError::Write { path: file.clone(), source })?;
        assert!(matches!(DataDir::open(&file), Err(DataDirError::NotADirectory { .. })));
        let below = file.join("sub");
        match DataDir::open(&below) {
            Err(e @ DataDirError::Create { .. }) => assert!(e.to_string().contains("sub"), "{e}"),
            other => panic!("expected Create, got {other:?}"),
        }
        Ok(())
    }
}
