//! Property test: the ledger against a simple model.
//!
//! Random command sequences run through `ledger::apply` over an in-memory state and
//! through a deliberately naive model written from DESIGN.md's rules. After every
//! command: both accept or both refuse, the levels agree, a refused command changed
//! nothing, and folding the journal from zero gives exactly the stored buckets.
//!
//! The model and the generators are shared with `store_model`, which runs the same
//! sequences against the real store (in process and through the binary, with crashes).

use std::collections::{BTreeMap, HashSet};

use proptest::prelude::*;
use stockd::ledger::{
    self, fold::fold, Buckets, Command, CountLine, Draft, Effects, Fault, Level, Meta, MoveCmd, Movement, Op,
    PatchLevel, Product, ReservationStatus, ReserveCmd, Rules, SetStockLine, Transfer, TransferCmd, Warehouse,
    BATCH_LINES_MAX, CHANNELS_MAX, RESERVATION_TTL_MS_MAX,
};

pub const PRODUCTS: [&str; 4] = ["p0", "p1", "p2", "ghost"]; // `ghost` never exists
pub const WAREHOUSES: [&str; 4] = ["default", "w1", "neg", "nowhere"]; // `nowhere` never exists
/// The warehouse whose stock may go below zero (`Rules::allow_negative_in`).
pub const NEGATIVE_WAREHOUSE: &str = "neg";
/// Reservation lifetimes the generator draws, in seconds: the valid ones are long enough
/// that none expires during a test (expiry depends on the wall clock, the model has none);
/// the last three are refused.
const TTL_SECONDS: [i64; 6] = [3_600, 86_400, 604_800, 604_801, 0, -1];

/// The rules every test of the model runs with.
pub fn rules() -> Rules {
    Rules {
        allow_negative: false,
        allow_negative_in: [(NEGATIVE_WAREHOUSE.to_string(), true)].into_iter().collect(),
    }
}

/// The ledger's view of an in-memory "store".
#[derive(Default, Clone, PartialEq)]
struct Mem {
    levels: BTreeMap<(String, String), Level>,
    transfers: BTreeMap<String, Transfer>,
    reservations: BTreeMap<String, ledger::Reservation>,
    journal: Vec<Draft>,
}

impl ledger::State for Mem {
    fn level(&mut self, p: &str, w: &str) -> Result<Option<Level>, Fault> {
        Ok(self.levels.get(&(p.to_string(), w.to_string())).cloned())
    }
    fn product(&mut self, id: &str) -> Result<Option<Product>, Fault> {
        Ok((id != "ghost").then(|| Product {
            id: id.to_string(),
            sku: id.to_string(),
            ..Product::default()
        }))
    }
    fn product_by_sku(&mut self, _: &str) -> Result<Option<String>, Fault> {
        Ok(None)
    }
    fn warehouse(&mut self, id: &str) -> Result<Option<Warehouse>, Fault> {
        Ok((id != "nowhere").then(|| Warehouse {
            id: id.to_string(),
            name: id.to_string(),
            number: None,
        }))
    }
    fn transfer(&mut self, id: &str) -> Result<Option<Transfer>, Fault> {
        Ok(self.transfers.get(id).cloned())
    }
    fn reservation(&mut self, id: &str) -> Result<Option<ledger::Reservation>, Fault> {
        Ok(self.reservations.get(id).cloned())
    }
}

impl Mem {
    /// What the store does with effects, minus redb.
    fn persist(&mut self, e: Effects) {
        let seq_first = self.journal.len() as u64 + 1;
        if let Some(t) = e.new_transfer {
            let id = format!("trf_{seq_first}");
            self.transfers.insert(
                id.clone(),
                Transfer {
                    id,
                    product: t.product,
                    from: t.from,
                    to: t.to,
                    quantity: t.quantity,
                    in_transit: t.in_transit,
                    out_seq: seq_first,
                    in_seq: (!t.in_transit).then_some(seq_first + 1),
                    created_ms: 0,
                },
            );
        }
        if let Some(mut t) = e.received_transfer {
            t.in_seq = Some(seq_first);
            self.transfers.insert(t.id.clone(), t);
        }
        if let Some(mut r) = e.new_reservation {
            r.id = format!("res_{seq_first}");
            r.reserve_seq = seq_first;
            self.reservations.insert(r.id.clone(), r);
        }
        for (i, mut r) in e.closed_reservations.into_iter().enumerate() {
            r.close_seq = Some(seq_first + i as u64);
            self.reservations.insert(r.id.clone(), r);
        }
        self.journal.extend(e.drafts);
        for (k, l) in e.levels {
            self.levels.insert(k, l);
        }
    }

