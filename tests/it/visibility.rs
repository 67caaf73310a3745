//! What a warehouse-restricted credential sees of records addressed by their own id
//! (movements, transfers, reservations, seed 002 adjustments) and of seed 001 history:
//! a record that lies only in warehouses it may not use answers exactly as an unknown id,
//! a transfer shows it only its own legs, a partner update only its own lines.

use serde_json::{json, Value};
use stockd::auth::signature::{sign, v1_message};

use crate::common::{send, token_toml, Client, Request, Response, Server};

const ADMIN: &str = "vis-admin-0123456789";
/// inventory:write, restricted to w1.
const W1: &str = "vis-w1-writer-0123456789";
/// inventory:read, restricted to w1.
const W1_READ: &str = "vis-w1-reader-0123456789";
/// inventory:write, restricted to w2.
const W2: &str = "vis-w2-writer-0123456789";
/// A seed 001 partner restricted to w1.
const PARTNER: &str = "w1-partner";
const PARTNER_SECRET: &str = "w1-partner-secret-0123456789";

/// Warehouses w1, w2, w3 with 100 of p1 each (and sku `SKU-p1`, `SKU-p2` for seed 001).
fn server() -> Server {
    let toml = [
        token_toml("admin", ADMIN, &["admin"], None),
        token_toml("w1", W1, &["inventory:write"], Some(&["w1"])),
        token_toml("w1-read", W1_READ, &["inventory:read"], Some(&["w1"])),
        token_toml("w2", W2, &["inventory:write"], Some(&["w2"])),
        format!(
            "[[partners]]\nid = {PARTNER:?}\nsecrets = [{PARTNER_SECRET:?}]\nscopes = [\"inventory:read\"]\nwarehouses = [\"w1\"]\n"
        ),
    ]
    .concat();
    let server = Server::start_with_token(&toml, Some(ADMIN));
    for w in ["w1", "w2", "w3"] {
        server.warehouse(w);
    }
    for p in ["p1", "p2"] {
        server.product(p);
    }
    for w in ["w1", "w2", "w3"] {
        server.stock("p1", w, 100);
    }
    server
}

/// Everything a 404 could have changed: on_hand and allocated of p1 everywhere, the journal.
fn state(c: &Client) -> Vec<Value> {
    let mut s: Vec<Value> = ["w1", "w2", "w3"]
        .iter()
        .map(|w| {
            let l = c.level("p1", w);
            json!([l["quantity_on_hand"], l["quantity_allocated"], l["quantity_in_transit"]])
        })
        .collect();
    s.push(json!(c.journal_len()));
    s
}

/// Asserts that `res`, about `id`, is exactly the answer to the unknown `unknown`.
#[track_caller]
fn like_unknown(res: &Response, id: &str, unknown: &Response, unknown_id: &str) {
    assert_eq!(res.status, 404, "{id}: {}", res.body);
    // Alike but for the id and the request's own id.
    let strip = |body: &str, id: &str| -> Value {
        let mut v: Value = serde_json::from_str(&body.replace(id, "ID")).expect("JSON");
        if let Some(o) = v.as_object_mut() {
            o.remove("request_id");
        }
        v
    };
    assert_eq!(
        strip(&res.body, id),
        strip(&unknown.body, unknown_id),
        "a foreign record answers as an unknown one"
    );
    assert_eq!(res.header("content-type"), unknown.header("content-type"));
}

fn post_empty(c: &Client, token: &str, path: &str) -> Response {
    c.raw(Request::new("POST", path).bearer(Some(token)))
}

fn id_of(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no `{key}` in {v}"))
        .to_string()
}

fn transfer(c: &Client, from: &str, to: &str) -> String {
    let res = c.post(
        "/api/inventory/movements",
        json!({"product_id": "p1", "warehouse_id": from, "to_warehouse_id": to,
               "movement_type": "transfer", "quantity": 3, "in_transit": true}),
    );
    res.expect(201);
    id_of(&res.data(), "transfer_id")
}

fn reserve(c: &Client, warehouse: &str) -> String {
    let res = c.post(
        "/api/inventory/reservations",
        json!({"product_id": "p1", "warehouse_id": warehouse, "quantity": 2, "ttl_seconds": 600}),
    );
    res.expect(201);
    id_of(&res.data(), "id")
}

