//! The native API (seed 003's shape, API.md "Native API"): catalog, levels, movements,
//! transfers and bulk counts. Handlers only map shapes onto ledger commands and reads.

use std::collections::{BTreeMap, HashMap};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::render::{self, Id, List, Meta, One, Ref};
use super::{data, int_param, write, Json, Query, State};
use crate::auth::{Guard, Identity, ReadInventory, WriteCatalog, WriteInventory};
use crate::clock::{parse_date_param, Bound};
use crate::error::{ApiError, Code};
use crate::ledger::{
    Command, CountLine, Decimal, Kind, Meta as MoveMeta, MoveCmd, Op, PatchLevel, Product, TransferCmd, Warehouse,
    ID_LEN_MAX, NOTE_CHARS_MAX, TEXT_CHARS_MAX,
};
use crate::store::{Applied, LevelFilter, MovementFilter, Reader};
use crate::store::{Paging, ProductFilter};

/// Page size bounds of every native list (API.md).
pub const LIMIT_MAX: u64 = 500;
pub const LIMIT_DEFAULT: u64 = 20;
/// Highest page number accepted (deeper paging uses `cursor`).
pub const PAGE_MAX: u64 = 1_000_000;

/// Declares a route table once: the `(method, full path)` list that the OpenAPI document is
/// checked against (`tests/it/openapi.rs`), and the function that registers exactly those
/// routes, so no route can be served without being listed.
macro_rules! route_table {
    ($(#[$doc:meta])* $table:ident, $register:ident; $($method:ident $path:literal => $handler:path,)*) => {
        $(#[$doc])*
        pub const $table: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        fn $register(cfg: &mut actix_web::web::ServiceConfig, paths: $crate::http::Paths) {
            let mut routes = paths.on(cfg);
            $(routes.route($path, actix_web::web::method(actix_web::http::Method::$method).to($handler));)*
        }
    };
}
pub(crate) use route_table;

route_table! {
    /// Every native route: (method, full path).
    NATIVE_ROUTES, register;
    // The hottest on top: actix tries resources in order (`http::configure` registers
    // every API's static paths before any path with parameters).
    POST "/api/inventory/movements" => post_movement,
    GET "/api/inventory" => list_levels,
    GET "/api/inventory/movements" => list_movements,
    GET "/api/warehouses" => list_warehouses,
    GET "/api/products" => list_products,
    POST "/api/inventory/adjustments" => post_adjustments,
    GET "/api/inventory/analytics" => analytics,
    GET "/api/inventory/transfers" => list_transfers,
    GET "/api/whoami" => whoami,
    PUT "/api/warehouses/{id}" => put_warehouse,
    GET "/api/warehouses/{id}" => get_warehouse,
    PUT "/api/products/{id}" => put_product,
    GET "/api/products/{id}" => get_product,
    GET "/api/products/{id}/inventory" => product_inventory,
    PATCH "/api/inventory/levels/{product_id}/{warehouse_id}" => patch_level,
    GET "/api/inventory/movements/{id}" => get_movement,
    GET "/api/inventory/transfers/{id}" => get_transfer,
    POST "/api/inventory/transfers/{id}/receive" => receive_transfer,
}

pub fn config_native_api(cfg: &mut web::ServiceConfig, paths: super::Paths) {
    register(cfg, paths);
}

// ---- input checks shared by the native handlers ----

/// A path or body id: 1..=ID_LEN_MAX bytes, no control characters.
pub fn check_id(field: &str, id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > ID_LEN_MAX || id.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            format!("must be 1 to {ID_LEN_MAX} bytes without control characters"),
        ));
    }
    Ok(())
}

pub fn check_text(field: &str, text: &str, chars_max: usize) -> Result<(), ApiError> {
    if text.chars().count() > chars_max {
        return Err(ApiError::invalid(
            field,
            format!("is longer than {chars_max} characters"),
        ));
    }
    Ok(())
}

fn check_opt_text(field: &str, text: &Option<String>, chars_max: usize) -> Result<(), ApiError> {
    match text {
        Some(t) => check_text(field, t, chars_max),
        None => Ok(()),
    }
}

/// A non-negative decimal given as a JSON number in plain notation (an exponent, `1e3`, is
/// refused: see tests/it/bad_input.rs).
pub fn money(field: &str, raw: &RawValue) -> Result<Decimal, ApiError> {
    match Decimal::parse(raw.get()) {
        Some(d) if d.micros >= 0 => Ok(d),
        _ => Err(ApiError::invalid(field, "must be a number ≥ 0 with at most 6 decimals")),
    }
}

fn bool_param(field: &str, value: &Option<String>) -> Result<bool, ApiError> {
    match value.as_deref() {
        // What common clients send: `requests` turns a Python bool into `True`/`False`.
        None | Some("false" | "False" | "0") => Ok(false),
        Some("true" | "True" | "1") => Ok(true),
        Some(_) => Err(ApiError::invalid(field, "must be true or false (True/False, 1/0)")),
    }
}

fn paging(page: &Option<String>, limit: &Option<String>, cursor: &Option<String>) -> Result<Paging, ApiError> {
    let limit = int_param("limit", limit, 1, LIMIT_MAX)?.unwrap_or(LIMIT_DEFAULT);
    let page = int_param("page", page, 1, PAGE_MAX)?.unwrap_or(1);
    if cursor.is_some() && page != 1 {
        return Err(ApiError::invalid("page", "cannot be combined with `cursor`"));
    }
    Ok(Paging {
        page,
        limit,
        cursor: cursor.clone(),
        ..Paging::default()
    })
}

fn meta(paging: &Paging, total: Option<u64>, has_more: bool, next_cursor: Option<String>) -> Meta {
    Meta {
        total,
        page: paging.page,
        limit: paging.limit,
        has_more,
        next_cursor,
    }
}

fn list<T: serde::Serialize>(rows: Vec<T>, meta: Meta) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(serde_json::to_vec(&List { data: rows, meta }).unwrap_or_default())
}

/// The warehouse a restricted identity's list is about: the one it named (checked), the
/// only one it may see, or an error asking it to name one.
fn list_warehouse(identity: &Identity, named: Option<String>) -> Result<Option<String>, ApiError> {
    match (named, identity.warehouses()) {
        (Some(w), _) => {
            identity.check_warehouse(&w)?;
            Ok(Some(w))
        }
        (None, None) => Ok(None),
        (None, Some([only])) => Ok(Some(only.clone())),
        (None, Some(_)) => Err(ApiError::invalid(
            "warehouse_id",
            "is required for a credential restricted to several warehouses",
        )),
    }
}

