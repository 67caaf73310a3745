//! Snapshot backups (DESIGN.md "Storage"): copying the live redb file while it commits is
//! not safe — pages are reused and both commit slots can change mid-copy — so a backup is
//! a new redb file written from one read transaction while writes go on: written beside
//! the target, fsync-ed, renamed into place, then verified. It is a plain data file that
//! `stockd serve --data` opens and `stockd verify` checks.

use std::fs;
use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;

use super::tables::*;
use super::verify;

/// META key of a snapshot: the last seq it holds.
pub const SNAPSHOT_SEQ_KEY: &str = "snapshot_seq";
/// File names of snapshots: `stockd-<UTC time>-seq<N>.redb`.
pub const SNAPSHOT_PREFIX: &str = "stockd-";
pub const SNAPSHOT_SUFFIX: &str = ".redb";

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
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let seq = last_seq(src).map_err(|e| err(&e))?;
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
        txn.open_table(META)?
            .insert(SNAPSHOT_SEQ_KEY, seq.to_le_bytes().as_slice())?;
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
