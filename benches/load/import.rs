//! `stockd import` of the bench's opening stock into a fresh data file (issue 11: import
//! ≥ 100k rows/s). The products and warehouses go in first (not timed); then the 40,000
//! stock rows, timed from the start of the `stockd import` process to its exit, so CSV
//! parsing, opening the file and the commit are all in the figure.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{level, product_id, Res, LEVELS, OPENING_STOCK, PRODUCTS, WAREHOUSES};

/// Each import must finish within this.
const IMPORT_TIMEOUT: Duration = Duration::from_secs(300);

pub struct Imported {
    pub rows: usize,
    pub took: Duration,
}

impl Imported {
    pub fn rate(&self) -> f64 {
        self.rows as f64 / self.took.as_secs_f64().max(1e-9)
    }
}

/// Imports products, warehouses, then (timed) the stock rows into `dir/import.redb`.
pub fn run(dir: &Path) -> Res<Imported> {
    let data = dir.join("import.redb");
    let mut products = String::from("id,sku,name\n");
    for i in 0..PRODUCTS {
        let id = product_id(i);
        let _ = writeln!(products, "{id},SKU-{id},Bench product {i}");
    }
    let mut warehouses = String::from("id,name\n");
    for w in &WAREHOUSES[1..] {
        let _ = writeln!(warehouses, "{w},Warehouse {w}");
    }
    let mut stock = String::from("product_id,warehouse_id,quantity\n");
    for k in 0..LEVELS {
        let (p, w) = level(k);
        let _ = writeln!(stock, "{p},{w},{OPENING_STOCK}");
    }
    import(dir, &data, "products", &products)?;
    import(dir, &data, "warehouses", &warehouses)?;
    let took = import(dir, &data, "stock", &stock)?;
    Ok(Imported { rows: LEVELS, took })
}

fn import(dir: &Path, data: &Path, kind: &str, csv: &str) -> Res<Duration> {
    let input = dir.join(format!("import-{kind}.csv"));
    std::fs::write(&input, csv).map_err(|e| format!("cannot write {}: {e}", input.display()))?;
    let out = dir.join(format!("import-{kind}.out"));
    let file = std::fs::File::create(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let t0 = Instant::now();
    let mut child = Command::new(super::stockd_exe())
        .arg("import")
        .arg("--data")
        .arg(data)
        .args(["--kind", kind])
        .arg(&input)
        .env_remove("STOCKD_CONFIG")
        .env_remove("STOCKD_DATA")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(file))
        .spawn()
        .map_err(|e| format!("cannot run stockd import: {e}"))?;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if t0.elapsed() < IMPORT_TIMEOUT => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "stockd import --kind {kind} did not finish within {} s; killed",
                    IMPORT_TIMEOUT.as_secs()
                ));
            }
            Err(e) => return Err(format!("waiting for stockd import: {e}")),
        }
    };
    let took = t0.elapsed();
    if !status.success() {
        return Err(format!(
            "stockd import --kind {kind} failed ({status}): {}",
            std::fs::read_to_string(&out).unwrap_or_default().trim()
        ));
    }
    Ok(took)
}
