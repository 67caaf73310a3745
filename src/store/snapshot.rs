//! Snapshot backups (DESIGN.md "Storage"): copying the live redb file while it commits is
//! not safe — pages are reused and both commit slots can change mid-copy — so a backup is
//! a new redb file written from one read transaction while writes go on: written beside
//! the target, fsync-ed, renamed into place, then verified. It is a plain data file that
//! `stockd serve --data` opens and `stockd verify` checks.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use redb::{Database, Durability, ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;

use super::tables::*;
use super::verify;

/// META key of a snapshot: the last seq it holds.
pub const SNAPSHOT_SEQ_KEY: &str = "snapshot_seq";
/// File names of snapshots: `stockd-<UTC time>-seq<N>.redb`.
pub const SNAPSHOT_PREFIX: &str = "stockd-";
pub const SNAPSHOT_SUFFIX: &str = ".redb";
/// A snapshot being written is `.<name>.tmp-<pid>` beside its target; one left by a crash
/// (kill -9 mid-backup) is removed by [`prepare_dir`] at the next start.
const TMP_MARK: &str = ".tmp-";
/// The file `prepare_dir` creates and removes to learn that the directory is writable.
const PROBE_NAME: &str = ".stockd-write-probe";

/// The end of the previous snapshot, in ms: taken under [`turn`], so only one snapshot
/// runs at a time in the process.
static LAST_SNAPSHOT_MS: Mutex<i64> = Mutex::new(i64::MIN);

/// The right to take one snapshot: while it is held no other snapshot runs (two at once
/// would race on the same temp file and prune each other's answers). Blocking: call it on
/// a thread that may wait, never on an async worker.
pub struct Turn {
    last_ms: MutexGuard<'static, i64>,
}

/// Waits for the previous snapshot to finish, then for the clock to pass the moment it
/// finished, so that every snapshot's name (its time, in ms) is later than the previous
/// one's: names never collide and name order stays age order, which `prune` relies on.
pub fn turn() -> Turn {
    // A snapshot that panicked leaves nothing half-done that the next one depends on.
    let last_ms = LAST_SNAPSHOT_MS.lock().unwrap_or_else(|p| p.into_inner());
    while crate::clock::now_ms() <= *last_ms {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Turn { last_ms }
}

impl Drop for Turn {
    fn drop(&mut self) {
        *self.last_ms = crate::clock::now_ms();
    }
}

/// Readies the backup directory at start (API.md: a backup dir the daemon cannot write
/// is a config error, not a 503 at backup time): creates it when missing, proves it
/// writable by creating and removing a probe file, and removes the temp files of
/// snapshots a crash interrupted. Returns the temp files removed.
pub fn prepare_dir(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let shown = dir.display();
    fs::create_dir_all(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotADirectory | std::io::ErrorKind::AlreadyExists => {
            format!("{shown}: cannot create the directory: a part of the path is a file ({e})")
        }
        _ => format!("{shown}: cannot create the directory: {e}"),
    })?;
    let probe = dir.join(PROBE_NAME);
    let _ = fs::remove_file(&probe);
    fs::File::create_new(&probe)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("{shown}: not writable by this user: {e}"))?;
    fs::remove_file(&probe).map_err(|e| format!("{shown}: cannot remove a file it created: {e}"))?;
    let stale: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("{shown}: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(is_tmp_name))
        .collect();
    for p in &stale {
        fs::remove_file(p).map_err(|e| format!("{}: cannot remove: {e}", p.display()))?;
    }
    Ok(stale)
}

/// The temp file a snapshot named `name` is written to before its rename.
fn tmp_name(name: &str) -> String {
    format!(".{name}{TMP_MARK}{}", std::process::id())
}

