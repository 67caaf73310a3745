//! Reservations (API.md): hold available stock for an order (`available → allocated`),
//! then commit it (ships: an `out` of the allocated stock) or release it. Reservations
//! whose time runs out are released by the daemon, and that release is journaled too.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::native::check_id;
use super::{data, int_param, write, Json, Query, State};
use crate::auth::{Guard, ReadInventory, WriteInventory};
use crate::clock::{self, rfc3339_ms};
use crate::error::{ApiError, Code};
use crate::ledger::{Command, Reservation, ReserveCmd};
use crate::store::Applied;

/// A reservation's time when the request names none, in seconds.
pub const TTL_SECONDS_DEFAULT: i64 = 15 * 60;

pub fn config_reservations_api(cfg: &mut web::ServiceConfig, paths: super::Paths) {
    paths
        .on(cfg)
        .route("/api/inventory/reservations", web::post().to(create))
        .route("/api/inventory/reservations", web::get().to(list))
        .route("/api/inventory/reservations/{id}", web::get().to(get_one))
        .route("/api/inventory/reservations/{id}", web::delete().to(release))
        .route("/api/inventory/reservations/{id}/commit", web::post().to(commit));
}

#[derive(Serialize)]
pub struct ReservationOut<'a> {
    pub id: &'a str,
    pub product_id: &'a str,
    pub warehouse_id: &'a str,
    pub quantity: i64,
    pub status: &'static str,
    pub reference_id: Option<&'a str>,
    pub created_at: String,
    pub expires_at: String,
    pub closed_at: Option<String>,
    /// The `reserve` movement, and the `commit`/`release` one once closed.
    pub movement_id: String,
    pub closing_movement_id: Option<String>,
}

pub fn render(r: &Reservation) -> ReservationOut<'_> {
    ReservationOut {
        id: &r.id,
        product_id: &r.product,
        warehouse_id: &r.warehouse,
        quantity: r.quantity,
        status: r.status.name(),
        reference_id: r.reference_id.as_deref(),
        created_at: rfc3339_ms(r.created_ms),
        expires_at: rfc3339_ms(r.expires_ms),
        closed_at: r.closed_ms.map(rfc3339_ms),
        movement_id: format!("mov_{}", r.reserve_seq),
        closing_movement_id: r.close_seq.map(|s| format!("mov_{s}")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    product_id: String,
    warehouse_id: Option<String>,
    quantity: i64,
    ttl_seconds: Option<i64>,
    reference_id: Option<String>,
}

fn answer(status: fn(&Applied) -> StatusCode) -> write::Render {
    write::native(status, |a: &Applied| {
        let r = a
            .reservations
            .first()
            .ok_or_else(|| ApiError::new(Code::Internal, "the command touched no reservation"))?;
        write::ser(&render(r))
    })
}

async fn create(
    g: Guard<WriteInventory>,
    req: HttpRequest,
    state: State,
    body: Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    check_id("product_id", &b.product_id)?;
    let warehouse = b.warehouse_id.unwrap_or_else(|| state.default_warehouse.clone());
    check_id("warehouse_id", &warehouse)?;
    g.check_warehouse(&warehouse)?;
    if let Some(r) = &b.reference_id {
        check_id("reference_id", r)?;
    }
    let ttl_seconds = b.ttl_seconds.unwrap_or(TTL_SECONDS_DEFAULT);
    let cmd = Command::Reserve(ReserveCmd {
        product: b.product_id,
        warehouse,
        quantity: b.quantity,
        ttl_ms: ttl_seconds.saturating_mul(1000),
        reference_id: b.reference_id,
    });
    Ok(write::write(&req, &state, &g, cmd, answer(write::created)).await)
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(Code::ReservationNotFound, format!("reservation `{id}` does not exist"))
}

/// The reservation, if the caller may see its warehouse: one in a warehouse it may not use
/// answers exactly as an unknown id (API.md), so ids do not reveal other warehouses.
async fn load(state: &State, identity: &crate::auth::Identity, id: &str) -> Result<Reservation, ApiError> {
    let r = state
        .store
        .reader()
        .await?
        .reservation(id)?
        .ok_or_else(|| not_found(id))?;
    if !identity.may_use(&r.warehouse) {
        return Err(not_found(id));
    }
    Ok(r)
}

/// Most reservations one list answers (the default too).
pub const LIST_LIMIT_MAX: u64 = 500;
pub const LIST_LIMIT_DEFAULT: u64 = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    warehouse_id: Option<String>,
    product_id: Option<String>,
    limit: Option<String>,
}

