//! The daemon's edge (issue 10, items 2, 8 and 19): metric labels a client cannot grow,
//! counters present from the start, ids with invalid percent-encoding refused, links that
//! trust forwarded headers only when told to, list limits, log lines, and the command line.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{run_bin, Binary, Request, Server, BIN};

const ADMIN: &str = "tok-edge-admin-0123456789";

fn admin_config() -> String {
    format!(
        "[[tokens]]\nname = \"admin\"\nsha256 = \"{}\"\nscopes = [\"admin\"]\n",
        stockd::auth::sha256_hex(ADMIN.as_bytes())
    )
}

/// A small deterministic generator (no rand dependency): xorshift64.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn made_up_methods_and_paths_do_not_grow_the_metrics() {
    let server = Server::start_with_token(&admin_config(), Some(ADMIN));
    let mut seed = 0x9e37_79b9_7f4a_7c15;
    for i in 0..1000 {
        let method = format!("ZQX{:016X}{}", next(&mut seed), "M".repeat(100));
        let path = match i % 3 {
            0 => format!("/zqx{:x}/{}", next(&mut seed), i),
            1 => format!("/api/products/zqx{:x}", next(&mut seed)),
            _ => "/api/inventory".to_string(),
        };
        let res = server.raw(Request::new(&method, &path));
        assert!(res.status >= 400, "{method} {path}: {}", res.status);
    }
    let m = server.get("/metrics");
    m.expect(200);
    assert!(
        !m.body.contains("ZQX") && !m.body.contains("zqx"),
        "a client's text became a label"
    );
    assert!(m.body.contains("method=\"other\""), "{}", m.body);
    assert!(m.body.contains("route=\"unmatched\""), "{}", m.body);
    assert!(m.body.contains("route=\"/api/products/{id}\""), "{}", m.body);
    // 1000 made-up methods took it to ~500 KB before; a few dozen series remain.
    assert!(m.body.len() < 64 * 1024, "/metrics is {} bytes", m.body.len());
}

#[test]
fn counters_are_there_before_their_first_event() {
    let server = Server::start_with_token(&admin_config(), Some(ADMIN));
    let m = server.get("/metrics");
    m.expect(200);
    for series in [
        "stockd_commit_failures_total ",
        "stockd_backups_total ",
        "stockd_checkpoints_total ",
        "stockd_log_failures_total ",
        "stockd_writer_panics_total ",
        "stockd_auth_failures_total{reason=\"bad_signature\"} ",
        "stockd_auth_failures_total{reason=\"unknown_partner\"} ",
        "stockd_auth_failures_total{reason=\"clock_skew\"} ",
    ] {
        assert!(
            m.body.lines().any(|l| l.starts_with(series)),
            "/metrics lacks `{series}`:\n{}",
            m.body
        );
    }
}

#[test]
fn ids_with_invalid_percent_encoding_are_refused() {
    let server = Server::start_with_token(&admin_config(), Some(ADMIN));
    server.product("p1");
    let before = server.get("/api/products?limit=500").body;
    for path in [
        "/api/products/%FF",
        "/api/products/p%C3%28",
        "/api/products/p%zz",
        "/api/inventory?product_id=%FF",
        "/v2/products/inventory/%E2%82",
    ] {
        server.get(path).expect_error(422, "invalid_field");
    }
    server
        .put("/api/products/x%FF", json!({"sku": "X-FF", "name": "x"}))
        .expect_error(422, "invalid_field");
    server
        .put("/api/warehouses/w%C0%AF", json!({"name": "w"}))
        .expect_error(422, "invalid_field");
    assert_eq!(server.get("/api/products?limit=500").body, before, "nothing created");
    // Well-formed escapes still work.
    server
        .put("/api/products/caf%C3%A9", json!({"sku": "CAFE", "name": "Café"}))
        .expect(201);
    assert_eq!(server.get("/api/products/caf%C3%A9").data()["id"], "café");
}

fn log_links(server: &Server, headers: &[(&str, &str)]) -> Vec<String> {
    let mut req = server.request("GET", "/v2/products/inventory/p1?limit=1");
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let res = server.raw(req);
    res.expect(200);
    res.json()["links"]
        .as_array()
        .expect("links")
        .iter()
        .map(|l| l["href"].as_str().expect("href").to_string())
        .collect()
}

#[test]
fn seed_000_links_trust_forwarded_headers_only_when_configured() {
    let forged = [
        ("X-Forwarded-Host", "evil.example"),
        ("X-Forwarded-Proto", "https"),
        ("Forwarded", "host=evil.example;proto=https"),
    ];
    let server = Server::start_with_token(&admin_config(), Some(ADMIN));
    server.product("p1");
    server.stock("p1", "default", 1);
    server.stock("p1", "default", 1);
    let own = format!("http://{}/v2/products/inventory/p1?limit=1", server.addr);
    for href in log_links(&server, &forged) {
        assert!(href.starts_with(&own), "{href}");
    }

    let behind_proxy = format!("{}[server]\ntrust_forwarded = true\n", admin_config());
    let server = Server::start_with_token(&behind_proxy, Some(ADMIN));
    server.product("p1");
    server.stock("p1", "default", 1);
    server.stock("p1", "default", 1);
    let links = log_links(&server, &forged[..2]);
    assert_eq!(links.len(), 3, "self, first, next: {links:?}");
    for href in links {
        assert!(
            href.starts_with("https://evil.example/v2/products/inventory/p1?"),
            "{href}"
        );
    }
}

