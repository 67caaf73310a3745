//! `stockd import` and `stockd export`: products, warehouses and opening stock in, and
//! products, levels and movements out, as CSV or NDJSON, offline on a data file.
//!
//! An import is all or nothing: every row becomes a ledger command, parsed and checked
//! first (errors name the line and the column), then all are applied in one write
//! transaction by the daemon's own rules and writes. An export reads one snapshot.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::clock::{parse_date_param, rfc3339_ms, Bound};
use crate::http::native::{check_id, check_text};
use crate::ledger::{Command, Decimal, Meta, MoveCmd, Op, Product, Rules, Warehouse, NOTE_CHARS_MAX, TEXT_CHARS_MAX};
use crate::store::{self, Reader};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    /// From `--format`, else the file's extension.
    pub fn pick(given: Option<Format>, path: Option<&Path>) -> Result<Format, String> {
        if let Some(f) = given {
            return Ok(f);
        }
        match path.and_then(|p| p.extension()).and_then(|e| e.to_str()) {
            Some("csv") => Ok(Format::Csv),
            Some("ndjson") | Some("jsonl") => Ok(Format::Ndjson),
            _ => Err("say --format csv or --format ndjson (or name the file .csv / .ndjson)".into()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportKind {
    /// id, sku, name, barcode, category, brand, unit_cost, price_<name>…
    Products,
    /// id, name
    Warehouses,
    /// product_id, warehouse_id, quantity (or on_hand)[, reason]: opening stock or a count
    /// (absolute). An exported levels file is a valid stock import.
    Stock,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportKind {
    Products,
    /// id, name: what `--kind warehouses` imports.
    Warehouses,
    Levels,
    Movements,
}

/// Progress on stderr: a bar with rate and ETA on a terminal, a line a second otherwise.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    what: &'static str,
    total: u64,
    started: Instant,
    last_line: Instant,
}

/// How often a non-terminal progress line is printed.
const PROGRESS_LINE_INTERVAL: Duration = Duration::from_secs(1);

impl Progress {
    pub fn new(what: &'static str, total: u64) -> Progress {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            let style =
                indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {human_pos}/{human_len} {per_sec} ETA {eta}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style.progress_chars("=> "));
            bar.set_message(what);
            bar
        });
        Progress {
            bar,
            what,
            total,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    pub fn set(&mut self, done: u64) {
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None if self.last_line.elapsed() >= PROGRESS_LINE_INTERVAL => {
                self.last_line = Instant::now();
                let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
                eprintln!("{}: {done}/{} rows, {rate:.0} rows/s", self.what, self.total);
            }
            None => {}
        }
    }

    pub fn finish(self, done: u64) -> String {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let secs = self.started.elapsed().as_secs_f64();
        format!(
            "{}: {done} rows in {secs:.2} s ({:.0} rows/s)",
            self.what,
            done as f64 / secs.max(1e-9)
        )
    }
}

/// One input row: its line and its fields by column name.
struct Row {
    line: usize,
    fields: BTreeMap<String, Value>,
}

fn at(line: usize, column: &str, why: impl std::fmt::Display) -> String {
    format!("line {line}, column `{column}`: {why}")
}

/// Hands each row of `input` to `each` as it is read, so no row outlives its command. When
/// all rows were read first, 40,000 stock rows held ~34 MiB of maps until the import ended
/// (peak RSS 117 against 83 MiB; docs/benchmarks.md).
fn for_each_row(
    input: &mut dyn BufRead,
    format: Format,
    each: &mut dyn FnMut(Row) -> Result<(), String>,
) -> Result<(), String> {
    match format {
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(input);
            let headers = reader.headers().map_err(|e| format!("the header line: {e}"))?.clone();
            let mut record = csv::StringRecord::new();
            loop {
                let more = reader.read_record(&mut record).map_err(|e| match e.position() {
                    Some(p) => format!("line {}: {e}", p.line()),
                    None => e.to_string(),
                })?;
                if !more {
                    return Ok(());
                }
                let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
                let fields = headers
                    .iter()
                    .zip(record.iter())
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                    .collect();
                each(Row { line, fields })?;
            }
        }
        Format::Ndjson => {
            for (i, line) in input.lines().enumerate() {
                let line_no = i + 1;
                let text = line.map_err(|e| format!("line {line_no}: {e}"))?;
                if text.trim().is_empty() {
                    continue;
                }
                let value: Value = serde_json::from_str(&text).map_err(|e| format!("line {line_no}: {e}"))?;
                let Value::Object(map) = value else {
                    return Err(format!("line {line_no}: expected a JSON object"));
                };
                let fields = map.into_iter().filter(|(_, v)| !v.is_null()).collect();
                each(Row { line: line_no, fields })?;
            }
            Ok(())
        }
    }
}

