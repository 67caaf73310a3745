//! `kill -9` under write load loses no acknowledged movement; `stockd verify` checks the
//! file afterwards; foreign files are refused and left untouched.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;

use crate::common::{enc, run_bin, send, verify, Binary, Client, Request};

const ROUNDS: usize = 3;
const WRITERS: usize = 32;
/// The kill comes after at least this long under load and this many acknowledgements
/// (on a loaded machine a fixed sleep could end before the first answer), but never
/// later than `LOAD_MAX`.
const LOAD: Duration = Duration::from_millis(700);
const ACKS_BEFORE_KILL: usize = 64;
const LOAD_MAX: Duration = Duration::from_secs(30);

/// What a 201 told the client: the movement's id and the balance after it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ack {
    seq: u64,
    balance_after: i64,
}

/// `WRITERS` threads posting `in 1` until `stop`; returns every acknowledged movement.
/// Errors (the daemon is killed under them) end a writer; they are not acknowledgements.
fn load(client: &Client, stop: &AtomicBool, answered: &AtomicUsize) -> Vec<Ack> {
    let acks = Mutex::new(Vec::new());
    let body = json!({"product_id": "p1", "movement_type": "in", "quantity": 1}).to_string();
    std::thread::scope(|s| {
        for _ in 0..WRITERS {
            s.spawn(|| {
                let mut mine = Vec::new();
                while !stop.load(Ordering::Acquire) {
                    let req = Request::new("POST", "/api/inventory/movements").body(body.clone());
                    let Ok(res) = send(client.addr, &req) else { break };
                    // A request cut off by the kill is an I/O error above, never an answer.
                    assert_eq!(res.status, 201, "in 1 answered {}: {}", res.status, res.body);
                    let d = res.data();
                    let id = d["id"].as_str().expect("id");
                    assert_eq!(d["product_id"], "p1");
                    assert_eq!(d["quantity"], 1);
                    answered.fetch_add(1, Ordering::Relaxed);
                    mine.push(Ack {
                        seq: id.strip_prefix("mov_").and_then(|s| s.parse().ok()).expect("mov_<seq>"),
                        balance_after: d["balance_after"].as_i64().expect("balance_after"),
                    });
                }
                acks.lock().expect("lock").extend(mine);
            });
        }
    });
    acks.into_inner().expect("lock")
}

/// Every movement of the journal by seq, read with the cursor (newest first).
fn journal(client: &Client) -> BTreeMap<u64, serde_json::Value> {
    let rows = client.walk_cursor("/api/inventory/movements?limit=500", 10_000);
    let mut out = BTreeMap::new();
    for row in rows {
        let seq = row["seq"].as_u64().expect("seq");
        assert!(out.insert(seq, row).is_none(), "seq {seq} listed twice");
    }
    out
}

#[test]
fn kill_9_under_load_loses_no_acknowledged_movement() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The defaults: the kill lands between checkpoints, so the log holds what was
    // acknowledged since the last one.
    kill_9_rounds(&dir.path().join("crash.redb"), None);
}

/// With a checkpoint every millisecond and every 64 KiB of log, most groups are
/// checkpoints: the kill lands during durable commits of the data file (and the log's
/// restarts from its first slot), and still loses nothing.
#[test]
fn kill_9_during_checkpoints_loses_no_acknowledged_movement() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("stockd.toml");
    std::fs::write(
        &config,
        "[storage]\ncheckpoint_interval_ms = 1\ncheckpoint_log_bytes = 65536\n",
    )
    .expect("config");
    kill_9_rounds(&dir.path().join("crash.redb"), Some(&config));
}

