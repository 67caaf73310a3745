//! Seed 002, inventory adjustments: `POST /com/inventories/adjustorset.json`, the list,
//! the count and one adjustment. One adjustment is one batch of movements at one location
//! (warehouse), named `IA` + a running number. Answers use the document's root keys only
//! (`adjustment`, `adjustments`, `count`), as ActiveResource-style clients expect; a
//! refusal is 422 `{"errors": {"<field>": ["<message>"]}}`, an unknown id 404
//! `{"errors": "Not Found"}`.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::native::check_id;
use super::render::{dialect_id, money_micros};
use super::write::Render;
use super::{int_param, numbers, raw_id, write, Json, State};
use crate::auth::{Guard, Policy, ReadInventory, WriteInventory};
use crate::clock::rfc3339_ms;
use crate::error::{ApiError, Code};
use crate::ledger::{number_of, Batch, Command, Decimal, Meta, MoveCmd, Op, NOTE_CHARS_MAX, TEXT_CHARS_MAX};
use crate::store::{Answer, Applied, BatchHeader, BatchQuery, Reader};

/// The document: "Best supports 200 items for a request."
pub const LINE_ITEMS_MAX: usize = 200;
pub const LIMIT_DEFAULT: u64 = 50;
pub const LIMIT_MAX: u64 = 50;
pub const BATCH_KIND: &str = "adjustment";
pub const NUMBER_PREFIX: &str = "IA";
/// The document's reasons; `newproduct` when none is given.
pub const REASONS: [&str; 7] = [
    "newproduct",
    "returned",
    "productionofgoods",
    "damaged",
    "shrinkage",
    "promotion",
    "transfer",
];

pub fn config_adjustments_api(cfg: &mut web::ServiceConfig, paths: super::Paths) {
    paths
        .on(cfg)
        .route("/com/inventories/adjustorset.json", web::post().to(create))
        .route("/com/inventories/adjustments.json", web::get().to(list))
        .route("/com/inventories/adjustments/count.json", web::get().to(count))
        .route("/com/inventories/adjustments/{id}.json", web::get().to(get_one));
}

// ---- the document's error shapes ----

/// Which request field an error is about, for `{"errors": {"<field>": [...]}}`, named as
/// the request names it: `reason`, `location_id`, or a line's own field
/// (`line_items[1].quantity`) — never the body's wrapper (`inventory.`) nor `base`.
fn error_field(e: &ApiError) -> String {
    // The ledger says which line ("item 1: …"), and for a bad value which field.
    let (line, rest) = match e.detail.strip_prefix("item ").and_then(|d| d.split_once(": ")) {
        Some((i, rest)) if i.parse::<usize>().is_ok() => (Some(i), rest),
        _ => (None, e.detail.as_str()),
    };
    let named = rest.strip_prefix('`').and_then(|d| d.split_once('`')).map(|(f, _)| f);
    let field = match (e.code, named) {
        (Code::InvalidField, Some(f)) => f.strip_prefix("inventory.").unwrap_or(f),
        (Code::ProductNotFound, _) => "product_id",
        (Code::WarehouseNotFound, _) => "location_id",
        (Code::TooManyItems, _) => "line_items",
        (Code::InsufficientStock | Code::QuantityOverflow, _) => "quantity",
        _ => "base",
    };
    match line {
        Some(i) if field != "location_id" => format!("line_items[{i}].{field}"),
        _ => field.to_string(),
    }
}

fn errors_answer(e: &ApiError) -> Answer {
    let (status, body) = match e.code.status().as_u16() {
        400 | 404 | 409 | 422 => {
            let field = error_field(e);
            (422, serde_json::json!({ "errors": { field: [e.detail.clone()] } }))
        }
        status => (status, serde_json::json!({ "errors": e.detail })),
    };
    Answer {
        status,
        content_type: "application/json".into(),
        body: serde_json::to_vec(&body).unwrap_or_default(),
    }
}

fn refuse(e: &ApiError) -> HttpResponse {
    write::respond(errors_answer(e), false)
}

fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("application/json")
        .body(r#"{"errors":"Not Found"}"#)
}

/// The guard, then the body, in that order, with errors in the document's shape.
async fn guarded<P: Policy + 'static>(
    req: &HttpRequest,
    payload: &mut actix_web::dev::Payload,
) -> Result<Guard<P>, HttpResponse> {
    Guard::<P>::from_request(req, payload).await.map_err(|e| refuse(&e))
}

