//! Applying commands inside the writer's transaction: the tables a write touches (each
//! recording its changes for the redo log), the hash chain, and what the ledger decided
//! turned into rows. The daemon's writer and the offline import share this one write path.

use std::collections::hash_map::Entry;

use foldhash::HashMap;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, WriteTransaction};
use sha2::{Digest, Sha256};

use super::codec;
use super::redo::{Logged, Redo, RedoBuf};
use super::rollup::{self, Rollup, Stats};
use super::tables::*;
use super::writer::{Applied, BatchHeader, WriteCtx};
use crate::error::ApiError;
use crate::ledger::{self, Command, Effects, Fault, Level, Movement, NumberSpace, Product, Rules, Transfer, Warehouse};

/// Running batch numbers start after this (`IA100001`, as seed 002 shows them).
const BATCH_NUMBER_BASE: u64 = 100_000;

/// The head of the hash chain: what the next movement continues.
#[derive(Debug, Clone, Copy)]
pub(super) struct Chain {
    pub(super) seq_next: u64,
    pub(super) hash_last: [u8; 32],
    pub(super) at_ms_last: i64,
}

pub(super) fn load_chain(db: &Database) -> Result<Chain, String> {
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let journal = txn.open_table(JOURNAL).map_err(|e| e.to_string())?;
    let last = journal.last().map_err(|e| e.to_string())?;
    let chain = match last {
        None => Ok(Chain {
            seq_next: 1,
            hash_last: [0; 32],
            at_ms_last: 0,
        }),
        Some((seq, bytes)) => {
            let m = codec::decode_movement(bytes.value()).map_err(|e| e.to_string())?;
            Ok(Chain {
                seq_next: seq.value() + 1,
                hash_last: m.hash,
                at_ms_last: m.at_ms,
            })
        }
    };
    chain
}

/// SHA-256(previous hash ‖ canonical bytes).
pub fn chain_hash(prev: &[u8; 32], canonical: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(canonical);
    h.finalize().into()
}

/// Every table a write touches, open for the length of one group.
pub(super) struct Tables<'t> {
    meta: Logged<'t, &'static str, &'static [u8]>,
    pub(super) journal: Logged<'t, u64, &'static [u8]>,
    pub(super) levels: Logged<'t, (&'static str, &'static str), &'static [u8]>,
    pub(super) levels_by_warehouse: Logged<'t, (&'static str, &'static str), ()>,
    pub(super) products: Logged<'t, &'static str, &'static [u8]>,
    pub(super) products_by_sku: Logged<'t, &'static str, &'static str>,
    pub(super) products_by_barcode: Logged<'t, (&'static str, &'static str), ()>,
    pub(super) products_by_order: Logged<'t, &'static str, &'static str>,
    pub(super) warehouses: Logged<'t, &'static str, &'static [u8]>,
    pub(super) by_level: Logged<'t, (&'static str, &'static str, u64), ()>,
    pub(super) by_warehouse: Logged<'t, (&'static str, u64), ()>,
    pub(super) by_reference: Logged<'t, (&'static str, u64), ()>,
    pub(super) batches: Logged<'t, &'static str, &'static [u8]>,
    pub(super) batches_by_kind: Logged<'t, (&'static str, u64), &'static str>,
    pub(super) transfers: Logged<'t, &'static str, &'static [u8]>,
    pub(super) nonces: Logged<'t, (&'static str, &'static str), i64>,
    pub(super) nonces_by_expiry: Logged<'t, (i64, &'static str, &'static str), ()>,
    pub(super) replays: Logged<'t, &'static str, &'static [u8]>,
    pub(super) replays_by_expiry: Logged<'t, (i64, &'static str), ()>,
    pub(super) rollups: Logged<'t, (i64, &'static str, &'static str), &'static [u8]>,
    pub(super) rollup_days: Logged<'t, (i64, &'static str), &'static [u8]>,
    pub(super) warehouse_stats: Logged<'t, &'static str, &'static [u8]>,
    pub(super) low_stock: Logged<'t, (&'static str, &'static str), ()>,
    pub(super) reservations: Logged<'t, &'static str, &'static [u8]>,
    pub(super) reservations_by_expiry: Logged<'t, (i64, &'static str), ()>,
    pub(super) numbers: Logged<'t, (&'static str, u64), &'static str>,
    /// Roll-ups and stats of this group, summed in memory and recorded once per key.
    pending: Pending,
    /// Roll-ups and stats as they stand in this transaction, written before its commit.
    held: Held,
    /// Where journal rows go instead of the four journal tables: `stockd import`'s helper
    /// thread (`apply_offline`). `None` for the writer: its rows go into the tables, each
    /// insert recorded for its log record.
    journal_rows: Option<JournalRows>,
    /// Level rows read (by the ledger, or by `link`) since the last `write`, as stored,
    /// with the chain the command's movements gave them: `link` and `write_level` read no
    /// row twice. Every level row is written by `write_level`, which takes its entry out,
    /// so an entry is the stored row (a refused command writes nothing).
    seen: HashMap<(String, String), LevelSeen>,
}

