//! Many clients at once: no oversell, no lost update, the journal folds to the levels.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex};

use serde_json::json;

use crate::common::Server;

/// 64 threads racing `out 1` against on_hand 100: exactly 100 win, one per unit.
#[test]
fn concurrent_outs_never_oversell() {
    const THREADS: usize = 64;
    const ATTEMPTS_PER_THREAD: usize = 3; // 192 attempts for 100 units
    let server = Server::open();
    server.product("p1");
    server.stock("p1", "default", 100);
    let client = server.client();
    let barrier = Barrier::new(THREADS + 2); // writers, the reader and this thread
    let done = AtomicBool::new(false);
    let wins = Mutex::new(Vec::new());
    let refusals = Mutex::new(0usize);
    let observed_min = Mutex::new(i64::MAX);

    std::thread::scope(|s| {
        // A reader polling on_hand while the race runs: it never sees a negative level.
        s.spawn(|| {
            barrier.wait();
            while !done.load(Ordering::Acquire) {
                let q = client.on_hand("p1", "default");
                let mut min = observed_min.lock().expect("lock");
                *min = (*min).min(q);
            }
        });
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    for _ in 0..ATTEMPTS_PER_THREAD {
                        let res = client.post(
                            "/api/inventory/movements",
                            json!({"product_id": "p1", "movement_type": "out", "quantity": 1}),
                        );
                        match res.status {
                            201 => {
                                let d = res.data();
                                let after = d["balance_after"].as_i64().expect("balance_after");
                                let id = d["id"].as_str().expect("id").to_string();
                                wins.lock().expect("lock").push((id, after));
                            }
                            409 => {
                                res.expect_error(409, "insufficient_stock");
                                *refusals.lock().expect("lock") += 1;
                            }
                            other => panic!("out answered {other}: {}", res.body),
                        }
                    }
                })
            })
            .collect();
        barrier.wait();
        for w in workers {
            w.join().expect("worker thread");
        }
        done.store(true, Ordering::Release);
    });

    let wins = wins.into_inner().expect("lock");
    let refusals = refusals.into_inner().expect("lock");
    let attempts = THREADS * ATTEMPTS_PER_THREAD;
    assert_eq!(wins.len(), 100, "exactly the stock is sold");
    assert_eq!(refusals, attempts - 100);
    // Each win took exactly one unit: the balances after are 99, 98, ..., 0, each once.
    let balances: BTreeSet<i64> = wins.iter().map(|(_, b)| *b).collect();
    assert_eq!(balances, (0..100).collect::<BTreeSet<i64>>());
    let ids: BTreeSet<&str> = wins.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), 100, "movement ids are unique");
    assert!(observed_min.into_inner().expect("lock") >= 0, "on_hand went negative");
    assert_eq!(server.on_hand("p1", "default"), 0);
    assert_eq!(server.journal_len(), 101);
    server.assert_verified();
}

/// 32 threads × 20 mixed in/out movements on a few products: the final levels are the
/// sum of what was acknowledged, and the journal folds to them.
#[test]
fn mixed_concurrent_movements_add_up() {
    const THREADS: u64 = 32;
    const MOVES_PER_THREAD: u64 = 20;
    const PRODUCTS: [&str; 3] = ["p1", "p2", "p3"];
    let server = Server::open();
    server.warehouse("w1");
    for p in PRODUCTS {
        server.product(p);
        server.stock(p, "w1", 20);
    }
    let client = server.client();
    let barrier = Barrier::new(THREADS as usize);
    let acked: Mutex<BTreeMap<&str, i64>> = Mutex::new(PRODUCTS.iter().map(|p| (*p, 20)).collect());
    let acked_count = Mutex::new(0u64);

    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (client, barrier, acked, acked_count) = (&client, &barrier, &acked, &acked_count);
            s.spawn(move || {
                // A small deterministic generator per thread (no rand dependency).
                let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
                let mut next = move || {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x
                };
                barrier.wait();
                for _ in 0..MOVES_PER_THREAD {
                    let r = next();
                    let product = PRODUCTS[(r % 3) as usize];
                    let kind = if (r >> 8) % 2 == 0 { "in" } else { "out" };
                    let q = ((r >> 16) % 5 + 1) as i64;
                    let res = client.post(
                        "/api/inventory/movements",
                        json!({"product_id": product, "warehouse_id": "w1", "movement_type": kind, "quantity": q}),
                    );
                    match res.status {
                        201 => {
                            let d = res.data();
                            assert_eq!(d["quantity"], q);
                            let (before, after) = (d["balance_before"].as_i64(), d["balance_after"].as_i64());
                            let delta = if kind == "in" { q } else { -q };
                            assert_eq!(after.zip(before).map(|(a, b)| a - b), Some(delta), "{}", res.body);
                            assert!(after.is_some_and(|a| a >= 0), "{}", res.body);
                            *acked.lock().expect("lock").entry(product).or_default() += delta;
                            *acked_count.lock().expect("lock") += 1;
                        }
                        409 if kind == "out" => {
                            res.expect_error(409, "insufficient_stock");
                        }
                        other => panic!("{kind} {q} of {product} answered {other}: {}", res.body),
                    }
                }
            });
        }
    });

    let acked = acked.into_inner().expect("lock");
    for p in PRODUCTS {
        assert_eq!(
            server.on_hand(p, "w1"),
            acked[p],
            "{p}: on_hand is not the sum of acknowledged movements"
        );
    }
    let acked_count = acked_count.into_inner().expect("lock");
    assert_eq!(server.journal_len(), PRODUCTS.len() as u64 + acked_count);
    let report = server.assert_verified();
    assert_eq!(report["movements"].as_u64(), Some(PRODUCTS.len() as u64 + acked_count));
}

