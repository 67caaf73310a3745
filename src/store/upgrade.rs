//! Brings a data file written by an earlier version up to this one, once, when the daemon
//! (or an import) opens it — after the redo log is applied, before any write. Level 1:
//! every product and warehouse gets its stable number (`ledger::direct_number`, `0` for
//! the default warehouse, else an assigned one), and the roll-ups are summed again from
//! the journal with this version's definitions (`Rollup::of`: only on-hand changes count,
//! transfer figures kept apart). Level 2: the file says format 2 (level rows may keep
//! their latest seqs), so an earlier stockd refuses it rather than show histories without
//! them; nothing else changes. Level 3: a level's history becomes a chain of back-pointers
//! in the journal rows written from then on, from a head in its level row; the rows before
//! stay as they are, all in `history_by_level` (format 3). A file at the level is not
//! written to.

use std::collections::HashMap;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, WriteTransaction};

use super::codec;
use super::rollup::{day_of, Rollup};
use super::tables::*;
use crate::ledger::{self, NumberSpace};

/// The level this version writes (`META[UPGRADE_KEY]`).
pub const UPGRADE_LEVEL: u64 = 3;
/// The level whose step links each level's history into a chain (format 3).
pub const LEVEL_CHAINS: u64 = 3;

/// The level whose step numbers records and sums roll-ups again.
const LEVEL_NUMBERS: u64 = 1;

/// Counts the journal's entries that change no on_hand (`HIDDEN_ENTRIES_KEY`), which the
/// writer keeps counting from here on.
fn count_hidden_entries(txn: &WriteTransaction) -> Result<(), redb::Error> {
    let mut hidden = 0u64;
    for row in txn.open_table(JOURNAL)?.iter()? {
        let (_, v) = row?;
        if !codec::movement_kind(v.value()).map_err(corrupt)?.moves_on_hand() {
            hidden += 1;
        }
    }
    txn.open_table(META)?
        .insert(HIDDEN_ENTRIES_KEY, hidden.to_le_bytes().as_slice())?;
    Ok(())
}

/// The file's level: 0 when it predates upgrades.
pub fn level(txn: &redb::ReadTransaction) -> Result<u64, redb::Error> {
    let meta = txn.open_table(META)?;
    let level = meta
        .get(UPGRADE_KEY)?
        .and_then(|v| <[u8; 8]>::try_from(v.value()).ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0);
    Ok(level)
}

/// Upgrades the file when it is below this version's level, and numbers a default
/// warehouse created by a changed `default_warehouse` (number 0 stays with the first);
/// otherwise writes nothing (two point reads).
pub fn upgrade(db: &Database, default_warehouse: &str) -> Result<(), redb::Error> {
    let (current, default_numbered) = {
        let txn = db.begin_read()?;
        let numbered = match txn.open_table(WAREHOUSES)?.get(default_warehouse)? {
            Some(v) => codec::decode_warehouse(v.value()).map_err(corrupt)?.number.is_some(),
            None => true,
        };
        (level(&txn)?, numbered)
    };
    if current >= UPGRADE_LEVEL && default_numbered {
        return Ok(());
    }
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    if current >= LEVEL_NUMBERS {
        number_records(&txn, NumberSpace::Warehouse, None)?;
    } else {
        number_records(&txn, NumberSpace::Warehouse, Some(default_warehouse))?;
        number_records(&txn, NumberSpace::Product, None)?;
        sum_rollups_again(&txn)?;
        count_hidden_entries(&txn)?;
    }
    if current < LEVEL_CHAINS {
        link_histories(&txn)?;
    }
    if current < UPGRADE_LEVEL {
        let mut meta = txn.open_table(META)?;
        meta.insert(FORMAT_KEY, FORMAT_VERSION.to_le_bytes().as_slice())?;
        meta.insert(UPGRADE_KEY, UPGRADE_LEVEL.to_le_bytes().as_slice())?;
    }
    txn.commit()?;
    Ok(())
}

