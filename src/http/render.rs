//! The native (seed 003) JSON shapes of ledger values.

use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::clock::rfc3339_ms;
use crate::ledger::{Decimal, Level, Movement, Product, Transfer, Warehouse};

/// A decimal rendered as a JSON number, exactly (`25.00`), never through a float.
pub fn decimal(d: Decimal) -> Box<RawValue> {
    RawValue::from_string(d.to_string()).unwrap_or_else(|_| zero())
}

/// A sum of money in millionths, rendered exactly.
pub fn money_micros(micros: i128) -> Box<RawValue> {
    RawValue::from_string(crate::ledger::model::micros_text(micros)).unwrap_or_else(|_| zero())
}

fn zero() -> Box<RawValue> {
    RawValue::from_string("0".to_string()).unwrap_or_default()
}

/// An id in a request (product, warehouse, sku, barcode, reference): 1–128 bytes without
/// control characters (`native::check_id`; JSON Schema counts characters, not bytes).
pub struct Id;

impl utoipa::PartialSchema for Id {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "1–128 bytes (UTF-8) without control characters: `prod_123`, `1031046355` and 39-digit numbers are all just strings.",
            ))
            .min_length(Some(1))
            .max_length(Some(crate::ledger::ID_LEN_MAX))
            .pattern(Some("^[^\\u0000-\\u001F\\u007F-\\u009F]+$"))
            .into()
    }
}

impl ToSchema for Id {}

/// A product or warehouse named in a row: `sku` only on products.
#[derive(Serialize, ToSchema)]
pub struct Ref<'a> {
    pub id: &'a str,
    /// Empty when the product or warehouse has no catalog entry.
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<&'a str>,
}

/// A catalog product.
#[derive(Serialize, ToSchema)]
#[schema(as = Product)]
pub struct ProductOut<'a> {
    pub id: &'a str,
    pub sku: &'a str,
    pub name: &'a str,
    #[schema(required = true)]
    pub barcode: Option<&'a str>,
    #[schema(required = true)]
    pub category: Option<&'a str>,
    #[schema(required = true)]
    pub brand: Option<&'a str>,
    /// Money: exact, at least two decimals (`25.00`).
    #[schema(required = true, value_type = Option<f64>, minimum = 0)]
    pub unit_cost: Option<Box<RawValue>>,
    /// Named prices (`{"retail": 12.50}`), exact.
    #[schema(value_type = BTreeMap<String, f64>)]
    pub prices: std::collections::BTreeMap<&'a str, Box<RawValue>>,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// The stable number the seed dialects show for this product (docs/dialects.md).
    #[schema(required = true)]
    pub number: Option<u64>,
}

pub fn product(p: &Product) -> ProductOut<'_> {
    ProductOut {
        id: &p.id,
        sku: &p.sku,
        name: &p.name,
        barcode: p.barcode.as_deref(),
        category: p.category.as_deref(),
        brand: p.brand.as_deref(),
        unit_cost: p.unit_cost.map(decimal),
        prices: p.prices.iter().map(|(k, v)| (k.as_str(), decimal(*v))).collect(),
        updated_at: rfc3339_ms(p.updated_ms),
        number: crate::ledger::number_of(p.number, &p.id),
    }
}

/// A warehouse.
#[derive(Serialize, ToSchema)]
#[schema(as = Warehouse)]
pub struct WarehouseOut<'a> {
    pub id: &'a str,
    pub name: &'a str,
    /// The stable number the seed dialects show for this warehouse (`0`: the default one).
    #[schema(required = true)]
    pub number: Option<u64>,
}

pub fn warehouse(w: &Warehouse) -> WarehouseOut<'_> {
    WarehouseOut {
        id: &w.id,
        name: &w.name,
        number: crate::ledger::number_of(w.number, &w.id),
    }
}

