//! The single writer thread and its group commit (DESIGN.md, "Write path").
//!
//! It blocks for the first queued command, drains what else is queued (bounded by
//! `GROUP_JOBS_MAX` and `GROUP_WEIGHT_MAX`), applies each command in one redb write
//! transaction — each sees the effects of those before it; a refused one writes nothing —
//! commits once with `Durability::Immediate`, and only then answers every waiting handler.

use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, Table, WriteTransaction};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use super::rollup::{self, Rollup, Stats};
use super::tables::*;
use super::{codec, Shared};
use crate::error::{ApiError, Code};
use crate::ledger::{self, Command, Effects, Fault, Level, Movement, Product, Rules, Transfer, Warehouse};

/// Most commands in one commit.
pub const GROUP_JOBS_MAX: usize = 4096;
/// Most movement lines in one commit (a bulk command counts its lines).
pub const GROUP_WEIGHT_MAX: usize = 16_384;
/// Pause between attempts to reopen the file after a failed commit.
const REOPEN_BACKOFF_MS: u64 = 50;
const REOPEN_BACKOFF_MAX_MS: u64 = 2_000;

/// Who writes, and under which idempotency key.
#[derive(Clone, Default)]
pub struct WriteCtx {
    pub actor: String,
    pub idempotency_key: Option<String>,
    /// Answer a repeat of this write from the stored first answer instead of applying it.
    pub replay: Option<ReplayClaim>,
    /// How the batch of this write is named and what header it keeps (dialects).
    pub batch: Option<BatchHeader>,
}

/// A batch's identity and header, given by the API that writes it.
#[derive(Debug, Clone, Default)]
pub struct BatchHeader {
    /// The batch id (a UUID…); default `bat_<first seq>`.
    pub id: Option<String>,
    /// Name the batch `<prefix><running number>` instead (`IA100001`, `IA100002`, …): one
    /// counter per kind, kept in the same transaction, so numbers have no gap.
    pub number_prefix: Option<String>,
    pub kind: String,
    /// The API's own header, as JSON.
    pub header: Vec<u8>,
}

/// An HTTP answer as stored for replay: status, content type and body bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// Renders the answer of a write from its outcome alone (plus what the handler captured
/// before writing), so the writer can store it in the same transaction as the write.
pub type Render = Arc<dyn Fn(Result<&Applied, &ApiError>) -> Answer + Send + Sync>;

/// The replay protection of one write (Idempotency-Key, or a legacy signature).
#[derive(Clone)]
pub struct ReplayClaim {
    /// Scoped key: who asked, and under which key.
    pub key: String,
    /// SHA-256 of method, path and body: a reused key with another request is refused.
    pub fingerprint: [u8; 32],
    pub ttl_ms: i64,
    pub render: Render,
}

/// Running batch numbers start after this (`IA100001`, as seed 002 shows them).
const BATCH_NUMBER_BASE: u64 = 100_000;

/// Expired replay answers deleted per write that stores one.
const REPLAY_PRUNE_BATCH: usize = 16;

/// A v1 signature's (partner, nonce), remembered until `expires_ms`.
#[derive(Debug, Clone)]
pub struct NonceClaim {
    pub partner: String,
    pub nonce: String,
    pub now_ms: i64,
    pub expires_ms: i64,
}

/// Expired nonces deleted per claim: pruning keeps pace with claiming, in bounded steps.
const NONCE_PRUNE_BATCH: usize = 16;

/// What a job asks the writer to do.
pub enum Work {
    Ledger(Command),
    ClaimNonce(NonceClaim),
}

impl Work {
    fn weight(&self) -> usize {
        match self {
            Work::Ledger(cmd) => cmd.weight(),
            Work::ClaimNonce(_) => 1,
        }
    }
}

pub struct Job {
    pub work: Work,
    pub ctx: WriteCtx,
    pub reply: oneshot::Sender<Result<Applied, ApiError>>,
}

pub enum Msg {
    Job(Box<Job>),
    /// Commit what came before, then stop.
    Stop,
}

/// What a committed command did.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub created: bool,
    pub movements: Vec<Movement>,
    pub batch: Option<String>,
    pub transfer: Option<Transfer>,
    pub levels: Vec<((String, String), Level)>,
    pub product: Option<Product>,
    pub warehouse: Option<Warehouse>,
    /// Reservations the command opened or closed, as they now stand.
    pub reservations: Vec<ledger::Reservation>,
    /// The answer, when the write carried a replay claim (rendered by the writer).
    pub answer: Option<Answer>,
    /// The answer is the stored one of an earlier identical request: nothing was applied.
    pub replayed: bool,
}