/// A level row as stored before the command, and its chain as the command leaves it.
struct LevelSeen {
    before: Option<Level>,
    chain: codec::LevelChain,
    /// The command linked movements into the chain: its row must be written.
    linked: bool,
}

/// What a group adds to the roll-ups and warehouse stats, folded into [`Held`] at its end.
#[derive(Default)]
struct Pending {
    rollups: HashMap<(i64, String, String), Rollup>,
    stats: HashMap<String, (Stats, Stats)>,
    unit_costs: HashMap<String, Option<ledger::Decimal>>,
}

/// The roll-up, day roll-up and warehouse stats rows the open transaction changed, with
/// their values: each group's record carries the new values, redb gets each row once
/// before the commit. Bounded by the transaction: the writer commits it within five times
/// `commit_interval_ms` or `COMMIT_DEFER_WEIGHT_MAX` lines; `stockd import` holds the rows
/// of its one transaction, as it held its roll-ups before.
#[derive(Default)]
struct Held {
    rollups: HashMap<(i64, String, String), Rollup>,
    days: HashMap<(i64, String), Rollup>,
    stats: HashMap<String, Stats>,
}

fn fault(e: impl std::fmt::Display) -> Fault {
    Fault(e.to_string())
}

impl<'t> Tables<'t> {
    /// Every table a write may touch, each opened when first used, each recording its
    /// changes into `redo`.
    pub(super) fn open(txn: &'t WriteTransaction, redo: &Redo) -> Tables<'t> {
        macro_rules! logged {
            ($id:expr, $table:ident) => {
                Logged::new(txn, $table, $id, redo.clone())
            };
        }
        Tables {
            meta: logged!(0, META),
            journal: logged!(1, JOURNAL),
            levels: logged!(2, LEVELS),
            levels_by_warehouse: logged!(3, LEVELS_BY_WAREHOUSE),
            products: logged!(4, PRODUCTS),
            products_by_sku: logged!(5, PRODUCTS_BY_SKU),
            products_by_barcode: logged!(6, PRODUCTS_BY_BARCODE),
            products_by_order: logged!(7, PRODUCTS_BY_ORDER),
            warehouses: logged!(8, WAREHOUSES),
            by_level: logged!(9, HISTORY_BY_LEVEL),
            by_warehouse: logged!(10, HISTORY_BY_WAREHOUSE),
            by_reference: logged!(11, HISTORY_BY_REFERENCE),
            batches: logged!(12, BATCHES),
            batches_by_kind: logged!(13, BATCHES_BY_KIND),
            transfers: logged!(14, TRANSFERS),
            nonces: logged!(15, NONCES),
            nonces_by_expiry: logged!(16, NONCES_BY_EXPIRY),
            replays: logged!(17, REPLAYS),
            replays_by_expiry: logged!(18, REPLAYS_BY_EXPIRY),
            rollups: logged!(19, ROLLUPS),
            rollup_days: logged!(20, ROLLUP_DAYS),
            warehouse_stats: logged!(21, WAREHOUSE_STATS),
            low_stock: logged!(22, LOW_STOCK),
            reservations: logged!(23, RESERVATIONS),
            reservations_by_expiry: logged!(24, RESERVATIONS_BY_EXPIRY),
            numbers: logged!(25, NUMBERS),
            pending: Pending::default(),
            held: Held::default(),
            journal_rows: None,
            seen: HashMap::default(),
        }
    }

    /// One more journal entry that changes no on_hand (`HIDDEN_ENTRIES_KEY`).
    fn count_hidden(&mut self) -> Result<(), redb::StorageError> {
        let hidden = meta_number(self.meta.read()?, HIDDEN_ENTRIES_KEY)?;
        self.meta
            .insert(HIDDEN_ENTRIES_KEY, (hidden + 1).to_le_bytes().as_slice())
            .map(|_| ())
    }

    /// Stores an outbound sink's position and pause flag in the metadata table.
    pub(super) fn set_sink(&mut self, record: &super::writer::SinkRecord) -> Result<(), redb::StorageError> {
        let key = super::sink::key(&record.sink);
        self.meta
            .insert(
                key.as_str(),
                super::sink::encode(record.position, record.paused).as_slice(),
            )
            .map(|_| ())
    }

    /// The next running number of batches of `kind`, from 100001.
    fn next_number(&mut self, kind: &str) -> Result<u64, redb::StorageError> {
        let key = format!("counter\u{0}{kind}");
        let current = self
            .meta
            .read()?
            .get(key.as_str())?
            .and_then(|v| v.value().try_into().ok().map(u64::from_le_bytes))
            .unwrap_or(BATCH_NUMBER_BASE);
        let next = current + 1;
        self.meta.insert(key.as_str(), next.to_le_bytes().as_slice())?;
        Ok(next)
    }

    /// Gives a new record its number — the id's own (`direct_number`), the one an import
    /// brings (checked by the ledger), else the next free assigned one — and indexes a
    /// number that is not the id itself.
    fn give_number(
        &mut self,
        space: NumberSpace,
        id: &str,
        number: &mut Option<u64>,
    ) -> Result<(), redb::StorageError> {
        let direct = ledger::direct_number(id);
        let n = match (*number, direct) {
            (Some(n), _) | (None, Some(n)) => n,
            (None, None) => self.next_free_number(space)?,
        };
        if Some(n) != direct {
            self.numbers.insert((space.key(), n), id)?;
        }
        *number = Some(n);
        Ok(())
    }

    /// One past the highest assigned number of `space` (an index seek, no scan), skipping
    /// numbers that an all-digit id already is.
    fn next_free_number(&mut self, space: NumberSpace) -> Result<u64, redb::StorageError> {
        let key = space.key();
        let last = self
            .numbers
            .read()?
            .range((key, ledger::NUMBER_ASSIGNED_MIN)..=(key, ledger::NUMBER_MAX))?
            .next_back()
            .transpose()?
            .map(|(k, _)| k.value().1);
        let mut n = last.map_or(ledger::NUMBER_ASSIGNED_MIN, |l| l.saturating_add(1));
        loop {
            let digits = n.to_string();
            let taken = match space {
                NumberSpace::Product => self.products.read()?.get(digits.as_str())?.is_some(),
                NumberSpace::Warehouse => self.warehouses.read()?.get(digits.as_str())?.is_some(),
            };
            if !taken {
                return Ok(n);
            }
            n = n.saturating_add(1);
        }
    }

    fn unit_cost(&mut self, product: &str) -> Result<Option<ledger::Decimal>, redb::StorageError> {
        if let Some(c) = self.pending.unit_costs.get(product) {
            return Ok(*c);
        }
        let cost = match self.products.read()?.get(product)? {
            Some(v) => {
                codec::decode_product(v.value())
                    .map_err(|e| redb::StorageError::Corrupted(e.to_string()))?
                    .unit_cost
            }
            None => None,
        };
        self.pending.unit_costs.insert(product.to_string(), cost);
        Ok(cost)
    }

    /// Moves a level's contribution to its warehouse's stats from `old` to `new`, and
    /// keeps the low-stock index in step.
    fn restate(
        &mut self,
        product: &str,
        warehouse: &str,
        old: Option<&Level>,
        new: &Level,
        cost_old: Option<ledger::Decimal>,
        cost_new: Option<ledger::Decimal>,
    ) -> Result<(), redb::StorageError> {
        let entry = self.pending.stats.entry(warehouse.to_string()).or_default();
        if let Some(old) = old {
            entry.1.add(&Stats::of(old, cost_old));
        }
        entry.0.add(&Stats::of(new, cost_new));
        let (was_low, is_low) = (old.is_some_and(rollup::is_low), rollup::is_low(new));
        if is_low && !was_low {
            self.low_stock.insert((warehouse, product), ())?;
        } else if was_low && !is_low {
            self.low_stock.remove((warehouse, product))?;
        }
        Ok(())
    }

    /// Folds the group's roll-ups and stats into the values the transaction holds and
    /// records each new value in the group's record; runs once per group. redb gets them
    /// once per commit ([`Tables::write_held`]): a busy day's roll-up and a warehouse's
    /// stats change with nearly every group, and writing them per group was a B-tree get
    /// and insert each time.
    pub(super) fn flush(&mut self) -> Result<(), redb::StorageError> {
        let corrupt = |e: codec::CodecError| redb::StorageError::Corrupted(e.to_string());
        let rollups = std::mem::take(&mut self.pending.rollups);
        let mut days: HashMap<(i64, String), Rollup> = HashMap::default();
        for (key, add) in rollups {
            days.entry((key.0, key.1.clone())).or_default().add(&add);
            let (day, w, p) = (key.0, key.1.as_str(), key.2.as_str());
            let mut r = match self.held.rollups.get(&key) {
                Some(r) => *r,
                None => match self.rollups.read()?.get((day, w, p))? {
                    Some(v) => Rollup::decode(v.value()).map_err(corrupt)?,
                    None => Rollup::default(),
                },
            };
            r.add(&add);
            self.rollups.record((day, w, p), r.encode().as_slice());
            self.held.rollups.insert(key, r);
        }
        for (key, add) in days {
            let (day, w) = (key.0, key.1.as_str());
            let mut r = match self.held.days.get(&key) {
                Some(r) => *r,
                None => match self.rollup_days.read()?.get((day, w))? {
                    Some(v) => Rollup::decode(v.value()).map_err(corrupt)?,
                    None => Rollup::default(),
                },
            };
            r.add(&add);
            self.rollup_days.record((day, w), r.encode().as_slice());
            self.held.days.insert(key, r);
        }
        for (w, (add, sub)) in std::mem::take(&mut self.pending.stats) {
            let mut st = match self.held.stats.get(&w) {
                Some(st) => *st,
                None => match self.warehouse_stats.read()?.get(w.as_str())? {
                    Some(v) => Stats::decode(v.value()).map_err(corrupt)?,
                    None => Stats::default(),
                },
            };
            st.add(&add);
            st.sub(&sub);
            self.warehouse_stats.record(w.as_str(), st.encode().as_slice());
            self.held.stats.insert(w, st);
        }
        Ok(())
    }

    /// Writes the rows the transaction holds (the roll-ups in key order: thousands of rows
    /// after a large import; then the few day roll-ups and warehouse stats) and, when the
    /// transaction is covered by log records, the gen of its last group; runs once, right
    /// before the commit. Every value is already in a record.
    pub(super) fn write_held(&mut self, gen: Option<u64>) -> Result<(), redb::StorageError> {
        let held = std::mem::take(&mut self.held);
        let mut rollups: Vec<_> = held.rollups.into_iter().collect();
        rollups.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for ((day, w, p), r) in rollups {
            self.rollups
                .write_held((day, w.as_str(), p.as_str()), r.encode().as_slice())?;
        }
        for ((day, w), r) in held.days {
            self.rollup_days.write_held((day, w.as_str()), r.encode().as_slice())?;
        }
        for (w, st) in held.stats {
            self.warehouse_stats.write_held(w.as_str(), st.encode().as_slice())?;
        }
        if let Some(gen) = gen {
            // Recovery sets the gen of the last record it applies: no record carries it.
            self.meta.write_held(GEN_KEY, gen.to_le_bytes().as_slice())?;
        }
        Ok(())
    }
}

impl<'t> Tables<'t> {
    /// Persists what the ledger decided: catalog rows, journal entries with their
    /// indexes and hash chain, levels, transfers and the batch record.
    pub(super) fn write(
        &mut self,
        effects: Effects,
        ctx: &WriteCtx,
        chain: &mut Chain,
        now_ms: i64,
    ) -> Result<Applied, redb::StorageError> {
        let Effects {
            mut drafts,
            levels,
            mut product,
            product_before,
            mut warehouse,
            created,
            new_transfer,
            received_transfer,
            new_reservation,
            closed_reservations,
            is_batch,
        } = effects;
        if let Some(w) = &mut warehouse {
            if created || w.number.is_none() {
                self.give_number(NumberSpace::Warehouse, &w.id, &mut w.number)?;
            }
            self.warehouses.insert(w.id.as_str(), codec::warehouse(w).as_slice())?;
        }
        if let Some(p) = &mut product {
            if created || p.number.is_none() {
                self.give_number(NumberSpace::Product, &p.id, &mut p.number)?;
            }
            self.put_product(p, product_before.as_ref())?;
        }
        let seq_first = chain.seq_next;
        let named = match ctx.batch.as_ref() {
            Some(BatchHeader {
                number_prefix: Some(prefix),
                kind,
                ..
            }) if is_batch && !drafts.is_empty() => Some(format!("{prefix}{}", self.next_number(kind)?)),
            Some(b) => b.id.clone(),
            None => None,
        };
        let batch = match (is_batch && !drafts.is_empty(), named) {
            (false, _) => None,
            // An API's own id is unique by construction (UUID, running number); never overwrite.
            (true, Some(id)) if self.batches.read()?.get(id.as_str())?.is_none() => Some(id),
            (true, Some(id)) => Some(format!("{id}-{seq_first}")),
            (true, None) => Some(format!("bat_{seq_first}")),
        };
        let mut transfer = new_transfer.map(|t| Transfer {
            id: format!("trf_{seq_first}"),
            product: t.product,
            from: t.from,
            to: t.to,
            quantity: t.quantity,
            in_transit: t.in_transit,
            out_seq: seq_first,
            in_seq: (!t.in_transit).then_some(seq_first + 1),
            created_ms: now_ms,
        });
        if let Some(t) = &transfer {
            for d in drafts.iter_mut() {
                d.transfer = Some(t.id.clone());
            }
        }
        let mut reservations = Vec::new();
        let mut movements = Vec::with_capacity(drafts.len());
        for draft in drafts {
            movements.push(self.append(draft, ctx, batch.clone(), chain, now_ms)?);
        }
        if let Some(mut t) = received_transfer {
            t.in_seq = movements.last().map(|m| m.seq);
            self.transfers.insert(t.id.as_str(), codec::transfer(&t).as_slice())?;
            transfer = Some(t);
        } else if let Some(t) = &transfer {
            self.transfers.insert(t.id.as_str(), codec::transfer(t).as_slice())?;
        }
        if let Some(mut r) = new_reservation {
            r.id = format!("res_{seq_first}");
            r.reserve_seq = seq_first;
            self.reservations
                .insert(r.id.as_str(), codec::reservation(&r).as_slice())?;
            self.reservations_by_expiry.insert((r.expires_ms, r.id.as_str()), ())?;
            reservations.push(r);
        }
        // Each closed reservation has one movement, in order.
        for (mut r, m) in closed_reservations.into_iter().zip(&movements) {
            r.close_seq = Some(m.seq);
            self.reservations
                .insert(r.id.as_str(), codec::reservation(&r).as_slice())?;
            self.reservations_by_expiry.remove((r.expires_ms, r.id.as_str()))?;
            reservations.push(r);
        }
        if let Some(id) = &batch {
            let header = ctx.batch.clone().unwrap_or_default();
            let kind = if header.kind.is_empty() {
                "batch".to_string()
            } else {
                header.kind
            };
            let record = ledger::Batch {
                id: id.clone(),
                first_seq: seq_first,
                count: movements.len() as u64,
                kind,
                created_ms: now_ms,
                actor: ctx.actor.clone(),
                header: header.header,
            };
            self.batches.insert(id.as_str(), codec::batch(&record).as_slice())?;
            self.batches_by_kind
                .insert((record.kind.as_str(), seq_first), id.as_str())?;
        }
        for ((p, w), level) in &levels {
            let old = self.write_level(p, w, level)?;
            if old.is_none() {
                self.levels_by_warehouse.insert((w.as_str(), p.as_str()), ())?;
            }
            let cost = self.unit_cost(p)?;
            self.restate(p, w, old.as_ref(), level, cost, cost)?;
        }
        // Every movement changes its level (the ledger's invariant), so its row took the
        // chain's new head. One that did not would leave its movements out of the level's
        // history: the group fails instead.
        if let Some(((p, w), _)) = self.seen.drain().find(|(_, seen)| seen.linked) {
            return Err(redb::StorageError::Corrupted(format!(
                "a movement of level {p}/{w} without the level's new row"
            )));
        }
        Ok(Applied {
            created,
            movements,
            batch,
            transfer,
            levels,
            product,
            warehouse,
            reservations,
            ..Applied::default()
        })
    }

