//! Daily roll-ups and per-warehouse stock figures, kept in the same write transaction as
//! the movements they sum, so analytics over a year never scans the journal.

use crate::clock::MS_PER_DAY;
use crate::ledger::{Decimal, Kind, Level, Movement};

use super::codec::CodecError;

const V1: u8 = 1;
/// Roll-ups with the transfer figures (`transfer_in`, `transfer_out`).
const V2: u8 = 2;
const ROLLUP_V1_BYTES: usize = 41;
const ROLLUP_V2_BYTES: usize = 57;

/// What moved on one day (per warehouse and product, or per warehouse in total). Only
/// entries that change on_hand count: holds, buffer changes and counts that found the
/// stock as it was change nothing a trend or a mover is about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rollup {
    /// Entries that changed on_hand.
    pub movements: u64,
    /// Units received: `in`, transfer arrivals, receipts.
    pub stock_in: i64,
    /// Units shipped: `out`, transfer departures, commits, write-offs.
    pub stock_out: i64,
    /// Adjustments and counts that changed on_hand.
    pub adjustments: u64,
    /// Units moved in either direction (|Δ on_hand|).
    pub moved: i64,
    /// Of `stock_in`, units that came from another warehouse of the shop (transfers):
    /// shop-wide trends leave them out, a transfer is no stock in for the shop.
    pub transfer_in: i64,
    /// Of `stock_out`, units that left for another warehouse of the shop.
    pub transfer_out: i64,
}

impl Rollup {
    pub fn of(m: &Movement) -> Rollup {
        let d = m.draft.delta.on_hand;
        if d == 0 {
            return Rollup::default();
        }
        let mut r = Rollup {
            movements: 1,
            moved: d.saturating_abs(),
            ..Rollup::default()
        };
        let (gained, lost) = (d.max(0), d.min(0).saturating_neg());
        match m.draft.kind {
            Kind::In => r.stock_in = gained,
            // A transfer counts where it left and, once on hand, where it arrived.
            Kind::Receive | Kind::TransferIn => {
                r.stock_in = gained;
                r.transfer_in = gained;
            }
            Kind::TransferOut => {
                r.stock_out = lost;
                r.transfer_out = lost;
            }
            Kind::Out | Kind::Commit | Kind::WriteOff => r.stock_out = lost,
            Kind::Adjustment | Kind::Count => r.adjustments = 1,
            _ => {}
        }
        r
    }

    /// The day's figures as the whole shop sees them: transfers between its own
    /// warehouses are neither stock in nor stock out.
    pub fn shop_wide(mut self) -> Rollup {
        self.stock_in = self.stock_in.saturating_sub(self.transfer_in);
        self.stock_out = self.stock_out.saturating_sub(self.transfer_out);
        self.transfer_in = 0;
        self.transfer_out = 0;
        self
    }

    pub fn add(&mut self, o: &Rollup) {
        self.movements = self.movements.saturating_add(o.movements);
        self.stock_in = self.stock_in.saturating_add(o.stock_in);
        self.stock_out = self.stock_out.saturating_add(o.stock_out);
        self.adjustments = self.adjustments.saturating_add(o.adjustments);
        self.moved = self.moved.saturating_add(o.moved);
        self.transfer_in = self.transfer_in.saturating_add(o.transfer_in);
        self.transfer_out = self.transfer_out.saturating_add(o.transfer_out);
    }

    pub fn encode(&self) -> [u8; ROLLUP_V2_BYTES] {
        let mut out = [0u8; ROLLUP_V2_BYTES];
        out[0] = V2;
        out[1..9].copy_from_slice(&self.movements.to_le_bytes());
        out[9..17].copy_from_slice(&self.stock_in.to_le_bytes());
        out[17..25].copy_from_slice(&self.stock_out.to_le_bytes());
        out[25..33].copy_from_slice(&self.adjustments.to_le_bytes());
        out[33..41].copy_from_slice(&self.moved.to_le_bytes());
        out[41..49].copy_from_slice(&self.transfer_in.to_le_bytes());
        out[49..57].copy_from_slice(&self.transfer_out.to_le_bytes());
        out
    }

