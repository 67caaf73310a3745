//! The test harness: the real daemon, in-process on port 0 with a temp data file
//! (Meilisearch's `Server`), a tiny blocking HTTP/1.1 client, and the real binary for
//! the crash test.
//!
//! The client is hand-written over `std::net::TcpStream` on purpose: no HTTP client crate
//! is a dev-dependency, and a raw client lets the tests send what a real client never
//! would (malformed JSON, lying or oversize bodies).

#![allow(dead_code)] // each test module uses a different part of the harness

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long any single HTTP exchange may take before the test gives up (a hang guard,
/// not a performance assertion).
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a daemon may take to start before the test gives up.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// HTTP client
// ---------------------------------------------------------------------------------------

/// One HTTP answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names lowercased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The body as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}); status {}: {}", self.status, self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    /// `code` of a problem+json answer.
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_string()
    }

    /// Asserts the status, with the body in the message.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.body);
        self
    }

    /// Asserts a problem+json error with this status and code.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> &Self {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.body);
        let ct = self.header("content-type").unwrap_or_default();
        assert!(
            ct.starts_with("application/problem+json"),
            "content-type `{ct}`; body: {}",
            self.body
        );
        let v = self.json();
        assert_eq!(v["code"], code, "unexpected code; body: {}", self.body);
        assert_eq!(v["status"], status, "problem status; body: {}", self.body);
        for field in ["type", "title", "detail"] {
            assert!(v[field].is_string(), "problem without `{field}`: {}", self.body);
        }
        self
    }

    /// `data` of a JSON answer.
    pub fn data(&self) -> Value {
        self.json()["data"].clone()
    }
}

/// A raw request: method, path-and-query, extra headers, body bytes.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// Send the body with `Transfer-Encoding: chunked` instead of `Content-Length`.
    pub chunked: bool,
}

impl<'a> Request<'a> {
    pub fn new(method: &'a str, path: &'a str) -> Self {
        Request {
            method,
            path,
            headers: Vec::new(),
            body: None,
            chunked: false,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn bearer(self, token: Option<&str>) -> Self {
        match token {
            Some(t) => self.header("Authorization", &format!("Bearer {t}")),
            None => self,
        }
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    pub fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }
}

/// Sends one request on a fresh connection (`Connection: close`) and reads the answer to EOF.
pub fn send(addr: SocketAddr, req: &Request<'_>) -> std::io::Result<Response> {
    send_on(TcpStream::connect_timeout(&addr, IO_TIMEOUT)?, addr, req)
}

/// [`send`] from another loopback address (`127.0.0.2` …): the daemon sees another client.
pub fn send_from(local: std::net::IpAddr, addr: SocketAddr, req: &Request<'_>) -> std::io::Result<Response> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let stream = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(local, 0))?;
        let stream = tokio::time::timeout(IO_TIMEOUT, socket.connect(addr))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect"))??;
        stream.into_std()
    })?;
    stream.set_nonblocking(false)?;
    send_on(stream, addr, req)
}

