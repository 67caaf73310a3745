//! Reservations (hold, commit, release, expiry) and the change feed (`/changes`, long poll).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::Server;

fn level(server: &Server) -> Value {
    server.level("p", "default")
}

#[test]
fn reserve_commit_release_and_expire() {
    let server = Server::open();
    server.product("p");
    server.stock("p", "default", 10);

    let r = server.post(
        "/api/inventory/reservations",
        json!({"product_id": "p", "warehouse_id": "default", "quantity": 4, "ttl_seconds": 600, "reference_id": "order-1"}),
    );
    r.expect(201);
    let held = r.data();
    assert_eq!(held["status"], "active");
    assert!(held["id"].as_str().is_some_and(|id| id.starts_with("res_")));
    assert!(held["expires_at"].is_string());
    let l = level(&server);
    assert_eq!(
        (
            l["quantity_on_hand"].clone(),
            l["quantity_allocated"].clone(),
            l["quantity_available"].clone()
        ),
        (json!(10), json!(4), json!(6))
    );

    // Only what is available can be held.
    server
        .post("/api/inventory/reservations", json!({"product_id": "p", "quantity": 7}))
        .expect_error(409, "insufficient_stock");
    // An out may not take held stock either.
    server
        .post(
            "/api/inventory/movements",
            json!({"product_id": "p", "movement_type": "out", "quantity": 7}),
        )
        .expect_error(409, "insufficient_stock");

    let id = held["id"].as_str().expect("id");
    let c = server.post(&format!("/api/inventory/reservations/{id}/commit"), json!({}));
    c.expect(200);
    assert_eq!(c.data()["status"], "committed");
    let l = level(&server);
    assert_eq!(
        (l["quantity_on_hand"].clone(), l["quantity_allocated"].clone()),
        (json!(6), json!(0))
    );
    server
        .post(&format!("/api/inventory/reservations/{id}/commit"), json!({}))
        .expect_error(409, "reservation_not_active");
    server
        .delete(&format!("/api/inventory/reservations/{id}"))
        .expect_error(409, "reservation_not_active");

    let r2 = server
        .post("/api/inventory/reservations", json!({"product_id": "p", "quantity": 2}))
        .data();
    let id2 = r2["id"].as_str().expect("id");
    let rel = server.delete(&format!("/api/inventory/reservations/{id2}"));
    rel.expect(200);
    assert_eq!(rel.data()["status"], "released");
    assert_eq!(level(&server)["quantity_available"], 6);

    // Expiry releases by itself, and the release is journaled.
    let r3 = server
        .post(
            "/api/inventory/reservations",
            json!({"product_id": "p", "quantity": 5, "ttl_seconds": 1}),
        )
        .data();
    let id3 = r3["id"].as_str().expect("id").to_string();
    assert_eq!(level(&server)["quantity_available"], 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = server.get(&format!("/api/inventory/reservations/{id3}")).data();
        // Expired from expires_at on; the sweep then journals the release.
        if now["status"] == "expired" && now["closing_movement_id"].is_string() {
            assert_eq!(now["closed_at"], now["expires_at"], "closed when it took effect");
            break;
        }
        assert!(Instant::now() < deadline, "the reservation expires: {now}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(level(&server)["quantity_available"], 6);
    let releases = server.get("/api/inventory/movements?movement_type=release").json();
    assert_eq!(
        releases["meta"]["total"], 2,
        "the release and the expiry are in the journal"
    );

    server
        .get("/api/inventory/reservations/res_999")
        .expect_error(404, "reservation_not_found");
    server
        .post(
            "/api/inventory/reservations",
            json!({"product_id": "p", "quantity": 1, "ttl_seconds": 0}),
        )
        .expect_error(422, "invalid_field");
    server
        .post("/api/inventory/reservations", json!({"product_id": "p", "quantity": 0}))
        .expect_error(422, "invalid_field");
    server.assert_verified();
}

#[test]
fn the_change_feed_is_gap_free_and_long_polls() {
    let server = Server::open();
    server.product("p");
    for q in 1..=5 {
        server.stock("p", "default", q);
    }
    let page = server.get("/api/inventory/changes?after=0&limit=3").json();
    let seqs: Vec<u64> = page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| m["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    assert_eq!(page["meta"]["next_after"], 3);
    assert_eq!(page["meta"]["hasMore"], true);
    let rest = server.get("/api/inventory/changes?after=3").json();
    assert_eq!(rest["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(rest["meta"]["hasMore"], false);

    // Nothing new: a long poll answers as soon as a commit arrives.
    let client = server.client.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        client.stock("p", "default", 1);
    });
    let started = Instant::now();
    let waited = server.get("/api/inventory/changes?after=5&wait=30").json();
    writer.join().expect("writer");
    assert_eq!(waited["data"][0]["seq"], 6);
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "woken by the commit, not the deadline"
    );
    // With nothing new until the deadline, an empty answer.
    let empty = server.get("/api/inventory/changes?after=6&wait=1").json();
    assert_eq!(empty["data"].as_array().map(Vec::len), Some(0));
    assert_eq!(empty["meta"]["next_after"], 6);

    server
        .get("/api/inventory/changes?wait=31")
        .expect_error(422, "invalid_field");
    server
        .get("/api/inventory/changes?limit=0")
        .expect_error(422, "invalid_field");
    server
        .get("/api/inventory/changes?after=x")
        .expect_error(422, "invalid_field");
}