impl Row {
    fn text(&self, column: &str) -> Result<Option<String>, String> {
        match self.fields.get(column) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(at(self.line, column, "expected text")),
        }
    }

    fn required(&self, column: &str) -> Result<String, String> {
        self.text(column)?.ok_or_else(|| at(self.line, column, "is required"))
    }

    fn id(&self, column: &str) -> Result<String, String> {
        let id = self.required(column)?;
        check_id(column, &id).map_err(|e| at(self.line, column, e.detail))?;
        Ok(id)
    }

    fn short_text(&self, column: &str) -> Result<Option<String>, String> {
        let t = self.text(column)?;
        if let Some(t) = &t {
            check_text(column, t, TEXT_CHARS_MAX).map_err(|e| at(self.line, column, e.detail))?;
        }
        Ok(t)
    }

    /// The optional `number` column of an export: the number to keep (empty: assign one).
    fn number(&self) -> Result<Option<u64>, String> {
        let Some(t) = self.text("number")?.filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        match t.parse::<u64>() {
            Ok(n) if n <= crate::ledger::NUMBER_MAX => Ok(Some(n)),
            _ => Err(at(
                self.line,
                "number",
                format!("`{t}` is not a number from 0 to {}", crate::ledger::NUMBER_MAX),
            )),
        }
    }

    fn integer(&self, column: &str) -> Result<i64, String> {
        let t = self.required(column)?;
        t.parse::<i64>()
            .map_err(|_| at(self.line, column, format!("`{t}` is not a whole number")))
    }

    fn money(&self, column: &str, value: Option<String>) -> Result<Option<Decimal>, String> {
        match value {
            None => Ok(None),
            Some(t) => match Decimal::parse(&t) {
                Some(d) if d.micros >= 0 => Ok(Some(d)),
                _ => Err(at(
                    self.line,
                    column,
                    format!("`{t}` is not an amount ≥ 0 with at most 6 decimals"),
                )),
            },
        }
    }
}

fn product_command(row: &Row) -> Result<Command, String> {
    let mut prices = Vec::new();
    for (column, _) in row.fields.iter().filter(|(k, _)| k.starts_with("price_")) {
        let name = column.trim_start_matches("price_").to_string();
        if let Some(d) = row.money(column, row.text(column)?)? {
            prices.push((name, d));
        }
    }
    if let Some(Value::Object(map)) = row.fields.get("prices") {
        for (name, v) in map {
            let text = match v {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => return Err(at(row.line, "prices", "expected numbers")),
            };
            if let Some(d) = row.money("prices", Some(text))? {
                prices.push((name.clone(), d));
            }
        }
    }
    if prices.len() > store::codec::PRICES_MAX {
        return Err(at(
            row.line,
            "prices",
            format!("at most {} prices", store::codec::PRICES_MAX),
        ));
    }
    let barcode = row.text("barcode")?;
    if let Some(b) = &barcode {
        check_id("barcode", b).map_err(|e| at(row.line, "barcode", e.detail))?;
    }
    let number = row.number()?;
    Ok(Command::PutProduct(Product {
        id: row.id("id")?,
        sku: row.id("sku")?,
        name: row
            .short_text("name")?
            .ok_or_else(|| at(row.line, "name", "is required"))?,
        barcode,
        category: row.short_text("category")?,
        brand: row.short_text("brand")?,
        unit_cost: row.money("unit_cost", row.text("unit_cost")?)?,
        prices,
        updated_ms: 0,
        number,
    }))
}

