//! The daemon's data file as redb sees it: redb's own file backend, except that the fsync
//! of a checkpoint can run in the background (DESIGN.md, "Write path").
//!
//! A checkpoint is a durable redb commit: redb writes every page changed since the last one,
//! then fsyncs the file — 30–190 ms on this kind of disk, during which the writer applied
//! nothing and every answer waited (docs/benchmarks.md, "Checkpoint pauses"). The log still
//! holds every group the checkpoint covers (`wal.rs`: the writer moves to the other region
//! and leaves them), so the checkpoint need not be durable when the commit returns, only
//! before the log space that holds those groups is written again. The writer asks for that
//! ([`SyncControl::defer_next`]); redb's commit then returns once its pages are written, a
//! thread runs the fsync, and the writer waits for it ([`SyncControl::wait`]) before it moves
//! back into that region — normally long after it finished.
//!
//! Why redb's crash safety holds: every write to the file (and every change of its length)
//! waits until the fsync in flight has finished, so nothing written after a checkpoint
//! reaches the disk before the checkpoint does — the order redb's commit relies on is kept,
//! only later. A failed background fsync fails every later write, so redb's next commit
//! fails and the writer reopens the file and applies the log, as after any failed commit.

use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// Which deferred fsyncs have finished; shared by the writer, the backend of the file open
/// now (a reopen makes a new one) and the thread that runs the fsync.
#[derive(Debug, Default)]
pub struct SyncControl {
    state: Mutex<SyncState>,
    finished: Condvar,
    /// Tests: background fsyncs fail while set (a disk that fails under a checkpoint).
    #[cfg(test)]
    pub(crate) failing: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default)]
struct SyncState {
    /// The file open now.
    file: Option<Arc<FileBackend>>,
    /// A durable commit runs whose fsync is to run in the background.
    defer: bool,
    /// redb asked for an fsync during that commit and was answered at once: the next write
    /// must run it first (the order redb relies on).
    owed: bool,
    /// A background fsync is running.
    in_flight: bool,
    /// Deferred fsyncs asked for, and the last one known durable (tickets count up).
    asked: u64,
    durable: u64,
    /// A background fsync failed: the file's state on disk is unknown until it is reopened.
    failed: Option<String>,
    /// Tests: background fsyncs that failed, over every file opened.
    #[cfg(test)]
    failures: u64,
}

/// A deferred fsync, to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

impl SyncControl {
    fn lock(&self) -> MutexGuard<'_, SyncState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a [`DataFile`] is open under this control (a store opened by a custom
    /// opener has none, and checkpoints there fsync on the writer).
    pub fn attached(&self) -> bool {
        self.lock().file.is_some()
    }

    /// The durable commit about to run has its fsync in the background, started by
    /// [`SyncControl::start_deferred`] once the commit returns.
    pub fn defer_next(&self) -> Ticket {
        let mut s = self.lock();
        s.defer = true;
        s.asked += 1;
        Ticket(s.asked)
    }

    /// After the commit (whether it succeeded or not): starts the fsync on its thread. It
    /// runs whether or not redb asked for one: what the commit wrote must be durable before
    /// its ticket is.
    pub fn start_deferred(self: &Arc<Self>) {
        let (ticket, file) = {
            let mut s = self.wait_idle();
            s.defer = false;
            s.owed = false;
            let Some(file) = s.file.clone() else { return };
            s.in_flight = true;
            (s.asked, file)
        };
        let control = self.clone();
        let background = file.clone();
        let run = move || {
            let result = control.fault().and_then(|()| background.sync_data());
            control.finish(ticket, result)
        };
        if let Err(e) = std::thread::Builder::new().name("stockd-ckpt".into()).spawn(run) {
            // No thread: the fsync runs here, as it did before.
            tracing::warn!(error = %e, "no thread for the checkpoint's fsync; running it on the writer");
            self.finish(ticket, file.sync_data());
        }
    }

    #[cfg(test)]
    fn fault(&self) -> io::Result<()> {
        match self.failing.load(std::sync::atomic::Ordering::Acquire) {
            true => Err(io::Error::other("injected fsync error")),
            false => Ok(()),
        }
    }

    #[cfg(not(test))]
    fn fault(&self) -> io::Result<()> {
        Ok(())
    }

    /// Tests: background fsyncs that failed so far, and whether the file open now had one.
    #[cfg(test)]
    pub(crate) fn failures(&self) -> (u64, bool) {
        let s = self.lock();
        (s.failures, s.failed.is_some())
    }

