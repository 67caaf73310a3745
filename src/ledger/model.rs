//! The nouns of the ledger: ids, buckets, levels, products, movements.

use std::fmt;

/// Longest id (product, warehouse, reference…) we accept, in bytes.
pub const ID_LEN_MAX: usize = 128;
/// Longest free text (movement notes, comments), in characters (DESIGN.md).
pub const NOTE_CHARS_MAX: usize = 4000;
/// Longest short text (names, skus, reasons), in characters.
pub const TEXT_CHARS_MAX: usize = 500;
/// The warehouse that always exists.
pub const DEFAULT_WAREHOUSE: &str = "default";

/// The stored quantities of one product in one warehouse (or the signed change to them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Buckets {
    /// Physically in the warehouse; includes allocated, damaged and buffer.
    pub on_hand: i64,
    /// Held for orders and reservations.
    pub allocated: i64,
    /// On hand, not sellable.
    pub damaged: i64,
    /// Safety stock: on hand, not offered for sale.
    pub buffer: i64,
    /// On its way here, not on hand.
    pub in_transit: i64,
}

impl Buckets {
    /// `on_hand − allocated − damaged − buffer`, saturating: it is only ever compared.
    pub fn available(&self) -> i64 {
        self.on_hand
            .saturating_sub(self.allocated)
            .saturating_sub(self.damaged)
            .saturating_sub(self.buffer)
    }

    /// Adds a delta bucket by bucket; `None` when any bucket would overflow.
    pub fn checked_add(&self, d: &Buckets) -> Option<Buckets> {
        Some(Buckets {
            on_hand: self.on_hand.checked_add(d.on_hand)?,
            allocated: self.allocated.checked_add(d.allocated)?,
            damaged: self.damaged.checked_add(d.damaged)?,
            buffer: self.buffer.checked_add(d.buffer)?,
            in_transit: self.in_transit.checked_add(d.in_transit)?,
        })
    }

    pub fn is_zero(&self) -> bool {
        *self == Buckets::default()
    }
}

/// A product's stock in one warehouse: the buckets plus planning fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Level {
    pub buckets: Buckets,
    pub reorder_point: Option<i64>,
    pub max_stock_level: Option<i64>,
    pub last_counted_ms: Option<i64>,
    /// Last change of buckets or planning fields; 0 = never.
    pub updated_ms: i64,
    /// Quantities displayed per sales channel (marketplace code → qty), set by partners.
    pub channel_stock: Vec<(String, i64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Warehouse {
    pub id: String,
    pub name: String,
    /// The stable number the seed dialects show and accept (`number_of`); `None` until the
    /// store assigns it (on creation, or when it upgrades a file written before numbers).
    pub number: Option<u64>,
}

/// What a number names: the product and warehouse numbers are two separate spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberSpace {
    Product,
    Warehouse,
}

impl NumberSpace {
    /// The key prefix in the store's number index.
    pub fn key(self) -> &'static str {
        match self {
            NumberSpace::Product => "product",
            NumberSpace::Warehouse => "warehouse",
        }
    }
}

/// Largest number a dialect shows: 2^53 − 1, exact in every JSON parser (JavaScript's too).
pub const NUMBER_MAX: u64 = 9_007_199_254_740_991;
/// First number the store assigns to an id that is not its own number. Assigned numbers
/// live at the top of the safe range, far above the ids shops use, so that an all-digit id
/// rarely meets one; one that does is refused (`number_taken`), never silently shadowed.
pub const NUMBER_ASSIGNED_MIN: u64 = 9_000_000_000_000_001;
/// The default warehouse's number (the seed documents show `0` for it).
pub const DEFAULT_WAREHOUSE_NUMBER: u64 = 0;

/// The number of a stored record: the one it keeps, else (a file not yet upgraded) the
/// id's own digits.
pub fn number_of(stored: Option<u64>, id: &str) -> Option<u64> {
    stored.or_else(|| direct_number(id))
}

