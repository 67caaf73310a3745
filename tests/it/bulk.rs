//! `stockd import` / `stockd export` (offline), /metrics, request ids and the log format.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::common::{run_bin, verify, Binary, Output, Server};

fn stockd(args: &[&str]) -> Output {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
    run_bin(&args, Duration::from_secs(120))
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write input");
    path.to_str().expect("utf-8 path").to_string()
}

#[test]
fn import_the_documented_examples_then_export_them() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("d.redb");
    let d = data.to_str().expect("path");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples");
    for (kind, file) in [
        ("products", "products.csv"),
        ("warehouses", "warehouses.csv"),
        ("stock", "stock.csv"),
        ("stock", "stock.ndjson"),
    ] {
        let input = examples.join(file);
        let out = stockd(&["import", "--data", d, "--kind", kind, input.to_str().expect("path")]);
        assert_eq!(out.code, Some(0), "{kind} {file}: {}", out.stderr);
    }
    assert_eq!(verify(&data).code, Some(0));

    let levels = stockd(&["export", "--data", d, "--kind", "levels", "--format", "csv"]);
    assert_eq!(levels.code, Some(0), "{}", levels.stderr);
    assert!(
        levels.stdout.starts_with("product_id,warehouse_id,on_hand,"),
        "{}",
        levels.stdout
    );
    assert!(levels.stdout.contains("1031046355,outlet,7,"), "{}", levels.stdout);
    assert!(levels.stdout.contains("prod_123,default,3,"), "{}", levels.stdout);

    let products_out = dir.path().join("products.ndjson");
    let out = stockd(&[
        "export",
        "--data",
        d,
        "--kind",
        "products",
        "--out",
        products_out.to_str().expect("path"),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let text = std::fs::read_to_string(&products_out).expect("export");
    let first: serde_json::Value = serde_json::from_str(text.lines().next().expect("a line")).expect("json");
    assert_eq!(first["name"], "iPod, pink");
    assert_eq!(first["unit_cost"], "25.00");
    assert_eq!(first["prices"], json!({"retail": "49.90", "wholesale": "39.00"}));

    // The export imports back as it is, into another file.
    let copy = dir.path().join("copy.redb");
    let out = stockd(&[
        "import",
        "--data",
        copy.to_str().expect("path"),
        "--kind",
        "products",
        products_out.to_str().expect("path"),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    let moves = stockd(&[
        "export",
        "--data",
        d,
        "--kind",
        "movements",
        "--from-seq",
        "2",
        "--to-seq",
        "3",
        "--format",
        "ndjson",
    ]);
    assert_eq!(moves.code, Some(0), "{}", moves.stderr);
    let seqs: Vec<u64> = moves
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json")["seq"]
                .as_u64()
                .expect("seq")
        })
        .collect();
    assert_eq!(seqs, vec![2, 3]);
    let today = stockd(&[
        "export",
        "--data",
        d,
        "--kind",
        "movements",
        "--since",
        "2000-01-01",
        "--until",
        "2999-12-31",
    ]);
    assert_eq!(
        today.stdout.lines().count(),
        1 + 6,
        "header + 6 movements: {}",
        today.stdout
    );
}

#[test]
fn a_bad_row_names_its_line_and_column_and_nothing_is_imported() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("d.redb");
    let d = data.to_str().expect("path");
    let products = write(dir.path(), "p.csv", "id,sku,name\np1,S1,One\np2,S2,Two\n");
    assert_eq!(
        stockd(&["import", "--data", d, "--kind", "products", &products]).code,
        Some(0)
    );
    // What the file holds, as the exports show it (redb's own bookkeeping may change on open).
    let contents = || {
        ["products", "levels", "movements"]
            .iter()
            .map(|kind| stockd(&["export", "--data", d, "--kind", kind, "--format", "ndjson"]).stdout)
            .collect::<Vec<_>>()
    };
    let before = contents();

    // Past the first batches the import hands its journal rows to a helper thread: they
    // were written into the transaction the refusal then drops.
    let many = format!("product_id,quantity\n{}nope,3\n", "p1,5\n".repeat(1000));
    let cases = [
        ("unknown-after-1000.csv", many.as_str(), "line 1002"),
        (
            "bad-number.csv",
            "product_id,quantity\np1,5\np2,five\n",
            "line 3, column `quantity`",
        ),
        (
            "negative.csv",
            "product_id,quantity\np1,-1\n",
            "line 2, column `quantity`",
        ),
        ("missing.csv", "product_id\np1\n", "line 2, column `quantity`"),
        ("unknown.csv", "product_id,quantity\np1,5\nnope,3\n", "line 3"),
        // Rows become commands as they are read: the first bad line is the one named,
        // before a malformed record further on.
        (
            "bad-before-malformed.csv",
            "product_id,quantity\np1,-1\np2,5,extra\n",
            "line 2, column `quantity`",
        ),
        ("malformed.csv", "product_id,quantity\np1,1\np2,5,extra\n", "line 3"),
        (
            "unknown-warehouse.ndjson",
            "{\"product_id\":\"p1\",\"quantity\":1}\n{\"product_id\":\"p2\",\"warehouse_id\":\"x\",\"quantity\":1}\n",
            "line 2",
        ),
        (
            "not-json.ndjson",
            "{\"product_id\":\"p1\",\"quantity\":1}\n{oops\n",
            "line 2",
        ),
    ];
    for (name, text, expected) in cases {
        let input = write(dir.path(), name, text);
        let out = stockd(&["import", "--data", d, "--kind", "stock", &input]);
        assert_eq!(out.code, Some(1), "{name}: {}", out.stderr);
        assert!(out.stderr.contains(expected), "{name}: {}", out.stderr);
    }
    assert!(contents() == before, "no import changed what the file holds");
    let no_format = write(dir.path(), "stock.txt", "product_id,quantity\np1,1\n");
    assert_eq!(
        stockd(&["import", "--data", d, "--kind", "stock", &no_format]).code,
        Some(2)
    );
}

