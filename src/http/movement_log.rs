//! Seed 000, the movement log: `POST /v2/products/inventory/movment` (the document's
//! spelling, and `/movement`) and `GET /v2/products/inventory/{product_id}`, on the
//! default warehouse. The document shows no error body, so errors are problem+json.
//!
//! Whether a movement may take stock below zero follows the default warehouse's
//! `allow_negative` (the document's example goes to −6; stockd refuses that unless the
//! shop allows it).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::native::{check_id, check_text};
use super::render::dialect_id;
use super::{int_param, raw_id, write, Json, Query, State};
use crate::auth::{Guard, ReadInventory, WriteInventory};
use crate::clock::rfc3339_ms;
use crate::error::{ApiError, Code};
use crate::ledger::{Command, Meta, MoveCmd, Op, NOTE_CHARS_MAX};
use crate::store::{Applied, MovementFilter, Paging};

/// "The operation completed." — the document's message.
pub const DONE_MESSAGE: &str = "הפעולה הושלמה";
pub const LIMIT_DEFAULT: u64 = 25;
pub const LIMIT_MAX: u64 = 500;

pub fn config_movement_log_api(cfg: &mut web::ServiceConfig, paths: super::Paths) {
    paths
        .on(cfg)
        .route("/v2/products/inventory/movment", web::post().to(post_movement))
        .route("/v2/products/inventory/movement", web::post().to(post_movement))
        .route("/v2/products/inventory/{product_id}", web::get().to(log));
}

#[derive(Deserialize)]
struct MovementIn {
    /// A string, or a JSON number taken digit for digit (the document's ids are 39 digits).
    product_id: Box<RawValue>,
    operation: String,
    quantity: i64,
    #[serde(default)]
    comment: Option<String>,
}

async fn post_movement(
    g: Guard<WriteInventory>,
    req: HttpRequest,
    state: State,
    body: Json<MovementIn>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let product = raw_id("product_id", &b.product_id)?;
    check_id("product_id", &product)?;
    if let Some(c) = &b.comment {
        check_text("comment", c, NOTE_CHARS_MAX)?;
    }
    let op = match b.operation.to_ascii_uppercase().as_str() {
        "IN" => Op::In(b.quantity),
        "OUT" => Op::Out(b.quantity),
        _ => return Err(ApiError::invalid("operation", "must be IN or OUT")),
    };
    let warehouse = state.default_warehouse.clone();
    g.check_warehouse(&warehouse)?;
    let cmd = Command::Move(MoveCmd {
        product,
        warehouse,
        op,
        expected_on_hand: None,
        meta: Meta {
            note: b.comment,
            ..Meta::default()
        },
    });
    let render = write::native_plain(StatusCode::CREATED, |a: &Applied| {
        let m = a
            .movements
            .first()
            .ok_or_else(|| ApiError::new(Code::Internal, "a movement command journaled nothing"))?;
        #[derive(Serialize)]
        struct Out {
            inventory_after: i64,
            inventory_before: i64,
            message: &'static str,
        }
        write::ser(&Out {
            inventory_after: m.after().on_hand,
            inventory_before: m.draft.before.on_hand,
            message: DONE_MESSAGE,
        })
    });
    Ok(write::write(&req, &state, &g, cmd, render).await)
}

#[derive(Deserialize)]
struct LogQuery {
    limit: Option<String>,
    offset: Option<String>,
}

#[derive(Serialize)]
struct Item<'a> {
    id: String,
    operation: &'static str,
    quantity: i64,
    total_after: i64,
    total_before: i64,
    comment: Option<&'a str>,
    created: String,
    product_id: Box<RawValue>,
}

#[derive(Serialize)]
struct Link {
    rel: &'static str,
    href: String,
}

#[derive(Serialize)]
struct LogOut<'a> {
    items: Vec<Item<'a>>,
    #[serde(rename = "hasMore")]
    has_more: bool,
    limit: u64,
    offset: u64,
    count: usize,
    links: Vec<Link>,
}

async fn log(
    g: Guard<ReadInventory>,
    req: HttpRequest,
    state: State,
    product: web::Path<String>,
    q: Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = int_param("limit", &q.0.limit, 1, LIMIT_MAX)?.unwrap_or(LIMIT_DEFAULT);
    let offset = int_param("offset", &q.0.offset, 0, u64::MAX / 2)?.unwrap_or(0);
    let warehouse = state.default_warehouse.clone();
    g.check_warehouse(&warehouse)?;
    let reader = state.store.reader().await?;
    if reader.product(&product)?.is_none() {
        return Err(ApiError::new(
            Code::ProductNotFound,
            format!("product `{product}` does not exist"),
        ));
    }
    let filter = MovementFilter {
        product: Some(product.to_string()),
        warehouse: Some(warehouse),
        ..MovementFilter::default()
    };
    let page = reader.movements(&filter, &Paging::window(offset, limit))?;
    let items: Vec<Item> = page
        .rows
        .iter()
        .map(|m| {
            let d = m.draft.delta.on_hand;
            Item {
                id: m.seq.to_string(),
                operation: if d < 0 { "OUT" } else { "IN" },
                quantity: d.saturating_abs(),
                total_after: m.after().on_hand,
                total_before: m.draft.before.on_hand,
                comment: m.draft.note.as_deref(),
                created: rfc3339_ms(m.at_ms),
                product_id: dialect_id(&m.draft.product),
            }
        })
        .collect();
    let (scheme, host) = origin(&req, state.trust_forwarded);
    let base = format!("{scheme}://{host}{}", req.path());
    let href = |offset: u64| format!("{base}?limit={limit}&offset={offset}");
    let mut links = vec![
        Link {
            rel: "self",
            href: href(offset),
        },
        Link {
            rel: "first",
            href: href(0),
        },
    ];
    if page.has_more {
        links.push(Link {
            rel: "next",
            href: href(offset + limit),
        });
    }
    let out = LogOut {
        count: items.len(),
        items,
        has_more: page.has_more,
        limit,
        offset,
        links,
    };
    let body = serde_json::to_vec(&out).map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
    Ok(HttpResponse::Ok().content_type("application/json").body(body))
}

/// The scheme and host the client reached, for absolute links. `Forwarded` and
/// `X-Forwarded-Host`/`-Proto` count only with `[server] trust_forwarded` (a proxy in front
/// sets them); otherwise any client could make the links point anywhere.
fn origin(req: &HttpRequest, trust_forwarded: bool) -> (String, String) {
    if trust_forwarded {
        let conn = req.connection_info();
        return (conn.scheme().to_string(), conn.host().to_string());
    }
    let scheme = if req.app_config().secure() { "https" } else { "http" };
    let host = req
        .headers()
        .get(actix_web::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_else(|| req.app_config().host().to_string());
    (scheme.to_string(), host)
}
