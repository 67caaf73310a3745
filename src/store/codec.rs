//! Compact, versioned binary encoding of stored values. Every value starts with a version
//! byte so a later format can read old rows; integers are little-endian fixed width,
//! strings are a u32 length and UTF-8 bytes, options a 0/1 tag.

use crate::ledger::{
    Batch, Buckets, Decimal, Draft, Kind, Level, Movement, Product, Reservation, ReservationStatus, Transfer,
    Warehouse, CHANNELS_MAX,
};

const V1: u8 = 1;
/// Byte offset of `at_ms` inside an encoded movement (binary search by time reads only it).
pub const MOVEMENT_AT_OFFSET: usize = 1 + 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError(pub String);

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "undecodable value: {}", self.0)
    }
}

#[derive(Default)]
pub struct Enc(pub Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, v: &str) {
        // Every string we store is bounded far below 4 GiB by the edge's limits.
        self.0.extend_from_slice(&(v.len() as u32).to_le_bytes());
        self.0.extend_from_slice(v.as_bytes());
    }
    fn opt_str(&mut self, v: Option<&str>) {
        match v {
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
            None => self.u8(0),
        }
    }
    fn opt_i64(&mut self, v: Option<i64>) {
        match v {
            Some(n) => {
                self.u8(1);
                self.i64(n);
            }
            None => self.u8(0),
        }
    }
    fn buckets(&mut self, b: &Buckets) {
        for v in [b.on_hand, b.allocated, b.damaged, b.buffer, b.in_transit] {
            self.i64(v);
        }
    }
}

pub struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Dec<'a> {
    fn new(buf: &'a [u8], what: &str) -> Result<Dec<'a>, CodecError> {
        let mut d = Dec { buf, pos: 0 };
        let version = d.u8()?;
        if version != V1 {
            return Err(CodecError(format!("{what} has unknown version {version}")));
        }
        Ok(d)
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| CodecError("truncated".into()))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64, CodecError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }
    fn i64(&mut self) -> Result<i64, CodecError> {
        Ok(self.u64()? as i64)
    }
    fn str(&mut self) -> Result<String, CodecError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        let len = u32::from_le_bytes(b) as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| CodecError("string is not UTF-8".into()))
    }
    fn opt_str(&mut self) -> Result<Option<String>, CodecError> {
        match self.u8()? {
            0 => Ok(None),
            _ => Ok(Some(self.str()?)),
        }
    }
    fn opt_i64(&mut self) -> Result<Option<i64>, CodecError> {
        match self.u8()? {
            0 => Ok(None),
            _ => Ok(Some(self.i64()?)),
        }
    }
    fn buckets(&mut self) -> Result<Buckets, CodecError> {
        Ok(Buckets {
            on_hand: self.i64()?,
            allocated: self.i64()?,
            damaged: self.i64()?,
            buffer: self.i64()?,
            in_transit: self.i64()?,
        })
    }
    /// A trailing optional number: `None` when the row ends before it (older rows).
    fn opt_number(&mut self) -> Result<Option<u64>, CodecError> {
        if self.rest().is_empty() {
            return Ok(None);
        }
        Ok(self.opt_i64()?.map(|n| n as u64))
    }
    fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }
}

/// The bytes the hash chain covers: the whole entry but its hash.
pub fn movement_canonical(m: &Movement) -> Vec<u8> {
    let d = &m.draft;
    let mut e = Enc(Vec::with_capacity(160));
    e.u8(V1);
    e.u64(m.seq);
    e.i64(m.at_ms);
    e.u8(d.kind.code());
    e.str(&d.product);
    e.str(&d.warehouse);
    e.i64(d.quantity);
    e.buckets(&d.before);
    e.buckets(&d.delta);
    e.opt_str(d.reason.as_deref());
    e.opt_str(d.reference_type.as_deref());
    e.opt_str(d.reference_id.as_deref());
    e.opt_str(d.note.as_deref());
    e.opt_i64(d.cost_per_unit.map(|c| c.micros));
    e.opt_str(d.transfer.as_deref());
    e.str(&m.actor);
    e.opt_str(m.batch.as_deref());
    e.opt_str(m.idempotency_key.as_deref());
    e.0
}

