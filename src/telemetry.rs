//! Metrics (Prometheus, through the `metrics` facade) and request logs (`tracing`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::HttpMessage;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "stockd_http_requests_total";
pub const HTTP_SECONDS: &str = "stockd_http_request_duration_seconds";
pub const QUEUE_DEPTH: &str = "stockd_writer_queue_depth";
pub const WRITER_TIME: &str = "stockd_writer_time_microseconds_total";
pub const COMMIT_COMMANDS: &str = "stockd_commit_batch_commands";
pub const COMMIT_SECONDS: &str = "stockd_commit_duration_seconds";
pub const COMMIT_FAILURES: &str = "stockd_commit_failures_total";
pub const CHECKPOINTS: &str = "stockd_checkpoints_total";
pub const LOG_SYNC_SECONDS: &str = "stockd_log_sync_duration_seconds";
pub const LOG_FAILURES: &str = "stockd_log_failures_total";
pub const WRITER_PANICS: &str = "stockd_writer_panics_total";
pub const JOURNAL_SEQ: &str = "stockd_journal_seq";
pub const DATA_FILE_BYTES: &str = "stockd_data_file_bytes";
pub const BACKUPS: &str = "stockd_backups_total";
pub const LAST_BACKUP_SECONDS: &str = "stockd_last_backup_timestamp_seconds";
pub const AUTH_FAILURES: &str = "stockd_auth_failures_total";
pub const LOG_LINES_DROPPED: &str = "stockd_log_lines_dropped_total";

/// Latency buckets, in seconds: 100 µs to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// Commands per commit.
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide recorder (installed once; tests start many daemons in one process).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(COMMIT_COMMANDS.into()), BATCH_BUCKETS));
            match builder.and_then(|b| b.install_recorder()) {
                Ok(handle) => {
                    register_at_zero();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics are off");
                    None
                }
            }
        })
        .as_ref()
}

/// Every `reason` an authentication failure is counted under (fixed strings: a label is
/// never anything a client sent).
pub const AUTH_FAILURE_REASONS: &[&str] = &[
    "missing_credentials",
    "malformed",
    "unknown_token",
    "unknown_partner",
    "bad_signature",
    "clock_skew",
    "nonce_replayed",
    "no_store",
];

/// Counters exist from the start at 0, so a dashboard or an alert on `rate()` sees the
/// series before its first event (a counter that appears at 1 hides that first event).
fn register_at_zero() {
    metrics::describe_counter!(HTTP_REQUESTS, "HTTP requests by method, route template and status");
    metrics::describe_counter!(COMMIT_FAILURES, "Group commits that failed (their writes answered 503)");
    metrics::describe_counter!(BACKUPS, "Snapshots taken");
    metrics::describe_counter!(AUTH_FAILURES, "Requests refused with 401, by reason");
    metrics::describe_counter!(
        CHECKPOINTS,
        "Durable commits of the data file, after which the redo log starts over"
    );
    metrics::describe_counter!(LOG_FAILURES, "Writes or syncs of the redo log that failed");
    metrics::describe_counter!(
        WRITER_PANICS,
        "Groups in which a write panicked (that write answered 500)"
    );
    metrics::describe_counter!(
        WRITER_TIME,
        "The writer thread's time by phase: waiting for work, applying groups, committing to the data file"
    );
    metrics::describe_histogram!(
        LOG_SYNC_SECONDS,
        "One write and fdatasync of the redo log, for one or more groups"
    );
    metrics::describe_counter!(
        LOG_LINES_DROPPED,
        "Log lines dropped because stderr did not take them fast enough"
    );
    for counter in [
        COMMIT_FAILURES,
        BACKUPS,
        CHECKPOINTS,
        LOG_FAILURES,
        WRITER_PANICS,
        LOG_LINES_DROPPED,
    ] {
        metrics::counter!(counter).increment(0);
    }
    for reason in AUTH_FAILURE_REASONS {
        metrics::counter!(AUTH_FAILURES, "reason" => *reason).increment(0);
    }
}

