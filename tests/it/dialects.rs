//! Seeds 000 (movement log), 002 (inventory adjustments) and 004 (depot inventory list)
//! against the running daemon: the documents' example requests and answers as fixtures
//! (field names, JSON types, status codes), paging, refusals that change nothing, and the
//! bare-token rule of 004.
//!
//! Where a document shows numbers for ids, the checks read the raw answer text: a JSON
//! parser would round a 39-digit id through a float and hide the very bug they look for.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::common::{enc, Client, Response, Server};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// The top-level keys of a JSON object.
fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

#[track_caller]
fn assert_keys(v: &Value, expected: &[&str]) {
    let want: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
    assert_eq!(keys(v), want, "keys of {v}");
}

/// The raw texts of every scalar value of `"key":` in a compact JSON body, in order.
fn raw_values<'a>(body: &'a str, key: &str) -> Vec<&'a str> {
    let needle = format!("\"{key}\":");
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.find(&needle) {
        let tail = &rest[at + needle.len()..];
        let end = if let Some(text) = tail.strip_prefix('"') {
            // a string: up to its closing quote (the ids and names here hold no escapes)
            text.find('"').map(|i| i + 2).unwrap_or(tail.len())
        } else {
            tail.find([',', '}', ']']).unwrap_or(tail.len())
        };
        out.push(&tail[..end]);
        rest = &tail[end..];
    }
    out
}

/// The single raw text of `"key":` in a body.
#[track_caller]
fn raw_value<'a>(body: &'a str, key: &str) -> &'a str {
    let all = raw_values(body, key);
    assert_eq!(all.len(), 1, "`{key}` once in {body}");
    all[0]
}

fn is_rfc3339_ms_utc(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
            && s.ends_with('Z')
            && s.len() == "2021-09-04T11:21:55.292Z".len()
    })
}