/// Canonical bytes followed by the 32-byte hash (a movement in a stored outcome).
pub fn movement(m: &Movement) -> Vec<u8> {
    let mut bytes = movement_canonical(m);
    bytes.extend_from_slice(&m.hash);
    bytes
}

/// Bytes of the back-pointer at the end of a journal row.
pub const JOURNAL_PREV_BYTES: usize = 8;

/// A journal row: the movement's canonical bytes, its hash, then the seq of the previous
/// movement of its level (`0`: none) — the level's history as a chain walked from the
/// level row's head, newest first (no index insert per movement). The pointer is outside
/// the bytes the hash covers, so the hash chain of a file written before it verifies
/// unchanged.
pub fn journal_row(m: &Movement, prev: u64) -> Vec<u8> {
    let mut bytes = movement(m);
    bytes.extend_from_slice(&prev.to_le_bytes());
    bytes
}

/// The movement of a journal row (or of a stored outcome).
pub fn decode_movement(buf: &[u8]) -> Result<Movement, CodecError> {
    decode_journal_row(buf).map(|(m, _)| m)
}

/// A journal row read back: the movement and its back-pointer, `None` in a row written
/// before format 3 (the upgrade leaves those as they are: `history_by_level` lists them).
pub fn decode_journal_row(buf: &[u8]) -> Result<(Movement, Option<u64>), CodecError> {
    let mut d = Dec::new(buf, "movement")?;
    let seq = d.u64()?;
    let at_ms = d.i64()?;
    let code = d.u8()?;
    let kind = Kind::from_code(code).ok_or_else(|| CodecError(format!("unknown movement kind {code}")))?;
    let draft = Draft {
        product: d.str()?,
        warehouse: d.str()?,
        kind,
        quantity: d.i64()?,
        before: d.buckets()?,
        delta: d.buckets()?,
        reason: d.opt_str()?,
        reference_type: d.opt_str()?,
        reference_id: d.opt_str()?,
        note: d.opt_str()?,
        cost_per_unit: d.opt_i64()?.map(|micros| Decimal { micros }),
        transfer: d.opt_str()?,
    };
    let actor = d.str()?;
    let batch = d.opt_str()?;
    let idempotency_key = d.opt_str()?;
    let hash: [u8; 32] = d
        .take(32)
        .map_err(|_| CodecError("movement hash is not 32 bytes".into()))?
        .try_into()
        .map_err(|_| CodecError("movement hash is not 32 bytes".into()))?;
    let prev = match d.rest().len() {
        0 => None,
        JOURNAL_PREV_BYTES => Some(d.u64()?),
        n => return Err(CodecError(format!("{n} bytes after a movement's hash"))),
    };
    let m = Movement {
        seq,
        at_ms,
        draft,
        actor,
        batch,
        idempotency_key,
        hash,
    };
    Ok((m, prev))
}

/// Reads only a journal row's back-pointer (of a row from `meta.chained_from` on: those
/// all have one).
pub fn journal_prev(buf: &[u8]) -> Result<u64, CodecError> {
    let at = buf
        .len()
        .checked_sub(JOURNAL_PREV_BYTES)
        .filter(|&at| at > MOVEMENT_KIND_OFFSET)
        .ok_or_else(|| CodecError("truncated journal row".into()))?;
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..]);
    Ok(u64::from_le_bytes(b))
}

/// Byte offset of the kind code inside an encoded movement (after version, seq, time).
const MOVEMENT_KIND_OFFSET: usize = MOVEMENT_AT_OFFSET + 8;

/// Reads only the kind of an encoded movement (lists count rows by kind without decoding).
pub fn movement_kind(buf: &[u8]) -> Result<Kind, CodecError> {
    let code = *buf
        .get(MOVEMENT_KIND_OFFSET)
        .ok_or_else(|| CodecError("truncated movement".into()))?;
    Kind::from_code(code).ok_or_else(|| CodecError(format!("unknown movement kind {code}")))
}