fn warehouse_command(row: &Row) -> Result<Command, String> {
    Ok(Command::PutWarehouse(Warehouse {
        id: row.id("id")?,
        name: row
            .short_text("name")?
            .ok_or_else(|| at(row.line, "name", "is required"))?,
        number: row.number()?,
    }))
}

fn stock_command(row: &Row, default_warehouse: &str) -> Result<Command, String> {
    let warehouse = match row.text("warehouse_id")? {
        Some(_) => row.id("warehouse_id")?,
        None => default_warehouse.to_string(),
    };
    let column = stock_column(row)?;
    let quantity = row.integer(column)?;
    if quantity < 0 {
        return Err(at(row.line, column, "must be zero or more"));
    }
    let reason = row.short_text("reason")?.or_else(|| Some("import".to_string()));
    let note = row.text("note")?;
    if let Some(n) = &note {
        check_text("note", n, NOTE_CHARS_MAX).map_err(|e| at(row.line, "note", e.detail))?;
    }
    Ok(Command::Move(MoveCmd {
        product: row.id("product_id")?,
        warehouse,
        op: Op::Set(quantity),
        expected_on_hand: None,
        meta: Meta {
            reason,
            note,
            ..Meta::default()
        },
    }))
}

/// The column a stock row's count is in: `quantity`, or `on_hand` as an exported levels
/// file names it (so an export of levels imports back as it is).
fn stock_column(row: &Row) -> Result<&'static str, String> {
    match (row.fields.contains_key("quantity"), row.fields.contains_key("on_hand")) {
        (true, true) => Err(at(row.line, "on_hand", "give `quantity` or `on_hand`, not both")),
        (false, true) => Ok("on_hand"),
        _ => Ok("quantity"),
    }
}

/// Imports `input` into the data file at `data`: all rows, or none.
pub fn import(
    data: &Path,
    kind: ImportKind,
    format: Format,
    input: &mut dyn BufRead,
    rules: &Rules,
    default_warehouse: &str,
) -> Result<String, String> {
    let mut commands = Vec::new();
    for_each_row(input, format, &mut |row| {
        let cmd = match kind {
            ImportKind::Products => product_command(&row)?,
            ImportKind::Warehouses => warehouse_command(&row)?,
            ImportKind::Stock => stock_command(&row, default_warehouse)?,
        };
        commands.push((row.line, cmd));
        Ok(())
    })?;
    store::settle_file(data).map_err(|e| e.to_string())?;
    let db = store::open_or_create(data, default_warehouse).map_err(|e| e.to_string())?;
    store::upgrade::upgrade(&db, default_warehouse).map_err(|e| e.to_string())?;
    let mut progress = Progress::new("import", commands.len() as u64);
    let applied = store::apply_offline(&db, rules, "import", commands.into_iter(), &mut |n| progress.set(n)).map_err(
        |e| match e {
            store::OfflineError::Refused { line, error } => {
                format!(
                    "line {line}: {} ({}); nothing was imported",
                    error.detail,
                    error.code.name()
                )
            }
            store::OfflineError::Storage(msg) => format!("storage: {msg}; nothing was imported"),
        },
    )?;
    Ok(progress.finish(applied))
}

/// What `stockd export` writes out.
pub struct ExportRange {
    pub from_seq: Option<u64>,
    pub to_seq: Option<u64>,
    pub since: Option<String>,
    pub until: Option<String>,
}

fn out_row(out: &mut dyn Write, format: Format, row: &BTreeMap<&str, Value>, columns: &[&str]) -> Result<(), String> {
    match format {
        Format::Ndjson => {
            serde_json::to_writer(&mut *out, row).map_err(|e| e.to_string())?;
            out.write_all(b"\n").map_err(|e| e.to_string())
        }
        Format::Csv => {
            let cells: Vec<String> = columns
                .iter()
                .map(|c| match row.get(c) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                })
                .collect();
            csv_line(out, &cells)
        }
    }
}

/// One CSV record (quoted as RFC 4180 needs), straight to the output: an export can be
/// larger than memory.
fn csv_line(out: &mut dyn Write, cells: &[impl AsRef<[u8]>]) -> Result<(), String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(cells).map_err(|e| e.to_string())?;
    let bytes = w.into_inner().map_err(|e| e.to_string())?;
    out.write_all(&bytes).map_err(|e| e.to_string())
}