fn ms_of(v: &Value) -> i64 {
    let t = time::OffsetDateTime::parse(
        v.as_str().expect("a time"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339");
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn post_raw(c: &Client, path: &str, body: &str) -> Response {
    c.raw(c.request("POST", path).body(body.to_string()))
}

/// The native journal rows of a product in a warehouse, newest first.
fn native_movements(c: &Client, product: &str, warehouse: &str) -> Vec<Value> {
    let res = c.get(&format!(
        "/api/inventory/movements?product_id={}&warehouse_id={}&limit=500",
        enc(product),
        enc(warehouse)
    ));
    res.expect(200);
    res.data().as_array().expect("list").clone()
}

fn put_product(c: &Client, id: &str, body: Value) {
    let res = c.put(&format!("/api/products/{}", enc(id)), body);
    assert!(
        matches!(res.status, 200 | 201),
        "PUT product {id}: {} {}",
        res.status,
        res.body
    );
}

// ---------------------------------------------------------------------------------------
// 000 — movement log
// ---------------------------------------------------------------------------------------

const LONG_ID: &str = "255428000059312855148083097871927924884";
const MOVMENT: &str = "/v2/products/inventory/movment";
const MOVEMENT: &str = "/v2/products/inventory/movement";
/// "The operation completed." — the document's `message`.
const DONE: &str = "הפעולה הושלמה";

#[test]
fn movement_log_document_example_with_negative_stock_allowed() {
    // The document's example ends at −6: only a shop that allows negative stock does that.
    let server = Server::start("[inventory]\nallow_negative = true\n");
    put_product(&server, LONG_ID, json!({"sku": "DOC-1", "name": "Document product"}));

    // 4 in stock first, as the example's `inventory_before` shows.
    let res = post_raw(
        &server,
        MOVMENT,
        &format!(r#"{{"product_id": "{LONG_ID}", "operation": "IN", "quantity": 4, "comment": "open"}}"#),
    );
    res.expect(201);
    assert_eq!(
        res.json(),
        json!({"inventory_after": 4, "inventory_before": 0, "message": DONE})
    );

    // The document's request, verbatim.
    let res = post_raw(
        &server,
        MOVMENT,
        r#"{
    "product_id": "255428000059312855148083097871927924884",
    "operation": "OUT",
    "quantity": 10,
    "comment": "345345"
}"#,
    );
    res.expect(201);
    assert!(res
        .header("content-type")
        .unwrap_or_default()
        .starts_with("application/json"));
    // The document's response, field for field and type for type.
    assert_eq!(
        res.json(),
        json!({"inventory_after": -6, "inventory_before": 4, "message": "הפעולה הושלמה"})
    );
    assert_eq!(raw_value(&res.body, "inventory_after"), "-6");
    assert_eq!(raw_value(&res.body, "inventory_before"), "4");
    assert_eq!(server.on_hand(LONG_ID, "default"), -6);

    // `/movement` (the spelling fixed) with the id as a bare JSON number of 39 digits,
    // which must be taken digit for digit, and no comment at all.
    let res = post_raw(
        &server,
        MOVEMENT,
        &format!(r#"{{"product_id": {LONG_ID}, "operation": "IN", "quantity": 16}}"#),
    );
    res.expect(201);
    assert_eq!(
        res.json(),
        json!({"inventory_after": 10, "inventory_before": -6, "message": DONE})
    );
    assert_eq!(server.on_hand(LONG_ID, "default"), 10);

    // The log, newest first, in the document's shape.
    let res = server.get(&format!("/v2/products/inventory/{LONG_ID}"));
    res.expect(200);
    // The id round trip on the raw text: a JSON number, digit for digit, in every item.
    let ids = raw_values(&res.body, "product_id");
    assert_eq!(ids, vec![LONG_ID; 3], "{}", res.body);
    assert_eq!(
        res.body.matches(&format!("\"product_id\":{LONG_ID}")).count(),
        3,
        "{}",
        res.body
    );
    let v = res.json();
    assert_keys(&v, &["items", "hasMore", "limit", "offset", "count", "links"]);
    assert_eq!(v["hasMore"], false);
    assert_eq!(v["limit"], 25);
    assert_eq!(v["offset"], 0);
    assert_eq!(v["count"], 3);
    let journal = native_movements(&server, LONG_ID, "default");
    let seqs: Vec<String> = journal.iter().map(|m| m["seq"].to_string()).collect();
    let items = v["items"].as_array().expect("items");
    let expected = [
        ("IN", 16, -6, 10, Value::Null),
        ("OUT", 10, 4, -6, json!("345345")),
        ("IN", 4, 0, 4, json!("open")),
    ];
    assert_eq!(items.len(), 3);
    for (i, (item, (op, q, before, after, comment))) in items.iter().zip(expected).enumerate() {
        assert_keys(
            item,
            &[
                "id",
                "operation",
                "quantity",
                "total_after",
                "total_before",
                "comment",
                "created",
                "product_id",
            ],
        );
        assert!(item["id"].is_string(), "id is a string: {item}");
        assert_eq!(item["id"].as_str(), Some(seqs[i].as_str()), "id is the seq: {item}");
        assert_eq!(item["operation"], op);
        assert_eq!(item["quantity"], q);
        assert_eq!(item["total_before"], before);
        assert_eq!(item["total_after"], after);
        assert_eq!(item["comment"], comment, "comment null when absent: {item}");
        assert!(is_rfc3339_ms_utc(&item["created"]), "created: {item}");
        assert!(item["product_id"].is_number(), "{item}");
    }
    // Newest first: seqs strictly decreasing.
    let n: Vec<u64> = items
        .iter()
        .map(|i| i["id"].as_str().unwrap_or("").parse().expect("seq"))
        .collect();
    assert!(n.windows(2).all(|w| w[0] > w[1]), "{n:?}");

    // `links`: self and first (no next: there is no more), absolute URLs.
    let links = v["links"].as_array().expect("links");
    let rels: Vec<&str> = links.iter().map(|l| l["rel"].as_str().unwrap_or("")).collect();
    assert_eq!(rels, vec!["self", "first"], "{}", res.body);
    for l in links {
        assert_keys(l, &["rel", "href"]);
        let href = l["href"].as_str().expect("href");
        assert!(href.starts_with("http://"), "{href}");
        assert!(href.contains(&format!("/v2/products/inventory/{LONG_ID}?")), "{href}");
        assert!(href.contains("limit=25") && href.contains("offset=0"), "{href}");
    }
    server.assert_verified();
}

#[test]
fn movement_log_pages_by_limit_and_offset_and_shows_only_the_default_warehouse() {
    let server = Server::open();
    server.product("p1");
    server.product("p2");
    server.warehouse("w2");
    // 23 movements of p1 on the default warehouse through the dialect, mixed with others.
    for i in 0..23 {
        let (op, q) = if i % 3 == 2 { ("OUT", 1) } else { ("IN", i + 1) };
        let path = if i % 2 == 0 { MOVMENT } else { MOVEMENT };
        let body = json!({"product_id": "p1", "operation": op, "quantity": q, "comment": format!("c{i}")});
        server.post(path, body).expect(201);
        if i % 5 == 0 {
            // another warehouse and another product: never in p1's log
            server.stock("p1", "w2", 1);
            server.stock("p2", "default", 1);
        }
    }
    // A seed-002 adjustment on the default warehouse is in the same journal: shown by its
    // direction, with the adjustment's note as the comment.
    let res = server.post(
        "/com/inventories/adjustorset.json",
        json!({"inventory": {"type": "adjust", "reason": "shrinkage", "note": "lost",
               "line_items": [{"product_id": "p1", "quantity": -2}]}}),
    );
    res.expect(201);

    let journal = native_movements(&server, "p1", "default");
    assert_eq!(journal.len(), 24);
    let expected: Vec<String> = journal.iter().map(|m| m["seq"].to_string()).collect();

    let mut seen: Vec<String> = Vec::new();
    let mut previous: Option<Value> = None;
    let limit = 5u64;
    let mut offset = 0u64;
    loop {
        let res = server.get(&format!("/v2/products/inventory/p1?limit={limit}&offset={offset}"));
        res.expect(200);
        let v = res.json();
        let items = v["items"].as_array().expect("items").clone();
        assert_eq!(v["limit"], limit);
        assert_eq!(v["offset"], offset);
        assert_eq!(v["count"], items.len() as u64, "count is the items of this answer");
        let more = offset + limit < expected.len() as u64;
        assert_eq!(v["hasMore"], more, "{}", res.body);
        let rels: Vec<&str> = v["links"]
            .as_array()
            .expect("links")
            .iter()
            .map(|l| l["rel"].as_str().unwrap_or(""))
            .collect();
        if more {
            assert_eq!(rels, vec!["self", "first", "next"], "{}", res.body);
            let next = v["links"][2]["href"].as_str().unwrap_or("");
            assert!(next.contains(&format!("offset={}", offset + limit)), "{next}");
            assert!(next.contains(&format!("limit={limit}")), "{next}");
        } else {
            assert_eq!(rels, vec!["self", "first"], "{}", res.body);
        }
        for item in &items {
            // The running totals chain: an older item ends where the newer one began.
            if let Some(newer) = &previous {
                assert_eq!(newer["total_before"], item["total_after"], "{newer} / {item}");
            }
            previous = Some(item.clone());
            seen.push(item["id"].as_str().expect("id").to_string());
        }
        if !more {
            break;
        }
        offset += limit;
        assert!(offset < 100, "runaway paging");
    }
    assert_eq!(seen, expected, "every movement exactly once, newest first");
    let newest = server.get("/v2/products/inventory/p1?limit=1").json()["items"][0].clone();
    assert_eq!(newest["operation"], "OUT");
    assert_eq!(newest["quantity"], 2);
    assert_eq!(newest["comment"], "lost");

    // A page that ends exactly at the last movement has no more and no `next`.
    for (limit, offset) in [(6, 18), (8, 16), (24, 0)] {
        let v = server
            .get(&format!("/v2/products/inventory/p1?limit={limit}&offset={offset}"))
            .json();
        assert_eq!(v["count"], limit, "{v}");
        assert_eq!(v["hasMore"], false, "limit {limit} offset {offset}");
        assert_eq!(v["links"].as_array().map(Vec::len), Some(2), "{v}");
    }
    let v = server.get("/v2/products/inventory/p1?limit=23&offset=0").json();
    assert_eq!(v["hasMore"], true);
    // Past the end: an empty page without `next`.
    let v = server.get("/v2/products/inventory/p1?limit=5&offset=24").json();
    assert_eq!(v["items"], json!([]));
    assert_eq!(v["count"], 0);
    assert_eq!(v["hasMore"], false);
    assert_eq!(v["links"].as_array().map(Vec::len), Some(2));

    // Out-of-range or malformed paging is refused, never clamped.
    for q in ["limit=0", "limit=501", "limit=x", "offset=-1", "offset=x"] {
        server
            .get(&format!("/v2/products/inventory/p1?{q}"))
            .expect_error(422, "invalid_field");
    }
    // p2 has its own log; the log of an unknown product is 404.
    assert_eq!(server.get("/v2/products/inventory/p2").json()["count"], 5);
    server
        .get("/v2/products/inventory/nope")
        .expect_error(404, "product_not_found");
    server.assert_verified();
}

#[test]
fn movement_log_refusals_change_nothing() {
    let server = Server::open(); // allow_negative defaults to false
    server.product("p1");
    server
        .post(MOVMENT, json!({"product_id": "p1", "operation": "IN", "quantity": 5}))
        .expect(201);
    let journal = server.journal_len();

    // OUT below zero is a conflict by default.
    let res = server.post(MOVMENT, json!({"product_id": "p1", "operation": "OUT", "quantity": 6}));
    res.expect_error(409, "insufficient_stock");
    // A comment of 4001 characters is one too many.
    let long = "x".repeat(4001);
    let res = server.post(
        MOVMENT,
        json!({"product_id": "p1", "operation": "IN", "quantity": 1, "comment": long}),
    );
    res.expect_error(422, "invalid_field");
    assert!(
        res.json()["detail"].as_str().unwrap_or("").contains("comment"),
        "{}",
        res.body
    );
    // Bad operations and quantities.
    for body in [
        json!({"product_id": "p1", "operation": "MOVE", "quantity": 1}),
        json!({"product_id": "p1", "operation": "", "quantity": 1}),
        json!({"product_id": "p1", "quantity": 1}),
        json!({"product_id": "p1", "operation": "IN", "quantity": 0}),
        json!({"product_id": "p1", "operation": "OUT", "quantity": -3}),
        json!({"product_id": "p1", "operation": "IN", "quantity": "3"}),
        json!({"product_id": "p1", "operation": "IN", "quantity": 1.5}),
        json!({"product_id": 1.5, "operation": "IN", "quantity": 1}),
        json!({"product_id": true, "operation": "IN", "quantity": 1}),
        json!({"operation": "IN", "quantity": 1}),
    ] {
        let res = server.post(MOVEMENT, body.clone());
        res.expect_error(422, "invalid_field");
        if body.get("operation").is_some_and(|o| o == "MOVE") {
            assert!(
                res.json()["detail"].as_str().unwrap_or("").contains("operation"),
                "{}",
                res.body
            );
        }
    }
    server
        .post(MOVMENT, json!({"product_id": "nope", "operation": "IN", "quantity": 1}))
        .expect_error(404, "product_not_found");
    server
        .raw(server.request("POST", MOVMENT).body("{\"product_id\": \"p1\", "))
        .expect_error(400, "invalid_json");
    // Beyond what on_hand can hold, or what a quantity can be.
    server
        .post(
            MOVMENT,
            json!({"product_id": "p1", "operation": "IN", "quantity": i64::MAX}),
        )
        .expect_error(422, "quantity_overflow");
    server
        .raw(
            server
                .request("POST", MOVMENT)
                .body(r#"{"product_id": "p1", "operation": "IN", "quantity": 100000000000000000000}"#),
        )
        .expect_error(422, "invalid_field");
    assert_eq!(server.journal_len(), journal, "a refusal journals nothing");
    assert_eq!(server.on_hand("p1", "default"), 5);

    // 4000 characters (counted as characters, not bytes) are accepted and kept whole.
    let hebrew = "א".repeat(4000);
    server
        .post(
            MOVMENT,
            json!({"product_id": "p1", "operation": "OUT", "quantity": 5, "comment": hebrew}),
        )
        .expect(201);
    let log = server.get("/v2/products/inventory/p1?limit=1").json();
    assert_eq!(
        log["items"][0]["comment"].as_str().map(|c| c.chars().count()),
        Some(4000)
    );
    assert_eq!(log["items"][0]["total_after"], 0);
    server.assert_verified();
}

// ---------------------------------------------------------------------------------------
// 002 — inventory adjustments
// ---------------------------------------------------------------------------------------

const ADJUST: &str = "/com/inventories/adjustorset.json";
const ADJUSTMENTS: &str = "/com/inventories/adjustments.json";
const ADJUSTMENT_KEYS: [&str; 13] = [
    "id",
    "created_at",
    "updated_at",
    "adjust_number",
    "tran_date",
    "location_id",
    "type",
    "total_quantity",
    "reason",
    "note",
    "total_cost",
    "tags",
    "line_items",
];
const LINE_KEYS: [&str; 7] = [
    "id",
    "product_id",
    "product_variant_id",
    "quantity",
    "cost_amount",
    "sku",
    "barcode",
];

/// Seed 002's create request, verbatim from the document (seed_clients.rs uses it too).
pub const DOC_CREATE: &str = r#"{
"inventory": {
"location_id": 963414,
"type": "set",
"reason": "newproduct",
"note": "update from api",
"line_items": [
{
"product_id": 1031046355,
"product_variant_id": 1068095306,
"quantity": 4
},
{
"product_id": 1031046356,
"product_variant_id": 1068095307,
"quantity": 9
}
]
}
}"#;

/// Checks an adjustment's field names and JSON types, its line ids (the seqs of its
/// movements) and that `total_quantity` sums the lines.
#[track_caller]
fn check_adjustment_shape(a: &Value) {
    assert_keys(a, &ADJUSTMENT_KEYS);
    assert!(a["id"].is_u64(), "id is a number: {a}");
    assert!(a["adjust_number"].as_str().is_some_and(|n| n.starts_with("IA")), "{a}");
    for t in ["created_at", "updated_at", "tran_date"] {
        assert!(is_rfc3339_ms_utc(&a[t]), "{t}: {a}");
    }
    assert!(a["total_quantity"].is_i64(), "{a}");
    assert!(a["total_cost"].is_number(), "{a}");
    assert!(a["reason"].is_string(), "{a}");
    let lines = a["line_items"].as_array().expect("line_items");
    let first = a["id"].as_u64().unwrap_or(0);
    let mut sum = 0i64;
    for (i, l) in lines.iter().enumerate() {
        assert_keys(l, &LINE_KEYS);
        assert_eq!(
            l["id"].as_u64(),
            Some(first + i as u64),
            "a line's id is its movement's seq: {a}"
        );
        assert!(l["quantity"].is_i64(), "{l}");
        assert!(l["cost_amount"].is_number(), "{l}");
        sum += l["quantity"].as_i64().unwrap_or(0);
    }
    assert_eq!(a["total_quantity"], sum, "total_quantity sums the lines: {a}");
}

#[test]
fn adjustments_document_create_example_adjust_and_set() {
    let server = Server::open();
    server
        .put("/api/warehouses/963414", json!({"name": "Kho 963414"}))
        .expect(201);
    // Variants are products: the ledger product of a line is its product_variant_id.
    put_product(
        &server,
        "1068095306",
        json!({"sku": "IPOD123", "name": "iPod pink", "barcode": "123_pink", "unit_cost": 2.5}),
    );
    put_product(&server, "1068095307", json!({"sku": "IPOD124", "name": "iPod blue"}));
    server.stock("1068095306", "963414", 10);

    let res = post_raw(&server, ADJUST, DOC_CREATE);
    res.expect(201);
    assert_eq!(res.header("location"), None, "no Location header: {:?}", res.headers);
    let v = res.json();
    assert_keys(&v, &["adjustment"]);
    let a = &v["adjustment"];
    check_adjustment_shape(a);
    assert_eq!(a["adjust_number"], "IA100001");
    assert_eq!(a["type"], "set");
    assert_eq!(a["reason"], "newproduct");
    assert_eq!(a["note"], "update from api");
    assert_eq!(a["tags"], Value::Null);
    assert_eq!(a["total_quantity"], 13);
    // cost_amount: quantity × unit_cost when not given (4 × 2.5; no unit cost → 0).
    assert_eq!(raw_value(&res.body, "total_cost"), "10.00");
    assert_eq!(raw_values(&res.body, "cost_amount"), vec!["10.00", "0.00"]);
    // Ids as JSON numbers, digit for digit, in the raw text.
    assert_eq!(raw_value(&res.body, "location_id"), "963414");
    assert_eq!(raw_values(&res.body, "product_id"), vec!["1031046355", "1031046356"]);
    assert_eq!(
        raw_values(&res.body, "product_variant_id"),
        vec!["1068095306", "1068095307"]
    );
    for id in raw_values(&res.body, "id") {
        assert!(
            id.bytes().all(|b| b.is_ascii_digit()),
            "id `{id}` is a number: {}",
            res.body
        );
    }
    let lines = a["line_items"].as_array().expect("lines");
    assert_eq!(lines[0]["quantity"], 4);
    assert_eq!(lines[1]["quantity"], 9);
    // Not in the request: filled from the product the line moves (issue 12).
    assert_eq!(lines[0]["sku"], "IPOD123");
    assert_eq!(lines[0]["barcode"], "123_pink");
    assert_eq!(lines[1]["sku"], "IPOD124");
    assert_eq!(lines[1]["barcode"], Value::Null, "the product has none");
    // `set` overrides: 10 → 4, 0 → 9; the variant, not the parent product, moved.
    assert_eq!(server.on_hand("1068095306", "963414"), 4);
    assert_eq!(server.on_hand("1068095307", "963414"), 9);
    server
        .get("/api/products/1031046355")
        .expect_error(404, "product_not_found");
    // The adjustment's id is the seq of its first movement; its movements carry the reason.
    let m = server.get(&format!("/api/inventory/movements/mov_{}", a["id"])).data();
    assert_eq!(m["product_id"], "1068095306");
    assert_eq!(m["balance_before"], 10);
    assert_eq!(m["balance_after"], 4);
    assert_eq!(m["reason"], "newproduct");
    assert_eq!(m["notes"], "update from api");

    // `adjust` (the default type) adds; a line without a variant moves its product_id.
    let res = server.post(
        ADJUST,
        json!({"inventory": {"location_id": 963414, "reason": "returned",
               "line_items": [{"product_id": 1068095306, "quantity": 3}]}}),
    );
    res.expect(201);
    let a2 = res.json()["adjustment"].clone();
    check_adjustment_shape(&a2);
    assert_eq!(a2["adjust_number"], "IA100002");
    // The document shows `type: null` where none was sent; stockd echoes the request.
    assert!(a2["type"].is_null(), "{a2}");
    assert_eq!(a2["reason"], "returned");
    assert_eq!(a2["line_items"][0]["product_variant_id"], Value::Null);
    assert_eq!(raw_value(&res.body, "product_id"), "1068095306");
    assert_eq!(raw_value(&res.body, "cost_amount"), "7.50");
    assert_eq!(server.on_hand("1068095306", "963414"), 7);

    // The document's list examples as creates: a production of 50000 with its cost, and a
    // damaged −11 with a negative cost.
    let res = server.post(
        ADJUST,
        json!({"inventory": {"location_id": 963414, "type": "adjust", "reason": "productionofgoods",
               "line_items": [{"product_id": 1031046355, "product_variant_id": 1068095306,
                               "quantity": 50000, "cost_amount": 150000000000.00_f64}]}}),
    );
    res.expect(201);
    let a3 = res.json()["adjustment"].clone();
    assert_eq!(a3["adjust_number"], "IA100003");
    assert_eq!(a3["total_quantity"], 50000);
    assert_eq!(raw_value(&res.body, "total_cost"), "150000000000.00");
    assert_eq!(raw_value(&res.body, "cost_amount"), "150000000000.00");
    let res = post_raw(
        &server,
        ADJUST,
        r#"{"inventory": {"location_id": 963414, "type": "adjust", "reason": "damaged", "note": "hàng hư hỏng do nhà sản xuất", "tags": "Hư hỏng",
            "line_items": [{"product_id": 1032963075, "product_variant_id": 1068095306, "quantity": -11, "cost_amount": -11000000.00}]}}"#,
    );
    res.expect(201);
    let a4 = res.json()["adjustment"].clone();
    check_adjustment_shape(&a4);
    assert_eq!(a4["adjust_number"], "IA100004");
    assert_eq!(a4["reason"], "damaged");
    assert_eq!(a4["note"], "hàng hư hỏng do nhà sản xuất");
    assert_eq!(a4["tags"], "Hư hỏng");
    assert_eq!(a4["total_quantity"], -11);
    assert_eq!(raw_value(&res.body, "cost_amount"), "-11000000.00");
    assert_eq!(raw_value(&res.body, "total_cost"), "-11000000.00");
    assert_eq!(server.on_hand("1068095306", "963414"), 7 + 50000 - 11);

    // Get one answers exactly what the create answered.
    let res = server.get(&format!("/com/inventories/adjustments/{}.json", a["id"]));
    res.expect(200);
    assert_eq!(res.json(), v, "get one = the create's answer");
    server.assert_verified();
}

#[test]
fn adjustments_list_count_get_and_filters() {
    let server = Server::open();
    server
        .put("/api/warehouses/100", json!({"name": "Kho 100"}))
        .expect(201);
    server
        .put("/api/warehouses/200", json!({"name": "Kho 200"}))
        .expect(201);
    server.product("11");
    server.product("12");
    let plan = [
        (100, "newproduct"),
        (200, "damaged"),
        (100, "damaged"),
        (200, "returned"),
        (100, "newproduct"),
    ];
    let mut made: Vec<Value> = Vec::new();
    for (i, (loc, reason)) in plan.iter().enumerate() {
        // a native movement between adjustments: ids are seqs, not 1, 2, 3…
        server.stock("12", "default", 1);
        let res = server.post(
            ADJUST,
            json!({"inventory": {"location_id": loc, "reason": reason,
                   "line_items": [{"product_id": 11, "quantity": i + 1}, {"product_id": "12", "quantity": 1}]}}),
        );
        res.expect(201);
        let a = res.json()["adjustment"].clone();
        assert_eq!(a["adjust_number"], format!("IA{}", 100001 + i));
        made.push(a);
    }
    let id = |i: usize| made[i]["id"].as_u64().expect("id");
    let list = |query: &str| -> Vec<u64> {
        let res = server.get(&format!("{ADJUSTMENTS}{query}"));
        res.expect(200);
        let v = res.json();
        assert_keys(&v, &["adjustments"]);
        let rows = v["adjustments"].as_array().expect("adjustments").clone();
        for a in &rows {
            check_adjustment_shape(a);
        }
        rows.iter().map(|a| a["id"].as_u64().expect("id")).collect()
    };
    let count = |query: &str| -> u64 {
        let res = server.get(&format!("/com/inventories/adjustments/count.json{query}"));
        res.expect(200);
        let v = res.json();
        assert_keys(&v, &["count"]);
        v["count"].as_u64().expect("count is a number")
    };

    // Newest first; the whole list equals what the creates answered.
    assert_eq!(list(""), vec![id(4), id(3), id(2), id(1), id(0)]);
    let all = server.get(ADJUSTMENTS).json()["adjustments"].clone();
    let mut created: Vec<Value> = made.clone();
    created.reverse();
    assert_eq!(all, Value::Array(created));
    // limit and page
    assert_eq!(list("?limit=2&page=1"), vec![id(4), id(3)]);
    assert_eq!(list("?limit=2&page=2"), vec![id(2), id(1)]);
    assert_eq!(list("?limit=2&page=3"), vec![id(0)]);
    assert_eq!(list("?limit=2&page=4"), Vec::<u64>::new());
    assert_eq!(list("?page=1"), list(""));
    // since_id: those after that id, oldest first (docs/dialects.md), so a client paging
    // by it never skips one.
    assert_eq!(list(&format!("?since_id={}", id(1))), vec![id(2), id(3), id(4)]);
    assert_eq!(list(&format!("?since_id={}&limit=2", id(1))), vec![id(2), id(3)]);
    assert_eq!(list(&format!("?since_id={}", id(4))), Vec::<u64>::new());
    assert_eq!(list("?since_id=0").len(), 5);
    // location and reason
    assert_eq!(list("?location_id=100"), vec![id(4), id(2), id(0)]);
    assert_eq!(list("?reason=damaged"), vec![id(2), id(1)]);
    assert_eq!(list("?location_id=200&reason=damaged"), vec![id(1)]);
    assert_eq!(list("?location_id=300"), Vec::<u64>::new());
    assert_eq!(list("?location_id=100&limit=1&page=2"), vec![id(2)]);
    // count: `{"count": n}` with the same filters
    assert_eq!(count(""), 5);
    assert_eq!(count("?location_id=100"), 3);
    assert_eq!(count("?reason=damaged"), 2);
    assert_eq!(count("?location_id=200&reason=returned"), 1);
    assert_eq!(count(&format!("?since_id={}", id(2))), 2);
    assert_eq!(count("?reason=promotion"), 0);
    let res = server.get("/com/inventories/adjustments/count.json");
    assert_eq!(res.body, r#"{"count":5}"#);

    // Get one: `{"adjustment": …}` and nothing else.
    let res = server.get(&format!("/com/inventories/adjustments/{}.json", id(2)));
    res.expect(200);
    let v = res.json();
    assert_keys(&v, &["adjustment"]);
    assert_eq!(v["adjustment"], made[2]);
    assert_eq!(raw_value(&res.body, "location_id"), "100");

    // Unknown ids: 404 `{"errors": "Not Found"}` — also the seq of a second line, of a
    // native movement, and a non-number.
    let second_line = id(2) + 1;
    let native = server.stock("11", "default", 1)["seq"].as_u64().expect("seq");
    for bad in [
        "999999".to_string(),
        second_line.to_string(),
        native.to_string(),
        "abc".to_string(),
    ] {
        let res = server.get(&format!("/com/inventories/adjustments/{bad}.json"));
        assert_eq!(res.status, 404, "{bad}: {}", res.body);
        assert_eq!(res.json(), json!({"errors": "Not Found"}), "{bad}");
    }

    // Bad paging: 422 in the document's error shape, naming the parameter.
    for (q, field) in [
        ("limit=51", "limit"),
        ("limit=0", "limit"),
        ("page=0", "page"),
        ("since_id=x", "since_id"),
    ] {
        let res = server.get(&format!("{ADJUSTMENTS}?{q}"));
        assert_eq!(res.status, 422, "{q}: {}", res.body);
        let v = res.json();
        assert_keys(&v, &["errors"]);
        assert!(
            v["errors"][field].as_array().is_some_and(|m| !m.is_empty()),
            "{q}: {}",
            res.body
        );
    }
    server.assert_verified();
}

#[test]
fn adjustments_refusals_are_422_and_change_nothing() {
    let server = Server::open();
    server.put("/api/warehouses/963414", json!({"name": "Kho"})).expect(201);
    server.product("1068095306");
    server.stock("1068095306", "963414", 5);
    let journal = server.journal_len();
    let refuse = |body: Value, field: &str| {
        let res = server.post(ADJUST, body.clone());
        assert_eq!(res.status, 422, "{body}: {}", res.body);
        assert_eq!(res.header("location"), None);
        let v = res.json();
        assert_keys(&v, &["errors"]);
        assert_keys(&v["errors"], &[field]);
        let messages = v["errors"][field].as_array().expect("messages");
        assert!(
            !messages.is_empty() && messages.iter().all(Value::is_string),
            "{}",
            res.body
        );
    };
    let line = |q: i64| json!({"product_id": 1031046355, "product_variant_id": 1068095306, "quantity": q});
    refuse(
        json!({"inventory": {"location_id": 963414, "type": "replace", "line_items": [line(1)]}}),
        "type",
    );
    refuse(
        json!({"inventory": {"location_id": 963414, "reason": "stolen", "line_items": [line(1)]}}),
        "reason",
    );
    let many: Vec<Value> = (0..201).map(|_| line(1)).collect();
    refuse(
        json!({"inventory": {"location_id": 963414, "line_items": many}}),
        "line_items",
    );
    // An unknown product on the second line: nothing of the first line is applied either.
    // Errors about a line name the line's field (issue 12).
    refuse(
        json!({"inventory": {"location_id": 963414, "line_items": [line(2), {"product_id": 42, "quantity": 1}]}}),
        "line_items[1].product_id",
    );
    // Taking more than there is: all or nothing.
    refuse(
        json!({"inventory": {"location_id": 963414, "line_items": [line(3), line(-9)]}}),
        "line_items[1].quantity",
    );
    refuse(
        json!({"inventory": {"location_id": 963414, "type": "adjust", "line_items": [line(-6)]}}),
        "line_items[0].quantity",
    );
    // A zero adjust and a negative set: the line's quantity, not `base`.
    refuse(
        json!({"inventory": {"location_id": 963414, "line_items": [line(1), line(0)]}}),
        "line_items[1].quantity",
    );
    refuse(
        json!({"inventory": {"location_id": 963414, "type": "set", "line_items": [line(-1)]}}),
        "line_items[0].quantity",
    );
    // A wrong type: named as the request names it, without the `inventory.` wrapper.
    refuse(
        json!({"inventory": {"location_id": 963414, "reason": 5, "line_items": [line(1)]}}),
        "reason",
    );
    refuse(
        json!({"inventory": {"location_id": 963414, "line_items": [{"product_id": 1068095306, "quantity": "1"}]}}),
        "line_items[0].quantity",
    );
    refuse(
        json!({"inventory": {"location_id": 777, "line_items": [line(1)]}}),
        "location_id",
    );
    for body in [
        json!({"inventory": {"location_id": 963414, "line_items": []}}),
        json!({"inventory": {"location_id": 963414, "type": "set", "line_items": [line(-1)]}}),
        json!({"inventory": {"location_id": 963414, "line_items": [line(0)]}}),
        json!({"inventory": {"location_id": 963414, "line_items": [{"quantity": 1}]}}),
        json!({"inventory": {"location_id": 963414, "line_items": [{"product_id": 1068095306, "quantity": "1"}]}}),
        json!({"inventory": {"location_id": 963414}}),
        json!({"location_id": 963414, "line_items": [line(1)]}),
    ] {
        let res = server.post(ADJUST, body.clone());
        assert_eq!(res.status, 422, "{body}: {}", res.body);
        let v = res.json();
        assert_keys(&v, &["errors"]);
        assert!(v["errors"].as_object().is_some_and(|e| e.len() == 1), "{}", res.body);
    }
    assert_eq!(server.journal_len(), journal, "a refusal journals nothing");
    assert_eq!(server.on_hand("1068095306", "963414"), 5);
    assert_eq!(
        server.get("/com/inventories/adjustments/count.json").json(),
        json!({"count": 0})
    );
    assert_eq!(server.get(ADJUSTMENTS).json(), json!({"adjustments": []}));
    // Refusals consume no number: the first adjustment made is IA100001.
    let res = server.post(
        ADJUST,
        json!({"inventory": {"location_id": 963414, "line_items": [line(-5)]}}),
    );
    res.expect(201);
    assert_eq!(res.json()["adjustment"]["adjust_number"], "IA100001");
    assert_eq!(server.on_hand("1068095306", "963414"), 0);
    server.assert_verified();
}

#[test]
fn adjustments_accept_200_line_items() {
    let server = Server::open();
    for i in 0..10 {
        server.product(&format!("{}", 500 + i));
    }
    let journal = server.journal_len();
    let lines: Vec<Value> = (0..200)
        .map(|i| json!({"product_id": 500 + i % 10, "quantity": 1}))
        .collect();
    let res = server.post(ADJUST, json!({"inventory": {"line_items": lines}}));
    res.expect(201);
    let a = res.json()["adjustment"].clone();
    check_adjustment_shape(&a);
    assert_eq!(a["line_items"].as_array().map(Vec::len), Some(200));
    assert_eq!(a["total_quantity"], 200);
    // No location: the default warehouse, shown as its number 0 (issue 12).
    assert_eq!(a["location_id"], 0);
    assert_eq!(server.journal_len(), journal + 200);
    for i in 0..10 {
        assert_eq!(server.on_hand(&format!("{}", 500 + i), "default"), 20);
    }
    server.assert_verified();
}

// ---------------------------------------------------------------------------------------
// 004 — depot inventory list
// ---------------------------------------------------------------------------------------

const DEPOT: &str = "/v3.0/product/inventory";

fn depot(c: &Client, body: Value) -> Response {
    c.raw(
        c.request("POST", &format!("{DEPOT}?appId=1&businessId=2"))
            .body(body.to_string()),
    )
}

/// A successful answer's items; asserts `code: 1` and the top-level shape.
#[track_caller]
fn depot_ok(res: &Response) -> Vec<Value> {
    res.expect(200);
    let v = res.json();
    assert_keys(&v, &["code", "paginator", "data"]);
    assert_eq!(v["code"], 1, "{}", res.body);
    assert_keys(&v["paginator"], &["next"]);
    v["data"].as_array().expect("data").clone()
}

/// The product ids of items, as text.
/// The number the store assigns to the first product whose id is not all digits.
const ABC: &str = "9000000000000001";

fn product_ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| match &i["productId"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

#[track_caller]
fn depot_failed(res: &Response, status: u16) {
    assert_eq!(res.status, status, "{}", res.body);
    let v = res.json();
    assert_keys(&v, &["code", "messages"]);
    assert_eq!(v["code"], 0);
    let m = v["messages"].as_array().expect("messages");
    assert!(!m.is_empty() && m.iter().all(Value::is_string), "{}", res.body);
}

#[track_caller]
fn check_item_shape(item: &Value) {
    assert_keys(item, &["productId", "barcode", "name", "prices", "inventory"]);
    assert_keys(&item["prices"], &["retail", "wholesale", "import", "avgCost"]);
    for p in ["retail", "wholesale", "import", "avgCost"] {
        assert!(item["prices"][p].is_number(), "{item}");
    }
    let inv = &item["inventory"];
    assert_keys(
        inv,
        &[
            "remain",
            "shipping",
            "damaged",
            "holding",
            "available",
            "warranty",
            "depots",
        ],
    );
    assert_keys(&inv["warranty"], &["remain", "holding"]);
    let mut sums = [0i64; 5];
    for d in inv["depots"].as_array().expect("depots") {
        assert_keys(
            d,
            &[
                "id",
                "remain",
                "shipping",
                "damaged",
                "holding",
                "available",
                "warranty",
            ],
        );
        assert_keys(&d["warranty"], &["remain", "holding"]);
        for (i, k) in ["remain", "shipping", "damaged", "holding", "available"]
            .iter()
            .enumerate()
        {
            sums[i] += d[*k].as_i64().unwrap_or_else(|| panic!("{k} is a whole number: {d}"));
        }
    }
    for (i, k) in ["remain", "shipping", "damaged", "holding", "available"]
        .iter()
        .enumerate()
    {
        assert_eq!(inv[*k].as_i64(), Some(sums[i]), "{k} totals the depots shown: {item}");
    }
}

fn depot_by_id(item: &Value, id: &Value) -> Value {
    item["inventory"]["depots"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["id"] == *id).cloned())
        .unwrap_or(Value::Null)
}

#[test]
fn depot_document_request_and_answer_shape() {
    let server = Server::open();
    server.put("/api/warehouses/1", json!({"name": "Kho 1"})).expect(201);
    server.put("/api/warehouses/2", json!({"name": "Kho 2"})).expect(201);
    put_product(
        &server,
        "101",
        json!({"sku": "AT-101", "name": "Áo thun", "barcode": "8930000000101",
               "prices": {"retail": 150000, "wholesale": 120000.5, "import": 90000},
               "unit_cost": 95000.25, "category": "7", "brand": "3"}),
    );
    for id in 102..=109 {
        server.product(&id.to_string());
    }
    server.stock("101", "1", 10);
    server.stock("101", "2", 5);
    // 3 in transit from depot 1 to depot 2: shipping at the target.
    server
        .post(
            "/api/inventory/movements",
            json!({"product_id": "101", "warehouse_id": "1", "movement_type": "transfer", "quantity": 3,
                   "to_warehouse_id": "2", "in_transit": true}),
        )
        .expect(201);
    // A buffer of 2 at depot 1: available = on_hand − allocated − damaged − buffer.
    server
        .patch("/api/inventory/levels/101/1", json!({"buffer": 2}))
        .expect(200);

    // The document's request verbatim: every id here is ≥ 100, so nothing is below the cursor.
    let res = server.raw(server.request("POST", &format!("{DEPOT}?appId=1&businessId=2")).body(
        r#"{
    "filters": {
    },
    "paginator": {
        "size": 50,
        "sort": {"id": "desc"},
        "next": {"id": 100}
    }
}"#,
    ));
    assert_eq!(depot_ok(&res), Vec::<Value>::new());
    assert_eq!(res.json()["paginator"]["next"], Value::Null);

    // The same shape with a cursor in the middle.
    let res = depot(
        &server,
        json!({"filters": {}, "paginator": {"size": 50, "sort": {"id": "desc"}, "next": {"id": 105}}}),
    );
    let items = depot_ok(&res);
    assert_eq!(product_ids(&items), vec!["104", "103", "102", "101"]);
    assert_eq!(res.json()["paginator"]["next"], Value::Null, "a short page is the last");

    let res = depot(&server, json!({"filters": {"ids": [101]}}));
    let items = depot_ok(&res);
    assert_eq!(items.len(), 1);
    let item = &items[0];
    check_item_shape(item);
    // productId and depot ids are JSON numbers (the document's `(int)`).
    assert_eq!(raw_value(&res.body, "productId"), "101");
    let mut depot_ids = raw_values(&res.body, "id");
    depot_ids.sort();
    assert_eq!(depot_ids, vec!["1", "2"]);
    assert_eq!(item["barcode"], "8930000000101");
    assert_eq!(item["name"], "Áo thun");
    assert_eq!(raw_value(&res.body, "retail"), "150000.00");
    assert_eq!(raw_value(&res.body, "wholesale"), "120000.50");
    assert_eq!(raw_value(&res.body, "import"), "90000.00");
    assert_eq!(raw_value(&res.body, "avgCost"), "95000.25");
    let inv = &item["inventory"];
    // remain = on_hand, shipping = in transit, holding = allocated (stockd has no HTTP
    // route that allocates stock, so it stays 0 here), damaged 0.
    assert_eq!(inv["remain"], 12, "7 at depot 1 + 5 at depot 2: {item}");
    assert_eq!(inv["shipping"], 3);
    assert_eq!(inv["holding"], 0);
    assert_eq!(inv["damaged"], 0);
    assert_eq!(inv["available"], 10, "5 + 5: {item}");
    assert_eq!(inv["warranty"], json!({"remain": 0, "holding": 0}));
    let d1 = depot_by_id(item, &json!(1));
    assert_eq!(
        d1,
        json!({"id": 1, "remain": 7, "shipping": 0, "damaged": 0, "holding": 0, "available": 5,
               "warranty": {"remain": 0, "holding": 0}})
    );
    let d2 = depot_by_id(item, &json!(2));
    assert_eq!(
        d2,
        json!({"id": 2, "remain": 5, "shipping": 3, "damaged": 0, "holding": 0, "available": 5,
               "warranty": {"remain": 0, "holding": 0}})
    );
    // The buckets are the native levels'.
    for (w, d) in [("1", &d1), ("2", &d2)] {
        let level = server.level("101", w);
        assert_eq!(d["remain"], level["quantity_on_hand"]);
        assert_eq!(d["shipping"], level["quantity_in_transit"]);
        assert_eq!(d["holding"], level["quantity_allocated"]);
        assert_eq!(d["damaged"], level["quantity_damaged"]);
        assert_eq!(d["available"], level["quantity_available"]);
    }

    // A product with nothing set: barcode null, prices 0, no depots.
    let items = depot_ok(&depot(&server, json!({"filters": {"ids": ["109"]}})));
    assert_eq!(items.len(), 1);
    check_item_shape(&items[0]);
    assert_eq!(items[0]["barcode"], Value::Null);
    assert_eq!(items[0]["prices"]["avgCost"].as_f64(), Some(0.0));
    assert_eq!(items[0]["inventory"]["depots"], json!([]));
    assert_eq!(items[0]["inventory"]["remain"], 0);

    // Every part of the body is optional.
    let items = depot_ok(&depot(&server, json!({})));
    assert_eq!(items.len(), 9);
    for i in &items {
        check_item_shape(i);
    }
}

#[test]
fn depot_filters() {
    let server = Server::open();
    server.put("/api/warehouses/1", json!({"name": "Kho 1"})).expect(201);
    server.put("/api/warehouses/2", json!({"name": "Kho 2"})).expect(201);
    let products = [
        ("201", "Blue Shirt", "BS-1", Some("8930000000011"), Some("7"), Some("3")),
        ("202", "Red Shirt", "RS-2", Some("8930000000028"), Some("7"), Some("4")),
        ("203", "Green Hat", "GH-3", Some("8930000000035"), Some("8"), Some("3")),
        ("204", "Socks", "SK-4", None, None, None),
        ("abc", "Scarf", "SC-5", None, Some("8"), None),
    ];
    for (id, name, sku, barcode, category, brand) in products {
        put_product(
            &server,
            id,
            json!({"sku": sku, "name": name, "barcode": barcode, "category": category, "brand": brand}),
        );
    }
    server.stock("201", "1", 5);
    server.stock("202", "2", 6);
    server.stock("203", "1", 2);
    server.stock("203", "2", 3);
    let ids_of = |filters: Value| -> Vec<String> {
        let res = depot(&server, json!({"filters": filters}));
        let items = depot_ok(&res);
        for i in &items {
            check_item_shape(i);
        }
        product_ids(&items)
    };

    assert_eq!(ids_of(json!({})), vec!["201", "202", "203", "204", ABC]);
    // ids, as numbers or strings
    assert_eq!(ids_of(json!({"ids": [203, "201"]})), vec!["201", "203"]);
    assert_eq!(ids_of(json!({"ids": ["abc", 999]})), vec![ABC]);
    // …or by the number an answer shows (issue 12).
    assert_eq!(ids_of(json!({"ids": [9_000_000_000_000_001u64]})), vec![ABC]);
    assert_eq!(ids_of(json!({"ids": []})), Vec::<String>::new());
    assert_eq!(
        ids_of(json!({"ids": [201, "201"]})),
        vec!["201"],
        "an id named twice is listed once"
    );
    let hundred: Vec<u64> = (1..=100).collect();
    assert_eq!(ids_of(json!({"ids": hundred})), Vec::<String>::new());
    // name: name, sku or barcode, case-insensitively
    assert_eq!(ids_of(json!({"name": "shirt"})), vec!["201", "202"]);
    assert_eq!(ids_of(json!({"name": "gh-3"})), vec!["203"]);
    assert_eq!(ids_of(json!({"name": "0000000028"})), vec!["202"]);
    assert_eq!(ids_of(json!({"name": "SCARF"})), vec![ABC]);
    put_product(&server, "205", json!({"sku": "AT-5", "name": "Áo thun"}));
    assert_eq!(
        ids_of(json!({"name": "ÁO THUN"})),
        vec!["205"],
        "case folding beyond ASCII"
    );
    assert_eq!(ids_of(json!({"name": "áo"})), vec!["205"]);
    assert_eq!(ids_of(json!({"name": "nothing like it"})), Vec::<String>::new());
    // categoryId and brandIds
    assert_eq!(ids_of(json!({"categoryId": 7})), vec!["201", "202"]);
    assert_eq!(ids_of(json!({"categoryId": "8"})), vec!["203", ABC]);
    assert_eq!(ids_of(json!({"brandIds": [3]})), vec!["201", "203"]);
    assert_eq!(ids_of(json!({"brandIds": ["4", 3]})), vec!["201", "202", "203"]);
    assert_eq!(ids_of(json!({"brandIds": [9]})), Vec::<String>::new());
    // combined
    assert_eq!(ids_of(json!({"name": "shirt", "brandIds": [3]})), vec!["201"]);
    assert_eq!(ids_of(json!({"categoryId": 8, "ids": [203, 204]})), vec!["203"]);
    // A non-numeric id shows its assigned number, a JSON integer (issue 12).
    let res = depot(&server, json!({"filters": {"ids": ["abc"]}}));
    assert_eq!(raw_value(&res.body, "productId"), ABC);

    // depotIds filter the products (one without stock rows there is not listed), restrict
    // the depots shown, and the totals are over those depots (issue 12).
    let res = depot(&server, json!({"filters": {"depotIds": [2]}}));
    let items = depot_ok(&res);
    for item in &items {
        check_item_shape(item);
        for d in item["inventory"]["depots"].as_array().expect("depots") {
            assert_eq!(d["id"], 2, "only depot 2: {item}");
        }
    }
    let by_id: BTreeMap<String, Value> = product_ids(&items).into_iter().zip(items.iter().cloned()).collect();
    assert_eq!(by_id["203"]["inventory"]["remain"], 3, "depot 2 only: {}", by_id["203"]);
    assert_eq!(by_id["202"]["inventory"]["remain"], 6);
    assert_eq!(product_ids(&items), vec!["202", "203"], "201 has nothing at depot 2");
    let items = depot_ok(&depot(
        &server,
        json!({"filters": {"depotIds": ["1", 2], "ids": [203]}}),
    ));
    assert_eq!(items[0]["inventory"]["remain"], 5);

    // Refusals: `{code: 0, messages}` with a 4xx.
    let too_many: Vec<u64> = (1..=101).collect();
    depot_failed(&depot(&server, json!({"filters": {"ids": too_many}})), 422);
    depot_failed(&depot(&server, json!({"paginator": {"size": 101}})), 422);
    depot_failed(&depot(&server, json!({"paginator": {"size": 0}})), 422);
    depot_failed(&depot(&server, json!({"paginator": {"sort": {"id": "up"}}})), 422);
    depot_failed(&depot(&server, json!({"filters": {"ids": {"a": 1}}})), 422);
    depot_failed(&depot(&server, json!({"filters": {"updatedAtFrom": "yesterday"}})), 422);
    depot_failed(&depot(&server, json!({"filters": {"ids": [1.5]}})), 422);
    depot_failed(&server.raw(server.request("POST", DEPOT).body("{\"filters\": ")), 400);
    // size 100 is the largest page.
    depot_ok(&depot(&server, json!({"paginator": {"size": 100}})));
}

/// Sleeps until the clock is past the second of `ms` (so a later change lands in a later
/// second). Not a timing assertion: it only makes two timestamps distinct.
fn wait_past_second_of(ms: i64) {
    while stockd::clock::now_ms() / 1000 <= ms / 1000 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn depot_updated_at_window_sees_stock_changes() {
    let server = Server::open();
    put_product(&server, "301", json!({"sku": "S301", "name": "Changed"}));
    put_product(&server, "302", json!({"sku": "S302", "name": "Unchanged"}));
    let made_ms = ms_of(&server.get("/api/products/302").data()["updated_at"]);
    wait_past_second_of(made_ms.max(ms_of(&server.get("/api/products/301").data()["updated_at"])));

    // Only a stock change on 301: it moves 301 into a window that starts after both products
    // were last edited.
    let m = server.stock("301", "default", 1);
    let moved_s = ms_of(&m["created_at"]) / 1000;
    let ids_in = |from: Option<i64>, to: Option<i64>| -> Vec<String> {
        let mut f = serde_json::Map::new();
        if let Some(from) = from {
            f.insert("updatedAtFrom".into(), json!(from));
        }
        if let Some(to) = to {
            f.insert("updatedAtTo".into(), json!(to));
        }
        product_ids(&depot_ok(&depot(&server, json!({"filters": f}))))
    };
    assert_eq!(ids_in(Some(moved_s), None), vec!["301"]);
    assert_eq!(ids_in(Some(moved_s + 1), None), Vec::<String>::new());
    // 302 was last changed in an earlier second (the end is inclusive of its whole second).
    assert_eq!(ids_in(None, Some(moved_s - 1)), vec!["302"], "301 changed after that");
    assert_eq!(ids_in(Some(0), Some(moved_s + 3600)), vec!["301", "302"]);
    // A detail change counts too.
    wait_past_second_of(ms_of(&m["created_at"]));
    put_product(&server, "302", json!({"sku": "S302", "name": "Renamed"}));
    let renamed_s = ms_of(&server.get("/api/products/302").data()["updated_at"]) / 1000;
    assert_eq!(ids_in(Some(renamed_s), None), vec!["302"]);
}

#[test]
fn depot_updated_at_to_is_inclusive_of_its_whole_second() {
    // An incremental scan by adjacent windows [a, b], [b + 1, c] (unix seconds, inclusive
    // per docs/dialects.md) must see a change made at b.xxx in exactly one of them.
    let server = Server::open();
    put_product(&server, "303", json!({"sku": "S303", "name": "Edge"}));
    let m = server.stock("303", "default", 1);
    let at_ms = ms_of(&m["created_at"]);
    let s = at_ms / 1000;
    let window = |from: i64, to: i64| -> Vec<String> {
        product_ids(&depot_ok(&depot(
            &server,
            json!({"filters": {"updatedAtFrom": from, "updatedAtTo": to}}),
        )))
    };
    let first = window(s - 60, s);
    let second = window(s + 1, s + 60);
    assert_eq!(
        first.len() + second.len(),
        1,
        "a change at {at_ms} ms is in [{}, {s}] or [{}, {}] exactly once; got {first:?} and {second:?}",
        s - 60,
        s + 1,
        s + 60
    );
    assert_eq!(
        window(s, s),
        vec!["303"],
        "updatedAtFrom = updatedAtTo = the change's second"
    );
}

#[test]
fn depot_accepts_the_bare_token_and_no_other_route_does() {
    const ADMIN: &str = "depot-admin-token";
    const READER: &str = "depot-reader-token";
    let config = format!(
        r#"
[[tokens]]
name = "admin"
sha256 = "{}"
scopes = ["admin"]

[[tokens]]
name = "reader-1"
sha256 = "{}"
scopes = ["inventory:read"]
warehouses = ["1"]
"#,
        stockd::auth::sha256_hex(ADMIN.as_bytes()),
        stockd::auth::sha256_hex(READER.as_bytes()),
    );
    let server = Server::start_with_token(&config, Some(ADMIN));
    server.put("/api/warehouses/1", json!({"name": "Kho 1"})).expect(201);
    server.put("/api/warehouses/2", json!({"name": "Kho 2"})).expect(201);
    server.product("401");
    server.stock("401", "1", 4);
    server.stock("401", "2", 6);
    let body = json!({"filters": {"ids": [401]}}).to_string();
    let with_auth = |path: &str, method: &'static str, value: Option<&str>| -> Response {
        let mut req = crate::common::Request::new(method, path);
        if let Some(v) = value {
            req = req.header("Authorization", v);
        }
        if method == "POST" {
            req = req.body(body.clone());
        }
        server.raw(req)
    };

    // The document's form, `Authorization: <token>`, and the usual Bearer form.
    let items = depot_ok(&with_auth(DEPOT, "POST", Some(ADMIN)));
    assert_eq!(items[0]["inventory"]["remain"], 10);
    let items = depot_ok(&with_auth(DEPOT, "POST", Some(&format!("Bearer {ADMIN}"))));
    assert_eq!(items[0]["inventory"]["remain"], 10);
    // A token restricted to depot 1 sees depot 1 only.
    let items = depot_ok(&with_auth(DEPOT, "POST", Some(READER)));
    assert_eq!(items[0]["inventory"]["remain"], 4, "{}", items[0]);
    assert_eq!(items[0]["inventory"]["depots"].as_array().map(Vec::len), Some(1));
    // No token, a wrong token: 401 in the dialect's error shape.
    depot_failed(&with_auth(DEPOT, "POST", None), 401);
    depot_failed(&with_auth(DEPOT, "POST", Some("wrong")), 401);
    depot_failed(&with_auth(DEPOT, "POST", Some("Bearer wrong")), 401);

    // The bare form anywhere else is 401.
    with_auth("/api/inventory", "GET", Some(ADMIN)).expect_error(401, "unauthenticated");
    with_auth("/v2/products/inventory/401", "GET", Some(ADMIN)).expect_error(401, "unauthenticated");
    let res = with_auth(ADJUSTMENTS, "GET", Some(ADMIN));
    assert_eq!(res.status, 401, "{}", res.body);
    assert!(res.json()["errors"].is_string(), "{}", res.body);
    let journal = server.journal_len();
    let res = server.raw(
        crate::common::Request::new("POST", MOVMENT)
            .header("Authorization", ADMIN)
            .body(json!({"product_id": "401", "operation": "IN", "quantity": 1}).to_string()),
    );
    res.expect_error(401, "unauthenticated");
    assert_eq!(server.journal_len(), journal);
    // ...while the same token as Bearer works there.
    server.get("/v2/products/inventory/401").expect(200);
}

/// Walks the whole list with `size`; `between` runs after each page (with the page's ids).
/// Number (as text) → id of every product, from the native list's `number`.
fn product_numbers(c: &Client) -> BTreeMap<String, String> {
    let res = c.get("/api/products?limit=500");
    res.expect(200);
    res.json()["data"]
        .as_array()
        .expect("products")
        .iter()
        .map(|p| (p["number"].to_string(), p["id"].as_str().unwrap_or("").to_string()))
        .collect()
}

fn depot_walk(c: &Client, size: u64, sort: &str, mut between: impl FnMut(usize, &[String])) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = Value::Null;
    for page in 0..200 {
        let mut paginator = json!({"size": size, "sort": {"id": sort}});
        if !next.is_null() {
            paginator["next"] = next.clone();
        }
        let res = depot(c, json!({"paginator": paginator}));
        let items = depot_ok(&res);
        assert!(items.len() as u64 <= size, "{}", res.body);
        // Answers show numbers (`x-1` shows an assigned one): back to the catalog's ids.
        let numbers = product_numbers(c);
        let ids: Vec<String> = product_ids(&items)
            .into_iter()
            .map(|n| numbers.get(&n).cloned().unwrap_or(n))
            .collect();
        next = res.json()["paginator"]["next"].clone();
        if next.is_null() {
            out.extend(ids);
            return out;
        }
        // A full page points at its last product, as sent.
        assert_eq!(items.len() as u64, size, "a page with a next is full: {}", res.body);
        assert_keys(&next, &["id"]);
        assert_eq!(next["id"], items[items.len() - 1]["productId"], "{}", res.body);
        between(page, &ids);
        out.extend(ids);
    }
    panic!("more than 200 pages");
}

#[test]
fn depot_cursor_walk_returns_every_product_once() {
    let server = Server::open();
    server.warehouse("w1");
    // 7 is left out: a walk in descending order creates it ahead of its cursor.
    let mut all: Vec<String> = (1..=20).filter(|&i| i != 7).map(|i| i.to_string()).collect();
    all.push("x-1".to_string());
    for id in &all {
        server.product(id);
    }
    // Products are in id order: all-digit ids numerically, then the others by bytes
    // (docs/dialects.md) — the order the document's `next: {"id": 100}` implies.
    all.sort_by_key(|id| stockd::store::tables::products_order_key(id));

    let asc = depot_walk(&server, 3, "asc", |_, _| {});
    assert_eq!(asc, all, "ascending walk");
    let desc = depot_walk(&server, 3, "desc", |_, _| {});
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(desc, reversed, "descending walk");
    // Page sizes that divide the list exactly end with one empty page.
    assert_eq!(depot_walk(&server, 7, "asc", |_, _| {}), all);
    assert_eq!(depot_walk(&server, 100, "desc", |_, _| {}), reversed);

    // Writes between pages: stock changes, renames and new products, ahead of the cursor
    // and behind it. Each product that existed before the walk is seen exactly once; a new
    // one ahead of the cursor is seen once; none is seen twice.
    for (sort, ahead, behind) in [("asc", "z-new", "0"), ("desc", "7", "zz")] {
        let mut added: Vec<String> = Vec::new();
        let walked = depot_walk(&server, 3, sort, |page, ids| {
            for id in ids {
                server.stock(id, "w1", 1);
            }
            let last = all[all.len() - 1 - page % all.len()].clone();
            server.stock(&last, "w1", 1);
            put_product(
                &server,
                &all[page % all.len()],
                json!({"sku": format!("SKU-{}", all[page % all.len()]), "name": format!("renamed {page}")}),
            );
            if page == 1 {
                server.product(ahead);
                server.product(behind);
                added.push(ahead.to_string());
            }
        });
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for id in &walked {
            *counts.entry(id.as_str()).or_default() += 1;
        }
        for id in &all {
            assert_eq!(counts.get(id.as_str()), Some(&1), "{sort}: {id} once in {walked:?}");
        }
        for id in &added {
            assert_eq!(
                counts.get(id.as_str()),
                Some(&1),
                "{sort}: new {id} (ahead) once in {walked:?}"
            );
        }
        assert!(counts.values().all(|&n| n == 1), "{sort}: none twice: {walked:?}");
        assert!(
            !counts.contains_key(behind),
            "{sort}: {behind} was created behind the cursor: {walked:?}"
        );
        all.push(ahead.to_string());
        all.push(behind.to_string());
        all.sort_by_key(|id| stockd::store::tables::products_order_key(id));
    }

    // A walk over an `ids` filter pages the same way.
    let res = depot(
        &server,
        json!({"filters": {"ids": [3, 1, 2, 20, 10]}, "paginator": {"size": 2}}),
    );
    assert_eq!(product_ids(&depot_ok(&res)), vec!["1", "2"]);
    let next = res.json()["paginator"]["next"].clone();
    assert_eq!(next, json!({"id": 2}));
    let res = depot(
        &server,
        json!({"filters": {"ids": [3, 1, 2, 20, 10]}, "paginator": {"size": 2, "next": next}}),
    );
    assert_eq!(product_ids(&depot_ok(&res)), vec!["3", "10"]);
    let next = res.json()["paginator"]["next"].clone();
    let res = depot(
        &server,
        json!({"filters": {"ids": [3, 1, 2, 20, 10]}, "paginator": {"size": 2, "next": next}}),
    );
    assert_eq!(product_ids(&depot_ok(&res)), vec!["20"]);
    assert_eq!(res.json()["paginator"]["next"], Value::Null);
    server.assert_verified();
}

// ---------------------------------------------------------------------------------------
// Across the dialects: configuration, replays, numbering under load, credentials
// ---------------------------------------------------------------------------------------

#[test]
fn dialects_use_the_configured_default_warehouse() {
    let server = Server::start("[inventory]\ndefault_warehouse = \"main\"\n");
    server.product("p1");
    server
        .post(MOVMENT, json!({"product_id": "p1", "operation": "IN", "quantity": 7}))
        .expect(201);
    assert_eq!(server.on_hand("p1", "main"), 7);
    let res = server.post(
        ADJUST,
        json!({"inventory": {"line_items": [{"product_id": "p1", "quantity": 2}]}}),
    );
    res.expect(201);
    // The default warehouse is number 0, whatever its id (issue 12).
    assert_eq!(res.json()["adjustment"]["location_id"], 0);
    assert_eq!(server.on_hand("p1", "main"), 9);
    let log = server.get("/v2/products/inventory/p1").json();
    assert_eq!(log["count"], 2);
    assert_eq!(log["items"][0]["total_after"], 9);
    server.assert_verified();
}

#[test]
fn dialect_writes_replay_under_an_idempotency_key() {
    let server = Server::open();
    server.product("p1");
    let send = |path: &str, key: &str, body: &Value| {
        server.raw(
            server
                .request("POST", path)
                .header("Idempotency-Key", key)
                .body(body.to_string()),
        )
    };

    let body = json!({"product_id": "p1", "operation": "IN", "quantity": 3});
    let first = send(MOVMENT, "k-000", &body);
    first.expect(201);
    let journal = server.journal_len();
    let again = send(MOVMENT, "k-000", &body);
    again.expect(201);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(server.journal_len(), journal);
    assert_eq!(server.on_hand("p1", "default"), 3);

    let body = json!({"inventory": {"line_items": [{"product_id": "p1", "quantity": 2}]}});
    let first = send(ADJUST, "k-002", &body);
    first.expect(201);
    let journal = server.journal_len();
    let again = send(ADJUST, "k-002", &body);
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.body, first.body, "the same adjustment, the same number");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.header("location"), None);
    assert_eq!(server.journal_len(), journal);
    // The same key with another body is refused, in the dialect's shape, and changes nothing.
    let other = json!({"inventory": {"line_items": [{"product_id": "p1", "quantity": 9}]}});
    let res = send(ADJUST, "k-002", &other);
    assert_eq!(res.status, 422, "{}", res.body);
    assert!(res.json()["errors"].is_object(), "{}", res.body);
    assert_eq!(server.journal_len(), journal);
    // The next adjustment takes the next number: a replay consumes none.
    let res = server.post(ADJUST, body);
    assert_eq!(res.json()["adjustment"]["adjust_number"], "IA100002");
    assert_eq!(server.on_hand("p1", "default"), 7);
}