/// Product and warehouse names for rows, looked up once per request.
struct Names<'r> {
    reader: &'r Reader,
    products: HashMap<String, Option<Product>>,
    warehouses: HashMap<String, Option<Warehouse>>,
}

impl<'r> Names<'r> {
    fn new(reader: &'r Reader) -> Self {
        Names {
            reader,
            products: HashMap::new(),
            warehouses: HashMap::new(),
        }
    }

    fn load(&mut self, product: &str, warehouse: &str) -> Result<(), ApiError> {
        if !self.products.contains_key(product) {
            let p = self.reader.product(product)?;
            self.products.insert(product.to_string(), p);
        }
        if !self.warehouses.contains_key(warehouse) {
            let w = self.reader.warehouse(warehouse)?;
            self.warehouses.insert(warehouse.to_string(), w);
        }
        Ok(())
    }

    fn product<'a>(&'a self, id: &'a str) -> Ref<'a> {
        let p = self.products.get(id).and_then(Option::as_ref);
        Ref {
            id,
            name: p.map(|p| p.name.as_str()).unwrap_or(""),
            sku: Some(p.map(|p| p.sku.as_str()).unwrap_or("")),
        }
    }

    fn warehouse<'a>(&'a self, id: &'a str) -> Ref<'a> {
        let w = self.warehouses.get(id).and_then(Option::as_ref);
        Ref {
            id,
            name: w.map(|w| w.name.as_str()).unwrap_or(""),
            sku: None,
        }
    }
}

// ---- catalog ----

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "Second warehouse"})))]
struct PutWarehouseBody {
    /// At most 500 characters.
    #[schema(max_length = 500)]
    name: String,
}

/// Create or replace a warehouse.
#[utoipa::path(put, path = "/api/warehouses/{id}", tag = "catalog",
    params(("id" = Id, Path, description = "Warehouse id.", example = "wh-2")),
    security(("bearer" = ["catalog:write"])),
    responses(
        (status = 201, description = "Created.", body = One<render::WarehouseOut>),
        (status = 200, description = "Replaced.", body = One<render::WarehouseOut>),
    ),
    extensions(("x-error-codes" = json!(["number_taken"]))),
)]
async fn put_warehouse(
    g: Guard<WriteCatalog>,
    req: HttpRequest,
    state: State,
    id: web::Path<String>,
    body: Json<PutWarehouseBody>,
) -> Result<HttpResponse, ApiError> {
    g.check_unrestricted("create or rename warehouses")?;
    let id = id.into_inner();
    check_id("id", &id)?;
    check_text("name", &body.0.name, TEXT_CHARS_MAX)?;
    let w = Warehouse {
        id,
        name: body.0.name,
        number: None,
    };
    let render = write::native(write::created_or_ok, |a: &Applied| {
        write::ser(&a.warehouse.as_ref().map(render::warehouse))
    });
    Ok(write::write(&req, &state, &g, Command::PutWarehouse(w), render).await)
}

/// One warehouse.
#[utoipa::path(get, path = "/api/warehouses/{id}", tag = "catalog",
    params(("id" = String, Path, description = "Warehouse id.", min_length = 1, example = "default")),
    security(("bearer" = ["inventory:read"])),
    responses((status = 200, description = "The warehouse.", body = One<render::WarehouseOut>)),
    extensions(("x-error-codes" = json!(["warehouse_not_found"]))),
)]
async fn get_warehouse(
    _g: Guard<ReadInventory>,
    state: State,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let reader = state.store.reader().await?;
    let w = reader
        .warehouse(&id)?
        .ok_or_else(|| ApiError::new(Code::WarehouseNotFound, format!("warehouse `{id}` does not exist")))?;
    Ok(data(StatusCode::OK, &render::warehouse(&w)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct WarehouseQuery {
    /// Page number (≥ 1); not with `cursor`.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1_000_000)]
    page: Option<String>,
    /// Page size, 1–500 (default 20).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// `meta.next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Warehouses, by id, paged like every list (`limit` 1–500, default 20).
#[utoipa::path(get, path = "/api/warehouses", tag = "catalog",
    params(WarehouseQuery),
    security(("bearer" = ["inventory:read"])),
    responses((status = 200, description = "A page of warehouses, by id.", body = List<render::WarehouseOut>)),
    extensions(("x-error-codes" = json!(["invalid_field"]))),
)]
async fn list_warehouses(
    _g: Guard<ReadInventory>,
    state: State,
    q: Query<WarehouseQuery>,
) -> Result<HttpResponse, ApiError> {
    let paging = paging(&q.0.page, &q.0.limit, &q.0.cursor)?;
    let page = state.store.reader().await?.warehouse_page(&paging)?;
    let rows: Vec<_> = page.rows.iter().map(render::warehouse).collect();
    Ok(list(rows, meta(&paging, page.total, page.has_more, page.next_cursor)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"sku": "MUG-BLUE", "name": "Blue mug", "barcode": "4006381333931",
    "category": "kitchen", "brand": "Acme", "unit_cost": 2.5, "prices": {"retail": 9.9}})))]
struct PutProductBody {
    /// Unique among products (409 `sku_taken`).
    #[schema(value_type = Id)]
    sku: String,
    #[schema(max_length = 500)]
    name: String,
    #[schema(value_type = Option<Id>)]
    barcode: Option<String>,
    #[schema(max_length = 500)]
    category: Option<String>,
    #[schema(max_length = 500)]
    brand: Option<String>,
    /// Money: ≥ 0, at most 6 decimals, kept exactly; plain notation (`0.00001`, not
    /// `1e-05`).
    #[schema(value_type = Option<f64>, minimum = 0, maximum = 9_223_372_036_854.0)]
    unit_cost: Option<Box<RawValue>>,
    /// Named prices (`{"retail": 12.5}`), at most 32, named like ids; each ≥ 0 with at most
    /// 6 decimals, in plain notation.
    #[schema(value_type = Option<BTreeMap<String, f64>>)]
    prices: Option<BTreeMap<String, Box<RawValue>>>,
}

