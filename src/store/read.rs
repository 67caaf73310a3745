//! Reads: one redb read transaction per request (MVCC; readers share one until the next
//! commit, `Store::reader`), never waiting for the writer.

use std::sync::{Arc, OnceLock};

use redb::{AccessGuard, ReadOnlyTable, ReadTransaction, ReadableTable, ReadableTableMetadata};

use super::tables::*;
use super::StoreError;
use super::{codec, storage_error};
use crate::ledger::{Kind, Level, Movement, NumberSpace, Product, Transfer, Warehouse};

/// Most warehouses a list answers (they are few; this only bounds a runaway file).
pub const WAREHOUSES_LIST_MAX: usize = 10_000;

/// One page of a list: either `page` (1-based, O(offset)) or `cursor` (O(page)).
#[derive(Debug, Clone, Default)]
pub struct Paging {
    pub page: u64,
    pub limit: u64,
    /// Resume strictly after this position (the previous answer's `next_cursor`).
    pub cursor: Option<String>,
    /// Rows to skip instead of whole pages (offset/limit dialects).
    pub offset: Option<u64>,
    /// Skip counting the total (the answer has no place for it): O(page), not O(n).
    pub uncounted: bool,
}

impl Paging {
    fn offset(&self) -> u64 {
        match (&self.cursor, self.offset) {
            (Some(_), _) => 0,
            (None, Some(offset)) => offset,
            (None, None) => self.page.saturating_sub(1).saturating_mul(self.limit),
        }
    }

    /// `limit` rows after skipping `offset`, without a total.
    pub fn window(offset: u64, limit: u64) -> Paging {
        Paging {
            page: 1,
            limit,
            cursor: None,
            offset: Some(offset),
            uncounted: true,
        }
    }
}

/// A page of rows with what the native `meta` needs.
#[derive(Debug, Clone)]
pub struct PageOf<T> {
    pub rows: Vec<T>,
    /// Matching rows in the whole list; `None` when a cursor was given (not counted).
    pub total: Option<u64>,
    pub has_more: bool,
    pub next_cursor: Option<String>,
}

pub type MovementPage = PageOf<Movement>;
/// A level with its (product, warehouse) key.
pub type KeyedLevel = ((String, String), Level);

#[derive(Debug, Clone, Default)]
pub struct LevelFilter {
    pub product: Option<String>,
    pub warehouse: Option<String>,
    pub low_stock: bool,
    pub out_of_stock: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ProductFilter {
    pub sku: Option<String>,
    pub barcode: Option<String>,
    /// Case-insensitive substring of name, sku or barcode.
    pub q: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct MovementFilter {
    pub product: Option<String>,
    pub warehouse: Option<String>,
    /// A seed-003 `movement_type` (`in`, `out`, `adjustment`, `transfer`) or a journal kind.
    pub movement_type: Option<String>,
    /// Only entries of this journal kind.
    pub kind: Option<Kind>,
    pub reference_id: Option<String>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
}

fn cursor_encode(parts: &[&str]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(parts.join("\u{0}"))
}

fn cursor_decode(cursor: &str, parts: usize) -> Result<Vec<String>, StoreError> {
    use base64::Engine;
    let bad = || StoreError::BadCursor;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let split: Vec<String> = text.split('\u{0}').map(str::to_string).collect();
    if split.len() != parts {
        return Err(bad());
    }
    Ok(split)
}

pub struct Reader {
    snap: Arc<Snapshot>,
    /// The database this snapshot reads, when the reader must keep it open (files).
    pub(super) owner: Option<redb::Database>,
}

/// A read transaction with the tables every level read opens, each opened once: readers
/// share one while no commit has come since it began (`Store::reader`), which spares each
/// read its `begin_read` and three `open_table`s (a sixth of a level read's instructions).
pub struct Snapshot {
    txn: ReadTransaction,
    levels: OnceLock<ReadOnlyTable<(&'static str, &'static str), &'static [u8]>>,
    products: OnceLock<ReadOnlyTable<&'static str, &'static [u8]>>,
    warehouses: OnceLock<ReadOnlyTable<&'static str, &'static [u8]>>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").finish_non_exhaustive()
    }
}

impl Snapshot {
    pub fn new(txn: ReadTransaction) -> Snapshot {
        Snapshot {
            txn,
            levels: OnceLock::new(),
            products: OnceLock::new(),
            warehouses: OnceLock::new(),
        }
    }

    fn levels(&self) -> Result<&ReadOnlyTable<(&'static str, &'static str), &'static [u8]>, StoreError> {
        opened(&self.levels, &self.txn, LEVELS)
    }

    fn products(&self) -> Result<&ReadOnlyTable<&'static str, &'static [u8]>, StoreError> {
        opened(&self.products, &self.txn, PRODUCTS)
    }

    fn warehouses(&self) -> Result<&ReadOnlyTable<&'static str, &'static [u8]>, StoreError> {
        opened(&self.warehouses, &self.txn, WAREHOUSES)
    }
}

/// The table in `cell`, opened first if need be (two threads may both open it; one keeps it).
fn opened<'a, K: redb::Key + 'static, V: redb::Value + 'static>(
    cell: &'a OnceLock<ReadOnlyTable<K, V>>,
    txn: &ReadTransaction,
    def: redb::TableDefinition<K, V>,
) -> Result<&'a ReadOnlyTable<K, V>, StoreError> {
    if let Some(t) = cell.get() {
        return Ok(t);
    }
    let t = table(txn, def)?;
    Ok(cell.get_or_init(|| t))
}

fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &ReadTransaction,
    def: redb::TableDefinition<K, V>,
) -> Result<ReadOnlyTable<K, V>, StoreError> {
    txn.open_table(def).map_err(storage_error)
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("undecodable row: {e}"))
}

impl Reader {
    pub fn new(txn: ReadTransaction) -> Result<Reader, StoreError> {
        Ok(Reader::of(Arc::new(Snapshot::new(txn))))
    }

    /// A reader of a snapshot other readers may share.
    pub(super) fn of(snap: Arc<Snapshot>) -> Reader {
        Reader { snap, owner: None }
    }

    /// Whether both read the same snapshot.
    #[cfg(test)]
    pub(super) fn shares_snapshot_with(&self, other: &Reader) -> bool {
        Arc::ptr_eq(&self.snap, &other.snap)
    }

    /// The read transaction, for readers of other store modules (sinks).
    pub(super) fn txn(&self) -> &ReadTransaction {
        &self.snap.txn
    }

    pub fn level(&self, product: &str, warehouse: &str) -> Result<Option<Level>, StoreError> {
        let t = self.snap.levels()?;
        let row = t.get((product, warehouse)).map_err(storage_error)?;
        row.map(|v| codec::decode_level(v.value()).map_err(corrupt)).transpose()
    }

    pub fn product(&self, id: &str) -> Result<Option<Product>, StoreError> {
        let t = self.snap.products()?;
        let row = t.get(id).map_err(storage_error)?;
        row.map(|v| codec::decode_product(v.value()).map_err(corrupt))
            .transpose()
    }

    pub fn product_by_sku(&self, sku: &str) -> Result<Option<Product>, StoreError> {
        let t = table(&self.snap.txn, PRODUCTS_BY_SKU)?;
        let id = t.get(sku).map_err(storage_error)?.map(|v| v.value().to_string());
        match id {
            Some(id) => self.product(&id),
            None => Ok(None),
        }
    }