fn kill_9_rounds(data: &std::path::Path, config: Option<&std::path::Path>) {
    let data = data.to_path_buf();
    let start = || match config {
        Some(c) => Binary::start_config(&data, c),
        None => Binary::start(&data),
    };
    let mut acked: Vec<Ack> = Vec::new();

    for round in 0..ROUNDS {
        let daemon = start();
        if round == 0 {
            daemon.product("p1");
        }
        let stop = AtomicBool::new(false);
        let client = daemon.client.clone();
        let answered = AtomicUsize::new(0);
        let round_acks = std::thread::scope(|s| {
            let loader = s.spawn(|| load(&client, &stop, &answered));
            let began = std::time::Instant::now();
            while (began.elapsed() < LOAD || answered.load(Ordering::Relaxed) < ACKS_BEFORE_KILL)
                && began.elapsed() < LOAD_MAX
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            // SIGKILL while the writers are still sending: whatever was acknowledged must survive.
            daemon.kill9();
            stop.store(true, Ordering::Release);
            loader.join().expect("load threads")
        });
        assert!(
            !round_acks.is_empty(),
            "round {round}: no movement was acknowledged under load"
        );
        eprintln!(
            "round {round}: {} movements acknowledged before the kill",
            round_acks.len()
        );
        acked.extend(round_acks);

        // `stockd verify` straight after the kill (it repairs what a crash leaves, as a
        // restart would) finds the file consistent.
        if round == 1 {
            let out = verify(&data);
            assert_eq!(
                out.code,
                Some(0),
                "verify after kill -9:\n{}\n{}",
                out.stdout,
                out.stderr
            );
        }

        // Restart on the same file: every acknowledged movement is there, unchanged.
        let daemon = start();
        let stored = journal(&daemon);
        for ack in &acked {
            let m = stored
                .get(&ack.seq)
                .unwrap_or_else(|| panic!("round {round}: acknowledged mov_{} is lost", ack.seq));
            assert_eq!(m["product_id"], "p1", "mov_{}", ack.seq);
            assert_eq!(m["movement_type"], "in", "mov_{}", ack.seq);
            assert_eq!(m["quantity"], 1, "mov_{}", ack.seq);
            assert_eq!(
                m["balance_after"], ack.balance_after,
                "mov_{} changed after the restart",
                ack.seq
            );
        }
        // By id too, for a sample of them (the first, the last and every 97th).
        let mut sample: Vec<&Ack> = acked.iter().step_by(97).collect();
        sample.extend(acked.iter().max_by_key(|a| a.seq));
        for ack in sample {
            let res = daemon.get(&format!("/api/inventory/movements/mov_{}", ack.seq));
            res.expect(200);
            let m = res.data();
            assert_eq!(m["product_id"], "p1");
            assert_eq!(m["quantity"], 1);
            assert_eq!(m["balance_after"], ack.balance_after);
        }
        // Each unit was acknowledged once: the balances after are distinct.
        let mut balances: Vec<i64> = acked.iter().map(|a| a.balance_after).collect();
        balances.sort_unstable();
        balances.dedup();
        assert_eq!(balances.len(), acked.len(), "two acknowledgements share a balance");
        let on_hand = daemon.on_hand("p1", "default");
        assert!(
            on_hand >= acked.len() as i64,
            "round {round}: on_hand {on_hand} < {} acknowledged movements",
            acked.len()
        );
        assert_eq!(
            on_hand,
            stored.len() as i64,
            "on_hand is the number of `in 1` in the journal"
        );
        assert_eq!(daemon.journal_len(), stored.len() as u64);
        daemon.kill9();

        let out = verify(&data);
        assert_eq!(
            out.code,
            Some(0),
            "round {round}: stockd verify failed:\nstdout: {}\nstderr: {}",
            out.stdout,
            out.stderr
        );
    }
}

