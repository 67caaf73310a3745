//! The only code that touches redb: tables, codec, the writer thread, reads and verify.

mod apply;
pub mod codec;
mod error;
mod read;
mod recovery;
mod redo;
mod replay;
pub mod rollup;
mod sink;
pub mod snapshot;
mod syncer;
pub mod tables;
pub mod upgrade;
pub mod verify;
pub mod wal;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, RwLock};
use std::time::Duration;

use redb::{Database, ReadOnlyDatabase, ReadableDatabase, ReadableTable};

use crate::ledger::{Rules, Warehouse};

pub use apply::{apply_offline, OfflineError};
pub use error::StoreError;
pub use read::{
    BatchQuery, LevelFilter, MovementFilter, MovementPage, PageOf, Paging, ProductFilter, Reader, FEED_SCAN_ENTRIES_MAX,
};
pub use recovery::{new_file_id, settle_file};
pub use writer::{
    Answer, Applied, BatchHeader, Limits, NonceClaim, Outcome, ReplayClaim, SinkRecord, Stored, WriteCtx,
};

use tables::*;

/// redb's page cache for the daemon's data file (redb's default is 1 GiB). The hot tables —
/// levels, products, the journal's tail — fit many times over; colder pages come from the
/// OS page cache. Without a bound the daemon's RSS grew with the data file (276 MiB with a
/// 142 MiB file in the load bench; the target is 256 MiB). Offline commands keep redb's
/// default: they are one-shot processes, and an import writes everything in one
/// transaction.
pub const CACHE_BYTES: usize = 64 << 20;

/// A builder for the data file: the daemon's bounded cache, or redb's default.
fn builder(cache_bytes: Option<usize>) -> redb::Builder {
    let mut b = Database::builder();
    if let Some(bytes) = cache_bytes {
        b.set_cache_size(bytes);
    }
    b
}

/// Commands that may wait for the writer; a full queue answers 503 `overloaded`.
pub const QUEUE_JOBS_MAX: usize = 8192;
/// Longest a read waits for the log sync that covers the state it sees.
pub const READ_SETTLE_TIMEOUT_MS: u64 = 5_000;
/// Defaults of `[storage]`: a durable checkpoint at least this often, and after this much
/// log; the log file is twice that, preallocated.
pub const CHECKPOINT_INTERVAL_MS_DEFAULT: u64 = 2_000;
pub const CHECKPOINT_LOG_BYTES_DEFAULT: u64 = 16 << 20;
/// Default of `[storage] commit_interval_ms`: how long answered groups wait in the writer's
/// open transaction before redb commits it (a read never waits for it: it asks for the
/// commit). Each commit writes every page dirtied since the last one and makes the next
/// group copy the pages it touches again, so a longer span shares that work among more
/// groups. Measured with the load bench (the writer's time spent committing, per movement):
/// 5 ms: 17.9 µs at 64 connections and 38 µs at one; 20 ms: 5.0 and 13.1 µs; 50 ms: 5.1 and
/// 10.7 µs; 200 ms: 2.8 and 6.3 µs, with a worse p99 at 16 and 64 connections.
pub const COMMIT_INTERVAL_MS_DEFAULT: u64 = 20;

/// How the store commits (`[storage]`).
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub quick_repair: bool,
    pub checkpoint_interval_ms: u64,
    pub checkpoint_log_bytes: u64,
    pub commit_interval_ms: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            quick_repair: true,
            checkpoint_interval_ms: CHECKPOINT_INTERVAL_MS_DEFAULT,
            checkpoint_log_bytes: CHECKPOINT_LOG_BYTES_DEFAULT,
            commit_interval_ms: COMMIT_INTERVAL_MS_DEFAULT,
        }
    }
}

impl Options {
    fn limits(&self) -> Limits {
        Limits {
            checkpoint_interval_ms: self.checkpoint_interval_ms.max(1),
            checkpoint_log_bytes: self.checkpoint_log_bytes.max(wal::HEADER_BYTES),
            quick_repair: self.quick_repair,
            commit_interval_ms: self.commit_interval_ms.max(1),
        }
    }

    /// The log file's size: room for two checkpoints' worth, so a checkpoint is never
    /// forced by a full file in ordinary running.
    fn log_capacity_bytes(&self) -> u64 {
        wal::HEADER_BYTES + 2 * self.limits().checkpoint_log_bytes
    }
}

