//! Issue 12: the seed dialects as typed clients see them — integer ids (stable numbers
//! of products and warehouses), seed 001 warehouse names and JSON texts, seed 002 line
//! fields, seed 003 movement types and query values as common clients send them,
//! analytics that count stock changes, and seed 004's depot filter and optional body.
//! Each test drives the real daemon with the documents' own example bodies.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{enc, run_bin, Binary, Client, Server};
use crate::dialects::DOC_CREATE;

/// The first number the store assigns (`ledger::NUMBER_ASSIGNED_MIN`).
const A1: u64 = 9_000_000_000_000_001;
const ADJUST: &str = "/com/inventories/adjustorset.json";
const ADJUSTMENTS: &str = "/com/inventories/adjustments.json";
const UPDATE: &str = "/v1/partner/inventory/updatestocks";
const HISTORY: &str = "/v1/partner/inventory/history";
const DEPOT: &str = "/v3.0/product/inventory";

fn stockd(args: &[&str]) -> crate::common::Output {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
    run_bin(&args, Duration::from_secs(120))
}

fn number_of(c: &Client, path: &str) -> Value {
    let res = c.get(path);
    res.expect(200);
    res.data()["number"].clone()
}

/// The numbers the native API shows for the fixture's records.
fn numbers(c: &Client) -> Vec<Value> {
    [
        "/api/warehouses/default",
        "/api/warehouses/w1",
        "/api/warehouses/963414",
        "/api/products/p1",
        "/api/products/abc",
        "/api/products/1031046355",
    ]
    .iter()
    .map(|p| number_of(c, p))
    .collect()
}

fn put(c: &Client, path: &str, body: Value) {
    let res = c.put(path, body);
    assert!(matches!(res.status, 200 | 201), "PUT {path}: {}", res.body);
}

fn depot_items(c: &Client, body: &str) -> Vec<Value> {
    let res = c.raw(c.request("POST", DEPOT).body(body.to_string()));
    assert_eq!(res.status, 200, "{body}: {}", res.body);
    assert_eq!(res.json()["code"], 1, "{}", res.body);
    res.json()["data"].as_array().expect("data").clone()
}

// ---------------------------------------------------------------------------------------
// Item 1: stable numbers
// ---------------------------------------------------------------------------------------

