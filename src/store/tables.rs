//! Every redb table of the data file, in one place. Keys that must sort are fixed-width
//! big-endian integers or tuples whose order is the order we page in.

use redb::TableDefinition;

/// Format version of the data file; a file from a newer version is refused. 3: a level's
/// history is a chain of back-pointers in its journal rows from a head in its level row
/// (`codec::journal_row`, `codec::level_row`), which a version before cannot read, so it
/// refuses the file instead. (2: level rows kept the seqs of their latest movements.)
pub const FORMAT_VERSION: u64 = 3;
/// Marks a redb file as stockd's (`META[MAGIC_KEY] = MAGIC`).
pub const MAGIC_KEY: &str = "magic";
pub const MAGIC: &[u8] = b"stockd";
pub const FORMAT_KEY: &str = "format_version";
/// The gen (u64 LE) of the last group committed: the redo log continues after it.
pub const GEN_KEY: &str = "wal_gen";
/// 16 random bytes naming this data file: a redo log is applied only to its own file (a
/// snapshot gets a new id).
pub const FILE_ID_KEY: &str = "file_id";

/// `magic`, `format_version`.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// seq → movement (codec::movement). Seq starts at 1 and has no gap.
pub const JOURNAL: TableDefinition<u64, &[u8]> = TableDefinition::new("journal");
/// (product, warehouse) → level.
pub const LEVELS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("levels");
/// (warehouse, product): levels of one warehouse.
pub const LEVELS_BY_WAREHOUSE: TableDefinition<(&str, &str), ()> = TableDefinition::new("levels_by_warehouse");
/// id → product.
pub const PRODUCTS: TableDefinition<&str, &[u8]> = TableDefinition::new("products");
/// sku → product id (skus are unique).
pub const PRODUCTS_BY_SKU: TableDefinition<&str, &str> = TableDefinition::new("products_by_sku");
/// order key (`products_order_key`) → product id: numeric ids in numeric order, then the
/// others in byte order — the order id cursors walk (seed 004).
pub const PRODUCTS_BY_ORDER: TableDefinition<&str, &str> = TableDefinition::new("products_by_order");
/// (barcode, product id).
pub const PRODUCTS_BY_BARCODE: TableDefinition<(&str, &str), ()> = TableDefinition::new("products_by_barcode");
/// id → warehouse.
pub const WAREHOUSES: TableDefinition<&str, &[u8]> = TableDefinition::new("warehouses");
/// (product, warehouse, seq): every `HISTORY_MARK_INTERVAL`-th movement of a level, where
/// a walk of its history back from a seq may start (the chain only goes back; from the
/// level's head to a page deep in its history would be a walk of every movement after it);
/// and every movement written before the chain (`CHAINED_FROM_KEY`).
pub const HISTORY_BY_LEVEL: TableDefinition<(&str, &str, u64), ()> = TableDefinition::new("history_by_level");
/// Movements of a level between two of its entries in `HISTORY_BY_LEVEL`. A history page
/// that ends before the level's latest movement walks at most this many more journal rows
/// (~1 µs each, cached) to its start; the index gets one insert, a random leaf, per this
/// many movements of a level, where it used to get one per movement (the leaf was found,
/// copied and checksummed at every commit and written at every checkpoint: 17–33 % of the
/// movements/s, docs/benchmarks.md).
pub const HISTORY_MARK_INTERVAL: u64 = 64;
/// (warehouse, seq): history of one warehouse.
pub const HISTORY_BY_WAREHOUSE: TableDefinition<(&str, u64), ()> = TableDefinition::new("history_by_warehouse");
/// (reference_id, seq): movements that cite a reference (orders, transfers…).
pub const HISTORY_BY_REFERENCE: TableDefinition<(&str, u64), ()> = TableDefinition::new("history_by_reference");
/// batch id → batch (codec::batch): movements written together by one request, with the
/// request's header.
pub const BATCHES: TableDefinition<&str, &[u8]> = TableDefinition::new("batches");
/// (batch kind, first seq) → batch id: the batches of one API, in time order.
pub const BATCHES_BY_KIND: TableDefinition<(&str, u64), &str> = TableDefinition::new("batches_by_kind");
/// transfer id → transfer.
pub const TRANSFERS: TableDefinition<&str, &[u8]> = TableDefinition::new("transfers");
/// (partner, nonce) → expiry (unix ms): v1 signatures seen, so a replay is refused even
/// after a restart.
pub const NONCES: TableDefinition<(&str, &str), i64> = TableDefinition::new("nonces");
/// (expiry ms, partner, nonce): prunes expired nonces oldest first, keeping `NONCES` bounded.
pub const NONCES_BY_EXPIRY: TableDefinition<(i64, &str, &str), ()> = TableDefinition::new("nonces_by_expiry");
/// replay key → stored answer (codec::answer): idempotency keys and legacy signatures.
/// Written in the same transaction as the movements it guards.
pub const REPLAYS: TableDefinition<&str, &[u8]> = TableDefinition::new("replays");
/// (expiry ms, replay key): prunes expired answers oldest first.
pub const REPLAYS_BY_EXPIRY: TableDefinition<(i64, &str), ()> = TableDefinition::new("replays_by_expiry");
/// (day, warehouse, product) → roll-up (rollup::Rollup) of that day's movements.
pub const ROLLUPS: TableDefinition<(i64, &str, &str), &[u8]> = TableDefinition::new("rollups");
/// (day, warehouse) → roll-up of every product: trends without touching per-product rows.
pub const ROLLUP_DAYS: TableDefinition<(i64, &str), &[u8]> = TableDefinition::new("rollup_days");
/// warehouse → stock figures (rollup::Stats): value, low and out of stock counts.
pub const WAREHOUSE_STATS: TableDefinition<&str, &[u8]> = TableDefinition::new("warehouse_stats");
/// (warehouse, product): levels at or below their reorder point.
pub const LOW_STOCK: TableDefinition<(&str, &str), ()> = TableDefinition::new("low_stock");

