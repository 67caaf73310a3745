//! Property test: the ledger against a simple model.
//!
//! Random command sequences run through `ledger::apply` over an in-memory state and
//! through a deliberately naive model written from DESIGN.md's rules. After every
//! command: both accept or both refuse, the levels agree, a refused command changed
//! nothing, and folding the journal from zero gives exactly the stored buckets.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use stockd::ledger::{
    self, fold::fold, Buckets, Command, CountLine, Draft, Effects, Fault, Level, Meta, MoveCmd, Movement, Op, Product,
    Rules, Transfer, TransferCmd, Warehouse,
};

const PRODUCTS: [&str; 4] = ["p0", "p1", "p2", "ghost"]; // `ghost` never exists
const WAREHOUSES: [&str; 4] = ["default", "w1", "neg", "nowhere"]; // `nowhere` never exists

/// The ledger's view of an in-memory "store".
#[derive(Default, Clone, PartialEq)]
struct Mem {
    levels: BTreeMap<(String, String), Level>,
    transfers: BTreeMap<String, Transfer>,
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
        }))
    }
    fn transfer(&mut self, id: &str) -> Result<Option<Transfer>, Fault> {
        Ok(self.transfers.get(id).cloned())
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

/// The naive model: one map of buckets, rules restated from DESIGN.md.
#[derive(Default, Clone)]
struct Model {
    b: HashMap<(String, String), Buckets>,
    /// transfer id → (product, to, quantity, received)
    transfers: BTreeMap<String, (String, String, i64, bool)>,
    seq: u64,
}

fn exists(p: &str, w: &str) -> bool {
    p != "ghost" && w != "nowhere"
}

fn allows_negative(w: &str) -> bool {
    w == "neg"
}

impl Model {
    fn get(&self, p: &str, w: &str) -> Buckets {
        self.b.get(&(p.to_string(), w.to_string())).copied().unwrap_or_default()
    }

    fn set(&mut self, p: &str, w: &str, b: Buckets) {
        self.b.insert((p.to_string(), w.to_string()), b);
    }

    /// Applies one movement to the model; `None` = refused.
    fn movement(&mut self, m: &MoveCmd) -> Option<()> {
        if !exists(&m.product, &m.warehouse) {
            return None;
        }
        let mut b = self.get(&m.product, &m.warehouse);
        if m.expected_on_hand.is_some_and(|e| e != b.on_hand) {
            return None;
        }
        match m.op {
            Op::In(n) if n > 0 => b.on_hand = b.on_hand.checked_add(n)?,
            Op::Out(n) if n > 0 => {
                if !allows_negative(&m.warehouse) && b.available() < n {
                    return None;
                }
                b.on_hand = b.on_hand.checked_sub(n)?;
            }
            Op::Adjust(d) if d != 0 => {
                if d < 0 && !allows_negative(&m.warehouse) && b.on_hand.saturating_add(d) < 0 {
                    return None;
                }
                b.on_hand = b.on_hand.checked_add(d)?;
            }
            Op::Set(n) if n >= 0 => {
                n.checked_sub(b.on_hand)?;
                b.on_hand = n;
            }
            _ => return None,
        }
        self.seq += 1;
        self.set(&m.product, &m.warehouse, b);
        Some(())
    }

    fn apply(&mut self, cmd: &Command) -> Option<()> {
        let before = self.clone();
        let result = self.apply_inner(cmd);
        if result.is_none() {
            *self = before; // all or nothing
        }
        result
    }

    fn apply_inner(&mut self, cmd: &Command) -> Option<()> {
        match cmd {
            Command::Move(m) => self.movement(m),
            Command::Batch(lines) => {
                if lines.is_empty() {
                    return None;
                }
                lines.iter().try_for_each(|m| self.movement(m))
            }
            Command::Count(lines) => {
                let mut seen = std::collections::HashSet::new();
                if lines.is_empty() {
                    return None;
                }
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
            Command::Transfer(t) => {
                if t.quantity <= 0 || t.from == t.to || !exists(&t.product, &t.from) || !exists(&t.product, &t.to) {
                    return None;
                }
                let mut from = self.get(&t.product, &t.from);
                if t.expected_on_hand.is_some_and(|e| e != from.on_hand) {
                    return None;
                }
                if !allows_negative(&t.from) && from.available() < t.quantity {
                    return None;
                }
                from.on_hand = from.on_hand.checked_sub(t.quantity)?;
                self.set(&t.product, &t.from, from);
                let mut to = self.get(&t.product, &t.to);
                if t.in_transit {
                    to.in_transit = to.in_transit.checked_add(t.quantity)?;
                } else {
                    to.on_hand = to.on_hand.checked_add(t.quantity)?;
                }
                self.set(&t.product, &t.to, to);
                let id = format!("trf_{}", self.seq + 1);
                self.seq += 2;
                self.transfers
                    .insert(id, (t.product.clone(), t.to.clone(), t.quantity, !t.in_transit));
                Some(())
            }
            Command::Receive { transfer } => {
                let (p, w, q, received) = self.transfers.get(transfer)?.clone();
                if received {
                    return None;
                }
                let mut b = self.get(&p, &w);
                b.in_transit = b.in_transit.checked_sub(q)?;
                b.on_hand = b.on_hand.checked_add(q)?;
                self.set(&p, &w, b);
                self.transfers.insert(transfer.clone(), (p, w, q, true));
                self.seq += 1;
                Some(())
            }
            _ => None,
        }
    }

    fn buckets(&self) -> BTreeMap<(String, String), Buckets> {
        self.b
            .iter()
            .filter(|(_, b)| !b.is_zero())
            .map(|(k, b)| (k.clone(), *b))
            .collect()
    }
}

fn qty() -> impl Strategy<Value = i64> {
    prop_oneof![
        8 => -3i64..40,
        1 => Just(i64::MAX),
        1 => (i64::MAX - 50)..=i64::MAX,
    ]
}

fn key() -> impl Strategy<Value = (String, String)> {
    (0..PRODUCTS.len(), 0..WAREHOUSES.len()).prop_map(|(p, w)| (PRODUCTS[p].to_string(), WAREHOUSES[w].to_string()))
}

fn move_cmd() -> impl Strategy<Value = MoveCmd> {
    (key(), 0..4u8, qty(), prop::option::weighted(0.1, 0..30i64)).prop_map(|((p, w), op, n, expected)| MoveCmd {
        product: p,
        warehouse: w,
        op: match op {
            0 => Op::In(n),
            1 => Op::Out(n),
            2 => Op::Adjust(n),
            _ => Op::Set(n),
        },
        expected_on_hand: expected,
        meta: Meta::default(),
    })
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        6 => move_cmd().prop_map(Command::Move),
        1 => prop::collection::vec(move_cmd(), 0..5).prop_map(Command::Batch),
        1 => prop::collection::vec((key(), -2i64..50), 0..4).prop_map(|lines| Command::Count(
            lines
                .into_iter()
                .map(|((p, w), actual)| CountLine { product: p, warehouse: w, actual, reason: None })
                .collect()
        )),
        2 => (key(), 0..WAREHOUSES.len(), qty(), any::<bool>()).prop_map(|((p, from), to, q, in_transit)| {
            Command::Transfer(TransferCmd {
                product: p,
                from,
                to: WAREHOUSES[to].to_string(),
                quantity: q,
                in_transit,
                expected_on_hand: None,
                meta: Meta::default(),
            })
        }),
        1 => (1u64..40).prop_map(|s| Command::Receive { transfer: format!("trf_{s}") }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn ledger_matches_the_model(cmds in prop::collection::vec(command(), 1..60)) {
        let rules = Rules {
            allow_negative: false,
            allow_negative_in: [("neg".to_string(), true)].into_iter().collect(),
        };
        let mut mem = Mem::default();
        let mut model = Model::default();
        for (i, cmd) in cmds.iter().enumerate() {
            let before = mem.buckets();
            let journal_before = mem.journal.len();
            let expected = model.apply(cmd);
            // The very state the writer would read, not a copy: a refusal must leave it as it was.
            let before_all = mem.clone();
            match ledger::apply(cmd, &mut mem, &rules, i as i64) {
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
