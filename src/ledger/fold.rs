//! Rebuilding levels from the journal: the definition that stored levels must equal.

use std::collections::BTreeMap;

use super::model::{Buckets, Movement};

/// Buckets per (product, warehouse), summed from zero over `movements`.
/// `None` when a sum overflows, which a valid journal never does.
pub fn fold<'a>(movements: impl IntoIterator<Item = &'a Movement>) -> Option<BTreeMap<(String, String), Buckets>> {
    let mut levels: BTreeMap<(String, String), Buckets> = BTreeMap::new();
    for m in movements {
        let key = (m.draft.product.clone(), m.draft.warehouse.clone());
        let entry = levels.entry(key).or_default();
        *entry = entry.checked_add(&m.draft.delta)?;
    }
    Some(levels)
}

/// Folds one movement into a running fold; `false` when it does not continue it
/// (its `before` is not what the journal so far adds up to) or overflows.
pub fn fold_step(levels: &mut BTreeMap<(String, String), Buckets>, m: &Movement) -> bool {
    let key = (m.draft.product.clone(), m.draft.warehouse.clone());
    let entry = levels.entry(key).or_default();
    if *entry != m.draft.before {
        return false;
    }
    match entry.checked_add(&m.draft.delta) {
        Some(after) => {
            *entry = after;
            true
        }
        None => false,
    }
}
