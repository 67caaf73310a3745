//! Load benchmark of the real `stockd` binary over keep-alive HTTP/1.1 (issues 3 and 11).
//!
//! ```text
//! CARGO_TARGET_DIR=target-bench cargo bench --bench load
//! ```
//!
//! It starts `stockd serve` on a fresh temp data file (loopback, open mode, 2 HTTP workers),
//! seeds 10,000 products × 4 warehouses with opening stock, then drives closed-loop phases
//! from a single-threaded tokio runtime in this process: the `/healthz` ceiling (64
//! connections) and round trip (1), single durable movements at 1, 16 and 64 connections,
//! level reads and 1000-line bulk counts. It
//! prints two markdown tables: the figures with the targets of issue 3 next to them, and
//! where the time went (CPU of the daemon, its writer thread, this process and the rest of
//! the machine from /proc; bytes the daemon wrote; its fsync/fdatasync calls, counted with
//! `perf stat` when perf is installed), and a third with the writer thread's time by phase
//! (waiting, applying, committing: the daemon's own counters, read from its /metrics at the
//! window's start and end). Then it stops the daemon with SIGTERM and runs
//! `stockd verify` on the file.
//!
//! For issue 11, when PostgreSQL is installed, it makes a throwaway cluster in a temp
//! directory (its own port on 127.0.0.1) before starting the daemon, and runs the same
//! movement as one SQL statement with pgbench at 1, 16 and 64 connections, with the same
//! warm-up and measured window (`load/postgres.rs`). After the daemon and the cluster have
//! stopped, it measures the disk's sync floor (a 4 KiB overwrite + fdatasync in a
//! preallocated file beside the data file, as the redo log does per group) and times
//! `stockd import` of the 40,000 stock rows into a fresh file. The last table puts stockd
//! and PostgreSQL side by side with their ratio and the targets of issue 11, and a last one
//! takes the one-connection p50 apart (sync floor, HTTP round trip, the rest). Without PostgreSQL it says so and shows stockd's figures alone.
//! PostgreSQL's cluster starts before the daemon and runs the movement right before and
//! right after each of stockd's movement phases at the same connections; the table takes the
//! mean of its two runs and lists both, and a CPU probe (a fixed loop) is timed at the start,
//! before stockd's first phase and at the end: on a shared VM the machine's speed moves over
//! the minutes of a run, so each ratio compares the minutes around one phase. Everything is
//! bounded in time and stops by itself.
//!
//! Environment (all optional):
//! - `STOCKD_BENCH_WORKERS`: `[server] workers` of the daemon (default 2, the daemon's own
//!   default on a 2-core machine);
//! - `STOCKD_BENCH_SECS`: measured seconds per phase (default 5);
//! - `STOCKD_BENCH_WARMUP_SECS`: warm-up seconds before each measured window (default 1);
//! - `STOCKD_BENCH_DIR`: where the temp data directories go (default the system temp dir;
//!   as root it must be traversable by the PostgreSQL user);
//! - `STOCKD_BENCH_PG=0`: skip PostgreSQL; `STOCKD_BENCH_PG_BIN`: the directory holding
//!   `postgres`, `initdb`, `pg_ctl`, `psql` and `pgbench` (default: found on PATH, else the
//!   newest `/usr/lib/postgresql/*/bin`); `STOCKD_BENCH_PG_USER`: the user the server runs as
//!   when the bench runs as root (default `postgres`, through `runuser`);
//! - `STOCKD_BENCH_PERF=FILE`: after the measured phases, run the 64-connection movement
//!   phase once more under `perf record` of the daemon, writing FILE (those figures are
//!   printed apart: perf slows the daemon down);
//! - `STOCKD_BENCH_PERF_ARGS`: perf record options (default `-F 499 --call-graph dwarf,16384`);
//! - `STOCKD_BENCH_PERF_CONNS`: connections of that profiled phase (default 64);
//! - `STOCKD_BENCH_EXTRA_CONFIG=FILE`: TOML appended to the daemon's config (keys before
//!   any table header land in its `[storage]` section, e.g. `commit_interval_ms = 5`), or a
//!   `[[webhooks]]` entry whose endpoint never answers (issue 13: writes with a failing sink);
//! - `STOCKD_BENCH_BIN=FILE`: the `stockd` binary to run (daemon, verify, import) instead of
//!   the one built with the bench: alternate two builds with it to compare them in the
//!   same minutes;
//! - `RUST_LOG` is passed on to the daemon (unset: `info`, one log line per request); its
//!   stderr goes to a file in the temp directory, and the bench counts its WARN/ERROR lines.

// Modules of this bench target (a crate root looks for modules beside it, in benches/).
#[path = "load/compare.rs"]
mod compare;
#[path = "load/import.rs"]
mod import;
#[path = "load/postgres.rs"]
mod postgres;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PRODUCTS: usize = 10_000;
const WAREHOUSES: [&str; 4] = ["default", "wh-2", "wh-3", "wh-4"];
const LEVELS: usize = PRODUCTS * WAREHOUSES.len();
const OPENING_STOCK: i64 = 1_000_000;
/// Lines per bulk count request (the API's maximum).
const BULK_LINES: usize = 1000;
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// Seeding must finish within this.
const SEED_TIMEOUT: Duration = Duration::from_secs(600);
/// A response still missing this long after a phase ended counts as an error.
const RESPONSE_GRACE: Duration = Duration::from_secs(10);
/// Largest response head accepted.
const HEAD_MAX: usize = 64 * 1024;
/// HTTP workers of the daemon: its own default on the 2-core machine the targets are for.
const DEFAULT_WORKERS: usize = 2;
/// Phase names, also used to find the phases the side-by-side table compares.
const MOVEMENT_CASE: &str = "movement (durable, single)";
/// `/healthz` at one connection: the HTTP round trip every one-connection movement pays.
const HTTP_ROUND_TRIP_CASE: &str = "GET /healthz (HTTP round trip)";
const LEVEL_READ_CASE: &str = "level read (product_id + warehouse_id)";
const BULK_CASE: &str = "bulk count (1000 lines/request)";
/// Connections of the phase whose daemon CPU per movement issue 11 targets.
const CPU_TARGET_CONNS: usize = 64;

type Res<T> = Result<T, String>;

/// The `stockd` binary the bench runs: `STOCKD_BENCH_BIN`, else the one cargo built with
/// it. Comparing two builds is then alternating runs of one bench.
fn stockd_exe() -> std::ffi::OsString {
    std::env::var_os("STOCKD_BENCH_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_stockd").into())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("load bench: error: {e}");
        std::process::exit(1);
    }
}

// ---- settings ----

struct Settings {
    workers: usize,
    measure: Duration,
    warmup: Duration,
    dir: Option<PathBuf>,
    perf_out: Option<PathBuf>,
    perf_args: String,
    perf_conns: usize,
}

fn env_f64(name: &str, default: f64) -> Res<f64> {
    match std::env::var(name) {
        Ok(v) => match v.trim().parse::<f64>() {
            Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
            _ => Err(format!("{name}=`{v}`: expected a number ≥ 0")),
        },
        Err(_) => Ok(default),
    }
}

