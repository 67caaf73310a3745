//! Bearer tokens, scopes and warehouse restrictions; probes without auth; open mode only
//! on loopback.

use serde_json::json;

use crate::common::{start_in_process, test_config, token_toml, Client, Request, Server};

const ADMIN: &str = "tok-admin-0123456789";
const READ: &str = "tok-read-0123456789";
const WRITE: &str = "tok-write-0123456789";
const CATALOG: &str = "tok-catalog-0123456789";
const ONLY_A: &str = "tok-only-a-0123456789";
const A_AND_C: &str = "tok-a-and-c-0123456789";

/// A daemon with one token per role; the helpers send the admin token.
/// Product p1 has 10 in warehouses `a` and `b`.
fn guarded() -> Server {
    let toml = [
        token_toml("admin", ADMIN, &["admin"], None),
        token_toml("reader", READ, &["inventory:read"], None),
        token_toml("writer", WRITE, &["inventory:write"], None),
        token_toml("catalog", CATALOG, &["catalog:write"], None),
        token_toml("only-a", ONLY_A, &["inventory:write"], Some(&["a"])),
        token_toml("a-and-c", A_AND_C, &["inventory:read"], Some(&["a", "c"])),
    ]
    .concat();
    let server = Server::start_with_token(&toml, Some(ADMIN));
    server.product("p1");
    for w in ["a", "b", "c"] {
        server.warehouse(w);
    }
    server.stock("p1", "a", 10);
    server.stock("p1", "b", 10);
    server
}

fn state(c: &Client) -> (i64, i64, u64) {
    (c.on_hand("p1", "a"), c.on_hand("p1", "b"), c.journal_len())
}

fn out_of(warehouse: &str) -> serde_json::Value {
    json!({"product_id": "p1", "warehouse_id": warehouse, "movement_type": "out", "quantity": 1})
}

#[test]
fn missing_or_unknown_credentials_are_401() {
    let server = guarded();
    let before = state(&server);
    let anon = server.with_token(None);

    let res = anon.get("/api/inventory");
    res.expect_error(401, "unauthenticated");
    let challenge = res.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.to_ascii_lowercase().starts_with("bearer"),
        "WWW-Authenticate `{challenge}`"
    );

    let res = anon.post("/api/inventory/movements", out_of("a"));
    res.expect_error(401, "unauthenticated");
    assert!(res.header("www-authenticate").is_some());

    for auth in [
        "Bearer not-a-known-token".to_string(),
        format!("Bearer {ADMIN}x"),
        format!("Basic {ADMIN}"),
        ADMIN.to_string(), // the bare form is only for the seed 004 route
        "Bearer".to_string(),
        "Bearer ".to_string(),
        format!("Bearer {}", stockd::auth::sha256_hex(ADMIN.as_bytes())), // the hash is not the token
    ] {
        let res = server.raw(
            Request::new("POST", "/api/inventory/movements")
                .header("Authorization", &auth)
                .body(out_of("a").to_string()),
        );
        assert_eq!(res.status, 401, "Authorization: {auth}: {}", res.body);
        res.expect_error(401, "unauthenticated");
        assert!(res.header("www-authenticate").is_some(), "{auth}");
    }
    // The scheme is case-insensitive.
    let res = server.raw(Request::new("GET", "/api/inventory").header("Authorization", &format!("bearer {READ}")));
    res.expect(200);

    // Auth is checked before the body is read: a bad body still answers 401.
    let res = anon.raw(Request::new("POST", "/api/inventory/movements").body("{not json"));
    res.expect_error(401, "unauthenticated");
    let res = anon.raw(Request::new("POST", "/api/inventory/movements").body(vec![b' '; 2 * 1024 * 1024]));
    res.expect_error(401, "unauthenticated");

    assert_eq!(state(&server), before, "a 401 changed something");
}