// ---- the stored header ----

#[derive(Serialize, Deserialize, Clone)]
struct LineRecord {
    product_id: String,
    product_variant_id: Option<String>,
    quantity: i64,
    cost_micros: i64,
    sku: Option<String>,
    barcode: Option<String>,
    /// The numbers shown for `product_id` and `product_variant_id` (absent in headers of
    /// earlier versions: looked up when shown).
    #[serde(default)]
    product_number: Option<u64>,
    #[serde(default)]
    variant_number: Option<u64>,
}

#[derive(Serialize, Deserialize, Clone)]
struct Header {
    location_id: String,
    #[serde(default)]
    location_number: Option<u64>,
    /// As the request gave it: `null` in the answers when it gave none (the document's
    /// examples), `adjust` being the default.
    #[serde(rename = "type")]
    kind: Option<String>,
    reason: String,
    note: Option<String>,
    tags: Option<String>,
    lines: Vec<LineRecord>,
}

// ---- create ----

#[derive(Deserialize)]
struct CreateIn {
    inventory: InventoryIn,
}

#[derive(Deserialize)]
struct InventoryIn {
    location_id: Option<Box<RawValue>>,
    #[serde(rename = "type")]
    kind: Option<String>,
    reason: Option<String>,
    note: Option<String>,
    tags: Option<String>,
    line_items: Vec<LineIn>,
}

#[derive(Deserialize)]
struct LineIn {
    product_id: Option<Box<RawValue>>,
    product_variant_id: Option<Box<RawValue>>,
    quantity: i64,
    cost_amount: Option<Box<RawValue>>,
    sku: Option<String>,
    barcode: Option<String>,
}

async fn create(req: HttpRequest, payload: web::Payload, state: State) -> HttpResponse {
    let mut payload = payload.into_inner();
    let g = match guarded::<WriteInventory>(&req, &mut payload).await {
        Ok(g) => g,
        Err(res) => return res,
    };
    let body = match Json::<CreateIn>::from_request(&req, &mut payload).await {
        Ok(Json(b)) => b.inventory,
        Err(e) => return refuse(&e),
    };
    match prepare(&g, &state, body).await {
        Ok((cmd, header)) => {
            let batch = BatchHeader {
                kind: BATCH_KIND.to_string(),
                number_prefix: Some(NUMBER_PREFIX.to_string()),
                header: serde_json::to_vec(&header).unwrap_or_default(),
                ..BatchHeader::default()
            };
            let render: Render = Arc::new(move |outcome| match outcome {
                Ok(a) => created_answer(a, &header),
                Err(e) => errors_answer(e),
            });
            write::write_batch(&req, &state, &g, cmd, Some(batch), render).await
        }
        Err(e) => refuse(&e),
    }
}

