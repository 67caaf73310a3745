//! PostgreSQL side by side (issue 11): a throwaway cluster in a temp directory, the
//! movement of `shared/peers/pg` as one SQL statement, driven by pgbench the way
//! `shared/peers/pg_bench.sh` does it (`-M prepared`, `synchronous_commit=on`, `-j 2`, or
//! `-j 1` at one connection), over TCP on 127.0.0.1 only.
//!
//! The cluster is made with `initdb` in a fresh temp directory, listens on a free loopback
//! port with its unix socket in that directory, and is stopped (`pg_ctl stop -m fast`) when
//! the bench is done with it, also on error (Drop). The server refuses to run as root, so
//! as root every server command runs as `STOCKD_BENCH_PG_USER` (default `postgres`) through
//! `runuser`; psql and pgbench are clients and run as the bench's own user.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::Res;

/// The stock table: 10,000 products × 4 warehouses, as in `shared/peers/pg/schema.sql`.
const SCHEMA_SQL: &str = "
CREATE TABLE stock(
  product_id   text   NOT NULL,
  warehouse_id text   NOT NULL,
  on_hand      bigint NOT NULL,
  PRIMARY KEY (product_id, warehouse_id)
);
CREATE TABLE movements(
  id           bigserial PRIMARY KEY,
  product_id   text,
  warehouse_id text,
  kind         text,
  qty          bigint,
  before       bigint,
  after        bigint,
  note         text,
  created_at   timestamptz DEFAULT now()
);
INSERT INTO stock
  SELECT 'P' || p, 'W' || w, 1000000
  FROM generate_series(1, 10000) p, generate_series(1, 4) w;
VACUUM ANALYZE stock;
";

/// One durable movement as one statement: `shared/peers/pg/movement_cte.sql`.
const MOVEMENT_SQL: &str = "\\set p random(1, 10000)
\\set w random(1, 4)
\\set d random(-5, 5)
WITH s AS (UPDATE stock SET on_hand = on_hand + :d WHERE product_id = 'P' || :p::text AND warehouse_id = 'W' || :w::text RETURNING on_hand) INSERT INTO movements(product_id, warehouse_id, kind, qty, before, after, note) SELECT 'P' || :p::text, 'W' || :w::text, 'adjust', :d::bigint, s.on_hand - :d::bigint, s.on_hand, 'pgbench movement, ~100 byte journal row' FROM s;
";

/// initdb, start, stop, psql: each must finish within this.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// pg_ctl's own wait for start and stop (seconds).
const PG_CTL_WAIT_SECS: u32 = 60;
/// pgbench must exit this long after its `-T` ran out.
const PGBENCH_GRACE: Duration = Duration::from_secs(30);
/// pgbench runs this long past the measured window, so the window's last CPU sample is
/// taken while every backend is alive. (When the window ended with pgbench, its backends
/// exited during that sample: one reaped between the scan of the postmaster's children and
/// the read of the postmaster's own figures was counted twice, as a live child and in the
/// postmaster's reaped-children time: likely how run V measured 2.49 cores on 2 cores.)
const PGBENCH_TAIL_SECS: u64 = 1;
/// Poll interval while waiting for a child process.
const POLL: Duration = Duration::from_millis(20);
/// The executables the comparison needs, all in one directory.
const TOOLS: [&str; 5] = ["postgres", "initdb", "pg_ctl", "psql", "pgbench"];

/// Where PostgreSQL is and how to run its server.
pub struct Install {
    bin: PathBuf,
    /// `Some(user)` when the bench runs as root: the server runs as that user.
    run_as: Option<String>,
}