#[test]
fn adjustment_numbers_have_no_gaps_under_concurrent_creates() {
    let server = Server::open();
    server.product("p1");
    server.stock("p1", "default", 1000);
    let threads = 8;
    let per_thread = 6;
    let made: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let c = server.client();
                s.spawn(move || {
                    let mut made = Vec::new();
                    for i in 0..per_thread {
                        // every third request is refused (unknown product): it takes no number
                        let product = if (t + i) % 3 == 0 { "nope" } else { "p1" };
                        let res = c.post(
                            ADJUST,
                            json!({"inventory": {"line_items": [{"product_id": product, "quantity": -1}, {"product_id": "p1", "quantity": 2}]}}),
                        );
                        if product == "nope" {
                            assert_eq!(res.status, 422, "{}", res.body);
                        } else {
                            res.expect(201);
                            made.push(res.json()["adjustment"].clone());
                        }
                    }
                    made
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("thread")).collect()
    });
    let mut numbers: Vec<String> = made
        .iter()
        .map(|a| a["adjust_number"].as_str().unwrap_or("").to_string())
        .collect();
    numbers.sort();
    let expected: Vec<String> = (0..made.len()).map(|i| format!("IA{}", 100001 + i)).collect();
    assert_eq!(numbers, expected, "IA numbers are dense and unique");
    let ids: BTreeSet<u64> = made.iter().filter_map(|a| a["id"].as_u64()).collect();
    assert_eq!(ids.len(), made.len());
    assert_eq!(
        server.get("/com/inventories/adjustments/count.json").json(),
        json!({"count": made.len()})
    );
    assert_eq!(server.on_hand("p1", "default"), 1000 + made.len() as i64);
    server.assert_verified();
}