fn header(out: &mut dyn Write, format: Format, columns: &[&str]) -> Result<(), String> {
    match format {
        Format::Csv => csv_line(out, columns),
        Format::Ndjson => Ok(()),
    }
}

fn number<T: Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Money as exact decimal text (`25.00`), so no float ever rounds it.
fn money(d: Option<Decimal>) -> Value {
    d.map(|d| Value::String(d.to_string())).unwrap_or(Value::Null)
}

/// `number`: the stable number the seed dialects show; an import keeps it.
pub const PRODUCT_COLUMNS: [&str; 9] = [
    "id",
    "sku",
    "name",
    "barcode",
    "category",
    "brand",
    "unit_cost",
    "prices",
    "number",
];
pub const LEVEL_COLUMNS: [&str; 11] = [
    "product_id",
    "warehouse_id",
    "on_hand",
    "allocated",
    "damaged",
    "buffer",
    "in_transit",
    "available",
    "reorder_point",
    "max_stock_level",
    "updated_at",
];
pub const MOVEMENT_COLUMNS: [&str; 17] = [
    "seq",
    "created_at",
    "product_id",
    "warehouse_id",
    "kind",
    "movement_type",
    "quantity",
    "on_hand_before",
    "on_hand_after",
    "reason",
    "reference_type",
    "reference_id",
    "note",
    "cost_per_unit",
    "actor",
    "batch_id",
    "hash",
];

/// Exports one consistent snapshot of the file at `data` to `out`.
pub fn export(
    data: &Path,
    kind: ExportKind,
    format: Format,
    range: &ExportRange,
    out: &mut dyn Write,
) -> Result<String, String> {
    let reader = store::read_file(data).map_err(|e| e.to_string())?;
    let written = match kind {
        ExportKind::Products => export_products(&reader, format, out)?,
        ExportKind::Warehouses => export_warehouses(&reader, format, out)?,
        ExportKind::Levels => export_levels(&reader, format, out)?,
        ExportKind::Movements => export_movements(&reader, format, range, out)?,
    };
    out.flush().map_err(|e| e.to_string())?;
    Ok(written)
}

fn export_products(reader: &Reader, format: Format, out: &mut dyn Write) -> Result<String, String> {
    header(out, format, &PRODUCT_COLUMNS)?;
    let mut progress = Progress::new("export products", reader.product_count().map_err(|e| e.to_string())?);
    let mut n = 0u64;
    let mut failed = None;
    reader
        .walk_products(None, false, &mut |p| {
            let prices: BTreeMap<&str, String> = p.prices.iter().map(|(k, v)| (k.as_str(), v.to_string())).collect();
            let prices = match format {
                Format::Ndjson => number(&prices),
                Format::Csv => Value::String(
                    prices
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(";"),
                ),
            };
            let row: BTreeMap<&str, Value> = [
                ("id", Value::String(p.id.clone())),
                ("sku", Value::String(p.sku.clone())),
                ("name", Value::String(p.name.clone())),
                ("barcode", number(&p.barcode)),
                ("category", number(&p.category)),
                ("brand", number(&p.brand)),
                ("unit_cost", money(p.unit_cost)),
                ("prices", prices),
                ("number", number(crate::ledger::number_of(p.number, &p.id))),
            ]
            .into_iter()
            .collect();
            if let Err(e) = out_row(out, format, &row, &PRODUCT_COLUMNS) {
                failed = Some(e);
                return Ok(false);
            }
            n += 1;
            progress.set(n);
            Ok(true)
        })
        .map_err(|e: crate::store::StoreError| e.to_string())?;
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(progress.finish(n))
}

/// `number`: the stable number the seed dialects show; an import keeps it.
pub const WAREHOUSE_COLUMNS: [&str; 3] = ["id", "name", "number"];

fn export_warehouses(reader: &Reader, format: Format, out: &mut dyn Write) -> Result<String, String> {
    header(out, format, &WAREHOUSE_COLUMNS)?;
    let warehouses = reader.warehouses().map_err(|e| e.to_string())?;
    let mut progress = Progress::new("export warehouses", warehouses.len() as u64);
    let mut n = 0u64;
    for w in warehouses {
        let row: BTreeMap<&str, Value> = [
            ("number", number(crate::ledger::number_of(w.number, &w.id))),
            ("id", Value::String(w.id)),
            ("name", Value::String(w.name)),
        ]
        .into_iter()
        .collect();
        out_row(out, format, &row, &WAREHOUSE_COLUMNS)?;
        n += 1;
        progress.set(n);
    }
    Ok(progress.finish(n))
}

