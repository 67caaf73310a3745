//! The rules: turn a command and the current state into effects, or refuse it whole.
//!
//! `apply` reads through [`State`] and writes nothing: it returns the [`Effects`] (journal
//! drafts and the levels they lead to) that the store then persists. A refused command
//! therefore leaves no trace, and the same function serves the property tests' model.

use std::collections::HashMap;

use super::command::{
    Command, CountLine, Meta, MoveCmd, Op, PatchLevel, ReserveCmd, SetStockLine, TransferCmd, BATCH_LINES_MAX,
    CHANNELS_MAX, RESERVATION_TTL_MS_MAX,
};
use super::model::{
    direct_number, Buckets, Draft, Kind, Level, NumberSpace, Product, Reservation, ReservationStatus, Transfer,
    Warehouse, DEFAULT_WAREHOUSE, NUMBER_ASSIGNED_MIN, NUMBER_MAX,
};

/// What the ledger needs to read. The store implements it over a write transaction.
pub trait State {
    fn level(&mut self, product: &str, warehouse: &str) -> Result<Option<Level>, Fault>;
    fn product(&mut self, id: &str) -> Result<Option<Product>, Fault>;
    fn product_by_sku(&mut self, sku: &str) -> Result<Option<String>, Fault>;
    fn warehouse(&mut self, id: &str) -> Result<Option<Warehouse>, Fault>;
    fn transfer(&mut self, id: &str) -> Result<Option<Transfer>, Fault>;

    /// A reservation by id (a state without reservations has none).
    fn reservation(&mut self, _id: &str) -> Result<Option<Reservation>, Fault> {
        Ok(None)
    }

    /// Existence checks on the hot path; override to skip decoding the row.
    fn has_product(&mut self, id: &str) -> Result<bool, Fault> {
        Ok(self.product(id)?.is_some())
    }
    fn has_warehouse(&mut self, id: &str) -> Result<bool, Fault> {
        Ok(self.warehouse(id)?.is_some())
    }

    /// The id the store assigned `number` to in `space` (a state without numbers has none).
    fn numbered(&mut self, _space: NumberSpace, _number: u64) -> Result<Option<String>, Fault> {
        Ok(None)
    }
}

/// A failure of the state underneath (storage), not of the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault(pub String);

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerError {
    ProductNotFound(String),
    WarehouseNotFound(String),
    TransferNotFound(String),
    InsufficientStock {
        product: String,
        warehouse: String,
        available: i64,
        requested: i64,
    },
    QuantityMismatch {
        expected: i64,
        actual: i64,
    },
    Overflow {
        product: String,
        warehouse: String,
    },
    AlreadyReceived(String),
    ReservationNotFound(String),
    /// The reservation was committed, released or expired already.
    ReservationClosed {
        id: String,
        status: ReservationStatus,
    },
    SkuTaken {
        sku: String,
        owner: String,
    },
    /// A new id's number already names another product or warehouse.
    NumberTaken {
        number: u64,
        owner: String,
    },
    Invalid {
        field: String,
        reason: String,
    },
    TooManyItems {
        count: usize,
        max: usize,
    },
    /// The error of one line of a batch, with its index.
    Line(usize, Box<LedgerError>),
    Storage(String),
}

impl LedgerError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> LedgerError {
        LedgerError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The error itself, without the line it happened on.
    pub fn root(&self) -> &LedgerError {
        match self {
            LedgerError::Line(_, inner) => inner.root(),
            other => other,
        }
    }
}