    fn finish(&self, ticket: u64, result: io::Result<()>) {
        let mut s = self.lock();
        s.in_flight = false;
        match result {
            Ok(()) => s.durable = s.durable.max(ticket),
            Err(e) => {
                s.failed = Some(format!("the checkpoint's fsync failed: {e}"));
                #[cfg(test)]
                {
                    s.failures += 1;
                }
            }
        }
        drop(s);
        self.finished.notify_all();
    }

    /// Waits until the fsync of `ticket` has finished: `Err` if it (or one after it) failed
    /// or never ran.
    pub fn wait(&self, ticket: Ticket) -> Result<(), String> {
        let s = self.wait_idle();
        if s.durable >= ticket.0 {
            return Ok(());
        }
        Err(s
            .failed
            .clone()
            .unwrap_or_else(|| "the checkpoint's fsync never ran".into()))
    }

    /// The state once no background fsync is running.
    fn wait_idle(&self) -> MutexGuard<'_, SyncState> {
        let mut s = self.lock();
        while s.in_flight {
            s = self.finished.wait(s).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        s
    }

    /// Before a write to `file` or a change of its length: waits for the fsync in flight
    /// and runs one that is owed; refuses once one failed.
    fn barrier(&self, file: &FileBackend) -> io::Result<MutexGuard<'_, SyncState>> {
        let mut s = self.wait_idle();
        if let Some(why) = &s.failed {
            return Err(io::Error::other(why.clone()));
        }
        if s.owed {
            s.owed = false;
            if let Err(e) = file.sync_data() {
                s.failed = Some(format!("an fsync during a checkpoint failed: {e}"));
                return Err(e);
            }
        }
        Ok(s)
    }
}

/// redb's file backend with the checkpoint's fsync deferred (module doc).
#[derive(Debug)]
pub struct DataFile {
    file: Arc<FileBackend>,
    control: Arc<SyncControl>,
}

impl DataFile {
    /// Opens (creating) the file at `path` and makes it the one `control` syncs. A failure
    /// of the fsync of a file opened before is that file's.
    pub fn open(path: &Path, control: Arc<SyncControl>) -> Result<DataFile, redb::DatabaseError> {
        let file: File = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let file = Arc::new(FileBackend::new(file)?);
        {
            let mut s = control.wait_idle();
            s.file = Some(file.clone());
            s.defer = false;
            s.owed = false;
            s.failed = None;
        }
        Ok(DataFile { file, control })
    }
}

impl StorageBackend for DataFile {
    fn len(&self) -> Result<u64, io::Error> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.file.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let _order = self.control.barrier(&self.file)?;
        self.file.set_len(len)
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        let mut s = self.control.barrier(&self.file)?;
        if s.defer {
            s.owed = true; // the checkpoint's: it runs in the background after the commit
            return Ok(());
        }
        drop(s);
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let _order = self.control.barrier(&self.file)?;
        self.file.write(offset, data)
    }

    fn close(&self) -> Result<(), io::Error> {
        self.file.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn a_deferred_fsync_runs_before_the_next_write_and_a_failed_one_stops_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.redb");
        let control = Arc::new(SyncControl::default());
        let file = DataFile::open(&path, control.clone()).unwrap();
        assert!(control.attached());
        file.set_len(8192).unwrap();

        // redb's fsync inside the deferred commit is answered at once and owed…
        let ticket = control.defer_next();
        file.write(0, b"checkpoint").unwrap();
        file.sync_data().unwrap();
        assert!(control.lock().owed);
        // …and a write after it in the same commit runs it first.
        file.write(4096, b"after").unwrap();
        assert!(!control.lock().owed);
        control.start_deferred();
        assert_eq!(control.wait(ticket), Ok(()));

        // A failed background fsync: its ticket fails, and so does every write after it.
        control.failing.store(true, Ordering::Release);
        let ticket = control.defer_next();
        file.sync_data().unwrap();
        control.start_deferred();
        assert!(control.wait(ticket).is_err());
        assert!(file.write(0, b"x").is_err());
        assert!(file.sync_data().is_err());
        assert_eq!(control.failures(), (1, true));
        // Until the file is opened again.
        control.failing.store(false, Ordering::Release);
        drop(file);
        let file = DataFile::open(&path, control.clone()).unwrap();
        file.write(0, b"x").unwrap();
        assert_eq!(control.failures(), (1, false));
    }
}
