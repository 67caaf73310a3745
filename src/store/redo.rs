//! What a group wrote, as redo ops: the writer's tables record every insert and remove in
//! their redb byte form, and recovery applies the same ops to the same tables again.
//!
//! Payload of a log record: ops back to back, each
//! `table id u8 | op u8 | key len u32 | key | (put only) value len u32 | value`.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::rc::Rc;

use redb::{AccessGuard, Key, StorageError, Table, TableDefinition, Value, WriteTransaction};

use super::tables::*;

const OP_PUT: u8 = 1;
const OP_DEL: u8 = 2;

/// The ops of one group, shared by all of its tables (the writer is one thread).
pub type Redo = Rc<RedoBuf>;

/// Where a transaction's tables record their ops: on for the writer, off for a transaction
/// no log covers (`stockd import` commits once, durably: recording every row's ops there
/// only held a copy of the whole import in memory).
#[derive(Debug)]
pub struct RedoBuf {
    ops: RefCell<Vec<u8>>,
    recording: bool,
}

impl Default for RedoBuf {
    fn default() -> Self {
        RedoBuf {
            ops: RefCell::new(Vec::new()),
            recording: true,
        }
    }
}

impl RedoBuf {
    /// A buffer that records nothing.
    pub fn off() -> RedoBuf {
        RedoBuf {
            ops: RefCell::new(Vec::new()),
            recording: false,
        }
    }

    /// The ops recorded since the last call.
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.ops.borrow_mut())
    }

    fn put(&self, id: u8, key: &[u8], value: &[u8]) {
        let mut out = self.ops.borrow_mut();
        out.push(id);
        out.push(OP_PUT);
        push_bytes(&mut out, key);
        push_bytes(&mut out, value);
    }

    fn del(&self, id: u8, key: &[u8]) {
        let mut out = self.ops.borrow_mut();
        out.push(id);
        out.push(OP_DEL);
        push_bytes(&mut out, key);
    }
}

/// Calls `$m!(id, TABLE)` for every table a write may touch. Ids are part of the log
/// format: never reuse or renumber one.
macro_rules! logged_tables {
    ($m:ident) => {
        $m!(0, META);
        $m!(1, JOURNAL);
        $m!(2, LEVELS);
        $m!(3, LEVELS_BY_WAREHOUSE);
        $m!(4, PRODUCTS);
        $m!(5, PRODUCTS_BY_SKU);
        $m!(6, PRODUCTS_BY_BARCODE);
        $m!(7, PRODUCTS_BY_ORDER);
        $m!(8, WAREHOUSES);
        $m!(9, HISTORY_BY_LEVEL);
        $m!(10, HISTORY_BY_WAREHOUSE);
        $m!(11, HISTORY_BY_REFERENCE);
        $m!(12, BATCHES);
        $m!(13, BATCHES_BY_KIND);
        $m!(14, TRANSFERS);
        $m!(15, NONCES);
        $m!(16, NONCES_BY_EXPIRY);
        $m!(17, REPLAYS);
        $m!(18, REPLAYS_BY_EXPIRY);
        $m!(19, ROLLUPS);
        $m!(20, ROLLUP_DAYS);
        $m!(21, WAREHOUSE_STATS);
        $m!(22, LOW_STOCK);
        $m!(23, RESERVATIONS);
        $m!(24, RESERVATIONS_BY_EXPIRY);
        $m!(25, NUMBERS);
    };
}

/// A table of the writer's transaction that records what it changes, opened the first
/// time a group uses it (most groups touch a few of the file's tables). Writes go through
/// `insert`/`remove`, which record them; reads through `read`. There is no way to the
/// table's own `insert`, so a write cannot bypass the record.
pub struct Logged<'t, K: Key + 'static, V: Value + 'static> {
    txn: &'t WriteTransaction,
    def: TableDefinition<'static, K, V>,
    table: Option<Table<'t, K, V>>,
    id: u8,
    redo: Redo,
}

fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// A table that cannot be opened is a storage problem to the writer (a mismatched
/// definition would be a bug caught by every test).
fn table_error(e: redb::TableError) -> StorageError {
    match e {
        redb::TableError::Storage(e) => e,
        other => StorageError::Corrupted(other.to_string()),
    }
}

impl<'t, K: Key + 'static, V: Value + 'static> Logged<'t, K, V> {
    pub fn new(txn: &'t WriteTransaction, def: TableDefinition<'static, K, V>, id: u8, redo: Redo) -> Self {
        Logged {
            txn,
            def,
            table: None,
            id,
            redo,
        }
    }