/// (number space, number) → id: the numbers the store assigned to ids that are not a
/// number by themselves (`ledger::direct_number`), for the dialects' integer ids. An
/// all-digit id is found by its number in `PRODUCTS`/`WAREHOUSES` directly.
pub const NUMBERS: TableDefinition<(&str, u64), &str> = TableDefinition::new("numbers");
/// `META` key: the upgrades this file has had (u64 LE; see `upgrade.rs`). Absent in files
/// of earlier versions.
pub const UPGRADE_KEY: &str = "upgrade_level";
/// How many journal entries change no on_hand (holds, releases, buffer changes): the
/// movement list hides them, and its unfiltered `total` is the journal's length less this.
pub const HIDDEN_ENTRIES_KEY: &str = "hidden_entries";

/// `META` key: the seq of the first journal row with a back-pointer (u64 LE), written by
/// the upgrade to format 3 (`upgrade.rs`); absent in a file created with chains (= 0). The
/// rows before it were written without one, and every one of them is in
/// `HISTORY_BY_LEVEL`: a level's history walk continues there once it reaches them, so no
/// upgrade rewrites the journal.
pub const CHAINED_FROM_KEY: &str = "chained_from";

/// A u64 kept in `META` under `key` (absent = 0).
pub fn meta_number(
    meta: &impl redb::ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<u64, redb::StorageError> {
    let value = meta.get(key)?;
    Ok(value
        .and_then(|v| <[u8; 8]>::try_from(v.value()).ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0))
}

/// reservation id → reservation (codec::reservation).
pub const RESERVATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("reservations");
/// (expiry ms, reservation id) of the active ones: what the sweep releases, oldest first.
pub const RESERVATIONS_BY_EXPIRY: TableDefinition<(i64, &str), ()> = TableDefinition::new("reservations_by_expiry");

/// Calls `$m!(TABLE)` for every table of the file: the one list that creating the file
/// and copying it into a snapshot both use, so neither can forget a table.
macro_rules! all_tables {
    ($m:ident) => {
        $m!(META);
        $m!(JOURNAL);
        $m!(LEVELS);
        $m!(LEVELS_BY_WAREHOUSE);
        $m!(PRODUCTS);
        $m!(PRODUCTS_BY_SKU);
        $m!(PRODUCTS_BY_BARCODE);
        $m!(PRODUCTS_BY_ORDER);
        $m!(WAREHOUSES);
        $m!(HISTORY_BY_LEVEL);
        $m!(HISTORY_BY_WAREHOUSE);
        $m!(HISTORY_BY_REFERENCE);
        $m!(BATCHES);
        $m!(BATCHES_BY_KIND);
        $m!(TRANSFERS);
        $m!(NONCES);
        $m!(NONCES_BY_EXPIRY);
        $m!(REPLAYS);
        $m!(REPLAYS_BY_EXPIRY);
        $m!(ROLLUPS);
        $m!(ROLLUP_DAYS);
        $m!(WAREHOUSE_STATS);
        $m!(LOW_STOCK);
        $m!(RESERVATIONS);
        $m!(RESERVATIONS_BY_EXPIRY);
        $m!(NUMBERS);
    };
}
pub(crate) use all_tables;

/// Width numeric ids are padded to in `PRODUCTS_BY_ORDER` (ids are at most this long).
const ORDER_KEY_DIGITS: usize = crate::ledger::ID_LEN_MAX;

/// The order key of a product id: all-digit ids (no leading zero) sort as numbers, before
/// every other id, which sort by bytes.
pub fn products_order_key(id: &str) -> String {
    let numeric = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && (id.len() == 1 || !id.starts_with('0'));
    if numeric {
        format!("0{id:0>ORDER_KEY_DIGITS$}")
    } else {
        format!("1{id}")
    }
}