/// Create or replace a product.
#[utoipa::path(put, path = "/api/products/{id}", tag = "catalog",
    params(("id" = Id, Path, description = "Product id.", example = "p1")),
    security(("bearer" = ["catalog:write"])),
    responses(
        (status = 201, description = "Created.", body = One<render::ProductOut>),
        (status = 200, description = "Replaced.", body = One<render::ProductOut>),
    ),
    extensions(("x-error-codes" = json!(["sku_taken", "number_taken"]))),
)]
async fn put_product(
    g: Guard<WriteCatalog>,
    req: HttpRequest,
    state: State,
    id: web::Path<String>,
    body: Json<PutProductBody>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let b = body.0;
    check_id("id", &id)?;
    check_id("sku", &b.sku)?;
    check_text("name", &b.name, TEXT_CHARS_MAX)?;
    if let Some(barcode) = &b.barcode {
        check_id("barcode", barcode)?;
    }
    check_opt_text("category", &b.category, TEXT_CHARS_MAX)?;
    check_opt_text("brand", &b.brand, TEXT_CHARS_MAX)?;
    let unit_cost = b.unit_cost.as_deref().map(|c| money("unit_cost", c)).transpose()?;
    let prices = b.prices.unwrap_or_default();
    if prices.len() > crate::store::codec::PRICES_MAX {
        return Err(ApiError::invalid(
            "prices",
            format!("at most {} prices", crate::store::codec::PRICES_MAX),
        ));
    }
    let mut priced = Vec::with_capacity(prices.len());
    for (name, raw) in &prices {
        check_id("prices", name)?;
        priced.push((name.clone(), money(&format!("prices.{name}"), raw)?));
    }
    let p = Product {
        id,
        sku: b.sku,
        name: b.name,
        barcode: b.barcode,
        category: b.category,
        brand: b.brand,
        unit_cost,
        prices: priced,
        updated_ms: 0,
        number: None,
    };
    let render = write::native(write::created_or_ok, |a: &Applied| {
        write::ser(&a.product.as_ref().map(render::product))
    });
    Ok(write::write(&req, &state, &g, Command::PutProduct(p), render).await)
}

/// One product.
#[utoipa::path(get, path = "/api/products/{id}", tag = "catalog",
    params(("id" = String, Path, description = "Product id.", min_length = 1, example = "p1")),
    security(("bearer" = ["inventory:read"])),
    responses((status = 200, description = "The product.", body = One<render::ProductOut>)),
    extensions(("x-error-codes" = json!(["product_not_found"]))),
)]
async fn get_product(_g: Guard<ReadInventory>, state: State, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let reader = state.store.reader().await?;
    let p = reader.product(&id)?.ok_or_else(|| product_not_found(&id))?;
    Ok(data(StatusCode::OK, &render::product(&p)))
}

fn product_not_found(id: &str) -> ApiError {
    ApiError::new(Code::ProductNotFound, format!("product `{id}` does not exist"))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ProductQuery {
    /// Exact sku.
    sku: Option<String>,
    /// Exact barcode.
    barcode: Option<String>,
    /// Case-insensitive substring of name, sku or barcode.
    q: Option<String>,
    /// Page number (≥ 1); not with `cursor`.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1_000_000)]
    page: Option<String>,
    /// Page size, 1–500 (default 20).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// `meta.next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Products, by id, with filters.
#[utoipa::path(get, path = "/api/products", tag = "catalog",
    params(ProductQuery),
    security(("bearer" = ["inventory:read"])),
    responses((status = 200, description = "A page of products.", body = List<render::ProductOut>)),
    extensions(("x-error-codes" = json!(["invalid_field"]))),
)]
async fn list_products(
    _g: Guard<ReadInventory>,
    state: State,
    q: Query<ProductQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.0;
    let paging = paging(&q.page, &q.limit, &q.cursor)?;
    let filter = ProductFilter {
        sku: q.sku,
        barcode: q.barcode,
        q: q.q,
    };
    let reader = state.store.reader().await?;
    let page = reader.products(&filter, &paging)?;
    let rows: Vec<_> = page.rows.iter().map(render::product).collect();
    Ok(list(rows, meta(&paging, page.total, page.has_more, page.next_cursor)))
}

/// The answer of `GET /api/products/{id}/inventory`.
#[derive(serde::Serialize, ToSchema)]
struct ProductInventory<'a> {
    product_id: &'a str,
    /// Level rows as in `GET /api/inventory`, by warehouse id.
    warehouses: Vec<render::LevelOut<'a>>,
    totals: render::Totals,
}

/// A product's stock in every warehouse (that the caller may see), with totals.
#[utoipa::path(get, path = "/api/products/{id}/inventory", tag = "levels",
    params(("id" = String, Path, description = "Product id.", min_length = 1, example = "p1")),
    security(("bearer" = ["inventory:read"])),
    responses((status = 200, description = "Levels and totals.", body = One<ProductInventory>)),
    extensions(("x-error-codes" = json!(["product_not_found"]))),
)]
async fn product_inventory(
    g: Guard<ReadInventory>,
    state: State,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let reader = state.store.reader().await?;
    if reader.product(&id)?.is_none() {
        return Err(product_not_found(&id));
    }
    let levels = reader.product_levels(&id)?;
    let mut names = Names::new(&reader);
    let mut totals = render::Totals::default();
    for (w, l) in &levels {
        if g.may_use(w) {
            names.load(&id, w)?;
            totals.add(l);
        }
    }
    let rows: Vec<_> = levels
        .iter()
        .filter(|(w, _)| g.may_use(w))
        .map(|(w, l)| render::level(names.product(&id), names.warehouse(w), l))
        .collect();
    Ok(data(
        StatusCode::OK,
        &ProductInventory {
            product_id: &id,
            warehouses: rows,
            totals,
        },
    ))
}

// ---- levels ----

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct LevelQuery {
    /// Only this warehouse (required for a token restricted to several warehouses).
    warehouse_id: Option<String>,
    /// Only this product.
    product_id: Option<String>,
    /// Only levels with a reorder point and `available ≤ reorder_point`.
    #[param(value_type = Option<bool>)]
    low_stock: Option<String>,
    /// Only levels with `available ≤ 0`.
    #[param(value_type = Option<bool>)]
    out_of_stock: Option<String>,
    /// Page number (≥ 1); not with `cursor`.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1_000_000)]
    page: Option<String>,
    /// Page size, 1–500 (default 20).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// `meta.next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Stock levels (seed 003), by product id then warehouse id.
#[utoipa::path(get, path = "/api/inventory", tag = "levels",
    params(LevelQuery),
    security(("bearer" = ["inventory:read"])),
    responses((status = 200, description = "A page of levels.", body = List<render::LevelOut>)),
    extensions(("x-error-codes" = json!(["invalid_field"]))),
)]
async fn list_levels(g: Guard<ReadInventory>, state: State, q: Query<LevelQuery>) -> Result<HttpResponse, ApiError> {
    let q = q.0;
    let paging = paging(&q.page, &q.limit, &q.cursor)?;
    let filter = LevelFilter {
        warehouse: list_warehouse(&g, q.warehouse_id)?,
        product: q.product_id,
        low_stock: bool_param("low_stock", &q.low_stock)?,
        out_of_stock: bool_param("out_of_stock", &q.out_of_stock)?,
    };
    let reader = state.store.reader().await?;
    let page = reader.levels(&filter, &paging)?;
    let mut names = Names::new(&reader);
    for ((p, w), _) in &page.rows {
        names.load(p, w)?;
    }
    let rows: Vec<_> = page
        .rows
        .iter()
        .map(|((p, w), l)| render::level(names.product(p), names.warehouse(w), l))
        .collect();
    Ok(list(
        rows,
        meta(&paging, page.total, page.has_more, page.next_cursor.clone()),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"reorder_point": 10, "max_stock_level": 500})))]
