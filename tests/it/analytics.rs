//! Seed 003 analytics, `GET /api/inventory/analytics`: the document's shape, exact figures
//! for a scripted history, the warehouse filter and bad parameters; and a property test
//! that random histories give the figures a brute-force computation over the journal and
//! the levels gives, with `/admin/verify` (which recomputes the roll-ups) reporting ok.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::common::{enc, Client, Server};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// The raw text of the one scalar `"key":` value in a compact JSON body.
#[track_caller]
fn raw_value<'a>(body: &'a str, key: &str) -> &'a str {
    let needle = format!("\"{key}\":");
    let mut hits = body.match_indices(&needle);
    let (at, _) = hits.next().unwrap_or_else(|| panic!("no `{key}` in {body}"));
    assert!(hits.next().is_none(), "`{key}` twice in {body}");
    let tail = &body[at + needle.len()..];
    &tail[..tail.find([',', '}', ']']).unwrap_or(tail.len())]
}

/// Decimal text (`12.5`, `-0.333333`, `7`) in millionths.
fn micros_of(text: &str) -> i128 {
    let (neg, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    assert!(frac.len() <= 6, "more than 6 decimals: {text}");
    let int: i128 = int.parse().unwrap_or_else(|_| panic!("not a decimal: {text}"));
    let frac: i128 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}")
            .parse()
            .unwrap_or_else(|_| panic!("not a decimal: {text}"))
    };
    let v = int * 1_000_000 + frac;
    if neg {
        -v
    } else {
        v
    }
}

/// Money as stockd writes it: exact, at least two decimals, more only when not zero.
fn money_text(micros: i128) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    let mut frac = format!("{:06}", abs % 1_000_000);
    while frac.len() > 2 && frac.ends_with('0') {
        frac.pop();
    }
    format!("{sign}{}.{frac}", abs / 1_000_000)
}

#[track_caller]
fn analytics(c: &Client, query: &str) -> (Value, String) {
    let res = c.get(&format!("/api/inventory/analytics{query}"));
    res.expect(200);
    let data = res.data();
    // The seed-003 shape.
    for k in ["overview", "trends", "top_movers", "low_stock_alerts"] {
        assert!(data.get(k).is_some(), "no `{k}`: {}", res.body);
    }
    let overview: BTreeSet<&str> = data["overview"]
        .as_object()
        .expect("overview")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        overview,
        BTreeSet::from([
            "total_products",
            "total_stock_value",
            "low_stock_items",
            "out_of_stock_items"
        ]),
        "{}",
        res.body
    );
    for k in ["total_products", "low_stock_items", "out_of_stock_items"] {
        assert!(data["overview"][k].is_u64(), "{k}: {}", res.body);
    }
    assert!(data["overview"]["total_stock_value"].is_number(), "{}", res.body);
    for k in ["stock_in", "stock_out", "adjustments"] {
        assert!(data["trends"][k].is_i64(), "{k}: {}", res.body);
    }
    for m in data["top_movers"].as_array().expect("top_movers") {
        assert!(m["product_id"].is_string() && m["product_name"].is_string(), "{m}");
        assert!(m["movement_count"].is_u64() && m["total_quantity"].is_i64(), "{m}");
    }
    for a in data["low_stock_alerts"].as_array().expect("low_stock_alerts") {
        assert!(a["product_id"].is_string() && a["product_name"].is_string(), "{a}");
        assert!(a["current_stock"].is_i64() && a["reorder_point"].is_i64(), "{a}");
        assert!(a["warehouse"].is_string(), "{a}");
    }
    (data, res.body)
}

/// `top_movers` as (product_id, movement_count, total_quantity), in answer order.
fn movers(data: &Value) -> Vec<(String, u64, i64)> {
    data["top_movers"]
        .as_array()
        .expect("top_movers")
        .iter()
        .map(|m| {
            (
                m["product_id"].as_str().unwrap_or("").to_string(),
                m["movement_count"].as_u64().unwrap_or(u64::MAX),
                m["total_quantity"].as_i64().unwrap_or(i64::MIN),
            )
        })
        .collect()
}

