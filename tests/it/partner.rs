//! Seed 001 and HMAC partner signatures against the running daemon: the document's
//! examples, every 401 case (nonce replay also across a restart), rotation, legacy replay,
//! scopes and warehouses, and bad input that changes nothing.

use std::net::SocketAddr;
use std::path::Path;

use serde_json::{json, Value};
use stockd::auth::signature::{legacy_message, sign, v1_message};

use crate::common::{send, start_in_process, test_config, Request, Response};

const ADMIN: &str = "admin-token";
const UPDATE: &str = "/v1/partner/inventory/updatestocks";

fn config(partners: &str) -> String {
    format!(
        r#"
[[tokens]]
name = "admin"
sha256 = "{}"
scopes = ["admin"]
{partners}
"#,
        stockd::auth::sha256_hex(ADMIN.as_bytes())
    )
}

const PARTNERS: &str = r#"
[[partners]]
id = "mp"
secrets = ["new-secret-0123456789", "old-secret-0123456789"]
scopes = ["inventory:write"]

[[partners]]
id = "reader"
secrets = ["reader-secret-0123456789"]
scopes = ["inventory:read"]

[[partners]]
id = "outlet-only"
secrets = ["outlet-secret-0123456789"]
scopes = ["inventory:write"]
warehouses = ["outlet"]

[[partners]]
id = "old"
secrets = ["legacy-secret-0123456789"]
scopes = ["inventory:write"]
legacy_signature = true
"#;

/// The secrets of `PARTNERS` (at least 16 bytes: shorter ones are refused at start).
const MP_NEW: &str = "new-secret-0123456789";
const MP_OLD: &str = "old-secret-0123456789";
const READER: &str = "reader-secret-0123456789";
const OUTLET: &str = "outlet-secret-0123456789";
const LEGACY: &str = "legacy-secret-0123456789";

/// A daemon on a data file that outlives it, so a test can restart on the same file.
struct Daemon {
    addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
    store: stockd::store::Store,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    fn start(partners: &str, data: &Path) -> Daemon {
        let text = test_config(&config(partners), data);
        let cfg = stockd::config::Config::parse(&text).expect("config");
        let (addr, handle, store, thread) = start_in_process(cfg).unwrap_or_else(|e| panic!("start: {e}"));
        Daemon {
            addr,
            handle,
            store,
            thread: Some(thread),
        }
    }

    fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Response {
        let mut req = Request::new(method, path).bearer(Some(ADMIN));
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b.to_string());
        }
        send(self.addr, &req).expect("request")
    }

    /// A v1-signed request.
    fn signed(&self, partner: &str, secret: &str, method: &str, path: &str, body: &str, nonce: &str) -> Response {
        let ts = (stockd::clock::now_ms() / 1000).to_string();
        self.signed_at(partner, secret, method, path, body, nonce, &ts)
    }

    #[allow(clippy::too_many_arguments)]
    fn signed_at(
        &self,
        partner: &str,
        secret: &str,
        method: &str,
        path: &str,
        body: &str,
        nonce: &str,
        ts: &str,
    ) -> Response {
        let sig = sign(secret, v1_message(method, path, ts, nonce, body.as_bytes()).as_bytes());
        let req = Request::new(method, path)
            .header("partner-id", partner)
            .header("timestamp", ts)
            .header("nonce", nonce)
            .header("secret", &sig)
            .header("Content-Type", "application/json")
            .body(body.to_string());
        send(self.addr, &req).expect("request")
    }

    fn legacy(&self, partner: &str, secret: &str, path: &str, body: &str) -> Response {
        let sig = sign(secret, &legacy_message(path, body.as_bytes()));
        let req = Request::new("POST", path)
            .header("partner-id", partner)
            .header("secret", &sig)
            .body(body.to_string());
        send(self.addr, &req).expect("request")
    }

    fn level(&self, product: &str) -> Value {
        let r = self.admin(
            "GET",
            &format!("/api/inventory?product_id={product}&warehouse_id=default"),
            None,
        );
        r.expect(200);
        r.json()["data"][0].clone()
    }

    fn journal_len(&self) -> u64 {
        let r = self.admin("GET", "/api/inventory/movements?limit=1", None);
        r.json()["meta"]["total"].as_u64().expect("total")
    }

    fn seed(&self) {
        self.admin(
            "PUT",
            "/api/products/1031046355",
            Some(json!({"sku": "sku1", "name": "Widget"})),
        )
        .expect(201);
        self.admin("PUT", "/api/warehouses/outlet", Some(json!({"name": "Outlet"})))
            .expect(201);
    }

    fn stop(mut self) {
        drop(self.handle.stop(true));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.store.shutdown();
    }
}