impl std::fmt::Display for LedgerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LedgerError::ProductNotFound(id) => write!(f, "product `{id}` does not exist"),
            LedgerError::WarehouseNotFound(id) => write!(f, "warehouse `{id}` does not exist"),
            LedgerError::TransferNotFound(id) => write!(f, "transfer `{id}` does not exist"),
            LedgerError::InsufficientStock {
                product,
                warehouse,
                available,
                requested,
            } => write!(
                f,
                "product `{product}` in warehouse `{warehouse}` has {available} available, {requested} requested"
            ),
            LedgerError::QuantityMismatch { expected, actual } => {
                write!(f, "expected on_hand {expected}, but it is {actual}")
            }
            LedgerError::Overflow { product, warehouse } => write!(
                f,
                "the quantity of product `{product}` in warehouse `{warehouse}` would overflow a 64-bit integer"
            ),
            LedgerError::AlreadyReceived(id) => write!(f, "transfer `{id}` was already received"),
            LedgerError::ReservationNotFound(id) => write!(f, "reservation `{id}` does not exist"),
            LedgerError::ReservationClosed { id, status } => {
                write!(f, "reservation `{id}` is {} and no longer holds stock", status.name())
            }
            LedgerError::SkuTaken { sku, owner } => {
                write!(f, "sku `{sku}` already belongs to product `{owner}`")
            }
            LedgerError::NumberTaken { number, owner } => {
                write!(f, "number {number} already names `{owner}`: choose another id")
            }
            LedgerError::Invalid { field, reason } => write!(f, "`{field}`: {reason}"),
            LedgerError::TooManyItems { count, max } => {
                write!(f, "{count} items, at most {max} are allowed in one request")
            }
            LedgerError::Line(index, inner) => write!(f, "item {index}: {inner}"),
            LedgerError::Storage(msg) => write!(f, "storage: {msg}"),
        }
    }
}

impl From<Fault> for LedgerError {
    fn from(fault: Fault) -> LedgerError {
        LedgerError::Storage(fault.0)
    }
}

/// Policy that is configuration, not data.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub allow_negative: bool,
    /// Per-warehouse override of `allow_negative`.
    pub allow_negative_in: HashMap<String, bool>,
}

impl Rules {
    pub fn allows_negative(&self, warehouse: &str) -> bool {
        *self.allow_negative_in.get(warehouse).unwrap_or(&self.allow_negative)
    }
}

/// A transfer the command starts; the store names it after its out leg's seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransfer {
    pub product: String,
    pub from: String,
    pub to: String,
    pub quantity: i64,
    pub in_transit: bool,
}

/// Everything a command changes. Empty `drafts` and no catalog change = nothing to write.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Effects {
    /// Journal entries in order; they share one batch when there is more than one.
    pub drafts: Vec<Draft>,
    /// The levels after the drafts (and planning changes), keyed (product, warehouse).
    pub levels: Vec<((String, String), Level)>,
    pub product: Option<Product>,
    /// The product `product` replaces, so the store can fix its indexes.
    pub product_before: Option<Product>,
    pub warehouse: Option<Warehouse>,
    /// A catalog entry was created rather than replaced.
    pub created: bool,
    pub new_transfer: Option<NewTransfer>,
    pub received_transfer: Option<Transfer>,
    /// A reservation the command opens; the store names it after its movement's seq.
    pub new_reservation: Option<Reservation>,
    /// Reservations the command closes (status, `closed_ms` set; `close_seq` by the store).
    pub closed_reservations: Vec<Reservation>,
    /// Several drafts written as one batch (with a batch id).
    pub is_batch: bool,
}

/// Decides what `cmd` does against `state` at time `now_ms`, or why it is refused.
pub fn apply<S: State>(cmd: &Command, state: &mut S, rules: &Rules, now_ms: i64) -> Result<Effects, LedgerError> {
    let mut stage = Stage::new(state, rules, now_ms);
    match cmd {
        Command::PutWarehouse(w) => return put_warehouse(stage.state, w),
        Command::PutProduct(p) => return put_product(stage.state, p, now_ms),
        Command::Move(m) => stage.movement(m)?,
        Command::Batch(lines) => {
            check_lines(lines.len())?;
            for (i, m) in lines.iter().enumerate() {
                stage.movement(m).map_err(|e| LedgerError::Line(i, Box::new(e)))?;
            }
        }
        Command::Transfer(t) => stage.transfer(t)?,
        Command::Receive { transfer } => stage.receive(transfer)?,
        Command::Count(lines) => stage.count(lines)?,
        Command::SetStock(lines) => {
            check_lines(lines.len())?;
            let mut seen = foldhash::HashSet::with_capacity_and_hasher(lines.len(), Default::default());
            for (i, line) in lines.iter().enumerate() {
                if !seen.insert((line.product.as_str(), line.warehouse.as_str())) {
                    let e = LedgerError::invalid("sku", "the same product and warehouse appear twice");
                    return Err(LedgerError::Line(i, Box::new(e)));
                }
                stage.set_stock(line).map_err(|e| LedgerError::Line(i, Box::new(e)))?;
            }
        }
        Command::PatchLevel(p) => stage.patch(p)?,
        Command::Reserve(r) => stage.reserve(r)?,
        Command::CommitReservation { id } => stage.close_reservation(id, ReservationStatus::Committed)?,
        Command::ReleaseReservation { id } => stage.close_reservation(id, ReservationStatus::Released)?,
        Command::ExpireReservations { ids } => {
            if ids.len() > BATCH_LINES_MAX {
                return Err(LedgerError::TooManyItems {
                    count: ids.len(),
                    max: BATCH_LINES_MAX,
                });
            }
            for id in ids {
                // Skipped when no longer active or not yet due: the sweep may race its holder.
                if let Some(r) = stage.state.reservation(id)? {
                    if r.is_due(now_ms) {
                        stage.close(r, ReservationStatus::Expired)?;
                    }
                }
            }
        }
    }
    let mut effects = stage.finish();
    effects.is_batch =
        effects.drafts.len() > 1 || matches!(cmd, Command::Batch(_) | Command::Count(_) | Command::SetStock(_));
    Ok(effects)
}

