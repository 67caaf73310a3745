//! The native (seed 003) JSON shapes of ledger values.

use serde::Serialize;
use serde_json::value::RawValue;

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

#[derive(Serialize)]
pub struct Ref<'a> {
    pub id: &'a str,
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<&'a str>,
}

#[derive(Serialize)]
pub struct ProductOut<'a> {
    pub id: &'a str,
    pub sku: &'a str,
    pub name: &'a str,
    pub barcode: Option<&'a str>,
    pub category: Option<&'a str>,
    pub brand: Option<&'a str>,
    pub unit_cost: Option<Box<RawValue>>,
    pub prices: std::collections::BTreeMap<&'a str, Box<RawValue>>,
    pub updated_at: String,
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
    }
}

#[derive(Serialize)]
pub struct WarehouseOut<'a> {
    pub id: &'a str,
    pub name: &'a str,
}

pub fn warehouse(w: &Warehouse) -> WarehouseOut<'_> {
    WarehouseOut {
        id: &w.id,
        name: &w.name,
    }
}

/// One row of `GET /api/inventory`.
#[derive(Serialize)]
pub struct LevelOut<'a> {
    pub id: String,
    pub product: Ref<'a>,
    pub warehouse: Ref<'a>,
    pub quantity_on_hand: i64,
    pub quantity_allocated: i64,
    pub quantity_available: i64,
    pub quantity_damaged: i64,
    pub quantity_buffer: i64,
    pub quantity_in_transit: i64,
    pub reorder_point: Option<i64>,
    pub max_stock_level: Option<i64>,
    pub last_counted: Option<String>,
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

#[derive(Serialize, Default)]
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

#[derive(Serialize)]
pub struct Actor<'a> {
    pub id: &'a str,
    pub name: &'a str,
}

/// A journal entry in the seed-003 shape (plus the journal's own fields).
#[derive(Serialize)]
pub struct MovementOut<'a> {
    pub id: String,
    pub seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<Ref<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warehouse: Option<Ref<'a>>,
    pub product_id: &'a str,
    pub warehouse_id: &'a str,
    pub movement_type: &'static str,
    pub kind: &'static str,
    pub quantity: i64,
    pub balance_before: i64,
    pub balance_after: i64,
    pub in_transit_before: i64,
    pub in_transit_after: i64,
    pub reason: Option<&'a str>,
    pub reference_type: Option<&'a str>,
    pub reference_id: Option<&'a str>,
    pub notes: Option<&'a str>,
    pub cost_per_unit: Option<Box<RawValue>>,
    pub transfer_id: Option<&'a str>,
    pub batch_id: Option<&'a str>,
    pub created_at: String,
    pub created_by: Actor<'a>,
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

#[derive(Serialize)]
pub struct TransferOut<'a> {
    pub transfer_id: &'a str,
    pub status: &'static str,
    pub product_id: &'a str,
    pub from_warehouse_id: &'a str,
    pub to_warehouse_id: &'a str,
    pub quantity: i64,
    pub in_transit: bool,
    pub created_at: String,
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
#[derive(Serialize)]
pub struct Meta {
    pub total: Option<u64>,
    pub page: u64,
    pub limit: u64,
    #[serde(rename = "hasMore")]
    pub has_more: bool,
    pub next_cursor: Option<String>,
}

#[derive(Serialize)]
pub struct List<T: Serialize> {
    pub data: Vec<T>,
    pub meta: Meta,
}

/// An id as the dialects show it: a JSON number, digit for digit, when it is all digits
/// (and a valid JSON number: no leading zero), else a string. Never through a float.
pub fn dialect_id(id: &str) -> Box<RawValue> {
    let numeric = !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_digit())
        && (id.len() == 1 || !id.starts_with('0'));
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
