//! The checker: reads what the nodes left in the shared directory (claims, log) and their
//! ack logs, and says whether two nodes ever wrote at once.
//!
//! Definitions (all times `CLOCK_MONOTONIC` microseconds, shared by every process on one
//! machine, also across network namespaces):
//!
//! * A **writer** is a generation: the node that holds `claim-<gen>`, during that claim.
//! * A writer's **tenure** is `[first, last]` of the `checked_us` of its records: from its
//!   first to its last decision to write (each decision just before the write).
//! * **Two writers at once**: two tenures that overlap (`a1 < b2 && a2 < b1`, so touching
//!   ends do not count). Reported as the time covered by two or more tenures.
//! * An **interleaved record** is one appended (file order) after a record of a higher
//!   generation: the old writer wrote after the new one had begun. A reader that applies the
//!   generations as fencing tokens ([`readable`]) drops it.
//! * **Split brain**: two writers at once, or an *acknowledged* interleaved record, or a
//!   record under a generation its node does not hold. With the gate, an interleaved record
//!   can only be one whose writer was stopped between its last check and its `write`, and
//!   it is never acknowledged (see the crate docs); that is counted, not called split brain.

use std::collections::{BTreeMap, BTreeSet};

use crate::shared::{Ack, Claim, Record};

/// One generation's writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenure {
    /// The generation.
    pub gen: u64,
    /// Its writer.
    pub node: u64,
    /// `checked_us` of its first and last record.
    pub first_us: u64,
    /// See `first_us`.
    pub last_us: u64,
    /// How many records.
    pub records: usize,
}

/// What the checker found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Analysis {
    /// Records in the log.
    pub records: usize,
    /// Per generation that wrote, by generation.
    pub tenures: Vec<Tenure>,
    /// Pairs of generations whose tenures overlap.
    pub overlapping: Vec<(u64, u64)>,
    /// Microseconds covered by two or more tenures.
    pub overlap_us: u64,
    /// The most tenures that overlap at one instant.
    pub writers_max: usize,
    /// Records appended after a record of a higher generation.
    pub interleaved: usize,
    /// Of them, acknowledged.
    pub interleaved_acked: usize,
    /// Records under a generation their node does not hold.
    pub wrong_gen: Vec<String>,
    /// Duplicate or out-of-order sequence numbers within a generation.
    pub seq_errors: Vec<String>,
    /// Acknowledgements read.
    pub acks: usize,
    /// Acknowledgements with no matching record in the log.
    pub acks_missing: Vec<String>,
    /// Records without an acknowledgement.
    pub unacked: usize,
    /// Lines of the log that are not records (torn or garbled writes).
    pub torn: Vec<String>,
    /// Claims read, and gaps in their generations.
    pub claims: usize,
    /// Generations missing below the highest claim.
    pub claim_gaps: Vec<u64>,
}

