//! The redo log through the real binary: a crash leaves acknowledged writes in the log and
//! the next start applies them; a damaged record before the tail stops the start with a
//! message naming the file and offset, and changes nothing; offline commands apply the log
//! first; a clean stop leaves a data file that is complete alone.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::common::{run_bin, verify, Binary};

/// Movements written before the crash.
const MOVEMENTS: i64 = 40;
/// A checkpoint interval no test run reaches: everything after the start stays in the log.
const NO_CHECKPOINT_MS: &str = "3600000";

/// The record layout of src/store/wal.rs, restated independently.
const HEADER_BYTES: usize = 4096;
const RECORD_MAGIC: [u8; 4] = 0x5244_4f57u32.to_le_bytes();
const RECORD_HEADER_BYTES: usize = 24;

fn wal_of(data: &Path) -> PathBuf {
    let mut p = data.as_os_str().to_os_string();
    p.push(".wal");
    PathBuf::from(p)
}

fn digest(path: &Path) -> [u8; 32] {
    Sha256::digest(std::fs::read(path).expect("read file")).into()
}

/// Offsets of the log's records in order (gens increasing from the first one).
fn record_offsets(log: &[u8]) -> Vec<(usize, u64, usize)> {
    let mut out = Vec::new();
    let mut at = HEADER_BYTES;
    let mut gen_next = None;
    while at + RECORD_HEADER_BYTES <= log.len() && log[at..at + 4] == RECORD_MAGIC {
        let len = u32::from_le_bytes(log[at + 4..at + 8].try_into().expect("len")) as usize;
        let gen = u64::from_le_bytes(log[at + 8..at + 16].try_into().expect("gen"));
        if gen_next.is_some_and(|g| g != gen) {
            break;
        }
        gen_next = Some(gen + 1);
        out.push((at, gen, len));
        let size = RECORD_HEADER_BYTES + len;
        at += size.div_ceil(8) * 8;
    }
    out
}

/// `stockd serve` on `data`, which must refuse to start (exit 1).
fn serve_refused(data: &Path) -> crate::common::Output {
    let out = run_bin(
        &[
            "serve".as_ref(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--data".as_ref(),
            data.as_os_str(),
        ],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(1), "stderr:\n{}", out.stderr);
    out
}

/// A daemon on `data` that makes no checkpoint after its start.
fn start_without_checkpoints(data: &Path) -> Binary {
    let config = data.with_extension("toml");
    std::fs::write(
        &config,
        format!("[storage]\ncheckpoint_interval_ms = {NO_CHECKPOINT_MS}\n"),
    )
    .expect("config");
    Binary::start_config(data, &config)
}

/// Starts the daemon with no checkpoint after its start, writes `MOVEMENTS` single
/// movements (each acknowledged), and kills it with SIGKILL.
fn crash_with_a_full_log(data: &Path) {
    let daemon = start_without_checkpoints(data);
    daemon.product("p1");
    for _ in 0..MOVEMENTS {
        daemon.movement("p1", "default", "in", 1);
    }
    daemon.kill9();
}

#[test]
fn a_crash_leaves_acknowledged_writes_in_the_log_and_the_next_start_applies_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("log.redb");
    crash_with_a_full_log(&data);
    let log = std::fs::read(wal_of(&data)).expect("the log exists beside the data file");
    assert!(
        record_offsets(&log).len() as i64 > MOVEMENTS,
        "each acknowledged write is a record in the log"
    );
    let daemon = Binary::start(&data);
    assert_eq!(daemon.on_hand("p1", "default"), MOVEMENTS);
    daemon.assert_verified();
}

