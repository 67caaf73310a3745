//! The closing table: one line per figure of issue 11, stockd next to PostgreSQL from the
//! same run, their ratio, and the target.

use super::{latency, thousands};

/// One movement phase on either side.
pub struct Movements {
    pub conns: usize,
    pub rate: f64,
    pub p50_us: Option<u32>,
    pub p99_us: Option<u32>,
}

/// Everything the table shows; `None` where a figure was not measured.
pub struct Inputs {
    pub stockd: Vec<Movements>,
    /// Empty when PostgreSQL did not run.
    pub pg: Vec<Movements>,
    /// Server CPU per movement at 64 connections, µs.
    pub stockd_cpu_us: Option<f64>,
    pub pg_cpu_us: Option<f64>,
    pub reads: Option<f64>,
    pub bulk_lines: Option<f64>,
    pub import_rows: Option<f64>,
    pub rss_mib: Option<f64>,
    /// p50 of `/healthz` at one connection: the HTTP round trip alone.
    pub http_round_trip_p50_us: Option<u32>,
    /// p50 and mean of a 4 KiB overwrite + fdatasync on the data file's disk.
    pub fdatasync_p50_us: Option<u32>,
    pub fdatasync_mean_us: Option<f64>,
    /// Mean of the daemon's own log write + fdatasync in the one-connection phase.
    pub log_sync_mean_us: Option<f64>,
}

#[derive(Clone, Copy)]
enum Unit {
    Rate(&'static str),
    Latency,
    CpuUs,
    Mib,
}

impl Unit {
    fn show(self, v: f64) -> String {
        match self {
            Unit::Rate(u) => format!("{} {u}", thousands(v)),
            Unit::Latency => latency(Some(v.round() as u32)),
            Unit::CpuUs => format!("{v:.1} µs"),
            Unit::Mib => format!("{v:.0} MiB"),
        }
    }
}

/// Issue 11's target for a figure.
enum Goal {
    None,
    /// stockd / PostgreSQL at least this.
    RatioAtLeast(f64),
    /// stockd / PostgreSQL at most this (latencies).
    RatioAtMost(f64),
    /// stockd's figure at least / at most this, in the line's unit.
    AtLeast(f64),
    AtMost(f64),
}

struct Line {
    figure: String,
    stockd: Option<f64>,
    pg: Option<f64>,
    unit: Unit,
    goal: Goal,
}

impl Line {
    fn ratio(&self) -> Option<f64> {
        match (self.stockd, self.pg) {
            (Some(s), Some(p)) if p > 0.0 => Some(s / p),
            _ => None,
        }
    }

    fn goal_text(&self) -> String {
        match self.goal {
            Goal::None => "–".into(),
            Goal::RatioAtLeast(r) => format!("≥ {r:.1}× PostgreSQL"),
            Goal::RatioAtMost(1.0) => "≤ PostgreSQL's".into(),
            Goal::RatioAtMost(r) => format!("≤ {r:.1}× PostgreSQL"),
            Goal::AtLeast(v) => format!("≥ {}", self.unit.show(v)),
            Goal::AtMost(v) => format!("≤ {}", self.unit.show(v)),
        }
    }

