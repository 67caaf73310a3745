//! Brings a data file written by an earlier version up to this one, once, when the daemon
//! (or an import) opens it — after the redo log is applied, before any write. Level 1:
//! every product and warehouse gets its stable number (`ledger::direct_number`, `0` for
//! the default warehouse, else an assigned one), and the roll-ups are summed again from
//! the journal with this version's definitions (`Rollup::of`: only on-hand changes count,
//! transfer figures kept apart). Level 2: the file says format 2 (level rows may keep
//! their latest seqs), so an earlier stockd refuses it rather than show histories without
//! them; nothing else changes. A file at the level is not written to.

use std::collections::HashMap;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, WriteTransaction};

use super::codec;
use super::rollup::{day_of, Rollup};
use super::tables::*;
use crate::ledger::{self, NumberSpace};

/// The level this version writes (`META[UPGRADE_KEY]`).
pub const UPGRADE_LEVEL: u64 = 2;
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
    if current < UPGRADE_LEVEL {
        let mut meta = txn.open_table(META)?;
        meta.insert(FORMAT_KEY, FORMAT_VERSION.to_le_bytes().as_slice())?;
        meta.insert(UPGRADE_KEY, UPGRADE_LEVEL.to_le_bytes().as_slice())?;
    }
    txn.commit()?;
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

    /// A file of level 1 (format 1, before level rows kept seqs) is marked format 2 when
    /// this version opens it, so an earlier binary refuses it from then on; a file at the
    /// level is not written to.
    #[test]
    fn a_level_one_file_says_format_two_once_opened() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("old.redb");
        let db = super::super::open_or_create(&path, "default").expect("create");
        assert_eq!(meta_of(&db), (FORMAT_VERSION, UPGRADE_LEVEL), "a new file");
        let txn = db.begin_write().expect("write");
        {
            let mut meta = txn.open_table(META).expect("meta");
            meta.insert(FORMAT_KEY, 1u64.to_le_bytes().as_slice())
                .expect("format 1");
            meta.insert(UPGRADE_KEY, 1u64.to_le_bytes().as_slice())
                .expect("level 1");
        }
        txn.commit().expect("commit");
        upgrade(&db, "default").expect("upgrade");
        assert_eq!(meta_of(&db), (2, 2));
        upgrade(&db, "default").expect("again");
        assert_eq!(meta_of(&db), (2, 2));
    }
}