/// `low_stock_alerts` as (warehouse name, product_id, current_stock, reorder_point), sorted.
fn alerts(data: &Value) -> Vec<(String, String, i64, i64)> {
    let mut out: Vec<_> = data["low_stock_alerts"]
        .as_array()
        .expect("low_stock_alerts")
        .iter()
        .map(|a| {
            (
                a["warehouse"].as_str().unwrap_or("").to_string(),
                a["product_id"].as_str().unwrap_or("").to_string(),
                a["current_stock"].as_i64().unwrap_or(i64::MIN),
                a["reorder_point"].as_i64().unwrap_or(i64::MIN),
            )
        })
        .collect();
    out.sort();
    out
}

fn trends(data: &Value) -> (i64, i64, i64) {
    let t = &data["trends"];
    (
        t["stock_in"].as_i64().unwrap_or(i64::MIN),
        t["stock_out"].as_i64().unwrap_or(i64::MIN),
        t["adjustments"].as_i64().unwrap_or(i64::MIN),
    )
}

fn overview(data: &Value) -> (u64, u64, u64) {
    let o = &data["overview"];
    (
        o["total_products"].as_u64().unwrap_or(u64::MAX),
        o["low_stock_items"].as_u64().unwrap_or(u64::MAX),
        o["out_of_stock_items"].as_u64().unwrap_or(u64::MAX),
    )
}

// ---------------------------------------------------------------------------------------
// A scripted history with known figures
// ---------------------------------------------------------------------------------------

