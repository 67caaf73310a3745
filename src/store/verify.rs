//! `stockd verify`: re-derive everything the journal implies and compare it with the file.
//!
//! Checks, in one read transaction: seq starts at 1 and has no gap; every entry decodes and
//! its hash continues the chain; every entry's `before` is what the journal so far adds up
//! to; the fold equals the stored levels (and no level lacks a journal); each entry from
//! `chained_from` on points back to the previous movement of its level, each level row's
//! head and count are its latest movement and its number of movements, and
//! `history_by_level` lists exactly every `HISTORY_MARK_INTERVAL`-th movement of each level
//! since `chained_from` and as many of each level's movements before it as the journal has;
//! every batch record covers exactly the movements that name it.

use std::collections::{BTreeMap, BTreeSet};

use redb::{ReadTransaction, ReadableTable};
use serde::Serialize;

use super::rollup::{day_of, is_low, Rollup, Stats};
use super::tables::*;
use super::{apply::chain_hash, codec};
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

/// Runs every check; a storage error is reported as the problem. Beyond the invariants:
/// the roll-ups equal the journal's daily sums and the warehouse figures equal the levels.
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
    let mut rollups: BTreeMap<(i64, String, String), Rollup> = BTreeMap::new();
    let mut prev = [0u8; 32];
    let mut expected = 1u64;
    let mut hidden = 0u64;
    // Each level's chain as the journal makes it, and the entries `history_by_level`
    // must hold: every row from before the chain, every 64th movement of a level after. A
    // file not yet upgraded to chains (an earlier version's backup) has none to check.
    let chained = super::upgrade::level(txn).map_err(|e| e.to_string())? >= super::upgrade::LEVEL_CHAINS;
    let meta = txn.open_table(META).map_err(|e| e.to_string())?;
    let chained_from = meta_number(&meta, CHAINED_FROM_KEY).map_err(s)?;
    let mut chains: BTreeMap<(String, String), codec::LevelChain> = BTreeMap::new();
    let mut indexed = Indexed::default();
    for row in journal.iter().map_err(s)? {
        let (k, v) = row.map_err(s)?;
        let seq = k.value();
        if seq != expected {
            return Err(format!("journal gap: expected seq {expected}, found {seq}"));
        }
        let (m, back) = codec::decode_journal_row(v.value()).map_err(|e| format!("seq {seq}: {e}"))?;
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
        let key = (day_of(m.at_ms), m.draft.warehouse.clone(), m.draft.product.clone());
        rollups.entry(key).or_default().add(&Rollup::of(&m));
        hidden += u64::from(!m.draft.kind.moves_on_hand());
        let (p, w) = (&m.draft.product, &m.draft.warehouse);
        let chain = chains.entry((p.clone(), w.clone())).or_default();
        let pointer = (seq >= chained_from).then_some(chain.head);
        if chained && back != pointer {
            return Err(format!(
                "seq {seq}: points back to {back:?}, not {pointer:?} (the previous movement of {p}/{w} is {})",
                chain.head
            ));
        }
        chain.head = seq;
        chain.moves += 1;
        if pointer.is_none() {
            *indexed.before_chain.entry((p.clone(), w.clone())).or_default() += 1;
        } else if chain.moves % HISTORY_MARK_INTERVAL == 0 {
            indexed.marks.insert((p.clone(), w.clone(), seq));
        }
        prev = m.hash;
        expected = seq + 1;
        report.movements += 1;
    }
    report.seq_last = expected - 1;
    let stored = meta_number(&meta, HIDDEN_ENTRIES_KEY).map_err(s)?;
    if stored != hidden {
        return Err(format!(
            "{stored} entries that change no on_hand counted, the journal has {hidden}"
        ));
    }

    check_rollups(txn, &rollups)?;

    let products = txn.open_table(PRODUCTS).map_err(|e| e.to_string())?;
    let mut stats: BTreeMap<String, Stats> = BTreeMap::new();
    let mut low: BTreeSet<(String, String)> = BTreeSet::new();
    let levels = txn.open_table(LEVELS).map_err(|e| e.to_string())?;
    for row in levels.iter().map_err(s)? {
        let (k, v) = row.map_err(s)?;
        let (p, w) = k.value();
        let level = codec::decode_level(v.value()).map_err(|e| format!("level {p}/{w}: {e}"))?;
        let cost = match products.get(p).map_err(s)? {
            Some(row) => {
                codec::decode_product(row.value())
                    .map_err(|e| format!("product {p}: {e}"))?
                    .unit_cost
            }
            None => None,
        };
        stats.entry(w.to_string()).or_default().add(&Stats::of(&level, cost));
        if is_low(&level) {
            low.insert((w.to_string(), p.to_string()));
        }
        let key = (p.to_string(), w.to_string());
        let from_journal = folded.remove(&key).unwrap_or_default();
        if level.buckets != from_journal {
            return Err(format!(
                "level {p}/{w}: stored {:?}, the journal folds to {:?}",
                level.buckets, from_journal
            ));
        }
        let chain = chains.remove(&key).unwrap_or_default();
        if chained {
            let (_, stored) = codec::decode_level_row(v.value()).map_err(|e| format!("level {p}/{w}: {e}"))?;
            if stored != chain {
                return Err(format!(
                    "level {p}/{w}: its row says {stored:?}, the journal makes {chain:?}"
                ));
            }
        }
        report.levels += 1;
    }
    if let Some(((p, w), c)) = chains.into_iter().next() {
        return Err(format!(
            "level {p}/{w}: missing, the journal has {} movements of it",
            c.moves
        ));
    }
    if chained {
        check_index(txn, chained_from, indexed)?;
    }
    if let Some(((p, w), b)) = folded.into_iter().find(|(_, b)| !b.is_zero()) {
        return Err(format!("level {p}/{w}: missing, the journal folds to {b:?}"));
    }
    check_stats(txn, &stats, &low)?;

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