struct PatchLevelBody {
    /// ≥ 0; `low_stock` compares `available` with it.
    #[schema(minimum = 0)]
    reorder_point: Option<i64>,
    /// ≥ 0.
    #[schema(minimum = 0)]
    max_stock_level: Option<i64>,
    /// ≥ 0: stock held back from `available` (journaled; 409 `insufficient_stock` beyond it).
    #[schema(minimum = 0)]
    buffer: Option<i64>,
}

/// Set a level's reorder point, maximum or buffer.
#[utoipa::path(patch, path = "/api/inventory/levels/{product_id}/{warehouse_id}", tag = "levels",
    params(
        ("product_id" = Id, Path, description = "Product id.", example = "p1"),
        ("warehouse_id" = Id, Path, description = "Warehouse id.", example = "default"),
    ),
    security(("bearer" = ["inventory:write"])),
    responses((status = 200, description = "The level row.", body = One<render::LevelOut>)),
    extensions(("x-error-codes" = json!(["product_not_found", "warehouse_not_found", "insufficient_stock", "quantity_overflow"]))),
)]
async fn patch_level(
    g: Guard<WriteInventory>,
    req: HttpRequest,
    state: State,
    path: web::Path<(String, String)>,
    body: Json<PatchLevelBody>,
) -> Result<HttpResponse, ApiError> {
    let (product, warehouse) = path.into_inner();
    check_id("product_id", &product)?;
    check_id("warehouse_id", &warehouse)?;
    g.check_warehouse(&warehouse)?;
    let b = body.0;
    let cmd = Command::PatchLevel(PatchLevel {
        product: product.clone(),
        warehouse: warehouse.clone(),
        reorder_point: b.reorder_point,
        max_stock_level: b.max_stock_level,
        buffer: b.buffer,
    });
    // Names are read before the write so the answer is a function of the outcome alone.
    let reader = state.store.reader().await?;
    let product_row = reader.product(&product)?;
    let warehouse_row = reader.warehouse(&warehouse)?;
    drop(reader);
    let render = write::native(write::ok, move |a: &Applied| {
        let level = a
            .levels
            .iter()
            .find(|((p, w), _)| *p == product && *w == warehouse)
            .map(|(_, l)| l.clone())
            .unwrap_or_default();
        let product_ref = Ref {
            id: &product,
            name: product_row.as_ref().map(|p| p.name.as_str()).unwrap_or(""),
            sku: Some(product_row.as_ref().map(|p| p.sku.as_str()).unwrap_or("")),
        };
        let warehouse_ref = Ref {
            id: &warehouse,
            name: warehouse_row.as_ref().map(|w| w.name.as_str()).unwrap_or(""),
            sku: None,
        };
        write::ser(&render::level(product_ref, warehouse_ref, &level))
    });
    Ok(write::write(&req, &state, &g, cmd, render).await)
}

// ---- movements ----

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({"product_id": "p1", "warehouse_id": "default", "movement_type": "in", "quantity": 50,
        "reference_type": "purchase_order", "reference_id": "po_456", "notes": "Received from Supplier ABC",
        "cost_per_unit": 2.5}),
    json!({"product_id": "p1", "movement_type": "out", "quantity": 2, "reference_type": "order",
        "reference_id": "so_1001", "expected_on_hand": 150}),
    json!({"product_id": "p1", "warehouse_id": "default", "movement_type": "transfer", "quantity": 5,
        "to_warehouse_id": "wh-2", "in_transit": true}),
))]
struct MovementBody {
    #[schema(value_type = Id)]
    product_id: String,
    /// Default: the default warehouse.
    #[schema(value_type = Option<Id>)]
    warehouse_id: Option<String>,
    /// `in`, `out`, `adjustment` (signed), `transfer`, or `set`/`count` (absolute on_hand).
    #[schema(value_type = MovementType)]
    movement_type: String,
    /// > 0; for `adjustment` a signed non-zero integer; for `set` the new on_hand (≥ 0).
    quantity: i64,
    /// Transfers only (and required there): the target warehouse.
    #[schema(value_type = Option<Id>)]
    to_warehouse_id: Option<String>,
    /// Transfers only: land in the target's in-transit bucket until received.
    in_transit: Option<bool>,
    #[schema(max_length = 500)]
    reason: Option<String>,
    #[schema(max_length = 500)]
    reference_type: Option<String>,
    #[schema(value_type = Option<Id>)]
    reference_id: Option<String>,
    #[schema(max_length = 4000)]
    notes: Option<String>,
    /// Money: ≥ 0, at most 6 decimals; plain notation (`0.00001`, not `1e-05`).
    #[schema(value_type = Option<f64>, minimum = 0, maximum = 9_223_372_036_854.0)]
    cost_per_unit: Option<Box<RawValue>>,
    /// Compare-and-set: 409 `quantity_mismatch` unless on_hand equals it.
    expected_on_hand: Option<i64>,
}

/// `movement_type` of `POST /api/inventory/movements`.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // documentation only: the handler matches the string
enum MovementType {
    In,
    Out,
    Adjustment,
    Transfer,
    Set,
    Count,
}