fn export_levels(reader: &Reader, format: Format, out: &mut dyn Write) -> Result<String, String> {
    header(out, format, &LEVEL_COLUMNS)?;
    let mut progress = Progress::new("export levels", reader.level_count().map_err(|e| e.to_string())?);
    let mut n = 0u64;
    reader.each_level(&mut |p, w, l| {
        let b = l.buckets;
        let row: BTreeMap<&str, Value> = [
            ("product_id", Value::String(p.to_string())),
            ("warehouse_id", Value::String(w.to_string())),
            ("on_hand", number(b.on_hand)),
            ("allocated", number(b.allocated)),
            ("damaged", number(b.damaged)),
            ("buffer", number(b.buffer)),
            ("in_transit", number(b.in_transit)),
            ("available", number(b.available())),
            ("reorder_point", number(l.reorder_point)),
            ("max_stock_level", number(l.max_stock_level)),
            ("updated_at", Value::String(rfc3339_ms(l.updated_ms))),
        ]
        .into_iter()
        .collect();
        out_row(out, format, &row, &LEVEL_COLUMNS)?;
        n += 1;
        progress.set(n);
        Ok(())
    })?;
    Ok(progress.finish(n))
}

fn export_movements(
    reader: &Reader,
    format: Format,
    range: &ExportRange,
    out: &mut dyn Write,
) -> Result<String, String> {
    let last = reader.seq_last().map_err(|e| e.to_string())?;
    let date = |text: &String, bound: Bound| {
        parse_date_param(text, bound)
            .ok_or_else(|| format!("`{text}` is not an RFC 3339 date-time or a YYYY-MM-DD date"))
    };
    let mut from = range.from_seq.unwrap_or(1).max(1);
    let mut to = range.to_seq.unwrap_or(last).min(last);
    if let Some(since) = &range.since {
        from = from.max(
            reader
                .seq_since(date(since, Bound::Start)?)
                .map_err(|e| e.to_string())?,
        );
    }
    if let Some(until) = &range.until {
        let end = date(until, Bound::End)?;
        to = to.min(
            reader
                .seq_since(end.saturating_add(1))
                .map_err(|e| e.to_string())?
                .saturating_sub(1),
        );
    }
    header(out, format, &MOVEMENT_COLUMNS)?;
    let mut progress = Progress::new("export movements", (to + 1).saturating_sub(from));
    let mut n = 0u64;
    if from <= to {
        reader.each_movement(from, to, &mut |m| {
            let d = &m.draft;
            let text = |s: &Option<String>| s.clone().map(Value::String).unwrap_or(Value::Null);
            let row: BTreeMap<&str, Value> = [
                ("seq", number(m.seq)),
                ("created_at", Value::String(rfc3339_ms(m.at_ms))),
                ("product_id", Value::String(d.product.clone())),
                ("warehouse_id", Value::String(d.warehouse.clone())),
                ("kind", Value::String(d.kind.name().to_string())),
                ("movement_type", Value::String(d.kind.movement_type().to_string())),
                ("quantity", number(d.quantity)),
                ("on_hand_before", number(d.before.on_hand)),
                ("on_hand_after", number(m.after().on_hand)),
                ("reason", text(&d.reason)),
                ("reference_type", text(&d.reference_type)),
                ("reference_id", text(&d.reference_id)),
                ("note", text(&d.note)),
                ("cost_per_unit", money(d.cost_per_unit)),
                ("actor", Value::String(m.actor.clone())),
                ("batch_id", text(&m.batch)),
                ("hash", Value::String(crate::hex(&m.hash))),
            ]
            .into_iter()
            .collect();
            out_row(out, format, &row, &MOVEMENT_COLUMNS)?;
            n += 1;
            progress.set(n);
            Ok(())
        })?;
    }
    Ok(progress.finish(n))
}