/// Finds PostgreSQL: `STOCKD_BENCH_PG_BIN`, else the directory of `postgres` on PATH (links
/// followed), else the newest `/usr/lib/postgresql/*/bin`. `Err` says why there is none.
pub fn find() -> Result<Install, String> {
    if std::env::var("STOCKD_BENCH_PG").is_ok_and(|v| v == "0") {
        return Err("skipped (STOCKD_BENCH_PG=0)".into());
    }
    let bin = match std::env::var_os("STOCKD_BENCH_PG_BIN") {
        Some(dir) => PathBuf::from(dir),
        None => on_path("postgres")
            .and_then(|p| std::fs::canonicalize(p).ok())
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .filter(|d| has_tools(d))
            .or_else(newest_debian_bin)
            .ok_or("no `postgres` on PATH and no /usr/lib/postgresql/*/bin")?,
    };
    if !has_tools(&bin) {
        return Err(format!("{} lacks one of {}", bin.display(), TOOLS.join(", ")));
    }
    let run_as = if effective_uid() == Some(0) {
        let user = std::env::var("STOCKD_BENCH_PG_USER").unwrap_or_else(|_| "postgres".into());
        let known = Command::new("id").arg("-u").arg(&user).output();
        if !known.is_ok_and(|o| o.status.success()) {
            return Err(format!(
                "running as root, and there is no user `{user}` to run the server as (set STOCKD_BENCH_PG_USER)"
            ));
        }
        if on_path("runuser").is_none() {
            return Err("running as root, and `runuser` is missing to run the server as another user".into());
        }
        Some(user)
    } else {
        None
    };
    Ok(Install { bin, run_as })
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

fn has_tools(dir: &Path) -> bool {
    TOOLS.iter().all(|t| dir.join(t).is_file())
}

fn newest_debian_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            has_tools(&bin).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Runs `cmd` with stdout and stderr to `out`, killed after `timeout`; its output on success.
fn run_bounded(mut cmd: Command, out: &Path, timeout: Duration, what: &str) -> Res<String> {
    let file = std::fs::File::create(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let err = file.try_clone().map_err(|e| format!("{}: {e}", out.display()))?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(err))
        .spawn()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    let status = wait_bounded(&mut child, timeout, what)?;
    let text = std::fs::read_to_string(out).unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!("{what} failed ({status}):\n{}", tail.join("\n")));
    }
    Ok(text)
}

fn wait_bounded(child: &mut Child, timeout: Duration, what: &str) -> Res<std::process::ExitStatus> {
    let t0 = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if t0.elapsed() < timeout => std::thread::sleep(POLL),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what} did not finish within {} s; killed", timeout.as_secs()));
            }
            Err(e) => return Err(format!("waiting for {what}: {e}")),
        }
    }
}

/// A free loopback port: bound, read, released (a race with another process is possible
/// but unlikely; the start fails clearly if it happens).
fn free_port() -> Res<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free loopback port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// A running throwaway cluster with the `bench` database seeded.
pub struct Cluster {
    install: Install,
    dir: tempfile::TempDir,
    data: PathBuf,
    port: u16,
    postmaster: u32,
    running: bool,
    /// `select version()` and the durability settings, one line.
    pub description: String,
}

impl Cluster {
    pub fn start(install: Install, parent: Option<&Path>) -> Res<Cluster> {
        let dir = match parent {
            Some(d) => tempfile::Builder::new().prefix("stockd-bench-pg-").tempdir_in(d),
            None => tempfile::Builder::new().prefix("stockd-bench-pg-").tempdir(),
        }
        .map_err(|e| format!("cannot create a temp directory: {e}"))?;
        if let Some(user) = &install.run_as {
            let mut chown = Command::new("chown");
            chown.arg(format!("{user}:")).arg(dir.path());
            run_bounded(chown, &dir.path().join("chown.out"), COMMAND_TIMEOUT, "chown")?;
        }
        let data = dir.path().join("data");
        let port = free_port()?;
        let mut cluster = Cluster {
            install,
            data,
            port,
            postmaster: 0,
            running: false,
            description: String::new(),
            dir,
        };
        cluster.init_and_start()?;
        cluster.seed()?;
        Ok(cluster)
    }