/// Whether `name` is one of [`tmp_name`]'s (of any process).
fn is_tmp_name(name: &str) -> bool {
    name.strip_prefix('.')
        .and_then(|rest| rest.split_once(TMP_MARK))
        .is_some_and(|(target, pid)| {
            target.starts_with(SNAPSHOT_PREFIX)
                && target.ends_with(SNAPSHOT_SUFFIX)
                && !pid.is_empty()
                && pid.bytes().all(|b| b.is_ascii_digit())
        })
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Snapshot {
    pub file: String,
    pub seq: u64,
    pub bytes: u64,
}

fn copy<K: redb::Key + 'static, V: redb::Value + 'static>(
    src: &ReadTransaction,
    dst: &WriteTransaction,
    def: TableDefinition<K, V>,
) -> Result<(), redb::Error> {
    let from = src.open_table(def)?;
    let mut to = dst.open_table(def)?;
    for row in from.iter()? {
        let (k, v) = row?;
        to.insert(k.value(), v.value())?;
    }
    Ok(())
}

fn last_seq(txn: &ReadTransaction) -> Result<u64, redb::Error> {
    let journal = txn.open_table(JOURNAL)?;
    let last = journal.last()?.map(|(k, _)| k.value()).unwrap_or(0);
    Ok(last)
}

/// Writes the state `src` sees into a new data file at `target` (atomically: a temp file
/// beside it, fsync, rename, fsync of the directory), then verifies it.
pub fn write(src: &ReadTransaction, target: &Path) -> Result<Snapshot, String> {
    let err = |e: &dyn std::fmt::Display| format!("snapshot {}: {e}", target.display());
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| err(&e))?;
    let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("snapshot");
    let tmp = dir.join(tmp_name(name));
    let _ = fs::remove_file(&tmp);
    let seq = last_seq(src).map_err(|e| err(&e))?;
    // A snapshot is a data file of its own: a redo log of the file it was taken from must
    // never be applied to it (say, a snapshot restored beside a crashed daemon's log).
    let file_id = super::new_file_id().map_err(|e| err(&e))?;
    let result = (|| -> Result<(), redb::Error> {
        let out = Database::builder().create(&tmp)?;
        let mut txn = out.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        macro_rules! copy_table {
            ($table:ident) => {
                copy(src, &txn, $table)?;
            };
        }
        all_tables!(copy_table);
        let mut meta = txn.open_table(META)?;
        meta.insert(SNAPSHOT_SEQ_KEY, seq.to_le_bytes().as_slice())?;
        meta.insert(FILE_ID_KEY, file_id.as_slice())?;
        drop(meta);
        txn.commit()?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(err(&e));
    }
    let sync = |p: &Path| fs::File::open(p).and_then(|f| f.sync_all());
    sync(&tmp).map_err(|e| err(&e))?;
    fs::rename(&tmp, target).map_err(|e| err(&e))?;
    sync(dir).map_err(|e| err(&e))?;
    let report = super::verify_file(target).map_err(|e| err(&e))?;
    if !report.ok || report.seq_last != seq {
        return Err(err(&format!("the written snapshot does not verify: {report}")));
    }
    let bytes = fs::metadata(target).map_err(|e| err(&e))?.len();
    Ok(Snapshot {
        file: target.display().to_string(),
        seq,
        bytes,
    })
}

/// The file name of a snapshot taken now of a journal ending at `seq`.
pub fn file_name(now_ms: i64, seq: u64) -> String {
    let stamp: String = crate::clock::rfc3339_ms(now_ms)
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    format!("{SNAPSHOT_PREFIX}{stamp}Z-seq{seq}{SNAPSHOT_SUFFIX}")
}

/// Deletes the oldest snapshots in `dir` beyond the newest `keep`.
pub fn prune(dir: &Path, keep: usize) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(SNAPSHOT_PREFIX) && n.ends_with(SNAPSHOT_SUFFIX))
        })
        .collect();
    // Names start with the UTC time: name order is age order.
    files.sort();
    let excess = files.len().saturating_sub(keep);
    let removed: Vec<PathBuf> = files.into_iter().take(excess).collect();
    for p in &removed {
        fs::remove_file(p).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(removed)
}

/// Verifies a snapshot like any data file.
pub fn check(path: &Path) -> Result<verify::Report, String> {
    super::verify_file(path).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised_and_nothing_else() {
        let name = file_name(1_700_000_000_000, 42);
        assert!(is_tmp_name(&tmp_name(&name)));
        assert!(is_tmp_name(".stockd-20260101T000000000Z-seq5.redb.tmp-999999"));
        for other in [
            name.as_str(),
            PROBE_NAME,
            ".stockd-x.redb.tmp-",
            ".stockd-x.redb.tmp-12a",
            ".other.redb.tmp-12",
            "stockd.redb.tmp-12",
        ] {
            assert!(!is_tmp_name(other), "{other}");
        }
    }

    #[test]
    fn turns_are_one_at_a_time_and_strictly_later() {
        let starts = std::sync::Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let starts = starts.clone();
                std::thread::spawn(move || {
                    let _turn = turn();
                    let at = crate::clock::now_ms();
                    starts.lock().unwrap_or_else(|p| p.into_inner()).push(at);
                })
            })
            .collect();
        for t in threads {
            let _ = t.join();
        }
        let mut starts = starts.lock().unwrap_or_else(|p| p.into_inner()).clone();
        starts.sort();
        starts.dedup();
        assert_eq!(starts.len(), 4, "two turns started in the same millisecond");
    }
}

/// Most snapshots `GET /admin/backups` lists (the directory holds `keep` of them; this only
/// bounds a directory someone filled by hand).
pub const LIST_MAX: usize = 1000;

/// A snapshot file of the backup directory.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listed {
    /// The file name (what `GET /admin/backups/{name}` takes).
    pub name: String,
    pub bytes: u64,
    /// Its modification time, RFC 3339 UTC.
    pub modified_at: String,
}

/// The snapshots in `dir`, newest first, at most [`LIST_MAX`].
pub fn list(dir: &Path) -> Result<Vec<Listed>, String> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with(SNAPSHOT_PREFIX) && name.ends_with(SNAPSHOT_SUFFIX)) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let modified_ms = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        out.push(Listed {
            name,
            bytes: meta.len(),
            modified_at: crate::clock::rfc3339_ms(modified_ms),
        });
    }
    // Names start with the UTC time: reverse name order is newest first.
    out.sort_by(|a, b| b.name.cmp(&a.name));
    out.truncate(LIST_MAX);
    Ok(out)
}