    fn buckets(&self) -> BTreeMap<(String, String), Buckets> {
        self.levels
            .iter()
            .filter(|(_, l)| !l.buckets.is_zero())
            .map(|(k, l)| (k.clone(), l.buckets))
            .collect()
    }
}

/// Planning fields of a level: (reorder_point, max_stock_level).
pub type Planning = (Option<i64>, Option<i64>);

/// A transfer as the model knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelTransfer {
    pub product: String,
    pub to: String,
    pub quantity: i64,
    pub received: bool,
}

/// A reservation as the model knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelReservation {
    pub product: String,
    pub warehouse: String,
    pub quantity: i64,
    pub status: ReservationStatus,
}

/// The naive model: one map of buckets, rules restated from DESIGN.md and docs/api.md.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Model {
    pub b: BTreeMap<(String, String), Buckets>,
    pub planning: BTreeMap<(String, String), Planning>,
    pub transfers: BTreeMap<String, ModelTransfer>,
    pub reservations: BTreeMap<String, ModelReservation>,
    /// Journal entries so far (the last seq).
    pub seq: u64,
}

fn exists(p: &str, w: &str) -> bool {
    p != "ghost" && w != "nowhere"
}

fn allows_negative(w: &str) -> bool {
    w == NEGATIVE_WAREHOUSE
}

/// `on_hand − allocated − damaged − buffer`, as a reader shows it.
fn available(b: &Buckets) -> i64 {
    b.on_hand
        .saturating_sub(b.allocated)
        .saturating_sub(b.damaged)
        .saturating_sub(b.buffer)
}

fn add(b: &Buckets, d: &Buckets) -> Option<Buckets> {
    Some(Buckets {
        on_hand: b.on_hand.checked_add(d.on_hand)?,
        allocated: b.allocated.checked_add(d.allocated)?,
        damaged: b.damaged.checked_add(d.damaged)?,
        buffer: b.buffer.checked_add(d.buffer)?,
        in_transit: b.in_transit.checked_add(d.in_transit)?,
    })
}

fn on_hand(d: i64) -> Buckets {
    Buckets {
        on_hand: d,
        ..Buckets::default()
    }
}

impl Model {
    fn get(&self, p: &str, w: &str) -> Buckets {
        self.b.get(&(p.to_string(), w.to_string())).copied().unwrap_or_default()
    }

    /// One journal entry: `delta` onto a level, refused when the move needs more available
    /// stock than there is (outside a negative warehouse) or a bucket — or available
    /// itself — would leave the i64 range.
    fn post(&mut self, p: &str, w: &str, delta: Buckets, need_available: i64) -> Option<()> {
        let before = self.get(p, w);
        if need_available > 0 && !allows_negative(w) && available(&before) < need_available {
            return None;
        }
        let after = add(&before, &delta)?;
        after
            .on_hand
            .checked_sub(after.allocated)?
            .checked_sub(after.damaged)?
            .checked_sub(after.buffer)?;
        self.b.insert((p.to_string(), w.to_string()), after);
        self.seq += 1;
        Some(())
    }

    /// Applies one movement to the model; `None` = refused.
    fn movement(&mut self, m: &MoveCmd) -> Option<()> {
        if !exists(&m.product, &m.warehouse) {
            return None;
        }
        let current = self.get(&m.product, &m.warehouse).on_hand;
        if m.expected_on_hand.is_some_and(|e| e != current) {
            return None;
        }
        let (p, w) = (&m.product, &m.warehouse);
        match m.op {
            Op::In(n) if n > 0 => self.post(p, w, on_hand(n), 0),
            Op::Out(n) if n > 0 => self.post(p, w, on_hand(-n), n),
            Op::Adjust(d) if d != 0 => {
                // A downward correction may not take on_hand (not available) below zero.
                if d < 0 && !allows_negative(w) && current.saturating_add(d) < 0 {
                    return None;
                }
                self.post(p, w, on_hand(d), 0)
            }
            // A count is journaled even when it changes nothing.
            Op::Set(n) if n >= 0 => self.post(p, w, on_hand(n.checked_sub(current)?), 0),
            _ => None,
        }
    }