    fn put_product(&mut self, p: &Product, before: Option<&Product>) -> Result<(), redb::StorageError> {
        if let Some(old) = before {
            self.products_by_sku.remove(old.sku.as_str())?;
            if let Some(b) = &old.barcode {
                self.products_by_barcode.remove((b.as_str(), old.id.as_str()))?;
            }
        }
        let cost_old = before.and_then(|b| b.unit_cost);
        if before.is_some() && cost_old != p.unit_cost {
            let mut rows = Vec::new();
            for row in self.levels.read()?.range((p.id.as_str(), "")..)? {
                let (k, v) = row?;
                let (kp, kw) = k.value();
                if kp != p.id {
                    break;
                }
                let level = codec::decode_level(v.value()).map_err(|e| redb::StorageError::Corrupted(e.to_string()))?;
                rows.push((kw.to_string(), level));
            }
            for (w, level) in rows {
                self.restate(&p.id, &w, Some(&level), &level, cost_old, p.unit_cost)?;
            }
        }
        if before.is_none() {
            self.products_by_order
                .insert(products_order_key(&p.id).as_str(), p.id.as_str())?;
        }
        self.pending.unit_costs.insert(p.id.clone(), p.unit_cost);
        self.products.insert(p.id.as_str(), codec::product(p).as_slice())?;
        self.products_by_sku.insert(p.sku.as_str(), p.id.as_str())?;
        if let Some(b) = &p.barcode {
            self.products_by_barcode.insert((b.as_str(), p.id.as_str()), ())?;
        }
        Ok(())
    }