#[test]
fn scopes_decide_what_a_token_may_do() {
    let server = guarded();
    let before = state(&server);
    let reader = server.with_token(Some(READ));
    let writer = server.with_token(Some(WRITE));
    let catalog = server.with_token(Some(CATALOG));

    // read-only: reads yes, writes no
    reader.get("/api/inventory").expect(200);
    reader.get("/api/inventory/movements").expect(200);
    reader.get("/api/products/p1").expect(200);
    reader.get("/api/warehouses").expect(200);
    reader
        .post("/api/inventory/movements", out_of("a"))
        .expect_error(403, "forbidden");
    reader
        .patch("/api/inventory/levels/p1/a", json!({"reorder_point": 3}))
        .expect_error(403, "forbidden");
    reader
        .post(
            "/api/inventory/adjustments",
            json!({"adjustments": [{"product_id": "p1", "warehouse_id": "a", "actual_quantity": 0}]}),
        )
        .expect_error(403, "forbidden");
    reader
        .put("/api/products/p2", json!({"sku": "S2", "name": "n"}))
        .expect_error(403, "forbidden");
    reader.get("/admin/verify").expect_error(403, "forbidden");

    // inventory:write implies read, but not catalog:write nor admin
    writer.get("/api/inventory").expect(200);
    writer
        .put("/api/products/p2", json!({"sku": "S2", "name": "n"}))
        .expect_error(403, "forbidden");
    writer
        .put("/api/warehouses/d", json!({"name": "D"}))
        .expect_error(403, "forbidden");
    writer.get("/admin/verify").expect_error(403, "forbidden");
    assert_eq!(state(&server), before, "a 403 changed something");
    server.get("/api/products/p2").expect_error(404, "product_not_found");
    server.get("/api/warehouses/d").expect_error(404, "warehouse_not_found");

    writer.post("/api/inventory/movements", out_of("a")).expect(201);
    assert_eq!(server.on_hand("p1", "a"), 9);

    // catalog:write edits the catalog only
    catalog
        .put("/api/products/p2", json!({"sku": "S2", "name": "n"}))
        .expect(201);
    catalog.put("/api/warehouses/d", json!({"name": "D"})).expect(201);
    catalog
        .post("/api/inventory/movements", out_of("a"))
        .expect_error(403, "forbidden");
    assert_eq!(server.on_hand("p1", "a"), 9);

    // admin does everything
    let admin = server.with_token(Some(ADMIN));
    admin
        .put("/api/products/p3", json!({"sku": "S3", "name": "n"}))
        .expect(201);
    admin.put("/api/warehouses/e", json!({"name": "E"})).expect(201);
    admin.post("/api/inventory/movements", out_of("b")).expect(201);
    admin
        .patch("/api/inventory/levels/p1/b", json!({"reorder_point": 3}))
        .expect(200);
    admin.assert_verified();

    // the forbidden answer names the missing scope
    let res = writer.put("/api/products/p4", json!({"sku": "S4", "name": "n"}));
    assert!(
        res.json()["detail"].as_str().unwrap_or("").contains("catalog:write"),
        "{}",
        res.body
    );
}