#[test]
fn foreign_files_are_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("notes.txt");
    let content = b"This is not a stockd data file.\nIt is a shopping list: eggs, milk.\n".repeat(100);
    std::fs::write(&file, &content).expect("write the text file");

    let out = verify(&file);
    assert_eq!(
        out.code,
        Some(1),
        "verify of a text file:\nstdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    assert!(
        !out.stderr.trim().is_empty() || !out.stdout.trim().is_empty(),
        "verify says nothing"
    );
    assert_eq!(
        std::fs::read(&file).expect("read back"),
        content,
        "verify changed the file"
    );

    let out = run_bin(
        &[
            "serve".as_ref(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--data".as_ref(),
            file.as_os_str(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(
        out.code,
        Some(1),
        "serve on a text file:\nstdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stderr.contains("notes.txt"),
        "the message names the file: {}",
        out.stderr
    );
    assert!(!out.stdout.contains("listening"), "it must not serve: {}", out.stdout);
    assert_eq!(
        std::fs::read(&file).expect("read back"),
        content,
        "serve changed the file"
    );

    // verify of a missing file fails too, and does not create it
    let missing = dir.path().join("missing.redb");
    let out = verify(&missing);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(!missing.exists(), "verify created the file");

    // an empty file is not a stockd file either for verify
    let empty = dir.path().join("empty.redb");
    std::fs::write(&empty, b"").expect("write");
    let out = verify(&empty);
    assert_eq!(out.code, Some(1), "verify of an empty file: {}", out.stdout);
}

#[test]
fn restart_after_kill_keeps_levels_and_chain() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("restart.redb");
    let daemon = Binary::start(&data);
    daemon.product("p1");
    daemon.warehouse("w1");
    let first = daemon.stock("p1", "w1", 7);
    daemon.kill9();
    let daemon = Binary::start(&data);
    assert_eq!(daemon.on_hand("p1", "w1"), 7);
    let id = first["id"].as_str().expect("id");
    daemon.get(&format!("/api/inventory/movements/{}", enc(id))).expect(200);
    // the chain continues across the restart
    let second = daemon.stock("p1", "w1", 1);
    assert_eq!(second["balance_before"], 7);
    daemon.assert_verified();
    daemon.kill9();
    assert_eq!(verify(&data).code, Some(0));
}

#[test]
fn a_second_daemon_on_a_file_in_use_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("busy.redb");
    let daemon = Binary::start(&data);
    daemon.product("p1");
    let out = run_bin(
        &[
            "serve".as_ref(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--data".as_ref(),
            data.as_os_str(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(1), "a second daemon on the same file:\n{}", out.stderr);
    assert!(!out.stdout.contains("listening"), "{}", out.stdout);
    // The first one is unharmed.
    daemon.get("/api/products/p1").expect(200);
    daemon.stock("p1", "default", 2);
    daemon.kill9();
    assert_eq!(verify(&data).code, Some(0));
}

#[test]
fn a_redb_file_that_is_not_stockds_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("other.redb");
    {
        const OTHER: redb::TableDefinition<&str, &str> = redb::TableDefinition::new("other_app");
        let db = redb::Database::create(&file).expect("create a redb file");
        let txn = db.begin_write().expect("write txn");
        {
            let mut t = txn.open_table(OTHER).expect("table");
            t.insert("hello", "world").expect("insert");
        }
        txn.commit().expect("commit");
    }
    let content = std::fs::read(&file).expect("read");
    let out = verify(&file);
    assert_eq!(out.code, Some(1), "verify of a foreign redb file: {}", out.stdout);
    assert_eq!(std::fs::read(&file).expect("read"), content, "verify changed the file");
    let out = run_bin(
        &[
            "serve".as_ref(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--data".as_ref(),
            file.as_os_str(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(1), "serve on a foreign redb file:\n{}", out.stderr);
    assert!(
        out.stderr.contains("other.redb"),
        "the message names the file: {}",
        out.stderr
    );
    assert_eq!(std::fs::read(&file).expect("read"), content, "serve changed the file");
}

/// A stopped daemon's file with 3 movements on p1/w1 (seq 1..=3).
fn stopped_file(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let server = crate::common::Server::open();
    server.product("p1");
    server.warehouse("w1");
    server.stock("p1", "w1", 10);
    let res = server.post(
        "/api/inventory/movements",
        json!({"product_id": "p1", "warehouse_id": "w1", "movement_type": "out", "quantity": 3, "notes": "sold"}),
    );
    res.expect(201);
    server.stock("p1", "w1", 1);
    let path = dir.join(name);
    let mut server = server;
    server.stop(); // closes the file; the temp dir lives until `server` is dropped
    std::fs::copy(&server.data, &path).expect("copy the stopped daemon's file");
    assert_eq!(verify(&path).code, Some(0), "the untouched copy verifies");
    path
}

/// Rewrites one row of a table in a stopped daemon's file.
fn tamper<K: redb::Key + 'static>(
    path: &std::path::Path,
    table: redb::TableDefinition<K, &'static [u8]>,
    key: K::SelfType<'_>,
    change: impl FnOnce(&[u8]) -> Option<Vec<u8>>,
) {
    use redb::ReadableTable;
    let db = redb::Database::open(path).expect("open the copy");
    let txn = db.begin_write().expect("write txn");
    {
        let mut t = txn.open_table(table).expect("table");
        let old = t
            .get(&key)
            .expect("get")
            .map(|v| v.value().to_vec())
            .expect("the row exists");
        match change(&old) {
            Some(new) => {
                t.insert(&key, new.as_slice()).expect("insert");
            }
            None => {
                t.remove(&key).expect("remove");
            }
        }
    }
    txn.commit().expect("commit");
}

/// `stockd verify` of `path` exits 1 and its report contains `needle`.
fn verify_fails_naming(path: &std::path::Path, case: &str, needle: &str) {
    let out = verify(path);
    assert_eq!(out.code, Some(1), "{case}: {}", out.stdout);
    assert!(
        out.stdout.contains(needle),
        "{case}: the report names `{needle}`: {}",
        out.stdout
    );
}

#[test]
fn verify_detects_tampering() {
    use stockd::store::{codec, tables};
    let dir = tempfile::tempdir().expect("temp dir");

    // A level that no longer equals the fold of its journal.
    let path = stopped_file(dir.path(), "level.redb");
    tamper(&path, tables::LEVELS, ("p1", "w1"), |old| {
        let (mut level, chain) = codec::decode_level_row(old).expect("a level row");
        level.buckets.on_hand += 1;
        Some(codec::level_row(&level, chain))
    });
    verify_fails_naming(&path, "a changed level", "level p1/w1");

    // An edited journal entry breaks the hash chain.
    let path = stopped_file(dir.path(), "note.redb");
    tamper(&path, tables::JOURNAL, 2u64, |old| {
        let (mut m, prev) = codec::decode_journal_row(old).expect("a journal row");
        m.draft.note = Some("never sold".into());
        Some(codec::journal_row(&m, prev.expect("a back-pointer")))
    });
    verify_fails_naming(&path, "an edited note", "hash chain");

    // A removed journal entry is a gap.
    let path = stopped_file(dir.path(), "gap.redb");
    tamper(&path, tables::JOURNAL, 2u64, |_| None);
    verify_fails_naming(&path, "a removed movement", "gap");

    // A level row whose head lost its latest movement: its history would lack it.
    let path = stopped_file(dir.path(), "history.redb");
    tamper(&path, tables::LEVELS, ("p1", "w1"), |old| {
        let (level, mut chain) = codec::decode_level_row(old).expect("a level row");
        assert_eq!((chain.head, chain.moves), (3, 3), "the level's three movements");
        chain.head = 2;
        Some(codec::level_row(&level, chain))
    });
    verify_fails_naming(&path, "a history without its latest", "level p1/w1: its row says");

    // A journal row whose back-pointer skips a movement of its level.
    let path = stopped_file(dir.path(), "pointer.redb");
    tamper(&path, tables::JOURNAL, 3u64, |old| {
        let (m, prev) = codec::decode_journal_row(old).expect("a journal row");
        assert_eq!(prev, Some(2));
        Some(codec::journal_row(&m, 1))
    });
    verify_fails_naming(&path, "a pointer that skips", "seq 3: points back to Some(1)");

    // And the daemon's own check says the same of a live file.
    let path = stopped_file(dir.path(), "live.redb");
    tamper(&path, tables::LEVELS, ("p1", "w1"), |old| {
        let (mut level, chain) = codec::decode_level_row(old).expect("a level row");
        level.buckets.on_hand -= 1;
        Some(codec::level_row(&level, chain))
    });
    let daemon = Binary::start(&path);
    let res = daemon.get("/admin/verify");
    res.expect(200);
    assert_eq!(res.data()["ok"], false, "{}", res.body);
    assert!(res.data()["problem"].is_string(), "{}", res.body);
}