/// The head of the hash chain: what the next movement continues.
#[derive(Debug, Clone, Copy)]
struct Chain {
    seq_next: u64,
    hash_last: [u8; 32],
    at_ms_last: i64,
}

pub struct Writer {
    shared: Arc<Shared>,
    rules: Rules,
    chain: Chain,
}

impl Writer {
    pub fn new(shared: Arc<Shared>, rules: Rules) -> Result<Writer, String> {
        let chain = {
            let guard = shared.db.read().map_err(|_| "poisoned".to_string())?;
            let db = guard.as_ref().ok_or("no database")?;
            load_chain(db)?
        };
        shared.seq_last.store(chain.seq_next - 1, Ordering::Release);
        shared.committed.send_replace(chain.seq_next - 1);
        Ok(Writer { shared, rules, chain })
    }

    pub fn run(mut self, rx: mpsc::Receiver<Msg>) {
        let mut group: Vec<Job> = Vec::with_capacity(GROUP_JOBS_MAX);
        while let Ok(first) = rx.recv() {
            let mut stop = false;
            let mut weight = 0;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Job(job) => {
                        self.shared.queued.fetch_sub(1, Ordering::Relaxed);
                        weight += job.work.weight();
                        group.push(*job);
                    }
                    Msg::Stop => {
                        stop = true;
                        break;
                    }
                }
                if group.len() < GROUP_JOBS_MAX && weight < GROUP_WEIGHT_MAX {
                    next = rx.try_recv().ok();
                }
            }
            if !group.is_empty() {
                self.commit_group(&mut group);
            }
            if stop {
                break;
            }
        }
    }

    fn commit_group(&mut self, group: &mut Vec<Job>) {
        let db = self.shared.db.read().ok().and_then(|g| g.clone());
        let Some(db) = db else {
            answer_all(group, "the data file is being reopened");
            return;
        };
        let before = self.chain;
        let started = std::time::Instant::now();
        let commands = group.len();
        match self.write_group(&db, group) {
            Ok(results) => {
                metrics::histogram!(crate::telemetry::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
                metrics::histogram!(crate::telemetry::COMMIT_COMMANDS).record(commands as f64);
                self.shared.seq_last.store(self.chain.seq_next - 1, Ordering::Release);
                // Wakes long polls of the change feed; never blocks the writer.
                self.shared.committed.send_if_modified(|seq| {
                    let changed = *seq != self.chain.seq_next - 1;
                    *seq = self.chain.seq_next - 1;
                    changed
                });
                self.shared.writable.store(true, Ordering::Release);
                for (job, result) in group.drain(..).zip(results) {
                    let _ = job.reply.send(result);
                }
            }
            Err(err) => {
                metrics::counter!(crate::telemetry::COMMIT_FAILURES).increment(1);
                tracing::error!(error = %err, "commit failed; answering 503 to its group and reopening the data file");
                self.chain = before;
                self.shared.writable.store(false, Ordering::Release);
                answer_all(group, &format!("the commit failed: {err}"));
                drop(db);
                self.reopen();
            }
        }
    }

    /// Applies every job in one transaction and commits; `Err` when storage failed, in
    /// which case nothing of the group is committed.
    fn write_group(&mut self, db: &Database, group: &[Job]) -> Result<Vec<Result<Applied, ApiError>>, String> {
        let mut txn = db.begin_write().map_err(|e| e.to_string())?;
        txn.set_durability(Durability::Immediate).map_err(|e| e.to_string())?;
        txn.set_quick_repair(self.shared.quick_repair.load(Ordering::Relaxed));
        let mut results = Vec::with_capacity(group.len());
        {
            let mut tables = Tables::open(&txn).map_err(|e| e.to_string())?;
            for job in group {
                let cmd = match &job.work {
                    Work::Ledger(cmd) => cmd,
                    Work::ClaimNonce(claim) => {
                        results.push(tables.claim_nonce(claim).map_err(|e| e.to_string())?);
                        continue;
                    }
                };
                let now_ms = crate::clock::now_ms().max(self.chain.at_ms_last);
                if let Some(claim) = &job.ctx.replay {
                    if let Some(earlier) = tables.replay_lookup(claim, now_ms).map_err(|e| e.to_string())? {
                        results.push(earlier);
                        continue;
                    }
                }
                let result = match ledger::apply(cmd, &mut tables, &self.rules, now_ms) {
                    Ok(effects) => Ok(tables
                        .write(effects, &job.ctx, &mut self.chain, now_ms)
                        .map_err(|e| e.to_string())?),
                    Err(ledger::LedgerError::Storage(msg)) => return Err(msg),
                    Err(refused) => Err(ApiError::from(refused)),
                };
                let result = match &job.ctx.replay {
                    Some(claim) => Ok(tables.replay_store(claim, result, now_ms).map_err(|e| e.to_string())?),
                    None => result,
                };
                results.push(result);
            }
            tables.flush().map_err(|e| e.to_string())?;
        }
        txn.commit().map_err(|e| e.to_string())?;
        Ok(results)
    }

    /// Replaces the database handle after a failed commit: redb refuses further writes on
    /// a handle whose I/O failed, and reopening runs its repair. Readers keep their old
    /// snapshots until they finish; new ones wait for the new handle.
    fn reopen(&mut self) {
        let old = self.shared.db.write().ok().and_then(|mut g| g.take());
        drop(old);
        let mut backoff_ms = REOPEN_BACKOFF_MS;
        loop {
            match (self.shared.opener)() {
                Ok(db) => match load_chain(&db) {
                    Ok(chain) => {
                        self.chain = chain;
                        if let Ok(mut g) = self.shared.db.write() {
                            *g = Some(Arc::new(db));
                        }
                        tracing::warn!("data file reopened; writes resume");
                        return;
                    }
                    Err(e) => tracing::error!(error = %e, "reopened data file is unreadable; retrying"),
                },
                Err(e) => tracing::error!(error = %e, "cannot reopen the data file yet; retrying"),
            }
            std::thread::sleep(Duration::from_millis(backoff_ms));
            backoff_ms = (backoff_ms * 2).min(REOPEN_BACKOFF_MAX_MS);
        }
    }
}

