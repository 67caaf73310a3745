//! `GET /metrics` (scope admin): Prometheus text format.

use actix_web::{web, HttpResponse};

use super::State;
use crate::auth::{Admin, Guard};
use crate::telemetry;

pub fn config_metrics_api(cfg: &mut web::ServiceConfig, paths: super::Paths) {
    paths.on(cfg).route("/metrics", web::get().to(metrics));
}

async fn metrics(_g: Guard<Admin>, state: State) -> HttpResponse {
    // Figures read at scrape time rather than kept up to date on every write.
    let path = state.store.path().to_path_buf();
    let bytes = web::block(move || std::fs::metadata(path).map(|m| m.len()).unwrap_or(0))
        .await
        .unwrap_or(0);
    metrics::gauge!(telemetry::DATA_FILE_BYTES).set(bytes as f64);
    metrics::gauge!(telemetry::QUEUE_DEPTH).set(state.store.queue_depth() as f64);
    metrics::gauge!(telemetry::JOURNAL_SEQ).set(state.store.seq_last() as f64);
    let writer = state.store.writer_time_us();
    for (phase, us) in [
        ("waiting", writer.waiting),
        ("applying", writer.applying),
        ("committing", writer.committing),
    ] {
        metrics::counter!(telemetry::WRITER_TIME, "phase" => phase).absolute(us);
    }
    let text = telemetry::prometheus().map(|h| h.render()).unwrap_or_default();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text)
}