#[test]
fn list_limits_out_of_range_are_422_and_the_default_is_20() {
    let server = Server::start_with_token(&admin_config(), Some(ADMIN));
    for i in 0..25 {
        server.warehouse(&format!("w{i:02}"));
    }
    for path in [
        "/api/warehouses?limit=0",
        "/api/warehouses?limit=501",
        "/api/warehouses?page=0",
        "/api/warehouses?limit=x",
        "/api/products?limit=0",
        "/api/inventory?limit=0",
        "/api/inventory/movements?limit=0",
    ] {
        server.get(path).expect_error(422, "invalid_field");
    }
    let first = server.get("/api/warehouses").json();
    assert_eq!(first["meta"]["limit"], 20);
    assert_eq!(first["meta"]["total"], 26, "25 and `default`");
    assert_eq!(first["meta"]["hasMore"], true);
    assert_eq!(first["data"].as_array().map(Vec::len), Some(20));
    let rows = server.walk_cursor("/api/warehouses?limit=7", 10);
    let ids: Vec<&str> = rows.iter().map(|w| w["id"].as_str().expect("id")).collect();
    assert_eq!(ids.len(), 26);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "by id, each once: {ids:?}");
}

/// Waits until the daemon's stderr holds `needle` (log lines are written asynchronously).
fn stderr_with(bin: &Binary, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = bin.stderr();
        if text.contains(needle) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn log_lines_name_the_401_reason_and_client_round_latency_and_demote_client_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("stockd.toml");
    std::fs::write(&config, admin_config()).expect("config");
    let bin = Binary::start_env(
        &dir.path().join("stockd.redb"),
        &[("STOCKD_CONFIG", config.as_os_str()), ("RUST_LOG", "info".as_ref())],
    );
    let wrong = "tok-wrong-SECRET-0123456789";
    bin.raw(Request::new("GET", "/api/inventory").bearer(Some(wrong)))
        .expect_error(401, "unauthenticated");
    bin.raw(Request::new("GET", "/api/inventory").bearer(Some(ADMIN)))
        .expect(200);
    // A malformed request head: actix answers 400 and would log it at ERROR.
    let mut stream = std::net::TcpStream::connect(bin.addr).expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nthis is not a header\r\n\r\n")
        .expect("write");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    assert!(
        answer.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&answer)
    );

    let text = stderr_with(&bin, "status=200");
    let refused = text
        .lines()
        .find(|l| l.contains("status=401"))
        .unwrap_or_else(|| panic!("no 401 line:\n{text}"));
    assert!(refused.contains("reason=unknown_token"), "{refused}");
    assert!(refused.contains("client=127.0.0.1:"), "{refused}");
    assert!(!text.contains("SECRET"), "a credential in the logs:\n{text}");
    for line in text.lines().filter(|l| l.contains("latency_ms=")) {
        let value = line
            .split("latency_ms=")
            .nth(1)
            .and_then(|v| v.split_whitespace().next())
            .unwrap_or_default();
        let decimals = value.split('.').nth(1).map_or(0, str::len);
        assert!(decimals <= 3, "latency_ms={value} in {line}");
    }
    assert!(
        !text.contains("ERROR"),
        "a client's malformed request logged as ERROR:\n{text}"
    );
}

#[test]
fn request_lines_written_by_the_log_thread_are_all_there_after_a_clean_stop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = Binary::start_env(&dir.path().join("stockd.redb"), &[("RUST_LOG", "info".as_ref())]);
    const REQUESTS: usize = 300;
    let mut ids = Vec::new();
    for _ in 0..REQUESTS {
        let res = bin.get("/healthz");
        let res = res.expect(200);
        ids.push(res.header("x-request-id").expect("request id").to_string());
    }
    let log = bin.stderr_handle();
    assert!(bin.terminate().is_some_and(|s| s.success()), "a clean stop");
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = log.lock().map(|s| s.clone()).unwrap_or_default();
        let last = ids.last().map(String::as_str).unwrap_or_default();
        if text.contains(last) || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Every line whole, in the order the answers went out.
    let mut at = 0;
    for id in &ids {
        let found = text[at..]
            .find(id.as_str())
            .unwrap_or_else(|| panic!("no line for request {id} after offset {at}:\n{text}"));
        at += found + id.len();
    }
    for line in text.lines().filter(|l| l.contains("route=/healthz")) {
        assert!(line.contains("status=200") && line.contains("latency_ms="), "{line}");
    }
}

