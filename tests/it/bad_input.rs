//! Bad input of every kind gets its 4xx and code, and changes nothing (DESIGN.md "Errors").
//! The client helper itself fails any 5xx answer.

use serde_json::{json, Value};

use crate::common::{enc, Client, Response, Server};

const MOVES: &str = "/api/inventory/movements";

/// What a refused request must leave alone: the level of p1/w1 and the journal length.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    on_hand: i64,
    journal: u64,
}

fn snapshot(c: &Client) -> Snapshot {
    Snapshot {
        on_hand: c.on_hand("p1", "w1"),
        journal: c.journal_len(),
    }
}

/// A server with product p1 holding 10 in warehouse w1.
fn stocked(toml: &str) -> Server {
    let server = Server::start(toml);
    server.product("p1");
    server.warehouse("w1");
    server.stock("p1", "w1", 10);
    server
}

/// Asserts the answer is the error `(status, code)` and that nothing changed.
#[track_caller]
fn refused(c: &Client, res: Response, status: u16, code: &str, before: &Snapshot) -> Response {
    res.expect_error(status, code);
    assert_eq!(&snapshot(c), before, "a refused request changed state: {}", res.body);
    res
}

fn post_raw(c: &Client, path: &str, body: &str) -> Response {
    c.raw(c.request("POST", path).body(body))
}

fn movement(extra: Value) -> Value {
    let mut body = json!({"product_id": "p1", "warehouse_id": "w1", "movement_type": "in", "quantity": 5});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    body
}

#[test]
fn malformed_json_is_400() {
    let server = stocked("");
    let before = snapshot(&server);
    for body in [
        r#"{"product_id": "p1", "warehouse_id": "w1", "movement_type": "in", "quantity": 5"#,
        r#"{"product_id": "p1",, "quantity": 5}"#,
        "not json at all",
        "",
        r#"{"product_id": "p1", "warehouse_id": "w1", "movement_type": "in", "quantity": 5} trailing"#,
    ] {
        let res = post_raw(&server, MOVES, body);
        refused(&server, res, 400, "invalid_json", &before);
    }
    let res = server.raw(server.request("PUT", "/api/products/p9").body("{\"sku\": "));
    refused(&server, res, 400, "invalid_json", &before);
    // invalid UTF-8 inside a string
    let res = server.raw(
        server
            .request("POST", MOVES)
            .body(b"{\"product_id\": \"p\xff1\"}".to_vec()),
    );
    assert!(matches!(res.status, 400 | 422), "{} {}", res.status, res.body);
    assert_eq!(snapshot(&server), before);
    server.get("/api/products/p9").expect_error(404, "product_not_found");
}

/// A body that is not JSON is 400 even when a shape error comes first in it: the syntax
/// decides, whatever the parser happened to notice first.
#[test]
fn malformed_json_is_400_even_after_a_shape_error() {
    let server = stocked("");
    let before = snapshot(&server);
    for body in [
        r#"{"product_id": "p1"} trailing"#,
        r#"{"product_id": "p1", "warehouse_id": "w1", "movement_type": "in", "quantity": "5","#,
        r#"{"colour": "blue", "#,
    ] {
        let res = post_raw(&server, MOVES, body);
        assert_eq!(res.status, 400, "{body}: {}", res.body);
        refused(&server, res, 400, "invalid_json", &before);
    }
}

