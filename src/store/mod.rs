//! The only code that touches redb: tables, codec, the writer thread, reads and verify.

pub mod codec;
mod read;
pub mod rollup;
pub mod snapshot;
pub mod tables;
pub mod verify;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, RwLock};

use redb::{Database, ReadOnlyDatabase, ReadableDatabase, ReadableTable};

use crate::error::{ApiError, Code};
use crate::ledger::{Rules, Warehouse};

pub use read::{BatchQuery, LevelFilter, MovementFilter, MovementPage, PageOf, Paging, ProductFilter, Reader};
pub use writer::{
    apply_offline, Answer, Applied, BatchHeader, NonceClaim, OfflineError, Render, ReplayClaim, WriteCtx,
};

use tables::*;

/// Commands that may wait for the writer; a full queue answers 503 `overloaded`.
pub const QUEUE_JOBS_MAX: usize = 8192;

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
    let db = Database::builder().open(path).map_err(|e| open_error(path, e))?;
    let txn = db
        .begin_read()
        .map_err(|e| OpenError::Io(path.to_path_buf(), e.to_string()))?;
    check_meta(path, &txn)?;
    Ok(db)
}

/// Opens the data file, creating and initialising it when it does not exist or is empty.
pub fn open_or_create(path: &Path, default_warehouse: &str) -> Result<Database, OpenError> {
    let is_new = std::fs::metadata(path).map(|m| m.len() == 0).unwrap_or(true);
    let db = if is_new {
        Database::builder().create(path).map_err(|e| open_error(path, e))?
    } else {
        open_existing(path)?
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
        if meta.get(MAGIC_KEY)?.is_none() {
            meta.insert(MAGIC_KEY, MAGIC)?;
            meta.insert(FORMAT_KEY, FORMAT_VERSION.to_le_bytes().as_slice())?;
        }
        let mut warehouses = txn.open_table(WAREHOUSES)?;
        if warehouses.get(default_warehouse)?.is_none() {
            let w = Warehouse {
                id: default_warehouse.to_string(),
                name: "Default".to_string(),
            };
            warehouses.insert(default_warehouse, codec::warehouse(&w).as_slice())?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// Opens the database again after a failed commit (a test injects faults through it).
pub type Opener = Arc<dyn Fn() -> Result<Database, redb::DatabaseError> + Send + Sync>;

/// State shared by the handle, the writer thread and readers.
struct Shared {
    path: PathBuf,
    opener: Opener,
    /// `None` while the writer reopens the file after a failed commit.
    db: RwLock<Option<Arc<Database>>>,
    /// Last committed seq, for metrics and readiness.
    seq_last: AtomicU64,
    /// Jobs sent to the writer and not yet taken by it.
    queued: std::sync::atomic::AtomicUsize,
    writable: AtomicBool,
    /// The last committed seq, for change-feed long polls waiting on the next commit.
    committed: tokio::sync::watch::Sender<u64>,
    /// Record redb's allocator state in every commit (`[storage] quick_repair`).
    quick_repair: AtomicBool,
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
        let db = open_or_create(path, default_warehouse)?;
        let reopen_path = path.to_path_buf();
        let opener: Opener = Arc::new(move || Database::builder().create(&reopen_path));
        Store::start(path, db, opener, rules)
    }

    /// Opens a store whose database comes from `opener` (every time it is opened).
    pub fn open_with(path: &Path, opener: Opener, rules: Rules, default_warehouse: &str) -> Result<Store, OpenError> {
        let db = opener().map_err(|e| open_error(path, e))?;
        init(&db, default_warehouse).map_err(|e| OpenError::Io(path.to_path_buf(), e.to_string()))?;
        Store::start(path, db, opener, rules)
    }

    fn start(path: &Path, db: Database, opener: Opener, rules: Rules) -> Result<Store, OpenError> {
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            opener,
            db: RwLock::new(Some(Arc::new(db))),
            seq_last: AtomicU64::new(0),
            queued: std::sync::atomic::AtomicUsize::new(0),
            writable: AtomicBool::new(true),
            committed: tokio::sync::watch::Sender::new(0),
            quick_repair: AtomicBool::new(true),
        });
        let (jobs, rx) = mpsc::sync_channel(QUEUE_JOBS_MAX);
        let w = writer::Writer::new(shared.clone(), rules).map_err(|e| OpenError::Io(path.to_path_buf(), e))?;
        let handle = std::thread::Builder::new()
            .name("stockd-writer".into())
            .spawn(move || w.run(rx))
            .map_err(|e| OpenError::Io(path.to_path_buf(), e.to_string()))?;
        Ok(Store {
            shared,
            jobs,
            writer: Arc::new(std::sync::Mutex::new(Some(handle))),
        })
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Whether commits record redb's allocator state (`[storage] quick_repair`): restart
    /// after a crash is then immediate, at the price of two fsyncs and the state's pages in
    /// every commit. Without it, a restart after a crash walks the whole file.
    pub fn set_quick_repair(&self, on: bool) {
        self.shared.quick_repair.store(on, Ordering::Relaxed);
    }

    /// A receiver that sees every new last committed seq (for long polls).
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.committed.subscribe()
    }

    /// Jobs waiting for the writer.
    pub fn queue_depth(&self) -> usize {
        self.shared.queued.load(Ordering::Relaxed)
    }

    /// Last committed journal seq.
    pub fn seq_last(&self) -> u64 {
        self.shared.seq_last.load(Ordering::Acquire)
    }

    /// The store is open and its last commit did not fail.
    pub fn is_ready(&self) -> bool {
        self.shared.writable.load(Ordering::Acquire) && self.database().is_some()
    }

    fn database(&self) -> Option<Arc<Database>> {
        self.shared.db.read().ok().and_then(|g| g.clone())
    }

    /// The database, or 503 while the writer reopens it after a failed commit.
    fn open_database(&self) -> Result<Arc<Database>, ApiError> {
        self.database()
            .ok_or_else(|| ApiError::new(Code::StorageUnavailable, "the data file is being reopened"))
    }

    /// A read snapshot; never waits for the writer (MVCC).
    pub fn reader(&self) -> Result<Reader, ApiError> {
        let db = self.open_database()?;
        let txn = db.begin_read().map_err(storage_error)?;
        Reader::new(txn)
    }

    /// Queues a command for the writer and waits until it is committed (or refused).
    pub async fn execute(&self, cmd: crate::ledger::Command, ctx: WriteCtx) -> Result<Applied, ApiError> {
        self.submit(writer::Work::Ledger(cmd), ctx).await
    }

    /// Records a v1 signature's nonce durably; 401 when the partner used it before
    /// (within its lifetime). Every signed request claims its nonce before it runs.
    pub async fn claim_nonce(&self, claim: NonceClaim) -> Result<(), ApiError> {
        self.submit(writer::Work::ClaimNonce(claim), WriteCtx::default())
            .await
            .map(|_| ())
    }

    async fn submit(&self, work: writer::Work, ctx: WriteCtx) -> Result<Applied, ApiError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let job = writer::Job { work, ctx, reply };
        match self.jobs.try_send(writer::Msg::Job(Box::new(job))) {
            Ok(()) => {
                self.shared.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::TrySendError::Full(_)) => {
                return Err(ApiError::new(
                    Code::Overloaded,
                    "the write queue is full; retry shortly",
                ));
            }
            Err(mpsc::TrySendError::Disconnected(_)) => {
                return Err(ApiError::new(Code::StorageUnavailable, "the store is shutting down"));
            }
        }
        rx.await.unwrap_or_else(|_| {
            Err(ApiError::new(
                Code::StorageUnavailable,
                "the writer stopped before answering",
            ))
        })
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
    }
}

#[cfg(test)]
mod fault_tests;

pub(crate) fn storage_error(err: impl std::fmt::Display) -> ApiError {
    ApiError::new(Code::StorageUnavailable, format!("storage: {err}"))
}

impl Store {
    /// Runs `stockd verify`'s checks on one snapshot of the live file.
    pub fn verify(&self) -> Result<verify::Report, ApiError> {
        let db = self.open_database()?;
        let txn = db.begin_read().map_err(storage_error)?;
        Ok(verify::verify(&txn))
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
    let (txn, _db) = file_snapshot(path)?;
    Ok(verify::verify(&txn))
}

impl Store {
    /// Takes a snapshot of one consistent state into `dir`, while writes go on, and prunes
    /// the oldest beyond `keep`. Blocking: call it off the async workers.
    pub fn backup(&self, dir: &Path, keep: usize) -> Result<snapshot::Snapshot, ApiError> {
        let db = self.open_database()?;
        let txn = db.begin_read().map_err(storage_error)?;
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
    let (txn, db) = file_snapshot(path)?;
    let mut reader = Reader::new(txn).map_err(|e| OpenError::Io(path.to_path_buf(), e.detail))?;
    reader.owner = db;
    Ok(reader)
}