/// Reads only the time of an encoded movement.
pub fn movement_at_ms(buf: &[u8]) -> Result<i64, CodecError> {
    let bytes = buf
        .get(MOVEMENT_AT_OFFSET..MOVEMENT_AT_OFFSET + 8)
        .ok_or_else(|| CodecError("truncated movement".into()))?;
    let mut b = [0u8; 8];
    b.copy_from_slice(bytes);
    Ok(i64::from_le_bytes(b))
}

pub fn level(l: &Level) -> Vec<u8> {
    let mut e = Enc(Vec::with_capacity(80));
    e.u8(V1);
    e.buckets(&l.buckets);
    e.opt_i64(l.reorder_point);
    e.opt_i64(l.max_stock_level);
    e.opt_i64(l.last_counted_ms);
    e.i64(l.updated_ms);
    e.u64(l.channel_stock.len() as u64);
    for (code, qty) in &l.channel_stock {
        e.str(code);
        e.i64(*qty);
    }
    e.0
}

/// Where a level's history starts: the seq of its latest movement (`0`: none yet), the
/// head of the chain its journal rows' back-pointers make, and how many movements it has
/// had (every `HISTORY_MARK_INTERVAL`-th is also indexed in `history_by_level`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LevelChain {
    pub head: u64,
    pub moves: u64,
}

/// Bytes of the chain fields at the end of a level row.
const LEVEL_CHAIN_BYTES: usize = 16;

/// A level row: the level, then its [`LevelChain`] in fixed-width fields (the row keeps its
/// length movement after movement: redb rewrites such a value in place).
pub fn level_row(l: &Level, chain: LevelChain) -> Vec<u8> {
    let mut row = level(l);
    row.extend_from_slice(&chain.head.to_le_bytes());
    row.extend_from_slice(&chain.moves.to_le_bytes());
    row
}

/// [`level_row`] read back. Rows written before format 3 have no chain fields: the upgrade
/// rewrites every level row.
pub fn decode_level_row(buf: &[u8]) -> Result<(Level, LevelChain), CodecError> {
    let mut d = Dec::new(buf, "level")?;
    let level = level_body(&mut d)?;
    if d.rest().len() != LEVEL_CHAIN_BYTES {
        return Err(CodecError(format!(
            "a level row ends in {} bytes, not its chain's {LEVEL_CHAIN_BYTES}",
            d.rest().len()
        )));
    }
    let chain = LevelChain {
        head: d.u64()?,
        moves: d.u64()?,
    };
    Ok((level, chain))
}

/// The seqs a format-2 level row kept of its latest movements (none in a row of format 1);
/// the upgrade to format 3 indexes them.
pub fn format2_level_seqs(buf: &[u8]) -> Result<Vec<u64>, CodecError> {
    let mut d = Dec::new(buf, "level")?;
    level_body(&mut d)?;
    let mut seqs = Vec::new();
    if !d.rest().is_empty() {
        let n = d.u8()?;
        if n > FORMAT2_LEVEL_SLOTS {
            return Err(CodecError(format!("{n} seqs in a format-2 level row")));
        }
        for _ in 0..n {
            seqs.push(d.u64()?);
        }
    }
    Ok(seqs)
}

/// Seqs a format-2 level row had room for.
pub const FORMAT2_LEVEL_SLOTS: u8 = 8;

/// The level alone (a row's chain fields, if any, are left unread).
pub fn decode_level(buf: &[u8]) -> Result<Level, CodecError> {
    let mut d = Dec::new(buf, "level")?;
    level_body(&mut d)
}

fn level_body(d: &mut Dec<'_>) -> Result<Level, CodecError> {
    Ok(Level {
        buckets: d.buckets()?,
        reorder_point: d.opt_i64()?,
        max_stock_level: d.opt_i64()?,
        last_counted_ms: d.opt_i64()?,
        updated_ms: d.i64()?,
        channel_stock: {
            let n = d.u64()? as usize;
            if n > CHANNELS_MAX {
                return Err(CodecError(format!("{n} channels")));
            }
            let mut channels = Vec::with_capacity(n);
            for _ in 0..n {
                channels.push((d.str()?, d.i64()?));
            }
            channels
        },
    })
}

