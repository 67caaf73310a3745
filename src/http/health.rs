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
        .route("/admin/verify", web::get().to(verify))
        .route("/admin/backup", web::post().to(backup))
        .route("/admin/backups/{name}", web::get().to(download));
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

/// A snapshot of one consistent state, taken while writes go on (on the blocking pool).
async fn backup(_g: Guard<Admin>, state: State) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let (dir, keep) = (state.backup_dir.clone(), state.backup_keep);
    let snapshot = web::block(move || store.backup(&dir, keep))
        .await
        .map_err(|e| ApiError::new(Code::Internal, e.to_string()))??;
    Ok(data(StatusCode::CREATED, &snapshot))
}

/// A snapshot file of the backup directory, for `stockd backup --out`.
async fn download(_g: Guard<Admin>, state: State, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    use crate::store::snapshot::{SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX};
    let valid = name.starts_with(SNAPSHOT_PREFIX)
        && name.ends_with(SNAPSHOT_SUFFIX)
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    let not_found = || ApiError::new(Code::RouteNotFound, format!("no snapshot named `{name}`"));
    if !valid {
        return Err(not_found());
    }
    let path = state.backup_dir.join(name.as_str());
    let file = web::block(move || std::fs::File::open(path))
        .await
        .map_err(|e| ApiError::new(Code::Internal, e.to_string()))?
        .map_err(|_| not_found())?;
    // Streamed in chunks read on the blocking pool: a snapshot can be large.
    let chunks = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let read = web::block(move || {
            use std::io::Read;
            let mut buf = vec![0u8; DOWNLOAD_CHUNK_BYTES];
            let n = file.read(&mut buf)?;
            buf.truncate(n);
            Ok::<_, std::io::Error>((file, buf))
        })
        .await;
        match read {
            Ok(Ok((_, buf))) if buf.is_empty() => None,
            Ok(Ok((file, buf))) => Some((Ok(web::Bytes::from(buf)), Some(file))),
            Ok(Err(e)) => Some((Err(actix_web::error::ErrorInternalServerError(e)), None)),
            Err(e) => Some((Err(actix_web::error::ErrorInternalServerError(e)), None)),
        }
    });
    Ok(HttpResponse::Ok().content_type("application/octet-stream").streaming(chunks))
}

/// Bytes read per chunk of a snapshot download.
const DOWNLOAD_CHUNK_BYTES: usize = 256 * 1024;