/// Counts a 401 and notes its reason for the request's log line.
pub fn auth_failure(reason: &'static str) {
    metrics::counter!(AUTH_FAILURES, "reason" => reason).increment(1);
    let _ = AUTH_FAILURE.try_with(|r| r.set(Some(reason)));
}

tokio::task_local! {
    /// The id of the request being handled (in logs, the `x-request-id` header and problem+json).
    pub static REQUEST_ID: String;
    /// Why the request being handled was refused a 401, once known.
    static AUTH_FAILURE: std::cell::Cell<Option<&'static str>>;
}

/// The current request's id, when there is one.
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok().filter(|id| !id.is_empty())
}

/// Runs `f` as if no request were being served: what it renders names no request id. The
/// answer of a write with a replay claim is rendered so, since every repeat must answer the
/// same bytes (each still gets its own `x-request-id` header).
pub fn without_request_id<T>(f: impl FnOnce() -> T) -> T {
    REQUEST_ID.sync_scope(String::new(), f)
}

/// Who made the request, once authenticated (put in the request by the auth guard).
#[derive(Clone)]
pub struct Actor(pub String);

fn next_request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static PREFIX: OnceLock<u32> = OnceLock::new();
    let prefix = *PREFIX.get_or_init(|| {
        let mut b = [0u8; 4];
        let _ = getrandom::getrandom(&mut b);
        u32::from_le_bytes(b)
    });
    format!("req_{prefix:08x}{:08x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The methods that are metric labels of their own; any other is `other`. A client picks
/// the method: as a label it would create a series (kept forever) per made-up method.
pub const METHOD_LABELS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
/// The route label of a request no route matched (never the raw path, for the same reason).
pub const ROUTE_UNMATCHED: &str = "unmatched";

/// `method` as a label: itself when listed, else `other`.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    METHOD_LABELS
        .iter()
        .find(|m| **m == method.as_str())
        .copied()
        .unwrap_or("other")
}

/// Milliseconds with at most three decimals (whole microseconds) for the log line.
fn millis(elapsed: std::time::Duration) -> f64 {
    elapsed.as_micros() as f64 / 1000.0
}

/// The request middleware: an id, one log line and the HTTP metrics per request.
pub async fn observe(
    req: ServiceRequest,
    next: actix_web::middleware::Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = next_request_id();
    let started = Instant::now();
    let method = method_label(req.method());
    let peer = req.peer_addr();
    let reason = std::cell::Cell::new(None);
    let handled = REQUEST_ID.scope(
        id.clone(),
        AUTH_FAILURE.scope(reason, async {
            let res = next.call(req).await;
            (res, AUTH_FAILURE.with(std::cell::Cell::get))
        }),
    );
    let (res, reason) = handled.await;
    let mut res = res?;
    // A route template (`/api/products/{id}`), never the path a client sent.
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| ROUTE_UNMATCHED.to_string());
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    let actor = res
        .request()
        .extensions()
        .get::<Actor>()
        .map(|a| a.0.clone())
        .unwrap_or_default();
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    count_request(method, &route, status, elapsed);
    let refused = (status == 401).then(|| {
        // Who was refused and why (the counted reason, else the answer's detail): never
        // the credential itself.
        let detail = res
            .response()
            .error()
            .and_then(|e| e.as_error::<crate::error::ApiError>())
            .map(|e| e.detail.clone());
        let reason = reason.map(str::to_string).or(detail).unwrap_or_default();
        (reason, peer.map(|p| p.to_string()).unwrap_or_default())
    });
    log_request(&RequestLine {
        id: &id,
        method,
        route: &route,
        status,
        latency_ms: millis(elapsed),
        actor: &actor,
        refused: refused.as_ref().map(|(r, c)| (r.as_str(), c.as_str())),
    });
    Ok(res)
}