    /// Writes a level's row, with its chain as the command's movements left it (`append`).
    /// Returns the level before.
    fn write_level(&mut self, p: &str, w: &str, level: &Level) -> Result<Option<Level>, redb::StorageError> {
        let seen = match self.seen.remove(&(p.to_string(), w.to_string())) {
            Some(seen) => seen,
            None => stored_level(&mut self.levels, p, w)?,
        };
        self.levels
            .insert((p, w), codec::level_row(level, seen.chain).as_slice())?;
        Ok(seen.before)
    }

    /// The entry of a level in `seen`, reading its row if it has none.
    fn seen_level(&mut self, p: &str, w: &str) -> Result<&mut LevelSeen, redb::StorageError> {
        match self.seen.entry((p.to_string(), w.to_string())) {
            Entry::Occupied(seen) => Ok(seen.into_mut()),
            Entry::Vacant(slot) => Ok(slot.insert(stored_level(&mut self.levels, p, w)?)),
        }
    }

    /// Links movement `seq` into its level's chain: returns the seq of the level's previous
    /// movement, and indexes every `HISTORY_MARK_INTERVAL`-th movement of the level.
    fn link(&mut self, p: &str, w: &str, seq: u64) -> Result<u64, redb::StorageError> {
        let seen = self.seen_level(p, w)?;
        seen.linked = true;
        let chain = &mut seen.chain;
        let prev = chain.head;
        chain.head = seq;
        chain.moves += 1;
        if chain.moves % HISTORY_MARK_INTERVAL == 0 {
            self.by_level.insert((p, w, seq), ())?;
        }
        Ok(prev)
    }