    /// Applies a command all or nothing; `None` = refused (and the model is unchanged).
    pub fn apply(&mut self, cmd: &Command) -> Option<()> {
        let before = self.clone();
        let result = self.apply_inner(cmd);
        if result.is_none() {
            *self = before;
        }
        result
    }

    fn apply_inner(&mut self, cmd: &Command) -> Option<()> {
        match cmd {
            Command::Move(m) => self.movement(m),
            Command::Batch(lines) => {
                if lines.is_empty() || lines.len() > BATCH_LINES_MAX {
                    return None;
                }
                lines.iter().try_for_each(|m| self.movement(m))
            }
            Command::Count(lines) => self.count(lines),
            Command::SetStock(lines) => self.set_stock(lines),
            Command::Transfer(t) => self.transfer(t),
            Command::Receive { transfer } => {
                let t = self.transfers.get(transfer)?.clone();
                if t.received {
                    return None;
                }
                let delta = Buckets {
                    on_hand: t.quantity,
                    in_transit: t.quantity.checked_neg()?,
                    ..Buckets::default()
                };
                self.post(&t.product, &t.to, delta, 0)?;
                self.transfers.get_mut(transfer)?.received = true;
                Some(())
            }
            Command::Reserve(r) => self.reserve(r),
            Command::CommitReservation { id } => self.close(id, ReservationStatus::Committed),
            Command::ReleaseReservation { id } => self.close(id, ReservationStatus::Released),
            Command::PatchLevel(p) => self.patch(p),
            // Catalog writes and expiry (which needs a clock) are not generated.
            _ => None,
        }
    }

    fn count(&mut self, lines: &[CountLine]) -> Option<()> {
        if lines.is_empty() || lines.len() > BATCH_LINES_MAX {
            return None;
        }
        let mut seen = HashSet::new();
        for l in lines {
            if !seen.insert((l.product.clone(), l.warehouse.clone())) {
                return None;
            }
            self.movement(&MoveCmd {
                product: l.product.clone(),
                warehouse: l.warehouse.clone(),
                op: Op::Set(l.actual),
                expected_on_hand: None,
                meta: Meta::default(),
            })?;
        }
        Some(())
    }

    /// Partner updates (seed 001): absolute available and buffer, one count entry a line.
    fn set_stock(&mut self, lines: &[SetStockLine]) -> Option<()> {
        if lines.is_empty() || lines.len() > BATCH_LINES_MAX {
            return None;
        }
        let mut seen = HashSet::new();
        for l in lines {
            if !seen.insert((l.product.clone(), l.warehouse.clone())) || !exists(&l.product, &l.warehouse) {
                return None;
            }
            if l.available < 0 || l.buffer < 0 || l.buffer > l.available || l.channels.len() > CHANNELS_MAX {
                return None;
            }
            let sellable = l.available - l.buffer;
            let mut codes = HashSet::new();
            if l.channels
                .iter()
                .any(|(code, q)| !codes.insert(code) || *q < 0 || *q > sellable)
            {
                return None;
            }
            let b = self.get(&l.product, &l.warehouse);
            let target = l.available.checked_add(b.allocated)?.checked_add(b.damaged)?;
            let delta = Buckets {
                on_hand: target.checked_sub(b.on_hand)?,
                buffer: l.buffer - b.buffer,
                ..Buckets::default()
            };
            self.post(&l.product, &l.warehouse, delta, 0)?;
        }
        Some(())
    }

    fn transfer(&mut self, t: &TransferCmd) -> Option<()> {
        if t.quantity <= 0 || t.from == t.to || !exists(&t.product, &t.from) || !exists(&t.product, &t.to) {
            return None;
        }
        if t.expected_on_hand
            .is_some_and(|e| e != self.get(&t.product, &t.from).on_hand)
        {
            return None;
        }
        let id = format!("trf_{}", self.seq + 1);
        let q = t.quantity;
        self.post(&t.product, &t.from, on_hand(-q), q)?;
        let into = if t.in_transit {
            Buckets {
                in_transit: q,
                ..Buckets::default()
            }
        } else {
            on_hand(q)
        };
        self.post(&t.product, &t.to, into, 0)?;
        let transfer = ModelTransfer {
            product: t.product.clone(),
            to: t.to.clone(),
            quantity: q,
            received: !t.in_transit,
        };
        self.transfers.insert(id, transfer);
        Some(())
    }