/// The number an id is by itself: its digits when it is all digits, without a leading
/// zero, from 1 to `NUMBER_MAX`. Other ids (`p1`, `007`, 40 digits) get an assigned one.
pub fn direct_number(id: &str) -> Option<u64> {
    let canonical = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && !id.starts_with('0');
    if !canonical || id.len() > 16 {
        return None;
    }
    id.parse::<u64>().ok().filter(|n| (1..=NUMBER_MAX).contains(n))
}

/// A decimal amount (cost, price) held exactly as integer millionths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Decimal {
    pub micros: i64,
}

/// Digits after the decimal point that a `Decimal` keeps.
pub const DECIMAL_SCALE_DIGITS: u32 = 6;

impl Decimal {
    /// Parses JSON number text (`25`, `25.00`, `0.125`, `1e3` is refused) exactly.
    pub fn parse(text: &str) -> Option<Decimal> {
        let (neg, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (int_part, frac_part) = match body.split_once('.') {
            Some((i, f)) => (i, f),
            None => (body, ""),
        };
        let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int_part.is_empty() || !digits_ok(int_part) || !digits_ok(frac_part) {
            return None;
        }
        if body.contains('.') && frac_part.is_empty() {
            return None;
        }
        let frac_trimmed = frac_part.trim_end_matches('0');
        if frac_trimmed.len() > DECIMAL_SCALE_DIGITS as usize {
            return None;
        }
        let int: i64 = int_part.parse().ok()?;
        let mut frac: i64 = 0;
        for (i, b) in frac_trimmed.bytes().enumerate() {
            frac += i64::from(b - b'0') * 10i64.pow(DECIMAL_SCALE_DIGITS - 1 - i as u32);
        }
        let micros = int.checked_mul(10i64.pow(DECIMAL_SCALE_DIGITS))?.checked_add(frac)?;
        Some(Decimal {
            micros: if neg { -micros } else { micros },
        })
    }
}

impl fmt::Display for Decimal {
    /// At least two decimals (money), more only when they are not zero: `25.00`, `0.125`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&micros_text(i128::from(self.micros)))
    }
}

/// Millionths as decimal text with at least two decimals (sums of money are i128).
pub fn micros_text(micros: i128) -> String {
    let scale = 10u128.pow(DECIMAL_SCALE_DIGITS);
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    let mut frac_text = format!("{:06}", abs % scale);
    while frac_text.len() > 2 && frac_text.ends_with('0') {
        frac_text.pop();
    }
    format!("{sign}{}.{frac_text}", abs / scale)
}

/// Catalog entry. Ids are opaque strings: never parsed as machine integers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Product {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub barcode: Option<String>,
    pub category: Option<String>,
    pub brand: Option<String>,
    pub unit_cost: Option<Decimal>,
    /// Named prices (`retail`, `wholesale`, …).
    pub prices: Vec<(String, Decimal)>,
    pub updated_ms: i64,
    /// The stable number the seed dialects show and accept; see `Warehouse::number`.
    pub number: Option<u64>,
}

/// What a movement did, as recorded in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    In,
    Out,
    Adjustment,
    /// Absolute count; stored as the delta it caused.
    Count,
    TransferOut,
    TransferIn,
    /// An in-transit transfer arriving: in_transit → on_hand.
    Receive,
    Reserve,
    Release,
    Commit,
    Damage,
    WriteOff,
    Buffer,
}

impl Kind {
    pub const ALL: [Kind; 13] = [
        Kind::In,
        Kind::Out,
        Kind::Adjustment,
        Kind::Count,
        Kind::TransferOut,
        Kind::TransferIn,
        Kind::Receive,
        Kind::Reserve,
        Kind::Release,
        Kind::Commit,
        Kind::Damage,
        Kind::WriteOff,
        Kind::Buffer,
    ];

