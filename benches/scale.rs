//! Scale benchmark: reads over a large journal, restart after `kill -9`, and snapshots
//! under load. `cargo bench --bench scale` (env `SCALE_SIZES=10000,100000,1000000`).
//!
//! For each journal size it builds a data file offline (the daemon's own ledger and writes,
//! through `stockd::store::apply_offline`), starts the release daemon on it and measures,
//! over keep-alive HTTP, p50/p99 of: analytics for `1y`, a page of 50 of seed 000's log of
//! the deepest product, seed 002's list, native movements (first page and a cursor page in
//! the middle of the journal). Then it kills the daemon with SIGKILL during writes and times
//! the restart, and takes snapshots while 32 connections write, verifying each.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stockd::ledger::{self, Meta, MoveCmd, Op, Product, Warehouse};

const BIN: &str = env!("CARGO_BIN_EXE_stockd");
const PRODUCTS: u64 = 1000;
const WAREHOUSES: [&str; 4] = ["default", "w1", "w2", "w3"];
/// The product every 10th movement goes to: its history is the deep one.
const DEEP: &str = "P0000";
const SAMPLES: usize = 200;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn product_id(i: u64) -> String {
    format!("P{i:04}")
}

/// Builds a data file with `movements` movements (offline, in batches of commits).
fn build(path: &Path, movements: u64) -> Result<Duration, String> {
    let started = Instant::now();
    let db = stockd::store::open_or_create(path, "default").map_err(|e| e.to_string())?;
    let rules = ledger::Rules::default();
    let mut catalog: Vec<(usize, ledger::Command)> = Vec::new();
    for w in &WAREHOUSES[1..] {
        catalog.push((
            0,
            ledger::Command::PutWarehouse(Warehouse {
                id: w.to_string(),
                name: format!("Warehouse {w}"),
                number: None,
            }),
        ));
    }
    for i in 0..PRODUCTS {
        catalog.push((
            0,
            ledger::Command::PutProduct(Product {
                id: product_id(i),
                sku: format!("SKU{i}"),
                name: format!("Product {i}"),
                unit_cost: ledger::Decimal::parse("2.50"),
                ..Product::default()
            }),
        ));
    }
    // Opening stock everywhere, so no `out` is refused (these are journal entries too).
    for i in 0..PRODUCTS {
        for w in WAREHOUSES {
            catalog.push((
                0,
                ledger::Command::Move(MoveCmd {
                    product: product_id(i),
                    warehouse: w.to_string(),
                    op: Op::In(1_000_000_000),
                    expected_on_hand: None,
                    meta: Meta::default(),
                }),
            ));
        }
    }
    stockd::store::apply_offline(&db, &rules, "bench", catalog.into_iter(), &mut |_| {})
        .map_err(|e| format!("{e:?}"))?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    const CHUNK: u64 = 100_000;
    let mut done = 0;
    while done < movements {
        let n = CHUNK.min(movements - done);
        let cmds = (0..n).map(|i| {
            let r = rng.next();
            let product = if (done + i) % 10 == 0 {
                DEEP.to_string()
            } else {
                product_id(r % PRODUCTS)
            };
            let warehouse = if product == DEEP {
                "default"
            } else {
                WAREHOUSES[((r >> 20) % 4) as usize]
            };
            let op = if (r >> 40) % 3 == 0 { Op::Out(1) } else { Op::In(2) };
            (
                0,
                ledger::Command::Move(MoveCmd {
                    product,
                    warehouse: warehouse.to_string(),
                    op,
                    expected_on_hand: None,
                    meta: Meta {
                        note: Some("bench".into()),
                        ..Meta::default()
                    },
                }),
            )
        });
        let cmds: Vec<_> = cmds.collect();
        stockd::store::apply_offline(&db, &rules, "bench", cmds.into_iter(), &mut |_| {})
            .map_err(|e| format!("{e:?}"))?;
        done += n;
    }
    Ok(started.elapsed())
}

struct Daemon {
    child: Child,
    addr: SocketAddr,
}

