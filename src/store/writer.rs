//! The single writer thread and its group commit (DESIGN.md, "Write path"); the log syncer
//! it hands records to is `syncer.rs`.
//!
//! The writer blocks for the first queued command, drains what else is queued (bounded by
//! `GROUP_JOBS_MAX` and `GROUP_WEIGHT_MAX`) and applies each command in one redb write
//! transaction — each sees the effects of those before it; a refused one writes nothing.
//! The tables record what they changed; the writer hands the group's redo record, with its
//! answers, to the syncer thread and starts on the next group in the same open transaction.
//! The syncer writes the records it has to the preallocated log, makes them durable with one
//! fdatasync and only then answers. The writer commits its open transaction to redb without
//! an fsync (`Durability::None`) once it has been open `commit_interval_ms` and holds
//! `COMMIT_LINES_MIN` lines (or five times as long with fewer), or when a
//! reader asks for it — so redb's page work never delays an answer and is paid once for
//! many groups. Every `checkpoint_interval_ms` or `checkpoint_log_bytes` of log the writer commits
//! durably (`Durability::Immediate`) instead; the log then starts over.
//!
//! Readers see redb's state once it is committed, first asking for the commit of what was
//! answered before they began, then waiting (`Store::reader`) until the syncer has made what
//! they see durable: no read answers what a crash could undo, none misses an answered write.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use redb::{Database, Durability, WriteTransaction};
use tokio::sync::oneshot;

use super::apply::{load_chain, Chain, Tables};
use super::redo::Redo;
use super::syncer::{LogSyncer, Reply, SyncMsg};
use super::wal;
use super::Shared;
use super::StoreError;
use crate::ledger::{self, Command, Level, Movement, Product, Rules, Transfer, Warehouse};

/// Most commands in one commit.
pub const GROUP_JOBS_MAX: usize = 4096;
/// Most movement lines in one commit (a bulk command counts its lines).
pub const GROUP_WEIGHT_MAX: usize = 16_384;
/// While the log is broken, how often the syncer is asked to try it again.
const LOG_RETRY_INTERVAL_MS: u64 = 1_000;
/// Movement lines in the open transaction beyond which redb commits it.
const COMMIT_DEFER_WEIGHT_MAX: usize = 4 * GROUP_WEIGHT_MAX;
/// A transaction held `commit_interval_ms` is committed once it holds this many lines, else
/// when it is `COMMIT_SPAN_SLOW_FACTOR` times as old. From 16 connections on a 20 ms
/// transaction holds about as many; at one connection (~50 one-line groups in 20 ms) the
/// commit every 20 ms was what the next request waited behind about once in 50, the
/// one-connection p99. Load bench, alternating (`STOCKD_BENCH_PG=0`): one-connection p99
/// 1.59/1.90 ms committing every 20 ms, 1.41/1.38/1.19 ms with 128 lines, 0.76/1.06 ms with
/// 256; the p99 at 16 and 64 connections and the throughput within the machine's noise.
/// (Every 100 ms whatever the lines also gave ~1 ms at one connection, but doubled the p99
/// at 16 and 64 connections.)
const COMMIT_LINES_MIN: usize = 256;
const COMMIT_SPAN_SLOW_FACTOR: u64 = 5;
/// While groups keep coming, a due commit runs right after a group is handed to the
/// syncer, when its fdatasync keeps the next request away anyway. Only when no group came
/// for this long past `commit_interval_ms` does the idle writer commit on its own: a
/// timer-driven commit lands at a random moment and the next request waits behind it
/// (measured at one connection: 3–5 % of throughput, and the p99).
const COMMIT_IDLE_MS: u64 = 20;
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

/// A first answer as an older version stored it (status, content type, body bytes): still
/// answered to repeats until it expires; new rows store the [`Outcome`] instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// What a write did, kept as data for its repeats: the edge renders it again (identically,
/// since a repeat is the same request).
#[derive(Debug, Clone)]
pub enum Outcome {
    Applied(Box<Applied>),
    /// Refused with a stable error code (the one table in `error.rs`) and its detail.
    Refused {
        code: String,
        detail: String,
    },
}

/// What a replays row holds.
#[derive(Debug, Clone)]
pub enum Stored {
    Answer(Answer),
    Outcome(Outcome),
}