    /// Reads both versions (a V1 roll-up has no transfer figures; the upgrade at open
    /// rebuilds them all from the journal).
    pub fn decode(buf: &[u8]) -> Result<Rollup, CodecError> {
        let ok = matches!(
            (buf.first(), buf.len()),
            (Some(&V1), ROLLUP_V1_BYTES) | (Some(&V2), ROLLUP_V2_BYTES)
        );
        if !ok {
            return Err(CodecError("roll-up".into()));
        }
        let u = |i: usize| {
            buf.get(i..i + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
                .unwrap_or(0)
        };
        Ok(Rollup {
            movements: u(1),
            stock_in: u(9) as i64,
            stock_out: u(17) as i64,
            adjustments: u(25),
            moved: u(33) as i64,
            transfer_in: u(41) as i64,
            transfer_out: u(49) as i64,
        })
    }
}

/// Stock figures of one warehouse, summed over its levels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Σ on_hand × unit cost, in millionths.
    pub value_micros: i128,
    /// Levels with a reorder point and available ≤ it.
    pub low_stock: i64,
    /// Levels with available ≤ 0.
    pub out_of_stock: i64,
    /// Levels (products that have stock rows here).
    pub levels: i64,
}

impl Stats {
    /// What one level adds to its warehouse's figures.
    pub fn of(level: &Level, unit_cost: Option<Decimal>) -> Stats {
        let available = level.buckets.available();
        Stats {
            value_micros: i128::from(level.buckets.on_hand) * i128::from(unit_cost.map(|c| c.micros).unwrap_or(0)),
            low_stock: i64::from(is_low(level)),
            out_of_stock: i64::from(available <= 0),
            levels: 1,
        }
    }

    pub fn add(&mut self, o: &Stats) {
        self.value_micros = self.value_micros.saturating_add(o.value_micros);
        self.low_stock = self.low_stock.saturating_add(o.low_stock);
        self.out_of_stock = self.out_of_stock.saturating_add(o.out_of_stock);
        self.levels = self.levels.saturating_add(o.levels);
    }

    pub fn sub(&mut self, o: &Stats) {
        self.value_micros = self.value_micros.saturating_sub(o.value_micros);
        self.low_stock = self.low_stock.saturating_sub(o.low_stock);
        self.out_of_stock = self.out_of_stock.saturating_sub(o.out_of_stock);
        self.levels = self.levels.saturating_sub(o.levels);
    }

    pub fn encode(&self) -> [u8; 41] {
        let mut out = [0u8; 41];
        out[0] = V1;
        out[1..17].copy_from_slice(&self.value_micros.to_le_bytes());
        out[17..25].copy_from_slice(&self.low_stock.to_le_bytes());
        out[25..33].copy_from_slice(&self.out_of_stock.to_le_bytes());
        out[33..41].copy_from_slice(&self.levels.to_le_bytes());
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Stats, CodecError> {
        if buf.len() != 41 || buf[0] != V1 {
            return Err(CodecError("warehouse stats".into()));
        }
        let i = |a: usize| i64::from_le_bytes(buf[a..a + 8].try_into().unwrap_or_default());
        Ok(Stats {
            value_micros: i128::from_le_bytes(buf[1..17].try_into().unwrap_or_default()),
            low_stock: i(17),
            out_of_stock: i(25),
            levels: i(33),
        })
    }
}

/// Low stock: a reorder point is set and available has reached it.
pub fn is_low(level: &Level) -> bool {
    level.reorder_point.is_some_and(|r| level.buckets.available() <= r)
}

/// Days since the Unix epoch (UTC) of a time in milliseconds.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(MS_PER_DAY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Buckets;

    fn entry(kind: Kind, on_hand: i64) -> Movement {
        let delta = Buckets {
            on_hand,
            allocated: i64::from(kind == Kind::Reserve),
            ..Buckets::default()
        };
        let mut m = Movement::sample(kind, Buckets::default(), delta);
        m.draft.quantity = on_hand;
        m
    }

    #[test]
    fn only_on_hand_changes_count_and_transfers_stay_in_the_shop() {
        for (kind, d) in [
            (Kind::Reserve, 0),
            (Kind::Release, 0),
            (Kind::Buffer, 0),
            (Kind::Count, 0),
        ] {
            assert_eq!(Rollup::of(&entry(kind, d)), Rollup::default(), "{kind:?}");
        }
        let mut day = Rollup::default();
        for (kind, d) in [
            (Kind::In, 10),
            (Kind::TransferOut, -4),
            (Kind::TransferIn, 4),
            (Kind::Out, -1),
        ] {
            day.add(&Rollup::of(&entry(kind, d)));
        }
        assert_eq!((day.movements, day.stock_in, day.stock_out), (4, 14, 5));
        let shop = day.shop_wide();
        assert_eq!((shop.movements, shop.stock_in, shop.stock_out), (4, 10, 1));
        assert_eq!(Rollup::decode(&day.encode()), Ok(day));
        // A roll-up of the earlier format still reads (no transfer figures).
        let mut v1 = [0u8; ROLLUP_V1_BYTES];
        v1[0] = V1;
        v1[1] = 3;
        assert_eq!(Rollup::decode(&v1).map(|r| (r.movements, r.transfer_in)), Ok((3, 0)));
    }
}