/// The answer of `POST /api/inventory/movements`: a movement, or a transfer for
/// `movement_type: transfer`.
#[derive(serde::Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
#[serde(untagged)]
enum MovementOrTransfer<'a> {
    Movement(Box<render::MovementOut<'a>>),
    Transfer(Box<render::TransferOut<'a>>),
}

fn move_meta(b: &MovementBody) -> Result<MoveMeta, ApiError> {
    check_opt_text("reason", &b.reason, TEXT_CHARS_MAX)?;
    check_opt_text("reference_type", &b.reference_type, TEXT_CHARS_MAX)?;
    if let Some(r) = &b.reference_id {
        check_id("reference_id", r)?;
    }
    check_opt_text("notes", &b.notes, NOTE_CHARS_MAX)?;
    Ok(MoveMeta {
        reason: b.reason.clone(),
        reference_type: b.reference_type.clone(),
        reference_id: b.reference_id.clone(),
        note: b.notes.clone(),
        cost_per_unit: b
            .cost_per_unit
            .as_deref()
            .map(|c| money("cost_per_unit", c))
            .transpose()?,
    })
}

/// Record a movement (or a transfer).
#[utoipa::path(post, path = "/api/inventory/movements", tag = "movements",
    security(("bearer" = ["inventory:write"])),
    responses((status = 201, description = "The movement; a transfer answers the transfer and its legs.", body = One<MovementOrTransfer>)),
    extensions(("x-error-codes" = json!(["product_not_found", "warehouse_not_found", "insufficient_stock", "quantity_mismatch", "quantity_overflow"]))),
)]
async fn post_movement(
    g: Guard<WriteInventory>,
    req: HttpRequest,
    state: State,
    body: Json<MovementBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    check_id("product_id", &b.product_id)?;
    let warehouse = b
        .warehouse_id
        .clone()
        .unwrap_or_else(|| state.default_warehouse.clone());
    check_id("warehouse_id", &warehouse)?;
    g.check_warehouse(&warehouse)?;
    let meta = move_meta(&b)?;
    if b.movement_type != "transfer" && (b.to_warehouse_id.is_some() || b.in_transit.is_some()) {
        return Err(ApiError::invalid(
            "to_warehouse_id",
            "only a transfer has a target warehouse",
        ));
    }
    let op = match b.movement_type.as_str() {
        "in" => Op::In(b.quantity),
        "out" => Op::Out(b.quantity),
        "adjustment" => Op::Adjust(b.quantity),
        "set" | "count" => Op::Set(b.quantity),
        "transfer" => return post_transfer(g, req, state, b, warehouse, meta).await,
        other => {
            return Err(ApiError::invalid(
                "movement_type",
                format!("`{other}` is not one of in, out, adjustment, transfer, set"),
            ))
        }
    };
    let cmd = Command::Move(MoveCmd {
        product: b.product_id,
        warehouse,
        op,
        expected_on_hand: b.expected_on_hand,
        meta,
    });
    let render = write::native(write::created, |a: &Applied| {
        let m = a
            .movements
            .first()
            .ok_or_else(|| ApiError::new(Code::Internal, "a movement command journaled nothing"))?;
        write::ser(&render::movement(m, None, None))
    });
    Ok(write::write(&req, &state, &g, cmd, render).await)
}

async fn post_transfer(
    g: Guard<WriteInventory>,
    req: HttpRequest,
    state: State,
    b: MovementBody,
    from: String,
    meta: MoveMeta,
) -> Result<HttpResponse, ApiError> {
    let to = b
        .to_warehouse_id
        .ok_or_else(|| ApiError::invalid("to_warehouse_id", "is required for a transfer"))?;
    check_id("to_warehouse_id", &to)?;
    g.check_warehouse(&to)?;
    let cmd = Command::Transfer(TransferCmd {
        product: b.product_id,
        from,
        to,
        quantity: b.quantity,
        in_transit: b.in_transit.unwrap_or(false),
        expected_on_hand: b.expected_on_hand,
        meta,
    });
    let render = write::native(write::created, |a: &Applied| {
        let t = a
            .transfer
            .as_ref()
            .ok_or_else(|| ApiError::new(Code::Internal, "a transfer command recorded no transfer"))?;
        let legs: Vec<_> = a
            .movements
            .iter()
            .filter(|m| m.seq == t.out_seq || Some(m.seq) == t.in_seq)
            .cloned()
            .collect();
        write::ser(&render::transfer(t, &legs))
    });
    Ok(write::write(&req, &state, &g, cmd, render).await)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct MovementQuery {
    /// Only this product.
    product_id: Option<String>,
    /// Only this warehouse (required for a token restricted to several warehouses).
    warehouse_id: Option<String>,
    /// A family (`in`, `out`, `adjustment`, `transfer`, …) or a journal kind.
    movement_type: Option<String>,
    /// Only entries of this journal kind (`reserve`, `release`, `buffer`… are listed only
    /// when named here or in `movement_type`).
    kind: Option<String>,
    /// Only movements with this reference.
    reference_id: Option<String>,
    /// From this RFC 3339 date-time or `YYYY-MM-DD` date.
    start_date: Option<String>,
    /// Until this RFC 3339 date-time or `YYYY-MM-DD` date (the whole UTC day).
    end_date: Option<String>,
    /// Page number (≥ 1); not with `cursor`.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1_000_000)]
    page: Option<String>,
    /// Page size, 1–500 (default 20).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// `meta.next_cursor` of the previous page.
    cursor: Option<String>,
}

fn date_param(field: &str, value: &Option<String>, bound: Bound) -> Result<Option<i64>, ApiError> {
    let Some(text) = value else { return Ok(None) };
    parse_date_param(text, bound)
        .map(Some)
        .ok_or_else(|| ApiError::invalid(field, "must be an RFC 3339 date-time or a YYYY-MM-DD date"))
}

/// The journal, newest first, with filters.
#[utoipa::path(get, path = "/api/inventory/movements", tag = "movements",
    params(MovementQuery),
    security(("bearer" = ["inventory:read"])),
    responses((status = 200, description = "A page of movements, with `product` and `warehouse`.", body = List<render::MovementOut>)),
    extensions(("x-error-codes" = json!(["invalid_field"]))),
)]
async fn list_movements(
    g: Guard<ReadInventory>,
    state: State,
    q: Query<MovementQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.0;
    let paging = paging(&q.page, &q.limit, &q.cursor)?;
    if let Some(t) = &q.movement_type {
        let known = Kind::ALL.iter().any(|k| k.name() == t || k.movement_type() == t);
        if !known {
            return Err(ApiError::invalid(
                "movement_type",
                format!("`{t}` is not a movement type"),
            ));
        }
    }
    let kind = match &q.kind {
        Some(t) => Some(
            Kind::ALL
                .into_iter()
                .find(|k| k.name() == t)
                .ok_or_else(|| ApiError::invalid("kind", format!("`{t}` is not a journal kind")))?,
        ),
        None => None,
    };
    let filter = MovementFilter {
        product: q.product_id,
        warehouse: list_warehouse(&g, q.warehouse_id)?,
        movement_type: q.movement_type,
        kind,
        reference_id: q.reference_id,
        start_ms: date_param("start_date", &q.start_date, Bound::Start)?,
        end_ms: date_param("end_date", &q.end_date, Bound::End)?,
    };
    let reader = state.store.reader().await?;
    let page = reader.movements(&filter, &paging)?;
    let mut names = Names::new(&reader);
    for m in &page.rows {
        names.load(&m.draft.product, &m.draft.warehouse)?;
    }
    let rows: Vec<_> = page
        .rows
        .iter()
        .map(|m| {
            render::movement(
                m,
                Some(names.product(&m.draft.product)),
                Some(names.warehouse(&m.draft.warehouse)),
            )
        })
        .collect();
    Ok(list(
        rows,
        meta(&paging, page.total, page.has_more, page.next_cursor.clone()),
    ))
}