async fn prepare(g: &Guard<WriteInventory>, state: &State, b: InventoryIn) -> Result<(Command, Header), ApiError> {
    let reader = state.store.reader().await?;
    let location = match &b.location_id {
        Some(raw) => raw_id("location_id", raw)?,
        None => state.default_warehouse.clone(),
    };
    check_id("location_id", &location)?;
    let location = numbers::warehouse_id(&reader, &state.default_warehouse, &location)?;
    g.check_warehouse(&location)?;
    let location_number = reader.warehouse(&location)?.and_then(|w| number_of(w.number, &w.id));
    let kind = b.kind;
    let set = match kind.as_deref() {
        None | Some("adjust") => false,
        Some("set") => true,
        Some(_) => return Err(ApiError::invalid("type", "is not included in the list (adjust, set)")),
    };
    let reason = b.reason.unwrap_or_else(|| "newproduct".to_string());
    if !REASONS.contains(&reason.as_str()) {
        return Err(ApiError::invalid(
            "reason",
            format!("is not included in the list ({})", REASONS.join(", ")),
        ));
    }
    if let Some(n) = &b.note {
        super::native::check_text("note", n, NOTE_CHARS_MAX)?;
    }
    if let Some(t) = &b.tags {
        super::native::check_text("tags", t, TEXT_CHARS_MAX)?;
    }
    if b.line_items.is_empty() {
        return Err(ApiError::invalid("line_items", "at least one line item is required"));
    }
    if b.line_items.len() > LINE_ITEMS_MAX {
        return Err(ApiError::new(
            Code::TooManyItems,
            format!(
                "{} line items, at most {LINE_ITEMS_MAX} in one request",
                b.line_items.len()
            ),
        ));
    }
    let mut moves = Vec::with_capacity(b.line_items.len());
    let mut lines = Vec::with_capacity(b.line_items.len());
    for (i, l) in b.line_items.into_iter().enumerate() {
        let at = |f: &str| format!("line_items[{i}].{f}");
        // Each names a product by its id or its number.
        let named = |field: &str, raw: &Option<Box<RawValue>>| -> Result<Option<String>, ApiError> {
            let Some(raw) = raw else { return Ok(None) };
            let given = raw_id(&at(field), raw)?;
            check_id(&at(field), &given)?;
            numbers::product_id(&reader, &given).map(Some)
        };
        let product_id = named("product_id", &l.product_id)?;
        let variant = named("product_variant_id", &l.product_variant_id)?;
        // Variants are products: the line's ledger product is its variant when it has one.
        let product = variant
            .clone()
            .or_else(|| product_id.clone())
            .ok_or_else(|| ApiError::invalid(&at("product_id"), "a line needs product_id or product_variant_id"))?;
        let record = reader.product(&product)?;
        let unit_cost = record.as_ref().and_then(|p| p.unit_cost);
        let number = |id: &Option<String>| -> Result<Option<u64>, ApiError> {
            match id {
                Some(id) => Ok(reader.product(id)?.and_then(|p| number_of(p.number, &p.id))),
                None => Ok(None),
            }
        };
        let (product_number, variant_number) = (number(&product_id)?, number(&variant)?);
        let cost_micros = match &l.cost_amount {
            Some(raw) => {
                Decimal::parse(raw.get())
                    .ok_or_else(|| ApiError::invalid(&at("cost_amount"), "must be a number with at most 6 decimals"))?
                    .micros
            }
            None => unit_cost.map(|c| c.micros.saturating_mul(l.quantity)).unwrap_or(0),
        };
        moves.push(MoveCmd {
            product: product.clone(),
            warehouse: location.clone(),
            op: if set {
                Op::Set(l.quantity)
            } else {
                Op::Adjust(l.quantity)
            },
            expected_on_hand: None,
            meta: Meta {
                reason: Some(reason.clone()),
                reference_type: Some("adjustment".into()),
                note: b.note.clone(),
                ..Meta::default()
            },
        });
        // What the request did not say about the line comes from the product it moves.
        let sku = l.sku.or_else(|| record.as_ref().map(|p| p.sku.clone()));
        let barcode = l.barcode.or_else(|| record.as_ref().and_then(|p| p.barcode.clone()));
        lines.push(LineRecord {
            // Without a product_id the line shows its variant there (its ledger product).
            product_number: if product_id.is_some() {
                product_number
            } else {
                variant_number
            },
            product_id: product_id.unwrap_or(product),
            product_variant_id: variant,
            quantity: l.quantity,
            cost_micros,
            sku,
            barcode,
            variant_number,
        });
    }
    let header = Header {
        location_number,
        location_id: location,
        kind,
        reason,
        note: b.note,
        tags: b.tags,
        lines,
    };
    Ok((Command::Batch(moves), header))
}

// ---- rendering ----

#[derive(Serialize)]
struct LineOut {
    id: u64,
    product_id: Box<RawValue>,
    product_variant_id: Option<Box<RawValue>>,
    quantity: i64,
    cost_amount: Box<RawValue>,
    sku: Option<String>,
    barcode: Option<String>,
}

#[derive(Serialize)]
struct AdjustmentOut<'a> {
    id: u64,
    created_at: String,
    updated_at: String,
    adjust_number: &'a str,
    tran_date: String,
    location_id: Box<RawValue>,
    #[serde(rename = "type")]
    kind: Option<&'a str>,
    total_quantity: i64,
    reason: &'a str,
    note: Option<&'a str>,
    total_cost: Box<RawValue>,
    tags: Option<&'a str>,
    line_items: Vec<LineOut>,
}