#[test]
fn a_damaged_record_before_the_tail_stops_the_start_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("damaged.redb");
    crash_with_a_full_log(&data);
    let wal = wal_of(&data);
    let mut log = std::fs::read(&wal).expect("log");
    let records = record_offsets(&log);
    assert!(records.len() > 10, "{} records", records.len());
    let (offset, _, len) = records[records.len() / 2];
    let flip = offset + RECORD_HEADER_BYTES + len / 2;
    log[flip] ^= 0x20;
    std::fs::write(&wal, &log).expect("damage the log");
    let (data_before, wal_before) = (digest(&data), digest(&wal));

    let out = serve_refused(&data);
    assert!(
        out.stderr.contains(&wal.display().to_string()) && out.stderr.contains(&format!("offset {offset}")),
        "the message names the log and the offset {offset}:\n{}",
        out.stderr
    );
    assert_eq!(digest(&data), data_before, "the data file was changed");
    assert_eq!(digest(&wal), wal_before, "the log was changed");
    // Offline commands refuse it too, and change nothing.
    let out = verify(&data);
    assert_eq!(
        out.code,
        Some(1),
        "verify on a damaged log:\n{}{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(digest(&data), data_before, "verify changed the data file");

    // Mended, the log applies and nothing acknowledged is lost.
    log[flip] ^= 0x20;
    std::fs::write(&wal, &log).expect("mend the log");
    let daemon = Binary::start(&data);
    assert_eq!(daemon.on_hand("p1", "default"), MOVEMENTS);
}

#[test]
fn verify_and_export_apply_the_log_first() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("offline.redb");
    crash_with_a_full_log(&data);
    let out = verify(&data);
    assert_eq!(out.code, Some(0), "verify:\n{}{}", out.stdout, out.stderr);
    let out = run_bin(
        &[
            "export".as_ref(),
            "--data".as_ref(),
            data.as_os_str(),
            "--kind".as_ref(),
            "levels".as_ref(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(0), "export:\n{}", out.stderr);
    assert!(
        out.stdout.contains(&MOVEMENTS.to_string()),
        "the export shows the logged movements:\n{}",
        out.stdout
    );
}

#[test]
fn after_a_clean_stop_the_data_file_alone_is_complete() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("clean.redb");
    let daemon = start_without_checkpoints(&data);
    daemon.product("p1");
    for _ in 0..MOVEMENTS {
        daemon.movement("p1", "default", "in", 1);
    }
    let status = daemon.terminate().expect("exit");
    assert!(status.success(), "{status:?}");
    // The data file copied alone (as a backup of a stopped daemon would be) is complete.
    let copy = dir.path().join("copy.redb");
    std::fs::copy(&data, &copy).expect("copy");
    let daemon = Binary::start(&copy);
    assert_eq!(daemon.on_hand("p1", "default"), MOVEMENTS);
    drop(daemon);
    // A clean log of another data file left beside this one is replaced, not applied.
    let other = dir.path().join("other.redb");
    // Its own id is durable from its first start (its log, replaced below, does not matter).
    Binary::start(&other).kill9();
    let foreign = std::fs::read(wal_of(&data)).expect("the first file's log");
    std::fs::write(wal_of(&other), &foreign).expect("put it beside the other file");
    let daemon = Binary::start(&other);
    assert_eq!(daemon.journal_len(), 0, "nothing of the foreign log was applied");
    let log = std::fs::read(wal_of(&other)).expect("log");
    assert_ne!(log[16..32], foreign[16..32], "the log now names the other file");
}

#[test]
fn a_snapshot_restored_over_a_crashed_file_is_not_given_its_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("live.redb");
    let daemon = start_without_checkpoints(&data);
    daemon.product("p1");
    daemon.movement("p1", "default", "in", 5);
    let res = daemon.post("/admin/backup", serde_json::json!({}));
    res.expect(201);
    let snapshot = PathBuf::from(res.data()["file"].as_str().expect("file"));
    daemon.movement("p1", "default", "in", 7);
    daemon.kill9();

    // The operator restores the snapshot and leaves the crashed daemon's log beside it.
    std::fs::copy(&snapshot, &data).expect("restore");
    let before = digest(&data);
    let out = serve_refused(&data);
    assert!(out.stderr.contains("another data file"), "{}", out.stderr);
    assert_eq!(digest(&data), before, "the restored file was changed");
    // Moved away, the log is no longer in the way: the snapshot's state, exactly.
    std::fs::rename(wal_of(&data), dir.path().join("old.wal")).expect("move the log away");
    let daemon = Binary::start(&data);
    assert_eq!(daemon.on_hand("p1", "default"), 5);
}
