//! Outbound webhooks (issue 13): a real receiver on loopback that checks every signature
//! with the Standard Webhooks algorithm written out here (not the daemon's code), records
//! what it accepted, and can be told to fail or to be slow.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::common::{run_bin, Binary, Client, Server};

/// Secrets of the tests (made for them; `stockd webhook new` makes real ones).
const SECRET_A: &str = "whsec_dGVzdC1zZWNyZXQtYS0wMTIzNDU2Nzg5YWJjZGVm";
const SECRET_B: &str = "whsec_dGVzdC1zZWNyZXQtYi0wMTIzNDU2Nzg5YWJjZGVm";
/// Longest a test waits for deliveries (a hang guard, not a performance assertion).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(20);
const RECEIVER_BODY_BYTES_MAX: usize = 1 << 20;

/// One request the receiver accepted (answered 2xx).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub body: Value,
    pub raw: Vec<u8>,
}

#[derive(Default)]
struct Book {
    accepted: Vec<Delivery>,
    /// Every attempt's webhook-id, accepted or not.
    attempts: Vec<String>,
    /// Requests whose signatures did not verify (must stay empty).
    bad: Vec<String>,
    /// Answer this status to the next `fail_next` requests.
    fail_next: usize,
    fail_status: u16,
    /// Answer each request only after this long.
    delay: Duration,
    /// Close every connection at once, answering nothing (an endpoint that is down).
    down: bool,
}

/// A webhook endpoint on 127.0.0.1 that verifies Standard Webhooks signatures.
pub struct Receiver {
    pub addr: SocketAddr,
    book: Arc<Mutex<Book>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    /// Listens on a fresh port, verifying with `secrets` (every one must sign).
    pub fn start(secrets: &[&str]) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let keys: Vec<Vec<u8>> = secrets.iter().map(|s| key_of(s)).collect();
        let book = Arc::new(Mutex::new(Book::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (k, b, st) = (keys, book.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::Acquire) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (k, b) = (k.clone(), b.clone());
                std::thread::spawn(move || serve(conn, &k, &b));
            }
        });
        Receiver { addr, book, stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    pub fn fail_next(&self, n: usize, status: u16) {
        let mut b = self.book.lock().expect("book");
        b.fail_next = n;
        b.fail_status = status;
    }

    pub fn set_down(&self, down: bool) {
        self.book.lock().expect("book").down = down;
    }

    pub fn set_delay(&self, delay: Duration) {
        self.book.lock().expect("book").delay = delay;
    }

    pub fn accepted(&self) -> Vec<Delivery> {
        let b = self.book.lock().expect("book");
        assert!(b.bad.is_empty(), "signatures that did not verify: {:?}", b.bad);
        b.accepted.clone()
    }

    pub fn attempts(&self) -> Vec<String> {
        self.book.lock().expect("book").attempts.clone()
    }

    /// Waits until `n` deliveries were accepted.
    pub fn wait_for(&self, n: usize) -> Vec<Delivery> {
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        loop {
            let got = self.accepted();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} deliveries after {DELIVERY_TIMEOUT:?}; attempts: {:?}",
                got.len(),
                self.attempts()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
    }
}

/// The HMAC key of a `whsec_` secret: base64 after the prefix.
fn key_of(secret: &str) -> Vec<u8> {
    let encoded = secret.strip_prefix("whsec_").expect("whsec_ prefix");
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64 secret")
}