#[test]
fn adjustments_list_pages_by_50_by_default() {
    let server = Server::open();
    server.product("p1");
    let mut ids = Vec::new();
    for _ in 0..51 {
        let res = server.post(
            ADJUST,
            json!({"inventory": {"line_items": [{"product_id": "p1", "quantity": 1}]}}),
        );
        res.expect(201);
        ids.push(res.json()["adjustment"]["id"].as_u64().expect("id"));
    }
    ids.reverse();
    let page = |q: &str| -> Vec<u64> {
        server.get(&format!("{ADJUSTMENTS}{q}")).json()["adjustments"]
            .as_array()
            .expect("adjustments")
            .iter()
            .filter_map(|a| a["id"].as_u64())
            .collect()
    };
    assert_eq!(page(""), ids[..50].to_vec());
    assert_eq!(page("?page=2"), ids[50..].to_vec());
    assert_eq!(page("?limit=50&page=2"), ids[50..].to_vec());
    assert_eq!(
        server.get("/com/inventories/adjustments/count.json").json(),
        json!({"count": 51})
    );
    // Paging by since_id, the SDK way, visits each once.
    let mut seen = Vec::new();
    let mut since = 0u64;
    loop {
        let batch = page(&format!("?since_id={since}&limit=7"));
        let Some(last) = batch.last().copied() else { break };
        seen.extend(batch);
        since = last;
    }
    let mut oldest_first = ids.clone();
    oldest_first.reverse();
    assert_eq!(seen, oldest_first);
}