    /// A server command, run as the server's user when the bench is root.
    fn server_command(&self, tool: &str) -> Command {
        let exe = self.install.bin.join(tool);
        match &self.install.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(user).arg("--").arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    fn log(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn init_and_start(&mut self) -> Res<()> {
        let mut initdb = self.server_command("initdb");
        // --no-sync: the cluster's initial files need not reach the disk; every commit of
        // the measured phases still does (fsync=on, synchronous_commit=on).
        initdb.arg("-D").arg(&self.data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        run_bounded(initdb, &self.log("initdb.log"), COMMAND_TIMEOUT, "initdb")?;
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories='{}' -c fsync=on -c synchronous_commit=on",
            self.port,
            self.dir.path().display()
        );
        let mut start = self.server_command("pg_ctl");
        start
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.log("server.log"))
            .args(["-w", "-t", &PG_CTL_WAIT_SECS.to_string(), "-o", &options, "start"]);
        // Marked running first: a start that timed out may still leave a postmaster behind.
        self.running = true;
        run_bounded(start, &self.log("pg_ctl-start.log"), COMMAND_TIMEOUT, "pg_ctl start").map_err(|e| {
            format!(
                "{e}\nend of the server log:\n{}",
                super::log_tail(&self.log("server.log"))
            )
        })?;
        let pid_file = std::fs::read_to_string(self.data.join("postmaster.pid")).unwrap_or_default();
        self.postmaster = pid_file
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or("cannot read the postmaster's pid from postmaster.pid")?;
        Ok(())
    }

    fn psql(&self, db: &str, args: &[&str]) -> Res<String> {
        let mut c = Command::new(self.install.bin.join("psql"));
        c.env("PGOPTIONS", "-c client_min_messages=warning")
            .args([
                "-X",
                "-q",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-d")
            .arg(db)
            .args(args);
        run_bounded(c, &self.log("psql.out"), COMMAND_TIMEOUT, "psql")
    }

    fn seed(&mut self) -> Res<()> {
        self.psql("postgres", &["-c", "CREATE DATABASE bench"])?;
        let schema = self.log("schema.sql");
        std::fs::write(&schema, SCHEMA_SQL).map_err(|e| format!("cannot write {}: {e}", schema.display()))?;
        let schema_arg = schema.to_string_lossy().into_owned();
        self.psql("bench", &["-f", &schema_arg])?;
        let rows = self.psql("bench", &["-c", "select count(*) from stock"])?;
        if rows.trim() != "40000" {
            return Err(format!(
                "PostgreSQL seed: expected 40000 stock rows, got `{}`",
                rows.trim()
            ));
        }
        let about = self.psql(
            "bench",
            &[
                "-c",
                "select split_part(version(), ' on ', 1)",
                "-c",
                "select string_agg(name || '=' || current_setting(name), ', ' order by name) from pg_settings \
                 where name in ('fsync','synchronous_commit','wal_sync_method','shared_buffers','max_connections','commit_delay')",
            ],
        )?;
        self.description = about.lines().collect::<Vec<_>>().join("; ");
        Ok(())
    }

    /// A CHECKPOINT: the dirty pages of the last run written out.
    pub fn checkpoint(&self) -> Res<()> {
        self.psql("bench", &["-c", "CHECKPOINT"]).map(|_| ())
    }

    /// pgbench with the one-statement movement over `conns` connections for warm-up +
    /// measure (rounded up to whole seconds: pgbench's `-T`) + `PGBENCH_TAIL_SECS`; figures
    /// over the measured window only, like the stockd phases.
    pub fn movements(&self, conns: usize, warmup: Duration, measure: Duration, tck: f64) -> Res<PgOutcome> {
        // As pg_bench.sh: every cell starts from an empty journal and a checkpoint.
        self.psql(
            "bench",
            &[
                "-c",
                "TRUNCATE movements RESTART IDENTITY",
                "-c",
                "VACUUM ANALYZE stock",
                "-c",
                "CHECKPOINT",
            ],
        )?;
        let script = self.log("movement.sql");
        std::fs::write(&script, MOVEMENT_SQL).map_err(|e| format!("cannot write {}: {e}", script.display()))?;
        let logs = self.dir.path().join(format!("pgbench-c{conns}"));
        let _ = std::fs::remove_dir_all(&logs);
        std::fs::create_dir_all(&logs).map_err(|e| format!("cannot create {}: {e}", logs.display()))?;
        let secs = (warmup + measure).as_secs_f64().ceil().max(1.0) as u64 + PGBENCH_TAIL_SECS;
        let threads = if conns < 2 { 1 } else { 2 };
        let out_path = logs.join("pgbench.out");
        let out = std::fs::File::create(&out_path).map_err(|e| format!("{}: {e}", out_path.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let start_wall = SystemTime::now();
        let start = Instant::now();
        let mut child = Command::new(self.install.bin.join("pgbench"))
            .env_remove("PGOPTIONS")
            .args(["-n", "-M", "prepared", "-h", "127.0.0.1", "-U", "postgres", "-l"])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-c")
            .arg(conns.to_string())
            .arg("-j")
            .arg(threads.to_string())
            .arg("-T")
            .arg(secs.to_string())
            .arg("-f")
            .arg(&script)
            .arg(format!("--log-prefix={}", logs.join("tx").display()))
            .arg("bench")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|e| format!("cannot run pgbench: {e}"))?;
        let measure_from = start + warmup;
        let end = measure_from + measure;
        let client_stat = PathBuf::from(format!("/proc/{}/stat", child.id()));
        let sample = || Ticks {
            server: self.server_ticks(),
            client: super::proc_ticks(&client_stat),
            machine: super::machine_busy_ticks(),
        };
        sleep_until(measure_from);
        let before = sample();
        sleep_until(end);
        let after = sample();
        let status = wait_bounded(&mut child, Duration::from_secs(secs) + PGBENCH_GRACE, "pgbench")?;
        let report = std::fs::read_to_string(&out_path).unwrap_or_default();
        if !status.success() {
            return Err(format!("pgbench failed ({status}):\n{}", report.trim()));
        }
        let epoch_us = |t: SystemTime| t.duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0);
        let from_us = epoch_us(start_wall + warmup);
        let to_us = from_us + measure.as_micros() as u64;
        let mut outcome = read_tx_logs(&logs, from_us, to_us)?;
        outcome.window = measure;
        let cores = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?) as f64 / tck / measure.as_secs_f64());
        outcome.cpu = PgCpu {
            server: cores(before.server, after.server),
            client: cores(before.client, after.client),
            machine: cores(before.machine, after.machine),
        };
        let _ = std::fs::remove_dir_all(&logs);
        Ok(outcome)
    }

    /// CPU ticks of the server: the postmaster (with its reaped children) and every live
    /// child process (backends, WAL writer, checkpointer…).
    fn server_ticks(&self) -> Option<u64> {
        let mut total = 0;
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if pid == self.postmaster {
                continue;
            }
            if let Some(f) = stat_fields(pid).filter(|f| f.ppid == self.postmaster) {
                total += f.own;
            }
        }
        let pm = stat_fields(self.postmaster)?;
        Some(total + pm.own + pm.children)
    }