/// Creates (or truncates) a file only its owner may read or write.
pub(crate) fn owner_only_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// Why the data file could not be used.
#[derive(Debug)]
pub enum OpenError {
    /// Another process (or this one) holds the file.
    InUse(PathBuf),
    /// Not a redb file, or a redb file that is not stockd's.
    Foreign(PathBuf, String),
    /// Written by a newer stockd.
    TooNew(PathBuf, u64),
    Io(PathBuf, String),
    /// The redo log is damaged or belongs to another file; nothing was changed.
    Log(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::InUse(p) => write!(f, "{}: already in use by another stockd process", p.display()),
            OpenError::Foreign(p, why) => write!(f, "{}: not a stockd data file ({why}); left untouched", p.display()),
            OpenError::TooNew(p, v) => write!(
                f,
                "{}: written by a newer stockd (format {v}, this binary reads {FORMAT_VERSION}); left untouched",
                p.display()
            ),
            OpenError::Io(p, why) => write!(f, "{}: {why}", p.display()),
            OpenError::Log(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for OpenError {}

fn open_error(path: &Path, err: redb::DatabaseError) -> OpenError {
    match err {
        redb::DatabaseError::DatabaseAlreadyOpen => OpenError::InUse(path.to_path_buf()),
        redb::DatabaseError::UpgradeRequired(v) => OpenError::Foreign(path.to_path_buf(), format!("redb format {v}")),
        redb::DatabaseError::Storage(redb::StorageError::Io(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
            OpenError::Foreign(path.to_path_buf(), e.to_string())
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(e)) => OpenError::Io(path.to_path_buf(), e.to_string()),
        other => OpenError::Foreign(path.to_path_buf(), other.to_string()),
    }
}

/// Checks that an open database is stockd's and of a version we read.
fn check_meta(path: &Path, txn: &redb::ReadTransaction) -> Result<(), OpenError> {
    let foreign = |why: &str| OpenError::Foreign(path.to_path_buf(), why.to_string());
    let meta = txn.open_table(META).map_err(|_| foreign("no stockd metadata table"))?;
    let magic = meta.get(MAGIC_KEY).map_err(|e| foreign(&e.to_string()))?;
    if magic.as_ref().map(|m| m.value() == MAGIC) != Some(true) {
        return Err(foreign("no stockd marker"));
    }
    let version = meta
        .get(FORMAT_KEY)
        .map_err(|e| foreign(&e.to_string()))?
        .and_then(|v| v.value().try_into().ok().map(u64::from_le_bytes))
        .ok_or_else(|| foreign("no format version"))?;
    if version > FORMAT_VERSION {
        return Err(OpenError::TooNew(path.to_path_buf(), version));
    }
    Ok(())
}

/// Opens an existing data file without writing to it, unless it needs redb's crash repair
/// (a daemon killed mid-write), which only a writable open performs.
pub fn open_existing(path: &Path) -> Result<Database, OpenError> {
    open_existing_with(path, None)
}

fn open_existing_with(path: &Path, cache_bytes: Option<usize>) -> Result<Database, OpenError> {
    if !path.exists() {
        return Err(OpenError::Io(path.to_path_buf(), "no such file".into()));
    }
    match ReadOnlyDatabase::open(path) {
        Ok(ro) => {
            let txn = ro
                .begin_read()
                .map_err(|e| OpenError::Io(path.to_path_buf(), e.to_string()))?;
            check_meta(path, &txn)?;
        }
        Err(redb::DatabaseError::RepairAborted) => {} // checked below, once repaired
        Err(e) => return Err(open_error(path, e)),
    }
    let db = builder(cache_bytes).open(path).map_err(|e| open_error(path, e))?;
    let txn = db
        .begin_read()
        .map_err(|e| OpenError::Io(path.to_path_buf(), e.to_string()))?;
    check_meta(path, &txn)?;
    Ok(db)
}

/// Opens the data file, creating and initialising it when it does not exist or is empty.
pub fn open_or_create(path: &Path, default_warehouse: &str) -> Result<Database, OpenError> {
    open_or_create_with(path, default_warehouse, None)
}

fn open_or_create_with(
    path: &Path,
    default_warehouse: &str,
    cache_bytes: Option<usize>,
) -> Result<Database, OpenError> {
    let is_new = std::fs::metadata(path).map(|m| m.len() == 0).unwrap_or(true);
    let db = if is_new {
        builder(cache_bytes).create(path).map_err(|e| open_error(path, e))?
    } else {
        open_existing_with(path, cache_bytes)?
    };
    // A file that is already complete is not written to just by opening it.
    if is_new || !is_initialised(&db, default_warehouse) {
        init(&db, default_warehouse).map_err(|e| OpenError::Io(path.to_path_buf(), e.to_string()))?;
    }
    Ok(db)
}

/// Whether the file has every table and the default warehouse.
fn is_initialised(db: &Database, default_warehouse: &str) -> bool {
    let Ok(txn) = db.begin_read() else { return false };
    let mut complete = true;
    macro_rules! exists {
        ($table:ident) => {
            complete &= txn.open_table($table).is_ok();
        };
    }
    all_tables!(exists);
    complete
        && txn
            .open_table(WAREHOUSES)
            .ok()
            .and_then(|t| t.get(default_warehouse).ok().flatten())
            .is_some()
}

/// Creates every table, the metadata and the default warehouse (idempotent).
fn init(db: &Database, default_warehouse: &str) -> Result<(), redb::Error> {
    let mut txn = db.begin_write()?;
    txn.set_quick_repair(true);
    {
        macro_rules! create {
            ($table:ident) => {
                txn.open_table($table)?;
            };
        }
        all_tables!(create);
        let mut meta = txn.open_table(META)?;
        let is_new = meta.get(MAGIC_KEY)?.is_none();
        if is_new {
            meta.insert(MAGIC_KEY, MAGIC)?;
            meta.insert(FORMAT_KEY, FORMAT_VERSION.to_le_bytes().as_slice())?;
            // A new file is born upgraded: records get numbers as they are created.
            meta.insert(UPGRADE_KEY, upgrade::UPGRADE_LEVEL.to_le_bytes().as_slice())?;
        }
        let mut warehouses = txn.open_table(WAREHOUSES)?;
        if warehouses.get(default_warehouse)?.is_none() {
            // Number 0 is the default warehouse a file is created with; one created later
            // (the configured default changed) gets an assigned number at open (upgrade.rs).
            let number = is_new.then_some(crate::ledger::DEFAULT_WAREHOUSE_NUMBER);
            let w = Warehouse {
                id: default_warehouse.to_string(),
                name: "Default".to_string(),
                number,
            };
            warehouses.insert(default_warehouse, codec::warehouse(&w).as_slice())?;
            if is_new {
                txn.open_table(NUMBERS)?
                    .insert((crate::ledger::NumberSpace::Warehouse.key(), 0), default_warehouse)?;
            }
        }
    }
    txn.commit()?;
    Ok(())
}

/// Opens the database again after a failed commit (a test injects faults through it).
pub type Opener = Arc<dyn Fn() -> Result<Database, redb::DatabaseError> + Send + Sync>;

/// Nanoseconds of the writer thread, by what it was doing.
#[derive(Default)]
pub(crate) struct WriterTime {
    pub(crate) waiting_ns: AtomicU64,
    pub(crate) applying_ns: AtomicU64,
    pub(crate) committing_ns: AtomicU64,
}

/// [`Store::writer_time_us`].
#[derive(Debug, Clone, Copy, Default)]
pub struct WriterTimes {
    pub waiting: u64,
    pub applying: u64,
    pub committing: u64,
}

/// State shared by the handle, the writer thread and readers.
struct Shared {
    path: PathBuf,
    opener: Opener,
    /// The snapshot readers share until the next commit (`Store::reader`). Before `db`:
    /// fields drop in order, and the snapshot goes before the database.
    snapshot: std::sync::Mutex<SharedSnapshot>,
    /// `None` while the writer reopens the file after a failed commit.
    db: RwLock<Option<Arc<Database>>>,
    /// Last committed seq, for metrics and readiness.
    seq_last: AtomicU64,
    /// Jobs sent to the writer and not yet taken by it.
    queued: std::sync::atomic::AtomicUsize,
    /// Where the writer thread's time went (`/metrics`, the load bench).
    writer_time: WriterTime,
    writable: AtomicBool,
    /// The last committed seq, for change-feed long polls waiting on the next commit.
    committed: tokio::sync::watch::Sender<u64>,
    /// Gen of the last group committed to redb, published before its commit.
    visible_gen: AtomicU64,
    /// Gen up to which everything committed is durable (or was replaced by recovery): the
    /// syncer answers a group's writes when it passes the group's gen.
    settled: tokio::sync::watch::Sender<u64>,
    /// Gen of the last group redb has committed. The writer keeps groups in an open
    /// transaction a little after their log sync answered them (`commit_interval_ms`),
    /// so this may trail `settled`; a read that must see an answered group asks for it.
    applied: tokio::sync::watch::Sender<u64>,
    /// A reader waits for `applied`: the writer commits its open transaction now.
    flush_wanted: AtomicBool,

    /// The last log write or sync failed: groups commit durably to redb instead.
    log_broken: AtomicBool,
    wal: Arc<wal::Wal>,
}

/// The read snapshot readers share, with the gen it may see at most. The writer forgets it
/// at each commit, before publishing the commit in `applied`, and before it reopens the
/// file; `epoch` counts those, so a snapshot begun before one is never shared after it.
/// A shared snapshot therefore holds every commit published in `applied`, and pins
/// redb's pages of one commit at most.
#[derive(Default)]
struct SharedSnapshot {
    current: Option<(Arc<read::Snapshot>, u64)>,
    epoch: u64,
}

impl SharedSnapshot {
    /// The shared snapshot and its gen, or the epoch to begin a new one in.
    fn get(&self) -> Result<(Arc<read::Snapshot>, u64), u64> {
        match &self.current {
            Some((snap, gen)) => Ok((snap.clone(), *gen)),
            None => Err(self.epoch),
        }
    }

    /// Shares `snap`, begun in `epoch`, unless a commit or a reopen came since.
    fn offer(&mut self, epoch: u64, snap: &Arc<read::Snapshot>, gen: u64) {
        if self.epoch == epoch && self.current.is_none() {
            self.current = Some((snap.clone(), gen));
        }
    }

    /// A commit or a reopen: no snapshot begun before it is shared from now on.
    fn forget(&mut self) -> Option<(Arc<read::Snapshot>, u64)> {
        self.epoch += 1;
        self.current.take()
    }
}

impl Shared {
    fn snapshot_slot(&self) -> std::sync::MutexGuard<'_, SharedSnapshot> {
        // Nothing in the slot can be left half-changed by a panic.
        self.snapshot.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// [`SharedSnapshot::forget`]; the snapshot is dropped outside the lock.
    fn forget_snapshot(&self) {
        let old = self.snapshot_slot().forget();
        drop(old);
    }
}

/// Handle to the store: cheap to clone, used by every request.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    jobs: mpsc::SyncSender<writer::Msg>,
    writer: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl Store {
    /// Opens (or creates) the data file and starts the writer thread.
    pub fn open(path: &Path, rules: Rules, default_warehouse: &str) -> Result<Store, OpenError> {
        Store::open_with_options(path, rules, default_warehouse, Options::default())
    }

    /// [`Store::open`] with `[storage]`'s options.
    pub fn open_with_options(
        path: &Path,
        rules: Rules,
        default_warehouse: &str,
        options: Options,
    ) -> Result<Store, OpenError> {
        recovery::precheck(path)?; // before any writable open: a bad log changes nothing
        let db = open_or_create_with(path, default_warehouse, Some(CACHE_BYTES))?;
        let reopen_path = path.to_path_buf();
        let opener: Opener = Arc::new(move || builder(Some(CACHE_BYTES)).create(&reopen_path));
        Store::start(path, db, opener, rules, options, default_warehouse)
    }

    /// Opens a store whose database comes from `opener` (every time it is opened).
    pub fn open_with(path: &Path, opener: Opener, rules: Rules, default_warehouse: &str) -> Result<Store, OpenError> {
        let db = opener().map_err(|e| open_error(path, e))?;
        init(&db, default_warehouse).map_err(|e| OpenError::Io(path.to_path_buf(), e.to_string()))?;
        Store::start(path, db, opener, rules, Options::default(), default_warehouse)
    }

    fn start(
        path: &Path,
        db: Database,
        opener: Opener,
        rules: Rules,
        options: Options,
        default_warehouse: &str,
    ) -> Result<Store, OpenError> {
        let (wal, gen) =
            recovery::open_log(path, &db, options.log_capacity_bytes()).map_err(|e| OpenError::Log(e.to_string()))?;
        // After the log is applied (the upgrade reads the file as it ends), before any write.
        upgrade::upgrade(&db, default_warehouse).map_err(|e| OpenError::Io(path.to_path_buf(), e.to_string()))?;
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            opener,
            snapshot: std::sync::Mutex::new(SharedSnapshot::default()),
            db: RwLock::new(Some(Arc::new(db))),
            seq_last: AtomicU64::new(0),
            queued: std::sync::atomic::AtomicUsize::new(0),
            writer_time: WriterTime::default(),
            writable: AtomicBool::new(true),
            committed: tokio::sync::watch::Sender::new(0),
            visible_gen: AtomicU64::new(gen),
            settled: tokio::sync::watch::Sender::new(gen),
            applied: tokio::sync::watch::Sender::new(gen),
            flush_wanted: AtomicBool::new(false),

            log_broken: AtomicBool::new(false),
            wal: Arc::new(wal),
        });
        let (jobs, rx) = mpsc::sync_channel(QUEUE_JOBS_MAX);
        // The writer is built on its own thread (it holds tables that must stay there) and
        // says whether it could start.
        let (started, ready) = mpsc::channel();
        let handle = {
            let shared = shared.clone();
            let limits = options.limits();
            std::thread::Builder::new()
                .name("stockd-writer".into())
                .spawn(move || match writer::Writer::new(shared, rules, limits, gen) {
                    Ok(w) => {
                        let _ = started.send(Ok(()));
                        w.run(rx)
                    }
                    Err(e) => {
                        let _ = started.send(Err(e));
                    }
                })
                .map_err(|e| OpenError::Io(path.to_path_buf(), e.to_string()))?
        };
        ready
            .recv()
            .unwrap_or_else(|_| Err("the writer thread stopped before it started".into()))
            .map_err(|e| OpenError::Io(path.to_path_buf(), e))?;
        Ok(Store {
            shared,
            jobs,
            writer: Arc::new(std::sync::Mutex::new(Some(handle))),
        })
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// A receiver that sees every new last committed seq (for long polls).
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.committed.subscribe()
    }

    /// Jobs waiting for the writer.
    pub fn queue_depth(&self) -> usize {
        self.shared.queued.load(Ordering::Relaxed)
    }

    /// Microseconds the writer thread spent waiting for work, applying groups and
    /// committing to redb, since the store opened.
    pub fn writer_time_us(&self) -> WriterTimes {
        let t = &self.shared.writer_time;
        let us = |a: &AtomicU64| a.load(Ordering::Relaxed) / 1_000;
        WriterTimes {
            waiting: us(&t.waiting_ns),
            applying: us(&t.applying_ns),
            committing: us(&t.committing_ns),
        }
    }

    /// Last committed journal seq.
    pub fn seq_last(&self) -> u64 {
        self.shared.seq_last.load(Ordering::Acquire)
    }

    /// The store is open, its last commit did not fail and its writer thread runs.
    pub fn is_ready(&self) -> bool {
        let writer_alive = self
            .writer
            .lock()
            .ok()
            .is_some_and(|h| h.as_ref().is_some_and(|h| !h.is_finished()));
        writer_alive && self.shared.writable.load(Ordering::Acquire) && self.database().is_some()
    }

    fn database(&self) -> Option<Arc<Database>> {
        self.shared.db.read().ok().and_then(|g| g.clone())
    }

    /// The database, or 503 while the writer reopens it after a failed commit.
    fn open_database(&self) -> Result<Arc<Database>, StoreError> {
        self.database()
            .ok_or_else(|| StoreError::unavailable("the data file is being reopened"))
    }

    /// A read snapshot of durable state that holds every write answered before this call.
    /// It never waits for the writer's work (MVCC), only — when the last answered group is
    /// still in the writer's open transaction — for its commit (asked for at once), and —
    /// when it sees a group whose log sync is still running — for that sync (DESIGN.md: no
    /// read answers what a crash could undo, none misses what was acknowledged).
    pub async fn reader(&self) -> Result<Reader, StoreError> {
        let answered = *self.shared.settled.borrow();
        if *self.shared.applied.borrow() < answered {
            let mut applied = self.shared.applied.subscribe();
            self.ask_flush();
            let wait = applied.wait_for(|&g| g >= answered);
            let waited = tokio::time::timeout(Duration::from_millis(READ_SETTLE_TIMEOUT_MS), wait).await;
            if !matches!(waited, Ok(Ok(_))) {
                return Err(unsettled());
            }
        }
        let (snap, gen) = self.shared_snapshot()?;
        if *self.shared.settled.borrow() < gen {
            let mut settled = self.shared.settled.subscribe();
            let wait = settled.wait_for(|&g| g >= gen);
            let waited = tokio::time::timeout(Duration::from_millis(READ_SETTLE_TIMEOUT_MS), wait).await;
            if !matches!(waited, Ok(Ok(_))) {
                return Err(unsettled());
            }
        }
        Ok(Reader::of(snap))
    }

    /// The snapshot readers share, or a new one, shared from now on unless the writer
    /// committed (or lost the file) meanwhile; and the gen it may see at most. Either holds
    /// every commit published in `applied` before this call (`SharedSnapshot`).
    fn shared_snapshot(&self) -> Result<(Arc<read::Snapshot>, u64), StoreError> {
        let shared = self.shared.snapshot_slot().get();
        let epoch = match shared {
            Ok(shared) => return Ok(shared),
            Err(epoch) => epoch,
        };
        let (txn, gen) = self.begin_read()?;
        let snap = Arc::new(read::Snapshot::new(txn));
        self.shared.snapshot_slot().offer(epoch, &snap, gen);
        Ok((snap, gen))
    }

    /// [`Store::reader`] for threads that may block (backups, the sweep, tests).
    pub fn reader_blocking(&self) -> Result<Reader, StoreError> {
        Reader::new(self.snapshot_blocking()?)
    }

    /// Asks the writer to commit its open transaction now (a reader waits for it). The
    /// message only wakes an idle writer: a busy one sees the flag after its group.
    fn ask_flush(&self) {
        if !self.shared.flush_wanted.swap(true, Ordering::AcqRel) {
            let _ = self.jobs.try_send(writer::Msg::Flush);
        }
    }

    /// A read transaction and the gen it may see at most.
    fn begin_read(&self) -> Result<(redb::ReadTransaction, u64), StoreError> {
        let db = self.open_database()?;
        let txn = db.begin_read().map_err(storage_error)?;
        // Read after the transaction began: the writer publishes a gen before committing it.
        Ok((txn, self.shared.visible_gen.load(Ordering::Acquire)))
    }

    /// The blocking form of [`Store::reader`]'s waits, giving the read transaction.
    fn snapshot_blocking(&self) -> Result<redb::ReadTransaction, StoreError> {
        let deadline = std::time::Instant::now() + Duration::from_millis(READ_SETTLE_TIMEOUT_MS);
        let answered = *self.shared.settled.borrow();
        if *self.shared.applied.borrow() < answered {
            self.ask_flush();
            wait_until(deadline, || *self.shared.applied.borrow() >= answered)?;
        }
        let (txn, gen) = self.begin_read()?;
        wait_until(deadline, || *self.shared.settled.borrow() >= gen)?;
        Ok(txn)
    }

    /// Queues a command for the writer and waits until it is committed (or refused).
    pub async fn execute(&self, cmd: crate::ledger::Command, ctx: WriteCtx) -> Result<Applied, StoreError> {
        self.submit(writer::Work::Ledger(cmd), ctx).await
    }

    /// Records a v1 signature's nonce durably; 401 when the partner used it before
    /// (within its lifetime). Every signed request claims its nonce before it runs.
    pub async fn claim_nonce(&self, claim: NonceClaim) -> Result<(), StoreError> {
        self.submit(writer::Work::ClaimNonce(claim), WriteCtx::default())
            .await
            .map(|_| ())
    }

    async fn submit(&self, work: writer::Work, ctx: WriteCtx) -> Result<Applied, StoreError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let job = writer::Job { work, ctx, reply };
        match self.jobs.try_send(writer::Msg::Job(Box::new(job))) {
            Ok(()) => {
                self.shared.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::TrySendError::Full(_)) => {
                return Err(StoreError::Overloaded);
            }
            Err(mpsc::TrySendError::Disconnected(_)) => {
                return Err(StoreError::unavailable("the store is shutting down"));
            }
        }
        rx.await
            .unwrap_or_else(|_| Err(StoreError::unavailable("the writer stopped before answering")))
    }

    /// Stops the writer after it has committed and answered everything queued before this
    /// call, then closes the file. Later writes through any clone answer 503.
    pub fn shutdown(&self) {
        // A blocking send: the queue drains as the writer commits.
        let _ = self.jobs.send(writer::Msg::Stop);
        let handle = self.writer.lock().ok().and_then(|mut h| h.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
        if let Ok(mut db) = self.shared.db.write() {
            db.take();
        }
        // No reader begins once the database is gone; one shared before goes now.
        self.shared.forget_snapshot();
    }
}

#[cfg(test)]
mod fault_tests;

/// Polls `done` until it holds or `deadline` passes (blocking threads only).
fn wait_until(deadline: std::time::Instant, done: impl Fn() -> bool) -> Result<(), StoreError> {
    while !done() {
        if std::time::Instant::now() >= deadline {
            return Err(unsettled());
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(())
}

fn unsettled() -> StoreError {
    StoreError::unavailable("the redo log has not caught up; retry shortly")
}

pub(crate) fn storage_error(err: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("storage: {err}"))
}

impl Store {
    /// Runs `stockd verify`'s checks on one snapshot of the live file.
    pub fn verify(&self) -> Result<verify::Report, StoreError> {
        Ok(verify::verify(&self.snapshot_blocking()?))
    }
}

/// One read snapshot of a data file that no daemon has open, checked to be stockd's,
/// with the database it reads (a repaired file's writable handle must outlive the read).
/// Read-only unless the file needs redb's crash repair (a daemon killed mid-write), which
/// is what the daemon itself would do on start.
fn file_snapshot(path: &Path) -> Result<(redb::ReadTransaction, Option<Database>), OpenError> {
    let io = |e: redb::TransactionError| OpenError::Io(path.to_path_buf(), e.to_string());
    if !path.exists() {
        return Err(OpenError::Io(path.to_path_buf(), "no such file".into()));
    }
    match ReadOnlyDatabase::open(path) {
        Ok(ro) => {
            let txn = ro.begin_read().map_err(io)?;
            check_meta(path, &txn)?;
            Ok((txn, None))
        }
        Err(redb::DatabaseError::RepairAborted) => {
            let db = open_existing(path)?;
            let txn = db.begin_read().map_err(io)?;
            Ok((txn, Some(db)))
        }
        Err(e) => Err(open_error(path, e)),
    }
}

/// Verifies a data file that no daemon has open (`stockd verify`).
pub fn verify_file(path: &Path) -> Result<verify::Report, OpenError> {
    settle_file(path)?;
    let (txn, _db) = file_snapshot(path)?;
    Ok(verify::verify(&txn))
}

impl Store {
    /// Takes a snapshot of one consistent state into `dir`, while writes go on, and prunes
    /// the oldest beyond `keep`. Blocking: call it off the async workers.
    pub fn backup(&self, dir: &Path, keep: usize) -> Result<snapshot::Snapshot, StoreError> {
        let txn = self.snapshot_blocking()?;
        let seq = {
            let journal = txn.open_table(JOURNAL).map_err(storage_error)?;
            let last = journal
                .last()
                .map_err(storage_error)?
                .map(|(k, _)| k.value())
                .unwrap_or(0);
            last
        };
        let target = dir.join(snapshot::file_name(crate::clock::now_ms(), seq));
        let taken = snapshot::write(&txn, &target).map_err(storage_error)?;
        drop(txn);
        metrics::counter!(crate::telemetry::BACKUPS).increment(1);
        metrics::gauge!(crate::telemetry::LAST_BACKUP_SECONDS).set(crate::clock::now_ms() as f64 / 1000.0);
        snapshot::prune(dir, keep.max(1)).map_err(storage_error)?;
        Ok(taken)
    }
}

/// A read snapshot of a data file no daemon has open (`stockd export`).
pub fn read_file(path: &Path) -> Result<Reader, OpenError> {
    settle_file(path)?;
    let (txn, db) = file_snapshot(path)?;
    let mut reader = Reader::new(txn).map_err(|e| OpenError::Io(path.to_path_buf(), e.to_string()))?;
    reader.owner = db;
    Ok(reader)
}

#[cfg(test)]
mod shared_snapshot_tests {
    use super::*;

    fn snapshot(db: &Database) -> Arc<read::Snapshot> {
        Arc::new(read::Snapshot::new(db.begin_read().expect("begin_read")))
    }

    #[test]
    fn a_snapshot_begun_before_a_commit_is_never_shared_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::create(dir.path().join("slot.redb")).expect("db");
        let mut slot = SharedSnapshot::default();
        let epoch = slot.get().expect_err("nothing shared yet");
        let early = snapshot(&db);
        // The writer commits between this reader's begin and its offer.
        slot.forget();
        slot.offer(epoch, &early, 1);
        let epoch = slot.get().expect_err("begun before the commit: not shared");
        let late = snapshot(&db);
        slot.offer(epoch, &late, 2);
        let (shared, gen) = slot.get().expect("shared");
        assert!(Arc::ptr_eq(&shared, &late) && gen == 2);
        // A second reader that began in the same epoch: the first offer stays.
        slot.offer(epoch, &early, 1);
        assert!(Arc::ptr_eq(&slot.get().expect("shared").0, &late));
        assert!(slot.forget().is_some());
        assert!(slot.get().is_err(), "a commit forgets it");
    }

    /// Readers share one snapshot while nothing is committed, and each still sees every
    /// write answered before it began (its commit forgets the shared snapshot).
    #[tokio::test(flavor = "current_thread")]
    async fn readers_share_a_snapshot_until_a_commit_and_see_every_answered_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = Options {
            // No checkpoint during the test: only the commits a reader asks for.
            checkpoint_interval_ms: 3_600_000,
            ..Options::default()
        };
        let store = Store::open_with_options(&dir.path().join("share.redb"), Rules::default(), "default", options)
            .expect("open");
        testing::product_p(&store).await;
        for n in 1..=20 {
            store
                .execute(testing::moves("default", 1), testing::ctx())
                .await
                .expect("move");
            let first = store.reader().await.expect("reader");
            let second = store.reader().await.expect("reader");
            assert!(first.shares_snapshot_with(&second), "no commit between them");
            for reader in [&first, &second] {
                let level = reader.level("p", "default").expect("read");
                assert_eq!(level.map(|l| l.buckets.on_hand), Some(n));
            }
        }
        store.shutdown();
    }
}

/// Tests: a few writes that set a store up.
#[cfg(test)]
pub(crate) mod testing {
    use redb::{ReadableTable, WriteTransaction};

