//! Seed 004, the depot inventory list: `POST /v3.0/product/inventory`. Products with their
//! stock in every depot (warehouse), filtered, and paged by a cursor on the product id.
//! Success is `{code: 1, paginator: {next}, data}`; errors `{code: 0, messages: [...]}`
//! with a 4xx status. `Authorization: <token>` without `Bearer` is accepted here.

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::numbers::{self, integer, Numbers};
use super::render::{decimal, dialect_id};
use super::{raw_id, write, JsonOrDefault, State};
use crate::auth::{DepotRead, Guard};
use crate::error::ApiError;
use crate::ledger::{number_of, Buckets, Product};
use crate::store::tables::products_order_key;
use crate::store::Reader;

/// The document: at most 100 ids, at most 100 products a page.
pub const IDS_MAX: usize = 100;
pub const PAGE_SIZE_MAX: u64 = 100;
/// Most products one request examines. A filter that few products match (a name nothing
/// has) would otherwise walk the whole catalog per request; past this the page ends early
/// with `paginator.next` at the last product examined, so a client that follows `next`
/// (as the document's clients do) still sees every match.
pub const SCAN_PRODUCTS_MAX: usize = 10_000;
pub const PAGE_SIZE_DEFAULT: u64 = 50;

pub fn config_depot_api(cfg: &mut web::ServiceConfig, paths: super::Paths) {
    paths
        .on(cfg)
        .route("/v3.0/product/inventory", web::post().to(inventory));
}

fn failed(e: &ApiError) -> HttpResponse {
    #[derive(Serialize)]
    struct Failed<'a> {
        code: u8,
        messages: [&'a str; 1],
    }
    let status = match e.code.status() {
        StatusCode::NOT_FOUND => StatusCode::UNPROCESSABLE_ENTITY,
        s => s,
    };
    let answer = write::json(
        status,
        &Failed {
            code: 0,
            messages: [&e.detail],
        },
    );
    write::respond(answer, false)
}