/// The document's request body, verbatim.
const EXAMPLE: &str = r#" {
   "sku": "sku1",
   "sync_stock": false,
   "warehouse": "default",
   "available_stock": 100,
   "buffer_stock": 0,
   "channel_stock": [
     {
       "code": "bklp",
       "qty": 30
     },
     {
       "code": "blib",
       "qty": 20
     }
   ]
 }"#;

fn nonce(n: u32) -> String {
    format!("n{n}-{}", stockd::clock::now_ms())
}

#[test]
fn the_documents_update_and_history_examples() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = Daemon::start(PARTNERS, &dir.path().join("d.redb"));
    d.seed();
    let r = d.signed("mp", MP_NEW, "POST", UPDATE, EXAMPLE, &nonce(1));
    r.expect(200);
    let code = r.json()["transaction_code"]
        .as_str()
        .expect("transaction_code")
        .to_string();
    assert!(uuid::Uuid::parse_str(&code).is_ok(), "a UUID: {code}");
    let level = d.level("1031046355");
    assert_eq!(level["quantity_on_hand"], 100);
    assert_eq!(level["quantity_buffer"], 0);
    assert_eq!(level["channel_stock"], json!({"bklp": 30, "blib": 20}));

    // The document's history request, answered in the document's shape.
    let h = d.admin(
        "GET",
        "/v1/partner/inventory/history?updated_at=2021-02-05T15:04:05Z&offset=0&limit=10",
        None,
    );
    h.expect(200);
    let v = h.json();
    assert_eq!(v["total_record"], 1);
    assert_eq!((v["offset"].clone(), v["limit"].clone()), (json!(0), json!(10)));
    assert_eq!(v["message"], "");
    assert!(v["reference"].is_string());
    let row = &v["data"][0];
    assert_eq!(row["transaction_code"], code.as_str());
    assert_eq!(row["action_name"], "partner_update_stocks");
    assert_eq!(row["total_sku"], 1);
    assert!(row["id"].is_u64());
    let items = row["update_stock_history_item"].as_array().expect("items");
    let channels: Vec<(Value, Value)> = items.iter().map(|i| (i["channel"].clone(), i["qty"].clone())).collect();
    assert_eq!(channels, vec![(json!("bklp"), json!(30)), (json!("blib"), json!(20))]);
    for i in items {
        assert_eq!(i["sku"], "sku1");
        assert_eq!(i["success"], true);
        assert_eq!(i["variant_id"], json!(1031046355u64), "all-digit ids are JSON numbers");
        // As the document's example shows the default warehouse (issue 12).
        assert_eq!(i["warehouse_name"], "default");
        assert_eq!(i["warehouse_id"], 0);
    }
    // A later updated_at leaves it out.
    let later = d.admin(
        "GET",
        "/v1/partner/inventory/history?updated_at=2999-01-01T00:00:00Z",
        None,
    );
    assert_eq!(later.json()["total_record"], 0);

    // sync_stock as the document's string form, an array as one batch, buffer counted in.
    let body = r#"[{"sku":"sku1","sync_stock":"true","warehouse":"default","available_stock":40,"buffer_stock":5,"channel_stock":[]},
                   {"sku":"sku1","warehouse":"outlet","available_stock":3,"buffer_stock":0,"channel_stock":[{"code":"shpe","qty":3}]}]"#;
    d.signed("mp", MP_NEW, "POST", UPDATE, body, &nonce(2)).expect(200);
    let level = d.level("1031046355");
    assert_eq!(
        (level["quantity_on_hand"].clone(), level["quantity_buffer"].clone()),
        (json!(40), json!(5))
    );
    assert_eq!(level["quantity_available"], 35);
    let h = d
        .admin("GET", "/v1/partner/inventory/history?limit=1&offset=1", None)
        .json();
    assert_eq!(h["total_record"], 2);
    assert_eq!(h["data"][0]["total_sku"], 2);
    d.admin("GET", "/admin/verify", None).expect(200);
    d.stop();
}