fn movement_not_found(id: &str) -> ApiError {
    ApiError::new(Code::MovementNotFound, format!("movement `{id}` does not exist"))
}

/// One movement.
#[utoipa::path(get, path = "/api/inventory/movements/{id}", tag = "movements",
    params(("id" = String, Path, description = "`mov_<seq>`.", example = "mov_1")),
    security(("bearer" = ["inventory:read"])),
    responses((status = 200, description = "The movement, with `product` and `warehouse`.", body = One<render::MovementOut>)),
    extensions(("x-error-codes" = json!(["movement_not_found"]))),
)]
async fn get_movement(g: Guard<ReadInventory>, state: State, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let seq: u64 = id
        .strip_prefix("mov_")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| movement_not_found(&id))?;
    let reader = state.store.reader().await?;
    let m = reader
        .movement(seq)?
        .filter(|m| g.may_use(&m.draft.warehouse)) // a foreign one answers as an unknown one
        .ok_or_else(|| movement_not_found(&id))?;
    let mut names = Names::new(&reader);
    names.load(&m.draft.product, &m.draft.warehouse)?;
    let out = render::movement(
        &m,
        Some(names.product(&m.draft.product)),
        Some(names.warehouse(&m.draft.warehouse)),
    );
    Ok(data(StatusCode::OK, &out))
}

// ---- transfers ----

fn transfer_not_found(id: &str) -> ApiError {
    ApiError::new(Code::TransferNotFound, format!("transfer `{id}` does not exist"))
}

/// The transfer, if the caller may see one of its warehouses: one that lies only in
/// warehouses it may not use answers exactly as an unknown id (API.md).
fn visible_transfer(reader: &Reader, g: &Identity, id: &str) -> Result<crate::ledger::Transfer, ApiError> {
    reader
        .transfer(id)?
        .filter(|t| g.may_use(&t.from) || g.may_use(&t.to))
        .ok_or_else(|| transfer_not_found(id))
}

/// The legs the caller may see: a leg shows its warehouse's balances, so a credential
/// restricted to one side sees only that side's leg.
fn visible_legs(g: &Identity, legs: impl IntoIterator<Item = crate::ledger::Movement>) -> Vec<crate::ledger::Movement> {
    legs.into_iter().filter(|m| g.may_use(&m.draft.warehouse)).collect()
}

/// One transfer and its legs.
#[utoipa::path(get, path = "/api/inventory/transfers/{id}", tag = "transfers",
    params(("id" = String, Path, description = "`trf_…`.")),
    security(("bearer" = ["inventory:read"])),
    responses((status = 200, description = "The transfer.", body = One<render::TransferOut>)),
    extensions(("x-error-codes" = json!(["transfer_not_found"]))),
)]
async fn get_transfer(g: Guard<ReadInventory>, state: State, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let reader = state.store.reader().await?;
    let t = visible_transfer(&reader, &g, &id)?;
    let mut legs = Vec::new();
    for seq in std::iter::once(t.out_seq).chain(t.in_seq) {
        legs.extend(reader.movement(seq)?);
    }
    let legs = visible_legs(&g, legs);
    Ok(data(StatusCode::OK, &render::transfer(&t, &legs)))
}

/// Most transfers one list answers (the default too: a shop has few in transit at once).
pub const TRANSFERS_LIMIT_MAX: u64 = 500;
pub const TRANSFERS_LIMIT_DEFAULT: u64 = 100;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct TransferQuery {
    /// Only `in_transit` (the default): transfers waiting to be received.
    #[param(value_type = Option<String>, pattern = "^in_transit$")]
    status: Option<String>,
    /// Only transfers from or to this warehouse.
    #[param(value_type = Option<Id>)]
    warehouse_id: Option<String>,
    /// At most this many, 1–500 (default 100).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 500)]
    limit: Option<String>,
}

/// Transfers still in transit, newest first (the dashboard's "receive" list).
///
/// A credential restricted to warehouses sees those from or to one of its warehouses, with
/// only its own legs. One request examines a bounded number of transfers (`meta.hasMore`
/// says when it stopped early).
#[utoipa::path(get, path = "/api/inventory/transfers", tag = "transfers",
    params(TransferQuery),
    security(("bearer" = ["inventory:read"])),
    responses((status = 200, description = "Transfers in transit.", body = List<render::TransferOut>)),
    extensions(("x-error-codes" = json!(["invalid_field"]))),
)]
async fn list_transfers(
    g: Guard<ReadInventory>,
    state: State,
    q: Query<TransferQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.0;
    if q.status.as_deref().is_some_and(|s| s != "in_transit") {
        return Err(ApiError::invalid("status", "must be `in_transit`"));
    }
    let limit = int_param("limit", &q.limit, 1, TRANSFERS_LIMIT_MAX)?.unwrap_or(TRANSFERS_LIMIT_DEFAULT);
    if let Some(w) = &q.warehouse_id {
        check_id("warehouse_id", w)?;
        g.check_warehouse(w)?;
    }
    let reader = state.store.reader().await?;
    let identity = g.identity.clone();
    // The scan reads up to TRANSFERS_SCAN_MAX rows: on the blocking pool, not a worker.
    let (scan, legs) = web::block(move || -> Result<_, ApiError> {
        let named = q.warehouse_id.as_deref();
        let visible = |t: &crate::ledger::Transfer| {
            (identity.may_use(&t.from) || identity.may_use(&t.to)) && named.is_none_or(|w| t.from == w || t.to == w)
        };
        // `limit` ≤ TRANSFERS_LIMIT_MAX: the cast cannot truncate.
        let scan = reader.transfers_in_transit(&visible, limit as usize)?;
        let mut legs = Vec::with_capacity(scan.rows.len());
        for t in &scan.rows {
            legs.push(visible_legs(&identity, reader.movement(t.out_seq)?));
        }
        Ok((scan, legs))
    })
    .await
    .map_err(|e| ApiError::new(Code::Internal, e.to_string()))??;
    let rows: Vec<_> = scan
        .rows
        .iter()
        .zip(&legs)
        .map(|(t, l)| render::transfer(t, l))
        .collect();
    let paging = Paging {
        page: 1,
        limit,
        ..Paging::default()
    };
    let total = (!scan.has_more).then_some(rows.len() as u64);
    Ok(list(rows, meta(&paging, total, scan.has_more, None)))
}