pub fn reservation(r: &Reservation) -> Vec<u8> {
    let mut e = Enc::default();
    e.u8(V1);
    e.str(&r.id);
    e.str(&r.product);
    e.str(&r.warehouse);
    e.i64(r.quantity);
    e.u8(r.status.code());
    e.opt_str(r.reference_id.as_deref());
    e.i64(r.created_ms);
    e.i64(r.expires_ms);
    e.opt_i64(r.closed_ms);
    e.u64(r.reserve_seq);
    e.opt_i64(r.close_seq.map(|s| s as i64));
    e.0
}

pub fn decode_reservation(buf: &[u8]) -> Result<Reservation, CodecError> {
    let mut d = Dec::new(buf, "reservation")?;
    Ok(Reservation {
        id: d.str()?,
        product: d.str()?,
        warehouse: d.str()?,
        quantity: d.i64()?,
        status: {
            let code = d.u8()?;
            ReservationStatus::from_code(code).ok_or_else(|| CodecError(format!("reservation status {code}")))?
        },
        reference_id: d.opt_str()?,
        created_ms: d.i64()?,
        expires_ms: d.i64()?,
        closed_ms: d.opt_i64()?,
        reserve_seq: d.u64()?,
        close_seq: d.opt_i64()?.map(|s| s as u64),
    })
}

pub fn batch(b: &Batch) -> Vec<u8> {
    let mut e = Enc(Vec::with_capacity(64 + b.header.len()));
    e.u8(V1);
    e.str(&b.id);
    e.u64(b.first_seq);
    e.u64(b.count);
    e.str(&b.kind);
    e.i64(b.created_ms);
    e.str(&b.actor);
    e.0.extend_from_slice(&b.header);
    e.0
}

pub fn decode_batch(buf: &[u8]) -> Result<Batch, CodecError> {
    let mut d = Dec::new(buf, "batch")?;
    Ok(Batch {
        id: d.str()?,
        first_seq: d.u64()?,
        count: d.u64()?,
        kind: d.str()?,
        created_ms: d.i64()?,
        actor: d.str()?,
        header: d.rest().to_vec(),
    })
}

pub fn product(p: &Product) -> Vec<u8> {
    let mut e = Enc::default();
    e.u8(V1);
    e.str(&p.id);
    e.str(&p.sku);
    e.str(&p.name);
    e.opt_str(p.barcode.as_deref());
    e.opt_str(p.category.as_deref());
    e.opt_str(p.brand.as_deref());
    e.opt_i64(p.unit_cost.map(|c| c.micros));
    e.u64(p.prices.len() as u64);
    for (name, price) in &p.prices {
        e.str(name);
        e.i64(price.micros);
    }
    e.i64(p.updated_ms);
    e.opt_i64(p.number.map(|n| n as i64));
    e.0
}

/// Most named prices a product keeps (bounds decoding of a damaged row, too).
pub const PRICES_MAX: usize = 32;

pub fn decode_product(buf: &[u8]) -> Result<Product, CodecError> {
    let mut d = Dec::new(buf, "product")?;
    let mut p = Product {
        id: d.str()?,
        sku: d.str()?,
        name: d.str()?,
        barcode: d.opt_str()?,
        category: d.opt_str()?,
        brand: d.opt_str()?,
        unit_cost: d.opt_i64()?.map(|micros| Decimal { micros }),
        ..Product::default()
    };
    let n = d.u64()? as usize;
    if n > PRICES_MAX {
        return Err(CodecError(format!("{n} prices")));
    }
    for _ in 0..n {
        let name = d.str()?;
        p.prices.push((name, Decimal { micros: d.i64()? }));
    }
    p.updated_ms = d.i64()?;
    // Rows written before numbers end here.
    p.number = d.opt_number()?;
    Ok(p)
}