    /// Stable byte in the journal encoding. Never renumber.
    pub fn code(self) -> u8 {
        match self {
            Kind::In => 1,
            Kind::Out => 2,
            Kind::Adjustment => 3,
            Kind::Count => 4,
            Kind::TransferOut => 5,
            Kind::TransferIn => 6,
            Kind::Receive => 7,
            Kind::Reserve => 8,
            Kind::Release => 9,
            Kind::Commit => 10,
            Kind::Damage => 11,
            Kind::WriteOff => 12,
            Kind::Buffer => 13,
        }
    }

    pub fn from_code(code: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// Name in the journal and in `GET /api/inventory/movements?movement_type=`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::In => "in",
            Kind::Out => "out",
            Kind::Adjustment => "adjustment",
            Kind::Count => "count",
            Kind::TransferOut => "transfer_out",
            Kind::TransferIn => "transfer_in",
            Kind::Receive => "receive",
            Kind::Reserve => "reserve",
            Kind::Release => "release",
            Kind::Commit => "commit",
            Kind::Damage => "damage",
            Kind::WriteOff => "write_off",
            Kind::Buffer => "buffer",
        }
    }

    /// The seed-003 `movement_type` a movement of this kind is shown as.
    pub fn movement_type(self) -> &'static str {
        match self {
            Kind::In | Kind::Receive => "in",
            Kind::Out | Kind::Commit | Kind::WriteOff => "out",
            // Holds and buffer changes are not among seed 003's four values (a strict enum
            // would break): they show as adjustments, their own kind is in `kind`.
            Kind::Adjustment | Kind::Count | Kind::Buffer | Kind::Damage | Kind::Reserve | Kind::Release => {
                "adjustment"
            }
            Kind::TransferOut | Kind::TransferIn => "transfer",
        }
    }

    /// Whether entries of this kind can change `on_hand`. Those that cannot (holds and
    /// buffer changes) are left out of movement lists unless a filter names their kind.
    pub fn moves_on_hand(self) -> bool {
        !matches!(self, Kind::Reserve | Kind::Release | Kind::Buffer)
    }
}

/// A movement as the ledger decides it, before the store gives it a place in the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub product: String,
    pub warehouse: String,
    pub kind: Kind,
    /// The quantity as the request stated it (signed for adjustments, the delta for counts).
    pub quantity: i64,
    pub before: Buckets,
    pub delta: Buckets,
    pub reason: Option<String>,
    pub reference_type: Option<String>,
    pub reference_id: Option<String>,
    pub note: Option<String>,
    pub cost_per_unit: Option<Decimal>,
    /// The transfer this movement is a leg of.
    pub transfer: Option<String>,
}

/// One journal entry: a draft plus its place, time, author and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub seq: u64,
    pub at_ms: i64,
    pub draft: Draft,
    pub actor: String,
    pub batch: Option<String>,
    pub idempotency_key: Option<String>,
    /// SHA-256(previous hash ‖ canonical bytes of this entry).
    pub hash: [u8; 32],
}

impl Movement {
    /// Tests: entry 1 of product `p` in warehouse `w` by actor `t`, with the given kind and
    /// buckets (its quantity is the on-hand change); tests set what else they need.
    #[cfg(test)]
    pub fn sample(kind: Kind, before: Buckets, delta: Buckets) -> Movement {
        Movement {
            seq: 1,
            at_ms: 0,
            draft: Draft {
                product: "p".into(),
                warehouse: "w".into(),
                kind,
                quantity: delta.on_hand.abs(),
                before,
                delta,
                reason: None,
                reference_type: None,
                reference_id: None,
                note: None,
                cost_per_unit: None,
                transfer: None,
            },
            actor: "t".into(),
            batch: None,
            idempotency_key: None,
            hash: [0; 32],
        }
    }

    pub fn after(&self) -> Buckets {
        // The store only journals drafts whose sum was checked.
        self.draft
            .before
            .checked_add(&self.draft.delta)
            .unwrap_or(self.draft.before)
    }
}