#[test]
fn every_401_and_the_nonce_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("d.redb");
    let d = Daemon::start(PARTNERS, &data);
    d.seed();
    let body = r#"{"sku":"sku1","warehouse":"default","available_stock":5,"buffer_stock":0,"channel_stock":[]}"#;
    let before = d.journal_len();
    let unauth = |r: Response| {
        r.expect_error(401, "unauthenticated");
        assert!(r.header("www-authenticate").is_some());
    };
    // An unknown partner and a bad signature answer alike: the answer does not tell which
    // partner ids exist (v1, and the legacy form whoever may use it).
    let alike = |answers: [Response; 3]| {
        let shown: Vec<Value> = answers
            .iter()
            .map(|r| {
                let mut v = r.json();
                v.as_object_mut().map(|o| o.remove("request_id"));
                json!([r.status, v])
            })
            .collect();
        assert!(shown.iter().all(|s| *s == shown[0]), "{shown:#?}");
        answers.into_iter().for_each(unauth);
    };
    alike([
        d.signed("nobody", MP_NEW, "POST", UPDATE, body, &nonce(1)),
        d.signed("mp", "wrong-secret-0123456789", "POST", UPDATE, body, &nonce(2)),
        d.signed("old", "wrong-secret-0123456789", "POST", UPDATE, body, &nonce(2)),
    ]);
    alike([
        d.legacy("nobody", MP_NEW, UPDATE, body),
        d.legacy("mp", MP_NEW, UPDATE, body), // not configured for the legacy form
        d.legacy("old", "wrong-secret-0123456789", UPDATE, body),
    ]);
    let stale = (stockd::clock::now_ms() / 1000 - 301).to_string();
    unauth(d.signed_at("mp", MP_NEW, "POST", UPDATE, body, &nonce(3), &stale));
    let future = (stockd::clock::now_ms() / 1000 + 301).to_string();
    unauth(d.signed_at("mp", MP_NEW, "POST", UPDATE, body, &nonce(4), &future));
    unauth(d.signed("mp", MP_NEW, "POST", UPDATE, body, &"x".repeat(65)));
    // A body other than the signed one.
    let ts = (stockd::clock::now_ms() / 1000).to_string();
    let sig = sign(
        MP_NEW,
        v1_message("POST", UPDATE, &ts, "tamper", body.as_bytes()).as_bytes(),
    );
    let tampered = Request::new("POST", UPDATE)
        .header("partner-id", "mp")
        .header("timestamp", &ts)
        .header("nonce", "tamper")
        .header("secret", &sig)
        .body(body.replace('5', "9"));
    unauth(send(d.addr, &tampered).expect("request"));
    assert_eq!(d.journal_len(), before, "no 401 wrote anything");

    // Both secrets of a rotation verify; a nonce is good once.
    d.signed("mp", MP_OLD, "POST", UPDATE, body, "once").expect(200);
    unauth(d.signed("mp", MP_OLD, "POST", UPDATE, body, "once"));
    d.signed("mp", MP_NEW, "POST", UPDATE, body, "twice").expect(200);
    d.stop();

    // After a restart the nonce is still remembered; with the old secret removed from the
    // config, it no longer verifies.
    let rotated = PARTNERS.replace(
        r#"["new-secret-0123456789", "old-secret-0123456789"]"#,
        r#"["new-secret-0123456789"]"#,
    );
    let d = Daemon::start(&rotated, &data);
    unauth(d.signed("mp", MP_NEW, "POST", UPDATE, body, "once"));
    unauth(d.signed("mp", MP_OLD, "POST", UPDATE, body, &nonce(5)));
    d.signed("mp", MP_NEW, "POST", UPDATE, body, &nonce(6)).expect(200);
    d.stop();
}