pub fn warehouse(w: &Warehouse) -> Vec<u8> {
    let mut e = Enc::default();
    e.u8(V1);
    e.str(&w.id);
    e.str(&w.name);
    e.opt_i64(w.number.map(|n| n as i64));
    e.0
}

pub fn decode_warehouse(buf: &[u8]) -> Result<Warehouse, CodecError> {
    let mut d = Dec::new(buf, "warehouse")?;
    Ok(Warehouse {
        id: d.str()?,
        name: d.str()?,
        number: d.opt_number()?,
    })
}

pub fn transfer(t: &Transfer) -> Vec<u8> {
    let mut e = Enc::default();
    e.u8(V1);
    e.str(&t.id);
    e.str(&t.product);
    e.str(&t.from);
    e.str(&t.to);
    e.i64(t.quantity);
    e.u8(u8::from(t.in_transit));
    e.u64(t.out_seq);
    e.opt_i64(t.in_seq.map(|s| s as i64));
    e.i64(t.created_ms);
    e.0
}

pub fn decode_transfer(buf: &[u8]) -> Result<Transfer, CodecError> {
    let mut d = Dec::new(buf, "transfer")?;
    Ok(Transfer {
        id: d.str()?,
        product: d.str()?,
        from: d.str()?,
        to: d.str()?,
        quantity: d.i64()?,
        in_transit: d.u8()? != 0,
        out_seq: d.u64()?,
        in_seq: d.opt_i64()?.map(|s| s as u64),
        created_ms: d.i64()?,
    })
}

/// A stored answer: fingerprint of the request, expiry, status, content type, body.
/// A stored first answer as an older version wrote it: the HTTP answer's bytes (read
/// back for replays until it expires; never written any more).
#[cfg(test)]
pub fn answer(fingerprint: &[u8; 32], expires_ms: i64, a: &crate::store::Answer) -> Vec<u8> {
    let mut e = Enc(Vec::with_capacity(64 + a.body.len()));
    e.u8(V1);
    e.0.extend_from_slice(fingerprint);
    e.i64(expires_ms);
    e.u64(u64::from(a.status));
    e.str(&a.content_type);
    e.0.extend_from_slice(&a.body);
    e.0
}

fn decode_answer(buf: &[u8]) -> Result<([u8; 32], i64, crate::store::Answer), CodecError> {
    let mut d = Dec::new(buf, "answer")?;
    let fingerprint: [u8; 32] = d.take(32)?.try_into().map_err(|_| CodecError("fingerprint".into()))?;
    let expires_ms = d.i64()?;
    let status = u16::try_from(d.u64()?).map_err(|_| CodecError("status".into()))?;
    let content_type = d.str()?;
    let body = d.rest().to_vec();
    Ok((
        fingerprint,
        expires_ms,
        crate::store::Answer {
            status,
            content_type,
            body,
        },
    ))
}

/// Stored outcomes (replays table, version 2): what a write did, as data; the edge renders
/// it again, identically, for a repeat of the request.
const V2_OUTCOME: u8 = 2;

impl Enc {
    fn bytes(&mut self, v: &[u8]) {
        self.0.extend_from_slice(&(v.len() as u32).to_le_bytes());
        self.0.extend_from_slice(v);
    }
}

impl<'a> Dec<'a> {
    fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        let len = u32::from_le_bytes(b) as usize;
        self.take(len)
    }
    fn count(&mut self) -> Result<usize, CodecError> {
        usize::try_from(self.u64()?).map_err(|_| CodecError("count".into()))
    }
}

