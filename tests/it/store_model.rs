//! Property tests of the real store against the naive model (`model.rs`).
//!
//! - In process: random sequences go through `Store::execute` in bursts (each burst is
//!   queued in order without waiting, so the writer groups them and a refusal sits beside
//!   acceptances in one group), under checkpoint limits drawn per case — every group, every
//!   few records, or none at all so everything stays in the log — with clean restarts
//!   under other limits in between. Every outcome (accepted or refused, the levels it
//!   answers, the movements it journaled) and, after each burst, the whole state are
//!   compared with the model; `stockd verify` must be clean after every stop.
//! - Through the binary: the same sequences over HTTP, killed with SIGKILL at 2–3 random
//!   points per case (one to three requests in flight at once, each unanswered or just
//!   answered), sometimes killed again while the restart applies the log, sometimes
//!   recovered by `stockd verify` first; the restart runs under other checkpoint limits.
//!   The state after it must be one the answers allow — every answered write there (or
//!   refused), each unanswered one there whole or not at all, in some order — and every
//!   later step is compared with the model again; `verify` is clean after each restart.
//!
//! Both are bounded (few cases, short sequences, at most 8 shrink steps for the binary,
//! whose kills are timing) to stay well under a minute in a debug build.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{json, Value};
use stockd::ledger::{Buckets, Command, Op, Product, ReservationStatus, Warehouse};
use stockd::store::{Applied, Options, Store, WriteCtx};

use crate::common::{enc, send, verify, Binary, Client, Request, Response, BIN};
use crate::model::{
    rules, step, Model, ModelReservation, ModelTransfer, Planning, Step, NEGATIVE_WAREHOUSE, PRODUCTS, WAREHOUSES,
};

/// Checkpoint limits a case (or a restart) runs with: (interval ms, log bytes).
const CHECKPOINTS: [(u64, u64); 4] = [
    (1, 4096),            // a checkpoint at nearly every group
    (3_600_000, 8 << 10), // one every few records, by log size
    (1, 4 << 20),         // by time only
    (3_600_000, 4 << 20), // none: everything after the start stays in the log
];
/// How long the binary test lets a request run before SIGKILL, in µs (a debug build
/// answers a write in a few ms: the kill lands before, during or after its commit).
const KILL_DELAYS_US: [u64; 8] = [0, 300, 1_000, 2_000, 3_000, 5_000, 8_000, 20_000];
/// How long a restart runs before a second SIGKILL, in µs: before, while or after it
/// applies the log.
const RECOVERY_KILL_DELAYS_US: [u64; 5] = [0, 5_000, 20_000, 50_000, 100_000];
/// Most requests in flight at a SIGKILL (the outcomes to consider grow as k! · e).
const CONCURRENT_MAX: usize = 3;
/// Steps of a case with crashes.
const STEPS_WITH_KILLS: std::ops::Range<usize> = 8..30;
/// Most levels a case can have (3 products × 3 warehouses); one list page holds them.
const LEVELS_PAGE_LIMIT: usize = 100;

/// Everything the tests compare with the model.
#[derive(Debug, PartialEq)]
struct Observed {
    buckets: BTreeMap<(String, String), Buckets>,
    plans: BTreeMap<(String, String), Planning>,
    seq: u64,
    reservations: BTreeMap<String, ModelReservation>,
    transfers: BTreeMap<String, ModelTransfer>,
}

/// What the store should show for `model`.
fn expected(model: &Model) -> Observed {
    Observed {
        buckets: model.buckets(),
        plans: model.plans(),
        seq: model.seq,
        reservations: model.reservations.clone(),
        transfers: model.transfers.clone(),
    }
}

/// Ids to look up: those of every model the state may equal (a crash leaves the write in
/// flight either done or not).
fn ids(models: &[&Model]) -> (Vec<String>, Vec<String>) {
    let mut res: Vec<String> = models.iter().flat_map(|m| m.reservations.keys().cloned()).collect();
    let mut trf: Vec<String> = models.iter().flat_map(|m| m.transfers.keys().cloned()).collect();
    res.sort();
    res.dedup();
    trf.sort();
    trf.dedup();
    (res, trf)
}

