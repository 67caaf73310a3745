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

/// Sleeps until the wall clock is past `expires_at` (RFC 3339, ms) by `margin_ms`.
fn sleep_past(expires_at: &Value, margin_ms: i64) {
    let text = expires_at.as_str().expect("expires_at is a string");
    let ms = stockd::clock::parse_date_param(text, stockd::clock::Bound::Start).expect("expires_at parses");
    let wait_ms = ms + margin_ms - stockd::clock::now_ms();
    if wait_ms > 0 {
        std::thread::sleep(Duration::from_millis(wait_ms as u64));
    }
}

#[test]
fn a_reservation_past_expires_at_is_expired_before_the_sweep_runs() {
    let server = Server::open();
    server.product("p");
    server.stock("p", "default", 10);
    let held = server
        .post(
            "/api/inventory/reservations",
            json!({"product_id": "p", "quantity": 4, "ttl_seconds": 1}),
        )
        .data();
    let id = held["id"].as_str().expect("id").to_string();
    // Right after expires_at: the sweep (once a second) has most likely not run yet, and
    // whether it has must not matter.
    sleep_past(&held["expires_at"], 5);
    let commit = server.post(&format!("/api/inventory/reservations/{id}/commit"), json!({}));
    commit.expect_error(409, "reservation_not_active");
    assert!(
        commit.json()["detail"].as_str().is_some_and(|d| d.contains("expired")),
        "{}",
        commit.body
    );
    server
        .delete(&format!("/api/inventory/reservations/{id}"))
        .expect_error(409, "reservation_not_active");
    let read = server.get(&format!("/api/inventory/reservations/{id}")).data();
    assert_eq!(read["status"], "expired", "{read}");
    assert_eq!(read["closed_at"], read["expires_at"], "{read}");
    assert_eq!(
        level(&server)["quantity_on_hand"],
        10,
        "the refused commit shipped nothing"
    );

    // The sweep gives the stock back and journals it, with the same closing time.
    let deadline = Instant::now() + Duration::from_secs(10);
    while level(&server)["quantity_allocated"] != 0 {
        assert!(Instant::now() < deadline, "the sweep released it");
        std::thread::sleep(Duration::from_millis(50));
    }
    let swept = server.get(&format!("/api/inventory/reservations/{id}")).data();
    assert_eq!(swept["status"], "expired");
    assert_eq!(swept["closed_at"], read["closed_at"]);
    assert!(swept["closing_movement_id"].is_string(), "{swept}");
    server.assert_verified();
}

/// Reservations that fall due together in the sweep test.
const BURST: usize = 10_000;
/// Reservations submitted to the writer at once while setting up (below its queue bound).
const BURST_CHUNK: usize = 2_000;
/// Their time to live.
const BURST_TTL_MS: i64 = 1_000;
/// Slack on top of the time the writer took to hold them all.
const DRAIN_SLACK: Duration = Duration::from_secs(5);

/// Holds `BURST` reservations of one unit of `p` through the daemon's own writer (as
/// HTTP would, minus 10k round trips: the test is about the sweep, not about setup).
fn hold_burst(server: &Server) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        for _ in 0..BURST / BURST_CHUNK {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..BURST_CHUNK {
                let store = server.store().clone();
                set.spawn(async move {
                    let cmd = stockd::ledger::Command::Reserve(stockd::ledger::ReserveCmd {
                        product: "p".into(),
                        warehouse: "default".into(),
                        quantity: 1,
                        ttl_ms: BURST_TTL_MS,
                        reference_id: None,
                    });
                    store.execute(cmd, stockd::store::WriteCtx::default()).await
                });
            }
            while let Some(done) = set.join_next().await {
                done.expect("task").expect("reserved");
            }
        }
    });
}

#[test]
fn the_sweep_keeps_up_with_ten_thousand_expiries() {
    let server = Server::open();
    server.product("p");
    server.stock("p", "default", BURST as i64);
    let started = Instant::now();
    hold_burst(&server);
    let held_in = started.elapsed();
    // A release costs the writer about what a reservation did, so once all are due the
    // rest drains in about the time holding them took (a second or two; more on a loaded
    // debug build). At one batch of 256 a second, 10k took ~40 s whatever the machine.
    let deadline = Instant::now().max(started + Duration::from_millis(BURST_TTL_MS as u64)) + held_in + DRAIN_SLACK;
    loop {
        let allocated = level(&server)["quantity_allocated"].as_i64().expect("allocated");
        if allocated == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{allocated} of {BURST} still held {:?} after the start (holding them took {held_in:?})",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(released(&server), BURST as i64);
    assert_eq!(level(&server)["quantity_available"], BURST as i64);
}

/// Releases in the journal.
fn released(server: &Server) -> i64 {
    let page = server
        .get("/api/inventory/movements?movement_type=release&limit=1")
        .json();
    page["meta"]["total"].as_i64().expect("total")
}
