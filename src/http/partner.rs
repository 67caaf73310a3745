//! Seed 001, the partner stock update API: `POST /v1/partner/inventory/updatestocks` and
//! `GET /v1/partner/inventory/history`. Shapes only; the ledger does the rest
//! (`Command::SetStock`). The document shows no error body, so errors are the native
//! problem+json with their stable codes.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::native::check_id;
use super::numbers::{self, Numbers};
use super::render::{dialect_id, rfc3339_s};
use super::{int_param, write, Json, Query, State};
use crate::auth::{Guard, ReadInventory, WriteInventory};
use crate::clock::{parse_date_param, rfc3339_ms, Bound};
use crate::error::{ApiError, Code};
use crate::ledger::{Command, SetStockLine, CHANNELS_MAX};
use crate::store::{Applied, BatchHeader};

/// Lines one update may carry (one SKU per object; an array is one batch).
pub const PARTNER_LINES_MAX: usize = 100;
/// History page size: default and bound.
pub const HISTORY_LIMIT_DEFAULT: u64 = 100;
pub const HISTORY_LIMIT_MAX: u64 = 500;
/// Partner updates one history request of a warehouse-restricted credential examines at
/// most (from `updated_at` on): whether one is visible costs a seek per warehouse, and a
/// request must not cost an unbounded amount of work. Beyond it the request is refused
/// with a pointer to `updated_at`, never answered with a wrong total.
pub const HISTORY_SCAN_BATCHES_MAX: usize = 20_000;
/// The batch kind partner updates are filed under.
pub const BATCH_KIND: &str = "partner_update";

pub fn config_partner_api(cfg: &mut web::ServiceConfig, paths: super::Paths) {
    paths
        .on(cfg)
        .route("/v1/partner/inventory/updatestocks", web::post().to(update_stocks))
        .route("/v1/partner/inventory/history", web::get().to(history));
}

#[derive(Deserialize)]
struct ChannelIn {
    code: String,
    qty: i64,
}

/// One update as the document shows it.
#[derive(Deserialize)]
struct UpdateIn {
    sku: String,
    /// The document's boolean, or its "true"/"false" string; informational here.
    #[serde(default)]
    sync_stock: Option<Value>,
    /// The warehouse's name (the document), id or number: a string, or a JSON integer.
    warehouse: Value,
    #[serde(default)]
    available_stock: i64,
    #[serde(default)]
    buffer_stock: i64,
    #[serde(default)]
    channel_stock: Vec<ChannelIn>,
}

/// What the batch header keeps of each line, for the history.
#[derive(Serialize, Deserialize, Clone)]
struct LineRecord {
    sku: String,
    product_id: String,
    warehouse: String,
    available_stock: i64,
    buffer_stock: i64,
    channels: Vec<(String, i64)>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    lines: Vec<LineRecord>,
}

fn parse_updates(body: Value) -> Result<Vec<UpdateIn>, ApiError> {
    let items = match body {
        Value::Array(items) => items,
        one @ Value::Object(_) => vec![one],
        _ => {
            return Err(ApiError::invalid(
                "body",
                "expected an update object or an array of them",
            ))
        }
    };
    if items.is_empty() {
        return Err(ApiError::invalid("body", "at least one update is required"));
    }
    if items.len() > PARTNER_LINES_MAX {
        return Err(ApiError::new(
            Code::TooManyItems,
            format!("{} updates, at most {PARTNER_LINES_MAX} in one request", items.len()),
        ));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let u: UpdateIn =
                serde_json::from_value(v).map_err(|e| ApiError::invalid(&format!("[{i}]"), e.to_string()))?;
            match &u.sync_stock {
                None | Some(Value::Bool(_)) | Some(Value::Null) => {}
                Some(Value::String(s)) if s == "true" || s == "false" => {}
                Some(_) => return Err(ApiError::invalid(&format!("[{i}].sync_stock"), "must be true or false")),
            }
            Ok(u)
        })
        .collect()
}