/// What `history_by_level` must hold, from the journal.
#[derive(Default)]
struct Indexed {
    /// How many movements of each level came before the chain (all of them indexed):
    /// counted, not listed, so that an upgraded file of millions of movements is checked
    /// in O(levels) of memory.
    before_chain: BTreeMap<(String, String), u64>,
    /// Every `HISTORY_MARK_INTERVAL`-th movement of a level since.
    marks: BTreeSet<(String, String, u64)>,
}

/// `history_by_level` holds as many entries of each level from before the chain as the
/// journal has movements of it, and exactly the marks since.
fn check_index(txn: &ReadTransaction, chained_from: u64, mut expected: Indexed) -> Result<(), String> {
    let s = |e: redb::StorageError| format!("storage: {e}");
    let lacks = |(p, w): &(String, String), n: u64| {
        format!("level {p}/{w}: history_by_level lacks {n} of its movements from before the chain")
    };
    // The level whose entries from before the chain are being counted, and how many of
    // them the journal has left (a level's entries are contiguous, in seq order).
    let mut counting: Option<((String, String), u64)> = None;
    for row in txn
        .open_table(HISTORY_BY_LEVEL)
        .map_err(|e| e.to_string())?
        .iter()
        .map_err(s)?
    {
        let (key, _) = row.map_err(s)?;
        let (p, w, seq) = key.value();
        if seq >= chained_from {
            if !expected.marks.remove(&(p.to_string(), w.to_string(), seq)) {
                return Err(format!(
                    "level {p}/{w}: history_by_level lists seq {seq}, not a {HISTORY_MARK_INTERVAL}th movement of it"
                ));
            }
            continue;
        }
        let same = counting.as_ref().is_some_and(|((cp, cw), _)| cp == p && cw == w);
        if !same {
            if let Some((level, left @ 1..)) = counting.take() {
                return Err(lacks(&level, left));
            }
            let level = (p.to_string(), w.to_string());
            let left = expected.before_chain.remove(&level).unwrap_or(0);
            counting = Some((level, left));
        }
        match &mut counting {
            Some((_, left @ 1..)) => *left -= 1,
            _ => {
                return Err(format!(
                    "level {p}/{w}: history_by_level lists seq {seq}, not a movement of it from before the chain"
                ))
            }
        }
    }
    if let Some((level, left @ 1..)) = counting {
        return Err(lacks(&level, left));
    }
    if let Some((level, left)) = expected.before_chain.into_iter().next() {
        return Err(lacks(&level, left));
    }
    if let Some((p, w, seq)) = expected.marks.into_iter().next() {
        return Err(format!("level {p}/{w}: history_by_level lacks seq {seq}"));
    }
    Ok(())
}