    pub fn warehouse(&self, id: &str) -> Result<Option<Warehouse>, StoreError> {
        let t = self.snap.warehouses()?;
        let row = t.get(id).map_err(storage_error)?;
        row.map(|v| codec::decode_warehouse(v.value()).map_err(corrupt))
            .transpose()
    }

    pub fn warehouses(&self) -> Result<Vec<Warehouse>, StoreError> {
        let t = self.snap.warehouses()?;
        let mut out = Vec::new();
        for row in t.iter().map_err(storage_error)?.take(WAREHOUSES_LIST_MAX) {
            let (_, v) = row.map_err(storage_error)?;
            out.push(codec::decode_warehouse(v.value()).map_err(corrupt)?);
        }
        Ok(out)
    }

    /// The id `number` names in `space`: an all-digit id's own number, else one the store
    /// assigned (or `0`, the first default warehouse). At most two point lookups, never a
    /// scan (the dialects' hot path).
    pub fn id_of_number(&self, space: NumberSpace, number: u64) -> Result<Option<String>, StoreError> {
        let digits = number.to_string();
        if crate::ledger::direct_number(&digits).is_some() {
            let def = match space {
                NumberSpace::Product => PRODUCTS,
                NumberSpace::Warehouse => WAREHOUSES,
            };
            if table(&self.snap.txn, def)?
                .get(digits.as_str())
                .map_err(storage_error)?
                .is_some()
            {
                return Ok(Some(digits));
            }
        }
        let t = table(&self.snap.txn, NUMBERS)?;
        let id = t.get((space.key(), number)).map_err(storage_error)?;
        Ok(id.map(|v| v.value().to_string()))
    }