fn check_lines(count: usize) -> Result<(), LedgerError> {
    if count == 0 {
        return Err(LedgerError::invalid("items", "at least one item is required"));
    }
    if count > BATCH_LINES_MAX {
        return Err(LedgerError::TooManyItems {
            count,
            max: BATCH_LINES_MAX,
        });
    }
    Ok(())
}

fn put_warehouse<S: State>(state: &mut S, w: &Warehouse) -> Result<Effects, LedgerError> {
    let before = state.warehouse(&w.id)?;
    let mut warehouse = w.clone();
    match &before {
        // A record keeps its number for good (the dialects' clients store it).
        Some(b) => warehouse.number = b.number,
        None => check_new_number(state, NumberSpace::Warehouse, &w.id, w.number)?,
    }
    Ok(Effects {
        warehouse: Some(warehouse),
        created: before.is_none(),
        ..Effects::default()
    })
}

/// Refuses a new id whose number — its own digits, or the one an import brings — already
/// names another record of the space; a new id without either gets a free one (the store).
fn check_new_number<S: State>(
    state: &mut S,
    space: NumberSpace,
    id: &str,
    given: Option<u64>,
) -> Result<(), LedgerError> {
    let direct = direct_number(id);
    let n = match (given, direct) {
        (None, None) => return Ok(()),
        (None, Some(n)) => n,
        (Some(g), Some(d)) if g != d => {
            return Err(LedgerError::invalid(
                "number",
                format!("an all-digit id is its own number ({d})"),
            ))
        }
        (Some(g), Some(_)) => g,
        (Some(g), None) if (NUMBER_ASSIGNED_MIN..=NUMBER_MAX).contains(&g) => g,
        (Some(_), None) => {
            return Err(LedgerError::invalid(
                "number",
                format!("must be from {NUMBER_ASSIGNED_MIN} to {NUMBER_MAX} for an id that is not all digits"),
            ))
        }
    };
    if let Some(owner) = state.numbered(space, n)? {
        if owner != id {
            return Err(LedgerError::NumberTaken { number: n, owner });
        }
    }
    // An imported number that an all-digit id already is.
    let digits = n.to_string();
    let held = match space {
        NumberSpace::Product => state.has_product(&digits)?,
        NumberSpace::Warehouse => state.has_warehouse(&digits)?,
    };
    if direct.is_none() && held {
        return Err(LedgerError::NumberTaken {
            number: n,
            owner: digits,
        });
    }
    Ok(())
}

fn put_product<S: State>(state: &mut S, p: &Product, now_ms: i64) -> Result<Effects, LedgerError> {
    if let Some(owner) = state.product_by_sku(&p.sku)? {
        if owner != p.id {
            return Err(LedgerError::SkuTaken {
                sku: p.sku.clone(),
                owner,
            });
        }
    }
    let before = state.product(&p.id)?;
    let mut product = p.clone();
    product.updated_ms = now_ms;
    match &before {
        Some(b) => product.number = b.number,
        None => check_new_number(state, NumberSpace::Product, &p.id, p.number)?,
    }
    Ok(Effects {
        created: before.is_none(),
        product: Some(product),
        product_before: before,
        ..Effects::default()
    })
}