fn send_on(mut stream: TcpStream, addr: SocketAddr, req: &Request<'_>) -> std::io::Result<Response> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_nodelay(true)?;
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: */*\r\n",
        req.method, req.path
    );
    let has_ct = req.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    if req.body.is_some() && !has_ct {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in &req.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let mut wire = Vec::new();
    match (&req.body, req.chunked) {
        (Some(body), true) => {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
            wire.extend_from_slice(head.as_bytes());
            for chunk in body.chunks(1000) {
                wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                wire.extend_from_slice(chunk);
                wire.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b"0\r\n\r\n");
        }
        (Some(body), false) => {
            head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
            wire.extend_from_slice(head.as_bytes());
            wire.extend_from_slice(body);
        }
        (None, _) => {
            if matches!(req.method, "POST" | "PUT" | "PATCH") {
                head.push_str("Content-Length: 0\r\n");
            }
            head.push_str("\r\n");
            wire.extend_from_slice(head.as_bytes());
        }
    }
    // The server may answer early (401, 413) and close before reading the whole body:
    // a failed write is not the end, the answer may already be on its way.
    let write_result = stream.write_all(&wire).and_then(|()| stream.flush());
    let mut raw = Vec::new();
    let read_result = stream.read_to_end(&mut raw);
    if raw.is_empty() {
        write_result?;
        read_result?;
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "empty answer"));
    }
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> std::io::Result<Response> {
    let bad = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| bad("head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("no status line"))?;
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let mut headers = Vec::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let rest = &raw[split + 4..];
    let find = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let body: Vec<u8> = if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        dechunk(rest).ok_or_else(|| bad("bad chunked body"))?
    } else if let Some(len) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        if rest.len() < len {
            return Err(bad("body shorter than Content-Length"));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Percent-encodes a query parameter value.
pub fn enc(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Talks to one daemon, with an optional default bearer token.
#[derive(Debug, Clone)]
pub struct Client {
    pub addr: SocketAddr,
    pub token: Option<String>,
}

impl Client {
    pub fn new(addr: SocketAddr, token: Option<String>) -> Client {
        Client { addr, token }
    }

    /// The same daemon with another default token (`None`: no Authorization header).
    pub fn with_token(&self, token: Option<&str>) -> Client {
        Client {
            addr: self.addr,
            token: token.map(str::to_string),
        }
    }

    /// Sends a raw request; panics on I/O errors and on any 5xx (the daemon never answers
    /// 5xx to anything these tests send).
    #[track_caller]
    pub fn raw(&self, req: Request<'_>) -> Response {
        let res = send(self.addr, &req)
            .unwrap_or_else(|e| panic!("{} {}: no answer from {}: {e}", req.method, req.path, self.addr));
        assert!(
            res.status < 500,
            "{} {} answered {}: {}",
            req.method,
            req.path,
            res.status,
            res.body
        );
        res
    }

    /// A request with the default token (if any).
    pub fn request<'a>(&self, method: &'a str, path: &'a str) -> Request<'a> {
        Request::new(method, path).bearer(self.token.as_deref())
    }

    #[track_caller]
    pub fn get(&self, path: &str) -> Response {
        self.raw(self.request("GET", path))
    }

    #[track_caller]
    pub fn post(&self, path: &str, body: Value) -> Response {
        self.raw(self.request("POST", path).body(body.to_string()))
    }

    #[track_caller]
    pub fn put(&self, path: &str, body: Value) -> Response {
        self.raw(self.request("PUT", path).body(body.to_string()))
    }

    #[track_caller]
    pub fn patch(&self, path: &str, body: Value) -> Response {
        self.raw(self.request("PATCH", path).body(body.to_string()))
    }

    #[track_caller]
    pub fn delete(&self, path: &str) -> Response {
        self.raw(self.request("DELETE", path))
    }

    #[track_caller]
    pub fn get_as(&self, token: Option<&str>, path: &str) -> Response {
        self.raw(Request::new("GET", path).bearer(token))
    }

    #[track_caller]
    pub fn post_as(&self, token: Option<&str>, path: &str, body: Value) -> Response {
        self.raw(Request::new("POST", path).bearer(token).body(body.to_string()))
    }

    #[track_caller]
    pub fn put_as(&self, token: Option<&str>, path: &str, body: Value) -> Response {
        self.raw(Request::new("PUT", path).bearer(token).body(body.to_string()))
    }

    #[track_caller]
    pub fn delete_as(&self, token: Option<&str>, path: &str) -> Response {
        self.raw(Request::new("DELETE", path).bearer(token))
    }

    #[track_caller]
    pub fn patch_as(&self, token: Option<&str>, path: &str, body: Value) -> Response {
        self.raw(Request::new("PATCH", path).bearer(token).body(body.to_string()))
    }

    // ---- helpers that read like the scenario ----

    /// PUT a product with sku `SKU-<id>` and name `Product <id>`; 201 or 200.
    #[track_caller]
    pub fn product(&self, id: &str) -> Value {
        let res = self.put(
            &format!("/api/products/{id}"),
            json!({"sku": format!("SKU-{id}"), "name": format!("Product {id}")}),
        );
        assert!(
            matches!(res.status, 200 | 201),
            "PUT product {id}: {} {}",
            res.status,
            res.body
        );
        res.data()
    }

    /// PUT a warehouse named `Warehouse <id>`; 201 or 200.
    #[track_caller]
    pub fn warehouse(&self, id: &str) -> Value {
        let res = self.put(
            &format!("/api/warehouses/{id}"),
            json!({"name": format!("Warehouse {id}")}),
        );
        assert!(
            matches!(res.status, 200 | 201),
            "PUT warehouse {id}: {} {}",
            res.status,
            res.body
        );
        res.data()
    }

    /// POST an `in` movement; asserts 201 and returns `data`.
    #[track_caller]
    pub fn stock(&self, product: &str, warehouse: &str, quantity: i64) -> Value {
        self.movement(product, warehouse, "in", quantity)
    }

    /// POST a movement of `kind`; asserts 201 and returns `data`.
    #[track_caller]
    pub fn movement(&self, product: &str, warehouse: &str, kind: &str, quantity: i64) -> Value {
        let res = self.post(
            "/api/inventory/movements",
            json!({"product_id": product, "warehouse_id": warehouse, "movement_type": kind, "quantity": quantity}),
        );
        res.expect(201);
        res.data()
    }

    /// The level row of a product in a warehouse (`Value::Null` when it has none).
    #[track_caller]
    pub fn level(&self, product: &str, warehouse: &str) -> Value {
        let res = self.get(&format!(
            "/api/inventory?product_id={}&warehouse_id={}",
            enc(product),
            enc(warehouse)
        ));
        res.expect(200);
        let rows = res.data();
        let rows = rows.as_array().expect("data is a list");
        assert!(
            rows.len() <= 1,
            "two level rows for one product and warehouse: {}",
            res.body
        );
        rows.first().cloned().unwrap_or(Value::Null)
    }

    /// `quantity_on_hand` of a product in a warehouse (0 when it has no level yet).
    #[track_caller]
    pub fn on_hand(&self, product: &str, warehouse: &str) -> i64 {
        let level = self.level(product, warehouse);
        if level.is_null() {
            return 0;
        }
        level["quantity_on_hand"]
            .as_i64()
            .expect("quantity_on_hand is an integer")
    }

    /// Number of journal entries: `meta.total` of the movement list, plus the entries it
    /// lists only when asked by kind (holds and buffer changes, which move no on_hand).
    #[track_caller]
    pub fn journal_len(&self) -> u64 {
        ["", "&kind=reserve", "&kind=release", "&kind=buffer"]
            .iter()
            .map(|filter| {
                let res = self.get(&format!("/api/inventory/movements?limit=1{filter}"));
                res.expect(200);
                res.json()["meta"]["total"].as_u64().expect("meta.total is a number")
            })
            .sum()
    }

    /// Asserts `GET /admin/verify` reports ok.
    #[track_caller]
    pub fn assert_verified(&self) -> Value {
        let res = self.get("/admin/verify");
        res.expect(200);
        let report = res.data();
        assert_eq!(report["ok"], true, "verify: {}", res.body);
        report
    }

    /// Follows `meta.next_cursor` from `path` (which must already carry `?` parameters)
    /// and returns every row in order; panics after `pages_max` pages.
    #[track_caller]
    pub fn walk_cursor(&self, path: &str, pages_max: usize) -> Vec<Value> {
        let mut rows = Vec::new();
        let mut url = path.to_string();
        for _ in 0..pages_max {
            let res = self.get(&url);
            res.expect(200);
            let v = res.json();
            rows.extend(v["data"].as_array().expect("data is a list").iter().cloned());
            match v["meta"]["next_cursor"].as_str() {
                Some(c) => {
                    assert_eq!(
                        v["meta"]["hasMore"], true,
                        "a next_cursor without hasMore: {}",
                        res.body
                    );
                    url = format!("{path}&cursor={}", enc(c));
                }
                None => {
                    assert_eq!(
                        v["meta"]["hasMore"], false,
                        "hasMore without a next_cursor: {}",
                        res.body
                    );
                    return rows;
                }
            }
        }
        panic!("{path}: more than {pages_max} pages");
    }
}

// ---------------------------------------------------------------------------------------
// In-process server
// ---------------------------------------------------------------------------------------

/// A daemon running in this process on its own thread and actix System, on port 0 with a
/// data file in a fresh temp dir. Dropping it stops the server and closes the store.
pub struct Server {
    pub client: Client,
    pub data: PathBuf,
    pub dir: tempfile::TempDir,
    handle: Option<actix_web::dev::ServerHandle>,
    store: Option<stockd::store::Store>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::ops::Deref for Server {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

/// `toml` with `[server] listen` and `[storage] path` set (and `workers = 1` unless given).
pub fn test_config(toml_text: &str, data: &Path) -> String {
    let mut table: toml::Table = toml_text.parse().expect("test TOML parses");
    let server = table
        .entry("server")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .expect("[server] is a table");
    server.insert("listen".into(), toml::Value::String("127.0.0.1:0".into()));
    server.entry("workers").or_insert(toml::Value::Integer(1));
    let storage = table
        .entry("storage")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .expect("[storage] is a table");
    storage.insert(
        "path".into(),
        toml::Value::String(data.to_str().expect("temp path is UTF-8").to_string()),
    );
    toml::to_string(&table).expect("test TOML renders")
}

/// Starts `stockd::start` on a dedicated thread inside its own actix System.
/// Returns the address, the server handle, the store and the thread.
type Started = (
    SocketAddr,
    actix_web::dev::ServerHandle,
    stockd::store::Store,
    std::thread::JoinHandle<()>,
);

pub fn start_in_process(config: stockd::config::Config) -> Result<Started, stockd::StartError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("stockd-test-server".into())
        .spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                match stockd::start(&config) {
                    Ok(daemon) => {
                        let started = (daemon.addr, daemon.server.handle(), daemon.store.clone());
                        if tx.send(Ok(started)).is_ok() {
                            let _ = daemon.server.await;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        })
        .expect("spawn the server thread");
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(Ok((addr, handle, store))) => Ok((addr, handle, store, thread)),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(e) => panic!("the daemon did not start within {START_TIMEOUT:?}: {e}"),
    }
}

impl Server {
    /// A daemon configured by `toml` (listen and data path are set here).
    /// The default client token is `None`: use [`Server::start_with_token`] with tokens.
    pub fn start(toml_text: &str) -> Server {
        Server::start_with_token(toml_text, None)
    }

    /// A daemon configured by `toml`, whose helpers send `token`.
    pub fn start_with_token(toml_text: &str, token: Option<&str>) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("stockd.redb");
        let text = test_config(toml_text, &data);
        let config = stockd::config::Config::parse(&text).unwrap_or_else(|e| panic!("config: {e}\n{text}"));
        let (addr, handle, store, thread) =
            start_in_process(config).unwrap_or_else(|e| panic!("stockd::start failed: {e}"));
        Server {
            client: Client::new(addr, token.map(str::to_string)),
            data,
            dir,
            handle: Some(handle),
            store: Some(store),
            thread: Some(thread),
        }
    }

    /// Open mode: no credentials, loopback.
    pub fn open() -> Server {
        Server::start("")
    }

    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The running daemon's store: for setting up more state than HTTP makes quickly
    /// (its writer is the one HTTP writes go through).
    pub fn store(&self) -> &stockd::store::Store {
        self.store.as_ref().expect("the daemon is running")
    }
}

impl Server {
    /// Stops the daemon and closes the data file, keeping the temp dir (and the file)
    /// until the `Server` is dropped. Idempotent.
    pub fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            // `stop` sends the command at once; its future only waits for completion.
            drop(handle.stop(true));
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(store) = self.store.take() {
            store.shutdown();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------
// The real binary (crash test)
// ---------------------------------------------------------------------------------------

pub const BIN: &str = env!("CARGO_BIN_EXE_stockd");

/// A `stockd serve` child process in open mode on 127.0.0.1:0.
pub struct Binary {
    child: Child,
    pub client: Client,
    pub data: PathBuf,
    stderr: Arc<Mutex<String>>,
    /// With [`Binary::start_stalled_stderr`]: the read end of stderr, open and never read.
    _stalled_stderr: Option<std::process::ChildStderr>,
}

/// `serve --listen 127.0.0.1:0 --data FILE`.
fn serve_args(data: &Path) -> [&std::ffi::OsStr; 5] {
    [
        "serve".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
    ]
}

impl std::ops::Deref for Binary {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Binary {
    /// Starts `stockd serve --listen 127.0.0.1:0 --data FILE` and waits for its
    /// `stockd listening on http://ADDR` line.
    pub fn start(data: &Path) -> Binary {
        Binary::start_env(data, &[])
    }

    /// [`Binary::start`] with extra environment variables.
    pub fn start_env(data: &Path, envs: &[(&str, &std::ffi::OsStr)]) -> Binary {
        Binary::start_args(&serve_args(data), data, envs)
    }

    /// [`Binary::start_env`] whose stderr is a pipe nobody reads: once the pipe is full,
    /// every write to it blocks (a stalled journald).
    pub fn start_stalled_stderr(data: &Path, envs: &[(&str, &std::ffi::OsStr)]) -> Binary {
        Binary::spawn(&serve_args(data), data, envs, false)
    }

    /// [`Binary::start`] with a config file (`--data` still names the data file).
    pub fn start_config(data: &Path, config: &Path) -> Binary {
        let args: [&std::ffi::OsStr; 7] = [
            "serve".as_ref(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--data".as_ref(),
            data.as_os_str(),
            "--config".as_ref(),
            config.as_os_str(),
        ];
        Binary::start_args(&args, data, &[])
    }

    /// `stockd ARGS` (a `serve` that prints `stockd listening on http[s]://ADDR`); `data`
    /// is the data file it serves.
    pub fn start_args(args: &[&std::ffi::OsStr], data: &Path, envs: &[(&str, &std::ffi::OsStr)]) -> Binary {
        Binary::spawn(args, data, envs, true)
    }

    fn spawn(args: &[&std::ffi::OsStr], data: &Path, envs: &[(&str, &std::ffi::OsStr)], read_stderr: bool) -> Binary {
        let mut child = Command::new(BIN)
            .args(args)
            .env_remove("STOCKD_CONFIG")
            .env_remove("STOCKD_LISTEN")
            .env_remove("STOCKD_DATA")
            .env("RUST_LOG", "warn")
            // After the defaults, so a test may set RUST_LOG or STOCKD_CONFIG.
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn stockd serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let err_pipe = child.stderr.take().expect("stderr pipe");
        let sink = stderr.clone();
        let stalled_stderr = if read_stderr {
            std::thread::spawn(move || {
                for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                    if let Ok(mut s) = sink.lock() {
                        s.push_str(&line);
                        s.push('\n');
                    }
                }
            });
            None
        } else {
            Some(err_pipe)
        };
        let out_pipe = child.stdout.take().expect("stdout pipe");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(out_pipe).lines().map_while(Result::ok) {
                if !sent {
                    let rest = line
                        .strip_prefix("stockd listening on http://")
                        .or_else(|| line.strip_prefix("stockd listening on https://"));
                    if let Some(rest) = rest {
                        let addr = rest.split_whitespace().next().unwrap_or_default().to_string();
                        sent = tx.send(addr).is_ok();
                    }
                }
            }
        });
        let addr = match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                let err = stderr.lock().map(|s| s.clone()).unwrap_or_default();
                panic!("stockd serve did not report its address ({status:?}); stderr:\n{err}");
            }
        };
        let addr: SocketAddr = addr
            .parse()
            .unwrap_or_else(|e| panic!("listening address `{addr}`: {e}"));
        Binary {
            child,
            client: Client::new(addr, None),
            data: data.to_path_buf(),
            stderr,
            _stalled_stderr: stalled_stderr,
        }
    }

    /// SIGTERM, then waits for the exit (SIGKILL after `START_TIMEOUT`, a hang guard).
    pub fn terminate(mut self) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }

    /// Sends a signal by name (`HUP`, `TERM`…) and does not wait.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args([&format!("-{name}"), &pid]).status();
        assert!(sent.as_ref().is_ok_and(|s| s.success()), "kill -{name} {pid}: {sent:?}");
    }

    /// SIGKILL (`Child::kill` on Unix) and reap it.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// What the daemon writes to stderr, still filling after the daemon is gone.
    pub fn stderr_handle(&self) -> Arc<Mutex<String>> {
        self.stderr.clone()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Output of a finished `stockd` command.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `stockd ARGS` to completion (killing it after `timeout`, a hang guard).
pub fn run_bin(args: &[&std::ffi::OsStr], timeout: Duration) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("STOCKD_CONFIG")
        .env_remove("STOCKD_LISTEN")
        .env_remove("STOCKD_DATA")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn stockd");
    let mut out_pipe = child.stdout.take().expect("stdout pipe");
    let mut err_pipe = child.stderr.take().expect("stderr pipe");
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    let status = status.unwrap_or_else(|| panic!("stockd {args:?} did not exit within {timeout:?}; stderr:\n{stderr}"));
    Output {
        code: status.code(),
        stdout,
        stderr,
    }
}

/// `stockd verify --data FILE`.
pub fn verify(data: &Path) -> Output {
    run_bin(
        &["verify".as_ref(), "--data".as_ref(), data.as_os_str()],
        Duration::from_secs(120),
    )
}

/// A `[[tokens]]` entry for `token` with these scopes, restricted to `warehouses` if given.
pub fn token_toml(name: &str, token: &str, scopes: &[&str], warehouses: Option<&[&str]>) -> String {
    let quoted = |items: &[&str]| items.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ");
    let mut t = format!(
        "[[tokens]]\nname = {name:?}\nsha256 = \"{}\"\nscopes = [{}]\n",
        stockd::auth::sha256_hex(token.as_bytes()),
        quoted(scopes)
    );
    if let Some(ws) = warehouses {
        t.push_str(&format!("warehouses = [{}]\n", quoted(ws)));
    }
    t
}