    /// available → allocated, checked like an `out`.
    fn reserve(&mut self, r: &ReserveCmd) -> Option<()> {
        if r.quantity <= 0 || r.ttl_ms <= 0 || r.ttl_ms > RESERVATION_TTL_MS_MAX {
            return None;
        }
        if !exists(&r.product, &r.warehouse) {
            return None;
        }
        let id = format!("res_{}", self.seq + 1);
        let delta = Buckets {
            allocated: r.quantity,
            ..Buckets::default()
        };
        self.post(&r.product, &r.warehouse, delta, r.quantity)?;
        let reservation = ModelReservation {
            product: r.product.clone(),
            warehouse: r.warehouse.clone(),
            quantity: r.quantity,
            status: ReservationStatus::Active,
        };
        self.reservations.insert(id, reservation);
        Some(())
    }

    /// Commit ships the held stock (on_hand and allocated drop); release gives it back.
    fn close(&mut self, id: &str, to: ReservationStatus) -> Option<()> {
        let r = self.reservations.get(id)?.clone();
        if r.status != ReservationStatus::Active {
            return None;
        }
        let q = r.quantity;
        let delta = Buckets {
            on_hand: if to == ReservationStatus::Committed { -q } else { 0 },
            allocated: -q,
            ..Buckets::default()
        };
        self.post(&r.product, &r.warehouse, delta, 0)?;
        self.reservations.get_mut(id)?.status = to;
        Some(())
    }

    /// Planning fields, and a buffer change journaled as a `buffer` entry when it changes.
    fn patch(&mut self, p: &PatchLevel) -> Option<()> {
        if !exists(&p.product, &p.warehouse) {
            return None;
        }
        if [p.reorder_point, p.max_stock_level, p.buffer]
            .iter()
            .any(|v| v.is_some_and(|v| v < 0))
        {
            return None;
        }
        if let Some(buffer) = p.buffer {
            let d = buffer - self.get(&p.product, &p.warehouse).buffer;
            if d != 0 {
                let delta = Buckets {
                    buffer: d,
                    ..Buckets::default()
                };
                self.post(&p.product, &p.warehouse, delta, d)?;
            }
        }
        let key = (p.product.clone(), p.warehouse.clone());
        let planning = self.planning.entry(key).or_default();
        if p.reorder_point.is_some() {
            planning.0 = p.reorder_point;
        }
        if p.max_stock_level.is_some() {
            planning.1 = p.max_stock_level;
        }
        Some(())
    }

    /// Levels with any bucket other than zero.
    pub fn buckets(&self) -> BTreeMap<(String, String), Buckets> {
        self.b
            .iter()
            .filter(|(_, b)| !b.is_zero())
            .map(|(k, b)| (k.clone(), *b))
            .collect()
    }

    /// Levels with a planning field set.
    pub fn plans(&self) -> BTreeMap<(String, String), Planning> {
        self.planning
            .iter()
            .filter(|(_, p)| p.0.is_some() || p.1.is_some())
            .map(|(k, p)| (k.clone(), *p))
            .collect()
    }
}

/// One generated step: a command, or a reference to the n-th transfer or reservation the
/// model knows at that point (so receives, commits and releases hit real ids often).
#[derive(Debug, Clone)]
pub enum Step {
    Cmd(Box<Command>),
    Receive(usize),
    Commit(usize),
    Release(usize),
}

/// Ids a step may refer to: mostly one still open (in transit, active), sometimes any
/// (then often a closed one, which is refused), and a missing one when there is none.
fn pick(all: Vec<&String>, open: Vec<&String>, n: usize, prefix: &str) -> String {
    let from = if n % 4 != 3 && !open.is_empty() { open } else { all };
    match from.len() {
        0 => format!("{prefix}_999999"),
        len => from[n % len].clone(),
    }
}

impl Step {
    fn cmd(c: Command) -> Step {
        Step::Cmd(Box::new(c))
    }

    /// The command this step is against `model`'s state.
    pub fn resolve(&self, model: &Model) -> Command {
        let reservation = |n: usize| {
            let all = model.reservations.keys().collect();
            let active = model
                .reservations
                .iter()
                .filter(|(_, r)| r.status == ReservationStatus::Active)
                .map(|(k, _)| k)
                .collect();
            pick(all, active, n, "res")
        };
        match self {
            Step::Cmd(c) => (**c).clone(),
            Step::Receive(n) => {
                let all = model.transfers.keys().collect();
                let open = model
                    .transfers
                    .iter()
                    .filter(|(_, t)| !t.received)
                    .map(|(k, _)| k)
                    .collect();
                Command::Receive {
                    transfer: pick(all, open, *n, "trf"),
                }
            }
            Step::Commit(n) => Command::CommitReservation { id: reservation(*n) },
            Step::Release(n) => Command::ReleaseReservation { id: reservation(*n) },
        }
    }
}