    /// Ids of the warehouses named exactly `name` that pass `keep`, at most two (one is an
    /// answer, two an ambiguity). Warehouses are few; the walk stops after
    /// `WAREHOUSES_LIST_MAX` of them.
    pub fn warehouses_named(&self, name: &str, keep: impl Fn(&str) -> bool) -> Result<Vec<String>, StoreError> {
        let t = self.snap.warehouses()?;
        let mut out = Vec::new();
        for row in t.iter().map_err(storage_error)?.take(WAREHOUSES_LIST_MAX) {
            let (k, v) = row.map_err(storage_error)?;
            if keep(k.value()) && codec::decode_warehouse(v.value()).map_err(corrupt)?.name == name {
                out.push(k.value().to_string());
                if out.len() == 2 {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// One page of warehouses, by id (`GET /api/warehouses`).
    pub fn warehouse_page(&self, paging: &Paging) -> Result<PageOf<Warehouse>, StoreError> {
        let after = match &paging.cursor {
            Some(c) => Some(cursor_decode(c, 1)?.remove(0)),
            None => None,
        };
        let mut acc = Accumulator::new(paging);
        let t = self.snap.warehouses()?;
        let start = after.clone().unwrap_or_default();
        for row in t.range(start.as_str()..).map_err(storage_error)? {
            let (k, v) = row.map_err(storage_error)?;
            if after.as_deref() == Some(k.value()) {
                continue;
            }
            if !acc.push(codec::decode_warehouse(v.value()).map_err(corrupt)?) {
                break;
            }
        }
        Ok(acc.finish(|w| cursor_encode(&[&w.id])))
    }

    pub fn transfer(&self, id: &str) -> Result<Option<Transfer>, StoreError> {
        let t = table(&self.snap.txn, TRANSFERS)?;
        let row = t.get(id).map_err(storage_error)?;
        row.map(|v| codec::decode_transfer(v.value()).map_err(corrupt))
            .transpose()
    }

    pub fn movement(&self, seq: u64) -> Result<Option<Movement>, StoreError> {
        let t = table(&self.snap.txn, JOURNAL)?;
        let row = t.get(seq).map_err(storage_error)?;
        row.map(|v| codec::decode_movement(v.value()).map_err(corrupt))
            .transpose()
    }

    /// Levels of one product in every warehouse where it has one, by warehouse id.
    pub fn product_levels(&self, product: &str) -> Result<Vec<(String, Level)>, StoreError> {
        let t = self.snap.levels()?;
        let mut out = Vec::new();
        for row in t.range((product, "")..).map_err(storage_error)? {
            let (k, v) = row.map_err(storage_error)?;
            let (p, w) = k.value();
            if p != product {
                break;
            }
            out.push((w.to_string(), codec::decode_level(v.value()).map_err(corrupt)?));
        }
        Ok(out)
    }

    /// Levels matching `filter`, ordered by (product, warehouse).
    pub fn levels(&self, filter: &LevelFilter, paging: &Paging) -> Result<PageOf<KeyedLevel>, StoreError> {
        let after = match &paging.cursor {
            Some(c) => {
                let parts = cursor_decode(c, 2)?;
                Some((parts[0].clone(), parts[1].clone()))
            }
            None => None,
        };
        let keep = |l: &Level| {
            (!filter.low_stock || l.reorder_point.is_some_and(|r| l.buckets.available() <= r))
                && (!filter.out_of_stock || l.buckets.available() <= 0)
        };
        let mut acc = Accumulator::new(paging);
        let levels = self.snap.levels()?;
        match (&filter.product, &filter.warehouse) {
            (Some(p), Some(w)) => {
                if let Some(v) = levels.get((p.as_str(), w.as_str())).map_err(storage_error)? {
                    let l = codec::decode_level(v.value()).map_err(corrupt)?;
                    let key = (p.clone(), w.clone());
                    if keep(&l) && after.as_ref().is_none_or(|a| &key > a) {
                        acc.push((key, l));
                    }
                }
            }
            (Some(p), None) => {
                let start = after.clone().unwrap_or((p.clone(), String::new()));
                for row in levels
                    .range((start.0.as_str(), start.1.as_str())..)
                    .map_err(storage_error)?
                {
                    let (k, v) = row.map_err(storage_error)?;
                    let (kp, kw) = k.value();
                    if kp != p {
                        break;
                    }
                    let key = (kp.to_string(), kw.to_string());
                    if after.as_ref() == Some(&key) {
                        continue;
                    }
                    let l = codec::decode_level(v.value()).map_err(corrupt)?;
                    if keep(&l) && !acc.push((key, l)) {
                        break;
                    }
                }
            }
            (None, Some(w)) => {
                // The warehouse index is ordered (warehouse, product); the cursor is (product, warehouse).
                let by_w = table(&self.snap.txn, LEVELS_BY_WAREHOUSE)?;
                let start_p = after.as_ref().map(|a| a.0.clone()).unwrap_or_default();
                for row in by_w.range((w.as_str(), start_p.as_str())..).map_err(storage_error)? {
                    let (k, _) = row.map_err(storage_error)?;
                    let (kw, kp) = k.value();
                    if kw != w {
                        break;
                    }
                    let key = (kp.to_string(), kw.to_string());
                    if after.as_ref() == Some(&key) {
                        continue;
                    }
                    let Some(v) = levels.get((kp, kw)).map_err(storage_error)? else {
                        continue;
                    };
                    let l = codec::decode_level(v.value()).map_err(corrupt)?;
                    if keep(&l) && !acc.push((key, l)) {
                        break;
                    }
                }
            }
            (None, None) => {
                let start = after.clone().unwrap_or_default();
                for row in levels
                    .range((start.0.as_str(), start.1.as_str())..)
                    .map_err(storage_error)?
                {
                    let (k, v) = row.map_err(storage_error)?;
                    let (kp, kw) = k.value();
                    let key = (kp.to_string(), kw.to_string());
                    if after.as_ref() == Some(&key) {
                        continue;
                    }
                    let l = codec::decode_level(v.value()).map_err(corrupt)?;
                    if keep(&l) && !acc.push((key, l)) {
                        break;
                    }
                }
            }
        }
        Ok(acc.finish(|((p, w), _)| cursor_encode(&[p, w])))
    }

    /// Products matching `filter`, ordered by id.
    pub fn products(&self, filter: &ProductFilter, paging: &Paging) -> Result<PageOf<Product>, StoreError> {
        let after = match &paging.cursor {
            Some(c) => Some(cursor_decode(c, 1)?.remove(0)),
            None => None,
        };
        let mut acc = Accumulator::new(paging);
        if let Some(sku) = &filter.sku {
            if let Some(p) = self.product_by_sku(sku)? {
                if filter.barcode.as_ref().is_none_or(|b| p.barcode.as_ref() == Some(b))
                    && after.as_ref().is_none_or(|a| &p.id > a)
                {
                    acc.push(p);
                }
            }
            return Ok(acc.finish(|p| cursor_encode(&[&p.id])));
        }
        if let Some(barcode) = &filter.barcode {
            let t = table(&self.snap.txn, PRODUCTS_BY_BARCODE)?;
            let start = after.clone().unwrap_or_default();
            for row in t.range((barcode.as_str(), start.as_str())..).map_err(storage_error)? {
                let (k, _) = row.map_err(storage_error)?;
                let (b, id) = k.value();
                if b != barcode {
                    break;
                }
                if after.as_deref() == Some(id) {
                    continue;
                }
                if let Some(p) = self.product(id)? {
                    if !acc.push(p) {
                        break;
                    }
                }
            }
            return Ok(acc.finish(|p| cursor_encode(&[&p.id])));
        }
        let needle = filter.q.as_ref().map(|q| q.to_lowercase());
        let t = self.snap.products()?;
        let start = after.clone().unwrap_or_default();
        for row in t.range(start.as_str()..).map_err(storage_error)? {
            let (k, v) = row.map_err(storage_error)?;
            if after.as_deref() == Some(k.value()) {
                continue;
            }
            let p = codec::decode_product(v.value()).map_err(corrupt)?;
            let hit = needle.as_ref().is_none_or(|n| {
                p.name.to_lowercase().contains(n)
                    || p.sku.to_lowercase().contains(n)
                    || p.barcode.as_ref().is_some_and(|b| b.to_lowercase().contains(n))
            });
            if hit && !acc.push(p) {
                break;
            }
        }
        Ok(acc.finish(|p| cursor_encode(&[&p.id])))
    }

    pub fn seq_last(&self) -> Result<u64, StoreError> {
        let t = table(&self.snap.txn, JOURNAL)?;
        let last = t.last().map_err(storage_error)?;
        Ok(last.map(|(k, _)| k.value()).unwrap_or(0))
    }

    /// First seq whose time is ≥ `at_ms` (seq order is time order): a binary search.
    fn seq_at_or_after(
        &self,
        journal: &ReadOnlyTable<u64, &'static [u8]>,
        last: u64,
        at_ms: i64,
    ) -> Result<u64, StoreError> {
        let (mut lo, mut hi) = (1u64, last + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let row = journal.get(mid).map_err(storage_error)?;
            let t = match row {
                Some(v) => codec::movement_at_ms(v.value()).map_err(corrupt)?,
                None => return Err(StoreError::Internal(format!("journal gap at seq {mid}"))),
            };
            if t < at_ms {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// Movements matching `filter`, newest first.
    pub fn movements(&self, filter: &MovementFilter, paging: &Paging) -> Result<MovementPage, StoreError> {
        let journal = table(&self.snap.txn, JOURNAL)?;
        let last = self.seq_last()?;
        let mut lo = 1u64;
        let mut hi = last;
        if let Some(start) = filter.start_ms {
            lo = self.seq_at_or_after(&journal, last, start)?;
        }
        if let Some(end) = filter.end_ms {
            hi = self
                .seq_at_or_after(&journal, last, end.saturating_add(1))?
                .saturating_sub(1);
        }
        if let Some(c) = &paging.cursor {
            let before: u64 = cursor_decode(c, 1)?[0].parse().map_err(|_| StoreError::BadCursor)?;
            hi = hi.min(before.saturating_sub(1));
        }
        let mut acc = Accumulator::new(paging);
        if lo > hi || last == 0 {
            return Ok(acc.finish(|m: &Movement| cursor_encode(&[&m.seq.to_string()])));
        }
        // Entries that cannot change on_hand (holds, buffer) only when a filter names their kind.
        let type_ok = |k: Kind| {
            filter.kind.is_none_or(|x| x == k)
                && filter
                    .movement_type
                    .as_deref()
                    .is_none_or(|t| k.movement_type() == t || k.name() == t)
                && (k.moves_on_hand() || filter.kind == Some(k) || filter.movement_type.as_deref() == Some(k.name()))
        };
        // Filters the chosen index does not cover are checked on each movement.
        let (index, reference_checked) = match (&filter.product, &filter.warehouse, &filter.reference_id) {
            (Some(_), Some(_), _) => (Index::Level, false),
            (Some(_), None, _) => (Index::Product, false),
            (None, Some(_), _) => (Index::Warehouse, false),
            (None, None, Some(_)) => (Index::Reference, true),
            (None, None, None) => (Index::Journal, false),
        };
        // Every list filters on the kind (hidden kinds), read from its fixed place in the
        // entry; only a reference the index does not cover needs the whole entry decoded.
        let residual = filter.reference_id.is_some() && !reference_checked;
        let unfiltered = index == Index::Journal && filter.kind.is_none() && filter.movement_type.is_none();
        if unfiltered && paging.cursor.is_none() && lo == 1 && hi == last {
            // The whole journal less what it hides: no walk to count a page's `total`.
            let hidden = meta_number(&table(&self.snap.txn, META)?, HIDDEN_ENTRIES_KEY).map_err(storage_error)?;
            acc.total_known = Some(last.saturating_sub(hidden));
        }
        let mut visit_entry = |bytes: &[u8]| -> Result<bool, StoreError> {
            if !residual && !acc.wants_row() {
                let kind = codec::movement_kind(bytes).map_err(corrupt)?;
                return Ok(!type_ok(kind) || acc.skip_counted());
            }
            let m = codec::decode_movement(bytes).map_err(corrupt)?;
            let ok = type_ok(m.draft.kind)
                && (reference_checked || filter.reference_id.is_none() || m.draft.reference_id == filter.reference_id);
            Ok(!ok || acc.push(m))
        };
        let journal_at = table(&self.snap.txn, JOURNAL)?;
        let mut visit = |seq: u64| -> Result<bool, StoreError> {
            match journal_at.get(seq).map_err(storage_error)? {
                Some(v) => visit_entry(v.value()),
                None => Ok(true),
            }
        };
        let s = |o: &Option<String>| o.clone().unwrap_or_default();
        // Where level chains begin (an upgraded file's older rows are in the index).
        let chained_from = match index {
            Index::Level | Index::Product => {
                meta_number(&table(&self.snap.txn, META)?, CHAINED_FROM_KEY).map_err(storage_error)?
            }
            _ => 0,
        };
        match index {
            Index::Level => {
                let (p, w) = (s(&filter.product), s(&filter.warehouse));
                for row in self.level_history(&journal_at, &p, &w, (lo, hi), chained_from)? {
                    if !visit_entry(row?.1.value())? {
                        break;
                    }
                }
            }
            Index::Product => {
                // A product's history is the merge, newest first, of its levels' histories:
                // a product has a handful of warehouses, and this saves a random B-tree page
                // per movement on the write path (no product-keyed index to maintain).
                let p = s(&filter.product);
                let warehouses: Vec<String> = self.product_levels(&p)?.into_iter().map(|(w, _)| w).collect();
                let mut heads = Vec::with_capacity(warehouses.len());
                for w in &warehouses {
                    heads.push(
                        self.level_history(&journal_at, &p, w, (lo, hi), chained_from)?
                            .peekable(),
                    );
                }
                loop {
                    let mut newest: Option<(usize, u64)> = None;
                    for (i, head) in heads.iter_mut().enumerate() {
                        match head.peek() {
                            Some(Ok((seq, _))) if newest.is_none_or(|(_, n)| *seq > n) => newest = Some((i, *seq)),
                            Some(Err(_)) => {
                                if let Some(Err(e)) = head.next() {
                                    return Err(e);
                                }
                            }
                            _ => {}
                        }
                    }
                    let Some((i, _)) = newest else { break };
                    let Some(Ok((_, row))) = heads[i].next() else { break };
                    if !visit_entry(row.value())? {
                        break;
                    }
                }
            }
            Index::Warehouse | Index::Reference => {
                let (def, key) = match index {
                    Index::Warehouse => (HISTORY_BY_WAREHOUSE, s(&filter.warehouse)),
                    _ => (HISTORY_BY_REFERENCE, s(&filter.reference_id)),
                };
                let t = table(&self.snap.txn, def)?;
                for row in t
                    .range((key.as_str(), lo)..=(key.as_str(), hi))
                    .map_err(storage_error)?
                    .rev()
                {
                    if !visit(row.map_err(storage_error)?.0.value().1)? {
                        break;
                    }
                }
            }
            Index::Journal => {
                // One sequential walk of the range (the kinds it counts are in the entries).
                for row in journal.range(lo..=hi).map_err(storage_error)?.rev() {
                    if !visit_entry(row.map_err(storage_error)?.1.value())? {
                        break;
                    }
                }
            }
        }
        Ok(acc.finish(|m: &Movement| cursor_encode(&[&m.seq.to_string()])))
    }

    /// A level's movements in `lo..=hi`, newest first: its chain of back-pointers, walked
    /// from its head or, when `hi` is older than the head, from its first entry in
    /// `history_by_level` after `hi` — at most `HISTORY_MARK_INTERVAL` rows above the range
    /// — and, below the first row with a pointer (a file upgraded to format 3), the
    /// index's entries, which list every movement from before.
    fn level_history<'t>(
        &'t self,
        journal: &'t ReadOnlyTable<u64, &'static [u8]>,
        p: &str,
        w: &str,
        (lo, hi): (u64, u64),
        chained_from: u64,
    ) -> Result<LevelWalk<'t>, StoreError> {
        let head = match self.snap.levels()?.get((p, w)).map_err(storage_error)? {
            Some(v) => codec::decode_level_row(v.value()).map_err(corrupt)?.1.head,
            None => 0,
        };
        let mut walk = LevelWalk {
            journal,
            index: None,
            txn: &self.snap.txn,
            level: (p.to_string(), w.to_string()),
            chained_from,
            next: head,
            lo,
            hi,
        };
        if head > hi {
            let index = walk.index()?;
            let mut after_hi = index.range((p, w, hi + 1)..=(p, w, u64::MAX)).map_err(storage_error)?;
            if let Some(row) = after_hi.next() {
                walk.next = row.map_err(storage_error)?.0.value().2;
            }
        }
        Ok(walk)
    }

    /// Number of journal entries (O(1): redb keeps table lengths).
    pub fn journal_len(&self) -> Result<u64, StoreError> {
        table(&self.snap.txn, JOURNAL)?.len().map_err(storage_error)
    }

    /// The change feed: journal entries after `after` in seq order, at most `limit` (and
    /// never more than [`FEED_SCAN_ENTRIES_MAX`]), only those of `warehouses` when given.
    ///
    /// A restricted reader does not walk the journal: it merges the `history_by_warehouse`
    /// ranges of its warehouses, so every entry it examines is one it may see, however
    /// much of the journal belongs to other warehouses (issue 10, item 1).
    pub fn feed(&self, after: u64, limit: u64, warehouses: Option<&[String]>) -> Result<FeedPage, StoreError> {
        let limit = limit.clamp(1, FEED_SCAN_ENTRIES_MAX);
        let last = self.seq_last()?;
        let journal = table(&self.snap.txn, JOURNAL)?;
        let seqs = match warehouses {
            _ if after >= last => Vec::new(),
            None => (after + 1..=last.min(after.saturating_add(limit))).collect(),
            Some(ws) => self.feed_seqs(after, last, limit, ws)?,
        };
        let mut rows = Vec::with_capacity(seqs.len());
        for &seq in &seqs {
            if let Some(v) = journal.get(seq).map_err(storage_error)? {
                rows.push(codec::decode_movement(v.value()).map_err(corrupt)?);
            }
        }
        // A full page stops at its last entry; a short one has seen everything up to `last`.
        let position = match seqs.last() {
            Some(&seq) if seqs.len() as u64 == limit => seq,
            _ => last.max(after),
        };
        Ok(FeedPage {
            rows,
            position,
            has_more: position < last,
            examined: seqs.len() as u64,
        })
    }

    /// The first `limit` seqs in `after+1..=last` of any of `warehouses`: a k-way merge of
    /// their index ranges (a credential names a handful of warehouses).
    fn feed_seqs(&self, after: u64, last: u64, limit: u64, warehouses: &[String]) -> Result<Vec<u64>, StoreError> {
        let mut names: Vec<&str> = warehouses.iter().map(String::as_str).collect();
        names.sort_unstable();
        names.dedup();
        let t = table(&self.snap.txn, HISTORY_BY_WAREHOUSE)?;
        let mut heads = Vec::with_capacity(names.len());
        for w in names {
            let range = t
                .range((w, after + 1)..=(w, last))
                .map_err(storage_error)?
                .map(|row| row.map(|(k, _)| k.value().1).map_err(storage_error));
            heads.push(range.peekable());
        }
        let mut seqs = Vec::new();
        while (seqs.len() as u64) < limit {
            let mut oldest: Option<(usize, u64)> = None;
            for (i, head) in heads.iter_mut().enumerate() {
                match head.peek() {
                    Some(Ok(seq)) if oldest.is_none_or(|(_, o)| *seq < o) => oldest = Some((i, *seq)),
                    Some(Err(_)) => return Err(head.next().and_then(Result::err).unwrap_or_else(|| corrupt("index"))),
                    _ => {}
                }
            }
            let Some((i, seq)) = oldest else { break };
            heads[i].next();
            seqs.push(seq);
        }
        Ok(seqs)
    }
}

/// A walk of one level's history: journal rows from `next` back along their pointers, then
/// (rows from before the chain) along `history_by_level`; those in `lo..=hi` yielded with
/// their seq.
struct LevelWalk<'t> {
    journal: &'t ReadOnlyTable<u64, &'static [u8]>,
    /// `history_by_level`, opened once needed.
    index: Option<ReadOnlyTable<(&'static str, &'static str, u64), ()>>,
    txn: &'t ReadTransaction,
    level: (String, String),
    /// Rows before this seq have no pointer (`CHAINED_FROM_KEY`).
    chained_from: u64,
    /// The next row to read; `0`: the walk has ended (or failed).
    next: u64,
    lo: u64,
    hi: u64,
}

impl LevelWalk<'_> {
    fn index(&mut self) -> Result<&ReadOnlyTable<(&'static str, &'static str, u64), ()>, StoreError> {
        if self.index.is_none() {
            self.index = Some(table(self.txn, HISTORY_BY_LEVEL)?);
        }
        self.index.as_ref().ok_or_else(|| corrupt("history_by_level"))
    }

    /// The seq of the level's movement before `seq` (`0`: none), from the row's pointer or,
    /// for a row from before the chain, from the index.
    fn previous(&mut self, seq: u64, row: &[u8]) -> Result<u64, StoreError> {
        if seq >= self.chained_from {
            return match codec::journal_prev(row).map_err(corrupt)? {
                // Strictly older, so a damaged pointer cannot make the walk loop.
                prev if prev < seq => Ok(prev),
                prev => Err(corrupt(format!("seq {seq} points back to {prev}"))),
            };
        }
        self.index()?;
        let (Some(index), (p, w)) = (&self.index, &self.level) else {
            return Err(corrupt("history_by_level"));
        };
        let mut before = index
            .range((p.as_str(), w.as_str(), self.lo)..(p.as_str(), w.as_str(), seq))
            .map_err(storage_error)?;
        match before.next_back() {
            Some(entry) => Ok(entry.map_err(storage_error)?.0.value().2),
            None => Ok(0),
        }
    }
}

impl Iterator for LevelWalk<'_> {
    type Item = Result<(u64, AccessGuard<'static, &'static [u8]>), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.next >= self.lo.max(1) {
            let seq = std::mem::take(&mut self.next);
            let row = match self.journal.get(seq) {
                Ok(Some(row)) => row,
                Ok(None) => {
                    return Some(Err(corrupt(format!(
                        "a level's history names seq {seq}, not in the journal"
                    ))))
                }
                Err(e) => return Some(Err(storage_error(e))),
            };
            match self.previous(seq, row.value()) {
                Ok(prev) => self.next = prev,
                Err(e) => return Some(Err(e)),
            }
            if seq <= self.hi {
                return Some(Ok((seq, row)));
            }
        }
        None
    }
}

/// Most journal entries one change-feed read examines (API.md `/changes`): a request's
/// work is bounded whatever the journal holds and whoever asks.
pub const FEED_SCAN_ENTRIES_MAX: u64 = 1000;

/// One answer of the change feed.
#[derive(Debug, Clone)]
pub struct FeedPage {
    pub rows: Vec<Movement>,
    /// The last seq this read has accounted for: the next read starts after it. Past
    /// entries the reader may not see, so a restricted feed never stalls on them.
    pub position: u64,
    pub has_more: bool,
    /// Journal entries read (the bound under test).
    pub examined: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Index {
    Level,
    Product,
    Warehouse,
    Reference,
    Journal,
}

/// Collects one page out of a stream of matching rows: skips the offset, keeps `limit`,
/// notes whether more follow and, without a cursor, counts them all for `total`.
struct Accumulator<T> {
    offset: u64,
    limit: u64,
    counting: bool,
    seen: u64,
    rows: Vec<T>,
    has_more: bool,
    total_known: Option<u64>,
}

impl<T> Accumulator<T> {
    fn new(paging: &Paging) -> Self {
        Accumulator {
            offset: paging.offset(),
            limit: paging.limit.max(1),
            counting: paging.cursor.is_none() && !paging.uncounted,
            seen: 0,
            rows: Vec::new(),
            has_more: false,
            total_known: None,
        }
    }