/// Levels touched by one command, read once and changed in memory until the command is whole.
struct Stage<'a, S: State> {
    state: &'a mut S,
    rules: &'a Rules,
    now_ms: i64,
    levels: foldhash::HashMap<(String, String), Level>,
    /// Keys in first-touched order, so effects are deterministic.
    order: Vec<(String, String)>,
    drafts: Vec<Draft>,
    new_transfer: Option<NewTransfer>,
    received_transfer: Option<Transfer>,
    new_reservation: Option<Reservation>,
    closed_reservations: Vec<Reservation>,
}

impl<'a, S: State> Stage<'a, S> {
    fn new(state: &'a mut S, rules: &'a Rules, now_ms: i64) -> Self {
        Stage {
            state,
            rules,
            now_ms,
            levels: foldhash::HashMap::default(),
            order: Vec::new(),
            drafts: Vec::new(),
            new_transfer: None,
            received_transfer: None,
            new_reservation: None,
            closed_reservations: Vec::new(),
        }
    }

    fn finish(self) -> Effects {
        let mut levels = self.levels;
        let levels = self
            .order
            .into_iter()
            .filter_map(|k| levels.remove(&k).map(|l| (k, l)))
            .collect();
        Effects {
            drafts: self.drafts,
            levels,
            new_transfer: self.new_transfer,
            received_transfer: self.received_transfer,
            new_reservation: self.new_reservation,
            closed_reservations: self.closed_reservations,
            ..Effects::default()
        }
    }

    fn require_product(&mut self, id: &str) -> Result<(), LedgerError> {
        match self.state.has_product(id)? {
            true => Ok(()),
            false => Err(LedgerError::ProductNotFound(id.to_string())),
        }
    }

    fn require_warehouse(&mut self, id: &str) -> Result<(), LedgerError> {
        if id == DEFAULT_WAREHOUSE || self.state.has_warehouse(id)? {
            return Ok(());
        }
        Err(LedgerError::WarehouseNotFound(id.to_string()))
    }

    /// The level as this command has left it so far.
    fn level(&mut self, product: &str, warehouse: &str) -> Result<Level, LedgerError> {
        let key = (product.to_string(), warehouse.to_string());
        if let Some(l) = self.levels.get(&key) {
            return Ok(l.clone());
        }
        let level = self.state.level(product, warehouse)?.unwrap_or_default();
        self.levels.insert(key.clone(), level.clone());
        self.order.push(key);
        Ok(level)
    }

    fn store_level(&mut self, product: &str, warehouse: &str, level: Level) {
        let key = (product.to_string(), warehouse.to_string());
        if !self.levels.contains_key(&key) {
            self.order.push(key.clone());
        }
        self.levels.insert(key, level);
    }

    /// Applies `delta` to a level and journals it; `need_available` is how much of
    /// `available` the move consumes (checked unless the warehouse allows negative stock).
    #[allow(clippy::too_many_arguments)]
    fn post(
        &mut self,
        product: &str,
        warehouse: &str,
        kind: Kind,
        quantity: i64,
        delta: Buckets,
        need_available: i64,
        meta: &Meta,
        transfer: Option<String>,
    ) -> Result<Level, LedgerError> {
        let mut level = self.level(product, warehouse)?;
        let before = level.buckets;
        if need_available > 0 && !self.rules.allows_negative(warehouse) && before.available() < need_available {
            return Err(LedgerError::InsufficientStock {
                product: product.to_string(),
                warehouse: warehouse.to_string(),
                available: before.available(),
                requested: need_available,
            });
        }
        let after = before.checked_add(&delta).ok_or_else(|| LedgerError::Overflow {
            product: product.to_string(),
            warehouse: warehouse.to_string(),
        })?;
        // available itself must stay representable for every reader.
        if after
            .on_hand
            .checked_sub(after.allocated)
            .and_then(|v| v.checked_sub(after.damaged))
            .and_then(|v| v.checked_sub(after.buffer))
            .is_none()
        {
            return Err(LedgerError::Overflow {
                product: product.to_string(),
                warehouse: warehouse.to_string(),
            });
        }
        level.buckets = after;
        level.updated_ms = self.now_ms;
        if kind == Kind::Count {
            level.last_counted_ms = Some(self.now_ms);
        }
        self.store_level(product, warehouse, level.clone());
        self.drafts.push(Draft {
            product: product.to_string(),
            warehouse: warehouse.to_string(),
            kind,
            quantity,
            before,
            delta,
            reason: meta.reason.clone(),
            reference_type: meta.reference_type.clone(),
            reference_id: meta.reference_id.clone(),
            note: meta.note.clone(),
            cost_per_unit: meta.cost_per_unit,
            transfer,
        });
        Ok(level)
    }