#[test]
fn foreign_record_ids_answer_as_unknown_ones_for_every_scope() {
    let server = server();
    let mov_w1 = id_of(&server.movement("p1", "w1", "in", 1), "id");
    let mov_w2 = id_of(&server.movement("p1", "w2", "in", 1), "id");
    let trf_w2_w3 = transfer(&server, "w2", "w3");
    let res_w1 = reserve(&server, "w1");
    let res_w2 = reserve(&server, "w2");
    let before = state(&server);

    // (path of the record, unknown path of the same kind, its warehouses)
    let reads = [
        (
            format!("/api/inventory/movements/{mov_w1}"),
            "/api/inventory/movements/mov_999999",
            vec!["w1"],
        ),
        (
            format!("/api/inventory/movements/{mov_w2}"),
            "/api/inventory/movements/mov_999999",
            vec!["w2"],
        ),
        (
            format!("/api/inventory/transfers/{trf_w2_w3}"),
            "/api/inventory/transfers/trf_999999",
            vec!["w2", "w3"],
        ),
        (
            format!("/api/inventory/reservations/{res_w1}"),
            "/api/inventory/reservations/res_999999",
            vec!["w1"],
        ),
        (
            format!("/api/inventory/reservations/{res_w2}"),
            "/api/inventory/reservations/res_999999",
            vec!["w2"],
        ),
    ];
    let tokens = [(ADMIN, None), (W1, Some("w1")), (W1_READ, Some("w1")), (W2, Some("w2"))];
    for (token, only) in tokens {
        for (path, unknown, warehouses) in &reads {
            let res = server.get_as(Some(token), path);
            if only.is_none_or(|w| warehouses.contains(&w)) {
                res.expect(200);
            } else {
                let id = path.rsplit('/').next().unwrap_or_default();
                let unknown_res = server.get_as(Some(token), unknown);
                like_unknown(&res, id, &unknown_res, unknown.rsplit('/').next().unwrap_or_default());
            }
        }
    }

    // Writes addressed by a foreign id: 404 as for an unknown id, nothing changes; a
    // read-only credential is refused for its scope first (403 tells nothing of the id).
    let writes = [
        (
            "POST",
            format!("/api/inventory/transfers/{trf_w2_w3}/receive"),
            "/api/inventory/transfers/trf_999999/receive",
        ),
        (
            "POST",
            format!("/api/inventory/reservations/{res_w2}/commit"),
            "/api/inventory/reservations/res_999999/commit",
        ),
        (
            "DELETE",
            format!("/api/inventory/reservations/{res_w2}"),
            "/api/inventory/reservations/res_999999",
        ),
    ];
    for (method, path, unknown) in &writes {
        let res = server.raw(Request::new(method, path).bearer(Some(W1)));
        let unknown_res = server.raw(Request::new(method, unknown).bearer(Some(W1)));
        let id = if path.contains("trf_") { &trf_w2_w3 } else { &res_w2 };
        let unknown_id = if path.contains("trf_") {
            "trf_999999"
        } else {
            "res_999999"
        };
        like_unknown(&res, id, &unknown_res, unknown_id);
        server
            .raw(Request::new(method, path).bearer(Some(W1_READ)))
            .expect_error(403, "forbidden");
    }
    assert_eq!(state(&server), before, "a refused write changed something");

    // The owner of w2 may do what w1 may not.
    server
        .raw(Request::new("POST", &format!("/api/inventory/reservations/{res_w2}/commit")).bearer(Some(W2)))
        .expect(200);
    server
        .raw(Request::new("DELETE", &format!("/api/inventory/reservations/{res_w1}")).bearer(Some(W1)))
        .expect(200);
}

#[test]
fn seed_002_adjustments_of_a_foreign_location_answer_as_unknown_ones() {
    let server = server();
    let create = |location: &str| -> u64 {
        let res = server.post(
            "/com/inventories/adjustorset.json",
            json!({"inventory": {"location_id": location, "line_items": [{"product_id": "p1", "quantity": 1}]}}),
        );
        res.expect(201);
        res.json()["adjustment"]["id"].as_u64().expect("id")
    };
    let at_w1 = create("w1");
    let at_w2 = create("w2");
    let path = |id: u64| format!("/com/inventories/adjustments/{id}.json");
    let unknown = server.get_as(Some(W1), &path(999_999));
    for token in [W1, W1_READ] {
        server.get_as(Some(token), &path(at_w1)).expect(200);
        let res = server.get_as(Some(token), &path(at_w2));
        like_unknown(&res, &at_w2.to_string(), &unknown, "999999");
    }
    server.get_as(Some(W2), &path(at_w2)).expect(200);
}