/// The replay protection of one write (Idempotency-Key, or a legacy signature).
#[derive(Clone)]
pub struct ReplayClaim {
    /// Scoped key: who asked, and under which key.
    pub key: String,
    /// SHA-256 of method, path and body: a reused key with another request is refused.
    pub fingerprint: [u8; 32],
    pub ttl_ms: i64,
}

/// A v1 signature's (partner, nonce), remembered until `expires_ms`.
#[derive(Debug, Clone)]
pub struct NonceClaim {
    pub partner: String,
    pub nonce: String,
    pub now_ms: i64,
    pub expires_ms: i64,
}

/// Where an outbound sink stands (issue 13): every event up to `position` was delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkRecord {
    pub sink: String,
    pub position: u64,
    pub paused: bool,
}

/// What a job asks the writer to do.
pub enum Work {
    Ledger(Command),
    ClaimNonce(NonceClaim),
    /// Records an outbound sink's position and pause flag (issue 13).
    SetSink(SinkRecord),
    /// Panics on the writer thread: tests of panic containment.
    #[cfg(test)]
    Panic,
}

impl Work {
    fn weight(&self) -> usize {
        match self {
            Work::Ledger(cmd) => cmd.weight(),
            Work::ClaimNonce(_) | Work::SetSink(_) => 1,
            #[cfg(test)]
            Work::Panic => 1,
        }
    }
}

pub struct Job {
    pub work: Work,
    pub ctx: WriteCtx,
    pub reply: oneshot::Sender<Result<Applied, StoreError>>,
}

pub enum Msg {
    Job(Box<Job>),
    /// A reader waits for the open transaction's commit.
    Flush,
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
    /// This is the stored outcome of an earlier identical request: nothing was applied.
    pub replayed: bool,
    /// A replayed refusal (the first request was refused, so is every repeat).
    pub refused: Option<StoreError>,
    /// A replayed first answer stored by an older version, as it was sent.
    pub answer: Option<Answer>,
}

/// When the writer commits a group durably to redb, after which the log starts over.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub checkpoint_interval_ms: u64,
    pub checkpoint_log_bytes: u64,
    /// How long answered groups wait in the open transaction before redb commits it.
    pub commit_interval_ms: u64,
    /// Record redb's allocator state in checkpoint commits (`[storage] quick_repair`).
    pub quick_repair: bool,
}

pub struct Writer {
    shared: Arc<Shared>,
    rules: Rules,
    limits: Limits,
    chain: Chain,
    /// Gen of the last group applied (committed to redb, or in `open`).
    gen: u64,
    /// Groups applied and handed to the syncer, not yet committed to redb.
    open: Option<OpenTxn>,
    /// Where the next log record goes, and log bytes written since the last checkpoint.
    log_offset: u64,
    log_bytes: u64,
    checkpoint_at: Instant,
    /// Groups were committed without fsync since the last checkpoint.
    dirty: bool,
    log_retry_at: Instant,
    log: LogSyncer,
    /// Set after a failed commit until the file is reopened.
    recovery: Option<Recovery>,
}

impl Writer {
    /// A writer continuing the file at `gen` (its log recovered up to there).
    pub fn new(shared: Arc<Shared>, rules: Rules, limits: Limits, gen: u64) -> Result<Writer, String> {
        let chain = {
            let db = shared.db.read().ok().and_then(|g| g.clone()).ok_or("no database")?;
            load_chain(&db)?
        };
        let seq_last = chain.seq_next - 1;
        shared.seq_last.store(seq_last, Ordering::Release);
        shared.committed.send_replace(seq_last);
        shared.visible_gen.store(gen, Ordering::Release);
        shared.settled.send_replace(gen);
        let log = LogSyncer::start(shared.clone())?;
        Ok(Writer {
            shared,
            rules,
            limits,
            chain,
            gen,
            open: None,
            log_offset: wal::HEADER_BYTES,
            log_bytes: 0,
            checkpoint_at: Instant::now(),
            dirty: false,
            log_retry_at: Instant::now(),
            log,
            recovery: None,
        })
    }