    fn check_expected(&mut self, product: &str, warehouse: &str, expected: Option<i64>) -> Result<(), LedgerError> {
        if let Some(expected) = expected {
            let actual = self.level(product, warehouse)?.buckets.on_hand;
            if actual != expected {
                return Err(LedgerError::QuantityMismatch { expected, actual });
            }
        }
        Ok(())
    }

    fn movement(&mut self, m: &MoveCmd) -> Result<(), LedgerError> {
        self.require_product(&m.product)?;
        self.require_warehouse(&m.warehouse)?;
        self.check_expected(&m.product, &m.warehouse, m.expected_on_hand)?;
        let on_hand = |d: i64| Buckets {
            on_hand: d,
            ..Buckets::default()
        };
        let (kind, quantity, delta, need) = match m.op {
            Op::In(n) => {
                positive("quantity", n)?;
                (Kind::In, n, on_hand(n), 0)
            }
            Op::Out(n) => {
                positive("quantity", n)?;
                (Kind::Out, n, on_hand(-n), n)
            }
            Op::Adjust(d) => {
                if d == 0 {
                    return Err(LedgerError::invalid("quantity", "an adjustment must not be zero"));
                }
                // A downward correction may not take on_hand below zero.
                let current = self.level(&m.product, &m.warehouse)?.buckets.on_hand;
                if d < 0 && !self.rules.allows_negative(&m.warehouse) && current.saturating_add(d) < 0 {
                    return Err(LedgerError::InsufficientStock {
                        product: m.product.clone(),
                        warehouse: m.warehouse.clone(),
                        available: current,
                        requested: d.saturating_neg(),
                    });
                }
                (Kind::Adjustment, d, on_hand(d), 0)
            }
            Op::Set(n) => {
                if n < 0 {
                    return Err(LedgerError::invalid("quantity", "a count must be zero or more"));
                }
                let current = self.level(&m.product, &m.warehouse)?.buckets.on_hand;
                let d = n.checked_sub(current).ok_or_else(|| LedgerError::Overflow {
                    product: m.product.clone(),
                    warehouse: m.warehouse.clone(),
                })?;
                (Kind::Count, d, on_hand(d), 0)
            }
        };
        self.post(&m.product, &m.warehouse, kind, quantity, delta, need, &m.meta, None)?;
        Ok(())
    }

    fn transfer(&mut self, t: &TransferCmd) -> Result<(), LedgerError> {
        positive("quantity", t.quantity)?;
        if t.from == t.to {
            return Err(LedgerError::invalid("to_warehouse_id", "must differ from warehouse_id"));
        }
        self.require_product(&t.product)?;
        self.require_warehouse(&t.from)?;
        self.require_warehouse(&t.to)?;
        self.check_expected(&t.product, &t.from, t.expected_on_hand)?;
        let q = t.quantity;
        let out = Buckets {
            on_hand: -q,
            ..Buckets::default()
        };
        self.post(&t.product, &t.from, Kind::TransferOut, q, out, q, &t.meta, None)?;
        let into = if t.in_transit {
            Buckets {
                in_transit: q,
                ..Buckets::default()
            }
        } else {
            Buckets {
                on_hand: q,
                ..Buckets::default()
            }
        };
        self.post(&t.product, &t.to, Kind::TransferIn, q, into, 0, &t.meta, None)?;
        self.new_transfer = Some(NewTransfer {
            product: t.product.clone(),
            from: t.from.clone(),
            to: t.to.clone(),
            quantity: q,
            in_transit: t.in_transit,
        });
        Ok(())
    }