/// The first outcome of a request under a replay key: what it applied, or its refusal as a
/// stable code name and detail. Encoded from references: the write path clones nothing.
pub fn outcome(
    fingerprint: &[u8; 32],
    expires_ms: i64,
    outcome: Result<&crate::store::Applied, (&str, &str)>,
) -> Vec<u8> {
    let mut e = Enc(Vec::with_capacity(256));
    e.u8(V2_OUTCOME);
    e.0.extend_from_slice(fingerprint);
    e.i64(expires_ms);
    match outcome {
        Err((code, detail)) => {
            e.u8(1);
            e.str(code);
            e.str(detail);
        }
        Ok(a) => {
            e.u8(0);
            e.u8(u8::from(a.created));
            e.u64(a.movements.len() as u64);
            for m in &a.movements {
                e.bytes(&movement(m));
            }
            e.opt_str(a.batch.as_deref());
            e.u8(u8::from(a.transfer.is_some()));
            if let Some(t) = &a.transfer {
                e.bytes(&transfer(t));
            }
            e.u64(a.levels.len() as u64);
            for ((p, w), l) in &a.levels {
                e.str(p);
                e.str(w);
                e.bytes(&level(l));
            }
            e.u8(u8::from(a.product.is_some()));
            if let Some(p) = &a.product {
                e.bytes(&product(p));
            }
            e.u8(u8::from(a.warehouse.is_some()));
            if let Some(w) = &a.warehouse {
                e.bytes(&warehouse(w));
            }
            e.u64(a.reservations.len() as u64);
            for r in &a.reservations {
                e.bytes(&reservation(r));
            }
        }
    }
    e.0
}

