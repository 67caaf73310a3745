//! The log syncer: writes the redo records the writer hands it to the preallocated log,
//! makes them durable with one fdatasync for all it has, and only then answers their groups
//! — while the writer already applies the next ones (DESIGN.md, "Write path").

use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::oneshot;

use super::writer::Applied;
use super::Shared;
use super::StoreError;

/// Log records the syncer may have queued; beyond it the writer waits (back-pressure).
const SYNC_QUEUE_MAX: usize = 64;
/// Messages the syncer takes for one fdatasync.
const SYNC_BATCH_MAX: usize = 256;
/// A waiting handler and what to tell it once its group is durable.
pub(super) type Reply = (
    oneshot::Sender<Result<Applied, StoreError>>,
    Result<Applied, StoreError>,
);

/// What the writer hands the syncer, in commit order.
pub(super) enum SyncMsg {
    /// A group committed without fsync: durable once `bytes` at `offset` are synced.
    Record {
        gen: u64,
        offset: u64,
        bytes: Vec<u8>,
        seq_last: u64,
        replies: Vec<Reply>,
    },
    /// A group committed durably to redb (a checkpoint): everything up to `gen` is durable.
    Durable {
        gen: u64,
        seq_last: u64,
        replies: Vec<Reply>,
    },
    /// The log failed and a checkpoint covered it: try the log again.
    Retry,
    /// Answers once everything sent before it is processed.
    Barrier(mpsc::Sender<()>),
}

/// The writer's end of the log syncer thread.
pub(super) struct LogSyncer {
    tx: Option<mpsc::SyncSender<SyncMsg>>,
    thread: Option<JoinHandle<()>>,
}

impl LogSyncer {
    pub fn start(shared: Arc<Shared>) -> Result<LogSyncer, String> {
        let (tx, rx) = mpsc::sync_channel(SYNC_QUEUE_MAX);
        let thread = std::thread::Builder::new()
            .name("stockd-log".into())
            .spawn(move || Syncer { shared, broken: false }.run(rx))
            .map_err(|e| e.to_string())?;
        Ok(LogSyncer {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Hands `msg` to the thread, in commit order; gives it back if the thread is gone.
    pub fn send(&self, msg: SyncMsg) -> Result<(), SyncMsg> {
        let Some(tx) = &self.tx else { return Err(msg) };
        tx.send(msg).map_err(|mpsc::SendError(msg)| msg)
    }

    /// Stops the thread once it has answered everything sent.
    pub fn stop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The log's own thread: writes the records it is handed, syncs once for all of them,
/// then answers their groups — while the writer already applies the next ones.
struct Syncer {
    shared: Arc<Shared>,
    /// A write or sync of the log failed: records are refused until a checkpoint covers
    /// them and a retry succeeds.
    broken: bool,
}

impl Syncer {
    fn run(mut self, rx: mpsc::Receiver<SyncMsg>) {
        let mut batch = Vec::with_capacity(SYNC_BATCH_MAX);
        while let Ok(first) = rx.recv() {
            batch.push(first);
            while batch.len() < SYNC_BATCH_MAX {
                match rx.try_recv() {
                    Ok(msg) => batch.push(msg),
                    Err(_) => break,
                }
            }
            self.write_and_sync(&batch);
            for msg in batch.drain(..) {
                self.answer(msg);
            }
        }
    }

    fn write_and_sync(&mut self, batch: &[SyncMsg]) {
        if self.broken {
            return;
        }
        let started = Instant::now();
        let mut wrote = false;
        let mut failed = None;
        for msg in batch {
            if let SyncMsg::Record { offset, bytes, .. } = msg {
                if let Err(e) = self.shared.wal.write_at(bytes, *offset) {
                    failed = Some(e);
                    break;
                }
                wrote = true;
            }
        }
        if failed.is_none() && wrote {
            failed = self.shared.wal.sync().err();
            metrics::histogram!(crate::telemetry::LOG_SYNC_SECONDS).record(started.elapsed().as_secs_f64());
        }
        if let Some(e) = failed {
            tracing::error!(error = %e, log = %self.shared.wal.path().display(),
                "writing the redo log failed; answering 503 until a checkpoint covers it");
            metrics::counter!(crate::telemetry::LOG_FAILURES).increment(1);
            self.broken = true;
            self.shared.log_broken.store(true, Ordering::Release);
        }
    }

    fn answer(&mut self, msg: SyncMsg) {
        match msg {
            SyncMsg::Record {
                gen, seq_last, replies, ..
            } => {
                if self.broken {
                    for (tx, _) in replies {
                        let _ = tx.send(Err(StoreError::unavailable(
                            "the redo log could not be written; the outcome of this write is unknown",
                        )));
                    }
                    return;
                }
                self.settle(gen, seq_last);
                for (tx, result) in replies {
                    let _ = tx.send(result);
                }
            }
            SyncMsg::Durable { gen, seq_last, replies } => {
                self.settle(gen, seq_last);
                for (tx, result) in replies {
                    let _ = tx.send(result);
                }
            }
            SyncMsg::Retry => {
                if self.broken && self.shared.wal.write_header(false).is_ok() {
                    tracing::warn!("the redo log is writable again");
                    self.broken = false;
                    self.shared.log_broken.store(false, Ordering::Release);
                }
            }
            SyncMsg::Barrier(tx) => {
                let _ = tx.send(());
            }
        }
    }

    /// Everything up to `gen` is durable: readers may see it, long polls wake.
    fn settle(&self, gen: u64, seq_last: u64) {
        self.shared.settled.send_if_modified(|g| {
            let changed = *g < gen;
            *g = (*g).max(gen);
            changed
        });
        self.shared.seq_last.store(seq_last, Ordering::Release);
        self.shared.committed.send_if_modified(|seq| {
            let changed = *seq != seq_last;
            *seq = seq_last;
            changed
        });
    }
}