    fn append(
        &mut self,
        draft: ledger::Draft,
        ctx: &WriteCtx,
        batch: Option<String>,
        chain: &mut Chain,
        now_ms: i64,
    ) -> Result<Movement, redb::StorageError> {
        let seq = chain.seq_next;
        let mut m = Movement {
            seq,
            at_ms: now_ms,
            draft,
            actor: ctx.actor.clone(),
            batch,
            idempotency_key: ctx.idempotency_key.clone(),
            hash: [0; 32],
        };
        let canonical = codec::movement_canonical(&m);
        m.hash = chain_hash(&chain.hash_last, &canonical);
        let (p, w) = (m.draft.product.as_str(), m.draft.warehouse.as_str());
        let prev = self.link(p, w, seq)?;
        let mut bytes = canonical;
        bytes.extend_from_slice(&m.hash);
        bytes.extend_from_slice(&prev.to_le_bytes());
        if let Some(rows) = &mut self.journal_rows {
            rows.push(JournalRow {
                seq,
                bytes,
                warehouse: w.to_string(),
                reference: m.draft.reference_id.clone(),
            })?;
        } else {
            self.journal.insert(seq, bytes.as_slice())?;
            self.by_warehouse.insert((w, seq), ())?;
            if let Some(r) = &m.draft.reference_id {
                self.by_reference.insert((r.as_str(), seq), ())?;
            }
        }
        if !m.draft.kind.moves_on_hand() {
            self.count_hidden()?;
        }
        let key = (rollup::day_of(now_ms), w.to_string(), p.to_string());
        self.pending.rollups.entry(key).or_default().add(&Rollup::of(&m));
        chain.seq_next = seq + 1;
        chain.hash_last = m.hash;
        chain.at_ms_last = now_ms;
        Ok(m)
    }
}

/// A level's row as stored: the level (`None`: no row yet) and its chain.
fn stored_level(
    levels: &mut Logged<'_, (&'static str, &'static str), &'static [u8]>,
    p: &str,
    w: &str,
) -> Result<LevelSeen, redb::StorageError> {
    let corrupt = |e: codec::CodecError| redb::StorageError::Corrupted(format!("level {p}/{w}: {e}"));
    let (before, chain) = match levels.read()?.get((p, w))? {
        Some(v) => {
            let (level, chain) = codec::decode_level_row(v.value()).map_err(corrupt)?;
            (Some(level), chain)
        }
        None => (None, codec::LevelChain::default()),
    };
    Ok(LevelSeen {
        before,
        chain,
        linked: false,
    })
}

impl ledger::State for Tables<'_> {
    fn level(&mut self, product: &str, warehouse: &str) -> Result<Option<Level>, Fault> {
        // Kept for `link` and `write_level`, which would read the row again.
        Ok(self.seen_level(product, warehouse).map_err(fault)?.before.clone())
    }