/// A request's counter and latency histogram, by route, then method and status.
type RequestSeries = HashMap<String, HashMap<(&'static str, u16), (metrics::Counter, metrics::Histogram)>>;

/// Counts a request in `stockd_http_requests_total` and its latency. Each worker keeps the
/// handles of the series it used: registering them again per request (building the key,
/// cloning the route, formatting the status, looking the series up) was ~2.5k instructions.
/// The map is as bounded as the series: methods and routes are fixed sets, statuses ours.
fn count_request(method: &'static str, route: &str, status: u16, elapsed: std::time::Duration) {
    thread_local! {
        static SERIES: std::cell::RefCell<RequestSeries> = std::cell::RefCell::new(HashMap::new());
    }
    SERIES.with_borrow_mut(|series| {
        let by_route = match series.get_mut(route) {
            Some(m) => m,
            None => series.entry(route.to_string()).or_default(),
        };
        let (requests, seconds) = by_route.entry((method, status)).or_insert_with(|| {
            (
                metrics::counter!(HTTP_REQUESTS, "method" => method, "route" => route.to_string(), "status" => status.to_string()),
                metrics::histogram!(HTTP_SECONDS, "route" => route.to_string()),
            )
        });
        requests.increment(1);
        seconds.record(elapsed.as_secs_f64());
    });
}

/// The fields of one request's log line.
struct RequestLine<'a> {
    id: &'a str,
    method: &'a str,
    route: &'a str,
    status: u16,
    latency_ms: f64,
    actor: &'a str,
    /// A 401: its reason and the client's address (instead of the actor).
    refused: Option<(&'a str, &'a str)>,
}

/// The format of the lines and the log thread's queue, set by [`init_logs`] when the thread
/// runs: [`log_request`] formats its line itself and queues it, the fmt layer queues the
/// others. Unset (a terminal, or logs not set up), the request line goes through `tracing`.
static REQUEST_LINES: OnceLock<(crate::cli::LogFormat, mpsc::SyncSender<LogMsg>)> = OnceLock::new();

/// Log lines queued for the log thread; past it a line is dropped and counted
/// (`stockd_log_lines_dropped_total`): a stalled stderr (a blocked journald pipe) must not
/// stall the HTTP workers or the exit, nor grow memory.
const LOG_LINES_QUEUED_MAX: usize = 16_384;
/// Bytes of lines the log thread gathers into one write.
const LOG_WRITE_BYTES_MAX: usize = 64 * 1024;
/// Pause of the log thread between writes while lines keep coming: how late a line may
/// reach stderr under load.
const LOG_WRITE_INTERVAL_MS: u64 = 2;
/// How long [`flush_logs`] waits for the log thread at exit.
const LOG_FLUSH_TIMEOUT_MS: u64 = 2_000;

enum LogMsg {
    Line(Vec<u8>),
    /// Answers once every line queued before it is written.
    Flush(mpsc::Sender<()>),
}

/// The `stockd-logs` thread: writes the log lines in the order they were queued, as many
/// as are queued (up to `LOG_WRITE_BYTES_MAX`) in one write. The HTTP worker that
/// wrote each line itself paid the write on the answer's path: with every request logged
/// to a file, one-connection movements were 10–13 % slower than with `RUST_LOG=warn`
/// (alternating load-bench runs), and a slow stderr slowed every answer. While lines keep
/// coming it sleeps `LOG_WRITE_INTERVAL_MS` between writes instead of waiting on the queue,
/// so that a worker queueing a line never has to wake it (a futex wake per line cost the
/// 64-connection reads); it waits on the queue once it is found empty.
fn write_lines(rx: mpsc::Receiver<LogMsg>) {
    use std::io::Write;
    let mut out: Vec<u8> = Vec::with_capacity(LOG_WRITE_BYTES_MAX);
    let mut flushes = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        loop {
            while let Some(msg) = next.take() {
                match msg {
                    LogMsg::Line(line) => out.extend_from_slice(&line),
                    LogMsg::Flush(done) => flushes.push(done),
                }
                if out.len() < LOG_WRITE_BYTES_MAX {
                    next = rx.try_recv().ok();
                }
            }
            // Whole lines only: nothing else writes to stderr once the thread runs (but
            // start-up errors, before it).
            let _ = std::io::stderr().lock().write_all(&out);
            out.clear();
            out.shrink_to(LOG_WRITE_BYTES_MAX);
            for done in flushes.drain(..) {
                let _ = done.send(());
            }
            std::thread::sleep(std::time::Duration::from_millis(LOG_WRITE_INTERVAL_MS));
            match rx.try_recv() {
                Ok(msg) => next = Some(msg),
                Err(_) => break,
            }
        }
    }
}