/// Who the credential is: its name, scopes and warehouses, and the change feed's position.
#[derive(serde::Serialize, ToSchema)]
pub struct WhoAmI<'a> {
    /// The token's name or the partner's id.
    pub name: &'a str,
    /// As configured (`admin` implies every other, `inventory:write` implies read).
    pub scopes: Vec<&'static str>,
    /// The warehouses it is restricted to; `null` = every warehouse.
    #[schema(required = true)]
    pub warehouses: Option<&'a [String]>,
    /// The last journal seq: `after` for the first `GET /api/inventory/changes` of a client
    /// that wants only what happens from now on.
    pub feed_position: u64,
}

/// The calling credential: what the dashboard may show it.
#[utoipa::path(get, path = "/api/whoami", tag = "operations",
    security(("bearer" = ["inventory:read"])),
    responses((status = 200, description = "The credential.", body = One<WhoAmI>)),
)]
async fn whoami(g: Guard<ReadInventory>, state: State) -> Result<HttpResponse, ApiError> {
    let feed_position = state.store.reader().await?.seq_last()?;
    let out = WhoAmI {
        name: &g.name,
        scopes: g.scope_names(),
        warehouses: g.warehouses(),
        feed_position,
    };
    Ok(data(StatusCode::OK, &out))
}

/// Receive an in-transit transfer: its goods move into on_hand at the target.
#[utoipa::path(post, path = "/api/inventory/transfers/{id}/receive", tag = "transfers",
    params(("id" = String, Path, description = "`trf_…`.")),
    security(("bearer" = ["inventory:write"])),
    responses((status = 200, description = "The transfer, received.", body = One<render::TransferOut>)),
    extensions(("x-error-codes" = json!(["transfer_not_found", "already_received", "quantity_overflow"]))),
)]
async fn receive_transfer(
    g: Guard<WriteInventory>,
    req: HttpRequest,
    state: State,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let reader = state.store.reader().await?;
    let t = visible_transfer(&reader, &g, &id)?;
    // It sees the transfer, but receiving writes into the target.
    g.check_warehouse(&t.to)?;
    // The out leg never changes: read it now so the answer is a function of the outcome.
    let out_leg = visible_legs(&g, reader.movement(t.out_seq)?);
    drop(reader);
    let render = write::native(write::ok, move |a: &Applied| {
        let t = a
            .transfer
            .as_ref()
            .ok_or_else(|| ApiError::new(Code::Internal, "a receive recorded no transfer"))?;
        let legs: Vec<_> = out_leg.iter().chain(a.movements.iter()).cloned().collect();
        write::ser(&render::transfer(t, &legs))
    });
    Ok(write::write(&req, &state, &g, Command::Receive { transfer: id }, render).await)
}

// ---- bulk physical count ----

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"adjustments": [
    {"product_id": "p1", "warehouse_id": "default", "actual_quantity": 40, "reason": "cycle count"}]})))]
struct AdjustmentsBody {
    /// 1 to 1000 lines (422 `too_many_items` beyond), each product and warehouse at most
    /// once, applied all or nothing.
    #[schema(min_items = 1, max_items = 1000)]
    adjustments: Vec<AdjustmentLine>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AdjustmentLine {
    #[schema(value_type = Id)]
    product_id: String,
    /// Default: the default warehouse.
    #[schema(value_type = Option<Id>)]
    warehouse_id: Option<String>,
    /// The counted on_hand, ≥ 0.
    #[schema(minimum = 0)]
    actual_quantity: i64,
    #[schema(max_length = 500)]
    reason: Option<String>,
}

/// Bulk physical count (seed 003): set on_hand of many levels at once.
#[utoipa::path(post, path = "/api/inventory/adjustments", tag = "movements",
    security(("bearer" = ["inventory:write"])),
    responses((status = 201, description = "One row per line.", body = One<CountAnswer>)),
    extensions(("x-error-codes" = json!(["product_not_found", "warehouse_not_found", "insufficient_stock", "too_many_items", "quantity_overflow"]))),
)]
async fn post_adjustments(
    g: Guard<WriteInventory>,
    req: HttpRequest,
    state: State,
    body: Json<AdjustmentsBody>,
) -> Result<HttpResponse, ApiError> {
    let lines = body.0.adjustments;
    if lines.len() > crate::ledger::BATCH_LINES_MAX {
        return Err(ApiError::new(
            Code::TooManyItems,
            format!(
                "{} adjustments, at most {} in one request",
                lines.len(),
                crate::ledger::BATCH_LINES_MAX
            ),
        ));
    }
    let mut count = Vec::with_capacity(lines.len());
    for (i, line) in lines.into_iter().enumerate() {
        let field = |f: &str| format!("adjustments[{i}].{f}");
        check_id(&field("product_id"), &line.product_id)?;
        let warehouse = line.warehouse_id.unwrap_or_else(|| state.default_warehouse.clone());
        check_id(&field("warehouse_id"), &warehouse)?;
        g.check_warehouse(&warehouse)?;
        check_opt_text(&field("reason"), &line.reason, TEXT_CHARS_MAX)?;
        if line.actual_quantity < 0 {
            return Err(ApiError::invalid(&field("actual_quantity"), "must be zero or more"));
        }
        count.push(CountLine {
            product: line.product_id,
            warehouse,
            actual: line.actual_quantity,
            reason: line.reason,
        });
    }
    let render = write::native(write::created, |a: &Applied| write::ser(&count_answer(a)));
    Ok(write::write(&req, &state, &g, Command::Count(count), render).await)
}

#[derive(serde::Serialize, ToSchema)]
struct CountRow<'a> {
    /// `mov_<seq>` of the line's movement.
    id: String,
    product_id: &'a str,
    warehouse_id: &'a str,
    quantity_before: i64,
    quantity_after: i64,
    adjustment: i64,
    #[schema(required = true)]
    reason: Option<&'a str>,
    #[schema(format = DateTime)]
    created_at: String,
}