/// Analyses a log (records in file order, and the lines that did not parse), the claims
/// and every node's acknowledgements.
pub fn analyse(records: &[Record], torn: &[String], claims: &[Claim], acks: &[Ack]) -> Analysis {
    let mut a = Analysis {
        records: records.len(),
        torn: torn.to_vec(),
        claims: claims.len(),
        acks: acks.len(),
        ..Analysis::default()
    };
    let holder: BTreeMap<u64, u64> = claims.iter().map(|c| (c.gen, c.node)).collect();
    let top = holder.keys().max().copied().unwrap_or(0);
    a.claim_gaps = (1..top).filter(|g| !holder.contains_key(g)).collect();

    let acked: BTreeSet<(u64, u64)> = acks.iter().map(|k| (k.record.gen, k.record.seq)).collect();
    let mut by_key: BTreeMap<(u64, u64), &Record> = BTreeMap::new();
    let mut tenures: BTreeMap<u64, Tenure> = BTreeMap::new();
    let mut last_seq: BTreeMap<u64, u64> = BTreeMap::new();
    let mut highest = 0;
    for (i, r) in records.iter().enumerate() {
        match holder.get(&r.gen) {
            Some(&n) if n == r.node => {}
            Some(&n) => a.wrong_gen.push(format!(
                "record {} (node {} seq {}) under generation {}, which node {n} holds",
                i + 1,
                r.node,
                r.seq,
                r.gen
            )),
            None => a.wrong_gen.push(format!(
                "record {} (node {} seq {}) under generation {}, which nobody claimed",
                i + 1,
                r.node,
                r.seq,
                r.gen
            )),
        }
        if by_key.insert((r.gen, r.seq), r).is_some() {
            a.seq_errors.push(format!("generation {} seq {} appears twice", r.gen, r.seq));
        }
        let prev = last_seq.insert(r.gen, r.seq).unwrap_or(0);
        if r.seq <= prev {
            a.seq_errors.push(format!("generation {} seq {} after seq {prev}", r.gen, r.seq));
        }
        if r.gen < highest {
            a.interleaved += 1;
            if acked.contains(&(r.gen, r.seq)) {
                a.interleaved_acked += 1;
            }
        }
        highest = highest.max(r.gen);
        let t = tenures.entry(r.gen).or_insert(Tenure {
            gen: r.gen,
            node: r.node,
            first_us: r.checked_us,
            last_us: r.checked_us,
            records: 0,
        });
        t.first_us = t.first_us.min(r.checked_us);
        t.last_us = t.last_us.max(r.checked_us);
        t.records += 1;
    }
    a.tenures = tenures.into_values().collect();
    for (i, x) in a.tenures.iter().enumerate() {
        for y in &a.tenures[i + 1..] {
            // Strict: touching ends are not an overlap; a one-record tenure strictly inside
            // another is.
            if x.first_us < y.last_us && y.first_us < x.last_us {
                a.overlapping.push((x.gen, y.gen));
            }
        }
    }
    a.overlap_us = covered_twice(&a.tenures);
    // Tenures that overlap one that began after them all contain its start: the most
    // writers at one instant is the largest such group.
    a.writers_max = a
        .tenures
        .iter()
        .map(|x| {
            let earlier = a.overlapping.iter().filter(|&&(g, h)| {
                let other = if g == x.gen {
                    h
                } else if h == x.gen {
                    g
                } else {
                    return false;
                };
                a.tenures.iter().any(|y| y.gen == other && y.first_us <= x.first_us)
            });
            1 + earlier.count()
        })
        .max()
        .unwrap_or(0);

    for k in acks {
        match by_key.get(&(k.record.gen, k.record.seq)) {
            Some(r) if **r == k.record => {}
            Some(r) => a.acks_missing.push(format!("acknowledged {:?}, the log has {:?}", k.record, r)),
            None => a.acks_missing.push(format!(
                "node {} acknowledged generation {} seq {} (epoch {}), not in the log",
                k.record.node, k.record.gen, k.record.seq, k.record.epoch
            )),
        }
    }
    a.unacked = records.iter().filter(|r| !acked.contains(&(r.gen, r.seq))).count();
    a
}

/// Microseconds covered by two or more tenures.
fn covered_twice(tenures: &[Tenure]) -> u64 {
    // Ends sort before starts at the same instant: touching tenures do not overlap.
    let mut points: Vec<(u64, i8)> = Vec::with_capacity(tenures.len() * 2);
    for t in tenures {
        points.push((t.first_us, 1));
        points.push((t.last_us, -1));
    }
    points.sort_unstable();
    let (mut open, mut covered, mut since) = (0i64, 0u64, 0u64);
    for (at, step) in points {
        if open >= 2 {
            covered += at - since;
        }
        open += i64::from(step);
        since = at;
    }
    covered
}

/// The records a reader accepts when it treats generations as fencing tokens: in file
/// order, every record whose generation is at least the highest seen so far.
pub fn readable(records: &[Record]) -> Vec<Record> {
    let mut highest = 0;
    records
        .iter()
        .filter(|r| {
            let ok = r.gen >= highest;
            highest = highest.max(r.gen);
            ok
        })
        .copied()
        .collect()
}

impl Analysis {
    /// Two writers at once, an acknowledged interleaved record, or a record under a
    /// generation its node does not hold.
    pub fn split_brain(&self) -> bool {
        !self.overlapping.is_empty() || self.interleaved_acked > 0 || !self.wrong_gen.is_empty()
    }

    /// Records that an older writer appended after a newer one had begun, or that a writer
    /// appended under a generation it does not hold.
    pub fn stale_records(&self) -> usize {
        self.interleaved + self.wrong_gen.len()
    }