/// What a replays row holds: the request's fingerprint, its expiry, and the first outcome
/// (or, in rows of an older version, the first answer's bytes).
pub fn decode_replay(buf: &[u8]) -> Result<([u8; 32], i64, crate::store::Stored), CodecError> {
    use crate::store::{Applied, Outcome, Stored};
    if buf.first() != Some(&V2_OUTCOME) {
        return decode_answer(buf).map(|(f, at, a)| (f, at, Stored::Answer(a)));
    }
    let mut d = Dec { buf, pos: 1 };
    let fingerprint: [u8; 32] = d.take(32)?.try_into().map_err(|_| CodecError("fingerprint".into()))?;
    let expires_ms = d.i64()?;
    let outcome = if d.u8()? == 1 {
        Outcome::Refused {
            code: d.str()?,
            detail: d.str()?,
        }
    } else {
        let mut a = Applied {
            created: d.u8()? != 0,
            ..Applied::default()
        };
        for _ in 0..d.count()? {
            a.movements.push(decode_movement(d.bytes()?)?);
        }
        a.batch = d.opt_str()?;
        if d.u8()? != 0 {
            a.transfer = Some(decode_transfer(d.bytes()?)?);
        }
        for _ in 0..d.count()? {
            let (p, w) = (d.str()?, d.str()?);
            a.levels.push(((p, w), decode_level(d.bytes()?)?));
        }
        if d.u8()? != 0 {
            a.product = Some(decode_product(d.bytes()?)?);
        }
        if d.u8()? != 0 {
            a.warehouse = Some(decode_warehouse(d.bytes()?)?);
        }
        for _ in 0..d.count()? {
            a.reservations.push(decode_reservation(d.bytes()?)?);
        }
        Outcome::Applied(Box::new(a))
    };
    Ok((fingerprint, expires_ms, Stored::Outcome(outcome)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_level_row_keeps_its_chain_in_fixed_fields() {
        let mut l = Level::default();
        l.buckets.on_hand = 7;
        l.channel_stock = vec![("web".into(), 3)];
        let chain = LevelChain { head: 12, moves: 130 };
        let row = level_row(&l, chain);
        assert_eq!(decode_level_row(&row).unwrap(), (l.clone(), chain));
        assert_eq!(decode_level(&row).unwrap(), l);
        // Every row of a level has the same length, whatever its chain.
        assert_eq!(level_row(&l, LevelChain::default()).len(), row.len());
        // Rows from before the chain (no suffix, or format 2's 65-byte one) or a cut
        // suffix: refused, never misread.
        assert!(decode_level_row(&level(&l)).is_err());
        let mut slots = level(&l);
        slots.extend_from_slice(&[0u8; 65]);
        assert!(decode_level_row(&slots).is_err());
        assert!(decode_level_row(&row[..row.len() - 1]).is_err());
        // The level alone reads from every one of them.
        assert_eq!(decode_level(&slots).unwrap(), l);
    }

    #[test]
    fn movement_round_trips_and_exposes_its_time() {
        let m = Movement {
            seq: 42,
            at_ms: 1_700_000_000_123,
            draft: Draft {
                product: "123456789012345678901234567890123456789".into(),
                warehouse: "default".into(),
                kind: Kind::Out,
                quantity: 5,
                before: Buckets {
                    on_hand: 10,
                    ..Buckets::default()
                },
                delta: Buckets {
                    on_hand: -5,
                    ..Buckets::default()
                },
                reason: Some("sale".into()),
                reference_type: None,
                reference_id: Some("po_1".into()),
                note: Some("ünïcode".into()),
                cost_per_unit: Some(Decimal { micros: 25_000_000 }),
                transfer: None,
            },
            actor: "pos".into(),
            batch: None,
            idempotency_key: Some("k".into()),
            hash: [7; 32],
        };
        let bytes = movement(&m);
        assert_eq!(decode_movement(&bytes), Ok(m.clone()));
        assert_eq!(decode_journal_row(&bytes), Ok((m.clone(), None)));
        assert_eq!(movement_at_ms(&bytes), Ok(m.at_ms));
        assert!(decode_movement(&bytes[..bytes.len() - 1]).is_err());
        // A journal row: the same bytes, then the back-pointer, outside what the hash covers.
        let row = journal_row(&m, 17);
        assert_eq!(row[..bytes.len()], bytes[..]);
        assert_eq!(decode_journal_row(&row), Ok((m.clone(), Some(17))));
        assert_eq!(journal_prev(&row), Ok(17));
        assert!(decode_journal_row(&row[..row.len() - 1]).is_err());
        assert!(journal_prev(&row[..4]).is_err());
    }

    #[test]
    fn stored_outcomes_round_trip_and_old_answers_still_read() {
        use crate::store::{Answer, Applied, Outcome, Stored};
        let delta = Buckets {
            on_hand: 3,
            ..Buckets::default()
        };
        let m = Movement {
            seq: 7,
            at_ms: 1_700_000_000_000,
            actor: "pos".into(),
            batch: Some("bat_7".into()),
            idempotency_key: Some("k".into()),
            hash: [9; 32],
            ..Movement::sample(Kind::In, Buckets::default(), delta)
        };
        let applied = Applied {
            created: true,
            movements: vec![m.clone()],
            batch: Some("bat_7".into()),
            levels: vec![(("p".into(), "w".into()), Level::default())],
            warehouse: Some(Warehouse {
                id: "w".into(),
                name: "W".into(),
                number: Some(9_000_000_000_000_001),
            }),
            ..Applied::default()
        };
        let bytes = outcome(&[1; 32], 99, Ok(&applied));
        let (f, at, stored) = decode_replay(&bytes).expect("decode");
        assert_eq!((f, at), ([1; 32], 99));
        let Stored::Outcome(Outcome::Applied(a)) = stored else {
            panic!("{stored:?}")
        };
        assert!(a.created);
        assert_eq!(a.movements, vec![m]);
        assert_eq!(a.batch.as_deref(), Some("bat_7"));
        assert_eq!(a.levels.len(), 1);
        assert_eq!(a.warehouse.map(|w| w.name), Some("W".into()));
        let (_, _, stored) =
            decode_replay(&outcome(&[2; 32], 5, Err(("insufficient_stock", "only 2")))).expect("decode");
        assert!(matches!(stored, Stored::Outcome(Outcome::Refused { ref code, .. }) if code == "insufficient_stock"));
        let old = Answer {
            status: 201,
            content_type: "application/json".into(),
            body: b"{}".to_vec(),
        };
        let (_, _, stored) = decode_replay(&answer(&[3; 32], 6, &old)).expect("decode");
        assert!(matches!(stored, Stored::Answer(a) if a == old));
    }
}