impl Daemon {
    fn start(data: &Path) -> Result<(Daemon, Duration), String> {
        // `SCALE_QUICK_REPAIR=false` runs the daemon with `[storage] quick_repair = false`,
        // to measure the full repair a restart after a crash then needs.
        let quick_repair = std::env::var("SCALE_QUICK_REPAIR")
            .map(|v| v != "false")
            .unwrap_or(true);
        let config = data.with_extension("toml");
        std::fs::write(&config, format!("[storage]\nquick_repair = {quick_repair}\n")).map_err(|e| e.to_string())?;
        let started = Instant::now();
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--data")
            .arg(data)
            .env("RUST_LOG", "warn")
            .env_remove("STOCKD_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).map_err(|e| e.to_string())?;
        let addr = line
            .strip_prefix("stockd listening on http://")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("unexpected first line: {line}"))?;
        let mut d = Daemon { child, addr };
        // Ready = answers /readyz.
        let mut c = Conn::open(d.addr)?;
        while c.request("GET", "/readyz", "")?.0 != 200 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let took = started.elapsed();
        d.addr = c.addr;
        Ok((d, took))
    }

    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn terminate(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// A keep-alive HTTP/1.1 connection.
struct Conn {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
}

impl Conn {
    fn open(addr: SocketAddr) -> Result<Conn, String> {
        let stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .map_err(|e| e.to_string())?;
        Ok(Conn {
            addr,
            reader: BufReader::new(stream),
        })
    }

    fn request(&mut self, method: &str, path: &str, body: &str) -> Result<(u16, String), String> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.reader
            .get_mut()
            .write_all(head.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        self.reader.read_line(&mut line).map_err(|e| e.to_string())?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or("bad status line")?;
        let mut len = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line).map_err(|e| e.to_string())?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut buf = vec![0u8; len];
        self.reader.read_exact(&mut buf).map_err(|e| e.to_string())?;
        Ok((status, String::from_utf8_lossy(&buf).into_owned()))
    }
}

fn percentiles(mut us: Vec<u64>) -> (f64, f64) {
    us.sort_unstable();
    let at = |q: f64| us[((us.len() as f64 * q) as usize).min(us.len() - 1)] as f64 / 1000.0;
    (at(0.50), at(0.99))
}

/// p50 and p99 in ms of `SAMPLES` sequential GETs of `path`.
fn measure(c: &mut Conn, path: &str) -> Result<(f64, f64), String> {
    let mut us = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let t = Instant::now();
        let (status, body) = c.request("GET", path, "")?;
        if status != 200 {
            return Err(format!("{path}: {status} {body}"));
        }
        us.push(t.elapsed().as_micros() as u64);
    }
    Ok(percentiles(us))
}

/// Writers: `n` connections POSTing `in 1` until `stop`.
fn writers(
    addr: SocketAddr,
    n: usize,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..n)
        .map(|i| {
            let (stop, acked) = (stop.clone(), acked.clone());
            std::thread::spawn(move || {
                let Ok(mut c) = Conn::open(addr) else { return };
                let body = format!(
                    r#"{{"product_id":"{}","movement_type":"in","quantity":1}}"#,
                    product_id(i as u64 % PRODUCTS)
                );
                while !stop.load(Ordering::Relaxed) {
                    match c.request("POST", "/api/inventory/movements", &body) {
                        Ok((201, _)) => {
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(_) => return,
                    }
                }
            })
        })
        .collect()
}

