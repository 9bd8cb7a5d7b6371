//! [`Store`]: the embedded database (redb, one file) and the fenced write path.
//!
//! ```text
//!   put(key, value, Guard::Permit(p))
//!     begin_write ── redb serialises writers here (one write transaction at a time)
//!     read meta: last seq, highest epoch ── p.epoch() below the highest?  abort: StaleEpoch
//!     insert key -> (epoch, seq + 1, value); meta := (seq + 1, max epoch)
//!     p.check() ── quorum lost or epoch changed since the permit?          abort: Fenced
//!     commit (fsync with Durability::Immediate)  ──► Written { epoch, seq, times }
//! ```
//!
//! The re-check sits inside the transaction, after everything else that can wait (the
//! writer lock, the inserts), and right before the commit: a write whose permit went stale
//! while it queued for the lock is rolled back, never committed. The commit itself (an
//! fsync, milliseconds) still runs after the check; the stored epoch is what lets anything
//! downstream reject such a write (see `docs/kv-example.md`).
//!
//! Every record carries the epoch of the permit it was written under and a per-database
//! sequence number in commit order. The store refuses a permit whose epoch is below the
//! highest epoch it already holds, so stored epochs never go backwards in commit order.

use std::path::Path;

use quorate::{NotQuorate, WritePermit};
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};

use quorate::clock::monotonic_us;

/// Key -> (epoch, seq, value).
const KV: TableDefinition<'_, &str, (u64, u64, &str)> = TableDefinition::new("kv");
/// Bookkeeping: [`META_SEQ`] and [`META_EPOCH`].
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
/// The sequence number of the last committed write.
const META_SEQ: &str = "seq";
/// The highest epoch ever stored.
const META_EPOCH: &str = "max_epoch";

/// How commits reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Every commit is on disk (fsync) before it is acknowledged. The default.
    Immediate,
    /// Commits are not flushed. An acknowledged write can be lost in a crash and the file
    /// grows until the next durable commit: for measuring the write path without the
    /// disk (benchmarks), never for data you keep.
    None,
}

/// What a write is guarded by.
#[derive(Debug, Clone, Copy)]
pub enum Guard<'a> {
    /// A quorum permit: its epoch is stored with the value and it is re-checked right
    /// before the commit.
    Permit(&'a WritePermit),
    /// No gate at all: stored with epoch 0, no check. Only for measuring what the gate
    /// costs (`--bypass-gate`); a store written this way has no split-brain protection.
    Bypass,
}

/// One stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The value, UTF-8 text.
    pub value: String,
    /// The fencing epoch of the permit it was written under (0: gate bypassed).
    pub epoch: u64,
    /// Its position in this database's commit order, from 1.
    pub seq: u64,
}

/// An acknowledged write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The epoch stored with it.
    pub epoch: u64,
    /// Its sequence number.
    pub seq: u64,
    /// `CLOCK_MONOTONIC` microseconds read just before the permit's re-check, which then
    /// passed: the node held quorum at some instant at or after this one. Compared with a
    /// fencing deadline, it needs no slack for the time the check itself took.
    pub checked_mono_us: u64,
    /// `CLOCK_MONOTONIC` microseconds read just after the commit returned.
    pub committed_mono_us: u64,
}

/// The database's bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Keys stored.
    pub keys: u64,
    /// The last committed sequence number (0: nothing written yet).
    pub last_seq: u64,
    /// The highest epoch stored.
    pub max_epoch: u64,
}

/// Why a write or read failed. Nothing was written in any case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The permit failed its re-check just before the commit; the transaction was rolled
    /// back.
    #[error("fenced before commit: {0}")]
    Fenced(NotQuorate),
    /// The permit's epoch is below one already stored (a permit from an earlier stretch of
    /// quorum that outlived it); the transaction was rolled back.
    #[error("stale epoch: permit has epoch {permit}, the store already holds epoch {stored}")]
    StaleEpoch {
        /// The permit's epoch.
        permit: u64,
        /// The highest epoch in the store.
        stored: u64,
    },
    /// The database failed (disk full, I/O error, corruption).
    #[error("storage: {0}")]
    Storage(String),
}

impl<E: Into<redb::Error>> From<E> for StoreError {
    fn from(e: E) -> Self {
        StoreError::Storage(e.into().to_string())
    }
}

/// The key-value store: one redb file.
#[derive(Debug)]
pub struct Store {
    db: Database,
    durability: Durability,
}

impl Store {
    /// Opens (or creates) the database file at `path`. redb holds an exclusive lock on it
    /// while the store is open.
    pub fn open(path: &Path, durability: Durability) -> Result<Store, StoreError> {
        let db = Database::create(path)?;
        let store = Store { db, durability };
        // Create the tables so that readers never meet a missing one.
        let txn = store.db.begin_write()?;
        txn.open_table(KV)?;
        txn.open_table(META)?;
        txn.commit()?;
        Ok(store)
    }