impl Settings {
    fn from_env() -> Res<Settings> {
        let workers = env_f64("STOCKD_BENCH_WORKERS", DEFAULT_WORKERS as f64)?;
        if workers < 1.0 || workers.fract() != 0.0 || workers > 64.0 {
            return Err("STOCKD_BENCH_WORKERS: expected a whole number from 1 to 64".into());
        }
        let measure = env_f64("STOCKD_BENCH_SECS", 5.0)?;
        if !(0.5..=600.0).contains(&measure) {
            return Err("STOCKD_BENCH_SECS: expected 0.5 to 600 seconds".into());
        }
        let warmup = env_f64("STOCKD_BENCH_WARMUP_SECS", 1.0)?;
        if warmup > 60.0 {
            return Err("STOCKD_BENCH_WARMUP_SECS: expected at most 60 seconds".into());
        }
        Ok(Settings {
            workers: workers as usize,
            measure: Duration::from_secs_f64(measure),
            warmup: Duration::from_secs_f64(warmup),
            dir: std::env::var_os("STOCKD_BENCH_DIR").map(PathBuf::from),
            perf_out: std::env::var_os("STOCKD_BENCH_PERF").map(PathBuf::from),
            perf_args: std::env::var("STOCKD_BENCH_PERF_ARGS")
                .unwrap_or_else(|_| "-F 499 --call-graph dwarf,16384".to_string()),
            perf_conns: env_f64("STOCKD_BENCH_PERF_CONNS", 64.0)?.clamp(1.0, 1024.0) as usize,
        })
    }
}

// ---- the daemon ----

struct Daemon {
    child: Option<Child>,
    pid: u32,
    addr: SocketAddr,
    data: PathBuf,
    /// The daemon's stderr (its logs).
    log: PathBuf,
    writer_tid: Option<u32>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    fn start(settings: &Settings) -> Res<Daemon> {
        let dir = match &settings.dir {
            Some(d) => tempfile::Builder::new().prefix("stockd-bench-").tempdir_in(d),
            None => tempfile::Builder::new().prefix("stockd-bench-").tempdir(),
        }
        .map_err(|e| format!("cannot create a temp directory: {e}"))?;
        let data = dir.path().join("bench.redb");
        let config = dir.path().join("stockd.toml");
        let data_str = data
            .to_str()
            .ok_or_else(|| format!("temp path {} is not UTF-8", data.display()))?;
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nworkers = {}\n\n[storage]\npath = {}\n",
            settings.workers,
            toml_string(data_str)
        );
        let extra = match std::env::var_os("STOCKD_BENCH_EXTRA_CONFIG") {
            Some(file) => std::fs::read_to_string(&file)
                .map_err(|e| format!("STOCKD_BENCH_EXTRA_CONFIG {}: {e}", Path::new(&file).display()))?,
            None => String::new(),
        };
        let text = format!("{text}\n{extra}");
        std::fs::write(&config, text).map_err(|e| format!("cannot write {}: {e}", config.display()))?;

        // The daemon logs a line per request at its default level: to a file, not the terminal.
        let log = dir.path().join("daemon.log");
        let log_file = std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let exe = stockd_exe();
        let mut child = Command::new(&exe)
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env_remove("STOCKD_LISTEN")
            .env_remove("STOCKD_DATA")
            .env_remove("STOCKD_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", Path::new(&exe).display()))?;
        let pid = child.id();
        let stdout = child.stdout.take().ok_or("the daemon's stdout was not captured")?;
        let (tx, rx) = mpsc::channel::<String>();
        // Reads the listening line, then keeps draining stdout so the daemon never blocks on it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("stockd listening on ") {
                    let _ = tx.send(line);
                } else {
                    eprintln!("[stockd] {line}");
                }
            }
        });
        let mut daemon = Daemon {
            child: Some(child),
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data,
            log: log.clone(),
            writer_tid: None,
            _dir: dir,
        };
        let line = match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let status = daemon.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
                return Err(match status {
                    Some(s) => format!(
                        "the daemon exited during start-up ({s}); the end of its log:\n{}",
                        log_tail(&log)
                    ),
                    None => format!(
                        "the daemon printed no `stockd listening on` line within {} s",
                        STARTUP_TIMEOUT.as_secs()
                    ),
                });
            }
        };
        // "stockd listening on http://127.0.0.1:PORT (data ...)"
        let addr = line
            .strip_prefix("stockd listening on http://")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse::<SocketAddr>().ok())
            .ok_or_else(|| format!("cannot read the address from the daemon's line `{line}`"))?;
        daemon.addr = addr;
        // The writer names itself once it runs, which may be just after the listening line.
        for _ in 0..100 {
            daemon.writer_tid = find_thread(pid, "stockd-writer");
            if daemon.writer_tid.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(daemon)
    }

    /// SIGTERM, then wait for a clean exit.
    fn stop(&mut self) -> Res<(ExitStatus, Duration)> {
        let Some(mut child) = self.child.take() else {
            return Err("the daemon was already stopped".into());
        };
        let t0 = Instant::now();
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .map_err(|e| format!("cannot run kill: {e}"))?;
        if !sent.success() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("kill -TERM {} failed ({sent})", self.pid));
        }
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok((status, t0.elapsed())),
                Ok(None) if t0.elapsed() < STOP_TIMEOUT => std::thread::sleep(Duration::from_millis(20)),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "the daemon did not exit within {} s of SIGTERM; killed",
                        STOP_TIMEOUT.as_secs()
                    ));
                }
                Err(e) => return Err(format!("waiting for the daemon: {e}")),
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status();
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---- CPU accounting from /proc (ticks of user + system time) ----

fn proc_ticks(stat_path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(stat_path).ok()?;
    // The fields after the `(comm)` one: state is the first, utime the 12th, stime the 13th.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn find_thread(pid: u32, name: &str) -> Option<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            return task.file_name().to_str()?.parse().ok();
        }
    }
    None
}

#[derive(Clone, Copy, Default)]
struct CpuSample {
    daemon: u64,
    writer: u64,
    bench: u64,
    /// Busy ticks of the whole machine (all CPUs, /proc/stat), to see what else ran.
    machine: u64,
    /// Bytes the daemon sent towards storage (/proc/PID/io `write_bytes`).
    disk_written: u64,
}