/// Racing writers that conflict on catalog rows: in one group commit each command sees
/// the ones before it, so exactly one product gets the sku and one PUT creates the warehouse.
#[test]
fn concurrent_catalog_writes_conflict_cleanly() {
    const THREADS: usize = 24;
    let server = Server::open();
    let client = server.client();
    let barrier = Barrier::new(THREADS);
    let results: Mutex<Vec<(String, u16, u16)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for i in 0..THREADS {
            let (client, barrier, results) = (&client, &barrier, &results);
            s.spawn(move || {
                barrier.wait();
                let sku = client.put(
                    &format!("/api/products/c{i}"),
                    json!({"sku": "THE-ONE", "name": format!("contender {i}")}),
                );
                if sku.status == 409 {
                    sku.expect_error(409, "sku_taken");
                }
                let wh = client.put("/api/warehouses/shared", json!({"name": format!("by {i}")}));
                results
                    .lock()
                    .expect("lock")
                    .push((format!("c{i}"), sku.status, wh.status));
            });
        }
    });
    let results = results.into_inner().expect("lock");
    let winners: Vec<&str> = results.iter().filter(|r| r.1 == 201).map(|r| r.0.as_str()).collect();
    assert_eq!(winners.len(), 1, "exactly one product gets the sku: {results:?}");
    assert!(results.iter().all(|r| matches!(r.1, 201 | 409)), "{results:?}");
    assert_eq!(
        results.iter().filter(|r| r.2 == 201).count(),
        1,
        "one PUT creates: {results:?}"
    );
    assert!(results.iter().all(|r| matches!(r.2, 200 | 201)), "{results:?}");
    let found = server.get("/api/products?sku=THE-ONE").data();
    assert_eq!(found.as_array().map(Vec::len), Some(1));
    assert_eq!(found[0]["id"], winners[0]);
    assert_eq!(server.get("/api/products").json()["meta"]["total"], 1);
}

/// Transfers racing both ways between two warehouses while an auditor runs /admin/verify:
/// stock is conserved, never negative, and every snapshot verifies.
#[test]
fn concurrent_transfers_conserve_stock() {
    const THREADS: u64 = 16;
    const MOVES_PER_THREAD: u64 = 15;
    let server = Server::open();
    server.product("p1");
    server.warehouse("a");
    server.warehouse("b");
    server.stock("p1", "a", 30);
    server.stock("p1", "b", 30);
    let client = server.client();
    let done = AtomicBool::new(false);
    let audits = Mutex::new(0u32);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Acquire) {
                client.assert_verified();
                *audits.lock().expect("lock") += 1;
            }
        });
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let client = &client;
                s.spawn(move || {
                    for i in 0..MOVES_PER_THREAD {
                        let (from, to) = if (t + i) % 2 == 0 { ("a", "b") } else { ("b", "a") };
                        let q = ((t * 7 + i * 3) % 9 + 1) as i64;
                        let res = client.post(
                            "/api/inventory/movements",
                            json!({"product_id": "p1", "warehouse_id": from, "movement_type": "transfer",
                                   "quantity": q, "to_warehouse_id": to}),
                        );
                        match res.status {
                            201 => {
                                let legs = res.data()["legs"].clone();
                                assert!(
                                    legs[0]["balance_after"].as_i64().is_some_and(|b| b >= 0),
                                    "{}",
                                    res.body
                                );
                            }
                            409 => {
                                res.expect_error(409, "insufficient_stock");
                            }
                            other => panic!("transfer answered {other}: {}", res.body),
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("worker thread");
        }
        done.store(true, Ordering::Release);
    });
    let (a, b) = (server.on_hand("p1", "a"), server.on_hand("p1", "b"));
    assert!(a >= 0 && b >= 0, "a {a}, b {b}");
    assert_eq!(a + b, 60, "transfers created or destroyed stock");
    assert!(audits.into_inner().expect("lock") >= 1);
    server.assert_verified();
}

/// Many clients receiving the same in-transit transfer: exactly one receives it.
#[test]
fn concurrent_receives_of_one_transfer_apply_once() {
    const THREADS: usize = 16;
    let server = Server::open();
    server.product("p1");
    server.warehouse("a");
    server.warehouse("b");
    server.stock("p1", "a", 10);
    let res = server.post(
        "/api/inventory/movements",
        json!({"product_id": "p1", "warehouse_id": "a", "movement_type": "transfer", "quantity": 6,
               "to_warehouse_id": "b", "in_transit": true}),
    );
    res.expect(201);
    let tid = res.data()["transfer_id"].as_str().expect("transfer_id").to_string();
    let client = server.client();
    let barrier = Barrier::new(THREADS);
    let statuses = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            let (client, barrier, statuses, tid) = (&client, &barrier, &statuses, &tid);
            s.spawn(move || {
                barrier.wait();
                let res = client.raw(client.request("POST", &format!("/api/inventory/transfers/{tid}/receive")));
                if res.status == 409 {
                    res.expect_error(409, "already_received");
                }
                statuses.lock().expect("lock").push(res.status);
            });
        }
    });
    let statuses = statuses.into_inner().expect("lock");
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        THREADS - 1,
        "{statuses:?}"
    );
    let level = server.level("p1", "b");
    assert_eq!(level["quantity_on_hand"], 6);
    assert_eq!(level["quantity_in_transit"], 0);
    server.assert_verified();
}