/// Active reservations, soonest expiry first: those of the caller's warehouses, not yet
/// past `expires_at` (one past it reads as expired, API.md, even before the sweep).
async fn list(g: Guard<ReadInventory>, state: State, q: Query<ListQuery>) -> Result<HttpResponse, ApiError> {
    let q = q.0;
    if q.status.as_deref().is_some_and(|s| s != "active") {
        return Err(ApiError::invalid("status", "must be `active`"));
    }
    let limit = int_param("limit", &q.limit, 1, LIST_LIMIT_MAX)?.unwrap_or(LIST_LIMIT_DEFAULT);
    for (field, id) in [("warehouse_id", &q.warehouse_id), ("product_id", &q.product_id)] {
        if let Some(id) = id {
            check_id(field, id)?;
        }
    }
    if let Some(w) = &q.warehouse_id {
        g.check_warehouse(w)?;
    }
    let now_ms = clock::now_ms();
    let reader = state.store.reader().await?;
    let identity = g.identity.clone();
    // The scan reads up to RESERVATIONS_SCAN_MAX rows: on the blocking pool, not a worker.
    let scan = web::block(move || {
        let visible = |r: &Reservation| {
            identity.may_use(&r.warehouse)
                && !r.is_due(now_ms)
                && q.warehouse_id.as_ref().is_none_or(|w| &r.warehouse == w)
                && q.product_id.as_ref().is_none_or(|p| &r.product == p)
        };
        // `limit` ≤ LIST_LIMIT_MAX: the cast cannot truncate.
        reader.active_reservations(&visible, limit as usize)
    })
    .await
    .map_err(|e| ApiError::new(Code::Internal, e.to_string()))??;
    let out = super::render::List {
        data: scan.rows.iter().map(render).collect(),
        meta: super::render::Meta {
            total: (!scan.has_more).then_some(scan.rows.len() as u64),
            page: 1,
            limit,
            has_more: scan.has_more,
            next_cursor: None,
        },
    };
    Ok(data_list(&out))
}

fn data_list<T: Serialize>(out: &T) -> HttpResponse {
    match serde_json::to_vec(out) {
        Ok(body) => HttpResponse::Ok().content_type("application/json").body(body),
        Err(e) => actix_web::ResponseError::error_response(&ApiError::new(Code::Internal, e.to_string())),
    }
}

/// As it stands now: expired from `expires_at` on, before the sweep journals the release.
async fn get_one(g: Guard<ReadInventory>, state: State, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let r = load(&state, &g, &id).await?.as_of(clock::now_ms());
    Ok(data(StatusCode::OK, &render(&r)))
}

async fn commit(
    g: Guard<WriteInventory>,
    req: HttpRequest,
    state: State,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    close(g, req, state, id.into_inner(), |id| Command::CommitReservation { id }).await
}

async fn release(
    g: Guard<WriteInventory>,
    req: HttpRequest,
    state: State,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    close(g, req, state, id.into_inner(), |id| Command::ReleaseReservation { id }).await
}

/// Commit or release: the caller must be allowed the reservation's warehouse. Whether it is
/// still active (and not past `expires_at`) the ledger decides, at the writer's time.
async fn close(
    g: Guard<WriteInventory>,
    req: HttpRequest,
    state: State,
    id: String,
    command: fn(String) -> Command,
) -> Result<HttpResponse, ApiError> {
    load(&state, &g, &id).await?;
    Ok(write::write(&req, &state, &g, command(id), answer(write::ok)).await)
}
