//! Operations: systemd readiness, SIGTERM with writes in flight, snapshot backups during
//! load, Idempotency-Key on native and dialect routes, files from a newer version, and a
//! real disk-full (a small tmpfs, when the tests run as root).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{run_bin, send, verify, Binary, Client, Request, Server};

fn movement(product: &str) -> Value {
    json!({"product_id": product, "movement_type": "in", "quantity": 1})
}

/// Writers POSTing `in 1` until `stop`, recording the id and balance of every 201.
fn writers(client: &Client, threads: usize, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<Vec<(String, i64)>>> {
    (0..threads)
        .map(|_| {
            let client = client.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let req = Request::new("POST", "/api/inventory/movements")
                        .header("Content-Type", "application/json")
                        .body(movement("p").to_string());
                    match send(client.addr, &req) {
                        Ok(r) if r.status == 201 => {
                            let d = r.json()["data"].clone();
                            acked.push((
                                d["id"].as_str().unwrap_or_default().to_string(),
                                d["balance_after"].as_i64().unwrap_or(-1),
                            ));
                        }
                        Ok(r) => assert!(
                            r.status == 503,
                            "a write is acknowledged or refused: {} {}",
                            r.status,
                            r.body
                        ),
                        Err(_) => {
                            // The daemon is going away: connection refused or reset.
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                }
                acked
            })
        })
        .collect()
}

#[test]
fn readiness_is_notified_and_sigterm_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("d.redb");
    let socket_path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).expect("bind notify socket");
    socket.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let bin = Binary::start_env(&data, &[("NOTIFY_SOCKET", socket_path.as_os_str())]);
    let mut buf = [0u8; 64];
    let n = socket.recv(&mut buf).expect("READY=1");
    assert_eq!(&buf[..n], b"READY=1");
    bin.client.product("p");

    let stop = Arc::new(AtomicBool::new(false));
    let handles = writers(&bin.client, 16, stop.clone());
    std::thread::sleep(Duration::from_millis(400));
    let status = bin.terminate().expect("stockd exits on SIGTERM");
    stop.store(true, Ordering::Relaxed);
    assert!(status.success(), "a clean exit: {status:?}");
    let n = socket.recv(&mut buf).expect("STOPPING=1");
    assert_eq!(&buf[..n], b"STOPPING=1");
    let acked: Vec<(String, i64)> = handles.into_iter().flat_map(|h| h.join().expect("writer")).collect();
    assert!(!acked.is_empty(), "some writes were acknowledged before the signal");

    let out = verify(&data);
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    let bin = Binary::start(&data);
    for (id, balance) in &acked {
        let r = bin.client.get(&format!("/api/inventory/movements/{id}"));
        r.expect(200);
        assert_eq!(r.json()["data"]["balance_after"], *balance, "{id}");
    }
    assert_eq!(bin.client.on_hand("p", "default"), acked.len() as i64);
    bin.kill9();
}

#[test]
fn snapshots_taken_during_load_open_and_verify() {
    let server = Server::open();
    server.product("p");
    let stop = Arc::new(AtomicBool::new(false));
    let handles = writers(&server.client, 16, stop.clone());
    let mut snapshots = Vec::new();
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(150));
        let r = server.post("/admin/backup", json!({}));
        r.expect(201);
        snapshots.push(r.json()["data"].clone());
    }
    stop.store(true, Ordering::Relaxed);
    let acked: usize = handles.into_iter().map(|h| h.join().expect("writer").len()).sum();
    assert!(acked > 0);
    for s in &snapshots {
        let file = Path::new(s["file"].as_str().expect("file"));
        assert_eq!(std::fs::metadata(file).map(|m| m.len()).ok(), s["bytes"].as_u64());
        let out = verify(file);
        assert_eq!(out.code, Some(0), "{}", out.stdout);
        assert!(out.stdout.contains(&format!("last seq {}", s["seq"])), "{}", out.stdout);
        // It opens as a data file, with the levels of its own journal.
        let bin = Binary::start(file);
        assert_eq!(bin.client.on_hand("p", "default"), s["seq"].as_i64().expect("seq"));
        bin.kill9();
    }
}

