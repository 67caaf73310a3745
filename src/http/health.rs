//! Probes (no auth) and the admin routes.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use super::{data, State};
use crate::auth::{Admin, Guard};
use crate::error::{ApiError, Code};

pub fn config_health_api(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(alive))
        .route("/livez", web::get().to(alive))
        .route("/readyz", web::get().to(ready))
        .route("/admin/verify", web::get().to(verify));
}

async fn alive() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

async fn ready(state: State) -> HttpResponse {
    if state.store.is_ready() {
        HttpResponse::Ok().content_type("text/plain").body("ready")
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body("not ready")
    }
}

/// The same report as `stockd verify`, from one snapshot of the live file. It reads the
/// whole journal, so it runs on the blocking pool, not on an async worker.
async fn verify(_g: Guard<Admin>, state: State) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let report = web::block(move || store.verify())
        .await
        .map_err(|e| ApiError::new(Code::Internal, e.to_string()))??;
    Ok(data(StatusCode::OK, &report))
}
