//! Every native route of API.md, end to end over HTTP, with the seed 003 field names.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::common::{enc, Server};

fn ids(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["id"].as_str().expect("row id").to_string())
        .collect()
}

fn seq_of(id: &str) -> u64 {
    id.strip_prefix("mov_")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("`{id}` is not mov_<seq>"))
}

fn is_rfc3339_utc(s: &Value) -> bool {
    s.as_str().is_some_and(|s| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok() && s.ends_with('Z')
    })
}

/// The UTC date (`YYYY-MM-DD`) of an RFC 3339 time, shifted by `days`.
fn date_of(created_at: &Value, days: i64) -> String {
    let t = time::OffsetDateTime::parse(
        created_at.as_str().expect("created_at"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("created_at is RFC 3339");
    let d = t.date() + time::Duration::days(days);
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[test]
fn warehouses_create_update_get_list() {
    let server = Server::open();
    let res = server.put("/api/warehouses/w1", json!({"name": "Main Warehouse"}));
    res.expect(201);
    // `number`: the stable number the seed dialects show for it (docs/dialects.md).
    assert_eq!(
        res.data(),
        json!({"id": "w1", "name": "Main Warehouse", "number": 9_000_000_000_000_001u64})
    );
    assert!(res
        .header("content-type")
        .unwrap_or_default()
        .starts_with("application/json"));

    let res = server.put("/api/warehouses/w1", json!({"name": "Main Warehouse (north)"}));
    res.expect(200);
    assert_eq!(res.data()["name"], "Main Warehouse (north)");

    let res = server.get("/api/warehouses/w1");
    res.expect(200);
    // An update keeps the number.
    assert_eq!(
        res.data(),
        json!({"id": "w1", "name": "Main Warehouse (north)", "number": 9_000_000_000_000_001u64})
    );

    let res = server.get("/api/warehouses");
    res.expect(200);
    let v = res.json();
    let listed = ids(v["data"].as_array().expect("list"));
    assert_eq!(listed, vec!["default".to_string(), "w1".to_string()], "{}", res.body);
    assert_eq!(v["meta"]["total"], 2);
    assert_eq!(v["meta"]["page"], 1);
    assert_eq!(v["meta"]["hasMore"], false);

    server
        .get("/api/warehouses/nowhere")
        .expect_error(404, "warehouse_not_found");

    // `default` always exists: naming it is an update
    server.get("/api/warehouses/default").expect(200);
    server
        .put("/api/warehouses/default", json!({"name": "Shop floor"}))
        .expect(200);
    assert_eq!(server.get("/api/warehouses/default").data()["name"], "Shop floor");
}

#[test]
fn products_create_update_sku_unique_and_search() {
    let server = Server::open();
    let body = json!({
        "sku": "SW-001", "name": "Smart Widget", "barcode": "8930000000011",
        "category": "widgets", "brand": "Acme", "unit_cost": 12.5, "prices": {"retail": 25.00}
    });
    let res = server.put("/api/products/prod_123", body.clone());
    res.expect(201);
    let p = res.data();
    assert_eq!(p["id"], "prod_123");
    assert_eq!(p["sku"], "SW-001");
    assert_eq!(p["name"], "Smart Widget");
    assert_eq!(p["barcode"], "8930000000011");
    assert_eq!(p["category"], "widgets");
    assert_eq!(p["brand"], "Acme");
    assert!(res.body.contains("\"unit_cost\":12.50"), "{}", res.body);
    assert!(res.body.contains("\"retail\":25.00"), "{}", res.body);
    assert!(is_rfc3339_utc(&p["updated_at"]), "{}", res.body);

    // The same PUT again is an update.
    server.put("/api/products/prod_123", body).expect(200);

    // A sku belongs to one product.
    server
        .put("/api/products/prod_124", json!({"sku": "SW-001", "name": "Copycat"}))
        .expect_error(409, "sku_taken");
    server
        .get("/api/products/prod_124")
        .expect_error(404, "product_not_found");
    server
        .put(
            "/api/products/prod_124",
            json!({"sku": "BW-002", "name": "Basic Widget", "barcode": "8930000000028"}),
        )
        .expect(201);

    let res = server.get("/api/products/prod_123");
    res.expect(200);
    assert_eq!(res.data()["name"], "Smart Widget");

    let search = |query: &str| -> Vec<String> {
        let res = server.get(&format!("/api/products?{query}"));
        res.expect(200);
        ids(res.json()["data"].as_array().expect("list"))
    };
    assert_eq!(search("sku=SW-001"), vec!["prod_123"]);
    assert_eq!(search("sku=BW-002"), vec!["prod_124"]);
    assert!(search("sku=NOPE").is_empty());
    assert_eq!(search("barcode=8930000000011"), vec!["prod_123"]);
    assert_eq!(search("q=widget"), vec!["prod_123", "prod_124"]);
    assert_eq!(search("q=BASIC"), vec!["prod_124"]);
    assert_eq!(search("q=bw-0"), vec!["prod_124"]);
    assert_eq!(search("q=0000000011"), vec!["prod_123"]);
    assert_eq!(search(""), vec!["prod_123", "prod_124"]);
    let res = server.get("/api/products?limit=1");
    let v = res.json();
    assert_eq!(v["meta"]["total"], 2);
    assert_eq!(v["meta"]["limit"], 1);
    assert_eq!(v["meta"]["hasMore"], true);

    // Taking another product's sku on update is refused and changes nothing.
    server
        .put("/api/products/prod_124", json!({"sku": "SW-001", "name": "Renamed"}))
        .expect_error(409, "sku_taken");
    assert_eq!(server.get("/api/products/prod_124").data()["name"], "Basic Widget");
    assert_eq!(search("sku=BW-002"), vec!["prod_124"]);

    // Changing a product's sku and barcode frees the old ones.
    server
        .put(
            "/api/products/prod_123",
            json!({"sku": "SW-001b", "name": "Smart Widget", "barcode": "8930000000035"}),
        )
        .expect(200);
    assert!(search("sku=SW-001").is_empty());
    assert!(search("barcode=8930000000011").is_empty());
    assert_eq!(search("sku=SW-001b"), vec!["prod_123"]);
    assert_eq!(search("barcode=8930000000035"), vec!["prod_123"]);
    server
        .put(
            "/api/products/prod_124",
            json!({"sku": "SW-001", "name": "Basic Widget"}),
        )
        .expect(200);
    assert_eq!(search("sku=SW-001"), vec!["prod_124"]);

    // cursor paging over the catalog, plain and searched
    for i in 0..5 {
        server.product(&format!("x{i}"));
    }
    let walked = ids(&server.walk_cursor("/api/products?limit=2", 10));
    assert_eq!(walked, ["prod_123", "prod_124", "x0", "x1", "x2", "x3", "x4"]);
    let walked = ids(&server.walk_cursor("/api/products?limit=1&q=widget", 10));
    assert_eq!(walked, ["prod_123", "prod_124"]);
    let walked = ids(&server.walk_cursor("/api/products?limit=1&barcode=8930000000035", 10));
    assert_eq!(walked, ["prod_123"]);
}

#[test]
fn product_inventory_has_rows_and_totals() {
    let server = Server::open();
    server.product("p1");
    server.warehouse("w1");
    server.warehouse("w2");
    server.stock("p1", "w1", 10);
    server.stock("p1", "w2", 5);
    server
        .patch("/api/inventory/levels/p1/w2", json!({"buffer": 2}))
        .expect(200);

    let res = server.get("/api/products/p1/inventory");
    res.expect(200);
    let d = res.data();
    assert_eq!(d["product_id"], "p1");
    let rows = d["warehouses"].as_array().expect("warehouses");
    assert_eq!(rows.len(), 2, "{}", res.body);
    let mut warehouses: Vec<_> = rows
        .iter()
        .map(|r| r["warehouse"]["id"].as_str().unwrap_or(""))
        .collect();
    warehouses.sort_unstable();
    assert_eq!(warehouses, ["w1", "w2"]);
    assert_eq!(
        d["totals"],
        json!({
            "quantity_on_hand": 15, "quantity_allocated": 0, "quantity_available": 13,
            "quantity_damaged": 0, "quantity_buffer": 2, "quantity_in_transit": 0
        })
    );

    server.product("p2");
    let res = server.get("/api/products/p2/inventory");
    res.expect(200);
    assert_eq!(res.data()["warehouses"], json!([]));
    assert_eq!(res.data()["totals"]["quantity_on_hand"], 0);

    server
        .get("/api/products/ghost/inventory")
        .expect_error(404, "product_not_found");
}

#[test]
fn level_rows_filters_paging_and_cursor() {
    let server = Server::open();
    server.warehouse("w1");
    server.warehouse("w2");
    for p in ["p1", "p2", "p3", "p4", "p5"] {
        server.product(p);
    }
    // p1/w1 100, p2/w1 5 (low: reorder 10), p3/w1 0 (out: in then out), p4/w2 7, p5/w2 0 via set.
    server.stock("p1", "w1", 100);
    server.stock("p2", "w1", 5);
    server.stock("p3", "w1", 3);
    server.movement("p3", "w1", "out", 3);
    server.stock("p4", "w2", 7);
    server.stock("p5", "w2", 2);
    server.movement("p5", "w2", "set", 0);
    let res = server.patch(
        "/api/inventory/levels/p2/w1",
        json!({"reorder_point": 10, "max_stock_level": 500}),
    );
    res.expect(200);

    let level = server.level("p2", "w1");
    for key in [
        "id",
        "product",
        "warehouse",
        "quantity_on_hand",
        "quantity_allocated",
        "quantity_available",
        "quantity_damaged",
        "quantity_buffer",
        "quantity_in_transit",
        "reorder_point",
        "max_stock_level",
        "last_counted",
        "updated_at",
    ] {
        assert!(level.get(key).is_some(), "level row without `{key}`: {level}");
    }
    assert_eq!(
        level["product"],
        json!({"id": "p2", "name": "Product p2", "sku": "SKU-p2"})
    );
    assert_eq!(level["warehouse"], json!({"id": "w1", "name": "Warehouse w1"}));
    assert_eq!(level["quantity_on_hand"], 5);
    assert_eq!(level["quantity_available"], 5);
    assert_eq!(level["reorder_point"], 10);
    assert_eq!(level["max_stock_level"], 500);
    assert!(is_rfc3339_utc(&level["updated_at"]), "{level}");
    // A count sets last_counted.
    assert!(is_rfc3339_utc(&server.level("p5", "w2")["last_counted"]));

    let keys = |query: &str| -> Vec<(String, String)> {
        let res = server.get(&format!("/api/inventory?{query}"));
        res.expect(200);
        res.json()["data"]
            .as_array()
            .expect("list")
            .iter()
            .map(|r| {
                (
                    r["product"]["id"].as_str().unwrap_or("").to_string(),
                    r["warehouse"]["id"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let k = |p: &str, w: &str| (p.to_string(), w.to_string());
    assert_eq!(
        keys(""),
        vec![
            k("p1", "w1"),
            k("p2", "w1"),
            k("p3", "w1"),
            k("p4", "w2"),
            k("p5", "w2")
        ]
    );
    assert_eq!(
        keys("warehouse_id=w1"),
        vec![k("p1", "w1"), k("p2", "w1"), k("p3", "w1")]
    );
    assert_eq!(keys("warehouse_id=w2"), vec![k("p4", "w2"), k("p5", "w2")]);
    assert_eq!(keys("product_id=p4"), vec![k("p4", "w2")]);
    assert_eq!(keys("product_id=p4&warehouse_id=w1"), vec![]);
    assert_eq!(keys("low_stock=true"), vec![k("p2", "w1")]);
    assert_eq!(keys("out_of_stock=true"), vec![k("p3", "w1"), k("p5", "w2")]);
    assert_eq!(keys("out_of_stock=true&warehouse_id=w2"), vec![k("p5", "w2")]);
    assert_eq!(keys("low_stock=false&out_of_stock=false").len(), 5);

    // page/limit and meta
    let res = server.get("/api/inventory?page=2&limit=2");
    res.expect(200);
    let v = res.json();
    assert_eq!(v["meta"]["total"], 5, "{}", res.body);
    assert_eq!(v["meta"]["page"], 2);
    assert_eq!(v["meta"]["limit"], 2);
    assert_eq!(v["meta"]["hasMore"], true);
    assert_eq!(v["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["data"][0]["product"]["id"], "p3");
    let res = server.get("/api/inventory?page=3&limit=2");
    let v = res.json();
    assert_eq!(v["meta"]["hasMore"], false);
    assert_eq!(v["data"].as_array().map(Vec::len), Some(1));
    let res = server.get("/api/inventory?page=4&limit=2");
    assert_eq!(res.json()["data"], json!([]));
    let res = server.get("/api/inventory");
    assert_eq!(res.json()["meta"]["limit"], 20);
    assert_eq!(res.json()["meta"]["page"], 1);

    // cursor paging walks every row exactly once, with and without filters
    for (query, expected) in [
        ("limit=2", 5),
        ("limit=1&warehouse_id=w1", 3),
        ("limit=1&product_id=p1", 1),
    ] {
        let rows = server.walk_cursor(&format!("/api/inventory?{query}"), 10);
        let got = ids(&rows);
        let distinct: BTreeSet<_> = got.iter().collect();
        assert_eq!(got.len(), expected, "{query}: {got:?}");
        assert_eq!(distinct.len(), expected, "{query}: a row twice: {got:?}");
    }
}

#[test]
fn patch_level_sets_planning_fields_and_buffer() {
    let server = Server::open();
    server.product("p1");
    server.warehouse("w1");
    server.stock("p1", "w1", 100);
    let before = server.journal_len();

    let res = server.patch(
        "/api/inventory/levels/p1/w1",
        json!({"reorder_point": 20, "max_stock_level": 500, "buffer": 10}),
    );
    res.expect(200);
    let row = res.data();
    assert_eq!(row["quantity_on_hand"], 100);
    assert_eq!(row["quantity_buffer"], 10);
    assert_eq!(row["quantity_available"], 90);
    assert_eq!(row["reorder_point"], 20);
    assert_eq!(row["max_stock_level"], 500);
    // The buffer change is journaled; on_hand is not.
    assert_eq!(server.journal_len(), before + 1);
    assert_eq!(server.on_hand("p1", "w1"), 100);

    // A buffer larger than what is available is a conflict, and changes nothing.
    let journal = server.journal_len();
    server
        .patch(
            "/api/inventory/levels/p1/w1",
            json!({"buffer": 101, "reorder_point": 1}),
        )
        .expect_error(409, "insufficient_stock");
    assert_eq!(server.journal_len(), journal);
    assert_eq!(server.level("p1", "w1")["reorder_point"], 20);
    assert_eq!(server.level("p1", "w1")["quantity_buffer"], 10);

    // A partial patch leaves the other fields alone.
    let res = server.patch("/api/inventory/levels/p1/w1", json!({"reorder_point": 5}));
    res.expect(200);
    assert_eq!(res.data()["max_stock_level"], 500);
    assert_eq!(res.data()["quantity_buffer"], 10);

    // The buffer is not for sale.
    let res = server.post(
        "/api/inventory/movements",
        json!({"product_id": "p1", "warehouse_id": "w1", "movement_type": "out", "quantity": 91}),
    );
    res.expect_error(409, "insufficient_stock");
    let out = server.movement("p1", "w1", "out", 90);
    assert_eq!(out["balance_after"], 10);
    let level = server.level("p1", "w1");
    assert_eq!(level["quantity_available"], 0);
    assert_eq!(
        server
            .get("/api/inventory?out_of_stock=true")
            .data()
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // Releasing the buffer makes it available again.
    let res = server.patch("/api/inventory/levels/p1/w1", json!({"buffer": 0}));
    res.expect(200);
    assert_eq!(res.data()["quantity_available"], 10);

    server
        .patch("/api/inventory/levels/ghost/w1", json!({"reorder_point": 1}))
        .expect_error(404, "product_not_found");
    server
        .patch("/api/inventory/levels/p1/ghost", json!({"reorder_point": 1}))
        .expect_error(404, "warehouse_not_found");
    server.assert_verified();
}

#[test]
fn movement_seed_003_example_and_kinds() {
    let server = Server::open();
    server
        .put(
            "/api/products/prod_123",
            json!({"sku": "SW-001", "name": "Smart Widget"}),
        )
        .expect(201);
    server
        .put("/api/warehouses/wh_789", json!({"name": "Main Warehouse"}))
        .expect(201);

    // The seed 003 example body, verbatim.
    let body = r#"{
"product_id": "prod_123",
"warehouse_id": "wh_789",
"movement_type": "in",
"quantity": 50,
"reference_type": "purchase_order",
"reference_id": "po_456",
"notes": "Received from Supplier ABC",
"cost_per_unit": 25.00
}"#;
    let res = server.raw(server.request("POST", "/api/inventory/movements").body(body));
    res.expect(201);
    assert!(res
        .header("content-type")
        .unwrap_or_default()
        .starts_with("application/json"));
    assert!(res.body.contains("\"cost_per_unit\":25.00"), "{}", res.body);
    let m = res.data();
    let id = m["id"].as_str().expect("id").to_string();
    assert!(seq_of(&id) >= 1);
    assert_eq!(m["product_id"], "prod_123");
    assert_eq!(m["warehouse_id"], "wh_789");
    assert_eq!(m["movement_type"], "in");
    assert_eq!(m["quantity"], 50);
    assert_eq!(m["balance_before"], 0);
    assert_eq!(m["balance_after"], 50);
    assert_eq!(m["reference_type"], "purchase_order");
    assert_eq!(m["reference_id"], "po_456");
    assert_eq!(m["notes"], "Received from Supplier ABC");
    assert!(is_rfc3339_utc(&m["created_at"]), "{m}");
    assert_eq!(m["created_by"]["id"], m["created_by"]["name"]);
    assert!(m["created_by"]["id"].is_string(), "{m}");

    let out = server.movement("prod_123", "wh_789", "out", 20);
    assert_eq!(
        (out["balance_before"].as_i64(), out["balance_after"].as_i64()),
        (Some(50), Some(30))
    );
    assert_eq!(out["movement_type"], "out");
    assert_eq!(out["quantity"], 20);
    assert_eq!(seq_of(out["id"].as_str().unwrap_or("")), seq_of(&id) + 1);
    assert!(out["cost_per_unit"].is_null());

    let adj = server.movement("prod_123", "wh_789", "adjustment", -5);
    assert_eq!(adj["movement_type"], "adjustment");
    assert_eq!(adj["quantity"], -5);
    assert_eq!(adj["balance_after"], 25);
    let adj = server.movement("prod_123", "wh_789", "adjustment", 3);
    assert_eq!(adj["balance_after"], 28);

    let set = server.movement("prod_123", "wh_789", "set", 100);
    assert_eq!(set["balance_before"], 28);
    assert_eq!(set["balance_after"], 100);
    assert_eq!(server.on_hand("prod_123", "wh_789"), 100);

    // Out beyond what is available is refused and changes nothing.
    let journal = server.journal_len();
    server
        .post(
            "/api/inventory/movements",
            json!({"product_id": "prod_123", "warehouse_id": "wh_789", "movement_type": "out", "quantity": 101}),
        )
        .expect_error(409, "insufficient_stock");
    // An adjustment may not take on_hand below zero either.
    server
        .post(
            "/api/inventory/movements",
            json!({"product_id": "prod_123", "warehouse_id": "wh_789", "movement_type": "adjustment", "quantity": -101}),
        )
        .expect_error(409, "insufficient_stock");
    assert_eq!(server.journal_len(), journal);
    assert_eq!(server.on_hand("prod_123", "wh_789"), 100);

    // Without warehouse_id the movement goes to the default warehouse.
    let res = server.post(
        "/api/inventory/movements",
        json!({"product_id": "prod_123", "movement_type": "in", "quantity": 4}),
    );
    res.expect(201);
    assert_eq!(res.data()["warehouse_id"], "default");
    assert_eq!(server.on_hand("prod_123", "default"), 4);

    // The stored movement reads back the same, with names resolved.
    let res = server.get(&format!("/api/inventory/movements/{id}"));
    res.expect(200);
    assert!(res.body.contains("\"cost_per_unit\":25.00"), "{}", res.body);
    let got = res.data();
    for key in [
        "id",
        "product_id",
        "warehouse_id",
        "movement_type",
        "quantity",
        "balance_before",
        "balance_after",
    ] {
        assert_eq!(got[key], m[key], "`{key}` differs: {got}");
    }
    for key in ["reference_type", "reference_id", "notes", "created_at", "created_by"] {
        assert_eq!(got[key], m[key], "`{key}` differs: {got}");
    }
    assert_eq!(
        got["product"],
        json!({"id": "prod_123", "name": "Smart Widget", "sku": "SW-001"})
    );
    assert_eq!(got["warehouse"], json!({"id": "wh_789", "name": "Main Warehouse"}));
    server.assert_verified();
}

#[test]
fn expected_on_hand_is_compare_and_set() {
    let server = Server::open();
    server.product("p1");
    server.stock("p1", "default", 10);
    let journal = server.journal_len();
    let res = server.post(
        "/api/inventory/movements",
        json!({"product_id": "p1", "movement_type": "out", "quantity": 1, "expected_on_hand": 9}),
    );
    res.expect_error(409, "quantity_mismatch");
    assert_eq!(server.on_hand("p1", "default"), 10);
    assert_eq!(server.journal_len(), journal);

    let res = server.post(
        "/api/inventory/movements",
        json!({"product_id": "p1", "movement_type": "out", "quantity": 1, "expected_on_hand": 10}),
    );
    res.expect(201);
    assert_eq!(res.data()["balance_after"], 9);

    // The same holds for a set (a count taken against a known level).
    server
        .post(
            "/api/inventory/movements",
            json!({"product_id": "p1", "movement_type": "set", "quantity": 3, "expected_on_hand": 10}),
        )
        .expect_error(409, "quantity_mismatch");
    assert_eq!(server.on_hand("p1", "default"), 9);
}

#[test]
fn transfer_immediate_moves_stock_in_one_batch() {
    let server = Server::open();
    server.product("p1");
    server.warehouse("w1");
    server.warehouse("w2");
    server.stock("p1", "w1", 10);
    let journal = server.journal_len();

    let res = server.post(
        "/api/inventory/movements",
        json!({"product_id": "p1", "warehouse_id": "w1", "movement_type": "transfer", "quantity": 4,
               "to_warehouse_id": "w2", "reference_id": "tr-1"}),
    );
    res.expect(201);
    let t = res.data();
    assert!(t["transfer_id"].as_str().is_some_and(|s| s.starts_with("trf_")), "{t}");
    assert_eq!(t["status"], "received");
    let legs = t["legs"].as_array().expect("legs");
    assert_eq!(legs.len(), 2, "{t}");
    assert_eq!(legs[0]["warehouse_id"], "w1");
    assert_eq!(legs[0]["balance_before"], 10);
    assert_eq!(legs[0]["balance_after"], 6);
    assert_eq!(legs[0]["movement_type"], "transfer");
    assert_eq!(legs[1]["warehouse_id"], "w2");
    assert_eq!(legs[1]["balance_after"], 4);
    assert_eq!(server.on_hand("p1", "w1"), 6);
    assert_eq!(server.on_hand("p1", "w2"), 4);
    assert_eq!(server.journal_len(), journal + 2);

    // Both legs are listed as transfers and carry the transfer id.
    let res = server.get("/api/inventory/movements?movement_type=transfer");
    let rows = res.data();
    let rows = rows.as_array().expect("list");
    assert_eq!(rows.len(), 2, "{}", res.body);
    assert!(
        rows.iter().all(|r| r["transfer_id"] == t["transfer_id"]),
        "{}",
        res.body
    );

    // compare-and-set applies to the source
    server
        .post(
            "/api/inventory/movements",
            json!({"product_id": "p1", "warehouse_id": "w1", "movement_type": "transfer", "quantity": 1,
                   "to_warehouse_id": "w2", "expected_on_hand": 10}),
        )
        .expect_error(409, "quantity_mismatch");
    assert_eq!(server.journal_len(), journal + 2);

    // Not more than is available.
    server
        .post(
            "/api/inventory/movements",
            json!({"product_id": "p1", "warehouse_id": "w1", "movement_type": "transfer", "quantity": 7, "to_warehouse_id": "w2"}),
        )
        .expect_error(409, "insufficient_stock");
    assert_eq!(server.journal_len(), journal + 2);
    assert_eq!(server.on_hand("p1", "w2"), 4);
    server.assert_verified();
}

#[test]
fn transfer_in_transit_is_received_once() {
    let server = Server::open();
    server.product("p1");
    server.warehouse("w1");
    server.warehouse("w2");
    server.stock("p1", "w1", 10);

    let res = server.post(
        "/api/inventory/movements",
        json!({"product_id": "p1", "warehouse_id": "w1", "movement_type": "transfer", "quantity": 4,
               "to_warehouse_id": "w2", "in_transit": true}),
    );
    res.expect(201);
    let t = res.data();
    let tid = t["transfer_id"].as_str().expect("transfer_id").to_string();
    assert_eq!(t["status"], "in_transit");
    let legs = t["legs"].as_array().expect("legs");
    assert_eq!(legs.len(), 1, "only the out leg while in transit: {t}");
    assert_eq!(legs[0]["warehouse_id"], "w1");
    assert_eq!(server.on_hand("p1", "w1"), 6);
    let target = server.level("p1", "w2");
    assert_eq!(target["quantity_on_hand"], 0);
    assert_eq!(target["quantity_in_transit"], 4);
    assert_eq!(target["quantity_available"], 0);
    let totals = server.get("/api/products/p1/inventory").data()["totals"].clone();
    assert_eq!(totals["quantity_on_hand"], 6);
    assert_eq!(totals["quantity_in_transit"], 4);

    let res = server.post(&format!("/api/inventory/transfers/{tid}/receive"), json!({}));
    res.expect(200);
    let t = res.data();
    assert_eq!(t["transfer_id"], tid.as_str());
    assert_eq!(t["status"], "received");
    let legs = t["legs"].as_array().expect("legs");
    assert_eq!(legs.len(), 2, "{t}");
    assert_eq!(legs[1]["warehouse_id"], "w2");
    assert_eq!(legs[1]["movement_type"], "in");
    assert_eq!(legs[1]["balance_after"], 4);
    let target = server.level("p1", "w2");
    assert_eq!(target["quantity_on_hand"], 4);
    assert_eq!(target["quantity_in_transit"], 0);

    // A second receive is refused and moves nothing.
    let journal = server.journal_len();
    server
        .raw(server.request("POST", &format!("/api/inventory/transfers/{tid}/receive")))
        .expect_error(409, "already_received");
    assert_eq!(server.journal_len(), journal);
    assert_eq!(server.on_hand("p1", "w2"), 4);
    assert_eq!(server.level("p1", "w2")["quantity_in_transit"], 0);

    // An immediate transfer cannot be received either.
    let res = server.post(
        "/api/inventory/movements",
        json!({"product_id": "p1", "warehouse_id": "w1", "movement_type": "transfer", "quantity": 1, "to_warehouse_id": "w2"}),
    );
    let immediate = res.data()["transfer_id"].as_str().unwrap_or("").to_string();
    server
        .raw(server.request("POST", &format!("/api/inventory/transfers/{immediate}/receive")))
        .expect_error(409, "already_received");

    let res = server.raw(server.request("POST", "/api/inventory/transfers/trf_999999/receive"));
    assert_eq!(res.status, 404, "{}", res.body);
    server.assert_verified();
}

#[test]
fn movement_get_and_list_filters_newest_first() {
    let server = Server::open();
    server.product("p1");
    server.product("p2");
    server.warehouse("w1");
    server.warehouse("w2");
    let with_reference = || {
        let res = server.post(
            "/api/inventory/movements",
            json!({"product_id": "p2", "warehouse_id": "w1", "movement_type": "in", "quantity": 5, "reference_id": "po_1"}),
        );
        res.expect(201);
        res.data()
    };
    let made = [
        server.stock("p1", "w1", 10),
        server.stock("p2", "w1", 20),
        server.stock("p1", "w2", 30),
        server.movement("p1", "w1", "out", 1),
        with_reference(),
        server.movement("p2", "w1", "adjustment", -2),
    ];
    let id = |i: usize| made[i]["id"].as_str().unwrap_or("").to_string();

    // GET by id
    let res = server.get(&format!("/api/inventory/movements/{}", id(2)));
    res.expect(200);
    let m = res.data();
    assert_eq!(m["product_id"], "p1");
    assert_eq!(m["warehouse_id"], "w2");
    assert_eq!(m["quantity"], 30);

    let list = |query: &str| -> Vec<String> {
        let res = server.get(&format!("/api/inventory/movements?{query}"));
        res.expect(200);
        let v = res.json();
        let rows = v["data"].as_array().expect("list");
        let got = ids(rows);
        assert_eq!(
            v["meta"]["total"].as_u64(),
            Some(got.len() as u64),
            "{query}: {}",
            res.body
        );
        got
    };
    let want = |idx: &[usize]| -> Vec<String> { idx.iter().map(|&i| id(i)).collect() };
    assert_eq!(list(""), want(&[5, 4, 3, 2, 1, 0]), "newest first");
    assert_eq!(list("product_id=p1"), want(&[3, 2, 0]));
    assert_eq!(list("warehouse_id=w1"), want(&[5, 4, 3, 1, 0]));
    assert_eq!(list("product_id=p1&warehouse_id=w1"), want(&[3, 0]));
    assert_eq!(list("movement_type=in"), want(&[4, 2, 1, 0]));
    assert_eq!(list("movement_type=out"), want(&[3]));
    assert_eq!(list("movement_type=adjustment"), want(&[5]));
    assert_eq!(list("movement_type=in&product_id=p2"), want(&[4, 1]));
    assert_eq!(list("reference_id=po_1"), want(&[4]));
    assert_eq!(list("reference_id=po_1&warehouse_id=w1"), want(&[4]));
    assert_eq!(list("reference_id=po_2"), want(&[]));
    assert_eq!(list("product_id=ghost"), want(&[]));

    // Rows carry the seed 003 list fields.
    let res = server.get("/api/inventory/movements?limit=1");
    let row = res.json()["data"][0].clone();
    assert_eq!(row["id"], id(5).as_str());
    assert_eq!(
        row["product"],
        json!({"id": "p2", "name": "Product p2", "sku": "SKU-p2"})
    );
    assert_eq!(row["warehouse"], json!({"id": "w1", "name": "Warehouse w1"}));
    assert_eq!(row["movement_type"], "adjustment");
    assert_eq!(row["quantity"], -2);
    assert_eq!(row["balance_before"], 25);
    assert_eq!(row["balance_after"], 23);
    assert!(
        row["created_by"]["id"].is_string() && row["created_by"]["name"].is_string(),
        "{row}"
    );
    assert!(is_rfc3339_utc(&row["created_at"]));

    // Dates: date-only values cover whole UTC days; date-times are inclusive bounds.
    let first_day = date_of(&made[0]["created_at"], 0);
    let last_day = date_of(&made[5]["created_at"], 0);
    assert_eq!(
        list(&format!("end_date={last_day}")).len(),
        6,
        "a date-only end_date includes the whole day"
    );
    assert_eq!(list(&format!("start_date={first_day}&end_date={last_day}")).len(), 6);
    assert_eq!(
        list(&format!("end_date={}", date_of(&made[0]["created_at"], -1))),
        want(&[])
    );
    assert_eq!(
        list(&format!("start_date={}", date_of(&made[5]["created_at"], 1))),
        want(&[])
    );
    let t3 = made[3]["created_at"].as_str().unwrap_or("").to_string();
    let from_t3 = list(&format!("start_date={}", enc(&t3)));
    let until_t3 = list(&format!("end_date={}", enc(&t3)));
    for i in 3..6 {
        assert!(from_t3.contains(&id(i)), "start_date={t3} lacks {}: {from_t3:?}", id(i));
    }
    for i in 0..4 {
        assert!(until_t3.contains(&id(i)), "end_date={t3} lacks {}: {until_t3:?}", id(i));
    }
    for (i, m) in made.iter().enumerate() {
        let at = m["created_at"].as_str().unwrap_or("");
        if from_t3.contains(&id(i)) {
            assert!(at >= t3.as_str(), "{} at {at} is before start_date {t3}", id(i));
        }
        if until_t3.contains(&id(i)) {
            assert!(at <= t3.as_str(), "{} at {at} is after end_date {t3}", id(i));
        }
    }
    let window = list(&format!(
        "start_date={first_day}&end_date={last_day}&product_id=p2&movement_type=in"
    ));
    assert_eq!(window, want(&[4, 1]));

    server
        .get("/api/inventory/movements/mov_999")
        .expect_error(404, "movement_not_found");
}

#[test]
fn movement_paging_and_cursor_visit_each_once() {
    let server = Server::open();
    server.product("p1");
    server.product("p2");
    // 120 movements, alternating products; setup sends them from a few threads.
    let client = server.client();
    std::thread::scope(|s| {
        for t in 0..4 {
            let client = client.clone();
            s.spawn(move || {
                for i in 0..30 {
                    let p = if (t * 30 + i) % 2 == 0 { "p1" } else { "p2" };
                    client.stock(p, "default", 1);
                }
            });
        }
    });
    assert_eq!(server.journal_len(), 120);

    // page/limit
    let mut paged = Vec::new();
    for page in 1..=3 {
        let res = server.get(&format!("/api/inventory/movements?page={page}&limit=50"));
        res.expect(200);
        let v = res.json();
        assert_eq!(v["meta"]["total"], 120);
        assert_eq!(v["meta"]["page"], page);
        assert_eq!(v["meta"]["limit"], 50);
        assert_eq!(v["meta"]["hasMore"], page < 3, "page {page}");
        let rows = v["data"].as_array().expect("list");
        assert_eq!(rows.len(), if page < 3 { 50 } else { 20 });
        paged.extend(ids(rows).iter().map(|i| seq_of(i)));
    }
    let all_desc: Vec<u64> = (1..=120).rev().collect();
    assert_eq!(paged, all_desc, "pages are disjoint, cover everything, newest first");
    let res = server.get("/api/inventory/movements?page=4&limit=50");
    assert_eq!(res.json()["data"], json!([]));
    assert_eq!(res.json()["meta"]["hasMore"], false);

    // cursor: every movement exactly once, in descending seq
    let rows = server.walk_cursor("/api/inventory/movements?limit=50", 10);
    let walked: Vec<u64> = ids(&rows).iter().map(|i| seq_of(i)).collect();
    assert_eq!(walked, all_desc);

    // cursor with a filter served by an index, and with a residual filter
    for (query, product) in [("product_id=p1", "p1"), ("product_id=p2&movement_type=in", "p2")] {
        let rows = server.walk_cursor(&format!("/api/inventory/movements?{query}&limit=7"), 20);
        let seqs: Vec<u64> = ids(&rows).iter().map(|i| seq_of(i)).collect();
        assert_eq!(seqs.len(), 60, "{query}");
        assert!(
            seqs.windows(2).all(|w| w[0] > w[1]),
            "{query}: not strictly descending: {seqs:?}"
        );
        assert!(rows.iter().all(|r| r["product_id"] == product), "{query}");
    }

    // an exactly full last page has no more after it, by page and by cursor
    let res = server.get("/api/inventory/movements?page=2&limit=60");
    assert_eq!(res.json()["meta"]["hasMore"], false);
    assert_eq!(res.json()["data"].as_array().map(Vec::len), Some(60));
    let rows = server.walk_cursor("/api/inventory/movements?limit=60", 3);
    assert_eq!(rows.len(), 120);
    let res = server.get("/api/inventory/movements?limit=120");
    assert_eq!(res.json()["meta"]["hasMore"], false);
    assert!(res.json()["meta"]["next_cursor"].is_null());

    // totals of filtered lists count every match, whatever the page
    for (query, total, rows) in [
        ("product_id=p1&limit=7&page=2", 60, 7),
        ("product_id=p1&limit=7&page=9", 60, 4),
        ("product_id=p2&movement_type=in&limit=50&page=2", 60, 10),
        ("movement_type=in&limit=50", 120, 50),
        ("movement_type=out&limit=50", 0, 0),
    ] {
        let res = server.get(&format!("/api/inventory/movements?{query}"));
        res.expect(200);
        let v = res.json();
        assert_eq!(v["meta"]["total"], total, "{query}");
        assert_eq!(v["data"].as_array().map(Vec::len), Some(rows), "{query}");
        let page: u64 = v["meta"]["page"].as_u64().unwrap_or(0);
        let limit: u64 = v["meta"]["limit"].as_u64().unwrap_or(0);
        assert_eq!(v["meta"]["hasMore"], page * limit < total, "{query}");
    }

    // a date window combined with a cursor
    let first = server.get("/api/inventory/movements?limit=1&page=120").json()["data"][0].clone();
    assert_eq!(first["seq"], 1);
    let day = date_of(&first["created_at"], 0);
    let next_day = date_of(&first["created_at"], 1);
    let rows = server.walk_cursor(
        &format!("/api/inventory/movements?start_date={day}&end_date={next_day}&limit=33"),
        10,
    );
    assert_eq!(rows.len(), 120);

    // the cursor starting point is exclusive and resumes after a page
    let res = server.get("/api/inventory/movements?limit=50");
    let cursor = res.json()["meta"]["next_cursor"]
        .as_str()
        .expect("next_cursor")
        .to_string();
    let res = server.get(&format!("/api/inventory/movements?limit=10&cursor={}", enc(&cursor)));
    res.expect(200);
    let seqs: Vec<u64> = ids(res.json()["data"].as_array().expect("list"))
        .iter()
        .map(|i| seq_of(i))
        .collect();
    assert_eq!(seqs, (61..=70).rev().collect::<Vec<u64>>());
}

#[test]
fn bulk_adjustments_seed_003_shape() {
    let server = Server::open();
    server
        .put(
            "/api/products/prod_123",
            json!({"sku": "SW-001", "name": "Smart Widget"}),
        )
        .expect(201);
    server
        .put(
            "/api/products/prod_124",
            json!({"sku": "BW-002", "name": "Basic Widget"}),
        )
        .expect(201);
    server
        .put("/api/warehouses/wh_789", json!({"name": "Main Warehouse"}))
        .expect(201);
    server.stock("prod_123", "wh_789", 200);
    server.stock("prod_124", "wh_789", 90);

    let body = r#"{
"adjustments": [
{
"product_id": "prod_123",
"warehouse_id": "wh_789",
"actual_quantity": 195,
"reason": "Physical count adjustment"
},
{
"product_id": "prod_124",
"warehouse_id": "wh_789",
"actual_quantity": 85,
"reason": "Damaged goods removal"
}
]
}"#;
    let res = server.raw(server.request("POST", "/api/inventory/adjustments").body(body));
    assert!(matches!(res.status, 200 | 201), "{} {}", res.status, res.body);
    let d = res.data();
    assert_eq!(d["adjustments_processed"], 2);
    assert_eq!(d["total_adjustments"], 2);
    let rows = d["adjustments"].as_array().expect("adjustments");
    assert_eq!(rows.len(), 2);
    let first = &rows[0];
    for key in [
        "id",
        "product_id",
        "warehouse_id",
        "quantity_before",
        "quantity_after",
        "adjustment",
        "reason",
        "created_at",
    ] {
        assert!(first.get(key).is_some(), "adjustment row without `{key}`: {first}");
    }
    assert_eq!(first["product_id"], "prod_123");
    assert_eq!(first["warehouse_id"], "wh_789");
    assert_eq!(first["quantity_before"], 200);
    assert_eq!(first["quantity_after"], 195);
    assert_eq!(first["adjustment"], -5);
    assert_eq!(first["reason"], "Physical count adjustment");
    assert!(is_rfc3339_utc(&first["created_at"]));
    assert_eq!(rows[1]["quantity_before"], 90);
    assert_eq!(rows[1]["quantity_after"], 85);
    assert_eq!(rows[1]["adjustment"], -5);
    assert_eq!(server.on_hand("prod_123", "wh_789"), 195);
    assert_eq!(server.on_hand("prod_124", "wh_789"), 85);
    assert!(is_rfc3339_utc(&server.level("prod_123", "wh_789")["last_counted"]));

    // The adjustment ids are movements.
    let mid = first["id"].as_str().expect("id");
    let res = server.get(&format!("/api/inventory/movements/{mid}"));
    res.expect(200);
    assert_eq!(res.data()["balance_after"], 195);

    // A count of a product never stocked there starts its level.
    server
        .put("/api/products/prod_125", json!({"sku": "NW-003", "name": "New Widget"}))
        .expect(201);
    let res = server.post(
        "/api/inventory/adjustments",
        json!({"adjustments": [{"product_id": "prod_125", "warehouse_id": "wh_789", "actual_quantity": 12}]}),
    );
    let row = res.data()["adjustments"][0].clone();
    assert_eq!(
        (row["quantity_before"].as_i64(), row["quantity_after"].as_i64()),
        (Some(0), Some(12)),
        "{}",
        res.body
    );
    assert_eq!(row["adjustment"], 12);
    assert_eq!(server.on_hand("prod_125", "wh_789"), 12);

    // A count that matches changes no quantity but is still processed.
    let res = server.post(
        "/api/inventory/adjustments",
        json!({"adjustments": [
            {"product_id": "prod_123", "warehouse_id": "wh_789", "actual_quantity": 195, "reason": "recount"},
            {"product_id": "prod_124", "warehouse_id": "wh_789", "actual_quantity": 100, "reason": "found"}
        ]}),
    );
    let d = res.data();
    assert_eq!(d["adjustments_processed"], 2, "{}", res.body);
    assert_eq!(d["total_adjustments"], 1, "{}", res.body);
    assert_eq!(server.on_hand("prod_124", "wh_789"), 100);
    server.assert_verified();
}

#[test]
fn probes_and_admin_verify() {
    let server = Server::open();
    for path in ["/healthz", "/livez"] {
        let res = server.get(path);
        res.expect(200);
        assert_eq!(res.body, "ok", "{path}");
    }
    server.get("/readyz").expect(200);

    server.product("p1");
    server.stock("p1", "default", 3);
    server.movement("p1", "default", "out", 1);
    let report = server.assert_verified();
    assert_eq!(report["movements"], 2, "{report}");
    assert_eq!(report["seq_last"], 2, "{report}");
    assert!(report["problem"].is_null(), "{report}");
}

#[test]
fn ids_are_opaque_strings_and_text_round_trips() {
    let server = Server::open();
    let long_digits = "123456789012345678901234567890123456789"; // 39 digits, no machine integer
    let ids = [long_digits, "1031046355", "prod with space", "prodé-ü", "0042"];
    for id in ids {
        let res = server.put(
            &format!("/api/products/{}", enc(id)),
            json!({"sku": format!("SKU {id}"), "name": "Ünïcödé 📦 name"}),
        );
        res.expect(201);
        assert_eq!(res.data()["id"], id, "{}", res.body);
        let got = server.get(&format!("/api/products/{}", enc(id)));
        got.expect(200);
        assert_eq!(got.data()["id"], id);
        assert_eq!(got.data()["name"], "Ünïcödé 📦 name");
    }
    let res = server.get(&format!("/api/products/{long_digits}"));
    assert!(res.body.contains(&format!("\"id\":\"{long_digits}\"")), "{}", res.body);
    // 0042 and 42 are different products
    server.get("/api/products/42").expect_error(404, "product_not_found");

    let notes = "Received 📦 from 供应商 \"quoted\"\nsecond line";
    let res = server.post(
        "/api/inventory/movements",
        json!({"product_id": long_digits, "movement_type": "in", "quantity": 3,
               "notes": notes, "reference_id": "po/1 & 2"}),
    );
    res.expect(201);
    let m = res.data();
    assert_eq!(m["product_id"], long_digits);
    assert_eq!(m["notes"], notes);
    let listed = server.get(&format!("/api/inventory/movements?reference_id={}", enc("po/1 & 2")));
    assert_eq!(listed.data()[0]["id"], m["id"], "{}", listed.body);
    assert_eq!(server.on_hand(long_digits, "default"), 3);
    let res = server.get(&format!("/api/products/{}/inventory", enc(long_digits)));
    assert_eq!(res.data()["product_id"], long_digits);
    assert_eq!(res.data()["totals"]["quantity_on_hand"], 3);
    server.assert_verified();
}

#[test]
fn configured_default_warehouse_and_negative_stock_policy() {
    let server = Server::start(
        "[inventory]\ndefault_warehouse = \"main\"\nallow_negative = false\n\
         [inventory.warehouses.outlet]\nallow_negative = true\n",
    );
    server.product("p1");
    server.warehouse("outlet");
    server.warehouse("strict");
    // The configured default warehouse exists and takes movements that name none.
    server.get("/api/warehouses/main").expect(200);
    let res = server.post(
        "/api/inventory/movements",
        json!({"product_id": "p1", "movement_type": "in", "quantity": 2}),
    );
    res.expect(201);
    assert_eq!(res.data()["warehouse_id"], "main");
    assert_eq!(server.on_hand("p1", "main"), 2);

    // The outlet may go negative; the others may not.
    let out = server.movement("p1", "outlet", "out", 5);
    assert_eq!(out["balance_after"], -5);
    let level = server.level("p1", "outlet");
    assert_eq!(level["quantity_available"], -5);
    server
        .post(
            "/api/inventory/movements",
            json!({"product_id": "p1", "warehouse_id": "strict", "movement_type": "out", "quantity": 1}),
        )
        .expect_error(409, "insufficient_stock");
    server
        .post(
            "/api/inventory/movements",
            json!({"product_id": "p1", "warehouse_id": "main", "movement_type": "out", "quantity": 3}),
        )
        .expect_error(409, "insufficient_stock");
    assert_eq!(server.on_hand("p1", "strict"), 0);
    assert_eq!(server.on_hand("p1", "main"), 2);
    server.assert_verified();
}

/// A product's history merges its warehouses' histories, newest first, and pages by cursor
/// exactly like the unfiltered journal.
#[test]
fn product_history_across_warehouses_merges_newest_first() {
    let server = Server::open();
    for w in ["a", "b", "c"] {
        server.warehouse(w);
    }
    server.product("p");
    server.product("q");
    for i in 0..30 {
        let w = ["a", "b", "c", "default"][i % 4];
        server.stock("p", w, 1 + i as i64);
        if i % 3 == 0 {
            server.stock("q", w, 1);
        }
    }
    let all = server.walk_cursor("/api/inventory/movements?limit=7", 100);
    let expected: Vec<Value> = all
        .iter()
        .filter(|m| m["product_id"] == "p")
        .map(|m| m["seq"].clone())
        .collect();
    let walked: Vec<Value> = server
        .walk_cursor("/api/inventory/movements?product_id=p&limit=4", 100)
        .iter()
        .map(|m| m["seq"].clone())
        .collect();
    assert_eq!(walked, expected, "newest first, each once");
    let page = server
        .get("/api/inventory/movements?product_id=p&limit=5&page=2")
        .json();
    assert_eq!(page["meta"]["total"], 30);
    let seqs: Vec<Value> = page["data"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|m| m["seq"].clone())
        .collect();
    assert_eq!(seqs, expected[5..10].to_vec());
}

/// A level's history is a chain of back-pointers from its row's head, and every 64th
/// movement of a level is indexed as a place to start: a level's and a product's history
/// read newest first, whether a page starts at the head, on a marked movement or between
/// two (the walk from the next mark).
#[test]
fn level_and_product_history_follow_the_chain_from_the_head_or_the_next_mark() {
    let server = Server::open();
    server.product("p");
    server.warehouse("w2");
    let mut at_default = Vec::new();
    let mut all = Vec::new();
    for i in 0..200 {
        let warehouse = if i % 3 == 2 { "w2" } else { "default" };
        let seq = server.movement("p", warehouse, "in", 1)["seq"].as_u64().expect("seq");
        if warehouse == "default" {
            at_default.push(seq);
        }
        all.push(seq);
    }
    at_default.reverse();
    all.reverse();
    let seqs = |rows: Vec<Value>| -> Vec<u64> { rows.iter().map(|r| r["seq"].as_u64().expect("seq")).collect() };
    for limit in [1, 7, 63, 64, 65, 100] {
        let level = server.walk_cursor(
            &format!("/api/inventory/movements?product_id=p&warehouse_id=default&limit={limit}"),
            250,
        );
        assert_eq!(seqs(level), at_default, "level, pages of {limit}");
        let product = server.walk_cursor(&format!("/api/inventory/movements?product_id=p&limit={limit}"), 250);
        assert_eq!(seqs(product), all, "product, pages of {limit}");
    }
    for (limit, page) in [(3, 2), (50, 2), (64, 2), (7, 19)] {
        let res = server.get(&format!(
            "/api/inventory/movements?product_id=p&warehouse_id=default&limit={limit}&page={page}"
        ));
        res.expect(200);
        assert_eq!(res.json()["meta"]["total"], at_default.len());
        let from = limit * (page - 1);
        assert_eq!(
            seqs(res.json()["data"].as_array().expect("list").clone()),
            at_default[from..(from + limit).min(at_default.len())].to_vec(),
            "page {page} of {limit}"
        );
    }
}
