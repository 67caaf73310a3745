//! `stockd verify`: re-derive everything the journal implies and compare it with the file.
//!
//! Checks, in one read transaction: seq starts at 1 and has no gap; every entry decodes and
//! its hash continues the chain; every entry's `before` is what the journal so far adds up
//! to; the fold equals the stored levels (and no level lacks a journal); every batch
//! record covers exactly the movements that name it.

use std::collections::BTreeMap;

use redb::{ReadTransaction, ReadableTable};
use serde::Serialize;

use super::tables::*;
use super::{codec, writer::chain_hash};
use crate::ledger::fold::fold_step;
use crate::ledger::Buckets;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Report {
    pub ok: bool,
    pub movements: u64,
    pub levels: u64,
    pub batches: u64,
    pub seq_last: u64,
    /// The first mismatch found, when any.
    pub problem: Option<String>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.problem {
            None => write!(
                f,
                "ok: {} movements (last seq {}), {} levels, {} batches; chain unbroken, levels equal the fold",
                self.movements, self.seq_last, self.levels, self.batches
            ),
            Some(p) => write!(f, "FAILED: {p}"),
        }
    }
}

/// Runs every check; a storage error is reported as the problem.
pub fn verify(txn: &ReadTransaction) -> Report {
    let mut report = Report {
        ok: false,
        movements: 0,
        levels: 0,
        batches: 0,
        seq_last: 0,
        problem: None,
    };
    if let Err(problem) = check(txn, &mut report) {
        report.problem = Some(problem);
        return report;
    }
    report.ok = true;
    report
}

fn check(txn: &ReadTransaction, report: &mut Report) -> Result<(), String> {
    let s = |e: redb::StorageError| format!("storage: {e}");
    let journal = txn.open_table(JOURNAL).map_err(|e| e.to_string())?;
    let mut folded: BTreeMap<(String, String), Buckets> = BTreeMap::new();
    let mut batch_seen: BTreeMap<String, (u64, u64)> = BTreeMap::new(); // id → (first, count)
    let mut prev = [0u8; 32];
    let mut expected = 1u64;
    for row in journal.iter().map_err(s)? {
        let (k, v) = row.map_err(s)?;
        let seq = k.value();
        if seq != expected {
            return Err(format!("journal gap: expected seq {expected}, found {seq}"));
        }
        let m = codec::decode_movement(v.value()).map_err(|e| format!("seq {seq}: {e}"))?;
        if m.seq != seq {
            return Err(format!("seq {seq}: entry claims seq {}", m.seq));
        }
        if chain_hash(&prev, &codec::movement_canonical(&m)) != m.hash {
            return Err(format!(
                "seq {seq}: hash chain broken (the entry or one before it was altered)"
            ));
        }
        if !fold_step(&mut folded, &m) {
            return Err(format!(
                "seq {seq}: `before` of {}/{} does not continue the journal",
                m.draft.product, m.draft.warehouse
            ));
        }
        if let Some(b) = &m.batch {
            let e = batch_seen.entry(b.clone()).or_insert((seq, 0));
            if e.0 + e.1 != seq {
                return Err(format!("seq {seq}: batch {b} is not contiguous"));
            }
            e.1 += 1;
        }
        prev = m.hash;
        expected = seq + 1;
        report.movements += 1;
    }
    report.seq_last = expected - 1;

    let levels = txn.open_table(LEVELS).map_err(|e| e.to_string())?;
    for row in levels.iter().map_err(s)? {
        let (k, v) = row.map_err(s)?;
        let (p, w) = k.value();
        let level = codec::decode_level(v.value()).map_err(|e| format!("level {p}/{w}: {e}"))?;
        let key = (p.to_string(), w.to_string());
        let from_journal = folded.remove(&key).unwrap_or_default();
        if level.buckets != from_journal {
            return Err(format!(
                "level {p}/{w}: stored {:?}, the journal folds to {:?}",
                level.buckets, from_journal
            ));
        }
        report.levels += 1;
    }
    if let Some(((p, w), b)) = folded.into_iter().find(|(_, b)| !b.is_zero()) {
        return Err(format!("level {p}/{w}: missing, the journal folds to {b:?}"));
    }

    let batches = txn.open_table(BATCHES).map_err(|e| e.to_string())?;
    for row in batches.iter().map_err(s)? {
        let (k, v) = row.map_err(s)?;
        let id = k.value();
        let b = codec::decode_batch(v.value()).map_err(|e| format!("batch {id}: {e}"))?;
        let (first, count) = (b.first_seq, b.count);
        match batch_seen.remove(id) {
            Some(seen) if seen == (first, count) => report.batches += 1,
            Some((f, c)) => {
                return Err(format!(
                    "batch {id}: record says seq {first}+{count}, the journal has {f}+{c}"
                ))
            }
            None => return Err(format!("batch {id}: no movement names it")),
        }
    }
    if let Some((id, _)) = batch_seen.into_iter().next() {
        return Err(format!("batch {id}: movements name it but it has no record"));
    }
    Ok(())
}