/// An adjustment from its batch record (first seq, number, time) and header.
fn adjustment<'a>(id: u64, number: &'a str, at_ms: i64, h: &'a Header) -> AdjustmentOut<'a> {
    let at = rfc3339_ms(at_ms);
    AdjustmentOut {
        id,
        created_at: at.clone(),
        updated_at: at.clone(),
        adjust_number: number,
        tran_date: at,
        location_id: h
            .location_number
            .map_or_else(|| dialect_id(&h.location_id), numbers::integer),
        kind: h.kind.as_deref(),
        total_quantity: h.lines.iter().fold(0i64, |s, l| s.saturating_add(l.quantity)),
        reason: &h.reason,
        note: h.note.as_deref(),
        total_cost: money_micros(h.lines.iter().map(|l| i128::from(l.cost_micros)).sum()),
        tags: h.tags.as_deref(),
        line_items: h
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| LineOut {
                // A line's id is the seq of its movement (the batch's movements are contiguous).
                id: id + i as u64,
                product_id: l
                    .product_number
                    .map_or_else(|| dialect_id(&l.product_id), numbers::integer),
                product_variant_id: l
                    .product_variant_id
                    .as_deref()
                    .map(|v| l.variant_number.map_or_else(|| dialect_id(v), numbers::integer)),
                quantity: l.quantity,
                cost_amount: money_micros(i128::from(l.cost_micros)),
                sku: l.sku.clone(),
                barcode: l.barcode.clone(),
            })
            .collect(),
    }
}

fn created_answer(a: &Applied, h: &Header) -> Answer {
    let (Some(first), Some(number)) = (a.movements.first(), a.batch.as_deref()) else {
        return errors_answer(&ApiError::new(Code::Internal, "an adjustment journaled nothing"));
    };
    #[derive(Serialize)]
    struct Out<'a> {
        adjustment: AdjustmentOut<'a>,
    }
    write::json(
        StatusCode::CREATED,
        &Out {
            adjustment: adjustment(first.seq, number, first.at_ms, h),
        },
    )
}

fn header_of(b: &Batch) -> Option<Header> {
    serde_json::from_slice(&b.header).ok()
}

/// Numbers a header of an earlier version did not keep, looked up (each id once).
fn fill_numbers(
    reader: &Reader,
    h: &mut Header,
    seen: &mut HashMap<(bool, String), Option<u64>>,
) -> Result<(), ApiError> {
    let mut lookup = |warehouse: bool, id: &str| -> Result<Option<u64>, ApiError> {
        if let Some(n) = seen.get(&(warehouse, id.to_string())) {
            return Ok(*n);
        }
        let n = if warehouse {
            reader.warehouse(id)?.and_then(|w| number_of(w.number, &w.id))
        } else {
            reader.product(id)?.and_then(|p| number_of(p.number, &p.id))
        };
        seen.insert((warehouse, id.to_string()), n);
        Ok(n)
    };
    if h.location_number.is_none() {
        h.location_number = lookup(true, &h.location_id)?;
    }
    for l in &mut h.lines {
        if l.product_number.is_none() {
            l.product_number = lookup(false, &l.product_id)?;
        }
        if let (None, Some(v)) = (l.variant_number, &l.product_variant_id) {
            l.variant_number = lookup(false, v)?;
        }
    }
    Ok(())
}

// ---- reads ----

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<String>,
    page: Option<String>,
    since_id: Option<String>,
    location_id: Option<String>,
    reason: Option<String>,
}

struct Filter {
    limit: u64,
    page: u64,
    since_id: Option<u64>,
    location: Option<String>,
    reason: Option<String>,
}

fn filter(q: ListQuery) -> Result<Filter, ApiError> {
    Ok(Filter {
        limit: int_param("limit", &q.limit, 1, LIMIT_MAX)?.unwrap_or(LIMIT_DEFAULT),
        page: int_param("page", &q.page, 1, 1_000_000)?.unwrap_or(1),
        since_id: int_param("since_id", &q.since_id, 0, u64::MAX)?,
        location: q.location_id,
        reason: q.reason,
    })
}