#[derive(serde::Serialize, ToSchema)]
struct CountAnswer<'a> {
    /// Lines in the request.
    adjustments_processed: usize,
    /// Lines that changed on_hand.
    total_adjustments: usize,
    #[schema(required = true)]
    batch_id: Option<&'a str>,
    adjustments: Vec<CountRow<'a>>,
}

fn count_answer(applied: &Applied) -> CountAnswer<'_> {
    let rows: Vec<CountRow> = applied
        .movements
        .iter()
        .map(|m| CountRow {
            id: format!("mov_{}", m.seq),
            product_id: &m.draft.product,
            warehouse_id: &m.draft.warehouse,
            quantity_before: m.draft.before.on_hand,
            quantity_after: m.after().on_hand,
            adjustment: m.draft.delta.on_hand,
            reason: m.draft.reason.as_deref(),
            created_at: crate::clock::rfc3339_ms(m.at_ms),
        })
        .collect();
    CountAnswer {
        adjustments_processed: rows.len(),
        total_adjustments: rows.iter().filter(|r| r.adjustment != 0).count(),
        batch_id: applied.batch.as_deref(),
        adjustments: rows,
    }
}

// ---- analytics (seed 003) ----

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AnalyticsQuery {
    /// The last N whole UTC days including today (default `30d`).
    #[param(value_type = Option<Period>)]
    period: Option<String>,
    /// Only this warehouse.
    warehouse_id: Option<String>,
}

/// `period` of the analytics.
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only: `period_days` reads the string
enum Period {
    #[schema(rename = "7d")]
    Days7,
    #[schema(rename = "30d")]
    Days30,
    #[schema(rename = "90d")]
    Days90,
    #[schema(rename = "1y")]
    Year,
}

/// Seed 003 analytics (see docs/dialects.md for every figure's definition).
#[derive(serde::Serialize, ToSchema)]
struct Analytics<'a> {
    #[schema(value_type = Period)]
    period: &'a str,
    #[schema(required = true)]
    warehouse_id: Option<&'a str>,
    overview: Overview,
    trends: Trends,
    /// The 10 products with the most movements in the period.
    top_movers: Vec<Mover<'a>>,
    low_stock_alerts: Vec<Alert<'a>>,
}

#[derive(serde::Serialize, ToSchema)]
struct Overview {
    total_products: u64,
    /// Σ on_hand × unit_cost, exact.
    #[schema(value_type = f64)]
    total_stock_value: Box<RawValue>,
    low_stock_items: i64,
    out_of_stock_items: i64,
}

#[derive(serde::Serialize, ToSchema)]
struct Trends {
    stock_in: i64,
    stock_out: i64,
    adjustments: u64,
    movements: u64,
}

#[derive(serde::Serialize, ToSchema)]
struct Mover<'a> {
    product_id: &'a str,
    product_name: &'a str,
    movement_count: u64,
    total_quantity: i64,
}

#[derive(serde::Serialize, ToSchema)]
struct Alert<'a> {
    product_id: &'a str,
    product_name: &'a str,
    current_stock: i64,
    #[schema(required = true)]
    reorder_point: Option<i64>,
    /// The warehouse's name.
    warehouse: &'a str,
    warehouse_id: &'a str,
}

/// The periods of seed 003, in whole UTC days ending today.
pub fn period_days(period: &str) -> Option<i64> {
    match period {
        "7d" => Some(7),
        "30d" => Some(30),
        "90d" => Some(90),
        "1y" => Some(365),
        _ => None,
    }
}

/// Stock analytics over a period (seed 003).
#[utoipa::path(get, path = "/api/inventory/analytics", tag = "analytics",
    params(AnalyticsQuery),
    security(("bearer" = ["inventory:read"])),
    responses((status = 200, description = "Overview, trends, top movers and low-stock alerts.", body = One<Analytics>)),
    extensions(("x-error-codes" = json!(["invalid_field", "warehouse_not_found"]))),
)]
async fn analytics(g: Guard<ReadInventory>, state: State, q: Query<AnalyticsQuery>) -> Result<HttpResponse, ApiError> {
    let q = q.0;
    let period = q.period.unwrap_or_else(|| "30d".to_string());
    let days = period_days(&period).ok_or_else(|| ApiError::invalid("period", "must be one of 7d, 30d, 90d, 1y"))?;
    let warehouse = match q.warehouse_id {
        Some(w) => {
            g.check_warehouse(&w)?;
            Some(w)
        }
        None => list_warehouse(&g, None)?,
    };
    let reader = state.store.reader().await?;
    if let Some(w) = &warehouse {
        if reader.warehouse(w)?.is_none() {
            return Err(ApiError::new(
                Code::WarehouseNotFound,
                format!("warehouse `{w}` does not exist"),
            ));
        }
    }
    let today = crate::store::rollup::day_of(crate::clock::now_ms());
    let a = reader.analytics(warehouse.as_deref(), today - days + 1, today)?;
    let mut names = Names::new(&reader);
    for (p, _) in &a.top_movers {
        names.load(p, warehouse.as_deref().unwrap_or(&state.default_warehouse))?;
    }
    for (p, w, _) in &a.low_stock_alerts {
        names.load(p, w)?;
    }
    let out = Analytics {
        period: &period,
        warehouse_id: warehouse.as_deref(),
        overview: Overview {
            total_products: a.total_products,
            total_stock_value: render::money_micros(a.stock_value_micros),
            low_stock_items: a.low_stock_items,
            out_of_stock_items: a.out_of_stock_items,
        },
        trends: Trends {
            stock_in: a.trends.stock_in,
            stock_out: a.trends.stock_out,
            adjustments: a.trends.adjustments,
            movements: a.trends.movements,
        },
        top_movers: a
            .top_movers
            .iter()
            .map(|(p, r)| Mover {
                product_id: p,
                product_name: names.product(p).name,
                movement_count: r.movements,
                total_quantity: r.moved,
            })
            .collect(),
        low_stock_alerts: a
            .low_stock_alerts
            .iter()
            .map(|(p, w, l)| Alert {
                product_id: p,
                product_name: names.product(p).name,
                current_stock: l.buckets.available(),
                reorder_point: l.reorder_point,
                warehouse: names.warehouse(w).name,
                warehouse_id: w,
            })
            .collect(),
    };
    Ok(data(StatusCode::OK, &out))
}