fn proc_io_write_bytes(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let line = text.lines().find(|l| l.starts_with("write_bytes:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn machine_busy_ticks() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: u64 = v.iter().take(8).sum();
    Some(total.saturating_sub(v.get(3)? + v.get(4)?))
}

fn cpu_sample(pid: u32, writer_tid: Option<u32>) -> CpuSample {
    let daemon = proc_ticks(Path::new(&format!("/proc/{pid}/stat"))).unwrap_or(0);
    let writer = writer_tid
        .and_then(|t| proc_ticks(Path::new(&format!("/proc/{pid}/task/{t}/stat"))))
        .unwrap_or(0);
    let bench = proc_ticks(Path::new("/proc/self/stat")).unwrap_or(0);
    let machine = machine_busy_ticks().unwrap_or(0);
    let disk_written = proc_io_write_bytes(pid).unwrap_or(0);
    CpuSample {
        daemon,
        writer,
        bench,
        machine,
        disk_written,
    }
}

/// `stockd_writer_time_microseconds_total` by phase (waiting, applying, committing), then
/// `stockd_log_sync_duration_seconds`' sum (in µs) and count: the syncer's log writes.
type WriterPhases = [u64; 5];

/// The daemon's `/metrics` text (open mode: no token needed).
async fn metrics_text(addr: SocketAddr) -> Option<String> {
    let mut conn = Conn::new(addr);
    if conn.call(&get("/metrics")).await.ok()? != 200 {
        return None;
    }
    std::str::from_utf8(conn.body()).ok().map(str::to_string)
}

/// The value of the line of `text` that starts with `series` (its name and labels, then a
/// space).
fn series_value(text: &str, series: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with(series))?;
    line[series.len()..].trim().parse().ok()
}

/// The writer's time by phase from the daemon's /metrics.
async fn writer_phases(addr: SocketAddr) -> Option<WriterPhases> {
    let text = metrics_text(addr).await?;
    let value = |series: &str| series_value(&text, series);
    let mut out = [0u64; 5];
    for (i, phase) in ["waiting", "applying", "committing"].iter().enumerate() {
        out[i] = value(&format!("stockd_writer_time_microseconds_total{{phase=\"{phase}\"}} "))? as u64;
    }
    // No log sync yet: no series.
    out[3] = value("stockd_log_sync_duration_seconds_sum ").map_or(0, |s| (s * 1e6) as u64);
    out[4] = value("stockd_log_sync_duration_seconds_count ").map_or(0, |n| n as u64);
    Some(out)
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

// ---- a small HTTP/1.1 keep-alive client ----

struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    /// Bytes of `buf` that belong to the last response.
    consumed: usize,
    body: std::ops::Range<usize>,
}

impl Conn {
    fn new(addr: SocketAddr) -> Conn {
        Conn {
            addr,
            stream: None,
            buf: Vec::with_capacity(16 * 1024),
            consumed: 0,
            body: 0..0,
        }
    }

    fn body(&self) -> &[u8] {
        &self.buf[self.body.clone()]
    }

    fn reset(&mut self) {
        self.stream = None;
        self.buf.clear();
        self.consumed = 0;
        self.body = 0..0;
    }

    /// Writes one request and reads its response; answers the status, the body stays in
    /// `body()` until the next call.
    async fn call(&mut self, request: &[u8]) -> std::io::Result<u16> {
        self.buf.drain(..self.consumed);
        self.consumed = 0;
        self.body = 0..0;
        if self.stream.is_none() {
            let s = TcpStream::connect(self.addr).await?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(io_err("no connection"));
        };
        stream.write_all(request).await?;
        let head_end = loop {
            if let Some(i) = find_head_end(&self.buf) {
                break i;
            }
            if self.buf.len() > HEAD_MAX {
                return Err(io_err("response head longer than 64 KiB"));
            }
            fill(stream, &mut self.buf).await?;
        };
        let head = parse_head(&self.buf[..head_end])?;
        let body_start = head_end + 4;
        let end = body_start + head.content_length;
        while self.buf.len() < end {
            fill(stream, &mut self.buf).await?;
        }
        self.body = body_start..end;
        self.consumed = end;
        if head.close {
            self.stream = None;
        }
        Ok(head.status)
    }
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.reserve(16 * 1024);
    if stream.read_buf(buf).await? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the daemon closed the connection",
        ));
    }
    Ok(())
}

fn io_err(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string())
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

struct Head {
    status: u16,
    content_length: usize,
    close: bool,
}

fn parse_head(head: &[u8]) -> std::io::Result<Head> {
    let text = std::str::from_utf8(head).map_err(|_| io_err("response head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(io_err(&format!("not an HTTP/1 status line: `{status_line}`")));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io_err(&format!("no status code in `{status_line}`")))?;
    let mut content_length = None;
    let mut close = version == "HTTP/1.0";
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| io_err(&format!("bad content-length `{value}`")))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(io_err(&format!(
                "transfer-encoding `{value}` is not supported by this client"
            )));
        } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
            close = true;
        }
    }
    let content_length = match content_length {
        Some(n) => n,
        None if status == 204 || status == 304 || (100..200).contains(&status) => 0,
        None => return Err(io_err(&format!("status {status} without content-length"))),
    };
    Ok(Head {
        status,
        content_length,
        close,
    })
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").into_bytes()
}

fn with_body(method: &str, path: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

// ---- the workload ----

/// splitmix64: deterministic per connection, no crate needed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn product_id(i: usize) -> String {
    format!("p{i:05}")
}

/// The level with index `k` in 0..LEVELS: (product, warehouse).
fn level(k: usize) -> (String, &'static str) {
    (product_id(k / WAREHOUSES.len()), WAREHOUSES[k % WAREHOUSES.len()])
}

/// Makes the next request of a connection: (rng, request number) → request, `None` = done.
type Gen = Arc<dyn Fn(&mut Rng, u64) -> Option<Vec<u8>> + Send + Sync>;

fn queue(requests: Vec<Vec<u8>>) -> Gen {
    let next = AtomicUsize::new(0);
    Arc::new(move |_: &mut Rng, _: u64| requests.get(next.fetch_add(1, Ordering::Relaxed)).cloned())
}

fn healthz() -> Gen {
    let req = get("/healthz");
    Arc::new(move |_: &mut Rng, _: u64| Some(req.clone()))
}