#[test]
fn a_stalled_stderr_costs_log_lines_not_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = Binary::start_stalled_stderr(&dir.path().join("stockd.redb"), &[("RUST_LOG", "info".as_ref())]);
    // The pipe takes ~64 KiB (a few hundred lines), the log thread's queue 16,384 more:
    // past that, every answer still comes and its line is dropped and counted.
    const REQUESTS: usize = 18_000;
    for _ in 0..REQUESTS {
        bin.get("/healthz").expect(200);
    }
    let metrics = bin.get("/metrics");
    let text = metrics.expect(200).body.clone();
    let dropped: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("stockd_log_lines_dropped_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no stockd_log_lines_dropped_total in:\n{text}"));
    assert!(dropped > 0.0, "{dropped} lines dropped");
    assert!(dropped < REQUESTS as f64, "{dropped} lines dropped");
    // The stop does not wait forever for lines stderr will not take.
    let stopped = bin.terminate();
    assert!(stopped.is_some_and(|s| s.success()), "a clean stop: {stopped:?}");
}

#[test]
fn open_mode_warns_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = Binary::start(&dir.path().join("stockd.redb"));
    let text = stderr_with(&bin, "OPEN MODE");
    assert_eq!(text.to_lowercase().matches("open mode").count(), 1, "{text}");
}

#[test]
fn completions_into_a_closed_pipe_exit_quietly() {
    let mut child = Command::new(BIN)
        .args(["completions", "zsh"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // The reader is gone before the script is written, as with `| head -1`.
    drop(child.stdout.take());
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn every_flag_has_help_and_log_format_is_listed_once() {
    let top = run_bin(&["--help".as_ref()], Duration::from_secs(30));
    assert!(top.stdout.contains("--log-format"), "{}", top.stdout);
    for (args, flag) in [
        (&["verify", "--help"][..], "--data"),
        (&["import", "--help"][..], "--data"),
        (&["export", "--help"][..], "--data"),
        (&["token", "new", "--help"][..], "--name"),
        (&["partner", "new", "--help"][..], "--id"),
    ] {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        let out = run_bin(&args, Duration::from_secs(30));
        let lines: Vec<&str> = out.stdout.lines().map(str::trim).collect();
        let at = lines
            .iter()
            .position(|l| l.starts_with(flag))
            .unwrap_or_else(|| panic!("{flag} in {args:?}:\n{}", out.stdout));
        // The help follows on the flag's line, or (long help) on the lines below it.
        let same_line = lines[at].split_once('>').map_or("", |(_, h)| h.trim());
        let below = lines
            .get(at + 1)
            .filter(|l| !l.starts_with('-') && !l.starts_with('['))
            .copied()
            .unwrap_or_default();
        assert!(
            !same_line.is_empty() || !below.is_empty(),
            "{flag} of {args:?} has no help:\n{}",
            out.stdout
        );
        assert!(!out.stdout.contains("--log-format"), "{args:?} repeats --log-format");
    }
    let json_logs = run_bin(
        &[
            "--log-format".as_ref(),
            "json".as_ref(),
            "completions".as_ref(),
            "bash".as_ref(),
        ],
        Duration::from_secs(30),
    );
    assert_eq!(json_logs.code, Some(0), "{}", json_logs.stderr);
}

/// A replayed nonce is a 401 like the others: its log line names the counted reason
/// (`nonce_replayed`), not the answer's prose.
#[test]
fn a_replayed_nonce_logs_its_reason() {
    const SECRET: &str = "edge-partner-secret-0123456789";
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("stockd.toml");
    let partner = format!("[[partners]]\nid = \"mp\"\nsecrets = [\"{SECRET}\"]\nscopes = [\"inventory:read\"]\n");
    std::fs::write(&config, admin_config() + &partner).expect("config");
    let bin = Binary::start_env(
        &dir.path().join("stockd.redb"),
        &[("STOCKD_CONFIG", config.as_os_str()), ("RUST_LOG", "info".as_ref())],
    );
    let path = "/api/warehouses";
    let ts = (stockd::clock::now_ms() / 1000).to_string();
    let sig = stockd::auth::signature::sign(
        SECRET,
        stockd::auth::signature::v1_message("GET", path, &ts, "once", b"").as_bytes(),
    );
    let signed = || {
        Request::new("GET", path)
            .header("partner-id", "mp")
            .header("timestamp", &ts)
            .header("nonce", "once")
            .header("secret", &sig)
    };
    bin.raw(signed()).expect(200);
    bin.raw(signed()).expect_error(401, "unauthenticated");
    let text = stderr_with(&bin, "status=401");
    let refused = text
        .lines()
        .find(|l| l.contains("status=401"))
        .unwrap_or_else(|| panic!("no 401 line:\n{text}"));
    assert!(refused.contains("reason=nonce_replayed"), "{refused}");
}