/// Waits, `LOG_FLUSH_TIMEOUT_MS` at most, until the log lines queued so far are
/// written: at exit. Never blocks on a full queue: behind a stalled stderr the exit would
/// never come.
pub fn flush_logs() {
    let Some((_, lines)) = REQUEST_LINES.get() else { return };
    let deadline = Instant::now() + std::time::Duration::from_millis(LOG_FLUSH_TIMEOUT_MS);
    let (done, written) = mpsc::channel();
    let mut flush = LogMsg::Flush(done);
    loop {
        match lines.try_send(flush) {
            Ok(()) => break,
            Err(mpsc::TrySendError::Full(back)) if Instant::now() < deadline => {
                flush = back;
                std::thread::sleep(std::time::Duration::from_millis(LOG_WRITE_INTERVAL_MS));
            }
            Err(_) => return,
        }
    }
    let _ = written.recv_timeout(deadline.saturating_duration_since(Instant::now()));
}

/// Logs one request at INFO under target `stockd::http`. The line is the one tracing's fmt
/// layer writes (same fields, text or JSON), formatted here: through the layer it cost
/// ~10.5k instructions, a fifth of a whole /healthz (a third of that styling field names).
/// RUST_LOG still decides whether it is written.
fn log_request(line: &RequestLine<'_>) {
    if !tracing::enabled!(target: "stockd::http", tracing::Level::INFO) {
        return;
    }
    let Some((format, lines)) = REQUEST_LINES.get() else {
        return log_request_through_tracing(line);
    };
    let mut out = String::with_capacity(REQUEST_LINE_BYTES_TYPICAL);
    match format {
        crate::cli::LogFormat::Text => request_line_text(line, &mut out),
        crate::cli::LogFormat::Json => request_line_json(line, &mut out),
    }
    queue_line(lines, out.into_bytes());
}

/// Hands one whole line to the log thread; drops and counts it if the queue is full.
fn queue_line(lines: &mpsc::SyncSender<LogMsg>, line: Vec<u8>) {
    match lines.try_send(LogMsg::Line(line)) {
        Ok(()) => {}
        Err(mpsc::TrySendError::Full(_)) => metrics::counter!(LOG_LINES_DROPPED).increment(1),
        // The log thread is gone (it cannot panic, but if it did): write it here.
        Err(mpsc::TrySendError::Disconnected(LogMsg::Line(line))) => {
            use std::io::Write;
            let _ = std::io::stderr().lock().write_all(&line);
        }
        Err(mpsc::TrySendError::Disconnected(LogMsg::Flush(_))) => {}
    }
}

/// The fmt layer's writer while the log thread runs: every event, whatever its level,
/// goes through the same queue as the request lines, so no thread ever blocks on stderr
/// (actix's shutdown lines included: behind a stalled pipe they held up the exit).
struct Queued(mpsc::SyncSender<LogMsg>);

/// One event's bytes, queued whole when the fmt layer is done with them.
struct QueuedLine<'q> {
    lines: &'q mpsc::SyncSender<LogMsg>,
    bytes: Vec<u8>,
}

impl<'q> tracing_subscriber::fmt::MakeWriter<'q> for Queued {
    type Writer = QueuedLine<'q>;