/// Every part is optional (the document's example sends `"filters": {}`): no body, `null`
/// or `{}` all mean the unfiltered first page.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Body {
    filters: Option<Filters>,
    paginator: Option<Paginator>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Filters {
    ids: Option<Vec<Box<RawValue>>>,
    name: Option<String>,
    depot_ids: Option<Vec<Box<RawValue>>>,
    category_id: Option<Box<RawValue>>,
    brand_ids: Option<Vec<Box<RawValue>>>,
    updated_at_from: Option<i64>,
    updated_at_to: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Paginator {
    size: Option<u64>,
    sort: Option<Sort>,
    next: Option<Next>,
}

#[derive(Deserialize)]
struct Sort {
    id: String,
}

#[derive(Deserialize)]
struct Next {
    id: Box<RawValue>,
}

#[derive(Serialize, Default, Clone, Copy)]
struct Warranty {
    remain: i64,
    holding: i64,
}

#[derive(Serialize)]
struct Depot {
    id: Box<RawValue>,
    remain: i64,
    shipping: i64,
    damaged: i64,
    holding: i64,
    available: i64,
    warranty: Warranty,
}

#[derive(Serialize)]
struct Inventory {
    remain: i64,
    shipping: i64,
    damaged: i64,
    holding: i64,
    available: i64,
    warranty: Warranty,
    depots: Vec<Depot>,
}

#[derive(Serialize)]
struct Prices {
    retail: Box<RawValue>,
    wholesale: Box<RawValue>,
    import: Box<RawValue>,
    #[serde(rename = "avgCost")]
    avg_cost: Box<RawValue>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    product_id: Box<RawValue>,
    barcode: Option<String>,
    name: String,
    prices: Prices,
    inventory: Inventory,
}

/// The checked request.
struct Query {
    ids: Option<BTreeSet<String>>,
    name: Option<String>,
    depots: Option<BTreeSet<String>>,
    category: Option<String>,
    brands: Option<BTreeSet<String>>,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    size: u64,
    descending: bool,
    after: Option<String>,
}

fn id_set(field: &str, raw: Option<Vec<Box<RawValue>>>) -> Result<Option<BTreeSet<String>>, ApiError> {
    raw.map(|ids| ids.iter().map(|r| raw_id(field, r)).collect())
        .transpose()
}

/// Ids named by id or by number (`productId`, depot `id` as the answers show them).
fn resolve(
    set: Option<BTreeSet<String>>,
    mut by: impl FnMut(&str) -> Result<String, ApiError>,
) -> Result<Option<BTreeSet<String>>, ApiError> {
    set.map(|s| s.iter().map(|id| by(id)).collect()).transpose()
}

fn check(body: Body) -> Result<Query, ApiError> {
    let f = body.filters.unwrap_or_default();
    let paginator = body.paginator.unwrap_or_default();
    if f.ids.as_ref().is_some_and(|ids| ids.len() > IDS_MAX) {
        return Err(ApiError::invalid("filters.ids", format!("at most {IDS_MAX} ids")));
    }
    let size = paginator.size.unwrap_or(PAGE_SIZE_DEFAULT);
    if size == 0 || size > PAGE_SIZE_MAX {
        return Err(ApiError::invalid(
            "paginator.size",
            format!("must be 1 to {PAGE_SIZE_MAX}"),
        ));
    }
    let descending = match paginator.sort.as_ref().map(|s| s.id.as_str()) {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(ApiError::invalid("paginator.sort.id", "must be asc or desc")),
    };
    let seconds_to_ms = |field: &str, s: Option<i64>| {
        s.map(|s| {
            s.checked_mul(1000)
                .ok_or_else(|| ApiError::invalid(field, "is not a unix timestamp"))
        })
        .transpose()
    };
    Ok(Query {
        ids: id_set("filters.ids", f.ids)?,
        name: f.name.map(|n| n.to_lowercase()),
        depots: id_set("filters.depotIds", f.depot_ids)?,
        category: f.category_id.map(|c| raw_id("filters.categoryId", &c)).transpose()?,
        brands: id_set("filters.brandIds", f.brand_ids)?,
        from_ms: seconds_to_ms("filters.updatedAtFrom", f.updated_at_from)?,
        // Inclusive of the whole last second: adjacent windows [a, b], [b + 1, c] miss nothing.
        to_ms: seconds_to_ms("filters.updatedAtTo", f.updated_at_to)?.map(|ms| ms.saturating_add(999)),
        size,
        descending,
        after: paginator.next.map(|n| raw_id("paginator.next.id", &n.id)).transpose()?,
    })
}

fn price(p: &Product, name: &str) -> Box<RawValue> {
    let value = p.prices.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    decimal(value.unwrap_or_default())
}

/// The product as an item, or `None` when a filter leaves it out.
fn item(
    reader: &Reader,
    numbers: &mut Numbers<'_>,
    g: &Guard<DepotRead>,
    q: &Query,
    p: &Product,
) -> Result<Option<Item>, ApiError> {
    let matches_text = |t: &str| q.name.as_ref().is_none_or(|n| t.to_lowercase().contains(n));
    if !(matches_text(&p.name) || matches_text(&p.sku) || p.barcode.as_deref().is_some_and(matches_text)) {
        return Ok(None);
    }
    if q.category.as_ref().is_some_and(|c| p.category.as_ref() != Some(c)) {
        return Ok(None);
    }
    if q.brands
        .as_ref()
        .is_some_and(|b| !p.brand.as_ref().is_some_and(|x| b.contains(x)))
    {
        return Ok(None);
    }
    let levels: Vec<_> = reader
        .product_levels(&p.id)?
        .into_iter()
        .filter(|(w, _)| g.may_use(w) && q.depots.as_ref().is_none_or(|d| d.contains(w)))
        .collect();
    // `depotIds` filters products: one without stock rows in those depots is not listed
    // (what an incremental depot sync expects; see docs/dialects.md).
    if q.depots.is_some() && levels.is_empty() {
        return Ok(None);
    }
    // Stock changes count as updates, so an incremental scan sees them (see docs/dialects.md).
    let updated_ms = levels.iter().map(|(_, l)| l.updated_ms).fold(p.updated_ms, i64::max);
    if q.from_ms.is_some_and(|f| updated_ms < f) || q.to_ms.is_some_and(|t| updated_ms > t) {
        return Ok(None);
    }
    let mut total = Buckets::default();
    let mut depots = Vec::with_capacity(levels.len());
    for (w, l) in &levels {
        let b = &l.buckets;
        total = Buckets {
            on_hand: total.on_hand.saturating_add(b.on_hand),
            allocated: total.allocated.saturating_add(b.allocated),
            damaged: total.damaged.saturating_add(b.damaged),
            buffer: total.buffer.saturating_add(b.buffer),
            in_transit: total.in_transit.saturating_add(b.in_transit),
        };
        depots.push(Depot {
            id: numbers.warehouse(w)?,
            remain: b.on_hand,
            shipping: b.in_transit,
            damaged: b.damaged,
            holding: b.allocated,
            available: b.available(),
            warranty: Warranty::default(),
        });
    }
    Ok(Some(Item {
        product_id: number_of(p.number, &p.id).map_or_else(|| dialect_id(&p.id), integer),
        barcode: p.barcode.clone(),
        name: p.name.clone(),
        prices: Prices {
            retail: price(p, "retail"),
            wholesale: price(p, "wholesale"),
            import: price(p, "import"),
            avg_cost: decimal(p.unit_cost.unwrap_or_default()),
        },
        inventory: Inventory {
            remain: total.on_hand,
            shipping: total.in_transit,
            damaged: total.damaged,
            holding: total.allocated,
            available: levels
                .iter()
                .fold(0i64, |s, (_, l)| s.saturating_add(l.buckets.available())),
            warranty: Warranty::default(),
            depots,
        },
    }))
}

async fn inventory(req: HttpRequest, payload: web::Payload, state: State) -> HttpResponse {
    let mut payload = payload.into_inner();
    let g = match Guard::<DepotRead>::from_request(&req, &mut payload).await {
        Ok(g) => g,
        Err(e) => return failed(&e),
    };
    let body = match JsonOrDefault::<Body>::from_request(&req, &mut payload).await {
        Ok(JsonOrDefault(b)) => b,
        Err(e) => return failed(&e),
    };
    let answer = match check(body) {
        Ok(q) => page(&state, &g, q).await,
        Err(e) => Err(e),
    };
    match answer {
        Ok(res) => res,
        Err(e) => failed(&e),
    }
}

async fn page(state: &State, g: &Guard<DepotRead>, mut q: Query) -> Result<HttpResponse, ApiError> {
    let reader = state.store.reader().await?;
    // Requests name products and depots by id or by number.
    let default = state.default_warehouse.as_str();
    q.ids = resolve(q.ids.take(), |id| numbers::product_id(&reader, id))?;
    q.depots = resolve(q.depots.take(), |id| numbers::warehouse_id(&reader, default, id))?;
    if let Some(after) = q.after.take() {
        q.after = Some(numbers::product_id(&reader, &after)?);
    }
    let q = &q;
    let mut numbers = Numbers::new(&reader);
    let mut data = Vec::new();
    let mut last: Option<Box<RawValue>> = None;
    let mut examined = 0usize;
    let mut cut: Option<Box<RawValue>> = None;
    let mut visit = |p: Product| -> Result<bool, ApiError> {
        if let Some(it) = item(&reader, &mut numbers, g, q, &p)? {
            last = Some(it.product_id.clone());
            data.push(it);
        }
        examined += 1;
        if examined >= SCAN_PRODUCTS_MAX && (data.len() as u64) < q.size {
            cut = Some(number_of(p.number, &p.id).map_or_else(|| dialect_id(&p.id), integer));
            return Ok(false);
        }
        Ok((data.len() as u64) < q.size)
    };
    match &q.ids {
        Some(ids) => {
            // The same order as a walk: numeric ids numerically, then the others by bytes.
            let mut keyed: Vec<(String, &String)> = ids.iter().map(|id| (products_order_key(id), id)).collect();
            keyed.sort();
            if q.descending {
                keyed.reverse();
            }
            let after = q.after.as_deref().map(products_order_key);
            for (key, id) in keyed {
                let beyond = after
                    .as_ref()
                    .is_none_or(|a| if q.descending { &key < a } else { &key > a });
                if beyond {
                    if let Some(p) = reader.product(id)? {
                        if !visit(p)? {
                            break;
                        }
                    }
                }
            }
        }
        None => reader.walk_products(q.after.as_deref(), q.descending, &mut visit)?,
    }
    #[derive(Serialize)]
    struct NextOut {
        id: Box<RawValue>,
    }
    #[derive(Serialize)]
    struct PaginatorOut {
        next: Option<NextOut>,
    }
    #[derive(Serialize)]
    struct Out {
        code: u8,
        paginator: PaginatorOut,
        data: Vec<Item>,
    }
    // A full page points at its last product; the page after the last one is empty. A
    // page cut short by SCAN_PRODUCTS_MAX points at the last product it examined.
    let next = if data.len() as u64 >= q.size {
        last.map(|id| NextOut { id })
    } else {
        cut.map(|id| NextOut { id })
    };
    let out = Out {
        code: 1,
        paginator: PaginatorOut { next },
        data,
    };
    Ok(write::respond(write::json(StatusCode::OK, &out), false))
}
