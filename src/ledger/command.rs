//! What a request asks the ledger to do, parsed and bounded at the edge.

use super::model::{Decimal, Product, Warehouse};

/// Most lines one batch command may carry (seed 003 bulk adjustments allow 1000).
pub const BATCH_LINES_MAX: usize = 1000;

/// Free-form fields a movement carries into the journal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    pub reason: Option<String>,
    pub reference_type: Option<String>,
    pub reference_id: Option<String>,
    pub note: Option<String>,
    pub cost_per_unit: Option<Decimal>,
}

/// The change a single movement asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Receive `n > 0` into on_hand.
    In(i64),
    /// Ship `n > 0` out of on_hand, checked against available.
    Out(i64),
    /// Signed, non-zero correction of on_hand.
    Adjust(i64),
    /// Absolute count `n ≥ 0` of on_hand.
    Set(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveCmd {
    pub product: String,
    pub warehouse: String,
    pub op: Op,
    /// Compare-and-set: refuse unless on_hand equals this.
    pub expected_on_hand: Option<i64>,
    pub meta: Meta,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferCmd {
    pub product: String,
    pub from: String,
    pub to: String,
    pub quantity: i64,
    /// Land in the target's in_transit bucket until received.
    pub in_transit: bool,
    pub expected_on_hand: Option<i64>,
    pub meta: Meta,
}

/// One line of a bulk physical count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountLine {
    pub product: String,
    pub warehouse: String,
    pub actual: i64,
    pub reason: Option<String>,
}

/// Most sales channels one level may display stock for.
pub const CHANNELS_MAX: usize = 64;

/// A partner's absolute stock for one product in one warehouse (seed 001).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetStockLine {
    pub product: String,
    pub warehouse: String,
    /// Sets `on_hand − allocated − damaged` (so it includes the buffer).
    pub available: i64,
    pub buffer: i64,
    /// Displayed quantity per channel; replaces the level's channel stock.
    pub channels: Vec<(String, i64)>,
}

/// Longest a reservation may hold stock, in milliseconds (7 days).
pub const RESERVATION_TTL_MS_MAX: i64 = 7 * 24 * 3600 * 1000;

/// Hold `quantity` of available stock for `ttl_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveCmd {
    pub product: String,
    pub warehouse: String,
    pub quantity: i64,
    pub ttl_ms: i64,
    pub reference_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PatchLevel {
    pub product: String,
    pub warehouse: String,
    pub reorder_point: Option<i64>,
    pub max_stock_level: Option<i64>,
    pub buffer: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    PutWarehouse(Warehouse),
    /// Create or replace a product (its `updated_ms` is set by the ledger).
    PutProduct(Product),
    Move(MoveCmd),
    /// Several movements that commit together or not at all.
    Batch(Vec<MoveCmd>),
    Transfer(TransferCmd),
    Receive {
        transfer: String,
    },
    Count(Vec<CountLine>),
    /// Partner stock updates: absolute available, buffer and channel stock, one batch.
    SetStock(Vec<SetStockLine>),
    PatchLevel(PatchLevel),
    Reserve(ReserveCmd),
    /// Ship a reservation: its allocated stock leaves on_hand.
    CommitReservation {
        id: String,
    },
    /// Give a reservation's stock back to available.
    ReleaseReservation {
        id: String,
    },
    /// Release these reservations if they are still active and their time has run out.
    ExpireReservations {
        ids: Vec<String>,
    },
}

impl Command {
    /// Rough size, used to bound how much one group commit takes in.
    pub fn weight(&self) -> usize {
        match self {
            Command::Batch(lines) => lines.len().max(1),
            Command::Count(lines) => lines.len().max(1),
            Command::SetStock(lines) => lines.len().max(1),
            // Each id is a journal entry of its own.
            Command::ExpireReservations { ids } => ids.len().max(1),
            _ => 1,
        }
    }
}