#[test]
fn warehouse_restriction_is_enforced_on_reads_and_writes() {
    let server = guarded();
    let only_a = server.with_token(Some(ONLY_A));
    let before = state(&server);

    // writes into b, or involving b, are forbidden
    only_a
        .post("/api/inventory/movements", out_of("b"))
        .expect_error(403, "forbidden");
    only_a
        .post(
            "/api/inventory/movements",
            json!({"product_id": "p1", "warehouse_id": "a", "movement_type": "transfer", "quantity": 1, "to_warehouse_id": "b"}),
        )
        .expect_error(403, "forbidden");
    only_a
        .post(
            "/api/inventory/movements",
            json!({"product_id": "p1", "warehouse_id": "b", "movement_type": "transfer", "quantity": 1, "to_warehouse_id": "a"}),
        )
        .expect_error(403, "forbidden");
    only_a
        .patch("/api/inventory/levels/p1/b", json!({"buffer": 1}))
        .expect_error(403, "forbidden");
    only_a
        .post(
            "/api/inventory/adjustments",
            json!({"adjustments": [
                {"product_id": "p1", "warehouse_id": "a", "actual_quantity": 0},
                {"product_id": "p1", "warehouse_id": "b", "actual_quantity": 0}
            ]}),
        )
        .expect_error(403, "forbidden");
    // a movement without warehouse_id lands in `default`, which it may not use either
    only_a
        .post(
            "/api/inventory/movements",
            json!({"product_id": "p1", "movement_type": "in", "quantity": 1}),
        )
        .expect_error(403, "forbidden");
    assert_eq!(state(&server), before, "a 403 changed something");

    // reads of b are forbidden
    only_a
        .get("/api/inventory?warehouse_id=b")
        .expect_error(403, "forbidden");
    only_a
        .get("/api/inventory/movements?warehouse_id=b")
        .expect_error(403, "forbidden");
    let b_movement = server.get("/api/inventory/movements?warehouse_id=b&limit=1").json()["data"][0]["id"]
        .as_str()
        .expect("a movement in b")
        .to_string();
    // a record of b answers as an unknown id (it reveals nothing of b)
    only_a
        .get(&format!("/api/inventory/movements/{b_movement}"))
        .expect_error(404, "movement_not_found");

    // what it may see and do: warehouse a
    let res = only_a.get("/api/inventory");
    res.expect(200);
    let rows = res.data();
    let rows = rows.as_array().expect("list");
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["warehouse"]["id"] == "a"), "{}", res.body);
    let res = only_a.get("/api/inventory/movements");
    res.expect(200);
    let rows = res.data();
    assert!(
        rows.as_array().expect("list").iter().all(|r| r["warehouse_id"] == "a"),
        "{}",
        res.body
    );
    let res = only_a.get("/api/products/p1/inventory");
    res.expect(200);
    let d = res.data();
    assert_eq!(d["warehouses"].as_array().map(Vec::len), Some(1), "{}", res.body);
    assert_eq!(d["totals"]["quantity_on_hand"], 10, "totals count only what it may see");
    only_a.post("/api/inventory/movements", out_of("a")).expect(201);
    assert_eq!(server.on_hand("p1", "a"), 9);
    assert_eq!(server.on_hand("p1", "b"), 10);

    // receiving: only into a warehouse it may use
    let transfer = |from: &str, to: &str| -> String {
        let res = server.post(
            "/api/inventory/movements",
            json!({"product_id": "p1", "warehouse_id": from, "movement_type": "transfer", "quantity": 1,
                   "to_warehouse_id": to, "in_transit": true}),
        );
        res.expect(201);
        res.data()["transfer_id"].as_str().expect("transfer_id").to_string()
    };
    let into_b = transfer("a", "b");
    let into_a = transfer("b", "a");
    let before = state(&server);
    only_a
        .raw(only_a.request("POST", &format!("/api/inventory/transfers/{into_b}/receive")))
        .expect_error(403, "forbidden");
    assert_eq!(state(&server), before, "a 403 receive changed something");
    only_a
        .raw(only_a.request("POST", &format!("/api/inventory/transfers/{into_a}/receive")))
        .expect(200);
    assert_eq!(server.on_hand("p1", "a"), before.0 + 1);

    // a token restricted to several warehouses must name one on lists
    let a_and_c = server.with_token(Some(A_AND_C));
    a_and_c.get("/api/inventory?warehouse_id=c").expect(200);
    a_and_c
        .get("/api/inventory?warehouse_id=b")
        .expect_error(403, "forbidden");
    let res = a_and_c.get("/api/inventory");
    assert!(matches!(res.status, 200 | 422), "{} {}", res.status, res.body);
    if res.status == 200 {
        let rows = res.data();
        assert!(
            rows.as_array()
                .expect("list")
                .iter()
                .all(|r| r["warehouse"]["id"] != "b"),
            "a restricted list shows warehouse b: {}",
            res.body
        );
    }
}

#[test]
fn probes_need_no_credentials_and_reveal_nothing() {
    let server = guarded();
    let anon = server.with_token(None);
    for path in ["/healthz", "/livez", "/readyz"] {
        let res = anon.get(path);
        res.expect(200);
        assert!(!res.body.contains("p1"), "{path}: {}", res.body);
    }
    anon.get("/admin/verify").expect_error(401, "unauthenticated");
    // an unknown route still needs no credentials to say it does not exist, or asks for them
    let res = anon.get("/api/nope");
    assert!(matches!(res.status, 401 | 404), "{} {}", res.status, res.body);
}