    /// `None`: no target, or a figure it needs is missing.
    fn met(&self) -> Option<bool> {
        match self.goal {
            Goal::None => None,
            Goal::RatioAtLeast(r) => self.ratio().map(|x| x >= r),
            Goal::RatioAtMost(r) => self.ratio().map(|x| x <= r),
            Goal::AtLeast(v) => self.stockd.map(|x| x >= v),
            Goal::AtMost(v) => self.stockd.map(|x| x <= v),
        }
    }
}

fn lines(inputs: &Inputs) -> Vec<Line> {
    let mut out = Vec::new();
    for s in &inputs.stockd {
        let p = inputs.pg.iter().find(|p| p.conns == s.conns);
        let (rate_goal, p99_goal) = match s.conns {
            1 => (Goal::RatioAtLeast(1.0), Goal::None),
            64 => (Goal::RatioAtLeast(2.5), Goal::RatioAtMost(1.0)),
            _ => (Goal::None, Goal::None),
        };
        let us = |v: Option<u32>| v.map(f64::from);
        out.push(Line {
            figure: format!("durable movements, {} conn: throughput", s.conns),
            stockd: Some(s.rate),
            pg: p.map(|p| p.rate),
            unit: Unit::Rate("mov/s"),
            goal: rate_goal,
        });
        out.push(Line {
            figure: format!("durable movements, {} conn: p50", s.conns),
            stockd: us(s.p50_us),
            pg: p.and_then(|p| us(p.p50_us)),
            unit: Unit::Latency,
            goal: Goal::None,
        });
        out.push(Line {
            figure: format!("durable movements, {} conn: p99", s.conns),
            stockd: us(s.p99_us),
            pg: p.and_then(|p| us(p.p99_us)),
            unit: Unit::Latency,
            goal: p99_goal,
        });
    }
    out.push(Line {
        figure: "server CPU per movement, 64 conns".into(),
        stockd: inputs.stockd_cpu_us,
        pg: inputs.pg_cpu_us,
        unit: Unit::CpuUs,
        goal: Goal::AtMost(40.0),
    });
    let alone = [
        (
            "level reads, 64 conns",
            inputs.reads,
            Unit::Rate("reads/s"),
            Goal::AtLeast(60_000.0),
        ),
        (
            "bulk counts, 4 conns",
            inputs.bulk_lines,
            Unit::Rate("lines/s"),
            Goal::AtLeast(150_000.0),
        ),
        (
            "import (stockd import, stock rows)",
            inputs.import_rows,
            Unit::Rate("rows/s"),
            Goal::AtLeast(100_000.0),
        ),
        (
            "daemon RSS peak (VmHWM)",
            inputs.rss_mib,
            Unit::Mib,
            Goal::AtMost(256.0),
        ),
    ];
    for (figure, stockd, unit, goal) in alone {
        out.push(Line {
            figure: figure.into(),
            stockd,
            pg: None,
            unit,
            goal,
        });
    }
    out
}

pub fn print(inputs: &Inputs) {
    println!("| figure | stockd | PostgreSQL | stockd / PostgreSQL | target (issue 11) | |");
    println!("|---|---:|---:|---:|---|---|");
    for l in lines(inputs) {
        let show = |v: Option<f64>| v.map(|v| l.unit.show(v)).unwrap_or_else(|| "–".into());
        let verdict = match l.met() {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "",
        };
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            l.figure,
            show(l.stockd),
            show(l.pg),
            l.ratio().map(|r| format!("{r:.2}×")).unwrap_or_else(|| "–".into()),
            l.goal_text(),
            verdict
        );
    }
}

/// One connection's p50 round trip taken apart: the disk's sync floor both sides pay, the
/// HTTP round trip stockd pays on top, and what is left on each side.
pub fn print_one_connection(inputs: &Inputs) {
    let at_one = |side: &[Movements]| side.iter().find(|m| m.conns == 1).and_then(|m| m.p50_us);
    let (Some(stockd), Some(sync)) = (at_one(&inputs.stockd), inputs.fdatasync_p50_us) else {
        return;
    };
    let pg = at_one(&inputs.pg);
    let http = inputs.http_round_trip_p50_us;
    let us = |v: Option<i64>| v.map(|v| format!("{v} µs")).unwrap_or_else(|| "–".into());
    let (stockd, sync) = (i64::from(stockd), i64::from(sync));
    println!(
        "One connection, p50 taken apart (µs; the parts are p50s of their own phases, so they add up only roughly):"
    );
    println!();
    println!("| | stockd | PostgreSQL |");
    println!("|---|---:|---:|");
    println!(
        "| durable movement, round trip | {} | {} |",
        us(Some(stockd)),
        us(pg.map(i64::from))
    );
    println!(
        "| the disk's sync floor (4 KiB overwrite + fdatasync) | {} | {} |",
        us(Some(sync)),
        us(pg.map(|_| sync))
    );
    println!(
        "| HTTP round trip (`GET /healthz`, 1 connection) | {} | – |",
        us(http.map(i64::from))
    );
    println!(
        "| the rest: parsing, the ledger, storage, hand-offs between threads | {} | {} |",
        us(http.map(|h| stockd - sync - i64::from(h))),
        us(pg.map(|p| i64::from(p) - sync))
    );
    if let (Some(floor), Some(daemon)) = (inputs.fdatasync_mean_us, inputs.log_sync_mean_us) {
        println!();
        println!(
            "Means: the disk's sync floor {floor:.0} µs; the daemon's own log write + fdatasync at one connection {daemon:.0} µs."
        );
    }
}
