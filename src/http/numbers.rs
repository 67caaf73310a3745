//! The stable numbers of products and warehouses, as the seed dialects use them: where a
//! document types an id as an integer, the answer shows the record's number (its id when
//! the id is all digits, `0` for the default warehouse, else one the store assigned) and a
//! request may name the record by it. See docs/dialects.md "Numbers".

use std::collections::HashMap;

use serde_json::value::RawValue;

use super::render::dialect_id;
use crate::error::{ApiError, Code};
use crate::ledger::{number_of, NumberSpace, DEFAULT_WAREHOUSE_NUMBER};
use crate::store::Reader;

/// A JSON integer, written digit for digit.
pub fn integer(n: u64) -> Box<RawValue> {
    RawValue::from_string(n.to_string()).unwrap_or_else(|_| dialect_id(""))
}

/// The product a dialect names by id or by number. An unknown one is left as it was
/// given: the ledger answers `product_not_found` for it.
pub fn product_id(reader: &Reader, given: &str) -> Result<String, ApiError> {
    if reader.product(given)?.is_some() {
        return Ok(given.to_string());
    }
    match given.parse::<u64>() {
        Ok(n) => Ok(reader
            .id_of_number(NumberSpace::Product, n)?
            .unwrap_or_else(|| given.to_string())),
        Err(_) => Ok(given.to_string()),
    }
}

/// The warehouse a dialect names by id or by number (`0`: the default warehouse).
pub fn warehouse_id(reader: &Reader, default_warehouse: &str, given: &str) -> Result<String, ApiError> {
    if reader.warehouse(given)?.is_some() {
        return Ok(given.to_string());
    }
    match given.parse::<u64>() {
        Ok(n) => match reader.id_of_number(NumberSpace::Warehouse, n)? {
            Some(id) => Ok(id),
            // A file whose first default is not indexed (never: `init`, `upgrade`).
            None if n == DEFAULT_WAREHOUSE_NUMBER => Ok(default_warehouse.to_string()),
            None => Ok(given.to_string()),
        },
        Err(_) => Ok(given.to_string()),
    }
}

/// The warehouse seed 001 names in `warehouse`: `default`, an id, a number, or — as its
/// document describes the field — the warehouse's name (exact; two warehouses of that
/// name are a 422 `ambiguous_warehouse`). Names are matched only among the warehouses
/// `may_use` allows, so a restricted credential learns nothing of the others' names.
pub fn warehouse_by_name(
    reader: &Reader,
    default_warehouse: &str,
    given: &str,
    may_use: impl Fn(&str) -> bool,
) -> Result<String, ApiError> {
    if given == "default" {
        return Ok(default_warehouse.to_string());
    }
    let by_id = warehouse_id(reader, default_warehouse, given)?;
    if by_id != given || reader.warehouse(given)?.is_some() {
        return Ok(by_id);
    }
    match reader.warehouses_named(given, may_use)?.as_slice() {
        [one] => Ok(one.clone()),
        [] => Ok(by_id),
        _ => Err(ApiError::new(
            Code::AmbiguousWarehouse,
            format!("several warehouses are named `{given}`: name it by its id"),
        )),
    }
}

/// Numbers of the records one answer shows, each looked up once.
pub struct Numbers<'r> {
    reader: &'r Reader,
    products: HashMap<String, Option<u64>>,
    warehouses: HashMap<String, Option<u64>>,
}

impl<'r> Numbers<'r> {
    pub fn new(reader: &'r Reader) -> Self {
        Numbers {
            reader,
            products: HashMap::new(),
            warehouses: HashMap::new(),
        }
    }

    /// The product's number; a record that is gone shows its id as `dialect_id` does.
    pub fn product(&mut self, id: &str) -> Result<Box<RawValue>, ApiError> {
        let reader = self.reader;
        shown(&mut self.products, id, || {
            Ok(reader.product(id)?.and_then(|p| number_of(p.number, &p.id)))
        })
    }

    pub fn warehouse(&mut self, id: &str) -> Result<Box<RawValue>, ApiError> {
        let reader = self.reader;
        shown(&mut self.warehouses, id, || {
            Ok(reader.warehouse(id)?.and_then(|w| number_of(w.number, &w.id)))
        })
    }
}

/// The number of `id` as an answer shows it, looked up (by `look`) only the first time.
fn shown(
    cache: &mut HashMap<String, Option<u64>>,
    id: &str,
    look: impl FnOnce() -> Result<Option<u64>, ApiError>,
) -> Result<Box<RawValue>, ApiError> {
    let number = match cache.get(id) {
        Some(n) => *n,
        None => {
            let n = look()?;
            cache.insert(id.to_string(), n);
            n
        }
    };
    Ok(number.map_or_else(|| dialect_id(id), integer))
}