    /// `pg_ctl stop -m fast`; then SIGKILL of the postmaster if it is still there.
    pub fn stop(&mut self) -> Res<()> {
        if !self.running {
            return Ok(());
        }
        self.running = false;
        let mut stop = self.server_command("pg_ctl");
        stop.arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "-t", &PG_CTL_WAIT_SECS.to_string(), "stop"]);
        let result = run_bounded(stop, &self.log("pg_ctl-stop.log"), COMMAND_TIMEOUT, "pg_ctl stop").map(|_| ());
        if result.is_err() && self.postmaster != 0 {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(self.postmaster.to_string())
                .status();
        }
        result
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

struct StatFields {
    ppid: u32,
    /// utime + stime.
    own: u64,
    /// cutime + cstime: children that exited and were waited for.
    children: u64,
}

fn stat_fields(pid: u32) -> Option<StatFields> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After `(comm)`: state, ppid, …, utime (12th), stime, cutime, cstime.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok());
    Some(StatFields {
        ppid: n(1)? as u32,
        own: n(11)? + n(12)?,
        children: n(13)? + n(14)?,
    })
}

/// CPU ticks at one end of the measured window.
struct Ticks {
    server: Option<u64>,
    client: Option<u64>,
    machine: Option<u64>,
}

/// Cores busy over the measured window.
#[derive(Default)]
pub struct PgCpu {
    /// The server: postmaster and all its processes.
    pub server: Option<f64>,
    /// pgbench.
    pub client: Option<f64>,
    /// All CPUs (/proc/stat), to see what else ran.
    pub machine: Option<f64>,
}

/// What pgbench did in the measured window.
pub struct PgOutcome {
    pub ok: u64,
    pub failed: u64,
    /// Sorted.
    pub latencies_us: Vec<u32>,
    pub window: Duration,
    pub cpu: PgCpu,
}

impl PgOutcome {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }

    pub fn percentile(&self, q: f64) -> Option<u32> {
        super::percentile(&self.latencies_us, q)
    }

    /// Server CPU per movement in µs.
    pub fn cpu_us_per_movement(&self) -> Option<f64> {
        let cores = self.cpu.server.filter(|_| self.ok > 0)?;
        Some(cores * self.window.as_secs_f64() * 1e6 / self.ok as f64)
    }

    /// Busy cores that were neither the server nor pgbench.
    pub fn rest_of_machine(&self) -> Option<f64> {
        Some((self.cpu.machine? - self.cpu.server? - self.cpu.client?).max(0.0))
    }
}

/// Reads pgbench's per-transaction logs (`client tx latency_us script epoch_s epoch_us`, one
/// file per thread): transactions that began at or after `from_us` and ended by `to_us`.
fn read_tx_logs(dir: &Path, from_us: u64, to_us: u64) -> Res<PgOutcome> {
    let mut out = PgOutcome {
        ok: 0,
        failed: 0,
        latencies_us: Vec::new(),
        window: Duration::ZERO,
        cpu: PgCpu::default(),
    };
    let mut files = 0;
    for entry in std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
    {
        if !entry.file_name().to_string_lossy().starts_with("tx.") {
            continue;
        }
        files += 1;
        let text = std::fs::read_to_string(entry.path()).map_err(|e| format!("{}: {e}", entry.path().display()))?;
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let num = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok());
            let (Some(secs), Some(us)) = (num(4), num(5)) else {
                continue;
            };
            let done = secs * 1_000_000 + us;
            // A failed or skipped transaction has a word in place of its latency.
            let Some(latency) = num(2) else {
                if done >= from_us && done <= to_us {
                    out.failed += 1;
                }
                continue;
            };
            if done <= to_us && done.saturating_sub(latency) >= from_us {
                out.ok += 1;
                out.latencies_us.push(latency.min(u32::MAX as u64) as u32);
            }
        }
    }
    if files == 0 {
        return Err(format!("pgbench wrote no transaction log in {}", dir.display()));
    }
    out.latencies_us.sort_unstable();
    Ok(out)
}