// ---------------------------------------------------------------------------------------
// In process
// ---------------------------------------------------------------------------------------

fn options(choice: usize) -> Options {
    let (interval, bytes) = CHECKPOINTS[choice % CHECKPOINTS.len()];
    Options {
        quick_repair: true,
        checkpoint_interval_ms: interval,
        checkpoint_log_bytes: bytes,
        ..Options::default()
    }
}

fn open(path: &Path, choice: usize) -> Store {
    Store::open_with_options(path, rules(), "default", options(choice))
        .unwrap_or_else(|e| panic!("open {} with {:?}: {e}", path.display(), options(choice)))
}

/// Polls the futures in order, all of them before waiting on any: the first poll of a
/// store write queues it, so the writer receives them in this order, likely in one group.
async fn in_order<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

async fn catalog_in_process(store: &Store) {
    for p in PRODUCTS.iter().filter(|p| **p != "ghost") {
        let product = Product {
            id: p.to_string(),
            sku: format!("SKU-{p}"),
            name: format!("Product {p}"),
            ..Product::default()
        };
        store
            .execute(Command::PutProduct(product), WriteCtx::default())
            .await
            .expect("put product");
    }
    for w in ["w1", NEGATIVE_WAREHOUSE] {
        let warehouse = Warehouse {
            id: w.to_string(),
            name: format!("Warehouse {w}"),
            number: None,
        };
        store
            .execute(Command::PutWarehouse(warehouse), WriteCtx::default())
            .await
            .expect("put warehouse");
    }
}

async fn observe_store(store: &Store, models: &[&Model]) -> Observed {
    let reader = store.reader().await.expect("a reader");
    let mut buckets = BTreeMap::new();
    let mut plans = BTreeMap::new();
    reader
        .each_level(&mut |p, w, l| {
            let key = (p.to_string(), w.to_string());
            if !l.buckets.is_zero() {
                buckets.insert(key.clone(), l.buckets);
            }
            if l.reorder_point.is_some() || l.max_stock_level.is_some() {
                plans.insert(key, (l.reorder_point, l.max_stock_level));
            }
            Ok(())
        })
        .expect("read the levels");
    let (res_ids, trf_ids) = ids(models);
    let mut reservations = BTreeMap::new();
    for id in res_ids {
        if let Some(r) = reader.reservation(&id).expect("read a reservation") {
            let r = ModelReservation {
                product: r.product,
                warehouse: r.warehouse,
                quantity: r.quantity,
                status: r.status,
            };
            reservations.insert(id, r);
        }
    }
    let mut transfers = BTreeMap::new();
    for id in trf_ids {
        if let Some(t) = reader.transfer(&id).expect("read a transfer") {
            let t = ModelTransfer {
                received: t.in_seq.is_some(),
                product: t.product,
                to: t.to,
                quantity: t.quantity,
            };
            transfers.insert(id, t);
        }
    }
    Observed {
        buckets,
        plans,
        seq: reader.seq_last().expect("seq"),
        reservations,
        transfers,
    }
}

/// Checks one command's outcome against the model's (`after`: the model just after it).
fn check_outcome(
    cmd: &Command,
    accepted: bool,
    seq_before: u64,
    after: &Model,
    got: &Result<Applied, stockd::store::StoreError>,
) -> Result<(), TestCaseError> {
    match got {
        Ok(applied) => {
            prop_assert!(accepted, "the store accepted what the model refuses: {cmd:?}");
            prop_assert_eq!(
                applied.movements.len() as u64,
                after.seq - seq_before,
                "journal entries of {:?}",
                cmd
            );
            for ((p, w), level) in &applied.levels {
                prop_assert_eq!(
                    level.buckets,
                    after.b.get(&(p.clone(), w.clone())).copied().unwrap_or_default(),
                    "level {}/{} answered for {:?}",
                    p,
                    w,
                    cmd
                );
            }
        }
        Err(e) => {
            prop_assert!(!accepted, "the store refused what the model accepts: {cmd:?}: {e:?}");
            let status = stockd::error::ApiError::from(e.clone()).code.status().as_u16();
            prop_assert!(
                (400..500).contains(&status),
                "a refusal is a 4xx, not {status}: {cmd:?}: {e:?}"
            );
        }
    }
    Ok(())
}