async fn update_stocks(
    g: Guard<WriteInventory>,
    req: HttpRequest,
    state: State,
    body: Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let updates = parse_updates(body.0)?;
    let reader = state.store.reader().await?;
    let mut lines = Vec::with_capacity(updates.len());
    let mut records = Vec::with_capacity(updates.len());
    for (i, u) in updates.into_iter().enumerate() {
        let at = |f: &str| format!("[{i}].{f}");
        check_id(&at("sku"), &u.sku)?;
        let named = match &u.warehouse {
            Value::String(s) => s.clone(),
            Value::Number(n) if n.is_u64() => n.to_string(),
            _ => {
                return Err(ApiError::invalid(
                    &at("warehouse"),
                    "must be a warehouse name, id or number",
                ))
            }
        };
        check_id(&at("warehouse"), &named)?;
        if u.channel_stock.len() > CHANNELS_MAX {
            return Err(ApiError::invalid(
                &at("channel_stock"),
                format!("at most {CHANNELS_MAX} channels"),
            ));
        }
        for c in &u.channel_stock {
            check_id(&at("channel_stock.code"), &c.code)?;
        }
        // The document's `warehouse` is the warehouse's name; its id and number do too.
        let warehouse = numbers::warehouse_by_name(&reader, &state.default_warehouse, &named, |w| g.may_use(w))
            .map_err(|e| ApiError::new(e.code, format!("{}: {}", at("warehouse"), e.detail)))?;
        g.check_warehouse(&warehouse)?;
        let product = reader.product_by_sku(&u.sku)?.ok_or_else(|| {
            ApiError::new(
                Code::ProductNotFound,
                format!("{}: no product has sku `{}`", at("sku"), u.sku),
            )
        })?;
        let channels: Vec<(String, i64)> = u.channel_stock.into_iter().map(|c| (c.code, c.qty)).collect();
        records.push(LineRecord {
            sku: u.sku,
            product_id: product.id.clone(),
            warehouse: warehouse.clone(),
            available_stock: u.available_stock,
            buffer_stock: u.buffer_stock,
            channels: channels.clone(),
        });
        lines.push(SetStockLine {
            product: product.id,
            warehouse,
            available: u.available_stock,
            buffer: u.buffer_stock,
            channels,
        });
    }
    drop(reader);
    let code = uuid::Uuid::new_v4().to_string();
    let header =
        serde_json::to_vec(&Header { lines: records }).map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
    let batch = BatchHeader {
        id: Some(code),
        kind: BATCH_KIND.to_string(),
        header,
        ..BatchHeader::default()
    };
    let render = write::native_plain(StatusCode::OK, |a: &Applied| {
        #[derive(Serialize)]
        struct Out<'a> {
            transaction_code: &'a str,
        }
        let code = a.batch.as_deref().unwrap_or_default();
        write::ser(&Out { transaction_code: code })
    });
    Ok(write::write_batch(&req, &state, &g, Command::SetStock(lines), Some(batch), render).await)
}

/// The partner updates from `seq_from` on that the credential may see (all of them, or —
/// restricted to warehouses — those with a line in one of its warehouses): a page and
/// their count.
fn visible_batches(
    reader: &crate::store::Reader,
    g: &crate::auth::Identity,
    seq_from: u64,
    offset: u64,
    limit: u64,
) -> Result<(Vec<crate::ledger::Batch>, u64), ApiError> {
    let Some(warehouses) = g.warehouses() else {
        return Ok(reader.batches(BATCH_KIND, seq_from, offset, limit)?);
    };
    reader
        .batches_in(
            BATCH_KIND,
            seq_from,
            warehouses,
            offset,
            limit,
            HISTORY_SCAN_BATCHES_MAX,
        )?
        .ok_or_else(|| {
            ApiError::invalid(
                "updated_at",
                format!(
                    "more than {HISTORY_SCAN_BATCHES_MAX} partner updates lie after it for a credential \
                     restricted to warehouses: pass a later updated_at"
                ),
            )
        })
}

