//! Probes (no auth) and the admin routes.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use super::render::One;
use super::{data, State};
use crate::auth::{Admin, Guard};
use crate::error::{ApiError, Code};

super::native::route_table! {
    /// The probes and the admin routes: (method, path).
    HEALTH_ROUTES, register;
    GET "/healthz" => healthz,
    GET "/livez" => livez,
    GET "/readyz" => ready,
    GET "/admin/verify" => verify,
    POST "/admin/backup" => backup,
    GET "/admin/backups" => list_backups,
    GET "/admin/backups/{name}" => download,
}

pub fn config_health_api(cfg: &mut web::ServiceConfig, paths: super::Paths) {
    register(cfg, paths);
}

/// Liveness: 200 `ok` while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "`ok`.", body = String, content_type = "text/plain")),
)]
async fn healthz() -> HttpResponse {
    alive().await
}

/// Liveness (the Kubernetes name): 200 `ok` while the process runs.
#[utoipa::path(get, path = "/livez", tag = "operations",
    responses((status = 200, description = "`ok`.", body = String, content_type = "text/plain")),
)]
async fn livez() -> HttpResponse {
    alive().await
}

async fn alive() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// Readiness: 200 when the store is open and accepting writes, else 503.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "`ready`.", body = String, content_type = "text/plain"),
        (status = 503, description = "`not ready`: the data file is being reopened or writes fail.", body = String, content_type = "text/plain"),
    ),
)]
async fn ready(state: State) -> HttpResponse {
    if state.store.is_ready() {
        HttpResponse::Ok().content_type("text/plain").body("ready")
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body("not ready")
    }
}

/// The answer of `GET /admin/verify` (`store::verify::Report`; a unit test keeps the two
/// in step).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only
pub struct VerifyReport {
    /// Whether every check passed.
    ok: bool,
    /// Journal entries read.
    movements: u64,
    /// Levels compared with the fold.
    levels: u64,
    batches: u64,
    /// The last journal seq.
    seq_last: u64,
    /// The first mismatch found, when any.
    #[schema(required = true)]
    problem: Option<String>,
}

/// The answer of `POST /admin/backup` (`store::snapshot::Snapshot`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only
pub struct BackupSnapshot {
    /// The snapshot's path on the daemon's machine (in the backup directory);
    /// `GET /admin/backups/{name}` takes its last component.
    file: String,
    /// The last journal seq it holds.
    seq: u64,
    /// Its size.
    bytes: u64,
}

/// A snapshot of the backup directory (`store::snapshot::Listed`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only
pub struct ListedSnapshot {
    /// The file name, for `GET /admin/backups/{name}`.
    name: String,
    bytes: u64,
    /// The file's modification time.
    #[schema(format = DateTime)]
    modified_at: String,
}

/// The snapshots in the backup directory, newest first.
#[utoipa::path(get, path = "/admin/backups", tag = "operations",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The snapshot files (at most 1000).", body = One<Vec<ListedSnapshot>>)),
)]
async fn list_backups(_g: Guard<Admin>, state: State) -> Result<HttpResponse, ApiError> {
    let dir = state.backup_dir.clone();
    let files = web::block(move || crate::store::snapshot::list(&dir))
        .await
        .map_err(|e| ApiError::new(Code::Internal, e.to_string()))?
        .map_err(|e| ApiError::new(Code::StorageUnavailable, e))?;
    Ok(data(StatusCode::OK, &files))
}

/// A snapshot file, as `GET /admin/backups/{name}` streams it.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // documentation only
pub struct SnapshotFile(Vec<u8>);

/// The same report as `stockd verify`, from one snapshot of the live file.
///
/// It reads the whole journal, so it runs on the blocking pool, not on an async worker.
#[utoipa::path(get, path = "/admin/verify", tag = "operations",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The report; `ok: false` names the first mismatch.", body = One<VerifyReport>)),
)]
async fn verify(_g: Guard<Admin>, state: State) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let report = web::block(move || store.verify())
        .await
        .map_err(|e| ApiError::new(Code::Internal, e.to_string()))??;
    Ok(data(StatusCode::OK, &report))
}

/// Take a snapshot of one consistent state, while writes go on.
///
/// Snapshots run one at a time: a request made while another snapshot is being taken waits
/// for it (on the blocking pool), then takes its own.
#[utoipa::path(post, path = "/admin/backup", tag = "operations",
    security(("bearer" = ["admin"])),
    responses((status = 201, description = "The snapshot, in the backup directory.", body = One<BackupSnapshot>)),
)]
async fn backup(_g: Guard<Admin>, state: State) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let (dir, keep) = (state.backup_dir.clone(), state.backup_keep);
    let snapshot = web::block(move || {
        let _turn = crate::store::snapshot::turn();
        store.backup(&dir, keep)
    })
    .await
    .map_err(|e| ApiError::new(Code::Internal, e.to_string()))??;
    Ok(data(StatusCode::CREATED, &snapshot))
}

/// A snapshot file of the backup directory, for `stockd backup --out`.
#[utoipa::path(get, path = "/admin/backups/{name}", tag = "operations",
    params(("name" = String, Path, description = "The file name (last path component) of a `POST /admin/backup` answer's `file`: `stockd-<time>-seq<N>.redb`.", example = "stockd-20260115T153000123Z-seq42.redb")),
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The snapshot file.", body = SnapshotFile, content_type = "application/octet-stream")),
    extensions(("x-error-codes" = json!(["route_not_found"]))),
)]
async fn download(_g: Guard<Admin>, state: State, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    use crate::store::snapshot::{SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX};
    let valid = name.starts_with(SNAPSHOT_PREFIX)
        && name.ends_with(SNAPSHOT_SUFFIX)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
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
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .streaming(chunks))
}

/// Bytes read per chunk of a snapshot download.
const DOWNLOAD_CHUNK_BYTES: usize = 256 * 1024;

#[cfg(test)]
mod tests {
    use utoipa::PartialSchema;

    /// The documented fields of `schema` (its `properties`), sorted.
    fn properties(schema: utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>) -> Vec<String> {
        let v = serde_json::to_value(schema).unwrap_or_default();
        let mut keys: Vec<String> = v["properties"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    }

    fn fields<T: serde::Serialize>(value: &T) -> Vec<String> {
        let v = serde_json::to_value(value).unwrap_or_default();
        let mut keys: Vec<String> = v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
        keys.sort();
        keys
    }

    #[test]
    fn documented_admin_answers_match_the_store_types() {
        let report = crate::store::verify::Report {
            ok: true,
            movements: 0,
            levels: 0,
            batches: 0,
            seq_last: 0,
            problem: None,
        };
        assert_eq!(fields(&report), properties(super::VerifyReport::schema()));
        let snapshot = crate::store::snapshot::Snapshot {
            file: String::new(),
            seq: 0,
            bytes: 0,
        };
        assert_eq!(fields(&snapshot), properties(super::BackupSnapshot::schema()));
    }
}