    fn product(&mut self, id: &str) -> Result<Option<Product>, Fault> {
        match self.products.read().map_err(fault)?.get(id).map_err(fault)? {
            Some(v) => codec::decode_product(v.value()).map(Some).map_err(fault),
            None => Ok(None),
        }
    }

    fn product_by_sku(&mut self, sku: &str) -> Result<Option<String>, Fault> {
        Ok(self
            .products_by_sku
            .read()
            .map_err(fault)?
            .get(sku)
            .map_err(fault)?
            .map(|v| v.value().to_string()))
    }

    fn warehouse(&mut self, id: &str) -> Result<Option<Warehouse>, Fault> {
        match self.warehouses.read().map_err(fault)?.get(id).map_err(fault)? {
            Some(v) => codec::decode_warehouse(v.value()).map(Some).map_err(fault),
            None => Ok(None),
        }
    }

    fn transfer(&mut self, id: &str) -> Result<Option<Transfer>, Fault> {
        match self.transfers.read().map_err(fault)?.get(id).map_err(fault)? {
            Some(v) => codec::decode_transfer(v.value()).map(Some).map_err(fault),
            None => Ok(None),
        }
    }

    fn has_product(&mut self, id: &str) -> Result<bool, Fault> {
        Ok(self.products.read().map_err(fault)?.get(id).map_err(fault)?.is_some())
    }