#[test]
fn analytics_scripted_history_exact_figures() {
    let server = Server::open();
    server
        .put("/api/warehouses/w1", json!({"name": "Main Warehouse"}))
        .expect(201);
    server.put("/api/warehouses/w2", json!({"name": "Outlet"})).expect(201);
    let product = |id: &str, name: &str, cost: Option<&str>| {
        let body = match cost {
            Some(c) => format!(r#"{{"sku": "SKU-{id}", "name": "{name}", "unit_cost": {c}}}"#),
            None => format!(r#"{{"sku": "SKU-{id}", "name": "{name}"}}"#),
        };
        let res = server.raw(server.request("PUT", &format!("/api/products/{id}")).body(body));
        assert!(matches!(res.status, 200 | 201), "{}", res.body);
    };
    product("prod_123", "Smart Widget", Some("12.50"));
    product("prod_456", "Basic Widget", Some("3.333333"));
    product("prod_789", "Gadget", None);
    product("prod_000", "Never stocked", Some("99"));

    // Nothing moved yet.
    let (d, body) = analytics(&server, "");
    assert_eq!(overview(&d), (4, 0, 0));
    assert_eq!(raw_value(&body, "total_stock_value"), "0.00");
    assert_eq!(trends(&d), (0, 0, 0));
    assert_eq!(d["top_movers"], json!([]));
    assert_eq!(d["low_stock_alerts"], json!([]));

    server.movement("prod_123", "w1", "in", 100); // m1
    server.movement("prod_123", "w1", "out", 30); // m2
    server.movement("prod_456", "w1", "in", 20); // m3
    server.movement("prod_456", "w1", "adjustment", -5); // m4
    server
        .post(
            "/api/inventory/movements",
            json!({"product_id": "prod_123", "warehouse_id": "w1", "movement_type": "transfer",
                   "quantity": 10, "to_warehouse_id": "w2"}),
        )
        .expect(201); // m5 out of w1, m6 into w2
    server.movement("prod_789", "w2", "in", 4); // m7
    server.movement("prod_789", "w2", "out", 4); // m8: out of stock
    server
        .post(
            "/api/inventory/adjustments",
            json!({"adjustments": [
                {"product_id": "prod_456", "warehouse_id": "w1", "actual_quantity": 12, "reason": "count"},
                {"product_id": "prod_123", "warehouse_id": "w2", "actual_quantity": 10, "reason": "count"}
            ]}),
        )
        .expect(201); // m9: −3 (an adjustment), m10: ±0 (changes no on_hand: counted nowhere)
    server
        .patch("/api/inventory/levels/prod_456/w1", json!({"reorder_point": 15}))
        .expect(200); // 12 ≤ 15: low
    server
        .patch("/api/inventory/levels/prod_123/w2", json!({"reorder_point": 5}))
        .expect(200); // 10 > 5: not low
    server
        .patch("/api/inventory/levels/prod_789/w2", json!({"reorder_point": 0}))
        .expect(200); // 0 ≤ 0: low
    assert_eq!(server.journal_len(), 10, "reorder points are not movements");
    server.assert_verified();

    // All warehouses. Levels: 123@w1 60, 123@w2 10, 456@w1 12, 789@w2 0.
    for period in ["", "?period=7d", "?period=30d", "?period=90d", "?period=1y"] {
        let (d, body) = analytics(&server, period);
        // 60 × 12.50 + 10 × 12.50 + 12 × 3.333333 + 0 × (no cost) = 914.999996
        assert_eq!(raw_value(&body, "total_stock_value"), "914.999996", "{period}");
        assert_eq!(
            overview(&d),
            (4, 2, 1),
            "{period}: products in the catalog, 2 low, 1 out: {body}"
        );
        // in: 100 + 20 + 4; out: 30 + 4. Shop-wide, a transfer between its own warehouses
        // is neither stock in nor stock out (issue 12).
        assert_eq!(trends(&d), (124, 34, 2), "{period}: {body}");
        assert_eq!(d["trends"]["movements"], 9, "{period}");
        assert_eq!(
            movers(&d),
            vec![
                ("prod_123".to_string(), 4, 150),
                ("prod_456".to_string(), 3, 28),
                ("prod_789".to_string(), 2, 8),
            ],
            "{period}: {body}"
        );
        let names: Vec<&str> = d["top_movers"]
            .as_array()
            .map(|a| a.iter().map(|m| m["product_name"].as_str().unwrap_or("")).collect())
            .unwrap_or_default();
        assert_eq!(names, vec!["Smart Widget", "Basic Widget", "Gadget"]);
        assert_eq!(
            alerts(&d),
            vec![
                ("Main Warehouse".to_string(), "prod_456".to_string(), 12, 15),
                ("Outlet".to_string(), "prod_789".to_string(), 0, 0),
            ],
            "{period}: {body}"
        );
        let basic = d["low_stock_alerts"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["product_id"] == "prod_456").cloned())
            .unwrap_or(Value::Null);
        assert_eq!(basic["product_name"], "Basic Widget");
    }

    // One warehouse: only its levels and its movements.
    let (d, body) = analytics(&server, "?period=30d&warehouse_id=w1");
    assert_eq!(raw_value(&body, "total_stock_value"), "789.999996");
    assert_eq!(overview(&d), (2, 1, 0), "products with a level in w1: {body}");
    assert_eq!(trends(&d), (120, 40, 2), "{body}");
    assert_eq!(d["trends"]["movements"], 6);
    // A tie on 3 movements: the most units moved first.
    assert_eq!(
        movers(&d),
        vec![("prod_123".to_string(), 3, 140), ("prod_456".to_string(), 3, 28)],
        "{body}"
    );
    assert_eq!(
        alerts(&d),
        vec![("Main Warehouse".to_string(), "prod_456".to_string(), 12, 15)]
    );
    let (d, body) = analytics(&server, "?warehouse_id=w2");
    assert_eq!(raw_value(&body, "total_stock_value"), "125.00");
    assert_eq!(overview(&d), (2, 1, 1), "{body}");
    assert_eq!(trends(&d), (14, 4, 0), "{body}");
    // The ±0 count of prod_123 at w2 moved nothing: one movement (the transfer arrival).
    assert_eq!(
        movers(&d),
        vec![("prod_789".to_string(), 2, 8), ("prod_123".to_string(), 1, 10)],
        "{body}"
    );
    assert_eq!(alerts(&d), vec![("Outlet".to_string(), "prod_789".to_string(), 0, 0)]);
    let (d, body) = analytics(&server, "?warehouse_id=default");
    assert_eq!(raw_value(&body, "total_stock_value"), "0.00");
    assert_eq!(overview(&d), (0, 0, 0), "{body}");
    assert_eq!(trends(&d), (0, 0, 0));
    assert_eq!(d["top_movers"], json!([]));

    // Low stock follows the reorder point and the stock: 60 ≤ 60 is low, 61 is not.
    server
        .patch("/api/inventory/levels/prod_123/w1", json!({"reorder_point": 60}))
        .expect(200);
    assert_eq!(overview(&analytics(&server, "").0), (4, 3, 1));
    server.movement("prod_123", "w1", "in", 1);
    let (d, _) = analytics(&server, "");
    assert_eq!(overview(&d), (4, 2, 1));
    assert_eq!(movers(&d)[0], ("prod_123".to_string(), 5, 151));

    // A new unit cost revalues the stock already there: 61 × 20 + 10 × 20 + 39.999996.
    product("prod_123", "Smart Widget", Some("20"));
    let (_, body) = analytics(&server, "");
    assert_eq!(raw_value(&body, "total_stock_value"), "1459.999996");
    let (_, body) = analytics(&server, "?warehouse_id=w2");
    assert_eq!(raw_value(&body, "total_stock_value"), "200.00");
    // …and dropping the unit cost values it at 0.
    product("prod_456", "Basic Widget", None);
    let (_, body) = analytics(&server, "?warehouse_id=w1");
    assert_eq!(raw_value(&body, "total_stock_value"), "1220.00");
    server.assert_verified();

    // Bad parameters.
    // An empty parameter is an absent one (issue 12): the default period.
    analytics(&server, "?period=");
    for q in ["period=2w", "period=7D", "period=30"] {
        let res = server.get(&format!("/api/inventory/analytics?{q}"));
        res.expect_error(422, "invalid_field");
        assert!(
            res.json()["detail"].as_str().unwrap_or("").contains("period"),
            "{}",
            res.body
        );
    }
    server
        .get("/api/inventory/analytics?warehouse_id=nowhere")
        .expect_error(404, "warehouse_not_found");
}

// ---------------------------------------------------------------------------------------
// Property: analytics = brute force over the journal and the levels
// ---------------------------------------------------------------------------------------

const PRODUCTS: [&str; 3] = ["a", "b", "c"];
const WAREHOUSES: [&str; 2] = ["w1", "w2"];

#[derive(Debug, Clone)]
enum Op {
    In {
        p: usize,
        w: usize,
        q: i64,
    },
    Out {
        p: usize,
        w: usize,
        q: i64,
    },
    Adjust {
        p: usize,
        w: usize,
        d: i64,
    },
    Transfer {
        p: usize,
        from: usize,
        q: i64,
        in_transit: bool,
    },
    Receive {
        nth: usize,
    },
    Count {
        lines: Vec<(usize, usize, i64)>,
    },
    Reorder {
        p: usize,
        w: usize,
        rp: i64,
    },
    Buffer {
        p: usize,
        w: usize,
        b: i64,
    },
    Cost {
        p: usize,
        micros: Option<i64>,
    },
    /// A hold (reserve, then release when `release`): journaled, changes no on_hand.
    Hold {
        p: usize,
        w: usize,
        q: i64,
        release: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let p = 0..PRODUCTS.len();
    let w = 0..WAREHOUSES.len();
    prop_oneof![
        4 => (p.clone(), w.clone(), 1..40i64).prop_map(|(p, w, q)| Op::In { p, w, q }),
        3 => (p.clone(), w.clone(), 1..30i64).prop_map(|(p, w, q)| Op::Out { p, w, q }),
        2 => (p.clone(), w.clone(), prop_oneof![-15..0i64, 1..15i64]).prop_map(|(p, w, d)| Op::Adjust { p, w, d }),
        2 => (p.clone(), w.clone(), 1..20i64, any::<bool>())
            .prop_map(|(p, from, q, in_transit)| Op::Transfer { p, from, q, in_transit }),
        1 => (0..4usize).prop_map(|nth| Op::Receive { nth }),
        1 => proptest::collection::vec((p.clone(), w.clone(), 0..50i64), 1..4).prop_map(|lines| Op::Count { lines }),
        2 => (p.clone(), w.clone(), 0..30i64).prop_map(|(p, w, rp)| Op::Reorder { p, w, rp }),
        1 => (p.clone(), w.clone(), 0..8i64).prop_map(|(p, w, b)| Op::Buffer { p, w, b }),
        1 => (p.clone(), proptest::option::of(0..20_000_000i64)).prop_map(|(p, micros)| Op::Cost { p, micros }),
        2 => (p, w, 1..10i64, any::<bool>()).prop_map(|(p, w, q, release)| Op::Hold { p, w, q, release }),
    ]
}

fn put_cost(c: &Client, p: &str, micros: Option<i64>) {
    let cost = micros
        .map(|m| format!(r#", "unit_cost": {}"#, money_text(i128::from(m))))
        .unwrap_or_default();
    let body = format!(r#"{{"sku": "SKU-{p}", "name": "Product {p}"{cost}}}"#);
    let res = c.raw(c.request("PUT", &format!("/api/products/{p}")).body(body));
    assert!(matches!(res.status, 200 | 201), "{}", res.body);
}

/// Runs one op; refusals for lack of stock (409) are part of a random history.
/// `pending` holds the in-transit transfers not yet received (shared between threads).
fn run(c: &Client, op: &Op, pending: &Mutex<Vec<String>>) {
    let res = match op {
        Op::In { p, w, q } | Op::Out { p, w, q } => {
            let kind = if matches!(op, Op::In { .. }) { "in" } else { "out" };
            c.post(
                "/api/inventory/movements",
                json!({"product_id": PRODUCTS[*p], "warehouse_id": WAREHOUSES[*w], "movement_type": kind, "quantity": q}),
            )
        }
        Op::Adjust { p, w, d } => c.post(
            "/api/inventory/movements",
            json!({"product_id": PRODUCTS[*p], "warehouse_id": WAREHOUSES[*w], "movement_type": "adjustment", "quantity": d}),
        ),
        Op::Transfer { p, from, q, in_transit } => {
            let res = c.post(
                "/api/inventory/movements",
                json!({"product_id": PRODUCTS[*p], "warehouse_id": WAREHOUSES[*from], "movement_type": "transfer",
                       "quantity": q, "to_warehouse_id": WAREHOUSES[1 - *from], "in_transit": in_transit}),
            );
            if res.status == 201 && res.data()["status"] == "in_transit" {
                let id = res.data()["transfer_id"].as_str().expect("transfer_id").to_string();
                pending.lock().expect("pending").push(id);
            }
            res
        }
        Op::Receive { nth } => {
            let id = {
                let mut pending = pending.lock().expect("pending");
                if pending.is_empty() {
                    return;
                }
                let at = nth % pending.len();
                pending.remove(at)
            };
            let res = c.post(&format!("/api/inventory/transfers/{}/receive", enc(&id)), json!({}));
            res.expect(200);
            res
        }
        Op::Count { lines } => {
            let mut seen = BTreeSet::new();
            let items: Vec<Value> = lines
                .iter()
                .filter(|(p, w, _)| seen.insert((*p, *w)))
                .map(|(p, w, n)| {
                    json!({"product_id": PRODUCTS[*p], "warehouse_id": WAREHOUSES[*w], "actual_quantity": n, "reason": "count"})
                })
                .collect();
            c.post("/api/inventory/adjustments", json!({"adjustments": items}))
        }
        Op::Reorder { p, w, rp } => c.patch(
            &format!("/api/inventory/levels/{}/{}", PRODUCTS[*p], WAREHOUSES[*w]),
            json!({"reorder_point": rp}),
        ),
        Op::Buffer { p, w, b } => c.patch(
            &format!("/api/inventory/levels/{}/{}", PRODUCTS[*p], WAREHOUSES[*w]),
            json!({"buffer": b}),
        ),
        Op::Cost { p, micros } => {
            put_cost(c, PRODUCTS[*p], *micros);
            return;
        }
        Op::Hold { p, w, q, release } => {
            let res = c.post(
                "/api/inventory/reservations",
                json!({"product_id": PRODUCTS[*p], "warehouse_id": WAREHOUSES[*w], "quantity": q, "ttl_seconds": 3600}),
            );
            if res.status == 201 && *release {
                let id = res.data()["id"].as_str().expect("reservation id").to_string();
                c.delete(&format!("/api/inventory/reservations/{}", enc(&id))).expect(200);
            }
            res
        }
    };
    assert!(
        matches!(res.status, 200 | 201 | 409),
        "{op:?}: {} {}",
        res.status,
        res.body
    );
}

/// Every row of a native list, page by page.
fn all_rows(c: &Client, path: &str) -> Vec<Value> {
    let mut rows = Vec::new();
    for page in 1..1000 {
        let sep = if path.contains('?') { '&' } else { '?' };
        let res = c.get(&format!("{path}{sep}limit=500&page={page}"));
        res.expect(200);
        let v = res.json();
        rows.extend(v["data"].as_array().expect("data").iter().cloned());
        if v["meta"]["hasMore"] != true {
            return rows;
        }
    }
    panic!("{path}: too many pages");
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Expected {
    total_products: u64,
    value_micros: i128,
    low: u64,
    out: u64,
    stock_in: i64,
    stock_out: i64,
    adjustments: i64,
    movements: u64,
    movers: Vec<(String, u64, i64)>,
    alerts: Vec<(String, String, i64, i64)>,
}

/// The figures of one scope, from the journal (every entry, all pages: the movement list
/// and the kinds it lists only when asked) and the levels. Only entries that change
/// on_hand count; shop-wide, a transfer between the shop's warehouses (its departure, its
/// arrival, its receipt) is neither stock in nor stock out.
fn brute_force(c: &Client, scope: Option<&str>) -> Expected {
    let in_scope = |w: &str| scope.is_none_or(|s| s == w);
    let mut e = Expected::default();
    let mut per_product: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    let mut journal = all_rows(c, "/api/inventory/movements");
    for kind in ["reserve", "release", "buffer"] {
        journal.extend(all_rows(c, &format!("/api/inventory/movements?kind={kind}")));
    }
    // Every movement here was made moments ago: all are inside every period.
    for m in journal {
        if !in_scope(m["warehouse_id"].as_str().unwrap_or("")) {
            continue;
        }
        let d =
            m["balance_after"].as_i64().expect("balance_after") - m["balance_before"].as_i64().expect("balance_before");
        if d == 0 {
            continue;
        }
        let transfer = matches!(m["kind"].as_str(), Some("receive" | "transfer_in" | "transfer_out"));
        match m["kind"].as_str().expect("kind") {
            _ if transfer && scope.is_none() => {}
            "in" | "receive" | "transfer_in" => e.stock_in += d.max(0),
            "out" | "transfer_out" | "commit" | "write_off" => e.stock_out += (-d).max(0),
            "adjustment" | "count" => e.adjustments += 1,
            _ => {}
        }
        e.movements += 1;
        let entry = per_product
            .entry(m["product_id"].as_str().unwrap_or("").to_string())
            .or_default();
        entry.0 += 1;
        entry.1 += d.abs();
    }
    let mut movers: Vec<(String, u64, i64)> = per_product.into_iter().map(|(p, (n, q))| (p, n, q)).collect();
    movers.sort_by(|x, y| (y.1, y.2).cmp(&(x.1, x.2)).then_with(|| x.0.cmp(&y.0)));
    movers.truncate(10);
    e.movers = movers;

    let products = all_rows(c, "/api/products");
    let mut cost: BTreeMap<String, i128> = BTreeMap::new();
    for p in &products {
        let id = p["id"].as_str().expect("id").to_string();
        let res = c.get(&format!("/api/products/{}", enc(&id)));
        let micros = match raw_value(&res.body, "unit_cost") {
            "null" => 0,
            text => micros_of(text),
        };
        cost.insert(id, micros);
    }
    let warehouses: BTreeMap<String, String> = all_rows(c, "/api/warehouses")
        .iter()
        .map(|w| {
            (
                w["id"].as_str().unwrap_or("").to_string(),
                w["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let mut levels_in_scope = 0u64;
    for l in all_rows(c, "/api/inventory") {
        let w = l["warehouse"]["id"].as_str().expect("warehouse.id");
        if !in_scope(w) {
            continue;
        }
        levels_in_scope += 1;
        let p = l["product"]["id"].as_str().expect("product.id");
        let on_hand = l["quantity_on_hand"].as_i64().expect("on_hand");
        let available = l["quantity_available"].as_i64().expect("available");
        e.value_micros += i128::from(on_hand) * cost.get(p).copied().unwrap_or(0);
        if available <= 0 {
            e.out += 1;
        }
        if let Some(rp) = l["reorder_point"].as_i64() {
            if available <= rp {
                e.low += 1;
                e.alerts.push((warehouses[w].clone(), p.to_string(), available, rp));
            }
        }
    }
    e.alerts.sort();
    e.total_products = match scope {
        None => products.len() as u64,
        Some(_) => levels_in_scope,
    };
    e
}

fn observed(c: &Client, query: &str) -> Expected {
    let (d, body) = analytics(c, query);
    let (total_products, low, out) = overview(&d);
    let (stock_in, stock_out, adjustments) = trends(&d);
    let value = raw_value(&body, "total_stock_value");
    assert_eq!(value, money_text(micros_of(value)), "exact money text: {body}");
    Expected {
        total_products,
        value_micros: micros_of(value),
        low,
        out,
        stock_in,
        stock_out,
        adjustments,
        movements: d["trends"]["movements"].as_u64().unwrap_or(u64::MAX),
        movers: movers(&d),
        alerts: alerts(&d),
    }
}

/// Runs `ops` (one after another, or dealt round-robin to `threads` concurrent clients so
/// that the writer commits several of them in one group), then compares the analytics of
/// every scope with the brute force and asks `/admin/verify`.
fn check_history(ops: &[Op], costs: &[Option<i64>; 3], threads: usize) {
    let server = Server::open();
    for w in WAREHOUSES {
        server.warehouse(w);
    }
    for (p, micros) in PRODUCTS.iter().zip(costs) {
        put_cost(&server, p, *micros);
    }
    let pending = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..threads {
            let client = server.client();
            let pending = &pending;
            s.spawn(move || {
                for op in ops.iter().skip(t).step_by(threads) {
                    run(&client, op, pending);
                }
            });
        }
    });
    let scopes = [
        (None, "?period=30d"),
        (Some("w1"), "?period=7d&warehouse_id=w1"),
        (Some("w2"), "?period=1y&warehouse_id=w2"),
        (Some("default"), "?period=90d&warehouse_id=default"),
    ];
    for (scope, query) in scopes {
        let want = brute_force(&server, scope);
        let got = observed(&server, query);
        assert_eq!(got, want, "{query} after {ops:#?}");
    }
    let report = server.get("/admin/verify");
    report.expect(200);
    assert_eq!(report.data()["ok"], true, "verify after {ops:#?}: {}", report.body);
}

proptest! {
    // One fresh daemon per case: keep the count small (the module runs in seconds).
    #![proptest_config(ProptestConfig {
        cases: 30,
        failure_persistence: None,
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    })]

    #[test]
    fn analytics_equal_brute_force_over_journal_and_levels(
        ops in proptest::collection::vec(op(), 5..=40),
        costs in proptest::array::uniform3(proptest::option::of(0..5_000_000i64)),
        threads in prop_oneof![2 => Just(1usize), 1 => Just(3usize)],
    ) {
        check_history(&ops, &costs, threads);
    }
}

#[test]
fn analytics_lists_are_capped_and_ordered() {
    let server = Server::open();
    for w in ["w1", "w2", "w3", "w4", "w5"] {
        server.warehouse(w);
    }
    // 12 products; product i moves i + 1 times at w1: the top 10 are the busiest.
    let ids: Vec<String> = (0..12).map(|i| format!("p{i:02}")).collect();
    for (i, id) in ids.iter().enumerate() {
        server.product(id);
        for _ in 0..=i {
            server.stock(id, "w1", 2);
        }
    }
    let (d, _) = analytics(&server, "");
    let want: Vec<(String, u64, i64)> = (2..12)
        .rev()
        .map(|i| (ids[i].clone(), i as u64 + 1, 2 * (i as i64 + 1)))
        .collect();
    assert_eq!(movers(&d), want);

    // 52 levels at or below their reorder point: all counted, at most 50 listed.
    let mut low = 0;
    'outer: for w in ["w2", "w3", "w4", "w5", "w1"] {
        for id in &ids {
            server
                .patch(
                    &format!("/api/inventory/levels/{id}/{w}"),
                    json!({"reorder_point": 100}),
                )
                .expect(200);
            low += 1;
            if low == 52 {
                break 'outer;
            }
        }
    }
    let (d, body) = analytics(&server, "");
    assert_eq!(d["overview"]["low_stock_items"], 52, "{body}");
    assert_eq!(d["low_stock_alerts"].as_array().map(Vec::len), Some(50), "{body}");
    // A warehouse's own alerts are all there.
    let (d, body) = analytics(&server, "?warehouse_id=w1");
    assert_eq!(d["overview"]["low_stock_items"], 4, "{body}");
    let listed: Vec<&str> = d["low_stock_alerts"]
        .as_array()
        .map(|a| a.iter().map(|x| x["product_id"].as_str().unwrap_or("")).collect())
        .unwrap_or_default();
    assert_eq!(listed, vec!["p00", "p01", "p02", "p03"]);
    server.assert_verified();
}

#[test]
fn analytics_count_the_dialects_movements() {
    // One ledger: movements made through seeds 000 and 002 are in the figures too.
    let server = Server::open();
    server.product("p1");
    server.product("p2");
    let post = |path: &str, body: Value| server.post(path, body).expect(201).json();
    post(
        "/v2/products/inventory/movment",
        json!({"product_id": "p1", "operation": "IN", "quantity": 10}),
    );
    post(
        "/v2/products/inventory/movement",
        json!({"product_id": "p1", "operation": "OUT", "quantity": 3}),
    );
    post(
        "/com/inventories/adjustorset.json",
        json!({"inventory": {"line_items": [{"product_id": "p1", "quantity": 2}]}}),
    );
    post(
        "/com/inventories/adjustorset.json",
        json!({"inventory": {"type": "set", "line_items": [{"product_id": "p2", "quantity": 5}, {"product_id": "p1", "quantity": 9}]}}),
    );
    let (d, _) = analytics(&server, "?warehouse_id=default");
    // in 10, out 3; adjustments: +2, set p2 0→5, set p1 9→9 (no change: counted nowhere,
    // not even as a movement — only entries that change on_hand count, issue 12)
    assert_eq!(trends(&d), (10, 3, 2));
    assert_eq!(d["trends"]["movements"], 4);
    assert_eq!(movers(&d), vec![("p1".to_string(), 3, 15), ("p2".to_string(), 1, 5)]);
    assert_eq!(overview(&d), (2, 0, 0));
    server.assert_verified();
}