    /// The table for reading, opened on first use.
    pub fn read(&mut self) -> Result<&Table<'t, K, V>, StorageError> {
        self.open().map(|t| &*t)
    }

    fn open(&mut self) -> Result<&mut Table<'t, K, V>, StorageError> {
        if self.table.is_none() {
            self.table = Some(self.txn.open_table(self.def).map_err(table_error)?);
        }
        self.table
            .as_mut()
            .ok_or_else(|| StorageError::Corrupted("table not open".into()))
    }

    pub fn insert<'k, 'v>(
        &mut self,
        key: impl Borrow<K::SelfType<'k>>,
        value: impl Borrow<V::SelfType<'v>>,
    ) -> Result<Option<AccessGuard<'_, V>>, StorageError> {
        self.record(key.borrow(), value.borrow());
        self.open()?.insert(key, value)
    }

    /// Records a put in the group's record without writing the table yet: for a row the
    /// transaction holds in memory and writes once, with [`Logged::write_held`], before its
    /// commit (`apply::Held`). Recovery applies the record as if the table had been written.
    pub fn record<'k, 'v>(&self, key: impl Borrow<K::SelfType<'k>>, value: impl Borrow<V::SelfType<'v>>) {
        // Encoded only when recorded: a tuple key's bytes are a fresh allocation.
        if self.redo.recording {
            self.redo.put(
                self.id,
                K::as_bytes(key.borrow()).as_ref(),
                V::as_bytes(value.borrow()).as_ref(),
            );
        }
    }

    /// Writes a row whose value a [`Logged::record`] of this transaction already carries
    /// (or one no record needs: the gen recovery sets itself). Not recorded again.
    pub fn write_held<'k, 'v>(
        &mut self,
        key: impl Borrow<K::SelfType<'k>>,
        value: impl Borrow<V::SelfType<'v>>,
    ) -> Result<(), StorageError> {
        self.open()?.insert(key, value).map(|_| ())
    }

    pub fn remove<'k>(
        &mut self,
        key: impl Borrow<K::SelfType<'k>>,
    ) -> Result<Option<AccessGuard<'_, V>>, StorageError> {
        if self.redo.recording {
            self.redo.del(self.id, K::as_bytes(key.borrow()).as_ref());
        }
        self.open()?.remove(key)
    }
}

/// A table that takes ops in byte form (recovery).
trait RawTable {
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), StorageError>;
    fn del(&mut self, key: &[u8]) -> Result<(), StorageError>;
}

impl<K: Key + 'static, V: Value + 'static> RawTable for Table<'_, K, V> {
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        self.insert(K::from_bytes(key), V::from_bytes(value)).map(|_| ())
    }
    fn del(&mut self, key: &[u8]) -> Result<(), StorageError> {
        self.remove(K::from_bytes(key)).map(|_| ())
    }
}

/// Why a record's ops could not be applied.
#[derive(Debug)]
pub enum ApplyError {
    /// The payload does not parse (a record that passed its checksum: a bug or tampering).
    Malformed(String),
    Storage(String),
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplyError::Malformed(m) => write!(f, "malformed redo record: {m}"),
            ApplyError::Storage(m) => write!(f, "storage: {m}"),
        }
    }
}

/// Every logged table of `txn`, by id, for applying records.
pub struct Applier<'t> {
    tables: Vec<Box<dyn RawTable + 't>>,
}

impl<'t> Applier<'t> {
    pub fn open(txn: &'t WriteTransaction) -> Result<Applier<'t>, redb::TableError> {
        let mut tables: Vec<Box<dyn RawTable + 't>> = Vec::new();
        macro_rules! open {
            ($id:expr, $table:ident) => {
                debug_assert_eq!(tables.len(), $id);
                tables.push(Box::new(txn.open_table($table)?));
            };
        }
        logged_tables!(open);
        Ok(Applier { tables })
    }

    /// Records the gen the data file now ends at (`meta.wal_gen`).
    pub fn set_gen(&mut self, gen: u64) -> Result<(), ApplyError> {
        let meta = self
            .tables
            .first_mut()
            .ok_or_else(|| ApplyError::Malformed("no meta table".into()))?;
        meta.put(GEN_KEY.as_bytes(), &gen.to_le_bytes())
            .map_err(|e| ApplyError::Storage(e.to_string()))
    }

    /// Applies one record's ops in order.
    pub fn apply(&mut self, payload: &[u8]) -> Result<(), ApplyError> {
        let mut at = 0usize;
        let malformed = |what: &str, at: usize| ApplyError::Malformed(format!("{what} at payload byte {at}"));
        while at < payload.len() {
            let (id, op) = match payload.get(at..at + 2) {
                Some(h) => (h[0], h[1]),
                None => return Err(malformed("truncated op", at)),
            };
            at += 2;
            let key = take(payload, &mut at).ok_or_else(|| malformed("truncated key", at))?;
            let table = self
                .tables
                .get_mut(usize::from(id))
                .ok_or_else(|| malformed("unknown table id", at))?;
            let done = match op {
                OP_PUT => {
                    let value = take(payload, &mut at).ok_or_else(|| malformed("truncated value", at))?;
                    table.put(key, value)
                }
                OP_DEL => table.del(key),
                _ => return Err(malformed("unknown op", at)),
            };
            done.map_err(|e| ApplyError::Storage(e.to_string()))?;
        }
        Ok(())
    }
}

fn take<'a>(payload: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let len = payload.get(*at..*at + 4)?;
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let bytes = payload.get(*at + 4..*at + 4 + len)?;
    *at += 4 + len;
    Some(bytes)
}