/// The adjustments `f` selects, each with its header: newest first, or — with `since_id`,
/// for clients that page by it — oldest first after that id.
async fn select(
    state: &State,
    g: &Guard<ReadInventory>,
    f: &Filter,
    count_only: bool,
) -> Result<(Vec<(Batch, Header)>, u64), ApiError> {
    let reader = state.store.reader().await?;
    // The filter names a location by id or number, as the answers show it.
    let location = match &f.location {
        Some(l) => Some(numbers::warehouse_id(&reader, &state.default_warehouse, l)?),
        None => None,
    };
    let q = BatchQuery {
        kind: BATCH_KIND,
        ascending: f.since_id.is_some(),
        after_seq: f.since_id.unwrap_or(0),
        offset: (f.page - 1) * f.limit,
        limit: (!count_only).then_some(f.limit),
    };
    let identity = g.identity.clone();
    let reason = f.reason.clone();
    // The page and its total come from one walk of this kind's batches, each header parsed:
    // on the blocking pool, not an HTTP worker.
    let (reader, (batches, total)) = web::block(move || -> Result<_, ApiError> {
        let keep = |b: &Batch| {
            header_of(b).is_some_and(|h| {
                identity.may_use(&h.location_id)
                    && location.as_ref().is_none_or(|l| *l == h.location_id)
                    && reason.as_ref().is_none_or(|r| *r == h.reason)
            })
        };
        let page = reader.batch_page(&q, keep)?;
        Ok((reader, page))
    })
    .await
    .map_err(|e| ApiError::new(crate::error::Code::Internal, e.to_string()))??;
    let mut seen = HashMap::new();
    let mut rows = Vec::with_capacity(batches.len());
    for b in batches {
        if let Some(mut h) = header_of(&b) {
            fill_numbers(&reader, &mut h, &mut seen)?;
            rows.push((b, h));
        }
    }
    Ok((rows, total))
}

async fn list(req: HttpRequest, payload: web::Payload, state: State) -> HttpResponse {
    let mut payload = payload.into_inner();
    let g = match guarded::<ReadInventory>(&req, &mut payload).await {
        Ok(g) => g,
        Err(res) => return res,
    };
    let query = super::parse_query::<ListQuery>(req.query_string()).and_then(filter);
    let rows = match query {
        Ok(f) => select(&state, &g, &f, false).await,
        Err(e) => Err(e),
    };
    match rows {
        Ok((rows, _)) => {
            #[derive(Serialize)]
            struct Out<'a> {
                adjustments: Vec<AdjustmentOut<'a>>,
            }
            let out = Out {
                adjustments: rows
                    .iter()
                    .map(|(b, h)| adjustment(b.first_seq, &b.id, b.created_ms, h))
                    .collect(),
            };
            write::respond(write::json(StatusCode::OK, &out), false)
        }
        Err(e) => refuse(&e),
    }
}

async fn count(req: HttpRequest, payload: web::Payload, state: State) -> HttpResponse {
    let mut payload = payload.into_inner();
    let g = match guarded::<ReadInventory>(&req, &mut payload).await {
        Ok(g) => g,
        Err(res) => return res,
    };
    let query = super::parse_query::<ListQuery>(req.query_string()).and_then(filter);
    let counted = match query {
        Ok(f) => select(&state, &g, &f, true).await,
        Err(e) => Err(e),
    };
    match counted {
        Ok((_, total)) => write::respond(
            write::json(StatusCode::OK, &serde_json::json!({ "count": total })),
            false,
        ),
        Err(e) => refuse(&e),
    }
}

async fn get_one(req: HttpRequest, payload: web::Payload, state: State, id: web::Path<String>) -> HttpResponse {
    let mut payload = payload.into_inner();
    let g = match guarded::<ReadInventory>(&req, &mut payload).await {
        Ok(g) => g,
        Err(res) => return res,
    };
    let Ok(seq) = id.parse::<u64>() else { return not_found() };
    let reader = match state.store.reader().await {
        Ok(r) => r,
        Err(e) => return refuse(&e.into()),
    };
    let batch = match reader.batch_at(seq) {
        Ok(Some(b)) if b.kind == BATCH_KIND => b,
        Ok(_) => return not_found(),
        Err(e) => return refuse(&e.into()),
    };
    let Some(mut h) = header_of(&batch) else {
        return not_found();
    };
    if let Err(e) = fill_numbers(&reader, &mut h, &mut HashMap::new()) {
        return refuse(&e);
    }
    // A location the credential may not use: as if the adjustment did not exist.
    if !g.may_use(&h.location_id) {
        return not_found();
    }
    #[derive(Serialize)]
    struct Out<'a> {
        adjustment: AdjustmentOut<'a>,
    }
    let out = Out {
        adjustment: adjustment(batch.first_seq, &batch.id, batch.created_ms, &h),
    };
    write::respond(write::json(StatusCode::OK, &out), false)
}