    fn reservation(&mut self, id: &str) -> Result<Option<ledger::Reservation>, Fault> {
        match self.reservations.read().map_err(fault)?.get(id).map_err(fault)? {
            Some(v) => codec::decode_reservation(v.value()).map(Some).map_err(fault),
            None => Ok(None),
        }
    }

    fn has_warehouse(&mut self, id: &str) -> Result<bool, Fault> {
        Ok(self.warehouses.read().map_err(fault)?.get(id).map_err(fault)?.is_some())
    }

    fn numbered(&mut self, space: NumberSpace, number: u64) -> Result<Option<String>, Fault> {
        Ok(self
            .numbers
            .read()
            .map_err(fault)?
            .get((space.key(), number))
            .map_err(fault)?
            .map(|v| v.value().to_string()))
    }
}

/// Journal rows `stockd import` hands to its helper thread in batches of this many.
const JOURNAL_ROWS_BATCH: usize = 256;
/// Batches in flight to the helper; the import waits beyond that.
const JOURNAL_BATCHES_QUEUED_MAX: usize = 8;

/// One movement's rows in the journal and its history indexes by warehouse and reference.
struct JournalRow {
    seq: u64,
    bytes: Vec<u8>,
    warehouse: String,
    reference: Option<String>,
}

/// The import's side of the channel to its journal helper.
struct JournalRows {
    batch: Vec<JournalRow>,
    to_helper: std::sync::mpsc::SyncSender<Vec<JournalRow>>,
}