/// The stored roll-ups must be exactly what the journal sums to, day by day.
fn check_rollups(txn: &ReadTransaction, folded: &BTreeMap<(i64, String, String), Rollup>) -> Result<(), String> {
    let s = |e: redb::StorageError| format!("storage: {e}");
    let mut stored: BTreeMap<(i64, String, String), Rollup> = BTreeMap::new();
    for row in txn.open_table(ROLLUPS).map_err(|e| e.to_string())?.iter().map_err(s)? {
        let (k, v) = row.map_err(s)?;
        let (day, w, p) = k.value();
        stored.insert(
            (day, w.to_string(), p.to_string()),
            Rollup::decode(v.value()).map_err(|e| e.to_string())?,
        );
    }
    if let Some((k, r)) = folded.iter().find(|(k, r)| stored.get(*k) != Some(*r)) {
        return Err(format!(
            "roll-up {k:?}: the journal sums to {r:?}, stored {:?}",
            stored.get(k)
        ));
    }
    if stored.len() != folded.len() {
        return Err(format!(
            "{} roll-ups stored, the journal has {}",
            stored.len(),
            folded.len()
        ));
    }
    let mut days: BTreeMap<(i64, String), Rollup> = BTreeMap::new();
    for ((day, w, _), r) in folded {
        days.entry((*day, w.clone())).or_default().add(r);
    }
    let mut stored_days = 0usize;
    for row in txn
        .open_table(ROLLUP_DAYS)
        .map_err(|e| e.to_string())?
        .iter()
        .map_err(s)?
    {
        let (k, v) = row.map_err(s)?;
        let (day, w) = k.value();
        let r = Rollup::decode(v.value()).map_err(|e| e.to_string())?;
        if days.get(&(day, w.to_string())) != Some(&r) {
            return Err(format!(
                "daily total {day}/{w}: stored {r:?}, the journal sums to {:?}",
                days.get(&(day, w.to_string()))
            ));
        }
        stored_days += 1;
    }
    if stored_days != days.len() {
        return Err(format!(
            "{stored_days} daily totals stored, the journal has {}",
            days.len()
        ));
    }
    Ok(())
}

/// The stored warehouse figures and low-stock index must be what the levels add up to.
fn check_stats(
    txn: &ReadTransaction,
    stats: &BTreeMap<String, Stats>,
    low: &BTreeSet<(String, String)>,
) -> Result<(), String> {
    let s = |e: redb::StorageError| format!("storage: {e}");
    let table = txn.open_table(WAREHOUSE_STATS).map_err(|e| e.to_string())?;
    for row in table.iter().map_err(s)? {
        let (k, v) = row.map_err(s)?;
        let stored = Stats::decode(v.value()).map_err(|e| e.to_string())?;
        let expected = stats.get(k.value()).copied().unwrap_or_default();
        if stored != expected {
            return Err(format!(
                "stats of warehouse {}: stored {stored:?}, the levels add up to {expected:?}",
                k.value()
            ));
        }
    }
    for (w, expected) in stats {
        if table.get(w.as_str()).map_err(s)?.is_none() && *expected != Stats::default() {
            return Err(format!(
                "stats of warehouse {w}: missing, the levels add up to {expected:?}"
            ));
        }
    }
    let mut stored_low = BTreeSet::new();
    for row in txn
        .open_table(LOW_STOCK)
        .map_err(|e| e.to_string())?
        .iter()
        .map_err(s)?
    {
        let (k, _) = row.map_err(s)?;
        let (w, p) = k.value();
        stored_low.insert((w.to_string(), p.to_string()));
    }
    if &stored_low != low {
        return Err("the low-stock index differs from the levels at or below their reorder point".to_string());
    }
    Ok(())
}