/// Starts every level's chain where its history stands: the seqs a format-2 level row
/// kept go to `history_by_level` (which then lists every movement so far), each level row
/// gets its last indexed seq as head and its count, and the journal rows from the next seq
/// on get back-pointers (`CHAINED_FROM_KEY`). The journal is not rewritten: a level's walk
/// reaching a row from before continues in the index. One pass over the index and the
/// levels: no copy of the journal's pages, whatever its size.
fn link_histories(txn: &WriteTransaction) -> Result<(), redb::Error> {
    let mut levels = txn.open_table(LEVELS)?;
    let mut index = txn.open_table(HISTORY_BY_LEVEL)?;
    let mut rows = Vec::new();
    for row in levels.iter()? {
        let (k, v) = row?;
        let (p, w) = k.value();
        let level = codec::decode_level(v.value()).map_err(corrupt)?;
        let kept = codec::format2_level_seqs(v.value()).map_err(corrupt)?;
        rows.push((p.to_string(), w.to_string(), level, kept));
    }
    for (p, w, level, kept) in rows {
        for seq in kept {
            index.insert((p.as_str(), w.as_str(), seq), ())?;
        }
        let mut chain = codec::LevelChain::default();
        for entry in index.range((p.as_str(), w.as_str(), 0)..=(p.as_str(), w.as_str(), u64::MAX))? {
            chain.head = entry?.0.value().2;
            chain.moves += 1;
        }
        levels.insert((p.as_str(), w.as_str()), codec::level_row(&level, chain).as_slice())?;
    }
    let next = txn.open_table(JOURNAL)?.last()?.map_or(1, |(k, _)| k.value() + 1);
    txn.open_table(META)?
        .insert(CHAINED_FROM_KEY, next.to_le_bytes().as_slice())?;
    Ok(())
}

fn corrupt(e: codec::CodecError) -> redb::Error {
    redb::Error::Corrupted(e.to_string())
}

/// Gives every record of `space` without a number one, in id order: its own digits, `0`
/// for the default warehouse, else the next free assigned number.
fn number_records(txn: &WriteTransaction, space: NumberSpace, default: Option<&str>) -> Result<(), redb::Error> {
    let def = match space {
        NumberSpace::Product => PRODUCTS,
        NumberSpace::Warehouse => WAREHOUSES,
    };
    let mut records = txn.open_table(def)?;
    let mut numbers = txn.open_table(NUMBERS)?;
    let key = space.key();
    let mut next = numbers
        .range((key, ledger::NUMBER_ASSIGNED_MIN)..=(key, ledger::NUMBER_MAX))?
        .next_back()
        .transpose()?
        .map_or(ledger::NUMBER_ASSIGNED_MIN, |(k, _)| k.value().1.saturating_add(1));
    let mut missing = Vec::new();
    for row in records.iter()? {
        let (k, v) = row?;
        let number = match space {
            NumberSpace::Product => codec::decode_product(v.value()).map_err(corrupt)?.number,
            NumberSpace::Warehouse => codec::decode_warehouse(v.value()).map_err(corrupt)?.number,
        };
        if number.is_none() {
            missing.push(k.value().to_string());
        }
    }
    for id in missing {
        let n = match ledger::direct_number(&id) {
            Some(n) => n,
            None if default == Some(id.as_str()) => {
                numbers.insert((key, ledger::DEFAULT_WAREHOUSE_NUMBER), id.as_str())?;
                ledger::DEFAULT_WAREHOUSE_NUMBER
            }
            None => {
                while records.get(next.to_string().as_str())?.is_some() {
                    next = next.saturating_add(1);
                }
                next = next.saturating_add(1);
                numbers.insert((key, next - 1), id.as_str())?;
                next - 1
            }
        };
        let bytes = match records.get(id.as_str())? {
            Some(v) => v.value().to_vec(),
            None => continue,
        };
        let updated = match space {
            NumberSpace::Product => {
                let mut p = codec::decode_product(&bytes).map_err(corrupt)?;
                p.number = Some(n);
                codec::product(&p)
            }
            NumberSpace::Warehouse => {
                let mut w = codec::decode_warehouse(&bytes).map_err(corrupt)?;
                w.number = Some(n);
                codec::warehouse(&w)
            }
        };
        records.insert(id.as_str(), updated.as_slice())?;
    }
    Ok(())
}