    /// Stores `value` under `key`, guarded by `guard` (see the module docs for the order of
    /// steps). Blocks: call it from a blocking thread in async code.
    pub fn put(&self, key: &str, value: &str, guard: Guard<'_>) -> Result<Written, StoreError> {
        let epoch = match guard {
            Guard::Permit(p) => p.epoch().0,
            Guard::Bypass => 0,
        };
        let mut txn = self.db.begin_write()?;
        if self.durability == Durability::None {
            txn.set_durability(redb::Durability::None);
        }
        let seq = {
            let mut meta = txn.open_table(META)?;
            let last_seq = meta.get(META_SEQ)?.map(|g| g.value()).unwrap_or(0);
            let max_epoch = meta.get(META_EPOCH)?.map(|g| g.value()).unwrap_or(0);
            if matches!(guard, Guard::Permit(_)) && epoch < max_epoch {
                // Dropping `txn` without commit rolls it back.
                return Err(StoreError::StaleEpoch { permit: epoch, stored: max_epoch });
            }
            let seq = last_seq.saturating_add(1);
            meta.insert(META_SEQ, seq)?;
            meta.insert(META_EPOCH, max_epoch.max(epoch))?;
            let mut kv = txn.open_table(KV)?;
            kv.insert(key, (epoch, seq, value))?;
            seq
        };
        // Read before the check: the check ran, and passed, at or after this instant, so the
        // node held quorum at some moment no earlier than `checked_mono_us`.
        let checked_mono_us = monotonic_us();
        if let Guard::Permit(p) = guard {
            p.check().map_err(StoreError::Fenced)?;
        }
        txn.commit()?;
        Ok(Written { epoch, seq, checked_mono_us, committed_mono_us: monotonic_us() })
    }

    /// The record under `key`, if any. Reads never wait for writers (redb's MVCC).
    pub fn get(&self, key: &str) -> Result<Option<Record>, StoreError> {
        let txn = self.db.begin_read()?;
        let kv = txn.open_table(KV)?;
        Ok(kv.get(key)?.map(|g| {
            let (epoch, seq, value) = g.value();
            Record { value: value.to_owned(), epoch, seq }
        }))
    }

    /// Keys, last sequence number and highest epoch.
    pub fn stats(&self) -> Result<Stats, StoreError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let kv = txn.open_table(KV)?;
        Ok(Stats {
            keys: kv.len()?,
            last_seq: meta.get(META_SEQ)?.map(|g| g.value()).unwrap_or(0),
            max_epoch: meta.get(META_EPOCH)?.map(|g| g.value()).unwrap_or(0),
        })
    }

    /// Up to `limit` records in key order, for audits and tests.
    pub fn records(&self, limit: usize) -> Result<Vec<(String, Record)>, StoreError> {
        let txn = self.db.begin_read()?;
        let kv = txn.open_table(KV)?;
        let mut out = Vec::new();
        for entry in kv.iter()?.take(limit) {
            let (k, v) = entry?;
            let (epoch, seq, value) = v.value();
            out.push((k.value().to_owned(), Record { value: value.to_owned(), epoch, seq }));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store(name: &str, durability: Durability) -> Result<(Store, std::path::PathBuf), StoreError> {
        let dir = std::env::temp_dir().join(format!("quorate-kv-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| StoreError::Storage(e.to_string()))?;
        let store = Store::open(&dir.join("kv.redb"), durability)?;
        Ok((store, dir))
    }

    #[test]
    fn bypassed_writes_are_numbered_in_commit_order_with_epoch_zero() -> Result<(), StoreError> {
        let (store, dir) = temp_store("order", Durability::None)?;
        let a = store.put("a", "1", Guard::Bypass)?;
        let b = store.put("b", "2", Guard::Bypass)?;
        let a2 = store.put("a", "3", Guard::Bypass)?;
        assert_eq!((a.seq, b.seq, a2.seq), (1, 2, 3));
        assert!(a.checked_mono_us <= a.committed_mono_us);
        assert_eq!(store.get("a")?, Some(Record { value: "3".into(), epoch: 0, seq: 3 }));
        assert_eq!(store.get("zz")?, None);
        assert_eq!(store.stats()?, Stats { keys: 2, last_seq: 3, max_epoch: 0 });
        assert_eq!(store.records(1)?.len(), 1);
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
        Ok(())
    }

    #[test]
    fn a_reopened_store_keeps_its_records_and_sequence() -> Result<(), StoreError> {
        let (store, dir) = temp_store("reopen", Durability::Immediate)?;
        store.put("k", "v", Guard::Bypass)?;
        drop(store);
        let store = Store::open(&dir.join("kv.redb"), Durability::Immediate)?;
        assert_eq!(store.put("k2", "v2", Guard::Bypass)?.seq, 2);
        assert_eq!(store.get("k")?.map(|r| r.value), Some("v".to_owned()));
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
        Ok(())
    }
}