    pub fn run(mut self, rx: mpsc::Receiver<Msg>) {
        let mut group: Vec<Job> = Vec::with_capacity(GROUP_JOBS_MAX);
        while let Some(first) = self.wait_counted(&rx) {
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
                    Msg::Flush => {}
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
                let applying = Instant::now();
                self.commit_group(&mut group, false);
                self.spent(|t| &t.applying_ns, applying);
            }
            if self.commit_due() {
                self.committing(Self::commit_open);
            }
            if stop {
                break;
            }
        }
        self.close();
    }

    /// [`Writer::wait`], its time counted as waiting (but for the commits it made).
    fn wait_counted(&mut self, rx: &mpsc::Receiver<Msg>) -> Option<Msg> {
        let since = Instant::now();
        let committing = |w: &Self| w.shared.writer_time.committing_ns.load(Ordering::Relaxed);
        let committed_ns = committing(self);
        let next = self.wait(rx);
        let busy_ns = committing(self).saturating_sub(committed_ns);
        let waited_ns = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let waiting = &self.shared.writer_time.waiting_ns;
        waiting.fetch_add(waited_ns.saturating_sub(busy_ns), Ordering::Relaxed);
        next
    }

    /// Counts the time since `since` as spent on what `what` names.
    fn spent(&self, what: impl Fn(&super::WriterTime) -> &AtomicU64, since: Instant) {
        let ns = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        what(&self.shared.writer_time).fetch_add(ns, Ordering::Relaxed);
    }

    /// Runs a commit (or checkpoint), its time counted as committing.
    fn committing(&mut self, commit: impl FnOnce(&mut Self)) {
        let since = Instant::now();
        commit(self);
        self.spent(|t| &t.committing_ns, since);
    }

    /// The next message; meanwhile, the open transaction's commit once due, a due
    /// checkpoint or a recovery attempt. `None`: every sender is gone.
    fn wait(&mut self, rx: &mpsc::Receiver<Msg>) -> Option<Msg> {
        loop {
            let due = match (&self.recovery, &self.open) {
                (Some(r), _) => Some(r.next_at.saturating_duration_since(Instant::now())),
                (None, Some(open)) => {
                    Some(open.left(self.limits.commit_interval_ms) + Duration::from_millis(COMMIT_IDLE_MS))
                }
                (None, None) if self.dirty => {
                    let interval = Duration::from_millis(self.limits.checkpoint_interval_ms);
                    Some(interval.saturating_sub(self.checkpoint_at.elapsed()))
                }
                (None, None) => None,
            };
            let Some(timeout) = due else { return rx.recv().ok() };
            match rx.recv_timeout(timeout) {
                Ok(msg) => return Some(msg),
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                Err(mpsc::RecvTimeoutError::Timeout) if self.recovery.is_some() => {
                    self.try_recover();
                }
                Err(mpsc::RecvTimeoutError::Timeout) if self.open.is_some() => self.committing(Self::commit_open),
                Err(mpsc::RecvTimeoutError::Timeout) => self.committing(Self::checkpoint_idle),
            }
        }
    }

    /// Whether to commit the open transaction now: held long or large enough, or a reader
    /// waits. (Committing whenever nothing was queued, during the group's fdatasync, was
    /// measured: bulk counts −22 %, one connection −8 %, 16 and 64 connections within noise
    /// — the commit's page work was no longer shared by several groups.)
    fn commit_due(&self) -> bool {
        let Some(open) = &self.open else { return false };
        open.due(self.limits.commit_interval_ms) || self.shared.flush_wanted.load(Ordering::Acquire)
    }

    /// A clean stop: a last durable commit, then the log is marked clean.
    fn close(&mut self) {
        if !self.try_recover() {
            return; // the file could not be reopened: the next start recovers it
        }
        if self.dirty {
            self.checkpoint_idle();
        }
        self.barrier();
        self.log.stop();
        if !self.dirty && !self.shared.log_broken.load(Ordering::Acquire) {
            if let Err(e) = self.shared.wal.write_header(true) {
                tracing::warn!(error = %e, "cannot mark the log clean; the next start reads it again");
            }
        }
    }

    fn database(&self) -> Option<Arc<Database>> {
        self.shared.db.read().ok().and_then(|g| g.clone())
    }

    /// Applies one group in the open transaction and hands its log record and answers to
    /// the syncer (or, for a checkpoint, commits durably first). `alone`: the group is one
    /// job being retried after its group panicked.
    fn commit_group(&mut self, group: &mut Vec<Job>, alone: bool) {
        if !self.try_recover() {
            answer_all(group, "the data file is being reopened");
            return;
        }
        let Some(db) = self.database() else {
            answer_all(group, "the data file is being reopened");
            return;
        };
        let before = self.chain;
        let commands = group.len();
        let weight: usize = group.iter().map(|j| j.work.weight()).sum();
        let gen = self.gen + 1;
        let mut open = match self.open.take() {
            Some(open) => open,
            None => match db.begin_write() {
                Ok(txn) => OpenTxn::new(txn),
                Err(e) => return self.fail_group(group, before, db, &e.to_string()),
            },
        };
        let applied = std::panic::catch_unwind(AssertUnwindSafe(|| {
            open.cell
                .with_dependent_mut(|_, tables| self.apply_group(tables, group))
        }));
        let results = match applied {
            Ok(Ok(results)) => results,
            Ok(Err(err)) => {
                drop(open);
                return self.fail_group(group, before, db, &err);
            }
            Err(_) => {
                let answered_before = open.groups > 0;
                drop(open);
                // The retries below may reopen the file: no handle of this frame may keep it.
                drop(db);
                self.chain = before;
                if answered_before {
                    // The dropped transaction held groups already handed to the syncer:
                    // their records are in the log, and reopening applies them again.
                    self.lose_database();
                }
                return self.isolate_panic(group, alone);
            }
        };
        metrics::histogram!(crate::telemetry::COMMIT_COMMANDS).record(commands as f64);
        open.add(weight);
        self.gen = gen;
        let payload = open.redo.take();
        let record_bytes = wal::record_bytes(payload.len());
        let degraded = self.shared.log_broken.load(Ordering::Acquire);
        let checkpoint = degraded
            || self.log_offset + record_bytes > self.shared.wal.capacity_bytes()
            || self.log_bytes + record_bytes >= self.limits.checkpoint_log_bytes
            || self.checkpoint_at.elapsed() >= Duration::from_millis(self.limits.checkpoint_interval_ms);
        if checkpoint {
            if let Err(err) = open.finish(gen).and_then(|txn| self.commit(txn, gen, true)) {
                return self.fail_group(group, before, db, &err);
            }
            let replies: Vec<Reply> = group.drain(..).map(|j| j.reply).zip(results).collect();
            self.checkpointed();
            let seq_last = self.chain.seq_next - 1;
            self.send(SyncMsg::Durable { gen, seq_last, replies });
        } else {
            let replies: Vec<Reply> = group.drain(..).map(|j| j.reply).zip(results).collect();
            self.hand_over(gen, &payload, replies);
            self.open = Some(open);
        }
        if degraded && self.log_retry_at.elapsed() >= Duration::from_millis(LOG_RETRY_INTERVAL_MS) {
            self.log_retry_at = Instant::now();
            self.send(SyncMsg::Retry);
        }
    }

    /// Hands an applied group's log record and answers to the syncer.
    fn hand_over(&mut self, gen: u64, payload: &[u8], replies: Vec<Reply>) {
        let seq_last = self.chain.seq_next - 1;
        let record_bytes = wal::record_bytes(payload.len());
        let mut bytes = Vec::with_capacity(record_bytes as usize);
        wal::encode_record(gen, payload, &mut bytes);
        let offset = self.log_offset;
        self.log_offset += record_bytes;
        self.log_bytes += record_bytes;
        self.dirty = true;
        self.send(SyncMsg::Record {
            gen,
            offset,
            bytes,
            seq_last,
            replies,
        });
    }

    /// Commits the open transaction to redb without fsync: its groups' records are in the
    /// log (or on their way there), which makes them durable. A failure loses nothing
    /// answered: the file is reopened and the log applied again.
    fn commit_open(&mut self) {
        self.shared.flush_wanted.store(false, Ordering::Release);
        let Some(open) = self.open.take() else { return };
        let gen = self.gen;
        if let Err(err) = open.finish(gen).and_then(|txn| self.commit(txn, gen, false)) {
            metrics::counter!(crate::telemetry::COMMIT_FAILURES).increment(1);
            tracing::error!(error = %err, "commit failed; reopening the data file and applying the log again");
            self.shared.writable.store(false, Ordering::Release);
            self.lose_database();
        }
    }

    /// Applies every job in the open transaction (not committed yet); `Err` when storage
    /// failed, in which case the transaction must be dropped.
    fn apply_group(
        &mut self,
        tables: &mut Tables<'_>,
        group: &[Job],
    ) -> Result<Vec<Result<Applied, StoreError>>, String> {
        let mut results = Vec::with_capacity(group.len());
        for job in group {
            results.push(self.apply_job(tables, job)?);
        }
        tables.flush().map_err(|e| e.to_string())?;
        Ok(results)
    }

    fn apply_job(&mut self, tables: &mut Tables<'_>, job: &Job) -> Result<Result<Applied, StoreError>, String> {
        let cmd = match &job.work {
            Work::Ledger(cmd) => cmd,
            Work::ClaimNonce(claim) => return tables.claim_nonce(claim).map_err(|e| e.to_string()),
            Work::SetSink(record) => {
                tables.set_sink(record).map_err(|e| e.to_string())?;
                return Ok(Ok(Applied::default()));
            }
            #[cfg(test)]
            Work::Panic => panic!("a job that panics (test)"),
        };
        let now_ms = crate::clock::now_ms().max(self.chain.at_ms_last);
        if let Some(claim) = &job.ctx.replay {
            if let Some(earlier) = tables.replay_lookup(claim, now_ms).map_err(|e| e.to_string())? {
                return Ok(earlier);
            }
        }
        let result = match ledger::apply(cmd, tables, &self.rules, now_ms) {
            Ok(effects) => Ok(tables
                .write(effects, &job.ctx, &mut self.chain, now_ms)
                .map_err(|e| e.to_string())?),
            Err(ledger::LedgerError::Storage(msg)) => return Err(msg),
            // A refusal (or a read that failed inside a command's line: 503, nothing written).
            Err(refused) => Err(StoreError::from(refused)),
        };
        if let Some(claim) = &job.ctx.replay {
            tables.replay_store(claim, &result, now_ms).map_err(|e| e.to_string())?;
        }
        Ok(result)
    }

    /// Commits a transaction whose last group is `gen`: without fsync (the log makes it
    /// durable), or as a checkpoint.
    fn commit(&mut self, mut txn: WriteTransaction, gen: u64, checkpoint: bool) -> Result<(), String> {
        let started = Instant::now();
        let durability = if checkpoint {
            Durability::Immediate
        } else {
            Durability::None
        };
        txn.set_durability(durability).map_err(|e| e.to_string())?;
        txn.set_quick_repair(checkpoint && self.limits.quick_repair);
        // Published before the commit: a reader that sees this group's state also sees
        // `visible_gen` ≥ gen, and waits for the syncer to make it durable.
        self.shared.visible_gen.store(gen, Ordering::Release);
        txn.commit().map_err(|e| e.to_string())?;
        // Before the commit is published: a reader that sees it in `applied` must not get
        // the shared snapshot from before it.
        self.shared.forget_snapshot();
        self.shared.applied.send_replace(gen);
        self.shared.writable.store(true, Ordering::Release);
        metrics::histogram!(crate::telemetry::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// After a durable commit: the log's records are covered, so it starts over.
    fn checkpointed(&mut self) {
        self.log_offset = wal::HEADER_BYTES;
        self.log_bytes = 0;
        self.checkpoint_at = Instant::now();
        self.dirty = false;
        metrics::counter!(crate::telemetry::CHECKPOINTS).increment(1);
    }

    /// A checkpoint with no new group: a durable commit (of the open transaction, or an
    /// empty one) covers what came before.
    fn checkpoint_idle(&mut self) {
        let Some(db) = self.database() else { return };
        let txn = match self.open.take() {
            Some(open) => open.finish(self.gen),
            None => db.begin_write().map_err(|e| e.to_string()),
        };
        match txn.and_then(|txn| self.commit(txn, self.gen, true)) {
            Ok(()) => {
                self.checkpointed();
                let seq_last = self.chain.seq_next - 1;
                self.send(SyncMsg::Durable {
                    gen: self.gen,
                    seq_last,
                    replies: Vec::new(),
                });
            }
            Err(e) => {
                tracing::error!(error = %e, "checkpoint failed; reopening the data file");
                self.shared.writable.store(false, Ordering::Release);
                drop(db);
                self.lose_database();
            }
        }
    }

    fn send(&mut self, msg: SyncMsg) {
        // The syncer is gone only if it panicked: nothing can be made durable through it.
        if let Err(SyncMsg::Record { replies, .. } | SyncMsg::Durable { replies, .. }) = self.log.send(msg) {
            for (tx, _) in replies {
                let _ = tx.send(Err(StoreError::unavailable("the log syncer stopped")));
            }
        }
    }

    /// Waits until the syncer has processed everything sent so far.
    fn barrier(&mut self) {
        let (tx, rx) = mpsc::channel();
        self.send(SyncMsg::Barrier(tx));
        let _ = rx.recv();
    }

    /// A storage error: the group gets 503, nothing of it is kept, the file is reopened.
    fn fail_group(&mut self, group: &mut Vec<Job>, before: Chain, db: Arc<Database>, err: &str) {
        metrics::counter!(crate::telemetry::COMMIT_FAILURES).increment(1);
        tracing::error!(error = %err, "commit failed; answering 503 to its group and reopening the data file");
        self.chain = before;
        self.shared.writable.store(false, Ordering::Release);
        answer_all(group, &format!("the commit failed: {err}"));
        drop(db);
        self.lose_database();
    }

    /// A job panicked inside its group: the group's transaction was dropped (nothing
    /// written). Each job runs again alone; the one that panics again gets a 500, the
    /// others are committed as usual, and the writer goes on.
    fn isolate_panic(&mut self, group: &mut Vec<Job>, alone: bool) {
        metrics::counter!(crate::telemetry::WRITER_PANICS).increment(1);
        if alone {
            tracing::error!("a write panicked; answering 500 and going on");
            for job in group.drain(..) {
                let _ = job.reply.send(Err(StoreError::Internal(
                    "the write failed unexpectedly; nothing was written".into(),
                )));
            }
            return;
        }
        tracing::error!(
            commands = group.len(),
            "a write panicked; retrying its group one job at a time"
        );
        for job in std::mem::take(group) {
            let mut one = vec![job];
            self.commit_group(&mut one, true);
        }
    }

    /// Drops the database handle after a failed commit: redb refuses further writes on a
    /// handle whose I/O failed. [`Writer::try_recover`] opens it again.
    fn lose_database(&mut self) {
        // An open transaction holds the file too; its groups are in the log.
        self.open = None;
        // Acknowledged writes must be in the log before recovery reads it.
        self.barrier();
        // A shared read snapshot holds the file too.
        self.shared.forget_snapshot();
        let old = self.shared.db.write().ok().and_then(|mut g| g.take());
        drop(old);
        self.recovery = Some(Recovery {
            floor: self.shared.visible_gen.load(Ordering::Acquire).max(self.gen),
            next_at: Instant::now(),
            backoff_ms: REOPEN_BACKOFF_MS,
        });
    }

    /// Reopens the data file and applies the log again (redb's repair, then the log's
    /// records after its durable state), unless the last attempt was too recent. What the
    /// syncer acknowledged is in the log, so it survives; groups not yet acknowledged may or
    /// may not. Until it succeeds reads and writes answer 503 (the state a read could see
    /// would lack acknowledged writes).
    fn try_recover(&mut self) -> bool {
        let Some(r) = self.recovery.as_mut() else { return true };
        if Instant::now() < r.next_at {
            return false;
        }
        let floor = r.floor;
        let attempt = (self.shared.opener)().map_err(|e| e.to_string()).and_then(|db| {
            let gen = super::recovery::recover(&db, self.shared.wal.path(), floor)?;
            let chain = load_chain(&db)?;
            Ok((db, gen, chain))
        });
        match attempt {
            Ok((db, gen, chain)) => {
                self.chain = chain;
                self.gen = gen;
                self.checkpointed();
                if let Ok(mut g) = self.shared.db.write() {
                    *g = Some(Arc::new(db));
                }
                self.shared.visible_gen.store(gen, Ordering::Release);
                self.shared.settled.send_replace(gen);
                self.shared.applied.send_replace(gen);
                self.shared.writable.store(true, Ordering::Release);
                self.recovery = None;
                tracing::warn!("data file reopened and the log applied; writes resume");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot reopen the data file yet; retrying");
                r.next_at = Instant::now() + Duration::from_millis(r.backoff_ms);
                r.backoff_ms = (r.backoff_ms * 2).min(REOPEN_BACKOFF_MAX_MS);
                false
            }
        }
    }
}

self_cell::self_cell!(
    /// A write transaction with the tables that borrow it, kept open across groups (opening
    /// a table costs ~4k instructions; a movement touches about eight).
    struct TxnTables {
        owner: WriteTransaction,
        #[not_covariant]
        dependent: Tables,
    }
);

/// The writer's open transaction: groups applied and handed to the syncer, not yet
/// committed to redb.
struct OpenTxn {
    cell: TxnTables,
    /// What the tables record; drained into each group's log record.
    redo: Redo,
    since: Instant,
    weight: usize,
    groups: usize,
}

impl OpenTxn {
    fn new(txn: WriteTransaction) -> OpenTxn {
        let redo = Redo::default();
        let cell = TxnTables::new(txn, |txn| Tables::open(txn, &redo));
        OpenTxn {
            cell,
            redo,
            since: Instant::now(),
            weight: 0,
            groups: 0,
        }
    }

    /// The transaction ready to commit, its last group `gen`: the rows its tables hold
    /// are written ([`Tables::write_held`]) and the tables closed.
    fn finish(mut self, gen: u64) -> Result<WriteTransaction, String> {
        self.cell
            .with_dependent_mut(|_, tables| tables.write_held(Some(gen)))
            .map_err(|e| e.to_string())?;
        Ok(self.cell.into_owner())
    }

    fn add(&mut self, weight: usize) {
        self.weight += weight;
        self.groups += 1;
    }

    /// Held long or large enough: commit it now.
    fn due(&self, interval_ms: u64) -> bool {
        let held = self.left(interval_ms).is_zero() && self.weight >= COMMIT_LINES_MIN;
        let held_long = self.left(interval_ms.saturating_mul(COMMIT_SPAN_SLOW_FACTOR)).is_zero();
        held || held_long || self.weight >= COMMIT_DEFER_WEIGHT_MAX
    }

    /// Time until it is held long enough.
    fn left(&self, interval_ms: u64) -> Duration {
        Duration::from_millis(interval_ms).saturating_sub(self.since.elapsed())
    }
}

/// The data file must be reopened and the log applied before the next write.
struct Recovery {
    /// Gens continue above this (some may have been published before the failure).
    floor: u64,
    next_at: Instant,
    backoff_ms: u64,
}

fn answer_all(group: &mut Vec<Job>, why: &str) {
    for job in group.drain(..) {
        let _ = job.reply.send(Err(StoreError::unavailable(why)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// When the open transaction is due: held `commit_interval_ms` with enough lines, five
    /// times as long with fewer, or large at any age.
    #[test]
    fn the_open_transaction_is_due_by_age_and_lines() {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .expect("in-memory database");
        let mut open = OpenTxn::new(db.begin_write().expect("write transaction"));
        let interval_ms = 20;
        let aged = |ms: u64| Instant::now() - Duration::from_millis(ms);

        open.weight = COMMIT_LINES_MIN;
        assert!(!open.due(interval_ms), "young: not due, however many lines");
        open.since = aged(interval_ms + 5);
        assert!(open.due(interval_ms), "held long enough with enough lines");
        open.weight = COMMIT_LINES_MIN - 1;
        assert!(!open.due(interval_ms), "few lines wait longer");
        open.since = aged(interval_ms * COMMIT_SPAN_SLOW_FACTOR + 5);
        assert!(open.due(interval_ms), "but not forever");
        open.since = Instant::now();
        open.weight = COMMIT_DEFER_WEIGHT_MAX;
        assert!(open.due(interval_ms), "a large transaction at any age");
    }
}