/// Runs one burst: resolves each step against the model as it goes, queues all the
/// commands at once, and compares every outcome, then the whole state.
async fn burst(store: &Store, model: &mut Model, steps: &[Step]) -> Result<(), TestCaseError> {
    let mut planned = Vec::new();
    for step in steps {
        let cmd = step.resolve(model);
        let seq_before = model.seq;
        let accepted = model.apply(&cmd).is_some();
        planned.push((cmd, accepted, seq_before, model.clone()));
    }
    let futures = planned
        .iter()
        .map(|(cmd, ..)| store.execute(cmd.clone(), WriteCtx::default()))
        .collect();
    let outcomes = in_order(futures).await;
    for ((cmd, accepted, seq_before, after), got) in planned.iter().zip(&outcomes) {
        check_outcome(cmd, *accepted, *seq_before, after, got)?;
    }
    let observed = observe_store(store, &[model]).await;
    prop_assert_eq!(observed, expected(model), "state after the burst {:?}", steps);
    Ok(())
}

fn verify_clean(data: &Path) -> Result<(), TestCaseError> {
    let out = verify(data);
    prop_assert_eq!(out.code, Some(0), "stockd verify:\n{}{}", out.stdout, out.stderr);
    Ok(())
}

/// A case: segments, each opened with its checkpoint limits, run as bursts, then stopped
/// cleanly and verified; at the end, reopened once more with the defaults and compared.
fn run_in_process(segments: &[(usize, Vec<Vec<Step>>)]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("model.redb");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut model = Model::default();
    for (i, (choice, bursts)) in segments.iter().enumerate() {
        let store = open(&data, *choice);
        let result = rt.block_on(async {
            if i == 0 {
                catalog_in_process(&store).await;
            }
            let observed = observe_store(&store, &[&model]).await;
            prop_assert_eq!(
                observed,
                expected(&model),
                "state after reopening with {:?}",
                options(*choice)
            );
            for steps in bursts {
                burst(&store, &mut model, steps).await?;
            }
            let report = store.verify().map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            prop_assert!(report.ok, "verify on the live store: {:?}", report);
            Ok(())
        });
        store.shutdown();
        result?;
        verify_clean(&data)?;
    }
    let store = Store::open(&data, rules(), "default").expect("reopen with the defaults");
    let observed = rt.block_on(observe_store(&store, &[&model]));
    store.shutdown();
    prop_assert_eq!(observed, expected(&model), "state after the last clean restart");
    Ok(())
}

fn segments() -> impl Strategy<Value = Vec<(usize, Vec<Vec<Step>>)>> {
    let bursts = prop::collection::vec(prop::collection::vec(step(false), 1..6), 1..10);
    prop::collection::vec((0..CHECKPOINTS.len(), bursts), 1..4)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        max_shrink_iters: 200,
        max_shrink_time: 60_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_store_matches_the_model_across_checkpoints_and_restarts(segments in segments()) {
        run_in_process(&segments)?;
    }
}

// ---------------------------------------------------------------------------------------
// Through the binary, with SIGKILL
// ---------------------------------------------------------------------------------------