/// `remote_variant` as JSON text, in the document's shape: the variant as the channel
/// knows it — here the product's number (there is no marketplace behind the ledger).
fn remote_variant(variant: Option<&RawValue>, channel: &str) -> String {
    let item = variant.map_or("0", RawValue::get);
    let channel = serde_json::to_string(channel).unwrap_or_else(|_| "\"\"".into());
    format!(r#"{{"item_id": {item}, "variation_id": 0, "channel": {channel}}}"#)
}

/// `client_reponse` (the document's spelling) as JSON text, in the document's shape: the
/// item and when it was modified (unix seconds).
fn client_response(variant: Option<&RawValue>, at_ms: i64) -> String {
    let item = variant.map_or("0", RawValue::get);
    let modified = at_ms.div_euclid(1000);
    format!(r#"{{"item":{{"item_id":{item},"modified_time":{modified}}}}}"#)
}

#[derive(Deserialize)]
struct HistoryQuery {
    updated_at: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

#[derive(Serialize)]
struct HistoryItem<'a> {
    id: u64,
    update_stock_history_id: u64,
    store_id: u64,
    store_name: &'a str,
    warehouse_id: Box<RawValue>,
    warehouse_name: String,
    variant_id: Box<RawValue>,
    sku: &'a str,
    remote_variant: String,
    row_number: usize,
    channel: &'a str,
    qty: i64,
    retrier_count: u64,
    progress: bool,
    client_reponse: String,
    message: &'static str,
    success: bool,
    created_at: String,
    updated_at: String,
    finished_at: String,
}

#[derive(Serialize)]
struct HistoryRow<'a> {
    id: u64,
    tenant_id: u64,
    user_id: u64,
    transaction_code: &'a str,
    action_name: &'static str,
    upload_file_url: &'static str,
    total_sku: usize,
    created_at: String,
    updated_at: String,
    finished_at: String,
    update_stock_history_item: Vec<HistoryItem<'a>>,
}

#[derive(Serialize)]
struct HistoryOut<'a> {
    data: Vec<HistoryRow<'a>>,
    total_record: u64,
    offset: u64,
    limit: u64,
    message: &'static str,
    reference: String,
}