/// One row of `GET /api/inventory`: a product's stock in one warehouse.
#[derive(Serialize, ToSchema)]
#[schema(as = Level)]
pub struct LevelOut<'a> {
    /// `inv_<product>:<warehouse>`.
    pub id: String,
    pub product: Ref<'a>,
    pub warehouse: Ref<'a>,
    pub quantity_on_hand: i64,
    pub quantity_allocated: i64,
    /// on_hand − allocated − damaged − buffer.
    pub quantity_available: i64,
    pub quantity_damaged: i64,
    pub quantity_buffer: i64,
    pub quantity_in_transit: i64,
    #[schema(required = true)]
    pub reorder_point: Option<i64>,
    #[schema(required = true)]
    pub max_stock_level: Option<i64>,
    #[schema(required = true, format = DateTime)]
    pub last_counted: Option<String>,
    #[schema(required = true, format = DateTime)]
    pub updated_at: Option<String>,
    /// Displayed quantity per sales channel (set by partners, seed 001).
    pub channel_stock: std::collections::BTreeMap<&'a str, i64>,
}

pub fn level<'a>(product: Ref<'a>, warehouse: Ref<'a>, l: &'a Level) -> LevelOut<'a> {
    let b = &l.buckets;
    LevelOut {
        id: format!("inv_{}:{}", product.id, warehouse.id),
        product,
        warehouse,
        quantity_on_hand: b.on_hand,
        quantity_allocated: b.allocated,
        quantity_available: b.available(),
        quantity_damaged: b.damaged,
        quantity_buffer: b.buffer,
        quantity_in_transit: b.in_transit,
        reorder_point: l.reorder_point,
        max_stock_level: l.max_stock_level,
        last_counted: l.last_counted_ms.map(rfc3339_ms),
        updated_at: (l.updated_ms > 0).then(|| rfc3339_ms(l.updated_ms)),
        channel_stock: l.channel_stock.iter().map(|(c, q)| (c.as_str(), *q)).collect(),
    }
}

/// Sums over the warehouses shown (saturating).
#[derive(Serialize, Default, ToSchema)]
pub struct Totals {
    pub quantity_on_hand: i64,
    pub quantity_allocated: i64,
    pub quantity_available: i64,
    pub quantity_damaged: i64,
    pub quantity_buffer: i64,
    pub quantity_in_transit: i64,
}

impl Totals {
    /// Sums saturate: a total across warehouses is informational, never stored.
    pub fn add(&mut self, l: &Level) {
        let b = &l.buckets;
        self.quantity_on_hand = self.quantity_on_hand.saturating_add(b.on_hand);
        self.quantity_allocated = self.quantity_allocated.saturating_add(b.allocated);
        self.quantity_available = self.quantity_available.saturating_add(b.available());
        self.quantity_damaged = self.quantity_damaged.saturating_add(b.damaged);
        self.quantity_buffer = self.quantity_buffer.saturating_add(b.buffer);
        self.quantity_in_transit = self.quantity_in_transit.saturating_add(b.in_transit);
    }
}

/// Who wrote a movement: the token or partner name.
#[derive(Serialize, ToSchema)]
pub struct Actor<'a> {
    pub id: &'a str,
    pub name: &'a str,
}

/// A journal entry in the seed-003 shape (plus the journal's own fields).
#[derive(Serialize, ToSchema)]
#[schema(as = Movement)]
pub struct MovementOut<'a> {
    /// `mov_<seq>`.
    pub id: String,
    /// Position in the journal.
    pub seq: u64,
    /// Only in reads (`GET`), not in the answer to a write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<Ref<'a>>,
    /// Only in reads (`GET`), not in the answer to a write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warehouse: Option<Ref<'a>>,
    pub product_id: &'a str,
    pub warehouse_id: &'a str,
    /// The seed-003 family of `kind`.
    pub movement_type: &'static str,
    /// The journal's own kind.
    pub kind: &'static str,
    /// As the request stated it (signed for adjustments, the delta for counts).
    pub quantity: i64,
    /// on_hand before.
    pub balance_before: i64,
    /// on_hand after.
    pub balance_after: i64,
    pub in_transit_before: i64,
    pub in_transit_after: i64,
    #[schema(required = true)]
    pub reason: Option<&'a str>,
    #[schema(required = true)]
    pub reference_type: Option<&'a str>,
    #[schema(required = true)]
    pub reference_id: Option<&'a str>,
    #[schema(required = true)]
    pub notes: Option<&'a str>,
    /// Money: exact, at least two decimals.
    #[schema(required = true, value_type = Option<f64>, minimum = 0)]
    pub cost_per_unit: Option<Box<RawValue>>,
    #[schema(required = true)]
    pub transfer_id: Option<&'a str>,
    #[schema(required = true)]
    pub batch_id: Option<&'a str>,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub created_by: Actor<'a>,
    /// The entry's link in the hash chain (64 hex digits).
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub hash: String,
}