fn verify(path: &Path) -> Result<String, String> {
    let out = Command::new(BIN)
        .args(["verify", "--data"])
        .arg(path)
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!(
            "verify failed: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn json_field(body: &str, path: &[&str]) -> Option<serde_json::Value> {
    let mut v: serde_json::Value = serde_json::from_str(body).ok()?;
    for p in path {
        v = v.get(*p)?.clone();
    }
    Some(v)
}

fn run(size: u64, dir: &Path) -> Result<Vec<String>, String> {
    let data: PathBuf = dir.join(format!("scale-{size}.redb"));
    let built = build(&data, size)?;
    let bytes = std::fs::metadata(&data).map(|m| m.len()).unwrap_or(0);
    let (daemon, cold_start) = Daemon::start(&data)?;
    let mut c = Conn::open(daemon.addr)?;
    // A few seed-002 adjustments so its list has a page of 50.
    for i in 0..60 {
        let body = format!(
            r#"{{"inventory":{{"type":"adjust","reason":"returned","line_items":[{{"product_id":"{}","quantity":1}}]}}}}"#,
            product_id(i)
        );
        c.request("POST", "/com/inventories/adjustorset.json", &body)?;
    }
    // A cursor in the middle of the journal: walk there by seq.
    let mid = size / 2;
    let cursor_page = c.request(
        "GET",
        &format!("/api/inventory/movements?limit=1&cursor={}", cursor_for(mid + 1)),
        "",
    )?;
    if cursor_page.0 != 200 {
        return Err(format!("cursor: {}", cursor_page.1));
    }
    let mut rows = Vec::new();
    let mut row = |what: &str, path: &str, c: &mut Conn| -> Result<(), String> {
        let (p50, p99) = measure(c, path)?;
        rows.push(format!("| {size} | {what} | {p50:.2} | {p99:.2} |"));
        Ok(())
    };
    row("analytics period=1y", "/api/inventory/analytics?period=1y", &mut c)?;
    row(
        "000 log, deepest product, 50",
        &format!("/v2/products/inventory/{DEEP}?limit=50&offset=0"),
        &mut c,
    )?;
    row("002 list, 50", "/com/inventories/adjustments.json?limit=50", &mut c)?;
    row(
        "native movements, first page of 50",
        "/api/inventory/movements?limit=50",
        &mut c,
    )?;
    row(
        "native movements, cursor page mid-journal",
        &format!("/api/inventory/movements?limit=50&cursor={}", cursor_for(mid)),
        &mut c,
    )?;
    row(
        "native movements of one product, cursor mid-history",
        &format!(
            "/api/inventory/movements?product_id={DEEP}&limit=50&cursor={}",
            cursor_for(mid)
        ),
        &mut c,
    )?;
    rows.push(format!(
        "| {size} | (file {:.0} MiB, built offline in {:.1} s, cold start to ready {:.0} ms) | | |",
        bytes as f64 / 1048576.0,
        built.as_secs_f64(),
        cold_start.as_secs_f64() * 1000.0
    ));

    // Restart after kill -9 in the middle of writes.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let load = writers(daemon.addr, 32, stop.clone(), acked.clone());
    std::thread::sleep(Duration::from_millis(500));
    daemon.kill9();
    stop.store(true, Ordering::Relaxed);
    for h in load {
        let _ = h.join();
    }
    let (daemon, restart) = Daemon::start(&data)?;
    rows.push(format!(
        "| {size} | restart after kill -9 during 32-connection writes: ready in {:.0} ms ({} acknowledged before the kill) | | |",
        restart.as_secs_f64() * 1000.0,
        acked.load(Ordering::Relaxed)
    ));

    // Snapshots while 32 connections write; each must verify.
    let rounds: usize = std::env::var("SCALE_BACKUP_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if size >= 1_000_000 { 10 } else { 2 });
    let stop = Arc::new(AtomicBool::new(false));
    let load = writers(daemon.addr, 32, stop.clone(), Arc::new(AtomicU64::new(0)));
    let mut c = Conn::open(daemon.addr)?;
    let mut took = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let (status, body) = c.request("POST", "/admin/backup", "")?;
        if status != 201 {
            stop.store(true, Ordering::Relaxed);
            return Err(format!("backup: {status} {body}"));
        }
        took.push(t.elapsed().as_millis() as u64);
        let file = json_field(&body, &["data", "file"])
            .and_then(|v| v.as_str().map(str::to_string))
            .ok_or("no file")?;
        verify(Path::new(&file))?;
        let _ = std::fs::remove_file(&file);
    }
    stop.store(true, Ordering::Relaxed);
    for h in load {
        let _ = h.join();
    }
    daemon.terminate();
    let final_check = verify(&data)?;
    took.sort_unstable();
    rows.push(format!(
        "| {size} | {rounds} snapshots during 32-connection writes, each verified: median {} ms, max {} ms; data file then: {final_check} | | |",
        took[took.len() / 2],
        took[took.len() - 1]
    ));
    let _ = std::fs::remove_file(&data);
    Ok(rows)
}

/// The native cursor that resumes below `seq` (as the daemon encodes it).
fn cursor_for(seq: u64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(seq.to_string())
}

fn main() {
    let sizes: Vec<u64> = std::env::var("SCALE_SIZES")
        .unwrap_or_else(|_| "10000,100000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let dir = match tempfile::Builder::new().prefix("stockd-scale").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("tempdir: {e}");
            std::process::exit(1);
        }
    };
    println!("| journal | read (sequential, one keep-alive connection) | p50 ms | p99 ms |");
    println!("|---|---|---|---|");
    for size in sizes {
        match run(size, dir.path()) {
            Ok(rows) => rows.iter().for_each(|r| println!("{r}")),
            Err(e) => {
                eprintln!("size {size}: {e}");
                std::process::exit(1);
            }
        }
    }
}