fn movement() -> Gen {
    Arc::new(|rng: &mut Rng, i: u64| {
        let p = product_id(rng.below(PRODUCTS));
        let w = WAREHOUSES[rng.below(WAREHOUSES.len())];
        // in and out alternate on every connection, so no level drifts far from its opening stock.
        let kind = if i % 2 == 0 { "in" } else { "out" };
        let body = format!(r#"{{"product_id":"{p}","warehouse_id":"{w}","movement_type":"{kind}","quantity":1}}"#);
        Some(with_body("POST", "/api/inventory/movements", &body))
    })
}

fn level_read() -> Gen {
    Arc::new(|rng: &mut Rng, _: u64| {
        let (p, w) = level(rng.below(LEVELS));
        Some(get(&format!("/api/inventory?product_id={p}&warehouse_id={w}")))
    })
}

fn count_body(first: usize, lines: usize, quantity: impl Fn(usize) -> i64) -> String {
    let mut body = String::with_capacity(lines * 80 + 32);
    body.push_str(r#"{"adjustments":["#);
    for k in first..first + lines {
        if k > first {
            body.push(',');
        }
        let (p, w) = level(k);
        body.push_str(&format!(
            r#"{{"product_id":"{p}","warehouse_id":"{w}","actual_quantity":{},"reason":"bench count"}}"#,
            quantity(k)
        ));
    }
    body.push_str("]}");
    body
}

fn bulk_count() -> Gen {
    Arc::new(|rng: &mut Rng, _: u64| {
        // 1000 distinct consecutive levels from a random start; counts near the opening stock.
        let first = rng.below(LEVELS - BULK_LINES + 1);
        let jitter = rng.next();
        let body = count_body(first, BULK_LINES, |k| {
            OPENING_STOCK + ((jitter.wrapping_add(k as u64 * 7919)) % 1000) as i64
        });
        Some(with_body("POST", "/api/inventory/adjustments", &body))
    })
}

// ---- running a phase ----

#[derive(Default)]
struct Tally {
    ok: u64,
    non_2xx: u64,
    io_errors: u64,
    latencies_us: Vec<u32>,
    first_error: Option<String>,
}

impl Tally {
    fn note(&mut self, what: String) {
        if self.first_error.is_none() {
            self.first_error = Some(what);
        }
    }
}

/// One connection's closed loop: request, wait for the response, record, repeat until `end`.
async fn closed_loop(addr: SocketAddr, seed: u64, gen: Gen, measure_from: Instant, end: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut rng = Rng(seed);
    let mut conn = Conn::new(addr);
    let give_up = tokio::time::Instant::from_std(end + RESPONSE_GRACE);
    let mut i = 0u64;
    while Instant::now() < end {
        let Some(request) = gen(&mut rng, i) else { break };
        i += 1;
        let t0 = Instant::now();
        let result = tokio::time::timeout_at(give_up, conn.call(&request)).await;
        let t1 = Instant::now();
        match result {
            Err(_) => {
                tally.io_errors += 1;
                tally.note(format!(
                    "no response within {} s after the phase's end",
                    RESPONSE_GRACE.as_secs()
                ));
                break;
            }
            Ok(Err(e)) => {
                tally.io_errors += 1;
                tally.note(format!("I/O: {e}"));
                conn.reset();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(Ok(status)) if (200..300).contains(&status) => {
                if t0 >= measure_from && t1 <= end {
                    tally.ok += 1;
                    let us = (t1 - t0).as_micros().min(u32::MAX as u128) as u32;
                    tally.latencies_us.push(us);
                }
            }
            Ok(Ok(status)) => {
                tally.non_2xx += 1;
                let body = String::from_utf8_lossy(conn.body());
                let snippet: String = body.chars().take(300).collect();
                tally.note(format!("HTTP {status}: {snippet}"));
            }
        }
    }
    tally
}

struct Outcome {
    ok: u64,
    non_2xx: u64,
    io_errors: u64,
    first_error: Option<String>,
    /// Sorted.
    latencies_us: Vec<u32>,
    window: Duration,
    cpu: (CpuSample, CpuSample),
    /// The writer's time by phase (µs: waiting, applying, committing) at the window's start
    /// and end, from the daemon's /metrics.
    writer: Option<(WriterPhases, WriterPhases)>,
    /// fsync + fdatasync calls of the daemon in the measured window (perf stat), when counted.
    syncs: Option<u64>,
}

impl Outcome {
    /// The daemon's mean log write + fdatasync over the measured window, µs.
    fn log_sync_mean_us(&self) -> Option<f64> {
        let (a, b) = self.writer?;
        let syncs = b[4].saturating_sub(a[4]);
        (syncs > 0).then(|| b[3].saturating_sub(a[3]) as f64 / syncs as f64)
    }

    fn rate(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }

    fn errors(&self) -> u64 {
        self.non_2xx + self.io_errors
    }

    fn percentile(&self, q: f64) -> Option<u32> {
        percentile(&self.latencies_us, q)
    }

    /// Daemon CPU time per 2xx answer over the measured window, in µs.
    fn daemon_cpu_us_per_ok(&self, tck: f64) -> Option<f64> {
        let (a, b) = self.cpu;
        (self.ok > 0 && b.daemon > 0).then(|| b.daemon.saturating_sub(a.daemon) as f64 / tck * 1e6 / self.ok as f64)
    }
}

/// The `q` quantile of sorted latencies (nearest rank).
fn percentile(sorted: &[u32], q: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

struct Phase<'a> {
    conns: usize,
    warmup: Duration,
    measure: Duration,
    gen: Gen,
    daemon: &'a Daemon,
    /// perf record options and output file, run over the measured window.
    perf: Option<(&'a str, &'a Path)>,
    /// A fixed amount of work (seeding): ends when the generator runs dry, `measure` only bounds it.
    until_done: bool,
    /// Count the daemon's fsync/fdatasync calls over the measured window (needs perf; else `–`).
    count_syncs: bool,
}

/// Longest wait for the daemon's checkpoint after a phase (its interval is 2 s).
const CHECKPOINT_WAIT: Duration = Duration::from_secs(10);

/// Waits until the daemon has made its next checkpoint (a durable commit of every page the
/// phase changed, 30–190 ms of disk writes), so that it does not land in PostgreSQL's next
/// measured window.
fn wait_for_checkpoint(rt: &tokio::runtime::Runtime, daemon: &Daemon) {
    const SERIES: &str = "stockd_checkpoints_total ";
    let count = || {
        rt.block_on(metrics_text(daemon.addr))
            .and_then(|t| series_value(&t, SERIES))
    };
    let Some(before) = count() else { return };
    let deadline = Instant::now() + CHECKPOINT_WAIT;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        if count().is_some_and(|now| now > before) {
            return;
        }
    }
    eprintln!("load bench: no checkpoint of the daemon within {CHECKPOINT_WAIT:?} after its phase");
}

fn run_phase(rt: &tokio::runtime::Runtime, phase: Phase) -> Res<Outcome> {
    let start = Instant::now();
    let measure_from = start + phase.warmup;
    let end = measure_from + phase.measure;
    let (pid, writer_tid, addr) = (phase.daemon.pid, phase.daemon.writer_tid, phase.daemon.addr);
    let mut perf_child = None;
    let mut sync_counter = None;
    let (tallies, cpu, writer) = rt.block_on(async {
        let mut tasks = Vec::with_capacity(phase.conns);
        for c in 0..phase.conns {
            let seed = 0x5EED_0000 + c as u64;
            tasks.push(tokio::spawn(closed_loop(
                addr,
                seed,
                phase.gen.clone(),
                measure_from,
                end,
            )));
        }
        let before = if phase.until_done {
            cpu_sample(pid, writer_tid)
        } else {
            tokio::time::sleep_until(tokio::time::Instant::from_std(measure_from)).await;
            cpu_sample(pid, writer_tid)
        };
        let writer_before = writer_phases(addr).await;
        if let Some((args, out)) = phase.perf {
            perf_child = Some(spawn_perf(pid, args, out, phase.measure)?);
        }
        if phase.count_syncs {
            sync_counter = spawn_sync_counter(pid, phase.measure);
        }
        if !phase.until_done {
            tokio::time::sleep_until(tokio::time::Instant::from_std(end)).await;
        }
        let mut after = cpu_sample(pid, writer_tid);
        let writer_after = writer_phases(addr).await;
        let mut tallies = Vec::with_capacity(tasks.len());
        for t in tasks {
            tallies.push(t.await.map_err(|e| format!("a load task failed: {e}"))?);
        }
        if phase.until_done {
            after = cpu_sample(pid, writer_tid);
        }
        let writer = writer_before.zip(writer_after);
        Ok::<_, String>((tallies, (before, after), writer))
    })?;
    if let Some(child) = perf_child {
        wait_perf(child)?;
    }
    let syncs = sync_counter.and_then(read_sync_count);
    let mut out = Outcome {
        ok: 0,
        non_2xx: 0,
        io_errors: 0,
        first_error: None,
        latencies_us: Vec::new(),
        window: if phase.until_done {
            start.elapsed()
        } else {
            phase.measure
        },
        cpu,
        writer,
        syncs,
    };
    for t in tallies {
        out.ok += t.ok;
        out.non_2xx += t.non_2xx;
        out.io_errors += t.io_errors;
        if out.first_error.is_none() {
            out.first_error = t.first_error;
        }
        out.latencies_us.extend(t.latencies_us);
    }
    out.latencies_us.sort_unstable();
    Ok(out)
}

/// Runs a fixed list of requests over `conns` connections; every one must answer 2xx.
fn run_queue(
    rt: &tokio::runtime::Runtime,
    daemon: &Daemon,
    what: &str,
    conns: usize,
    requests: Vec<Vec<u8>>,
) -> Res<Duration> {
    let n = requests.len();
    let t0 = Instant::now();
    let out = run_phase(
        rt,
        Phase {
            conns,
            warmup: Duration::ZERO,
            measure: SEED_TIMEOUT,
            gen: queue(requests),
            daemon,
            perf: None,
            until_done: true,
            count_syncs: false,
        },
    )?;
    let took = t0.elapsed();
    if out.errors() > 0 || out.ok != n as u64 {
        return Err(format!(
            "seeding {what}: {} of {n} requests succeeded, {} errors; first: {}",
            out.ok,
            out.errors(),
            out.first_error.unwrap_or_else(|| "none (timed out)".into())
        ));
    }
    Ok(took)
}

fn spawn_perf(pid: u32, args: &str, out: &Path, secs: Duration) -> Res<Child> {
    Command::new("perf")
        .arg("record")
        .args(args.split_whitespace())
        .arg("-p")
        .arg(pid.to_string())
        .arg("-o")
        .arg(out)
        .arg("--")
        .arg("sleep")
        .arg(format!("{:.1}", secs.as_secs_f64()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run perf (install linux-perf): {e}"))
}

/// `perf stat` counting the daemon's fsync and fdatasync calls for `secs`; `None` without perf.
fn spawn_sync_counter(pid: u32, secs: Duration) -> Option<Child> {
    Command::new("perf")
        .args([
            "stat",
            "-x",
            ",",
            "-e",
            "syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync",
        ])
        .arg("-p")
        .arg(pid.to_string())
        .arg("--")
        .arg("sleep")
        .arg(format!("{:.3}", secs.as_secs_f64()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .ok()
}

/// Sums the counts `perf stat -x,` printed (`COUNT,,EVENT,...` per line).
fn read_sync_count(child: Child) -> Option<u64> {
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stderr);
    let counts: Vec<u64> = text
        .lines()
        .filter(|l| l.contains("sys_enter_f"))
        .map(|l| l.split(',').next().and_then(|c| c.trim().parse().ok()))
        .collect::<Option<Vec<u64>>>()?;
    (!counts.is_empty()).then(|| counts.iter().sum())
}

fn wait_perf(mut child: Child) -> Res<()> {
    let t0 = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(s)) if s.success() => return Ok(()),
            Ok(Some(s)) => return Err(format!("perf record failed ({s})")),
            Ok(None) if t0.elapsed() < Duration::from_secs(120) => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("perf record did not finish within 120 s; killed".into());
            }
            Err(e) => return Err(format!("waiting for perf: {e}")),
        }
    }
}

// ---- report ----

struct Row {
    case: &'static str,
    conns: usize,
    /// Work items per successful request (bulk lines), for the throughput column.
    per_request: f64,
    unit: &'static str,
    target: Option<Target>,
    out: Outcome,
}

/// A phase of the plan.
struct Case {
    case: &'static str,
    conns: usize,
    gen: Gen,
    per_request: f64,
    unit: &'static str,
    target: Option<Target>,
}

impl Case {
    fn new(case: &'static str, conns: usize, gen: Gen, unit: &'static str, target: Option<Target>) -> Case {
        Case {
            case,
            conns,
            gen,
            per_request: 1.0,
            unit,
            target,
        }
    }
}

struct Target {
    rate: f64,
    p99_ms: Option<f64>,
}

impl Target {
    fn text(&self, unit: &str) -> String {
        let mut t = format!("≥ {} {unit}", thousands(self.rate));
        if let Some(p) = self.p99_ms {
            t.push_str(&format!(", p99 ≤ {p} ms"));
        }
        t
    }

    fn met(&self, rate: f64, p99_us: Option<u32>) -> bool {
        let rate_ok = rate >= self.rate;
        let p99_ok = match (self.p99_ms, p99_us) {
            (Some(limit), Some(p)) => f64::from(p) <= limit * 1000.0,
            (Some(_), None) => false,
            (None, _) => true,
        };
        rate_ok && p99_ok
    }
}

fn thousands(x: f64) -> String {
    let n = x.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn latency(us: Option<u32>) -> String {
    match us {
        None => "–".into(),
        Some(us) if us < 1000 => format!("{us} µs"),
        Some(us) => format!("{:.2} ms", f64::from(us) / 1000.0),
    }
}

fn print_table(rows: &[Row], baseline: f64) {
    println!("| case | conns | throughput | vs /healthz | p50 | p99 | max | errors | target | |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|---|");
    for r in rows {
        let rate = r.out.rate() * r.per_request;
        let p99 = r.out.percentile(0.99);
        let (target, verdict) = match &r.target {
            Some(t) => (t.text(r.unit), if t.met(rate, p99) { "met" } else { "**missed**" }),
            None => ("–".to_string(), ""),
        };
        println!(
            "| {} | {} | {} {} | {:.2}× | {} | {} | {} | {} | {} | {} |",
            r.case,
            r.conns,
            thousands(rate),
            r.unit,
            rate / baseline,
            latency(r.out.percentile(0.50)),
            latency(p99),
            latency(r.out.latencies_us.last().copied()),
            r.out.errors(),
            target,
            verdict
        );
    }
    for r in rows {
        if let Some(e) = &r.out.first_error {
            println!("\nfirst error in `{}` ({} conns): {e}", r.case, r.conns);
        }
    }
}

/// Where the time went: CPU per process and thread, commits and bytes written per request.
fn print_costs(rows: &[Row], tck: f64) {
    println!("| case | conns | daemon CPU | of which writer thread | bench CPU | rest of machine | daemon CPU per request | fsyncs/s | requests per fsync | disk writes per request |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let secs = r.out.window.as_secs_f64();
        let (a, b) = r.out.cpu;
        let cores = |x: u64, y: u64| y.saturating_sub(x) as f64 / tck / secs;
        let daemon = cores(a.daemon, b.daemon);
        let bench = cores(a.bench, b.bench);
        let other = (cores(a.machine, b.machine) - daemon - bench).max(0.0);
        let ok = r.out.ok.max(1) as f64;
        let (syncs, per_sync) = match r.out.syncs {
            Some(n) if n > 0 => (thousands(n as f64 / secs), format!("{:.1}", r.out.ok as f64 / n as f64)),
            Some(_) => ("0".into(), "–".into()),
            None => ("–".into(), "–".into()),
        };
        let written = b.disk_written.saturating_sub(a.disk_written) as f64 / ok;
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} µs | {} | {} | {} |",
            r.case,
            r.conns,
            daemon,
            cores(a.writer, b.writer),
            bench,
            other,
            daemon * secs * 1e6 / ok,
            syncs,
            per_sync,
            if written >= 1024.0 {
                format!("{:.1} KiB", written / 1024.0)
            } else {
                format!("{written:.0} B")
            }
        );
    }
}