#[test]
fn a_transfer_shows_a_restricted_credential_only_its_own_legs() {
    let server = server();
    let into_w1 = transfer(&server, "w2", "w1");
    let path = format!("/api/inventory/transfers/{into_w1}");
    let legs = |token: &str| -> Vec<Value> {
        let res = server.get_as(Some(token), &path);
        res.expect(200);
        res.data()["legs"].as_array().expect("legs").clone()
    };
    let warehouses = |legs: &[Value]| -> Vec<Value> { legs.iter().map(|l| l["warehouse_id"].clone()).collect() };

    // In transit: only the out leg (w2's balances) exists; w1 sees the transfer, no leg.
    assert_eq!(warehouses(&legs(ADMIN)), vec![json!("w2")]);
    assert_eq!(warehouses(&legs(W1)), Vec::<Value>::new(), "w2's balances shown to w1");
    assert_eq!(warehouses(&legs(W2)), vec![json!("w2")]);

    // Received by w1: the answer and every later read show w1 its own leg only.
    let res = post_empty(&server, W1, &format!("{path}/receive"));
    res.expect(200);
    let answered = res.data()["legs"].as_array().expect("legs").clone();
    assert_eq!(warehouses(&answered), vec![json!("w1")], "{}", res.body);
    assert_eq!(answered[0]["balance_before"], 100);
    assert_eq!(warehouses(&legs(W1)), vec![json!("w1")]);
    assert_eq!(warehouses(&legs(W1_READ)), vec![json!("w1")]);
    assert_eq!(warehouses(&legs(W2)), vec![json!("w2")]);
    assert_eq!(warehouses(&legs(ADMIN)), vec![json!("w2"), json!("w1")]);

    // A transfer out of w1 into w2: w1 sees it (its out leg) but may not receive into w2.
    let into_w2 = transfer(&server, "w1", "w2");
    let before = state(&server);
    post_empty(&server, W1, &format!("/api/inventory/transfers/{into_w2}/receive")).expect_error(403, "forbidden");
    assert_eq!(state(&server), before);
    let seen = server.get_as(Some(W1), &format!("/api/inventory/transfers/{into_w2}"));
    seen.expect(200);
    assert_eq!(
        warehouses(seen.data()["legs"].as_array().expect("legs")),
        vec![json!("w1")]
    );
}

fn signed_get(c: &Client, path: &str, nonce: &str) -> Response {
    let ts = (stockd::clock::now_ms() / 1000).to_string();
    let sig = sign(PARTNER_SECRET, v1_message("GET", path, &ts, nonce, b"").as_bytes());
    let req = Request::new("GET", path)
        .header("partner-id", PARTNER)
        .header("timestamp", &ts)
        .header("nonce", nonce)
        .header("secret", &sig);
    send(c.addr, &req).expect("request")
}

#[test]
fn seed_001_history_lists_a_restricted_partner_only_updates_it_may_see() {
    let server = server();
    let update = |lines: Value| -> String {
        let res = server.post("/v1/partner/inventory/updatestocks", lines);
        res.expect(200);
        id_of(&res.json(), "transaction_code")
    };
    let line = |sku: &str, w: &str, n: i64| json!({"sku": sku, "warehouse": w, "available_stock": n});
    let both = update(json!([line("SKU-p1", "w2", 7), line("SKU-p1", "w1", 5)]));
    update(json!([line("SKU-p1", "w2", 8), line("SKU-p2", "w2", 1)]));
    update(json!([line("SKU-p2", "w3", 2)]));
    let only_w1 = update(json!([line("SKU-p2", "w1", 3)]));
    update(json!([line("SKU-p1", "w2", 9)]));

    let history = "/v1/partner/inventory/history";
    let all = server.get(history).json();
    assert_eq!(all["total_record"], 5);

    let codes = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|r| id_of(r, "transaction_code"))
            .collect()
    };
    let seen = signed_get(&server, history, "n-1");
    seen.expect(200);
    let seen = seen.json();
    assert_eq!(codes(&seen), vec![both.clone(), only_w1.clone()], "{seen}");
    assert_eq!(seen["total_record"], 2, "the total counts only what it may see");
    let first = &seen["data"][0];
    assert_eq!(first["total_sku"], 1, "{first}");
    let items = first["update_stock_history_item"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{first}");
    // w1's number: the first one assigned (docs/dialects.md, "Numbers").
    let w1_number = json!(9_000_000_000_000_001u64);
    assert_eq!(items[0]["warehouse_id"], w1_number);
    assert_eq!(items[0]["qty"], 5);
    assert_eq!(items[0]["row_number"], 1, "the line's place in its update");
    let every_item_w1 = seen["data"]
        .as_array()
        .expect("data")
        .iter()
        .flat_map(|r| r["update_stock_history_item"].as_array().cloned().unwrap_or_default())
        .all(|i| i["warehouse_id"] == w1_number);
    assert!(every_item_w1, "{seen}");

    // Paging counts visible updates only.
    let page = signed_get(&server, &format!("{history}?offset=1&limit=1"), "n-2").json();
    assert_eq!(codes(&page), vec![only_w1]);
    assert_eq!(page["total_record"], 2);
    let past = signed_get(&server, &format!("{history}?offset=2&limit=1"), "n-3").json();
    assert_eq!(codes(&past), Vec::<String>::new());
    assert_eq!(past["total_record"], 2);
    // The same through a bearer token restricted to w1.
    let bearer = server.get_as(Some(W1_READ), history).json();
    assert_eq!(codes(&bearer), codes(&seen));

    // One request examines a bounded number of updates: beyond it, no answer (the route
    // refuses with 422 naming `updated_at`) rather than unbounded work or a wrong total.
    let reader = server.store().reader_blocking().expect("reader");
    let w1 = ["w1".to_string()];
    let kind = stockd::http::partner::BATCH_KIND;
    let whole = reader.batches_in(kind, 0, &w1, 0, 10, 5).expect("read");
    assert_eq!(whole.map(|(rows, total)| (rows.len(), total)), Some((2, 2)));
    assert!(reader.batches_in(kind, 0, &w1, 0, 10, 4).expect("read").is_none());
}