#[test]
fn a_signature_works_on_native_routes_too() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = Daemon::start(PARTNERS, &dir.path().join("d.redb"));
    d.seed();
    let path = "/api/inventory?product_id=1031046355";
    d.signed("reader", READER, "GET", path, "", &nonce(1)).expect(200);
    let mv = r#"{"product_id":"1031046355","movement_type":"in","quantity":3}"#;
    let r = d.signed("mp", MP_NEW, "POST", "/api/inventory/movements", mv, &nonce(2));
    r.expect(201);
    assert_eq!(r.json()["data"]["created_by"]["name"], "mp");
    d.stop();
}

#[test]
fn legacy_replay_answers_the_first_response_and_applies_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = Daemon::start(PARTNERS, &dir.path().join("d.redb"));
    d.seed();
    let body = r#"{"sku":"sku1","warehouse":"default","available_stock":7,"buffer_stock":1,"channel_stock":[]}"#;
    let first = d.legacy("old", LEGACY, UPDATE, body);
    first.expect(200);
    let after_first = d.journal_len();
    // Stock changes in between; the replay must not set it back.
    d.admin(
        "POST",
        "/api/inventory/movements",
        Some(json!({"product_id": "1031046355", "movement_type": "in", "quantity": 10})),
    )
    .expect(201);
    let again = d.legacy("old", LEGACY, UPDATE, body);
    again.expect(200);
    assert_eq!(again.body, first.body, "the first answer, byte for byte");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(d.journal_len(), after_first + 1, "the replay applied nothing");
    assert_eq!(d.level("1031046355")["quantity_on_hand"], 17);
    // A refused legacy write is refused again, even once it would pass.
    let too_much = r#"{"sku":"sku1","warehouse":"default","available_stock":1,"buffer_stock":2,"channel_stock":[]}"#;
    let r = d.legacy("old", LEGACY, UPDATE, too_much);
    r.expect_error(422, "invalid_field");
    assert_eq!(d.legacy("old", LEGACY, UPDATE, too_much).body, r.body);
    d.stop();
}

#[test]
fn partner_scopes_and_warehouses() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = Daemon::start(PARTNERS, &dir.path().join("d.redb"));
    d.seed();
    let body = r#"{"sku":"sku1","warehouse":"default","available_stock":5,"buffer_stock":0,"channel_stock":[]}"#;
    d.signed("reader", READER, "POST", UPDATE, body, &nonce(1))
        .expect_error(403, "forbidden");
    d.signed("outlet-only", OUTLET, "POST", UPDATE, body, &nonce(2))
        .expect_error(403, "forbidden");
    let outlet = body.replace("\"default\"", "\"outlet\"");
    d.signed("outlet-only", OUTLET, "POST", UPDATE, &outlet, &nonce(3))
        .expect(200);
    assert_eq!(
        d.level("1031046355")["quantity_on_hand"],
        Value::Null,
        "default untouched"
    );
    d.stop();
}