    /// The side-by-side line: `1 writer at every moment (...)` or `2 writers at once for
    /// 1183 ms, 117 records interleaved`.
    pub fn headline(&self) -> String {
        if self.split_brain() {
            format!(
                "{} writers at once for {} ms, {} records interleaved",
                self.writers_max.max(2),
                self.overlap_us / 1_000,
                self.stale_records()
            )
        } else {
            format!("1 writer at every moment ({} records, {} writers)", self.records, self.tenures.len())
        }
    }

    /// `Ok` when there was never a split brain (see the module docs), with the figures.
    pub fn one_writer(&self) -> Result<String, String> {
        let mut problems = Vec::new();
        for (x, y) in &self.overlapping {
            problems.push(format!("generations {x} and {y} wrote at the same time"));
        }
        if self.interleaved_acked > 0 {
            problems.push(format!(
                "{} acknowledged records appended after a newer generation's",
                self.interleaved_acked
            ));
        }
        problems.extend(self.wrong_gen.iter().take(3).cloned());
        if !problems.is_empty() {
            return Err(format!("{}: {}", self.headline(), problems.join("; ")));
        }
        let gens: Vec<String> =
            self.tenures.iter().map(|t| format!("gen {} node {}: {}", t.gen, t.node, t.records)).collect();
        Ok(format!(
            "{}; tenures never overlap [{}]; {} interleaved unacknowledged (dropped by readers)",
            self.headline(),
            gens.join(", "),
            self.interleaved
        ))
    }

    /// Each hand-over between consecutive generations that wrote: `gen 1 (node 2) -> gen 2
    /// (node 1): no writer for 1.180 s`, or `... 2 writers for 0.374 s` when they overlap.
    pub fn handovers(&self) -> Vec<String> {
        self.tenures
            .windows(2)
            .map(|w| {
                let (old, new) = (&w[0], &w[1]);
                let gap = new.first_us as i64 - old.last_us as i64;
                let what = if gap >= 0 {
                    format!("no writer for {:.3} s", gap as f64 / 1e6)
                } else {
                    format!("2 writers for {:.3} s", -gap as f64 / 1e6)
                };
                format!("gen {} (node {}) -> gen {} (node {}): {what}", old.gen, old.node, new.gen, new.node)
            })
            .collect()
    }

