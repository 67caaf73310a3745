//! `/admin/sinks`: the outbound sinks (webhooks, NATS), their positions and states; pause,
//! resume, and moving a sink's position (replay or skip ahead). Scope `admin`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use super::render::One;
use super::{data, Json, State};
use crate::auth::{Admin, Guard};
use crate::error::{ApiError, Code};
use crate::sinks::{Command, Status};

super::native::route_table! {
    /// The sink routes: (method, path).
    SINK_ROUTES, register;
    GET "/admin/sinks" => list_sinks,
    POST "/admin/sinks/{id}/pause" => pause_sink,
    POST "/admin/sinks/{id}/resume" => resume_sink,
    POST "/admin/sinks/{id}/position" => set_position,
}

pub fn config_sinks_api(cfg: &mut web::ServiceConfig, paths: super::Paths) {
    register(cfg, paths);
}

/// Every configured sink with its position, lag and state.
#[utoipa::path(get, path = "/admin/sinks", tag = "operations",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The sinks, in config order (webhooks, then NATS).", body = One<Vec<Status>>)),
)]
pub async fn list_sinks(_g: Guard<Admin>, state: State) -> HttpResponse {
    data(StatusCode::OK, &state.sinks.list(state.store.seq_last()))
}

/// Stop delivering (the in-flight attempt is abandoned and sent again on resume); kept
/// across restarts.
#[utoipa::path(post, path = "/admin/sinks/{id}/pause", tag = "operations",
    params(("id" = String, Path, description = "Sink id.", example = "erp")),
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The sink, paused.", body = One<Status>)),
    extensions(("x-error-codes" = json!(["sink_not_found"]))),
)]
pub async fn pause_sink(_g: Guard<Admin>, state: State, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    command(&state, &path.into_inner(), Command::Pause).await
}

/// Deliver again, from the position, at once (a pending retry pause is cut short).
#[utoipa::path(post, path = "/admin/sinks/{id}/resume", tag = "operations",
    params(("id" = String, Path, description = "Sink id.", example = "erp")),
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The sink.", body = One<Status>)),
    extensions(("x-error-codes" = json!(["sink_not_found"]))),
)]
pub async fn resume_sink(_g: Guard<Admin>, state: State, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    command(&state, &path.into_inner(), Command::Resume).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"seq": 0})))]
pub struct PositionBody {
    /// The new position: the next event delivered is the first after this seq (0 replays
    /// the whole journal; the last seq skips everything so far). At most the last seq.
    #[schema(minimum = 0)]
    seq: u64,
}

/// Move a sink's position: replay from an earlier seq, or skip ahead.
#[utoipa::path(post, path = "/admin/sinks/{id}/position", tag = "operations",
    params(("id" = String, Path, description = "Sink id.", example = "erp")),
    request_body = PositionBody,
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The sink at its new position.", body = One<Status>)),
    extensions(("x-error-codes" = json!(["sink_not_found", "invalid_field"]))),
)]
pub async fn set_position(
    _g: Guard<Admin>,
    state: State,
    path: web::Path<String>,
    body: Json<PositionBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let seq_last = state.store.seq_last();
    if state.sinks.get(&id, seq_last).is_some() && body.0.seq > seq_last {
        return Err(ApiError::invalid(
            "seq",
            format!("is past the end of the journal (last seq {seq_last})"),
        ));
    }
    command(&state, &id, Command::Position(body.0.seq)).await
}

async fn command(state: &State, id: &str, command: Command) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::new(Code::SinkNotFound, "no sink has this id");
    if !state.sinks.command(id, command).await? {
        return Err(not_found());
    }
    let status = state.sinks.get(id, state.store.seq_last()).ok_or_else(not_found)?;
    Ok(data(StatusCode::OK, &status))
}