#[test]
fn bad_updates_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = Daemon::start(PARTNERS, &dir.path().join("d.redb"));
    d.seed();
    let before = d.journal_len();
    let line = |available: i64, buffer: i64, channels: &str| {
        format!(
            r#"{{"sku":"sku1","warehouse":"default","available_stock":{available},"buffer_stock":{buffer},"channel_stock":{channels}}}"#
        )
    };
    let cases: Vec<(String, u16, &str)> = vec![
        (line(5, 6, "[]"), 422, "invalid_field"),
        (line(-1, 0, "[]"), 422, "invalid_field"),
        (line(5, -1, "[]"), 422, "invalid_field"),
        (line(5, 1, r#"[{"code":"a","qty":5}]"#), 422, "invalid_field"),
        (line(5, 0, r#"[{"code":"a","qty":-1}]"#), 422, "invalid_field"),
        (
            line(5, 0, r#"[{"code":"a","qty":1},{"code":"a","qty":1}]"#),
            422,
            "invalid_field",
        ),
        (line(5, 0, "[]").replace("sku1", "nope"), 404, "product_not_found"),
        (
            line(5, 0, "[]").replace("default", "nowhere"),
            404,
            "warehouse_not_found",
        ),
        ("[]".to_string(), 422, "invalid_field"),
        (
            format!("[{}]", vec![line(1, 0, "[]"); 101].join(",")),
            422,
            "too_many_items",
        ),
        (
            format!("[{}, {}]", line(5, 0, "[]"), line(5, 9, "[]")),
            422,
            "invalid_field",
        ),
        (
            r#"{"sku":"sku1","warehouse":"default","available_stock":"5"}"#.to_string(),
            422,
            "invalid_field",
        ),
        (
            r#"{"sku":"sku1","warehouse":"default","sync_stock":3}"#.to_string(),
            422,
            "invalid_field",
        ),
        ("{not json".to_string(), 400, "invalid_json"),
    ];
    for (i, (body, status, code)) in cases.iter().enumerate() {
        let r = d.signed("mp", MP_NEW, "POST", UPDATE, body, &nonce(i as u32));
        assert_eq!(r.status, *status, "case {i}: {body}: {}", r.body);
        assert_eq!(r.code(), *code, "case {i}");
    }
    assert_eq!(d.journal_len(), before, "nothing was written");
    let h = d.admin("GET", "/v1/partner/inventory/history", None).json();
    assert_eq!(h["total_record"], 0);
    d.admin("GET", "/v1/partner/inventory/history?limit=-1", None)
        .expect_error(422, "invalid_field");
    d.admin("GET", "/v1/partner/inventory/history?updated_at=yesterday", None)
        .expect_error(422, "invalid_field");
    d.stop();
}

/// The code block of `docs/partners.md` that follows `heading`.
fn doc_block(heading: &str, lang: &str) -> String {
    let doc = include_str!("../../docs/partners.md");
    let after = doc.split(heading).nth(1).expect("heading in docs/partners.md");
    let start = after.find(&format!("```{lang}\n")).expect("code block") + lang.len() + 4;
    let end = after[start..].find("```").expect("end of block");
    after[start..start + end].to_string()
}

const VECTOR_SIGNATURE: &str = "sHROaYnCO98nocOn+tvVho2LThVPRb31ObHv7zmCL4g=";

#[test]
fn the_python_example_computes_the_documented_vector() {
    let script = doc_block("### Python", "python");
    let out = std::process::Command::new("python3").arg("-c").arg(&script).output();
    let Ok(out) = out else {
        eprintln!("python3 is not installed here: skipping the Python example");
        return;
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), VECTOR_SIGNATURE);

    // And its update_stocks() works against the daemon.
    let dir = tempfile::tempdir().expect("tmp");
    let d = Daemon::start(PARTNERS, &dir.path().join("d.redb"));
    d.seed();
    let call = format!(
        "{script}\nprint(update_stocks('http://{}', 'mp', '{MP_NEW}', {{'sku': 'sku1', 'warehouse': 'default', \
         'available_stock': 12, 'buffer_stock': 2, 'channel_stock': [{{'code': 'bklp', 'qty': 10}}]}})['transaction_code'])",
        d.addr
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(&call)
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(d.level("1031046355")["quantity_on_hand"], 12);
    d.stop();
}

#[test]
fn the_shell_example_computes_the_documented_vector() {
    let have_openssl = std::process::Command::new("openssl").arg("version").output().is_ok();
    if !have_openssl {
        eprintln!("openssl is not installed here: skipping the shell example");
        return;
    }
    let script = doc_block("### curl and a shell", "sh");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("TS", "1767225600")
        .env("NONCE", "5f2b7c1e9a")
        .env("DRY_RUN", "1")
        .output()
        .expect("bash");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), VECTOR_SIGNATURE);
}