    /// Whether the next matching row would be kept on the page.
    fn wants_row(&self) -> bool {
        self.seen >= self.offset && (self.rows.len() as u64) < self.limit
    }

    /// Counts a matching row without loading it; `false` = stop visiting.
    fn skip_counted(&mut self) -> bool {
        if (self.rows.len() as u64) >= self.limit {
            self.has_more = true;
            if !self.counting || self.total_known.is_some() {
                self.seen += 1;
                return false;
            }
        }
        self.seen += 1;
        true
    }

    /// Offers a matching row; `false` = stop visiting (page full and nothing left to count).
    fn push(&mut self, row: T) -> bool {
        if self.wants_row() {
            self.rows.push(row);
            self.seen += 1;
            return true;
        }
        self.skip_counted()
    }

    fn finish(self, cursor_of: impl Fn(&T) -> String) -> PageOf<T> {
        let next_cursor = if self.has_more {
            self.rows.last().map(&cursor_of)
        } else {
            None
        };
        let total = if self.counting {
            Some(self.total_known.unwrap_or(self.seen))
        } else {
            None
        };
        PageOf {
            rows: self.rows,
            total,
            has_more: self.has_more,
            next_cursor,
        }
    }
}

impl Reader {
    pub fn batch(&self, id: &str) -> Result<Option<crate::ledger::Batch>, StoreError> {
        let t = table(&self.snap.txn, BATCHES)?;
        let row = t.get(id).map_err(storage_error)?;
        row.map(|v| codec::decode_batch(v.value()).map_err(corrupt)).transpose()
    }