#[test]
fn stockd_backup_downloads_a_verified_copy() {
    let server = Server::open();
    server.product("p");
    server.stock("p", "default", 5);
    let out_file = server.dir.path().join("copy.redb");
    let url = format!("http://{}", server.client.addr);
    let out = run_bin(
        &[
            "backup".as_ref(),
            "--url".as_ref(),
            url.as_ref(),
            "--token".as_ref(),
            "unused".as_ref(),
            "--out".as_ref(),
            out_file.as_os_str(),
        ],
        Duration::from_secs(120),
    );
    assert_eq!(out.code, Some(0), "{} {}", out.stdout, out.stderr);
    assert_eq!(verify(&out_file).code, Some(0));
}

#[test]
fn idempotency_keys_on_native_and_dialect_routes() {
    let server = Server::open();
    server.product("p");
    server.stock("p", "default", 10);
    let post = |path: &str, key: &str, body: &Value| {
        let req = Request::new("POST", path)
            .header("Idempotency-Key", key)
            .header("Content-Type", "application/json")
            .body(body.to_string());
        send(server.client.addr, &req).expect("request")
    };
    // (route, body, the same body with another quantity, status)
    let cases = [
        (
            "/api/inventory/movements",
            json!({"product_id": "p", "movement_type": "out", "quantity": 1}),
            json!({"product_id": "p", "movement_type": "out", "quantity": 2}),
            201,
        ),
        (
            "/v2/products/inventory/movment",
            json!({"product_id": "p", "operation": "OUT", "quantity": 1, "comment": "c"}),
            json!({"product_id": "p", "operation": "OUT", "quantity": 2, "comment": "c"}),
            201,
        ),
        (
            "/com/inventories/adjustorset.json",
            json!({"inventory": {"type": "adjust", "line_items": [{"product_id": "p", "quantity": 2}]}}),
            json!({"inventory": {"type": "adjust", "line_items": [{"product_id": "p", "quantity": 3}]}}),
            201,
        ),
    ];
    for (i, (path, body, other, status)) in cases.iter().enumerate() {
        let key = format!("key-{i}");
        let before = server.journal_len();
        let first = post(path, &key, body);
        first.expect(*status);
        assert_eq!(first.header("idempotent-replayed"), None);
        let again = post(path, &key, body);
        again.expect(*status);
        assert_eq!(again.body, first.body, "{path}: the first answer again");
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(server.journal_len(), before + 1, "{path}: applied once");
        let reused = post(path, &key, other);
        assert_eq!(reused.status, 422, "{path}: {}", reused.body);
        assert!(
            reused.body.contains("idempotency_key_reused") || reused.body.contains("Idempotency"),
            "{}",
            reused.body
        );
    }
    // A refusal is stored too: the retry does not apply it once stock has arrived.
    let big = json!({"product_id": "p", "movement_type": "out", "quantity": 50});
    post("/api/inventory/movements", "big", &big).expect_error(409, "insufficient_stock");
    server.stock("p", "default", 100);
    post("/api/inventory/movements", "big", &big).expect_error(409, "insufficient_stock");
    // Concurrent requests with one key: applied once; each answer is the first one or 409.
    let before = server.journal_len();
    let answers: Arc<Mutex<Vec<(u16, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let client = server.client.clone();
            let answers = answers.clone();
            std::thread::spawn(move || {
                let req = Request::new("POST", "/api/inventory/movements")
                    .header("Idempotency-Key", "race")
                    .header("Content-Type", "application/json")
                    .body(movement("p").to_string());
                let r = send(client.addr, &req).expect("request");
                if let Ok(mut a) = answers.lock() {
                    a.push((r.status, r.body));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("racer");
    }
    assert_eq!(server.journal_len(), before + 1, "one key, one movement");
    let answers = answers.lock().map(|a| a.clone()).unwrap_or_default();
    let firsts: Vec<&String> = answers.iter().filter(|(s, _)| *s == 201).map(|(_, b)| b).collect();
    assert!(!firsts.is_empty());
    assert!(firsts.iter().all(|b| *b == firsts[0]), "every 201 is the same answer");
    for (s, b) in &answers {
        assert!(
            *s == 201 || (*s == 409 && b.contains("idempotency_key_in_flight")),
            "{s} {b}"
        );
    }
    server.get("/api/inventory/movements").expect(200);
    post("/api/inventory/movements", &"k".repeat(256), &movement("p")).expect_error(422, "invalid_field");
}

#[test]
fn a_file_from_a_newer_version_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("d.redb");
    let store = stockd::store::Store::open(&data, Default::default(), "default").expect("create");
    store.shutdown();
    drop(store);
    {
        let db = redb::Database::create(&data).expect("open");
        let txn = db.begin_write().expect("write");
        {
            let mut meta = txn.open_table(stockd::store::tables::META).expect("meta");
            meta.insert(stockd::store::tables::FORMAT_KEY, 99u64.to_le_bytes().as_slice())
                .expect("bump");
        }
        txn.commit().expect("commit");
    }
    let before = std::fs::read(&data).expect("read");
    let out = verify(&data);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("newer"), "{}", out.stderr);
    let serve = run_bin(
        &[
            "serve".as_ref(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--data".as_ref(),
            data.as_os_str(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(serve.code, Some(1), "{}", serve.stderr);
    assert!(serve.stderr.contains("newer"), "{}", serve.stderr);
    assert_eq!(std::fs::read(&data).expect("read"), before, "untouched");
}

/// Unmounts the test's tmpfs however the test ends.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn disk_full_answers_503_keeps_reads_and_resumes_when_space_returns() {
    let dir = tempfile::tempdir().expect("tmp");
    let mnt = dir.path().join("small");
    std::fs::create_dir_all(&mnt).expect("mkdir");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&mnt)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("skipping the real disk-full test: cannot mount a tmpfs here (not root?)");
        return;
    }
    let _guard = Mount(mnt.clone());
    let data = mnt.join("d.redb");
    // A small log (preallocated: 2 × 128 KiB), so the data file is what fills the disk.
    let config = dir.path().join("small.toml");
    std::fs::write(&config, "[storage]\ncheckpoint_log_bytes = 131072\n").expect("config");
    let bin = Binary::start_config(&data, &config);
    bin.client.product("p");
    let note = "x".repeat(3900);
    let post = |body: Value| {
        let req = Request::new("POST", "/api/inventory/movements")
            .header("Content-Type", "application/json")
            .body(body.to_string());
        send(bin.client.addr, &req).expect("an answer")
    };
    let get = |path: &str| send(bin.client.addr, &Request::new("GET", path)).expect("an answer");
    let mut acked = 0i64;
    let mut full = false;
    for _ in 0..5000 {
        let r = post(json!({"product_id": "p", "movement_type": "in", "quantity": 1, "notes": note}));
        match r.status {
            201 => acked += 1,
            503 => {
                assert_eq!(r.code(), "storage_unavailable", "{}", r.body);
                assert!(r.header("retry-after").is_some());
                full = true;
                break;
            }
            s => panic!("unexpected {s}: {}", r.body),
        }
    }
    assert!(full, "the 2 MiB tmpfs filled up");
    // While the data file cannot take the log's writes, a read answers 503 or exactly what
    // was acknowledged: never less, never anything half-written.
    for _ in 0..20 {
        let r = get("/api/inventory?product_id=p&warehouse_id=default");
        match r.status {
            200 => assert_eq!(r.json()["data"][0]["quantity_on_hand"].as_i64(), Some(acked)),
            503 => assert_eq!(r.code(), "storage_unavailable", "{}", r.body),
            s => panic!("a read while the disk is full answered {s}: {}", r.body),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Space returns: writes resume by themselves.
    let grown = std::process::Command::new("mount")
        .args(["-o", "remount,size=64m"])
        .arg(&mnt)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(grown, "remount");
    let mut resumed = false;
    for _ in 0..500 {
        let r = post(movement("p"));
        if r.status == 201 {
            resumed = true;
            break;
        }
        assert_eq!(r.status, 503, "{}", r.body);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(resumed, "writes resume once there is space");
    assert_eq!(bin.client.on_hand("p", "default"), acked + 1);
    get("/readyz").expect(200);
    bin.kill9();
    assert_eq!(verify(&data).code, Some(0));
}
