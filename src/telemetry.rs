//! Metrics (Prometheus, through the `metrics` facade) and request logs (`tracing`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::HttpMessage;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "stockd_http_requests_total";
pub const HTTP_SECONDS: &str = "stockd_http_request_duration_seconds";
pub const QUEUE_DEPTH: &str = "stockd_writer_queue_depth";
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
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics are off");
                    None
                }
            }
        })
        .as_ref()
}

tokio::task_local! {
    /// The id of the request being handled (in logs, the `x-request-id` header and problem+json).
    pub static REQUEST_ID: String;
}

/// The current request's id, when there is one.
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
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

/// The request middleware: an id, one log line and the HTTP metrics per request.
pub async fn observe(
    req: ServiceRequest,
    next: actix_web::middleware::Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = next_request_id();
    let started = Instant::now();
    let method = req.method().clone();
    let mut res = REQUEST_ID.scope(id.clone(), next.call(req)).await?;
    let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_string());
    let status = res.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
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
    metrics::counter!(HTTP_REQUESTS, "method" => method.to_string(), "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!(HTTP_SECONDS, "route" => route.clone()).record(seconds);
    tracing::info!(
        target: "stockd::http",
        request_id = %id,
        method = %method,
        route = %route,
        status,
        latency_ms = seconds * 1000.0,
        actor = %actor,
    );
    Ok(res)
}