    fn make_writer(&'q self) -> QueuedLine<'q> {
        QueuedLine {
            lines: &self.0,
            bytes: Vec::new(),
        }
    }
}

impl std::io::Write for QueuedLine<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for QueuedLine<'_> {
    fn drop(&mut self) {
        if !self.bytes.is_empty() {
            queue_line(self.lines, std::mem::take(&mut self.bytes));
        }
    }
}

/// Room a request line usually needs, in bytes (the id, route and actor vary).
const REQUEST_LINE_BYTES_TYPICAL: usize = 192;

fn log_request_through_tracing(line: &RequestLine<'_>) {
    let RequestLine {
        id,
        method,
        route,
        status,
        latency_ms,
        actor,
        refused,
    } = *line;
    match refused {
        Some((reason, client)) => tracing::info!(
            target: "stockd::http",
            request_id = %id, method = %method, route = %route, status, latency_ms,
            reason = %reason, client = %client,
        ),
        None => tracing::info!(
            target: "stockd::http",
            request_id = %id, method = %method, route = %route, status, latency_ms, actor = %actor,
        ),
    }
}

/// `2026-11-27T09:49:58.012399Z`: UTC with microseconds, as tracing's `SystemTime` timer.
fn push_timestamp(out: &mut String) {
    use std::fmt::Write;
    let now = time::OffsetDateTime::now_utc();
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.microsecond()
    );
}

/// The fmt layer's text line (ANSI off): `<time>  INFO stockd::http: request_id=… …`.
fn request_line_text(l: &RequestLine<'_>, out: &mut String) {
    use std::fmt::Write;
    push_timestamp(out);
    let _ = write!(
        out,
        "  INFO stockd::http: request_id={} method={} route={} status={} latency_ms={:?} ",
        l.id, l.method, l.route, l.status, l.latency_ms
    );
    let _ = match l.refused {
        Some((reason, client)) => write!(out, "reason={reason} client={client}"),
        None => write!(out, "actor={}", l.actor),
    };
    out.push('\n');
}