    /// Batches of one kind from `seq_from` on, oldest first: `offset` skipped, at most
    /// `limit` returned, with the count of all of them.
    pub fn batches(
        &self,
        kind: &str,
        seq_from: u64,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<crate::ledger::Batch>, u64), StoreError> {
        let t = table(&self.snap.txn, BATCHES_BY_KIND)?;
        let mut out = Vec::new();
        let mut total = 0u64;
        for row in t.range((kind, seq_from)..=(kind, u64::MAX)).map_err(storage_error)? {
            let (_, id) = row.map_err(storage_error)?;
            if total >= offset && (out.len() as u64) < limit {
                if let Some(b) = self.batch(id.value())? {
                    out.push(b);
                }
            }
            total += 1;
        }
        Ok((out, total))
    }

    /// The first seq written at or after `at_ms` (seq order is time order).
    pub fn seq_since(&self, at_ms: i64) -> Result<u64, StoreError> {
        let journal = table(&self.snap.txn, JOURNAL)?;
        let last = self.seq_last()?;
        self.seq_at_or_after(&journal, last, at_ms)
    }
}

/// Seed 003 analytics over whole days, from the roll-ups (never the journal).
#[derive(Debug, Clone, Default)]
pub struct Analytics {
    /// Products in the catalog, or with a level in the warehouse asked for.
    pub total_products: u64,
    pub stock_value_micros: i128,
    pub low_stock_items: i64,
    pub out_of_stock_items: i64,
    pub trends: super::rollup::Rollup,
    /// (product, roll-up over the period), most movements first.
    pub top_movers: Vec<(String, super::rollup::Rollup)>,
    /// (product, warehouse, level) at or below the reorder point.
    pub low_stock_alerts: Vec<(String, String, Level)>,
}

/// Top movers and low-stock alerts an analytics answer lists at most.
pub const ANALYTICS_LIST_MAX: usize = 10;
pub const LOW_STOCK_ALERTS_MAX: usize = 50;

impl Reader {
    /// Analytics of the days `day_from..=day_to`, for one warehouse or all.
    pub fn analytics(&self, warehouse: Option<&str>, day_from: i64, day_to: i64) -> Result<Analytics, StoreError> {
        use super::rollup::{Rollup, Stats};
        let mut a = Analytics::default();
        let in_scope = |w: &str| warehouse.is_none_or(|x| x == w);

        let stats = table(&self.snap.txn, WAREHOUSE_STATS)?;
        let mut total = Stats::default();
        for row in stats.iter().map_err(storage_error)? {
            let (k, v) = row.map_err(storage_error)?;
            if in_scope(k.value()) {
                total.add(&Stats::decode(v.value()).map_err(corrupt)?);
            }
        }
        a.stock_value_micros = total.value_micros;
        a.low_stock_items = total.low_stock;
        a.out_of_stock_items = total.out_of_stock;
        a.total_products = match warehouse {
            Some(_) => total.levels.max(0) as u64,
            None => self.snap.products()?.len().map_err(storage_error)?,
        };

        let days = table(&self.snap.txn, ROLLUP_DAYS)?;
        for row in days
            .range((day_from, "")..(day_to.saturating_add(1), ""))
            .map_err(storage_error)?
        {
            let (k, v) = row.map_err(storage_error)?;
            if in_scope(k.value().1) {
                let r = Rollup::decode(v.value()).map_err(corrupt)?;
                a.trends.add(&if warehouse.is_some() { r } else { r.shop_wide() });
            }
        }

        let mut movers: std::collections::HashMap<String, Rollup> = std::collections::HashMap::new();
        let rollups = table(&self.snap.txn, ROLLUPS)?;
        let range = (day_from, "", "")..(day_to.saturating_add(1), "", "");
        for row in rollups.range(range).map_err(storage_error)? {
            let (k, v) = row.map_err(storage_error)?;
            let (_, w, p) = k.value();
            if in_scope(w) {
                let r = Rollup::decode(v.value()).map_err(corrupt)?;
                match movers.get_mut(p) {
                    Some(acc) => acc.add(&r),
                    None => {
                        movers.insert(p.to_string(), r);
                    }
                }
            }
        }
        // A product whose entries changed no on_hand (only holds, say) moved nothing.
        let mut movers: Vec<(String, Rollup)> = movers.into_iter().filter(|(_, r)| r.movements > 0).collect();
        movers.sort_by(|x, y| {
            (y.1.movements, y.1.moved)
                .cmp(&(x.1.movements, x.1.moved))
                .then_with(|| x.0.cmp(&y.0))
        });
        movers.truncate(ANALYTICS_LIST_MAX);
        a.top_movers = movers;

        let low = table(&self.snap.txn, LOW_STOCK)?;
        let start = warehouse.unwrap_or("");
        for row in low.range((start, "")..).map_err(storage_error)? {
            let (k, _) = row.map_err(storage_error)?;
            let (w, p) = k.value();
            if warehouse.is_some_and(|x| x != w) || a.low_stock_alerts.len() >= LOW_STOCK_ALERTS_MAX {
                break;
            }
            if let Some(level) = self.level(p, w)? {
                a.low_stock_alerts.push((p.to_string(), w.to_string(), level));
            }
        }
        Ok(a)
    }
}

/// Which batches of a kind a list wants, and in which order.
pub struct BatchQuery<'a> {
    pub kind: &'a str,
    /// Oldest first (and only batches whose first seq is above `after_seq`).
    pub ascending: bool,
    pub after_seq: u64,
    pub offset: u64,
    /// `None` = count only.
    pub limit: Option<u64>,
}

impl Reader {
    /// Batches of one kind that pass `keep`: a page of them and how many there are.
    pub fn batch_page(
        &self,
        q: &BatchQuery<'_>,
        keep: impl Fn(&crate::ledger::Batch) -> bool,
    ) -> Result<(Vec<crate::ledger::Batch>, u64), StoreError> {
        let t = table(&self.snap.txn, BATCHES_BY_KIND)?;
        let range = t
            .range((q.kind, q.after_seq.saturating_add(1))..=(q.kind, u64::MAX))
            .map_err(storage_error)?;
        let rows: Box<dyn Iterator<Item = _>> = if q.ascending {
            Box::new(range)
        } else {
            Box::new(range.rev())
        };
        let mut out = Vec::new();
        let mut matched = 0u64;
        for row in rows {
            let (_, id) = row.map_err(storage_error)?;
            let Some(b) = self.batch(id.value())? else { continue };
            if !keep(&b) {
                continue;
            }
            if matched >= q.offset && q.limit.is_some_and(|l| (out.len() as u64) < l) {
                out.push(b);
            }
            matched += 1;
        }
        Ok((out, matched))
    }