#[test]
fn wrong_types_and_shapes_are_422() {
    let server = stocked("");
    let before = snapshot(&server);
    for extra in [
        json!({"quantity": "5"}),
        json!({"quantity": 1.5}),
        json!({"quantity": 5.0}),
        json!({"quantity": null}),
        json!({"quantity": true}),
        json!({"product_id": 1}),
        json!({"warehouse_id": ["w1"]}),
        json!({"movement_type": "teleport"}),
        json!({"movement_type": "IN"}),
        json!({"colour": "blue"}),
        json!({"cost_per_unit": "25.00"}),
        json!({"cost_per_unit": -1}),
        json!({"cost_per_unit": 0.1234567}),
        json!({"expected_on_hand": "10"}),
        json!({"in_transit": true}),
        json!({"to_warehouse_id": "w1"}),
    ] {
        let res = server.post(MOVES, movement(extra.clone()));
        assert_eq!(res.status, 422, "{extra}: {}", res.body);
        refused(&server, res, 422, "invalid_field", &before);
    }
    // missing required fields
    for body in [
        json!({"warehouse_id": "w1", "movement_type": "in", "quantity": 5}),
        json!({}),
        json!([]),
    ] {
        let res = server.post(MOVES, body);
        refused(&server, res, 422, "invalid_field", &before);
    }
    // a field given twice is ambiguous (parsers disagree on which wins)
    let res = post_raw(
        &server,
        MOVES,
        r#"{"product_id": "p1", "warehouse_id": "w1", "movement_type": "in", "quantity": 1, "quantity": 1000}"#,
    );
    assert!(matches!(res.status, 400 | 422), "{}", res.body);
    assert_eq!(snapshot(&server), before);
    // deep nesting is refused, not a stack overflow
    let deep = format!("{{\"product_id\": {}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let res = post_raw(&server, MOVES, &deep);
    assert!(matches!(res.status, 400 | 422), "{} {}", res.status, res.body);
    assert_eq!(snapshot(&server), before);
    // exponent notation is not an exact decimal
    let res = post_raw(
        &server,
        MOVES,
        r#"{"product_id": "p1", "warehouse_id": "w1", "movement_type": "in", "quantity": 5, "cost_per_unit": 1e3}"#,
    );
    refused(&server, res, 422, "invalid_field", &before);
    // quantity beyond i64 in the JSON itself
    let res = post_raw(
        &server,
        MOVES,
        r#"{"product_id": "p1", "warehouse_id": "w1", "movement_type": "in", "quantity": 9223372036854775808}"#,
    );
    refused(&server, res, 422, "invalid_field", &before);
    // the field is named in the detail (wrong types: see wrong_type_detail_names_the_field)
    let res = server.post(MOVES, movement(json!({"colour": "blue"})));
    assert!(
        res.json()["detail"].as_str().unwrap_or("").contains("colour"),
        "{}",
        res.body
    );
    let res = server.post(MOVES, json!({"product_id": "p1", "quantity": 1}));
    assert!(
        res.json()["detail"].as_str().unwrap_or("").contains("movement_type"),
        "{}",
        res.body
    );
    let res = server.post(MOVES, movement(json!({"movement_type": "teleport"})));
    assert!(
        res.json()["detail"].as_str().unwrap_or("").contains("movement_type"),
        "{}",
        res.body
    );

    // catalog and planning bodies too
    let res = server.put("/api/products/p9", json!({"sku": "S9", "name": "n", "colour": "blue"}));
    refused(&server, res, 422, "invalid_field", &before);
    let res = server.put("/api/products/p9", json!({"name": "no sku"}));
    refused(&server, res, 422, "invalid_field", &before);
    let res = server.put("/api/products/p9", json!({"sku": "S9", "name": "n", "unit_cost": -3}));
    refused(&server, res, 422, "invalid_field", &before);
    let res = server.put("/api/warehouses/w9", json!({"name": 7}));
    refused(&server, res, 422, "invalid_field", &before);
    let res = server.patch("/api/inventory/levels/p1/w1", json!({"reorder_point": -1}));
    refused(&server, res, 422, "invalid_field", &before);
    let res = server.patch("/api/inventory/levels/p1/w1", json!({"buffer": "2"}));
    refused(&server, res, 422, "invalid_field", &before);
    let res = server.patch("/api/inventory/levels/p1/w1", json!({"buffer": -1}));
    refused(&server, res, 422, "invalid_field", &before);
    let res = server.put("/api/warehouses/w9", json!({"name": "n".repeat(501)}));
    refused(&server, res, 422, "invalid_field", &before);
    let res = server.put("/api/products/p9", json!({"sku": "", "name": "empty sku"}));
    refused(&server, res, 422, "invalid_field", &before);
    let res = server.post(MOVES, movement(json!({"reference_id": "r".repeat(129)})));
    refused(&server, res, 422, "invalid_field", &before);
    let res = server.post(MOVES, movement(json!({"product_id": ""})));
    refused(&server, res, 422, "invalid_field", &before);
    let long_id = "x".repeat(129);
    let res = server.put(&format!("/api/products/{long_id}"), json!({"sku": "S9", "name": "n"}));
    refused(&server, res, 422, "invalid_field", &before);
    server.get("/api/products/p9").expect_error(404, "product_not_found");
    server
        .get("/api/warehouses/w9")
        .expect_error(404, "warehouse_not_found");
}

/// API.md: "a field ... of the wrong type ... → 422 `invalid_field` (the `detail` names it)".
#[test]
fn wrong_type_detail_names_the_field() {
    let server = stocked("");
    let before = snapshot(&server);
    let cases = [
        (MOVES, movement(json!({"quantity": "5"})), "quantity"),
        (MOVES, movement(json!({"quantity": 1.5})), "quantity"),
        (MOVES, movement(json!({"expected_on_hand": "10"})), "expected_on_hand"),
        (MOVES, movement(json!({"notes": 42})), "notes"),
        (
            "/api/inventory/adjustments",
            json!({"adjustments": [{"product_id": "p1", "warehouse_id": "w1", "actual_quantity": "3"}]}),
            "actual_quantity",
        ),
    ];
    for (path, body, field) in cases {
        let res = server.post(path, body.clone());
        let res = refused(&server, res, 422, "invalid_field", &before);
        let detail = res.json()["detail"].as_str().unwrap_or("").to_string();
        assert!(
            detail.contains(field),
            "{body}: the detail does not name `{field}`: {detail}"
        );
    }
}

#[test]
fn zero_and_negative_quantities_are_422() {
    let server = stocked("");
    server.warehouse("w2");
    let before = snapshot(&server);
    for (kind, q) in [
        ("in", 0),
        ("in", -1),
        ("out", 0),
        ("out", -1),
        ("adjustment", 0),
        ("set", -1),
    ] {
        let res = server.post(MOVES, movement(json!({"movement_type": kind, "quantity": q})));
        assert_eq!(res.status, 422, "{kind} {q}: {}", res.body);
        refused(&server, res, 422, "invalid_field", &before);
    }
    for q in [0, -4] {
        let res = server.post(
            MOVES,
            movement(json!({"movement_type": "transfer", "quantity": q, "to_warehouse_id": "w2"})),
        );
        refused(&server, res, 422, "invalid_field", &before);
    }
    // transfer to itself, transfer without a target
    let res = server.post(
        MOVES,
        movement(json!({"movement_type": "transfer", "to_warehouse_id": "w1"})),
    );
    refused(&server, res, 422, "invalid_field", &before);
    let res = server.post(MOVES, movement(json!({"movement_type": "transfer"})));
    refused(&server, res, 422, "invalid_field", &before);
    assert_eq!(server.on_hand("p1", "w2"), 0);
}

#[test]
fn notes_are_bounded_at_4000_characters() {
    let server = stocked("");
    let before = snapshot(&server);
    let res = server.post(MOVES, movement(json!({"notes": "n".repeat(4001)})));
    let res = refused(&server, res, 422, "invalid_field", &before);
    assert!(
        res.json()["detail"].as_str().unwrap_or("").contains("notes"),
        "{}",
        res.body
    );
    // characters, not bytes: 4000 two-byte characters are fine
    let res = server.post(MOVES, movement(json!({"notes": "é".repeat(4000)})));
    res.expect(201);
    assert_eq!(res.data()["notes"].as_str().map(|s| s.chars().count()), Some(4000));
    let res = server.post(MOVES, movement(json!({"notes": "n".repeat(4000)})));
    res.expect(201);
    assert_eq!(server.on_hand("p1", "w1"), 20);
}

#[test]
fn body_over_the_limit_is_413() {
    let server = stocked("[server]\nbody_limit_bytes = 4096\n");
    let before = snapshot(&server);
    // A valid movement padded past the limit with a note (under 4000 characters).
    let body = movement(json!({"notes": "n".repeat(3990), "reference_type": "r".repeat(450)})).to_string();
    assert!(body.len() > 4096 && body.len() < 5000, "{}", body.len());
    let padded = format!("{body}{}", " ".repeat(5000 - body.len()));
    assert_eq!(padded.len(), 5000);
    let res = post_raw(&server, MOVES, &padded);
    refused(&server, res, 413, "payload_too_large", &before);
    // The same body without a Content-Length (chunked) is cut off while streaming.
    let res = server.raw(server.request("POST", MOVES).body(padded.clone()).chunked());
    refused(&server, res, 413, "payload_too_large", &before);
    // A body just under the limit goes through.
    let small = movement(json!({"notes": "n".repeat(3900)})).to_string();
    assert!(small.len() <= 4096);
    post_raw(&server, MOVES, &small).expect(201);
    assert_eq!(server.on_hand("p1", "w1"), 15);
}

#[test]
fn unknown_product_warehouse_movement_and_route_are_404() {
    let server = stocked("");
    let before = snapshot(&server);
    let res = server.post(MOVES, movement(json!({"product_id": "ghost"})));
    refused(&server, res, 404, "product_not_found", &before);
    let res = server.post(MOVES, movement(json!({"warehouse_id": "nowhere"})));
    refused(&server, res, 404, "warehouse_not_found", &before);
    let res = server.post(
        MOVES,
        movement(json!({"movement_type": "transfer", "to_warehouse_id": "nowhere"})),
    );
    refused(&server, res, 404, "warehouse_not_found", &before);
    let res = server.patch("/api/inventory/levels/p1/nowhere", json!({"buffer": 1}));
    refused(&server, res, 404, "warehouse_not_found", &before);

    for id in [
        "mov_999",
        "mov_0",
        "mov_abc",
        "999",
        "mov_-1",
        "mov_18446744073709551616",
    ] {
        let res = server.get(&format!("/api/inventory/movements/{id}"));
        refused(&server, res, 404, "movement_not_found", &before);
    }
    for path in ["/api/nope", "/api/inventory/levels", "/nope", "/api/products/p1/nope"] {
        let res = server.get(path);
        assert_eq!(res.status, 404, "{path}: {}", res.body);
        assert_eq!(snapshot(&server), before);
    }
    let res = server.post("/api/nope", json!({}));
    assert_eq!(res.status, 404, "{}", res.body);
    assert_eq!(res.code(), "route_not_found");
}

/// A method a route does not take is a clean problem+json refusal. API.md leaves the status
/// open; docs/api.md answers it as 404 `route_not_found` (405 would also do).
#[test]
fn wrong_method_on_a_known_route_is_refused_cleanly() {
    let server = stocked("");
    let before = snapshot(&server);
    let attempts = [
        server.delete("/api/products/p1"),
        server.put(MOVES, movement(json!({}))),
        server.raw(server.request("DELETE", "/api/inventory/levels/p1/w1")),
        server.post("/api/products/p1", json!({"sku": "S", "name": "n"})),
    ];
    for res in attempts {
        match res.status {
            405 => refused(&server, res, 405, "method_not_allowed", &before),
            _ => refused(&server, res, 404, "route_not_found", &before),
        };
    }
    server.get("/api/products/p1").expect(200);
    assert_eq!(server.get("/api/products/p1").data()["name"], "Product p1");
}

#[test]
fn bulk_adjustments_limits_and_atomicity() {
    let server = stocked("");
    server.product("p2");
    server.stock("p2", "w1", 5);
    let before = snapshot(&server);

    // 1001 items are too many, before anything is looked up.
    let items: Vec<Value> = (0..1001)
        .map(|i| json!({"product_id": format!("b{i}"), "warehouse_id": "w1", "actual_quantity": 1}))
        .collect();
    let res = server.post("/api/inventory/adjustments", json!({"adjustments": items}));
    res.expect_error(422, "too_many_items");
    assert_eq!(snapshot(&server), before);

    // The last item names an unknown product: nothing is applied.
    let res = server.post(
        "/api/inventory/adjustments",
        json!({"adjustments": [
            {"product_id": "p1", "warehouse_id": "w1", "actual_quantity": 50, "reason": "count"},
            {"product_id": "p2", "warehouse_id": "w1", "actual_quantity": 7},
            {"product_id": "ghost", "warehouse_id": "w1", "actual_quantity": 1}
        ]}),
    );
    refused(&server, res, 404, "product_not_found", &before);
    assert_eq!(server.on_hand("p2", "w1"), 5);
    let res = server.post(
        "/api/inventory/adjustments",
        json!({"adjustments": [
            {"product_id": "p1", "warehouse_id": "w1", "actual_quantity": 50},
            {"product_id": "p2", "warehouse_id": "nowhere", "actual_quantity": 7}
        ]}),
    );
    refused(&server, res, 404, "warehouse_not_found", &before);

    for body in [
        json!({"adjustments": []}),
        json!({"adjustments": [{"product_id": "p1", "warehouse_id": "w1", "actual_quantity": -1}]}),
        json!({"adjustments": [{"product_id": "p1", "warehouse_id": "w1", "actual_quantity": "3"}]}),
        json!({"adjustments": [{"product_id": "p1", "warehouse_id": "w1"}]}),
        json!({"adjustments": [{"product_id": "p1", "warehouse_id": "w1", "actual_quantity": 3, "extra": 1}]}),
        json!({"adjustments": [
            {"product_id": "p1", "warehouse_id": "w1", "actual_quantity": 3},
            {"product_id": "p1", "warehouse_id": "w1", "actual_quantity": 4}
        ]}),
        json!({"items": []}),
    ] {
        let res = server.post("/api/inventory/adjustments", body.clone());
        assert_eq!(res.status, 422, "{body}: {}", res.body);
        refused(&server, res, 422, "invalid_field", &before);
    }
    assert_eq!(server.on_hand("p2", "w1"), 5);
}

#[test]
fn bulk_adjustment_of_1000_items_is_accepted() {
    let server = Server::open();
    // 1000 products, created from a few threads (the writer commits them in groups).
    let client = server.client();
    std::thread::scope(|s| {
        for t in 0..8 {
            let client = client.clone();
            s.spawn(move || {
                for i in (t..1000).step_by(8) {
                    client.product(&format!("b{i:04}"));
                }
            });
        }
    });
    let items: Vec<Value> = (0..1000)
        .map(|i| json!({"product_id": format!("b{i:04}"), "actual_quantity": i + 1, "reason": "count"}))
        .collect();
    let res = server.post("/api/inventory/adjustments", json!({"adjustments": items}));
    assert!(
        matches!(res.status, 200 | 201),
        "{} {}",
        res.status,
        &res.body[..res.body.len().min(500)]
    );
    assert_eq!(res.data()["adjustments_processed"], 1000);
    assert_eq!(server.journal_len(), 1000);
    assert_eq!(server.on_hand("b0999", "default"), 1000);
    server.assert_verified();
}

#[test]
fn overflow_is_422_and_never_wraps() {
    let server = Server::open();
    server.product("p1");
    server.warehouse("w1");
    server.stock("p1", "w1", 1);
    let before = snapshot(&server);
    let res = server.post(MOVES, movement(json!({"quantity": i64::MAX})));
    refused(&server, res, 422, "quantity_overflow", &before);
    let res = server.post(
        MOVES,
        movement(json!({"movement_type": "adjustment", "quantity": i64::MAX})),
    );
    refused(&server, res, 422, "quantity_overflow", &before);
    // a transfer whose in leg would overflow applies neither leg
    server.warehouse("w2");
    server.product("p3");
    server.stock("p3", "w2", i64::MAX);
    server.stock("p3", "w1", 5);
    let before = snapshot(&server);
    let res = server.post(
        MOVES,
        movement(json!({"product_id": "p3", "movement_type": "transfer", "quantity": 1, "to_warehouse_id": "w2"})),
    );
    refused(&server, res, 422, "quantity_overflow", &before);
    assert_eq!(server.on_hand("p3", "w1"), 5);
    let res = server.post(
        MOVES,
        movement(json!({"product_id": "p3", "movement_type": "transfer", "quantity": 1, "to_warehouse_id": "w2", "in_transit": true})),
    );
    res.expect(201); // in_transit is a separate bucket: it holds 1
    let res = server.post(
        MOVES,
        movement(json!({"product_id": "p3", "movement_type": "transfer", "quantity": 1, "to_warehouse_id": "w2", "in_transit": true})),
    );
    res.expect(201);
    let tid = res.data()["transfer_id"].as_str().unwrap_or("").to_string();
    // receiving it would push on_hand past i64::MAX
    let before = snapshot(&server);
    let res = server.raw(server.request("POST", &format!("/api/inventory/transfers/{tid}/receive")));
    refused(&server, res, 422, "quantity_overflow", &before);
    assert_eq!(server.level("p3", "w2")["quantity_in_transit"], 2);
    let before = snapshot(&server);

    // i64::MAX itself on an empty level is fine; one more is not.
    server.product("p2");
    let big = server.stock("p2", "w1", i64::MAX);
    assert_eq!(big["balance_after"], i64::MAX);
    let res = server.post(MOVES, movement(json!({"product_id": "p2", "quantity": 1})));
    refused(
        &server,
        res,
        422,
        "quantity_overflow",
        &before.with_journal(before.journal + 1),
    );
    assert_eq!(server.on_hand("p2", "w1"), i64::MAX);
    // a count down from i64::MAX to 0 needs a delta of -i64::MAX: representable
    let res = server.post(
        MOVES,
        movement(json!({"product_id": "p2", "movement_type": "set", "quantity": 0})),
    );
    res.expect(201);
    assert_eq!(res.data()["balance_after"], 0);
    // a count of i64::MIN is refused (negative)
    let res = post_raw(
        &server,
        MOVES,
        r#"{"product_id": "p2", "warehouse_id": "w1", "movement_type": "set", "quantity": -9223372036854775808}"#,
    );
    assert_eq!(res.status, 422, "{}", res.body);
    server.assert_verified();
}

impl Snapshot {
    fn with_journal(&self, journal: u64) -> Snapshot {
        Snapshot {
            on_hand: self.on_hand,
            journal,
        }
    }
}

#[test]
fn list_parameters_out_of_range_are_422() {
    let server = stocked("");
    let before = snapshot(&server);
    // a parameter given twice
    let res = server.get("/api/inventory/movements?limit=1&limit=2");
    refused(&server, res, 422, "invalid_field", &before);
    for list in ["/api/inventory/movements", "/api/inventory", "/api/products"] {
        for query in [
            "limit=0",
            "limit=501",
            "limit=-1",
            "limit=abc",
            "limit=1.5",
            "page=0",
            "page=abc",
            "page=-2",
            "cursor=!!!",
            "cursor=%00",
        ] {
            let res = server.get(&format!("{list}?{query}"));
            assert_eq!(res.status, 422, "{list}?{query}: {}", res.body);
            refused(&server, res, 422, "invalid_field", &before);
        }
        server.get(&format!("{list}?limit=500")).expect(200);
        server.get(&format!("{list}?limit=1&page=1")).expect(200);
    }
    // the detail names the parameter
    let res = server.get("/api/inventory/movements?limit=501");
    assert!(
        res.json()["detail"].as_str().unwrap_or("").contains("limit"),
        "{}",
        res.body
    );
    let res = server.get("/api/inventory/movements?page=0");
    assert!(
        res.json()["detail"].as_str().unwrap_or("").contains("page"),
        "{}",
        res.body
    );

    // dates
    for query in [
        "start_date=yesterday",
        "start_date=2024-13-45",
        "end_date=2024-02-30",
        "end_date=15/01/2024",
        "start_date=2024-01-15T25:00:00Z",
    ] {
        let res = server.get(&format!("/api/inventory/movements?{query}"));
        refused(&server, res, 422, "invalid_field", &before);
    }
    server.get("/api/inventory/movements?start_date=2024-01-15").expect(200);
    server
        .get(&format!(
            "/api/inventory/movements?end_date={}",
            enc("2024-01-15T15:30:00+07:00")
        ))
        .expect(200);

    // a cursor from another list, and a well-formed cursor that holds no position
    let res = server.get("/api/inventory?limit=1");
    let level_cursor = res.json()["meta"]["next_cursor"].clone();
    let mut bad_cursors = vec![enc("bm90LWEtbnVtYmVy")]; // base64 of "not-a-number"
    if let Some(c) = level_cursor.as_str() {
        bad_cursors.push(enc(c));
    }
    for c in bad_cursors {
        let res = server.get(&format!("/api/inventory/movements?cursor={c}"));
        refused(&server, res, 422, "invalid_field", &before);
    }
    let res = server.get("/api/inventory?cursor=bm90LWEtbnVtYmVy");
    refused(&server, res, 422, "invalid_field", &before);
    // page and cursor together
    let res = server.get("/api/inventory/movements?page=2&cursor=MQ");
    refused(&server, res, 422, "invalid_field", &before);
    // unknown movement_type filter, bad booleans
    let res = server.get("/api/inventory/movements?movement_type=teleport");
    refused(&server, res, 422, "invalid_field", &before);
    let res = server.get("/api/inventory?low_stock=maybe");
    refused(&server, res, 422, "invalid_field", &before);
}