    fn receive(&mut self, id: &str) -> Result<(), LedgerError> {
        let transfer = self
            .state
            .transfer(id)?
            .ok_or_else(|| LedgerError::TransferNotFound(id.to_string()))?;
        if !transfer.in_transit || transfer.in_seq.is_some() {
            return Err(LedgerError::AlreadyReceived(id.to_string()));
        }
        let q = transfer.quantity;
        let delta = Buckets {
            on_hand: q,
            in_transit: -q,
            ..Buckets::default()
        };
        let meta = Meta {
            reference_type: Some("transfer".into()),
            reference_id: Some(id.to_string()),
            ..Meta::default()
        };
        self.post(
            &transfer.product,
            &transfer.to,
            Kind::Receive,
            q,
            delta,
            0,
            &meta,
            Some(id.to_string()),
        )?;
        self.received_transfer = Some(transfer);
        Ok(())
    }

    fn count(&mut self, lines: &[CountLine]) -> Result<(), LedgerError> {
        check_lines(lines.len())?;
        let mut seen = foldhash::HashSet::with_capacity_and_hasher(lines.len(), Default::default());
        for (i, line) in lines.iter().enumerate() {
            if !seen.insert((line.product.as_str(), line.warehouse.as_str())) {
                let e = LedgerError::invalid("product_id", "the same product and warehouse appear twice");
                return Err(LedgerError::Line(i, Box::new(e)));
            }
            let cmd = MoveCmd {
                product: line.product.clone(),
                warehouse: line.warehouse.clone(),
                op: Op::Set(line.actual),
                expected_on_hand: None,
                meta: Meta {
                    reason: line.reason.clone(),
                    ..Meta::default()
                },
            };
            self.movement(&cmd).map_err(|e| LedgerError::Line(i, Box::new(e)))?;
        }
        Ok(())
    }

    /// Seed 001: absolute available (`on_hand − allocated − damaged`) and buffer in one
    /// `count` movement, and the displayed channel stock on the level.
    fn set_stock(&mut self, line: &SetStockLine) -> Result<(), LedgerError> {
        self.require_product(&line.product)?;
        self.require_warehouse(&line.warehouse)?;
        if line.available < 0 {
            return Err(LedgerError::invalid("available_stock", "must be zero or more"));
        }
        if line.buffer < 0 || line.buffer > line.available {
            return Err(LedgerError::invalid(
                "buffer_stock",
                "must be between 0 and available_stock",
            ));
        }
        if line.channels.len() > CHANNELS_MAX {
            return Err(LedgerError::invalid(
                "channel_stock",
                format!("at most {CHANNELS_MAX} channels"),
            ));
        }
        let sellable = line.available - line.buffer; // both checked ≥ 0 above
        let mut codes = std::collections::HashSet::new();
        for (code, qty) in &line.channels {
            if !codes.insert(code.as_str()) {
                return Err(LedgerError::invalid(
                    "channel_stock",
                    format!("channel `{code}` appears twice"),
                ));
            }
            if *qty < 0 || *qty > sellable {
                return Err(LedgerError::invalid(
                    "channel_stock",
                    format!("qty of `{code}` must be between 0 and available_stock − buffer_stock ({sellable})"),
                ));
            }
        }
        let level = self.level(&line.product, &line.warehouse)?;
        let b = level.buckets;
        let overflow = || LedgerError::Overflow {
            product: line.product.clone(),
            warehouse: line.warehouse.clone(),
        };
        let on_hand = line
            .available
            .checked_add(b.allocated)
            .and_then(|v| v.checked_add(b.damaged))
            .ok_or_else(overflow)?;
        let delta = Buckets {
            on_hand: on_hand.checked_sub(b.on_hand).ok_or_else(overflow)?,
            buffer: line.buffer - b.buffer, // both ≥ 0
            ..Buckets::default()
        };
        let meta = Meta {
            reason: Some("partner_update".into()),
            ..Meta::default()
        };
        let mut level = self.post(
            &line.product,
            &line.warehouse,
            Kind::Count,
            delta.on_hand,
            delta,
            0,
            &meta,
            None,
        )?;
        level.channel_stock = line.channels.clone();
        self.store_level(&line.product, &line.warehouse, level);
        Ok(())
    }