/// Replaces every roll-up with the journal's sum under this version's `Rollup::of`.
fn sum_rollups_again(txn: &WriteTransaction) -> Result<(), redb::Error> {
    let journal = txn.open_table(JOURNAL)?;
    let mut per_product: HashMap<(i64, String, String), Rollup> = HashMap::new();
    for row in journal.iter()? {
        let (_, v) = row?;
        let m = codec::decode_movement(v.value()).map_err(corrupt)?;
        let key = (day_of(m.at_ms), m.draft.warehouse.clone(), m.draft.product.clone());
        per_product.entry(key).or_default().add(&Rollup::of(&m));
    }
    let mut rollups = txn.open_table(ROLLUPS)?;
    rollups.retain(|_, _| false)?;
    let mut days = txn.open_table(ROLLUP_DAYS)?;
    days.retain(|_, _| false)?;
    let mut per_day: HashMap<(i64, String), Rollup> = HashMap::new();
    for ((day, w, p), r) in &per_product {
        rollups.insert((*day, w.as_str(), p.as_str()), r.encode().as_slice())?;
        per_day.entry((*day, w.clone())).or_default().add(r);
    }
    for ((day, w), r) in &per_day {
        days.insert((*day, w.as_str()), r.encode().as_slice())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta_of(db: &Database) -> (u64, u64) {
        let txn = db.begin_read().expect("read");
        let meta = txn.open_table(META).expect("meta");
        let get = |key| {
            let v = meta.get(key).expect("get").expect("present");
            u64::from_le_bytes(v.value().try_into().expect("8 bytes"))
        };
        (get(FORMAT_KEY), get(UPGRADE_KEY))
    }

    /// The history of the file's one level, newest first, read in pages of `limit`.
    fn level_history(db: &Database, limit: u64) -> Vec<u64> {
        use crate::store::read::{MovementFilter, Reader};
        let reader = Reader::new(db.begin_read().expect("read")).expect("reader");
        let filter = MovementFilter {
            product: Some("p".into()),
            warehouse: Some("default".into()),
            ..MovementFilter::default()
        };
        crate::store::testing::movement_pages(&reader, &filter, limit)
    }

    fn verified(db: &Database, movements: u64) {
        let report = super::super::verify::verify(&db.begin_read().expect("read"));
        assert!(report.ok, "{report}");
        assert_eq!(report.movements, movements);
    }

    /// A file of level 2 (format 2: journal rows without back-pointers, level rows keeping
    /// their latest seqs in slots, the rest in `history_by_level`) is upgraded without
    /// rewriting its journal: the slots' seqs go to the index, the level row gets its head,
    /// and movements from then on are chained. Its histories read across the boundary,
    /// it verifies, and opened again nothing is written.
    #[test]
    fn a_level_two_file_chains_what_comes_after_and_keeps_its_journal() {
        use crate::ledger::{Command, Product};
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("old.redb");
        let db = super::super::open_or_create(&path, "default").expect("create");
        assert_eq!(meta_of(&db), (FORMAT_VERSION, UPGRADE_LEVEL), "a new file");
        let product = Product {
            id: "p".into(),
            sku: "p".into(),
            name: "P".into(),
            ..Product::default()
        };
        crate::store::testing::import(
            &db,
            vec![
                Command::PutProduct(product),
                crate::store::testing::moves("default", 150),
            ],
        );
        // Back to format 2's shapes: seqs 1..=145 indexed, 146..=150 in the row's slots.
        crate::store::testing::to_format2(&db, 5);
        assert_eq!(meta_of(&db), (2, 2));

        upgrade(&db, "default").expect("upgrade");
        assert_eq!(meta_of(&db), (3, 3));
        verified(&db, 150);
        let unchanged = db.begin_read().expect("read");
        let row = unchanged
            .open_table(JOURNAL)
            .expect("journal")
            .get(150)
            .expect("get")
            .expect("row");
        assert_eq!(
            codec::decode_journal_row(row.value()).expect("row").1,
            None,
            "the journal as it was"
        );
        drop((row, unchanged));
        for limit in [10, 64, 200] {
            assert_eq!(
                level_history(&db, limit),
                (1..=150).rev().collect::<Vec<u64>>(),
                "pages of {limit}"
            );
        }

        crate::store::testing::import(&db, vec![crate::store::testing::moves("default", 140)]);
        verified(&db, 290);
        for limit in [1, 10, 63, 64, 65, 300] {
            assert_eq!(
                level_history(&db, limit),
                (1..=290).rev().collect::<Vec<u64>>(),
                "pages of {limit}"
            );
        }
        upgrade(&db, "default").expect("again");
        assert_eq!(meta_of(&db), (3, 3));
        verified(&db, 290);

        // An entry from before the chain gone from the index, then one too many since.
        let problem = |db: &Database| {
            let report = super::super::verify::verify(&db.begin_read().expect("read"));
            report.problem.unwrap_or_default()
        };
        let edit = |remove: Option<u64>, insert: Option<u64>| {
            let txn = db.begin_write().expect("write");
            {
                let mut index = txn.open_table(HISTORY_BY_LEVEL).expect("index");
                if let Some(seq) = remove {
                    index.remove(("p", "default", seq)).expect("remove");
                }
                if let Some(seq) = insert {
                    index.insert(("p", "default", seq), ()).expect("insert");
                }
            }
            txn.commit().expect("commit");
        };
        edit(Some(10), None);
        assert!(
            problem(&db).contains("lacks 1 of its movements from before the chain"),
            "{}",
            problem(&db)
        );
        edit(None, Some(10));
        verified(&db, 290);
        edit(None, Some(200));
        assert!(problem(&db).contains("lists seq 200, not a 64th"), "{}", problem(&db));
    }
}