    /// The batch whose first movement has this seq.
    pub fn batch_at(&self, seq: u64) -> Result<Option<crate::ledger::Batch>, StoreError> {
        let Some(m) = self.movement(seq)? else { return Ok(None) };
        match m.batch {
            Some(id) => Ok(self.batch(&id)?.filter(|b| b.first_seq == seq)),
            None => Ok(None),
        }
    }
}

impl Reader {
    /// Visits products in id order — numeric ids numerically, then the others by bytes
    /// (`products_order_key`) — or in reverse, strictly after `after`, until `visit`
    /// answers `false`.
    pub fn walk_products<E: From<StoreError>>(
        &self,
        after: Option<&str>,
        descending: bool,
        visit: &mut dyn FnMut(Product) -> Result<bool, E>,
    ) -> Result<(), E> {
        use std::ops::Bound;
        let order = table(&self.snap.txn, PRODUCTS_BY_ORDER)?;
        let after_key = after.map(products_order_key);
        let bounds: (Bound<&str>, Bound<&str>) = match (&after_key, descending) {
            (None, _) => (Bound::Unbounded, Bound::Unbounded),
            (Some(k), false) => (Bound::Excluded(k.as_str()), Bound::Unbounded),
            (Some(k), true) => (Bound::Unbounded, Bound::Excluded(k.as_str())),
        };
        let range = order.range::<&str>(bounds).map_err(storage_error)?;
        let rows: Box<dyn Iterator<Item = _>> = if descending {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        for row in rows {
            let (_, id) = row.map_err(storage_error)?;
            let Some(p) = self.product(id.value())? else { continue };
            if !visit(p)? {
                break;
            }
        }
        Ok(())
    }
}

impl Reader {
    /// Visits every level in (product, warehouse) order.
    pub fn each_level(&self, visit: &mut dyn FnMut(&str, &str, Level) -> Result<(), String>) -> Result<(), String> {
        let t = table(&self.snap.txn, LEVELS).map_err(|e| e.to_string())?;
        for row in t.iter().map_err(|e| e.to_string())? {
            let (k, v) = row.map_err(|e| e.to_string())?;
            let (p, w) = k.value();
            visit(p, w, codec::decode_level(v.value()).map_err(|e| e.to_string())?)?;
        }
        Ok(())
    }