    /// available → allocated, checked like an `out`.
    fn reserve(&mut self, r: &ReserveCmd) -> Result<(), LedgerError> {
        positive("quantity", r.quantity)?;
        if r.ttl_ms <= 0 || r.ttl_ms > RESERVATION_TTL_MS_MAX {
            return Err(LedgerError::invalid(
                "ttl_seconds",
                "must be between 1 and 604800 (7 days)",
            ));
        }
        self.require_product(&r.product)?;
        self.require_warehouse(&r.warehouse)?;
        let delta = Buckets {
            allocated: r.quantity,
            ..Buckets::default()
        };
        let meta = Meta {
            reference_type: r.reference_id.as_ref().map(|_| "reservation".to_string()),
            reference_id: r.reference_id.clone(),
            ..Meta::default()
        };
        self.post(
            &r.product,
            &r.warehouse,
            Kind::Reserve,
            r.quantity,
            delta,
            r.quantity,
            &meta,
            None,
        )?;
        self.new_reservation = Some(Reservation {
            id: String::new(),
            product: r.product.clone(),
            warehouse: r.warehouse.clone(),
            quantity: r.quantity,
            status: ReservationStatus::Active,
            reference_id: r.reference_id.clone(),
            created_ms: self.now_ms,
            expires_ms: self.now_ms.saturating_add(r.ttl_ms),
            closed_ms: None,
            reserve_seq: 0,
            close_seq: None,
        });
        Ok(())
    }

    /// Commit or release on its holder's request: refused unless the reservation is still
    /// active at this command's time — past `expires_at` it is expired, whether or not the
    /// sweep has journaled that yet.
    fn close_reservation(&mut self, id: &str, to: ReservationStatus) -> Result<(), LedgerError> {
        let r = self
            .state
            .reservation(id)?
            .ok_or_else(|| LedgerError::ReservationNotFound(id.to_string()))?
            .as_of(self.now_ms);
        if r.status != ReservationStatus::Active {
            return Err(LedgerError::ReservationClosed {
                id: id.to_string(),
                status: r.status,
            });
        }
        self.close(r, to)
    }

    /// Commit (ships: on_hand and allocated both drop) or release/expire (allocated drops)
    /// an active reservation. An expiry is closed at `expires_at`, the instant it took
    /// effect, so its `closed_at` reads the same before and after the sweep.
    fn close(&mut self, mut r: Reservation, to: ReservationStatus) -> Result<(), LedgerError> {
        if r.status != ReservationStatus::Active {
            return Err(LedgerError::ReservationClosed {
                id: r.id,
                status: r.status,
            });
        }
        let id = r.id.clone();
        let id = id.as_str();
        let q = r.quantity;
        let (kind, delta) = match to {
            ReservationStatus::Committed => (
                Kind::Commit,
                Buckets {
                    on_hand: -q,
                    allocated: -q,
                    ..Buckets::default()
                },
            ),
            _ => (
                Kind::Release,
                Buckets {
                    allocated: -q,
                    ..Buckets::default()
                },
            ),
        };
        let meta = Meta {
            reason: (to == ReservationStatus::Expired).then(|| "expired".to_string()),
            reference_type: Some("reservation".into()),
            reference_id: Some(id.to_string()),
            ..Meta::default()
        };
        self.post(&r.product, &r.warehouse, kind, q, delta, 0, &meta, None)?;
        r.status = to;
        r.closed_ms = Some(match to {
            ReservationStatus::Expired => r.expires_ms.min(self.now_ms),
            _ => self.now_ms,
        });
        self.closed_reservations.push(r);
        Ok(())
    }

    fn patch(&mut self, p: &PatchLevel) -> Result<(), LedgerError> {
        self.require_product(&p.product)?;
        self.require_warehouse(&p.warehouse)?;
        for (field, value) in [
            ("reorder_point", p.reorder_point),
            ("max_stock_level", p.max_stock_level),
            ("buffer", p.buffer),
        ] {
            if value.is_some_and(|v| v < 0) {
                return Err(LedgerError::invalid(field, "must be zero or more"));
            }
        }
        if let Some(buffer) = p.buffer {
            let current = self.level(&p.product, &p.warehouse)?.buckets.buffer;
            let d = buffer - current; // both are ≥ 0: no overflow
            if d != 0 {
                let delta = Buckets {
                    buffer: d,
                    ..Buckets::default()
                };
                self.post(
                    &p.product,
                    &p.warehouse,
                    Kind::Buffer,
                    d,
                    delta,
                    d,
                    &Meta::default(),
                    None,
                )?;
            }
        }
        let mut level = self.level(&p.product, &p.warehouse)?;
        if p.reorder_point.is_some() {
            level.reorder_point = p.reorder_point;
        }
        if p.max_stock_level.is_some() {
            level.max_stock_level = p.max_stock_level;
        }
        level.updated_ms = self.now_ms;
        self.store_level(&p.product, &p.warehouse, level);
        Ok(())
    }
}