/// The writer thread's time by phase, as shares of each measured window.
fn print_writer(rows: &[Row]) {
    println!(
        "| case | conns | writer waiting | applying groups | committing | writer µs per request (applying + committing) | log syncs per request | log write + fdatasync (mean, syncer) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let Some((a, b)) = r.out.writer else { continue };
        let window_us = r.out.window.as_secs_f64() * 1e6;
        let d = |i: usize| b[i].saturating_sub(a[i]) as f64;
        let share = |i: usize| format!("{:.0} %", 100.0 * d(i) / window_us);
        let sync_mean = r
            .out
            .log_sync_mean_us()
            .map_or_else(|| "–".into(), |m| format!("{m:.0} µs"));
        println!(
            "| {} | {} | {} | {} | {} | {:.1} µs | {:.2} | {} |",
            r.case,
            r.conns,
            share(0),
            share(1),
            share(2),
            (d(1) + d(2)) / r.out.ok.max(1) as f64,
            d(4) / r.out.ok.max(1) as f64,
            sync_mean
        );
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    format!("{cores} cores ({cpu}), {mem_gib:.1} GiB, kernel {}", kernel.trim())
}

// ---- the benchmark ----

fn run() -> Res<()> {
    let settings = Settings::from_env()?;
    let tck = clock_ticks_per_second();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build the tokio runtime: {e}"))?;

    // PostgreSQL runs right before and right after each of stockd's movement phases, in a
    // cluster started first: on a shared VM the machine's speed moves over minutes, so each
    // ratio compares the minutes around one phase, and the two runs show how far it moved.
    let probe_first_ms = cpu_probe_ms();
    let mut pg = PgSide::start(&settings);
    let mut daemon = Daemon::start(&settings)?;
    eprintln!(
        "load bench: daemon pid {} on {} (workers {}), data {}",
        daemon.pid,
        daemon.addr,
        settings.workers,
        daemon.data.display()
    );
    if daemon.writer_tid.is_none() {
        eprintln!("load bench: no `stockd-writer` thread found; the writer CPU column will read 0");
    }

    // Seed: products, warehouses, opening stock.
    let products: Vec<Vec<u8>> = (0..PRODUCTS)
        .map(|i| {
            let id = product_id(i);
            let body = format!(r#"{{"sku":"SKU-{id}","name":"Bench product {i}"}}"#);
            with_body("PUT", &format!("/api/products/{id}"), &body)
        })
        .collect();
    let warehouses: Vec<Vec<u8>> = WAREHOUSES[1..]
        .iter()
        .map(|w| {
            with_body(
                "PUT",
                &format!("/api/warehouses/{w}"),
                &format!(r#"{{"name":"Warehouse {w}"}}"#),
            )
        })
        .collect();
    let stock: Vec<Vec<u8>> = (0..LEVELS / BULK_LINES)
        .map(|chunk| {
            let body = count_body(chunk * BULK_LINES, BULK_LINES, |_| OPENING_STOCK);
            with_body("POST", "/api/inventory/adjustments", &body)
        })
        .collect();
    eprintln!(
        "load bench: seeding {PRODUCTS} products × {} warehouses…",
        WAREHOUSES.len()
    );
    let seed_products = run_queue(&rt, &daemon, "products", 64, products)?;
    let seed_warehouses = run_queue(&rt, &daemon, "warehouses", 1, warehouses)?;
    let seed_stock = run_queue(&rt, &daemon, "opening stock", 4, stock)?;
    check_seed(&rt, &daemon)?;

    let phase = |conns: usize, gen: Gen| Phase {
        conns,
        warmup: settings.warmup,
        measure: settings.measure,
        gen,
        daemon: &daemon,
        perf: None,
        until_done: false,
        count_syncs: true,
    };
    let target = |rate: f64, p99_ms: Option<f64>| Some(Target { rate, p99_ms });
    let plan = vec![
        Case::new("GET /healthz (HTTP ceiling)", 64, healthz(), "req/s", None),
        Case::new(HTTP_ROUND_TRIP_CASE, 1, healthz(), "req/s", None),
        Case::new(MOVEMENT_CASE, 1, movement(), "mov/s", target(2_500.0, None)),
        Case::new(MOVEMENT_CASE, 16, movement(), "mov/s", None),
        Case::new(MOVEMENT_CASE, 64, movement(), "mov/s", target(40_000.0, Some(10.0))),
        Case::new(LEVEL_READ_CASE, 64, level_read(), "reads/s", target(60_000.0, None)),
        Case {
            per_request: BULK_LINES as f64,
            ..Case::new(BULK_CASE, 4, bulk_count(), "lines/s", target(150_000.0, None))
        },
    ];
    let probe_stockd_ms = cpu_probe_ms();
    let mut rows = Vec::new();
    for c in plan {
        let beside_pg = c.case == MOVEMENT_CASE && PG_CONNS.contains(&c.conns);
        if beside_pg {
            pg.movements(&settings, c.conns, tck, PgTurn::Before);
        }
        eprintln!("load bench: {}, {} connections…", c.case, c.conns);
        let out = run_phase(&rt, phase(c.conns, c.gen))?;
        if beside_pg {
            wait_for_checkpoint(&rt, &daemon);
            pg.movements(&settings, c.conns, tck, PgTurn::After);
        }
        rows.push(Row {
            case: c.case,
            conns: c.conns,
            per_request: c.per_request,
            unit: c.unit,
            target: c.target,
            out,
        });
    }
    let profiled = match &settings.perf_out {
        Some(path) => {
            eprintln!(
                "load bench: movements at {} connections under perf record → {}",
                settings.perf_conns,
                path.display()
            );
            let mut p = phase(settings.perf_conns, movement());
            p.perf = Some((settings.perf_args.as_str(), path.as_path()));
            p.count_syncs = false;
            Some(run_phase(&rt, p)?)
        }
        None => None,
    };

    let rss_peak_mib = rss_peak_mib(daemon.pid);
    let (status, stop_took) = daemon.stop()?;
    let verify = Command::new(stockd_exe())
        .arg("verify")
        .arg("--data")
        .arg(&daemon.data)
        .output()
        .map_err(|e| format!("cannot run stockd verify: {e}"))?;
    let file_mib = std::fs::metadata(&daemon.data)
        .map(|m| m.len() as f64 / 1048576.0)
        .unwrap_or(0.0);

    let (pg_before, pg) = pg.finish();
    let probe_last_ms = cpu_probe_ms();

    // Issue 11: the disk's sync floor and the import, each alone on the machine (the daemon
    // and PostgreSQL are stopped).
    let work_dir = daemon.data.parent().map(Path::to_path_buf).unwrap_or_default();
    eprintln!("load bench: the disk's fdatasync floor…");
    let sync_floor = fdatasync_floor(&work_dir, settings.measure);
    eprintln!("load bench: stockd import of {LEVELS} stock rows into a fresh file…");
    let imported = import::run(&work_dir);

    let baseline = rows.first().map(|r| r.out.rate()).filter(|r| *r > 0.0).unwrap_or(1.0);
    println!("## stockd load benchmark");
    println!();
    println!("- machine: {}", machine());
    println!(
        "- daemon: `stockd serve`, [server] workers = {}, open mode, loopback, data file on {}",
        settings.workers,
        daemon
            .data
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    println!(
        "- load: this process, one tokio current_thread runtime, closed loop per keep-alive connection; {:.1} s warm-up + {:.1} s measured per phase",
        settings.warmup.as_secs_f64(),
        settings.measure.as_secs_f64()
    );
    println!(
        "- seed: {PRODUCTS} products in {:.2} s ({} PUT/s, 64 conns), {} warehouses in {:.3} s, opening stock {} levels × {OPENING_STOCK} in {:.2} s ({} lines/s, 4 conns)",
        seed_products.as_secs_f64(),
        thousands(PRODUCTS as f64 / seed_products.as_secs_f64()),
        WAREHOUSES.len() - 1,
        seed_warehouses.as_secs_f64(),
        LEVELS,
        seed_stock.as_secs_f64(),
        thousands(LEVELS as f64 / seed_stock.as_secs_f64())
    );
    println!();
    print_table(&rows, baseline);
    println!();
    println!("Where the time goes (CPU in cores busy over the measured window):");
    println!();
    print_costs(&rows, tck);
    println!();
    println!("The writer thread's time (the daemon's `stockd_writer_time_microseconds_total`, share of each measured window):");
    println!();
    print_writer(&rows);
    println!();
    println!(
        "Throughput counts 2xx answers inside the measured window; latencies are per request (closed loop, \
         so they understate queueing: coordinated omission). Errors are non-2xx answers plus I/O errors over \
         the whole phase. CPU figures are cores busy during the measured window (/proc, 1 core = 100%); \
         \"daemon CPU per request\" = daemon CPU time / 2xx requests; \"rest of machine\" = busy time of all \
         CPUs (/proc/stat) minus daemon and bench: kernel threads and any other process (a figure taken while \
         other processes ran is not comparable). fsyncs = the daemon's fsync + fdatasync calls (perf stat; \
         `–` without perf); disk writes = the daemon's /proc/PID/io write_bytes per 2xx request."
    );
    if let Some(out) = profiled {
        println!();
        let p = Row {
            case: "movement under perf record (not a figure)",
            conns: settings.perf_conns,
            per_request: 1.0,
            unit: "mov/s",
            target: None,
            out,
        };
        print_table(std::slice::from_ref(&p), baseline);
        println!();
        print_costs(std::slice::from_ref(&p), tck);
    }
    println!();
    println!(
        "daemon stopped by SIGTERM in {:.2} s: {status}; data file {:.0} MiB",
        stop_took.as_secs_f64(),
        file_mib
    );
    let log = std::fs::read_to_string(&daemon.log).unwrap_or_default();
    let problems = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .count();
    println!(
        "daemon log (RUST_LOG={}): {} lines, {problems} at WARN or ERROR",
        std::env::var("RUST_LOG").unwrap_or_else(|_| "unset: info".into()),
        log.lines().count()
    );
    let text = String::from_utf8_lossy(&verify.stdout);
    let err = String::from_utf8_lossy(&verify.stderr);
    println!("stockd verify: {}{}", text.trim(), err.trim());
    println!();
    let measured = Measured {
        rows: &rows,
        rss_peak_mib,
        imported: &imported,
        pg_before: &pg_before,
        pg: &pg,
        sync_floor: &sync_floor,
    };
    print_side_by_side(&settings, tck, &measured);
    print_cpu_probes([probe_first_ms, probe_stockd_ms, probe_last_ms], pg.is_ok());
    if !status.success() {
        return Err(format!(
            "the daemon exited with {status} after SIGTERM; the end of its log:\n{}",
            log_tail(&daemon.log)
        ));
    }
    if !verify.status.success() || !text.contains(": ok") {
        return Err(format!("stockd verify did not say ok ({})", verify.status));
    }
    Ok(())
}

/// One level read after seeding: the level exists with its opening stock.
fn check_seed(rt: &tokio::runtime::Runtime, daemon: &Daemon) -> Res<()> {
    let (p, w) = level(LEVELS - 1);
    let path = format!("/api/inventory?product_id={p}&warehouse_id={w}");
    let body = rt.block_on(async {
        let mut conn = Conn::new(daemon.addr);
        let status = tokio::time::timeout(Duration::from_secs(10), conn.call(&get(&path)))
            .await
            .map_err(|_| format!("GET {path}: no answer within 10 s"))?
            .map_err(|e| format!("GET {path}: {e}"))?;
        if status != 200 {
            return Err(format!(
                "GET {path}: HTTP {status}: {}",
                String::from_utf8_lossy(conn.body())
            ));
        }
        Ok(conn.body().to_vec())
    })?;
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("GET {path}: answer is not JSON: {e}"))?;
    let on_hand = v["data"][0]["quantity_on_hand"].as_i64();
    if on_hand != Some(OPENING_STOCK) || v["data"].as_array().map(Vec::len) != Some(1) {
        return Err(format!(
            "GET {path}: expected one level with quantity_on_hand {OPENING_STOCK}, got {v}"
        ));
    }
    Ok(())
}

// ---- issue 11: side by side with PostgreSQL ----

/// The daemon's peak resident set (VmHWM), in MiB.
fn rss_peak_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Connection counts of the movement phases compared with PostgreSQL.
const PG_CONNS: [usize; 3] = [1, 16, 64];

struct PgRun {
    description: String,
    phases: Vec<(usize, postgres::PgOutcome)>,
}

/// Bytes of each write of the sync floor: one 4 KiB page, as a one-movement log record.
const SYNC_FLOOR_WRITE_BYTES: usize = 4096;
/// Size of the preallocated file the sync floor overwrites in turn.
const SYNC_FLOOR_FILE_BYTES: usize = 1 << 20;

/// Rounds of the CPU probe; its figure is their median.
const CPU_PROBE_ROUNDS: usize = 5;
/// Iterations of one round (~40 ms on this kind of machine).
const CPU_PROBE_ITERATIONS: u64 = 20_000_000;
/// Beyond this difference between the slowest and the fastest probe, the run says its
/// ratios moved with the machine.
const CPU_PROBE_DRIFT_MAX: f64 = 0.10;

/// A fixed single-threaded loop, timed (ms, median of `CPU_PROBE_ROUNDS`): taken at the
/// start, before stockd's first phase and at the end, minutes apart. On a shared VM the
/// machine's speed moves between them; the probes show when the CPU's did (not the disk's
/// or the host's).
fn cpu_probe_ms() -> f64 {
    let mut rounds: Vec<f64> = (0..CPU_PROBE_ROUNDS)
        .map(|_| {
            let started = Instant::now();
            let mut x = std::hint::black_box(0x9E37_79B9_7F4A_7C15_u64);
            for _ in 0..CPU_PROBE_ITERATIONS {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
            }
            std::hint::black_box(x);
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[CPU_PROBE_ROUNDS / 2]
}

/// The probes at the start (before PostgreSQL's cluster and the daemon start), right before
/// stockd's first phase and at the end (after PostgreSQL's last run).
fn print_cpu_probes(probes_ms: [f64; 3], pg_ran: bool) {
    if !pg_ran {
        return;
    }
    let [first_ms, stockd_ms, last_ms] = probes_ms;
    let slowest = probes_ms.iter().copied().fold(f64::MIN, f64::max);
    let fastest = probes_ms.iter().copied().fold(f64::MAX, f64::min);
    let drift = slowest / fastest.max(1e-9);
    println!();
    println!(
        "CPU probe (a fixed loop, median of {CPU_PROBE_ROUNDS} rounds): {first_ms:.1} ms at the start, \
         {stockd_ms:.1} ms before stockd's first phase, {last_ms:.1} ms after PostgreSQL's last run \
         (slowest / fastest {drift:.2}×)."
    );
    if drift - 1.0 > CPU_PROBE_DRIFT_MAX {
        println!(
            "The machine's speed moved by more than {:.0} % over the run: its ratios may have moved with it.",
            CPU_PROBE_DRIFT_MAX * 100.0
        );
    }
}

/// Latencies (µs, sorted) of a write + fdatasync in a preallocated file in `dir`, for
/// `measure`: what one group's log sync costs at best on this disk, the floor that
/// stockd's and PostgreSQL's one-connection round trips share.
fn fdatasync_floor(dir: &Path, measure: Duration) -> Res<Vec<u32>> {
    use std::os::unix::fs::FileExt;
    let path = dir.join("sync-floor");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let io = |e: std::io::Error| format!("{}: {e}", path.display());
    file.write_all_at(&vec![0u8; SYNC_FLOOR_FILE_BYTES], 0).map_err(io)?;
    file.sync_all().map_err(io)?;
    let page = vec![0x5au8; SYNC_FLOOR_WRITE_BYTES];
    let mut latencies = Vec::new();
    let end = Instant::now() + measure;
    let mut offset = 0;
    while Instant::now() < end {
        let t0 = Instant::now();
        file.write_all_at(&page, offset as u64).map_err(io)?;
        file.sync_data().map_err(io)?;
        latencies.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
        offset = (offset + SYNC_FLOOR_WRITE_BYTES) % SYNC_FLOOR_FILE_BYTES;
    }
    let _ = std::fs::remove_file(&path);
    latencies.sort_unstable();
    Ok(latencies)
}

/// Which of PostgreSQL's two runs around a stockd phase.
#[derive(Clone, Copy)]
enum PgTurn {
    Before,
    After,
}

/// PostgreSQL beside the daemon: one throwaway cluster, started before the daemon, that runs
/// the movement right before and right after each of stockd's movement phases at the same
/// connections. Each side leaves the machine with its dirty pages written: a CHECKPOINT after
/// each PostgreSQL run, the daemon's own checkpoint after its phase. The first failure stops
/// the cluster and is reported instead of its figures.
struct PgSide {
    cluster: Result<postgres::Cluster, String>,
    before: Vec<(usize, postgres::PgOutcome)>,
    after: Vec<(usize, postgres::PgOutcome)>,
}

impl PgSide {
    fn start(settings: &Settings) -> PgSide {
        let cluster = postgres::find()
            .map_err(|e| format!("not run: {e}"))
            .and_then(|install| {
                eprintln!("load bench: PostgreSQL: initdb and start of a throwaway cluster…");
                postgres::Cluster::start(install, settings.dir.as_deref())
            });
        PgSide {
            cluster,
            before: Vec::new(),
            after: Vec::new(),
        }
    }

    fn movements(&mut self, settings: &Settings, conns: usize, tck: f64, turn: PgTurn) {
        let Ok(cluster) = &self.cluster else {
            return;
        };
        eprintln!("load bench: PostgreSQL movement (one statement, pgbench), {conns} connections…");
        // Its dirty pages written before the machine goes to stockd's phase.
        let run = cluster.movements(conns, settings.warmup, settings.measure, tck);
        match run.and_then(|out| cluster.checkpoint().map(|()| out)) {
            Ok(out) => match turn {
                PgTurn::Before => self.before.push((conns, out)),
                PgTurn::After => self.after.push((conns, out)),
            },
            // Dropping the cluster stops it.
            Err(e) => self.cluster = Err(e),
        }
    }

    /// Stops the cluster; its runs before stockd's phases and its runs after them.
    fn finish(self) -> (Result<PgRun, String>, Result<PgRun, String>) {
        let mut cluster = match self.cluster {
            Ok(cluster) => cluster,
            Err(e) => return (Err(e.clone()), Err(e)),
        };
        if let Err(e) = cluster.stop() {
            return (Err(e.clone()), Err(e));
        }
        let run = |phases| PgRun {
            description: cluster.description.clone(),
            phases,
        };
        (Ok(run(self.before)), Ok(run(self.after)))
    }
}

/// PostgreSQL ran right before and right after each of stockd's movement phases: the table
/// takes the mean of the two runs for each figure, and the run lists both throughputs (how far
/// the machine moved around the phase).
fn merge_pg_before(before: &PgRun, inputs: &mut compare::Inputs) {
    let mean_us = |a: Option<u32>, b: Option<u32>| match (a, b) {
        (Some(a), Some(b)) => Some(((u64::from(a) + u64::from(b)) / 2) as u32),
        (a, b) => a.or(b),
    };
    let mut both = Vec::new();
    for m in inputs.pg.iter_mut() {
        let Some((_, b)) = before.phases.iter().find(|(conns, _)| *conns == m.conns) else {
            continue;
        };
        let after = m.rate;
        both.push(format!("{} → {} at {}", thousands(b.rate()), thousands(after), m.conns));
        m.rate = (after + b.rate()) / 2.0;
        m.p50_us = mean_us(m.p50_us, b.percentile(0.50));
        m.p99_us = mean_us(m.p99_us, b.percentile(0.99));
        if m.conns == CPU_TARGET_CONNS {
            inputs.pg_cpu_us = match (inputs.pg_cpu_us, b.cpu_us_per_movement()) {
                (Some(a), Some(b)) => Some((a + b) / 2.0),
                (a, b) => a.or(b),
            };
        }
    }
    println!(
        "- PostgreSQL ran right before and right after stockd's phase at the same connections (movements/s before → \
         after, at N connections): {}; the table takes the mean of the two runs",
        both.join(", ")
    );
}

/// What the side-by-side table is made of.
struct Measured<'a> {
    rows: &'a [Row],
    rss_peak_mib: Option<f64>,
    imported: &'a Res<import::Imported>,
    /// PostgreSQL before stockd's phases, and after them.
    pg_before: &'a Result<PgRun, String>,
    pg: &'a Result<PgRun, String>,
    sync_floor: &'a Res<Vec<u32>>,
}

fn print_side_by_side(settings: &Settings, tck: f64, measured: &Measured<'_>) {
    let Measured {
        rows,
        rss_peak_mib,
        imported,
        pg_before,
        pg,
        sync_floor,
    } = *measured;
    let find = |case: &str, conns: usize| rows.iter().find(|r| r.case == case && r.conns == conns);
    let movements: Vec<&Row> = PG_CONNS.iter().filter_map(|c| find(MOVEMENT_CASE, *c)).collect();
    let mut inputs = compare::Inputs {
        stockd: movements
            .iter()
            .map(|r| compare::Movements {
                conns: r.conns,
                rate: r.out.rate(),
                p50_us: r.out.percentile(0.50),
                p99_us: r.out.percentile(0.99),
            })
            .collect(),
        pg: Vec::new(),
        stockd_cpu_us: find(MOVEMENT_CASE, CPU_TARGET_CONNS).and_then(|r| r.out.daemon_cpu_us_per_ok(tck)),
        pg_cpu_us: None,
        reads: find(LEVEL_READ_CASE, 64).map(|r| r.out.rate()),
        bulk_lines: find(BULK_CASE, 4).map(|r| r.out.rate() * r.per_request),
        import_rows: imported.as_ref().ok().map(import::Imported::rate),
        rss_mib: rss_peak_mib,
        http_round_trip_p50_us: find(HTTP_ROUND_TRIP_CASE, 1).and_then(|r| r.out.percentile(0.50)),
        fdatasync_p50_us: sync_floor.as_ref().ok().and_then(|l| percentile(l, 0.50)),
        fdatasync_mean_us: sync_floor
            .as_ref()
            .ok()
            .filter(|l| !l.is_empty())
            .map(|l| l.iter().map(|&v| f64::from(v)).sum::<f64>() / l.len() as f64),
        log_sync_mean_us: find(MOVEMENT_CASE, 1).and_then(|r| r.out.log_sync_mean_us()),
    };
    println!("## Side by side with PostgreSQL (issue 11)");
    println!();
    println!(
        "- stockd: the phases above ({} HTTP workers, {:.1} s warm-up + {:.1} s measured); server CPU = the daemon's \
         /proc utime+stime over the measured window / movements answered in it",
        settings.workers,
        settings.warmup.as_secs_f64(),
        settings.measure.as_secs_f64()
    );
    match sync_floor {
        Ok(l) => println!(
            "- the disk's sync floor: {} overwrites of {SYNC_FLOOR_WRITE_BYTES} bytes + fdatasync of a preallocated \
             file beside the data file (what the redo log does per group), p50 {}, p99 {}",
            l.len(),
            latency(percentile(l, 0.50)),
            latency(percentile(l, 0.99))
        ),
        Err(e) => println!("- the disk's sync floor: not measured: {e}"),
    }
    match imported {
        Ok(i) => println!(
            "- import: `stockd import --kind stock` of {} rows into a fresh file (products and warehouses imported first) in {:.2} s, wall time of the process",
            i.rows,
            i.took.as_secs_f64()
        ),
        Err(e) => println!("- import: failed: {e}"),
    }
    match pg {
        Ok(run) => {
            println!(
                "- PostgreSQL: {}; throwaway cluster (initdb) on 127.0.0.1, shared/peers/pg schema (10,000 products × 4 \
                 warehouses), the movement as one statement (movement_cte.sql), pgbench -M prepared, -j 2 (-j 1 at 1 \
                 connection), same warm-up and measured window, after TRUNCATE + VACUUM + CHECKPOINT; latencies from \
                 pgbench's per-transaction log; server CPU = postmaster and all its processes",
                run.description
            );
            for (conns, out) in &run.phases {
                let cores = |x: Option<f64>| x.map(|c| format!("{c:.2}")).unwrap_or_else(|| "–".into());
                println!(
                    "- PostgreSQL at {conns} connection{} (its run after stockd's phase): server {} cores, pgbench {} cores, rest of machine {} cores; {} failed transactions",
                    if *conns == 1 { "" } else { "s" },
                    cores(out.cpu.server),
                    cores(out.cpu.client),
                    cores(out.rest_of_machine()),
                    out.failed
                );
                inputs.pg.push(compare::Movements {
                    conns: *conns,
                    rate: out.rate(),
                    p50_us: out.percentile(0.50),
                    p99_us: out.percentile(0.99),
                });
                if *conns == CPU_TARGET_CONNS {
                    inputs.pg_cpu_us = out.cpu_us_per_movement();
                }
            }
        }
        Err(e) => println!("- PostgreSQL: {e}; stockd's figures alone"),
    }
    if let (Ok(before), Ok(_)) = (pg_before, pg) {
        merge_pg_before(before, &mut inputs);
    }
    println!();
    compare::print(&inputs);
    println!();
    compare::print_one_connection(&inputs);
    println!();
    println!(
        "Ratios are stockd / PostgreSQL (throughput: higher is better; latency and CPU: lower is better). \
         Figures move ±30% between runs on this machine; only ratios from one run compare."
    );
}