#[test]
fn dialects_respect_scopes_and_warehouse_restrictions() {
    const ADMIN: &str = "scopes-admin";
    const READER: &str = "scopes-reader";
    const W1: &str = "scopes-writer-w1";
    let config = format!(
        r#"
[[tokens]]
name = "admin"
sha256 = "{}"
scopes = ["admin"]

[[tokens]]
name = "reader"
sha256 = "{}"
scopes = ["inventory:read"]

[[tokens]]
name = "writer-w1"
sha256 = "{}"
scopes = ["inventory:write"]
warehouses = ["w1"]
"#,
        stockd::auth::sha256_hex(ADMIN.as_bytes()),
        stockd::auth::sha256_hex(READER.as_bytes()),
        stockd::auth::sha256_hex(W1.as_bytes()),
    );
    let server = Server::start_with_token(&config, Some(ADMIN));
    server.warehouse("w1");
    server.warehouse("w2");
    server.product("p1");
    server.stock("p1", "default", 5);
    let at_w2 = server.post(
        ADJUST,
        json!({"inventory": {"location_id": "w2", "line_items": [{"product_id": "p1", "quantity": 1}]}}),
    );
    at_w2.expect(201);
    let w2_id = at_w2.json()["adjustment"]["id"].as_u64().expect("id");
    let journal = server.journal_len();

    // Read-only: no writes through any dialect.
    server
        .post_as(
            Some(READER),
            MOVMENT,
            json!({"product_id": "p1", "operation": "IN", "quantity": 1}),
        )
        .expect_error(403, "forbidden");
    let res = server.post_as(
        Some(READER),
        ADJUST,
        json!({"inventory": {"line_items": [{"product_id": "p1", "quantity": 1}]}}),
    );
    assert_eq!(res.status, 403, "{}", res.body);
    assert!(res.json()["errors"].is_string(), "{}", res.body);
    server.get_as(Some(READER), "/v2/products/inventory/p1").expect(200);
    server.get_as(Some(READER), ADJUSTMENTS).expect(200);
    // Restricted to w1: not the default warehouse (000), not location w2 (002).
    server
        .post_as(
            Some(W1),
            MOVMENT,
            json!({"product_id": "p1", "operation": "IN", "quantity": 1}),
        )
        .expect_error(403, "forbidden");
    let res = server.post_as(
        Some(W1),
        ADJUST,
        json!({"inventory": {"location_id": "w2", "line_items": [{"product_id": "p1", "quantity": 1}]}}),
    );
    assert_eq!(res.status, 403, "{}", res.body);
    assert!(res.json()["errors"].is_string(), "{}", res.body);
    assert_eq!(server.journal_len(), journal, "refused writes change nothing");
    let res = server.post_as(
        Some(W1),
        ADJUST,
        json!({"inventory": {"location_id": "w1", "line_items": [{"product_id": "p1", "quantity": 1}]}}),
    );
    res.expect(201);
    // …and it lists and counts only its own location's adjustments.
    let listed = server.get_as(Some(W1), ADJUSTMENTS).json();
    let locations: Vec<Value> = listed["adjustments"]
        .as_array()
        .expect("adjustments")
        .iter()
        .map(|a| a["location_id"].clone())
        .collect();
    // w1 is not all digits: it shows its assigned number (the first one).
    assert_eq!(locations, vec![json!(9_000_000_000_000_001u64)]);
    assert_eq!(
        server
            .get_as(Some(W1), "/com/inventories/adjustments/count.json")
            .json(),
        json!({"count": 1})
    );
    let res = server.get_as(Some(W1), &format!("/com/inventories/adjustments/{w2_id}.json"));
    assert!(matches!(res.status, 403 | 404), "{}", res.body);
    assert!(res.json()["errors"].is_string(), "{}", res.body);
}