/// Mostly a small positive quantity (so most commands are accepted and stock builds up),
/// sometimes zero or negative, sometimes at the edge of i64.
fn qty() -> impl Strategy<Value = i64> {
    prop_oneof![
        12 => 1i64..30,
        1 => -3i64..=0,
        1 => Just(i64::MAX),
        1 => (i64::MAX - 50)..=i64::MAX,
    ]
}

/// A quantity taken out of stock: mostly less than what a few `in`s bring.
fn small_qty() -> impl Strategy<Value = i64> {
    prop_oneof![6 => 1i64..8, 1 => qty()]
}

/// One of the three products, or (rarely) `ghost`.
fn product() -> impl Strategy<Value = String> {
    prop_oneof![12 => 0..PRODUCTS.len() - 1, 1 => Just(PRODUCTS.len() - 1)].prop_map(|p| PRODUCTS[p].to_string())
}

/// One of the three warehouses, or (rarely) `nowhere`.
fn warehouse() -> impl Strategy<Value = String> {
    prop_oneof![12 => 0..WAREHOUSES.len() - 1, 1 => Just(WAREHOUSES.len() - 1)].prop_map(|w| WAREHOUSES[w].to_string())
}

fn key() -> impl Strategy<Value = (String, String)> {
    (product(), warehouse())
}

fn move_cmd() -> impl Strategy<Value = MoveCmd> {
    // Stock comes in more often than it goes, so outs, transfers and reservations find some.
    (key(), 0..8u8, qty(), prop::option::weighted(0.1, 0..30i64)).prop_map(|((p, w), op, n, expected)| MoveCmd {
        product: p,
        warehouse: w,
        op: match op {
            0..=2 => Op::In(n),
            3 | 4 => Op::Out(n),
            5 => Op::Adjust(n),
            _ => Op::Set(n),
        },
        expected_on_hand: expected,
        meta: Meta::default(),
    })
}

fn count() -> impl Strategy<Value = Command> {
    let actual = prop_oneof![12 => 0i64..50, 1 => -2i64..0];
    let lines = prop_oneof![8 => prop::collection::vec((key(), actual), 1..4), 1 => Just(Vec::new())];
    lines.prop_map(|lines| {
        Command::Count(
            lines
                .into_iter()
                .map(|((p, w), actual)| CountLine {
                    product: p,
                    warehouse: w,
                    actual,
                    reason: None,
                })
                .collect(),
        )
    })
}

fn transfer() -> impl Strategy<Value = Command> {
    let expected = prop::option::weighted(0.1, 0..30i64);
    (key(), warehouse(), small_qty(), any::<bool>(), expected).prop_map(|((p, from), to, q, in_transit, e)| {
        Command::Transfer(TransferCmd {
            product: p,
            from,
            to,
            quantity: q,
            in_transit,
            expected_on_hand: e,
            meta: Meta::default(),
        })
    })
}

fn reserve() -> impl Strategy<Value = Command> {
    let ttl = prop_oneof![12 => 0..3usize, 1 => 3..TTL_SECONDS.len()];
    (key(), small_qty(), ttl).prop_map(|((p, w), q, ttl)| {
        Command::Reserve(ReserveCmd {
            product: p,
            warehouse: w,
            quantity: q,
            ttl_ms: TTL_SECONDS[ttl] * 1000,
            reference_id: None,
        })
    })
}

/// A planning field or buffer: mostly small, sometimes negative (refused) or huge.
fn level_field() -> impl Strategy<Value = Option<i64>> {
    prop::option::of(prop_oneof![12 => 0i64..30, 1 => Just(-1), 1 => (i64::MAX - 5)..=i64::MAX])
}

fn patch() -> impl Strategy<Value = Command> {
    (key(), level_field(), level_field(), level_field()).prop_map(|((p, w), reorder, max, buffer)| {
        Command::PatchLevel(PatchLevel {
            product: p,
            warehouse: w,
            reorder_point: reorder,
            max_stock_level: max,
            buffer,
        })
    })
}