    use super::tables::*;
    use super::{codec, Store, WriteCtx};
    use crate::ledger::{Command, Meta, MoveCmd, Op, Product};

    /// Every page of `filter` by cursor, `limit` a page: the seqs, newest first.
    pub fn movement_pages(reader: &super::Reader, filter: &super::MovementFilter, limit: u64) -> Vec<u64> {
        let mut seqs = Vec::new();
        let mut cursor = None;
        loop {
            let paging = super::Paging {
                limit,
                cursor: cursor.take(),
                ..super::Paging::default()
            };
            let page = reader.movements(filter, &paging).expect("page");
            seqs.extend(page.rows.iter().map(|m| m.seq));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return seqs,
            }
        }
    }

    /// `commands` through `stockd import`'s write path, all of them applied.
    pub fn import(db: &redb::Database, commands: Vec<Command>) {
        let lines = commands.into_iter().enumerate();
        super::apply_offline(db, &crate::ledger::Rules::default(), "test", lines, &mut |_| {}).expect("import");
    }

    /// Turns a file back into format 2's shapes, as an earlier stockd left it: journal rows
    /// without back-pointers, each level row keeping the seqs of its latest movements (up
    /// to `slots`, at most `codec::FORMAT2_LEVEL_SLOTS`) and `history_by_level` listing
    /// the others, upgrade level 2.
    pub fn to_format2(db: &redb::Database, slots: usize) {
        let txn = db.begin_write().expect("write");
        let slots = slots.min(usize::from(codec::FORMAT2_LEVEL_SLOTS));
        rewrite_as_format2(&txn, slots).expect("format 2");
        txn.commit().expect("commit");
    }