/// Standard Webhooks: `v1,` + base64(HMAC-SHA256(key, id.timestamp.body)).
fn expected_signature(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("hmac key");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// Checks the headers of one request: every key's signature is among those sent, and the
/// timestamp is within 5 minutes of now. The webhook-id, or why it fails.
fn verify(headers: &[(String, String)], body: &[u8], keys: &[Vec<u8>]) -> Result<String, String> {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or(format!("no {name}"))
    };
    let (id, ts, sigs) = (get("webhook-id")?, get("webhook-timestamp")?, get("webhook-signature")?);
    let t: i64 = ts.parse().map_err(|_| format!("timestamp {ts}"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    if (now - t).abs() > 300 {
        return Err(format!("{id}: timestamp {t} is {}s off", now - t));
    }
    let sent: Vec<&str> = sigs.split(' ').collect();
    if sent.len() != keys.len() {
        return Err(format!("{id}: {} signatures for {} secrets", sent.len(), keys.len()));
    }
    for key in keys {
        let want = expected_signature(key, &id, &ts, body);
        if !sent.contains(&want.as_str()) {
            return Err(format!("{id}: no valid signature for one of the secrets"));
        }
    }
    if get("content-type")? != "application/json" {
        return Err(format!("{id}: content-type"));
    }
    Ok(id)
}

fn serve(conn: TcpStream, keys: &[Vec<u8>], book: &Mutex<Book>) {
    if book.lock().expect("book").down {
        let _ = conn.shutdown(std::net::Shutdown::Both);
        return;
    }
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
        .min(RECEIVER_BODY_BYTES_MAX);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let status = answer(&headers, &body, keys, book);
    let mut conn = conn;
    let _ = write!(
        conn,
        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
}

/// Records the request and decides the status.
fn answer(headers: &[(String, String)], body: &[u8], keys: &[Vec<u8>], book: &Mutex<Book>) -> u16 {
    let id = match verify(headers, body, keys) {
        Ok(id) => id,
        Err(why) => {
            book.lock().expect("book").bad.push(why);
            return 401;
        }
    };
    let delay = {
        let mut b = book.lock().expect("book");
        b.attempts.push(id.clone());
        if b.fail_next > 0 {
            b.fail_next -= 1;
            return b.fail_status;
        }
        b.delay
    };
    std::thread::sleep(delay);
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    book.lock().expect("book").accepted.push(Delivery {
        id,
        body: value,
        raw: body.to_vec(),
    });
    204
}

/// A `[[webhooks]]` entry with short retry pauses (tests wait for retries).
pub fn webhook_toml(id: &str, url: &str, secrets: &[&str], extra: &str) -> String {
    let secrets: Vec<String> = secrets.iter().map(|s| format!("{s:?}")).collect();
    format!(
        "[[webhooks]]\nid = {id:?}\nurl = {url:?}\nsecrets = [{}]\nbackoff_initial_ms = 20\nbackoff_max_ms = 200\n{extra}\n",
        secrets.join(", ")
    )
}

/// The value of `name`'s series for sink `erp` whose labels also hold `label`.
fn metric(text: &str, name: &str, label: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains("sink=\"erp\"") && l.contains(label))
        .unwrap_or_else(|| panic!("no {name} {label} in:\n{text}"));
    line.rsplit(' ').next().and_then(|v| v.parse().ok()).expect("a number")
}

fn seq_of(d: &Delivery) -> u64 {
    d.body["data"]["seq"].as_u64().expect("data.seq")
}

fn sink(c: &Client, id: &str) -> Value {
    let list = c.get("/admin/sinks").expect(200).data();
    list.as_array()
        .expect("a list")
        .iter()
        .find(|s| s["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no sink {id} in {list}"))
}

/// Waits until the sink has delivered everything (position = last seq).
fn wait_caught_up(c: &Client, id: &str) -> Value {
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    loop {
        let s = sink(c, id);
        if s["lag"] == 0 && s["state"] == "ok" {
            return s;
        }
        assert!(Instant::now() < deadline, "sink never caught up: {s}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn events_arrive_in_order_signed_with_both_secrets_during_rotation() {
    let rx = Receiver::start(&[SECRET_A, SECRET_B]);
    let s = Server::start(&webhook_toml("erp", &rx.url(), &[SECRET_A, SECRET_B], ""));
    s.warehouse("w2");
    s.product("p1");
    for i in 0..10 {
        s.movement("p1", "default", "in", i + 1);
    }
    let t = s.post(
        "/api/inventory/movements",
        json!({"product_id": "p1", "movement_type": "transfer", "quantity": 2, "to_warehouse_id": "w2"}),
    );
    t.expect(201);
    let last = s.journal_len();
    let got = rx.wait_for(last as usize);
    let seqs: Vec<u64> = got.iter().map(seq_of).collect();
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>(), "every seq once, in order");
    for d in &got {
        let seq = seq_of(d);
        assert_eq!(d.id, format!("msg_{seq}"));
        assert_eq!(d.body["type"], "movement.created");
        assert!(d.body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert_eq!(d.body["data"]["movement"]["id"], format!("mov_{seq}"));
        let level = &d.body["data"]["level"];
        assert_eq!(
            level["quantity_on_hand"], d.body["data"]["movement"]["balance_after"],
            "the level as the movement left it"
        );
    }
    let one = s.get("/api/inventory/movements/mov_3").expect(200).data();
    assert_eq!(got[2].body["data"]["movement"]["balance_after"], one["balance_after"]);
    let status = wait_caught_up(&s, "erp");
    assert_eq!(status["kind"], "webhook");
    assert_eq!(status["position"], last);
    assert_eq!(status["target"], rx.url());
    let metrics = s.get("/metrics").expect(200).body.clone();
    assert!(metric(&metrics, "stockd_sink_deliveries_total", "outcome=\"ok\"") >= last as f64);
    assert_eq!(metric(&metrics, "stockd_sink_lag", ""), 0.0);
}

#[test]
fn a_receiver_that_is_down_gets_everything_in_order_when_it_is_back() {
    // Down: every connection is closed before an answer.
    let rx = Receiver::start(&[SECRET_A]);
    rx.set_down(true);
    let s = Server::start(&webhook_toml("erp", &rx.url(), &[SECRET_A], ""));
    s.product("p1");
    for _ in 0..5 {
        s.movement("p1", "default", "in", 1);
    }
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    let failing = loop {
        let st = sink(&s, "erp");
        if st["attempts"].as_u64().unwrap_or(0) >= 2 {
            break st;
        }
        assert!(Instant::now() < deadline, "no retries: {st}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(failing["state"], "retrying");
    assert!(
        failing["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{failing}"
    );
    assert!(failing["last_attempt_at"].is_string());
    assert_eq!(failing["position"], 0);
    assert_eq!(failing["lag"], 5);
    // Back, but answering 503 to the first three attempts.
    rx.fail_next(3, 503);
    rx.set_down(false);
    for _ in 0..5 {
        s.movement("p1", "default", "in", 1);
    }
    let got = rx.wait_for(10);
    assert_eq!(got.iter().map(seq_of).collect::<Vec<_>>(), (1..=10).collect::<Vec<_>>());
    let attempts = rx.attempts();
    assert_eq!(
        &attempts[..4],
        ["msg_1"; 4],
        "a failed event is retried with the same id"
    );
    wait_caught_up(&s, "erp");
    let metrics = s.get("/metrics").expect(200).body.clone();
    assert!(metric(&metrics, "stockd_sink_deliveries_total", "outcome=\"failed\"") >= 5.0);
}

#[test]
fn pause_resume_and_position_replay_or_skip() {
    let rx = Receiver::start(&[SECRET_A]);
    let s = Server::start(&webhook_toml("erp", &rx.url(), &[SECRET_A], ""));
    s.product("p1");
    s.movement("p1", "default", "in", 1);
    rx.wait_for(1);
    let paused = s.post("/admin/sinks/erp/pause", json!({})).expect(200).data();
    assert_eq!(paused["state"], "paused");
    for _ in 0..3 {
        s.movement("p1", "default", "in", 1);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rx.accepted().len(), 1, "nothing while paused");
    assert_eq!(sink(&s, "erp")["lag"], 3);
    let resumed = s.post("/admin/sinks/erp/resume", json!({})).expect(200).data();
    assert_eq!(resumed["state"], "ok");
    rx.wait_for(4);
    wait_caught_up(&s, "erp");
    // Replay from seq 3: 3 and 4 again, with the same ids and bodies.
    let moved = s
        .post("/admin/sinks/erp/position", json!({"seq": 2}))
        .expect(200)
        .data();
    assert_eq!(moved["position"], 2);
    let got = rx.wait_for(6);
    assert_eq!(got[4].id, "msg_3");
    assert_eq!(got[5].id, "msg_4");
    assert_eq!(got[4].raw, got[2].raw, "the same body on every delivery");
    wait_caught_up(&s, "erp");
    // Skip ahead: pause, write, skip to the end, resume: nothing of it is delivered.
    s.post("/admin/sinks/erp/pause", json!({})).expect(200);
    s.movement("p1", "default", "in", 1);
    let last = s.journal_len();
    s.post("/admin/sinks/erp/position", json!({"seq": last})).expect(200);
    s.post("/admin/sinks/erp/resume", json!({})).expect(200);
    s.movement("p1", "default", "in", 1);
    let got = rx.wait_for(7);
    assert_eq!(got[6].id, format!("msg_{}", last + 1), "the skipped entry is not sent");
    // Refusals.
    s.post("/admin/sinks/erp/position", json!({"seq": last + 100}))
        .expect_error(422, "invalid_field");
    s.post("/admin/sinks/erp/position", json!({"seq": -1}))
        .expect_error(422, "invalid_field");
    s.post("/admin/sinks/erp/position", json!({"sequence": 1}))
        .expect_error(422, "invalid_field");
    s.post("/admin/sinks/nope/pause", json!({}))
        .expect_error(404, "sink_not_found");
    s.post("/admin/sinks/nope/position", json!({"seq": 0}))
        .expect_error(404, "sink_not_found");
}

#[test]
fn pause_and_position_survive_a_restart() {
    let rx = Receiver::start(&[SECRET_A]);
    let mut s = Server::start(&webhook_toml("erp", &rx.url(), &[SECRET_A], ""));
    s.product("p1");
    s.movement("p1", "default", "in", 1);
    rx.wait_for(1);
    wait_caught_up(&s, "erp");
    s.post("/admin/sinks/erp/pause", json!({})).expect(200);
    s.movement("p1", "default", "in", 1);
    s.stop();
    let toml = crate::common::test_config(&webhook_toml("erp", &rx.url(), &[SECRET_A], ""), &s.data);
    let config = stockd::config::Config::parse(&toml).expect("config");
    let (addr, handle, store, thread) = crate::common::start_in_process(config).expect("restart");
    let c = Client::new(addr, None);
    let st = sink(&c, "erp");
    assert_eq!(st["state"], "paused");
    assert_eq!(st["position"], 1);
    c.post("/admin/sinks/erp/resume", json!({})).expect(200);
    let got = rx.wait_for(2);
    assert_eq!(got[1].id, "msg_2");
    drop(handle.stop(true));
    let _ = thread.join();
    store.shutdown();
}

#[test]
fn filters_by_warehouse_and_event_type() {
    let all = Receiver::start(&[SECRET_A]);
    let w2 = Receiver::start(&[SECRET_A]);
    let alerts = Receiver::start(&[SECRET_A]);
    let toml = [
        webhook_toml("all", &all.url(), &[SECRET_A], ""),
        webhook_toml("w2", &w2.url(), &[SECRET_A], "warehouses = [\"w2\"]"),
        webhook_toml(
            "alerts",
            &alerts.url(),
            &[SECRET_A],
            "events = [\"level.out_of_stock\"]",
        ),
    ]
    .concat();
    let s = Server::start(&toml);
    s.warehouse("w2");
    s.product("p1");
    s.movement("p1", "default", "in", 5); // 1
    s.movement("p1", "w2", "in", 5); // 2
    s.movement("p1", "default", "out", 5); // 3: default out of stock
    s.movement("p1", "w2", "out", 1); // 4
    let got = all.wait_for(5);
    let ids: Vec<&str> = got.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "msg_1",
            "msg_2",
            "msg_3_movement.created",
            "msg_3_level.out_of_stock",
            "msg_4"
        ]
    );
    let got = w2.wait_for(2);
    assert_eq!(got.iter().map(seq_of).collect::<Vec<_>>(), [2, 4]);
    let got = alerts.wait_for(1);
    assert_eq!(got[0].id, "msg_3_level.out_of_stock");
    assert_eq!(got[0].body["type"], "level.out_of_stock");
    assert_eq!(got[0].body["data"]["level"]["quantity_available"], 0);
    for id in ["all", "w2", "alerts"] {
        wait_caught_up(&s, id);
    }
    assert_eq!(w2.accepted().len(), 2, "nothing of other warehouses");
    assert_eq!(alerts.accepted().len(), 1, "nothing of other types");
}

#[test]
fn low_and_out_of_stock_fire_once_per_crossing() {
    let rx = Receiver::start(&[SECRET_A]);
    let s = Server::start(&webhook_toml(
        "alerts",
        &rx.url(),
        &[SECRET_A],
        "events = [\"level.low_stock\", \"level.out_of_stock\"]",
    ));
    s.product("p1");
    s.patch("/api/inventory/levels/p1/default", json!({"reorder_point": 5}))
        .expect(200);
    let steps: [(&str, i64); 8] = [
        ("in", 10),  // 10
        ("out", 3),  // 7
        ("out", 3),  // 4: low
        ("out", 1),  // 3: still low, nothing
        ("out", 3),  // 0: out of stock
        ("in", 10),  // 10
        ("out", 10), // 0: low and out, one movement
        ("in", 1),   // 1
    ];
    for (kind, q) in steps {
        s.movement("p1", "default", kind, q);
    }
    let got = rx.wait_for(4);
    wait_caught_up(&s, "alerts");
    let got_all = rx.accepted();
    assert_eq!(
        got_all.len(),
        4,
        "{:?}",
        got_all.iter().map(|d| &d.id).collect::<Vec<_>>()
    );
    let kinds: Vec<(&str, u64)> = got
        .iter()
        .map(|d| (d.body["type"].as_str().expect("type"), seq_of(d)))
        .collect();
    let base = s.journal_len() - 8; // the journal before the steps
    assert_eq!(
        kinds,
        [
            ("level.low_stock", base + 3),
            ("level.out_of_stock", base + 5),
            ("level.low_stock", base + 7),
            ("level.out_of_stock", base + 7),
        ]
    );
    assert_eq!(got[0].body["data"]["level"]["quantity_available"], 4);
    assert_eq!(got[0].body["data"]["level"]["reorder_point"], 5);
}

#[test]
fn an_expired_reservation_is_an_event() {
    let rx = Receiver::start(&[SECRET_A]);
    let s = Server::start(&webhook_toml(
        "r",
        &rx.url(),
        &[SECRET_A],
        "events = [\"reservation.expired\"]",
    ));
    s.product("p1");
    s.movement("p1", "default", "in", 5);
    let r = s
        .post(
            "/api/inventory/reservations",
            json!({"product_id": "p1", "warehouse_id": "default", "quantity": 2, "ttl_seconds": 1}),
        )
        .expect(201)
        .data();
    let got = rx.wait_for(1);
    assert_eq!(got[0].body["type"], "reservation.expired");
    assert_eq!(got[0].body["data"]["reservation_id"], r["id"]);
    assert!(got[0].id.ends_with("_reservation.expired"), "{}", got[0].id);
}

#[test]
fn kill_9_mid_delivery_loses_nothing_and_repeats_with_the_same_id() {
    let rx = Receiver::start(&[SECRET_A]);
    rx.set_delay(Duration::from_millis(30));
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("stockd.redb");
    let config = dir.path().join("stockd.toml");
    std::fs::write(&config, webhook_toml("erp", &rx.url(), &[SECRET_A], "")).expect("config");
    let b = Binary::start_config(&data, &config);
    b.product("p1");
    const N: u64 = 40;
    for _ in 0..N {
        b.movement("p1", "default", "in", 1);
    }
    rx.wait_for(10);
    b.kill9();
    let b = Binary::start_config(&data, &config);
    rx.wait_for(N as usize);
    let st = wait_caught_up(&b, "erp");
    assert_eq!(st["position"], N);
    let got_all = rx.accepted();
    let seqs: Vec<u64> = got_all.iter().map(seq_of).collect();
    for seq in 1..=N {
        assert!(seqs.contains(&seq), "seq {seq} never delivered: {seqs:?}");
    }
    // In order, except that the restart starts again at the recorded position (which
    // may repeat what the kill interrupted).
    let restarts = seqs.windows(2).filter(|w| w[1] <= w[0]).count();
    assert!(restarts <= 1, "out of order more than once: {seqs:?}");
    for d in &got_all {
        let first = got_all.iter().find(|e| e.id == d.id).expect("seen");
        assert_eq!(first.raw, d.raw, "a repeated event has the same body");
        assert_eq!(d.id, format!("msg_{}", seq_of(d)));
    }
    drop(b);
}

#[test]
fn bad_webhook_config_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        ("id = \"Bad Id\"", "webhooks[0].id"),
        ("url = \"ftp://x/\"", "webhooks[0].url"),
        ("secrets = [\"not-whsec\"]", "webhooks[0].secrets[0]"),
        ("secrets = [\"whsec_c2hvcnQ=\"]", "webhooks[0].secrets[0]"),
        ("events = [\"movement.deleted\"]", "webhooks[0].events"),
    ];
    for (i, (line, key)) in cases.iter().enumerate() {
        let mut fields = vec![
            "id = \"erp\"".to_string(),
            "url = \"http://127.0.0.1:9/\"".to_string(),
            format!("secrets = [{SECRET_A:?}]"),
        ];
        let name = line.split(' ').next().expect("name");
        fields.retain(|f| !f.starts_with(name));
        fields.push(line.to_string());
        let path = dir.path().join(format!("c{i}.toml"));
        std::fs::write(&path, format!("[[webhooks]]\n{}\n", fields.join("\n"))).expect("write");
        let out = run_bin(
            &["serve".as_ref(), "--config".as_ref(), path.as_os_str()],
            Duration::from_secs(30),
        );
        assert_eq!(out.code, Some(2), "{line}: {}", out.stderr);
        assert!(out.stderr.contains(key), "{line}: {}", out.stderr);
        assert!(
            !out.stderr.contains("dGVzdC1zZWNyZXQ"),
            "no secret echoed: {}",
            out.stderr
        );
    }
    let path = dir.path().join("dup.toml");
    std::fs::write(
        &path,
        [
            webhook_toml("erp", "http://127.0.0.1:9/", &[SECRET_A], ""),
            webhook_toml("erp", "http://127.0.0.1:9/", &[SECRET_A], ""),
        ]
        .concat(),
    )
    .expect("write");
    let out = run_bin(
        &["serve".as_ref(), "--config".as_ref(), path.as_os_str()],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("webhooks[1].id"), "{}", out.stderr);
}

#[test]
fn webhook_new_prints_a_secret_and_config_lines_that_work() {
    let rx_url = "https://erp.example.com/hooks/stock";
    let out = run_bin(
        &[
            "webhook".as_ref(),
            "new".as_ref(),
            "--id".as_ref(),
            "erp".as_ref(),
            "--url".as_ref(),
            rx_url.as_ref(),
        ],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let secret = out
        .stderr
        .lines()
        .find(|l| l.starts_with("whsec_"))
        .expect("the secret on stderr");
    assert_eq!(key_of(secret).len(), 32);
    assert!(out.stdout.contains(secret), "the config lines hold it");
    let config = stockd::config::Config::parse(&out.stdout).expect("the lines parse");
    assert_eq!(config.webhooks[0].id, "erp");
    assert_eq!(config.webhooks[0].url, rx_url);
    let bad = run_bin(
        &[
            "webhook".as_ref(),
            "new".as_ref(),
            "--id".as_ref(),
            "erp".as_ref(),
            "--url".as_ref(),
            "ftp://x".as_ref(),
        ],
        Duration::from_secs(30),
    );
    assert_eq!(bad.code, Some(2));
}

#[test]
fn sinks_need_the_admin_scope() {
    let admin = "tok-admin-sinks-0123456789";
    let read = "tok-read-sinks-0123456789";
    let token = |name: &str, t: &str, scope: &str| {
        format!(
            "[[tokens]]\nname = {name:?}\nsha256 = \"{}\"\nscopes = [{scope:?}]\n",
            stockd::auth::sha256_hex(t.as_bytes())
        )
    };
    let toml = [
        token("admin", admin, "admin"),
        token("reader", read, "inventory:write"),
        webhook_toml("erp", "http://127.0.0.1:9/", &[SECRET_A], ""),
    ]
    .concat();
    let s = Server::start_with_token(&toml, Some(admin));
    s.get("/admin/sinks").expect(200);
    s.get_as(Some(read), "/admin/sinks").expect_error(403, "forbidden");
    s.post_as(Some(read), "/admin/sinks/erp/pause", json!({}))
        .expect_error(403, "forbidden");
    s.get_as(None, "/admin/sinks").expect_error(401, "unauthenticated");
}

#[test]
fn a_clean_stop_records_the_position_so_a_restart_repeats_at_most_the_event_in_flight() {
    let rx = Receiver::start(&[SECRET_A]);
    rx.set_delay(Duration::from_millis(30));
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("stockd.redb");
    let config = dir.path().join("stockd.toml");
    std::fs::write(&config, webhook_toml("erp", &rx.url(), &[SECRET_A], "")).expect("config");
    let b = Binary::start_config(&data, &config);
    b.product("p1");
    const N: u64 = 30;
    for _ in 0..N {
        b.movement("p1", "default", "in", 1);
    }
    rx.wait_for(10);
    let status = b.terminate();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let before = rx.accepted().len();
    assert!((before as u64) < N, "the stop came mid-delivery");
    let b = Binary::start_config(&data, &config);
    rx.wait_for(N as usize);
    wait_caught_up(&b, "erp");
    let total = rx.accepted().len() as u64;
    assert!(total <= N + 1, "{total} deliveries of {N} events");
}

#[test]
fn a_failed_attempt_is_logged_with_sink_seq_and_status_but_no_secret_or_body() {
    let rx = Receiver::start(&[SECRET_A]);
    rx.fail_next(2, 500);
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("stockd.redb");
    let config = dir.path().join("stockd.toml");
    std::fs::write(&config, webhook_toml("erp", &rx.url(), &[SECRET_A], "")).expect("config");
    let b = Binary::start_config(&data, &config);
    b.product("p1");
    b.post(
        "/api/inventory/movements",
        json!({"product_id": "p1", "movement_type": "in", "quantity": 1, "notes": "note-in-the-body"}),
    )
    .expect(201);
    rx.wait_for(1);
    let log = b.stderr();
    let failed: Vec<&str> = log.lines().filter(|l| l.contains("delivery failed")).collect();
    assert_eq!(failed.len(), 2, "{log}");
    for line in failed {
        for part in ["sink=erp", "seq=1", "event=msg_1", "status=500", "attempts="] {
            assert!(line.contains(part), "{part} missing: {line}");
        }
    }
    assert!(!log.contains("dGVzdC1zZWNyZXQ"), "no secret in the log: {log}");
    assert!(!log.contains("note-in-the-body"), "no body in the log: {log}");
}

/// Waits until the sink has failed at least once; its `last_error`.
fn first_error(c: &Client, id: &str) -> String {
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    loop {
        let s = sink(c, id);
        if let Some(e) = s["last_error"].as_str() {
            return e.to_string();
        }
        assert!(Instant::now() < deadline, "no attempt failed: {s}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn https_endpoints_are_verified_against_the_system_roots() {
    // The endpoint: a stockd serving HTTPS with a self-signed certificate for 127.0.0.1 (it
    // answers a POST /hooks with 404: enough to tell a handshake that passed).
    let dir = tempfile::tempdir().expect("temp dir");
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("rcgen");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).expect("cert");
    std::fs::write(&key, generated.signing_key.serialize_pem()).expect("key");
    let tls = format!("[server.tls]\ncert_file = {cert:?}\nkey_file = {key:?}\n");
    let endpoint = Server::start(&tls);
    let url = format!("https://{}/hooks", endpoint.client.addr);
    let config = dir.path().join("stockd.toml");
    std::fs::write(&config, webhook_toml("erp", &url, &[SECRET_A], "")).expect("config");
    let args = |data: &std::path::Path| -> Vec<std::ffi::OsString> {
        ["serve", "--listen", "127.0.0.1:0", "--config"]
            .iter()
            .map(Into::into)
            .chain([config.clone().into_os_string(), "--data".into(), data.into()])
            .collect()
    };
    let run = |name: &str, envs: &[(&str, &std::ffi::OsStr)]| {
        let data = dir.path().join(name);
        let args = args(&data);
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let b = Binary::start_args(&refs, &data, envs);
        b.product("p1");
        b.movement("p1", "default", "in", 1);
        let error = first_error(&b, "erp");
        drop(b);
        error
    };
    // Not among the system's roots: the handshake fails, nothing is sent.
    let untrusted = run("a.redb", &[]);
    assert!(untrusted.to_lowercase().contains("certificate"), "{untrusted}");
    // The same certificate as the only root (SSL_CERT_FILE): the request goes through.
    let trusted = run("b.redb", &[("SSL_CERT_FILE", cert.as_os_str())]);
    assert!(trusted.contains("404"), "{trusted}");
}