/// An HTTP request: method, path, JSON body.
type HttpCall = (&'static str, String, Option<Value>);

fn movement_type(op: Op) -> (&'static str, i64) {
    match op {
        Op::In(n) => ("in", n),
        Op::Out(n) => ("out", n),
        Op::Adjust(n) => ("adjustment", n),
        Op::Set(n) => ("set", n),
    }
}

/// The native API call for a command (`step(true)` generates only these).
fn http_call(cmd: &Command) -> HttpCall {
    match cmd {
        Command::Move(m) => {
            let (kind, quantity) = movement_type(m.op);
            let mut body = json!({"product_id": m.product, "warehouse_id": m.warehouse,
                "movement_type": kind, "quantity": quantity});
            if let Some(e) = m.expected_on_hand {
                body["expected_on_hand"] = json!(e);
            }
            ("POST", "/api/inventory/movements".into(), Some(body))
        }
        Command::Transfer(t) => {
            let mut body = json!({"product_id": t.product, "warehouse_id": t.from, "movement_type": "transfer",
                "quantity": t.quantity, "to_warehouse_id": t.to, "in_transit": t.in_transit});
            if let Some(e) = t.expected_on_hand {
                body["expected_on_hand"] = json!(e);
            }
            ("POST", "/api/inventory/movements".into(), Some(body))
        }
        Command::Receive { transfer } => ("POST", format!("/api/inventory/transfers/{transfer}/receive"), None),
        Command::Count(lines) => {
            let lines: Vec<Value> = lines
                .iter()
                .map(|l| json!({"product_id": l.product, "warehouse_id": l.warehouse, "actual_quantity": l.actual}))
                .collect();
            (
                "POST",
                "/api/inventory/adjustments".into(),
                Some(json!({ "adjustments": lines })),
            )
        }
        Command::Reserve(r) => {
            let body = json!({"product_id": r.product, "warehouse_id": r.warehouse, "quantity": r.quantity,
                "ttl_seconds": r.ttl_ms / 1000});
            ("POST", "/api/inventory/reservations".into(), Some(body))
        }
        Command::CommitReservation { id } => ("POST", format!("/api/inventory/reservations/{id}/commit"), None),
        Command::ReleaseReservation { id } => ("DELETE", format!("/api/inventory/reservations/{id}"), None),
        Command::PatchLevel(p) => {
            let mut body = json!({});
            for (field, value) in [
                ("reorder_point", p.reorder_point),
                ("max_stock_level", p.max_stock_level),
                ("buffer", p.buffer),
            ] {
                if let Some(v) = value {
                    body[field] = json!(v);
                }
            }
            let path = format!("/api/inventory/levels/{}/{}", p.product, p.warehouse);
            ("PATCH", path, Some(body))
        }
        other => panic!("step(true) generated a command with no native route: {other:?}"),
    }
}

fn call(client: &Client, c: &HttpCall) -> std::io::Result<Response> {
    let mut req = Request::new(c.0, &c.1);
    if let Some(body) = &c.2 {
        req = req.body(body.to_string());
    }
    send(client.addr, &req)
}

fn config_file(dir: &Path, choice: usize) -> std::path::PathBuf {
    let (interval, bytes) = CHECKPOINTS[choice % CHECKPOINTS.len()];
    let path = dir.join("stockd.toml");
    let text = format!(
        "[storage]\ncheckpoint_interval_ms = {interval}\ncheckpoint_log_bytes = {bytes}\n\n\
         [inventory.warehouses.{NEGATIVE_WAREHOUSE}]\nallow_negative = true\n"
    );
    std::fs::write(&path, text).expect("write the config");
    path
}

fn start(data: &Path, choice: usize) -> Binary {
    let config = config_file(data.parent().expect("a temp dir"), choice);
    Binary::start_config(data, &config)
}

fn catalog_over_http(client: &Client) {
    for p in PRODUCTS.iter().filter(|p| **p != "ghost") {
        client.product(p);
    }
    for w in WAREHOUSES.iter().filter(|w| !matches!(**w, "default" | "nowhere")) {
        client.warehouse(w);
    }
}

fn int(row: &Value, field: &str) -> i64 {
    row[field]
        .as_i64()
        .unwrap_or_else(|| panic!("`{field}` is not an integer: {row}"))
}

/// Levels and the last seq, as the API shows them.
fn observe_levels(client: &Client) -> Observed {
    let res = client.get(&format!("/api/inventory?limit={LEVELS_PAGE_LIMIT}"));
    res.expect(200);
    let mut buckets = BTreeMap::new();
    let mut plans = BTreeMap::new();
    for row in res.data().as_array().expect("data is a list") {
        let key = (
            row["product"]["id"].as_str().expect("product id").to_string(),
            row["warehouse"]["id"].as_str().expect("warehouse id").to_string(),
        );
        let b = Buckets {
            on_hand: int(row, "quantity_on_hand"),
            allocated: int(row, "quantity_allocated"),
            damaged: int(row, "quantity_damaged"),
            buffer: int(row, "quantity_buffer"),
            in_transit: int(row, "quantity_in_transit"),
        };
        if !b.is_zero() {
            buckets.insert(key.clone(), b);
        }
        let plan = (row["reorder_point"].as_i64(), row["max_stock_level"].as_i64());
        if plan.0.is_some() || plan.1.is_some() {
            plans.insert(key, plan);
        }
    }
    Observed {
        buckets,
        plans,
        seq: client.journal_len(),
        reservations: BTreeMap::new(),
        transfers: BTreeMap::new(),
    }
}

/// Everything, reservations and transfers of `models` included.
fn observe_http(client: &Client, models: &[&Model]) -> Observed {
    let mut observed = observe_levels(client);
    let (res_ids, trf_ids) = ids(models);
    for id in res_ids {
        let res = client.get(&format!("/api/inventory/reservations/{}", enc(&id)));
        if res.status == 404 {
            continue;
        }
        res.expect(200);
        let r = res.data();
        let status = match r["status"].as_str() {
            Some("active") => ReservationStatus::Active,
            Some("committed") => ReservationStatus::Committed,
            Some("released") => ReservationStatus::Released,
            other => panic!("reservation {id} has status {other:?}"),
        };
        let r = ModelReservation {
            product: r["product_id"].as_str().unwrap_or_default().to_string(),
            warehouse: r["warehouse_id"].as_str().unwrap_or_default().to_string(),
            quantity: int(&r, "quantity"),
            status,
        };
        observed.reservations.insert(id, r);
    }
    for id in trf_ids {
        let res = client.get(&format!("/api/inventory/transfers/{}", enc(&id)));
        if res.status == 404 {
            continue;
        }
        res.expect(200);
        let t = res.data();
        let t = ModelTransfer {
            product: t["product_id"].as_str().unwrap_or_default().to_string(),
            to: t["to_warehouse_id"].as_str().unwrap_or_default().to_string(),
            quantity: int(&t, "quantity"),
            received: t["status"].as_str() == Some("received"),
        };
        observed.transfers.insert(id, t);
    }
    observed
}

fn levels_only(model: &Model) -> Observed {
    Observed {
        reservations: BTreeMap::new(),
        transfers: BTreeMap::new(),
        ..expected(model)
    }
}

/// Sends `cmd` and checks its answer and the levels after it against the model.
fn acknowledged(client: &Client, model: &mut Model, cmd: &Command) -> Result<(), TestCaseError> {
    let accepted = model.apply(cmd).is_some();
    let res = call(client, &http_call(cmd)).map_err(|e| TestCaseError::fail(format!("{cmd:?}: no answer: {e}")))?;
    match res.status {
        200 | 201 => prop_assert!(
            accepted,
            "the daemon accepted what the model refuses: {cmd:?}: {}",
            res.body
        ),
        400..=499 => prop_assert!(
            !accepted,
            "the daemon refused what the model accepts: {cmd:?}: {}",
            res.body
        ),
        other => prop_assert!(false, "{cmd:?} answered {other}: {}", res.body),
    }
    prop_assert_eq!(observe_levels(client), levels_only(model), "levels after {:?}", cmd);
    Ok(())
}

/// `GET /admin/verify` on the running daemon reports ok.
fn verified_live(client: &Client) -> Result<(), TestCaseError> {
    let res = client.get("/admin/verify");
    prop_assert!(
        res.status == 200 && res.data()["ok"] == true,
        "verify after a restart: {}",
        res.body
    );
    Ok(())
}

/// A crash point: SIGKILL `delay_us` after `concurrent` requests were sent at once (each
/// may be answered by then, or not), optionally a second SIGKILL `recovery_kill_us` into the next start (while
/// it applies the log), optionally `stockd verify` (offline recovery) before the restart,
/// which runs with the checkpoint limits `checkpoints`.
#[derive(Debug, Clone, Copy)]
struct Kill {
    delay_us: u64,
    /// Requests in flight together (this step and the next ones).
    concurrent: usize,
    recovery_kill_us: Option<u64>,
    verify_first: bool,
    checkpoints: usize,
}

/// Starts `stockd serve` on `data` and kills it `delay_us` later, wherever it is.
fn kill_while_starting(data: &Path, checkpoints: usize, delay_us: u64) {
    let config = config_file(data.parent().expect("a temp dir"), checkpoints);
    let mut child = std::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .arg("--config")
        .arg(&config)
        .env_remove("STOCKD_CONFIG")
        .env_remove("STOCKD_LISTEN")
        .env_remove("STOCKD_DATA")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn stockd serve");
    std::thread::sleep(Duration::from_micros(delay_us));
    let _ = child.kill();
    let _ = child.wait();
}

/// A state the daemon may be in after a crash with `cmds` in flight: some of them applied,
/// in some order, each `Some(accepted)`, the others `None`.
type Candidate = (Model, Vec<Option<bool>>);

/// Every subset of `cmds` in every order, applied to `model` (16 for three commands).
fn candidates(model: &Model, cmds: &[Command]) -> Vec<Candidate> {
    fn walk(model: &Model, cmds: &[Command], outcomes: &mut Vec<Option<bool>>, out: &mut Vec<Candidate>) {
        out.push((model.clone(), outcomes.clone()));
        for i in 0..cmds.len() {
            if outcomes[i].is_none() {
                let mut next = model.clone();
                outcomes[i] = Some(next.apply(&cmds[i]).is_some());
                walk(&next, cmds, outcomes, out);
                outcomes[i] = None;
            }
        }
    }
    let mut out = Vec::new();
    walk(model, cmds, &mut vec![None; cmds.len()], &mut out);
    out
}

/// Whether a candidate agrees with the answers: an answered write was applied (2xx) or
/// refused (4xx) at its place in that order; an unanswered one may be either or absent.
fn agrees(outcomes: &[Option<bool>], answers: &[std::io::Result<Response>]) -> bool {
    outcomes
        .iter()
        .zip(answers)
        .all(|(o, a)| match a.as_ref().map(|r| r.status) {
            Ok(200 | 201) => *o == Some(true),
            Ok(400..=499) => *o == Some(false),
            _ => true,
        })
}

/// Sends `cmds` at once (concurrently), crashes the daemon as `kill` says, recovers and
/// restarts it. The state must be one the answers allow: every answered write there (or
/// refused), each unanswered one there whole or not at all. Returns the new daemon.
fn crash_during(daemon: Binary, model: &mut Model, cmds: &[Command], kill: Kill) -> Result<Binary, TestCaseError> {
    let in_flight: Vec<_> = cmds
        .iter()
        .map(|cmd| {
            let (client, request) = (daemon.client.clone(), http_call(cmd));
            std::thread::spawn(move || call(&client, &request))
        })
        .collect();
    std::thread::sleep(Duration::from_micros(kill.delay_us));
    let data = daemon.data.clone();
    daemon.kill9();
    let answers: Vec<_> = in_flight
        .into_iter()
        .map(|t| t.join().expect("the request thread"))
        .collect();
    if let Some(delay_us) = kill.recovery_kill_us {
        kill_while_starting(&data, kill.checkpoints, delay_us);
    }
    if kill.verify_first {
        verify_clean(&data)?;
    }
    let daemon = start(&data, kill.checkpoints);
    verified_live(&daemon.client)?;
    let candidates = candidates(model, cmds);
    let models: Vec<&Model> = candidates.iter().map(|(m, _)| m).collect();
    let observed = observe_http(&daemon.client, &models);
    let answered: Vec<_> = answers.iter().map(|a| a.as_ref().map(|r| r.status).ok()).collect();
    let found = candidates
        .iter()
        .find(|(m, outcomes)| agrees(outcomes, &answers) && observed == expected(m));
    match found {
        Some((m, _)) => *model = m.clone(),
        None => prop_assert!(
            false,
            "after SIGKILL with {cmds:?} in flight (answers {answered:?}) the state is none the answers allow:\n\
             observed {observed:?}\nbefore   {:?}",
            expected(model)
        ),
    }
    Ok(daemon)
}

/// A case: the steps over HTTP with a crash at each step named in `kills` (while that step
/// and the next `concurrent − 1` are in flight together).
fn run_with_kills(checkpoints: usize, steps: &[Step], kills: &BTreeMap<usize, Kill>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("crash.redb");
    let mut daemon = start(&data, checkpoints);
    catalog_over_http(&daemon.client);
    let mut model = Model::default();
    let mut i = 0;
    while i < steps.len() {
        match kills.get(&i) {
            Some(kill) => {
                let together = &steps[i..(i + kill.concurrent).min(steps.len())];
                // Resolved against the same state: the daemon may run them in any order.
                let cmds: Vec<Command> = together.iter().map(|s| s.resolve(&model)).collect();
                daemon = crash_during(daemon, &mut model, &cmds, *kill)?;
                i += together.len();
            }
            None => {
                let cmd = steps[i].resolve(&model);
                acknowledged(&daemon.client, &mut model, &cmd)?;
                i += 1;
            }
        }
    }
    prop_assert_eq!(
        observe_http(&daemon.client, &[&model]),
        expected(&model),
        "state at the end"
    );
    let status = daemon.terminate();
    prop_assert!(status.is_some_and(|s| s.success()), "a clean stop: {:?}", status);
    verify_clean(&data)?;
    let daemon = start(&data, checkpoints);
    prop_assert_eq!(
        observe_http(&daemon.client, &[&model]),
        expected(&model),
        "state after a clean restart"
    );
    Ok(())
}

fn kills(steps: usize) -> impl Strategy<Value = BTreeMap<usize, Kill>> {
    let recovery_kill = prop::option::weighted(0.3, 0..RECOVERY_KILL_DELAYS_US.len());
    let kill = (
        0..KILL_DELAYS_US.len(),
        1..=CONCURRENT_MAX,
        recovery_kill,
        any::<bool>(),
        0..CHECKPOINTS.len(),
    )
        .prop_map(|(d, concurrent, recovery, verify_first, checkpoints)| Kill {
            delay_us: KILL_DELAYS_US[d],
            concurrent,
            recovery_kill_us: recovery.map(|r| RECOVERY_KILL_DELAYS_US[r]),
            verify_first,
            checkpoints,
        });
    prop::collection::btree_map(0..steps, kill, 2..=3)
}

fn case_with_kills() -> impl Strategy<Value = (usize, Vec<Step>, BTreeMap<usize, Kill>)> {
    (
        0..CHECKPOINTS.len(),
        prop::collection::vec(step(true), STEPS_WITH_KILLS),
    )
        .prop_flat_map(|(checkpoints, steps)| {
            let n = steps.len();
            (Just(checkpoints), Just(steps), kills(n))
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 10,
        // Each try starts and kills processes, and where a kill lands is timing: shrink little.
        max_shrink_iters: 8,
        max_shrink_time: 60_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_acknowledged_write_is_lost_across_sigkill(case in case_with_kills()) {
        let (checkpoints, steps, kills) = case;
        run_with_kills(checkpoints, &steps, &kills)?;
    }
}
