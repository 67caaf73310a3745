//! Events derived from journal entries (API.md "Outbound"): what one entry yields, the
//! body every sink sends, and the id that stays the same on every attempt.

use serde::Serialize;

use crate::http::render::{self, LevelOut, MovementOut, Ref};
use crate::ledger::{Kind, Level, Movement};
use crate::store::{Reader, StoreError};

/// The event types, in the order one entry yields them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    MovementCreated,
    LowStock,
    OutOfStock,
    ReservationExpired,
}

impl EventType {
    pub const ALL: [EventType; 4] = [
        EventType::MovementCreated,
        EventType::LowStock,
        EventType::OutOfStock,
        EventType::ReservationExpired,
    ];
    /// For error messages.
    pub const NAMES: &'static str = "movement.created, level.low_stock, level.out_of_stock, reservation.expired";

    pub fn name(self) -> &'static str {
        match self {
            EventType::MovementCreated => "movement.created",
            EventType::LowStock => "level.low_stock",
            EventType::OutOfStock => "level.out_of_stock",
            EventType::ReservationExpired => "reservation.expired",
        }
    }

    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.name() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// Which events a sink wants.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Bit set of [`EventType`]s; `None`: all.
    types: Option<u8>,
    /// `None`: every warehouse.
    pub warehouses: Option<Vec<String>>,
}

impl Filter {
    /// From checked config values (unknown names were refused at start).
    pub fn new(types: Option<&[String]>, warehouses: Option<&[String]>) -> Filter {
        Filter {
            types: types.map(|ts| {
                ts.iter()
                    .filter_map(|t| EventType::parse(t))
                    .fold(0u8, |bits, t| bits | t.bit())
            }),
            warehouses: warehouses.map(<[String]>::to_vec),
        }
    }

    fn wants(&self, ty: EventType, warehouse: &str) -> bool {
        self.types.is_none_or(|bits| bits & ty.bit() != 0)
            && self
                .warehouses
                .as_ref()
                .is_none_or(|ws| ws.iter().any(|w| w == warehouse))
    }
}

/// One event, ready to send: its body and id are fixed, so every attempt sends the same.
#[derive(Debug, Clone)]
pub struct Event {
    pub seq: u64,
    pub ty: EventType,
    /// `msg_<seq>`, or `msg_<seq>_<type>` when the entry yields several events.
    pub id: String,
    pub warehouse: String,
    pub body: Vec<u8>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    timestamp: String,
    data: Data<'a>,
}

#[derive(Serialize)]
struct Data<'a> {
    seq: u64,
    movement: MovementOut<'a>,
    level: LevelOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reservation_id: Option<&'a str>,
}

/// The types one entry yields, before any filter (the ids depend on this set, not on who
/// receives them). `reorder_point` is the level's current one: the journal does not keep
/// planning fields.
pub fn types_of(m: &Movement, reorder_point: Option<i64>) -> Vec<EventType> {
    let mut types = vec![EventType::MovementCreated];
    let (before, after) = (m.draft.before.available(), m.after().available());
    if reorder_point.is_some_and(|rp| before > rp && after <= rp) {
        types.push(EventType::LowStock);
    }
    if before > 0 && after <= 0 {
        types.push(EventType::OutOfStock);
    }
    if m.draft.kind == Kind::Release && m.draft.reason.as_deref() == Some("expired") {
        types.push(EventType::ReservationExpired);
    }
    types
}

/// The events of one journal entry that `filter` lets through.
pub fn derive(reader: &Reader, m: &Movement, filter: &Filter) -> Result<Vec<Event>, StoreError> {
    let d = &m.draft;
    let current = reader.level(&d.product, &d.warehouse)?.unwrap_or_default();
    let types = types_of(m, current.reorder_point);
    let wanted: Vec<EventType> = types
        .iter()
        .copied()
        .filter(|t| filter.wants(*t, &d.warehouse))
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let product = reader.product(&d.product)?;
    let warehouse = reader.warehouse(&d.warehouse)?;
    // The level as this entry left it: its buckets from the journal, planning fields as
    // they stand now.
    let level = Level {
        buckets: m.after(),
        updated_ms: m.at_ms,
        ..current
    };
    let product_ref = Ref {
        id: &d.product,
        name: product.as_ref().map(|p| p.name.as_str()).unwrap_or(""),
        sku: Some(product.as_ref().map(|p| p.sku.as_str()).unwrap_or("")),
    };
    let warehouse_ref = Ref {
        id: &d.warehouse,
        name: warehouse.as_ref().map(|w| w.name.as_str()).unwrap_or(""),
        sku: None,
    };
    let mut data = Data {
        seq: m.seq,
        movement: render::movement(m, None, None),
        level: render::level(product_ref, warehouse_ref, &level),
        reservation_id: None,
    };
    let mut events = Vec::with_capacity(wanted.len());
    for ty in wanted {
        data.reservation_id = (ty == EventType::ReservationExpired)
            .then_some(d.reference_id.as_deref())
            .flatten();
        let body = Body {
            ty: ty.name(),
            timestamp: crate::clock::rfc3339_ms(m.at_ms),
            data,
        };
        let bytes = serde_json::to_vec(&body).map_err(|e| StoreError::Internal(e.to_string()))?;
        data = body.data;
        let id = match types.len() {
            1 => format!("msg_{}", m.seq),
            _ => format!("msg_{}_{}", m.seq, ty.name()),
        };
        events.push(Event {
            seq: m.seq,
            ty,
            id,
            warehouse: d.warehouse.clone(),
            body: bytes,
        });
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Buckets;

    fn entry(kind: Kind, before: i64, delta: i64) -> Movement {
        let on_hand = |n| Buckets {
            on_hand: n,
            ..Buckets::default()
        };
        Movement {
            seq: 7,
            ..Movement::sample(kind, on_hand(before), on_hand(delta))
        }
    }

    #[test]
    fn crossings_fire_only_when_the_line_is_crossed() {
        let t = |before, delta, rp| types_of(&entry(Kind::Out, before, delta), rp);
        assert_eq!(t(10, -5, Some(5)), [EventType::MovementCreated, EventType::LowStock]);
        assert_eq!(t(5, -1, Some(5)), [EventType::MovementCreated], "already at the line");
        assert_eq!(t(3, -3, None), [EventType::MovementCreated, EventType::OutOfStock]);
        assert_eq!(
            t(10, -10, Some(2)),
            [EventType::MovementCreated, EventType::LowStock, EventType::OutOfStock]
        );
        assert_eq!(t(0, -1, Some(2)), [EventType::MovementCreated], "below zero already");
        assert_eq!(
            t(0, 5, Some(2)),
            [EventType::MovementCreated],
            "going up crosses nothing"
        );
    }

    #[test]
    fn filters_take_types_and_warehouses() {
        let f = Filter::new(Some(&["level.low_stock".to_string()]), Some(&["w".to_string()]));
        assert!(f.wants(EventType::LowStock, "w"));
        assert!(!f.wants(EventType::MovementCreated, "w"));
        assert!(!f.wants(EventType::LowStock, "x"));
        assert!(Filter::default().wants(EventType::ReservationExpired, "any"));
    }
}