/// The fmt layer's JSON line: `{"timestamp":…,"level":"INFO","fields":{…},"target":"stockd::http"}`.
fn request_line_json(l: &RequestLine<'_>, out: &mut String) {
    use std::fmt::Write;
    let string = |out: &mut String, s: &str| match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    };
    out.push_str("{\"timestamp\":\"");
    push_timestamp(out);
    out.push_str("\",\"level\":\"INFO\",\"fields\":{\"request_id\":");
    string(out, l.id);
    out.push_str(",\"method\":");
    string(out, l.method);
    out.push_str(",\"route\":");
    string(out, l.route);
    let _ = write!(out, ",\"status\":{},\"latency_ms\":{:?}", l.status, l.latency_ms);
    match l.refused {
        Some((reason, client)) => {
            out.push_str(",\"reason\":");
            string(out, reason);
            out.push_str(",\"client\":");
            string(out, client);
        }
        None => {
            out.push_str(",\"actor\":");
            string(out, l.actor);
        }
    }
    out.push_str("},\"target\":\"stockd::http\"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_labels_are_a_fixed_set() {
        use actix_web::http::Method;
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::OPTIONS), "OPTIONS");
        assert_eq!(method_label(&Method::TRACE), "other");
        let made_up = Method::from_bytes(b"XYZZY").expect("a token");
        assert_eq!(method_label(&made_up), "other");
    }

    /// What tracing's fmt layer writes for `line` in `format` (ANSI off, as in production).
    fn through_tracing(line: &RequestLine<'_>, format: crate::cli::LogFormat) -> String {
        use tracing_subscriber::layer::SubscriberExt;
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink = out.clone();
        let make = move || Capture(sink.clone());
        let fmt = tracing_subscriber::fmt::layer().with_ansi(false).with_writer(make);
        let layer: Box<dyn tracing_subscriber::Layer<_> + Send + Sync> = match format {
            crate::cli::LogFormat::Text => Box::new(fmt),
            crate::cli::LogFormat::Json => Box::new(fmt.json()),
        };
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || log_request_through_tracing(line));
        let bytes = out.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8(bytes).expect("utf-8")
    }

    struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut b) = self.0.lock() {
                b.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The hand-made request line is the fmt layer's, field for field, in both formats
    /// (only the timestamp differs, taken at another moment).
    #[test]
    fn the_request_line_is_the_one_tracing_writes() {
        let lines = [
            RequestLine {
                id: "req_0000000100000002",
                method: "POST",
                route: "/api/products/{id}",
                status: 201,
                latency_ms: 4.249,
                actor: "shop \"main\"",
                refused: None,
            },
            RequestLine {
                id: "req_0000000100000003",
                method: "GET",
                route: "unmatched",
                status: 401,
                latency_ms: 1.0,
                actor: "",
                refused: Some(("unknown_token", "127.0.0.1:5000")),
            },
        ];
        for line in &lines {
            let theirs = through_tracing(line, crate::cli::LogFormat::Text);
            let mut ours = String::new();
            request_line_text(line, &mut ours);
            let stamp = "2026-11-27T09:49:58.012399Z".len();
            assert_eq!(theirs.len(), ours.len(), "{theirs}{ours}");
            assert_eq!(theirs[stamp..], ours[stamp..]);
            assert_eq!(theirs.as_bytes()[stamp - 1], b'Z');
            assert_eq!(ours.as_bytes()[stamp - 1], b'Z');

            let theirs = through_tracing(line, crate::cli::LogFormat::Json);
            let mut ours = String::new();
            request_line_json(line, &mut ours);
            assert!(ours.ends_with('\n'));
            let parse = |s: &str| -> serde_json::Value {
                let mut v: serde_json::Value = serde_json::from_str(s).expect("json");
                let stamp = v.as_object_mut().and_then(|o| o.remove("timestamp"));
                assert!(stamp.is_some_and(|t| t.as_str().is_some_and(|t| t.len() == 27)));
                v
            };
            assert_eq!(parse(&theirs), parse(&ours));
        }
    }

    #[test]
    fn latency_has_at_most_three_decimals() {
        let ms = millis(std::time::Duration::from_nanos(4_249_013));
        assert_eq!(ms.to_string(), "4.249");
        assert_eq!(millis(std::time::Duration::from_micros(7)).to_string(), "0.007");
    }
}

// ---------------------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------------------

/// Targets whose ERROR events are a client's doing: actix-http's connection dispatcher logs
/// a malformed request head or a connection dropped mid-request (`stream error: Request
/// parse error…`) at ERROR, where it would page whoever watches errors.
const CLIENT_ERROR_TARGETS: &[&str] = &["actix_http::h1", "actix_http::h2"];

/// Sets up `tracing`: RUST_LOG filters (default `info`), text or JSON lines on stderr,
/// client errors shown at WARN under target `stockd::client`.
pub fn init_logs(format: crate::cli::LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only on a terminal: under systemd or in a file they are noise and cost
    // time on every request line.
    let terminal = std::io::stderr().is_terminal();
    // Not on a terminal (systemd, a file, a pipe): every line goes through the log thread.
    // On a terminal, or without the thread, each thread writes its own lines.
    let queue = (!terminal)
        .then(|| {
            let (lines, queued) = mpsc::sync_channel(LOG_LINES_QUEUED_MAX);
            std::thread::Builder::new()
                .name("stockd-logs".into())
                .spawn(move || write_lines(queued))
                .ok()
                .map(|_| lines)
        })
        .flatten();
    let fmt = tracing_subscriber::fmt::layer().with_ansi(terminal);
    let fmt = match (format, queue.clone()) {
        (crate::cli::LogFormat::Text, Some(lines)) => fmt.with_writer(Queued(lines)).boxed(),
        (crate::cli::LogFormat::Json, Some(lines)) => fmt.json().with_writer(Queued(lines)).boxed(),
        (crate::cli::LogFormat::Text, None) => fmt.with_writer(std::io::stderr).boxed(),
        (crate::cli::LogFormat::Json, None) => fmt.json().with_writer(std::io::stderr).boxed(),
    };
    if let Some(lines) = queue {
        let _ = REQUEST_LINES.set((format, lines));
    }
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(DemoteClientErrors(fmt))
        .try_init();
}