    /// Visits the movements `from..=to` in seq order.
    pub fn each_movement(
        &self,
        from: u64,
        to: u64,
        visit: &mut dyn FnMut(Movement) -> Result<(), String>,
    ) -> Result<(), String> {
        let t = table(&self.snap.txn, JOURNAL).map_err(|e| e.to_string())?;
        for row in t.range(from..=to).map_err(|e| e.to_string())? {
            let (_, v) = row.map_err(|e| e.to_string())?;
            visit(codec::decode_movement(v.value()).map_err(|e| e.to_string())?)?;
        }
        Ok(())
    }

    /// Levels in the file (O(1)).
    pub fn level_count(&self) -> Result<u64, StoreError> {
        self.snap.levels()?.len().map_err(storage_error)
    }

    /// Products in the file (O(1)).
    pub fn product_count(&self) -> Result<u64, StoreError> {
        self.snap.products()?.len().map_err(storage_error)
    }
}

impl Reader {
    pub fn reservation(&self, id: &str) -> Result<Option<crate::ledger::Reservation>, StoreError> {
        let t = table(&self.snap.txn, RESERVATIONS)?;
        let row = t.get(id).map_err(storage_error)?;
        row.map(|v| codec::decode_reservation(v.value()).map_err(corrupt))
            .transpose()
    }

    /// Ids of active reservations whose time ran out by `now_ms`, oldest first.
    pub fn expired_reservations(&self, now_ms: i64, limit: usize) -> Result<Vec<String>, StoreError> {
        let t = table(&self.snap.txn, RESERVATIONS_BY_EXPIRY)?;
        let mut ids = Vec::new();
        for row in t.range(..=(now_ms, "\u{10FFFF}")).map_err(storage_error)?.take(limit) {
            let (k, _) = row.map_err(storage_error)?;
            ids.push(k.value().1.to_string());
        }
        Ok(ids)
    }
}

/// Batches of one kind that wrote into given warehouses: a page, the count, or `None` when
/// the range holds more batches than the caller allows one request to examine.
pub type VisibleBatches = Option<(Vec<crate::ledger::Batch>, u64)>;

impl Reader {
    /// Batches of `kind` from `seq_from` on, oldest first, that wrote at least one movement
    /// into one of `warehouses`: `offset` of them skipped, at most `limit` returned, with
    /// the count of all of them. Whether a batch qualifies is read from the keys of
    /// `HISTORY_BY_WAREHOUSE` — one seek per batch and warehouse, a journal entry decoded
    /// only when the seek lands before the next batch of the kind — never from its header.
    /// `None` when more than `scan_max` batches lie in the range (bounded work per request).
    pub fn batches_in(
        &self,
        kind: &str,
        seq_from: u64,
        warehouses: &[String],
        offset: u64,
        limit: u64,
        scan_max: usize,
    ) -> Result<VisibleBatches, StoreError> {
        let by_kind = table(&self.snap.txn, BATCHES_BY_KIND)?;
        let by_warehouse = table(&self.snap.txn, HISTORY_BY_WAREHOUSE)?;
        let mut rows = by_kind
            .range((kind, seq_from)..=(kind, u64::MAX))
            .map_err(storage_error)?
            .peekable();
        let (mut out, mut total, mut examined) = (Vec::new(), 0u64, 0usize);
        while let Some(row) = rows.next() {
            examined += 1;
            if examined > scan_max {
                return Ok(None);
            }
            let (key, id) = row.map_err(storage_error)?;
            let (first, id) = (key.value().1, id.value().to_string());
            let next_first = match rows.peek() {
                Some(Ok((k, _))) => k.value().1,
                _ => u64::MAX,
            };
            if !self.batch_touches(&by_warehouse, (first, next_first), &id, warehouses)? {
                continue;
            }
            if total >= offset && (out.len() as u64) < limit {
                out.extend(self.batch(&id)?);
            }
            total += 1;
        }
        Ok(Some((out, total)))
    }