#[test]
fn open_mode_is_loopback_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("stockd.redb");
    let text = test_config("", &data).replace("127.0.0.1:0", "0.0.0.0:0");
    assert!(text.contains("0.0.0.0:0"), "{text}");
    let config = stockd::config::Config::parse(&text).expect("config parses");
    assert!(config.is_open());
    match start_in_process(config) {
        Err(stockd::StartError::Config(msg)) => {
            assert!(msg.contains("0.0.0.0"), "the refusal names the address: {msg}");
        }
        Err(stockd::StartError::Runtime(msg)) => panic!("expected a config error, got a runtime error: {msg}"),
        Ok(_) => panic!("the daemon started in open mode on 0.0.0.0"),
    }
    // The refusal comes before the data file is touched.
    assert!(!data.exists(), "the data file was created by a refused start");

    // With a token the same address is fine.
    let text = test_config(&token_toml("admin", ADMIN, &["admin"], None), &data).replace("127.0.0.1:0", "0.0.0.0:0");
    let config = stockd::config::Config::parse(&text).expect("config parses");
    let (addr, handle, store, thread) = match start_in_process(config) {
        Ok(started) => started,
        Err(e) => panic!("a daemon with a token did not start on 0.0.0.0: {e}"),
    };
    let local: std::net::SocketAddr = ([127, 0, 0, 1], addr.port()).into();
    let client = Client::new(local, Some(ADMIN.to_string()));
    client.get("/readyz").expect(200);
    client
        .with_token(None)
        .get("/api/inventory")
        .expect_error(401, "unauthenticated");
    drop(handle.stop(true));
    let _ = thread.join();
    store.shutdown();
}

/// Scope × restriction × target: only an unrestricted `catalog:write` or `admin` may create
/// or rename a warehouse; a restricted one may not, not even its own (the audit's w1 token
/// renamed w2 and created w9).
#[test]
fn restricted_credentials_may_not_create_or_rename_warehouses() {
    const CATALOG_A: &str = "tok-catalog-a-0123456789";
    const ADMIN_A: &str = "tok-admin-a-0123456789";
    let toml = [
        token_toml("admin", ADMIN, &["admin"], None),
        token_toml("catalog", CATALOG, &["catalog:write"], None),
        token_toml("writer", WRITE, &["inventory:write"], None),
        token_toml("catalog-a", CATALOG_A, &["catalog:write"], Some(&["a"])),
        token_toml("admin-a", ADMIN_A, &["admin"], Some(&["a"])),
        token_toml("only-a", ONLY_A, &["inventory:write"], Some(&["a"])),
    ]
    .concat();
    let server = Server::start_with_token(&toml, Some(ADMIN));
    for w in ["a", "b"] {
        server.warehouse(w);
    }
    let names = |c: &Client| -> Vec<serde_json::Value> {
        ["a", "b", "w9"]
            .iter()
            .map(|w| c.get(&format!("/api/warehouses/{w}")).json()["data"]["name"].clone())
            .collect()
    };
    let before = names(&server);
    // (token, whether the refusal is for the restriction rather than a missing scope)
    for (tok, for_restriction) in [(CATALOG_A, true), (ADMIN_A, true), (ONLY_A, false), (WRITE, false)] {
        let c = server.with_token(Some(tok));
        for w in ["a", "b", "w9"] {
            let res = c.put(&format!("/api/warehouses/{w}"), json!({"name": "Renamed"}));
            res.expect_error(403, "forbidden");
            let detail = res.json()["detail"].as_str().unwrap_or_default().to_string();
            if for_restriction {
                assert!(detail.contains("restricted to warehouses"), "{tok} {w}: {detail}");
            }
        }
    }
    assert_eq!(names(&server), before, "a 403 changed a warehouse");
    // Unrestricted catalog and admin credentials may.
    for (tok, w, status) in [(CATALOG, "b", 200), (CATALOG, "w9", 201), (ADMIN, "a", 200)] {
        server
            .with_token(Some(tok))
            .put(&format!("/api/warehouses/{w}"), json!({"name": "Renamed"}))
            .expect(status);
    }
    // The restricted credentials keep what they may do: use their warehouse.
    server.product("p1");
    server
        .with_token(Some(CATALOG_A))
        .put("/api/products/p2", json!({"sku": "S2", "name": "n"}))
        .expect(201);
    server.with_token(Some(ADMIN_A)).stock("p1", "a", 1);
}