#[test]
fn movement_log_ids_that_are_not_plain_numbers_stay_strings() {
    let server = Server::open();
    for id in ["0123", "0", "sku-1", "123"] {
        server.product(id);
        server
            .post(MOVEMENT, json!({"product_id": id, "operation": "IN", "quantity": 1}))
            .expect(201);
    }
    // A number in the request names the product with those digits.
    server
        .raw(
            server
                .request("POST", MOVEMENT)
                .body(r#"{"product_id": 123, "operation": "IN", "quantity": 1}"#),
        )
        .expect(201);
    assert_eq!(server.on_hand("123", "default"), 2);
    for (id, raw) in [("0123", "\"0123\""), ("0", "0"), ("sku-1", "\"sku-1\""), ("123", "123")] {
        let res = server.get(&format!("/v2/products/inventory/{id}"));
        res.expect(200);
        let all = raw_values(&res.body, "product_id");
        assert!(!all.is_empty() && all.iter().all(|r| *r == raw), "{id}: {}", res.body);
    }
    // A leading zero is part of the id, so it cannot be a JSON number.
    server
        .raw(
            server
                .request("POST", MOVEMENT)
                .body(r#"{"product_id": 0123, "operation": "IN", "quantity": 1}"#),
        )
        .expect_error(400, "invalid_json");
    server
        .raw(
            server
                .request("POST", MOVEMENT)
                .body(r#"{"product_id": 255428000059312855148083097871927924885, "operation": "IN", "quantity": 1}"#),
        )
        .expect_error(404, "product_not_found");
}