    /// Whether batch `id`, which starts at `seqs.0` and ends before `seqs.1`, has a
    /// movement in one of `warehouses`. Its movements are consecutive from its first seq,
    /// so the first movement of a warehouse at or after it is either one of its own or
    /// proof that it has none there.
    fn batch_touches(
        &self,
        by_warehouse: &ReadOnlyTable<(&'static str, u64), ()>,
        seqs: (u64, u64),
        id: &str,
        warehouses: &[String],
    ) -> Result<bool, StoreError> {
        for w in warehouses {
            let mut hits = by_warehouse
                .range((w.as_str(), seqs.0)..(w.as_str(), seqs.1))
                .map_err(storage_error)?;
            let Some(hit) = hits.next() else { continue };
            let seq = hit.map_err(storage_error)?.0.value().1;
            if self.movement(seq)?.is_some_and(|m| m.batch.as_deref() == Some(id)) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Most transfers one `in_transit` list examines (the table holds every transfer ever
/// made, received ones too): bounded work per request (the caller runs it on the blocking
/// pool); the answer says when it stopped.
pub const TRANSFERS_SCAN_MAX: usize = 200_000;
/// Most active reservations one list examines (bounded work per request).
pub const RESERVATIONS_SCAN_MAX: usize = 50_000;

/// What a bounded scan found: the matching rows (at most the caller's limit) and whether
/// it stopped before the end of the table (the limit, or the scan bound).
pub struct Scan<T> {
    pub rows: Vec<T>,
    pub has_more: bool,
}

impl Reader {
    /// Transfers still in transit that `visible` accepts, newest first, at most `limit`.
    /// Examines at most [`TRANSFERS_SCAN_MAX`] rows of the transfers table.
    pub fn transfers_in_transit(
        &self,
        visible: &dyn Fn(&Transfer) -> bool,
        limit: usize,
    ) -> Result<Scan<Transfer>, StoreError> {
        let t = table(&self.snap.txn, TRANSFERS)?;
        let mut found = Vec::new();
        let mut complete = true;
        for (examined, row) in t.iter().map_err(storage_error)?.enumerate() {
            if examined == TRANSFERS_SCAN_MAX {
                complete = false;
                break;
            }
            let (_, v) = row.map_err(storage_error)?;
            let transfer = codec::decode_transfer(v.value()).map_err(corrupt)?;
            if transfer.in_transit && transfer.in_seq.is_none() && visible(&transfer) {
                found.push(transfer);
            }
        }
        // Ids are `trf_<seq>`: string order is not creation order.
        found.sort_by_key(|t| std::cmp::Reverse(t.out_seq));
        let has_more = !complete || found.len() > limit;
        found.truncate(limit);
        Ok(Scan { rows: found, has_more })
    }

    /// Active reservations that `visible` accepts, soonest expiry first, at most `limit`
    /// (the expiry index holds only active ones). Examines at most [`RESERVATIONS_SCAN_MAX`].
    pub fn active_reservations(
        &self,
        visible: &dyn Fn(&crate::ledger::Reservation) -> bool,
        limit: usize,
    ) -> Result<Scan<crate::ledger::Reservation>, StoreError> {
        let by_expiry = table(&self.snap.txn, RESERVATIONS_BY_EXPIRY)?;
        let mut rows = Vec::new();
        let mut has_more = false;
        for (examined, row) in by_expiry.iter().map_err(storage_error)?.enumerate() {
            if examined == RESERVATIONS_SCAN_MAX {
                has_more = true;
                break;
            }
            let (k, _) = row.map_err(storage_error)?;
            let Some(r) = self.reservation(k.value().1)? else {
                continue;
            };
            if !visible(&r) {
                continue;
            }
            if rows.len() == limit {
                has_more = true;
                break;
            }
            rows.push(r);
        }
        Ok(Scan { rows, has_more })
    }
}

#[cfg(test)]
mod tests {
    use super::FEED_SCAN_ENTRIES_MAX;
    use crate::ledger::{Command, Rules, Warehouse};
    use crate::store::testing::{ctx, moves, product_p};
    use crate::store::Store;

    /// A journal of 1 w1 entry, 3000 w2 entries, 1 w1 entry: a w1 reader examines only
    /// its own entries and its position still reaches the end.
    #[tokio::test(flavor = "current_thread")]
    async fn a_restricted_feed_examines_only_what_it_may_see() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("feed.redb"), Rules::default(), "default").expect("open");
        let ctx = ctx();
        for id in ["w1", "w2"] {
            let w = Warehouse {
                id: id.into(),
                name: id.into(),
                number: None,
            };
            store
                .execute(Command::PutWarehouse(w), ctx.clone())
                .await
                .expect("warehouse");
        }
        product_p(&store).await;
        store.execute(moves("w1", 1), ctx.clone()).await.expect("w1");
        for _ in 0..3 {
            store.execute(moves("w2", 1000), ctx.clone()).await.expect("w2");
        }
        store.execute(moves("w1", 1), ctx.clone()).await.expect("w1");
        let reader = store.reader_blocking().expect("reader");
        let last = reader.seq_last().expect("last");
        let w1 = ["w1".to_string(), "w1".to_string()];

        let first = reader.feed(0, 1, Some(&w1)).expect("feed");
        assert_eq!(first.rows.len(), 1);
        assert!(first.has_more);
        let second = reader.feed(first.position, 10, Some(&w1)).expect("feed");
        assert_eq!(
            second.rows.len(),
            1,
            "one w1 entry, not a duplicate per listed warehouse"
        );
        assert_eq!(second.rows[0].seq, last);
        assert_eq!(second.examined, 1, "the 3000 w2 entries were not read");
        assert_eq!((second.position, second.has_more), (last, false));
        let none = reader.feed(last, 10, Some(&["w9".to_string()])).expect("feed");
        assert_eq!((none.rows.len(), none.position), (0, last));

        // Unrestricted: gap-free, and never more than the bound per read.
        let all = reader.feed(0, u64::MAX, None).expect("feed");
        assert_eq!(all.examined, FEED_SCAN_ENTRIES_MAX);
        let seqs: Vec<u64> = all.rows.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=FEED_SCAN_ENTRIES_MAX).collect::<Vec<_>>());
        assert_eq!(all.position, FEED_SCAN_ENTRIES_MAX);
        drop(reader);
        store.shutdown();
    }
}

/// A level's and a product's history — read in pages through the level chains, from the
/// marks, and below a format-2 prefix through the older index — is the journal's list of
/// their movements, newest first.
#[cfg(test)]
mod level_walk_tests {
    use proptest::prelude::*;
    use proptest::test_runner::FileFailurePersistence;
    use redb::{ReadableDatabase, ReadableTable};

    use super::{MovementFilter, Reader};
    use crate::ledger::{Command, Meta, MoveCmd, Op, Product, Warehouse};
    use crate::store::tables::JOURNAL;
    use crate::store::{codec, open_or_create, testing, upgrade, verify};

    const WAREHOUSES: [&str; 3] = ["default", "w1", "w2"];
    /// Lines per command: several commands, each moving some levels more than once.
    const LINES_PER_COMMAND: usize = 37;

    fn moves(warehouses: &[usize]) -> Vec<Command> {
        let line = |w: &usize| MoveCmd {
            product: "p".into(),
            warehouse: WAREHOUSES[*w].into(),
            op: Op::In(1),
            expected_on_hand: None,
            meta: Meta::default(),
        };
        warehouses
            .chunks(LINES_PER_COMMAND)
            .map(|chunk| Command::Batch(chunk.iter().map(line).collect()))
            .collect()
    }

    proptest! {
        // Seeds of failures found go beside the integration tests' (the crate root keeps
        // only what the project's layout names).
        #![proptest_config(ProptestConfig {
            cases: 16,
            max_shrink_iters: 16,
            failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
                "tests/proptest-regressions/store_read_level_walk.txt"
            ))),
            ..ProptestConfig::default()
        })]

        #[test]
        fn histories_follow_chains_marks_and_an_older_index(
            before in prop::collection::vec(0..3usize, 0..160),
            slots in 0..=8usize,
            after in prop::collection::vec(0..3usize, 0..260),
            limit in 1..80u64,
            end_at in 0..420usize,
        ) {
            let dir = tempfile::tempdir().expect("tmp");
            let db = open_or_create(&dir.path().join("walk.redb"), "default").expect("create");
            let mut catalog = vec![Command::PutProduct(Product {
                id: "p".into(),
                sku: "p".into(),
                name: "P".into(),
                ..Product::default()
            })];
            for id in &WAREHOUSES[1..] {
                catalog.push(Command::PutWarehouse(Warehouse { id: id.to_string(), name: id.to_string(), number: None }));
            }
            testing::import(&db, catalog);
            if !before.is_empty() {
                testing::import(&db, moves(&before));
                testing::to_format2(&db, slots);
                upgrade::upgrade(&db, "default").expect("upgrade");
            }
            if !after.is_empty() {
                testing::import(&db, moves(&after));
            }
            let mut journal = Vec::new();
            let txn = db.begin_read().expect("read");
            for row in txn.open_table(JOURNAL).expect("journal").iter().expect("iter") {
                let (_, v) = row.expect("row");
                journal.push(codec::decode_movement(v.value()).expect("movement"));
            }
            let report = verify::verify(&txn);
            prop_assert!(report.ok, "{}", report);
            let reader = Reader::new(txn).expect("reader");
            let end_ms = journal.get(end_at % journal.len().max(1)).map(|m| m.at_ms);
            for warehouse in WAREHOUSES.iter().map(|w| Some(w.to_string())).chain([None]) {
                for end in [None, end_ms] {
                    let filter = MovementFilter {
                        product: Some("p".into()),
                        warehouse: warehouse.clone(),
                        end_ms: end,
                        ..MovementFilter::default()
                    };
                    let expected: Vec<u64> = journal
                        .iter()
                        .rev()
                        .filter(|m| warehouse.as_ref().is_none_or(|w| &m.draft.warehouse == w))
                        .filter(|m| end.is_none_or(|e| m.at_ms <= e))
                        .map(|m| m.seq)
                        .collect();
                    prop_assert_eq!(testing::movement_pages(&reader, &filter, limit), expected, "{:?}, end {:?}", warehouse, end);
                }
            }
        }
    }
}