    fn rewrite_as_format2(txn: &WriteTransaction, slots: usize) -> Result<(), redb::Error> {
        let mut journal = txn.open_table(JOURNAL)?;
        let mut rows = Vec::new();
        for row in journal.iter()? {
            let (k, v) = row?;
            rows.push((k.value(), codec::decode_movement(v.value()).expect("movement")));
        }
        let mut history: std::collections::BTreeMap<(String, String), Vec<u64>> = Default::default();
        for (seq, m) in &rows {
            journal.insert(*seq, codec::movement(m).as_slice())?;
            let key = (m.draft.product.clone(), m.draft.warehouse.clone());
            history.entry(key).or_default().push(*seq);
        }
        let mut index = txn.open_table(HISTORY_BY_LEVEL)?;
        index.retain(|_, _| false)?;
        let mut levels = txn.open_table(LEVELS)?;
        for ((p, w), seqs) in history {
            let kept = seqs.len().min(slots);
            let (indexed, in_row) = seqs.split_at(seqs.len() - kept);
            for seq in indexed {
                index.insert((p.as_str(), w.as_str(), *seq), ())?;
            }
            let stored = levels.get((p.as_str(), w.as_str()))?.map(|v| v.value().to_vec());
            let level = codec::decode_level(&stored.expect("a level row")).expect("level");
            let mut row = codec::level(&level);
            row.push(kept as u8);
            let empty = usize::from(codec::FORMAT2_LEVEL_SLOTS) - kept;
            for seq in in_row.iter().copied().chain(std::iter::repeat_n(0, empty)) {
                row.extend_from_slice(&seq.to_le_bytes());
            }
            levels.insert((p.as_str(), w.as_str()), row.as_slice())?;
        }
        let mut meta = txn.open_table(META)?;
        meta.insert(FORMAT_KEY, 2u64.to_le_bytes().as_slice())?;
        meta.insert(UPGRADE_KEY, 2u64.to_le_bytes().as_slice())?;
        Ok(())
    }

    pub fn ctx() -> WriteCtx {
        WriteCtx {
            actor: "test".into(),
            ..WriteCtx::default()
        }
    }

    /// Creates product `p`.
    pub async fn product_p(store: &Store) {
        let product = Product {
            id: "p".into(),
            sku: "p".into(),
            name: "P".into(),
            ..Product::default()
        };
        store
            .execute(Command::PutProduct(product), ctx())
            .await
            .expect("product");
    }

    /// `n` receipts of 1 of product `p` into `warehouse`, as one batch.
    pub fn moves(warehouse: &str, n: usize) -> Command {
        let line = MoveCmd {
            product: "p".into(),
            warehouse: warehouse.into(),
            op: Op::In(1),
            expected_on_hand: None,
            meta: Meta::default(),
        };
        Command::Batch(vec![line; n])
    }
}