pub fn movement<'a>(m: &'a Movement, product: Option<Ref<'a>>, warehouse: Option<Ref<'a>>) -> MovementOut<'a> {
    let d = &m.draft;
    let after = m.after();
    MovementOut {
        id: format!("mov_{}", m.seq),
        seq: m.seq,
        product,
        warehouse,
        product_id: &d.product,
        warehouse_id: &d.warehouse,
        movement_type: d.kind.movement_type(),
        kind: d.kind.name(),
        quantity: d.quantity,
        balance_before: d.before.on_hand,
        balance_after: after.on_hand,
        in_transit_before: d.before.in_transit,
        in_transit_after: after.in_transit,
        reason: d.reason.as_deref(),
        reference_type: d.reference_type.as_deref(),
        reference_id: d.reference_id.as_deref(),
        notes: d.note.as_deref(),
        cost_per_unit: d.cost_per_unit.map(decimal),
        transfer_id: d.transfer.as_deref(),
        batch_id: m.batch.as_deref(),
        created_at: rfc3339_ms(m.at_ms),
        created_by: Actor {
            id: &m.actor,
            name: &m.actor,
        },
        hash: crate::hex(&m.hash),
    }
}

/// A transfer between two warehouses and its legs.
#[derive(Serialize, ToSchema)]
#[schema(as = Transfer)]
pub struct TransferOut<'a> {
    /// `trf_…`.
    pub transfer_id: &'a str,
    /// `in_transit` until received.
    pub status: &'static str,
    pub product_id: &'a str,
    pub from_warehouse_id: &'a str,
    pub to_warehouse_id: &'a str,
    pub quantity: i64,
    pub in_transit: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The out leg, then the in leg once it exists.
    pub legs: Vec<MovementOut<'a>>,
}

pub fn transfer<'a>(t: &'a Transfer, legs: &'a [Movement]) -> TransferOut<'a> {
    TransferOut {
        transfer_id: &t.id,
        status: if t.in_seq.is_some() { "received" } else { "in_transit" },
        product_id: &t.product,
        from_warehouse_id: &t.from,
        to_warehouse_id: &t.to,
        quantity: t.quantity,
        in_transit: t.in_transit,
        created_at: rfc3339_ms(t.created_ms),
        legs: legs.iter().map(|m| movement(m, None, None)).collect(),
    }
}

/// `meta` of a native list.
#[derive(Serialize, ToSchema)]
pub struct Meta {
    /// `null` on cursor pages (not counted).
    #[schema(required = true)]
    pub total: Option<u64>,
    pub page: u64,
    pub limit: u64,
    #[serde(rename = "hasMore")]
    pub has_more: bool,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// A native list: `{"data": [...], "meta": {...}}`.
#[derive(Serialize, ToSchema)]
pub struct List<T: Serialize> {
    pub data: Vec<T>,
    pub meta: Meta,
}

/// The envelope of single objects, `{"data": {...}}`, as `super::data` and
/// `super::write::native` write it (for the OpenAPI document).
#[derive(ToSchema)]
pub struct One<T> {
    pub data: T,
}

/// An id as the dialects show it: a JSON number, digit for digit, when it is all digits
/// (and a valid JSON number: no leading zero), else a string. Never through a float.
pub fn dialect_id(id: &str) -> Box<RawValue> {
    let numeric = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && (id.len() == 1 || !id.starts_with('0'));
    let text = if numeric {
        id.to_string()
    } else {
        serde_json::to_string(id).unwrap_or_else(|_| "\"\"".to_string())
    };
    RawValue::from_string(text).unwrap_or_else(|_| zero())
}

/// `2021-02-09T03:19:20Z`: RFC 3339 to the second (the dialects' `finished_at`).
pub fn rfc3339_s(ms: i64) -> String {
    let full = rfc3339_ms(ms);
    match full.split_once('.') {
        Some((head, _)) => format!("{head}Z"),
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_ids_render_digit_for_digit() {
        let long = "123456789012345678901234567890123456789";
        assert_eq!(dialect_id(long).get(), long);
        assert_eq!(dialect_id("prod_1").get(), "\"prod_1\"");
        assert_eq!(dialect_id("007").get(), "\"007\"");
        assert_eq!(dialect_id("0").get(), "0");
    }
}