#[test]
fn numbers_are_integers_accepted_everywhere_and_stable_across_restart_backup_and_export() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("d.redb");
    let daemon = Binary::start(&data);
    put(&daemon, "/api/warehouses/w1", json!({"name": "North"}));
    put(&daemon, "/api/warehouses/963414", json!({"name": "Kho"}));
    for (id, sku) in [("p1", "SKU-P1"), ("abc", "SKU-ABC"), ("1031046355", "IPOD123")] {
        put(&daemon, &format!("/api/products/{id}"), json!({"sku": sku, "name": id}));
    }
    // Its digits for an all-digit id, 0 for the default warehouse, else an assigned one
    // (products and warehouses count separately).
    let want = vec![
        json!(0),
        json!(A1),
        json!(963414),
        json!(A1),
        json!(A1 + 1),
        json!(1031046355u64),
    ];
    assert_eq!(numbers(&daemon), want);

    // A later all-digit id cannot take an assigned number: 409, nothing created.
    let res = daemon.put(&format!("/api/products/{A1}"), json!({"sku": "X", "name": "x"}));
    res.expect_error(409, "number_taken");
    daemon
        .get(&format!("/api/products/{A1}"))
        .expect_error(404, "product_not_found");
    let res = daemon.put(&format!("/api/warehouses/{A1}"), json!({"name": "x"}));
    res.expect_error(409, "number_taken");
    // One in the range that is free is its own number, and the next assignment skips it.
    put(
        &daemon,
        &format!("/api/products/{}", A1 + 2),
        json!({"sku": "D", "name": "d"}),
    );
    put(&daemon, "/api/products/q", json!({"sku": "Q", "name": "q"}));
    assert_eq!(number_of(&daemon, "/api/products/q"), json!(A1 + 3));

    // Seed 002 names the location and the product by number and answers numbers.
    let res = daemon.post(
        ADJUST,
        json!({"inventory": {"location_id": A1, "line_items": [{"product_id": A1, "quantity": 5}]}}),
    );
    res.expect(201);
    let a = &res.json()["adjustment"];
    assert_eq!(a["location_id"], json!(A1));
    assert_eq!(a["line_items"][0]["product_id"], json!(A1));
    assert_eq!(daemon.on_hand("p1", "w1"), 5);
    let listed = |q: &str| daemon.get(&format!("{ADJUSTMENTS}?{q}")).json()["adjustments"].clone();
    assert_eq!(listed(&format!("location_id={A1}")).as_array().map(Vec::len), Some(1));
    assert_eq!(listed("location_id=w1").as_array().map(Vec::len), Some(1));
    assert_eq!(listed("location_id=0").as_array().map(Vec::len), Some(0));
    // A default-warehouse adjustment shows 0 and is found by 0.
    daemon
        .post(
            ADJUST,
            json!({"inventory": {"line_items": [{"product_id": "abc", "quantity": 1}]}}),
        )
        .expect(201);
    let zero = listed("location_id=0");
    assert_eq!(zero[0]["location_id"], json!(0), "{zero}");
    assert_eq!(zero[0]["line_items"][0]["product_id"], json!(A1 + 1));

    // Seed 001 takes the warehouse's number (string or integer).
    for warehouse in [json!(A1), json!(A1.to_string())] {
        let res = daemon.post(
            UPDATE,
            json!({"sku": "SKU-P1", "warehouse": warehouse, "available_stock": 7, "buffer_stock": 0, "channel_stock": []}),
        );
        assert_eq!(res.status, 200, "{}", res.body);
    }
    assert_eq!(daemon.on_hand("p1", "w1"), 7);

    // Seed 004: `ids` and `depotIds` by number; `productId` and depot `id` are numbers.
    let items = depot_items(
        &daemon,
        &format!(r#"{{"filters": {{"ids": [{A1}], "depotIds": [{A1}]}}}}"#),
    );
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["productId"], json!(A1));
    assert_eq!(items[0]["inventory"]["depots"][0]["id"], json!(A1));
    assert_eq!(items[0]["inventory"]["remain"], 7);

    // Stable: across a restart…
    daemon.terminate();
    let daemon = Binary::start(&data);
    assert_eq!(numbers(&daemon), want);
    assert_eq!(number_of(&daemon, "/api/products/q"), json!(A1 + 3));
    // …in a backup…
    let backup = daemon.post("/admin/backup", json!({}));
    backup.expect(201);
    let snapshot = backup.data()["file"].as_str().expect("file").to_string();
    daemon.terminate();
    let snapshot = if Path::new(&snapshot).is_absolute() {
        std::path::PathBuf::from(&snapshot)
    } else {
        dir.path().join("backups").join(&snapshot)
    };
    let from_backup = Binary::start(&snapshot);
    assert_eq!(numbers(&from_backup), want);
    from_backup.terminate();
    // …and through export → import into a fresh file.
    let fresh = dir.path().join("fresh.redb");
    for kind in ["warehouses", "products"] {
        let out_path = dir.path().join(format!("{kind}.csv"));
        let out = stockd(&[
            "export",
            "--data",
            data.to_str().expect("path"),
            "--kind",
            kind,
            "--out",
            out_path.to_str().expect("path"),
        ]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let text = std::fs::read_to_string(&out_path).expect("export");
        assert!(text.lines().next().is_some_and(|h| h.contains("number")), "{text}");
        let out = stockd(&[
            "import",
            "--data",
            fresh.to_str().expect("path"),
            "--kind",
            kind,
            out_path.to_str().expect("path"),
        ]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
    }
    let imported = Binary::start(&fresh);
    assert_eq!(numbers(&imported), want);
    assert_eq!(number_of(&imported, "/api/products/q"), json!(A1 + 3));
    // The next number continues after the imported ones.
    put(&imported, "/api/products/r", json!({"sku": "R", "name": "r"}));
    assert_eq!(number_of(&imported, "/api/products/r"), json!(A1 + 4));
    imported.terminate();
}

/// A data file as an earlier version left it: records without numbers, no number index,
/// no upgrade mark, roll-ups counted the old way (V1 rows).
fn downgrade(data: &Path) {
    use redb::{ReadableTable, TableDefinition};
    use stockd::store::tables::*;
    let db = redb::Database::open(data).expect("open");
    let txn = db.begin_write().expect("write");
    {
        // An old row is the new one without the trailing number (its 1-byte tag + 8 bytes).
        let strip = |def: TableDefinition<&str, &[u8]>| {
            let mut t = txn.open_table(def).expect("table");
            let rows: Vec<(String, Vec<u8>)> = t
                .iter()
                .expect("iter")
                .map(|r| {
                    let (k, v) = r.expect("row");
                    (k.value().to_string(), v.value().to_vec())
                })
                .collect();
            for (k, mut v) in rows {
                v.truncate(v.len() - 9);
                t.insert(k.as_str(), v.as_slice()).expect("insert");
            }
        };
        strip(PRODUCTS);
        strip(WAREHOUSES);
        txn.open_table(NUMBERS)
            .expect("numbers")
            .retain(|_, _| false)
            .expect("clear");
        txn.open_table(META).expect("meta").remove(UPGRADE_KEY).expect("unmark");
        // Journal rows without back-pointers, level rows without their chain, every
        // movement in `history_by_level`.
        let mut journal = txn.open_table(JOURNAL).expect("journal");
        let mut movements = Vec::new();
        for row in journal.iter().expect("iter") {
            let (_, v) = row.expect("row");
            movements.push(stockd::store::codec::decode_movement(v.value()).expect("movement"));
        }
        let mut index = txn.open_table(HISTORY_BY_LEVEL).expect("index");
        for m in &movements {
            journal
                .insert(m.seq, stockd::store::codec::movement(m).as_slice())
                .expect("journal row");
            index
                .insert((m.draft.product.as_str(), m.draft.warehouse.as_str(), m.seq), ())
                .expect("index");
        }
        let mut levels = txn.open_table(LEVELS).expect("levels");
        let rows: Vec<((String, String), Vec<u8>)> = levels
            .iter()
            .expect("iter")
            .map(|r| {
                let (k, v) = r.expect("row");
                let level = stockd::store::codec::decode_level(v.value()).expect("level");
                let (p, w) = k.value();
                ((p.to_string(), w.to_string()), stockd::store::codec::level(&level))
            })
            .collect();
        for ((p, w), row) in rows {
            levels
                .insert((p.as_str(), w.as_str()), row.as_slice())
                .expect("level row");
        }
        // Old roll-ups: every entry counted as a movement.
        let mut days = txn.open_table(ROLLUP_DAYS).expect("days");
        let keys: Vec<(i64, String)> = days
            .iter()
            .expect("iter")
            .map(|r| {
                let (k, _) = r.expect("row");
                (k.value().0, k.value().1.to_string())
            })
            .collect();
        for (day, w) in keys {
            let mut v1 = [0u8; 41];
            v1[0] = 1;
            v1[1..9].copy_from_slice(&99u64.to_le_bytes());
            days.insert((day, w.as_str()), v1.as_slice()).expect("insert");
        }
    }
    txn.commit().expect("commit");
}

#[test]
fn an_older_data_file_gets_numbers_and_new_roll_ups_when_opened() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("old.redb");
    let daemon = Binary::start(&data);
    put(&daemon, "/api/warehouses/w1", json!({"name": "North"}));
    put(&daemon, "/api/warehouses/963414", json!({"name": "Kho"}));
    for (id, sku) in [("p1", "SKU-P1"), ("abc", "SKU-ABC"), ("1031046355", "IPOD123")] {
        put(&daemon, &format!("/api/products/{id}"), json!({"sku": sku, "name": id}));
    }
    daemon.stock("p1", "w1", 10);
    daemon
        .post(
            "/api/inventory/reservations",
            json!({"product_id": "p1", "warehouse_id": "w1", "quantity": 2}),
        )
        .expect(201);
    daemon.terminate();
    downgrade(&data);

    let daemon = Binary::start(&data);
    // Given at open, in id order: `abc` before `p1`.
    let want = vec![
        json!(0),
        json!(A1),
        json!(963414),
        json!(A1 + 1),
        json!(A1),
        json!(1031046355u64),
    ];
    assert_eq!(numbers(&daemon), want, "numbers given at open, in id order");
    let items = depot_items(&daemon, r#"{"filters": {"ids": ["p1"]}}"#);
    assert_eq!(items[0]["productId"], json!(A1 + 1));
    // The roll-ups are summed again: one movement (the count), not the hold.
    let a = daemon.get("/api/inventory/analytics?warehouse_id=w1").data();
    assert_eq!(a["trends"]["movements"], 1, "{a}");
    assert_eq!(a["top_movers"][0]["movement_count"], 1, "{a}");
    let report = daemon.get("/admin/verify");
    report.expect(200);
    assert_eq!(report.data()["ok"], true, "{}", report.body);
    // New records continue after the numbers given at the upgrade.
    put(&daemon, "/api/products/q", json!({"sku": "Q", "name": "q"}));
    assert_eq!(number_of(&daemon, "/api/products/q"), json!(A1 + 2));
    daemon.terminate();
}

// ---------------------------------------------------------------------------------------
// Item 2: seed 001
// ---------------------------------------------------------------------------------------

#[test]
fn seed_001_names_the_warehouse_and_its_history_is_parseable() {
    let server = Server::open();
    put(&server, "/api/warehouses/wh-7", json!({"name": "Gudang Jakarta"}));
    put(&server, "/api/warehouses/t1", json!({"name": "Twin"}));
    put(&server, "/api/warehouses/t2", json!({"name": "Twin"}));
    put(&server, "/api/products/334621", json!({"sku": "sku1", "name": "Shirt"}));
    // The document's example body, with the warehouse named by its name.
    let mut body = json!({
        "sku": "sku1", "sync_stock": false, "warehouse": "Gudang Jakarta",
        "available_stock": 100, "buffer_stock": 0,
        "channel_stock": [{"code": "bklp", "qty": 30}, {"code": "blib", "qty": 20}]
    });
    let res = server.post(UPDATE, body.clone());
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(server.on_hand("334621", "wh-7"), 100);
    // …by its id, and the document's own `default`.
    body["warehouse"] = json!("wh-7");
    body["available_stock"] = json!(90);
    assert_eq!(server.post(UPDATE, body.clone()).status, 200);
    assert_eq!(server.on_hand("334621", "wh-7"), 90);
    body["warehouse"] = json!("default");
    assert_eq!(server.post(UPDATE, body.clone()).status, 200);
    assert_eq!(server.on_hand("334621", "default"), 90);
    // An ambiguous name is a 422 and changes nothing.
    let journal = server.journal_len();
    body["warehouse"] = json!("Twin");
    server
        .post(UPDATE, body.clone())
        .expect_error(422, "ambiguous_warehouse");
    assert_eq!(server.journal_len(), journal);
    // A product may share its id with a warehouse: each shows its own number.
    put(&server, "/api/products/pre", json!({"sku": "sku-pre", "name": "Pre"}));
    put(
        &server,
        "/api/products/wh-7",
        json!({"sku": "sku-w", "name": "Same id"}),
    );
    let shared =
        json!({"sku": "sku-w", "warehouse": "wh-7", "available_stock": 1, "buffer_stock": 0, "channel_stock": []});
    assert_eq!(server.post(UPDATE, shared).status, 200);

    let res = server.get(&format!("{HISTORY}?updated_at=2021-02-05T15:04:05Z&offset=0&limit=10"));
    res.expect(200);
    let rows = res.json()["data"].as_array().expect("data").clone();
    assert_eq!(rows.len(), 4);
    let shared = &rows[3]["update_stock_history_item"][0];
    assert_eq!(
        (shared["warehouse_id"].clone(), shared["variant_id"].clone()),
        (json!(A1), json!(A1 + 1))
    );
    for row in &rows[..3] {
        for item in row["update_stock_history_item"].as_array().expect("items") {
            // JSON texts, as the document shows them, that a client can parse.
            let remote: Value = serde_json::from_str(item["remote_variant"].as_str().expect("text"))
                .unwrap_or_else(|e| panic!("remote_variant: {e}: {item}"));
            assert_eq!(remote["item_id"], json!(334621), "{item}");
            assert_eq!(remote["variation_id"], 0);
            let response: Value = serde_json::from_str(item["client_reponse"].as_str().expect("text"))
                .unwrap_or_else(|e| panic!("client_reponse: {e}: {item}"));
            assert_eq!(response["item"]["item_id"], json!(334621), "{item}");
            assert!(response["item"]["modified_time"].is_i64(), "{item}");
            assert_eq!(item["variant_id"], json!(334621));
            assert!(item["warehouse_id"].is_u64(), "an integer: {item}");
        }
    }
    // In order: the default warehouse's row shows 0 and `default`, as the document.
    let default_item = &rows[2]["update_stock_history_item"][0];
    assert_eq!(default_item["warehouse_id"], json!(0), "{default_item}");
    assert_eq!(default_item["warehouse_name"], "default");
    let named_item = &rows[0]["update_stock_history_item"][0];
    assert_eq!(named_item["warehouse_id"], json!(A1));
    assert_eq!(named_item["warehouse_name"], "Gudang Jakarta");
    server.assert_verified();
}

// ---------------------------------------------------------------------------------------
// Item 3: seed 002
// ---------------------------------------------------------------------------------------

#[test]
fn seed_002_lines_show_the_products_sku_and_barcode_and_errors_name_the_field() {
    let server = Server::open();
    put(&server, "/api/warehouses/963414", json!({"name": "Kho"}));
    put(
        &server,
        "/api/products/1068095306",
        json!({"sku": "IPOD123", "name": "iPod pink", "barcode": "123_pink"}),
    );
    put(
        &server,
        "/api/products/1068095307",
        json!({"sku": "IPOD124", "name": "iPod blue"}),
    );
    let res = server.raw(server.request("POST", ADJUST).body(DOC_CREATE));
    res.expect(201);
    let a = res.json()["adjustment"].clone();
    let lines = a["line_items"].as_array().expect("lines").clone();
    assert_eq!(
        (lines[0]["sku"].clone(), lines[0]["barcode"].clone()),
        (json!("IPOD123"), json!("123_pink"))
    );
    assert_eq!(
        (lines[1]["sku"].clone(), lines[1]["barcode"].clone()),
        (json!("IPOD124"), Value::Null)
    );
    // What the request sends wins.
    let res = server.post(
        ADJUST,
        json!({"inventory": {"location_id": 963414, "line_items": [
            {"product_variant_id": 1068095306, "quantity": 1, "sku": "IPOD123-B", "barcode": "b"}]}}),
    );
    res.expect(201);
    assert_eq!(res.json()["adjustment"]["line_items"][0]["sku"], "IPOD123-B");
    assert_eq!(res.json()["adjustment"]["line_items"][0]["barcode"], "b");
    // The same on the list and get answers.
    let got = server.get(&format!("/com/inventories/adjustments/{}.json", a["id"]));
    assert_eq!(got.json()["adjustment"]["line_items"], a["line_items"]);

    // Errors name the request's field: `reason` (never `inventory.reason`), a line's field
    // (never `base`).
    let journal = server.journal_len();
    let line = |q: i64| json!({"product_id": 1031046355, "product_variant_id": 1068095306, "quantity": q});
    for (body, field) in [
        (
            json!({"inventory": {"location_id": 963414, "reason": "stolen", "line_items": [line(1)]}}),
            "reason",
        ),
        (
            json!({"inventory": {"location_id": 963414, "reason": 7, "line_items": [line(1)]}}),
            "reason",
        ),
        (
            json!({"inventory": {"location_id": 963414, "line_items": [line(1), line(0)]}}),
            "line_items[1].quantity",
        ),
        (
            json!({"inventory": {"location_id": 963414, "type": "set", "line_items": [line(-2)]}}),
            "line_items[0].quantity",
        ),
        (
            json!({"inventory": {"location_id": 963414, "line_items": [line(1), {"product_id": 5, "quantity": 1}]}}),
            "line_items[1].product_id",
        ),
    ] {
        let res = server.post(ADJUST, body.clone());
        assert_eq!(res.status, 422, "{body}: {}", res.body);
        let errors = res.json()["errors"].clone();
        let keys: Vec<&String> = errors.as_object().expect("errors object").keys().collect();
        assert_eq!(keys, vec![field], "{body}: {}", res.body);
    }
    // Malformed JSON: 422 in this document's error shape (not the native 400).
    let res = server.raw(server.request("POST", ADJUST).body("{\"inventory\": "));
    assert_eq!(res.status, 422, "{}", res.body);
    assert!(res.json()["errors"].is_object(), "{}", res.body);
    assert_eq!(server.journal_len(), journal, "refusals change nothing");
    server.assert_verified();
}

// ---------------------------------------------------------------------------------------
// Item 4: seed 003 (native) movement types and query values
// ---------------------------------------------------------------------------------------

#[test]
fn seed_003_movement_types_are_the_documents_four_and_query_values_are_as_clients_send_them() {
    let server = Server::open();
    server.warehouse("w1");
    server.product("p1");
    server.product("p2");
    server.movement("p1", "w1", "in", 10);
    let res = server.post(
        "/api/inventory/reservations",
        json!({"product_id": "p1", "warehouse_id": "w1", "quantity": 3}),
    );
    res.expect(201);
    let hold = res.data()["id"].as_str().expect("id").to_string();
    server
        .delete(&format!("/api/inventory/reservations/{}", enc(&hold)))
        .expect(200);
    server
        .patch("/api/inventory/levels/p1/w1", json!({"buffer": 1, "reorder_point": 50}))
        .expect(200);
    server.movement("p1", "w1", "out", 2);

    // The list: only entries that change on_hand, each typed as one of the four.
    let list = |q: &str| {
        let res = server.get(&format!("/api/inventory/movements?{q}"));
        res.expect(200);
        res.json()
    };
    let all = list("");
    assert_eq!(all["meta"]["total"], 2, "{all}");
    let kinds: Vec<&str> = all["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| m["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, vec!["out", "in"]);
    // The others when the `kind` filter names them, typed `adjustment`, kind in `kind`.
    for kind in ["reserve", "release", "buffer"] {
        let v = list(&format!("kind={kind}"));
        assert_eq!(v["meta"]["total"], 1, "{kind}: {v}");
        assert_eq!(v["data"][0]["kind"], kind);
        assert_eq!(v["data"][0]["movement_type"], "adjustment");
    }
    server
        .get("/api/inventory/movements?kind=nope")
        .expect_error(422, "invalid_field");
    for m in list("kind=reserve")["data"]
        .as_array()
        .expect("data")
        .iter()
        .chain(all["data"].as_array().expect("data"))
    {
        assert!(
            ["in", "out", "adjustment", "transfer"].contains(&m["movement_type"].as_str().unwrap_or("")),
            "{m}"
        );
    }
    // The change feed keeps every entry.
    let feed = server.get("/api/inventory/changes?after=0&limit=100").json();
    assert_eq!(feed["data"].as_array().map(Vec::len), Some(5), "{feed}");

    // Booleans as `requests` sends a Python bool, empty parameters as absent ones.
    let levels = |q: &str| {
        let res = server.get(&format!("/api/inventory?{q}"));
        res.expect(200);
        res.json()["meta"]["total"].as_u64().expect("total")
    };
    server.stock("p2", "w1", 100);
    assert_eq!(levels("low_stock=True"), 1);
    assert_eq!(levels("low_stock=true"), 1);
    assert_eq!(levels("low_stock=1"), 1);
    assert_eq!(levels("low_stock=False"), 2);
    assert_eq!(levels("low_stock="), 2, "empty: absent, no filter");
    assert_eq!(levels("warehouse_id=&product_id="), 2, "empty ids: absent");
    assert_eq!(levels("warehouse_id=w1&low_stock=True&out_of_stock=False"), 1);
    server
        .get("/api/inventory?low_stock=yes")
        .expect_error(422, "invalid_field");
    // Date-times without an offset (Python's isoformat()) are UTC.
    assert_eq!(list("start_date=2024-01-15T10:00:00")["meta"]["total"], 3);
    assert_eq!(
        list("start_date=2024-01-15T10:00:00.123456&end_date=")["meta"]["total"],
        3
    );
    assert_eq!(list("end_date=2024-01-15T10:00:00")["meta"]["total"], 0);
    assert_eq!(list("product_id=&warehouse_id=")["meta"]["total"], 3);
    server
        .get("/api/inventory/movements?start_date=2024-01-15T25:00:00")
        .expect_error(422, "invalid_field");
    server.assert_verified();
}

// ---------------------------------------------------------------------------------------
// Item 5: seed 003 analytics
// ---------------------------------------------------------------------------------------

#[test]
fn seed_003_analytics_count_stock_changes_only_and_transfers_per_warehouse() {
    let server = Server::open();
    server.warehouse("w1");
    server.warehouse("w2");
    for p in ["p1", "held", "counted"] {
        server.product(p);
    }
    server.movement("p1", "w1", "in", 50);
    server.stock("held", "w1", 5);
    server.stock("counted", "w1", 3);
    // Holds and a count that finds the stock as it was: no movement in any figure.
    for _ in 0..4 {
        let res = server.post(
            "/api/inventory/reservations",
            json!({"product_id": "held", "warehouse_id": "w1", "quantity": 1}),
        );
        res.expect(201);
        let id = res.data()["id"].as_str().expect("id").to_string();
        server
            .delete(&format!("/api/inventory/reservations/{}", enc(&id)))
            .expect(200);
    }
    // A physical count that finds the 3 there.
    server
        .post(
            "/api/inventory/adjustments",
            json!({"adjustments": [{"product_id": "counted", "warehouse_id": "w1", "actual_quantity": 3, "reason": "count"}]}),
        )
        .expect(201);
    // A transfer w1 → w2 received at once, and one still in transit.
    for in_transit in [false, true] {
        server
            .post(
                "/api/inventory/movements",
                json!({"product_id": "p1", "warehouse_id": "w1", "movement_type": "transfer",
                       "quantity": 10, "to_warehouse_id": "w2", "in_transit": in_transit}),
            )
            .expect(201);
    }
    let analytics = |q: &str| server.get(&format!("/api/inventory/analytics{q}")).data();
    let trend = |a: &Value| {
        (
            a["trends"]["stock_in"].as_i64().unwrap_or(-1),
            a["trends"]["stock_out"].as_i64().unwrap_or(-1),
            a["trends"]["movements"].as_u64().unwrap_or(0),
        )
    };
    let movers = |a: &Value| -> Vec<(String, u64)> {
        a["top_movers"]
            .as_array()
            .expect("movers")
            .iter()
            .map(|m| {
                (
                    m["product_id"].as_str().unwrap_or("").to_string(),
                    m["movement_count"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    };
    // Shop-wide: in 50 + 5 + 3; the transfers move nothing in or out of the shop.
    let shop = analytics("");
    assert_eq!(trend(&shop), (58, 0, 6), "{shop}");
    assert_eq!(
        movers(&shop),
        vec![
            ("p1".to_string(), 4),
            ("held".to_string(), 1),
            ("counted".to_string(), 1)
        ],
        "holds and a ±0 count are no movements: {shop}"
    );
    // Per warehouse: the transfers count where they left…
    let w1 = analytics("?warehouse_id=w1");
    assert_eq!(trend(&w1), (58, 20, 5), "{w1}");
    // …and, once on hand, where they arrived (the one in transit not yet).
    let w2 = analytics("?warehouse_id=w2");
    assert_eq!(trend(&w2), (10, 0, 1), "{w2}");
    server.assert_verified();
}

// ---------------------------------------------------------------------------------------
// Item 6: seed 004
// ---------------------------------------------------------------------------------------

#[test]
fn seed_004_depot_ids_filter_products_and_every_body_part_is_optional() {
    let server = Server::open();
    put(&server, "/api/warehouses/1", json!({"name": "Store 1"}));
    put(&server, "/api/warehouses/2", json!({"name": "Store 2"}));
    for id in ["100", "101", "102"] {
        server.product(id);
    }
    server.stock("100", "1", 5);
    server.stock("101", "2", 6);
    // Every part optional: no body, `{}`, null parts, the document's empty filters.
    let ids = |items: &[Value]| -> Vec<Value> { items.iter().map(|i| i["productId"].clone()).collect() };
    let everything = vec![json!(100), json!(101), json!(102)];
    for body in [
        "",
        " ",
        "{}",
        r#"{"filters": null}"#,
        r#"{"filters": null, "paginator": null}"#,
        r#"{"filters": {}, "paginator": {"size": 50, "sort": {"id": "asc"}}}"#,
    ] {
        assert_eq!(ids(&depot_items(&server, body)), everything, "body {body:?}");
    }
    // depotIds filter the products: only those with stock rows in those depots.
    let only_2 = depot_items(&server, r#"{"filters": {"depotIds": [2]}}"#);
    assert_eq!(ids(&only_2), vec![json!(101)]);
    assert_eq!(only_2[0]["inventory"]["depots"][0]["id"], json!(2));
    assert_eq!(
        ids(&depot_items(&server, r#"{"filters": {"depotIds": [1, "2"]}}"#)),
        vec![json!(100), json!(101)]
    );
    assert_eq!(
        ids(&depot_items(&server, r#"{"filters": {"depotIds": []}}"#)),
        Vec::<Value>::new()
    );
    // A malformed body is still refused, in the document's failed shape.
    let res = server.raw(server.request("POST", DEPOT).body("{"));
    assert_eq!(res.status, 400, "{}", res.body);
    assert_eq!(res.json()["code"], 0);
}

#[test]
fn number_0_stays_with_the_first_default_warehouse_when_the_default_changes() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("d.redb");
    let daemon = Binary::start(&data);
    daemon.product("p1");
    daemon.terminate();
    let config = dir.path().join("stockd.toml");
    std::fs::write(&config, "[inventory]\ndefault_warehouse = \"main\"\n").expect("config");
    let daemon = Binary::start_config(&data, &config);
    assert_eq!(number_of(&daemon, "/api/warehouses/default"), json!(0));
    assert_eq!(number_of(&daemon, "/api/warehouses/main"), json!(A1));
    // No location: the (new) default warehouse, shown by its number; 0 names the first.
    let res = daemon.post(
        ADJUST,
        json!({"inventory": {"line_items": [{"product_id": "p1", "quantity": 2}]}}),
    );
    res.expect(201);
    assert_eq!(res.json()["adjustment"]["location_id"], json!(A1));
    let res = daemon.post(
        ADJUST,
        json!({"inventory": {"location_id": 0, "line_items": [{"product_id": "p1", "quantity": 3}]}}),
    );
    res.expect(201);
    assert_eq!(res.json()["adjustment"]["location_id"], json!(0));
    assert_eq!(daemon.on_hand("p1", "main"), 2);
    assert_eq!(daemon.on_hand("p1", "default"), 3);
    daemon.terminate();
}

/// A seed 004 filter that no product matches examines at most `SCAN_PRODUCTS_MAX` products
/// per request (not the whole catalog): the page ends early with `paginator.next` at the
/// last product examined, and a client following `next` still walks every product once.
#[test]
fn seed_004_a_filter_nothing_matches_walks_the_catalog_in_bounded_pages() {
    const PRODUCTS: usize = stockd::http::depot::SCAN_PRODUCTS_MAX + 50;
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("d.redb");
    let csv = dir.path().join("products.csv");
    let mut text = String::from("id,sku,name\n");
    for i in 0..PRODUCTS {
        text.push_str(&format!("{},S{i},Widget {i}\n", 1_000_000 + i));
    }
    std::fs::write(&csv, text).expect("csv");
    let words = ["import", "--data", data.to_str().expect("path"), "--kind", "products"];
    let args: Vec<&std::ffi::OsStr> = words.iter().map(|a| a.as_ref()).chain([csv.as_os_str()]).collect();
    assert_eq!(run_bin(&args, Duration::from_secs(120)).code, Some(0));
    let daemon = Binary::start(&data);
    let mut next = Value::Null;
    let mut pages = 0;
    loop {
        let paginator = if next.is_null() {
            json!({})
        } else {
            json!({"next": next})
        };
        let body = json!({"filters": {"name": "no such widget"}, "paginator": paginator}).to_string();
        let res = daemon.raw(daemon.request("POST", DEPOT).body(body.clone()));
        assert_eq!(res.status, 200, "{body}: {}", res.body);
        assert_eq!(res.json()["data"], json!([]));
        pages += 1;
        next = res.json()["paginator"]["next"].clone();
        if next.is_null() {
            break;
        }
        assert!(pages < 5, "the walk does not end: {}", res.body);
    }
    assert_eq!(pages, 2, "one page cut at the bound, then the rest");
}