fn set_stock() -> impl Strategy<Value = Command> {
    let channels = prop::collection::vec((0..2usize, -1i64..20), 0..3);
    let channels = prop_oneof![3 => Just(Vec::new()), 1 => channels];
    let line = (key(), -1i64..60, prop_oneof![8 => 0i64..10, 1 => -1i64..30], channels);
    let lines = prop_oneof![8 => prop::collection::vec(line, 1..3), 1 => Just(Vec::new())];
    lines.prop_map(|lines| {
        Command::SetStock(
            lines
                .into_iter()
                .map(|((p, w), available, buffer, channels)| SetStockLine {
                    product: p,
                    warehouse: w,
                    available,
                    buffer,
                    channels: channels
                        .into_iter()
                        .map(|(c, q)| (["web", "pos"][c].to_string(), q))
                        .collect(),
                })
                .collect(),
        )
    })
}

/// Every generated step. `http` leaves out what the native HTTP API cannot send (mixed
/// batches, partner stock updates), so the binary tests can drive the same sequences.
pub fn step(http: bool) -> BoxedStrategy<Step> {
    let ids = 1u64..60;
    let common = prop_oneof![
        6 => move_cmd().prop_map(|m| Step::cmd(Command::Move(m))),
        1 => count().prop_map(Step::cmd),
        2 => transfer().prop_map(Step::cmd),
        2 => (0..8usize).prop_map(Step::Receive),
        3 => reserve().prop_map(Step::cmd),
        2 => (0..8usize).prop_map(Step::Commit),
        2 => (0..8usize).prop_map(Step::Release),
        2 => patch().prop_map(Step::cmd),
        1 => (ids.clone(), 0..3u8).prop_map(|(s, what)| Step::cmd(match what {
            0 => Command::Receive { transfer: format!("trf_{s}") },
            1 => Command::CommitReservation { id: format!("res_{s}") },
            _ => Command::ReleaseReservation { id: format!("res_{s}") },
        })),
    ];
    if http {
        return common.boxed();
    }
    prop_oneof![
        10 => common,
        1 => prop::collection::vec(move_cmd(), 0..4).prop_map(|l| Step::cmd(Command::Batch(l))),
        1 => set_stock().prop_map(Step::cmd),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn ledger_matches_the_model(steps in prop::collection::vec(step(false), 1..60)) {
        let rules = rules();
        let mut mem = Mem::default();
        let mut model = Model::default();
        for (i, step) in steps.iter().enumerate() {
            let cmd = step.resolve(&model);
            let before = mem.buckets();
            let journal_before = mem.journal.len();
            let expected = model.apply(&cmd);
            // The very state the writer would read, not a copy: a refusal must leave it as it was.
            let before_all = mem.clone();
            match ledger::apply(&cmd, &mut mem, &rules, i as i64) {
                Ok(effects) => {
                    prop_assert!(expected.is_some(), "ledger accepted what the model refuses: {cmd:?}");
                    mem.persist(effects);
                }
                Err(e) => {
                    prop_assert!(expected.is_none(), "ledger refused what the model accepts: {cmd:?}: {e}");
                    prop_assert_eq!(&mem.buckets(), &before);
                    prop_assert_eq!(mem.journal.len(), journal_before);
                    prop_assert!(mem == before_all, "a refused command changed the state: {cmd:?}");
                }
            }
            prop_assert_eq!(mem.buckets(), model.buckets(), "after {:?}", cmd);
            prop_assert_eq!(mem.journal.len() as u64, model.seq, "journal length after {:?}", cmd);
            for (id, r) in &model.reservations {
                prop_assert_eq!(mem.reservations.get(id).map(|m| m.status), Some(r.status), "{} after {:?}", id, cmd);
            }
            let movements: Vec<Movement> = mem
                .journal
                .iter()
                .enumerate()
                .map(|(i, d)| Movement {
                    seq: i as u64 + 1,
                    at_ms: 0,
                    draft: d.clone(),
                    actor: String::new(),
                    batch: None,
                    idempotency_key: None,
                    hash: [0; 32],
                })
                .collect();
            let folded: BTreeMap<_, _> = fold(&movements)
                .expect("a valid journal never overflows")
                .into_iter()
                .filter(|(_, b)| !b.is_zero())
                .collect();
            prop_assert_eq!(folded, mem.buckets(), "fold ≠ levels after {:?}", cmd);
        }
    }
}