fn positive(field: &str, n: i64) -> Result<(), LedgerError> {
    if n <= 0 {
        return Err(LedgerError::invalid(field, "must be a positive integer"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::model::Buckets;

    const EXPIRES_MS: i64 = 10_000;

    /// One product `p` in `default` with 10 on hand, 4 of them held by `res_1`.
    struct Mem {
        reservation: Reservation,
    }

    impl State for Mem {
        fn level(&mut self, _: &str, _: &str) -> Result<Option<Level>, Fault> {
            Ok(Some(Level {
                buckets: Buckets {
                    on_hand: 10,
                    allocated: 4,
                    ..Buckets::default()
                },
                ..Level::default()
            }))
        }
        fn product(&mut self, id: &str) -> Result<Option<Product>, Fault> {
            Ok(Some(Product {
                id: id.to_string(),
                ..Product::default()
            }))
        }
        fn product_by_sku(&mut self, _: &str) -> Result<Option<String>, Fault> {
            Ok(None)
        }
        fn warehouse(&mut self, _: &str) -> Result<Option<Warehouse>, Fault> {
            Ok(None)
        }
        fn transfer(&mut self, _: &str) -> Result<Option<Transfer>, Fault> {
            Ok(None)
        }
        fn reservation(&mut self, id: &str) -> Result<Option<Reservation>, Fault> {
            Ok((id == self.reservation.id).then(|| self.reservation.clone()))
        }
    }

    fn held() -> Mem {
        Mem {
            reservation: Reservation {
                id: "res_1".into(),
                product: "p".into(),
                warehouse: DEFAULT_WAREHOUSE.into(),
                quantity: 4,
                status: ReservationStatus::Active,
                reference_id: None,
                created_ms: 0,
                expires_ms: EXPIRES_MS,
                closed_ms: None,
                reserve_seq: 1,
                close_seq: None,
            },
        }
    }

    fn run(cmd: Command, now_ms: i64) -> Result<Effects, LedgerError> {
        apply(&cmd, &mut held(), &Rules::default(), now_ms)
    }

    #[test]
    fn a_reservation_is_expired_from_its_expiry_on_before_any_sweep() {
        let commit = || Command::CommitReservation { id: "res_1".into() };
        let release = || Command::ReleaseReservation { id: "res_1".into() };
        assert!(run(commit(), EXPIRES_MS - 1).is_ok(), "still active the ms before");
        assert!(run(release(), EXPIRES_MS - 1).is_ok());
        for cmd in [commit(), release()] {
            for now_ms in [EXPIRES_MS, EXPIRES_MS + 3_600_000] {
                assert_eq!(
                    run(cmd.clone(), now_ms),
                    Err(LedgerError::ReservationClosed {
                        id: "res_1".into(),
                        status: ReservationStatus::Expired
                    }),
                    "{cmd:?} at {now_ms}"
                );
            }
        }
    }

    #[test]
    fn the_sweep_closes_an_expiry_at_its_expiry_time() {
        let sweep = || Command::ExpireReservations {
            ids: vec!["res_1".into()],
        };
        let early = run(sweep(), EXPIRES_MS - 1).map(|e| e.drafts.len());
        assert_eq!(early, Ok(0), "not due yet: nothing");
        let late = run(sweep(), EXPIRES_MS + 5_000).unwrap_or_default();
        assert_eq!(late.drafts.len(), 1);
        let closed = &late.closed_reservations[0];
        assert_eq!(closed.status, ReservationStatus::Expired);
        assert_eq!(
            closed.closed_ms,
            Some(EXPIRES_MS),
            "closed when it took effect, not when swept"
        );
        let read = held().reservation.as_of(EXPIRES_MS + 5_000);
        assert_eq!(
            (read.status, read.closed_ms),
            (closed.status, closed.closed_ms),
            "a read before the sweep shows what the sweep records"
        );
    }
}