    /// `Ok` when every acknowledged append is in the log as acknowledged, every line is a
    /// record, sequence numbers only grow within a generation and claims have no gaps.
    pub fn log_intact(&self) -> Result<String, String> {
        let mut problems: Vec<String> = Vec::new();
        problems.extend(self.acks_missing.iter().take(3).cloned());
        problems.extend(self.torn.iter().take(3).map(|t| format!("not a record: {t}")));
        problems.extend(self.seq_errors.iter().take(3).cloned());
        if !self.claim_gaps.is_empty() {
            problems.push(format!("no claim for generations {:?}", self.claim_gaps));
        }
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        Ok(format!(
            "all {} acknowledged appends are in the log; {} records without an acknowledgement; {} claims",
            self.acks, self.unacked, self.claims
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::shared::How;

    fn rec(node: u64, gen: u64, seq: u64, checked_us: u64) -> Record {
        Record { node, gen, epoch: 5, seq, checked_us }
    }

    fn claims(holders: &[u64]) -> Vec<Claim> {
        holders
            .iter()
            .enumerate()
            .map(|(i, &node)| Claim {
                gen: i as u64 + 1,
                node,
                epoch: 5,
                at_us: 0,
                from: None,
                how: How::Takeover,
            })
            .collect()
    }

    fn acks(records: &[Record]) -> Vec<Ack> {
        records.iter().map(|&record| Ack { record, durable_us: record.checked_us + 1 }).collect()
    }

    #[test]
    fn a_clean_handover_is_one_writer_at_every_moment() {
        let log = [rec(1, 1, 1, 100), rec(1, 1, 2, 200), rec(2, 2, 1, 1_500), rec(2, 2, 2, 1_600)];
        let a = analyse(&log, &[], &claims(&[1, 2]), &acks(&log));
        assert!(!a.split_brain());
        assert_eq!((a.interleaved, a.overlap_us, a.writers_max), (0, 0, 1));
        assert!(a.one_writer().is_ok());
        assert!(a.log_intact().is_ok());
        assert_eq!(readable(&log), log.to_vec());
        assert_eq!(a.handovers(), vec!["gen 1 (node 1) -> gen 2 (node 2): no writer for 0.001 s".to_owned()]);
    }

    #[test]
    fn an_old_writer_that_goes_on_after_the_takeover_is_a_split_brain() {
        // Node 1 decides at 300 and 400, after node 2's first record at 250.
        let log =
            [rec(1, 1, 1, 100), rec(2, 2, 1, 250), rec(1, 1, 2, 300), rec(2, 2, 2, 350), rec(1, 1, 3, 400)];
        let a = analyse(&log, &[], &claims(&[1, 2]), &acks(&log));
        assert!(a.split_brain());
        assert_eq!(a.interleaved, 2);
        assert_eq!(a.interleaved_acked, 2);
        assert_eq!(a.overlap_us, 100, "from 250 (node 2 begins) to 350 (its last)");
        assert_eq!(a.writers_max, 2);
        assert!(a.one_writer().is_err());
        assert!(a.headline().starts_with("2 writers at once"));
        assert_eq!(a.handovers(), vec!["gen 1 (node 1) -> gen 2 (node 2): 2 writers for 0.000 s".to_owned()]);
        assert_eq!(readable(&log).len(), 3);
    }

    #[test]
    fn a_late_unacknowledged_record_from_before_the_takeover_is_counted_not_a_split_brain() {
        // Node 1 checked at 200 and was stopped before its write landed after node 2's.
        let log = [rec(1, 1, 1, 100), rec(2, 2, 1, 1_500), rec(1, 1, 2, 200)];
        let acked = acks(&log[..2]);
        let a = analyse(&log, &[], &claims(&[1, 2]), &acked);
        assert_eq!((a.interleaved, a.interleaved_acked), (1, 0));
        assert!(!a.split_brain());
        assert!(a.one_writer().is_ok());
        // The same record acknowledged is a split brain.
        let b = analyse(&log, &[], &claims(&[1, 2]), &acks(&log));
        assert!(b.split_brain());
    }

    #[test]
    fn a_record_under_another_nodes_generation_is_a_split_brain() {
        let log = [rec(1, 1, 1, 100), rec(2, 1, 1, 900)];
        let a = analyse(&log, &[], &claims(&[1]), &[]);
        assert!(a.split_brain());
        assert!(a.one_writer().unwrap_err().contains("which node 1 holds"));
        let unclaimed = analyse(&[rec(3, 7, 1, 5)], &[], &claims(&[1]), &[]);
        assert!(unclaimed.split_brain());
    }

    #[test]
    fn a_zero_length_tenure_inside_another_counts_as_two_writers() {
        let log = [rec(1, 1, 1, 100), rec(2, 2, 1, 150), rec(1, 1, 2, 200)];
        let a = analyse(&log, &[], &claims(&[1, 2]), &[]);
        assert_eq!(a.overlapping, vec![(1, 2)]);
        assert_eq!(a.writers_max, 2);
    }

    #[test]
    fn a_lost_acknowledgement_a_torn_line_or_a_repeated_seq_breaks_the_log() {
        let log = [rec(1, 1, 1, 100), rec(1, 1, 2, 200)];
        let mut extra = acks(&log);
        extra.push(Ack { record: rec(1, 1, 3, 300), durable_us: 301 });
        assert!(analyse(&log, &[], &claims(&[1]), &extra).log_intact().is_err());
        let changed = [Ack { record: Record { epoch: 6, ..log[0] }, durable_us: 101 }];
        assert!(analyse(&log, &[], &claims(&[1]), &changed).log_intact().is_err());
        assert!(analyse(&log, &["line 3: x".into()], &claims(&[1]), &[]).log_intact().is_err());
        let twice = [rec(1, 1, 1, 100), rec(1, 1, 1, 200)];
        assert!(analyse(&twice, &[], &claims(&[1]), &[]).log_intact().is_err());
        let mut gap = claims(&[1, 2, 3]);
        gap.remove(1);
        assert!(analyse(&[], &[], &gap, &[]).log_intact().is_err());
        assert!(analyse(&log, &[], &claims(&[1]), &acks(&log)).log_intact().is_ok());
    }
}