fn is_client_error(meta: &tracing::Metadata<'_>) -> bool {
    *meta.level() == tracing::Level::ERROR && CLIENT_ERROR_TARGETS.iter().any(|t| meta.target().starts_with(t))
}

/// The callsite of demoted client errors (an event's level is in its static metadata, so
/// a demoted event is a new event with this metadata and the original message).
struct DemotedSite;

static DEMOTED_SITE: DemotedSite = DemotedSite;
static DEMOTED: tracing::Metadata<'static> = tracing::Metadata::new(
    "client error",
    "stockd::client",
    tracing::Level::WARN,
    None,
    None,
    None,
    tracing::field::FieldSet::new(&["message"], tracing::callsite::Identifier(&DEMOTED_SITE)),
    tracing::metadata::Kind::EVENT,
);

impl tracing::callsite::Callsite for DemotedSite {
    fn set_interest(&self, _: tracing::subscriber::Interest) {}
    fn metadata(&self) -> &tracing::Metadata<'_> {
        &DEMOTED
    }
}

/// The message of an event, as text.
#[derive(Default)]
struct MessageText(String);

impl tracing::field::Visit for MessageText {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        let sep = if self.0.is_empty() { "" } else { " " };
        let _ = match field.name() {
            "message" => write!(self.0, "{sep}{value:?}"),
            name => write!(self.0, "{sep}{name}={value:?}"),
        };
    }
}

/// Passes every event to the layer it wraps, client errors (see [`CLIENT_ERROR_TARGETS`])
/// re-issued at WARN.
struct DemoteClientErrors<L>(L);

impl<S, L> tracing_subscriber::Layer<S> for DemoteClientErrors<L>
where
    S: tracing::Subscriber,
    L: tracing_subscriber::Layer<S>,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if !is_client_error(event.metadata()) {
            return self.0.on_event(event, ctx);
        }
        let mut text = MessageText::default();
        event.record(&mut text);
        let message = format_args!("{} (from {})", text.0, event.metadata().target());
        let values: [Option<&dyn tracing::Value>; 1] = [Some(&message)];
        let fields = DEMOTED.fields().value_set_all(&values);
        self.0.on_event(&tracing::Event::new(&DEMOTED, &fields), ctx);
    }

    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.0.on_register_dispatch(subscriber);
    }
    fn on_layer(&mut self, subscriber: &mut S) {
        self.0.on_layer(subscriber);
    }
    fn register_callsite(&self, meta: &'static tracing::Metadata<'static>) -> tracing::subscriber::Interest {
        self.0.register_callsite(meta)
    }
    fn enabled(&self, meta: &tracing::Metadata<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) -> bool {
        self.0.enabled(meta, ctx)
    }
    fn event_enabled(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) -> bool {
        self.0.event_enabled(event, ctx)
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        self.0.max_level_hint()
    }
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        self.0.on_new_span(attrs, id, ctx);
    }
    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        self.0.on_record(id, values, ctx);
    }
    fn on_follows_from(
        &self,
        id: &tracing::span::Id,
        follows: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        self.0.on_follows_from(id, follows, ctx);
    }
    fn on_enter(&self, id: &tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        self.0.on_enter(id, ctx);
    }
    fn on_exit(&self, id: &tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        self.0.on_exit(id, ctx);
    }
    fn on_close(&self, id: tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        self.0.on_close(id, ctx);
    }
    fn on_id_change(
        &self,
        old: &tracing::span::Id,
        new: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        self.0.on_id_change(old, new, ctx);
    }
}