/// An inter-warehouse transfer (its legs are movements).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub id: String,
    pub product: String,
    pub from: String,
    pub to: String,
    pub quantity: i64,
    /// Whether the goods went to the target's in-transit bucket (then `in_seq` waits for receive).
    pub in_transit: bool,
    pub out_seq: u64,
    /// The `in` leg's seq; `None` while in transit.
    pub in_seq: Option<u64>,
    pub created_ms: i64,
}

/// Movements written together by one request, with the request's own header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub id: String,
    pub first_seq: u64,
    pub count: u64,
    /// Which API wrote it (`partner_update`, `adjustment`, `count`, …).
    pub kind: String,
    pub created_ms: i64,
    pub actor: String,
    /// The dialect's own header (JSON), kept verbatim.
    pub header: Vec<u8>,
}

/// Where a reservation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationStatus {
    /// Holding stock (available → allocated) until committed, released or expired.
    Active,
    /// Shipped: the allocated stock left on_hand.
    Committed,
    /// Given back by its holder.
    Released,
    /// Given back because its time ran out.
    Expired,
}

impl ReservationStatus {
    pub fn name(self) -> &'static str {
        match self {
            ReservationStatus::Active => "active",
            ReservationStatus::Committed => "committed",
            ReservationStatus::Released => "released",
            ReservationStatus::Expired => "expired",
        }
    }

    pub fn code(self) -> u8 {
        match self {
            ReservationStatus::Active => 1,
            ReservationStatus::Committed => 2,
            ReservationStatus::Released => 3,
            ReservationStatus::Expired => 4,
        }
    }

    pub fn from_code(code: u8) -> Option<ReservationStatus> {
        [
            ReservationStatus::Active,
            ReservationStatus::Committed,
            ReservationStatus::Released,
            ReservationStatus::Expired,
        ]
        .into_iter()
        .find(|s| s.code() == code)
    }
}

/// Stock held for an order (`allocated`) until it ships or is given back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub id: String,
    pub product: String,
    pub warehouse: String,
    pub quantity: i64,
    pub status: ReservationStatus,
    pub reference_id: Option<String>,
    pub created_ms: i64,
    pub expires_ms: i64,
    /// When it stopped being active.
    pub closed_ms: Option<i64>,
    /// The `reserve` movement, and the `commit`/`release` one once closed.
    pub reserve_seq: u64,
    pub close_seq: Option<u64>,
}

impl Reservation {
    /// Active, but its time ran out by `now_ms`. From `expires_ms` on a reservation is
    /// expired for every purpose (API.md), however far behind the sweep that journals the
    /// release is.
    pub fn is_due(&self, now_ms: i64) -> bool {
        self.status == ReservationStatus::Active && self.expires_ms <= now_ms
    }

    /// The reservation as it stands at `now_ms`: one whose time ran out reads as expired,
    /// closed at its expiry (as the sweep records it), before the sweep has journaled the
    /// release (`close_seq` stays empty until then).
    pub fn as_of(mut self, now_ms: i64) -> Reservation {
        if self.is_due(now_ms) {
            self.status = ReservationStatus::Expired;
            self.closed_ms = Some(self.expires_ms);
        }
        self
    }
}

#[cfg(test)]
mod number_tests {
    use super::*;

    #[test]
    fn an_id_is_its_own_number_only_when_it_is_a_safe_integer_without_a_leading_zero() {
        assert_eq!(direct_number("963414"), Some(963414));
        assert_eq!(direct_number("9007199254740991"), Some(NUMBER_MAX));
        for id in [
            "",
            "0",
            "007",
            "p1",
            "9007199254740992",
            "255428000059312855148083097871927924884",
            "1 2",
        ] {
            assert_eq!(direct_number(id), None, "{id:?}");
        }
        assert_eq!(number_of(None, "42"), Some(42));
        assert_eq!(number_of(Some(NUMBER_ASSIGNED_MIN), "p1"), Some(NUMBER_ASSIGNED_MIN));
        assert_eq!(number_of(None, "p1"), None);
    }
}