#[test]
fn import_refuses_a_file_a_daemon_has_open() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("d.redb");
    let bin = Binary::start(&data);
    let input = write(dir.path(), "p.csv", "id,sku,name\np1,S1,One\n");
    let out = stockd(&[
        "import",
        "--data",
        data.to_str().expect("path"),
        "--kind",
        "products",
        &input,
    ]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("in use"), "{}", out.stderr);
    bin.kill9();
}

#[test]
fn metrics_request_ids_and_auth_failures() {
    let server = Server::start(&format!(
        "[[tokens]]\nname = \"ops\"\nsha256 = \"{}\"\nscopes = [\"admin\"]\n",
        stockd::auth::sha256_hex(b"ops-token")
    ));
    let ops = server.client.with_token(Some("ops-token"));
    ops.product("p");
    ops.stock("p", "default", 3);
    // A read has the writer commit what it answered (else that commit may come up to
    // commit_interval_ms + COMMIT_IDLE_MS later), so the commit metrics have a sample.
    ops.get("/api/inventory").expect(200);
    let denied = server.client.with_token(Some("wrong")).get("/api/inventory");
    denied.expect_error(401, "unauthenticated");
    let id = denied.header("x-request-id").expect("x-request-id").to_string();
    assert_eq!(
        denied.json()["request_id"],
        id.as_str(),
        "the problem names the request"
    );
    server
        .client
        .with_token(None)
        .get("/metrics")
        .expect_error(401, "unauthenticated");
    let m = ops.get("/metrics");
    m.expect(200);
    assert!(m
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/plain; version=0.0.4"));
    for needle in [
        "stockd_http_requests_total{method=\"POST\",route=\"/api/inventory/movements\",status=\"201\"}",
        "stockd_http_request_duration_seconds_bucket",
        "stockd_commit_duration_seconds_bucket",
        "stockd_commit_batch_commands_bucket",
        "stockd_journal_seq",
        "stockd_data_file_bytes",
        "stockd_writer_queue_depth",
        "stockd_writer_time_microseconds_total{phase=\"applying\"}",
        "stockd_writer_time_microseconds_total{phase=\"waiting\"}",
        "stockd_writer_time_microseconds_total{phase=\"committing\"}",
        "stockd_auth_failures_total{reason=\"unknown_token\"}",
    ] {
        assert!(m.body.contains(needle), "/metrics lacks {needle}:\n{}", m.body);
    }
}

#[test]
fn completions_and_help_read_well() {
    let out = stockd(&["completions", "bash"]);
    assert_eq!(out.code, Some(0));
    assert!(out.stdout.contains("_stockd"));
    let help = stockd(&["--help"]);
    for command in [
        "serve",
        "verify",
        "backup",
        "token",
        "partner",
        "import",
        "export",
        "completions",
    ] {
        assert!(help.stdout.contains(command), "{command} in --help:\n{}", help.stdout);
    }
}

/// The levels export without `updated_at` (a fresh file's levels are newer), sorted.
fn levels_without_time(csv: &str) -> Vec<String> {
    let mut rows: Vec<String> = csv
        .lines()
        .map(|l| l.rsplit_once(',').map(|(rest, _)| rest).unwrap_or(l).to_string())
        .collect();
    rows.sort();
    rows
}

#[test]
fn exported_levels_import_back_into_a_fresh_file() {
    let mut server = Server::open();
    server.warehouse("w2");
    for (product, warehouse, quantity) in [("p1", "default", 7), ("p1", "w2", 3), ("p2", "w2", 12)] {
        server.product(product);
        server.stock(product, warehouse, quantity);
    }
    server.movement("p2", "w2", "out", 12); // a sold-out level exports as on_hand 0
    server.stop();
    let dir = server.dir.path();
    let (old, new) = (server.data.to_str().expect("path"), dir.join("fresh.redb"));
    let new = new.to_str().expect("path");
    let mut levels = String::new();
    for kind in ["products", "warehouses", "levels"] {
        let file = dir.join(format!("{kind}.csv"));
        let file = file.to_str().expect("path");
        let out = stockd(&["export", "--data", old, "--kind", kind, "--out", file]);
        assert_eq!(out.code, Some(0), "export {kind}: {}", out.stderr);
        let import_kind = if kind == "levels" { "stock" } else { kind };
        let out = stockd(&["import", "--data", new, "--kind", import_kind, file]);
        assert_eq!(out.code, Some(0), "import {kind} as {import_kind}: {}", out.stderr);
        if kind == "levels" {
            levels = std::fs::read_to_string(file).expect("levels");
        }
    }
    assert!(levels.contains("p1,w2,3,"), "{levels}");
    let again = stockd(&["export", "--data", new, "--kind", "levels"]);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(levels_without_time(&again.stdout), levels_without_time(&levels));
    assert_eq!(verify(Path::new(new)).code, Some(0));

    // `quantity` and `on_hand` in one file: which one is meant is not guessed.
    let both = write(dir, "both.csv", "product_id,quantity,on_hand\np1,1,2\n");
    let out = stockd(&["import", "--data", new, "--kind", "stock", &both]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("line 2, column `on_hand`"), "{}", out.stderr);
}