fn answer_all(group: &mut Vec<Job>, why: &str) {
    for job in group.drain(..) {
        let _ = job.reply.send(Err(ApiError::new(Code::StorageUnavailable, why)));
    }
}

fn load_chain(db: &Database) -> Result<Chain, String> {
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
struct Tables<'t> {
    meta: Table<'t, &'static str, &'static [u8]>,
    journal: Table<'t, u64, &'static [u8]>,
    levels: Table<'t, (&'static str, &'static str), &'static [u8]>,
    levels_by_warehouse: Table<'t, (&'static str, &'static str), ()>,
    products: Table<'t, &'static str, &'static [u8]>,
    products_by_sku: Table<'t, &'static str, &'static str>,
    products_by_barcode: Table<'t, (&'static str, &'static str), ()>,
    products_by_order: Table<'t, &'static str, &'static str>,
    warehouses: Table<'t, &'static str, &'static [u8]>,
    by_level: Table<'t, (&'static str, &'static str, u64), ()>,
    by_warehouse: Table<'t, (&'static str, u64), ()>,
    by_reference: Table<'t, (&'static str, u64), ()>,
    batches: Table<'t, &'static str, &'static [u8]>,
    batches_by_kind: Table<'t, (&'static str, u64), &'static str>,
    transfers: Table<'t, &'static str, &'static [u8]>,
    nonces: Table<'t, (&'static str, &'static str), i64>,
    nonces_by_expiry: Table<'t, (i64, &'static str, &'static str), ()>,
    replays: Table<'t, &'static str, &'static [u8]>,
    replays_by_expiry: Table<'t, (i64, &'static str), ()>,
    rollups: Table<'t, (i64, &'static str, &'static str), &'static [u8]>,
    rollup_days: Table<'t, (i64, &'static str), &'static [u8]>,
    warehouse_stats: Table<'t, &'static str, &'static [u8]>,
    low_stock: Table<'t, (&'static str, &'static str), ()>,
    reservations: Table<'t, &'static str, &'static [u8]>,
    reservations_by_expiry: Table<'t, (i64, &'static str), ()>,
    /// Roll-ups and stats of this group, summed in memory and written once per key.
    pending: Pending,
}

/// What a group adds to the roll-ups and warehouse stats, flushed before the commit.
#[derive(Default)]
struct Pending {
    rollups: std::collections::HashMap<(i64, String, String), Rollup>,
    stats: std::collections::HashMap<String, (Stats, Stats)>,
    unit_costs: std::collections::HashMap<String, Option<ledger::Decimal>>,
}

fn fault(e: impl std::fmt::Display) -> Fault {
    Fault(e.to_string())
}