async fn history(g: Guard<ReadInventory>, state: State, q: Query<HistoryQuery>) -> Result<HttpResponse, ApiError> {
    let q = q.0;
    let limit = int_param("limit", &q.limit, 0, HISTORY_LIMIT_MAX)?.unwrap_or(HISTORY_LIMIT_DEFAULT);
    let offset = int_param("offset", &q.offset, 0, u64::MAX)?.unwrap_or(0);
    let since_ms = match &q.updated_at {
        Some(t) => Some(
            parse_date_param(t, Bound::Start)
                .ok_or_else(|| ApiError::invalid("updated_at", "must be an RFC 3339 timestamp"))?,
        ),
        None => None,
    };
    let reader = state.store.reader().await?;
    let identity = g.identity.clone();
    // A restricted credential's scan examines up to HISTORY_SCAN_BATCHES_MAX batches: on the
    // blocking pool, not an HTTP worker.
    let (reader, batches, total) = web::block(move || -> Result<_, ApiError> {
        let seq_from = match since_ms {
            Some(ms) => reader.seq_since(ms)?,
            None => 0,
        };
        let (batches, total) = visible_batches(&reader, &identity, seq_from, offset, limit)?;
        Ok((reader, batches, total))
    })
    .await
    .map_err(|e| ApiError::new(crate::error::Code::Internal, e.to_string()))??;
    // Only the lines of warehouses the credential may use: a batch is listed when it has
    // one (`visible_batches`), and shows only those.
    let headers: Vec<Vec<(usize, LineRecord)>> = batches
        .iter()
        .map(|b| {
            let h: Header = serde_json::from_slice(&b.header).unwrap_or(Header { lines: Vec::new() });
            h.lines
                .into_iter()
                .enumerate()
                .filter(|(_, l)| g.may_use(&l.warehouse))
                .collect()
        })
        .collect();
    let mut names = std::collections::HashMap::new();
    let mut numbers = Numbers::new(&reader);
    // Numbers by id, one map per space (a product and a warehouse may share an id).
    let mut warehouse_ids = std::collections::HashMap::new();
    let mut product_ids = std::collections::HashMap::new();
    for lines in &headers {
        for (_, l) in lines {
            if !names.contains_key(&l.warehouse) {
                // The document's example names the default warehouse `default`, as a
                // partner names it in an update.
                let name = if l.warehouse == state.default_warehouse {
                    "default".to_string()
                } else {
                    reader.warehouse(&l.warehouse)?.map(|w| w.name).unwrap_or_default()
                };
                names.insert(l.warehouse.clone(), name);
                warehouse_ids.insert(l.warehouse.clone(), numbers.warehouse(&l.warehouse)?);
            }
            if !product_ids.contains_key(&l.product_id) {
                product_ids.insert(l.product_id.clone(), numbers.product(&l.product_id)?);
            }
        }
    }
    let data = batches
        .iter()
        .zip(&headers)
        .map(|(b, lines)| {
            let at = rfc3339_ms(b.created_ms);
            let items = lines
                .iter()
                .flat_map(|(row, l)| {
                    let row = *row;
                    let channels: Vec<(&str, i64)> = if l.channels.is_empty() {
                        vec![("", l.available_stock - l.buffer_stock)]
                    } else {
                        l.channels.iter().map(|(c, q)| (c.as_str(), *q)).collect()
                    };
                    let names = &names;
                    let warehouse_id = warehouse_ids.get(&l.warehouse).cloned();
                    let variant_id = product_ids.get(&l.product_id).cloned();
                    let at = at.clone();
                    channels
                        .into_iter()
                        .enumerate()
                        .map(move |(ci, (channel, qty))| HistoryItem {
                            id: (b.first_seq + row as u64) * CHANNELS_MAX as u64 + ci as u64,
                            update_stock_history_id: b.first_seq,
                            store_id: 0,
                            store_name: "",
                            warehouse_id: warehouse_id.clone().unwrap_or_else(|| dialect_id(&l.warehouse)),
                            warehouse_name: names.get(&l.warehouse).cloned().unwrap_or_default(),
                            variant_id: variant_id.clone().unwrap_or_else(|| dialect_id(&l.product_id)),
                            sku: &l.sku,
                            remote_variant: remote_variant(variant_id.as_deref(), channel),
                            row_number: row,
                            channel,
                            qty,
                            retrier_count: 0,
                            progress: false,
                            client_reponse: client_response(variant_id.as_deref(), b.created_ms),
                            message: "Successfully Updated",
                            success: true,
                            created_at: at.clone(),
                            updated_at: at.clone(),
                            finished_at: rfc3339_s(b.created_ms),
                        })
                })
                .collect();
            HistoryRow {
                id: b.first_seq,
                tenant_id: 0,
                user_id: 0,
                transaction_code: &b.id,
                action_name: "partner_update_stocks",
                upload_file_url: "",
                total_sku: lines.len(),
                created_at: at.clone(),
                updated_at: at,
                finished_at: rfc3339_s(b.created_ms),
                update_stock_history_item: items,
            }
        })
        .collect();
    let out = HistoryOut {
        data,
        total_record: total,
        offset,
        limit,
        message: "",
        reference: uuid::Uuid::new_v4().to_string(),
    };
    let body = serde_json::to_vec(&out).map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
    Ok(HttpResponse::Ok().content_type("application/json").body(body))
}