impl JournalRows {
    fn push(&mut self, row: JournalRow) -> Result<(), redb::StorageError> {
        self.batch.push(row);
        if self.batch.len() >= JOURNAL_ROWS_BATCH {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> Result<(), redb::StorageError> {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(JOURNAL_ROWS_BATCH));
        self.to_helper
            .send(batch)
            .map_err(|_| redb::StorageError::Corrupted("the journal helper stopped".into()))
    }
}

/// The import's helper thread: writes the journal rows it is sent into the journal and
/// its history indexes, tables the importing thread never opens (redb lets the tables of
/// one write transaction be written from different threads). Half of a stock row's B-tree
/// inserts run here, beside the ledger and the levels.
fn write_journal_rows(
    txn: &WriteTransaction,
    batches: std::sync::mpsc::Receiver<Vec<JournalRow>>,
) -> Result<(), redb::StorageError> {
    let open = |e: redb::TableError| redb::StorageError::Corrupted(e.to_string());
    let mut journal = txn.open_table(JOURNAL).map_err(open)?;
    let mut by_warehouse = txn.open_table(HISTORY_BY_WAREHOUSE).map_err(open)?;
    let mut by_reference = txn.open_table(HISTORY_BY_REFERENCE).map_err(open)?;
    for batch in batches {
        for row in batch {
            journal.insert(row.seq, row.bytes.as_slice())?;
            by_warehouse.insert((row.warehouse.as_str(), row.seq), ())?;
            if let Some(r) = &row.reference {
                by_reference.insert((r.as_str(), row.seq), ())?;
            }
        }
    }
    Ok(())
}

/// Why an offline import stopped (nothing of it was written).
#[derive(Debug)]
pub enum OfflineError {
    /// The command from this input line was refused.
    Refused {
        line: usize,
        error: ApiError,
    },
    Storage(String),
}

/// Applies `commands` (each with the input line it came from) in ONE write transaction
/// on a file no daemon has open: all of them, or — on the first refusal — none. For
/// `stockd import`; the same ledger rules and the same writes as the daemon's writer.
pub fn apply_offline(
    db: &Database,
    rules: &Rules,
    actor: &str,
    commands: impl Iterator<Item = (usize, Command)>,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, OfflineError> {
    let storage = |e: &dyn std::fmt::Display| OfflineError::Storage(e.to_string());
    let mut chain = load_chain(db).map_err(|e| storage(&e))?;
    let mut txn = db.begin_write().map_err(|e| storage(&e))?;
    txn.set_durability(Durability::Immediate).map_err(|e| storage(&e))?;
    txn.set_quick_repair(true);
    let ctx = WriteCtx {
        actor: actor.to_string(),
        ..WriteCtx::default()
    };
    let mut applied = 0u64;
    std::thread::scope(|scope| {
        let (to_helper, batches) = std::sync::mpsc::sync_channel(JOURNAL_BATCHES_QUEUED_MAX);
        let helper = scope.spawn(|| write_journal_rows(&txn, batches));
        // One durable commit covers the import: no log record, so nothing to record.
        let redo = Redo::new(RedoBuf::off());
        let mut tables = Tables::open(&txn, &redo);
        tables.journal_rows = Some(JournalRows {
            batch: Vec::with_capacity(JOURNAL_ROWS_BATCH),
            to_helper,
        });
        let applied_all = apply_all(&mut tables, rules, &ctx, &mut chain, commands, &mut applied, progress);
        // The last batch, then the end of the channel: the helper returns.
        let rows = tables.journal_rows.take();
        let finished = applied_all.and_then(|()| {
            if let Some(mut rows) = rows {
                rows.send().map_err(|e| storage(&e))?;
            }
            tables.flush().map_err(|e| storage(&e))?;
            tables.write_held(None).map_err(|e| storage(&e))
        });
        drop(tables);
        let written = match helper.join() {
            Ok(result) => result.map_err(|e| storage(&e)),
            Err(_) => Err(OfflineError::Storage("the journal helper panicked".into())),
        };
        match (finished, written) {
            // A refusal ended the rows early: the helper's end says nothing more.
            (Err(refused @ OfflineError::Refused { .. }), _) => Err(refused),
            // The helper's own error, rather than "the journal helper stopped".
            (_, Err(helper)) => Err(helper),
            (finished, Ok(())) => finished,
        }
    })?;
    txn.commit().map_err(|e| storage(&e))?;
    Ok(applied)
}

/// The import's commands, each through the ledger and `Tables::write`, until the first
/// refusal.
fn apply_all(
    tables: &mut Tables<'_>,
    rules: &Rules,
    ctx: &WriteCtx,
    chain: &mut Chain,
    commands: impl Iterator<Item = (usize, Command)>,
    applied: &mut u64,
    progress: &mut dyn FnMut(u64),
) -> Result<(), OfflineError> {
    let storage = |e: &dyn std::fmt::Display| OfflineError::Storage(e.to_string());
    for (line, cmd) in commands {
        let now_ms = crate::clock::now_ms().max(chain.at_ms_last);
        match ledger::apply(&cmd, tables, rules, now_ms) {
            Ok(effects) => {
                tables.write(effects, ctx, chain, now_ms).map_err(|e| storage(&e))?;
            }
            Err(ledger::LedgerError::Storage(msg)) => return Err(OfflineError::Storage(msg)),
            Err(refused) => {
                return Err(OfflineError::Refused {
                    line,
                    error: ApiError::from(refused),
                })
            }
        }
        *applied += 1;
        progress(*applied);
    }
    Ok(())
}