impl<'t> Tables<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Tables<'t>, redb::TableError> {
        Ok(Tables {
            meta: txn.open_table(META)?,
            journal: txn.open_table(JOURNAL)?,
            levels: txn.open_table(LEVELS)?,
            levels_by_warehouse: txn.open_table(LEVELS_BY_WAREHOUSE)?,
            products: txn.open_table(PRODUCTS)?,
            products_by_sku: txn.open_table(PRODUCTS_BY_SKU)?,
            products_by_barcode: txn.open_table(PRODUCTS_BY_BARCODE)?,
            products_by_order: txn.open_table(PRODUCTS_BY_ORDER)?,
            warehouses: txn.open_table(WAREHOUSES)?,
            by_level: txn.open_table(HISTORY_BY_LEVEL)?,
            by_warehouse: txn.open_table(HISTORY_BY_WAREHOUSE)?,
            by_reference: txn.open_table(HISTORY_BY_REFERENCE)?,
            batches: txn.open_table(BATCHES)?,
            batches_by_kind: txn.open_table(BATCHES_BY_KIND)?,
            transfers: txn.open_table(TRANSFERS)?,
            nonces: txn.open_table(NONCES)?,
            nonces_by_expiry: txn.open_table(NONCES_BY_EXPIRY)?,
            replays: txn.open_table(REPLAYS)?,
            replays_by_expiry: txn.open_table(REPLAYS_BY_EXPIRY)?,
            rollups: txn.open_table(ROLLUPS)?,
            rollup_days: txn.open_table(ROLLUP_DAYS)?,
            warehouse_stats: txn.open_table(WAREHOUSE_STATS)?,
            low_stock: txn.open_table(LOW_STOCK)?,
            reservations: txn.open_table(RESERVATIONS)?,
            reservations_by_expiry: txn.open_table(RESERVATIONS_BY_EXPIRY)?,
            pending: Pending::default(),
        })
    }

    /// The next running number of batches of `kind`, from 100001.
    fn next_number(&mut self, kind: &str) -> Result<u64, redb::StorageError> {
        let key = format!("counter\u{0}{kind}");
        let current = self
            .meta
            .get(key.as_str())?
            .and_then(|v| v.value().try_into().ok().map(u64::from_le_bytes))
            .unwrap_or(BATCH_NUMBER_BASE);
        let next = current + 1;
        self.meta.insert(key.as_str(), next.to_le_bytes().as_slice())?;
        Ok(next)
    }

    fn unit_cost(&mut self, product: &str) -> Result<Option<ledger::Decimal>, redb::StorageError> {
        if let Some(c) = self.pending.unit_costs.get(product) {
            return Ok(*c);
        }
        let cost = match self.products.get(product)? {
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

    /// Writes the group's roll-ups and stats; runs once, right before the commit.
    fn flush(&mut self) -> Result<(), redb::StorageError> {
        let corrupt = |e: codec::CodecError| redb::StorageError::Corrupted(e.to_string());
        let rollups = std::mem::take(&mut self.pending.rollups);
        let mut days: std::collections::HashMap<(i64, String), Rollup> = std::collections::HashMap::new();
        for ((day, w, p), add) in rollups {
            days.entry((day, w.clone())).or_default().add(&add);
            let key = (day, w.as_str(), p.as_str());
            let mut r = match self.rollups.get(key)? {
                Some(v) => Rollup::decode(v.value()).map_err(corrupt)?,
                None => Rollup::default(),
            };
            r.add(&add);
            self.rollups.insert(key, r.encode().as_slice())?;
        }
        for ((day, w), add) in days {
            let key = (day, w.as_str());
            let mut r = match self.rollup_days.get(key)? {
                Some(v) => Rollup::decode(v.value()).map_err(corrupt)?,
                None => Rollup::default(),
            };
            r.add(&add);
            self.rollup_days.insert(key, r.encode().as_slice())?;
        }
        for (w, (add, sub)) in std::mem::take(&mut self.pending.stats) {
            let mut st = match self.warehouse_stats.get(w.as_str())? {
                Some(v) => Stats::decode(v.value()).map_err(corrupt)?,
                None => Stats::default(),
            };
            st.add(&add);
            st.sub(&sub);
            self.warehouse_stats.insert(w.as_str(), st.encode().as_slice())?;
        }
        Ok(())
    }

    /// The stored answer of an earlier request under the same key, if it has not expired:
    /// replayed when the request is the same, 422 `idempotency_key_reused` when it is not.
    fn replay_lookup(
        &mut self,
        claim: &ReplayClaim,
        now_ms: i64,
    ) -> Result<Option<Result<Applied, ApiError>>, redb::StorageError> {
        let Some(row) = self.replays.get(claim.key.as_str())? else {
            return Ok(None);
        };
        let (fingerprint, expires_ms, answer) =
            codec::decode_answer(row.value()).map_err(|e| redb::StorageError::Corrupted(e.to_string()))?;
        if expires_ms <= now_ms {
            return Ok(None);
        }
        if fingerprint != claim.fingerprint {
            return Ok(Some(Err(ApiError::new(
                Code::IdempotencyKeyReused,
                "this Idempotency-Key was used with another request",
            ))));
        }
        Ok(Some(Ok(Applied {
            answer: Some(answer),
            replayed: true,
            ..Applied::default()
        })))
    }

    /// Renders the outcome, stores the answer beside the write (a refusal too: a repeat
    /// must not apply later what was refused once) and prunes a few expired answers.
    fn replay_store(
        &mut self,
        claim: &ReplayClaim,
        result: Result<Applied, ApiError>,
        now_ms: i64,
    ) -> Result<Applied, redb::StorageError> {
        let answer = (claim.render)(result.as_ref());
        let mut expired = Vec::new();
        for row in self.replays_by_expiry.range(..(now_ms, ""))?.take(REPLAY_PRUNE_BATCH) {
            let (k, _) = row?;
            let (at, key) = k.value();
            expired.push((at, key.to_string()));
        }
        for (at, key) in &expired {
            self.replays_by_expiry.remove((*at, key.as_str()))?;
            self.replays.remove(key.as_str())?;
        }
        let expires_ms = now_ms.saturating_add(claim.ttl_ms);
        let old = self
            .replays
            .insert(
                claim.key.as_str(),
                codec::answer(&claim.fingerprint, expires_ms, &answer).as_slice(),
            )?
            .map(|v| codec::decode_answer(v.value()).map(|(_, at, _)| at));
        if let Some(Ok(old_expiry)) = old {
            self.replays_by_expiry.remove((old_expiry, claim.key.as_str()))?;
        }
        self.replays_by_expiry.insert((expires_ms, claim.key.as_str()), ())?;
        let mut applied = result.unwrap_or_default();
        applied.answer = Some(answer);
        Ok(applied)
    }

    /// Refuses a nonce seen before (and not yet expired), else remembers it; prunes a few
    /// expired ones on the way so the table stays bounded by the claim rate × TTL.
    fn claim_nonce(&mut self, c: &NonceClaim) -> Result<Result<Applied, ApiError>, redb::StorageError> {
        let mut expired = Vec::new();
        for row in self
            .nonces_by_expiry
            .range(..(c.now_ms, "", ""))?
            .take(NONCE_PRUNE_BATCH)
        {
            let (k, _) = row?;
            let (at, p, n) = k.value();
            expired.push((at, p.to_string(), n.to_string()));
        }
        for (at, p, n) in &expired {
            self.nonces_by_expiry.remove((*at, p.as_str(), n.as_str()))?;
            self.nonces.remove((p.as_str(), n.as_str()))?;
        }
        let seen = self
            .nonces
            .get((c.partner.as_str(), c.nonce.as_str()))?
            .map(|v| v.value());
        if seen.is_some_and(|expires| expires > c.now_ms) {
            return Ok(Err(ApiError::new(Code::Unauthenticated, "this nonce was already used")));
        }
        if let Some(old) = seen {
            self.nonces_by_expiry
                .remove((old, c.partner.as_str(), c.nonce.as_str()))?;
        }
        self.nonces
            .insert((c.partner.as_str(), c.nonce.as_str()), c.expires_ms)?;
        self.nonces_by_expiry
            .insert((c.expires_ms, c.partner.as_str(), c.nonce.as_str()), ())?;
        Ok(Ok(Applied::default()))
    }

    /// Persists what the ledger decided: catalog rows, journal entries with their
    /// indexes and hash chain, levels, transfers and the batch record.
    fn write(
        &mut self,
        effects: Effects,
        ctx: &WriteCtx,
        chain: &mut Chain,
        now_ms: i64,
    ) -> Result<Applied, redb::StorageError> {
        let Effects {
            mut drafts,
            levels,
            product,
            product_before,
            warehouse,
            created,
            new_transfer,
            received_transfer,
            new_reservation,
            closed_reservations,
            is_batch,
        } = effects;
        if let Some(w) = &warehouse {
            self.warehouses.insert(w.id.as_str(), codec::warehouse(w).as_slice())?;
        }
        if let Some(p) = &product {
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
            (true, Some(id)) if self.batches.get(id.as_str())?.is_none() => Some(id),
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
            let old = self
                .levels
                .insert((p.as_str(), w.as_str()), codec::level(level).as_slice())?
                .map(|v| codec::decode_level(v.value()))
                .transpose()
                .map_err(|e| redb::StorageError::Corrupted(e.to_string()))?;
            if old.is_none() {
                self.levels_by_warehouse.insert((w.as_str(), p.as_str()), ())?;
            }
            let cost = self.unit_cost(p)?;
            self.restate(p, w, old.as_ref(), level, cost, cost)?;
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
            for row in self.levels.range((p.id.as_str(), "")..)? {
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
        let mut bytes = canonical;
        bytes.extend_from_slice(&m.hash);
        self.journal.insert(seq, bytes.as_slice())?;
        let (p, w) = (m.draft.product.as_str(), m.draft.warehouse.as_str());
        self.by_level.insert((p, w, seq), ())?;
        self.by_warehouse.insert((w, seq), ())?;
        if let Some(r) = &m.draft.reference_id {
            self.by_reference.insert((r.as_str(), seq), ())?;
        }
        let key = (rollup::day_of(now_ms), w.to_string(), p.to_string());
        self.pending.rollups.entry(key).or_default().add(&Rollup::of(&m));
        chain.seq_next = seq + 1;
        chain.hash_last = m.hash;
        chain.at_ms_last = now_ms;
        Ok(m)
    }
}

impl ledger::State for Tables<'_> {
    fn level(&mut self, product: &str, warehouse: &str) -> Result<Option<Level>, Fault> {
        match self.levels.get((product, warehouse)).map_err(fault)? {
            Some(v) => codec::decode_level(v.value()).map(Some).map_err(fault),
            None => Ok(None),
        }
    }

    fn product(&mut self, id: &str) -> Result<Option<Product>, Fault> {
        match self.products.get(id).map_err(fault)? {
            Some(v) => codec::decode_product(v.value()).map(Some).map_err(fault),
            None => Ok(None),
        }
    }

    fn product_by_sku(&mut self, sku: &str) -> Result<Option<String>, Fault> {
        Ok(self
            .products_by_sku
            .get(sku)
            .map_err(fault)?
            .map(|v| v.value().to_string()))
    }

    fn warehouse(&mut self, id: &str) -> Result<Option<Warehouse>, Fault> {
        match self.warehouses.get(id).map_err(fault)? {
            Some(v) => codec::decode_warehouse(v.value()).map(Some).map_err(fault),
            None => Ok(None),
        }
    }

    fn transfer(&mut self, id: &str) -> Result<Option<Transfer>, Fault> {
        match self.transfers.get(id).map_err(fault)? {
            Some(v) => codec::decode_transfer(v.value()).map(Some).map_err(fault),
            None => Ok(None),
        }
    }

    fn has_product(&mut self, id: &str) -> Result<bool, Fault> {
        Ok(self.products.get(id).map_err(fault)?.is_some())
    }

    fn reservation(&mut self, id: &str) -> Result<Option<ledger::Reservation>, Fault> {
        match self.reservations.get(id).map_err(fault)? {
            Some(v) => codec::decode_reservation(v.value()).map(Some).map_err(fault),
            None => Ok(None),
        }
    }

    fn has_warehouse(&mut self, id: &str) -> Result<bool, Fault> {
        Ok(self.warehouses.get(id).map_err(fault)?.is_some())
    }
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
    {
        let mut tables = Tables::open(&txn).map_err(|e| storage(&e))?;
        for (line, cmd) in commands {
            let now_ms = crate::clock::now_ms().max(chain.at_ms_last);
            match ledger::apply(&cmd, &mut tables, rules, now_ms) {
                Ok(effects) => {
                    tables
                        .write(effects, &ctx, &mut chain, now_ms)
                        .map_err(|e| storage(&e))?;
                }
                Err(ledger::LedgerError::Storage(msg)) => return Err(OfflineError::Storage(msg)),
                Err(refused) => {
                    return Err(OfflineError::Refused {
                        line,
                        error: ApiError::from(refused),
                    })
                }
            }
            applied += 1;
            progress(applied);
        }
        tables.flush().map_err(|e| storage(&e))?;
    }
    txn.commit().map_err(|e| storage(&e))?;
    Ok(applied)
}
