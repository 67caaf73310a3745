//! Opening a data file with its redo log: redb's last durable state, then the log's
//! complete records after it, applied again and checkpointed (DESIGN.md, "Write path").

use std::path::Path;

use redb::{Database, Durability, ReadableDatabase};

use super::redo::Applier;
use super::tables::*;
use super::wal::{self, Wal, WalError};

/// The gen redb's current state ends at (0 for a file that never had a log).
fn gen_of(db: &Database) -> Result<u64, String> {
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let meta = txn.open_table(META).map_err(|e| e.to_string())?;
    let gen = meta
        .get(GEN_KEY)
        .map_err(|e| e.to_string())?
        .and_then(|v| v.value().try_into().ok().map(u64::from_le_bytes))
        .unwrap_or(0);
    Ok(gen)
}

/// The data file's id, made (durably) the first time a file is opened by a version with
/// a log.
pub fn file_id(db: &Database) -> Result<[u8; 16], String> {
    {
        let txn = db.begin_read().map_err(|e| e.to_string())?;
        let meta = txn.open_table(META).map_err(|e| e.to_string())?;
        if let Some(v) = meta.get(FILE_ID_KEY).map_err(|e| e.to_string())? {
            if let Ok(id) = <[u8; 16]>::try_from(v.value()) {
                return Ok(id);
            }
        }
    }
    let id = new_file_id()?;
    let mut txn = db.begin_write().map_err(|e| e.to_string())?;
    txn.set_durability(Durability::Immediate).map_err(|e| e.to_string())?;
    txn.set_quick_repair(true);
    txn.open_table(META)
        .and_then(|mut meta| meta.insert(FILE_ID_KEY, id.as_slice()).map(|_| ()).map_err(Into::into))
        .map_err(|e| e.to_string())?;
    txn.commit().map_err(|e| e.to_string())?;
    Ok(id)
}

/// 16 random bytes from the OS.
pub fn new_file_id() -> Result<[u8; 16], String> {
    let mut id = [0u8; 16];
    getrandom::getrandom(&mut id).map_err(|e| e.to_string())?;
    Ok(id)
}

/// Why a data file and its log could not be brought together.
#[derive(Debug)]
pub enum RecoveryError {
    Log(WalError),
    Storage(String),
}

impl std::fmt::Display for RecoveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecoveryError::Log(e) => e.fmt(f),
            RecoveryError::Storage(m) => write!(f, "applying the redo log: {m}"),
        }
    }
}

/// Opens the log of the data file `data` (creating it), applies its records after redb's
/// durable state, and returns it ready for new records with the gen they continue.
/// A damaged log stops here with nothing changed.
pub fn open_log(data: &Path, db: &Database, capacity_bytes: u64) -> Result<(Wal, u64), RecoveryError> {
    let id = file_id(db).map_err(RecoveryError::Storage)?;
    let path = wal::path_for(data);
    let (wal, bytes) = Wal::open(&path, id, capacity_bytes).map_err(RecoveryError::Log)?;
    let gen = apply_log(db, &path, &bytes, 0)?;
    wal.make_room().map_err(RecoveryError::Log)?;
    wal.write_header(false).map_err(RecoveryError::Log)?;
    Ok((wal, gen))
}

/// Applies the log at `path` to a freshly reopened `db` (after a failed commit); the gen
/// written is at least `floor`, so gens stay increasing.
pub fn recover(db: &Database, path: &Path, floor: u64) -> Result<u64, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    apply_log(db, path, &bytes, floor).map_err(|e| e.to_string())
}

/// Applies the complete records of `bytes` after redb's gen in one durable commit.
fn apply_log(db: &Database, path: &Path, bytes: &[u8], floor: u64) -> Result<u64, RecoveryError> {
    let durable = gen_of(db).map_err(RecoveryError::Storage)?;
    let (records, _) = if bytes.is_empty() {
        (Vec::new(), wal::HEADER_BYTES)
    } else {
        wal::scan(path, bytes, durable).map_err(RecoveryError::Log)?
    };
    let last = records.last().map_or(durable, |r| r.gen);
    let gen = last.max(floor);
    if records.is_empty() && gen == durable {
        return Ok(durable);
    }
    let storage = |e: &dyn std::fmt::Display| RecoveryError::Storage(e.to_string());
    let mut txn = db.begin_write().map_err(|e| storage(&e))?;
    txn.set_durability(Durability::Immediate).map_err(|e| storage(&e))?;
    txn.set_quick_repair(true);
    {
        let mut applier = Applier::open(&txn).map_err(|e| storage(&e))?;
        for r in &records {
            applier
                .apply(&r.payload)
                .map_err(|e| storage(&format!("record of gen {} at offset {}: {e}", r.gen, r.offset)))?;
        }
        applier.set_gen(gen).map_err(|e| storage(&e))?;
    }
    txn.commit().map_err(|e| storage(&e))?;
    if !records.is_empty() {
        tracing::info!(records = records.len(), gen, log = %path.display(), "redo log applied");
    }
    Ok(gen)
}

/// What can be checked of a data file and its log before anything is opened for writing
/// (redb's open, and its crash repair, write to the data file): the log's structure, and —
/// when the data file opens read-only — that the log is this file's. Either failure stops
/// here with both files untouched. Returns the log's file id when it holds writes to apply
/// (`None`: no log, or a clean one, read no further than its header).
pub fn precheck(data: &Path) -> Result<Option<[u8; 16]>, super::OpenError> {
    let path = wal::path_for(data);
    let log = |e: WalError| super::OpenError::Log(e.to_string());
    let Some(log_id) = wal::precheck(&path).map_err(log)? else {
        return Ok(None);
    };
    let Ok(ro) = redb::ReadOnlyDatabase::open(data) else {
        return Ok(Some(log_id)); // needs repair, or not there yet: checked again after the open
    };
    let id = ro.begin_read().ok().and_then(|txn| {
        let meta = txn.open_table(META).ok()?;
        let v = meta.get(FILE_ID_KEY).ok()??;
        <[u8; 16]>::try_from(v.value()).ok()
    });
    match id {
        Some(id) if id != log_id => Err(log(WalError::Foreign(path))),
        _ => Ok(Some(log_id)),
    }
}

/// Brings a stopped daemon's data file up to date with its log (offline commands: verify,
/// export, import), then marks the log clean. A file without a log, or whose log holds
/// nothing new, is not written to.
pub fn settle_file(data: &Path) -> Result<(), super::OpenError> {
    let Some(id) = precheck(data)? else {
        return Ok(()); // no log, or a clean one: the data file is complete
    };
    let path = wal::path_for(data);
    let io = |e: String| super::OpenError::Io(data.to_path_buf(), e);
    let bytes = std::fs::read(&path).map_err(|e| io(format!("{}: {e}", path.display())))?;
    let db = super::open_existing(data)?;
    if file_id(&db).map_err(io)? != id {
        return Err(super::OpenError::Log(WalError::Foreign(path).to_string()));
    }
    apply_log(&db, &path, &bytes, 0).map_err(|e| super::OpenError::Log(e.to_string()))?;
    let (wal, _) = Wal::open(&path, id, 0).map_err(|e| io(e.to_string()))?;
    wal.write_header(true).map_err(|e| io(e.to_string()))?;
    Ok(())
}
